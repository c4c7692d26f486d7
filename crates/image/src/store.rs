//! Image records and their names: id (config digest) -> target descriptor, tags and digest
//! references exactly as Docker's reference store keeps them (RepoTags, RepoDigests, tags
//! that move, digests that never do), lookup as Docker's `GetImage` resolves a name, and
//! `docker rmi`'s untag-versus-delete rules and conflict texts.
//!
//! Persisted as one JSON document written atomically (temp file, fsync, rename, fsync of
//! the directory): the data is small (a few hundred bytes per image), every mutation is a
//! whole-document replace under a mutex, and no new dependency is needed. berthd's
//! state.redb can take it over when the engine exists; the record type stays.
//!
//! Deferred records ([`ImageStore::put_deferred`], a build's step images) are visible at
//! once but reach the file only with [`ImageStore::flush_deferred`], after the caller made
//! their blobs durable; until then every write of the file leaves them (and references
//! to them) out, so a crash loses them but never leaves a record naming a lost blob.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use berth_oci::{AnyReference, Digest, Reference, ReferenceError};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::manifest::Descriptor;

const STATE_FILE: &str = "images.json";
const SCHEMA_VERSION: u32 = 1;

/// Errors of the image store. Texts that Docker clients show or match are Docker's own
/// (`No such image: ...`, `conflict: unable to delete ...`), capitals included.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("No such image: {reference}")]
    NoSuchImage { reference: String },
    #[error(transparent)]
    InvalidReference(#[from] ReferenceError),
    #[error("conflict: unable to delete {short_id} ({}) - {message}", if *.hard { "cannot be forced" } else { "must be forced" })]
    Conflict {
        short_id: String,
        hard: bool,
        message: String,
    },
    #[error("Cannot overwrite digest {digest}")]
    DigestExists { digest: String },
    #[error("refusing to create a tag with a digest reference")]
    TagWithDigest,
    #[error("refusing to create an ambiguous tag using digest algorithm as name")]
    AmbiguousTag,
    #[error("conflict: unable to remove repository reference {reference:?} (must force) - container {container} is using its referenced image {image}")]
    RemoveReferenceInUse {
        reference: String,
        container: String,
        image: String,
    },
    #[error("reference does not exist")]
    ReferenceNotFound,
    #[error("{op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("image store {path} is corrupt (restore it from a backup or remove it)")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("image store {path} has schema version {found}, newer than this berth knows ({SCHEMA_VERSION})")]
    NewerSchema { path: PathBuf, found: u32 },
}

/// Coarse class of a [`StoreError`], for mapping to API statuses at the edges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreErrorKind {
    NotFound,
    InvalidArgument,
    Conflict,
    Internal,
}

impl StoreError {
    pub fn kind(&self) -> StoreErrorKind {
        match self {
            StoreError::NoSuchImage { .. } | StoreError::ReferenceNotFound => {
                StoreErrorKind::NotFound
            }
            StoreError::InvalidReference(_)
            | StoreError::TagWithDigest
            | StoreError::AmbiguousTag => StoreErrorKind::InvalidArgument,
            StoreError::Conflict { .. }
            | StoreError::RemoveReferenceInUse { .. }
            | StoreError::DigestExists { .. } => StoreErrorKind::Conflict,
            StoreError::Io { .. } | StoreError::Corrupt { .. } | StoreError::NewerSchema { .. } => {
                StoreErrorKind::Internal
            }
        }
    }
}

/// One image: its id (config digest) and what it was pulled, loaded or built as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    pub id: Digest,
    /// The manifest (or index) descriptor whose bytes are served for this image.
    pub target: Descriptor,
    /// When berth recorded it (RFC 3339); Docker's "LastTagTime"-like bookkeeping.
    pub created: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// A container's use of an image, for delete conflicts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerUse {
    pub container_id: String,
    pub image_id: Digest,
    pub running: bool,
}

/// One line of `docker rmi`'s output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteItem {
    Untagged(String),
    Deleted(String),
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    version: u32,
    images: BTreeMap<Digest, ImageRecord>,
    /// Full reference string (`docker.io/library/busybox:latest`) -> image id.
    references: BTreeMap<String, Digest>,
    /// Ids in `images` not yet written to the file (see [`ImageStore::put_deferred`]).
    #[serde(skip)]
    deferred: BTreeSet<Digest>,
}

/// The image store under one directory.
#[derive(Debug)]
pub struct ImageStore {
    dir: PathBuf,
    state: Mutex<State>,
}

impl ImageStore {
    /// Opens (creating) the store in `dir`.
    pub fn open(dir: &Path) -> Result<ImageStore, StoreError> {
        fs::create_dir_all(dir).map_err(|source| io_err("create", dir, source))?;
        let path = dir.join(STATE_FILE);
        let state = match fs::read(&path) {
            Ok(bytes) => {
                let state: State =
                    serde_json::from_slice(&bytes).map_err(|source| StoreError::Corrupt {
                        path: path.clone(),
                        source,
                    })?;
                if state.version > SCHEMA_VERSION {
                    return Err(StoreError::NewerSchema {
                        path,
                        found: state.version,
                    });
                }
                state
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => State {
                version: SCHEMA_VERSION,
                ..State::default()
            },
            Err(source) => return Err(io_err("read", &path, source)),
        };
        Ok(ImageStore {
            dir: dir.to_path_buf(),
            state: Mutex::new(state),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every mutation is applied to a copy and persisted before it replaces the state,
        // so a panic while holding the lock leaves a consistent state behind.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn persist(&self, state: &State) -> Result<(), StoreError> {
        let path = self.dir.join(STATE_FILE);
        let tmp = self.dir.join(format!(".{STATE_FILE}.tmp"));
        let durable;
        let state = if state.deferred.is_empty() {
            state
        } else {
            let keep = |id: &Digest| !state.deferred.contains(id);
            durable = State {
                version: state.version,
                images: (state.images.iter())
                    .filter(|(id, _)| keep(id))
                    .map(|(id, r)| (id.clone(), r.clone()))
                    .collect(),
                references: (state.references.iter())
                    .filter(|(_, id)| keep(id))
                    .map(|(r, id)| (r.clone(), id.clone()))
                    .collect(),
                deferred: BTreeSet::new(),
            };
            &durable
        };
        let bytes = serde_json::to_vec_pretty(state).map_err(|source| StoreError::Corrupt {
            path: path.clone(),
            source,
        })?;
        let mut file = File::create(&tmp).map_err(|e| io_err("create", &tmp, e))?;
        file.write_all(&bytes)
            .map_err(|e| io_err("write", &tmp, e))?;
        file.sync_all().map_err(|e| io_err("sync", &tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| io_err("rename", &path, e))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io_err("sync", &self.dir, e))
    }

    fn mutate<T>(
        &self,
        f: impl FnOnce(&mut State) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut guard = self.lock();
        let mut next = State {
            version: SCHEMA_VERSION,
            images: guard.images.clone(),
            references: guard.references.clone(),
            deferred: guard.deferred.clone(),
        };
        let out = f(&mut next)?;
        let images = &next.images;
        next.deferred.retain(|id| images.contains_key(id));
        self.persist(&next)?;
        *guard = next;
        Ok(out)
    }

    /// Records an image (replacing the record of the same id).
    pub fn put(&self, record: ImageRecord) -> Result<(), StoreError> {
        self.mutate(|s| {
            s.deferred.remove(&record.id);
            s.images.insert(record.id.clone(), record);
            Ok(())
        })
    }

    /// Records an image in memory only: it is listed, resolved and tagged like any other,
    /// but the file gets it (and references to it) only at [`Self::flush_deferred`]. For
    /// records whose blobs are not yet durable (a build's step images); after a crash they
    /// are simply gone. A record already on file stays as it is.
    pub fn put_deferred(&self, record: ImageRecord) {
        let mut state = self.lock();
        if state.images.contains_key(&record.id) {
            return;
        }
        state.deferred.insert(record.id.clone());
        state.images.insert(record.id.clone(), record);
    }

    /// Writes the deferred records to the file once `make_durable` (run under the store's
    /// lock, so no record deferred after it can slip in) made their blobs durable.
    pub fn flush_deferred<E>(
        &self,
        make_durable: impl FnOnce() -> Result<(), E>,
    ) -> Result<Result<(), E>, StoreError> {
        let mut guard = self.lock();
        if guard.deferred.is_empty() {
            return Ok(Ok(()));
        }
        if let Err(e) = make_durable() {
            return Ok(Err(e));
        }
        let next = State {
            version: SCHEMA_VERSION,
            images: guard.images.clone(),
            references: guard.references.clone(),
            deferred: BTreeSet::new(),
        };
        self.persist(&next)?;
        *guard = next;
        Ok(Ok(()))
    }

    /// The record of image `id`.
    pub fn get(&self, id: &Digest) -> Option<ImageRecord> {
        self.lock().images.get(id).cloned()
    }

    /// Every image, by id.
    pub fn list(&self) -> Vec<ImageRecord> {
        self.lock().images.values().cloned().collect()
    }

    /// Points `reference` at image `id` (`docker tag`): a name without tag gets `latest`;
    /// a tag already on another image moves (that image may become dangling); a digest
    /// reference is added with [`ImageStore::add_digest`] rules. Returns the image the tag
    /// was taken from, if any.
    pub fn tag(&self, id: &Digest, reference: &Reference) -> Result<Option<Digest>, StoreError> {
        if reference.digest().is_some() {
            return Err(StoreError::TagWithDigest);
        }
        let reference = reference.clone().with_default_tag();
        check_not_digest_name(&reference)?;
        self.mutate(|s| {
            if !s.images.contains_key(id) {
                return Err(StoreError::NoSuchImage {
                    reference: id.to_string(),
                });
            }
            let previous = s.references.insert(reference.to_string(), id.clone());
            Ok(previous.filter(|p| p != id))
        })
    }

    /// Adds a digest reference (`name@sha256:...`, a RepoDigest). Digest references never
    /// move: pointing one at another image fails with Docker's error.
    pub fn add_digest(&self, id: &Digest, reference: &Reference) -> Result<(), StoreError> {
        let Some(_) = reference.digest() else {
            return Err(StoreError::ReferenceNotFound);
        };
        // A tag next to the digest is dropped, as the reference store does.
        let canonical = match reference.tag() {
            Some(_) => reference.repository().with_digest(
                reference
                    .digest()
                    .cloned()
                    .ok_or(StoreError::ReferenceNotFound)?,
            ),
            None => reference.clone(),
        };
        check_not_digest_name(&canonical)?;
        self.mutate(|s| {
            if !s.images.contains_key(id) {
                return Err(StoreError::NoSuchImage {
                    reference: id.to_string(),
                });
            }
            let key = canonical.to_string();
            match s.references.get(&key) {
                Some(existing) if existing != id => Err(StoreError::DigestExists {
                    digest: canonical.familiar_string(),
                }),
                _ => {
                    s.references.insert(key, id.clone());
                    Ok(())
                }
            }
        })
    }

    /// References to image `id`, sorted by their familiar form as Docker sorts them.
    pub fn references(&self, id: &Digest) -> Vec<Reference> {
        references_of(&self.lock(), id)
    }

    /// `RepoTags` as `docker inspect` shows them (`busybox:latest`).
    pub fn repo_tags(&self, id: &Digest) -> Vec<String> {
        self.references(id)
            .iter()
            .filter(|r| r.digest().is_none())
            .map(Reference::familiar_string)
            .collect()
    }

    /// `RepoDigests` as `docker inspect` shows them (`busybox@sha256:...`).
    pub fn repo_digests(&self, id: &Digest) -> Vec<String> {
        self.references(id)
            .iter()
            .filter(|r| r.digest().is_some())
            .map(Reference::familiar_string)
            .collect()
    }

    /// The image that `name_or_id` names, resolved as Docker's `GetImage`: an image id
    /// (64 hex or `sha256:...`), then a tag or digest reference, then a unique id prefix.
    pub fn resolve(&self, name_or_id: &str) -> Result<ImageRecord, StoreError> {
        let state = self.lock();
        resolve_in(&state, name_or_id)
    }

    /// Removes one reference (a tag, or a digest reference) and returns it normalised.
    pub fn untag(&self, reference: &Reference) -> Result<Reference, StoreError> {
        let reference = normalize_lookup(reference);
        self.mutate(|s| {
            s.references
                .remove(&reference.to_string())
                .map(|_| reference.clone())
                .ok_or(StoreError::ReferenceNotFound)
        })
    }

    /// `docker rmi NAME_OR_ID`: see [`crate::store`] docs and Docker's `ImageDelete`.
    pub fn delete(
        &self,
        name_or_id: &str,
        force: bool,
        containers: &[ContainerUse],
    ) -> Result<Vec<DeleteItem>, StoreError> {
        self.mutate(|s| delete_in(s, name_or_id, force, containers))
    }
}

fn io_err(op: &'static str, path: &Path, source: io::Error) -> StoreError {
    StoreError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

fn check_not_digest_name(reference: &Reference) -> Result<(), StoreError> {
    if reference.familiar_name() == "sha256" {
        return Err(StoreError::AmbiguousTag);
    }
    Ok(())
}

/// The reference store's `Get` key: digest wins over a tag next to it; a bare name gets
/// `latest`.
fn normalize_lookup(reference: &Reference) -> Reference {
    match reference.digest() {
        Some(d) => reference.repository().with_digest(d.clone()),
        None => reference.clone().with_default_tag(),
    }
}

fn references_of(state: &State, id: &Digest) -> Vec<Reference> {
    let mut refs: Vec<Reference> = state
        .references
        .iter()
        .filter(|(_, target)| *target == id)
        .filter_map(|(key, _)| Reference::parse(key).ok())
        .collect();
    refs.sort_by_key(Reference::familiar_string);
    refs
}

/// `ErrImageDoesNotExist`'s text: tag-less names get `:latest`, in familiar form.
fn not_found(reference: &AnyReference) -> StoreError {
    let reference = match reference {
        AnyReference::Digest(d) => d.to_string(),
        AnyReference::Named(r) if r.digest().is_none() => {
            r.clone().with_default_tag().familiar_string()
        }
        AnyReference::Named(r) => r.familiar_string(),
    };
    StoreError::NoSuchImage { reference }
}

fn resolve_in(state: &State, name_or_id: &str) -> Result<ImageRecord, StoreError> {
    let parsed = Reference::parse_any(name_or_id)?;
    match &parsed {
        AnyReference::Digest(id) => {
            return state
                .images
                .get(id)
                .cloned()
                .ok_or_else(|| not_found(&parsed));
        }
        AnyReference::Named(named) => {
            let key = normalize_lookup(named).to_string();
            if let Some(record) = state
                .references
                .get(&key)
                .and_then(|id| state.images.get(id))
            {
                return Ok(record.clone());
            }
        }
    }
    search_prefix(state, name_or_id).ok_or_else(|| not_found(&parsed))
}

/// The image store's `Search`: a unique prefix of the hex id, with or without `sha256:`.
fn search_prefix(state: &State, term: &str) -> Option<ImageRecord> {
    let hex = term.strip_prefix("sha256:").unwrap_or(term);
    if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut found = state
        .images
        .values()
        .filter(|r| r.id.hex().starts_with(hex));
    let first = found.next()?;
    match found.next() {
        Some(_) => None,
        None => Some(first.clone()),
    }
}

/// Docker's `isImageIDPrefix`.
fn is_image_id_prefix(id: &Digest, possible_prefix: &str) -> bool {
    id.to_string().starts_with(possible_prefix) || id.hex().starts_with(possible_prefix)
}

/// Docker's `isSingleReference`: at most one tag, and every reference in that repository.
fn is_single_reference(refs: &[Reference]) -> bool {
    if refs.len() <= 1 {
        return refs.len() == 1;
    }
    let mut single: Option<&Reference> = None;
    let mut canonical = std::collections::BTreeSet::new();
    for r in refs {
        if r.digest().is_some() {
            canonical.insert(r.name());
        } else if single.is_none() {
            single = Some(r);
        } else {
            return false;
        }
    }
    let single = single.unwrap_or(&refs[0]);
    canonical.len() == 1 && canonical.contains(&single.name())
}

fn conflict(id: &Digest, hard: bool, message: String) -> StoreError {
    StoreError::Conflict {
        short_id: id.hex().chars().take(12).collect(),
        hard,
        message,
    }
}

/// Docker's `checkImageDeleteConflict` for the masks `rmi` uses.
fn check_conflict(
    state: &State,
    id: &Digest,
    containers: &[ContainerUse],
    soft: bool,
    active_reference: bool,
) -> Result<(), StoreError> {
    if let Some(c) = containers.iter().find(|c| &c.image_id == id && c.running) {
        let short: String = c.container_id.chars().take(12).collect();
        return Err(conflict(
            id,
            true,
            format!("image is being used by running container {short}"),
        ));
    }
    if soft && active_reference && !references_of(state, id).is_empty() {
        return Err(conflict(
            id,
            false,
            "image is referenced in multiple repositories".to_owned(),
        ));
    }
    if soft {
        if let Some(c) = containers.iter().find(|c| &c.image_id == id) {
            let short: String = c.container_id.chars().take(12).collect();
            return Err(conflict(
                id,
                false,
                format!("image is being used by stopped container {short}"),
            ));
        }
    }
    Ok(())
}

fn delete_in(
    s: &mut State,
    name_or_id: &str,
    force: bool,
    containers: &[ContainerUse],
) -> Result<Vec<DeleteItem>, StoreError> {
    let record = resolve_in(s, name_or_id)?;
    let id = record.id;
    let mut items = Vec::new();
    let mut refs = references_of(s, &id);
    if !is_image_id_prefix(&id, name_or_id) {
        // A name was given: untag it; the image goes only with its last reference.
        if !force && is_single_reference(&refs) {
            if let Some(c) = containers.iter().find(|c| c.image_id == id) {
                return Err(StoreError::RemoveReferenceInUse {
                    reference: name_or_id.to_owned(),
                    container: c.container_id.chars().take(12).collect(),
                    image: id.hex().chars().take(12).collect(),
                });
            }
        }
        let named = Reference::parse_normalized(name_or_id)?;
        let removed = normalize_lookup(&named);
        s.references.remove(&removed.to_string());
        items.push(DeleteItem::Untagged(removed.familiar_string()));
        refs = references_of(s, &id);
        if removed.digest().is_none() {
            let same_repo_tag = refs
                .iter()
                .any(|r| r.digest().is_none() && r.name() == removed.name());
            if !same_repo_tag {
                let (digests, rest): (Vec<Reference>, Vec<Reference>) = refs
                    .into_iter()
                    .partition(|r| r.digest().is_some() && r.name() == removed.name());
                for d in digests {
                    s.references.remove(&d.to_string());
                    items.push(DeleteItem::Untagged(d.familiar_string()));
                }
                refs = rest;
            }
        }
        if !refs.is_empty() {
            return Ok(items);
        }
        // Docker's "quiet" helper: an image left dangling by the untag but still used by
        // a container stays, without an error.
        if check_conflict(s, &id, containers, !force, true).is_err() {
            return Ok(items);
        }
    } else if is_single_reference(&refs) {
        // An id with one tag (plus digests of that repository): remove them all, unless a
        // container needs the image and this is not forced.
        check_conflict(s, &id, containers, !force, false)?;
        for r in refs {
            s.references.remove(&r.to_string());
            items.push(DeleteItem::Untagged(r.familiar_string()));
        }
    }
    check_conflict(s, &id, containers, !force, true)?;
    for r in references_of(s, &id) {
        s.references.remove(&r.to_string());
        items.push(DeleteItem::Untagged(r.familiar_string()));
    }
    s.images.remove(&id);
    items.push(DeleteItem::Deleted(id.to_string()));
    Ok(items)
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
