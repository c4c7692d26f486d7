//! `logs`: a container's output, demultiplexed unless it has a TTY.

use berth_client::{stdcopy, Method, RequestBody};
use clap::Args;
use tokio::io::AsyncWriteExt;

use crate::app::App;
use crate::format::time::parse_rfc3339;
use crate::format::units::now_seconds;

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Show extra details provided to logs
    #[arg(long)]
    pub details: bool,
    /// Follow log output
    #[arg(short, long)]
    pub follow: bool,
    /// Show logs since timestamp or relative (e.g. 42m for 42 minutes)
    #[arg(long)]
    pub since: Option<String>,
    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show timestamps
    #[arg(short, long)]
    pub timestamps: bool,
    /// Show logs before a timestamp or relative (e.g. 42m for 42 minutes)
    #[arg(long)]
    pub until: Option<String>,
    pub container: String,
}

/// docker's `GetTimestamp`: a Go duration before now, an RFC 3339 time, or Unix seconds,
/// as the `seconds.nanoseconds` text the API takes.
pub fn timestamp(value: &str) -> String {
    if let Some(nanos) = super::create::go_duration(value).filter(|_| value != "0") {
        let at = now_seconds() - nanos as f64 / 1e9;
        return format!("{at:.9}");
    }
    if let Some(at) = parse_rfc3339(value) {
        return format!("{at:.9}");
    }
    if let Some(at) = parse_rfc3339(&format!("{value}Z")) {
        return format!("{at:.9}");
    }
    value.to_string()
}

pub async fn logs(app: &App, args: LogsArgs) -> anyhow::Result<()> {
    let segment = super::segment(&args.container);
    let inspect: serde_json::Value = app
        .client
        .get_json(&format!("/containers/{segment}/json"))
        .await?;
    let tty = inspect["Config"]["Tty"].as_bool().unwrap_or(false);
    let flag = |on: bool| if on { "1" } else { "0" }.to_string();
    let mut pairs = vec![("stdout", "1".to_string()), ("stderr", "1".to_string())];
    if let Some(since) = &args.since {
        pairs.push(("since", timestamp(since)));
    }
    if let Some(until) = &args.until {
        pairs.push(("until", timestamp(until)));
    }
    pairs.push(("timestamps", flag(args.timestamps)));
    pairs.push(("follow", flag(args.follow)));
    pairs.push(("tail", args.tail.clone()));
    pairs.push(("details", flag(args.details)));
    let path = format!("/containers/{segment}/logs{}", berth_client::query(&pairs));
    let mut response = app
        .client
        .request(Method::GET, &path, RequestBody::Empty, &[])
        .await?;
    let mut stdout = tokio::io::stdout();
    if tty {
        while let Some(chunk) = response.chunk().await? {
            stdout.write_all(&chunk).await?;
            stdout.flush().await?;
        }
        return Ok(());
    }
    let (mut writer, reader) = tokio::io::duplex(64 * 1024);
    let feeder = tokio::spawn(async move {
        while let Ok(Some(chunk)) = response.chunk().await {
            if writer.write_all(&chunk).await.is_err() {
                break;
            }
        }
    });
    let mut stderr = tokio::io::stderr();
    let result = stdcopy::demux(reader, &mut stdout, &mut stderr).await;
    feeder.abort();
    result.map_err(anyhow::Error::from)
}
