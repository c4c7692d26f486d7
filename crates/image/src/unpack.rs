//! Unpacking an image: each layer applied onto its parent's snapshot and committed under
//! its ChainID, so that images sharing a base share its snapshots; DiffIDs checked against
//! the config's `rootfs.diff_ids` before a snapshot is committed.

use berth_content::{ContentError, Store};
use berth_oci::Digest;
use berth_snapshot::{apply_layer_parallel, ApplyError, SnapshotError, Snapshotter};
use thiserror::Error;

use crate::blob::ingest_reference;
use crate::config::ImageConfig;
use crate::manifest::Manifest;

/// Why an image could not be unpacked.
#[derive(Debug, Error)]
pub enum UnpackError {
    #[error("image has {layers} layers but its config lists {diff_ids} diff ids")]
    LayerCount { layers: usize, diff_ids: usize },
    #[error("layer {layer} has diff id {actual}, but the image config says {expected}")]
    DiffIdMismatch {
        layer: Digest,
        expected: Digest,
        actual: String,
    },
    #[error("opening layer {layer}")]
    Content {
        layer: Digest,
        #[source]
        source: ContentError,
    },
    #[error("applying layer {layer}")]
    Apply {
        layer: Digest,
        #[source]
        source: ApplyError,
    },
    #[error("snapshot for layer {layer}")]
    Snapshot {
        layer: Digest,
        #[source]
        source: SnapshotError,
    },
}

/// Applies `manifest`'s layers (blobs in `store`) in order onto snapshots named by ChainID
/// and returns the top ChainID (`None` for an image without layers). Layers whose ChainID
/// is already committed are skipped.
pub fn unpack(
    store: &Store,
    snapshotter: &Snapshotter,
    manifest: &Manifest,
    config: &ImageConfig,
) -> Result<Option<Digest>, UnpackError> {
    let diff_ids = config.diff_ids();
    if diff_ids.len() != manifest.layers.len() {
        return Err(UnpackError::LayerCount {
            layers: manifest.layers.len(),
            diff_ids: diff_ids.len(),
        });
    }
    let chain_ids = config.chain_ids();
    let mut parent: Option<String> = None;
    for ((layer, diff_id), chain_id) in manifest.layers.iter().zip(diff_ids).zip(&chain_ids) {
        let name = chain_id.to_string();
        let snapshot_err = |source| UnpackError::Snapshot {
            layer: layer.digest.clone(),
            source,
        };
        match snapshotter.stat(&name) {
            Ok(_) => {
                parent = Some(name);
                continue;
            }
            Err(SnapshotError::NotFound { .. }) => {}
            Err(e) => return Err(snapshot_err(e)),
        }
        let key = ingest_reference(&format!("extract-{}", chain_id.hex()));
        snapshotter
            .prepare(&key, parent.as_deref())
            .map_err(snapshot_err)?;
        match apply_one(store, snapshotter, &key, layer.digest.clone(), diff_id) {
            Ok(()) => {}
            Err(e) => {
                // Best effort: a half-applied snapshot must not stay behind.
                let _ = snapshotter.remove(&key);
                return Err(e);
            }
        }
        match snapshotter.commit(&name, &key) {
            Ok(_) => {}
            // Another unpack of an image sharing this layer won the race: use its snapshot.
            Err(SnapshotError::AlreadyExists { .. }) => {
                let _ = snapshotter.remove(&key);
            }
            Err(e) => {
                let _ = snapshotter.remove(&key);
                return Err(snapshot_err(e));
            }
        }
        parent = Some(name);
    }
    Ok(chain_ids.last().cloned())
}

fn apply_one(
    store: &Store,
    snapshotter: &Snapshotter,
    key: &str,
    layer: Digest,
    diff_id: &Digest,
) -> Result<(), UnpackError> {
    let (target, _) = snapshotter
        .apply_target(key)
        .map_err(|source| UnpackError::Snapshot {
            layer: layer.clone(),
            source,
        })?;
    let reader = store
        .reader(&layer)
        .map_err(|source| UnpackError::Content {
            layer: layer.clone(),
            source,
        })?;
    let apply_err = |source| UnpackError::Apply {
        layer: layer.clone(),
        source,
    };
    // An uncompressed blob whose sha256 digest is the DiffID (every `docker load`ed,
    // imported or committed layer) was hashed by the store when it was committed: hashing
    // it again here would only re-prove that. A compressed blob with such a digest is
    // refused by the applier before it writes anything.
    if layer.algorithm() == berth_oci::Algorithm::Sha256 && &layer == diff_id {
        berth_snapshot::apply_verified_tar(reader, &target, &snapshotter.apply_options())
            .map_err(apply_err)?;
        return Ok(());
    }
    // Decompression on a second thread, overlapping with the file writes (as dockerd
    // pipes gzip layers through unpigz).
    let summary =
        apply_layer_parallel(reader, &target, &snapshotter.apply_options()).map_err(apply_err)?;
    let actual = summary.diff_id_string();
    if actual != diff_id.to_string() {
        return Err(UnpackError::DiffIdMismatch {
            layer,
            expected: diff_id.clone(),
            actual,
        });
    }
    Ok(())
}

#[cfg(test)]
#[path = "unpack_tests.rs"]
mod tests;
