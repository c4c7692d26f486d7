//! The distribution spec's error codes and the one function that maps them to HTTP
//! statuses and the spec's error JSON (`{"errors":[{"code","message","detail"}]}`).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_content::{ContentError, ContentErrorKind};
use thiserror::Error;

/// Error codes of the OCI distribution spec (section "Error Codes"), plus the ones
/// distribution adds that clients know (`NAME_UNKNOWN`, `TOOMANYREQUESTS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    BlobUnknown,
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    NameInvalid,
    NameUnknown,
    SizeInvalid,
    Unauthorized,
    Denied,
    Unsupported,
    RangeInvalid,
    TagInvalid,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BlobUnknown => "BLOB_UNKNOWN",
            ErrorCode::BlobUploadInvalid => "BLOB_UPLOAD_INVALID",
            ErrorCode::BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            ErrorCode::DigestInvalid => "DIGEST_INVALID",
            ErrorCode::ManifestBlobUnknown => "MANIFEST_BLOB_UNKNOWN",
            ErrorCode::ManifestInvalid => "MANIFEST_INVALID",
            ErrorCode::ManifestUnknown => "MANIFEST_UNKNOWN",
            ErrorCode::NameInvalid => "NAME_INVALID",
            ErrorCode::NameUnknown => "NAME_UNKNOWN",
            ErrorCode::SizeInvalid => "SIZE_INVALID",
            ErrorCode::Unauthorized => "UNAUTHORIZED",
            ErrorCode::Denied => "DENIED",
            ErrorCode::Unsupported => "UNSUPPORTED",
            ErrorCode::RangeInvalid => "RANGE_INVALID",
            ErrorCode::TagInvalid => "TAG_INVALID",
        }
    }

    /// Parses a wire code (used by the client to type registry errors).
    pub fn parse(code: &str) -> Option<ErrorCode> {
        ALL.iter().copied().find(|c| c.as_str() == code)
    }

    /// The status distribution answers with for this code.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::BlobUnknown
            | ErrorCode::BlobUploadUnknown
            | ErrorCode::ManifestUnknown
            | ErrorCode::NameUnknown => StatusCode::NOT_FOUND,
            ErrorCode::BlobUploadInvalid
            | ErrorCode::DigestInvalid
            | ErrorCode::ManifestBlobUnknown
            | ErrorCode::ManifestInvalid
            | ErrorCode::NameInvalid
            | ErrorCode::SizeInvalid
            | ErrorCode::TagInvalid => StatusCode::BAD_REQUEST,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::Denied => StatusCode::FORBIDDEN,
            ErrorCode::Unsupported => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::RangeInvalid => StatusCode::RANGE_NOT_SATISFIABLE,
        }
    }
}

const ALL: [ErrorCode; 15] = [
    ErrorCode::BlobUnknown,
    ErrorCode::BlobUploadInvalid,
    ErrorCode::BlobUploadUnknown,
    ErrorCode::DigestInvalid,
    ErrorCode::ManifestBlobUnknown,
    ErrorCode::ManifestInvalid,
    ErrorCode::ManifestUnknown,
    ErrorCode::NameInvalid,
    ErrorCode::NameUnknown,
    ErrorCode::SizeInvalid,
    ErrorCode::Unauthorized,
    ErrorCode::Denied,
    ErrorCode::Unsupported,
    ErrorCode::RangeInvalid,
    ErrorCode::TagInvalid,
];

/// A failed registry request: a spec error code with its message, or an internal fault.
#[derive(Debug, Error)]
pub enum ApiError {
    #[error("{message}")]
    Spec {
        code: ErrorCode,
        message: String,
        /// Overrides the code's usual status (e.g. 413 or 404 for an unknown route).
        status: Option<StatusCode>,
    },
    #[error("storage failure")]
    Content(#[from] ContentError),
    #[error("metadata failure")]
    Metadata(#[from] crate::meta::MetaError),
    #[error("internal task failed")]
    Join(#[from] tokio::task::JoinError),
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError::Spec {
            code,
            message: message.into(),
            status: None,
        }
    }

    pub fn with_status(
        code: ErrorCode,
        status: StatusCode,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError::Spec {
            code,
            message: message.into(),
            status: Some(status),
        }
    }

    /// The one place where errors become statuses and JSON bodies.
    fn parts(&self) -> (StatusCode, &'static str, String) {
        match self {
            ApiError::Spec {
                code,
                message,
                status,
            } => (
                status.unwrap_or(code.status()),
                code.as_str(),
                message.clone(),
            ),
            ApiError::Content(e) => match e.kind() {
                ContentErrorKind::NotFound => {
                    (StatusCode::NOT_FOUND, "BLOB_UNKNOWN", e.to_string())
                }
                ContentErrorKind::InvalidArgument | ContentErrorKind::FailedPrecondition => (
                    StatusCode::BAD_REQUEST,
                    "BLOB_UPLOAD_INVALID",
                    e.to_string(),
                ),
                ContentErrorKind::Unavailable => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "UNAVAILABLE",
                    e.to_string(),
                ),
                ContentErrorKind::AlreadyExists | ContentErrorKind::Internal => {
                    (StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", e.to_string())
                }
            },
            ApiError::Metadata(e) => (StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", e.to_string()),
            ApiError::Join(e) => (StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", e.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = self.parts();
        let body = serde_json::json!({
            "errors": [{ "code": code, "message": message, "detail": null }]
        });
        let mut response = (status, body.to_string()).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        response
    }
}
