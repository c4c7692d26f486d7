//! `--squash` as moby's `ImageService.SquashImage` does it after a classic build: the
//! layers a build added on top of its base image are merged into one layer (applied in
//! order onto a snapshot of the base, then diffed, so a file deleted by a later step is
//! simply absent and a deleted base file becomes one whiteout), the config is kept, every
//! history entry after the base's is marked `empty_layer`, and one entry records the merge.

use std::path::Path;

use berth_image::{Descriptor, History};
use berth_oci::{media_type, Digest};
use berth_snapshot::apply::{apply_layer, ApplyOptions};

use crate::image::{oci_layer, ImageError, Inner};

impl Inner {
    /// Squashes `image` onto `parent` (empty: onto nothing). `key` is a writable snapshot
    /// on `parent`'s layers, mounted at `root`; its diff becomes the merged layer.
    pub(crate) fn build_squash(
        &self,
        image: &str,
        parent: &str,
        key: &str,
        root: &Path,
    ) -> Result<Digest, ImageError> {
        let parse = |s: &str| Digest::parse(s).map_err(|e| ImageError::reference(s, e.into()));
        let top = self.resolve_id(&parse(image)?)?;
        let base = if parent.is_empty() {
            None
        } else {
            Some(self.resolve_id(&parse(parent)?)?)
        };
        let base_diff_ids = base
            .as_ref()
            .map(|b| b.config.diff_ids().to_vec())
            .unwrap_or_default();
        let base_history = base.as_ref().map_or(0, |b| b.config.history.len());
        if top.config.diff_ids().get(..base_diff_ids.len()) != Some(&base_diff_ids[..])
            || top.manifest.layers.len() < base_diff_ids.len()
        {
            return Err(ImageError::Broken {
                image: image.to_string(),
                reason: format!("its layers do not start with those of {parent}"),
            });
        }
        for layer in &top.manifest.layers[base_diff_ids.len()..] {
            let reader = self.content.reader(&layer.digest)?;
            apply_layer(reader, root, &ApplyOptions::native()).map_err(|source| {
                ImageError::Unpack {
                    image: image.to_string(),
                    source: Box::new(berth_image::UnpackError::Apply {
                        layer: layer.digest.clone(),
                        source,
                    }),
                }
            })?;
        }
        // moby registers the merged layer even when it holds nothing.
        let merged = self
            .layer_blob(key, true)?
            .ok_or_else(|| ImageError::Broken {
                image: image.to_string(),
                reason: "the merged layer was not stored".into(),
            })?;
        let mut config = top.config.clone();
        if let Some(rootfs) = config.rootfs.as_mut() {
            rootfs.diff_ids = base_diff_ids;
            rootfs.diff_ids.push(merged.digest.clone());
        }
        for entry in config.history.iter_mut().skip(base_history) {
            entry.empty_layer = Some(true);
        }
        let created = berth_image::time::rfc3339_nano(std::time::SystemTime::now());
        let comment = if parent.is_empty() {
            format!("create new from {image}")
        } else {
            format!("merge {image} to {parent}")
        };
        config.history.push(History {
            created: Some(created.clone()),
            comment: Some(comment),
            ..History::default()
        });
        config.created = Some(created.clone());
        config.id = None;
        let mut layers: Vec<Descriptor> = base
            .as_ref()
            .map(|b| b.manifest.layers.iter().map(oci_layer).collect())
            .unwrap_or_default();
        layers.push(Descriptor::new(
            media_type::OCI_LAYER,
            merged.digest,
            merged.size,
        ));
        self.store_build_image(&config, layers, created, None)
    }
}
