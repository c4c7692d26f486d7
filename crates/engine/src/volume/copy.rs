//! Copy-up: a fresh (empty) volume mounted over a path of the image gets the image's
//! content there first, keeping ownership, modes, extended attributes, timestamps,
//! symlinks, hard links and special files (Docker's `CopyImagePathContent`). The source
//! is resolved inside the rootfs with `openat2(RESOLVE_IN_ROOT)`, and only real
//! directories are descended into, so a hostile image cannot make berthd copy host files.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};

/// Copies `<rootfs>/<destination>` into `target` when `target` is empty and the source is
/// a directory; returns whether anything was copied.
pub fn copy_up(rootfs: &Path, destination: &str, target: &Path) -> std::io::Result<bool> {
    if !super::is_empty_dir(target) {
        return Ok(false);
    }
    let Some(source_fd) = open_in_root(rootfs, destination)? else {
        return Ok(false);
    };
    let source = PathBuf::from(format!("/proc/self/fd/{}", fd_number(&source_fd)));
    let meta = std::fs::metadata(&source)?;
    if !meta.is_dir() {
        return Ok(false);
    }
    let mut links = BTreeMap::new();
    copy_dir_contents(&source, target, &mut links)?;
    copy_attributes(&source, target, &meta)?;
    Ok(true)
}

fn fd_number(fd: &OwnedFd) -> i32 {
    use std::os::fd::AsRawFd;
    fd.as_fd().as_raw_fd()
}

/// `destination` inside `rootfs`, symlinks resolved as the container would; `None` when
/// it does not exist there.
fn open_in_root(rootfs: &Path, destination: &str) -> std::io::Result<Option<OwnedFd>> {
    let root = rustix::fs::open(
        rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let relative = destination.trim_start_matches('/');
    let relative = if relative.is_empty() { "." } else { relative };
    match rustix::fs::openat2(
        &root,
        relative,
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    ) {
        Ok(fd) => Ok(Some(fd)),
        Err(rustix::io::Errno::NOENT) | Err(rustix::io::Errno::NOTDIR) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn copy_dir_contents(
    source: &Path,
    target: &Path,
    links: &mut BTreeMap<(u64, u64), PathBuf>,
) -> std::io::Result<()> {
    for entry in std::fs::read_dir(source)? {
        let entry = entry?;
        let from = entry.path();
        let to = target.join(entry.file_name());
        let meta = std::fs::symlink_metadata(&from)?;
        let kind = meta.file_type();
        if !kind.is_dir() && meta.nlink() > 1 {
            if let Some(first) = links.get(&(meta.dev(), meta.ino())) {
                std::fs::hard_link(first, &to)?;
                continue;
            }
            links.insert((meta.dev(), meta.ino()), to.clone());
        }
        if kind.is_dir() {
            std::fs::create_dir(&to)?;
            copy_dir_contents(&from, &to, links)?;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&from)?, &to)?;
        } else if kind.is_file() {
            std::fs::copy(&from, &to)?;
        } else if kind.is_fifo() || kind.is_char_device() || kind.is_block_device() {
            make_node(&to, &meta)?;
        } else {
            // Sockets are not content.
            continue;
        }
        copy_attributes(&from, &to, &meta)?;
    }
    Ok(())
}

fn c_path(path: &Path) -> std::io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(std::io::Error::other)
}

fn make_node(path: &Path, meta: &std::fs::Metadata) -> std::io::Result<()> {
    let c = c_path(path)?;
    // SAFETY: `c` is a NUL-terminated path that outlives the call.
    let rc = unsafe { libc::mknod(c.as_ptr(), meta.mode() as libc::mode_t, meta.rdev()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Owner, mode (with setuid/setgid/sticky), extended attributes and times of `from` on `to`.
fn copy_attributes(from: &Path, to: &Path, meta: &std::fs::Metadata) -> std::io::Result<()> {
    let c = c_path(to)?;
    // SAFETY: `c` is a NUL-terminated path that outlives the call.
    if unsafe { libc::lchown(c.as_ptr(), meta.uid(), meta.gid()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    copy_xattrs(from, to)?;
    if !meta.file_type().is_symlink() {
        // After chown, which clears setuid/setgid bits.
        std::fs::set_permissions(to, std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    }
    let times = [
        libc::timespec {
            tv_sec: meta.atime(),
            tv_nsec: meta.atime_nsec(),
        },
        libc::timespec {
            tv_sec: meta.mtime(),
            tv_nsec: meta.mtime_nsec(),
        },
    ];
    // SAFETY: `c` and `times` outlive the call; AT_SYMLINK_NOFOLLOW sets the link's own times.
    let rc = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn copy_xattrs(from: &Path, to: &Path) -> std::io::Result<()> {
    let mut names = vec![0u8; 4096];
    let length = match rustix::fs::llistxattr(from, &mut names) {
        Ok(length) => length,
        Err(rustix::io::Errno::NOTSUP) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    for name in names[..length].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = CString::new(name).map_err(std::io::Error::other)?;
        let mut value = vec![0u8; 65536];
        let size = match rustix::fs::lgetxattr(from, name.as_c_str(), &mut value) {
            Ok(size) => size,
            Err(rustix::io::Errno::NODATA) => continue,
            Err(e) => return Err(e.into()),
        };
        match rustix::fs::lsetxattr(
            to,
            name.as_c_str(),
            &value[..size],
            rustix::fs::XattrFlags::empty(),
        ) {
            // A filesystem without that namespace (e.g. trusted.* on tmpfs as non-root).
            Ok(()) | Err(rustix::io::Errno::NOTSUP) | Err(rustix::io::Errno::PERM) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_up_fills_an_empty_volume_with_modes_links_times_and_xattrs() {
        let rootfs = tempfile::tempdir().expect("rootfs");
        let data = rootfs.path().join("var/lib/app");
        std::fs::create_dir_all(data.join("sub")).expect("dirs");
        std::fs::write(data.join("sub/file"), b"hello").expect("file");
        std::fs::set_permissions(
            data.join("sub/file"),
            std::fs::Permissions::from_mode(0o640),
        )
        .expect("chmod");
        std::fs::hard_link(data.join("sub/file"), data.join("hard")).expect("hard link");
        std::os::unix::fs::symlink("/etc/passwd", data.join("link")).expect("symlink");
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
        rustix::fs::setxattr(
            data.join("sub/file").as_path(),
            "user.berth",
            b"kept",
            rustix::fs::XattrFlags::empty(),
        )
        .expect("the test directory's filesystem takes user xattrs");
        let volume = tempfile::tempdir().expect("volume");
        assert!(copy_up(rootfs.path(), "/var/lib/app", volume.path()).expect("copy"));
        let copied = volume.path();
        assert_eq!(
            std::fs::read(copied.join("sub/file")).expect("read"),
            b"hello"
        );
        let meta = std::fs::metadata(copied.join("sub/file")).expect("meta");
        assert_eq!(meta.mode() & 0o7777, 0o640);
        assert_eq!(
            std::fs::metadata(copied.join("hard")).expect("hard").ino(),
            meta.ino()
        );
        assert_eq!(
            std::fs::read_link(copied.join("link")).expect("link"),
            Path::new("/etc/passwd")
        );
        assert_eq!(
            std::fs::metadata(copied).expect("root").mode() & 0o7777,
            0o1777,
            "the volume root takes the image directory's mode"
        );
        let mut value = [0u8; 16];
        let n = rustix::fs::getxattr(copied.join("sub/file").as_path(), "user.berth", &mut value)
            .expect("the xattr was copied");
        assert_eq!(&value[..n], b"kept");
        let original = std::fs::metadata(data.join("sub/file")).expect("meta");
        assert_eq!(meta.mtime(), original.mtime());
        // Not empty any more: a second copy-up does nothing.
        assert!(!copy_up(rootfs.path(), "/var/lib/app", volume.path()).expect("again"));
    }

    #[test]
    fn copy_up_stays_inside_the_rootfs() {
        let rootfs = tempfile::tempdir().expect("rootfs");
        let outside = tempfile::tempdir().expect("outside");
        std::fs::write(outside.path().join("secret"), b"x").expect("secret");
        std::os::unix::fs::symlink(outside.path(), rootfs.path().join("escape")).expect("symlink");
        let volume = tempfile::tempdir().expect("volume");
        // The absolute symlink resolves inside the rootfs, where nothing exists.
        assert!(!copy_up(rootfs.path(), "/escape", volume.path()).expect("copy"));
        assert!(super::super::is_empty_dir(volume.path()));
        assert!(!copy_up(rootfs.path(), "/missing", volume.path()).expect("missing"));
    }
}
