//! The persisted record of one container (`<data-root>/containers/<id>/container.json`,
//! written atomically: temp file, fsync, rename).

use berth_api::container::{Config, HostConfig};
use berth_api::network::NetworkingConfig;
use serde::{Deserialize, Serialize};

/// Docker's container statuses (`State.Status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl Status {
    /// The word Docker uses (`created`, `running`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }
}

/// Runtime state of a container, as `State` of inspect shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerState {
    pub status: Status,
    pub pid: u32,
    pub exit_code: i32,
    /// Error of the last start, Docker's `State.Error`.
    pub error: String,
    pub oom_killed: bool,
    /// Go RFC 3339 nano times; Docker's zero time `0001-01-01T00:00:00Z` when unset.
    pub started_at: String,
    pub finished_at: String,
    pub restart_count: u32,
    /// Set by `docker stop`/`kill` so that restart policies do not restart it.
    pub has_been_manually_stopped: bool,
}

/// Everything berthd keeps about a container.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerRecord {
    /// 64 lowercase hex characters.
    pub id: String,
    /// With the leading `/`, as Docker's `Name`.
    pub name: String,
    /// Go RFC 3339 nano creation time.
    pub created: String,
    /// Image ID (`sha256:...`) the container was created from.
    pub image_id: String,
    /// The Config (after the image's config was merged in, as Docker stores it).
    pub config: Config,
    pub host_config: HostConfig,
    #[serde(default)]
    pub networking_config: Option<NetworkingConfig>,
    /// Process the container runs: entrypoint + cmd split as Docker's `Path` and `Args`.
    pub path: String,
    pub args: Vec<String>,
    /// OCI runtime name (`berth`, `runc`, ...).
    pub runtime: String,
    pub state: ContainerState,
    /// json-file log of the container, when the log driver writes one.
    #[serde(default)]
    pub log_path: Option<std::path::PathBuf>,
}
