//! htpasswd basic authentication (bcrypt entries only, as distribution's htpasswd
//! backend): every request needs `Authorization: Basic` for a listed user, else 401 with a
//! `WWW-Authenticate: Basic` challenge.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use base64::Engine as _;
use thiserror::Error;

use super::token::{parse_scope, Access, SERVICE};
use super::Shared;
use crate::error::{ApiError, ErrorCode};

#[derive(Debug, Error)]
pub enum HtpasswdError {
    #[error("cannot read htpasswd file {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("htpasswd file {} line {line}: only bcrypt entries (user:$2y$...) are supported", path.display())]
    Entry { path: PathBuf, line: usize },
}

/// Users and their bcrypt hashes.
#[derive(Debug, Clone, Default)]
pub struct Htpasswd {
    users: HashMap<String, String>,
}

impl Htpasswd {
    pub fn load(path: &Path) -> Result<Htpasswd, HtpasswdError> {
        let text = std::fs::read_to_string(path).map_err(|source| HtpasswdError::Read {
            path: path.to_owned(),
            source,
        })?;
        Htpasswd::parse(&text).map_err(|line| HtpasswdError::Entry {
            path: path.to_owned(),
            line,
        })
    }

    /// Parses `user:hash` lines; the error is the 1-based number of a bad line.
    pub fn parse(text: &str) -> Result<Htpasswd, usize> {
        let mut users = HashMap::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match line.split_once(':') {
                Some((user, hash)) if hash.starts_with("$2") => {
                    users.insert(user.to_owned(), hash.to_owned());
                }
                _ => return Err(index + 1),
            }
        }
        Ok(Htpasswd { users })
    }

    /// Whether the password matches the user's hash (bcrypt: slow on purpose).
    pub fn verify(&self, user: &str, password: &str) -> bool {
        self.users
            .get(user)
            .is_some_and(|hash| bcrypt::verify(password, hash).unwrap_or(false))
    }
}

fn unauthorized() -> ApiError {
    ApiError::new(ErrorCode::Unauthorized, "authentication required")
}

/// The `WWW-Authenticate` value for a request, when auth is on. A bearer challenge names
/// the scope the request needs, so clients can ask the token endpoint for exactly that.
pub(super) fn challenge(state: &Shared, request: &Request) -> Option<HeaderValue> {
    if let Some(token) = &state.config.token {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("localhost");
        let scheme = if token.https { "https" } else { "http" };
        let mut value = format!("Bearer realm=\"{scheme}://{host}/token\",service=\"{SERVICE}\"");
        if let Some((name, action)) = super::route_scope(request) {
            value.push_str(&format!(",scope=\"repository:{name}:{action}\""));
        }
        return HeaderValue::from_str(&value).ok();
    }
    state
        .config
        .htpasswd
        .as_ref()
        .map(|_| HeaderValue::from_static("Basic realm=\"berth-registry\""))
}

/// Verifies `Authorization: Basic` against the htpasswd users; returns the user. Verified
/// header values are remembered so bcrypt runs once per credential, not once per request.
async fn verify_basic(
    state: &Shared,
    htpasswd: &Htpasswd,
    headers: &HeaderMap,
) -> Result<String, ApiError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(unauthorized)?;
    let encoded = value.strip_prefix("Basic ").ok_or_else(unauthorized)?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(unauthorized)?;
    let (user, password) = decoded.split_once(':').ok_or_else(unauthorized)?;
    let (user, password) = (user.to_owned(), password.to_owned());
    if state
        .auth_cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .contains(&value)
    {
        return Ok(user);
    }
    let htpasswd = htpasswd.clone();
    let name = user.clone();
    let ok = tokio::task::spawn_blocking(move || htpasswd.verify(&name, &password)).await?;
    if !ok {
        return Err(unauthorized());
    }
    state
        .auth_cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(value);
    Ok(user)
}

/// Checks the request's credentials for `action` on repository `name` when auth is on.
pub(super) async fn check(
    state: &Shared,
    headers: &HeaderMap,
    name: Option<&str>,
    action: &str,
) -> Result<(), ApiError> {
    if let Some(token) = &state.config.token {
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(unauthorized)?;
        if !token.allows(bearer.trim(), name, action) {
            return Err(ApiError::new(
                ErrorCode::Unauthorized,
                "token missing, expired or without the needed scope (ask /token for it)",
            ));
        }
        return Ok(());
    }
    if let Some(htpasswd) = &state.config.htpasswd {
        verify_basic(state, htpasswd, headers).await?;
    }
    Ok(())
}

/// `GET /token`: distribution's token endpoint for our own registry.
pub(super) async fn issue_token(
    state: &Shared,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Response, ApiError> {
    let Some(token) = state.config.token.clone() else {
        return Err(unauthorized());
    };
    let subject = match &state.config.htpasswd {
        Some(htpasswd) => verify_basic(state, htpasswd, headers).await?,
        None => String::new(),
    };
    let access: Vec<Access> = super::form_pairs(query.unwrap_or(""))
        .into_iter()
        .filter(|(k, _)| k == "scope")
        .flat_map(|(_, v)| v.split(' ').filter_map(parse_scope).collect::<Vec<_>>())
        .collect();
    let signed = token.issue(&subject, access);
    let body = serde_json::json!({
        "token": signed,
        "access_token": signed,
        "expires_in": token.ttl.as_secs(),
    });
    Ok(super::json_response(StatusCode::OK, body.to_string()))
}
