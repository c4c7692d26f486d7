//! What a push of an image whose layers berth keeps uncompressed (commit, build, import,
//! `docker load`) sends, and what it remembers afterwards. Each such layer is gzipped while
//! it uploads (`push.rs`), nothing is kept on disk but its gzip digest and size, per DiffID,
//! with the repositories known to hold that blob (`compressed-layers.json`, what dockerd's
//! distribution metadata keeps as `V2Metadata`): a later push to the same repository finds
//! the blob by HEAD, one to another repository of the same registry mounts it, and neither
//! compresses again. The pushed manifest is a copy of the stored one with those layers'
//! descriptors replaced, as dockerd does; the stored manifest, the config (whose DiffIDs
//! describe the uncompressed tars either way) and so the image id stay as they are. Layers
//! stored compressed (pulled ones) are pushed as stored.

use std::collections::{BTreeMap, BTreeSet};

use berth_image::Descriptor;
use berth_oci::{media_type, Digest};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{lock, state, ImageError, Inner};

/// `compressed-layers.json`: uncompressed layer digest (its DiffID) -> its gzip blob.
pub const COMPRESSED_LAYERS: &str = "compressed-layers.json";

/// Docker's media type of an uncompressed layer (docker save archives, schema 2).
const DOCKER_LAYER_UNCOMPRESSED: &str = "application/vnd.docker.image.rootfs.diff.tar";

/// Repositories of one registry tried as mount sources per layer (dockerd tries 3).
pub const MOUNT_CANDIDATES: usize = 3;

/// The gzip blob a push made of an uncompressed layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompressedBlob {
    pub digest: Digest,
    pub size: u64,
    /// Repositories (`host/path`) this blob was pushed to or found in.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub repositories: BTreeSet<String>,
}

impl CompressedBlob {
    /// Paths of repositories on `host`, other than `path`, to mount the blob from.
    pub fn mount_sources(&self, host: &str, path: &str) -> Vec<String> {
        self.repositories
            .iter()
            .filter_map(|r| r.strip_prefix(host)?.strip_prefix('/'))
            .filter(|p| *p != path)
            .take(MOUNT_CANDIDATES)
            .map(str::to_string)
            .collect()
    }
}

pub type CompressedLayers = BTreeMap<String, CompressedBlob>;

/// Where the bytes of one pushed layer come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerSource {
    /// A blob pushed as stored: compressed already, or a gzip blob an older berth kept.
    Stored { digest: Digest },
    /// An uncompressed layer (`layer`, `size` bytes): gzipped while it uploads, unless
    /// `known` (an earlier push) lets the registry find or mount it.
    Gzip {
        layer: Digest,
        size: u64,
        known: Option<CompressedBlob>,
    },
}

/// One layer of the manifest being pushed.
#[derive(Debug, Clone)]
pub struct PushLayer {
    /// Docker shows push progress under the layer's DiffID.
    pub diff_id: Digest,
    pub source: LayerSource,
}

/// A single-platform image manifest to push, layer by layer.
#[derive(Debug, Clone)]
pub struct PushPlan {
    /// The stored manifest's bytes, pushed as they are when no layer is gzipped.
    original: Vec<u8>,
    manifest: Value,
    manifest_type: String,
    pub config: Digest,
    pub layers: Vec<PushLayer>,
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

fn digest_field(value: &Value, field: &str) -> Option<Digest> {
    value[field].as_str().and_then(|d| Digest::parse(d).ok())
}

impl PushPlan {
    /// The manifest's media type.
    pub fn manifest_type(&self) -> &str {
        &self.manifest_type
    }

    /// The manifest to push once every layer is in the registry: the stored one with the
    /// gzipped layers' descriptors (`pushed[i]` for layer `i`) put in, and whether any was.
    pub fn manifest_bytes(
        &self,
        pushed: &[Option<CompressedBlob>],
    ) -> Result<(Vec<u8>, bool), serde_json::Error> {
        let mut manifest = self.manifest.clone();
        let mut changed = false;
        if let Some(layers) = manifest.get_mut("layers").and_then(Value::as_array_mut) {
            for (layer, blob) in layers.iter_mut().zip(pushed) {
                let Some(blob) = blob else { continue };
                layer["mediaType"] = Value::from(gzip_type(&self.manifest_type));
                layer["digest"] = Value::from(blob.digest.to_string());
                layer["size"] = Value::from(blob.size);
                changed = true;
            }
        }
        if !changed {
            return Ok((self.original.clone(), false));
        }
        Ok((serde_json::to_vec_pretty(&manifest)?, true))
    }
}

impl Inner {
    /// The push plan for an image whose record points at `target`; `None` for an index
    /// (pushed as stored, with everything it references).
    pub(super) fn push_plan(&self, target: &Descriptor) -> Result<Option<PushPlan>, ImageError> {
        let bytes = self.content.read_to_vec(&target.digest)?;
        let broken = |reason: String| ImageError::Broken {
            image: target.digest.to_string(),
            reason,
        };
        let manifest: Value = serde_json::from_slice(&bytes).map_err(|e| broken(e.to_string()))?;
        let manifest_type = manifest["mediaType"]
            .as_str()
            .unwrap_or(&target.media_type)
            .to_string();
        let (Some(layers), Some(config)) = (
            manifest.get("layers").and_then(Value::as_array),
            manifest
                .get("config")
                .and_then(|c| digest_field(c, "digest")),
        ) else {
            return Ok(None);
        };
        let config_bytes = self.content.read_to_vec(&config)?;
        let diff_ids = berth_image::ImageConfig::parse(&config_bytes)
            .map(|c| c.diff_ids().to_vec())
            .unwrap_or_default();
        let known = lock(&self.compressed).clone();
        let mut planned = Vec::with_capacity(layers.len());
        for (n, layer) in layers.iter().enumerate() {
            let digest = digest_field(layer, "digest")
                .ok_or_else(|| broken("a layer without a valid digest".into()))?;
            let media = layer["mediaType"].as_str().unwrap_or_default();
            let source = if is_uncompressed(media) {
                LayerSource::Gzip {
                    size: self.content.info(&digest)?.size,
                    layer: digest.clone(),
                    known: known.get(&digest.to_string()).cloned(),
                }
            } else {
                LayerSource::Stored {
                    digest: digest.clone(),
                }
            };
            planned.push(PushLayer {
                diff_id: diff_ids.get(n).cloned().unwrap_or(digest),
                source,
            });
        }
        Ok(Some(PushPlan {
            original: bytes,
            manifest,
            manifest_type,
            config,
            layers: planned,
        }))
    }

    /// Remembers that `repository` (`host/path`) holds `blob`, the gzip of `layer`.
    pub(super) fn remember_compressed(
        &self,
        layer: &Digest,
        blob: &CompressedBlob,
        repository: &str,
    ) -> Result<(), ImageError> {
        let mut map = lock(&self.compressed);
        let key = layer.to_string();
        let changed = match map.get_mut(&key) {
            Some(old) if old.digest == blob.digest => old.repositories.insert(repository.into()),
            // New, or another digest for the same layer (another compression level): the
            // new blob replaces it, with the repositories that hold it.
            _ => {
                let mut new = blob.clone();
                new.repositories.insert(repository.into());
                map.insert(key, new);
                true
            }
        };
        if !changed {
            return Ok(());
        }
        state::write_json(&self.dir.join(COMPRESSED_LAYERS), &*map)
    }

    /// For garbage collection: the gzip blobs (kept by older versions) whose uncompressed
    /// layer is in `layers` stay; the mapping forgets the other layers.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_sources_are_other_repositories_of_the_same_registry() {
        let blob = CompressedBlob {
            digest: Digest::sha256_of(b"gz"),
            size: 2,
            repositories: [
                "127.0.0.1:5000/a",
                "127.0.0.1:5000/b/c",
                "127.0.0.1:50001/d",
                "other.io/e",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
        };
        assert_eq!(
            blob.mount_sources("127.0.0.1:5000", "a"),
            vec!["b/c".to_string()]
        );
        assert_eq!(blob.mount_sources("other.io", "x"), vec!["e".to_string()]);
        assert!(blob.mount_sources("none.io", "x").is_empty());
    }

    #[test]
    fn an_entry_without_repositories_reads_as_before() {
        let digest = Digest::sha256_of(b"gz");
        let old = format!(
            r#"{{"sha256:{}":{{"digest":"{digest}","size":5}}}}"#,
            "a".repeat(64)
        );
        let map: CompressedLayers = serde_json::from_str(&old).expect("old file parses");
        let blob = map.values().next().expect("entry");
        assert_eq!(blob.digest, digest);
        assert!(blob.repositories.is_empty());
    }
}
