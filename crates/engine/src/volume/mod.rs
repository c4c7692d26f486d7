//! Volumes: the local driver's named and anonymous volumes under `<data-root>/volumes`
//! (`<name>/_data` holds the data, `<name>/volume.json` the labels, options and creation
//! time, written atomically), their reference counts (rebuilt from container records when
//! berthd starts), mounts of volumes with driver options while containers use them, and
//! the verbs behind `/volumes` (create, inspect, ls, rm, prune) and `/system/df`.
//!
//! # Layout
//! - [`name`]: the local driver's naming rule and generated names.
//! - [`local`]: driver options (`type`, `device`, `o`) and their mounts.
//! - [`mounts`]: a container's mount points resolved at create (`-v`, `--mount`,
//!   `--volumes-from`, image `VOLUME`s).
//! - [`copy`]: copy-up of the image's content into a fresh volume.
//! - [`usage`]: disk usage as Docker counts it.
//!
//! Rule kept here: a volume that any container record references (running or not) is
//! never deleted; references are only dropped when the container record is removed.

pub mod copy;
pub mod local;
pub mod mounts;
pub mod name;
mod store;
pub mod usage;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use berth_api::volume::{Volume, VolumeUsageData};
use berth_api::Filters;

use crate::error::ErrorKind;
use crate::events::EventBus;

pub use mounts::MountPoint;
pub use store::VolumeRecord;

/// Docker's label marking volumes created for a container (prune removes only these
/// unless asked for all).
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

/// The only driver berth has.
pub const LOCAL_DRIVER: &str = "local";

/// Failures of volume operations, with Docker's texts.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("get {0}: no such volume")]
    NotFound(String),
    #[error("{0}")]
    InvalidArgument(String),
    /// moby's `errVolumeInUse`.
    #[error("remove {name}: volume is in use - [{ids}]")]
    InUse { name: String, ids: String },
    #[error("error looking up volume plugin {0}: plugin {0:?} not found")]
    NoDriver(String),
    #[error("{0}")]
    Mount(String),
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("background task failed: {0}")]
    Join(String),
}

impl VolumeError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            VolumeError::NotFound(_) | VolumeError::NoDriver(_) => ErrorKind::NotFound,
            VolumeError::InvalidArgument(_) => ErrorKind::InvalidArgument,
            VolumeError::InUse { .. } => ErrorKind::Conflict,
            VolumeError::Mount(_) | VolumeError::Io { .. } | VolumeError::Join(_) => {
                ErrorKind::Internal
            }
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> VolumeError {
        VolumeError::Io {
            context: context.into(),
            source,
        }
    }
}

/// What `POST /volumes/create` asks for.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    /// Empty: a generated name.
    pub name: String,
    pub driver: String,
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

#[derive(Default)]
struct Tables {
    volumes: BTreeMap<String, VolumeRecord>,
    /// Volume name → IDs of the container records that reference it.
    refs: BTreeMap<String, BTreeSet<String>>,
    /// Volume name → IDs of the containers that have it mounted now.
    active: BTreeMap<String, BTreeSet<String>>,
}

struct State {
    root: PathBuf,
    events: Arc<EventBus>,
    tables: Mutex<Tables>,
}

/// The volume service: one per engine.
pub struct VolumeService {
    state: Arc<State>,
}

impl VolumeService {
    /// Loads the volumes under `root` (`<data-root>/volumes`), dropping what a crash left
    /// half-created.
    pub fn open(root: PathBuf, events: Arc<EventBus>) -> Result<VolumeService, VolumeError> {
        let volumes = store::load_all(&root)?;
        Ok(VolumeService {
            state: Arc::new(State {
                root,
                events,
                tables: Mutex::new(Tables {
                    volumes,
                    ..Tables::default()
                }),
            }),
        })
    }

    /// `<root>/<name>/_data`.
    pub fn data_path(&self, name: &str) -> PathBuf {
        self.state.data_path(name)
    }

    /// Records the references of existing containers (berthd start): the records are the
    /// truth, so counts survive restarts. Running containers count as mounting.
    pub fn restore<'a>(&self, records: impl Iterator<Item = (&'a str, &'a [MountPoint], bool)>) {
        let mut tables = self.state.lock();
        for (id, points, running) in records {
            for point in points.iter().filter(|p| p.is_volume()) {
                tables
                    .refs
                    .entry(point.name.clone())
                    .or_default()
                    .insert(id.to_string());
                if running {
                    tables
                        .active
                        .entry(point.name.clone())
                        .or_default()
                        .insert(id.to_string());
                }
            }
        }
    }

    /// `POST /volumes/create`.
    pub async fn create(&self, request: CreateRequest) -> Result<Volume, VolumeError> {
        self.blocking(move |state| {
            let record = state.create(request)?;
            Ok(state.api_volume(&record, None))
        })
        .await
    }

    /// `GET /volumes/{name}`.
    pub async fn inspect(&self, name: &str) -> Result<Volume, VolumeError> {
        let tables = self.state.lock();
        let record = tables
            .volumes
            .get(name)
            .ok_or_else(|| VolumeError::NotFound(name.to_string()))?;
        Ok(self.state.api_volume(record, None))
    }

    /// `GET /volumes`: filters `dangling`, `driver`, `label`, `label!`, `name`.
    pub async fn list(&self, filters: &Filters) -> Result<Vec<Volume>, VolumeError> {
        filters
            .validate(&["dangling", "driver", "label", "label!", "name"])
            .map_err(|e| VolumeError::InvalidArgument(e.to_string()))?;
        let dangling = match filters.contains("dangling") {
            true => Some(
                filters
                    .bool_or("dangling", false)
                    .map_err(|e| VolumeError::InvalidArgument(e.to_string()))?,
            ),
            false => None,
        };
        let tables = self.state.lock();
        Ok(tables
            .volumes
            .values()
            .filter(|v| {
                let unused = tables.refs.get(&v.name).is_none_or(|r| r.is_empty());
                dangling.is_none_or(|d| d == unused)
                    && filters.exact_match("driver", &v.driver)
                    && filters.match_key_values("label", &v.labels)
                    && !excluded_by_label(filters, &v.labels)
                    && filters
                        .values("name")
                        .iter()
                        .all(|wanted| v.name.contains(wanted))
            })
            .map(|v| self.state.api_volume(v, None))
            .collect())
    }

    /// `DELETE /volumes/{name}`: refused while any container references the volume
    /// (`force` only forgives a missing volume, as Docker's).
    pub async fn remove(&self, name: &str, force: bool) -> Result<(), VolumeError> {
        let name = name.to_string();
        self.blocking(move |state| match state.remove(&name) {
            Err(VolumeError::NotFound(_)) if force => Ok(()),
            other => other.map(|_| ()),
        })
        .await
    }

    /// `POST /volumes/prune`: unused anonymous volumes (all unused ones with `all=true`,
    /// API 1.42), filtered by `label`/`label!`; returns the names and bytes given back.
    pub async fn prune(&self, filters: &Filters) -> Result<(Vec<String>, u64), VolumeError> {
        filters
            .validate(&["label", "label!", "all"])
            .map_err(|e| VolumeError::InvalidArgument(e.to_string()))?;
        let all = filters
            .bool_or("all", false)
            .map_err(|e| VolumeError::InvalidArgument(e.to_string()))?;
        let filters = filters.clone();
        self.blocking(move |state| {
            let candidates: Vec<String> = {
                let tables = state.lock();
                tables
                    .volumes
                    .values()
                    .filter(|v| tables.refs.get(&v.name).is_none_or(|r| r.is_empty()))
                    .filter(|v| all || v.is_anonymous())
                    .filter(|v| {
                        filters.match_key_values("label", &v.labels)
                            && !excluded_by_label(&filters, &v.labels)
                    })
                    .map(|v| v.name.clone())
                    .collect()
            };
            let mut removed = Vec::new();
            let mut reclaimed = 0u64;
            for name in candidates {
                // A container may have taken the volume since: then it stays.
                if let Ok(size) = state.remove(&name) {
                    reclaimed += size;
                    removed.push(name);
                }
            }
            state.events.publish(
                "volume",
                "prune",
                "",
                BTreeMap::from([("reclaimed".to_string(), reclaimed.to_string())]),
            );
            Ok((removed, reclaimed))
        })
        .await
    }

    /// Every volume with `UsageData` (size and reference count), for `/system/df`.
    pub async fn usage(&self) -> Result<Vec<Volume>, VolumeError> {
        self.blocking(|state| {
            let (records, refs) = {
                let tables = state.lock();
                let records: Vec<VolumeRecord> = tables.volumes.values().cloned().collect();
                let refs: Vec<i64> = records
                    .iter()
                    .map(|v| tables.refs.get(&v.name).map_or(0, |r| r.len() as i64))
                    .collect();
                (records, refs)
            };
            Ok(records
                .iter()
                .zip(refs)
                .map(|(record, ref_count)| {
                    let size = usage::size(&state.data_path(&record.name)).map_or(-1, |s| s as i64);
                    state.api_volume(record, Some(VolumeUsageData { ref_count, size }))
                })
                .collect())
        })
        .await
    }

    /// Resolves and references the mount points of a new container (blocking).
    pub fn acquire(
        &self,
        container: &str,
        request: &mounts::MountRequest,
    ) -> Result<Vec<MountPoint>, VolumeError> {
        let points = mounts::resolve(request, &self.state.root, &mut |spec| {
            self.state.ensure(spec)
        })?;
        let mut tables = self.state.lock();
        for point in points.iter().filter(|p| p.is_volume()) {
            tables
                .refs
                .entry(point.name.clone())
                .or_default()
                .insert(container.to_string());
        }
        Ok(points)
    }

    /// Drops the references of a removed container; with `remove_anonymous` (`rm -v`,
    /// `--rm`) its anonymous volumes that nothing else references go too (blocking).
    pub fn release(&self, container: &str, remove_anonymous: bool) -> Vec<String> {
        let mut candidates = Vec::new();
        {
            let mut tables = self.state.lock();
            for (name, ids) in tables.refs.iter_mut() {
                if ids.remove(container) && ids.is_empty() {
                    candidates.push(name.clone());
                }
            }
            tables.refs.retain(|_, ids| !ids.is_empty());
            for ids in tables.active.values_mut() {
                ids.remove(container);
            }
        }
        let mut removed = Vec::new();
        if remove_anonymous {
            for name in candidates {
                let anonymous = self
                    .state
                    .lock()
                    .volumes
                    .get(&name)
                    .is_some_and(VolumeRecord::is_anonymous);
                if anonymous && self.state.remove(&name).is_ok() {
                    removed.push(name);
                }
            }
        }
        removed
    }

    /// Mounts `point`'s volume for a starting container (the device on first use) and
    /// publishes `mount` (blocking).
    pub fn mount(&self, container: &str, point: &MountPoint) -> Result<(), VolumeError> {
        let mut tables = self.state.lock();
        let record = tables
            .volumes
            .get(&point.name)
            .cloned()
            .ok_or_else(|| VolumeError::NotFound(point.name.clone()))?;
        let users = tables.active.entry(point.name.clone()).or_default();
        if local::needs_mount(&record.options) {
            let path = self.state.data_path(&record.name);
            if !local::is_mounted(&path) {
                local::mount(&record.options, &path)?;
            }
        }
        users.insert(container.to_string());
        drop(tables);
        let attributes = BTreeMap::from([
            ("container".to_string(), container.to_string()),
            ("destination".to_string(), point.destination.clone()),
            ("driver".to_string(), record.driver.clone()),
            ("propagation".to_string(), point.propagation.clone()),
            ("read/write".to_string(), point.rw.to_string()),
        ]);
        self.state
            .events
            .publish("volume", "mount", &point.name, attributes);
        Ok(())
    }

    /// The container stopped: unmounts devices nothing else uses and publishes `unmount`
    /// for each of its volumes (blocking).
    pub fn unmount_all(&self, container: &str) {
        let mut unmounted = Vec::new();
        {
            let mut tables = self.state.lock();
            let Tables {
                volumes, active, ..
            } = &mut *tables;
            for (name, users) in active.iter_mut() {
                if !users.remove(container) {
                    continue;
                }
                if let Some(record) = volumes.get(name) {
                    if users.is_empty() && local::needs_mount(&record.options) {
                        let _ = local::unmount(&self.state.data_path(name));
                    }
                    unmounted.push((name.clone(), record.driver.clone()));
                }
            }
            active.retain(|_, users| !users.is_empty());
        }
        for (name, driver) in unmounted {
            let attributes = BTreeMap::from([
                ("container".to_string(), container.to_string()),
                ("driver".to_string(), driver),
            ]);
            self.state
                .events
                .publish("volume", "unmount", &name, attributes);
        }
    }

    /// Container IDs that reference `name`.
    pub fn references(&self, name: &str) -> Vec<String> {
        self.state
            .lock()
            .refs
            .get(name)
            .map(|ids| ids.iter().cloned().collect())
            .unwrap_or_default()
    }

    async fn blocking<T, F>(&self, work: F) -> Result<T, VolumeError>
    where
        F: FnOnce(&State) -> Result<T, VolumeError> + Send + 'static,
        T: Send + 'static,
    {
        let state = self.state.clone();
        tokio::task::spawn_blocking(move || work(&state))
            .await
            .map_err(|e| VolumeError::Join(e.to_string()))?
    }
}

/// `label!=k` / `label!=k=v`: any match excludes.
fn excluded_by_label(filters: &Filters, labels: &BTreeMap<String, String>) -> bool {
    filters
        .values("label!")
        .into_iter()
        .any(|wanted| match wanted.split_once('=') {
            Some((key, value)) => labels.get(key).is_some_and(|have| have == value),
            None => labels.contains_key(wanted),
        })
}

impl State {
    fn lock(&self) -> MutexGuard<'_, Tables> {
        match self.tables.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn data_path(&self, name: &str) -> PathBuf {
        self.root.join(name).join("_data")
    }

    fn api_volume(&self, record: &VolumeRecord, usage: Option<VolumeUsageData>) -> Volume {
        Volume {
            created_at: record.created_at.clone(),
            driver: record.driver.clone(),
            labels: Some(record.labels.clone()),
            mountpoint: self.data_path(&record.name).display().to_string(),
            name: record.name.clone(),
            options: Some(record.options.clone()),
            scope: "local".to_string(),
            status: None,
            usage_data: usage,
        }
    }

    /// Creates a volume, or returns the existing one of that name (as Docker).
    fn create(&self, request: CreateRequest) -> Result<VolumeRecord, VolumeError> {
        let driver = match request.driver.as_str() {
            "" => LOCAL_DRIVER.to_string(),
            other => other.to_string(),
        };
        if driver != LOCAL_DRIVER {
            return Err(VolumeError::NoDriver(driver));
        }
        let name = if request.name.is_empty() {
            name::generate()
        } else {
            request.name.clone()
        };
        let wrap = |e: VolumeError| match e {
            VolumeError::InvalidArgument(text) => {
                VolumeError::InvalidArgument(format!("create {name}: {text}"))
            }
            other => other,
        };
        name::validate(&name).map_err(wrap)?;
        local::validate_options(&request.options).map_err(wrap)?;
        let mut tables = self.lock();
        if let Some(existing) = tables.volumes.get(&name) {
            return Ok(existing.clone());
        }
        let record = VolumeRecord {
            name: name.clone(),
            driver,
            labels: request.labels,
            options: request.options,
            created_at: store::now_rfc3339(),
        };
        store::create(&self.root, &record)?;
        tables.volumes.insert(name.clone(), record.clone());
        drop(tables);
        self.events.publish(
            "volume",
            "create",
            &name,
            BTreeMap::from([("driver".to_string(), record.driver.clone())]),
        );
        Ok(record)
    }

    /// The volume a mount asks for: existing, or created (anonymous ones get a name and
    /// Docker's anonymous label).
    fn ensure(&self, spec: mounts::VolumeSpec) -> Result<VolumeRecord, VolumeError> {
        let mut labels = spec.labels;
        if spec.name.is_empty() {
            labels.insert(ANONYMOUS_LABEL.to_string(), String::new());
        } else if let Some(existing) = self.lock().volumes.get(&spec.name) {
            return Ok(existing.clone());
        }
        self.create(CreateRequest {
            name: spec.name,
            driver: spec.driver,
            options: spec.options,
            labels,
        })
    }

    /// Deletes an unreferenced volume; returns the bytes of disk it held.
    fn remove(&self, name: &str) -> Result<u64, VolumeError> {
        let mut tables = self.lock();
        if !tables.volumes.contains_key(name) {
            return Err(VolumeError::NotFound(name.to_string()));
        }
        if let Some(ids) = tables.refs.get(name).filter(|ids| !ids.is_empty()) {
            return Err(VolumeError::InUse {
                name: name.to_string(),
                ids: ids.iter().cloned().collect::<Vec<_>>().join(", "),
            });
        }
        let data = self.data_path(name);
        if local::is_mounted(&data) {
            local::unmount(&data)?;
        }
        // What the disk gets back: the whole volume directory's blocks (Docker reports the
        // files' apparent size, which is neither what `du` sees nor what prune frees).
        let size = usage::disk_bytes(&self.root.join(name)).unwrap_or(0);
        store::remove(&self.root, name)?;
        tables.volumes.remove(name);
        tables.active.remove(name);
        drop(tables);
        self.events.publish(
            "volume",
            "destroy",
            name,
            BTreeMap::from([("driver".to_string(), LOCAL_DRIVER.to_string())]),
        );
        Ok(size)
    }
}

/// Whether `path` (a volume's `_data`) has no entries: copy-up only fills empty volumes.
pub fn is_empty_dir(path: &Path) -> bool {
    std::fs::read_dir(path).is_ok_and(|mut entries| entries.next().is_none())
}

#[cfg(test)]
mod tests;
