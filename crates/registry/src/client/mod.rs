//! The registry client: `/v2/` probing, bearer-token and basic auth, Docker's HTTPS rule
//! (plain HTTP only for insecure registries and loopback, after HTTPS fails), and the
//! requests that pull and push are built from.

mod challenge;
pub mod credentials;
mod mirror;
mod progress;
mod pull;
mod push;
mod upload;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode, Url};
use thiserror::Error;

pub use challenge::{parse_challenge, Challenge};
pub use credentials::{Credentials, CredentialsError};
pub use mirror::{mirrors_apply, pull_with_mirrors};
pub use progress::{Progress, ProgressSender};
pub use pull::PulledImage;
pub use push::PushOutcome;
pub use upload::MountOutcome;

/// Docker's default number of parallel layer downloads (`max-concurrent-downloads`).
pub const DEFAULT_CONCURRENT_DOWNLOADS: usize = 3;

#[derive(Debug, Error)]
pub enum ClientError {
    #[error("cannot reach registry {host}")]
    Unreachable {
        host: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("request to {url} failed")]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("registry answered {status} to {method} {url}: {code} {message}")]
    Registry {
        method: String,
        url: String,
        status: u16,
        code: String,
        message: String,
    },
    #[error("authentication with {realm} failed: {message}")]
    Auth { realm: String, message: String },
    #[error("unauthorized: authentication required for {host} (docker login first)")]
    Unauthorized { host: String },
    #[error("invalid URL {url:?}")]
    Url { url: String },
    #[error("blob {digest} failed verification")]
    Content {
        digest: berth_oci::Digest,
        #[source]
        source: berth_content::ContentError,
    },
    #[error("content store failure")]
    Store(#[from] berth_content::ContentError),
    #[error("invalid manifest {digest}: {message}")]
    Manifest { digest: String, message: String },
    #[error("no manifest in {reference} matches platform {platform}")]
    NoMatchingPlatform { reference: String, platform: String },
    #[error("gave up on blob {digest} after {attempts} attempts")]
    Retries {
        digest: berth_oci::Digest,
        attempts: u32,
        #[source]
        source: Box<ClientError>,
    },
    #[error("internal task failed")]
    Join(#[from] tokio::task::JoinError),
}

impl ClientError {
    /// Whether retrying might help (network trouble, 5xx, 429).
    fn is_transient(&self) -> bool {
        match self {
            ClientError::Http { .. } | ClientError::Unreachable { .. } => true,
            ClientError::Registry { status, .. } => *status >= 500 || *status == 429,
            // Another pull of the same blob holds the ingest: wait for it, then find the blob.
            ClientError::Store(e) => e.kind() == berth_content::ContentErrorKind::Unavailable,
            _ => false,
        }
    }
}

/// How a client behaves.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Registries (host[:port]) allowed over plain HTTP, besides loopback.
    pub insecure_registries: Vec<String>,
    pub max_concurrent_downloads: usize,
    pub max_concurrent_uploads: usize,
    /// Attempts per blob transfer before giving up.
    pub attempts: u32,
    /// First retry delay; doubled after each failure.
    pub backoff: Duration,
    /// Upload blobs larger than this in PATCH chunks of this size (`None`: monolithic).
    pub chunk_size: Option<u64>,
    /// Extra PEM root certificates to trust.
    pub root_certificates: Vec<Vec<u8>>,
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            insecure_registries: Vec::new(),
            max_concurrent_downloads: DEFAULT_CONCURRENT_DOWNLOADS,
            max_concurrent_uploads: 5,
            attempts: 5,
            backoff: Duration::from_millis(200),
            chunk_size: None,
            root_certificates: Vec::new(),
        }
    }
}

/// Docker's rule: loopback registries are always insecure-capable.
pub fn is_loopback_host(host: &str) -> bool {
    let bare = match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !h.ends_with(':') => h,
        _ => host,
    };
    let bare = bare.trim_start_matches('[').trim_end_matches(']');
    bare == "localhost"
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A connection to one registry host with its credentials and cached tokens.
pub struct RegistryClient {
    http: reqwest::Client,
    host: String,
    base: Url,
    credentials: Credentials,
    options: ClientOptions,
    challenge: Mutex<Option<Challenge>>,
    /// Authorization header values by scope (`repository:<name>:pull[,push]`).
    tokens: Mutex<HashMap<String, HeaderValue>>,
    /// One download per blob at a time: a second pull of the same layer waits for the first.
    downloads: Mutex<HashMap<berth_oci::Digest, std::sync::Arc<tokio::sync::Mutex<()>>>>,
}

fn http_client(options: &ClientOptions) -> Result<reqwest::Client, ClientError> {
    // One crypto provider for the process, installed explicitly (ring).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .connect_timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(8);
    for pem in &options.root_certificates {
        let cert = reqwest::Certificate::from_pem(pem).map_err(|source| ClientError::Http {
            url: "root certificate".into(),
            source,
        })?;
        builder = builder.add_root_certificate(cert);
    }
    builder.build().map_err(|source| ClientError::Http {
        url: "client".into(),
        source,
    })
}

impl RegistryClient {
    /// Probes `https://<host>/v2/` (and `http://` for insecure or loopback hosts when HTTPS
    /// fails), remembering the auth challenge it answers with.
    pub async fn connect(
        host: &str,
        credentials: Credentials,
        options: ClientOptions,
    ) -> Result<RegistryClient, ClientError> {
        let http = http_client(&options)?;
        let host = match host {
            "docker.io" | "index.docker.io" => "registry-1.docker.io",
            other => other,
        };
        let insecure =
            is_loopback_host(host) || options.insecure_registries.iter().any(|h| h == host);
        let schemes: &[&str] = if insecure {
            &["https", "http"]
        } else {
            &["https"]
        };
        let mut last_error: Option<reqwest::Error> = None;
        for scheme in schemes {
            let base =
                Url::parse(&format!("{scheme}://{host}/")).map_err(|_| ClientError::Url {
                    url: host.to_owned(),
                })?;
            let ping = base.join("v2/").map_err(|_| ClientError::Url {
                url: host.to_owned(),
            })?;
            match http.get(ping).send().await {
                Ok(response) => {
                    let challenge = response
                        .headers()
                        .get(WWW_AUTHENTICATE)
                        .and_then(|v| v.to_str().ok())
                        .and_then(parse_challenge);
                    return Ok(RegistryClient {
                        http,
                        host: host.to_owned(),
                        base,
                        credentials,
                        options,
                        challenge: Mutex::new(challenge),
                        tokens: Mutex::new(HashMap::new()),
                        downloads: Mutex::new(HashMap::new()),
                    });
                }
                // Keep the HTTPS error: it says why the secure attempt failed.
                Err(source) => {
                    last_error.get_or_insert(source);
                }
            }
        }
        Err(ClientError::Unreachable {
            host: host.to_owned(),
            source: last_error.expect("invariant: at least one scheme was tried"),
        })
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// `http` or `https`, as the probe settled it.
    pub fn scheme(&self) -> &str {
        self.base.scheme()
    }

    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    fn url(&self, path: &str) -> Result<Url, ClientError> {
        self.base.join(path).map_err(|_| ClientError::Url {
            url: path.to_owned(),
        })
    }

    fn scope(repo: &str, push: bool) -> String {
        format!(
            "repository:{repo}:{}",
            if push { "pull,push" } else { "pull" }
        )
    }

    fn basic_header(&self) -> Option<HeaderValue> {
        let Credentials::Basic { username, password } = &self.credentials else {
            return None;
        };
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
        HeaderValue::from_str(&format!("Basic {encoded}")).ok()
    }

    /// The Authorization header for a scope, fetching a bearer token when challenged.
    async fn authorization(
        &self,
        repo: &str,
        push: bool,
    ) -> Result<Option<HeaderValue>, ClientError> {
        let scope = Self::scope(repo, push);
        if let Some(value) = self
            .tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&scope)
        {
            return Ok(Some(value.clone()));
        }
        let challenge = self
            .challenge
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let value = match challenge {
            None => return Ok(None),
            Some(c) if c.scheme == "basic" => self.basic_header(),
            Some(c) if c.scheme == "bearer" => Some(self.fetch_token(&c, &scope).await?),
            Some(_) => None,
        };
        if let Some(value) = &value {
            self.tokens
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(scope, value.clone());
        }
        Ok(value)
    }

    /// The distribution token protocol: GET realm?service=&scope= with basic credentials,
    /// or the OAuth2 refresh-token POST for an identity token.
    async fn fetch_token(
        &self,
        challenge: &Challenge,
        scope: &str,
    ) -> Result<HeaderValue, ClientError> {
        let realm = challenge.params.get("realm").cloned().unwrap_or_default();
        let auth_error = |message: String| ClientError::Auth {
            realm: realm.clone(),
            message,
        };
        let mut url = Url::parse(&realm).map_err(|_| auth_error("invalid realm".into()))?;
        let service = challenge.params.get("service").cloned().unwrap_or_default();
        let request = match &self.credentials {
            Credentials::IdentityToken(token) => self.http.post(url).form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", token.as_str()),
                ("service", service.as_str()),
                ("scope", scope),
                ("client_id", "berth"),
            ]),
            _ => {
                url.query_pairs_mut()
                    .append_pair("service", &service)
                    .append_pair("scope", scope);
                let mut request = self.http.get(url);
                if let Some(basic) = self.basic_header() {
                    request = request.header(AUTHORIZATION, basic);
                }
                request
            }
        };
        let response = request
            .send()
            .await
            .map_err(|e| auth_error(e.to_string()))?;
        if !response.status().is_success() {
            return Err(auth_error(format!(
                "token endpoint answered {}",
                response.status()
            )));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| auth_error(e.to_string()))?;
        let body: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| auth_error(e.to_string()))?;
        let token = body
            .get("token")
            .or_else(|| body.get("access_token"))
            .and_then(|t| t.as_str())
            .ok_or_else(|| auth_error("no token in the answer".into()))?;
        HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| auth_error("invalid token".into()))
    }

    /// Sends a request with a replayable body, authenticating and retrying once on 401.
    async fn send(
        &self,
        method: Method,
        url: Url,
        repo: &str,
        push: bool,
        headers: HeaderMap,
        body: Option<bytes::Bytes>,
    ) -> Result<reqwest::Response, ClientError> {
        for attempt in 0..2 {
            let mut request = self
                .http
                .request(method.clone(), url.clone())
                .headers(headers.clone());
            if let Some(value) = self.authorization(repo, push).await? {
                request = request.header(AUTHORIZATION, value);
            }
            if let Some(body) = &body {
                request = request.body(body.clone());
            }
            let response = request.send().await.map_err(|source| ClientError::Http {
                url: url.to_string(),
                source,
            })?;
            if response.status() != StatusCode::UNAUTHORIZED || attempt == 1 {
                return Ok(response);
            }
            self.learn_challenge(&response, repo, push)?;
        }
        Err(ClientError::Unauthorized {
            host: self.host.clone(),
        })
    }

    /// Checks the credentials as `docker login` does: `GET /v2/` with them (basic), or a
    /// token for the registry scope (bearer); a registry without auth accepts anyone.
    pub async fn login(&self) -> Result<(), ClientError> {
        let challenge = self
            .challenge
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match challenge {
            None => Ok(()),
            Some(c) if c.scheme == "bearer" => self.fetch_token(&c, "").await.map(|_| ()),
            Some(_) => {
                let url = self.url("v2/")?;
                let mut request = self.http.get(url.clone());
                if let Some(basic) = self.basic_header() {
                    request = request.header(AUTHORIZATION, basic);
                }
                let response = request.send().await.map_err(|source| ClientError::Http {
                    url: url.to_string(),
                    source,
                })?;
                if response.status().is_success() {
                    Ok(())
                } else {
                    Err(ClientError::Unauthorized {
                        host: self.host.clone(),
                    })
                }
            }
        }
    }

    /// Records a 401's challenge and forgets the token that failed.
    fn learn_challenge(
        &self,
        response: &reqwest::Response,
        repo: &str,
        push: bool,
    ) -> Result<(), ClientError> {
        let challenge = response
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_challenge)
            .ok_or_else(|| ClientError::Unauthorized {
                host: self.host.clone(),
            })?;
        if matches!(self.credentials, Credentials::Anonymous) && challenge.scheme == "basic" {
            return Err(ClientError::Unauthorized {
                host: self.host.clone(),
            });
        }
        *self.challenge.lock().unwrap_or_else(|p| p.into_inner()) = Some(challenge);
        self.tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&Self::scope(repo, push));
        Ok(())
    }
}

/// Turns a non-success response into a typed error with the spec's code, if any.
async fn registry_error(method: &str, response: reqwest::Response) -> ClientError {
    let status = response.status().as_u16();
    let url = response.url().to_string();
    let bytes = response.bytes().await.unwrap_or_default();
    let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let first = &body["errors"][0];
    ClientError::Registry {
        method: method.to_owned(),
        url,
        status,
        code: first["code"].as_str().unwrap_or("UNKNOWN").to_owned(),
        message: first["message"].as_str().unwrap_or("").to_owned(),
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
