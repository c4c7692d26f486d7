//! Containers: records, persistence, and their lifecycle through berth-shim. The record
//! keeps the Docker Config and HostConfig as created (Docker's config.v2.json and
//! hostconfig.json) plus the engine's own state; API shapes are built by berth-server.
//!
//! # Layout
//! - [`record`]: the persisted record (`container.json`, atomic writes).
//! - [`index`]: lookups by full ID, name or unique ID prefix (Docker's `GetContainer`).
//! - `create`, `start`, `monitor` (exit → die → restart policy / `--rm`), `stop` (stop, kill,
//!   restart), `remove` (rm, prune), `wait`, `runtime_cli` (pause, unpause, update),
//!   `restore` (reconnecting to shims when berthd starts), [`filter`] (`ps` filters).
//! - `image_link` and `bundle` are the seams to the image service and the spec builder.
//!
//! Locking: each container has a record mutex (short, never held across `.await`) and an
//! operation lock (tokio) that serialises start, stop, restart, remove and the monitor's
//! restart so that two verbs never interleave on one container.

mod bundle;
mod create;
pub mod export;
pub mod filter;
pub mod health;
mod image_link;
pub mod index;
mod monitor;
mod naming;
mod network_link;
pub mod record;
mod remove;
mod restore;
pub(crate) mod rootfs;
mod runtime_cli;
mod shim;
pub mod signal;
pub mod size;
mod start;
mod stop;
pub mod userns;
mod userns_chown;
mod userns_rootfs;
mod volumes;
mod wait;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use crate::config::EngineConfig;
use crate::error::ErrorKind;
use crate::events::EventBus;
use crate::image::ImageService;

pub use create::{CreateOptions, Created};
pub use index::NameIndex;
pub use record::{ContainerRecord, ContainerState, RecordError, Status};
pub use remove::RemoveOptions;
pub use shim::parse_size as parse_log_size;
pub use stop::StopOptions;
pub use wait::WaitCondition;

/// Failures of container operations, with Docker's texts.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("No such container: {0}")]
    NotFound(String),
    /// Moby's truncindex `ErrAmbiguousPrefix`.
    #[error("multiple IDs found with provided prefix: {0}")]
    AmbiguousPrefix(String),
    #[error("Conflict. The container name \"{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name.")]
    NameConflict { name: String, id: String },
    #[error("Container {0} is not running")]
    NotRunning(String),
    #[error("Container {0} is paused, unpause the container before stopping or killing")]
    Paused(String),
    #[error("Container {0} is not paused")]
    NotPaused(String),
    #[error("Container {0} is already paused")]
    AlreadyPaused(String),
    #[error("cannot remove container \"{name}\": container is running: stop the container before removing or force remove")]
    RemoveRunning { name: String },
    #[error("removal of container {0} is already in progress")]
    RemovalInProgress(String),
    /// Answered as 304 Not Modified (start of a running container, stop of a stopped one).
    #[error("container already in the requested state")]
    NotModified,
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotImplemented(String),
    /// The shim or the runtime refused to create or start the container.
    #[error("failed to create task for container: {0}")]
    CreateTask(String),
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{context}")]
    Shim {
        context: String,
        #[source]
        source: berth_shim::client::ClientError,
    },
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error(transparent)]
    Image(#[from] crate::image::ImageError),
    #[error(transparent)]
    Spec(#[from] crate::spec::SpecError),
    #[error(transparent)]
    Volume(#[from] crate::volume::VolumeError),
    #[error(transparent)]
    Network(#[from] crate::network::NetworkError),
    #[error("background task failed: {0}")]
    Join(String),
}

impl ContainerError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ContainerError::NotFound(_) => ErrorKind::NotFound,
            ContainerError::AmbiguousPrefix(_) | ContainerError::InvalidArgument(_) => {
                ErrorKind::InvalidArgument
            }
            ContainerError::NameConflict { .. }
            | ContainerError::NotRunning(_)
            | ContainerError::Paused(_)
            | ContainerError::NotPaused(_)
            | ContainerError::AlreadyPaused(_)
            | ContainerError::RemoveRunning { .. }
            | ContainerError::RemovalInProgress(_) => ErrorKind::Conflict,
            ContainerError::NotModified => ErrorKind::NotModified,
            ContainerError::NotImplemented(_) => ErrorKind::NotImplemented,
            ContainerError::CreateTask(text) => create_task_kind(text),
            ContainerError::Image(e) => e.kind(),
            ContainerError::Spec(e) => e.kind(),
            ContainerError::Volume(e) => e.kind(),
            ContainerError::Network(e) => e.kind(),
            ContainerError::Io { .. }
            | ContainerError::Shim { .. }
            | ContainerError::Record(_)
            | ContainerError::Join(_) => ErrorKind::Internal,
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> ContainerError {
        ContainerError::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn shim(
        context: impl Into<String>,
        source: berth_shim::client::ClientError,
    ) -> ContainerError {
        ContainerError::Shim {
            context: context.into(),
            source,
        }
    }
}

/// Docker answers 400 when the process cannot be found or executed (the CLI then exits
/// 127 or 126 from the text), 500 for everything else.
fn create_task_kind(text: &str) -> ErrorKind {
    let bad_command = ["executable file not found", "no such file or directory"]
        .iter()
        .chain(["permission denied", "not a directory"].iter())
        .any(|needle| text.contains(needle));
    if bad_command {
        ErrorKind::InvalidArgument
    } else {
        ErrorKind::Internal
    }
}

/// What waiters watch: a counter of exits, the last exit code, and whether the container
/// runs or is gone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lifecycle {
    pub exits: u64,
    pub exit_code: i32,
    pub running: bool,
    pub removed: bool,
}

/// One container: its record behind a lock (state changes are persisted before the lock is
/// released).
pub struct Container {
    pub id: String,
    record: std::sync::Mutex<ContainerRecord>,
    /// Serialises start, stop, restart, remove and the monitor's restarts.
    op: tokio::sync::Mutex<()>,
    lifecycle: tokio::sync::watch::Sender<Lifecycle>,
    /// Current restart delay of the restart policy.
    backoff: std::sync::Mutex<std::time::Duration>,
    /// Number of the current run: a monitor only acts on the run it watches.
    run: std::sync::atomic::AtomicU64,
    /// Attaches waiting for the next run's shim (see [`Container::attach_next_run`]).
    prestart: std::sync::Mutex<Vec<tokio::sync::oneshot::Sender<PrestartTicket>>>,
}

/// Given to an attach made before start once the next run's shim is up and before its
/// process starts; start goes on when every ticket is dropped (connect, then drop it), so
/// the attach misses no output.
pub struct PrestartTicket {
    _connected: tokio::sync::oneshot::Sender<()>,
}

impl Container {
    pub fn new(record: ContainerRecord) -> Container {
        let lifecycle = Lifecycle {
            exits: 0,
            exit_code: record.state.exit_code,
            running: matches!(record.state.status, Status::Running | Status::Paused),
            removed: false,
        };
        Container {
            id: record.id.clone(),
            record: std::sync::Mutex::new(record),
            op: tokio::sync::Mutex::new(()),
            lifecycle: tokio::sync::watch::Sender::new(lifecycle),
            backoff: std::sync::Mutex::new(std::time::Duration::ZERO),
            run: std::sync::atomic::AtomicU64::new(0),
            prestart: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// A snapshot of the record.
    pub fn record(&self) -> ContainerRecord {
        match self.record.lock() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Whether the container's process runs (paused counts as running, as in Docker).
    pub fn is_running(&self) -> bool {
        matches!(self.record().state.status, Status::Running | Status::Paused)
    }

    /// Changes the record under its lock and returns the new snapshot (not persisted).
    fn update<R>(&self, change: impl FnOnce(&mut ContainerRecord) -> R) -> R {
        let mut guard = match self.record.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        change(&mut guard)
    }

    /// For an attach made before start (`docker run`, `docker start -a`): resolves with a
    /// ticket once the shim of the next run is up, before its process starts. Register
    /// before trying the current shim, connect to the shim, then drop the ticket.
    pub fn attach_next_run(&self) -> tokio::sync::oneshot::Receiver<PrestartTicket> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let mut pending = self
            .prestart
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Attaches that connected to the running shim dropped their receiver: forget them.
        pending.retain(|waiting| !waiting.is_closed());
        pending.push(tx);
        rx
    }

    /// Hands a ticket to every waiting attach and waits (bounded) until they connected.
    async fn release_prestart_attaches(&self) {
        let pending: Vec<_> = match self.prestart.lock() {
            Ok(mut pending) => pending.drain(..).collect(),
            Err(poisoned) => poisoned.into_inner().drain(..).collect(),
        };
        let mut acks = Vec::new();
        for waiter in pending {
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            if waiter.send(PrestartTicket { _connected: tx }).is_ok() {
                acks.push(rx);
            }
        }
        for ack in acks {
            // A client that never connects must not hold the container back for long.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), ack).await;
        }
    }

    /// Watches exits and removal.
    pub fn lifecycle(&self) -> tokio::sync::watch::Receiver<Lifecycle> {
        self.lifecycle.subscribe()
    }
}

/// The engine-wide state the container verbs share (held by monitors as well).
pub(crate) struct Inner {
    config: EngineConfig,
    events: Arc<EventBus>,
    images: Arc<ImageService>,
    volumes: Arc<crate::volume::VolumeService>,
    containers: RwLock<BTreeMap<String, Arc<Container>>>,
    names: RwLock<NameIndex>,
    shutting_down: std::sync::atomic::AtomicBool,
    networks: std::sync::OnceLock<Arc<crate::network::NetworkService>>,
}

/// All containers of one engine.
pub struct Containers {
    inner: Arc<Inner>,
    /// Restored containers whose restart policy brings them back, started by
    /// [`Containers::use_networks`].
    at_boot: std::sync::Mutex<Vec<Arc<Container>>>,
}

impl Containers {
    /// Loads every record, reconnects to live shims, records exits that happened while
    /// berthd was down, and brings back containers whose restart policy asks for it.
    pub async fn open(
        config: &EngineConfig,
        events: Arc<EventBus>,
        images: Arc<ImageService>,
        volumes: Arc<crate::volume::VolumeService>,
    ) -> Result<Self, ContainerError> {
        let inner = Arc::new(Inner {
            config: config.clone(),
            events,
            images,
            volumes,
            containers: RwLock::new(BTreeMap::new()),
            names: RwLock::new(NameIndex::default()),
            shutting_down: std::sync::atomic::AtomicBool::new(false),
            networks: std::sync::OnceLock::new(),
        });
        let at_boot = restore::restore(&inner).await?;
        volumes::restore_references(&inner);
        Ok(Containers {
            inner,
            at_boot: std::sync::Mutex::new(at_boot),
        })
    }

    /// Gives containers their networks (set once, right after open), then starts the
    /// restored containers whose restart policy brings them back: not before, or they would
    /// start without their networks.
    pub fn use_networks(&self, networks: Arc<crate::network::NetworkService>) {
        let _ = self.inner.networks.set(networks);
        let at_boot = std::mem::take(&mut *self.at_boot.lock().unwrap_or_else(|e| e.into_inner()));
        restore::start_at_boot(&self.inner, at_boot);
    }

    /// Finds a container by full ID, name (with or without `/`) or unique ID prefix, as
    /// Docker's `GetContainer`.
    pub fn get(&self, name_or_id: &str) -> Result<Arc<Container>, ContainerError> {
        self.inner.get(name_or_id)
    }

    /// Every container, newest first (Docker's `ps` order).
    pub fn list(&self) -> Vec<Arc<Container>> {
        self.inner.list()
    }

    /// `GET /containers/json`: the records `docker ps` shows, newest first.
    pub fn select(
        &self,
        options: &filter::ListOptions,
    ) -> Result<Vec<ContainerRecord>, berth_api::FiltersError> {
        let records = self.list().iter().map(|c| c.record()).collect();
        filter::select(records, options, |query| {
            self.inner.get(query).ok().map(|c| c.id.clone())
        })
    }

    /// `POST /containers/create`.
    pub async fn create(&self, options: CreateOptions) -> Result<Created, ContainerError> {
        create::create(&self.inner, options).await
    }

    /// `POST /containers/{id}/start`.
    pub async fn start(&self, name_or_id: &str) -> Result<(), ContainerError> {
        let container = self.get(name_or_id)?;
        start::start_verb(&self.inner, &container).await
    }

    /// `POST /containers/{id}/stop`.
    pub async fn stop(&self, name_or_id: &str, options: StopOptions) -> Result<(), ContainerError> {
        let container = self.get(name_or_id)?;
        stop::stop_verb(&self.inner, &container, options).await
    }

    /// `POST /containers/{id}/kill`.
    pub async fn kill(&self, name_or_id: &str, signal: Option<&str>) -> Result<(), ContainerError> {
        let container = self.get(name_or_id)?;
        stop::kill_verb(&self.inner, &container, signal).await
    }

    /// `POST /containers/{id}/restart`.
    pub async fn restart(
        &self,
        name_or_id: &str,
        options: StopOptions,
    ) -> Result<(), ContainerError> {
        let container = self.get(name_or_id)?;
        stop::restart_verb(&self.inner, &container, options).await
    }

    /// `DELETE /containers/{id}`.
    pub async fn remove(
        &self,
        name_or_id: &str,
        options: RemoveOptions,
    ) -> Result<(), ContainerError> {
        let container = self.get(name_or_id)?;
        remove::remove_verb(&self.inner, &container, options).await
    }

    /// `POST /containers/prune`: removes stopped containers matching `filters` (until,
    /// label, label!); returns their IDs.
    pub async fn prune(&self, filters: &berth_api::Filters) -> Result<Vec<String>, ContainerError> {
        remove::prune(&self.inner, filters).await
    }

    /// `POST /containers/{id}/wait`: resolves when `condition` is met with the exit code.
    /// The container is looked up first so that a missing one fails before any wait.
    pub fn wait(
        &self,
        name_or_id: &str,
        condition: WaitCondition,
    ) -> Result<wait::WaitFuture, ContainerError> {
        let container = self.get(name_or_id)?;
        Ok(wait::wait(&container, condition))
    }

    /// `POST /containers/{id}/rename`.
    pub fn rename(&self, name_or_id: &str, new_name: &str) -> Result<(), ContainerError> {
        let container = self.get(name_or_id)?;
        self.inner.rename(&container, new_name)
    }

    /// `POST /containers/{id}/pause`.
    pub async fn pause(&self, name_or_id: &str) -> Result<(), ContainerError> {
        let container = self.get(name_or_id)?;
        runtime_cli::pause(&self.inner, &container, true).await
    }

    /// `POST /containers/{id}/unpause`.
    pub async fn unpause(&self, name_or_id: &str) -> Result<(), ContainerError> {
        let container = self.get(name_or_id)?;
        runtime_cli::pause(&self.inner, &container, false).await
    }

    /// `POST /containers/{id}/update`: resources and the restart policy; returns warnings.
    pub async fn update(
        &self,
        name_or_id: &str,
        update: berth_api::container::ContainerUpdateRequest,
    ) -> Result<Vec<String>, ContainerError> {
        let container = self.get(name_or_id)?;
        runtime_cli::update(&self.inner, &container, update).await
    }

    /// The container directory (bundle, hostname, hosts, resolv.conf, logs).
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.inner.config.container_dir(id)
    }

    /// Stops background tasks (restart monitors, health checks); containers keep running.
    pub async fn shutdown(&self) {
        self.inner
            .shutting_down
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Inner {
    fn get(&self, name_or_id: &str) -> Result<Arc<Container>, ContainerError> {
        let containers = read_lock(&self.containers);
        let names = read_lock(&self.names);
        let id = index::resolve(&names, containers.keys(), name_or_id)?;
        containers
            .get(&id)
            .cloned()
            .ok_or_else(|| ContainerError::NotFound(name_or_id.to_string()))
    }

    fn list(&self) -> Vec<Arc<Container>> {
        let mut all: Vec<(String, Arc<Container>)> = read_lock(&self.containers)
            .values()
            .map(|c| (c.record().created, c.clone()))
            .collect();
        all.sort_by(|a, b| b.0.cmp(&a.0));
        all.into_iter().map(|(_, c)| c).collect()
    }

    /// Adds a container to the maps (its name must be reserved already).
    fn insert(&self, container: Arc<Container>) {
        write_lock(&self.containers).insert(container.id.clone(), container);
    }

    /// Drops a container from the maps and frees its name.
    fn forget(&self, container: &Container) {
        write_lock(&self.containers).remove(&container.id);
        write_lock(&self.names).release_id(&container.id);
    }

    fn rename(&self, container: &Arc<Container>, new_name: &str) -> Result<(), ContainerError> {
        let new_name = naming::validate(new_name)?;
        let old_name = container.record().name;
        if old_name == new_name {
            return Err(ContainerError::InvalidArgument(
                "Renaming a container with the same name as its current name".to_string(),
            ));
        }
        write_lock(&self.names).reserve(&new_name, &container.id)?;
        container.update(|record| record.name = new_name.clone());
        if let Err(e) = self.persist(container) {
            container.update(|record| record.name = old_name.clone());
            write_lock(&self.names).release(&new_name);
            return Err(e);
        }
        write_lock(&self.names).release(&old_name);
        let mut extra = BTreeMap::new();
        extra.insert("oldName".to_string(), old_name);
        self.publish(container, "rename", extra);
        Ok(())
    }

    /// Writes the record of `container` to disk.
    fn persist(&self, container: &Container) -> Result<(), ContainerError> {
        let record = container.record();
        record.save(&self.config.container_dir(&container.id))?;
        Ok(())
    }

    /// Publishes a container event with Docker's attributes (image, name, labels + extra).
    fn publish(&self, container: &Container, action: &str, extra: BTreeMap<String, String>) {
        let record = container.record();
        let mut attributes = record.config.labels.clone().unwrap_or_default();
        attributes.insert("image".to_string(), record.config.image.clone());
        attributes.insert(
            "name".to_string(),
            record.name.trim_start_matches('/').to_string(),
        );
        attributes.extend(extra);
        self.events
            .publish("container", action, &container.id, attributes);
    }

    fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(std::sync::atomic::Ordering::SeqCst)
    }
}

fn read_lock<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    match lock.read() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

fn write_lock<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    match lock.write() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Now as Go's RFC 3339 nano text.
pub(crate) fn now_text() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    berth_api::time::format_rfc3339_nano(now.as_secs() as i64, now.subsec_nanos())
}

/// Runs blocking work off the async workers.
pub(crate) async fn blocking<T, F>(work: F) -> Result<T, ContainerError>
where
    F: FnOnce() -> Result<T, ContainerError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ContainerError::Join(e.to_string()))?
}
