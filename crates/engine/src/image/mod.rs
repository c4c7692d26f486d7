//! The image service: the content store, image records, ChainID snapshots and registries
//! behind the `/images/*` API, plus the container root filesystems built on those
//! snapshots. Everything is kept under `EngineConfig::image_dir()`:
//! `content/` (blobs), `images/` (records and references), `snapshots/` (overlay layers),
//! `layer-sizes.json` and `rootfs.json` (which container's writable layer sits on which
//! image). Store calls are blocking and run in `spawn_blocking`.

mod archive;
mod commit;
mod compressed;
mod delete;
mod details;
mod distribution;
mod error;
pub mod filters;
mod gzip;
mod pipeline;
mod push;
mod rootfs;
pub mod size;
mod state;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use berth_content::Store;
use berth_image::{ImageConfig, ImageRecord, ImageStore, Manifest, Parsed};
use berth_oci::{Digest, Reference};
use berth_registry::client::ClientOptions;
use berth_snapshot::{Driver, Snapshotter};

use crate::config::EngineConfig;
use crate::events::EventBus;

pub use archive::{ImportRequest, LoadedImages};
pub use berth_image::DeleteItem;
pub use commit::CommitRequest;
pub(crate) use commit::{oci_layer, oci_manifest};
pub use compressed::PushCompression;
pub use delete::PruneReport;
pub use details::{HistoryEntry, ImageDetails};
pub use distribution::{DistributionInfo, ProgressTx, PullRequest, PushRequest};
pub use error::ImageError;
pub use filters::ListFilters;
pub use rootfs::Change;

/// What containers need of an image (the contract with the containers service).
#[derive(Debug, Clone)]
pub struct ImageInfo {
    pub id: Digest,
    pub config: ImageConfig,
    pub repo_tags: Vec<String>,
}

/// An image's manifest and config as stored, parsed once and cached by image id.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub manifest: Manifest,
    pub config: ImageConfig,
}

/// The blocking half of the service: stores and caches, used from `spawn_blocking`.
pub(crate) struct Inner {
    pub dir: PathBuf,
    pub content: Store,
    pub images: ImageStore,
    pub snapshotter: Snapshotter,
    resolved: Mutex<HashMap<Digest, Arc<Resolved>>>,
    /// Docker's layer "size" (sum of file sizes) by DiffID, computed once per layer.
    pub layer_sizes: Mutex<BTreeMap<String, i64>>,
    /// Container id -> image id of each prepared root filesystem.
    pub rootfs: Mutex<BTreeMap<String, Digest>>,
    /// Unpacking is serialised: two pulls of images sharing a base must not race on it.
    pub unpack_lock: Mutex<()>,
    /// When each reference was last tagged (Docker's `Metadata.LastTagTime`).
    pub tag_times: Mutex<BTreeMap<String, String>>,
    /// The gzip blobs pushes made of uncompressed layers (`compressed-layers.json`).
    pub compressed: Mutex<compressed::CompressedLayers>,
}

/// Images of one engine.
pub struct ImageService {
    pub(crate) inner: Arc<Inner>,
    pub(crate) events: Arc<EventBus>,
    pub(crate) registry_options: ClientOptions,
    /// Garbage collection takes this exclusively; pulls, imports, loads, commits and
    /// rootfs preparation hold it shared, so blobs they wrote but no image references yet
    /// are never collected under them.
    pub(crate) gc_gate: tokio::sync::RwLock<()>,
    pub(crate) mirrors: Vec<String>,
    /// The trust policy file, read at every pull (`crate::trust`).
    pub(crate) signature_policy: std::path::PathBuf,
    /// How pushes compress uncompressed layers (daemon.json `push-compression`).
    pub(crate) push_compression: PushCompression,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl ImageService {
    /// Opens (creating) the stores under `config.image_dir()`.
    pub async fn open(config: &EngineConfig, events: Arc<EventBus>) -> Result<Self, ImageError> {
        let dir = config.image_dir();
        let inner = tokio::task::spawn_blocking(move || Inner::open(&dir)).await??;
        let registry_options = ClientOptions {
            insecure_registries: config.insecure_registries.clone(),
            ..ClientOptions::default()
        };
        Ok(ImageService {
            inner: Arc::new(inner),
            events,
            registry_options,
            gc_gate: tokio::sync::RwLock::new(()),
            mirrors: config.registry_mirrors.clone(),
            signature_policy: config.signature_policy.clone(),
            push_compression: config.push_compression,
        })
    }

    /// Runs `f` on the blocking pool with the stores.
    pub(crate) async fn blocking<T, F>(&self, f: F) -> Result<T, ImageError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, ImageError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner)).await?
    }

    /// Publishes an image event with Docker's attributes (`name` plus the image labels).
    pub(crate) fn publish(&self, action: &str, actor: &str, name: &str) {
        let mut attributes = BTreeMap::new();
        attributes.insert("name".to_string(), name.to_string());
        if let Ok(id) = Digest::parse(actor) {
            if let Ok(resolved) = self.inner.resolve_id(&id) {
                if let Some(labels) = resolved
                    .config
                    .config
                    .as_ref()
                    .and_then(|c| c.labels.clone())
                {
                    for (k, v) in labels {
                        attributes.entry(k).or_insert(v);
                    }
                }
            }
        }
        self.events.publish("image", action, actor, attributes);
    }

    /// The image `name_or_id` names (Docker's `GetImage`), with its config.
    pub async fn lookup(&self, name_or_id: &str) -> Result<ImageInfo, ImageError> {
        let name = name_or_id.to_string();
        self.blocking(move |inner| {
            let record = inner.images.resolve(&name)?;
            let resolved = inner.resolve(&record)?;
            Ok(ImageInfo {
                repo_tags: inner.images.repo_tags(&record.id),
                id: record.id,
                config: resolved.config.clone(),
            })
        })
        .await
    }

    /// `docker tag SOURCE TARGET`.
    pub async fn tag(&self, source: &str, target: &str) -> Result<(), ImageError> {
        let (source, target) = (source.to_string(), target.to_string());
        let (id, name) = self
            .blocking(move |inner| {
                let record = inner.images.resolve(&source)?;
                let reference = Reference::parse_normalized(&target)
                    .map_err(|e| ImageError::reference(&target, e))?
                    .with_default_tag();
                inner.images.tag(&record.id, &reference)?;
                inner.touch_tag(&reference);
                Ok((record.id, reference.familiar_string()))
            })
            .await?;
        self.publish("tag", &id.to_string(), &name);
        Ok(())
    }
}

impl Inner {
    fn open(dir: &Path) -> Result<Inner, ImageError> {
        let content = Store::open(dir.join("content"))?;
        let images = ImageStore::open(&dir.join("images"))?;
        let snapshotter =
            Snapshotter::open(&dir.join("snapshots"), Driver::detect()).map_err(|source| {
                ImageError::Snapshot {
                    container: String::new(),
                    source: Box::new(source),
                }
            })?;
        let _ = snapshotter.cleanup();
        Ok(Inner {
            layer_sizes: Mutex::new(state::read_json(&dir.join(state::LAYER_SIZES))?),
            rootfs: Mutex::new(state::read_json_or_default(&dir.join(state::ROOTFS))),
            tag_times: Mutex::new(state::read_json(&dir.join(state::TAG_TIMES))?),
            compressed: Mutex::new(state::read_json(&dir.join(compressed::COMPRESSED_LAYERS))?),
            dir: dir.to_path_buf(),
            content,
            images,
            snapshotter,
            resolved: Mutex::new(HashMap::new()),
            unpack_lock: Mutex::new(()),
        })
    }

    /// The manifest and config of `record` (cached by image id).
    pub fn resolve(&self, record: &ImageRecord) -> Result<Arc<Resolved>, ImageError> {
        if let Some(found) = lock(&self.resolved).get(&record.id) {
            return Ok(found.clone());
        }
        let manifest = self.find_manifest(record)?;
        let bytes = self.content.read_to_vec(&manifest.config.digest)?;
        let config = ImageConfig::parse(&bytes).map_err(|e| ImageError::Broken {
            image: record.id.to_string(),
            reason: e.to_string(),
        })?;
        let resolved = Arc::new(Resolved { manifest, config });
        lock(&self.resolved).insert(record.id.clone(), resolved.clone());
        Ok(resolved)
    }

    pub fn resolve_id(&self, id: &Digest) -> Result<Arc<Resolved>, ImageError> {
        let record = self
            .images
            .get(id)
            .ok_or_else(|| ImageError::NotFound(id.to_string()))?;
        self.resolve(&record)
    }

    /// The cached manifest and config of `id`, if it was resolved before.
    pub fn cached(&self, id: &Digest) -> Option<Arc<Resolved>> {
        lock(&self.resolved).get(id).cloned()
    }

    pub fn forget(&self, id: &Digest) {
        lock(&self.resolved).remove(id);
    }

    /// The platform manifest of `record`: its target, or the entry of its target index
    /// whose config is the image id.
    fn find_manifest(&self, record: &ImageRecord) -> Result<Manifest, ImageError> {
        let broken = |reason: String| ImageError::Broken {
            image: record.id.to_string(),
            reason,
        };
        let mut pending = vec![(record.target.clone(), 0usize)];
        while let Some((desc, depth)) = pending.pop() {
            if depth > 4 || !self.content.contains(&desc.digest) {
                continue;
            }
            let bytes = self.content.read_to_vec(&desc.digest)?;
            match berth_image::manifest::parse(&bytes, Some(&desc.media_type))
                .map_err(|e| broken(e.to_string()))?
            {
                Parsed::Manifest(m) if m.config.digest == record.id => return Ok(*m),
                Parsed::Manifest(_) => {}
                Parsed::Index(i) => {
                    pending.extend(i.manifests.into_iter().rev().map(|d| (d, depth + 1)))
                }
            }
        }
        Err(broken(format!(
            "no manifest with config {} under {} (pull the image again)",
            record.id, record.target.digest
        )))
    }

    /// Records now as the last tag time of `reference`.
    pub fn touch_tag(&self, reference: &Reference) {
        let now = berth_image::time::rfc3339_nano(std::time::SystemTime::now());
        let mut times = lock(&self.tag_times);
        times.insert(reference.to_string(), now);
        let _ = state::write_json(&self.dir.join(state::TAG_TIMES), &*times);
    }

    /// The newest tag time of image `id`'s references (empty when never tagged).
    pub fn last_tag_time(&self, id: &Digest) -> String {
        let times = lock(&self.tag_times);
        self.images
            .references(id)
            .iter()
            .filter_map(|r| times.get(&r.to_string()))
            .max()
            .cloned()
            .unwrap_or_default()
    }
}

#[cfg(test)]
#[path = "service_tests.rs"]
mod service_tests;
