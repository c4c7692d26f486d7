//! /dev inside the container: the default devices (mknod, or a bind of the host's node in
//! a user namespace), linux.devices, and the standard symlinks (fd, std*, ptmx, core).

use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};
use rustix::fs::{Mode, OFlags};

use super::path::{create_in_root, mkdir_all_in_root, open_in_root};
use super::RootfsError;
use crate::syscall::{self, fd_path};

/// A device node to create: path inside the container, kind, numbers, mode, owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceNode {
    pub path: PathBuf,
    pub kind: libc::mode_t,
    pub major: u32,
    pub minor: u32,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// runc's default devices: null, zero, full, random, urandom, tty (char, 0666, root).
pub fn default_devices() -> Vec<DeviceNode> {
    [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ]
    .into_iter()
    .map(|(name, major, minor)| DeviceNode {
        path: PathBuf::from("/dev").join(name),
        kind: libc::S_IFCHR,
        major,
        minor,
        mode: 0o666,
        uid: 0,
        gid: 0,
    })
    .collect()
}

/// A spec device as a node to create.
pub fn from_spec(d: &LinuxDevice) -> Result<DeviceNode, RootfsError> {
    let kind = match d.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => libc::S_IFCHR,
        LinuxDeviceType::B => libc::S_IFBLK,
        LinuxDeviceType::P => libc::S_IFIFO,
        LinuxDeviceType::A => {
            return Err(RootfsError::Device {
                path: d.path().clone(),
                reason: "type \"a\" is only valid in the cgroup device list".into(),
            })
        }
    };
    if !d.path().is_absolute() {
        return Err(RootfsError::Device {
            path: d.path().clone(),
            reason: "device path must be absolute".into(),
        });
    }
    Ok(DeviceNode {
        path: d.path().clone(),
        kind,
        major: d.major() as u32,
        minor: d.minor() as u32,
        mode: d.file_mode().unwrap_or(0o666) & 0o7777,
        uid: d.uid().unwrap_or(0),
        gid: d.gid().unwrap_or(0),
    })
}

/// Creates `node` inside the root: mknod, or (in a user namespace, where mknod is not
/// allowed) a bind mount of the host's node with the same path.
pub fn create(root: BorrowedFd<'_>, node: &DeviceNode, bind: bool) -> Result<(), RootfsError> {
    let err = |reason: String| RootfsError::Device {
        path: node.path.clone(),
        reason,
    };
    if bind {
        let fd = create_in_root(root, &node.path, false).map_err(|e| err(e.to_string()))?;
        return syscall::mount(
            Some(&node.path),
            &fd_path(fd.as_fd()),
            None,
            libc::MS_BIND,
            None,
        )
        .map_err(|e| err(format!("bind from host: {e}")));
    }
    let parent = node.path.parent().unwrap_or(Path::new("/dev"));
    let name = node
        .path
        .file_name()
        .ok_or_else(|| err("no file name".into()))?;
    let dir = mkdir_all_in_root(root, parent).map_err(|e| err(e.to_string()))?;
    // mknodat refuses O_PATH dirfds on some kernels: use a real directory fd.
    let dir = rustix::fs::openat(
        dir.as_fd(),
        ".",
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| err(e.to_string()))?;
    match rustix::fs::unlinkat(dir.as_fd(), name, rustix::fs::AtFlags::empty()) {
        Ok(()) | Err(rustix::io::Errno::NOENT) => {}
        Err(e) => return Err(err(format!("remove existing: {e}"))),
    }
    let dev = rustix::fs::makedev(node.major, node.minor);
    let file_type = rustix::fs::FileType::from_raw_mode(node.kind);
    rustix::fs::mknodat(
        dir.as_fd(),
        name,
        file_type,
        Mode::from_raw_mode(node.mode),
        dev,
    )
    .map_err(|e| err(format!("mknod: {e}")))?;
    // mknod is subject to the umask; set the exact mode and owner afterwards.
    rustix::fs::chmodat(
        dir.as_fd(),
        name,
        Mode::from_raw_mode(node.mode),
        rustix::fs::AtFlags::empty(),
    )
    .map_err(|e| err(format!("chmod: {e}")))?;
    rustix::fs::chownat(
        dir.as_fd(),
        name,
        Some(rustix::fs::Uid::from_raw(node.uid)),
        Some(rustix::fs::Gid::from_raw(node.gid)),
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(|e| err(format!("chown: {e}")))
}

/// The symlinks runc puts in /dev.
pub fn create_symlinks(root: BorrowedFd<'_>) -> Result<(), RootfsError> {
    let dev = mkdir_all_in_root(root, Path::new("/dev")).map_err(|e| RootfsError::Device {
        path: "/dev".into(),
        reason: e.to_string(),
    })?;
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "core"));
    }
    for (target, name) in links {
        match rustix::fs::symlinkat(target, dev.as_fd(), name) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => {
                return Err(RootfsError::Device {
                    path: PathBuf::from("/dev").join(name),
                    reason: e.to_string(),
                })
            }
        }
    }
    // /dev/ptmx must point at the container's devpts instance.
    if open_in_root(root, Path::new("/dev/pts/ptmx"), OFlags::PATH).is_ok() {
        let _ = rustix::fs::unlinkat(dev.as_fd(), "ptmx", rustix::fs::AtFlags::empty());
        rustix::fs::symlinkat("pts/ptmx", dev.as_fd(), "ptmx").map_err(|e| {
            RootfsError::Device {
                path: "/dev/ptmx".into(),
                reason: e.to_string(),
            }
        })?;
    }
    // /dev/shm is expected by many programs even when the spec does not mount it.
    let _ = mkdir_all_in_root(root, Path::new("/dev/shm"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_devices_are_runc_s_six_char_devices() {
        let d = default_devices();
        let names: Vec<_> = d.iter().map(|n| n.path.display().to_string()).collect();
        assert_eq!(
            names,
            [
                "/dev/null",
                "/dev/zero",
                "/dev/full",
                "/dev/random",
                "/dev/urandom",
                "/dev/tty"
            ]
        );
        assert!(d.iter().all(|n| n.kind == libc::S_IFCHR && n.mode == 0o666));
        assert_eq!((d[5].major, d[5].minor), (5, 0));
    }

    #[test]
    fn spec_devices_map_types_and_refuse_relative_paths() {
        let dev: LinuxDevice = serde_json::from_str(
            r#"{"path":"/dev/sda","type":"b","major":8,"minor":0,"fileMode":432,"uid":0,"gid":6}"#,
        )
        .expect("device");
        let node = from_spec(&dev).expect("node");
        assert_eq!(
            (node.kind, node.major, node.mode, node.gid),
            (libc::S_IFBLK, 8, 0o660, 6)
        );
        let rel: LinuxDevice =
            serde_json::from_str(r#"{"path":"dev/x","type":"c","major":1,"minor":3}"#)
                .expect("device");
        assert!(from_spec(&rel).is_err());
    }
}
