//! The content store's error type and its kinds.

use std::io;
use std::path::PathBuf;

use berth_oci::Digest;
use thiserror::Error;

/// Error from a caller-supplied function (GC's "children of this blob").
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong in the content store.
#[derive(Debug, Error)]
pub enum ContentError {
    #[error("blob {digest} not found")]
    NotFound { digest: Digest },
    #[error("blob {digest} already exists")]
    AlreadyExists { digest: Digest },
    #[error("ingest {reference:?} not found")]
    IngestNotFound { reference: String },
    #[error("ingest {reference:?} is in use by another writer (wait for it or abort it)")]
    IngestLocked { reference: String },
    #[error("invalid ingest reference {reference:?}: it must be 1 to 1024 bytes")]
    InvalidIngestReference { reference: String },
    #[error(
        "cannot truncate ingest {reference:?} to {size} bytes: only {offset} bytes were written"
    )]
    TruncateBeyondEnd {
        reference: String,
        size: u64,
        offset: u64,
    },
    #[error(
        "ingest {reference:?} is incomplete: {actual} of {expected} bytes written (resume it from byte {actual})"
    )]
    Incomplete {
        reference: String,
        expected: u64,
        actual: u64,
    },
    #[error("ingest {reference:?} refused {attempted} more bytes at offset {offset}: it must be {expected} bytes")]
    TooLarge {
        reference: String,
        expected: u64,
        offset: u64,
        attempted: u64,
    },
    #[error("ingest {reference:?} has {actual} bytes, more than the expected {expected}: it was discarded")]
    SizeMismatch {
        reference: String,
        expected: u64,
        actual: u64,
    },
    #[error(
        "ingest {reference:?} has digest {actual}, not the expected {expected}: it was discarded"
    )]
    DigestMismatch {
        reference: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("ingest {reference:?} failed earlier: reopen it to resume from what reached the disk")]
    Poisoned { reference: String },
    #[error("blob {digest} is corrupted: its content hashes to {actual}")]
    Corrupted { digest: Digest, actual: Digest },
    #[error("no space left on device writing {} (free space and retry; partial ingests resume)", path.display())]
    NoSpace {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("lease {id:?} not found")]
    LeaseNotFound { id: String },
    #[error("lease {id:?} already exists")]
    LeaseExists { id: String },
    #[error("invalid lease id {id:?}: it must be 1 to 1024 bytes")]
    InvalidLeaseId { id: String },
    #[error("garbage collection could not list its roots")]
    Roots {
        #[source]
        source: BoxError,
    },
    #[error("garbage collection could not list the children of blob {digest}")]
    Children {
        digest: Digest,
        #[source]
        source: BoxError,
    },
    #[error("cannot {action} {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("corrupt metadata file {}", path.display())]
    Metadata {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// Coarse class of a [`ContentError`], for mapping to API statuses at the edges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentErrorKind {
    NotFound,
    AlreadyExists,
    InvalidArgument,
    /// The request was fine but the state forbids it (size or digest mismatch, incomplete).
    FailedPrecondition,
    /// Retry later: another writer holds the ingest, or the disk is full.
    Unavailable,
    Internal,
}

impl ContentError {
    pub fn kind(&self) -> ContentErrorKind {
        use ContentError as E;
        match self {
            E::NotFound { .. } | E::IngestNotFound { .. } | E::LeaseNotFound { .. } => {
                ContentErrorKind::NotFound
            }
            E::AlreadyExists { .. } | E::LeaseExists { .. } => ContentErrorKind::AlreadyExists,
            E::InvalidIngestReference { .. }
            | E::InvalidLeaseId { .. }
            | E::TruncateBeyondEnd { .. } => ContentErrorKind::InvalidArgument,
            E::Incomplete { .. }
            | E::TooLarge { .. }
            | E::SizeMismatch { .. }
            | E::DigestMismatch { .. }
            | E::Poisoned { .. } => ContentErrorKind::FailedPrecondition,
            E::IngestLocked { .. } | E::NoSpace { .. } => ContentErrorKind::Unavailable,
            E::Corrupted { .. }
            | E::Roots { .. }
            | E::Children { .. }
            | E::Io { .. }
            | E::Metadata { .. } => ContentErrorKind::Internal,
        }
    }
}

/// Wraps an I/O error with what was being done and where; a full disk gets its own variant.
pub(crate) fn io_error(
    action: &'static str,
    path: impl Into<PathBuf>,
    source: io::Error,
) -> ContentError {
    let path = path.into();
    if is_no_space(&source) {
        return ContentError::NoSpace { path, source };
    }
    ContentError::Io {
        action,
        path,
        source,
    }
}

pub(crate) fn is_no_space(error: &io::Error) -> bool {
    error.kind() == io::ErrorKind::StorageFull
        || matches!(error.raw_os_error(), Some(code) if code == rustix::io::Errno::NOSPC.raw_os_error()
            || code == rustix::io::Errno::DQUOT.raw_os_error())
}
