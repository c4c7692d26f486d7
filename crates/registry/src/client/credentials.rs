//! Registry credentials as Docker finds them: `~/.docker/config.json` (`auths` with
//! base64 `user:password` or an identity token, `credsStore`, `credHelpers` run as
//! `docker-credential-<name> get`) and the Engine API's `X-Registry-Auth` header.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde::Deserialize;
use thiserror::Error;

/// What a client presents to a registry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Credentials {
    #[default]
    Anonymous,
    Basic {
        username: String,
        password: String,
    },
    /// An OAuth2 refresh token (Docker's `identitytoken`).
    IdentityToken(String),
}

#[derive(Debug, Error)]
pub enum CredentialsError {
    #[error("cannot read docker config {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid docker config {path}")]
    Config {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "invalid auth entry for {server} in the docker config (expected base64 of user:password)"
    )]
    AuthEntry { server: String },
    #[error("credential helper docker-credential-{helper} failed for {server}: {message}")]
    Helper {
        helper: String,
        server: String,
        message: String,
    },
    #[error("invalid X-Registry-Auth header (expected base64url JSON)")]
    RegistryAuth,
}

#[derive(Debug, Default, Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: HashMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

/// Keys Docker may have stored a registry under.
fn server_keys(host: &str) -> Vec<String> {
    let mut keys = vec![
        host.to_owned(),
        format!("https://{host}"),
        format!("http://{host}"),
    ];
    if matches!(
        host,
        "docker.io" | "index.docker.io" | "registry-1.docker.io"
    ) {
        keys.insert(0, "https://index.docker.io/v1/".to_owned());
    }
    keys
}

/// Credentials for `host` from a docker config file; anonymous when it has none.
pub fn from_docker_config(path: &Path, host: &str) -> Result<Credentials, CredentialsError> {
    let display = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Credentials::Anonymous),
        Err(source) => {
            return Err(CredentialsError::Read {
                path: display,
                source,
            })
        }
    };
    let config: DockerConfig =
        serde_json::from_str(&text).map_err(|source| CredentialsError::Config {
            path: display,
            source,
        })?;
    let keys = server_keys(host);
    let helper = keys
        .iter()
        .find_map(|k| config.cred_helpers.get(k))
        .or(config.creds_store.as_ref());
    if let Some(helper) = helper {
        // The helper is authoritative when configured; fall through to auths if it has none.
        if let Some(credentials) = run_helper(helper, &keys[0])? {
            return Ok(credentials);
        }
    }
    for key in &keys {
        if let Some(entry) = config.auths.get(key) {
            if let Some(token) = entry.identitytoken.as_ref().filter(|t| !t.is_empty()) {
                return Ok(Credentials::IdentityToken(token.clone()));
            }
            if let Some(auth) = entry.auth.as_ref().filter(|a| !a.is_empty()) {
                return decode_basic(auth).ok_or_else(|| CredentialsError::AuthEntry {
                    server: key.clone(),
                });
            }
        }
    }
    Ok(Credentials::Anonymous)
}

fn decode_basic(auth: &str) -> Option<Credentials> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (username, password) = text.split_once(':')?;
    Some(Credentials::Basic {
        username: username.to_owned(),
        password: password.to_owned(),
    })
}

#[derive(Deserialize)]
struct HelperReply {
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

/// Runs `docker-credential-<helper> get` with the server on stdin (the helper protocol);
/// `None` when the helper has no credentials for it.
fn run_helper(helper: &str, server: &str) -> Result<Option<Credentials>, CredentialsError> {
    let fail = |message: String| CredentialsError::Helper {
        helper: helper.to_owned(),
        server: server.to_owned(),
        message,
    };
    let mut child = Command::new(format!("docker-credential-{helper}"))
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(e.to_string()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(server.as_bytes())
            .map_err(|e| fail(e.to_string()))?;
    }
    let output = child.wait_with_output().map_err(|e| fail(e.to_string()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        if stdout.contains("credentials not found") {
            return Ok(None);
        }
        return Err(fail(stdout.trim().to_owned()));
    }
    let reply: HelperReply = serde_json::from_str(&stdout).map_err(|e| fail(e.to_string()))?;
    Ok(Some(if reply.username == "<token>" {
        Credentials::IdentityToken(reply.secret)
    } else {
        Credentials::Basic {
            username: reply.username,
            password: reply.secret,
        }
    }))
}

#[derive(Deserialize)]
struct RegistryAuth {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    identitytoken: String,
}

/// Decodes the Engine API's `X-Registry-Auth` (base64url JSON; padding optional).
pub fn from_registry_auth(header: &str) -> Result<Credentials, CredentialsError> {
    let trimmed = header.trim().trim_end_matches('=');
    if trimmed.is_empty() {
        return Ok(Credentials::Anonymous);
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(trimmed)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(trimmed))
        .map_err(|_| CredentialsError::RegistryAuth)?;
    let auth: RegistryAuth =
        serde_json::from_slice(&bytes).map_err(|_| CredentialsError::RegistryAuth)?;
    Ok(if !auth.identitytoken.is_empty() {
        Credentials::IdentityToken(auth.identitytoken)
    } else if auth.username.is_empty() && auth.password.is_empty() {
        Credentials::Anonymous
    } else {
        Credentials::Basic {
            username: auth.username,
            password: auth.password,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_config_auths_decode_basic_and_identity_tokens() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.json");
        let auth = base64::engine::general_purpose::STANDARD.encode("bob:pa:ss");
        let config = serde_json::json!({"auths": {
            "https://index.docker.io/v1/": {"auth": auth},
            "example.com:5000": {"identitytoken": "refresh"},
        }});
        std::fs::write(&path, config.to_string()).expect("write");
        assert_eq!(
            from_docker_config(&path, "docker.io").expect("read"),
            Credentials::Basic {
                username: "bob".into(),
                password: "pa:ss".into()
            }
        );
        assert_eq!(
            from_docker_config(&path, "example.com:5000").expect("read"),
            Credentials::IdentityToken("refresh".into())
        );
        assert_eq!(
            from_docker_config(&path, "other").expect("read"),
            Credentials::Anonymous
        );
        assert_eq!(
            from_docker_config(&dir.path().join("none"), "x").expect("read"),
            Credentials::Anonymous
        );
    }

    #[test]
    fn credential_helpers_are_run_with_the_server_on_stdin() {
        let dir = tempfile::tempdir().expect("tempdir");
        let helper = dir.path().join("docker-credential-berthtest");
        std::fs::write(
            &helper,
            "#!/bin/sh\nread server\necho \"{\\\"Username\\\":\\\"u-$server\\\",\\\"Secret\\\":\\\"s\\\"}\"\n",
        )
        .expect("write helper");
        std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        let path = dir.path().join("config.json");
        std::fs::write(&path, r#"{"credHelpers": {"reg.example": "berthtest"}}"#).expect("write");
        let old = std::env::var_os("PATH").unwrap_or_default();
        let mut paths = vec![dir.path().to_owned()];
        paths.extend(std::env::split_paths(&old));
        // The helper is found on PATH like Docker finds it; this test owns the variable.
        std::env::set_var("PATH", std::env::join_paths(paths).expect("join"));
        let found = from_docker_config(&path, "reg.example");
        std::env::set_var("PATH", old);
        assert_eq!(
            found.expect("helper"),
            Credentials::Basic {
                username: "u-reg.example".into(),
                password: "s".into()
            }
        );
    }

    #[test]
    fn x_registry_auth_is_base64url_json() {
        let json = r#"{"username":"a","password":"b>?","serveraddress":"r"}"#;
        let header = base64::engine::general_purpose::URL_SAFE.encode(json);
        assert_eq!(
            from_registry_auth(&header).expect("decode"),
            Credentials::Basic {
                username: "a".into(),
                password: "b>?".into()
            }
        );
        assert_eq!(
            from_registry_auth("").expect("empty"),
            Credentials::Anonymous
        );
        assert!(from_registry_auth("!!!").is_err());
    }
}
