//! Errors of the image service, with Docker's texts where clients show or match them, and
//! their kinds (the server turns kinds into statuses).

use std::path::PathBuf;

use berth_image::archive::ArchiveError;
use berth_image::{StoreError, UnpackError};
use berth_oci::ReferenceError;
use berth_registry::client::ClientError;

use crate::error::ErrorKind;

/// Failures of image operations.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// Docker's `ErrImageDoesNotExist` text.
    #[error("No such image: {0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Archive(Box<ArchiveError>),
    #[error("invalid reference format: {source}")]
    Reference {
        reference: String,
        #[source]
        source: ReferenceError,
    },
    #[error("invalid platform {platform:?}")]
    Platform {
        platform: String,
        #[source]
        source: berth_oci::PlatformError,
    },
    #[error("unpacking image {image}")]
    Unpack {
        image: String,
        #[source]
        source: Box<UnpackError>,
    },
    #[error("snapshot of container {container}")]
    Snapshot {
        container: String,
        #[source]
        source: Box<berth_snapshot::SnapshotError>,
    },
    #[error("content store")]
    Content(#[from] berth_content::ContentError),
    #[error("image {image} is unusable: {reason}")]
    Broken { image: String, reason: String },
    /// Docker's `notFoundError` texts; `detail` is the registry's `code: message`.
    #[error("manifest for {reference} not found: {detail}")]
    ManifestUnknown { reference: String, detail: String },
    #[error("repository {repository} not found: {detail}")]
    RepositoryUnknown { repository: String, detail: String },
    #[error("{action} access denied for {repository}, repository does not exist or may require 'docker login': {detail}")]
    AccessDenied {
        action: &'static str,
        repository: String,
        detail: String,
    },
    /// `POST /auth` refused by the registry.
    #[error("login attempt to {server} failed with status: {detail}")]
    Login { server: String, detail: String },
    #[error(transparent)]
    Registry(Box<ClientError>),
    #[error("{0}")]
    Credentials(#[from] berth_registry::client::CredentialsError),
    /// `docker push` of a name that has no local image.
    #[error("An image does not exist locally with the tag: {0}")]
    NoLocalTag(String),
    #[error("{what} is not supported by berth yet")]
    NotImplemented { what: String },
    #[error("invalid filter value {value:?} for {filter}")]
    FilterValue { filter: String, value: String },
    #[error(transparent)]
    Filters(#[from] berth_api::FiltersError),
    #[error("{op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("reading the request body")]
    Body(#[source] std::io::Error),
    #[error("the image task failed")]
    Task(#[from] tokio::task::JoinError),
    /// The trust policy refused the image, or its signatures could not be checked.
    #[error(transparent)]
    Trust(Box<crate::trust::TrustError>),
}

impl From<ArchiveError> for ImageError {
    fn from(e: ArchiveError) -> ImageError {
        ImageError::Archive(Box::new(e))
    }
}

impl From<ClientError> for ImageError {
    fn from(e: ClientError) -> ImageError {
        ImageError::Registry(Box::new(e))
    }
}

impl ImageError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ImageError::NotFound(_)
            | ImageError::ManifestUnknown { .. }
            | ImageError::RepositoryUnknown { .. } => ErrorKind::NotFound,
            ImageError::Login { .. } => ErrorKind::Unauthorized,
            ImageError::NoLocalTag(_) => ErrorKind::NotFound,
            ImageError::Store(e) => store_kind(e),
            ImageError::Archive(e) => archive_kind(e),
            ImageError::Reference { .. }
            | ImageError::Platform { .. }
            | ImageError::FilterValue { .. }
            | ImageError::Credentials(_)
            | ImageError::Body(_) => ErrorKind::InvalidArgument,
            ImageError::Filters(e) => e.kind(),
            ImageError::AccessDenied { .. } => ErrorKind::NotFound,
            ImageError::Registry(e) => registry_kind(e),
            ImageError::NotImplemented { .. } => ErrorKind::NotImplemented,
            ImageError::Unpack { .. }
            | ImageError::Snapshot { .. }
            | ImageError::Content(_)
            | ImageError::Broken { .. }
            | ImageError::Io { .. }
            | ImageError::Task(_) => ErrorKind::Internal,
            ImageError::Trust(e) => e.kind(),
        }
    }

    pub(crate) fn reference(reference: &str, source: ReferenceError) -> ImageError {
        ImageError::Reference {
            reference: reference.to_owned(),
            source,
        }
    }
}

fn archive_kind(error: &ArchiveError) -> ErrorKind {
    match error {
        ArchiveError::Store(e) => store_kind(e),
        ArchiveError::Write(_) | ArchiveError::Content(_) | ArchiveError::MissingBlob { .. } => {
            ErrorKind::Internal
        }
        _ => ErrorKind::InvalidArgument,
    }
}

fn store_kind(error: &StoreError) -> ErrorKind {
    use berth_image::store::StoreErrorKind;
    match error.kind() {
        StoreErrorKind::NotFound => ErrorKind::NotFound,
        StoreErrorKind::InvalidArgument => ErrorKind::InvalidArgument,
        StoreErrorKind::Conflict => ErrorKind::Conflict,
        StoreErrorKind::Internal => ErrorKind::Internal,
    }
}

fn registry_kind(error: &ClientError) -> ErrorKind {
    match error {
        ClientError::Unauthorized { .. } | ClientError::Auth { .. } => ErrorKind::Unauthorized,
        ClientError::Registry { status: 404, .. } => ErrorKind::NotFound,
        ClientError::Registry {
            status: 401 | 403, ..
        } => ErrorKind::Unauthorized,
        ClientError::NoMatchingPlatform { .. } => ErrorKind::NotFound,
        ClientError::Url { .. } => ErrorKind::InvalidArgument,
        _ => ErrorKind::Internal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_uses_docker_text_and_kind() {
        let e = ImageError::NotFound("busybox:latest".into());
        assert_eq!(e.to_string(), "No such image: busybox:latest");
        assert_eq!(e.kind(), ErrorKind::NotFound);
    }

    #[test]
    fn store_conflicts_are_conflicts() {
        let e = ImageError::Store(StoreError::Conflict {
            short_id: "0123456789ab".into(),
            hard: false,
            message: "image is being used by stopped container abc".into(),
        });
        assert_eq!(e.kind(), ErrorKind::Conflict);
        assert!(e
            .to_string()
            .starts_with("conflict: unable to delete 0123456789ab"));
    }

    #[test]
    fn push_of_unknown_tag_uses_docker_text() {
        let e = ImageError::NoLocalTag("localhost:5000/nope".into());
        assert_eq!(
            e.to_string(),
            "An image does not exist locally with the tag: localhost:5000/nope"
        );
    }
}
