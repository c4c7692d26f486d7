//! Whiteouts (`.wh.<name>`) and opaque markers (`.wh..wh..opq`), as the OCI image spec's
//! layer section defines them, turned into overlayfs markers or applied to a flattened tree.

use std::ffi::OsStr;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;

use rustix::fs::{FileType, Mode, OFlags, XattrFlags};

use super::metadata::{set_mode, set_times, Node};
use super::{errno_error, io_error, Applier, ApplyError, SkipReason, WhiteoutMode};
use crate::path::CleanPath;
use crate::root::{clear_dir, is_dir, lstat_at, remove_all_at};

/// Prefix of a whiteout file name.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// Name of the opaque-directory marker.
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";
/// The xattr overlayfs reads to make a directory opaque.
pub const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// The part after `.wh.` when `path` names a whiteout.
pub(super) fn whiteout_target(path: &CleanPath) -> Option<&[u8]> {
    path.file_name()
        .as_bytes()
        .strip_prefix(WHITEOUT_PREFIX.as_bytes())
}

/// Whether `path` lies in aufs' bookkeeping directories at the top of a layer
/// (`.wh..wh.plnk/`, `.wh..wh.aufs`), which Docker skips; the root's opaque marker is not one.
pub(super) fn is_aufs_metadata(path: &CleanPath) -> bool {
    let Some(first) = path.components().first() else {
        return false;
    };
    let aufs_prefix = b".wh..wh.";
    first.as_bytes().starts_with(aufs_prefix)
        && !(path.components().len() == 1 && first == OPAQUE_MARKER)
}

fn not_found(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound
}

impl Applier<'_> {
    pub(super) fn apply_whiteout(
        &mut self,
        name: &str,
        path: &CleanPath,
        rest: &[u8],
    ) -> Result<(), ApplyError> {
        let dir = path.parent();
        if path.file_name() == OsStr::new(OPAQUE_MARKER) {
            return self.apply_opaque(name, &dir);
        }
        if rest.starts_with(WHITEOUT_PREFIX.as_bytes()) {
            // `.wh..wh.plnk`, `.wh..wh.aufs`: aufs bookkeeping, ignored like Docker does.
            self.skip(name, SkipReason::AufsMetadata);
            return Ok(());
        }
        if rest.is_empty() || rest == b"." || rest == b".." {
            return Err(ApplyError::InvalidName {
                entry: name.to_string(),
                reason: "a whiteout must name a file in its directory",
            });
        }
        let victim = OsStr::from_bytes(rest);
        match self.options.whiteouts {
            WhiteoutMode::Native => {
                let parent = match self.root.open_dir(&dir) {
                    Ok(fd) => fd,
                    // Nothing below to delete.
                    Err(e)
                        if not_found(&e)
                            || e.raw_os_error()
                                == Some(rustix::io::Errno::NOTDIR.raw_os_error()) =>
                    {
                        return Ok(())
                    }
                    Err(e) => return Err(io_error(name, "open whiteout directory")(e)),
                };
                remove_all_at(parent.as_fd(), victim)
                    .map_err(io_error(name, "delete whited-out path"))
            }
            WhiteoutMode::Overlay => {
                let mut created = Vec::new();
                let parent = self
                    .root
                    .open_dir_creating(&dir, &mut created)
                    .map_err(io_error(name, "open whiteout directory"))?;
                for c in &created {
                    self.mark_unpacked(c);
                }
                remove_all_at(parent.as_fd(), victim)
                    .map_err(io_error(name, "remove existing path"))?;
                match rustix::fs::mknodat(
                    &parent,
                    victim,
                    FileType::CharacterDevice,
                    Mode::empty(),
                    0,
                ) {
                    Ok(()) => Ok(()),
                    Err(rustix::io::Errno::PERM) => Err(ApplyError::DeviceNotPermitted {
                        entry: name.to_string(),
                    }),
                    Err(e) => Err(errno_error(name, "create whiteout device")(e)),
                }
            }
        }
    }

    fn apply_opaque(&mut self, name: &str, dir: &CleanPath) -> Result<(), ApplyError> {
        match self.options.whiteouts {
            WhiteoutMode::Overlay => {
                let mut created = Vec::new();
                self.root
                    .open_dir_creating(dir, &mut created)
                    .map_err(io_error(name, "open opaque directory"))?;
                for c in &created {
                    self.mark_unpacked(c);
                }
                let fd = self
                    .root
                    .open_at(dir, OFlags::RDONLY | OFlags::DIRECTORY)
                    .map_err(io_error(name, "open opaque directory"))?;
                rustix::fs::fsetxattr(&fd, OVERLAY_OPAQUE_XATTR, b"y", XattrFlags::empty())
                    .map_err(errno_error(name, "set trusted.overlay.opaque"))
            }
            WhiteoutMode::Native => {
                let fd = match self.root.open_at(dir, OFlags::RDONLY | OFlags::DIRECTORY) {
                    Ok(fd) => fd,
                    Err(e) if not_found(&e) => return Ok(()),
                    Err(e) => return Err(io_error(name, "open opaque directory")(e)),
                };
                // Opaque hides the lower layers' children, not what this layer put there.
                let unpacked = &self.unpacked;
                clear_dir(fd.as_fd(), |child| !unpacked.contains(&dir.join(child)))
                    .map_err(io_error(name, "clear opaque directory"))
            }
        }
    }

    /// Sets every directory's mode and mtime, last-listed first, after all children exist.
    pub(super) fn finish_directories(&mut self) -> Result<(), ApplyError> {
        for (path, mode, mtime) in self.dirs.iter().rev() {
            let parent = match self.root.open_dir(&path.parent()) {
                Ok(fd) => fd,
                // Removed again by a later whiteout.
                Err(_) => continue,
            };
            let node = Node::At {
                dir: parent.as_fd(),
                name: path.file_name(),
                symlink: false,
            };
            let name = path.to_string();
            match lstat_at(parent.as_fd(), path.file_name()) {
                Ok(Some(st)) if is_dir(st.st_mode) => {}
                // Replaced by a non-directory or removed by a later entry.
                _ => continue,
            }
            set_mode(node, *mode).map_err(errno_error(&name, "chmod"))?;
            set_times(node, *mtime).map_err(errno_error(&name, "set directory mtime"))?;
        }
        Ok(())
    }
}
