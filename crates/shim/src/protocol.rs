//! The shim wire protocol: length-prefixed frames, request/response messages, stream frames.
//!
//! A frame is `u32 big-endian length` + `u8 kind` + payload, where the length counts the kind
//! byte and the payload and never exceeds [`MAX_FRAME`]. Control messages (requests,
//! responses, exit notices) are JSON: they are small, rare, easy to debug with `socat`, and
//! serde_json is already in every berth binary. Stream data (stdout, stderr, stdin) is raw
//! bytes: it is the hot path and JSON would need base64. The decoder checks the length before
//! allocating anything, so a hostile length costs nothing.

use serde::{Deserialize, Serialize};

/// Protocol version; a client refuses a shim whose major version differs.
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest frame (kind byte + payload) either side accepts.
pub const MAX_FRAME: usize = 1 << 20;

/// Largest stream chunk put in one frame (leaves room for the kind byte).
pub const MAX_CHUNK: usize = 64 * 1024;

const KIND_REQUEST: u8 = 1;
const KIND_RESPONSE: u8 = 2;
const KIND_STDOUT: u8 = 3;
const KIND_STDERR: u8 = 4;
const KIND_STDIN: u8 = 5;
const KIND_CLOSE_STDIN: u8 = 6;
const KIND_EXIT: u8 = 7;

/// Malformed or oversized frames.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("frame of {length} bytes exceeds the {max} byte limit")]
    TooLarge { length: usize, max: usize },
    #[error("empty frame (no kind byte)")]
    Empty,
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    #[error("invalid {what} json: {message}")]
    Json { what: &'static str, message: String },
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Request(Request),
    Response(Response),
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    Stdin(Vec<u8>),
    CloseStdin,
    /// Sent to attached clients once the attached process exited and its output is drained.
    Exit(ExitStatus),
}

/// Which process of the container a request is about: the init (`None`) or an exec by id.
pub type ProcessId = Option<String>;

/// Requests a client sends (one per connection, except on attach connections).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    Version,
    /// `runtime start` of the created container.
    Start,
    /// Pid, status and exit of the init or an exec.
    State {
        #[serde(default)]
        exec: ProcessId,
    },
    /// Sends a signal; `all` signals every process of the container (runtime `kill --all`).
    Kill {
        #[serde(default)]
        exec: ProcessId,
        signal: i32,
        #[serde(default)]
        all: bool,
    },
    /// Answers once the process exited (at once if it already has).
    Wait {
        #[serde(default)]
        exec: ProcessId,
    },
    /// Registers an exec; `process` is an OCI runtime-spec Process object.
    Exec {
        id: String,
        process: serde_json::Value,
        #[serde(default)]
        stdin: bool,
    },
    ExecStart {
        id: String,
    },
    Resize {
        #[serde(default)]
        exec: ProcessId,
        rows: u16,
        cols: u16,
    },
    /// Turns the connection into a stream (see the crate docs).
    Attach {
        #[serde(default)]
        exec: ProcessId,
        #[serde(default)]
        stdin: bool,
    },
    CloseStdin {
        #[serde(default)]
        exec: ProcessId,
    },
    /// `runtime delete` (`--force` when asked), then the shim exits.
    Delete {
        #[serde(default)]
        force: bool,
    },
    /// The shim exits without deleting (refused while the container runs).
    Shutdown,
}

/// Error kinds, mapped to API status codes by berthd in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    NotFound,
    Conflict,
    InvalidArgument,
    Unavailable,
    Internal,
}

/// Lifecycle of a process as the shim sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Created,
    Running,
    Stopped,
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitStatus {
    /// Exit code, or 128 + signal number for a killed process (Docker's convention).
    pub code: i32,
    /// Exit time in nanoseconds since the Unix epoch.
    #[serde(default)]
    pub exited_at_unix_nanos: u64,
}

/// State of the init or an exec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessState {
    pub pid: u32,
    pub status: Status,
    pub exit: Option<ExitStatus>,
}

/// Responses; `Error` carries a kind and lowercase text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Response {
    Version {
        protocol: u32,
        shim_pid: u32,
        container_id: String,
    },
    Ok,
    State(ProcessState),
    Exited(ExitStatus),
    Error {
        kind: ErrorKind,
        message: String,
    },
}

impl Response {
    /// An error response.
    pub fn error(kind: ErrorKind, message: impl Into<String>) -> Response {
        Response::Error {
            kind,
            message: message.into(),
        }
    }
}

/// Appends the encoding of `frame` to `out`.
pub fn encode(frame: &Frame, out: &mut Vec<u8>) {
    let (kind, body): (u8, Vec<u8>) = match frame {
        Frame::Request(r) => (KIND_REQUEST, json(r)),
        Frame::Response(r) => (KIND_RESPONSE, json(r)),
        Frame::Exit(e) => (KIND_EXIT, json(e)),
        Frame::Stdout(b) => return encode_raw(KIND_STDOUT, b, out),
        Frame::Stderr(b) => return encode_raw(KIND_STDERR, b, out),
        Frame::Stdin(b) => return encode_raw(KIND_STDIN, b, out),
        Frame::CloseStdin => (KIND_CLOSE_STDIN, Vec::new()),
    };
    encode_raw(kind, &body, out);
}

/// Appends a stream frame for stdout (`stderr == false`) or stderr without building a [`Frame`].
pub fn encode_stream(stderr: bool, data: &[u8], out: &mut Vec<u8>) {
    for chunk in data.chunks(MAX_CHUNK) {
        encode_raw(if stderr { KIND_STDERR } else { KIND_STDOUT }, chunk, out);
    }
}

fn json<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising these plain enums and structs cannot fail (no maps with non-string keys).
    serde_json::to_vec(value).unwrap_or_default()
}

fn encode_raw(kind: u8, body: &[u8], out: &mut Vec<u8>) {
    let length = u32::try_from(body.len() + 1).unwrap_or(u32::MAX);
    out.extend_from_slice(&length.to_be_bytes());
    out.push(kind);
    out.extend_from_slice(body);
}

/// Decodes one frame from the front of `buf`: `Ok(None)` when more bytes are needed,
/// otherwise the frame and how many bytes it used. Never allocates more than the frame.
pub fn decode(buf: &[u8]) -> Result<Option<(Frame, usize)>, FrameError> {
    let Some(header) = buf.get(..4) else {
        return Ok(None);
    };
    let length = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
    if length > MAX_FRAME {
        return Err(FrameError::TooLarge {
            length,
            max: MAX_FRAME,
        });
    }
    if length == 0 {
        return Err(FrameError::Empty);
    }
    let Some(body) = buf.get(4..4 + length) else {
        return Ok(None);
    };
    let payload = &body[1..];
    let frame = match body[0] {
        KIND_REQUEST => Frame::Request(parse(payload, "request")?),
        KIND_RESPONSE => Frame::Response(parse(payload, "response")?),
        KIND_EXIT => Frame::Exit(parse(payload, "exit")?),
        KIND_STDOUT => Frame::Stdout(payload.to_vec()),
        KIND_STDERR => Frame::Stderr(payload.to_vec()),
        KIND_STDIN => Frame::Stdin(payload.to_vec()),
        KIND_CLOSE_STDIN => Frame::CloseStdin,
        other => return Err(FrameError::UnknownKind(other)),
    };
    Ok(Some((frame, 4 + length)))
}

fn parse<T: for<'de> Deserialize<'de>>(
    payload: &[u8],
    what: &'static str,
) -> Result<T, FrameError> {
    serde_json::from_slice(payload).map_err(|e| FrameError::Json {
        what,
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(frame: Frame) {
        let mut buf = Vec::new();
        encode(&frame, &mut buf);
        let (back, used) = decode(&buf).expect("decodes").expect("complete");
        assert_eq!(back, frame);
        assert_eq!(used, buf.len());
    }

    #[test]
    fn every_frame_kind_round_trips() {
        round_trip(Frame::Request(Request::Version));
        round_trip(Frame::Request(Request::Kill {
            exec: Some("e1".into()),
            signal: 9,
            all: true,
        }));
        round_trip(Frame::Request(Request::Exec {
            id: "e1".into(),
            process: serde_json::json!({"args": ["sh"], "terminal": false}),
            stdin: true,
        }));
        round_trip(Frame::Request(Request::Resize {
            exec: None,
            rows: 24,
            cols: 80,
        }));
        round_trip(Frame::Response(Response::State(ProcessState {
            pid: 42,
            status: Status::Stopped,
            exit: Some(ExitStatus {
                code: 137,
                exited_at_unix_nanos: 1_700_000_000_123_456_789,
            }),
        })));
        round_trip(Frame::Response(Response::error(
            ErrorKind::NotFound,
            "no such exec: x",
        )));
        round_trip(Frame::Stdout(b"hello\n".to_vec()));
        round_trip(Frame::Stderr(vec![0, 255, 10]));
        round_trip(Frame::Stdin(Vec::new()));
        round_trip(Frame::CloseStdin);
        round_trip(Frame::Exit(ExitStatus {
            code: 3,
            exited_at_unix_nanos: 5,
        }));
    }

    #[test]
    fn truncated_frames_ask_for_more_bytes() {
        let mut buf = Vec::new();
        encode(&Frame::Request(Request::State { exec: None }), &mut buf);
        for cut in 0..buf.len() {
            assert_eq!(decode(&buf[..cut]), Ok(None), "cut at {cut}");
        }
    }

    #[test]
    fn two_frames_in_one_buffer_decode_in_order() {
        let mut buf = Vec::new();
        encode(&Frame::Stdin(b"a".to_vec()), &mut buf);
        encode(&Frame::CloseStdin, &mut buf);
        let (first, used) = decode(&buf).expect("ok").expect("complete");
        assert_eq!(first, Frame::Stdin(b"a".to_vec()));
        let (second, _) = decode(&buf[used..]).expect("ok").expect("complete");
        assert_eq!(second, Frame::CloseStdin);
    }

    #[test]
    fn oversize_length_is_rejected_before_reading_the_body() {
        let buf = [0xff, 0xff, 0xff, 0xff, KIND_STDOUT];
        let err = decode(&buf).expect_err("too large");
        assert_eq!(
            err,
            FrameError::TooLarge {
                length: u32::MAX as usize,
                max: MAX_FRAME
            }
        );
        assert!(err.to_string().contains("exceeds"));
    }

    #[test]
    fn zero_length_unknown_kind_and_bad_json_are_errors() {
        assert_eq!(decode(&[0, 0, 0, 0]), Err(FrameError::Empty));
        assert_eq!(decode(&[0, 0, 0, 1, 99]), Err(FrameError::UnknownKind(99)));
        let mut bad = vec![0, 0, 0, 3, KIND_REQUEST];
        bad.extend_from_slice(b"{]");
        assert!(matches!(
            decode(&bad),
            Err(FrameError::Json {
                what: "request",
                ..
            })
        ));
        let mut unknown = Vec::new();
        let body = br#"{"type":"explode"}"#;
        unknown.extend_from_slice(&(body.len() as u32 + 1).to_be_bytes());
        unknown.push(KIND_REQUEST);
        unknown.extend_from_slice(body);
        assert!(decode(&unknown).is_err());
    }

    #[test]
    fn large_stream_data_is_split_into_bounded_frames() {
        let data = vec![7u8; MAX_CHUNK * 2 + 5];
        let mut buf = Vec::new();
        encode_stream(true, &data, &mut buf);
        let mut offset = 0;
        let mut got = Vec::new();
        while let Some((frame, used)) = decode(&buf[offset..]).expect("ok") {
            match frame {
                Frame::Stderr(chunk) => {
                    assert!(chunk.len() <= MAX_CHUNK);
                    got.extend(chunk);
                }
                other => panic!("unexpected {other:?}"),
            }
            offset += used;
        }
        assert_eq!(got, data);
    }

    #[test]
    fn request_json_is_stable_for_other_clients() {
        let text = serde_json::to_string(&Request::Wait {
            exec: Some("e".into()),
        })
        .expect("json");
        assert_eq!(text, r#"{"type":"wait","exec":"e"}"#);
        let parsed: Request = serde_json::from_str(r#"{"type":"state"}"#).expect("defaults");
        assert_eq!(parsed, Request::State { exec: None });
    }
}
