//! A directory opened once and used as the root for every path inside it: `openat2` with
//! `RESOLVE_IN_ROOT` so that `..` and symlinks (absolute or relative) in parent components
//! resolve inside it, never above it, and final components are handled with `*at` calls that
//! do not follow symlinks.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};

use crate::path::CleanPath;

/// The target root of an apply or the source root of a diff.
#[derive(Debug)]
pub(crate) struct Root {
    fd: OwnedFd,
}

const RESOLVE: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

impl Root {
    /// Opens `path` (which must be a directory; a symlink there is refused).
    pub(crate) fn open(path: &Path) -> io::Result<Root> {
        let fd = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::empty(),
        )?;
        Ok(Root { fd })
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Opens `rel` inside the root with `flags`, resolving every symlink inside the root.
    pub(crate) fn open_at(&self, rel: &CleanPath, flags: OFlags) -> io::Result<OwnedFd> {
        if !openat2_usable() {
            return resolve_walk(self.fd.as_fd(), rel, flags);
        }
        let bytes = rel.to_bytes();
        loop {
            match rustix::fs::openat2(
                &self.fd,
                OsStr::from_bytes(&bytes),
                flags | OFlags::CLOEXEC,
                Mode::empty(),
                RESOLVE,
            ) {
                // openat2 returns EAGAIN when a concurrent rename raced the lookup.
                Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INTR) => continue,
                // Kernels before 5.6, or seccomp profiles (older Docker ones among them)
                // that do not know the syscall: resolve component by component instead.
                Err(rustix::io::Errno::NOSYS) => {
                    OPENAT2_MISSING.store(true, Ordering::Relaxed);
                    return resolve_walk(self.fd.as_fd(), rel, flags);
                }
                other => return other.map_err(io::Error::from),
            }
        }
    }

    /// Opens directory `rel` (as an `O_PATH` handle usable as a `*at` dirfd).
    pub(crate) fn open_dir(&self, rel: &CleanPath) -> io::Result<OwnedFd> {
        self.open_at(rel, OFlags::PATH | OFlags::DIRECTORY)
    }

    /// Opens directory `rel`, creating missing components (mode 0755, like Docker's
    /// `MkdirAllNewAs` for parents a layer does not list). `created` receives each new one.
    pub(crate) fn open_dir_creating(
        &self,
        rel: &CleanPath,
        created: &mut Vec<CleanPath>,
    ) -> io::Result<OwnedFd> {
        match self.open_dir(rel) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            other => return other,
        }
        let mut dir = self.open_dir(&CleanPath::root())?;
        for n in 1..=rel.components().len() {
            let prefix = rel.prefix(n);
            match self.open_dir(&prefix) {
                Ok(fd) => dir = fd,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    rustix::fs::mkdirat(&dir, prefix.file_name(), Mode::from_raw_mode(0o755))?;
                    created.push(prefix.clone());
                    dir = self.open_dir(&prefix)?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(dir)
    }
}

/// Set once `openat2` answered ENOSYS.
static OPENAT2_MISSING: AtomicBool = AtomicBool::new(false);

#[cfg(test)]
thread_local! {
    /// Tests run the hostile suite against the fallback walk too.
    pub(crate) static FORCE_WALK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn openat2_usable() -> bool {
    #[cfg(test)]
    if FORCE_WALK.with(std::cell::Cell::get) {
        return false;
    }
    !OPENAT2_MISSING.load(Ordering::Relaxed)
}

/// Symlinks followed before giving up, as the kernel's MAXSYMLINKS.
const MAX_SYMLINKS: usize = 40;

/// `RESOLVE_IN_ROOT` done by hand: walks `rel` from `root` one component at a time with
/// `O_NOFOLLOW`, reading each symlink and continuing from the root (absolute target) or the
/// current directory (relative target); `..` never climbs above the root. A component swapped
/// for a symlink between the `lstat` and the open fails the open instead of being followed.
fn resolve_walk(root: BorrowedFd<'_>, rel: &CleanPath, flags: OFlags) -> io::Result<OwnedFd> {
    use std::collections::VecDeque;
    let root_dir = || {
        rustix::fs::openat(
            root,
            ".",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
    };
    let mut stack: Vec<OwnedFd> = vec![root_dir()?];
    let mut pending: VecDeque<Vec<u8>> = rel
        .components()
        .iter()
        .map(|c| c.as_bytes().to_vec())
        .collect();
    let mut links = 0;
    while let Some(component) = pending.pop_front() {
        match component.as_slice() {
            b"" | b"." => continue,
            b".." => {
                if stack.len() > 1 {
                    stack.pop();
                }
                continue;
            }
            _ => {}
        }
        let name = OsStr::from_bytes(&component);
        let current = stack
            .last()
            .ok_or_else(|| io::Error::from(rustix::io::Errno::NOENT))?;
        let st = rustix::fs::statat(current, name, AtFlags::SYMLINK_NOFOLLOW)?;
        if FileType::from_raw_mode(st.st_mode) == FileType::Symlink {
            links += 1;
            if links > MAX_SYMLINKS {
                return Err(rustix::io::Errno::LOOP.into());
            }
            let target = rustix::fs::readlinkat(current, name, Vec::new())?;
            let target = target.as_bytes();
            if target.starts_with(b"/") {
                stack.truncate(1);
            }
            for part in target.split(|b| *b == b'/').rev() {
                pending.push_front(part.to_vec());
            }
            continue;
        }
        if pending.iter().all(|p| p.is_empty() || p.as_slice() == b".") {
            // A trailing `/` or `/.` (left by a symlink target) demands a directory.
            let must_be_dir = if pending.is_empty() {
                OFlags::empty()
            } else {
                OFlags::DIRECTORY
            };
            return Ok(rustix::fs::openat(
                current,
                name,
                flags | must_be_dir | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?);
        }
        let next = rustix::fs::openat(
            current,
            name,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        stack.push(next);
    }
    let current = stack
        .last()
        .ok_or_else(|| io::Error::from(rustix::io::Errno::NOENT))?;
    Ok(rustix::fs::openat(
        current,
        ".",
        flags | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// `lstat` of `name` in `dir`, or `None` when it does not exist.
pub(crate) fn lstat_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<Option<rustix::fs::Stat>> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(rustix::io::Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Whether a `st_mode` is a directory.
pub(crate) fn is_dir(mode: u32) -> bool {
    mode & libc_mode::S_IFMT == libc_mode::S_IFDIR
}

/// File type bits of `st_mode` (kept here so the crate needs no libc dependency).
pub(crate) mod libc_mode {
    pub(crate) const S_IFMT: u32 = 0o170000;
    pub(crate) const S_IFDIR: u32 = 0o040000;
    pub(crate) const S_IFREG: u32 = 0o100000;
    pub(crate) const S_IFLNK: u32 = 0o120000;
    pub(crate) const S_IFCHR: u32 = 0o020000;
    pub(crate) const S_IFBLK: u32 = 0o060000;
    pub(crate) const S_IFIFO: u32 = 0o010000;
}

/// Removes `name` from `dir`, recursively if it is a directory, never following symlinks
/// (a symlink is removed, not its target). A missing name is not an error.
pub(crate) fn remove_all_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) | Err(rustix::io::Errno::NOENT) => return Ok(()),
        Err(rustix::io::Errno::ISDIR) | Err(rustix::io::Errno::PERM) => {}
        Err(e) => return Err(e.into()),
    }
    let sub = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    clear_dir(sub.as_fd(), |_| true)?;
    match rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR) {
        Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Removes every child of the open directory `dir` for which `remove` says yes.
pub(crate) fn clear_dir(
    dir: BorrowedFd<'_>,
    mut remove: impl FnMut(&OsStr) -> bool,
) -> io::Result<()> {
    for name in list_dir(dir)? {
        if remove(&name) {
            remove_all_at(dir, &name)?;
        }
    }
    Ok(())
}

/// The names in the open directory `dir` (without `.` and `..`), sorted by bytes.
pub(crate) fn list_dir(dir: BorrowedFd<'_>) -> io::Result<Vec<std::ffi::OsString>> {
    let mut names = Vec::new();
    let reader = rustix::fs::Dir::read_from(dir)?;
    for entry in reader {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        names.push(OsStr::from_bytes(name).to_os_string());
    }
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(names)
}

/// A `/proc/self/fd/<dir>/<name>` path: lets path-only calls (`lsetxattr`, `llistxattr`)
/// act on `name` relative to an already-resolved directory without re-walking the root.
pub(crate) fn proc_path(dir: BorrowedFd<'_>, name: &OsStr) -> PathBuf {
    use std::os::fd::AsRawFd;
    let mut p = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    if name != OsStr::new(".") {
        p.push(name);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// (dev, ino) of what `rel` opens to, or the errno.
    fn identity(root: &Root, rel: &str, walk: bool) -> Result<(u64, u64), i32> {
        FORCE_WALK.with(|force| force.set(walk));
        let path = CleanPath::parse(rel.as_bytes()).expect("clean");
        let result = root.open_at(&path, OFlags::PATH);
        FORCE_WALK.with(|force| force.set(false));
        match result {
            Ok(fd) => {
                let st = rustix::fs::fstat(&fd).expect("fstat");
                Ok((st.st_dev, st.st_ino))
            }
            Err(e) => Err(e.raw_os_error().unwrap_or(0)),
        }
    }

    #[test]
    fn component_walk_resolves_exactly_like_openat2_in_root() {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = dir.path().join("root");
        std::fs::create_dir_all(r.join("usr/lib/x")).expect("mkdir");
        std::fs::write(r.join("usr/lib/x/file"), b"f").expect("write");
        std::fs::write(dir.path().join("outside"), b"o").expect("write");
        symlink("usr/lib", r.join("lib")).expect("symlink");
        symlink("/usr/lib/x", r.join("abs")).expect("symlink");
        symlink("../../../../..", r.join("usr/up")).expect("symlink");
        symlink("../outside", r.join("out")).expect("symlink");
        symlink(dir.path().join("outside"), r.join("host")).expect("symlink");
        symlink("loop2", r.join("loop1")).expect("symlink");
        symlink("loop1", r.join("loop2")).expect("symlink");
        symlink("x/file/", r.join("usr/lib/trailing")).expect("symlink");
        symlink("missing/deeper", r.join("dangling")).expect("symlink");
        symlink("../../..", r.join("usr/lib/x/dd")).expect("symlink");
        let root = Root::open(&r).expect("open root");
        for rel in [
            ".",
            "usr",
            "lib",
            "lib/x/file",
            "abs",
            "abs/file",
            "usr/up",
            "usr/up/usr/lib",
            "out",
            "host",
            "loop1",
            "usr/lib/trailing",
            "dangling",
            "nope",
            "usr/lib/x/file/extra",
            "usr/lib/x/dd/usr",
            "abs/dd/lib/x/dd/..",
            "lib/../lib/x",
        ] {
            assert_eq!(
                identity(&root, rel, true),
                identity(&root, rel, false),
                "{rel}"
            );
        }
    }
}
