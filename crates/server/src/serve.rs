//! Accepting connections: unix sockets (the default) and TCP, each connection served by hyper
//! with upgrades (hijacked attach/exec streams). In front of the router, Docker's version
//! middleware: the `/vX.Y` prefix is stripped and negotiated (the version goes into the
//! request's extensions as `ApiVersion`), and Docker's common headers go on every response.

use std::convert::Infallible;
use std::future::Future;

use axum::body::Body;
use axum::http::{HeaderValue, Request, Response, Uri};
use axum::Router;
use berth_api::version::{negotiate, response_headers, split_version_prefix};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tower::ServiceExt;

use crate::error::ApiError;
use crate::SERVER_VERSION;

/// Strips and negotiates the version prefix, routes, and adds the common headers.
pub async fn handle(router: Router, request: Request<Incoming>) -> Response<Body> {
    let mut request = request.map(Body::new);
    let path = request.uri().path().to_string();
    let (requested, rest) = split_version_prefix(&path);
    let mut response = match negotiate(requested) {
        Err(e) => axum::response::IntoResponse::into_response(ApiError::from(e)),
        Ok(version) => {
            if requested.is_some() {
                let uri = match request.uri().query() {
                    Some(query) => format!("{rest}?{query}"),
                    None => rest.to_string(),
                };
                if let Ok(uri) = uri.parse::<Uri>() {
                    *request.uri_mut() = uri;
                }
            }
            request.extensions_mut().insert(version);
            match router.oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            }
        }
    };
    let headers = response.headers_mut();
    for (name, value) in response_headers(SERVER_VERSION, false) {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.entry(name).or_insert(value);
        }
    }
    response
}

/// Serves one accepted connection until it closes (upgraded streams included).
pub fn spawn_connection<S>(router: Router, stream: S)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let router = router.clone();
            async move { Ok::<_, Infallible>(handle(router, request).await) }
        });
        let builder = auto::Builder::new(TokioExecutor::new());
        let _ = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .await;
    });
}

/// Accepts on a unix socket until `shutdown` completes.
pub async fn serve_unix(
    listener: tokio::net::UnixListener,
    router: Router,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => spawn_connection(router.clone(), stream),
                // EMFILE or a reset during accept: back off briefly, keep serving the others.
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
            },
            () = &mut shutdown => return,
        }
    }
}

/// Keepalive probes on an accepted TCP connection: a client that closed after its
/// half-close (the docker CLI's way when it sends no stdin) is only seen gone once a probe is
/// answered with a reset, which ends a hijacked session on a silent container (its socket
/// reports `POLLHUP`, see `hijack`). A peer's kernel resets once its own FIN_WAIT2 state
/// times out (60 s by default), so such a session ends within about two minutes.
fn keep_alive(stream: &tokio::net::TcpStream) {
    use rustix::net::sockopt;
    let _ = sockopt::set_socket_keepalive(stream, true);
    let _ = sockopt::set_tcp_keepidle(stream, KEEPALIVE_IDLE);
    let _ = sockopt::set_tcp_keepintvl(stream, KEEPALIVE_INTERVAL);
    let _ = sockopt::set_tcp_keepcnt(stream, KEEPALIVE_PROBES);
}

/// Idle time before the first keepalive probe.
const KEEPALIVE_IDLE: std::time::Duration = std::time::Duration::from_secs(30);
/// Time between unanswered probes.
const KEEPALIVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);
/// Unanswered probes before the connection counts as dead.
const KEEPALIVE_PROBES: u32 = 3;

/// Accepts on a TCP socket until `shutdown` completes; with an acceptor every connection
/// must complete the (mutual) TLS handshake first. Plain TCP only when berthd was forced to.
pub async fn serve_tcp(
    listener: tokio::net::TcpListener,
    router: Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    keep_alive(&stream);
                    match &tls {
                        None => spawn_connection(router.clone(), stream),
                        Some(acceptor) => {
                            let (acceptor, router) = (acceptor.clone(), router.clone());
                            tokio::spawn(async move {
                                // A client without a valid certificate fails here and is dropped.
                                if let Ok(stream) = acceptor.accept(stream).await {
                                    spawn_connection(router, stream);
                                }
                            });
                        }
                    }
                }
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
            },
            () = &mut shutdown => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepted_tcp_connections_probe_their_peer() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("listen");
        let client = tokio::net::TcpStream::connect(listener.local_addr().expect("address"));
        let (accepted, client) = tokio::join!(listener.accept(), client);
        let (stream, _) = accepted.expect("accept");
        let _client = client.expect("connect");
        keep_alive(&stream);
        use rustix::net::sockopt;
        assert!(sockopt::socket_keepalive(&stream).expect("keepalive"));
        assert_eq!(
            sockopt::tcp_keepidle(&stream).expect("idle"),
            KEEPALIVE_IDLE
        );
        assert_eq!(
            sockopt::tcp_keepintvl(&stream).expect("interval"),
            KEEPALIVE_INTERVAL
        );
        assert_eq!(
            sockopt::tcp_keepcnt(&stream).expect("count"),
            KEEPALIVE_PROBES
        );
    }
}
