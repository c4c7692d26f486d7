//! berthd's core: containers and their shims, exec, logs, events, the image service, restart
//! policies and health, persistent state. It speaks its own types plus the Docker Config and
//! HostConfig a container was created with (kept verbatim, as Docker keeps them); it has no
//! HTTP (that is berth-server) and never links the OCI runtime (containers belong to shims).
//!
//! # Layout
//! - [`Engine`] ties the services together; berth-server holds it in an `Arc`.
//! - [`config`]: daemon configuration (data root, exec root, runtimes, log defaults).
//! - [`image`]: the image service (content store, image records, snapshots, registries).
//! - [`container`]: container records, their persistence, lifecycle through berth-shim.
//! - [`spec`]: Docker's default OCI spec for a container (pure, no I/O beyond the rootfs'
//!   /etc/passwd and /etc/group).
//! - [`logs`]: reading json-file logs (tail, since, until, follow).
//! - [`events`]: the event bus behind `/events`.
//! - [`names`]: Docker's random container names.
//!
//! Blocking work (shim calls, mounts, file I/O of stores) runs in `spawn_blocking`; nothing
//! here forks into namespaces.

pub mod attach;
pub mod build;
pub mod config;
pub mod container;
pub mod error;
pub mod events;
pub mod exec;
pub mod image;
pub mod logs;
pub mod names;
pub mod network;
pub mod secret;
pub mod spec;
pub mod stats;
pub mod top;
pub mod trust;
pub mod volume;

use std::sync::Arc;

pub use config::EngineConfig;
pub use error::EngineError;

/// The daemon core: one per berthd.
pub struct Engine {
    pub config: EngineConfig,
    pub events: Arc<events::EventBus>,
    pub images: Arc<image::ImageService>,
    pub containers: Arc<container::Containers>,
    pub volumes: Arc<volume::VolumeService>,
    pub networks: Arc<network::NetworkService>,
    /// Secrets without swarm (`/secrets`).
    pub secrets: Arc<secret::SecretService>,
    /// Exec instances, in memory only (as Docker's).
    pub execs: exec::Execs,
    /// When this engine started, for `/info` and uptime.
    pub started: std::time::SystemTime,
}

impl Engine {
    /// Opens (or creates) the stores under the configured roots and reconnects to the shims
    /// of containers that outlived the previous berthd.
    pub async fn open(config: EngineConfig) -> Result<Arc<Engine>, EngineError> {
        config.prepare_directories()?;
        let events = Arc::new(events::EventBus::new());
        let images = Arc::new(image::ImageService::open(&config, events.clone()).await?);
        let volumes = Arc::new(volume::VolumeService::open(
            config.data_root.join("volumes"),
            events.clone(),
        )?);
        let containers = Arc::new(
            container::Containers::open(&config, events.clone(), images.clone(), volumes.clone())
                .await?,
        );
        let networks = network::NetworkService::start(&config, &containers, events.clone()).await?;
        let secrets = Arc::new(secret::SecretService::open(&config.data_root)?);
        config::spread_subdirectories(&config.spread_directories());
        Ok(Arc::new(Engine {
            config,
            events,
            images,
            containers,
            volumes,
            networks,
            secrets,
            execs: exec::Execs::new(),
            started: std::time::SystemTime::now(),
        }))
    }

    /// Stops background tasks; containers keep running (live restore is always on).
    pub async fn shutdown(&self) {
        self.containers.shutdown().await;
        // The start-up firewall application may still run (see network::reconcile).
        self.networks.firewall_settled().await;
    }
}
