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
    /// `State.Health` of a container with a healthcheck (see `container::health`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<super::health::HealthState>,
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
    /// `os` of the image (`linux`), inspect's `Platform`.
    #[serde(default)]
    pub platform: String,
    /// Image reference as the user gave it, before defaulting (`busybox`).
    #[serde(default)]
    pub image_name: String,
    /// Volumes and `--volumes-from` mounts resolved at create (Docker's `MountPoints`);
    /// the volume service rebuilds its reference counts from these.
    #[serde(default)]
    pub mount_points: Vec<crate::volume::MountPoint>,
}

/// File name of the record inside the container directory.
pub const RECORD_FILE: &str = "container.json";

/// Failures reading or writing a record.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("reading container record {path}")]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("decoding container record {path}")]
    Decode {
        path: std::path::PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("writing container record {path}")]
    Write {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ContainerRecord {
    /// Reads `<dir>/container.json`.
    pub fn load(dir: &std::path::Path) -> Result<ContainerRecord, RecordError> {
        let path = dir.join(RECORD_FILE);
        let bytes = std::fs::read(&path).map_err(|source| RecordError::Read {
            path: path.clone(),
            source,
        })?;
        serde_json::from_slice(&bytes).map_err(|source| RecordError::Decode { path, source })
    }

    /// Writes `<dir>/container.json` atomically: temp file, fsync, rename, so a crash leaves
    /// either the old or the new record, never half of one.
    ///
    /// An `--rm` container's record is not fsynced: it only matters while the container
    /// exists, and that ends with its process, which no host crash leaves alive (Docker
    /// removes auto-remove containers at its next start too). A berthd crash keeps the page
    /// cache, so restore still finds every record; after a host crash the record may be
    /// missing or unreadable, and restore skips it. This keeps two fsyncs off every
    /// `docker run --rm`.
    pub fn save(&self, dir: &std::path::Path) -> Result<(), RecordError> {
        use std::io::Write;
        let path = dir.join(RECORD_FILE);
        let temp = dir.join(format!(".{RECORD_FILE}.tmp"));
        let write_error = |source| RecordError::Write {
            path: path.clone(),
            source,
        };
        let bytes = serde_json::to_vec(self).map_err(|e| write_error(std::io::Error::other(e)))?;
        let mut file = std::fs::File::create(&temp).map_err(write_error)?;
        file.write_all(&bytes).map_err(write_error)?;
        if !self.host_config.auto_remove {
            file.sync_all().map_err(write_error)?;
        }
        drop(file);
        std::fs::rename(&temp, &path).map_err(write_error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips_through_an_atomic_write() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut record = ContainerRecord {
            id: "a".repeat(64),
            name: "/web".into(),
            path: "echo".into(),
            args: vec!["hi".into()],
            ..ContainerRecord::default()
        };
        record.state.status = Status::Exited;
        record.state.exit_code = 3;
        record.save(dir.path()).expect("save");
        assert_eq!(ContainerRecord::load(dir.path()).expect("load"), record);
        record.state.exit_code = 4;
        record.save(dir.path()).expect("save again");
        assert_eq!(
            ContainerRecord::load(dir.path())
                .expect("load")
                .state
                .exit_code,
            4
        );
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(
            names,
            vec![std::ffi::OsString::from(RECORD_FILE)],
            "no temp file left"
        );
    }

    #[test]
    fn a_corrupt_record_is_an_error_not_a_default() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(RECORD_FILE), b"{\"id\":").expect("write");
        assert!(matches!(
            ContainerRecord::load(dir.path()),
            Err(RecordError::Decode { .. })
        ));
    }
}
