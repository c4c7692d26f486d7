//! Durable file operations: atomic replace (temp, fsync, rename, fsync dir), directory
//! fsync, and the advisory locks that keep writers, GC and other processes apart.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustix::fs::{flock, FlockOperation};

use crate::error::{io_error, ContentError};

/// Prefix of every temporary file the store creates; GC removes leftovers.
pub(crate) const TEMP_PREFIX: &str = ".tmp-";

/// Whether a directory entry name is one of the store's temporary files.
pub(crate) fn is_temp_name(name: &str) -> bool {
    name.starts_with(TEMP_PREFIX)
}

/// Writes `bytes` to `path` so that readers see either the old file or the whole new one,
/// even across a crash: a temp file in the same directory, fsync, rename, fsync the dir.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ContentError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = parent(path);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let temp = dir.join(format!("{TEMP_PREFIX}{}-{n}-{name}", std::process::id()));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .map_err(|e| io_error("create", &temp, e))?;
        file.write_all(bytes)
            .map_err(|e| io_error("write", &temp, e))?;
        file.sync_all().map_err(|e| io_error("sync", &temp, e))?;
        fs::rename(&temp, path).map_err(|e| io_error("rename into place", path, e))?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Replaces `path` with `bytes` through a temp file and a rename, without fsync: while the
/// system runs readers see the old or the new file; after a crash the file may be old,
/// new, missing or empty, so only files whose loss is harmless are written this way.
pub(crate) fn write_replace(path: &Path, bytes: &[u8]) -> Result<(), ContentError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = parent(path);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let temp = dir.join(format!("{TEMP_PREFIX}{}-{n}-replace", std::process::id()));
    let result = fs::write(&temp, bytes)
        .map_err(|e| io_error("write", &temp, e))
        .and_then(|()| fs::rename(&temp, path).map_err(|e| io_error("rename into place", path, e)));
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Asks the kernel to start writing `len` bytes of `file` from `offset` to disk without
/// waiting (`sync_file_range(SYNC_FILE_RANGE_WRITE)`); durability still comes from the
/// fsync at commit, this only moves the disk work earlier. Best effort: errors are left
/// for that fsync to report.
pub(crate) fn start_writeback(file: &File, offset: u64, len: u64) {
    let (Ok(offset), Ok(len)) = (
        libc::off64_t::try_from(offset),
        libc::off64_t::try_from(len),
    ) else {
        return;
    };
    // SAFETY: sync_file_range only reads its integer arguments; the descriptor is owned
    // by `file`, which outlives the call.
    unsafe {
        libc::sync_file_range(
            std::os::fd::AsRawFd::as_raw_fd(file),
            offset,
            len,
            libc::SYNC_FILE_RANGE_WRITE,
        );
    }
}

/// fsyncs a directory so that renames and unlinks in it survive power loss.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), ContentError> {
    let file = File::open(dir).map_err(|e| io_error("open directory", dir, e))?;
    file.sync_all()
        .map_err(|e| io_error("sync directory", dir, e))
}

pub(crate) fn parent(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new("."))
}

/// Reads a file, mapping "missing" to `None`.
pub(crate) fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, ContentError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error("read", path, e)),
    }
}

/// Removes a file, treating "already gone" as success.
pub(crate) fn remove_file_if_exists(path: &Path) -> Result<bool, ContentError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_error("remove", path, e)),
    }
}

pub(crate) fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

pub(crate) fn from_unix_seconds(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds)
}

/// The store-wide lock: writers that create content or references hold it shared, GC
/// holds it exclusive, so a commit or lease update is entirely before or after a GC.
/// It is an `flock` on `<root>/lock`, so it also works across processes and dies with them.
#[derive(Debug)]
pub(crate) struct StoreLock {
    _file: File,
}

impl StoreLock {
    pub(crate) fn shared(path: &Path) -> Result<StoreLock, ContentError> {
        StoreLock::take(path, FlockOperation::LockShared)
    }

    pub(crate) fn exclusive(path: &Path) -> Result<StoreLock, ContentError> {
        StoreLock::take(path, FlockOperation::LockExclusive)
    }

    fn take(path: &Path, operation: FlockOperation) -> Result<StoreLock, ContentError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| io_error("open lock file", path, e))?;
        loop {
            match flock(file.as_fd(), operation) {
                Ok(()) => return Ok(StoreLock { _file: file }),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(io_error("lock", path, e.into())),
            }
        }
    }
}

/// An exclusive, non-blocking lock on an ingest directory, held by its one writer (and by
/// GC while it deletes a stale ingest). Released when dropped or when the process dies.
#[derive(Debug)]
pub(crate) struct DirLock {
    _dir: File,
    pub(crate) path: PathBuf,
}

impl DirLock {
    /// `Ok(None)` when someone else holds it or the directory vanished meanwhile.
    pub(crate) fn try_lock(path: &Path) -> Result<Option<DirLock>, ContentError> {
        let dir = match File::open(path) {
            Ok(dir) => dir,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error("open directory", path, e)),
        };
        match flock(dir.as_fd(), FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => return Ok(None),
            Err(e) => return Err(io_error("lock", path, e.into())),
        }
        // The directory may have been removed (and maybe recreated) between open and
        // lock: only a lock on the inode that is still at `path` counts.
        let held = dir.metadata().map_err(|e| io_error("stat", path, e))?;
        match fs::metadata(path) {
            Ok(current) if current.ino() == held.ino() && current.dev() == held.dev() => {
                Ok(Some(DirLock {
                    _dir: dir,
                    path: path.to_owned(),
                }))
            }
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error("stat", path, e)),
        }
    }
}
