//! Rendering the JSON message streams of pull, push, load and import as the docker CLI
//! does on a non-terminal (`jsonmessage.DisplayJSONMessagesStream`): status lines, layer
//! ids, no progress bars, and the stream's error as the command's failure.

use berth_api::progress::JsonMessage;
use berth_client::Response;
use std::io::Write;

use crate::app::StatusError;

/// Formats one message; `None` when docker prints nothing for it on a non-terminal.
pub fn render(message: &JsonMessage) -> Option<String> {
    if let Some(detail) = &message.progress_detail {
        if detail.current > 0 || detail.total > 0 {
            // A progress bar: only terminals get it.
            return None;
        }
    }
    let mut line = String::new();
    if message.time_nano != 0 {
        let seconds = message.time_nano.div_euclid(1_000_000_000);
        let nanos = message.time_nano.rem_euclid(1_000_000_000) as u32;
        line.push_str(&format!("{} ", rfc3339_nano_fixed(seconds, nanos)));
    } else if message.time != 0 {
        line.push_str(&format!("{} ", rfc3339_nano_fixed(message.time, 0)));
    }
    if !message.id.is_empty() {
        line.push_str(&format!("{}: ", message.id));
    }
    if !message.from.is_empty() {
        line.push_str(&format!("(from {}) ", message.from));
    }
    if !message.progress.is_empty() {
        line.push_str(&format!("{} {}", message.status, message.progress));
    } else if !message.stream.is_empty() {
        line.push_str(&message.stream);
    } else {
        line.push_str(&message.status);
        line.push('\n');
    }
    Some(line)
}

/// Go's `RFC3339NanoFixed`: always nine fraction digits.
fn rfc3339_nano_fixed(seconds: i64, nanos: u32) -> String {
    let text = crate::format::time::rfc3339_nano(seconds, 0);
    let base = text.trim_end_matches('Z');
    format!("{base}.{nanos:09}Z")
}

/// Reads a message stream to its end, printing each message (unless `quiet`) and
/// collecting `aux` values. The stream's error message fails the command, as in docker.
pub async fn display(
    response: &mut Response,
    quiet: bool,
) -> anyhow::Result<Vec<serde_json::Value>> {
    display_to(response, quiet, false).await
}

/// [`display`] onto stderr when `to_stderr` (docker run shows its implicit pull there).
pub async fn display_to(
    response: &mut Response,
    quiet: bool,
    to_stderr: bool,
) -> anyhow::Result<Vec<serde_json::Value>> {
    let mut aux = Vec::new();
    while let Some(message) = response.json_line::<JsonMessage>().await? {
        if let Some(detail) = &message.error_detail {
            let text = if detail.message.is_empty() {
                message.error.clone()
            } else {
                detail.message.clone()
            };
            return Err(StatusError::new(1, text).into());
        }
        if !message.error.is_empty() {
            return Err(StatusError::new(1, message.error.clone()).into());
        }
        if let Some(value) = &message.aux {
            aux.push(value.clone());
            continue;
        }
        if quiet {
            continue;
        }
        if let Some(line) = render(&message) {
            if to_stderr {
                let mut err = std::io::stderr().lock();
                err.write_all(line.as_bytes())?;
                err.flush()?;
            } else {
                let mut out = std::io::stdout().lock();
                out.write_all(line.as_bytes())?;
                out.flush()?;
            }
        }
    }
    Ok(aux)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(json: &str) -> Option<String> {
        render(&serde_json::from_str(json).expect("json"))
    }

    #[test]
    fn non_terminal_rendering_matches_docker() {
        assert_eq!(
            line(r#"{"status":"Pulling from library/busybox","id":"latest"}"#).as_deref(),
            Some("latest: Pulling from library/busybox\n")
        );
        assert_eq!(
            line(
                r#"{"status":"Downloading","progressDetail":{"current":10,"total":20},"progress":"[==>  ]","id":"abc"}"#
            ),
            None
        );
        assert_eq!(
            line(r#"{"status":"Pull complete","progressDetail":{},"id":"abc"}"#).as_deref(),
            Some("abc: Pull complete\n")
        );
        assert_eq!(
            line(r#"{"stream":"Loaded image: busybox:latest\n"}"#).as_deref(),
            Some("Loaded image: busybox:latest\n")
        );
        assert_eq!(
            line(r#"{"status":"sha256:abc"}"#).as_deref(),
            Some("sha256:abc\n")
        );
    }
}
