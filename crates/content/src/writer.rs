//! Ingests: streaming a blob into `ingest/<ref>/`, resuming a partial one, and committing
//! it into `blobs/` only once its size and digest are verified and it is on disk for good.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use berth_oci::{Algorithm, Digest, Digester};
use serde::{Deserialize, Serialize};

use crate::durable::{
    from_unix_seconds, read_optional, remove_file_if_exists, start_writeback, sync_dir,
    unix_seconds, write_replace, DirLock, StoreLock,
};
use crate::error::{io_error, ContentError};
use crate::sink::Sink;
use crate::store::Store;

/// Longest accepted ingest reference, in bytes.
pub const MAX_REFERENCE_LEN: usize = 1024;

/// Bytes after which a writer asks the kernel to start writing the ingest out, so the
/// fsync at commit waits for the last few MiB rather than for the whole blob (a 92 MB
/// layer of a `docker load` otherwise spends its fsync writing all of it).
const WRITEBACK_STEP: u64 = 8 << 20;

/// What a blob is expected to be; either part may be unknown until commit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expected {
    pub digest: Option<Digest>,
    pub size: Option<u64>,
}

impl Expected {
    pub fn none() -> Expected {
        Expected::default()
    }

    pub fn digest(digest: Digest) -> Expected {
        Expected {
            digest: Some(digest),
            size: None,
        }
    }

    pub fn exact(digest: Digest, size: u64) -> Expected {
        Expected {
            digest: Some(digest),
            size: Some(size),
        }
    }
}

/// The state of an ingest, as `ingest/<ref>/meta` and the data file tell it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestStatus {
    pub reference: String,
    /// Bytes already on disk: where a resumed download continues.
    pub offset: u64,
    pub expected: Expected,
    pub started_at: SystemTime,
    pub updated_at: SystemTime,
}

/// The result of a successful commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub digest: Digest,
    pub size: u64,
    /// The blob was already in the store; the ingest was dropped instead of renamed.
    pub already_existed: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct IngestMeta {
    reference: String,
    #[serde(default)]
    expected: Option<Digest>,
    #[serde(default)]
    total: Option<u64>,
    started_at: u64,
}

/// An open ingest. Write bytes with [`io::Write`] or [`Writer::append`], then
/// [`Writer::commit`]. Dropping it keeps the partial data for a later resume; only one
/// writer per reference exists at a time, across threads and processes.
pub struct Writer {
    store: Store,
    reference: String,
    dir: PathBuf,
    data_path: PathBuf,
    file: File,
    sink: Box<dyn Sink>,
    digester: Digester,
    offset: u64,
    /// Where the last early writeback request ended (see [`WRITEBACK_STEP`]).
    written_back: u64,
    expected: Expected,
    started_at: SystemTime,
    poisoned: bool,
    /// Leave the fsync of `blobs/<algorithm>/` after the rename to
    /// [`Store::sync_blob_dirs`] (see [`Writer::defer_dir_sync`]).
    defer_dir_sync: bool,
    _lock: DirLock,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("reference", &self.reference)
            .field("offset", &self.offset)
            .field("expected", &self.expected)
            .finish()
    }
}

impl Store {
    pub(crate) fn ingest_dir(&self, reference: &str) -> PathBuf {
        self.ingest_root()
            .join(Digest::sha256_of(reference.as_bytes()).hex())
    }

    /// Opens the ingest `reference`, resuming it if bytes are already on disk (they are
    /// re-hashed, and [`Writer::offset`] says where to continue). A partial ingest whose
    /// recorded expectation conflicts with `expected` is restarted from zero. Fails with
    /// [`ContentError::AlreadyExists`] when the expected digest is already committed.
    pub fn writer(&self, reference: &str, expected: Expected) -> Result<Writer, ContentError> {
        if reference.is_empty() || reference.len() > MAX_REFERENCE_LEN {
            return Err(ContentError::InvalidIngestReference {
                reference: reference.to_owned(),
            });
        }
        if let Some(digest) = &expected.digest {
            if self.contains(digest) {
                return Err(ContentError::AlreadyExists {
                    digest: digest.clone(),
                });
            }
        }
        // Shared: GC cannot remove this ingest while it is being set up.
        let _shared = StoreLock::shared(&self.lock_path())?;
        let dir = self.ingest_dir(reference);
        fs::create_dir_all(&dir).map_err(|e| io_error("create directory", &dir, e))?;
        let lock = DirLock::try_lock(&dir)?.ok_or_else(|| ContentError::IngestLocked {
            reference: reference.to_owned(),
        })?;
        let (data_path, meta_path) = (dir.join("data"), dir.join("meta"));
        let old = read_meta(&meta_path);
        let restart = old.as_ref().is_none_or(|m| {
            m.reference != reference
                || conflicts(m.expected.as_ref(), expected.digest.as_ref())
                || conflicts(m.total.as_ref(), expected.size.as_ref())
        });
        if restart {
            remove_file_if_exists(&data_path)?;
        }
        let meta = IngestMeta {
            reference: reference.to_owned(),
            expected: expected
                .digest
                .clone()
                .or_else(|| old.as_ref().and_then(|m| m.expected.clone())),
            total: expected.size.or_else(|| old.as_ref().and_then(|m| m.total)),
            started_at: old
                .as_ref()
                .filter(|_| !restart)
                .map_or_else(|| unix_seconds(SystemTime::now()), |m| m.started_at),
        };
        if restart
            || old
                .as_ref()
                .is_some_and(|m| m.expected != meta.expected || m.total != meta.total)
        {
            let bytes = serde_json::to_vec(&meta).map_err(|source| ContentError::Metadata {
                path: meta_path.clone(),
                source,
            })?;
            // Not fsynced: after a crash a missing or torn meta file makes the ingest
            // restart from zero (`read_meta` gives `None`), which loses nothing committed.
            write_replace(&meta_path, &bytes)?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&data_path)
            .map_err(|e| io_error("open", &data_path, e))?;
        let algorithm = meta
            .expected
            .as_ref()
            .map_or(Algorithm::Sha256, Digest::algorithm);
        let sink_file = file
            .try_clone()
            .map_err(|e| io_error("duplicate descriptor of", &data_path, e))?;
        let mut writer = Writer {
            store: self.clone(),
            reference: reference.to_owned(),
            dir,
            data_path,
            file,
            sink: self.inner.sinks.sink(sink_file),
            digester: Digester::new(algorithm),
            offset: 0,
            written_back: 0,
            expected: Expected {
                digest: meta.expected,
                size: meta.total,
            },
            started_at: from_unix_seconds(meta.started_at),
            poisoned: false,
            defer_dir_sync: false,
            _lock: lock,
        };
        let on_disk = writer
            .file
            .metadata()
            .map_err(|e| io_error("stat", &writer.data_path, e))?
            .len();
        let keep = match writer.expected.size {
            Some(size) if on_disk > size => 0,
            _ => on_disk,
        };
        writer.rewind_to(keep)?;
        Ok(writer)
    }

    /// The status of an ingest that is on disk (open or not).
    pub fn ingest_status(&self, reference: &str) -> Result<IngestStatus, ContentError> {
        let dir = self.ingest_dir(reference);
        status_of_dir(&dir)?
            .filter(|s| s.reference == reference)
            .ok_or_else(|| ContentError::IngestNotFound {
                reference: reference.to_owned(),
            })
    }

    /// Every ingest on disk, sorted by reference.
    pub fn ingests(&self) -> Result<Vec<IngestStatus>, ContentError> {
        let root = self.ingest_root();
        let mut out = Vec::new();
        for entry in fs::read_dir(&root).map_err(|e| io_error("list", &root, e))? {
            let entry = entry.map_err(|e| io_error("list", &root, e))?;
            if let Some(status) = status_of_dir(&entry.path())? {
                out.push(status);
            }
        }
        out.sort_by(|a, b| a.reference.cmp(&b.reference));
        Ok(out)
    }

    /// Deletes an ingest that no writer holds open.
    pub fn abort(&self, reference: &str) -> Result<(), ContentError> {
        let dir = self.ingest_dir(reference);
        if !dir.exists() {
            return Err(ContentError::IngestNotFound {
                reference: reference.to_owned(),
            });
        }
        let lock = DirLock::try_lock(&dir)?.ok_or_else(|| ContentError::IngestLocked {
            reference: reference.to_owned(),
        })?;
        remove_ingest_dir(&lock.path)?;
        sync_dir(&self.ingest_root())
    }
}

fn conflicts<T: PartialEq>(recorded: Option<&T>, wanted: Option<&T>) -> bool {
    matches!((recorded, wanted), (Some(a), Some(b)) if a != b)
}

/// The meta file, or `None` when it is missing or unreadable (the ingest then restarts).
fn read_meta(path: &Path) -> Option<IngestMeta> {
    let bytes = read_optional(path).ok()??;
    serde_json::from_slice(&bytes).ok()
}

pub(crate) fn status_of_dir(dir: &Path) -> Result<Option<IngestStatus>, ContentError> {
    let Some(meta) = read_meta(&dir.join("meta")) else {
        return Ok(None);
    };
    let data = dir.join("data");
    let (offset, updated_at) = match fs::metadata(&data) {
        Ok(m) => (m.len(), m.modified().unwrap_or(SystemTime::UNIX_EPOCH)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => (0, from_unix_seconds(meta.started_at)),
        Err(e) => return Err(io_error("stat", &data, e)),
    };
    Ok(Some(IngestStatus {
        reference: meta.reference,
        offset,
        expected: Expected {
            digest: meta.expected,
            size: meta.total,
        },
        started_at: from_unix_seconds(meta.started_at),
        updated_at,
    }))
}

/// Removes an ingest directory and everything in it (data, meta, temp files).
pub(crate) fn remove_ingest_dir(dir: &Path) -> Result<(), ContentError> {
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error("remove", dir, e)),
    }
}

impl Writer {
    pub fn reference(&self) -> &str {
        &self.reference
    }

    /// Bytes written so far, including those found on disk when the ingest was resumed.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    pub fn expected(&self) -> &Expected {
        &self.expected
    }

    /// Digest of the bytes written so far.
    pub fn digest(&self) -> Digest {
        self.digester.current()
    }

    pub fn status(&self) -> IngestStatus {
        IngestStatus {
            reference: self.reference.clone(),
            offset: self.offset,
            expected: self.expected.clone(),
            started_at: self.started_at,
            updated_at: SystemTime::now(),
        }
    }

    /// Makes [`Writer::commit`] skip the fsync of the blob directory after its rename; the
    /// caller runs [`Store::sync_blob_dirs`] before anything durable names the blob. The
    /// data is still fsynced before the rename, so a crash in between leaves the blob
    /// whole or absent (its data back in a stale ingest that GC deletes), never partial.
    pub fn defer_dir_sync(&mut self) {
        self.defer_dir_sync = true;
    }

    /// Appends all of `bytes`. On failure the writer is poisoned: drop it and reopen the
    /// ingest to resume from what reached the disk.
    pub fn append(&mut self, bytes: &[u8]) -> Result<(), ContentError> {
        if self.poisoned {
            return Err(ContentError::Poisoned {
                reference: self.reference.clone(),
            });
        }
        self.check_room(bytes.len())?;
        self.write_all(bytes)
            .map_err(|e| io_error("write", &self.data_path, e))
    }

    /// Refuses bytes past the expected size before anything reaches the disk, so a hostile
    /// or broken source cannot fill it beyond the size it announced.
    fn check_room(&self, len: usize) -> Result<(), ContentError> {
        match self.expected.size {
            Some(size) if self.offset + len as u64 > size => Err(ContentError::TooLarge {
                reference: self.reference.clone(),
                expected: size,
                offset: self.offset,
                attempted: len as u64,
            }),
            _ => Ok(()),
        }
    }

    /// Cuts the ingest back to `size` bytes (0 restarts it) and re-hashes what remains.
    pub fn truncate(&mut self, size: u64) -> Result<(), ContentError> {
        if size > self.offset {
            return Err(ContentError::TruncateBeyondEnd {
                reference: self.reference.clone(),
                size,
                offset: self.offset,
            });
        }
        self.rewind_to(size)
    }

    /// Sets the file to its first `size` bytes, re-hashes them, and continues after them.
    fn rewind_to(&mut self, size: u64) -> Result<(), ContentError> {
        let path = &self.data_path;
        self.file
            .set_len(size)
            .map_err(|e| io_error("truncate", path, e))?;
        self.file
            .seek(SeekFrom::Start(0))
            .map_err(|e| io_error("seek", path, e))?;
        let mut digester = Digester::new(self.digester.algorithm());
        let copied = io::copy(&mut (&self.file).take(size), &mut digester)
            .map_err(|e| io_error("read", path, e))?;
        self.file
            .seek(SeekFrom::Start(copied))
            .map_err(|e| io_error("seek", path, e))?;
        self.digester = digester;
        self.offset = copied;
        self.written_back = copied;
        self.poisoned = false;
        Ok(())
    }

    /// Verifies the ingest against `expected` (falling back to what the writer was opened
    /// with), makes it durable and renames it into `blobs/`. On a short ingest nothing
    /// changes and it can be resumed; on a size or digest mismatch it is discarded. Nothing
    /// is ever committed that does not match.
    pub fn commit(mut self, expected: Expected) -> Result<Committed, ContentError> {
        if self.poisoned {
            return Err(ContentError::Poisoned {
                reference: self.reference.clone(),
            });
        }
        let size = expected.size.or(self.expected.size);
        let wanted = expected.digest.or_else(|| self.expected.digest.clone());
        let path = self.data_path.clone();
        self.sink.flush().map_err(|e| io_error("flush", &path, e))?;
        self.sink.sync().map_err(|e| io_error("sync", &path, e))?;
        if let Some(size) = size {
            if self.offset < size {
                return Err(ContentError::Incomplete {
                    reference: self.reference.clone(),
                    expected: size,
                    actual: self.offset,
                });
            }
            if self.offset > size {
                self.discard()?;
                return Err(ContentError::SizeMismatch {
                    reference: self.reference.clone(),
                    expected: size,
                    actual: self.offset,
                });
            }
        }
        let actual = match &wanted {
            Some(w) if w.algorithm() != self.digester.algorithm() => {
                let mut digester = Digester::new(w.algorithm());
                let file = File::open(&path).map_err(|e| io_error("open", &path, e))?;
                io::copy(&mut (&file).take(self.offset), &mut digester)
                    .map_err(|e| io_error("read", &path, e))?;
                digester.finish()
            }
            _ => self.digester.current(),
        };
        if let Some(wanted) = wanted {
            if wanted != actual {
                self.discard()?;
                return Err(ContentError::DigestMismatch {
                    reference: self.reference.clone(),
                    expected: wanted,
                    actual,
                });
            }
        }
        self.install(actual)
    }

    /// Renames the verified ingest into place (under the shared store lock, so a GC runs
    /// entirely before or after) and removes the ingest directory.
    fn install(self, digest: Digest) -> Result<Committed, ContentError> {
        let _shared = StoreLock::shared(&self.store.lock_path())?;
        let target = self.store.blob_path(&digest);
        let size = self.offset;
        if target.is_file() {
            remove_ingest_dir(&self.dir)?;
            return Ok(Committed {
                digest,
                size,
                already_existed: true,
            });
        }
        let path = &self.data_path;
        fs::rename(path, &target).map_err(|e| io_error("rename into blobs", path, e))?;
        if !self.defer_dir_sync {
            sync_dir(&self.store.blob_dir(digest.algorithm()))?;
        }
        // Read-only from now on; done after the rename so a failed commit leaves a
        // resumable (writable) ingest behind.
        self.file
            .set_permissions(Permissions::from_mode(0o444))
            .map_err(|e| io_error("make read-only", &target, e))?;
        // The blob is durable under its name; the leftover ingest directory needs no
        // fsync: should a crash bring it back, it is an ingest whose data is gone (it
        // restarts) or whose data is the committed blob (its commit finds the blob).
        remove_ingest_dir(&self.dir)?;
        Ok(Committed {
            digest,
            size,
            already_existed: false,
        })
    }

    /// Removes this ingest from disk (we hold its lock).
    fn discard(&self) -> Result<(), ContentError> {
        remove_ingest_dir(&self.dir)?;
        sync_dir(&self.store.ingest_root())
    }

    /// Removes the partial data; the reference can be started afresh.
    pub fn abort(self) -> Result<(), ContentError> {
        self.discard()
    }
}

impl Write for Writer {
    /// Writes through the sink, hashing exactly the bytes it accepted. Any error other
    /// than an interrupt poisons the writer (the disk may hold bytes we did not count).
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.poisoned {
            return Err(io::Error::other(ContentError::Poisoned {
                reference: self.reference.clone(),
            }));
        }
        self.check_room(buf.len()).map_err(io::Error::other)?;
        match self.sink.write(buf) {
            Ok(n) => {
                self.digester.update(&buf[..n]);
                self.offset += n as u64;
                if self.offset >= self.written_back + WRITEBACK_STEP {
                    start_writeback(
                        &self.file,
                        self.written_back,
                        self.offset - self.written_back,
                    );
                    self.written_back = self.offset;
                }
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                self.poisoned = true;
                Err(e)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.sink.flush()
    }
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;
