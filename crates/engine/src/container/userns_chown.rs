//! The rootfs of a container in a user namespace where idmapped overlay layers are not
//! available (Linux < 5.19, a filesystem that refuses them, or `userns-idmapped-mounts:
//! false`): a one-time chowned copy of the image's layer stack per id map, as Docker's
//! userns-remap keeps its layers. A stack lives in `<image-dir>/userns-chown/<map>/<stack>/`
//! (`<stack>` hashes the lower layer list, so it is the image chain's copy), `layers/<i>` are
//! the shifted copies, `ready` says they are complete and `users/<container-id>` holds one
//! file per container using it: the last container's removal deletes the stack. The
//! container's upper directory is host-shifted too and carries the `idshift` mark, so its
//! diff (`commit`) and `export` translate ids back to the container's. Blocking.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use berth_snapshot::idshift::{self, IdShift};
use berth_snapshot::Mount;

use super::{rootfs, ContainerError};
use crate::config::EngineConfig;
use crate::spec::userns::IdMap;

/// Serializes building and releasing stacks inside this berthd.
static STACKS: Mutex<()> = Mutex::new(());

/// The directory holding every chowned stack.
pub fn stacks_dir(config: &EngineConfig) -> PathBuf {
    config.image_dir().join("userns-chown")
}

/// The id shift of a map.
pub fn shift_of(map: &IdMap) -> IdShift {
    IdShift {
        uids: map.uids.clone(),
        gids: map.gids.clone(),
    }
}

/// Whether containers in user namespaces get the chowned copy instead of idmapped layers:
/// forced by the daemon switch, else when the kernel or the store's filesystem cannot
/// stack an overlay on idmapped lowers (probed once per berthd).
pub fn needed(config: &EngineConfig, store: &Path) -> bool {
    static PROBED: OnceLock<bool> = OnceLock::new();
    !config.userns_idmapped_mounts
        || !*PROBED.get_or_init(|| super::userns_rootfs::probe_idmapped_overlay(store).is_ok())
}

/// Mounts `mounts` on `target` for container `id` with `map` through the chowned stack.
pub fn mount(
    config: &EngineConfig,
    id: &str,
    mounts: &[Mount],
    target: &Path,
    map: &IdMap,
    disposable: bool,
) -> Result<(), ContainerError> {
    std::fs::create_dir_all(target)
        .map_err(|e| ContainerError::io(format!("creating {}", target.display()), e))?;
    if rootfs::is_mounted(target) {
        return Ok(());
    }
    let shift = shift_of(map);
    let mut shifted = Vec::new();
    for m in mounts {
        if m.fstype != "overlay" {
            return Err(ContainerError::NotImplemented(
                "user namespaces without idmapped mounts need the overlay snapshotter (this store uses plain directories)".to_string(),
            ));
        }
        shifted.push(prepare(config, id, m, &shift)?);
    }
    rootfs::mount_for(&shifted, target, disposable)
}

/// The lower directories of an overlay mount, absolute.
fn lowers(m: &Mount) -> Vec<PathBuf> {
    let base = m.working_dir.clone().unwrap_or_default();
    m.options
        .iter()
        .filter_map(|o| o.strip_prefix("lowerdir="))
        .flat_map(|v| v.split(':'))
        .map(|p| base.join(p))
        .collect()
}

fn upper(m: &Mount) -> Option<PathBuf> {
    m.options
        .iter()
        .find_map(|o| o.strip_prefix("upperdir="))
        .map(PathBuf::from)
}

/// Where the chowned copy of `m`'s lower stack for `shift` lives.
fn stack_dir(config: &EngineConfig, m: &Mount, shift: &IdShift) -> PathBuf {
    let list: Vec<String> = lowers(m).iter().map(|p| p.display().to_string()).collect();
    let digest = berth_oci::Digest::sha256_of(list.join(":").as_bytes());
    stacks_dir(config)
        .join(shift.key())
        .join(&digest.hex()[..24])
}

/// Longest mount data the kernel takes (one page) minus room for `volatile`.
const MOUNT_DATA_MAX: usize = 4000;

/// `m` with its lowers replaced by the chowned stack: absolute paths, or paths relative to
/// the stack directory when those would not fit in the mount data.
fn rewrite(m: &Mount, stack: &Path) -> Mount {
    let count = lowers(m).len();
    let rest: Vec<String> = m
        .options
        .iter()
        .filter(|o| !o.starts_with("lowerdir="))
        .cloned()
        .collect();
    let with = |prefix: &str| {
        let lower: Vec<String> = (0..count).map(|i| format!("{prefix}layers/{i}")).collect();
        let mut options = vec![format!("lowerdir={}", lower.join(":"))];
        options.extend(rest.iter().cloned());
        options
    };
    let absolute = with(&format!("{}/", stack.display()));
    let (options, working_dir) = if absolute.join(",").len() <= MOUNT_DATA_MAX {
        (absolute, None)
    } else {
        (with(""), Some(stack.to_path_buf()))
    };
    Mount {
        options,
        working_dir,
        ..m.clone()
    }
}

/// Builds (once) the chowned stack of `m`, registers container `id` as its user, shifts and
/// marks the upper directory, and returns the mount to make.
fn prepare(
    config: &EngineConfig,
    id: &str,
    m: &Mount,
    shift: &IdShift,
) -> Result<Mount, ContainerError> {
    let stack = stack_dir(config, m, shift);
    let io = |what: &str, path: &Path| {
        let context = format!("userns chown copy: {what} {}", path.display());
        move |e: io::Error| ContainerError::io(context, e)
    };
    {
        let _guard = STACKS.lock().unwrap_or_else(|e| e.into_inner());
        // Stacks leaked by a crash go before a new one may be built; this container's own
        // directory exists, so its stack stays.
        sweep(config, |_| false);
        if !stack.join("ready").exists() {
            build(&lowers(m), &stack, shift)?;
        }
        let users = stack.join("users");
        std::fs::create_dir_all(&users).map_err(io("creating", &users))?;
        std::fs::write(users.join(id), b"").map_err(io("registering in", &users))?;
    }
    if let Some(upper) = upper(m) {
        let (uid, gid) = shift.to_host(0, 0).map_err(|(kind, id)| {
            ContainerError::InvalidArgument(format!(
                "the user namespace maps no {kind} {id}: container root needs a host id"
            ))
        })?;
        std::os::unix::fs::lchown(&upper, Some(uid), Some(gid)).map_err(io("chowning", &upper))?;
        idshift::mark_upper(&upper, shift).map_err(io("marking", &upper))?;
    }
    Ok(rewrite(m, &stack))
}

/// Copies each lower into `stack/layers/<i>` and shifts it; `ready` is written last, so an
/// interrupted build is redone from scratch.
fn build(lowers: &[PathBuf], stack: &Path, shift: &IdShift) -> Result<(), ContainerError> {
    let layers = stack.join("layers");
    let failed = |e: io::Error| {
        ContainerError::io(
            format!("userns chown copy: building {}", stack.display()),
            e,
        )
    };
    match std::fs::remove_dir_all(&layers) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(failed(e)),
        _ => {}
    }
    std::fs::create_dir_all(&layers).map_err(failed)?;
    for (i, lower) in lowers.iter().enumerate() {
        let copy = layers.join(i.to_string());
        // cp -a keeps hardlinks, devices (overlay whiteouts), xattrs (opaque markers, file
        // capabilities), modes and times; reflinks make it cheap where the filesystem can.
        let mut source = lower.clone().into_os_string();
        source.push("/.");
        let status = Command::new("cp")
            .arg("-a")
            .arg("--reflink=auto")
            .arg(&source)
            .arg(&copy)
            .status()
            .map_err(failed)?;
        if !status.success() {
            return Err(failed(io::Error::other(format!(
                "cp -a {} {} failed ({status})",
                lower.display(),
                copy.display()
            ))));
        }
        idshift::shift_tree(&copy, shift)
            .map_err(|e| ContainerError::InvalidArgument(format!("userns chown copy: {e}")))?;
    }
    std::fs::write(stack.join("ready"), b"").map_err(failed)
}

/// For a container whose upper directory is host-shifted: its id shift and, when `mounts`
/// are to be mounted afresh (a stopped container's export), the mounts with the chowned
/// lowers. `None` for every other container.
pub fn view(config: &EngineConfig, mounts: &[Mount]) -> Option<(IdShift, Vec<Mount>)> {
    let m = mounts.iter().find(|m| m.fstype == "overlay")?;
    let shift = idshift::read_mark(&upper(m)?).ok()??;
    let stack = stack_dir(config, m, &shift);
    let rewritten = mounts
        .iter()
        .map(|m| {
            if m.fstype == "overlay" {
                rewrite(m, &stack)
            } else {
                m.clone()
            }
        })
        .collect();
    Some((shift, rewritten))
}

/// Drops container `id` from every stack; a stack nobody uses any more is deleted.
pub fn release(config: &EngineConfig, id: &str) {
    let _guard = STACKS.lock().unwrap_or_else(|e| e.into_inner());
    sweep(config, |user| user == id);
}

/// Removes the users `gone` says are gone (and users whose container directory no longer
/// exists: a berthd killed between rm and release), then every stack left without users.
/// Call with `STACKS` held.
fn sweep(config: &EngineConfig, gone: impl Fn(&str) -> bool) {
    let Ok(maps) = std::fs::read_dir(stacks_dir(config)) else {
        return;
    };
    for map in maps.flatten() {
        for stack in std::fs::read_dir(map.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let users = stack.path().join("users");
            for user in std::fs::read_dir(&users).into_iter().flatten().flatten() {
                let name = user.file_name().to_string_lossy().into_owned();
                if gone(&name) || !config.container_dir(&name).exists() {
                    let _ = std::fs::remove_file(user.path());
                }
            }
            let empty = std::fs::read_dir(&users)
                .map(|mut d| d.next().is_none())
                .unwrap_or(true);
            if empty {
                let _ = std::fs::remove_dir_all(stack.path());
            }
        }
        let _ = std::fs::remove_dir(map.path());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overlay(options: &[&str], working_dir: Option<&str>) -> Mount {
        Mount {
            fstype: "overlay".into(),
            source: "overlay".into(),
            options: options.iter().map(|o| o.to_string()).collect(),
            working_dir: working_dir.map(PathBuf::from),
        }
    }

    #[test]
    fn lowers_are_replaced_by_the_stack_and_the_rest_is_kept() {
        let m = overlay(
            &[
                "lowerdir=l/A:l/B",
                "upperdir=/s/snapshots/3/fs",
                "workdir=/s/snapshots/3/work",
            ],
            Some("/s"),
        );
        assert_eq!(
            lowers(&m),
            vec![PathBuf::from("/s/l/A"), PathBuf::from("/s/l/B")]
        );
        let r = rewrite(&m, Path::new("/c/map/stack"));
        assert_eq!(
            r.options,
            vec![
                "lowerdir=/c/map/stack/layers/0:/c/map/stack/layers/1",
                "upperdir=/s/snapshots/3/fs",
                "workdir=/s/snapshots/3/work"
            ]
        );
        assert_eq!(r.working_dir, None);
        let long = format!("/c/{}", "x".repeat(2000));
        let r = rewrite(&m, Path::new(&long));
        assert_eq!(r.options[0], "lowerdir=layers/0:layers/1");
        assert_eq!(r.working_dir, Some(PathBuf::from(long)));
    }

    #[test]
    fn one_stack_per_layer_list_and_map() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = EngineConfig::new(dir.path().join("data"), dir.path().join("exec"));
        let a = overlay(&["lowerdir=/s/l/A:/s/l/B"], None);
        let same = overlay(&["lowerdir=l/A:l/B"], Some("/s"));
        let other = overlay(&["lowerdir=/s/l/A"], None);
        let map = shift_of(&IdMap::block(100000, 100000, 65536));
        let map2 = shift_of(&IdMap::block(165536, 165536, 65536));
        assert_eq!(
            stack_dir(&config, &a, &map),
            stack_dir(&config, &same, &map)
        );
        assert_ne!(
            stack_dir(&config, &a, &map),
            stack_dir(&config, &other, &map)
        );
        assert_ne!(stack_dir(&config, &a, &map), stack_dir(&config, &a, &map2));
    }

    #[test]
    fn the_last_user_leaving_deletes_the_stack() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = EngineConfig::new(dir.path().join("data"), dir.path().join("exec"));
        let stack = stacks_dir(&config).join("u0-1-1.g0-1-1").join("abc");
        std::fs::create_dir_all(stack.join("users")).expect("mkdir");
        std::fs::create_dir_all(stack.join("layers/0")).expect("mkdir");
        std::fs::write(stack.join("users/c1"), b"").expect("user 1");
        std::fs::write(stack.join("users/c2"), b"").expect("user 2");
        for id in ["c1", "c2"] {
            std::fs::create_dir_all(config.container_dir(id)).expect("container dir");
        }
        release(&config, "c1");
        assert!(stack.join("layers/0").exists());
        release(&config, "c2");
        assert!(!stack.exists());
        assert!(!stacks_dir(&config).join("u0-1-1.g0-1-1").exists());
    }

    #[test]
    fn users_whose_container_is_gone_are_swept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = EngineConfig::new(dir.path().join("data"), dir.path().join("exec"));
        let stale = stacks_dir(&config).join("u0-1-1.g0-1-1").join("stale");
        let live = stacks_dir(&config).join("u0-1-1.g0-1-1").join("live");
        for (stack, user) in [(&stale, "crashed"), (&live, "alive")] {
            std::fs::create_dir_all(stack.join("users")).expect("mkdir");
            std::fs::write(stack.join("users").join(user), b"").expect("user");
        }
        std::fs::create_dir_all(config.container_dir("alive")).expect("container dir");
        sweep(&config, |_| false);
        assert!(!stale.exists());
        assert!(live.join("users/alive").exists());
    }

    #[test]
    fn a_container_without_the_mark_has_no_view() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = EngineConfig::new(dir.path().join("data"), dir.path().join("exec"));
        let upper = dir.path().join("snap/fs");
        std::fs::create_dir_all(&upper).expect("mkdir");
        let options = format!("upperdir={}", upper.display());
        let m = overlay(&["lowerdir=/s/l/A", &options], None);
        assert!(view(&config, std::slice::from_ref(&m)).is_none());
        let shift = shift_of(&IdMap::block(100000, 100000, 65536));
        idshift::mark_upper(&upper, &shift).expect("mark");
        let (found, mounts) = view(&config, &[m]).expect("view");
        assert_eq!(found, shift);
        assert!(mounts[0].options[0].ends_with("/layers/0"), "{mounts:?}");
    }
}
