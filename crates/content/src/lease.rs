//! Leases: named, optionally expiring sets of digests and ingest references that GC must
//! keep, so that content in flight (a pull in progress, a build step) is never collected
//! before an image or container references it. One JSON file per lease, replaced atomically.
//!
//! Protocol for callers: add a digest to a lease *before* committing it (a lease may name
//! content that does not exist yet); then a GC running at any moment keeps it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::PathBuf;
use std::sync::MutexGuard;
use std::time::SystemTime;

use berth_oci::Digest;
use serde::{Deserialize, Serialize};

use crate::durable::{
    is_temp_name, read_optional, remove_file_if_exists, sync_dir, write_atomic, StoreLock,
};
use crate::error::{io_error, ContentError};
use crate::store::Store;

/// Longest accepted lease id, in bytes.
pub const MAX_LEASE_ID_LEN: usize = 1024;

/// A lease as stored in `leases/<sha256(id)>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub id: String,
    pub created_at: SystemTime,
    /// After this instant GC ignores the lease and deletes it.
    #[serde(default)]
    pub expires_at: Option<SystemTime>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Blobs (committed or still to come) that GC keeps while the lease lives.
    #[serde(default)]
    pub content: BTreeSet<Digest>,
    /// Ingest references that GC keeps however old they are.
    #[serde(default)]
    pub ingests: BTreeSet<String>,
}

impl Lease {
    pub fn is_expired(&self, now: SystemTime) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

impl Store {
    fn lease_path(&self, id: &str) -> Result<PathBuf, ContentError> {
        if id.is_empty() || id.len() > MAX_LEASE_ID_LEN {
            return Err(ContentError::InvalidLeaseId { id: id.to_owned() });
        }
        Ok(self
            .lease_dir()
            .join(format!("{}.json", Digest::sha256_of(id.as_bytes()).hex())))
    }

    fn lease_guard(&self) -> MutexGuard<'_, ()> {
        // A panic while holding this guard cannot leave a half-written lease (writes are
        // atomic), so a poisoned mutex is still safe to use.
        self.inner
            .lease_mutex
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Creates a lease; fails if one with this id exists.
    pub fn create_lease(
        &self,
        id: &str,
        expires_at: Option<SystemTime>,
        labels: BTreeMap<String, String>,
    ) -> Result<Lease, ContentError> {
        let path = self.lease_path(id)?;
        let _guard = self.lease_guard();
        let _shared = StoreLock::shared(&self.lock_path())?;
        if path.exists() {
            return Err(ContentError::LeaseExists { id: id.to_owned() });
        }
        let lease = Lease {
            id: id.to_owned(),
            created_at: SystemTime::now(),
            expires_at,
            labels,
            content: BTreeSet::new(),
            ingests: BTreeSet::new(),
        };
        self.save_lease(&path, &lease)?;
        Ok(lease)
    }

    pub fn lease(&self, id: &str) -> Result<Lease, ContentError> {
        let path = self.lease_path(id)?;
        load_lease(&path)?.ok_or_else(|| ContentError::LeaseNotFound { id: id.to_owned() })
    }

    /// Every lease, sorted by id (expired ones included until GC removes them).
    pub fn leases(&self) -> Result<Vec<Lease>, ContentError> {
        let dir = self.lease_dir();
        let mut leases = Vec::new();
        for entry in fs::read_dir(&dir).map_err(|e| io_error("list", &dir, e))? {
            let entry = entry.map_err(|e| io_error("list", &dir, e))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if is_temp_name(&name) || !name.ends_with(".json") {
                continue;
            }
            if let Some(lease) = load_lease(&entry.path())? {
                leases.push(lease);
            }
        }
        leases.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(leases)
    }

    pub fn delete_lease(&self, id: &str) -> Result<(), ContentError> {
        let path = self.lease_path(id)?;
        let _guard = self.lease_guard();
        if !remove_file_if_exists(&path)? {
            return Err(ContentError::LeaseNotFound { id: id.to_owned() });
        }
        sync_dir(&self.lease_dir())
    }

    /// Adds a digest to a lease; do it before committing the blob.
    pub fn lease_add_content(&self, id: &str, digest: &Digest) -> Result<(), ContentError> {
        self.update_lease(id, |lease| lease.content.insert(digest.clone()))
    }

    pub fn lease_remove_content(&self, id: &str, digest: &Digest) -> Result<(), ContentError> {
        self.update_lease(id, |lease| lease.content.remove(digest))
    }

    /// Protects an ingest from GC's age limit for as long as the lease lives.
    pub fn lease_add_ingest(&self, id: &str, reference: &str) -> Result<(), ContentError> {
        self.update_lease(id, |lease| lease.ingests.insert(reference.to_owned()))
    }

    pub fn lease_remove_ingest(&self, id: &str, reference: &str) -> Result<(), ContentError> {
        self.update_lease(id, |lease| lease.ingests.remove(reference))
    }

    /// Read-modify-write under this process's lease mutex and the shared store lock, so
    /// no GC can run between the update and the commit that relies on it.
    fn update_lease(
        &self,
        id: &str,
        change: impl FnOnce(&mut Lease) -> bool,
    ) -> Result<(), ContentError> {
        let path = self.lease_path(id)?;
        let _guard = self.lease_guard();
        let _shared = StoreLock::shared(&self.lock_path())?;
        let mut lease =
            load_lease(&path)?.ok_or_else(|| ContentError::LeaseNotFound { id: id.to_owned() })?;
        if change(&mut lease) {
            self.save_lease(&path, &lease)?;
        }
        Ok(())
    }

    fn save_lease(&self, path: &std::path::Path, lease: &Lease) -> Result<(), ContentError> {
        let bytes = serde_json::to_vec_pretty(lease).map_err(|source| ContentError::Metadata {
            path: path.to_owned(),
            source,
        })?;
        write_atomic(path, &bytes)
    }

    /// Deletes an expired lease file (GC, under the exclusive lock).
    pub(crate) fn remove_lease_file(&self, id: &str) -> Result<(), ContentError> {
        let path = self.lease_path(id)?;
        remove_file_if_exists(&path)?;
        Ok(())
    }
}

fn load_lease(path: &std::path::Path) -> Result<Option<Lease>, ContentError> {
    let Some(bytes) = read_optional(path)? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|source| ContentError::Metadata {
            path: path.to_owned(),
            source,
        })
}

#[cfg(test)]
#[path = "lease_tests.rs"]
mod tests;
