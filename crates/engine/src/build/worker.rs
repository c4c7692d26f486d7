//! berth-build's `Worker` over the engine: layers are snapshots mounted under
//! `<data-root>/build/mnt/<key>`, RUN steps are real containers (through berth-shim and the
//! OCI runtime, with the build's host settings (network, extra hosts, shm size, ulimits,
//! limits), RUN mounts as bind and tmpfs mounts) whose output is
//! followed from their json-file log, commits go through [`Inner::build_commit`]; cache
//! mounts live under `<data-root>/build/cache-mounts/<id>`. Called from blocking threads;
//! async engine calls are driven with the runtime handle.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use berth_api::container::host_config::TmpfsOptions;
use berth_api::container::{Config, ContainerCreateRequest, HostConfig, Mount};
use berth_api::StrSlice;
use berth_build::{
    BaseImage, Download, RunConfig, RunMount, RunMountSource, StepCommit, Worker, WorkerError,
};
use berth_oci::Digest;
use tokio::runtime::Handle;

use super::cache::CacheIndex;
use crate::container::{CreateOptions, RemoveOptions, WaitCondition};
use crate::Engine;

enum Held {
    /// A snapshot mounted at the path.
    Snapshot(PathBuf),
    /// A RUN container (its rootfs snapshot is keyed by its id) and its mount targets.
    Container(Vec<String>),
}

/// The engine worker of one build.
pub struct EngineWorker {
    engine: Arc<Engine>,
    handle: Handle,
    dir: PathBuf,
    held: Mutex<BTreeMap<String, Held>>,
    cache: CacheIndex,
    /// Every RUN container's host config but its mounts.
    host_config: HostConfig,
    pulls: Pulls,
}

/// What pulling a FROM image needs.
#[derive(Debug, Clone, Default)]
pub struct Pulls {
    /// `X-Registry-Config` as the client sent it.
    pub registry_config: String,
    /// `--platform`.
    pub platform: String,
}

impl Pulls {
    /// The `X-Registry-Auth` for `image`'s registry from the build's registry config (the
    /// docker CLI keys Docker Hub as `https://index.docker.io/v1/`); empty without one.
    fn auth_for(&self, image: &str) -> String {
        use base64::Engine as _;
        let Ok(reference) = berth_oci::Reference::parse_normalized(image) else {
            return String::new();
        };
        let domain = reference.domain();
        let engine = base64::engine::general_purpose::URL_SAFE;
        let decoded = engine.decode(self.registry_config.trim()).or_else(|_| {
            base64::engine::general_purpose::STANDARD.decode(self.registry_config.trim())
        });
        let Ok(config) = decoded else {
            return String::new();
        };
        let Ok(map) = serde_json::from_slice::<BTreeMap<String, berth_api::AuthConfig>>(&config)
        else {
            return String::new();
        };
        let hub = domain == "docker.io";
        map.iter()
            .find(|(key, _)| {
                let host = key
                    .trim_start_matches("https://")
                    .trim_start_matches("http://")
                    .split('/')
                    .next()
                    .unwrap_or_default();
                host == domain
                    || (hub && (host == "index.docker.io" || host == "registry-1.docker.io"))
            })
            .map(|(_, auth)| auth.to_registry_auth_header())
            .unwrap_or_default()
    }
}

fn engine_error(e: impl std::fmt::Display) -> WorkerError {
    WorkerError::Engine(e.to_string())
}

fn held(m: &Mutex<BTreeMap<String, Held>>) -> std::sync::MutexGuard<'_, BTreeMap<String, Held>> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn convert<A: serde::Serialize, B: serde::de::DeserializeOwned>(a: &A) -> Result<B, WorkerError> {
    serde_json::to_value(a)
        .and_then(serde_json::from_value)
        .map_err(engine_error)
}

impl EngineWorker {
    pub fn new(
        engine: Arc<Engine>,
        handle: Handle,
        dir: PathBuf,
        host_config: HostConfig,
        pulls: Pulls,
    ) -> EngineWorker {
        let cache = CacheIndex::new(dir.join("cache.json"));
        EngineWorker {
            engine,
            handle,
            dir,
            held: Mutex::new(BTreeMap::new()),
            cache,
            host_config,
            pulls,
        }
    }

    /// Makes the build's step images durable (they are kept in memory and their blob
    /// directory unsynced until then; see `Inner::store_build_image`). Run before a tag
    /// and when the build ends, whether it failed or not (the steps that ran stay cache).
    pub fn flush(&self) -> Result<(), WorkerError> {
        let images = self.engine.images.clone();
        let _in_flight = self.handle.block_on(images.gc_gate.read());
        images.inner.flush_build_images().map_err(engine_error)
    }

    /// Releases whatever a failed build still holds.
    pub fn release_all(&self) {
        let keys: Vec<String> = held(&self.held).keys().cloned().collect();
        for key in keys {
            self.release(&key);
        }
    }

    fn new_key() -> String {
        use rand::Rng;
        let bytes: [u8; 16] = rand::thread_rng().gen();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        format!("build-{hex}")
    }

    fn mount_snapshot(&self, parent: &str) -> Result<String, WorkerError> {
        let key = Self::new_key();
        let images = self.engine.images.clone();
        let mounts = if parent.is_empty() {
            let inner = images.inner.clone();
            let k = key.clone();
            inner
                .snapshotter
                .prepare_scratch(&k, None)
                .map_err(engine_error)?
        } else {
            let id = Digest::parse(parent).map_err(engine_error)?;
            self.handle
                .block_on(images.prepare_scratch_rootfs(&id, &key))
                .map_err(engine_error)?
        };
        let target = self.dir.join("mnt").join(&key);
        // Disposable (overlayfs `volatile`): the layer is diffed into the content store and
        // thrown away, so its unmount need not sync the whole upper filesystem.
        if let Err(e) = crate::container::rootfs::mount_for(&mounts, &target, true) {
            let _ = images.inner.remove_rootfs(&key);
            return Err(engine_error(e));
        }
        held(&self.held).insert(key.clone(), Held::Snapshot(target));
        Ok(key)
    }
}

impl EngineWorker {
    /// Unmounts the step layer `key` before its commit (the builder releases it right
    /// after, and a commit may make its snapshot the new layer's own, which must not be
    /// mounted as an upper anywhere); true when nothing is mounted on it any more.
    fn unmount_layer(&self, key: &str) -> bool {
        let target = match held(&self.held).get(key) {
            Some(Held::Snapshot(target)) => target.clone(),
            Some(Held::Container(_)) => {
                crate::container::rootfs::rootfs_path(&self.engine.config.container_dir(key))
            }
            None => return false,
        };
        crate::container::rootfs::unmount(&target).is_ok()
    }
}

/// How many `COPY --from` hash sets the process remembers before it starts over.
const FROM_MEMO_ENTRIES: usize = 4096;

/// `COPY --from=<image id>` source hashes by image id and patterns, for every build of this
/// process: an image id is the digest of its config, which names its layers' DiffIDs, so
/// one id always holds the same files and a hash computed once stays right (and a pruned
/// image's entry is never asked for again). Kept in memory only: a restart hashes again.
fn from_memo() -> std::sync::MutexGuard<'static, BTreeMap<String, Vec<String>>> {
    static MEMO: Mutex<BTreeMap<String, Vec<String>>> = Mutex::new(BTreeMap::new());
    MEMO.lock().unwrap_or_else(|p| p.into_inner())
}

impl EngineWorker {
    /// Pulls a FROM image, telling `say` its steps as the docker CLI prints a pull without
    /// a terminal (`<id>: <status>` or `<status>` lines; byte progress left out).
    fn pull(&self, name: &str, say: &dyn Fn(&str)) -> Result<(), WorkerError> {
        let (tx, mut rx) =
            tokio::sync::mpsc::unbounded_channel::<berth_api::progress::JsonMessage>();
        let request = crate::image::PullRequest {
            image: name.to_string(),
            tag: String::new(),
            platform: self.pulls.platform.clone(),
            registry_auth: self.pulls.auth_for(name),
        };
        let pulled = self.handle.block_on(async {
            let pull = self.engine.images.pull(request, tx);
            tokio::pin!(pull);
            loop {
                tokio::select! {
                    result = &mut pull => break result,
                    Some(message) = rx.recv() => say_progress(&message, say),
                }
            }
        });
        while let Ok(message) = rx.try_recv() {
            say_progress(&message, say);
        }
        pulled.map_err(engine_error)
    }
}

/// One pull message as a line, unless it only reports byte progress.
fn say_progress(message: &berth_api::progress::JsonMessage, say: &dyn Fn(&str)) {
    let moving = message
        .progress_detail
        .as_ref()
        .is_some_and(|d| d.current != 0 || d.total != 0);
    if moving || !message.progress.is_empty() || message.status.is_empty() {
        return;
    }
    if message.id.is_empty() {
        say(&format!("{}\n", message.status));
    } else {
        say(&format!("{}: {}\n", message.id, message.status));
    }
}

impl Worker for EngineWorker {
    fn resolve_image(&self, name: &str, pull: bool) -> Result<BaseImage, WorkerError> {
        self.resolve_image_logged(name, pull, &|_| {})
    }

    fn resolve_image_logged(
        &self,
        name: &str,
        pull: bool,
        say: &dyn Fn(&str),
    ) -> Result<BaseImage, WorkerError> {
        let lookup = || self.handle.block_on(self.engine.images.lookup(name));
        // As dockerd's classic builder: a FROM image that is not here is pulled, and
        // `--pull` pulls even one that is.
        let info = match lookup() {
            Ok(info) if !pull => info,
            Err(e) if e.kind() != berth_api::ErrorKind::NotFound => return Err(engine_error(e)),
            _ => {
                self.pull(name, say)?;
                lookup().map_err(|e| match e.kind() {
                    berth_api::ErrorKind::NotFound => WorkerError::ImageNotFound(name.to_string()),
                    _ => engine_error(e),
                })?
            }
        };
        // The trust policy governs FROM as it governs create (crate::trust::local).
        self.handle
            .block_on(self.engine.images.check_trusted(name))
            .map_err(engine_error)?;
        let config = match &info.config.config {
            Some(c) => Some(convert(c)?),
            None => None,
        };
        Ok(BaseImage {
            id: info.id.to_string(),
            config,
            os: info.config.os.clone(),
        })
    }

    fn prepare(&self, parent: &str) -> Result<String, WorkerError> {
        self.mount_snapshot(parent)
    }

    fn layer_root(&self, key: &str) -> Result<PathBuf, WorkerError> {
        match held(&self.held).get(key) {
            Some(Held::Snapshot(path)) => Ok(path.clone()),
            _ => Err(WorkerError::Engine(format!("layer {key} is not mounted"))),
        }
    }

    fn mount_image(&self, image: &str) -> Result<String, WorkerError> {
        let id = self.resolve_image(image, false)?.id;
        self.mount_snapshot(&id)
    }

    fn create(
        &self,
        parent: &str,
        config: &RunConfig,
        mounts: &[RunMount],
    ) -> Result<String, WorkerError> {
        if parent.is_empty() {
            return Err(WorkerError::Engine(
                "cannot run a command in a scratch image without files: COPY a shell first".into(),
            ));
        }
        let mut api: Config = convert(config)?;
        api.image = parent.to_string();
        // No entrypoint: the step's command runs as given (Docker's `[""]` override).
        api.entrypoint = Some(StrSlice(vec![String::new()]));
        api.healthcheck = None;
        api.labels
            .get_or_insert_with(Default::default)
            .insert(super::BUILD_STEP_LABEL.to_string(), String::new());
        let host_config = HostConfig {
            mounts: (!mounts.is_empty()).then(|| mounts.iter().map(api_mount).collect()),
            ..self.host_config.clone()
        };
        let created = self
            .handle
            .block_on(self.engine.containers.create(CreateOptions {
                name: None,
                platform: None,
                request: ContainerCreateRequest {
                    config: api,
                    host_config: Some(host_config),
                    ..ContainerCreateRequest::default()
                },
            }))
            .map_err(engine_error)?;
        let targets = mounts.iter().map(|m| m.target.clone()).collect();
        held(&self.held).insert(created.id.clone(), Held::Container(targets));
        Ok(created.id)
    }

    fn start(&self, container: &str, out: &mut dyn Write) -> Result<i64, WorkerError> {
        let engine = self.engine.clone();
        self.handle.block_on(async {
            let wait = engine
                .containers
                .wait(container, WaitCondition::NextExit)
                .map_err(engine_error)?;
            engine
                .containers
                .start(container)
                .await
                .map_err(engine_error)?;
            let code = relay_output(&engine, container, wait, out).await;
            let targets = match held(&self.held).get(container) {
                Some(Held::Container(targets)) => targets.clone(),
                _ => Vec::new(),
            };
            if !targets.is_empty() {
                if let Ok(mounts) = engine.images.rootfs_mounts(container).await {
                    super::mount_stubs::remove(&mounts, &targets);
                }
            }
            Ok(code)
        })
    }

    fn commit(&self, layer: Option<&str>, commit: &StepCommit) -> Result<String, WorkerError> {
        let in_place = layer.is_some_and(|key| self.unmount_layer(key));
        let images = self.engine.images.clone();
        let _in_flight = self.handle.block_on(images.gc_gate.read());
        images
            .inner
            .build_commit(layer, commit, in_place)
            .map(|id| id.to_string())
            .map_err(engine_error)
    }

    fn squash(&self, image: &str, parent: &str) -> Result<String, WorkerError> {
        let key = self.mount_snapshot(parent)?;
        let _layer = berth_build::worker::LayerGuard {
            worker: self,
            key: key.clone(),
        };
        let root = self.layer_root(&key)?;
        let images = self.engine.images.clone();
        let _in_flight = self.handle.block_on(images.gc_gate.read());
        images
            .inner
            .build_squash(image, parent, &key, &root)
            .map(|id| id.to_string())
            .map_err(engine_error)
    }

    fn release(&self, key: &str) {
        let Some(entry) = held(&self.held).remove(key) else {
            return;
        };
        match entry {
            Held::Snapshot(target) => {
                let _ = crate::container::rootfs::unmount(&target);
                let _ = std::fs::remove_dir(&target);
                let _ = self.engine.images.inner.remove_rootfs(key);
            }
            Held::Container(_) => {
                let options = RemoveOptions {
                    force: true,
                    ..RemoveOptions::default()
                };
                let _ = self
                    .handle
                    .block_on(self.engine.containers.remove(key, options));
            }
        }
    }

    fn tag(&self, image: &str, reference: &str) -> Result<(), WorkerError> {
        // A tag is durable: so must the step images be that it may name.
        self.flush()?;
        self.handle
            .block_on(self.engine.images.tag(image, reference))
            .map_err(engine_error)
    }

    fn cache_get(&self, key: &str) -> Option<String> {
        let id = self.cache.get(key)?;
        self.handle
            .block_on(self.engine.images.lookup(&id))
            .ok()
            .map(|_| id)
    }

    fn cache_put(&self, key: &str, image: &str) {
        self.cache.put(key, image);
    }

    fn copy_from_hashes(&self, key: &str) -> Option<Vec<String>> {
        from_memo().get(key).cloned()
    }

    fn remember_copy_from_hashes(&self, key: &str, hashes: &[String]) {
        let mut memo = from_memo();
        if memo.len() >= FROM_MEMO_ENTRIES {
            memo.clear();
        }
        memo.insert(key.to_string(), hashes.to_vec());
    }

    fn cache_from(
        &self,
        sources: &[String],
        parent: &str,
        created_by: &str,
        config: &RunConfig,
    ) -> Option<String> {
        // Sources that are not here are skipped, as moby warns and goes on.
        let ids: Vec<Digest> = sources
            .iter()
            .filter_map(|name| self.handle.block_on(self.engine.images.lookup(name)).ok())
            .map(|info| info.id)
            .collect();
        if ids.is_empty() {
            return None;
        }
        let images = self.engine.images.clone();
        let _in_flight = self.handle.block_on(images.gc_gate.read());
        images
            .inner
            .build_cache_from(&ids, parent, created_by, config)
            .ok()
            .flatten()
            .map(|id| id.to_string())
    }

    fn cache_mount_dir(&self, id: &str) -> Result<PathBuf, WorkerError> {
        let dir = self.dir.join("cache-mounts").join(cache_mount_name(id));
        std::fs::create_dir_all(&dir).map_err(|e| WorkerError::io("creating a cache mount", e))?;
        Ok(dir)
    }

    fn scratch_dir(&self) -> Result<tempfile::TempDir, WorkerError> {
        let base = self.dir.join("tmp");
        std::fs::create_dir_all(&base)
            .map_err(|e| WorkerError::io("creating the build's scratch directory", e))?;
        tempfile::Builder::new()
            .prefix("step-")
            .tempdir_in(&base)
            .map_err(|e| WorkerError::io("creating the build's scratch directory", e))
    }

    fn download(&self, url: &str, dest: &std::path::Path) -> Result<Download, WorkerError> {
        self.handle.block_on(super::download::fetch(url, dest))
    }
}

/// A cache mount id as one file name: letters, digits, `-`, `_` and `.` kept, anything else
/// (`/` of the default id, the target) as `%xx`.
fn cache_mount_name(id: &str) -> String {
    let mut out = String::new();
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_') || (b == b'.' && !out.is_empty()) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02x}"));
        }
    }
    out
}

/// Copies a RUN step's output to `out` while it runs and returns its exit code once it
/// exits. The log follower polls its file (every 100 ms), so the exit ends the follow at
/// once and a plain read of the log then delivers the entries the follower had not reached.
async fn relay_output(
    engine: &Engine,
    container: &str,
    wait: impl std::future::Future<Output = i64>,
    out: &mut dyn Write,
) -> i64 {
    let options = |follow| crate::logs::LogOptions {
        stdout: true,
        stderr: true,
        follow,
        ..crate::logs::LogOptions::default()
    };
    tokio::pin!(wait);
    let mut seen = 0usize;
    let code = match crate::attach::container_logs(engine, container, options(true)) {
        Ok((mut logs, _)) => loop {
            tokio::select! {
                code = &mut wait => break code,
                entry = logs.next() => match entry {
                    Some(Ok(entry)) => {
                        let _ = out.write_all(&entry.line);
                        seen += 1;
                    }
                    Some(Err(_)) => {}
                    None => break (&mut wait).await,
                },
            }
        },
        Err(_) => (&mut wait).await,
    };
    if let Ok((mut logs, _)) = crate::attach::container_logs(engine, container, options(false)) {
        let mut index = 0usize;
        while let Some(entry) = logs.next().await {
            if let Ok(entry) = entry {
                if index >= seen {
                    let _ = out.write_all(&entry.line);
                }
                index += 1;
            }
        }
    }
    code
}

/// A RUN mount as an API mount of the step's container.
fn api_mount(m: &RunMount) -> Mount {
    match &m.source {
        RunMountSource::Bind(source) => Mount {
            r#type: "bind".into(),
            source: source.display().to_string(),
            target: m.target.clone(),
            read_only: m.read_only,
            ..Mount::default()
        },
        RunMountSource::Tmpfs { size } => Mount {
            r#type: "tmpfs".into(),
            target: m.target.clone(),
            read_only: m.read_only,
            tmpfs_options: Some(TmpfsOptions {
                size_bytes: *size,
                ..TmpfsOptions::default()
            }),
            ..Mount::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_mount_ids_become_single_file_names() {
        assert_eq!(cache_mount_name("/root/.cache"), "%2froot%2f.cache");
        assert_eq!(cache_mount_name("go-build"), "go-build");
        assert_eq!(cache_mount_name(".."), "%2e.");
    }

    #[test]
    fn from_images_are_pulled_with_their_registrys_credentials() {
        use base64::Engine as _;
        let config = serde_json::json!({
            "127.0.0.1:5000": {"username": "local", "password": "pw"},
            "https://index.docker.io/v1/": {"username": "hub", "password": "hubpw"},
        });
        let pulls = Pulls {
            registry_config: base64::engine::general_purpose::URL_SAFE
                .encode(serde_json::to_vec(&config).unwrap()),
            platform: String::new(),
        };
        let user = |image: &str| {
            let header = pulls.auth_for(image);
            if header.is_empty() {
                return String::new();
            }
            berth_api::AuthConfig::from_registry_auth_header(&header)
                .unwrap()
                .username
        };
        assert_eq!(user("127.0.0.1:5000/team/app:1"), "local");
        assert_eq!(user("busybox"), "hub");
        assert_eq!(user("docker.io/library/alpine:3"), "hub");
        assert_eq!(user("quay.io/x/y"), "");
        assert_eq!(Pulls::default().auth_for("busybox"), "");
    }
}
