//! A build step's commit: the step's layer (a snapshot diff, omitted when empty) on top of
//! the parent image (or nothing for `scratch`) becomes a new untagged image whose config,
//! container_config, parent and history entry are what Docker's classic builder writes
//! (`image.NewChildImage`).

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;

use berth_build::{RunConfig, StepCommit};
use berth_content::Committed;
use berth_image::archive::ArchiveError;
use berth_image::blob::{put, put_stream};
use berth_image::{ContainerConfig, Descriptor, History, ImageConfig, ImageRecord};
use berth_oci::{media_type, Digest};

use crate::image::{oci_layer, oci_manifest, ImageError, Inner};

pub(super) fn to_container_config(config: &RunConfig) -> Result<ContainerConfig, ImageError> {
    serde_json::to_value(config)
        .and_then(serde_json::from_value)
        .map_err(|source| {
            ImageError::from(ArchiveError::Json {
                file: "build config".into(),
                source,
            })
        })
}

fn json_error(file: &str) -> impl FnOnce(serde_json::Error) -> ImageError + '_ {
    move |source| {
        ImageError::from(ArchiveError::Json {
            file: file.into(),
            source,
        })
    }
}

/// The base of a `FROM scratch` stage's first commit.
pub(super) fn scratch_config() -> ImageConfig {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    ImageConfig {
        architecture: arch.to_string(),
        os: "linux".to_string(),
        rootfs: Some(berth_image::config::RootFs {
            kind: "layers".into(),
            diff_ids: Vec::new(),
            extra: BTreeMap::new(),
        }),
        ..ImageConfig::default()
    }
}

impl Inner {
    /// Commits `layer` (a snapshot key) for `commit`; returns the new image id.
    pub(crate) fn build_commit(
        &self,
        layer: Option<&str>,
        commit: &StepCommit,
        scratch_dir: &std::path::Path,
    ) -> Result<Digest, ImageError> {
        let parent = if commit.parent.is_empty() {
            None
        } else {
            let id = Digest::parse(&commit.parent)
                .map_err(|e| ImageError::reference(&commit.parent, e.into()))?;
            Some((id.clone(), self.resolve_id(&id)?))
        };
        let new_layer = match layer {
            Some(key) => self.layer_blob(key, scratch_dir, false)?,
            None => None,
        };
        let mut config = match &parent {
            Some((_, resolved)) => resolved.config.clone(),
            None => scratch_config(),
        };
        let created = berth_image::time::rfc3339_nano(std::time::SystemTime::now());
        config.config = Some(to_container_config(&commit.config)?);
        config.container_config = Some(to_container_config(&commit.container_config)?);
        config.container = Some(commit.container.clone()).filter(|c| !c.is_empty());
        config.created = Some(created.clone());
        config.parent = parent.as_ref().map(|(id, _)| id.to_string());
        config.author = Some(commit.author.clone()).filter(|a| !a.is_empty());
        config.comment = None;
        config.id = None;
        config.history.push(History {
            created: Some(created.clone()),
            author: Some(commit.author.clone()).filter(|a| !a.is_empty()),
            created_by: Some(commit.created_by()),
            empty_layer: new_layer.is_none().then_some(true),
            ..History::default()
        });
        let mut layers: Vec<Descriptor> = parent
            .as_ref()
            .map(|(_, r)| r.manifest.layers.iter().map(oci_layer).collect())
            .unwrap_or_default();
        if let Some(layer) = &new_layer {
            if let Some(rootfs) = config.rootfs.as_mut() {
                // The diff is an uncompressed tar: its digest is its DiffID.
                rootfs.diff_ids.push(layer.digest.clone());
            }
            layers.push(Descriptor::new(
                media_type::OCI_LAYER,
                layer.digest.clone(),
                layer.size,
            ));
        }
        self.store_build_image(&config, layers, created)
    }

    /// The diff of snapshot `key` stored as an uncompressed layer blob (its digest is its
    /// DiffID); `None` when the diff is empty, unless `keep_empty`.
    pub(super) fn layer_blob(
        &self,
        key: &str,
        scratch_dir: &std::path::Path,
        keep_empty: bool,
    ) -> Result<Option<Committed>, ImageError> {
        let scratch = scratch_dir.join(format!("{key}.tar"));
        let io = |op: &'static str| {
            let path = scratch.clone();
            move |source| ImageError::Io { op, path, source }
        };
        let file = fs::File::create(&scratch).map_err(io("create"))?;
        let result = self
            .snapshotter
            .diff(key, file)
            .map_err(|source| ImageError::Snapshot {
                container: key.to_string(),
                source: Box::new(source),
            })
            .and_then(|(mut file, summary)| {
                file.flush().map_err(io("write"))?;
                drop(file);
                if summary.entries == 0 && !keep_empty {
                    return Ok(None);
                }
                let mut input = fs::File::open(&scratch).map_err(io("open"))?;
                put_stream(
                    &self.content,
                    &mut input,
                    "build-layer",
                    berth_content::Expected::none(),
                )
                .map(Some)
                .map_err(|e| ImageError::from(ArchiveError::from(e)))
            });
        let _ = fs::remove_file(&scratch);
        result
    }

    /// Stores a build image: its config, an OCI manifest over `layers`, the image record,
    /// and the unpacked snapshot chain later steps start from.
    pub(super) fn store_build_image(
        &self,
        config: &ImageConfig,
        layers: Vec<Descriptor>,
        created: String,
    ) -> Result<Digest, ImageError> {
        let config_bytes = serde_json::to_vec(config).map_err(json_error("image config"))?;
        let config_blob = put(&self.content, &config_bytes)?;
        let manifest = oci_manifest(config_blob.digest.clone(), config_blob.size, layers);
        let manifest_bytes = serde_json::to_vec(&manifest).map_err(json_error("manifest"))?;
        let manifest_blob = put(&self.content, &manifest_bytes)?;
        let record = ImageRecord {
            id: config_blob.digest.clone(),
            target: Descriptor::new(
                media_type::OCI_MANIFEST,
                manifest_blob.digest,
                manifest_blob.size,
            ),
            created,
            labels: BTreeMap::new(),
        };
        self.images.put(record.clone())?;
        self.ensure_unpacked(&record)?;
        Ok(record.id)
    }
}
