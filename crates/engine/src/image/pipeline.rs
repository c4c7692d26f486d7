//! A pull's unpacking while it downloads: layer N is applied (and its ChainID snapshot
//! committed) as soon as layer N and every layer below it are verified in the content
//! store, while later layers still download, as dockerd extracts layer 1 while layer 2
//! downloads. Only committed (digest-checked) blobs are read, and each snapshot is
//! committed only after its DiffID matched the config, so a corrupt download commits
//! nothing; whatever the pipeline did not get to, `finish_pull` unpacks afterwards.

use std::collections::{BTreeSet, HashSet};
use std::sync::mpsc::Receiver;

use berth_api::progress::JsonMessage;
use berth_image::{ImageConfig, Manifest};
use berth_oci::Digest;

use super::distribution::{layer_message, prefix, short, ProgressTx};
use super::{ImageError, Inner};

/// What the download side tells the unpacker.
#[derive(Debug, Clone)]
pub(super) enum Step {
    /// The image manifest and config are in the store (a mirror that failed may have
    /// announced another one before: the last announcement wins).
    Start {
        manifest: Digest,
        media_type: String,
    },
    /// A blob is committed in the store; `quiet` when it was there before the pull.
    Ready { digest: Digest, quiet: bool },
}

/// Which layer may be applied next: the lowest one not yet applied, once it is ready.
#[derive(Debug, Default)]
pub(super) struct InOrder {
    layers: Vec<Digest>,
    ready: HashSet<Digest>,
    next: usize,
}

impl InOrder {
    /// Starts over with `layers` (bottom first); blobs already marked stay ready.
    pub(super) fn start(&mut self, layers: Vec<Digest>) {
        self.layers = layers;
        self.next = 0;
    }

    pub(super) fn mark_ready(&mut self, digest: Digest) {
        self.ready.insert(digest);
    }

    /// The index of the next layer to apply, if it is ready; advances past it.
    pub(super) fn next_ready(&mut self) -> Option<usize> {
        let layer = self.layers.get(self.next)?;
        if !self.ready.contains(layer) {
            return None;
        }
        self.next += 1;
        Some(self.next - 1)
    }
}

/// What the pipeline did: the layers it extracted (their `Extracting` and `Pull complete`
/// lines already sent) and the first error, after which it stopped applying.
#[derive(Debug, Default)]
pub(super) struct Unpacked {
    pub extracted: BTreeSet<Digest>,
    pub error: Option<ImageError>,
}

struct Plan {
    manifest: Manifest,
    config: ImageConfig,
}

impl Inner {
    /// Runs until `steps` closes (the download finished or failed), applying layers in
    /// order as they become ready.
    pub(super) fn unpack_while_pulling(&self, steps: Receiver<Step>, tx: &ProgressTx) -> Unpacked {
        let mut order = InOrder::default();
        let mut quiet = HashSet::new();
        let mut plan: Option<Plan> = None;
        let mut out = Unpacked::default();
        for step in steps {
            match step {
                Step::Start {
                    manifest,
                    media_type,
                } => match self.plan(&manifest, &media_type) {
                    Ok(p) => {
                        order.start(p.manifest.layers.iter().map(|l| l.digest.clone()).collect());
                        plan = Some(p);
                    }
                    Err(e) => {
                        out.error.get_or_insert(e);
                    }
                },
                Step::Ready { digest, quiet: q } => {
                    if q {
                        quiet.insert(digest.clone());
                    }
                    order.mark_ready(digest);
                }
            }
            let Some(plan) = plan.as_ref() else { continue };
            while out.error.is_none() {
                let Some(n) = order.next_ready() else { break };
                let layer = &plan.manifest.layers[n];
                let shown = !quiet.contains(&layer.digest);
                match self.apply_prefix(plan, n, shown, tx) {
                    Ok(()) if shown => {
                        out.extracted.insert(layer.digest.clone());
                    }
                    Ok(()) => {}
                    Err(e) => out.error = Some(e),
                }
            }
        }
        out
    }

    fn plan(&self, manifest: &Digest, media_type: &str) -> Result<Plan, ImageError> {
        let broken = |reason: String| ImageError::Broken {
            image: manifest.to_string(),
            reason,
        };
        let manifest = Manifest::parse(&self.content.read_to_vec(manifest)?, Some(media_type))
            .map_err(|e| broken(e.to_string()))?;
        let config = ImageConfig::parse(&self.content.read_to_vec(&manifest.config.digest)?)
            .map_err(|e| broken(e.to_string()))?;
        if config.diff_ids().len() != manifest.layers.len() {
            return Err(broken(format!(
                "{} layers but {} diff ids",
                manifest.layers.len(),
                config.diff_ids().len()
            )));
        }
        Ok(Plan { manifest, config })
    }

    /// Applies layer `n` of `plan` (and any lower one still missing) under the unpack lock.
    fn apply_prefix(
        &self,
        plan: &Plan,
        n: usize,
        shown: bool,
        tx: &ProgressTx,
    ) -> Result<(), ImageError> {
        let layer = &plan.manifest.layers[n];
        let (m, c) = prefix(&plan.manifest, &plan.config, n + 1);
        if shown {
            let size = layer.size as i64;
            let _ = tx.send(JsonMessage::layer_progress(
                &short(&layer.digest),
                "Extracting",
                size,
                size,
            ));
        }
        let _guard = super::lock(&self.unpack_lock);
        berth_image::unpack(&self.content, &self.snapshotter, &m, &c).map_err(|source| {
            ImageError::Unpack {
                image: plan.manifest.config.digest.to_string(),
                source: Box::new(source),
            }
        })?;
        if shown {
            let _ = tx.send(layer_message(&layer.digest, "Pull complete"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digests(n: usize) -> Vec<Digest> {
        (0..n)
            .map(|i| Digest::sha256_of(format!("layer {i}").as_bytes()))
            .collect()
    }

    #[test]
    fn layers_are_released_bottom_up_only_when_every_lower_one_is_ready() {
        let layers = digests(4);
        let mut order = InOrder::default();
        order.start(layers.clone());
        order.mark_ready(layers[2].clone());
        order.mark_ready(layers[1].clone());
        assert_eq!(order.next_ready(), None, "layer 0 has not arrived");
        order.mark_ready(layers[0].clone());
        let released: Vec<usize> = std::iter::from_fn(|| order.next_ready()).collect();
        assert_eq!(released, vec![0, 1, 2]);
        assert_eq!(order.next_ready(), None, "layer 3 has not arrived");
        order.mark_ready(layers[3].clone());
        assert_eq!(order.next_ready(), Some(3));
        assert_eq!(order.next_ready(), None, "everything released once");
    }

    #[test]
    fn blobs_ready_before_the_manifest_is_known_count_after_start() {
        let layers = digests(2);
        let mut order = InOrder::default();
        order.mark_ready(layers[0].clone());
        assert_eq!(order.next_ready(), None, "no manifest yet");
        order.start(layers.clone());
        assert_eq!(order.next_ready(), Some(0));
        order.start(layers);
        assert_eq!(
            order.next_ready(),
            Some(0),
            "a new start applies from the bottom"
        );
    }

    #[test]
    fn unknown_blobs_release_nothing() {
        let layers = digests(2);
        let mut order = InOrder::default();
        order.start(layers);
        order.mark_ready(Digest::sha256_of(b"config"));
        assert_eq!(order.next_ready(), None);
    }
}
