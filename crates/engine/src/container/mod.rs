//! Containers: records, persistence, and their lifecycle through berth-shim (skeleton; the
//! containers helper fills it in).

use std::sync::Arc;

use crate::config::EngineConfig;
use crate::error::ErrorKind;
use crate::events::EventBus;
use crate::image::ImageService;

/// Failures of container operations, with Docker's texts.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("No such container: {0}")]
    NotFound(String),
}

impl ContainerError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ContainerError::NotFound(_) => ErrorKind::NotFound,
        }
    }
}

/// All containers of one engine.
pub struct Containers {}

impl Containers {
    pub async fn open(
        config: &EngineConfig,
        events: Arc<EventBus>,
        images: Arc<ImageService>,
    ) -> Result<Self, ContainerError> {
        let _ = (config, events, images);
        Ok(Containers {})
    }

    /// Stops background tasks (restart monitors, health checks); containers keep running.
    pub async fn shutdown(&self) {}
}
