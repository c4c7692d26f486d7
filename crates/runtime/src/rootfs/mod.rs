//! The container's root filesystem, in runc's order: propagation of "/", the rootfs bound
//! onto itself, spec.mounts, /dev, then (after the createRuntime hooks) pivot_root,
//! masked and read-only paths and a read-only root.

pub mod cgroupfs;
pub mod devices;
pub mod idmap;
pub mod masked;
pub mod mount_attr;
pub mod mounts;
pub mod path;
pub mod pivot;

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

use crate::syscall;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_mount_is_the_longest_containing_prefix_with_its_sharing() {
        let info = "\
1 0 0:1 / / rw shared:1 - ext4 /dev/vda rw
2 1 0:2 / /tmp rw shared:2 - tmpfs tmpfs rw
3 1 0:3 / /tmpx rw shared:3 - tmpfs tmpfs rw
";
        assert_eq!(
            parent_mount(info, Path::new("/tmp/b/rootfs")),
            Some((PathBuf::from("/tmp"), true))
        );
        assert_eq!(
            parent_mount(info, Path::new("/var/lib")),
            Some((PathBuf::from("/"), true))
        );
        let private = "1 0 0:1 / / rw - ext4 /dev/vda rw\n";
        assert_eq!(
            parent_mount(private, Path::new("/x")),
            Some((PathBuf::from("/"), false))
        );
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("error mounting {source_path:?} to rootfs at {dest:?} ({op}): {source}")]
    Mount {
        op: String,
        source_path: PathBuf,
        dest: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("device {path:?}: {reason}")]
    Device { path: PathBuf, reason: String },
    #[error("{op}: {source}")]
    Pivot {
        op: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid rootfsPropagation {0:?}")]
    Propagation(String),
}

fn pivot_err(op: &str) -> impl Fn(std::io::Error) -> RootfsError + '_ {
    move |source| RootfsError::Pivot {
        op: op.to_string(),
        source,
    }
}

/// Opens the rootfs as the anchor for every in-root path resolution.
pub fn open_root(rootfs: &Path) -> Result<OwnedFd, RootfsError> {
    syscall::open(rootfs, libc::O_PATH | libc::O_DIRECTORY, 0).map_err(pivot_err("open rootfs"))
}

/// Everything before pivot_root: propagation, rootfs bind, mounts, devices.
/// `host_mountinfo`: the mountinfo text this mount namespace was copied from, if known;
/// `idmapped`: the detached trees `create` made for idmapped mounts.
pub fn prepare(
    spec: &Spec,
    rootfs: &Path,
    bundle: &Path,
    in_user_ns: bool,
    cgroup_ns: bool,
    host_mountinfo: Option<&str>,
    mut idmapped: idmap::IdmappedTrees,
) -> Result<(), RootfsError> {
    let linux = spec.linux().as_ref();
    let propagation = match linux.and_then(|l| l.rootfs_propagation().as_deref()) {
        None | Some("") => libc::MS_SLAVE | libc::MS_REC,
        Some(p) => {
            mounts::propagation_flag(p).ok_or_else(|| RootfsError::Propagation(p.to_string()))?
        }
    };
    syscall::mount(None, Path::new("/"), None, propagation, None)
        .map_err(pivot_err("set propagation of /"))?;
    // pivot_root refuses a new root whose parent mount is shared, and a shared parent
    // would propagate the rootfs bind to the host: make it private, as runc does. After
    // a recursive slave or private change (the default) no mount is shared any more, and
    // reading mountinfo (the kernel formats every mount) would only confirm it.
    let none_shared =
        propagation & libc::MS_REC != 0 && propagation & (libc::MS_SLAVE | libc::MS_PRIVATE) != 0;
    let info = if none_shared {
        None
    } else {
        std::fs::read_to_string("/proc/self/mountinfo").ok()
    };
    if let Some(info) = info {
        if let Some((parent, true)) = parent_mount(&info, rootfs) {
            syscall::mount(None, &parent, None, libc::MS_PRIVATE, None)
                .map_err(pivot_err("make the rootfs parent mount private"))?;
        }
    }
    // pivot_root needs the new root to be a mount point.
    syscall::mount(
        Some(rootfs),
        rootfs,
        None,
        libc::MS_BIND | libc::MS_REC,
        None,
    )
    .map_err(pivot_err("bind mount rootfs"))?;
    let root = open_root(rootfs)?;
    let mut dev_is_bound = false;
    let ctx = mounts::MountContext {
        root: root.as_fd(),
        bundle,
        in_user_ns,
        cgroup_ns,
        host_mountinfo,
    };
    for (i, m) in spec.mounts().as_deref().unwrap_or(&[]).iter().enumerate() {
        mounts::mount_one(&ctx, m, idmapped.take(i))?;
        if m.destination() == Path::new("/dev") {
            let opts = mounts::parse_options(m.options().as_deref().unwrap_or(&[]));
            dev_is_bound |= opts.bind || m.typ().as_deref() == Some("bind");
        }
    }
    // runc creates the default devices unless /dev comes from the host.
    let mut nodes = if dev_is_bound {
        Vec::new()
    } else {
        devices::default_devices()
    };
    for d in linux
        .and_then(|l| l.devices().as_ref())
        .map(Vec::as_slice)
        .unwrap_or(&[])
    {
        let node = devices::from_spec(d)?;
        nodes.retain(|n| n.path != node.path);
        nodes.push(node);
    }
    for node in &nodes {
        devices::create(root.as_fd(), node, in_user_ns)?;
    }
    if !dev_is_bound {
        devices::create_symlinks(root.as_fd())?;
    }
    Ok(())
}

/// The mount (from mountinfo text) that contains `path`, the longest prefix, and
/// whether it is shared.
pub fn parent_mount(mountinfo: &str, path: &Path) -> Option<(PathBuf, bool)> {
    mountinfo
        .lines()
        .filter_map(|l| {
            let (left, _) = l.split_once(" - ")?;
            let fields: Vec<&str> = left.split_whitespace().collect();
            let mount_point = PathBuf::from(fields.get(4)?);
            let shared = fields.iter().skip(6).any(|f| f.starts_with("shared:"));
            Some((mount_point, shared))
        })
        .filter(|(m, _)| path.starts_with(m))
        .max_by_key(|(m, _)| m.as_os_str().len())
}

/// Switches to the rootfs (pivot_root or, with `no_pivot`, MS_MOVE + chroot), then gives
/// "/" the requested rootfsPropagation again.
pub fn switch_root(spec: &Spec, rootfs: &Path, no_pivot: bool) -> Result<(), RootfsError> {
    if no_pivot {
        pivot::move_root(rootfs)?;
    } else {
        pivot::pivot_root(rootfs)?;
    }
    let requested = spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().as_deref());
    if let Some(flag) = requested
        .filter(|p| !p.is_empty())
        .and_then(mounts::propagation_flag)
    {
        syscall::mount(None, Path::new("/"), None, flag, None)
            .map_err(pivot_err("set rootfsPropagation"))?;
    }
    Ok(())
}

/// After pivot_root: masked and read-only paths, then the read-only root.
pub fn finish(spec: &Spec) -> Result<(), RootfsError> {
    let root = open_root(Path::new("/"))?;
    if let Some(linux) = spec.linux() {
        if let Some(paths) = linux.masked_paths() {
            masked::mask_paths(root.as_fd(), paths)?;
        }
        if let Some(paths) = linux.readonly_paths() {
            masked::readonly_paths(root.as_fd(), paths)?;
        }
    }
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        mounts::remount(Path::new("/"), libc::MS_RDONLY)
            .map_err(pivot_err("remount / read-only"))?;
    }
    Ok(())
}
