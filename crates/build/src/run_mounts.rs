//! `RUN --mount` as BuildKit's dockerfile2llb gives it meaning (`dispatchRunMounts`):
//! cache mounts (a persistent directory per id, `sharing=shared|private|locked`), tmpfs,
//! bind mounts of the context or of a stage's or image's tree (read-only by default; a
//! read-write one writes to a throwaway copy) and build secrets (a file under
//! /run/secrets, or only an environment variable). Nothing written under a mount lands in
//! the step's layer: the worker mounts them over the container's rootfs.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

use berth_dockerfile::instructions::{CacheSharing, Mount, MountType};

use crate::copy;
use crate::dispatch::{normalize_workdir, Env};
use crate::worker::{LayerGuard, RunMount, RunMountSource};
use crate::BuildError;

/// Cache directories in use by running steps of this process, for `sharing=`.
struct CacheUse {
    /// Users of each directory.
    users: Mutex<BTreeMap<PathBuf, usize>>,
    /// Signalled when a `locked` user leaves.
    freed: Condvar,
}

static CACHE_USE: CacheUse = CacheUse {
    users: Mutex::new(BTreeMap::new()),
    freed: Condvar::new(),
};

/// Holds a cache directory for one step; gives it back on drop.
pub(crate) struct CacheHold {
    dir: PathBuf,
    /// A `locked` holder keeps every other user out.
    exclusive: bool,
}

impl Drop for CacheHold {
    fn drop(&mut self) {
        let mut users = CACHE_USE.users.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = users.get_mut(&self.dir) {
            *n = n.saturating_sub(if self.exclusive { usize::MAX } else { 1 });
            if *n == 0 {
                users.remove(&self.dir);
            }
        }
        CACHE_USE.freed.notify_all();
    }
}

/// An exclusive holder counts as "all users" so shared users wait for it too.
pub(crate) fn hold(dir: PathBuf, exclusive: bool) -> CacheHold {
    let mut users = CACHE_USE.users.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        let busy = users.get(&dir).copied().unwrap_or(0);
        let blocked = if exclusive {
            busy > 0
        } else {
            busy == usize::MAX
        };
        if !blocked {
            break;
        }
        users = CACHE_USE
            .freed
            .wait(users)
            .unwrap_or_else(|p| p.into_inner());
    }
    let entry = users.entry(dir.clone()).or_insert(0);
    *entry = if exclusive { usize::MAX } else { *entry + 1 };
    CacheHold { dir, exclusive }
}

/// Whether nobody holds `dir` now (for `sharing=private`).
pub(crate) fn is_free(dir: &Path) -> bool {
    let users = CACHE_USE.users.lock().unwrap_or_else(|p| p.into_inner());
    users.get(dir).copied().unwrap_or(0) == 0
}

/// The mounts of one RUN, with what must live until the step's container is gone.
pub struct ResolvedMounts<'a> {
    pub mounts: Vec<RunMount>,
    /// `NAME=value` of `env=` secrets.
    pub env: Vec<String>,
    _holds: Vec<CacheHold>,
    _layers: Vec<LayerGuard<'a>>,
    _scratch: Option<tempfile::TempDir>,
}

impl ResolvedMounts<'_> {
    /// No mounts.
    pub fn none() -> ResolvedMounts<'static> {
        ResolvedMounts {
            mounts: Vec::new(),
            env: Vec::new(),
            _holds: Vec::new(),
            _layers: Vec::new(),
            _scratch: None,
        }
    }
}

fn io(op: String) -> impl Fn(std::io::Error) -> BuildError {
    move |source| BuildError::Io {
        op: op.clone(),
        source,
    }
}

/// A mount's target: absolute, or relative to the working directory (as BuildKit joins it).
fn target_path(workdir: &str, target: &str) -> String {
    normalize_workdir(workdir, target)
}

/// The text of the mounts that goes into the step's cache key: the mount specs, and for
/// binds the content they show (context hash or image id). Cache and secret contents are not
/// part of it, as in BuildKit.
pub fn cache_text(env: &Env, workdir: &str, mounts: &[Mount]) -> Result<String, BuildError> {
    let mut text = String::new();
    for m in mounts {
        text.push_str(&format!("{}|{m:?};", target_path(workdir, &m.target)));
        if m.mount_type == MountType::Bind {
            text.push_str(&bind_content_key(env, m)?);
        }
    }
    Ok(text)
}

fn bind_content_key(env: &Env, m: &Mount) -> Result<String, BuildError> {
    if !m.from.is_empty() {
        return Ok(match (env.stage_images)(&m.from) {
            Some(id) => id,
            None => env.worker.resolve_image(&m.from, false)?.id,
        });
    }
    let source = if m.source.is_empty() { "." } else { &m.source };
    let mut hashes = Vec::new();
    for found in env.context.resolve(source)? {
        hashes.push(env.context.source_hash(&found)?);
    }
    Ok(hashes.join(","))
}

/// Resolves a RUN's mounts; `workdir` places relative targets.
pub fn resolve<'a>(
    env: &Env<'a>,
    workdir: &str,
    mounts: &[Mount],
) -> Result<ResolvedMounts<'a>, BuildError> {
    let mut out = ResolvedMounts::none();
    if mounts.is_empty() {
        return Ok(out);
    }
    let scratch = env.worker.scratch_dir()?;
    let mut targets = BTreeSet::new();
    for (n, m) in mounts.iter().enumerate() {
        let target = match (m.mount_type, m.target.is_empty()) {
            (MountType::Secret, true) => String::new(),
            (_, true) => {
                return Err(BuildError::Expand(format!(
                    "mount {}: target is required",
                    m.mount_type.as_str()
                )))
            }
            _ => target_path(workdir, &m.target),
        };
        let slot = scratch.path().join(n.to_string());
        let mount = match m.mount_type {
            MountType::Cache => cache(env, m, &target, &mut out)?,
            MountType::Tmpfs => Some(RunMount {
                target: target.clone(),
                source: RunMountSource::Tmpfs { size: m.size_limit },
                read_only: false,
            }),
            MountType::Bind => Some(bind(env, m, &target, &slot, &mut out)?),
            MountType::Secret => secret(env, m, &target, &slot, &mut out)?,
            MountType::Ssh => return Err(BuildError::NotImplemented(
                "RUN --mount=type=ssh (the classic POST /build has no session to forward an agent)"
                    .into(),
            )),
        };
        if let Some(mount) = mount {
            if !targets.insert(mount.target.clone()) {
                return Err(BuildError::Expand(format!(
                    "duplicate mount target {}",
                    mount.target
                )));
            }
            out.mounts.push(mount);
        }
    }
    out._scratch = Some(scratch);
    Ok(out)
}

/// `type=cache`: the id's persistent directory (id defaults to the target), created with
/// `mode`/`uid`/`gid` (0755, root); `private` takes a directory of its own when the id's is
/// in use, `locked` waits until nobody else uses it.
fn cache(
    env: &Env,
    m: &Mount,
    target: &str,
    out: &mut ResolvedMounts,
) -> Result<Option<RunMount>, BuildError> {
    if !m.from.is_empty() {
        return Err(BuildError::NotImplemented(
            "RUN --mount=type=cache,from= (a cache seeded from a stage)".into(),
        ));
    }
    let id = if m.cache_id.is_empty() {
        target.to_string()
    } else {
        m.cache_id.clone()
    };
    let sharing = m.cache_sharing.unwrap_or(CacheSharing::Shared);
    let mut dir = env.worker.cache_mount_dir(&id)?;
    if sharing == CacheSharing::Private {
        let mut n = 1;
        while !is_free(&dir) {
            dir = env.worker.cache_mount_dir(&format!("{id}#private{n}"))?;
            n += 1;
        }
    }
    out._holds
        .push(hold(dir.clone(), sharing == CacheSharing::Locked));
    let fresh = std::fs::read_dir(&dir)
        .map(|mut d| d.next().is_none())
        .unwrap_or(false);
    if fresh {
        let mode = m.mode.unwrap_or(0o755) as u32;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode))
            .map_err(io(format!("chmod {}", dir.display())))?;
        chown(&dir, m.uid.unwrap_or(0) as u32, m.gid.unwrap_or(0) as u32)?;
    }
    Ok(Some(RunMount {
        target: target.to_string(),
        source: RunMountSource::Bind(dir),
        read_only: m.read_only,
    }))
}

/// Chowns unless the owner already matches. An unprivileged process (the hermetic unit
/// tests) cannot give files away, so it keeps its own; berthd runs as root.
fn chown(path: &Path, uid: u32, gid: u32) -> Result<(), BuildError> {
    let me = copy::owner(Path::new("/proc/self")).unwrap_or((0, 0));
    if copy::owner(path) == Some((uid, gid)) || me.0 != 0 {
        return Ok(());
    }
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))
        .map_err(io(format!("chown {}", path.display())))
}

/// `type=bind`: `source` (default the root) of the context, or of `from=` (a stage or an
/// image). Read-write binds get a copy, so what the step writes there is dropped.
fn bind<'a>(
    env: &Env<'a>,
    m: &Mount,
    target: &str,
    slot: &Path,
    out: &mut ResolvedMounts<'a>,
) -> Result<RunMount, BuildError> {
    let root = if m.from.is_empty() {
        env.context.materialize()?.to_path_buf()
    } else {
        let image = match (env.stage_images)(&m.from) {
            Some(id) => id,
            None => env.worker.resolve_image(&m.from, false)?.id,
        };
        let guard = LayerGuard {
            worker: env.worker,
            key: env.worker.mount_image(&image)?,
        };
        let root = env.worker.layer_root(&guard.key)?;
        out._layers.push(guard);
        root
    };
    let source = copy::resolve_in_root(&root, &m.source);
    if std::fs::symlink_metadata(&source).is_err() {
        return Err(BuildError::Copy(format!(
            "failed to compute cache key: \"/{}\": not found",
            m.source.trim_start_matches('/')
        )));
    }
    let source = if m.read_only {
        source
    } else {
        let tree = crate::context::SourceRoot::tree(&root);
        let found = tree.resolve(if m.source.is_empty() { "." } else { &m.source })?;
        std::fs::create_dir_all(slot).map_err(io(format!("mkdir {}", slot.display())))?;
        let uid_gid = copy::owner(slot).unwrap_or((0, 0));
        let options = copy::CopyOptions {
            uid: uid_gid.0,
            gid: uid_gid.1,
            chmod: None,
            extract: false,
        };
        let dest = if source.is_dir() { "/copy/" } else { "/copy" };
        copy::copy_sources(slot, &found, dest, options)?;
        slot.join("copy")
    };
    Ok(RunMount {
        target: target.to_string(),
        source: RunMountSource::Bind(source),
        read_only: m.read_only,
    })
}

/// `type=secret`: id from `id=` (or `source=`, or the target's base name); a file at the
/// target (default /run/secrets/<id>, mode 0400) and/or an `env=` variable. A missing
/// secret is an error only when `required`.
fn secret(
    env: &Env,
    m: &Mount,
    target: &str,
    slot: &Path,
    out: &mut ResolvedMounts,
) -> Result<Option<RunMount>, BuildError> {
    let id = if !m.source.is_empty() {
        m.source.clone()
    } else if !m.cache_id.is_empty() {
        m.cache_id.clone()
    } else {
        target.rsplit('/').next().unwrap_or_default().to_string()
    };
    let Some(data) = env.secrets.get(&id) else {
        if m.required {
            return Err(BuildError::Secret(id));
        }
        return Ok(None);
    };
    if let Some(name) = &m.env {
        out.env
            .push(format!("{name}={}", String::from_utf8_lossy(data)));
        if target.is_empty() {
            return Ok(None);
        }
    }
    let target = if target.is_empty() {
        format!("/run/secrets/{id}")
    } else {
        target.to_string()
    };
    std::fs::create_dir_all(slot).map_err(io(format!("mkdir {}", slot.display())))?;
    std::fs::set_permissions(slot, std::fs::Permissions::from_mode(0o700))
        .map_err(io(format!("chmod {}", slot.display())))?;
    let file = slot.join("secret");
    std::fs::write(&file, data).map_err(io(format!("writing {}", file.display())))?;
    let mode = m.mode.unwrap_or(0o400) as u32;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode))
        .map_err(io(format!("chmod {}", file.display())))?;
    chown(&file, m.uid.unwrap_or(0) as u32, m.gid.unwrap_or(0) as u32)?;
    Ok(Some(RunMount {
        target,
        source: RunMountSource::Bind(file),
        read_only: true,
    }))
}
