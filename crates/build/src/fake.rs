//! An in-memory `Worker` for hermetic tests: images and layers are plain directories under a
//! temporary root, RUN is interpreted by a tiny command language (`echo`, `echo x > f`,
//! `cat f`, `mkdir -p`, `exit N`, lines or `&&`; a lone path runs that file as a script)
//! that sees RUN mounts where the engine would mount them, ADD URLs are served from a
//! table, and every step it is asked to run is recorded.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest as _, Sha256};

use crate::config::RunConfig;
use crate::worker::{
    BaseImage, Download, RunMount, RunMountSource, StepCommit, Worker, WorkerError,
};

/// An image the fake holds.
#[derive(Debug, Clone)]
pub struct FakeImage {
    pub id: String,
    pub parent: String,
    pub config: RunConfig,
    pub container_config: RunConfig,
    /// `(created_by, empty_layer)` per history entry.
    pub history: Vec<(String, bool)>,
    pub author: String,
    pub root: PathBuf,
}

#[derive(Default)]
struct State {
    images: BTreeMap<String, FakeImage>,
    names: BTreeMap<String, String>,
    layers: BTreeMap<String, (String, PathBuf)>,
    runs: Vec<RunConfig>,
    /// The mounts of each RUN, in order.
    run_mounts: Vec<Vec<RunMount>>,
    /// A created container's config and mounts (tmpfs mounts as directories of their own).
    containers: BTreeMap<String, (RunConfig, Vec<(RunMount, PathBuf)>)>,
    /// ADD URLs: body and Last-Modified seconds.
    urls: BTreeMap<String, (Vec<u8>, Option<i64>)>,
    cache: BTreeMap<String, String>,
    /// `(image, parent)` of every squash asked for.
    squashes: Vec<(String, String)>,
    next: u64,
    released: usize,
    /// `COPY --from` source hashes by image id and patterns (fake ids never name two trees).
    copy_from_hashes: BTreeMap<String, Vec<String>>,
    /// How many image trees were mounted (`mount_image`).
    images_mounted: usize,
}

/// The fake worker.
pub struct FakeWorker {
    dir: tempfile::TempDir,
    state: Mutex<State>,
    /// Names RUN steps `signal` and `await` across stages (the order of concurrent steps).
    signals: (Mutex<BTreeSet<String>>, std::sync::Condvar),
}

fn lock(m: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn lock_set(m: &Mutex<BTreeSet<String>>) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn io(op: &str) -> impl Fn(std::io::Error) -> WorkerError + '_ {
    move |e| WorkerError::io(op, e)
}

impl FakeWorker {
    pub fn new() -> Result<FakeWorker, WorkerError> {
        Ok(FakeWorker {
            dir: tempfile::tempdir().map_err(io("creating the fake root"))?,
            state: Mutex::new(State::default()),
            signals: Default::default(),
        })
    }

    /// Adds a base image named `name` whose tree holds `files` (path, content).
    pub fn add_image(
        &self,
        name: &str,
        config: RunConfig,
        files: &[(&str, &str)],
    ) -> Result<String, WorkerError> {
        let mut state = lock(&self.state);
        let id = next_id(&mut state);
        let root = self.dir.path().join(&id[7..]);
        for (path, content) in files {
            let target = root.join(path.trim_start_matches('/'));
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(io("mkdir"))?;
            }
            std::fs::write(&target, content).map_err(io("write"))?;
        }
        std::fs::create_dir_all(&root).map_err(io("mkdir"))?;
        state.images.insert(
            id.clone(),
            FakeImage {
                id: id.clone(),
                parent: String::new(),
                config,
                container_config: RunConfig::default(),
                history: vec![("/bin/sh -c #(nop) ADD file:base in / ".into(), false)],
                author: String::new(),
                root,
            },
        );
        state.names.insert(name.to_string(), id.clone());
        Ok(id)
    }

    pub fn image(&self, name_or_id: &str) -> Option<FakeImage> {
        let state = lock(&self.state);
        let id = state
            .names
            .get(name_or_id)
            .cloned()
            .unwrap_or_else(|| name_or_id.to_string());
        state.images.get(&id).cloned()
    }

    /// Every RUN config started so far, in order.
    pub fn runs(&self) -> Vec<RunConfig> {
        lock(&self.state).runs.clone()
    }

    /// The mounts of every RUN started so far, in order.
    pub fn run_mounts(&self) -> Vec<Vec<RunMount>> {
        lock(&self.state).run_mounts.clone()
    }

    /// Serves `body` at `url` for ADD.
    pub fn serve(&self, url: &str, body: &[u8], last_modified: Option<i64>) {
        lock(&self.state)
            .urls
            .insert(url.to_string(), (body.to_vec(), last_modified));
    }

    /// How many layer keys are still held (0 after a build: nothing leaked).
    pub fn live_layers(&self) -> usize {
        lock(&self.state).layers.len()
    }

    /// `(image, parent)` of every `--squash` asked for, in order.
    pub fn squashes(&self) -> Vec<(String, String)> {
        lock(&self.state).squashes.clone()
    }

    /// How many times an image tree was mounted (COPY --from, RUN --mount from=).
    pub fn images_mounted(&self) -> usize {
        lock(&self.state).images_mounted
    }

    pub fn image_count(&self) -> usize {
        lock(&self.state).images.len()
    }
}

fn next_id(state: &mut State) -> String {
    state.next += 1;
    format!("sha256:{:x}", Sha256::digest(state.next.to_be_bytes()))
}

/// Copies a tree keeping modes and symlinks.
pub fn copy_tree(src: &Path, dst: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    std::fs::create_dir_all(dst)?;
    for entry in std::fs::read_dir(src)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let to = dst.join(entry.file_name());
        if kind.is_dir() {
            copy_tree(&entry.path(), &to)?;
            std::fs::set_permissions(&to, entry.metadata()?.permissions())?;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path())?, &to)?;
        } else {
            std::fs::copy(entry.path(), &to)?;
            let modified = entry.metadata()?.modified()?;
            std::fs::File::options()
                .write(true)
                .open(&to)?
                .set_modified(modified)?;
        }
        let meta = std::fs::symlink_metadata(entry.path())?;
        std::os::unix::fs::lchown(&to, Some(meta.uid()), Some(meta.gid()))?;
    }
    Ok(())
}

/// A listing of a tree (path, mode, content) for change detection.
fn listing(root: &Path) -> Vec<(String, u32, Vec<u8>)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .display()
                .to_string();
            let content = if meta.is_file() {
                std::fs::read(&path).unwrap_or_default()
            } else {
                Vec::new()
            };
            out.push((rel, meta.mode(), content));
            if meta.is_dir() {
                pending.push(path);
            }
        }
    }
    out.sort();
    out
}

impl FakeWorker {
    fn new_layer(&self, parent: &str) -> Result<String, WorkerError> {
        let mut state = lock(&self.state);
        let parent_root = match parent {
            "" => None,
            id => Some(
                state
                    .images
                    .get(id)
                    .ok_or_else(|| WorkerError::ImageNotFound(id.to_string()))?
                    .root
                    .clone(),
            ),
        };
        let key = next_id(&mut state)[7..19].to_string();
        let root = self.dir.path().join(format!("layer-{key}"));
        match parent_root {
            Some(p) => copy_tree(&p, &root).map_err(io("copying the parent"))?,
            None => std::fs::create_dir_all(&root).map_err(io("mkdir"))?,
        }
        state.layers.insert(key.clone(), (parent.to_string(), root));
        Ok(key)
    }

    fn interpret(&self, view: &View, script: &str, out: &mut dyn Write) -> i64 {
        let trimmed = script.trim();
        if trimmed.starts_with('/') && !trimmed.contains(char::is_whitespace) {
            if let Ok(body) = std::fs::read_to_string(view.path(trimmed).0) {
                let body: String = body.lines().skip(1).collect::<Vec<_>>().join("\n");
                return self.interpret(view, &body, out);
            }
        }
        for command in script.lines().flat_map(|l| l.split("&&")).map(str::trim) {
            let words: Vec<&str> = command.split_whitespace().collect();
            match words.as_slice() {
                ["exit", code] => return code.parse().unwrap_or(1),
                ["echo", text @ .., ">", file] => {
                    let (target, read_only) = view.path(file);
                    if read_only {
                        let _ = writeln!(out, "sh: can't create {file}: Read-only file system");
                        return 1;
                    }
                    let _ = std::fs::write(target, format!("{}\n", text.join(" ")));
                }
                ["echo", text @ ..] => {
                    let _ = writeln!(out, "{}", text.join(" "));
                }
                ["cat", file] => match std::fs::read(view.path(file).0) {
                    Ok(body) => {
                        let _ = out.write_all(&body);
                    }
                    Err(_) => {
                        let _ =
                            writeln!(out, "cat: can't open '{file}': No such file or directory");
                        return 1;
                    }
                },
                ["mkdir", "-p", dir] => {
                    let _ = std::fs::create_dir_all(view.path(dir).0);
                }
                ["signal", name] => {
                    let (names, changed) = &self.signals;
                    lock_set(names).insert(name.to_string());
                    changed.notify_all();
                }
                ["await", name] => {
                    let (names, changed) = &self.signals;
                    let (names, _) = changed
                        .wait_timeout_while(
                            lock_set(names),
                            std::time::Duration::from_secs(10),
                            |names| !names.contains(*name),
                        )
                        .unwrap_or_else(|p| p.into_inner());
                    if !names.contains(*name) {
                        let _ = writeln!(out, "await {name}: timed out");
                        return 1;
                    }
                }
                _ => {}
            }
        }
        0
    }
}

/// A RUN container's file system as its command sees it: the layer, with mounts on top.
struct View {
    root: PathBuf,
    mounts: Vec<(RunMount, PathBuf)>,
}

impl View {
    /// The host path of `path` and whether it is on a read-only mount.
    fn path(&self, path: &str) -> (PathBuf, bool) {
        let clean = format!("/{}", path.trim_start_matches('/'));
        let best = self
            .mounts
            .iter()
            .filter(|(m, _)| {
                clean == m.target
                    || clean.starts_with(&format!("{}/", m.target.trim_end_matches('/')))
            })
            .max_by_key(|(m, _)| m.target.len());
        match best {
            Some((m, host)) => {
                let rest = clean[m.target.len()..].trim_start_matches('/');
                let host = if rest.is_empty() {
                    host.clone()
                } else {
                    host.join(rest)
                };
                (host, m.read_only)
            }
            None => (self.root.join(clean.trim_start_matches('/')), false),
        }
    }
}

impl Worker for FakeWorker {
    fn resolve_image(&self, name: &str, _pull: bool) -> Result<BaseImage, WorkerError> {
        let image = self
            .image(name)
            .ok_or_else(|| WorkerError::ImageNotFound(name.to_string()))?;
        Ok(BaseImage {
            id: image.id,
            config: Some(image.config),
            os: "linux".into(),
        })
    }

    fn prepare(&self, parent: &str) -> Result<String, WorkerError> {
        self.new_layer(parent)
    }

    fn layer_root(&self, key: &str) -> Result<PathBuf, WorkerError> {
        lock(&self.state)
            .layers
            .get(key)
            .map(|(_, root)| root.clone())
            .ok_or_else(|| WorkerError::Engine(format!("no layer {key}")))
    }

    fn mount_image(&self, image: &str) -> Result<String, WorkerError> {
        lock(&self.state).images_mounted += 1;
        self.new_layer(image)
    }

    fn copy_from_hashes(&self, key: &str) -> Option<Vec<String>> {
        lock(&self.state).copy_from_hashes.get(key).cloned()
    }

    fn remember_copy_from_hashes(&self, key: &str, hashes: &[String]) {
        lock(&self.state)
            .copy_from_hashes
            .insert(key.to_string(), hashes.to_vec());
    }

    fn create(
        &self,
        parent: &str,
        config: &RunConfig,
        mounts: &[RunMount],
    ) -> Result<String, WorkerError> {
        let key = self.new_layer(parent)?;
        let mut hosts = Vec::new();
        for (n, m) in mounts.iter().enumerate() {
            let host = match &m.source {
                RunMountSource::Bind(path) => path.clone(),
                RunMountSource::Tmpfs { .. } => {
                    let dir = self.dir.path().join(format!("tmpfs-{key}-{n}"));
                    std::fs::create_dir_all(&dir).map_err(io("mkdir"))?;
                    dir
                }
            };
            hosts.push((m.clone(), host));
        }
        let mut state = lock(&self.state);
        state.runs.push(config.clone());
        state.run_mounts.push(mounts.to_vec());
        state
            .containers
            .insert(key.clone(), (config.clone(), hosts));
        Ok(key)
    }

    fn start(&self, container: &str, out: &mut dyn Write) -> Result<i64, WorkerError> {
        let root = self.layer_root(container)?;
        let (config, mounts) = lock(&self.state)
            .containers
            .get(container)
            .cloned()
            .unwrap_or_default();
        let cmd = config.cmd.unwrap_or_default();
        let script = match cmd.as_slice() {
            [_, flag, script] if flag == "-c" => script.clone(),
            other => other.join(" "),
        };
        let view = View { root, mounts };
        Ok(self.interpret(&view, &script, out))
    }

    fn commit(&self, layer: Option<&str>, commit: &StepCommit) -> Result<String, WorkerError> {
        let mut state = lock(&self.state);
        let parent = state.images.get(&commit.parent).cloned();
        let id = next_id(&mut state);
        let root = self.dir.path().join(&id[7..]);
        let layer_root = layer
            .and_then(|k| state.layers.get(k))
            .map(|(_, r)| r.clone());
        let source = layer_root
            .clone()
            .or_else(|| parent.as_ref().map(|p| p.root.clone()));
        match &source {
            Some(src) => copy_tree(src, &root).map_err(io("committing"))?,
            None => std::fs::create_dir_all(&root).map_err(io("mkdir"))?,
        }
        let empty = match (&layer_root, &parent) {
            (None, _) => true,
            (Some(l), Some(p)) => listing(l) == listing(&p.root),
            (Some(l), None) => listing(l).is_empty(),
        };
        let mut history = parent.map(|p| p.history).unwrap_or_default();
        history.push((commit.created_by(), empty));
        state.images.insert(
            id.clone(),
            FakeImage {
                id: id.clone(),
                parent: commit.parent.clone(),
                config: commit.config.clone(),
                container_config: commit.container_config.clone(),
                history,
                author: commit.author.clone(),
                root,
            },
        );
        Ok(id)
    }

    fn squash(&self, image: &str, parent: &str) -> Result<String, WorkerError> {
        let mut state = lock(&self.state);
        let top = state
            .images
            .get(image)
            .cloned()
            .ok_or_else(|| WorkerError::ImageNotFound(image.to_string()))?;
        let kept = match state.images.get(parent) {
            Some(p) => p.history.len(),
            None if parent.is_empty() => 0,
            None => return Err(WorkerError::ImageNotFound(parent.to_string())),
        };
        let id = next_id(&mut state);
        let root = self.dir.path().join(&id[7..]);
        copy_tree(&top.root, &root).map_err(io("squashing"))?;
        let mut history: Vec<(String, bool)> = top
            .history
            .iter()
            .enumerate()
            .map(|(i, (by, empty))| (by.clone(), *empty || i >= kept))
            .collect();
        // The merge entry has no created_by, only moby's comment: the fake keeps the
        // comment in its place.
        let comment = if parent.is_empty() {
            format!("create new from {image}")
        } else {
            format!("merge {image} to {parent}")
        };
        history.push((comment, false));
        state.squashes.push((image.to_string(), parent.to_string()));
        state.images.insert(
            id.clone(),
            FakeImage {
                id: id.clone(),
                root,
                history,
                ..top
            },
        );
        Ok(id)
    }

    fn release(&self, key: &str) {
        let mut state = lock(&self.state);
        if let Some((_, root)) = state.layers.remove(key) {
            let _ = std::fs::remove_dir_all(root);
            state.released += 1;
        }
        if let Some((_, mounts)) = state.containers.remove(key) {
            for (m, host) in mounts {
                if matches!(m.source, RunMountSource::Tmpfs { .. }) {
                    let _ = std::fs::remove_dir_all(host);
                }
            }
        }
    }

    fn tag(&self, image: &str, reference: &str) -> Result<(), WorkerError> {
        let mut state = lock(&self.state);
        if !state.images.contains_key(image) {
            return Err(WorkerError::ImageNotFound(image.to_string()));
        }
        state.names.insert(reference.to_string(), image.to_string());
        Ok(())
    }

    fn cache_get(&self, key: &str) -> Option<String> {
        let state = lock(&self.state);
        state
            .cache
            .get(key)
            .filter(|id| state.images.contains_key(*id))
            .cloned()
    }

    fn cache_put(&self, key: &str, image: &str) {
        lock(&self.state)
            .cache
            .insert(key.to_string(), image.to_string());
    }

    fn cache_mount_dir(&self, id: &str) -> Result<PathBuf, WorkerError> {
        let name = format!("{:x}", Sha256::digest(id.as_bytes()));
        let dir = self.dir.path().join("cache-mounts").join(name);
        std::fs::create_dir_all(&dir).map_err(io("mkdir"))?;
        Ok(dir)
    }

    fn scratch_dir(&self) -> Result<tempfile::TempDir, WorkerError> {
        tempfile::tempdir_in(self.dir.path()).map_err(io("creating a scratch directory"))
    }

    fn download(&self, url: &str, dest: &Path) -> Result<Download, WorkerError> {
        let (body, last_modified) = lock(&self.state).urls.get(url).cloned().ok_or_else(|| {
            WorkerError::Engine(format!("failed to GET {url} with status 404 Not Found"))
        })?;
        std::fs::write(dest, body).map_err(io("writing the download"))?;
        Ok(Download {
            path: dest.to_path_buf(),
            last_modified,
        })
    }
}
