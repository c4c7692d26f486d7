//! Entry metadata: reading it from tar headers (PAX included) and setting it on created nodes
//! in Docker's order (chown, xattrs, chmod — chown clears setuid bits — then times).

use std::ffi::OsStr;
use std::io::Read;
use std::os::fd::BorrowedFd;

use rustix::fs::{AtFlags, Gid, Mode, Timespec, Timestamps, Uid, XattrFlags};

use super::{errno_error, Applier, ApplyError, SkipReason};
use crate::root::proc_path;

/// Metadata of one entry, PAX records applied.
#[derive(Debug, Clone)]
pub(crate) struct EntryMeta {
    pub(crate) mode: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) mtime: Timespec,
    pub(crate) xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    pub(crate) device: (u32, u32),
}

const XATTR_PAX_PREFIX: &[u8] = b"SCHILY.xattr.";

/// Extended attributes a layer may not set: overlayfs reads `trusted.overlay.*` (and
/// `user.overlay.*` when mounted with `userxattr`, as rootless setups do) on its
/// layers (`redirect` and `metacopy` would let a layer point at files outside its own
/// path, `opaque` is only ever set from `.wh..wh..opq`).
pub(crate) const OVERLAY_XATTR_PREFIXES: [&[u8]; 2] = [b"trusted.overlay.", b"user.overlay."];

impl EntryMeta {
    pub(crate) fn read<R: Read>(
        entry: &mut tar::Entry<'_, R>,
        name: &str,
    ) -> Result<Self, ApplyError> {
        let bad = |what: &'static str| ApplyError::Malformed {
            entry: name.to_string(),
            reason: what,
        };
        let header = entry.header();
        let mode = header
            .mode()
            .map_err(|_| bad("its header has an unreadable mode"))?
            & 0o7777;
        // The tar crate already applied PAX uid/gid to the header.
        let uid = header
            .uid()
            .map_err(|_| bad("its header has an unreadable uid"))?;
        let gid = header
            .gid()
            .map_err(|_| bad("its header has an unreadable gid"))?;
        let uid = u32::try_from(uid).map_err(|_| bad("its uid does not fit 32 bits"))?;
        let gid = u32::try_from(gid).map_err(|_| bad("its gid does not fit 32 bits"))?;
        let mut mtime = Timespec {
            tv_sec: header
                .mtime()
                .ok()
                .and_then(|s| i64::try_from(s).ok())
                .unwrap_or(0),
            tv_nsec: 0,
        };
        let major = header.device_major().ok().flatten().unwrap_or(0);
        let minor = header.device_minor().ok().flatten().unwrap_or(0);
        let mut xattrs = Vec::new();
        if let Some(pax) = entry
            .pax_extensions()
            .map_err(|_| bad("its PAX header is malformed"))?
        {
            for record in pax {
                let record = record.map_err(|_| bad("its PAX header is malformed"))?;
                let key = record.key_bytes();
                if let Some(xattr) = key.strip_prefix(XATTR_PAX_PREFIX) {
                    xattrs.push((xattr.to_vec(), record.value_bytes().to_vec()));
                } else if key == b"mtime" {
                    if let Some(t) = parse_pax_time(record.value_bytes()) {
                        mtime = t;
                    }
                }
            }
        }
        Ok(EntryMeta {
            mode,
            uid,
            gid,
            mtime,
            xattrs,
            device: (major, minor),
        })
    }
}

/// A PAX time (`1700000000.123456789`, possibly negative) as a timespec.
pub(crate) fn parse_pax_time(value: &[u8]) -> Option<Timespec> {
    let text = std::str::from_utf8(value).ok()?;
    let (secs, frac) = text.split_once('.').unwrap_or((text, ""));
    let tv_sec: i64 = secs.parse().ok()?;
    let digits: String = frac.chars().take(9).collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let mut tv_nsec: i64 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    for _ in digits.len()..9 {
        tv_nsec *= 10;
    }
    if secs.starts_with('-') && tv_nsec > 0 {
        return Some(Timespec {
            tv_sec: tv_sec - 1,
            tv_nsec: 1_000_000_000 - tv_nsec,
        });
    }
    Some(Timespec { tv_sec, tv_nsec })
}

/// A created node to set metadata on.
#[derive(Clone, Copy)]
pub(crate) enum Node<'f> {
    /// An open regular file or directory.
    Fd(BorrowedFd<'f>),
    /// `name` in directory `dir`, never followed (symlinks, devices, fifos).
    At {
        dir: BorrowedFd<'f>,
        name: &'f OsStr,
        symlink: bool,
    },
}

impl Applier<'_> {
    /// Sets ownership and xattrs, then (unless `deferred`, as for directories) mode and mtime.
    pub(crate) fn set_metadata(
        &mut self,
        name: &str,
        node: Node<'_>,
        meta: &EntryMeta,
        deferred: bool,
    ) -> Result<(), ApplyError> {
        let ids = self
            .options
            .ownership
            .host_ids(meta.uid, meta.gid)
            .map_err(|id| ApplyError::UnmappedId {
                entry: name.to_string(),
                id,
            })?;
        if let Some((uid, gid)) = ids {
            let (uid, gid) = (Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)));
            match node {
                Node::Fd(fd) => rustix::fs::fchown(fd, uid, gid),
                Node::At {
                    dir, name: leaf, ..
                } => rustix::fs::chownat(dir, leaf, uid, gid, AtFlags::SYMLINK_NOFOLLOW),
            }
            .map_err(errno_error(name, "chown"))?;
        }
        for (key, value) in &meta.xattrs {
            self.set_xattr(name, node, key, value)?;
        }
        if !deferred {
            set_mode(node, meta.mode).map_err(errno_error(name, "chmod"))?;
            set_times(node, meta.mtime).map_err(errno_error(name, "set mtime"))?;
        }
        Ok(())
    }

    fn set_xattr(
        &mut self,
        name: &str,
        node: Node<'_>,
        key: &[u8],
        value: &[u8],
    ) -> Result<(), ApplyError> {
        let key_text = String::from_utf8_lossy(key).into_owned();
        if OVERLAY_XATTR_PREFIXES.iter().any(|p| key.starts_with(p)) || key.contains(&0) {
            self.skip(name, SkipReason::Xattr(key_text));
            return Ok(());
        }
        let key_os = <OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(key);
        let result = match node {
            Node::Fd(fd) => rustix::fs::fsetxattr(fd, key_os, value, XattrFlags::empty()),
            Node::At {
                dir, name: leaf, ..
            } => rustix::fs::lsetxattr(proc_path(dir, leaf), key_os, value, XattrFlags::empty()),
        };
        match result {
            Ok(()) => Ok(()),
            // Docker ignores these as well: a filesystem without xattrs, or a namespace
            // (trusted.*, security.*) the applier may not write.
            Err(rustix::io::Errno::NOTSUP) | Err(rustix::io::Errno::PERM) => {
                self.skip(name, SkipReason::Xattr(key_text));
                Ok(())
            }
            Err(e) => Err(errno_error(name, "set xattr")(e)),
        }
    }
}

/// Sets the permission bits of `node` (symlinks have none on Linux).
pub(crate) fn set_mode(node: Node<'_>, mode: u32) -> rustix::io::Result<()> {
    let mode = Mode::from_raw_mode(mode);
    match node {
        Node::Fd(fd) => rustix::fs::fchmod(fd, mode),
        Node::At { symlink: true, .. } => Ok(()),
        Node::At { dir, name, .. } => rustix::fs::chmodat(dir, name, mode, AtFlags::empty()),
    }
}

/// Sets atime and mtime of `node` to `mtime` (as Docker does when the tar has no atime).
pub(crate) fn set_times(node: Node<'_>, mtime: Timespec) -> rustix::io::Result<()> {
    let times = Timestamps {
        last_access: mtime,
        last_modification: mtime,
    };
    match node {
        Node::Fd(fd) => rustix::fs::futimens(fd, &times),
        Node::At { dir, name, .. } => {
            rustix::fs::utimensat(dir, name, &times, AtFlags::SYMLINK_NOFOLLOW)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_times_keep_nanoseconds() {
        let t = parse_pax_time(b"1700000000.5").expect("valid");
        assert_eq!((t.tv_sec, t.tv_nsec), (1_700_000_000, 500_000_000));
        let t = parse_pax_time(b"12").expect("valid");
        assert_eq!((t.tv_sec, t.tv_nsec), (12, 0));
        let t = parse_pax_time(b"-1.25").expect("valid");
        assert_eq!((t.tv_sec, t.tv_nsec), (-2, 750_000_000));
    }

    #[test]
    fn malformed_pax_times_are_ignored() {
        assert!(parse_pax_time(b"abc").is_none());
        assert!(parse_pax_time(b"1.x").is_none());
    }
}
