//! The new mount API calls the runtime makes: mount_setattr(2) for the runtime-spec's
//! recursive mount options (rro, rnosuid, ...: applied with AT_RECURSIVE, as runc does)
//! and for idmapping, open_tree(2) and move_mount(2) for detached idmapped trees.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use crate::syscall;

// linux/mount.h (Linux 5.12+; NOSYMFOLLOW 5.14).
pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x8;
/// The atime mode is an enum inside these bits, not a set of flags.
pub const MOUNT_ATTR_ATIME_MASK: u64 = 0x70;
pub const MOUNT_ATTR_RELATIME: u64 = 0x0;
pub const MOUNT_ATTR_NOATIME: u64 = 0x10;
pub const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
pub const MOUNT_ATTR_NODIRATIME: u64 = 0x80;
pub const MOUNT_ATTR_IDMAP: u64 = 0x10_0000;
pub const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x20_0000;

const OPEN_TREE_CLONE: libc::c_uint = 0x1;
const OPEN_TREE_CLOEXEC: libc::c_uint = libc::O_CLOEXEC as libc::c_uint;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;

/// The recursive mount options, sorted (what `features` lists beside the mount(2) names).
pub const RECURSIVE_OPTIONS: [&str; 18] = [
    "ratime",
    "rdev",
    "rdiratime",
    "rexec",
    "rnoatime",
    "rnodev",
    "rnodiratime",
    "rnoexec",
    "rnorelatime",
    "rnostrictatime",
    "rnosuid",
    "rnosymfollow",
    "rrelatime",
    "rro",
    "rrw",
    "rstrictatime",
    "rsuid",
    "rsymfollow",
];

/// struct mount_attr (MOUNT_ATTR_SIZE_VER0).
#[repr(C)]
#[derive(Default)]
struct RawMountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Attributes to set and clear on a mount and every mount below it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RecursiveAttr {
    pub set: u64,
    pub clear: u64,
}

impl RecursiveAttr {
    /// Folds one option into the attributes; false when `name` is not a recursive option.
    /// Later options win over earlier ones, as with the mount(2) names.
    pub fn add_option(&mut self, name: &str) -> bool {
        let (flag, clear) = match name {
            "rro" => (MOUNT_ATTR_RDONLY, false),
            "rrw" => (MOUNT_ATTR_RDONLY, true),
            "rnosuid" => (MOUNT_ATTR_NOSUID, false),
            "rsuid" => (MOUNT_ATTR_NOSUID, true),
            "rnodev" => (MOUNT_ATTR_NODEV, false),
            "rdev" => (MOUNT_ATTR_NODEV, true),
            "rnoexec" => (MOUNT_ATTR_NOEXEC, false),
            "rexec" => (MOUNT_ATTR_NOEXEC, true),
            "rnodiratime" => (MOUNT_ATTR_NODIRATIME, false),
            "rdiratime" => (MOUNT_ATTR_NODIRATIME, true),
            "rnosymfollow" => (MOUNT_ATTR_NOSYMFOLLOW, false),
            "rsymfollow" => (MOUNT_ATTR_NOSYMFOLLOW, true),
            _ => return self.add_atime_option(name),
        };
        if clear {
            self.clear |= flag;
            self.set &= !flag;
        } else {
            self.set |= flag;
            self.clear &= !flag;
        }
        true
    }

    /// The atime options choose one mode. mount_setattr(2) takes a mode only with the
    /// whole atime mask in attr_clr, so the "clearing" names pick a mode too (runc passes
    /// a partial mask for them, which the kernel refuses with EINVAL): ratime and
    /// rnostrictatime give relatime (the kernel's default, what "atime" means since Linux
    /// 2.6.30), rnorelatime gives strictatime (atime on every access).
    fn add_atime_option(&mut self, name: &str) -> bool {
        let mode = match name {
            "rrelatime" | "ratime" | "rnostrictatime" => MOUNT_ATTR_RELATIME,
            "rnoatime" => MOUNT_ATTR_NOATIME,
            "rstrictatime" | "rnorelatime" => MOUNT_ATTR_STRICTATIME,
            _ => return false,
        };
        self.set = (self.set & !MOUNT_ATTR_ATIME_MASK) | mode;
        self.clear |= MOUNT_ATTR_ATIME_MASK;
        true
    }

    pub fn is_empty(&self) -> bool {
        self.set == 0 && self.clear == 0
    }

    /// Applies the attributes to the mount `fd` names and every mount below it.
    pub fn apply(&self, fd: BorrowedFd<'_>) -> io::Result<()> {
        let attr = RawMountAttr {
            attr_set: self.set,
            attr_clr: self.clear,
            ..RawMountAttr::default()
        };
        mount_setattr(fd, libc::AT_EMPTY_PATH | libc::AT_RECURSIVE, &attr)
    }
}

fn mount_setattr(fd: BorrowedFd<'_>, flags: libc::c_int, attr: &RawMountAttr) -> io::Result<()> {
    let empty: &CStr = c"";
    // SAFETY: a valid fd, a nul-terminated path and a mount_attr of the size we pass.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            empty.as_ptr(),
            flags as libc::c_uint,
            attr as *const RawMountAttr,
            std::mem::size_of::<RawMountAttr>(),
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether the kernel has mount_setattr(2) (Linux 5.12), which recursive options and
/// idmapped mounts need: asked with a bad fd, it says EBADF, a kernel without it ENOSYS.
pub fn kernel_has_mount_setattr() -> bool {
    let attr = RawMountAttr::default();
    // SAFETY: fd -1 and a valid empty path: the call fails without touching any mount.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            -1,
            c"".as_ptr(),
            libc::AT_EMPTY_PATH as libc::c_uint,
            &attr as *const RawMountAttr,
            std::mem::size_of::<RawMountAttr>(),
        )
    };
    ret == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ENOSYS)
}

/// Marks the detached tree `fd` idmapped through the user namespace `userns` (the mount
/// only, or with `recursive` every mount in it).
pub fn set_idmap(fd: BorrowedFd<'_>, userns: BorrowedFd<'_>, recursive: bool) -> io::Result<()> {
    let attr = RawMountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        userns_fd: userns.as_raw_fd() as u64,
        ..RawMountAttr::default()
    };
    let rec = if recursive { libc::AT_RECURSIVE } else { 0 };
    mount_setattr(fd, libc::AT_EMPTY_PATH | rec, &attr)
}

/// open_tree(2) with OPEN_TREE_CLONE: a detached copy of the mount at `path` (with
/// `recursive`, of the mounts below it too), close-on-exec.
pub fn clone_tree(path: &Path, recursive: bool) -> io::Result<OwnedFd> {
    let c = syscall::cstring(path)?;
    let mut flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: a valid C string; the returned fd is ours.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, c.as_ptr(), flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// move_mount(2) of the detached tree `tree` onto the file or directory `target` is open on.
pub fn attach_tree(tree: BorrowedFd<'_>, target: BorrowedFd<'_>) -> io::Result<()> {
    let empty: &CStr = c"";
    // SAFETY: valid fds and nul-terminated empty paths.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            empty.as_ptr(),
            target.as_raw_fd(),
            empty.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(options: &[&str]) -> RecursiveAttr {
        let mut a = RecursiveAttr::default();
        for o in options {
            assert!(a.add_option(o), "{o} is a recursive option");
        }
        a
    }

    #[test]
    fn recursive_flags_set_and_clear_with_the_last_option_winning() {
        assert_eq!(
            attr(&["rro", "rnosuid"]),
            RecursiveAttr {
                set: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID,
                clear: 0
            }
        );
        assert_eq!(
            attr(&["rro", "rrw"]),
            RecursiveAttr {
                set: 0,
                clear: MOUNT_ATTR_RDONLY
            }
        );
        assert_eq!(
            attr(&["rexec", "rnodev", "rsymfollow"]),
            RecursiveAttr {
                set: MOUNT_ATTR_NODEV,
                clear: MOUNT_ATTR_NOEXEC | MOUNT_ATTR_NOSYMFOLLOW
            }
        );
    }

    #[test]
    fn atime_options_pick_one_mode_with_the_whole_mask_cleared() {
        // mount_setattr(2) refuses a mode without MOUNT_ATTR__ATIME in attr_clr, and a
        // partial mask in attr_clr.
        for (options, mode) in [
            (&["rnoatime"][..], MOUNT_ATTR_NOATIME),
            (&["rstrictatime"][..], MOUNT_ATTR_STRICTATIME),
            (&["rrelatime"][..], MOUNT_ATTR_RELATIME),
            (&["rnoatime", "ratime"][..], MOUNT_ATTR_RELATIME),
            (&["rnorelatime"][..], MOUNT_ATTR_STRICTATIME),
            (&["rstrictatime", "rnostrictatime"][..], MOUNT_ATTR_RELATIME),
            (&["rro", "rnoatime", "rnodiratime"][..], MOUNT_ATTR_NOATIME),
        ] {
            let a = attr(options);
            assert_eq!(
                a.clear & MOUNT_ATTR_ATIME_MASK,
                MOUNT_ATTR_ATIME_MASK,
                "{options:?}"
            );
            assert_eq!(a.set & MOUNT_ATTR_ATIME_MASK, mode, "{options:?}");
            assert!(!a.is_empty());
        }
        let a = attr(&["rro", "rnoatime", "rnodiratime"]);
        assert_eq!(
            a.set,
            MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOATIME | MOUNT_ATTR_NODIRATIME
        );
    }

    #[test]
    fn every_listed_recursive_option_is_understood_and_others_are_not() {
        for o in RECURSIVE_OPTIONS {
            assert!(RecursiveAttr::default().add_option(o), "{o}");
        }
        let mut sorted = RECURSIVE_OPTIONS.to_vec();
        sorted.sort_unstable();
        assert_eq!(sorted, RECURSIVE_OPTIONS);
        for o in ["ro", "rbind", "rprivate", "rslave", "idmap", "ridmap", "r"] {
            assert!(!RecursiveAttr::default().add_option(o), "{o}");
        }
    }
}
