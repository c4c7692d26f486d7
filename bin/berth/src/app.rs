//! The invocation context (daemon client, config directory, output) and the mapping of
//! command failures to docker's messages and exit statuses.

use std::io::Write;
use std::path::PathBuf;

use berth_client::{Client, ClientError, Host};

use crate::cli::Cli;

/// A failure with the exit status docker uses for it.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct StatusError {
    pub status: u8,
    /// Printed to stderr unless empty.
    pub message: String,
}

impl StatusError {
    pub fn new(status: u8, message: impl Into<String>) -> StatusError {
        StatusError {
            status,
            message: message.into(),
        }
    }

    /// An exit status with nothing printed (a container's own exit code).
    pub fn silent(status: u8) -> StatusError {
        StatusError::new(status, "")
    }
}

/// What every command gets.
pub struct App {
    pub client: std::sync::Arc<Client>,
    pub config_dir: PathBuf,
}

impl App {
    /// Writes `text` to stdout at once (commands build their whole output first).
    pub fn print(&self, text: &str) -> anyhow::Result<()> {
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())?;
        out.flush()?;
        Ok(())
    }
}

fn config_dir(flag: Option<&str>) -> PathBuf {
    if let Some(dir) = flag {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    PathBuf::from(home).join(".docker")
}

/// Runs the parsed command line and returns the process exit status.
pub async fn run(cli: Cli) -> u8 {
    let host = match Host::resolve(cli.host.last().map(String::as_str)) {
        Ok(host) => host,
        Err(err) => {
            eprintln!("{err}");
            return 1;
        }
    };
    let client = match std::env::var("DOCKER_API_VERSION") {
        Ok(version) if !version.is_empty() => Client::with_version(host, &version),
        _ => Client::new(host),
    };
    let app = App {
        client: std::sync::Arc::new(client),
        config_dir: config_dir(cli.config.as_deref()),
    };
    match crate::commands::dispatch(&app, cli.command).await {
        Ok(()) => 0,
        Err(err) => report(err),
    }
}

/// Prints a failure as docker does and returns its status (1 unless it carries one).
pub fn report(err: anyhow::Error) -> u8 {
    if let Some(status) = err.downcast_ref::<StatusError>() {
        if !status.message.is_empty() {
            eprintln!("{}", status.message);
        }
        return status.status;
    }
    if let Some(client) = err.downcast_ref::<ClientError>() {
        eprintln!("{client}");
        return 1;
    }
    eprintln!("{err:#}");
    1
}
