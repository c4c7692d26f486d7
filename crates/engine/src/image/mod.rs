//! The image service: content store, image records, snapshots and registries behind the
//! `/images/*` API and the container rootfs (skeleton; the images helper fills it in).

use std::sync::Arc;

use crate::config::EngineConfig;
use crate::error::ErrorKind;
use crate::events::EventBus;

/// Failures of image operations.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("no such image: {0}")]
    NotFound(String),
}

impl ImageError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ImageError::NotFound(_) => ErrorKind::NotFound,
        }
    }
}

/// Images of one engine.
pub struct ImageService {}

impl ImageService {
    pub async fn open(config: &EngineConfig, events: Arc<EventBus>) -> Result<Self, ImageError> {
        let _ = (config, events);
        Ok(ImageService {})
    }
}
