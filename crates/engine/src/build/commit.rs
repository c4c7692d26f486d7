//! A build step's commit: the step's layer (a snapshot diff, omitted when empty) on top of
//! the parent image (or nothing for `scratch`) becomes a new untagged image whose config,
//! container_config, parent and history entry are what Docker's classic builder writes
//! (`image.NewChildImage`).

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};

use berth_build::{RunConfig, StepCommit};
use berth_content::Committed;
use berth_image::archive::ArchiveError;
use berth_image::blob::{put_deferred, put_stream_deferred};
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
    /// Commits `layer` (a snapshot key) for `commit`; returns the new image id. With
    /// `in_place` (the layer is unmounted and thrown away after the step), its snapshot
    /// itself becomes the new layer's ChainID snapshot where it can (see
    /// [`Inner::commit_layer_in_place`]).
    pub(crate) fn build_commit(
        &self,
        layer: Option<&str>,
        commit: &StepCommit,
        in_place: bool,
    ) -> Result<Digest, ImageError> {
        let parent = if commit.parent.is_empty() {
            None
        } else {
            let id = Digest::parse(&commit.parent)
                .map_err(|e| ImageError::reference(&commit.parent, e.into()))?;
            Some((id.clone(), self.resolve_id(&id)?))
        };
        let new_layer = match layer {
            Some(key) => self.layer_blob(key, false)?,
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
        let in_place = layer.filter(|_| in_place && new_layer.is_some());
        self.store_build_image(&config, layers, created, in_place)
    }

    /// Makes active snapshot `key` (unmounted, holding exactly the top layer of `config`)
    /// the committed snapshot of that layer's ChainID, instead of applying the layer blob
    /// just diffed from it into a fresh snapshot: that tree is the snapshot's own upper
    /// (berth-snapshot's `commit_in_place` checks and normalises it, or declines). The key
    /// then no longer exists, so the step's release finds nothing to remove. Best effort:
    /// whenever this does not happen, `ensure_unpacked` applies the blob as before. The
    /// snapshot's files are as durable as an applied layer's (neither is fsynced; the
    /// blob in the content store is the layer's durable copy).
    fn commit_layer_in_place(&self, config: &ImageConfig, key: &str) {
        let chain = config.chain_ids();
        let Some((top, below)) = chain.split_last() else {
            return;
        };
        let name = top.to_string();
        let _guard = self.unpack_lock.lock().unwrap_or_else(|p| p.into_inner());
        if self.snapshotter.stat(&name).is_ok() {
            return;
        }
        let Ok(info) = self.snapshotter.stat(key) else {
            return;
        };
        let parent = match below.last() {
            Some(id) => match self.snapshotter.stat(&id.to_string()) {
                Ok(parent) => Some(parent.id),
                Err(_) => return,
            },
            None => None,
        };
        if info.parent != parent {
            return;
        }
        // An error leaves the layer to `ensure_unpacked` (an I/O error there is reported).
        let _ = self.snapshotter.commit_in_place(&name, key);
    }

    /// Makes the deferred step images durable: one fsync of the blob directories, then one
    /// write of the image store's file with them.
    pub(crate) fn flush_build_images(&self) -> Result<(), ImageError> {
        self.images
            .flush_deferred(|| self.content.sync_blob_dirs())?
            .map_err(ImageError::from)
    }

    /// The diff of snapshot `key` stored as an uncompressed layer blob (its digest is its
    /// DiffID); `None` when the diff is empty, unless `keep_empty`. The diff streams
    /// through a pipe straight into the content store's ingest (which verifies and syncs
    /// it): the layer is written once, not first to a scratch tar and then copied.
    pub(super) fn layer_blob(
        &self,
        key: &str,
        keep_empty: bool,
    ) -> Result<Option<Committed>, ImageError> {
        let io = |op: &'static str| {
            move |source| ImageError::Io {
                op,
                path: key.into(),
                source,
            }
        };
        // rustix's pipe: std::io::pipe is newer than the workspace's MSRV.
        let (read_end, write_end) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
            .map_err(|e| io("pipe")(e.into()))?;
        let (mut reader, writer) = (fs::File::from(read_end), fs::File::from(write_end));
        std::thread::scope(|scope| {
            let differ = scope.spawn(move || {
                let out = std::io::BufWriter::with_capacity(256 * 1024, writer);
                let (mut out, summary) = self.snapshotter.diff(key, out)?;
                out.flush()
                    .map_err(|source| berth_snapshot::SnapshotError::Io {
                        operation: "writing the diff of",
                        path: key.into(),
                        source,
                    })?;
                Ok::<_, berth_snapshot::SnapshotError>(summary)
            });
            // A tar whose first block is zeros has no entries: an empty diff.
            let mut head = Vec::with_capacity(512);
            let read = (&mut reader).take(512).read_to_end(&mut head);
            let stored = match read {
                Err(e) => Err(io("read")(e)),
                Ok(_) if !keep_empty && head.iter().all(|b| *b == 0) => {
                    let _ = std::io::copy(&mut reader, &mut std::io::sink());
                    Ok(None)
                }
                Ok(_) => put_stream_deferred(
                    &self.content,
                    &mut head.as_slice().chain(&mut reader),
                    "build-layer",
                    berth_content::Expected::none(),
                )
                .map(Some)
                .map_err(|e| ImageError::from(ArchiveError::from(e))),
            };
            // A failed ingest closes the pipe, which ends the diff with an error too.
            drop(reader);
            let diffed = differ
                .join()
                .map_err(|_| ImageError::Broken {
                    image: key.to_string(),
                    reason: "the layer diff thread panicked".into(),
                })?
                .map_err(|source| ImageError::Snapshot {
                    container: key.to_string(),
                    source: Box::new(source),
                });
            // The diff's own error comes first: a diff cut short must never be stored as
            // the step's layer (what the ingest committed then is unreferenced garbage).
            diffed?;
            stored
        })
    }

    /// Stores a build image: its config, an OCI manifest over `layers`, the image record,
    /// and the unpacked snapshot chain later steps start from (its top layer taken from
    /// snapshot `in_place` when given and possible). The blobs' directory fsync and the
    /// record's write wait for [`Inner::flush_build_images`]: a step image is only cache
    /// until the build ends or tags it, and a crash before then loses it without leaving
    /// a record that names a blob the crash lost (the image store keeps deferred records
    /// out of its file; every blob's data is fsynced before its rename).
    pub(super) fn store_build_image(
        &self,
        config: &ImageConfig,
        layers: Vec<Descriptor>,
        created: String,
        in_place: Option<&str>,
    ) -> Result<Digest, ImageError> {
        let config_bytes = serde_json::to_vec(config).map_err(json_error("image config"))?;
        let config_blob = put_deferred(&self.content, &config_bytes)?;
        let manifest = oci_manifest(config_blob.digest.clone(), config_blob.size, layers);
        let manifest_bytes = serde_json::to_vec(&manifest).map_err(json_error("manifest"))?;
        let manifest_blob = put_deferred(&self.content, &manifest_bytes)?;
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
        self.images.put_deferred(record.clone());
        if let Some(key) = in_place {
            self.commit_layer_in_place(config, key);
        }
        self.ensure_unpacked(&record)?;
        Ok(record.id)
    }
}
