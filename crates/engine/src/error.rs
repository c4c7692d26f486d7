//! Errors of opening and running the engine as a whole. Each service has its own error enum
//! (`ContainerError`, `ImageError`, ...); every one of them has a [`kind`](EngineError::kind)
//! that berth-server maps to an HTTP status in exactly one place (berth-api's `ErrorKind`).

use std::path::PathBuf;

pub use berth_api::ErrorKind;

/// Failures opening the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("creating {path}")]
    Directory {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Image(#[from] crate::image::ImageError),
    #[error(transparent)]
    Container(#[from] crate::container::ContainerError),
    #[error(transparent)]
    Volume(#[from] crate::volume::VolumeError),
    #[error(transparent)]
    Network(#[from] crate::network::NetworkError),
    #[error(transparent)]
    Secret(#[from] crate::secret::SecretError),
}

impl EngineError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            EngineError::Directory { .. } => ErrorKind::Internal,
            EngineError::Image(e) => e.kind(),
            EngineError::Container(e) => e.kind(),
            EngineError::Volume(e) => e.kind(),
            EngineError::Network(e) => e.kind(),
            EngineError::Secret(e) => e.kind(),
        }
    }
}
