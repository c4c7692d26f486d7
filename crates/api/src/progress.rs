//! The JSON message stream of pull, push, load, import and build (Go's
//! `jsonmessage.JSONMessage`): one object per line, lowercase names.

use serde::{Deserialize, Serialize};

use crate::json::{is_false, is_zero, nullable};

/// `progressDetail`: bytes done and total of one layer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgressDetail {
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub current: i64,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub total: i64,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub start: i64,
    #[serde(
        rename = "hidecounts",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_false"
    )]
    pub hide_counts: bool,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub units: String,
}

/// `errorDetail`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub code: i64,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub message: String,
}

/// One line of a progress stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonMessage {
    /// Build output.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub stream: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub status: String,
    #[serde(
        rename = "progressDetail",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub progress_detail: Option<ProgressDetail>,
    /// Pre-rendered progress bar, deprecated but still sent by Docker 28.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub progress: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub id: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub from: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub time: i64,
    #[serde(
        rename = "timeNano",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub time_nano: i64,
    #[serde(
        rename = "errorDetail",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub error_detail: Option<ErrorDetail>,
    /// Deprecated mirror of `errorDetail.message`; the CLI still prints it.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub error: String,
    /// Typed side data, e.g. `{"ID": "sha256:..."}` after a build or the push digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aux: Option<serde_json::Value>,
}

impl JsonMessage {
    pub fn status(status: impl Into<String>) -> Self {
        JsonMessage {
            status: status.into(),
            ..Self::default()
        }
    }

    /// A layer status such as `Downloading` with its byte counts.
    pub fn layer_progress(id: &str, status: &str, current: i64, total: i64) -> Self {
        JsonMessage {
            status: status.to_string(),
            id: id.to_string(),
            progress_detail: Some(ProgressDetail {
                current,
                total,
                ..ProgressDetail::default()
            }),
            ..Self::default()
        }
    }

    /// A terminal error line: both `errorDetail` and the legacy `error` are written.
    pub fn error(message: impl Into<String>) -> Self {
        let message = message.into();
        JsonMessage {
            error_detail: Some(ErrorDetail {
                code: 0,
                message: message.clone(),
            }),
            error: message,
            ..Self::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_lines_serialise_like_docker() {
        let cases = [
            (
                JsonMessage::status("Pulling from library/busybox").with_id("latest"),
                r#"{"status":"Pulling from library/busybox","id":"latest"}"#,
            ),
            (
                JsonMessage::layer_progress("a46fbb00284b", "Downloading", 1024, 2048),
                r#"{"status":"Downloading","progressDetail":{"current":1024,"total":2048},"id":"a46fbb00284b"}"#,
            ),
            (
                JsonMessage::layer_progress("a46fbb00284b", "Pull complete", 0, 0),
                r#"{"status":"Pull complete","progressDetail":{},"id":"a46fbb00284b"}"#,
            ),
            (
                JsonMessage::error("manifest unknown"),
                r#"{"errorDetail":{"message":"manifest unknown"},"error":"manifest unknown"}"#,
            ),
        ];
        for (message, expected) in cases {
            assert_eq!(serde_json::to_string(&message).expect("encode"), expected);
            let back: JsonMessage = serde_json::from_str(expected).expect("decode");
            assert_eq!(back, message);
        }
    }

    #[test]
    fn aux_is_kept_verbatim() {
        let line = r#"{"aux":{"ID":"sha256:0123"}}"#;
        let message: JsonMessage = serde_json::from_str(line).expect("decode");
        assert_eq!(serde_json::to_string(&message).expect("encode"), line);
    }

    impl JsonMessage {
        fn with_id(mut self, id: &str) -> Self {
            self.id = id.to_string();
            self
        }
    }
}
