//! What a push of an image whose layers berth keeps uncompressed (commit, build, import,
//! `docker load`) sends, and what it remembers afterwards. Each such layer is compressed
//! while it uploads (`push.rs`; gzip, or zstd where daemon.json's `push-compression` says
//! so), nothing is kept on disk but its compressed digest and size, per DiffID,
//! with the repositories known to hold that blob (`compressed-layers.json`, what dockerd's
//! distribution metadata keeps as `V2Metadata`): a later push to the same repository finds
//! the blob by HEAD, one to another repository of the same registry mounts it, and neither
//! compresses again. The pushed manifest is a copy of the stored one with those layers'
//! descriptors replaced, as dockerd does; the stored manifest, the config (whose DiffIDs
//! describe the uncompressed tars either way) and so the image id stay as they are. Layers
//! stored compressed (pulled ones) are pushed as stored. A zstd layer has no Docker schema 2
//! media type, so a manifest carrying one is pushed as an OCI manifest (what BuildKit's
//! `compression=zstd` forces too: `oci-mediatypes=true`).

use std::collections::{BTreeMap, BTreeSet};

use berth_image::Descriptor;
use berth_oci::{media_type, Digest};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{lock, state, ImageError, Inner};

/// `compressed-layers.json`: uncompressed layer digest (its DiffID) -> its compressed blob.
pub const COMPRESSED_LAYERS: &str = "compressed-layers.json";

/// Docker's media type of an uncompressed layer (docker save archives, schema 2).
const DOCKER_LAYER_UNCOMPRESSED: &str = "application/vnd.docker.image.rootfs.diff.tar";

/// Repositories of one registry tried as mount sources per layer (dockerd tries 3).
pub const MOUNT_CANDIDATES: usize = 3;

/// How a push compresses the layers berth keeps uncompressed (daemon.json
/// `push-compression`, berthd `--push-compression`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PushCompression {
    /// What dockerd pushes: every registry and Docker version pulls it.
    #[default]
    Gzip,
    /// `application/vnd.oci.image.layer.v1.tar+zstd` in an OCI manifest: less CPU per
    /// byte; pulled by berthd, containerd and BuildKit.
    Zstd,
}

impl PushCompression {
    /// The daemon.json / flag spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            PushCompression::Gzip => "gzip",
            PushCompression::Zstd => "zstd",
        }
    }

    /// The layer media type that goes with a manifest of type `manifest_type` (a zstd
    /// layer's manifest is always OCI, see [`PushPlan::manifest_bytes`]).
    fn layer_type(self, manifest_type: &str) -> &'static str {
        match self {
            PushCompression::Gzip if manifest_type == media_type::DOCKER_MANIFEST => {
                media_type::DOCKER_LAYER
            }
            PushCompression::Gzip => media_type::OCI_LAYER_GZIP,
            PushCompression::Zstd => media_type::OCI_LAYER_ZSTD,
        }
    }

    fn is_gzip(&self) -> bool {
        *self == PushCompression::Gzip
    }
}

impl std::str::FromStr for PushCompression {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "gzip" => Ok(PushCompression::Gzip),
            "zstd" => Ok(PushCompression::Zstd),
            _ => Err(format!(
                "invalid push-compression {text:?} (use \"gzip\" or \"zstd\")"
            )),
        }
    }
}

/// The compressed blob a push made of an uncompressed layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompressedBlob {
    pub digest: Digest,
    pub size: u64,
    /// Absent (gzip) in files written before zstd pushes existed.
    #[serde(default, skip_serializing_if = "PushCompression::is_gzip")]
    pub compression: PushCompression,
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
    /// An uncompressed layer (`layer`, `size` bytes): compressed while it uploads, unless
    /// `known` (an earlier push with the same compression) lets the registry find or
    /// mount it.
    Compress {
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

/// The manifest a push ends with.
#[derive(Debug, Clone)]
pub struct PushManifest {
    pub bytes: Vec<u8>,
    /// Whether it differs from the stored manifest (and must be stored too).
    pub changed: bool,
    pub media_type: String,
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

/// The OCI media type of a Docker schema 2 descriptor's (containerd's
/// ConvertDockerMediaTypeToOCI); others stay.
fn oci_type(media: &str) -> &str {
    match media {
        media_type::DOCKER_CONFIG => media_type::OCI_CONFIG,
        media_type::DOCKER_LAYER => media_type::OCI_LAYER_GZIP,
        media_type::DOCKER_LAYER_ZSTD => media_type::OCI_LAYER_ZSTD,
        media_type::DOCKER_FOREIGN_LAYER => media_type::OCI_LAYER_NONDISTRIBUTABLE_GZIP,
        DOCKER_LAYER_UNCOMPRESSED => media_type::OCI_LAYER,
        other => other,
    }
}

/// Rewrites a Docker schema 2 manifest's media types to OCI's (the digests stay).
fn into_oci(manifest: &mut Value) {
    manifest["mediaType"] = Value::from(media_type::OCI_MANIFEST);
    let mut descriptors: Vec<&mut Value> = Vec::new();
    if let Some(object) = manifest.as_object_mut() {
        for (key, value) in object.iter_mut() {
            match (key.as_str(), value) {
                ("config", config) => descriptors.push(config),
                ("layers", Value::Array(layers)) => descriptors.extend(layers.iter_mut()),
                _ => {}
            }
        }
    }
    for descriptor in descriptors {
        if let Some(media) = descriptor["mediaType"].as_str() {
            let oci = oci_type(media).to_string();
            descriptor["mediaType"] = Value::from(oci);
        }
    }
}

fn digest_field(value: &Value, field: &str) -> Option<Digest> {
    value[field].as_str().and_then(|d| Digest::parse(d).ok())
}

impl PushPlan {
    /// The manifest to push once every layer is in the registry: the stored one with the
    /// compressed layers' descriptors (`pushed[i]` for layer `i`) put in (and as an OCI
    /// manifest if one is zstd), and whether any was.
    pub fn manifest_bytes(
        &self,
        pushed: &[Option<CompressedBlob>],
    ) -> Result<PushManifest, serde_json::Error> {
        let mut manifest = self.manifest.clone();
        let mut manifest_type = self.manifest_type.clone();
        let zstd = pushed
            .iter()
            .flatten()
            .any(|b| b.compression == PushCompression::Zstd);
        if zstd && manifest_type == media_type::DOCKER_MANIFEST {
            into_oci(&mut manifest);
            manifest_type = media_type::OCI_MANIFEST.to_string();
        }
        let mut changed = false;
        if let Some(layers) = manifest.get_mut("layers").and_then(Value::as_array_mut) {
            for (layer, blob) in layers.iter_mut().zip(pushed) {
                let Some(blob) = blob else { continue };
                layer["mediaType"] = Value::from(blob.compression.layer_type(&manifest_type));
                layer["digest"] = Value::from(blob.digest.to_string());
                layer["size"] = Value::from(blob.size);
                changed = true;
            }
        }
        let bytes = match changed {
            true => serde_json::to_vec_pretty(&manifest)?,
            false => self.original.clone(),
        };
        Ok(PushManifest {
            bytes,
            changed,
            media_type: manifest_type,
        })
    }
}

impl Inner {
    /// The push plan for an image whose record points at `target`, its uncompressed layers
    /// to be sent as `compression`; `None` for an index (pushed as stored, with everything
    /// it references).
    pub(super) fn push_plan(
        &self,
        target: &Descriptor,
        compression: PushCompression,
    ) -> Result<Option<PushPlan>, ImageError> {
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
                LayerSource::Compress {
                    size: self.content.info(&digest)?.size,
                    layer: digest.clone(),
                    known: known
                        .get(&digest.to_string())
                        .filter(|b| b.compression == compression)
                        .cloned(),
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

    /// Remembers that `repository` (`host/path`) holds `blob`, the compressed `layer`.
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
            // New, or another digest for the same layer (another compression or level):
            // the new blob replaces it, with the repositories that hold it.
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
            compression: PushCompression::Gzip,
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

    fn plan(manifest: Value) -> PushPlan {
        PushPlan {
            original: serde_json::to_vec(&manifest).expect("json"),
            manifest_type: manifest["mediaType"].as_str().expect("type").to_string(),
            manifest,
            config: Digest::sha256_of(b"config"),
            layers: Vec::new(),
        }
    }

    fn blob(compression: PushCompression) -> CompressedBlob {
        CompressedBlob {
            digest: Digest::sha256_of(b"compressed"),
            size: 10,
            compression,
            repositories: BTreeSet::new(),
        }
    }

    fn docker_manifest() -> Value {
        let digest = |n: &str| Digest::sha256_of(n.as_bytes()).to_string();
        serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media_type::DOCKER_MANIFEST,
            "config": {"mediaType": media_type::DOCKER_CONFIG, "digest": digest("c"), "size": 6},
            "layers": [
                {"mediaType": media_type::DOCKER_LAYER, "digest": digest("pulled"), "size": 3},
                {"mediaType": DOCKER_LAYER_UNCOMPRESSED, "digest": digest("tar"), "size": 9},
            ],
        })
    }

    #[test]
    fn a_zstd_layer_makes_a_docker_manifest_oci_with_the_same_digests() {
        let plan = plan(docker_manifest());
        let pushed = plan
            .manifest_bytes(&[None, Some(blob(PushCompression::Zstd))])
            .expect("manifest");
        assert!(pushed.changed);
        assert_eq!(pushed.media_type, media_type::OCI_MANIFEST);
        let manifest: Value = serde_json::from_slice(&pushed.bytes).expect("json");
        assert_eq!(manifest["mediaType"], media_type::OCI_MANIFEST);
        assert_eq!(manifest["config"]["mediaType"], media_type::OCI_CONFIG);
        assert_eq!(
            manifest["config"]["digest"],
            docker_manifest()["config"]["digest"]
        );
        let layers = manifest["layers"].as_array().expect("layers");
        assert_eq!(layers[0]["mediaType"], media_type::OCI_LAYER_GZIP);
        assert_eq!(
            layers[0]["digest"],
            docker_manifest()["layers"][0]["digest"]
        );
        assert_eq!(layers[1]["mediaType"], media_type::OCI_LAYER_ZSTD);
        assert_eq!(
            layers[1]["digest"],
            blob(PushCompression::Zstd).digest.to_string()
        );
        assert_eq!(layers[1]["size"], 10);
    }

    #[test]
    fn a_gzip_layer_keeps_the_docker_manifest_and_its_types() {
        let plan = plan(docker_manifest());
        let pushed = plan
            .manifest_bytes(&[None, Some(blob(PushCompression::Gzip))])
            .expect("manifest");
        assert_eq!(pushed.media_type, media_type::DOCKER_MANIFEST);
        let manifest: Value = serde_json::from_slice(&pushed.bytes).expect("json");
        assert_eq!(manifest["config"]["mediaType"], media_type::DOCKER_CONFIG);
        assert_eq!(manifest["layers"][1]["mediaType"], media_type::DOCKER_LAYER);
        let unchanged = plan.manifest_bytes(&[None, None]).expect("manifest");
        assert!(!unchanged.changed);
        assert_eq!(
            unchanged.bytes, plan.original,
            "stored bytes pushed as they are"
        );
    }

    #[test]
    fn push_compression_parses_its_two_names_only() {
        assert_eq!("zstd".parse(), Ok(PushCompression::Zstd));
        assert_eq!("gzip".parse(), Ok(PushCompression::Gzip));
        let err = "xz".parse::<PushCompression>().expect_err("unknown");
        assert_eq!(
            err,
            r#"invalid push-compression "xz" (use "gzip" or "zstd")"#
        );
        let remembered = serde_json::to_string(&blob(PushCompression::Zstd)).expect("json");
        assert!(
            remembered.contains(r#""compression":"zstd""#),
            "{remembered}"
        );
        let gzip = serde_json::to_string(&blob(PushCompression::Gzip)).expect("json");
        assert!(!gzip.contains("compression"), "old files' shape: {gzip}");
    }
}
