//! `login` and `logout` against `~/.docker/config.json` (base64 `user:password` under
//! `auths`, as docker stores them without a credential helper), and the
//! `X-Registry-Auth` header pull and push send.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use clap::Args;

use crate::app::{App, StatusError};

/// docker's index server address for Docker Hub.
const DEFAULT_SERVER: &str = "https://index.docker.io/v1/";

#[derive(Args, Debug)]
pub struct LoginArgs {
    /// Username
    #[arg(short, long)]
    pub username: Option<String>,
    /// Password or Personal Access Token (PAT)
    #[arg(short, long)]
    pub password: Option<String>,
    /// Take the Password or Personal Access Token (PAT) from stdin
    #[arg(long)]
    pub password_stdin: bool,
    pub server: Option<String>,
}

#[derive(Args, Debug)]
pub struct LogoutArgs {
    pub server: Option<String>,
}

fn config_path(app: &App) -> PathBuf {
    app.config_dir.join("config.json")
}

fn read_config(app: &App) -> serde_json::Value {
    std::fs::read(config_path(app))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .filter(serde_json::Value::is_object)
        .unwrap_or_else(|| serde_json::json!({}))
}

fn write_config(app: &App, config: &serde_json::Value) -> anyhow::Result<()> {
    std::fs::create_dir_all(&app.config_dir)?;
    let path = config_path(app);
    let temporary = path.with_extension("json.tmp");
    let mut text = serde_json::to_string_pretty(config)?;
    text = text.replace("  ", "\t");
    std::fs::write(&temporary, text)?;
    std::fs::rename(&temporary, &path)?;
    Ok(())
}

/// The registry host of a reference's server address as docker keys `auths`.
fn server_key(server: Option<&str>) -> String {
    match server {
        None => DEFAULT_SERVER.to_string(),
        Some(s)
            if s == "docker.io" || s == "index.docker.io" || s.contains("index.docker.io/v1") =>
        {
            DEFAULT_SERVER.to_string()
        }
        Some(s) => s
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string(),
    }
}

pub async fn login(app: &App, args: LoginArgs) -> anyhow::Result<()> {
    let server = server_key(args.server.as_deref());
    let username = match &args.username {
        Some(user) => user.clone(),
        None => {
            print!("Username: ");
            std::io::stdout().flush()?;
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            line.trim().to_string()
        }
    };
    let password = if args.password_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line.trim_end_matches(['\n', '\r']).to_string()
    } else if let Some(password) = &args.password {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        password.clone()
    } else if std::io::stdin().is_terminal() {
        print!("Password: ");
        std::io::stdout().flush()?;
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line.trim_end_matches(['\n', '\r']).to_string()
    } else {
        return Err(StatusError::new(
            1,
            "Error: Cannot perform an interactive login from a non TTY device",
        )
        .into());
    };
    if username.is_empty() || password.is_empty() {
        return Err(StatusError::new(1, "Error: Username and password required").into());
    }
    let body =
        serde_json::json!({"username": username, "password": password, "serveraddress": server});
    let response: serde_json::Value = app.client.post_json("/auth", &body).await?.json().await?;
    let mut config = read_config(app);
    let entry = serde_json::json!({"auth": base64(format!("{username}:{password}").as_bytes())});
    let previous = config["auths"][&server].clone();
    if let Some(object) = config.as_object_mut() {
        let auths = object
            .entry("auths")
            .or_insert_with(|| serde_json::json!({}));
        if let Some(auths) = auths.as_object_mut() {
            auths.insert(server.clone(), entry.clone());
        }
    }
    write_config(app, &config)?;
    // docker warns about plain-text storage when it wrote new credentials.
    if previous != entry {
        eprintln!(
            "\nWARNING! Your credentials are stored unencrypted in '{}'.\nConfigure a credential helper to remove this warning. See\nhttps://docs.docker.com/go/credential-store/\n",
            config_path(app).display()
        );
    }
    let status = response["Status"].as_str().unwrap_or("Login Succeeded");
    app.print(&format!("{status}\n"))
}

pub async fn logout(app: &App, args: LogoutArgs) -> anyhow::Result<()> {
    let server = server_key(args.server.as_deref());
    let mut config = read_config(app);
    // docker announces the removal whether or not credentials were stored.
    app.print(&format!("Removing login credentials for {server}\n"))?;
    let removed = config
        .get_mut("auths")
        .and_then(|auths| auths.as_object_mut())
        .and_then(|auths| auths.remove(&server))
        .is_some();
    if removed {
        write_config(app, &config)?;
    }
    Ok(())
}

/// The `X-Registry-Auth` value for a normalised reference: the stored credentials of its
/// registry, or docker's empty `{}`, base64url-encoded.
pub fn auth_header(app: &App, full_reference: &str) -> String {
    let domain = full_reference.split('/').next().unwrap_or("docker.io");
    let key = if domain == "docker.io" {
        DEFAULT_SERVER.to_string()
    } else {
        domain.to_string()
    };
    let config = read_config(app);
    let stored = config["auths"][&key]["auth"]
        .as_str()
        .and_then(decode_base64);
    let body = match stored.as_deref().and_then(|pair| pair.split_once(':')) {
        Some((user, password)) => {
            serde_json::json!({"username": user, "password": password, "serveraddress": key})
        }
        None => serde_json::json!({}),
    };
    base64_url(body.to_string().as_bytes())
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub fn base64(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// URL-safe base64 (docker's `base64.URLEncoding`, padded).
fn base64_url(bytes: &[u8]) -> String {
    base64(bytes).replace('+', "-").replace('/', "_")
}

fn decode_base64(text: &str) -> Option<String> {
    String::from_utf8(decode_base64_bytes(text)?).ok()
}

/// Decodes standard or URL-safe base64 (padding optional).
pub fn decode_base64_bytes(text: &str) -> Option<Vec<u8>> {
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::new();
    for c in text.bytes().filter(|c| *c != b'=') {
        let value = match c {
            b'-' => 62,
            b'_' => 63,
            _ => ALPHABET.iter().position(|a| *a == c)? as u32,
        };
        bits = (bits << 6) | value;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_like_go() {
        assert_eq!(base64(b"{}"), "e30=");
        assert_eq!(base64(b"user:pass"), "dXNlcjpwYXNz");
        assert_eq!(decode_base64("dXNlcjpwYXNz").as_deref(), Some("user:pass"));
        assert_eq!(base64_url(&[0xfb, 0xff]), "-_8=");
    }

    #[test]
    fn servers_key_like_docker() {
        assert_eq!(server_key(None), DEFAULT_SERVER);
        assert_eq!(server_key(Some("docker.io")), DEFAULT_SERVER);
        assert_eq!(
            server_key(Some("https://localhost:5000/")),
            "localhost:5000"
        );
    }
}
