//! Typed progress of pulls and pushes, one event per state change of a layer, and their
//! rendering as Docker's JSON messages (`{"status","progressDetail","id"}`) for the engine.

use berth_oci::Digest;
use serde_json::{json, Value};

/// Where progress events go; the receiver side belongs to the engine or CLI.
pub type ProgressSender = tokio::sync::mpsc::UnboundedSender<Progress>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// The reference resolved to this manifest digest.
    Resolved {
        reference: String,
        digest: Digest,
    },
    /// The image manifest chosen for the platform and its config are in the store; its
    /// layers download next (an unpacker may start on them as each one completes).
    ImageManifest {
        digest: Digest,
        media_type: String,
        config: Digest,
    },
    Waiting {
        digest: Digest,
    },
    Downloading {
        digest: Digest,
        current: u64,
        total: Option<u64>,
    },
    Verifying {
        digest: Digest,
    },
    DownloadComplete {
        digest: Digest,
    },
    /// The blob was already in the local store (pull) or the registry (push).
    AlreadyExists {
        digest: Digest,
    },
    /// A transfer failed and will be retried (resuming where it stopped).
    Retrying {
        digest: Digest,
        attempt: u32,
    },
    Preparing {
        digest: Digest,
    },
    Pushing {
        digest: Digest,
        current: u64,
        total: u64,
    },
    Pushed {
        digest: Digest,
    },
    Mounted {
        digest: Digest,
        from: String,
    },
}

/// Docker's layer id: the first 12 hex digits.
fn layer_id(digest: &Digest) -> String {
    digest.hex().chars().take(12).collect()
}

impl Progress {
    /// The event as Docker's `jsonmessage.JSONMessage`.
    pub fn docker_json(&self) -> Value {
        let detail = |current: u64, total: Option<u64>| match total {
            Some(total) => json!({"current": current, "total": total}),
            None => json!({"current": current}),
        };
        match self {
            Progress::Resolved { reference, digest } => {
                json!({"status": format!("Digest: {digest}"), "id": reference})
            }
            Progress::ImageManifest { digest, .. } => {
                json!({"status": "Resolved", "progressDetail": {}, "id": layer_id(digest)})
            }
            Progress::Waiting { digest } => {
                json!({"status": "Waiting", "progressDetail": {}, "id": layer_id(digest)})
            }
            Progress::Downloading {
                digest,
                current,
                total,
            } => json!({
                "status": "Downloading", "progressDetail": detail(*current, *total), "id": layer_id(digest)
            }),
            Progress::Verifying { digest } => {
                json!({"status": "Verifying Checksum", "progressDetail": {}, "id": layer_id(digest)})
            }
            Progress::DownloadComplete { digest } => {
                json!({"status": "Download complete", "progressDetail": {}, "id": layer_id(digest)})
            }
            Progress::AlreadyExists { digest } => {
                json!({"status": "Already exists", "progressDetail": {}, "id": layer_id(digest)})
            }
            Progress::Retrying { digest, attempt } => json!({
                "status": format!("Retrying in {attempt} second{}", if *attempt == 1 { "" } else { "s" }),
                "progressDetail": {}, "id": layer_id(digest)
            }),
            Progress::Preparing { digest } => {
                json!({"status": "Preparing", "progressDetail": {}, "id": layer_id(digest)})
            }
            Progress::Pushing {
                digest,
                current,
                total,
            } => json!({
                "status": "Pushing", "progressDetail": detail(*current, Some(*total)), "id": layer_id(digest)
            }),
            Progress::Pushed { digest } => {
                json!({"status": "Pushed", "progressDetail": {}, "id": layer_id(digest)})
            }
            Progress::Mounted { digest, from } => json!({
                "status": format!("Mounted from {from}"), "progressDetail": {}, "id": layer_id(digest)
            }),
        }
    }
}

/// Sends an event if anyone listens; a closed receiver is not an error for the transfer.
pub(crate) fn emit(sender: Option<&ProgressSender>, event: Progress) {
    if let Some(sender) = sender {
        let _ = sender.send(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_render_as_docker_json_messages() {
        let digest = Digest::sha256_of(b"layer");
        let event = Progress::Downloading {
            digest: digest.clone(),
            current: 5,
            total: Some(10),
        };
        assert_eq!(
            event.docker_json(),
            json!({"status": "Downloading", "progressDetail": {"current": 5, "total": 10}, "id": &digest.hex()[..12]})
        );
        assert_eq!(
            Progress::Pushed { digest }.docker_json()["status"],
            "Pushed"
        );
    }
}
