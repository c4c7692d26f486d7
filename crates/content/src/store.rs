//! The store itself: its on-disk layout, opening it, and reading, listing, verifying and
//! deleting committed blobs.
//!
//! ```text
//! <root>/blobs/<algorithm>/<hex>    committed blobs, read-only, named by their digest
//! <root>/ingest/<sha256(ref)>/      one in-flight write: `data` (bytes so far), `meta` (JSON)
//! <root>/leases/<sha256(id)>.json   leases (see lease.rs)
//! <root>/lock                       flock: shared for commits and lease updates, exclusive for GC
//! ```
//! A blob file appears under `blobs/` only by an atomic rename of a complete, verified and
//! fsynced ingest, so every file there is whole and matches its name.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use berth_oci::{Algorithm, Digest, Digester};

use crate::durable::{remove_file_if_exists, sync_dir, StoreLock};
use crate::error::{io_error, ContentError};
use crate::sink::{FileSinkFactory, SinkFactory};

/// A content store rooted at one directory. Cheap to clone; clones share state.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) root: PathBuf,
    pub(crate) sinks: Arc<dyn SinkFactory>,
    /// Serialises read-modify-write of lease files within this process.
    pub(crate) lease_mutex: Mutex<()>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("root", &self.inner.root)
            .finish()
    }
}

/// What the store knows about a committed blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    pub digest: Digest,
    pub size: u64,
    /// When it was committed (the file's modification time).
    pub committed_at: SystemTime,
}

const ALGORITHMS: [Algorithm; 2] = [Algorithm::Sha256, Algorithm::Sha512];

impl Store {
    /// Opens (creating if needed) the store under `root`. Nothing is repaired here:
    /// every state a crash can leave is already consistent, and GC removes leftovers.
    pub fn open(root: impl AsRef<Path>) -> Result<Store, ContentError> {
        Store::open_with_sinks(root, Arc::new(FileSinkFactory))
    }

    /// Like [`Store::open`], with ingest bytes going through `sinks` (a seam for tests that
    /// simulate a full disk or failing device).
    pub fn open_with_sinks(
        root: impl AsRef<Path>,
        sinks: Arc<dyn SinkFactory>,
    ) -> Result<Store, ContentError> {
        let root = root.as_ref().to_owned();
        let mut dirs: Vec<PathBuf> = ALGORITHMS
            .iter()
            .map(|a| root.join("blobs").join(a.name()))
            .collect();
        dirs.push(root.join("ingest"));
        dirs.push(root.join("leases"));
        for dir in &dirs {
            fs::create_dir_all(dir).map_err(|e| io_error("create directory", dir, e))?;
        }
        let store = Store {
            inner: Arc::new(Inner {
                root,
                sinks,
                lease_mutex: Mutex::new(()),
            }),
        };
        drop(StoreLock::shared(&store.lock_path())?);
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    pub(crate) fn lock_path(&self) -> PathBuf {
        self.inner.root.join("lock")
    }

    pub(crate) fn blob_dir(&self, algorithm: Algorithm) -> PathBuf {
        self.inner.root.join("blobs").join(algorithm.name())
    }

    /// Where the blob with this digest lives (whether or not it exists).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blob_dir(digest.algorithm()).join(digest.hex())
    }

    pub(crate) fn ingest_root(&self) -> PathBuf {
        self.inner.root.join("ingest")
    }

    pub(crate) fn lease_dir(&self) -> PathBuf {
        self.inner.root.join("leases")
    }

    /// fsyncs the blob directories, making every rename into them durable (the commits of
    /// writers with [`crate::Writer::defer_dir_sync`]).
    pub fn sync_blob_dirs(&self) -> Result<(), ContentError> {
        ALGORITHMS
            .iter()
            .try_for_each(|a| sync_dir(&self.blob_dir(*a)))
    }

    /// Whether a committed blob with this digest exists.
    pub fn contains(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Size and commit time of a blob.
    pub fn info(&self, digest: &Digest) -> Result<BlobInfo, ContentError> {
        let path = self.blob_path(digest);
        let meta = fs::metadata(&path).map_err(|e| not_found_or(e, digest, "stat", &path))?;
        Ok(BlobInfo {
            digest: digest.clone(),
            size: meta.len(),
            committed_at: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        })
    }

    /// Opens a blob for reading (sequentially, with seek, or at offsets).
    pub fn reader(&self, digest: &Digest) -> Result<BlobReader, ContentError> {
        let path = self.blob_path(digest);
        let file = File::open(&path).map_err(|e| not_found_or(e, digest, "open blob", &path))?;
        let size = file
            .metadata()
            .map_err(|e| io_error("stat", &path, e))?
            .len();
        Ok(BlobReader {
            file,
            size,
            digest: digest.clone(),
        })
    }

    /// Reads a whole blob into memory (for manifests and configs, not layers).
    pub fn read_to_vec(&self, digest: &Digest) -> Result<Vec<u8>, ContentError> {
        let path = self.blob_path(digest);
        fs::read(&path).map_err(|e| not_found_or(e, digest, "read blob", &path))
    }

    /// Re-hashes a blob and fails with [`ContentError::Corrupted`] if it does not match.
    pub fn verify(&self, digest: &Digest) -> Result<(), ContentError> {
        let path = self.blob_path(digest);
        let mut reader = self.reader(digest)?;
        let mut digester = Digester::new(digest.algorithm());
        io::copy(&mut reader, &mut digester).map_err(|e| io_error("read blob", &path, e))?;
        let actual = digester.finish();
        if &actual != digest {
            return Err(ContentError::Corrupted {
                digest: digest.clone(),
                actual,
            });
        }
        Ok(())
    }

    /// Deletes a blob. Callers normally leave this to GC; this is for `registry delete`.
    pub fn delete(&self, digest: &Digest) -> Result<(), ContentError> {
        let path = self.blob_path(digest);
        if !remove_file_if_exists(&path)? {
            return Err(ContentError::NotFound {
                digest: digest.clone(),
            });
        }
        sync_dir(&self.blob_dir(digest.algorithm()))
    }

    /// Every committed blob, sorted by digest. Stray files that are not digests are skipped.
    pub fn list(&self) -> Result<Vec<BlobInfo>, ContentError> {
        let mut blobs = Vec::new();
        self.walk(|info| {
            blobs.push(info);
            Ok(())
        })?;
        blobs.sort_by(|a, b| a.digest.cmp(&b.digest));
        Ok(blobs)
    }

    /// Calls `visit` for every committed blob, in directory order; stops at its first error.
    pub fn walk(
        &self,
        mut visit: impl FnMut(BlobInfo) -> Result<(), ContentError>,
    ) -> Result<(), ContentError> {
        for algorithm in ALGORITHMS {
            let dir = self.blob_dir(algorithm);
            let entries = fs::read_dir(&dir).map_err(|e| io_error("list", &dir, e))?;
            for entry in entries {
                let entry = entry.map_err(|e| io_error("list", &dir, e))?;
                let name = entry.file_name();
                let Some(Ok(digest)) = name.to_str().map(|hex| Digest::from_parts(algorithm, hex))
                else {
                    continue;
                };
                let meta = match entry.metadata() {
                    Ok(meta) => meta,
                    // Deleted meanwhile (GC or `delete` in another thread).
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(io_error("stat", entry.path(), e)),
                };
                let committed_at = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                visit(BlobInfo {
                    digest,
                    size: meta.len(),
                    committed_at,
                })?;
            }
        }
        Ok(())
    }
}

fn not_found_or(e: io::Error, digest: &Digest, action: &'static str, path: &Path) -> ContentError {
    if e.kind() == io::ErrorKind::NotFound {
        return ContentError::NotFound {
            digest: digest.clone(),
        };
    }
    io_error(action, path, e)
}

/// A committed blob opened for reading: `Read + Seek`, plus positional [`BlobReader::read_at`].
#[derive(Debug)]
pub struct BlobReader {
    file: File,
    size: u64,
    digest: Digest,
}

impl BlobReader {
    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// Reads at `offset` without moving the cursor (Go's `io.ReaderAt`); returns 0 at the end.
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        if offset >= self.size {
            return Ok(0);
        }
        self.file.read_at(buf, offset)
    }
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.file.read(buf)
    }
}

impl Seek for BlobReader {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.file.seek(pos)
    }
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
