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
