//! A typed Docker Engine API client over a unix socket (or plain TCP), used by the berth
//! CLI and the e2e tests. Knows the wire, not the engine: it never interprets what the
//! daemon does, only how to ask and how to read the answer.
//!
//! - [`host`]: `unix://` / `tcp://` addresses, `-H`, `BERTH_HOST`, `DOCKER_HOST`.
//! - [`Client`]: API version negotiation through `/_ping`, JSON and streamed requests,
//!   hijacked attach/exec connections.
//! - [`body`]: request bodies (whole or streamed) and streamed responses.
//! - [`stdcopy`]: demultiplexing Docker's 8-byte framed stdout/stderr streams.

pub mod body;
pub mod error;
pub mod host;
pub mod stdcopy;
mod transport;

pub use body::{RequestBody, Response};
pub use error::ClientError;
pub use host::{Host, HostError, DEFAULT_HOST};
pub use hyper::Method;
pub use transport::Upgraded;

use berth_api::version::compare_versions;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::OnceCell;

/// Newest API version this client speaks (docker CLI 28.2).
pub const CLIENT_API_VERSION: &str = "1.50";

/// What `/_ping` told us.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ping {
    pub api_version: Option<String>,
    pub os_type: Option<String>,
    pub experimental: bool,
    pub builder_version: Option<String>,
}

/// A connection-per-request client of one daemon.
pub struct Client {
    host: Host,
    /// Fixed by `DOCKER_API_VERSION` or negotiated on first use.
    version: OnceCell<String>,
    user_agent: String,
}

impl Client {
    /// A client of `host` that negotiates its API version on first use.
    pub fn new(host: Host) -> Client {
        Client {
            host,
            version: OnceCell::new(),
            user_agent: format!("berth/{}", env!("CARGO_PKG_VERSION")),
        }
    }

    /// A client that always speaks `version` (as `DOCKER_API_VERSION` does).
    pub fn with_version(host: Host, version: &str) -> Client {
        let client = Client::new(host);
        let _ = client.version.set(version.to_string());
        client
    }

    pub fn host(&self) -> &Host {
        &self.host
    }

    /// `GET /_ping` (unversioned) and its headers.
    pub async fn ping(&self) -> Result<Ping, ClientError> {
        let response = self
            .send(Method::GET, "/_ping".to_string(), RequestBody::Empty, &[])
            .await?;
        let ping = Ping {
            api_version: response.header("api-version").map(str::to_string),
            os_type: response.header("ostype").map(str::to_string),
            experimental: response.header("docker-experimental") == Some("true"),
            builder_version: response.header("builder-version").map(str::to_string),
        };
        response.bytes().await?;
        Ok(ping)
    }

    /// The API version requests use: the server's if older than ours, else ours.
    pub async fn api_version(&self) -> Result<&str, ClientError> {
        self.version
            .get_or_try_init(|| async {
                let ping = self.ping().await?;
                Ok::<_, ClientError>(negotiated_version(ping.api_version.as_deref()))
            })
            .await
            .map(String::as_str)
    }

    /// Sends a versioned request (`/v1.NN` + `path`, which includes any query) and returns
    /// the answer; statuses of 400 and above become [`ClientError::Api`].
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: RequestBody,
        headers: &[(&str, String)],
    ) -> Result<Response, ClientError> {
        let version = self.api_version().await?;
        let full = format!("/v{version}{path}");
        let response = self.send(method, full, body, headers).await?;
        if response.status >= 400 {
            let status = response.status;
            let bytes = response.bytes().await?;
            return Err(ClientError::from_body(status, &bytes));
        }
        Ok(response)
    }

    async fn send(
        &self,
        method: Method,
        path: String,
        body: RequestBody,
        headers: &[(&str, String)],
    ) -> Result<Response, ClientError> {
        let mut builder = hyper::Request::builder()
            .method(method)
            .uri(&path)
            .header("host", transport::host_header(&self.host))
            .header("user-agent", &self.user_agent);
        for (name, value) in headers {
            builder = builder.header(*name, value);
        }
        let request = builder.body(body)?;
        let response = transport::send(&self.host, request).await?;
        Ok(Response::new(response, path))
    }

    /// `GET path` decoded as JSON.
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.request(Method::GET, path, RequestBody::Empty, &[])
            .await?
            .json()
            .await
    }

    /// `GET path` as raw bytes (for `inspect`, which prints what the daemon sent).
    pub async fn get_raw(&self, path: &str) -> Result<Vec<u8>, ClientError> {
        self.request(Method::GET, path, RequestBody::Empty, &[])
            .await?
            .bytes()
            .await
    }

    /// `POST path` with a JSON body; the answer's body is returned unread.
    pub async fn post_json<B: Serialize + ?Sized>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<Response, ClientError> {
        let bytes = serde_json::to_vec(body).map_err(|source| ClientError::Encode {
            path: path.to_string(),
            source,
        })?;
        self.request(
            Method::POST,
            path,
            RequestBody::Full(Bytes::from(bytes)),
            &[("content-type", "application/json".to_string())],
        )
        .await
    }

    /// `POST path` without a body; the answer's body is read and dropped.
    pub async fn post(&self, path: &str) -> Result<(), ClientError> {
        self.request(Method::POST, path, RequestBody::Empty, &[])
            .await?
            .bytes()
            .await
            .map(drop)
    }

    /// `DELETE path`, returning the body.
    pub async fn delete(&self, path: &str) -> Result<Vec<u8>, ClientError> {
        self.request(Method::DELETE, path, RequestBody::Empty, &[])
            .await?
            .bytes()
            .await
    }

    /// `POST path` with `Connection: Upgrade` / `Upgrade: tcp` (attach, exec start): after
    /// `101 Switching Protocols` the connection is a raw bidirectional stream.
    pub async fn hijack(
        &self,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Upgraded, ClientError> {
        let version = self.api_version().await?;
        let full = format!("/v{version}{path}");
        let mut builder = hyper::Request::builder()
            .method(Method::POST)
            .uri(&full)
            .header("host", transport::host_header(&self.host))
            .header("user-agent", &self.user_agent)
            .header("connection", "Upgrade")
            .header("upgrade", "tcp");
        let body = match body {
            Some(value) => {
                builder = builder.header("content-type", "application/json");
                let bytes = serde_json::to_vec(value).map_err(|source| ClientError::Encode {
                    path: path.to_string(),
                    source,
                })?;
                RequestBody::Full(Bytes::from(bytes))
            }
            None => RequestBody::Empty,
        };
        transport::hijack(&self.host, builder.body(body)?, full).await
    }
}

/// Docker's negotiation: the server's version when it is older than ours, ours otherwise;
/// a server that sends none gets the oldest version the docker CLI still assumes (1.24).
pub fn negotiated_version(server: Option<&str>) -> String {
    match server {
        None | Some("") => "1.24".to_string(),
        Some(server) if compare_versions(server, CLIENT_API_VERSION).is_lt() => server.to_string(),
        Some(_) => CLIENT_API_VERSION.to_string(),
    }
}

/// Percent-encodes a query value (RFC 3986 unreserved characters pass through).
pub fn encode_query(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Builds `?k=v&...` from pairs (empty string when there are none).
pub fn query(pairs: &[(&str, String)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let joined: Vec<String> = pairs
        .iter()
        .map(|(name, value)| format!("{}={}", encode_query(name), encode_query(value)))
        .collect();
    format!("?{}", joined.join("&"))
}

#[cfg(test)]
mod tests;
