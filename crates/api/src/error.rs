//! API errors on the wire: the `{"message": ...}` body and the one mapping from an error
//! kind to the HTTP status Docker answers with (moby's `errdefs` → `httpstatus`).

use serde::{Deserialize, Serialize};

/// What kind of failure an error is; every berth error maps to one of these at the edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    NotFound,
    Conflict,
    InvalidArgument,
    Unauthorized,
    Forbidden,
    Unavailable,
    NotImplemented,
    NotModified,
    Internal,
}

impl ErrorKind {
    /// Every kind, for tables and exhaustive tests.
    pub const ALL: [ErrorKind; 9] = [
        ErrorKind::NotFound,
        ErrorKind::Conflict,
        ErrorKind::InvalidArgument,
        ErrorKind::Unauthorized,
        ErrorKind::Forbidden,
        ErrorKind::Unavailable,
        ErrorKind::NotImplemented,
        ErrorKind::NotModified,
        ErrorKind::Internal,
    ];

    /// The HTTP status Docker sends for this kind. The only kind → status mapping in
    /// berth: the server and the client both go through it.
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::NotFound => 404,
            ErrorKind::Conflict => 409,
            ErrorKind::InvalidArgument => 400,
            ErrorKind::Unauthorized => 401,
            ErrorKind::Forbidden => 403,
            ErrorKind::Unavailable => 503,
            ErrorKind::NotImplemented => 501,
            ErrorKind::NotModified => 304,
            ErrorKind::Internal => 500,
        }
    }

    /// The kind a client infers from a status (the inverse of [`ErrorKind::status`];
    /// unknown statuses are `Internal`).
    pub fn from_status(status: u16) -> ErrorKind {
        ErrorKind::ALL
            .into_iter()
            .find(|kind| kind.status() == status)
            .unwrap_or(ErrorKind::Internal)
    }
}

/// Body of every API error response: `{"message":"No such container: x"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    pub message: String,
}

impl ErrorResponse {
    pub fn new(message: impl Into<String>) -> Self {
        ErrorResponse {
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_kinds_map_to_dockers_statuses() {
        let table = [
            (ErrorKind::NotFound, 404),
            (ErrorKind::Conflict, 409),
            (ErrorKind::InvalidArgument, 400),
            (ErrorKind::Unauthorized, 401),
            (ErrorKind::Forbidden, 403),
            (ErrorKind::Unavailable, 503),
            (ErrorKind::NotImplemented, 501),
            (ErrorKind::NotModified, 304),
            (ErrorKind::Internal, 500),
        ];
        assert_eq!(table.len(), ErrorKind::ALL.len());
        for (kind, status) in table {
            assert_eq!(kind.status(), status, "{kind:?}");
            assert_eq!(ErrorKind::from_status(status), kind);
        }
        assert_eq!(ErrorKind::from_status(418), ErrorKind::Internal);
    }

    #[test]
    fn error_body_is_a_message_object() {
        let body = ErrorResponse::new("No such container: x");
        assert_eq!(
            serde_json::to_string(&body).expect("encode"),
            r#"{"message":"No such container: x"}"#
        );
        let back: ErrorResponse =
            serde_json::from_str(r#"{"message":"conflict","extra":1}"#).expect("decode");
        assert_eq!(back.message, "conflict");
    }
}
