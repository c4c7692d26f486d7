//! htpasswd basic authentication (bcrypt entries only, as distribution's htpasswd
//! backend): every request needs `Authorization: Basic` for a listed user, else 401 with a
//! `WWW-Authenticate: Basic` challenge.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use axum::http::{header, HeaderMap};
use base64::Engine as _;
use thiserror::Error;

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

/// Checks the request's credentials when htpasswd auth is configured. Verified header
/// values are remembered so bcrypt runs once per credential, not once per request.
pub(super) async fn check(state: &Shared, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(htpasswd) = state.config.htpasswd.clone() else {
        return Ok(());
    };
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(unauthorized)?;
    if state
        .auth_cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .contains(&value)
    {
        return Ok(());
    }
    let encoded = value.strip_prefix("Basic ").ok_or_else(unauthorized)?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(unauthorized)?;
    let (user, password) = decoded.split_once(':').ok_or_else(unauthorized)?;
    let (user, password) = (user.to_owned(), password.to_owned());
    let ok = tokio::task::spawn_blocking(move || htpasswd.verify(&user, &password)).await?;
    if !ok {
        return Err(unauthorized());
    }
    state
        .auth_cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(value);
    Ok(())
}
