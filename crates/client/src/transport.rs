//! One HTTP/1.1 connection per request over a unix socket or TCP, and the hijacked
//! (upgraded) connections of attach and exec.

use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, UnixStream};

use crate::body::RequestBody;
use crate::error::ClientError;
use crate::host::Host;

/// A byte stream of either transport.
trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// The raw stream of a hijacked connection and the content type the daemon announced
/// (`application/vnd.docker.raw-stream` or `...multiplexed-stream`).
pub struct Upgraded {
    pub io: TokioIo<hyper::upgrade::Upgraded>,
    pub content_type: Option<String>,
}

/// The `Host` header: Docker's client sends a placeholder name for unix sockets, and Go's
/// server refuses HTTP/1.1 requests without one.
pub(crate) fn host_header(host: &Host) -> String {
    match host {
        Host::Unix(_) => "api.moby.localhost".to_string(),
        Host::Tcp(address) => address.clone(),
    }
}

async fn connect(host: &Host) -> Result<Box<dyn Io>, ClientError> {
    let connect_error = |source| ClientError::Connect {
        host: host.to_string(),
        source,
    };
    match host {
        Host::Unix(path) => Ok(Box::new(
            UnixStream::connect(path).await.map_err(connect_error)?,
        )),
        Host::Tcp(address) => Ok(Box::new(
            TcpStream::connect(address.as_str())
                .await
                .map_err(connect_error)?,
        )),
    }
}

pub(crate) async fn send(
    host: &Host,
    request: hyper::Request<RequestBody>,
) -> Result<hyper::Response<Incoming>, ClientError> {
    let io = connect(host).await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(async move {
        // The connection ends with the response body; its errors surface through the body.
        let _ = connection.await;
    });
    Ok(sender.send_request(request).await?)
}

pub(crate) async fn hijack(
    host: &Host,
    request: hyper::Request<RequestBody>,
    path: String,
) -> Result<Upgraded, ClientError> {
    let io = connect(host).await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(async move {
        let _ = connection.with_upgrades().await;
    });
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    if status >= 400 {
        let body = crate::body::Response::new(response, path).bytes().await?;
        return Err(ClientError::from_body(status, &body));
    }
    if status != 101 {
        return Err(ClientError::NoUpgrade { path, status });
    }
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    let upgraded = hyper::upgrade::on(response).await?;
    Ok(Upgraded {
        io: TokioIo::new(upgraded),
        content_type,
    })
}
