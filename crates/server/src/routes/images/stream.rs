//! Plumbing of the image routes: repeated query parameters, request bodies read by
//! blocking code, response bodies written by blocking code, and Docker's JSON progress
//! streams (an error before the first line is an HTTP error, after it a stream line).

use std::io::{self, Read, Write};

use axum::body::{Body, Bytes};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_api::progress::JsonMessage;
use berth_engine::image::ImageError;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::error::ApiError;

/// The query string as Docker's `r.Form`: every pair, in order, percent-decoded.
#[derive(Debug, Default, Clone)]
pub struct Query(Vec<(String, String)>);

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Query {
    pub fn parse(raw: Option<String>) -> Query {
        let raw = raw.unwrap_or_default();
        Query(
            raw.split('&')
                .filter(|p| !p.is_empty())
                .map(|pair| match pair.split_once('=') {
                    Some((k, v)) => (decode(k), decode(v)),
                    None => (decode(pair), String::new()),
                })
                .collect(),
        )
    }

    /// The first value of `key` (empty when absent).
    pub fn get(&self, key: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map_or("", |(_, v)| v.as_str())
    }

    pub fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Docker's `httputils.BoolValue`.
    pub fn bool(&self, key: &str) -> bool {
        let v = self.get(key).trim().to_ascii_lowercase();
        !matches!(v.as_str(), "" | "0" | "no" | "false" | "none")
    }
}

/// A request body as a blocking `Read` (for the archive readers in `spawn_blocking`).
pub struct BodyReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
}

impl BodyReader {
    pub fn new(body: Body) -> BodyReader {
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(async move {
            let mut stream = body.into_data_stream();
            while let Some(chunk) = stream.next().await {
                let failed = chunk.is_err();
                if tx.send(chunk.map_err(io::Error::other)).await.is_err() || failed {
                    break;
                }
            }
        });
        BodyReader {
            rx,
            current: Bytes::new(),
        }
    }
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.current = chunk?,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// A response body written by blocking code, in chunks of at most 64 KiB.
pub struct BodyWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buffer: Vec<u8>,
}

const CHUNK: usize = 64 * 1024;

impl BodyWriter {
    /// The writer and the body it feeds.
    pub fn new() -> (BodyWriter, Body) {
        let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(8);
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        (
            BodyWriter {
                tx,
                buffer: Vec::with_capacity(CHUNK),
            },
            Body::from_stream(stream),
        )
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buffer,
            Vec::with_capacity(CHUNK),
        ));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }

    /// A handle that can end the body with an error after the writer is gone (the
    /// connection is then aborted, so a client never takes a cut tar for a whole one).
    pub fn failer(&self) -> mpsc::Sender<io::Result<Bytes>> {
        self.tx.clone()
    }
}

impl Write for BodyWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(buf);
        if self.buffer.len() >= CHUNK {
            self.send()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

impl Drop for BodyWriter {
    fn drop(&mut self) {
        let _ = self.send();
    }
}

/// One line of a Docker progress stream (Go's streamformatter ends lines with CRLF).
pub fn line(message: &JsonMessage) -> Bytes {
    let mut bytes = serde_json::to_vec(message).unwrap_or_default();
    bytes.extend_from_slice(b"\r\n");
    Bytes::from(bytes)
}

/// Streams `rx` as JSON lines while `task` runs. An error before the first line becomes
/// the HTTP response (as Docker's write-flusher has not sent headers yet); later errors
/// end the stream with an `errorDetail` line.
pub async fn progress(
    rx: mpsc::UnboundedReceiver<JsonMessage>,
    task: JoinHandle<Result<(), ImageError>>,
) -> Response {
    stream_progress(rx, task, false).await
}

/// As [`progress`]; with `errors_in_stream` even an early error is a stream line (Docker's
/// `POST /images/load` always answers 200 and reports failures inside the stream).
pub async fn stream_progress(
    mut rx: mpsc::UnboundedReceiver<JsonMessage>,
    task: JoinHandle<Result<(), ImageError>>,
    errors_in_stream: bool,
) -> Response {
    let first = match rx.recv().await {
        Some(first) => first,
        None => {
            return match task.await {
                Ok(Ok(())) => json_stream_response(Body::empty()),
                Ok(Err(e)) if errors_in_stream => json_stream_response(Body::from(line(
                    &JsonMessage::error(ApiError::from(e).message),
                ))),
                Ok(Err(e)) => ApiError::from(e).into_response(),
                Err(e) => {
                    ApiError::new(berth_api::ErrorKind::Internal, e.to_string()).into_response()
                }
            }
        }
    };
    struct State {
        first: Option<JsonMessage>,
        rx: mpsc::UnboundedReceiver<JsonMessage>,
        task: Option<JoinHandle<Result<(), ImageError>>>,
    }
    let state = State {
        first: Some(first),
        rx,
        task: Some(task),
    };
    let stream = futures_util::stream::unfold(state, |mut state| async move {
        if let Some(first) = state.first.take() {
            return Some((Ok::<_, io::Error>(line(&first)), state));
        }
        if let Some(message) = state.rx.recv().await {
            return Some((Ok(line(&message)), state));
        }
        let task = state.task.take()?;
        let error = match task.await {
            Ok(Ok(())) => return None,
            Ok(Err(e)) => ApiError::from(e).message,
            Err(e) => e.to_string(),
        };
        Some((Ok(line(&JsonMessage::error(error))), state))
    });
    json_stream_response(Body::from_stream(stream))
}

pub fn json_stream_response(body: Body) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_keeps_repeated_keys_and_decodes() {
        let q = Query::parse(Some(
            "fromSrc=-&repo=busybox&changes=CMD%20%5B%22sh%22%5D&changes=ENV+A%3D1&quiet=0".into(),
        ));
        assert_eq!(q.get("repo"), "busybox");
        assert_eq!(q.all("changes"), vec!["CMD [\"sh\"]", "ENV A=1"]);
        assert!(!q.bool("quiet"));
        assert!(!q.bool("missing"));
        assert_eq!(q.get("missing"), "");
    }

    #[test]
    fn progress_lines_end_with_crlf() {
        let bytes = line(&JsonMessage::status("sha256:abc"));
        assert_eq!(&bytes[..], b"{\"status\":\"sha256:abc\"}\r\n");
    }

    #[tokio::test]
    async fn an_error_before_any_line_is_an_http_error() {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            drop(tx);
            Err(ImageError::NotFound("busybox:latest".into()))
        });
        let response = progress(rx, task).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn load_errors_are_always_stream_lines() {
        let (tx, rx) = mpsc::unbounded_channel::<JsonMessage>();
        let task = tokio::spawn(async move {
            drop(tx);
            Err(ImageError::NotFound("x".into()))
        });
        let response = stream_progress(rx, task, true).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        assert_eq!(
            &body[..],
            b"{\"errorDetail\":{\"message\":\"No such image: x\"},\"error\":\"No such image: x\"}\r\n"
        );
    }

    #[tokio::test]
    async fn an_error_after_a_line_ends_the_stream() {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            let _ = tx.send(JsonMessage::status("The push refers to repository [x]"));
            Err(ImageError::NoLocalTag("x".into()))
        });
        let response = progress(rx, task).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        let text = String::from_utf8_lossy(&body);
        assert!(text.starts_with("{\"status\":\"The push refers"), "{text}");
        assert!(
            text.contains("\"error\":\"An image does not exist locally with the tag: x\""),
            "{text}"
        );
    }
}
