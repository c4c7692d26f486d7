//! Hijacked connections for attach and exec (Docker's `httputils.HijackConnection`): a client
//! that sends `Connection: Upgrade, Upgrade: tcp` gets `101 UPGRADED` with the stream's content
//! type and then the raw connection both ways. A client without `Upgrade` gets Docker's
//! `200 OK` with `application/vnd.docker.raw-stream` and the output as the body: hyper owns
//! the connection, so such a client's stdin cannot be read (Docker's CLI, docker-py and
//! berth-client all upgrade).

use std::future::Future;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, Request, Response, StatusCode};
use berth_api::stream::{MULTIPLEXED_STREAM, RAW_STREAM};
use berth_api::ApiVersion;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

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
                        session(Box::new(TokioIo::new(upgraded))).await;
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
pub trait ClientIo: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> ClientIo for T {}

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
