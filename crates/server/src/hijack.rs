//! Hijacked connections for attach and exec (Docker's `httputils.HijackConnection`): a client
//! that sends `Connection: Upgrade, Upgrade: tcp` gets `101 UPGRADED` with the stream's content
//! type and then the raw connection both ways. A client without `Upgrade` gets Docker's
//! `200 OK` with `application/vnd.docker.raw-stream` and the output as the body: hyper owns
//! the connection, so such a client's stdin cannot be read (Docker's CLI, docker-py and
//! berth-client all upgrade).
//!
//! A hijacked unix, TCP or TLS connection also reports when its client is gone for good (both
//! directions closed, or the TCP connection reset): after the CLI's half-close a read tells
//! nothing more, and a session on a silent container would otherwise hold the client's socket
//! and the shim's until the next output.

use std::future::Future;
use std::os::fd::{AsFd, BorrowedFd};
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, Request, Response, StatusCode};
use berth_api::stream::{MULTIPLEXED_STREAM, RAW_STREAM};
use berth_api::ApiVersion;
use berth_engine::exec::relay::SessionClient;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::server::TlsStream;

/// How often a half-closed client is checked for a full hang-up.
const HANGUP_CHECK: Duration = Duration::from_secs(1);

/// The content type of a hijacked stream: raw for a TTY, multiplexed otherwise (API 1.42+
/// names it; older versions call both raw).
pub fn stream_content_type(tty: bool, version: ApiVersion) -> &'static str {
    if !tty && version >= ApiVersion::new(1, 42) {
        MULTIPLEXED_STREAM
    } else {
        RAW_STREAM
    }
}

/// Whether the client asked to upgrade the connection.
pub fn wants_upgrade<B>(request: &Request<B>) -> bool {
    request.headers().contains_key(header::UPGRADE)
}

/// An upgrade to take over before the request's body is consumed.
pub struct Hijack {
    on_upgrade: Option<hyper::upgrade::OnUpgrade>,
}

impl Hijack {
    /// Takes the upgrade handle out of `request` when the client asked for one.
    pub fn prepare(request: &mut Request<Body>) -> Hijack {
        let on_upgrade = wants_upgrade(request).then(|| hyper::upgrade::on(&mut *request));
        Hijack { on_upgrade }
    }

    /// Answers the request and runs `session` on the client's connection once it is ours.
    pub fn respond<F, Fut>(self, content_type: &'static str, session: F) -> Response<Body>
    where
        F: FnOnce(Box<dyn ClientIo>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        match self.on_upgrade {
            Some(on_upgrade) => {
                tokio::spawn(async move {
                    if let Ok(upgraded) = on_upgrade.await {
                        session(Box::new(HijackedConnection::new(upgraded))).await;
                    }
                });
                let mut response = Response::new(Body::empty());
                *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
                let headers = response.headers_mut();
                headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
                headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
                headers.insert(header::UPGRADE, HeaderValue::from_static("tcp"));
                response
            }
            None => output_only(session),
        }
    }
}

/// What a session reads from and writes to.
pub trait ClientIo: SessionClient {}
impl<T: SessionClient> ClientIo for T {}

/// A transport whose peer's hang-up can be polled for on its socket.
trait PeerSocket: AsyncRead + AsyncWrite + Unpin + Send {
    /// The socket to poll, when the transport has one berthd can see.
    fn socket(&self) -> Option<BorrowedFd<'_>>;
}

impl PeerSocket for UnixStream {
    fn socket(&self) -> Option<BorrowedFd<'_>> {
        Some(self.as_fd())
    }
}

impl PeerSocket for TcpStream {
    fn socket(&self) -> Option<BorrowedFd<'_>> {
        Some(self.as_fd())
    }
}

impl PeerSocket for TlsStream<TcpStream> {
    fn socket(&self) -> Option<BorrowedFd<'_>> {
        Some(self.get_ref().0.as_fd())
    }
}

impl PeerSocket for TokioIo<Upgraded> {
    fn socket(&self) -> Option<BorrowedFd<'_>> {
        None
    }
}

/// The client's connection once hyper let go of it: the unix, TCP or TLS stream taken back
/// out of hyper (so that its hang-up can be seen), or any other upgraded transport as is.
struct HijackedConnection {
    io: Box<dyn PeerSocket>,
    /// Bytes hyper read past the request head (stdin the client sent at once).
    pending: bytes::Bytes,
    check: tokio::time::Interval,
}

impl HijackedConnection {
    fn new(upgraded: Upgraded) -> HijackedConnection {
        use hyper_util::server::conn::auto::upgrade::downcast;
        let upgraded = match downcast::<TokioIo<UnixStream>>(upgraded) {
            Ok(parts) => return Self::taken(Box::new(parts.io.into_inner()), parts.read_buf),
            Err(upgraded) => upgraded,
        };
        let upgraded = match downcast::<TokioIo<TcpStream>>(upgraded) {
            Ok(parts) => return Self::taken(Box::new(parts.io.into_inner()), parts.read_buf),
            Err(upgraded) => upgraded,
        };
        match downcast::<TokioIo<TlsStream<TcpStream>>>(upgraded) {
            Ok(parts) => Self::taken(Box::new(parts.io.into_inner()), parts.read_buf),
            Err(upgraded) => Self::taken(Box::new(TokioIo::new(upgraded)), bytes::Bytes::new()),
        }
    }

    fn taken(io: Box<dyn PeerSocket>, pending: bytes::Bytes) -> HijackedConnection {
        let mut check = tokio::time::interval(HANGUP_CHECK);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        HijackedConnection { io, pending, check }
    }
}

/// Whether the peer of a socket is gone (`POLLHUP`/`POLLERR`): a unix peer closed both
/// directions (a half-close only ends our reading); a TCP connection was reset, which for a
/// peer that closed after its half-close happens once a keepalive probe finds it gone (see
/// `serve::keep_alive`).
fn peer_hung_up(socket: BorrowedFd<'_>) -> bool {
    let mut fds = [rustix::event::PollFd::new(
        &socket,
        rustix::event::PollFlags::empty(),
    )];
    let zero = rustix::event::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    match rustix::event::poll(&mut fds, Some(&zero)) {
        Ok(_) => fds[0]
            .revents()
            .intersects(rustix::event::PollFlags::HUP | rustix::event::PollFlags::ERR),
        Err(_) => false,
    }
}

impl SessionClient for HijackedConnection {
    fn poll_gone(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.io.socket().is_none() {
            return Poll::Pending;
        }
        loop {
            ready!(self.check.poll_tick(cx));
            if self.io.socket().is_some_and(peer_hung_up) {
                return Poll::Ready(());
            }
        }
    }
}

impl AsyncRead for HijackedConnection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if !this.pending.is_empty() {
            let n = this.pending.len().min(buf.remaining());
            buf.put_slice(&this.pending.split_to(n));
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for HijackedConnection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// A client that did not upgrade: the session's output becomes a `200` body; its stdin
/// stays open and silent until the session ends.
fn output_only<F, Fut>(session: F) -> Response<Body>
where
    F: FnOnce(Box<dyn ClientIo>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (ours, theirs) = tokio::io::duplex(64 * 1024);
    tokio::spawn(session(Box::new(theirs)));
    let body = futures_util::stream::unfold(ours, |mut ours| async move {
        let mut buf = vec![0u8; 32 * 1024];
        match ours.read(&mut buf).await {
            Ok(0) | Err(_) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<Bytes, std::io::Error>(Bytes::from(buf)), ours))
            }
        }
    });
    let mut response = Response::new(Body::from_stream(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(berth_api::stream::RAW_STREAM),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use tokio::io::AsyncWriteExt;

    #[test]
    fn content_type_follows_tty_and_version() {
        assert_eq!(
            stream_content_type(false, ApiVersion::new(1, 50)),
            MULTIPLEXED_STREAM
        );
        assert_eq!(
            stream_content_type(true, ApiVersion::new(1, 50)),
            RAW_STREAM
        );
        assert_eq!(
            stream_content_type(false, ApiVersion::new(1, 41)),
            RAW_STREAM
        );
    }

    #[tokio::test]
    async fn an_upgraded_connection_carries_bytes_both_ways_until_half_close() {
        use axum::routing::post;
        use tokio::io::AsyncReadExt;
        let router = axum::Router::new().route(
            "/hijack",
            post(|mut request: Request<Body>| async move {
                let hijack = Hijack::prepare(&mut request);
                hijack.respond(RAW_STREAM, |mut io| async move {
                    let mut input = Vec::new();
                    io.read_to_end(&mut input)
                        .await
                        .expect("client half-closes");
                    let mut reply = b"got:".to_vec();
                    reply.extend_from_slice(&input);
                    io.write_all(&reply).await.expect("reply");
                    io.shutdown().await.expect("close");
                })
            }),
        );
        let (server, mut client) = tokio::net::UnixStream::pair().expect("pair");
        crate::serve::spawn_connection(router, server);
        client
            .write_all(
                b"POST /v1.45/hijack HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\n\
                  Upgrade: tcp\r\nContent-Length: 0\r\n\r\n",
            )
            .await
            .expect("request");
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            client.read_exact(&mut byte).await.expect("head");
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).to_lowercase();
        assert!(head.starts_with("http/1.1 101"), "{head}");
        assert!(head.contains("upgrade: tcp"), "{head}");
        assert!(
            head.contains("content-type: application/vnd.docker.raw-stream"),
            "{head}"
        );
        assert!(head.contains("api-version: "), "common headers: {head}");
        client.write_all(b"ping").await.expect("stdin");
        client.shutdown().await.expect("half-close");
        let mut reply = Vec::new();
        client.read_to_end(&mut reply).await.expect("reply");
        assert_eq!(reply, b"got:ping");
    }

    /// A router whose hijacked session reads to EOF, reports it, then waits for the client
    /// to be gone and reports that.
    fn session_router(events: tokio::sync::mpsc::UnboundedSender<&'static str>) -> axum::Router {
        use axum::routing::post;
        axum::Router::new().route(
            "/hijack",
            post(move |mut request: Request<Body>| {
                let events = events.clone();
                async move {
                    let hijack = Hijack::prepare(&mut request);
                    hijack.respond(RAW_STREAM, move |mut io| async move {
                        let mut input = Vec::new();
                        let _ = io.read_to_end(&mut input).await;
                        let _ = events.send("eof");
                        std::future::poll_fn(|cx| io.poll_gone(cx)).await;
                        let _ = events.send("gone");
                    })
                }
            }),
        )
    }

    /// Sends the upgrade request on `client` and reads the answer's head.
    async fn upgrade<S: AsyncRead + AsyncWrite + Unpin>(client: &mut S) {
        use tokio::io::AsyncReadExt;
        client
            .write_all(
                b"POST /hijack HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\n\
                  Upgrade: tcp\r\nContent-Length: 0\r\n\r\n",
            )
            .await
            .expect("request");
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            client.read_exact(&mut byte).await.expect("head");
            head.push(byte[0]);
        }
        assert!(head.starts_with(b"HTTP/1.1 101"), "{head:?}");
    }

    /// Upgrades a unix connection to a [`session_router`] session.
    async fn upgraded_session() -> (
        tokio::net::UnixStream,
        tokio::sync::mpsc::UnboundedReceiver<&'static str>,
    ) {
        let (events, seen) = tokio::sync::mpsc::unbounded_channel();
        let (server, mut client) = tokio::net::UnixStream::pair().expect("pair");
        crate::serve::spawn_connection(session_router(events), server);
        upgrade(&mut client).await;
        (client, seen)
    }

    #[tokio::test(start_paused = true)]
    async fn a_half_closed_client_is_not_gone_until_it_closes_its_socket() {
        let (mut client, mut seen) = upgraded_session().await;
        client.shutdown().await.expect("half-close");
        assert_eq!(seen.recv().await, Some("eof"));
        // Several hang-up checks pass (paused clock) while the client can still read.
        tokio::time::sleep(HANGUP_CHECK * 5).await;
        assert!(seen.try_recv().is_err(), "half-close taken for a hang-up");
        drop(client);
        assert_eq!(seen.recv().await, Some("gone"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_closes_at_once_is_gone() {
        let (client, mut seen) = upgraded_session().await;
        drop(client);
        assert_eq!(seen.recv().await, Some("eof"));
        assert_eq!(seen.recv().await, Some("gone"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_tcp_client_that_half_closed_is_gone_once_its_connection_is_reset() {
        let (events, mut seen) = tokio::sync::mpsc::unbounded_channel();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("listen");
        let address = listener.local_addr().expect("address");
        let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(crate::serve::serve_tcp(
            listener,
            session_router(events),
            None,
            async move {
                let _ = stopped.await;
            },
        ));
        let mut client = tokio::net::TcpStream::connect(address)
            .await
            .expect("connect");
        upgrade(&mut client).await;
        client.shutdown().await.expect("half-close");
        assert_eq!(seen.recv().await, Some("eof"));
        tokio::time::sleep(HANGUP_CHECK * 5).await;
        assert!(seen.try_recv().is_err(), "half-close taken for a hang-up");
        // What a keepalive probe meets once the peer's socket is gone: a reset.
        rustix::net::sockopt::set_socket_linger(&client, Some(std::time::Duration::ZERO))
            .expect("linger");
        drop(client);
        assert_eq!(seen.recv().await, Some("gone"));
    }

    #[tokio::test]
    async fn a_client_without_upgrade_gets_the_output_as_a_200_body() {
        let mut request = Request::new(Body::empty());
        let hijack = Hijack::prepare(&mut request);
        let response = hijack.respond(MULTIPLEXED_STREAM, |mut io| async move {
            io.write_all(b"hello").await.expect("write");
            io.shutdown().await.expect("shutdown");
        });
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            berth_api::stream::RAW_STREAM
        );
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        assert_eq!(&body[..], b"hello");
    }
}
