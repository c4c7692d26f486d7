//! Push-time gzip of the layers berth keeps uncompressed (commit, build, import, and the
//! tars of a `docker load`): each is compressed once, on every core (`gzip.rs`), into the
//! content store, and the mapping from the uncompressed blob to its gzip blob is kept in
//! `compressed-layers.json`, so a second push uploads the same blob without compressing
//! again. The pushed manifest is a copy of the stored one with those layers' descriptors
//! replaced, as dockerd does; the stored manifest, the config (whose DiffIDs describe the
//! uncompressed tars either way) and so the image id stay as they are. Layers that are
//! already compressed (pulled ones) are pushed as stored.

use std::collections::{BTreeMap, BTreeSet};

use berth_content::Expected;
use berth_image::blob::ingest_reference;
use berth_image::Descriptor;
use berth_oci::{media_type, Digest};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{gzip, lock, state, ImageError, Inner};

/// `compressed-layers.json`: uncompressed layer digest -> its gzip blob.
pub const COMPRESSED_LAYERS: &str = "compressed-layers.json";

/// Docker's media type of an uncompressed layer (docker save archives, schema 2).
const DOCKER_LAYER_UNCOMPRESSED: &str = "application/vnd.docker.image.rootfs.diff.tar";

/// A gzip blob made from an uncompressed layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompressedBlob {
    pub digest: Digest,
    pub size: u64,
}

pub type CompressedLayers = BTreeMap<String, CompressedBlob>;

/// What to push for an image: its manifest (maybe rewritten) and that manifest's layers.
#[derive(Debug, Clone)]
pub struct PushManifest {
    pub target: Descriptor,
    pub layers: Vec<Digest>,
}

fn is_uncompressed(media: &str) -> bool {
    media == media_type::OCI_LAYER || media == DOCKER_LAYER_UNCOMPRESSED
}

/// The gzip layer type that goes with a manifest's own type.
fn gzip_type(manifest_type: &str) -> &'static str {
    if manifest_type == media_type::DOCKER_MANIFEST {
        media_type::DOCKER_LAYER
    } else {
        media_type::OCI_LAYER_GZIP
    }
}

impl Inner {
    /// The manifest to push for an image whose record points at `target`: `target` itself
    /// when no layer is stored uncompressed (or it is an index, pushed as stored), else a
    /// rewritten manifest with gzip layers, stored in the content store.
    pub(super) fn manifest_for_push(
        &self,
        target: &Descriptor,
    ) -> Result<PushManifest, ImageError> {
        let bytes = self.content.read_to_vec(&target.digest)?;
        let broken = |reason: String| ImageError::Broken {
            image: target.digest.to_string(),
            reason,
        };
        let mut manifest: Value =
            serde_json::from_slice(&bytes).map_err(|e| broken(e.to_string()))?;
        let manifest_type = manifest["mediaType"]
            .as_str()
            .unwrap_or(&target.media_type)
            .to_string();
        let Some(layers) = manifest.get_mut("layers").and_then(Value::as_array_mut) else {
            return Ok(PushManifest {
                target: target.clone(),
                layers: Vec::new(),
            });
        };
        let mut changed = false;
        let mut digests = Vec::with_capacity(layers.len());
        for layer in layers.iter_mut() {
            let media = layer["mediaType"].as_str().unwrap_or_default().to_string();
            let digest = layer["digest"]
                .as_str()
                .and_then(|d| Digest::parse(d).ok())
                .ok_or_else(|| broken("a layer without a valid digest".into()))?;
            if !is_uncompressed(&media) {
                digests.push(digest);
                continue;
            }
            let blob = self.compressed_layer(&digest)?;
            layer["mediaType"] = Value::from(gzip_type(&manifest_type));
            layer["digest"] = Value::from(blob.digest.to_string());
            layer["size"] = Value::from(blob.size);
            digests.push(blob.digest);
            changed = true;
        }
        if !changed {
            return Ok(PushManifest {
                target: target.clone(),
                layers: digests,
            });
        }
        let rewritten = serde_json::to_vec_pretty(&manifest).map_err(|e| broken(e.to_string()))?;
        let committed = berth_image::blob::put(&self.content, &rewritten)?;
        Ok(PushManifest {
            target: Descriptor::new(&target.media_type, committed.digest, committed.size),
            layers: digests,
        })
    }

    /// The gzip blob of the uncompressed layer `digest`: the one made before when it is
    /// still in the store, else a new one.
    pub(super) fn compressed_layer(&self, digest: &Digest) -> Result<CompressedBlob, ImageError> {
        let known = lock(&self.compressed).get(&digest.to_string()).cloned();
        if let Some(blob) = known.filter(|b| self.content.contains(&b.digest)) {
            return Ok(blob);
        }
        let mut reader = self.content.reader(digest)?;
        let mut writer = self
            .content
            .writer(&ingest_reference("gzip"), Expected::none())?;
        let io_error = |source| ImageError::Io {
            op: "gzip",
            path: self.content.blob_path(digest),
            source,
        };
        let threads = gzip::default_threads();
        if let Err(e) = gzip::compress(&mut reader, &mut writer, gzip::DEFAULT_LEVEL, threads) {
            let _ = writer.abort();
            return Err(io_error(e));
        }
        let committed = writer.commit(Expected::none())?;
        let blob = CompressedBlob {
            digest: committed.digest,
            size: committed.size,
        };
        let mut map = lock(&self.compressed);
        map.insert(digest.to_string(), blob.clone());
        state::write_json(&self.dir.join(COMPRESSED_LAYERS), &*map)?;
        Ok(blob)
    }

    /// For garbage collection: the gzip blobs whose uncompressed layer is in `layers`
    /// (they stay); the mapping forgets the others (their blobs go).
    pub(super) fn compressed_roots(&self, layers: &BTreeSet<Digest>) -> Vec<Digest> {
        let mut map = lock(&self.compressed);
        let before = map.len();
        map.retain(|layer, _| Digest::parse(layer).is_ok_and(|d| layers.contains(&d)));
        if map.len() != before {
            let _ = state::write_json(&self.dir.join(COMPRESSED_LAYERS), &*map);
        }
        map.values().map(|b| b.digest.clone()).collect()
    }
}
