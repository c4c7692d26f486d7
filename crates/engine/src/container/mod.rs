//! Containers: records, persistence, and their lifecycle through berth-shim. The record
//! keeps the Docker Config and HostConfig as created (Docker's config.v2.json and
//! hostconfig.json) plus the engine's own state; API shapes are built by berth-server.
//!
//! (Skeleton: the containers helper fills in the service; the types below are the contract
//! other modules build on.)

pub mod record;

use std::sync::Arc;

use crate::config::EngineConfig;
use crate::error::ErrorKind;
use crate::events::EventBus;
use crate::image::ImageService;

pub use record::{ContainerRecord, ContainerState, Status};

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

/// One container: its record behind a lock (state changes are persisted before the lock is
/// released).
pub struct Container {
    pub id: String,
    record: std::sync::Mutex<ContainerRecord>,
}

impl Container {
    pub fn new(record: ContainerRecord) -> Container {
        Container {
            id: record.id.clone(),
            record: std::sync::Mutex::new(record),
        }
    }

    /// A snapshot of the record.
    pub fn record(&self) -> ContainerRecord {
        match self.record.lock() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
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

    /// Finds a container by full ID, name (with or without `/`) or unique ID prefix, as
    /// Docker's `GetContainer`.
    pub fn get(&self, name_or_id: &str) -> Result<Arc<Container>, ContainerError> {
        Err(ContainerError::NotFound(name_or_id.to_string()))
    }

    /// Stops background tasks (restart monitors, health checks); containers keep running.
    pub async fn shutdown(&self) {}
}
