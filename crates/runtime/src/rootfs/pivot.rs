//! Switching the container's root: pivot_root with the old root detached (runc's
//! pivot_root(".", ".") trick), or MS_MOVE + chroot for --no-pivot.

use std::os::fd::AsRawFd;
use std::path::Path;

use super::RootfsError;
use crate::syscall::{self, cvt};

fn op(what: &str) -> impl Fn(std::io::Error) -> RootfsError + '_ {
    move |source| RootfsError::Pivot {
        op: what.to_string(),
        source,
    }
}

/// pivot_root into `rootfs` (a mount point), then unmount the old root.
pub fn pivot_root(rootfs: &Path) -> Result<(), RootfsError> {
    let old_root = syscall::open(Path::new("/"), libc::O_DIRECTORY | libc::O_RDONLY, 0)
        .map_err(op("open /"))?;
    let new_root =
        syscall::open(rootfs, libc::O_DIRECTORY | libc::O_RDONLY, 0).map_err(op("open rootfs"))?;
    // SAFETY: fchdir/pivot_root/umount2 on valid fds and static strings.
    unsafe {
        cvt(libc::fchdir(new_root.as_raw_fd())).map_err(op("chdir rootfs"))?;
        cvt(libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) as libc::c_int)
            .map_err(op("pivot_root"))?;
        // The old root is now stacked on "."; get to it and detach it.
        cvt(libc::fchdir(old_root.as_raw_fd())).map_err(op("chdir old root"))?;
    }
    // Make sure the unmount does not propagate to the host.
    syscall::mount(
        None,
        Path::new("."),
        None,
        libc::MS_SLAVE | libc::MS_REC,
        None,
    )
    .map_err(op("make old root slave"))?;
    // SAFETY: static C strings.
    unsafe {
        cvt(libc::umount2(c".".as_ptr(), libc::MNT_DETACH)).map_err(op("unmount old root"))?;
        cvt(libc::chdir(c"/".as_ptr())).map_err(op("chdir /"))?;
    }
    Ok(())
}

/// --no-pivot: move the rootfs mount over "/" and chroot into it.
pub fn move_root(rootfs: &Path) -> Result<(), RootfsError> {
    let c = syscall::cstring(rootfs).map_err(op("rootfs path"))?;
    // SAFETY: valid C string.
    unsafe { cvt(libc::chdir(c.as_ptr())).map_err(op("chdir rootfs"))? };
    syscall::mount(Some(rootfs), Path::new("/"), None, libc::MS_MOVE, None)
        .map_err(op("move rootfs to /"))?;
    // SAFETY: static C strings.
    unsafe {
        cvt(libc::chroot(c".".as_ptr())).map_err(op("chroot"))?;
        cvt(libc::chdir(c"/".as_ptr())).map_err(op("chdir /"))?;
    }
    Ok(())
}
