//! Committing an overlay upper directory in place: the tree a layer diff of the upper
//! applies to is the upper itself, once every mtime is cut to whole seconds (the diff
//! writes whole seconds) and provided the upper holds nothing the diff leaves out or that
//! overlayfs reads differently in a lower layer (sockets, redirected directories,
//! metacopy files). [`fits`] checks that and normalises the mtimes in one walk.

use std::ffi::CStr;
use std::io;
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Timespec, Timestamps, CWD};

/// Overlay xattrs that make a lower layer's view differ from its diff's tar.
const UNSUPPORTED_XATTRS: [&CStr; 2] = [c"trusted.overlay.redirect", c"trusted.overlay.metacopy"];

/// Walks `upper` (not following symlinks): `Ok(false)` as soon as an entry cannot be kept
/// as it is (a socket, a redirect or metacopy xattr); otherwise cuts every mtime to whole
/// seconds (children before their directory, which `utimensat` on a child leaves alone)
/// and returns `Ok(true)`. A walk that stops early may have cut some mtimes already: the
/// caller then diffs and applies the layer as before, which reads mtimes in whole seconds.
pub(super) fn fits(upper: &Path) -> io::Result<bool> {
    for entry in std::fs::read_dir(upper)? {
        let path = entry?.path();
        let stat = rustix::fs::lstat(&path)?;
        let kind = FileType::from_raw_mode(stat.st_mode);
        if kind == FileType::Socket || has_unsupported_xattr(&path)? {
            return Ok(false);
        }
        if kind == FileType::Directory && !fits(&path)? {
            return Ok(false);
        }
        if stat.st_mtime_nsec != 0 {
            let times = Timestamps {
                last_access: Timespec {
                    tv_sec: stat.st_atime as _,
                    tv_nsec: stat.st_atime_nsec as _,
                },
                last_modification: Timespec {
                    tv_sec: stat.st_mtime as _,
                    tv_nsec: 0,
                },
            };
            rustix::fs::utimensat(CWD, &path, &times, AtFlags::SYMLINK_NOFOLLOW)?;
        }
    }
    Ok(true)
}

fn has_unsupported_xattr(path: &Path) -> io::Result<bool> {
    for name in UNSUPPORTED_XATTRS {
        match rustix::fs::lgetxattr_query(path, name) {
            Ok(_) => return Ok(true),
            Err(rustix::io::Errno::NODATA)
            | Err(rustix::io::Errno::NOTSUP)
            | Err(rustix::io::Errno::PERM) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(false)
}

#[cfg(test)]
#[path = "in_place_tests.rs"]
mod tests;
