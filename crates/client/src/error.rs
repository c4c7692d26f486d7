//! Client errors: transport failures and the daemon's error answers (status plus Docker's
//! `message`), worded as the docker CLI prints them.

use berth_api::ErrorKind;

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The socket could not be reached (docker's "Cannot connect" text).
    #[error("Cannot connect to the Docker daemon at {host}. Is the docker daemon running?")]
    Connect {
        host: String,
        #[source]
        source: std::io::Error,
    },
    /// The daemon answered with an error status.
    #[error("Error response from daemon: {message}")]
    Api { status: u16, message: String },
    #[error("http: {0}")]
    Http(#[from] hyper::Error),
    #[error("building request: {0}")]
    Request(#[from] hyper::http::Error),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("decoding the daemon's answer to {path}: {source}")]
    Decode {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("encoding the request to {path}: {source}")]
    Encode {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("the daemon did not switch protocols for {path} (status {status})")]
    NoUpgrade { path: String, status: u16 },
    #[error("{0}")]
    Host(#[from] crate::host::HostError),
    /// A multiplexed stream carried an unknown stream byte.
    #[error("{0}")]
    Frame(#[from] berth_api::stream::FrameError),
    /// The daemon ended a stream with a system error frame.
    #[error("{0}")]
    Stream(String),
}

impl ClientError {
    /// The HTTP status of a daemon error, if this is one.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The error kind of a daemon error (`Internal` for anything else).
    pub fn kind(&self) -> ErrorKind {
        self.status()
            .map(ErrorKind::from_status)
            .unwrap_or(ErrorKind::Internal)
    }

    /// True for a 404 from the daemon.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// The daemon's message without the "Error response from daemon" prefix.
    pub fn message(&self) -> String {
        match self {
            ClientError::Api { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }

    /// Builds the API error of a non-success answer from its body: Docker's
    /// `{"message": ...}`, or the text itself when the body is not that JSON.
    pub fn from_body(status: u16, body: &[u8]) -> ClientError {
        let message = match serde_json::from_slice::<berth_api::ErrorResponse>(body) {
            Ok(response) => response.message,
            Err(_) => {
                let text = String::from_utf8_lossy(body).trim().to_string();
                if text.is_empty() {
                    format!("{} {}", status, reason(status))
                } else {
                    text
                }
            }
        };
        ClientError::Api { status, message }
    }
}

fn reason(status: u16) -> &'static str {
    hyper::StatusCode::from_u16(status)
        .ok()
        .and_then(|code| code.canonical_reason())
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_errors_carry_dockers_message_and_status() {
        let err = ClientError::from_body(404, br#"{"message":"No such container: x"}"#);
        assert_eq!(
            err.to_string(),
            "Error response from daemon: No such container: x"
        );
        assert_eq!(err.status(), Some(404));
        assert!(err.is_not_found());
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert_eq!(err.message(), "No such container: x");
        let plain = ClientError::from_body(500, b"boom\n");
        assert_eq!(plain.message(), "boom");
        let empty = ClientError::from_body(409, b"");
        assert_eq!(empty.message(), "409 Conflict");
    }
}
