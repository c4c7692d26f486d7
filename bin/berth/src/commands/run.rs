//! `create` and `run`: create the container (pulling a missing image as docker does),
//! then for `run` attach, start, stream and exit with the container's status.

use std::sync::Arc;

use berth_client::ClientError;

use super::create::{create_body, RunArgs};
use super::transfer::{pull_image, PullOutput};
use crate::app::{App, StatusError};
use crate::stdio;

/// docker's run/create failure: `<prog>: <error>` plus the help hint, status 125.
fn run_error(verb: &str, message: impl std::fmt::Display, status: u8) -> anyhow::Error {
    StatusError::new(
        status,
        format!("berth: {message}\n\nRun 'berth {verb} --help' for more information"),
    )
    .into()
}

/// The image reference docker names in "Unable to find image": tagged `latest` when bare.
fn tagged(image: &str) -> String {
    if image.contains('@') || super::images::split_tag(image).is_some() {
        image.to_string()
    } else {
        format!("{image}:latest")
    }
}

/// Creates the container and returns its ID; warnings go to stderr.
async fn create_container(app: &App, args: &RunArgs, verb: &str) -> anyhow::Result<String> {
    if args.detach && !args.attach.is_empty() {
        // docker checks this before building the config, without the "docker:" prefix.
        return Err(StatusError::new(
            1,
            "conflicting options: cannot specify both --attach and --detach",
        )
        .into());
    }
    let body = create_body(args).map_err(|err| run_error(verb, err, 125))?;
    let mut pairs = Vec::new();
    if let Some(name) = &args.name {
        pairs.push(("name", name.clone()));
    }
    if let Some(platform) = &args.platform {
        pairs.push(("platform", platform.clone()));
    }
    let path = format!("/containers/create{}", berth_client::query(&pairs));
    if args.pull == "always" {
        pull_quietly(app, args, verb).await?;
    }
    let response = match app.client.post_json(&path, &body).await {
        Err(err)
            if err.is_not_found()
                && args.pull == "missing"
                && err.message().to_lowercase().contains("no such image") =>
        {
            eprintln!("Unable to find image '{}' locally", tagged(args.image()));
            pull_quietly(app, args, verb).await?;
            app.client.post_json(&path, &body).await
        }
        other => other,
    };
    let created: serde_json::Value = match response {
        Ok(response) => response
            .json()
            .await
            .map_err(|err| run_error(verb, err, 125))?,
        Err(err) => return Err(run_error(verb, err, 125)),
    };
    for warning in created["Warnings"].as_array().into_iter().flatten() {
        if let Some(text) = warning.as_str() {
            eprintln!("WARNING: {text}");
        }
    }
    let id = created["Id"].as_str().unwrap_or_default().to_string();
    if let Some(cidfile) = &args.cidfile {
        std::fs::write(cidfile, &id)?;
    }
    Ok(id)
}

/// Pulls for `run`/`create`: docker shows the progress on stderr unless `-q`.
async fn pull_quietly(app: &App, args: &RunArgs, verb: &str) -> anyhow::Result<()> {
    let output = if args.quiet {
        PullOutput::Silent
    } else {
        PullOutput::Run
    };
    pull_image(app, args.image(), args.platform.as_deref(), output, false)
        .await
        .map_err(|err| match err.downcast::<ClientError>() {
            Ok(client) => run_error(verb, client, 125),
            Err(other) => run_error(verb, format!("{other:#}"), 125),
        })
}

pub async fn create(app: &App, args: RunArgs) -> anyhow::Result<()> {
    let id = create_container(app, &args, "create").await?;
    app.print(&format!("{id}\n"))
}

/// docker's status for a failed start: 127 for a missing executable, 126 for one that
/// cannot be run, 125 otherwise.
fn start_status(message: &str) -> u8 {
    if message.contains("executable file not found")
        || message.contains("no such file or directory")
    {
        127
    } else if message.contains("permission denied") || message.contains("is a directory") {
        126
    } else {
        125
    }
}

pub async fn run(app: &App, args: RunArgs) -> anyhow::Result<()> {
    if args.tty
        && args.interactive
        && !args.detach
        && !std::io::IsTerminal::is_terminal(&std::io::stdin())
    {
        return Err(StatusError::new(1, "the input device is not a TTY").into());
    }
    let id = create_container(app, &args, "run").await?;
    let start_path = format!("/containers/{id}/start");
    if args.detach {
        if let Err(err) = app.client.post(&start_path).await {
            let status = start_status(&err.to_string());
            return Err(run_error("run", err, status));
        }
        return app.print(&format!("{id}\n"));
    }
    let attach: Vec<String> = args.attach.iter().map(|a| a.to_ascii_lowercase()).collect();
    let (stdin, stdout, stderr) = if attach.is_empty() {
        (args.interactive, true, true)
    } else {
        (
            attach.iter().any(|a| a == "stdin"),
            attach.iter().any(|a| a == "stdout"),
            attach.iter().any(|a| a == "stderr"),
        )
    };
    let flag = |on: bool| if on { "1" } else { "0" }.to_string();
    let mut pairs = vec![
        ("stream", "1".to_string()),
        ("stdin", flag(stdin)),
        ("stdout", flag(stdout)),
        ("stderr", flag(stderr)),
    ];
    if let Some(keys) = &args.detach_keys {
        pairs.push(("detachKeys", keys.clone()));
    }
    let upgraded = app
        .client
        .hijack(
            &format!("/containers/{id}/attach{}", berth_client::query(&pairs)),
            None,
        )
        .await
        .map_err(|err| run_error("run", err, 125))?;
    // Ask for the exit before starting, so a fast exit (or --rm removal) is never missed.
    let condition = if args.rm { "removed" } else { "next-exit" };
    let wait_client = app.client.clone();
    let wait_path = format!("/containers/{id}/wait?condition={condition}");
    let waiter = tokio::spawn(async move {
        let response = wait_client
            .request(
                berth_client::Method::POST,
                &wait_path,
                berth_client::RequestBody::Empty,
                &[],
            )
            .await?;
        response.json::<serde_json::Value>().await
    });
    let raw = if args.tty && stdin {
        stdio::RawTerminal::enable()
    } else {
        None
    };
    if let Err(err) = app.client.post(&start_path).await {
        drop(raw);
        waiter.abort();
        let status = start_status(&err.to_string());
        return Err(run_error("run", err, status));
    }
    let resize = if args.tty {
        stdio::follow_resizes(app.client.clone(), format!("/containers/{id}/resize"))
    } else {
        None
    };
    let signals = if !args.tty && args.sig_proxy {
        stdio::proxy_signals(Arc::clone(&app.client), id.clone())
    } else {
        Vec::new()
    };
    let streamed = stdio::pump(upgraded, args.tty, stdin).await;
    drop(raw);
    if let Some(resize) = resize {
        resize.abort();
    }
    for task in signals {
        task.abort();
    }
    streamed?;
    let waited = match waiter.await {
        Ok(result) => result.map_err(|err| run_error("run", err, 125))?,
        Err(err) => return Err(run_error("run", err, 125)),
    };
    if let Some(message) = waited["Error"]["Message"]
        .as_str()
        .filter(|m| !m.is_empty())
    {
        return Err(run_error("run", message, 125));
    }
    let code = waited["StatusCode"].as_i64().unwrap_or(0);
    if code == 0 {
        Ok(())
    } else {
        Err(StatusError::silent((code & 0xff) as u8).into())
    }
}
