//! A blocking client of one shim's socket, for berthd (from `spawn_blocking`) and tests.
//!
//! Every call opens its own connection, so a `Wait` never blocks other calls, and a client
//! made after berthd restarted works exactly like the first one.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use crate::protocol::{
    decode, encode, ErrorKind, ExitStatus, Frame, FrameError, ProcessId, ProcessState, Request,
    Response, PROTOCOL_VERSION,
};

/// Failures talking to a shim.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("connecting to shim socket {path}")]
    Connect {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("talking to the shim")]
    Io(#[from] std::io::Error),
    #[error("bad frame from the shim")]
    Frame(#[from] FrameError),
    #[error("the shim closed the connection without answering")]
    Closed,
    #[error("shim speaks protocol {got}, this client speaks {want}")]
    Version { got: u32, want: u32 },
    #[error("unexpected answer from the shim: {0}")]
    Unexpected(String),
    #[error("{message}")]
    Shim { kind: ErrorKind, message: String },
}

impl ClientError {
    /// The error kind, for mapping to API status codes.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ClientError::Shim { kind, .. } => *kind,
            ClientError::Connect { .. } | ClientError::Closed => ErrorKind::Unavailable,
            _ => ErrorKind::Internal,
        }
    }
}

/// What the shim said about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShimInfo {
    pub shim_pid: u32,
    pub container_id: String,
}

/// A shim, addressed by its socket.
#[derive(Debug, Clone)]
pub struct Client {
    socket: PathBuf,
}

impl Client {
    /// Checks the shim answers with our protocol version.
    pub fn connect(socket: &Path) -> Result<(Client, ShimInfo), ClientError> {
        let client = Client {
            socket: socket.to_path_buf(),
        };
        match client.call(&Request::Version)? {
            Response::Version {
                protocol,
                shim_pid,
                container_id,
            } => {
                if protocol != PROTOCOL_VERSION {
                    return Err(ClientError::Version {
                        got: protocol,
                        want: PROTOCOL_VERSION,
                    });
                }
                Ok((
                    client,
                    ShimInfo {
                        shim_pid,
                        container_id,
                    },
                ))
            }
            other => Err(unexpected(other)),
        }
    }

    fn open(&self) -> Result<UnixStream, ClientError> {
        UnixStream::connect(&self.socket).map_err(|source| ClientError::Connect {
            path: self.socket.clone(),
            source,
        })
    }

    /// Sends one request and reads its answer; shim errors become [`ClientError::Shim`].
    pub fn call(&self, request: &Request) -> Result<Response, ClientError> {
        let mut stream = self.open()?;
        let mut reader = FrameReader::default();
        send(&mut stream, &Frame::Request(request.clone()))?;
        match reader.next(&mut stream)? {
            Some(Frame::Response(Response::Error { kind, message })) => {
                Err(ClientError::Shim { kind, message })
            }
            Some(Frame::Response(response)) => Ok(response),
            Some(other) => Err(ClientError::Unexpected(format!("{other:?}"))),
            None => Err(ClientError::Closed),
        }
    }

    fn call_ok(&self, request: &Request) -> Result<(), ClientError> {
        match self.call(request)? {
            Response::Ok => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    pub fn start(&self) -> Result<(), ClientError> {
        self.call_ok(&Request::Start)
    }

    pub fn state(&self, exec: ProcessId) -> Result<ProcessState, ClientError> {
        match self.call(&Request::State { exec })? {
            Response::State(state) => Ok(state),
            other => Err(unexpected(other)),
        }
    }

    /// Blocks until the process exited and its output drained.
    pub fn wait(&self, exec: ProcessId) -> Result<ExitStatus, ClientError> {
        match self.call(&Request::Wait { exec })? {
            Response::Exited(exit) => Ok(exit),
            other => Err(unexpected(other)),
        }
    }

    pub fn kill(&self, exec: ProcessId, signal: i32, all: bool) -> Result<(), ClientError> {
        self.call_ok(&Request::Kill { exec, signal, all })
    }

    /// Registers exec `id` with an OCI Process object.
    pub fn exec(
        &self,
        id: &str,
        process: serde_json::Value,
        stdin: bool,
    ) -> Result<(), ClientError> {
        self.call_ok(&Request::Exec {
            id: id.to_string(),
            process,
            stdin,
        })
    }

    pub fn exec_start(&self, id: &str) -> Result<(), ClientError> {
        self.call_ok(&Request::ExecStart { id: id.to_string() })
    }

    pub fn resize(&self, exec: ProcessId, rows: u16, cols: u16) -> Result<(), ClientError> {
        self.call_ok(&Request::Resize { exec, rows, cols })
    }

    pub fn close_stdin(&self, exec: ProcessId) -> Result<(), ClientError> {
        self.call_ok(&Request::CloseStdin { exec })
    }

    /// Deletes the container through the runtime; the shim then exits.
    pub fn delete(&self, force: bool) -> Result<(), ClientError> {
        self.call_ok(&Request::Delete { force })
    }

    pub fn shutdown(&self) -> Result<(), ClientError> {
        self.call_ok(&Request::Shutdown)
    }

    /// Attaches to the init (`None`) or an exec; output produced from now on is streamed.
    pub fn attach(&self, exec: ProcessId, stdin: bool) -> Result<Attach, ClientError> {
        let mut stream = self.open()?;
        let mut reader = FrameReader::default();
        send(
            &mut stream,
            &Frame::Request(Request::Attach { exec, stdin }),
        )?;
        match reader.next(&mut stream)? {
            Some(Frame::Response(Response::Ok)) => Ok(Attach { stream, reader }),
            Some(Frame::Response(Response::Error { kind, message })) => {
                Err(ClientError::Shim { kind, message })
            }
            Some(other) => Err(ClientError::Unexpected(format!("{other:?}"))),
            None => Err(ClientError::Closed),
        }
    }
}

fn unexpected(response: Response) -> ClientError {
    ClientError::Unexpected(format!("{response:?}"))
}

fn send(stream: &mut UnixStream, frame: &Frame) -> Result<(), ClientError> {
    let mut buf = Vec::new();
    encode(frame, &mut buf);
    stream.write_all(&buf)?;
    Ok(())
}

/// One event of an attach stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttachEvent {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    Exit(ExitStatus),
}

/// An attach connection: read events, write stdin.
pub struct Attach {
    stream: UnixStream,
    reader: FrameReader,
}

impl Attach {
    /// The next event; `None` once the shim closed the stream (after `Exit`).
    pub fn next_event(&mut self) -> Result<Option<AttachEvent>, ClientError> {
        match self.reader.next(&mut self.stream)? {
            None => Ok(None),
            Some(Frame::Stdout(data)) => Ok(Some(AttachEvent::Stdout(data))),
            Some(Frame::Stderr(data)) => Ok(Some(AttachEvent::Stderr(data))),
            Some(Frame::Exit(exit)) => Ok(Some(AttachEvent::Exit(exit))),
            Some(other) => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }

    /// A second handle writing stdin (for another thread).
    pub fn stdin(&self) -> Result<AttachStdin, ClientError> {
        Ok(AttachStdin {
            stream: self.stream.try_clone()?,
        })
    }
}

/// The stdin half of an attach connection.
pub struct AttachStdin {
    stream: UnixStream,
}

impl AttachStdin {
    pub fn write(&mut self, data: &[u8]) -> Result<(), ClientError> {
        for chunk in data.chunks(crate::protocol::MAX_CHUNK) {
            send(&mut self.stream, &Frame::Stdin(chunk.to_vec()))?;
        }
        Ok(())
    }

    /// Closes the process's stdin (the connection stays open for output).
    pub fn close(&mut self) -> Result<(), ClientError> {
        send(&mut self.stream, &Frame::CloseStdin)
    }
}

/// Buffers socket bytes into frames.
#[derive(Default)]
struct FrameReader {
    buf: Vec<u8>,
}

impl FrameReader {
    fn next(&mut self, stream: &mut UnixStream) -> Result<Option<Frame>, ClientError> {
        loop {
            if let Some((frame, used)) = decode(&self.buf)? {
                self.buf.drain(..used);
                return Ok(Some(frame));
            }
            let mut chunk = [0u8; 64 * 1024];
            let n = stream.read(&mut chunk)?;
            if n == 0 {
                return Ok(None);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}
