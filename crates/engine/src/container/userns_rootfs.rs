//! The rootfs of a container in a user namespace, through idmapped mounts (Linux 5.19+):
//! the snapshot store is idmapped once to a staging directory, the overlay is stacked from
//! the idmapped lower, upper and work directories and mounted with the container root's
//! filesystem ids, and the staging mount is detached again. Layers stay in container-id
//! space on disk (the upper too: `commit`, `diff` and `export` need no translation), while
//! the container sees its files owned by its own root. Blocking: call from
//! `spawn_blocking`; the user namespace helper forks and only makes raw syscalls in the
//! child, and the credential change happens on a thread of its own.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use berth_snapshot::Mount;

use super::{rootfs, ContainerError};
use crate::config::EngineConfig;
use crate::spec::userns::IdMap;

const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
const OPEN_TREE_CLONE: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;

/// `struct mount_attr` of mount_setattr(2).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

fn cvt(result: libc::c_long) -> io::Result<libc::c_long> {
    if result < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(result)
    }
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// A user namespace with `map`, held by the returned fd (its short-lived process is gone).
pub fn user_namespace(map: &IdMap) -> io::Result<OwnedFd> {
    let mut ready = [0 as libc::c_int; 2];
    let mut done = [0 as libc::c_int; 2];
    // SAFETY: pipe2 fills the arrays with two new descriptors each.
    cvt(unsafe { libc::pipe2(ready.as_mut_ptr(), libc::O_CLOEXEC) }.into())?;
    // SAFETY: as above; the first pair is wrapped right away so it is closed on error.
    let ready = unsafe {
        (
            OwnedFd::from_raw_fd(ready[0]),
            OwnedFd::from_raw_fd(ready[1]),
        )
    };
    cvt(unsafe { libc::pipe2(done.as_mut_ptr(), libc::O_CLOEXEC) }.into())?;
    // SAFETY: as above.
    let done = unsafe { (OwnedFd::from_raw_fd(done[0]), OwnedFd::from_raw_fd(done[1])) };
    // SAFETY: the child makes only async-signal-safe raw syscalls (unshare, write, read,
    // _exit) on descriptors created before the fork, so a multi-threaded parent is fine.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        // SAFETY: see above; the child never returns.
        unsafe {
            let status: u8 = if libc::unshare(libc::CLONE_NEWUSER) == 0 {
                b'1'
            } else {
                b'0'
            };
            libc::write(ready.1.as_raw_fd(), (&status as *const u8).cast(), 1);
            // Our copy of the write end would keep the read below from ever seeing EOF.
            libc::close(done.1.as_raw_fd());
            let mut byte = 0u8;
            libc::read(done.0.as_raw_fd(), (&mut byte as *mut u8).cast(), 1);
            libc::_exit(0);
        }
    }
    drop(ready.1);
    drop(done.0);
    let result = (|| {
        let mut status = [0u8; 1];
        // SAFETY: reads one byte into a one-byte buffer.
        let n = unsafe { libc::read(ready.0.as_raw_fd(), status.as_mut_ptr().cast(), 1) };
        if n != 1 || status[0] != b'1' {
            return Err(io::Error::other("creating a user namespace failed"));
        }
        std::fs::write(format!("/proc/{pid}/uid_map"), map.uid_map_text())?;
        std::fs::write(format!("/proc/{pid}/gid_map"), map.gid_map_text())?;
        Ok(OwnedFd::from(std::fs::File::open(format!(
            "/proc/{pid}/ns/user"
        ))?))
    })();
    drop(done.1);
    // SAFETY: reaps our own child, which exits once `done` is closed.
    unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
    result
}

/// A detached copy of the mount at `path` whose ids are mapped through `userns`.
fn idmapped_tree(path: &Path, userns: &OwnedFd, recursive: bool) -> io::Result<OwnedFd> {
    let c = c_path(path)?;
    let recursive_flag = if recursive { libc::AT_RECURSIVE } else { 0 };
    let flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | recursive_flag as libc::c_uint;
    // SAFETY: open_tree with a valid C path; the result is a new descriptor we own.
    let fd = cvt(unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, c.as_ptr(), flags) })?;
    // SAFETY: `fd` was just returned by open_tree.
    let tree = unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) };
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    let empty = c"";
    // SAFETY: mount_setattr reads `size_of::<MountAttr>()` bytes of `attr`.
    cvt(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_EMPTY_PATH | recursive_flag,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    })?;
    Ok(tree)
}

/// Attaches a detached tree at `target`.
fn attach(tree: &OwnedFd, target: &Path) -> io::Result<()> {
    let c = c_path(target)?;
    let empty = c"";
    // SAFETY: move_mount of a detached tree fd to a valid C path.
    cvt(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_FDCWD,
            c.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    })?;
    Ok(())
}

/// Detaches the staging mount and removes its directory when dropped.
struct Staging(PathBuf);

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(&self.0, rustix::mount::UnmountFlags::DETACH);
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Mounts `mounts` on `target` for container `id` in a user namespace with `map`; a no-op
/// when something is mounted there already. Idmapped layers where the kernel and the
/// store's filesystem have them (and the daemon allows them), else the chowned copy of
/// `userns_chown.rs`. `disposable`: see [`rootfs::mount_for`].
pub fn mount(
    config: &EngineConfig,
    id: &str,
    mounts: &[Mount],
    target: &Path,
    map: &IdMap,
    disposable: bool,
) -> Result<(), ContainerError> {
    let store = config.image_dir().join("snapshots");
    if super::userns_chown::needed(config, &store) {
        return super::userns_chown::mount(config, id, mounts, target, map, disposable);
    }
    mount_idmapped(mounts, target, &store, map, disposable)
}

/// Checks once that an overlay can stack on an idmapped lower in the snapshot store
/// `store` (mount_setattr(MOUNT_ATTR_IDMAP) on its filesystem, Linux 5.19+ for overlayfs):
/// a throwaway read-only overlay in `store/.idmap-probe-<pid>`, removed again.
pub fn probe_idmapped_overlay(store: &Path) -> io::Result<()> {
    let probe = store.join(format!(".idmap-probe-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&probe);
    let result = (|| {
        for dir in ["a", "b", "stage", "merged"] {
            std::fs::create_dir_all(probe.join(dir))?;
        }
        let userns = user_namespace(&IdMap::block(0, 0, 65536))?;
        let tree = idmapped_tree(&probe.join("a"), &userns, false)?;
        attach(&tree, &probe.join("stage"))?;
        let _staging = Staging(probe.join("stage"));
        let options = format!(
            "lowerdir={}:{}",
            probe.join("stage").display(),
            probe.join("b").display()
        );
        let data = CString::new(options).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        let merged = probe.join("merged");
        rustix::mount::mount(
            "overlay",
            &merged,
            "overlay",
            rustix::mount::MountFlags::RDONLY,
            Some(data.as_c_str()),
        )?;
        let _ = rustix::mount::unmount(&merged, rustix::mount::UnmountFlags::DETACH);
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&probe);
    result
}

fn mount_idmapped(
    mounts: &[Mount],
    target: &Path,
    store: &Path,
    map: &IdMap,
    disposable: bool,
) -> Result<(), ContainerError> {
    std::fs::create_dir_all(target)
        .map_err(|e| ContainerError::io(format!("creating {}", target.display()), e))?;
    if rootfs::is_mounted(target) {
        return Ok(());
    }
    let failed = |e: io::Error| {
        ContainerError::io(
            format!(
                "mounting the rootfs on {} for a user namespace (needs idmapped mounts of overlayfs layers, Linux 5.19+)",
                target.display()
            ),
            e,
        )
    };
    let userns = user_namespace(map).map_err(failed)?;
    for m in mounts {
        if m.fstype == "overlay" {
            mount_overlay(m, target, store, &userns, map, disposable).map_err(failed)?;
        } else {
            let tree = idmapped_tree(&m.source, &userns, true).map_err(failed)?;
            attach(&tree, target).map_err(failed)?;
        }
    }
    Ok(())
}

fn mount_overlay(
    m: &Mount,
    target: &Path,
    store: &Path,
    userns: &OwnedFd,
    map: &IdMap,
    disposable: bool,
) -> io::Result<()> {
    let staging = Staging(target.with_file_name("rootfs-idmap"));
    std::fs::create_dir_all(&staging.0)?;
    let tree = idmapped_tree(store, userns, false)?;
    attach(&tree, &staging.0)?;
    let options = restage(&m.options, store, &staging.0);
    let working_dir = m.working_dir.as_ref().map(|_| staging.0.clone());
    let writable = m.options.iter().any(|o| o.starts_with("upperdir="));
    let (uid, gid) = map.root();
    let target = target.to_path_buf();
    let attempt = |options: String| {
        let target = target.clone();
        let working_dir = working_dir.clone();
        std::thread::spawn(move || mount_as(&options, &target, working_dir.as_deref(), uid, gid))
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the mount thread panicked")))
    };
    let joined = options.join(",");
    if disposable && writable && attempt(format!("{joined},volatile")).is_ok() {
        return Ok(());
    }
    attempt(joined)
}

/// Points every `store` path of the overlay options into `staging`.
fn restage(options: &[String], store: &Path, staging: &Path) -> Vec<String> {
    let store = store.to_string_lossy().into_owned();
    let staging = staging.to_string_lossy().into_owned();
    options
        .iter()
        .map(|option| match option.split_once('=') {
            Some((key @ ("lowerdir" | "upperdir" | "workdir"), value)) => {
                let paths: Vec<String> = value
                    .split(':')
                    .map(|p| match p.strip_prefix(&store) {
                        Some(rest) if rest.is_empty() || rest.starts_with('/') => {
                            format!("{staging}{rest}")
                        }
                        _ => p.to_string(),
                    })
                    .collect();
                format!("{key}={}", paths.join(":"))
            }
            _ => option.clone(),
        })
        .collect()
}

/// Mounts the overlay with filesystem ids `uid`/`gid` and full effective capabilities, on
/// the calling (throwaway) thread: overlayfs does its upper-layer work with its mounter's
/// credentials, and host root has no id in the idmapped upper (EOVERFLOW), while the
/// container's root does. Relative lower paths are resolved from `working_dir`.
fn mount_as(
    options: &str,
    target: &Path,
    working_dir: Option<&Path>,
    uid: u32,
    gid: u32,
) -> io::Result<()> {
    // SAFETY: plain syscalls changing only this thread's filesystem context and credentials.
    unsafe {
        if let Some(dir) = working_dir {
            cvt(libc::unshare(libc::CLONE_FS).into())?;
            let c = c_path(dir)?;
            cvt(libc::chdir(c.as_ptr()).into())?;
        }
        libc::syscall(libc::SYS_setfsuid, uid);
        libc::syscall(libc::SYS_setfsgid, gid);
        // setfsuid away from 0 drops the file capabilities from the effective set: raise
        // them again so copy-up can chown and keep modes (they stay within permitted).
        let mut header = [0x2008_0522u32, 0];
        let mut data = [0u32; 6];
        cvt(libc::syscall(
            libc::SYS_capget,
            header.as_mut_ptr(),
            data.as_mut_ptr(),
        ))?;
        data[0] = data[1];
        data[3] = data[4];
        cvt(libc::syscall(
            libc::SYS_capset,
            header.as_mut_ptr(),
            data.as_ptr(),
        ))?;
    }
    let data = CString::new(options).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    rustix::mount::mount(
        "overlay",
        target,
        "overlay",
        rustix::mount::MountFlags::empty(),
        Some(data.as_c_str()),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_paths_in_the_store_move_to_the_staging_mount() {
        let options = vec![
            "lowerdir=/s/l/A:/s/l/B:/other/l/C".to_string(),
            "upperdir=/s/snapshots/1/fs".to_string(),
            "workdir=/s/snapshots/1/work".to_string(),
            "index=off".to_string(),
            "lowerdir=/sx/l/D".to_string(),
        ];
        assert_eq!(
            restage(&options, Path::new("/s"), Path::new("/t/stage")),
            vec![
                "lowerdir=/t/stage/l/A:/t/stage/l/B:/other/l/C".to_string(),
                "upperdir=/t/stage/snapshots/1/fs".to_string(),
                "workdir=/t/stage/snapshots/1/work".to_string(),
                "index=off".to_string(),
                "lowerdir=/sx/l/D".to_string(),
            ]
        );
    }

    #[test]
    fn relative_lower_paths_are_left_for_the_working_directory() {
        let options = vec!["lowerdir=l/A:l/B".to_string()];
        assert_eq!(restage(&options, Path::new("/s"), Path::new("/t")), options);
    }
}
