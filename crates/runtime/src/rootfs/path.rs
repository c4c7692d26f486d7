//! Resolving paths inside the container's rootfs with openat2(RESOLVE_IN_ROOT): a symlink
//! or ".." in a mount destination can never lead outside the rootfs.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};

/// The components of `path` with "/" and "." dropped; ".." is kept for the kernel to
/// clamp at the root.
pub fn components(path: &Path) -> Vec<&OsStr> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n),
            Component::ParentDir => Some(OsStr::new("..")),
            _ => None,
        })
        .collect()
}

/// Opens `path` (relative to the root fd, symlinks resolved as if `root` were "/").
pub fn open_in_root(root: BorrowedFd<'_>, path: &Path, flags: OFlags) -> io::Result<OwnedFd> {
    let rel: PathBuf = components(path).iter().collect();
    let rel = if rel.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        rel
    };
    let mut attempts = 0;
    loop {
        match rustix::fs::openat2(
            root,
            &rel,
            flags | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        ) {
            // EAGAIN: a rename raced the lookup; the kernel asks us to retry.
            Err(rustix::io::Errno::AGAIN) if attempts < 16 => attempts += 1,
            Err(e) => return Err(e.into()),
            Ok(fd) => return Ok(fd),
        }
    }
}

/// Makes every directory of `path` inside the root (mode 0755) and returns an O_PATH fd
/// for the last one. A dangling symlink on the way is followed inside the root (its
/// target is created there), never on the host.
pub fn mkdir_all_in_root(root: BorrowedFd<'_>, path: &Path) -> io::Result<OwnedFd> {
    let mut pending: Vec<std::ffi::OsString> = components(path)
        .iter()
        .rev()
        .map(|c| c.to_os_string())
        .collect();
    let mut walked = PathBuf::from("/");
    let mut current = open_in_root(root, &walked, OFlags::PATH | OFlags::DIRECTORY)?;
    let mut links = 0;
    while let Some(name) = pending.pop() {
        if name == ".." {
            walked.pop();
            current = open_in_root(root, &walked, OFlags::PATH | OFlags::DIRECTORY)?;
            continue;
        }
        let next = walked.join(&name);
        match open_in_root(root, &next, OFlags::PATH | OFlags::DIRECTORY) {
            Ok(fd) => {
                current = fd;
                walked = next;
                continue;
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(e),
        }
        match rustix::fs::mkdirat(current.as_fd(), &name, Mode::from_raw_mode(0o755)) {
            Ok(()) => {
                current = open_in_root(root, &next, OFlags::PATH | OFlags::DIRECTORY)?;
                walked = next;
            }
            Err(rustix::io::Errno::EXIST) => {
                // Something is there but does not resolve: a dangling symlink. Walk its
                // target instead, relative to the root.
                let target = rustix::fs::readlinkat(current.as_fd(), &name, Vec::new())?;
                links += 1;
                if links > 40 {
                    return Err(io::Error::from_raw_os_error(libc::ELOOP));
                }
                let target = PathBuf::from(std::ffi::OsStr::from_bytes(target.as_bytes()));
                if target.is_absolute() {
                    walked = PathBuf::from("/");
                    current = open_in_root(root, &walked, OFlags::PATH | OFlags::DIRECTORY)?;
                }
                for c in components(&target).iter().rev() {
                    pending.push(c.to_os_string());
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(current)
}

/// Ensures `path` exists inside the root, as a directory or an empty file, and returns an
/// O_PATH fd for it.
pub fn create_in_root(root: BorrowedFd<'_>, path: &Path, dir: bool) -> io::Result<OwnedFd> {
    if dir {
        return mkdir_all_in_root(root, path);
    }
    match open_in_root(root, path, OFlags::PATH) {
        Ok(fd) => return Ok(fd),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
        Err(e) => return Err(e),
    }
    let parent = path.parent().unwrap_or(Path::new("/"));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let parent_fd = mkdir_all_in_root(root, parent)?;
    match rustix::fs::openat(
        parent_fd.as_fd(),
        name,
        OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::from_raw_mode(0o644),
    ) {
        Ok(_) | Err(rustix::io::Errno::EXIST) => {}
        Err(e) => return Err(e.into()),
    }
    open_in_root(root, path, OFlags::PATH)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn root_fd(dir: &Path) -> OwnedFd {
        rustix::fs::open(
            dir,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .expect("open root")
    }

    #[test]
    fn absolute_symlink_in_destination_stays_inside_root() {
        let outside = tempfile::tempdir().expect("tempdir");
        let root = tempfile::tempdir().expect("tempdir");
        // rootfs/escape -> <outside> must resolve to rootfs/<outside>, never the host dir.
        symlink(outside.path(), root.path().join("escape")).expect("symlink");
        let fd = root_fd(root.path());
        mkdir_all_in_root(fd.as_fd(), Path::new("/escape/sub")).expect("mkdir");
        assert!(!outside.path().join("sub").exists());
        let inside = root
            .path()
            .join(outside.path().strip_prefix("/").expect("abs"));
        assert!(inside.join("sub").is_dir());
    }

    #[test]
    fn dot_dot_is_clamped_at_the_root() {
        let root = tempfile::tempdir().expect("tempdir");
        let fd = root_fd(root.path());
        create_in_root(fd.as_fd(), Path::new("/../../etc/x"), false).expect("create");
        assert!(root.path().join("etc/x").is_file());
    }

    #[test]
    fn relative_symlink_pointing_up_is_clamped_too() {
        let root = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(root.path().join("a")).expect("mkdir");
        symlink("../../../../tmp", root.path().join("a/up")).expect("symlink");
        let fd = root_fd(root.path());
        create_in_root(fd.as_fd(), Path::new("/a/up/marker"), true).expect("mkdir");
        assert!(root.path().join("tmp/marker").is_dir());
    }

    #[test]
    fn components_drop_root_and_dots() {
        let c = components(Path::new("/a/./b/../c"));
        assert_eq!(
            c,
            vec![
                OsStr::new("a"),
                OsStr::new("b"),
                OsStr::new(".."),
                OsStr::new("c")
            ]
        );
    }
}
