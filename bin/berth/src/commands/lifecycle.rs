//! Container verbs on one or more targets: `start`, `stop`, `restart`, `kill`, `rm`,
//! `wait`, `rename`, `pause` and `unpause`; each success prints the name as given.

use clap::Args;

use super::{for_each, segment};
use crate::app::{App, StatusError};
use crate::stdio;

#[derive(Args, Debug)]
pub struct ContainersArgs {
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short, long)]
    pub attach: bool,
    /// Attach container's STDIN
    #[arg(short, long)]
    pub interactive: bool,
    #[arg(long)]
    pub detach_keys: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct StopArgs {
    /// Signal to send to the container
    #[arg(short, long)]
    pub signal: Option<String>,
    /// Seconds to wait before killing the container
    #[arg(short, long, visible_alias = "time", allow_negative_numbers = true)]
    pub timeout: Option<i64>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short, long)]
    pub signal: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short, long)]
    pub force: bool,
    /// Remove the specified link
    #[arg(short, long)]
    pub link: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short, long)]
    pub volumes: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RenameArgs {
    pub container: String,
    pub new_name: String,
}

pub async fn start(app: &App, args: StartArgs) -> anyhow::Result<()> {
    if args.attach || args.interactive {
        return start_attached(app, &args).await;
    }
    let mut failed = Vec::new();
    for container in &args.containers {
        match app
            .client
            .post(&format!("/containers/{}/start", segment(container)))
            .await
        {
            Ok(()) => println!("{container}"),
            Err(err) => {
                eprintln!("{err}");
                failed.push(container.clone());
            }
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(StatusError::new(
            1,
            format!("Error: failed to start containers: {}", failed.join(", ")),
        )
        .into())
    }
}

/// `start -a [-i]`: attach, start, stream, then exit with the container's status.
async fn start_attached(app: &App, args: &StartArgs) -> anyhow::Result<()> {
    let [container] = args.containers.as_slice() else {
        return Err(
            StatusError::new(1, "you cannot start and attach multiple containers at once").into(),
        );
    };
    let inspect: serde_json::Value = app
        .client
        .get_json(&format!("/containers/{}/json", segment(container)))
        .await?;
    let id = inspect["Id"].as_str().unwrap_or(container).to_string();
    let tty = inspect["Config"]["Tty"].as_bool().unwrap_or(false);
    let stdin = args.interactive && inspect["Config"]["OpenStdin"].as_bool().unwrap_or(false);
    let mut query = format!(
        "?stream=1&stdout=1&stderr=1&stdin={}",
        if stdin { 1 } else { 0 }
    );
    if let Some(keys) = &args.detach_keys {
        query.push_str(&format!("&detachKeys={}", berth_client::encode_query(keys)));
    }
    let upgraded = app
        .client
        .hijack(&format!("/containers/{id}/attach{query}"), None)
        .await?;
    let wait_client = app.client.clone();
    let waiter = tokio::spawn(async move {
        let response = wait_client
            .request(
                berth_client::Method::POST,
                &format!("/containers/{id}/wait?condition=next-exit"),
                berth_client::RequestBody::Empty,
                &[],
            )
            .await?;
        response.json::<serde_json::Value>().await
    });
    let raw = if tty && stdin {
        stdio::RawTerminal::enable()
    } else {
        None
    };
    app.client
        .post(&format!("/containers/{}/start", segment(container)))
        .await?;
    let signals = if tty {
        Vec::new()
    } else {
        stdio::proxy_signals(app.client.clone(), container.clone())
    };
    let streamed = stdio::pump(upgraded, tty, stdin).await;
    drop(raw);
    for task in signals {
        task.abort();
    }
    streamed?;
    let waited = waiter.await??;
    let code = waited["StatusCode"].as_i64().unwrap_or(0);
    if code == 0 {
        Ok(())
    } else {
        Err(StatusError::silent((code & 0xff) as u8).into())
    }
}

/// `stop` and `restart` (`verb`), with `-t` and `-s`.
pub async fn stop(app: &App, args: StopArgs, verb: &str) -> anyhow::Result<()> {
    let mut pairs = Vec::new();
    if let Some(timeout) = args.timeout {
        pairs.push(("t", timeout.to_string()));
    }
    if let Some(signal) = &args.signal {
        pairs.push(("signal", signal.clone()));
    }
    let query = berth_client::query(&pairs);
    let client = app.client.clone();
    for_each(&args.containers, |container| {
        let client = client.clone();
        let path = format!("/containers/{}/{verb}{query}", segment(&container));
        async move {
            client.post(&path).await?;
            Ok(Some(container))
        }
    })
    .await
}

pub async fn kill(app: &App, args: KillArgs) -> anyhow::Result<()> {
    let query = match &args.signal {
        Some(signal) => berth_client::query(&[("signal", signal.clone())]),
        None => String::new(),
    };
    let client = app.client.clone();
    for_each(&args.containers, |container| {
        let client = client.clone();
        let path = format!("/containers/{}/kill{query}", segment(&container));
        async move {
            client.post(&path).await?;
            Ok(Some(container))
        }
    })
    .await
}

pub async fn rm(app: &App, args: RmArgs) -> anyhow::Result<()> {
    let mut pairs = Vec::new();
    if args.force {
        pairs.push(("force", "1".to_string()));
    }
    if args.volumes {
        pairs.push(("v", "1".to_string()));
    }
    if args.link {
        pairs.push(("link", "1".to_string()));
    }
    let query = berth_client::query(&pairs);
    let client = app.client.clone();
    let force = args.force;
    for_each(&args.containers, |container| {
        let client = client.clone();
        let path = format!("/containers/{}{query}", segment(&container));
        async move {
            match client.delete(&path).await {
                Ok(_) => Ok(Some(container)),
                // docker reports a missing container under --force but still succeeds.
                Err(err) if force && err.is_not_found() => {
                    eprintln!("{err}");
                    Ok(None)
                }
                Err(err) => Err(err.into()),
            }
        }
    })
    .await
}

pub async fn wait(app: &App, args: ContainersArgs) -> anyhow::Result<()> {
    let client = app.client.clone();
    for_each(&args.containers, |container| {
        let client = client.clone();
        let path = format!("/containers/{}/wait", segment(&container));
        async move {
            let response = client
                .request(
                    berth_client::Method::POST,
                    &path,
                    berth_client::RequestBody::Empty,
                    &[],
                )
                .await?;
            let waited: serde_json::Value = response.json().await?;
            Ok(Some(waited["StatusCode"].as_i64().unwrap_or(0).to_string()))
        }
    })
    .await
}

pub async fn rename(app: &App, args: RenameArgs) -> anyhow::Result<()> {
    let new_name = args.new_name.trim();
    if args.container.trim().is_empty() || new_name.is_empty() {
        return Err(StatusError::new(1, "Error: neither old nor new names may be empty").into());
    }
    let path = format!(
        "/containers/{}/rename{}",
        segment(&args.container),
        berth_client::query(&[("name", new_name.to_string())])
    );
    app.client
        .post(&path)
        .await
        .map_err(|err| anyhow::anyhow!("{err}"))
}

/// `pause` / `unpause` (`verb`).
pub async fn simple(app: &App, args: ContainersArgs, verb: &str) -> anyhow::Result<()> {
    let client = app.client.clone();
    for_each(&args.containers, |container| {
        let client = client.clone();
        let path = format!("/containers/{}/{verb}", segment(&container));
        async move {
            client.post(&path).await?;
            Ok(Some(container))
        }
    })
    .await
}
