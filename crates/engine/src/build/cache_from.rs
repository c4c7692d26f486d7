//! `--cache-from` as Docker's classic builder does it (moby's `image/cache.ImageCache`): a
//! source image offers a step when its history and layers begin with exactly the parent's
//! and its next history entry was made by the same command (`created_by`). The source
//! itself is the result when that entry is its last; otherwise an image is restored from
//! the parent plus the source's entry and layer, so later steps can match further.

use berth_build::RunConfig;
use berth_image::{Descriptor, ImageConfig};
use berth_oci::Digest;

use super::commit::{scratch_config, to_container_config};
use crate::image::{oci_layer, ImageError, Inner};

/// moby's `isValidParent`: `target`'s history and layers start with `parent`'s.
fn continues(target: &ImageConfig, parent: Option<&ImageConfig>) -> bool {
    if target.history.is_empty() {
        return false;
    }
    let Some(parent) = parent else {
        return true;
    };
    if parent.history.is_empty() && parent.diff_ids().is_empty() {
        return true;
    }
    parent.history.len() < target.history.len()
        && parent.diff_ids().len() <= target.diff_ids().len()
        && parent.history == target.history[..parent.history.len()]
        && parent.diff_ids() == &target.diff_ids()[..parent.diff_ids().len()]
}

impl Inner {
    /// The image `sources` offer for the step `created_by` on `parent` (empty: scratch).
    pub(crate) fn build_cache_from(
        &self,
        sources: &[Digest],
        parent: &str,
        created_by: &str,
        config: &RunConfig,
    ) -> Result<Option<Digest>, ImageError> {
        let parent = if parent.is_empty() {
            None
        } else {
            let id = Digest::parse(parent).map_err(|e| ImageError::reference(parent, e.into()))?;
            Some((id.clone(), self.resolve_id(&id)?))
        };
        let step = parent.as_ref().map_or(0, |(_, p)| p.config.history.len());
        for source in sources {
            let Ok(target) = self.resolve_id(source) else {
                continue;
            };
            if !continues(&target.config, parent.as_ref().map(|(_, p)| &p.config)) {
                continue;
            }
            let Some(entry) = target.config.history.get(step) else {
                continue;
            };
            if entry.created_by.as_deref().unwrap_or_default() != created_by {
                continue;
            }
            if target.config.history.len() == step + 1 {
                return Ok(Some(source.clone()));
            }
            let mut image = match &parent {
                Some((_, p)) => p.config.clone(),
                None => scratch_config(),
            };
            let mut layers: Vec<Descriptor> = match &parent {
                Some((_, p)) => p.manifest.layers.iter().map(oci_layer).collect(),
                None => Vec::new(),
            };
            if entry.empty_layer != Some(true) {
                // The step's layer: as many non-empty entries come before it as layers.
                let index = target.config.history[..step]
                    .iter()
                    .filter(|h| h.empty_layer != Some(true))
                    .count();
                let (Some(diff_id), Some(layer)) = (
                    target.config.diff_ids().get(index),
                    target.manifest.layers.get(index),
                ) else {
                    continue;
                };
                if let Some(rootfs) = image.rootfs.as_mut() {
                    rootfs.diff_ids.push(diff_id.clone());
                }
                layers.push(oci_layer(layer));
            }
            image.history.push(entry.clone());
            image.config = Some(to_container_config(config)?);
            image.container_config = None;
            image.container = None;
            image.parent = parent.as_ref().map(|(id, _)| id.to_string());
            image.created = entry.created.clone();
            image.author = target.config.author.clone();
            image.architecture = target.config.architecture.clone();
            image.os = target.config.os.clone();
            image.id = None;
            let created = entry.created.clone().unwrap_or_default();
            return self
                .store_build_image(&image, layers, created, None)
                .map(Some);
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_image::History;

    fn config(steps: &[&str], layers: &[&str]) -> ImageConfig {
        let mut c = scratch_config();
        c.history = steps
            .iter()
            .map(|s| History {
                created_by: Some(s.to_string()),
                ..History::default()
            })
            .collect();
        if let Some(rootfs) = c.rootfs.as_mut() {
            rootfs.diff_ids = layers
                .iter()
                .map(|l| Digest::parse(&format!("sha256:{}", l.repeat(64))).expect("digest"))
                .collect();
        }
        c
    }

    #[test]
    fn a_source_continues_a_parent_only_with_the_same_history_and_layers() {
        let target = config(&["base", "RUN a", "RUN b"], &["1", "2", "3"]);
        assert!(continues(&target, None));
        assert!(continues(&target, Some(&config(&["base"], &["1"]))));
        assert!(continues(
            &target,
            Some(&config(&["base", "RUN a"], &["1", "2"]))
        ));
        assert!(!continues(
            &target,
            Some(&config(&["base", "RUN x"], &["1", "2"]))
        ));
        assert!(!continues(&target, Some(&config(&["base"], &["9"]))));
        assert!(!continues(&target, Some(&target)));
        assert!(!continues(&config(&[], &[]), None));
    }
}
