//! Mounting spec.mounts inside the rootfs: option strings to flags, bind mounts with the
//! remount their flags need, propagation, recursive attributes, idmapped trees made by
//! `create`, and the special cases (sysfs in a user namespace, cgroup v1 trees) runc
//! handles the same way.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use oci_spec::runtime::Mount;
use rustix::fs::OFlags;

use super::mount_attr::{self, RecursiveAttr};
use super::path::{create_in_root, open_in_root};
use super::RootfsError;
use crate::syscall::{self, fd_path};

/// The "idmap" and "ridmap" options (runtime-spec 1.2): the mount is idmapped, only its
/// top mount or every mount in the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idmap {
    Mount,
    Recursive,
}

/// A mount's options split the way mount(2) wants them.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct MountOptions {
    /// Flags for the mount call itself.
    pub flags: libc::c_ulong,
    /// Propagation changes applied after mounting, in order.
    pub propagation: Vec<libc::c_ulong>,
    /// Everything else, joined with "," as the fs-specific data.
    pub data: String,
    pub bind: bool,
    pub recursive: bool,
    /// rro, rnosuid, ...: mount_setattr(2) with AT_RECURSIVE after the mount.
    pub recursive_attr: RecursiveAttr,
    pub idmap: Option<Idmap>,
}

/// Parses spec mount options (mount(8) names) into flags, propagation and data.
pub fn parse_options(options: &[String]) -> MountOptions {
    let mut o = MountOptions::default();
    let mut data = Vec::new();
    for opt in options {
        let (set, clear): (libc::c_ulong, libc::c_ulong) = match opt.as_str() {
            "defaults" => (0, 0),
            "ro" => (libc::MS_RDONLY, 0),
            "rw" => (0, libc::MS_RDONLY),
            "suid" => (0, libc::MS_NOSUID),
            "nosuid" => (libc::MS_NOSUID, 0),
            "dev" => (0, libc::MS_NODEV),
            "nodev" => (libc::MS_NODEV, 0),
            "exec" => (0, libc::MS_NOEXEC),
            "noexec" => (libc::MS_NOEXEC, 0),
            "sync" => (libc::MS_SYNCHRONOUS, 0),
            "async" => (0, libc::MS_SYNCHRONOUS),
            "dirsync" => (libc::MS_DIRSYNC, 0),
            "remount" => (libc::MS_REMOUNT, 0),
            "mand" => (libc::MS_MANDLOCK, 0),
            "nomand" => (0, libc::MS_MANDLOCK),
            "atime" => (0, libc::MS_NOATIME),
            "noatime" => (libc::MS_NOATIME, 0),
            "diratime" => (0, libc::MS_NODIRATIME),
            "nodiratime" => (libc::MS_NODIRATIME, 0),
            "relatime" => (libc::MS_RELATIME, 0),
            "norelatime" => (0, libc::MS_RELATIME),
            "strictatime" => (libc::MS_STRICTATIME, 0),
            "nostrictatime" => (0, libc::MS_STRICTATIME),
            "lazytime" => (libc::MS_LAZYTIME, 0),
            "nolazytime" => (0, libc::MS_LAZYTIME),
            "silent" => (libc::MS_SILENT, 0),
            "nosymfollow" => (libc::MS_NOSYMFOLLOW, 0),
            "symfollow" => (0, libc::MS_NOSYMFOLLOW),
            "loud" => (0, libc::MS_SILENT),
            "bind" => {
                o.bind = true;
                (libc::MS_BIND, 0)
            }
            "rbind" => {
                o.bind = true;
                o.recursive = true;
                (libc::MS_BIND | libc::MS_REC, 0)
            }
            // runc-only option for tmpfs copy-up; nothing to pass to the kernel.
            "tmpcopyup" => (0, 0),
            "idmap" => {
                o.idmap = Some(Idmap::Mount);
                (0, 0)
            }
            "ridmap" => {
                o.idmap = Some(Idmap::Recursive);
                (0, 0)
            }
            p => {
                if let Some(flag) = propagation_flag(p) {
                    o.propagation.push(flag);
                } else if !o.recursive_attr.add_option(p) {
                    data.push(p.to_string());
                }
                (0, 0)
            }
        };
        o.flags = (o.flags | set) & !clear;
    }
    o.data = data.join(",");
    o
}

/// The mount(2) flags for a propagation name ("rslave", "private", ...).
pub fn propagation_flag(name: &str) -> Option<libc::c_ulong> {
    Some(match name {
        "private" => libc::MS_PRIVATE,
        "rprivate" => libc::MS_PRIVATE | libc::MS_REC,
        "shared" => libc::MS_SHARED,
        "rshared" => libc::MS_SHARED | libc::MS_REC,
        "slave" => libc::MS_SLAVE,
        "rslave" => libc::MS_SLAVE | libc::MS_REC,
        "unbindable" => libc::MS_UNBINDABLE,
        "runbindable" => libc::MS_UNBINDABLE | libc::MS_REC,
        _ => return None,
    })
}

/// Flags that a bind mount only gets through a second, MS_REMOUNT call.
const REMOUNT_FLAGS: libc::c_ulong = libc::MS_RDONLY
    | libc::MS_NOSUID
    | libc::MS_NODEV
    | libc::MS_NOEXEC
    | libc::MS_NOATIME
    | libc::MS_NODIRATIME
    | libc::MS_RELATIME
    | libc::MS_STRICTATIME
    | libc::MS_NOSYMFOLLOW;

/// What every mount of one container shares.
pub struct MountContext<'a> {
    /// O_PATH fd of the rootfs, the anchor of every destination.
    pub root: BorrowedFd<'a>,
    /// Resolves relative bind sources.
    pub bundle: &'a Path,
    pub in_user_ns: bool,
    pub cgroup_ns: bool,
    /// The mountinfo text this mount namespace was copied from, if known.
    pub host_mountinfo: Option<&'a str>,
}

/// Mounts one spec mount inside the rootfs. `idmapped` is the detached idmapped tree
/// `create` made for this mount, attached in place of a bind mount.
pub fn mount_one(
    ctx: &MountContext<'_>,
    m: &Mount,
    idmapped: Option<OwnedFd>,
) -> Result<(), RootfsError> {
    let root = ctx.root;
    let dest = m.destination();
    let typ = m.typ().as_deref().unwrap_or("none");
    let opts = parse_options(m.options().as_deref().unwrap_or(&[]));
    let bind = opts.bind || typ == "bind";
    let source: Option<PathBuf> = m.source().as_ref().map(|s| {
        if bind && s.is_relative() {
            ctx.bundle.join(s)
        } else {
            s.clone()
        }
    });
    let err = |op: &str, source: std::io::Error| RootfsError::Mount {
        op: op.to_string(),
        source_path: m.source().clone().unwrap_or_default(),
        dest: dest.clone(),
        source,
    };
    if typ == "cgroup" {
        super::cgroupfs::mount_cgroup_tree(
            root,
            dest,
            &opts,
            ctx.in_user_ns,
            ctx.cgroup_ns,
            ctx.host_mountinfo,
        )
        .map_err(|e| err("mount cgroup", e))?;
        return set_recursive_attr(root, dest, &opts.recursive_attr)
            .map_err(|e| err("mount_setattr", e));
    }
    let is_dir = match (&source, bind) {
        (Some(s), true) => std::fs::metadata(s)
            .map_err(|e| err("stat source", e))?
            .is_dir(),
        _ => true,
    };
    let target = create_in_root(root, dest, is_dir).map_err(|e| err("create destination", e))?;
    let target_path = fd_path(target.as_fd());
    let mut flags = opts.flags;
    if let Some(tree) = idmapped.filter(|_| bind) {
        flags |= libc::MS_BIND;
        mount_attr::attach_tree(tree.as_fd(), target.as_fd())
            .map_err(|e| err("move_mount idmapped tree", e))?;
    } else if bind {
        flags |= libc::MS_BIND;
        let src = source.clone().unwrap_or_default();
        syscall::mount(
            Some(&src),
            &target_path,
            None,
            flags & (libc::MS_BIND | libc::MS_REC),
            None,
        )
        .map_err(|e| err("bind mount", e))?;
    } else {
        let src = source.clone().unwrap_or_else(|| PathBuf::from(typ));
        let result = syscall::mount(
            Some(&src),
            &target_path,
            Some(typ),
            flags & !libc::MS_REMOUNT,
            Some(&opts.data),
        );
        match result {
            // sysfs cannot be mounted from a user namespace that does not own the
            // network namespace: bind the host's /sys instead, as runc does.
            Err(e) if typ == "sysfs" && e.raw_os_error() == Some(libc::EPERM) && ctx.in_user_ns => {
                syscall::mount(
                    Some(Path::new("/sys")),
                    &target_path,
                    None,
                    libc::MS_BIND | libc::MS_REC,
                    None,
                )
                .map_err(|e| err("bind mount /sys", e))?;
                flags |= libc::MS_BIND;
            }
            other => other.map_err(|e| err("mount", e))?,
        }
    }
    // Re-open the destination: it now names the root of the new mount.
    let mounted = open_in_root(root, dest, OFlags::PATH).map_err(|e| err("reopen", e))?;
    let mounted_path = fd_path(mounted.as_fd());
    if bind && flags & REMOUNT_FLAGS != 0 {
        remount(&mounted_path, flags & !libc::MS_REC).map_err(|e| err("remount", e))?;
    }
    for p in &opts.propagation {
        syscall::mount(None, &mounted_path, None, *p, None)
            .map_err(|e| err("set propagation", e))?;
    }
    // runc applies the recursive attributes last, over whatever the tree holds by now.
    if !opts.recursive_attr.is_empty() {
        opts.recursive_attr
            .apply(mounted.as_fd())
            .map_err(|e| err("mount_setattr", recursive_attr_error(e)))?;
    }
    Ok(())
}

/// The recursive attributes on the mount at `dest` (after a mount made elsewhere).
fn set_recursive_attr(
    root: BorrowedFd<'_>,
    dest: &Path,
    attr: &RecursiveAttr,
) -> std::io::Result<()> {
    if attr.is_empty() {
        return Ok(());
    }
    let mounted = open_in_root(root, dest, OFlags::PATH)?;
    attr.apply(mounted.as_fd()).map_err(recursive_attr_error)
}

/// ENOSYS from mount_setattr says more with the kernel it needs.
fn recursive_attr_error(e: std::io::Error) -> std::io::Error {
    if e.raw_os_error() == Some(libc::ENOSYS) {
        std::io::Error::new(
            e.kind(),
            "recursive mount options (rro, rnosuid, ...) need mount_setattr(2), Linux 5.12 or newer",
        )
    } else {
        e
    }
}

/// MS_REMOUNT|MS_BIND with `flags`; when the kernel refuses because the mount has locked
/// flags (a user namespace cannot clear nosuid/nodev/noexec/ro set by the host), retries
/// with those flags kept.
pub fn remount(target: &Path, flags: libc::c_ulong) -> std::io::Result<()> {
    let want = flags | libc::MS_REMOUNT | libc::MS_BIND;
    match syscall::mount(None, target, None, want, None) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
            let st = rustix::fs::statvfs(target)?;
            let f = st.f_flag;
            let mut locked = 0;
            for (st_flag, ms_flag) in [
                (rustix::fs::StatVfsMountFlags::RDONLY, libc::MS_RDONLY),
                (rustix::fs::StatVfsMountFlags::NOSUID, libc::MS_NOSUID),
                (rustix::fs::StatVfsMountFlags::NODEV, libc::MS_NODEV),
                (rustix::fs::StatVfsMountFlags::NOEXEC, libc::MS_NOEXEC),
            ] {
                if f.contains(st_flag) {
                    locked |= ms_flag;
                }
            }
            syscall::mount(None, target, None, want | locked, None)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(list: &[&str]) -> MountOptions {
        parse_options(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn flags_set_and_clear_in_order() {
        let o = opts(&["nosuid", "noexec", "nodev", "ro"]);
        assert_eq!(
            o.flags,
            libc::MS_NOSUID | libc::MS_NOEXEC | libc::MS_NODEV | libc::MS_RDONLY
        );
        let o = opts(&["ro", "rw"]);
        assert_eq!(o.flags, 0);
    }

    #[test]
    fn rbind_is_recursive_bind_and_propagation_is_separate() {
        let o = opts(&["rbind", "rslave", "ro"]);
        assert!(o.bind && o.recursive);
        assert_eq!(o.flags, libc::MS_BIND | libc::MS_REC | libc::MS_RDONLY);
        assert_eq!(o.propagation, vec![libc::MS_SLAVE | libc::MS_REC]);
    }

    #[test]
    fn unknown_options_become_filesystem_data() {
        let o = opts(&[
            "nosuid",
            "mode=755",
            "size=65536k",
            "newinstance",
            "ptmxmode=0666",
        ]);
        assert_eq!(o.data, "mode=755,size=65536k,newinstance,ptmxmode=0666");
        assert_eq!(o.flags, libc::MS_NOSUID);
    }
}
