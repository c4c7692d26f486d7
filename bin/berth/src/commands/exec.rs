//! `exec` and `attach`: hijacked streams into a running container.

use clap::Args;
use serde_json::json;

use super::segment;
use crate::app::{App, StatusError};
use crate::stdio;

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short, long)]
    pub detach: bool,
    #[arg(long)]
    pub detach_keys: Option<String>,
    /// Set environment variables
    #[arg(short, long)]
    pub env: Vec<String>,
    #[arg(long)]
    pub env_file: Vec<String>,
    /// Keep STDIN open even if not attached
    #[arg(short, long)]
    pub interactive: bool,
    /// Give extended privileges to the command
    #[arg(long)]
    pub privileged: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// Username or UID (format: "<name|uid>[:<group|gid>]")
    #[arg(short, long)]
    pub user: Option<String>,
    /// Working directory inside the container
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// CONTAINER COMMAND [ARG...]
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true, num_args = 2..)]
    pub command: Vec<String>,
}

pub async fn exec(app: &App, args: ExecArgs) -> anyhow::Result<()> {
    let container = &args.command[0];
    if args.tty
        && args.interactive
        && !args.detach
        && !std::io::IsTerminal::is_terminal(&std::io::stdin())
    {
        return Err(StatusError::new(1, "the input device is not a TTY").into());
    }
    let attach_output = !args.detach;
    let env: Vec<String> = args
        .env
        .iter()
        .filter_map(|e| {
            if e.contains('=') {
                Some(e.clone())
            } else {
                std::env::var(e).ok().map(|v| format!("{e}={v}"))
            }
        })
        .collect();
    let mut body = json!({
        "User": args.user.clone().unwrap_or_default(),
        "Privileged": args.privileged,
        "Tty": args.tty,
        "AttachStdin": args.interactive && !args.detach,
        "AttachStdout": attach_output,
        "AttachStderr": attach_output,
        "Detach": args.detach,
        "Env": env,
        "WorkingDir": args.workdir.clone().unwrap_or_default(),
        "Cmd": &args.command[1..],
    });
    if let Some(keys) = &args.detach_keys {
        body["DetachKeys"] = json!(keys);
    }
    let created: serde_json::Value = app
        .client
        .post_json(&format!("/containers/{}/exec", segment(container)), &body)
        .await?
        .json()
        .await?;
    let id = created["Id"].as_str().unwrap_or_default().to_string();
    if args.detach {
        app.client
            .post_json(
                &format!("/exec/{id}/start"),
                &json!({"Detach": true, "Tty": args.tty}),
            )
            .await?
            .bytes()
            .await?;
        return Ok(());
    }
    let upgraded = app
        .client
        .hijack(
            &format!("/exec/{id}/start"),
            Some(&json!({"Detach": false, "Tty": args.tty})),
        )
        .await?;
    let raw = if args.tty && args.interactive {
        stdio::RawTerminal::enable()
    } else {
        None
    };
    let resize = if args.tty {
        stdio::follow_resizes(app.client.clone(), format!("/exec/{id}/resize"))
    } else {
        None
    };
    let streamed = stdio::pump(upgraded, args.tty, args.interactive).await;
    drop(raw);
    if let Some(resize) = resize {
        resize.abort();
    }
    streamed?;
    let inspect: serde_json::Value = app.client.get_json(&format!("/exec/{id}/json")).await?;
    let code = inspect["ExitCode"].as_i64().unwrap_or(0);
    if code == 0 {
        Ok(())
    } else {
        Err(StatusError::silent((code & 0xff) as u8).into())
    }
}

#[derive(Args, Debug)]
pub struct AttachArgs {
    #[arg(long)]
    pub detach_keys: Option<String>,
    /// Do not attach STDIN
    #[arg(long)]
    pub no_stdin: bool,
    /// Proxy all received signals to the process
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub sig_proxy: bool,
    pub container: String,
}

pub async fn attach(app: &App, args: AttachArgs) -> anyhow::Result<()> {
    let inspect: serde_json::Value = app
        .client
        .get_json(&format!("/containers/{}/json", segment(&args.container)))
        .await?;
    if !inspect["State"]["Running"].as_bool().unwrap_or(false) {
        return Err(StatusError::new(
            1,
            "You cannot attach to a stopped container, start it first",
        )
        .into());
    }
    if inspect["State"]["Paused"].as_bool().unwrap_or(false) {
        return Err(StatusError::new(
            1,
            "You cannot attach to a paused container, unpause it first",
        )
        .into());
    }
    let id = inspect["Id"]
        .as_str()
        .unwrap_or(&args.container)
        .to_string();
    let tty = inspect["Config"]["Tty"].as_bool().unwrap_or(false);
    let stdin = !args.no_stdin && inspect["Config"]["OpenStdin"].as_bool().unwrap_or(false);
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
    let raw = if tty && stdin {
        stdio::RawTerminal::enable()
    } else {
        None
    };
    let resize = if tty {
        stdio::follow_resizes(app.client.clone(), format!("/containers/{id}/resize"))
    } else {
        None
    };
    let signals = if !tty && args.sig_proxy {
        stdio::proxy_signals(app.client.clone(), id.clone())
    } else {
        Vec::new()
    };
    let streamed = stdio::pump(upgraded, tty, stdin).await;
    drop(raw);
    if let Some(resize) = resize {
        resize.abort();
    }
    for task in signals {
        task.abort();
    }
    streamed?;
    let after: serde_json::Value = app
        .client
        .get_json(&format!("/containers/{id}/json"))
        .await?;
    if after["State"]["Running"].as_bool().unwrap_or(false) {
        return Ok(());
    }
    let code = after["State"]["ExitCode"].as_i64().unwrap_or(0);
    if code == 0 {
        Ok(())
    } else {
        Err(StatusError::silent((code & 0xff) as u8).into())
    }
}
