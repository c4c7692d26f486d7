//! Image archives: `docker save` (Docker 25+: an OCI image layout plus `manifest.json` and
//! `repositories`), plain OCI image layouts, `docker load` of those and of older Docker
//! archives (`<id>.json` + `<layer>/layer.tar`), and `docker import` of a rootfs tarball.
//!
//! Blobs keep their bytes both ways: saved layers are the stored blobs (no recompression),
//! loaded manifests and configs are stored as found, so every digest and image id survives.

mod changes;
mod import;
mod layout;
mod load;
mod save;

use std::io;

use berth_content::ContentError;
use berth_oci::{Digest, ReferenceError};
use thiserror::Error;

use crate::blob::{BoundedError, StreamError};
use crate::config::ConfigError;
use crate::manifest::ManifestError;
use crate::store::StoreError;

pub use changes::{apply_changes, ChangeError};
pub use import::{import, ImportOptions};
pub use load::{load, LoadedImage};
pub use save::{save, SaveFormat, SaveImage};

/// Why an archive could not be saved, loaded or imported.
#[derive(Debug, Error)]
pub enum ArchiveError {
    #[error("reading the archive")]
    Read(#[source] io::Error),
    #[error("writing the archive")]
    Write(#[source] io::Error),
    #[error("archive entry {path:?} is not a valid path inside an archive")]
    BadPath { path: String },
    #[error("archive has neither manifest.json nor index.json: it is not an image archive")]
    NotAnImageArchive,
    #[error("archive does not contain {path:?}")]
    MissingFile { path: String },
    #[error("archive entry {path:?} does not have the digest its name says")]
    BlobMismatch {
        path: String,
        #[source]
        source: ContentError,
    },
    #[error("invalid {file}")]
    Json {
        file: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("manifest {digest}")]
    Manifest {
        digest: Digest,
        #[source]
        source: ManifestError,
    },
    #[error("image config {path:?}")]
    Config {
        path: String,
        #[source]
        source: ConfigError,
    },
    #[error("image {id} has {layers} layers but its config lists {diff_ids} diff ids")]
    LayerCount {
        id: Digest,
        layers: usize,
        diff_ids: usize,
    },
    #[error("layer {path:?} has diff id {actual}, but the image config says {expected}")]
    DiffIdMismatch {
        path: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("descriptor {digest} says {expected} bytes but the blob has {actual}")]
    SizeMismatch {
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("no manifest in index {digest} matches the host platform")]
    NoMatchingPlatform { digest: Digest },
    #[error("nested indexes deeper than {depth} levels")]
    TooDeep { depth: usize },
    #[error("blob {digest} of image {image} is not in the content store (pull the image again)")]
    MissingBlob { image: Digest, digest: Digest },
    #[error("invalid reference {reference:?}")]
    Reference {
        reference: String,
        #[source]
        source: ReferenceError,
    },
    #[error(transparent)]
    Change(#[from] ChangeError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Content(#[from] ContentError),
    #[error(transparent)]
    Bounded(#[from] BoundedError),
}

impl From<StreamError> for ArchiveError {
    fn from(e: StreamError) -> ArchiveError {
        match e {
            StreamError::Read(e) => ArchiveError::Read(e),
            StreamError::Content(e) => ArchiveError::Content(e),
        }
    }
}

#[cfg(test)]
#[path = "archive_tests.rs"]
mod tests;
