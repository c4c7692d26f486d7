//! `docker commit`: a container's writable layer (the snapshot diff, as a reproducible
//! uncompressed tar) on top of its image's layers becomes a new image, with Docker's
//! config, history entry and parent; and `docker export`'s flattened tar of a mounted
//! root filesystem.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::PathBuf;

use berth_image::archive::{apply_changes, ArchiveError};
use berth_image::blob::{put, put_stream};
use berth_image::{ContainerConfig, Descriptor, History, ImageRecord, Manifest};
use berth_oci::{media_type, Digest, Reference};

use super::archive::import_reference;
use super::{ImageError, ImageService, Inner};

/// What `POST /commit` asks for, with the container's side already looked up.
#[derive(Debug, Clone, Default)]
pub struct CommitRequest {
    pub container_id: String,
    /// The image the container runs.
    pub image_id: String,
    /// The new image's config (the container's, merged with the request's).
    pub config: ContainerConfig,
    pub changes: Vec<String>,
    pub repo: String,
    pub tag: String,
    pub comment: String,
    pub author: String,
    /// The container's command, as Docker records it in the history entry.
    pub created_by: String,
}

/// A parent's layer in a committed OCI manifest: Docker schema 2 layer types become their
/// OCI equivalents (commits and build steps).
pub(crate) fn oci_layer(layer: &Descriptor) -> Descriptor {
    let mut layer = layer.clone();
    layer.media_type = oci_layer_type(&layer.media_type);
    layer
}

fn oci_layer_type(media: &str) -> String {
    match media {
        media_type::DOCKER_LAYER => media_type::OCI_LAYER_GZIP.to_string(),
        media_type::DOCKER_LAYER_ZSTD => media_type::OCI_LAYER_ZSTD.to_string(),
        other => other.to_string(),
    }
}

/// The OCI manifest of a committed image: its config blob and its layers.
pub(crate) fn oci_manifest(config: Digest, config_size: u64, layers: Vec<Descriptor>) -> Manifest {
    Manifest {
        schema_version: 2,
        media_type: Some(media_type::OCI_MANIFEST.into()),
        artifact_type: None,
        config: Descriptor::new(media_type::OCI_CONFIG, config, config_size),
        layers,
        subject: None,
        annotations: BTreeMap::new(),
    }
}

impl Inner {
    fn commit(
        &self,
        request: &CommitRequest,
        reference: Option<&Reference>,
    ) -> Result<Digest, ImageError> {
        let parent_id = Digest::parse(&request.image_id)
            .map_err(|e| ImageError::reference(&request.image_id, e.into()))?;
        let parent = self.resolve_id(&parent_id)?;
        let scratch = self
            .dir
            .join(format!("commit-{}.tar", request.container_id));
        let io = |op: &'static str, path: &PathBuf| {
            let path = path.clone();
            move |source| ImageError::Io { op, path, source }
        };
        let file = fs::File::create(&scratch).map_err(io("create", &scratch))?;
        let written = self
            .snapshotter
            .diff(&request.container_id, file)
            .map_err(|source| ImageError::Snapshot {
                container: request.container_id.clone(),
                source: Box::new(source),
            })
            .and_then(|(mut file, _)| file.flush().map_err(io("write", &scratch)));
        let layer = written.and_then(|()| {
            let mut input = fs::File::open(&scratch).map_err(io("open", &scratch))?;
            put_stream(
                &self.content,
                &mut input,
                "commit-layer",
                berth_content::Expected::none(),
            )
            .map_err(|e| ImageError::from(ArchiveError::from(e)))
        });
        let _ = fs::remove_file(&scratch);
        let layer = layer?;
        let mut config = parent.config.clone();
        let mut container_config = request.config.clone();
        apply_changes(&mut container_config, &request.changes).map_err(ArchiveError::from)?;
        let created = berth_image::time::rfc3339_nano(std::time::SystemTime::now());
        config.config = Some(container_config);
        config.created = Some(created.clone());
        config.container = Some(request.container_id.clone());
        config.parent = Some(parent_id.to_string());
        config.comment = Some(request.comment.clone()).filter(|c| !c.is_empty());
        config.author = Some(request.author.clone()).filter(|a| !a.is_empty());
        config.id = None;
        config.history.push(History {
            created: Some(created.clone()),
            author: Some(request.author.clone()).filter(|a| !a.is_empty()),
            created_by: Some(request.created_by.clone()),
            comment: Some(request.comment.clone()).filter(|c| !c.is_empty()),
            ..History::default()
        });
        if let Some(rootfs) = config.rootfs.as_mut() {
            // The diff is an uncompressed tar: its digest is its DiffID.
            rootfs.diff_ids.push(layer.digest.clone());
        }
        let config_bytes = serde_json::to_vec(&config).map_err(|source| ArchiveError::Json {
            file: "image config".into(),
            source,
        })?;
        let config_blob = put(&self.content, &config_bytes)?;
        let mut layers: Vec<Descriptor> = parent.manifest.layers.iter().map(oci_layer).collect();
        layers.push(Descriptor::new(
            media_type::OCI_LAYER,
            layer.digest.clone(),
            layer.size,
        ));
        let manifest = oci_manifest(config_blob.digest.clone(), config_blob.size, layers);
        let manifest_bytes =
            serde_json::to_vec(&manifest).map_err(|source| ArchiveError::Json {
                file: "manifest".into(),
                source,
            })?;
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
        if let Some(reference) = reference {
            self.images.tag(&record.id, reference)?;
            self.touch_tag(reference);
        }
        self.ensure_unpacked(&record)?;
        Ok(record.id)
    }
}

impl ImageService {
    /// `docker commit`: returns the new image's id.
    pub async fn commit(&self, request: CommitRequest) -> Result<Digest, ImageError> {
        let reference = import_reference(&request.repo, &request.tag)?;
        let _in_flight = self.gc_gate.read().await;
        self.blocking(move |inner| inner.commit(&request, reference.as_ref()))
            .await
    }

    /// `docker export`: the flattened tar of a mounted root filesystem at `rootfs`.
    pub async fn export(
        &self,
        rootfs: PathBuf,
        out: Box<dyn Write + Send>,
    ) -> Result<(), ImageError> {
        self.blocking(move |_| {
            let (mut out, _) =
                berth_snapshot::tar_tree(&rootfs, out).map_err(|e| ImageError::Io {
                    op: "export",
                    path: rootfs.clone(),
                    source: std::io::Error::other(e),
                })?;
            out.flush().map_err(|source| ImageError::Io {
                op: "export",
                path: rootfs.clone(),
                source,
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_layer_types_become_oci_types() {
        assert_eq!(
            oci_layer_type(media_type::DOCKER_LAYER),
            media_type::OCI_LAYER_GZIP
        );
        assert_eq!(oci_layer_type(media_type::OCI_LAYER), media_type::OCI_LAYER);
    }
}
