//! Garbage collection: mark everything reachable from the caller's roots and from live
//! leases, then delete unmarked blobs, stale unleased ingests, expired leases and leftover
//! temp files. The store knows no formats: the caller says what a blob references.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime};

use berth_oci::Digest;

use crate::durable::{is_temp_name, remove_file_if_exists, sync_dir, DirLock, StoreLock};
use crate::error::{io_error, BoxError, ContentError};
use crate::store::{BlobReader, Store};
use crate::writer::{remove_ingest_dir, status_of_dir};

/// When GC runs and how old an unleased, unopened ingest must be to be deleted. `now` is
/// a parameter so that callers and tests decide time, not the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcOptions {
    pub now: SystemTime,
    pub ingest_expiry: Duration,
}

impl GcOptions {
    /// containerd's default: ingests untouched for a day are abandoned.
    pub fn with_default_expiry(now: SystemTime) -> GcOptions {
        GcOptions {
            now,
            ingest_expiry: Duration::from_secs(24 * 60 * 60),
        }
    }
}

/// What a GC run removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    pub removed_blobs: Vec<Digest>,
    pub freed_bytes: u64,
    /// References of removed ingests (the directory name when its meta was missing).
    pub removed_ingests: Vec<String>,
    pub expired_leases: Vec<String>,
    pub removed_temp_files: usize,
}

impl Store {
    /// Mark and sweep. `roots` returns what images, containers and build cache reference;
    /// it is called under the exclusive lock *after* the leases are read, so a caller that
    /// records a new root before releasing the lease that protected it can never lose it;
    /// `children` returns what a blob references (manifest -> config and layers, index ->
    /// manifests; an empty list for layers and anything it does not know). Children that
    /// are not in the store are skipped. If `children` fails, GC stops and deletes nothing.
    ///
    /// Holds the store lock exclusively: commits and lease updates wait, open writers keep
    /// streaming, and an ingest held by a writer is never touched.
    pub fn gc<R, C>(
        &self,
        roots: R,
        mut children: C,
        options: &GcOptions,
    ) -> Result<GcReport, ContentError>
    where
        R: FnOnce() -> Result<Vec<Digest>, BoxError>,
        C: FnMut(&Digest, &mut BlobReader) -> Result<Vec<Digest>, BoxError>,
    {
        let _exclusive = StoreLock::exclusive(&self.lock_path())?;
        let mut report = GcReport::default();
        let mut pending = Vec::new();
        let mut leased_ingests = BTreeSet::new();
        for lease in self.leases()? {
            if lease.is_expired(options.now) {
                self.remove_lease_file(&lease.id)?;
                report.expired_leases.push(lease.id);
                continue;
            }
            pending.extend(lease.content);
            leased_ingests.extend(lease.ingests);
        }
        pending.extend(roots().map_err(|source| ContentError::Roots { source })?);
        let marked = self.mark(pending, &mut children)?;
        self.sweep_blobs(&marked, &mut report)?;
        self.sweep_ingests(&leased_ingests, options, &mut report)?;
        report.removed_temp_files += sweep_temp_files(&self.lease_dir())?;
        if !report.expired_leases.is_empty() || report.removed_temp_files > 0 {
            sync_dir(&self.lease_dir())?;
        }
        Ok(report)
    }

    fn mark<C>(
        &self,
        mut pending: Vec<Digest>,
        children: &mut C,
    ) -> Result<BTreeSet<Digest>, ContentError>
    where
        C: FnMut(&Digest, &mut BlobReader) -> Result<Vec<Digest>, BoxError>,
    {
        let mut marked = BTreeSet::new();
        while let Some(digest) = pending.pop() {
            if !marked.insert(digest.clone()) {
                continue;
            }
            let mut reader = match self.reader(&digest) {
                Ok(reader) => reader,
                Err(ContentError::NotFound { .. }) => continue,
                Err(e) => return Err(e),
            };
            let found =
                children(&digest, &mut reader).map_err(|source| ContentError::Children {
                    digest: digest.clone(),
                    source,
                })?;
            pending.extend(found.into_iter().filter(|d| !marked.contains(d)));
        }
        Ok(marked)
    }

    fn sweep_blobs(
        &self,
        marked: &BTreeSet<Digest>,
        report: &mut GcReport,
    ) -> Result<(), ContentError> {
        let mut touched = BTreeSet::new();
        for info in self.list()? {
            if marked.contains(&info.digest) {
                continue;
            }
            if remove_file_if_exists(&self.blob_path(&info.digest))? {
                touched.insert(info.digest.algorithm());
                report.freed_bytes += info.size;
                report.removed_blobs.push(info.digest);
            }
        }
        for algorithm in touched {
            sync_dir(&self.blob_dir(algorithm))?;
        }
        Ok(())
    }

    fn sweep_ingests(
        &self,
        leased: &BTreeSet<String>,
        options: &GcOptions,
        report: &mut GcReport,
    ) -> Result<(), ContentError> {
        let root = self.ingest_root();
        let mut removed_any = false;
        for entry in fs::read_dir(&root).map_err(|e| io_error("list", &root, e))? {
            let dir = entry.map_err(|e| io_error("list", &root, e))?.path();
            let status = status_of_dir(&dir)?;
            if status
                .as_ref()
                .is_some_and(|s| leased.contains(&s.reference))
            {
                continue;
            }
            if !is_stale(&dir, options)? {
                continue;
            }
            // A writer holding the ingest open keeps it, however old.
            let Some(lock) = DirLock::try_lock(&dir)? else {
                continue;
            };
            remove_ingest_dir(&lock.path)?;
            removed_any = true;
            let name = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            report
                .removed_ingests
                .push(status.map_or(name, |s| s.reference));
        }
        if removed_any {
            sync_dir(&root)?;
        }
        Ok(())
    }
}

/// An ingest is stale when nothing in it (data, meta, the directory) changed for
/// `ingest_expiry` before `now`.
fn is_stale(dir: &Path, options: &GcOptions) -> Result<bool, ContentError> {
    let mut newest = SystemTime::UNIX_EPOCH;
    for path in [dir.to_owned(), dir.join("data"), dir.join("meta")] {
        match fs::metadata(&path) {
            Ok(meta) => newest = newest.max(meta.modified().unwrap_or(SystemTime::UNIX_EPOCH)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error("stat", &path, e)),
        }
    }
    Ok(newest + options.ingest_expiry <= options.now)
}

/// Removes temp files a crashed atomic write left behind (safe under the exclusive lock:
/// every writer of such files holds the shared lock).
fn sweep_temp_files(dir: &Path) -> Result<usize, ContentError> {
    let mut removed = 0;
    for entry in fs::read_dir(dir).map_err(|e| io_error("list", dir, e))? {
        let entry = entry.map_err(|e| io_error("list", dir, e))?;
        if is_temp_name(&entry.file_name().to_string_lossy())
            && remove_file_if_exists(&entry.path())?
        {
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
#[path = "gc_tests.rs"]
mod tests;
