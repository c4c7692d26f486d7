//! API errors: a kind (berth-api's `ErrorKind`) and Docker's message text, rendered as
//! `{"message": ...}` with the kind's status. The only error → status mapping in the server.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use berth_api::{ErrorKind, ErrorResponse};

/// An error on its way to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ApiError {
        ApiError {
            kind,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::InvalidArgument, message)
    }

    pub fn not_implemented(what: &str) -> ApiError {
        ApiError::new(
            ErrorKind::NotImplemented,
            format!("{what} is not implemented in berth yet"),
        )
    }

    /// Any typed error with a kind: the whole `source()` chain becomes the message so that
    /// an errno or a file name deep in the chain reaches the user.
    pub fn from_error(kind: ErrorKind, error: &(dyn std::error::Error + 'static)) -> ApiError {
        let mut message = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            let text = cause.to_string();
            if !message.contains(&text) {
                message.push_str(": ");
                message.push_str(&text);
            }
            source = cause.source();
        }
        ApiError::new(kind, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.kind.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&ErrorResponse::new(self.message)).unwrap_or_default();
        (
            status,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response()
    }
}

macro_rules! from_kinded {
    ($($t:ty),* $(,)?) => {$(
        impl From<$t> for ApiError {
            fn from(error: $t) -> ApiError {
                ApiError::from_error(error.kind(), &error)
            }
        }
    )*};
}

from_kinded!(
    berth_engine::EngineError,
    berth_engine::image::ImageError,
    berth_engine::container::ContainerError,
    berth_engine::attach::AttachError,
    berth_engine::exec::ExecError,
    berth_engine::stats::StatsError,
    berth_engine::top::TopError,
    berth_engine::spec::SpecError,
    berth_engine::logs::LogError,
    berth_engine::events::EventsError,
    berth_engine::volume::VolumeError,
    berth_api::FiltersError,
    berth_api::VersionError,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_message_carries_the_source_chain() {
        let io = std::io::Error::from_raw_os_error(libc_enospc());
        #[derive(Debug, thiserror::Error)]
        #[error("writing the log")]
        struct Outer(#[source] std::io::Error);
        let err = ApiError::from_error(ErrorKind::Internal, &Outer(io));
        assert!(
            err.message.starts_with("writing the log: "),
            "{}",
            err.message
        );
        assert!(err.message.contains("No space left"), "{}", err.message);
    }

    fn libc_enospc() -> i32 {
        28
    }
}
