//! What diff knows about one node of a tree: `lstat` fields, symlink target and xattrs.

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::root::libc_mode::{S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG};

/// The kind of a node, from its `st_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Dir,
    Symlink,
    Char,
    Block,
    Fifo,
    /// Sockets: Docker skips them in layers, and so do we.
    Socket,
}

/// Metadata of one node, read without following symlinks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileInfo {
    pub(crate) kind: Kind,
    pub(crate) mode: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) size: u64,
    pub(crate) mtime: i64,
    pub(crate) mtime_nsec: i64,
    pub(crate) rdev: u64,
    pub(crate) dev: u64,
    pub(crate) ino: u64,
    pub(crate) nlink: u64,
    pub(crate) link_target: Option<Vec<u8>>,
    /// Sorted by name; `trusted.overlay.*` (overlayfs' own bookkeeping) never included.
    pub(crate) xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl FileInfo {
    pub(crate) fn read(path: &Path) -> io::Result<FileInfo> {
        let meta = std::fs::symlink_metadata(path)?;
        let kind = match meta.mode() & S_IFMT {
            S_IFREG => Kind::File,
            S_IFDIR => Kind::Dir,
            S_IFLNK => Kind::Symlink,
            S_IFCHR => Kind::Char,
            S_IFBLK => Kind::Block,
            S_IFIFO => Kind::Fifo,
            _ => Kind::Socket,
        };
        let link_target = if kind == Kind::Symlink {
            Some(std::fs::read_link(path)?.as_os_str().as_bytes().to_vec())
        } else {
            None
        };
        Ok(FileInfo {
            kind,
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
            size: if kind == Kind::File { meta.size() } else { 0 },
            mtime: meta.mtime(),
            mtime_nsec: meta.mtime_nsec(),
            rdev: meta.rdev(),
            dev: meta.dev(),
            ino: meta.ino(),
            nlink: meta.nlink(),
            link_target,
            xattrs: read_xattrs(path)?,
        })
    }

    /// Whether two nodes at the same path differ in anything a layer records (Docker's
    /// `ChangesDirs` rule: metadata, not content; a rewritten file changes its mtime).
    pub(crate) fn differs_from(&self, lower: &FileInfo) -> bool {
        self.kind != lower.kind
            || self.mode != lower.mode
            || self.uid != lower.uid
            || self.gid != lower.gid
            || self.size != lower.size
            || (self.kind != Kind::Dir
                && (self.mtime, self.mtime_nsec) != (lower.mtime, lower.mtime_nsec))
            || self.rdev != lower.rdev
            || self.link_target != lower.link_target
            || self.xattrs != lower.xattrs
    }

    /// An overlayfs whiteout: a 0/0 character device.
    pub(crate) fn is_overlay_whiteout(&self) -> bool {
        self.kind == Kind::Char && self.rdev == 0
    }

    /// The value of xattr `name`, if set.
    pub(crate) fn xattr(&self, name: &[u8]) -> Option<&[u8]> {
        self.xattrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_slice())
    }
}

fn read_xattrs(path: &Path) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let size = match rustix::fs::llistxattr_query(path) {
        Ok(n) => n,
        Err(rustix::io::Errno::NOTSUP) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    if size == 0 {
        return Ok(Vec::new());
    }
    let mut names = vec![0u8; size];
    let n = rustix::fs::llistxattr(path, &mut names[..])?;
    names.truncate(n);
    let mut out = Vec::new();
    for name in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name_os = std::ffi::OsStr::from_bytes(name);
        let len = match rustix::fs::lgetxattr_query(path, name_os) {
            Ok(len) => len,
            // Listed but unreadable (trusted.* as non-root): not part of the layer.
            Err(rustix::io::Errno::NODATA) | Err(rustix::io::Errno::PERM) => continue,
            Err(e) => return Err(e.into()),
        };
        let mut value = vec![0u8; len];
        let len = rustix::fs::lgetxattr(path, name_os, &mut value[..])?;
        value.truncate(len);
        out.push((name.to_vec(), value));
    }
    out.sort();
    Ok(out)
}
