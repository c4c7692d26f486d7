//! linux.maskedPaths (/dev/null bound over files, an empty read-only tmpfs over
//! directories) and linux.readonlyPaths (read-only bind of themselves), after pivot_root.

use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use rustix::fs::OFlags;

use super::mounts::remount;
use super::path::open_in_root;
use super::RootfsError;
use crate::syscall::{self, fd_path};

fn failed(path: &str, op: &str, source: std::io::Error) -> RootfsError {
    RootfsError::Mount {
        op: op.to_string(),
        source_path: PathBuf::new(),
        dest: PathBuf::from(path),
        source,
    }
}

/// Masks each path that exists; missing paths are skipped, as the spec allows.
pub fn mask_paths(root: BorrowedFd<'_>, paths: &[String]) -> Result<(), RootfsError> {
    for p in paths {
        let fd = match open_in_root(root, Path::new(p), OFlags::PATH) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(failed(p, "open masked path", e)),
        };
        let is_dir = rustix::fs::fstat(fd.as_fd())
            .map(|st| {
                rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory
            })
            .map_err(|e| failed(p, "stat masked path", e.into()))?;
        let target = fd_path(fd.as_fd());
        let r = if is_dir {
            syscall::mount(
                Some(Path::new("tmpfs")),
                &target,
                Some("tmpfs"),
                libc::MS_RDONLY,
                None,
            )
        } else {
            syscall::mount(
                Some(Path::new("/dev/null")),
                &target,
                None,
                libc::MS_BIND,
                None,
            )
        };
        r.map_err(|e| failed(p, "mask", e))?;
    }
    Ok(())
}

/// Makes each existing path a read-only bind mount of itself.
pub fn readonly_paths(root: BorrowedFd<'_>, paths: &[String]) -> Result<(), RootfsError> {
    for p in paths {
        let fd = match open_in_root(root, Path::new(p), OFlags::PATH) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(failed(p, "open readonly path", e)),
        };
        let target = fd_path(fd.as_fd());
        syscall::mount(
            Some(&target),
            &target,
            None,
            libc::MS_BIND | libc::MS_REC,
            None,
        )
        .map_err(|e| failed(p, "bind readonly path", e))?;
        let mounted =
            open_in_root(root, Path::new(p), OFlags::PATH).map_err(|e| failed(p, "reopen", e))?;
        remount(&fd_path(mounted.as_fd()), libc::MS_RDONLY | libc::MS_REC)
            .map_err(|e| failed(p, "remount readonly path", e))?;
    }
    Ok(())
}
