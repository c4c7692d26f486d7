//! The berth-registry HTTP API (OCI distribution-spec 1.1): routing of `/v2/` paths whose
//! repository names contain slashes, basic auth, and the state shared by the handlers.

mod auth;
mod blobs;
mod manifests;
mod range;
mod serve;
mod token;
mod uploads;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use berth_content::{Store, Writer};

use crate::error::{ApiError, ErrorCode};
use crate::meta::Meta;
use crate::name::is_valid_name;

pub use auth::{Htpasswd, HtpasswdError};
pub use manifests::MANIFEST_MAX;
pub use serve::{serve, ServeError, TlsFiles};
pub use token::TokenConfig;

/// What the server is configured with.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Allow DELETE of manifests and blobs (distribution's `storage.delete.enabled`).
    pub delete_enabled: bool,
    /// Require these users (htpasswd, bcrypt) when set.
    pub htpasswd: Option<Htpasswd>,
    /// Bearer-token auth: `/token` issues tokens (to htpasswd users) and `/v2/` requires them.
    pub token: Option<TokenConfig>,
}

/// The registry's storage: blobs in the content store under `<root>/content`, repository
/// metadata beside it.
#[derive(Debug, Clone)]
pub struct Storage {
    pub store: Store,
    pub meta: Meta,
}

impl Storage {
    pub fn open(root: &Path) -> Result<Storage, ApiError> {
        Ok(Storage {
            store: Store::open(root.join("content"))?,
            meta: Meta::open(root)?,
        })
    }

    /// Where the content store lives under a registry root.
    pub fn content_root(root: &Path) -> PathBuf {
        root.join("content")
    }
}

/// One open upload session's writer, kept between requests; `None` until first used or
/// after a failure (the next request reopens the ingest and resumes from the disk).
type UploadSlot = Arc<tokio::sync::Mutex<Option<Writer>>>;

pub(crate) struct AppState {
    storage: Storage,
    config: Config,
    uploads: Mutex<HashMap<String, UploadSlot>>,
    auth_cache: Mutex<std::collections::HashSet<String>>,
}

pub(crate) type Shared = Arc<AppState>;

/// Builds the router over a storage root.
pub fn router(storage: Storage, config: Config) -> Router {
    let state = Arc::new(AppState {
        storage,
        config,
        uploads: Mutex::new(HashMap::new()),
        auth_cache: Mutex::new(std::collections::HashSet::new()),
    });
    Router::new().fallback(dispatch).with_state(state)
}

/// A `/v2/` route after the repository name has been split off.
#[derive(Debug, PartialEq, Eq)]
enum Route<'a> {
    Base,
    Catalog,
    Tags(&'a str),
    Upload(&'a str, &'a str),
    Blob(&'a str, &'a str),
    Manifest(&'a str, &'a str),
    Referrers(&'a str, &'a str),
}

/// Splits at the *last* marker, as distribution's router does, since names contain `/`.
fn parse_route<'a>(path: &'a str) -> Option<Route<'a>> {
    if path == "/v2/" || path == "/v2" {
        return Some(Route::Base);
    }
    let rest = path.strip_prefix("/v2/")?;
    if rest == "_catalog" {
        return Some(Route::Catalog);
    }
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return Some(Route::Tags(name));
    }
    if let Some(name) = rest
        .strip_suffix("/blobs/uploads/")
        .or(rest.strip_suffix("/blobs/uploads"))
    {
        return Some(Route::Upload(name, ""));
    }
    type Make<'a> = fn(&'a str, &'a str) -> Route<'a>;
    let markers: [(&str, Make<'a>); 4] = [
        ("/blobs/uploads/", Route::Upload),
        ("/blobs/", Route::Blob),
        ("/manifests/", Route::Manifest),
        ("/referrers/", Route::Referrers),
    ];
    for (marker, make) in markers {
        if let Some(at) = rest.rfind(marker) {
            let (name, tail) = (&rest[..at], &rest[at + marker.len()..]);
            if !tail.is_empty() && !tail.contains('/') {
                return Some(make(name, tail));
            }
        }
    }
    None
}

/// The repository and action a request needs (for bearer challenges).
fn route_scope(request: &Request) -> Option<(String, &'static str)> {
    let action = if matches!(*request.method(), Method::GET | Method::HEAD) {
        "pull"
    } else {
        "pull,push"
    };
    let name = match parse_route(request.uri().path())? {
        Route::Tags(n)
        | Route::Upload(n, _)
        | Route::Blob(n, _)
        | Route::Manifest(n, _)
        | Route::Referrers(n, _) => n.to_owned(),
        Route::Base | Route::Catalog => return None,
    };
    Some((name, action))
}

async fn dispatch(State(state): State<Shared>, request: Request) -> Response {
    let challenge = auth::challenge(&state, &request);
    let mut response = match route(state, request).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    };
    if let Some(challenge) = challenge {
        if response.status() == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, challenge);
        }
    }
    response.headers_mut().insert(
        "Docker-Distribution-API-Version",
        HeaderValue::from_static("registry/2.0"),
    );
    response
}

async fn route(state: Shared, request: Request) -> Result<Response, ApiError> {
    let query = request.uri().query().map(str::to_owned);
    let path = request.uri().path().to_owned();
    if path == "/token" && state.config.token.is_some() {
        return auth::issue_token(&state, request.headers(), query.as_deref()).await;
    }
    let Some(route) = parse_route(&path) else {
        return Ok((StatusCode::NOT_FOUND, "404 page not found\n").into_response());
    };
    let name = match &route {
        Route::Tags(n)
        | Route::Upload(n, _)
        | Route::Blob(n, _)
        | Route::Manifest(n, _)
        | Route::Referrers(n, _) => Some(*n),
        Route::Base | Route::Catalog => None,
    };
    if let Some(name) = name {
        if !is_valid_name(name) {
            return Err(ApiError::new(
                ErrorCode::NameInvalid,
                format!("invalid repository name {name:?}"),
            ));
        }
    }
    let method = request.method().clone();
    let action = if matches!(method, Method::GET | Method::HEAD) {
        "pull"
    } else {
        "push"
    };
    auth::check(&state, request.headers(), name, action).await?;
    match (route, method) {
        (Route::Base, Method::GET | Method::HEAD) => Ok(json_response(StatusCode::OK, "{}")),
        (Route::Catalog, Method::GET) => manifests::catalog(state, query).await,
        (Route::Tags(name), Method::GET) => manifests::tags_list(state, name, query).await,
        (Route::Referrers(name, digest), Method::GET) => {
            manifests::referrers(state, name, digest, query).await
        }
        (Route::Manifest(name, reference), Method::GET) => {
            manifests::get(state, name, reference, true).await
        }
        (Route::Manifest(name, reference), Method::HEAD) => {
            manifests::get(state, name, reference, false).await
        }
        (Route::Manifest(name, reference), Method::PUT) => {
            manifests::put(state, name.to_owned(), reference.to_owned(), request).await
        }
        (Route::Manifest(name, reference), Method::DELETE) => {
            manifests::delete(state, name, reference).await
        }
        (Route::Blob(name, digest), Method::GET) => {
            blobs::get(state, name, digest, request.headers(), true).await
        }
        (Route::Blob(name, digest), Method::HEAD) => {
            blobs::get(state, name, digest, request.headers(), false).await
        }
        (Route::Blob(name, digest), Method::DELETE) => blobs::delete(state, name, digest).await,
        (Route::Upload(name, ""), Method::POST) => {
            uploads::start(state, name.to_owned(), request).await
        }
        (Route::Upload(name, id), Method::PATCH) if !id.is_empty() => {
            uploads::patch(state, name.to_owned(), id.to_owned(), request).await
        }
        (Route::Upload(name, id), Method::PUT) if !id.is_empty() => {
            uploads::finish(state, name.to_owned(), id.to_owned(), request).await
        }
        (Route::Upload(name, id), Method::GET) if !id.is_empty() => {
            uploads::status(state, name, id).await
        }
        (Route::Upload(name, id), Method::DELETE) if !id.is_empty() => {
            uploads::cancel(state, name, id).await
        }
        (_, method) => Err(ApiError::new(
            ErrorCode::Unsupported,
            format!("method {method} is not supported on {path}"),
        )),
    }
}

pub(crate) fn json_response(status: StatusCode, body: impl Into<Body>) -> Response {
    let mut response = (status, body.into()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Runs blocking storage work off the async workers.
pub(crate) async fn blocking<T, F>(state: &Shared, work: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&Storage) -> Result<T, ApiError> + Send + 'static,
{
    let storage = state.storage.clone();
    tokio::task::spawn_blocking(move || work(&storage)).await?
}

/// Parses `n` and `last` of the tags list and catalog.
pub(crate) fn pagination(query: Option<&str>) -> Result<(Option<usize>, Option<String>), ApiError> {
    let mut n = None;
    let mut last = None;
    for (key, value) in form_pairs(query.unwrap_or("")) {
        match key.as_str() {
            "n" => {
                n = Some(value.parse::<usize>().map_err(|_| {
                    ApiError::with_status(
                        ErrorCode::Unsupported,
                        StatusCode::BAD_REQUEST,
                        format!("invalid page size n={value:?}"),
                    )
                })?)
            }
            "last" => last = Some(value),
            _ => {}
        }
    }
    Ok((n, last))
}

/// Decodes `application/x-www-form-urlencoded` pairs of a query string.
pub(crate) fn form_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

pub(crate) fn query_value(query: Option<&str>, key: &str) -> Option<String> {
    form_pairs(query.unwrap_or(""))
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes a query value (for Link headers).
pub(crate) fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod route_tests {
    use super::*;

    #[test]
    fn routes_split_at_the_last_marker() {
        assert_eq!(parse_route("/v2/"), Some(Route::Base));
        assert_eq!(parse_route("/v2/_catalog"), Some(Route::Catalog));
        assert_eq!(parse_route("/v2/a/b/tags/list"), Some(Route::Tags("a/b")));
        assert_eq!(
            parse_route("/v2/a/blobs/uploads/"),
            Some(Route::Upload("a", ""))
        );
        assert_eq!(
            parse_route("/v2/a/blobs/uploads/xyz"),
            Some(Route::Upload("a", "xyz"))
        );
        assert_eq!(
            parse_route("/v2/a/blobs/b/blobs/sha256:00"),
            Some(Route::Blob("a/blobs/b", "sha256:00"))
        );
        assert_eq!(
            parse_route("/v2/x/manifests/latest"),
            Some(Route::Manifest("x", "latest"))
        );
        assert_eq!(
            parse_route("/v2/x/referrers/sha256:0"),
            Some(Route::Referrers("x", "sha256:0"))
        );
        assert_eq!(parse_route("/v3/x"), None);
    }

    #[test]
    fn query_values_are_percent_decoded() {
        assert_eq!(
            query_value(Some("a=1&last=b%2Fc"), "last").as_deref(),
            Some("b/c")
        );
        assert_eq!(percent_encode("a/b:c"), "a%2Fb%3Ac");
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
