//! The byte pump of an attach or exec session: shim attach frames out to the client (8-byte
//! stdcopy frames, or raw bytes for a TTY), client bytes in as shim stdin frames, with
//! Docker's detach keys and half-close rules (moby's `stream.CopyStreams`).

use std::future::poll_fn;
use std::path::Path;
use std::task::{Context, Poll};

use berth_api::stream::{encode_frame_header, StdStream};
use berth_shim::protocol::{decode, encode, ExitStatus, Frame, ProcessId, Request, Response};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UnixStream;

use super::keys::{EscapeScanner, Scan};
use crate::attach::AttachError;

/// How a session treats its streams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayConfig {
    /// The process has a terminal: output is one raw stream and stdin is scanned for the
    /// detach keys.
    pub tty: bool,
    /// Output goes in stdcopy frames (non-TTY sessions).
    pub multiplexed: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// Client bytes are forwarded to the process's stdin.
    pub stdin: bool,
    /// On the client's half-close, close the process's stdin and keep streaming output
    /// (Docker's `CloseStdin` without TTY); otherwise the session ends there.
    pub close_stdin: bool,
    /// Detach sequence (TTY only); empty means Docker's default ctrl-p,ctrl-q.
    pub detach_keys: Vec<u8>,
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayEnd {
    /// The process exited and its output was relayed entirely.
    Exited(ExitStatus),
    /// The client typed the detach keys.
    Detached,
    /// The client went away (or half-closed a session that ends with its stdin).
    ClientClosed,
    /// The shim closed the stream without an exit (it was stopped or deleted).
    ShimClosed,
}

/// The client's end of an attach or exec session. A read of 0 bytes cannot tell a half-close
/// (the docker CLI shuts its write side at once when it sends no stdin, then reads the output)
/// from a client that went away for good; connections that can tell say so here, so that a
/// session on a silent process does not hold its sockets until the process writes again.
pub trait SessionClient: AsyncRead + AsyncWrite + Unpin + Send {
    /// Ready once the peer closed both directions; never ready where that cannot be known.
    fn poll_gone(&mut self, _cx: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }
}

impl SessionClient for tokio::io::DuplexStream {}

impl<T: SessionClient + ?Sized> SessionClient for Box<T> {
    fn poll_gone(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        (**self).poll_gone(cx)
    }
}

/// What the client side of a session did next.
enum ClientEvent {
    Read(std::io::Result<usize>),
    Gone,
}

/// Reads from the client while it still sends; after its half-close, waits for it to be gone.
async fn client_event<C: SessionClient>(
    client: &mut C,
    buf: &mut [u8],
    reading: bool,
) -> ClientEvent {
    if reading {
        ClientEvent::Read(client.read(buf).await)
    } else {
        poll_fn(|cx| client.poll_gone(cx)).await;
        ClientEvent::Gone
    }
}

/// An attach connection to a shim, acknowledged, with any bytes read past the answer.
pub struct ShimAttach {
    stream: UnixStream,
    pending: Vec<u8>,
}

impl ShimAttach {
    /// Connects to the shim at `socket` and attaches to the init (`None`) or an exec; output
    /// the process writes from now on is queued on this connection until relayed.
    pub async fn connect(
        socket: &Path,
        process: ProcessId,
        stdin: bool,
    ) -> Result<ShimAttach, AttachError> {
        let mut stream =
            UnixStream::connect(socket)
                .await
                .map_err(|source| AttachError::ShimConnect {
                    path: socket.to_path_buf(),
                    source,
                })?;
        let mut request = Vec::new();
        encode(
            &Frame::Request(Request::Attach {
                exec: process,
                stdin,
            }),
            &mut request,
        );
        stream
            .write_all(&request)
            .await
            .map_err(AttachError::Shim)?;
        let mut pending = Vec::new();
        loop {
            if let Some((frame, used)) = decode(&pending)? {
                pending.drain(..used);
                return match frame {
                    Frame::Response(Response::Ok) => Ok(ShimAttach { stream, pending }),
                    Frame::Response(Response::Error { kind, message }) => {
                        Err(AttachError::ShimRefused { kind, message })
                    }
                    other => Err(AttachError::ShimProtocol(format!("{other:?}"))),
                };
            }
            if stream
                .read_buf(&mut pending)
                .await
                .map_err(AttachError::Shim)?
                == 0
            {
                return Err(AttachError::ShimProtocol(
                    "the shim closed the attach connection without answering".into(),
                ));
            }
        }
    }
}

/// Appends `data` as the client sees it: a stdcopy frame per chunk, or the raw bytes.
pub fn encode_output(multiplexed: bool, stream: StdStream, data: &[u8], out: &mut Vec<u8>) {
    if !multiplexed {
        out.extend_from_slice(data);
        return;
    }
    for chunk in data.chunks(u32::MAX as usize) {
        out.extend_from_slice(&encode_frame_header(stream, chunk.len() as u32));
        out.extend_from_slice(chunk);
    }
}

/// Pumps bytes between the shim and the client until the process exits, the client detaches
/// or goes away (a read error, or both directions closed after a half-close). The client's write side is left open: the caller records the exit first,
/// then shuts it down, so that an inspect right after the stream ends sees the exit code.
pub async fn relay<C>(
    shim: ShimAttach,
    client: &mut C,
    config: &RelayConfig,
) -> Result<RelayEnd, AttachError>
where
    C: SessionClient,
{
    let ShimAttach {
        stream,
        mut pending,
    } = shim;
    let (mut shim_read, mut shim_write) = stream.into_split();
    let mut scanner = EscapeScanner::new(&config.detach_keys);
    let mut reading_client = true;
    let mut client_buf = vec![0u8; 32 * 1024];
    let mut out = Vec::new();
    loop {
        // Relay every complete frame already buffered.
        while let Some((frame, used)) = decode(&pending)? {
            pending.drain(..used);
            match frame {
                Frame::Stdout(data) if config.stdout => {
                    encode_output(config.multiplexed, StdStream::Stdout, &data, &mut out)
                }
                Frame::Stderr(data) if config.stderr => {
                    encode_output(config.multiplexed, StdStream::Stderr, &data, &mut out)
                }
                Frame::Stdout(_) | Frame::Stderr(_) => {}
                Frame::Exit(exit) => {
                    if write_client(client, &out).await.is_err() {
                        return Ok(RelayEnd::ClientClosed);
                    }
                    return Ok(RelayEnd::Exited(exit));
                }
                other => return Err(AttachError::ShimProtocol(format!("{other:?}"))),
            }
        }
        if !out.is_empty() {
            if write_client(client, &out).await.is_err() {
                return Ok(RelayEnd::ClientClosed);
            }
            out.clear();
        }
        tokio::select! {
            read = shim_read.read_buf(&mut pending) => {
                if read.map_err(AttachError::Shim)? == 0 {
                    return Ok(RelayEnd::ShimClosed);
                }
            }
            event = client_event(client, &mut client_buf, reading_client) => {
                let n = match event {
                    ClientEvent::Read(Ok(n)) => n,
                    ClientEvent::Read(Err(_)) | ClientEvent::Gone => {
                        return Ok(RelayEnd::ClientClosed)
                    }
                };
                if n == 0 {
                    reading_client = false;
                    if !config.stdin {
                        continue;
                    }
                    if config.close_stdin && !config.tty {
                        send_shim(&mut shim_write, &Frame::CloseStdin).await?;
                        continue;
                    }
                    return Ok(RelayEnd::ClientClosed);
                }
                if !config.stdin {
                    continue;
                }
                let input = &client_buf[..n];
                let (forward, detached) = if config.tty {
                    match scanner.scan(input) {
                        Scan::Forward(bytes) => (bytes, false),
                        Scan::Detach(bytes) => (bytes, true),
                    }
                } else {
                    (input.to_vec(), false)
                };
                for chunk in forward.chunks(berth_shim::protocol::MAX_CHUNK) {
                    send_shim(&mut shim_write, &Frame::Stdin(chunk.to_vec())).await?;
                }
                if detached {
                    return Ok(RelayEnd::Detached);
                }
            }
        }
    }
}

async fn write_client<C: AsyncWrite + Unpin>(client: &mut C, bytes: &[u8]) -> std::io::Result<()> {
    if bytes.is_empty() {
        return Ok(());
    }
    client.write_all(bytes).await?;
    client.flush().await
}

async fn send_shim(
    shim: &mut tokio::net::unix::OwnedWriteHalf,
    frame: &Frame,
) -> Result<(), AttachError> {
    let mut buf = Vec::new();
    encode(frame, &mut buf);
    shim.write_all(&buf).await.map_err(AttachError::Shim)
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::stream::split_frames;
    use berth_shim::protocol::encode_stream;
    use tokio::io::duplex;

    /// A fake shim: accepts one attach, answers Ok, then plays `script` and records what the
    /// client sent it.
    struct FakeShim {
        dir: tempfile::TempDir,
        socket: std::path::PathBuf,
    }

    impl FakeShim {
        fn new() -> FakeShim {
            let dir = tempfile::tempdir().expect("tempdir");
            let socket = dir.path().join("shim.sock");
            FakeShim { dir, socket }
        }

        /// Serves one connection: acks the attach, writes `output`, then (if `exit_after_input`)
        /// waits for a CloseStdin frame before sending the exit. Returns the stdin frames seen.
        fn serve(
            &self,
            output: Vec<u8>,
            wait_for_close_stdin: bool,
            exit: Option<i32>,
        ) -> tokio::task::JoinHandle<Vec<Frame>> {
            let listener = tokio::net::UnixListener::bind(&self.socket).expect("bind");
            let _keep = self.dir.path().to_path_buf();
            tokio::spawn(async move {
                let (mut conn, _) = listener.accept().await.expect("accept");
                let mut buf = Vec::new();
                let mut seen = Vec::new();
                // The attach request.
                loop {
                    if let Some((frame, used)) = decode(&buf).expect("frame") {
                        buf.drain(..used);
                        assert!(matches!(frame, Frame::Request(Request::Attach { .. })));
                        break;
                    }
                    conn.read_buf(&mut buf).await.expect("read");
                }
                let mut reply = Vec::new();
                encode(&Frame::Response(Response::Ok), &mut reply);
                reply.extend_from_slice(&output);
                conn.write_all(&reply).await.expect("write");
                if wait_for_close_stdin {
                    'outer: loop {
                        while let Some((frame, used)) = decode(&buf).expect("frame") {
                            buf.drain(..used);
                            let close = frame == Frame::CloseStdin;
                            seen.push(frame);
                            if close {
                                break 'outer;
                            }
                        }
                        if conn.read_buf(&mut buf).await.expect("read") == 0 {
                            break;
                        }
                    }
                }
                if let Some(code) = exit {
                    let mut tail = Vec::new();
                    encode(
                        &Frame::Exit(ExitStatus {
                            code,
                            exited_at_unix_nanos: 1,
                        }),
                        &mut tail,
                    );
                    conn.write_all(&tail).await.expect("write exit");
                } else {
                    // Keep reading until the client hangs up, collecting stdin frames.
                    loop {
                        while let Some((frame, used)) = decode(&buf).expect("frame") {
                            buf.drain(..used);
                            seen.push(frame);
                        }
                        match conn.read_buf(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(_) => {}
                        }
                    }
                }
                seen
            })
        }
    }

    fn config(tty: bool, stdin: bool) -> RelayConfig {
        RelayConfig {
            tty,
            multiplexed: !tty,
            stdout: true,
            stderr: true,
            stdin,
            close_stdin: true,
            detach_keys: Vec::new(),
        }
    }

    #[tokio::test]
    async fn output_becomes_stdcopy_frames_and_the_exit_ends_the_session() {
        let shim = FakeShim::new();
        let mut output = Vec::new();
        encode_stream(false, b"out\n", &mut output);
        encode_stream(true, b"err\n", &mut output);
        let server = shim.serve(output, false, Some(3));
        let attach = ShimAttach::connect(&shim.socket, None, false)
            .await
            .expect("attach");
        let (mut client, mut far) = duplex(1 << 16);
        let end = relay(attach, &mut client, &config(false, false))
            .await
            .expect("relay");
        assert_eq!(
            end,
            RelayEnd::Exited(ExitStatus {
                code: 3,
                exited_at_unix_nanos: 1
            })
        );
        drop(client);
        let mut got = Vec::new();
        far.read_to_end(&mut got).await.expect("read");
        let (frames, rest) = split_frames(&got).expect("frames");
        assert!(rest.is_empty());
        assert_eq!(
            frames,
            vec![
                (StdStream::Stdout, &b"out\n"[..]),
                (StdStream::Stderr, &b"err\n"[..])
            ]
        );
        server.await.expect("server");
    }

    #[tokio::test]
    async fn unrequested_streams_are_dropped_and_tty_output_is_raw() {
        let shim = FakeShim::new();
        let mut output = Vec::new();
        encode_stream(false, b"a", &mut output);
        encode_stream(true, b"hidden", &mut output);
        encode_stream(false, b"b", &mut output);
        let server = shim.serve(output, false, Some(0));
        let attach = ShimAttach::connect(&shim.socket, None, false)
            .await
            .expect("attach");
        let (mut client, mut far) = duplex(1 << 16);
        let mut cfg = config(true, false);
        cfg.stderr = false;
        relay(attach, &mut client, &cfg).await.expect("relay");
        drop(client);
        let mut got = Vec::new();
        far.read_to_end(&mut got).await.expect("read");
        assert_eq!(got, b"ab");
        server.await.expect("server");
    }

    #[tokio::test]
    async fn client_half_close_closes_stdin_and_output_continues() {
        let shim = FakeShim::new();
        let server = shim.serve(Vec::new(), true, Some(0));
        let attach = ShimAttach::connect(&shim.socket, None, true)
            .await
            .expect("attach");
        let (mut client, mut far) = duplex(1 << 16);
        far.write_all(b"hello").await.expect("stdin");
        far.shutdown().await.expect("half-close");
        let end = relay(attach, &mut client, &config(false, true))
            .await
            .expect("relay");
        assert!(matches!(end, RelayEnd::Exited(_)));
        let seen = server.await.expect("server");
        assert_eq!(
            seen,
            vec![Frame::Stdin(b"hello".to_vec()), Frame::CloseStdin]
        );
    }

    #[tokio::test]
    async fn detach_keys_end_a_tty_session_without_forwarding_them() {
        let shim = FakeShim::new();
        let server = shim.serve(Vec::new(), false, None);
        let attach = ShimAttach::connect(&shim.socket, None, true)
            .await
            .expect("attach");
        let (mut client, mut far) = duplex(1 << 16);
        far.write_all(b"ls\x10\x11more").await.expect("stdin");
        let end = relay(attach, &mut client, &config(true, true))
            .await
            .expect("relay");
        assert_eq!(end, RelayEnd::Detached);
        drop(client);
        let seen = server.await.expect("server");
        let forwarded: Vec<u8> = seen
            .into_iter()
            .flat_map(|f| match f {
                Frame::Stdin(b) => b,
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(forwarded, b"ls");
    }

    #[tokio::test]
    async fn a_refused_attach_carries_the_shims_text() {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("s.sock");
        let listener = tokio::net::UnixListener::bind(&socket).expect("bind");
        let server = tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.expect("accept");
            let mut buf = vec![0u8; 256];
            let _ = conn.read(&mut buf).await;
            let mut reply = Vec::new();
            encode(
                &Frame::Response(Response::error(
                    berth_shim::protocol::ErrorKind::NotFound,
                    "no such exec: x",
                )),
                &mut reply,
            );
            conn.write_all(&reply).await.expect("write");
        });
        let err = ShimAttach::connect(&socket, Some("x".into()), false)
            .await
            .err()
            .expect("refused");
        assert_eq!(err.to_string(), "no such exec: x");
        server.await.expect("server");
    }
}
