//! Creating one non-whiteout entry: files (sparse included), directories, symlinks,
//! hardlinks, devices and fifos, each in a parent resolved inside the root.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use tar::EntryType;

use super::metadata::{EntryMeta, Node};
use super::sparse::PaxSparse;
use super::{errno_error, io_error, Applier, ApplyError, DevicePolicy, SkipReason};
use crate::path::CleanPath;
use crate::root::{is_dir, lstat_at, remove_all_at};

/// Largest expanded size accepted for a GNU sparse entry: its holes cost no stream bytes,
/// so without a bound a few bytes of tar could keep the applier busy for hours.
pub const MAX_SPARSE_SIZE: u64 = 64 << 30;

impl Applier<'_> {
    pub(super) fn apply_file_entry<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        name: &str,
        path: &CleanPath,
        pax_sparse: Option<&PaxSparse>,
    ) -> Result<(), ApplyError> {
        let kind = entry.header().entry_type();
        let meta = EntryMeta::read(entry, name)?;
        if path.is_root() {
            if kind != EntryType::Directory {
                return Err(ApplyError::InvalidName {
                    entry: name.to_string(),
                    reason: "only a directory can name the root",
                });
            }
            let root_fd = self.root.fd();
            self.set_metadata(name, Node::Fd(root_fd), &meta, true)?;
            self.dirs.push((CleanPath::root(), meta.mode, meta.mtime));
            return Ok(());
        }
        let supported = matches!(
            kind,
            EntryType::Regular
                | EntryType::Continuous
                | EntryType::GNUSparse
                | EntryType::Directory
                | EntryType::Symlink
                | EntryType::Link
                | EntryType::Char
                | EntryType::Block
                | EntryType::Fifo
        );
        if !supported {
            return Err(ApplyError::UnsupportedType {
                entry: name.to_string(),
                kind: char::from(kind.as_byte()),
            });
        }
        let (parent, existing_dir) = self.prepare_slot(name, path, kind == EntryType::Directory)?;
        let leaf = path.file_name();
        match kind {
            EntryType::Directory => self.create_dir(name, path, &parent, existing_dir, &meta)?,
            EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                if target.is_empty() || target.contains(&0) {
                    return Err(ApplyError::InvalidName {
                        entry: name.to_string(),
                        reason: "a symlink needs a target without NUL bytes",
                    });
                }
                rustix::fs::symlinkat(OsStr::from_bytes(&target), &parent, leaf)
                    .map_err(errno_error(name, "create symlink"))?;
                let node = Node::At {
                    dir: parent.as_fd(),
                    name: leaf,
                    symlink: true,
                };
                self.set_metadata(name, node, &meta, false)?;
            }
            EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                self.create_hardlink(name, &target, &parent, leaf)?;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                if !self.create_node(name, kind, &parent, leaf, &meta)? {
                    return Ok(());
                }
            }
            _ => self.create_file(entry, name, &parent, leaf, &meta, pax_sparse)?,
        }
        self.mark_unpacked(path);
        Ok(())
    }

    /// Opens the parent of `path` (creating missing directories) and clears the slot: an
    /// existing node is removed unless both it and the entry are directories.
    fn prepare_slot(
        &mut self,
        name: &str,
        path: &CleanPath,
        want_dir: bool,
    ) -> Result<(OwnedFd, bool), ApplyError> {
        let mut created = Vec::new();
        let parent = self
            .root
            .open_dir_creating(&path.parent(), &mut created)
            .map_err(io_error(name, "open parent directory"))?;
        for dir in &created {
            self.mark_unpacked(dir);
        }
        let leaf = path.file_name();
        match lstat_at(parent.as_fd(), leaf).map_err(io_error(name, "lstat"))? {
            Some(st) if want_dir && is_dir(st.st_mode) => Ok((parent, true)),
            Some(_) => {
                remove_all_at(parent.as_fd(), leaf)
                    .map_err(io_error(name, "remove existing path"))?;
                Ok((parent, false))
            }
            None => Ok((parent, false)),
        }
    }

    fn create_dir(
        &mut self,
        name: &str,
        path: &CleanPath,
        parent: &OwnedFd,
        existing: bool,
        meta: &EntryMeta,
    ) -> Result<(), ApplyError> {
        let leaf = path.file_name();
        if !existing {
            rustix::fs::mkdirat(parent, leaf, Mode::from_raw_mode(0o700))
                .map_err(errno_error(name, "create directory"))?;
        }
        let dir = rustix::fs::openat(
            parent,
            leaf,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(errno_error(name, "open directory"))?;
        self.set_metadata(name, Node::Fd(dir.as_fd()), meta, true)?;
        self.dirs.push((path.clone(), meta.mode, meta.mtime));
        Ok(())
    }

    fn create_hardlink(
        &mut self,
        name: &str,
        raw_target: &[u8],
        parent: &OwnedFd,
        leaf: &OsStr,
    ) -> Result<(), ApplyError> {
        let target_text = String::from_utf8_lossy(raw_target).into_owned();
        let missing = || ApplyError::HardlinkTargetMissing {
            entry: name.to_string(),
            target: target_text.clone(),
        };
        let target = CleanPath::parse(raw_target).map_err(|_| ApplyError::HardlinkEscape {
            entry: name.to_string(),
            target: target_text.clone(),
        })?;
        if target.is_root() {
            return Err(missing());
        }
        let target_dir = match self.root.open_dir(&target.parent()) {
            Ok(fd) => fd,
            Err(e) if matches!(e.raw_os_error(), Some(code) if code == rustix::io::Errno::NOENT.raw_os_error() || code == rustix::io::Errno::NOTDIR.raw_os_error()) => {
                return Err(missing())
            }
            Err(e) => return Err(io_error(name, "open hardlink target directory")(e)),
        };
        // No AT_SYMLINK_FOLLOW: a link to a symlink links the symlink itself, never what it
        // points at (which could be outside the root).
        match rustix::fs::linkat(
            &target_dir,
            target.file_name(),
            parent,
            leaf,
            AtFlags::empty(),
        ) {
            Ok(()) => Ok(()),
            Err(rustix::io::Errno::NOENT) => Err(missing()),
            Err(rustix::io::Errno::PERM) => Err(ApplyError::InvalidName {
                entry: name.to_string(),
                reason: "a hardlink cannot point to a directory",
            }),
            Err(e) => Err(errno_error(name, "create hardlink")(e)),
        }
    }

    /// Creates a device node or fifo; `Ok(false)` when skipped by [`DevicePolicy`].
    fn create_node(
        &mut self,
        name: &str,
        kind: EntryType,
        parent: &OwnedFd,
        leaf: &OsStr,
        meta: &EntryMeta,
    ) -> Result<bool, ApplyError> {
        let (file_type, dev) = match kind {
            EntryType::Char => (
                FileType::CharacterDevice,
                rustix::fs::makedev(meta.device.0, meta.device.1),
            ),
            EntryType::Block => (
                FileType::BlockDevice,
                rustix::fs::makedev(meta.device.0, meta.device.1),
            ),
            _ => (FileType::Fifo, 0),
        };
        match rustix::fs::mknodat(parent, leaf, file_type, Mode::from_raw_mode(0o600), dev) {
            Ok(()) => {}
            Err(rustix::io::Errno::PERM) if file_type != FileType::Fifo => {
                if self.options.devices == DevicePolicy::SkipUnpermitted {
                    self.skip(name, SkipReason::Device);
                    return Ok(false);
                }
                return Err(ApplyError::DeviceNotPermitted {
                    entry: name.to_string(),
                });
            }
            Err(e) => return Err(errno_error(name, "create node")(e)),
        }
        let node = Node::At {
            dir: parent.as_fd(),
            name: leaf,
            symlink: false,
        };
        self.set_metadata(name, node, meta, false)?;
        Ok(true)
    }

    fn create_file<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        name: &str,
        parent: &OwnedFd,
        leaf: &OsStr,
        meta: &EntryMeta,
        pax_sparse: Option<&PaxSparse>,
    ) -> Result<(), ApplyError> {
        let expected = entry.size();
        let sparse = entry.header().entry_type() == EntryType::GNUSparse;
        if sparse && expected > MAX_SPARSE_SIZE {
            return Err(ApplyError::SparseTooLarge {
                entry: name.to_string(),
                size: expected,
                limit: MAX_SPARSE_SIZE,
            });
        }
        let fd = rustix::fs::openat(
            parent,
            leaf,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(errno_error(name, "create file"))?;
        let mut file = File::from(fd);
        if let Some(pax_sparse) = pax_sparse {
            pax_sparse.write(entry, &mut file, name)?;
            return self.set_metadata(name, Node::Fd(file.as_fd()), meta, false);
        }
        let written = copy_data(entry, &mut file, sparse, name, &mut self.buffer)?;
        if written != expected {
            return Err(ApplyError::Truncated {
                entry: name.to_string(),
                expected,
                actual: written,
            });
        }
        self.set_metadata(name, Node::Fd(file.as_fd()), meta, false)
    }
}

/// Bytes of entry data read at a time.
const DATA_BUFFER: usize = 64 * 1024;

/// Copies an entry's data into `file` through `buf`; for sparse entries all-zero blocks become holes.
fn copy_data<R: Read>(
    entry: &mut R,
    file: &mut File,
    sparse: bool,
    name: &str,
    buf: &mut Vec<u8>,
) -> Result<u64, ApplyError> {
    if buf.len() < DATA_BUFFER {
        buf.resize(DATA_BUFFER, 0);
    }
    let mut total: u64 = 0;
    let mut pending_hole = false;
    loop {
        let n = match entry.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_error(name, "read entry data")(e)),
        };
        let chunk = &buf[..n];
        if sparse && chunk.iter().all(|b| *b == 0) {
            let offset = i64::try_from(n).unwrap_or(i64::MAX);
            file.seek(SeekFrom::Current(offset))
                .map_err(io_error(name, "write file"))?;
            pending_hole = true;
        } else {
            file.write_all(chunk)
                .map_err(io_error(name, "write file"))?;
            pending_hole = false;
        }
        total += n as u64;
    }
    if pending_hole {
        // A trailing hole leaves the size short until the length is set explicitly.
        file.set_len(total).map_err(io_error(name, "write file"))?;
    }
    Ok(total)
}
