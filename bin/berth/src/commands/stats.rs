//! `stats`: a live table of containers' resource usage, as the docker CLI draws it. One
//! streaming `/containers/{id}/stats` request per container feeds its row; the table is
//! redrawn every 500 ms from the top-left corner, each line erased to its end and the rest
//! of the screen cleared below it (no full-screen clear, so it does not flicker). Without
//! container names, container events add started (with `-a`, created) containers and
//! remove dead ones. `--no-stream` waits for one sample of each and prints once.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_client::{Client, Method, RequestBody};
use clap::Args;

use crate::app::{App, StatusError};
use crate::format::units::{bytes_size, human_size_precision};
use crate::format::{object, truncate_id, ListFormat, Value};

#[derive(Args, Debug)]
pub struct StatsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Disable streaming stats and only pull the first result
    #[arg(long)]
    pub no_stream: bool,
    /// Do not truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    pub containers: Vec<String>,
}

const STATS_TABLE: &str = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";
/// How often the table is redrawn (docker's ticker).
const REDRAW: Duration = Duration::from_millis(500);
/// A container without a sample for this long shows `--` (docker's collector timeout).
const STALE: Duration = Duration::from_secs(2);

/// What the last sample of one container said.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    pub id: String,
    /// With its leading `/`, as the API sends it.
    pub name: String,
    pub cpu_percent: f64,
    pub memory: f64,
    pub memory_limit: f64,
    pub memory_percent: f64,
    pub network_rx: f64,
    pub network_tx: f64,
    pub block_read: f64,
    pub block_write: f64,
    pub pids: i64,
}

/// One row of the table: the name or ID it was asked for and its latest sample.
struct Tracked {
    container: String,
    sample: Option<Sample>,
    updated: Option<Instant>,
    error: Option<String>,
    /// A sample or an error arrived (`--no-stream` waits for every row to get one).
    settled: bool,
}

type Rows = Arc<Mutex<Vec<Tracked>>>;

fn lock(rows: &Rows) -> std::sync::MutexGuard<'_, Vec<Tracked>> {
    rows.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Adds `container` unless it is tracked already; returns whether it was added.
fn track(rows: &Rows, container: &str) -> bool {
    let mut rows = lock(rows);
    if rows.iter().any(|r| r.container == container) {
        return false;
    }
    rows.push(Tracked {
        container: container.to_string(),
        sample: None,
        updated: None,
        error: None,
        settled: false,
    });
    true
}

fn untrack(rows: &Rows, container: &str) {
    lock(rows).retain(|r| r.container != container);
}

pub async fn stats(app: &App, args: StatsArgs) -> anyhow::Result<()> {
    let rows: Rows = Arc::new(Mutex::new(Vec::new()));
    let stream = !args.no_stream;
    let show_all = args.containers.is_empty();
    if show_all {
        if stream {
            // Subscribed before listing, so that a start in between is not missed.
            watch_events(app.client.clone(), rows.clone(), args.all).await?;
        }
        let query = if args.all { "?all=1" } else { "" };
        let list: serde_json::Value = app
            .client
            .get_json(&format!("/containers/json{query}"))
            .await?;
        for id in list
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["Id"].as_str())
        {
            if track(&rows, id) {
                spawn_collector(app.client.clone(), rows.clone(), id.to_string(), stream);
            }
        }
    } else {
        for name in &args.containers {
            if track(&rows, name) {
                spawn_collector(app.client.clone(), rows.clone(), name.clone(), stream);
            }
        }
    }
    wait_first_samples(&rows).await;
    if !show_all {
        let errors: Vec<String> = lock(&rows).iter().filter_map(|r| r.error.clone()).collect();
        if !errors.is_empty() {
            return Err(StatusError::new(1, errors.join("\n")).into());
        }
    }
    let format = ListFormat::new(args.format.as_deref(), STATS_TABLE);
    let trunc = !args.no_trunc;
    if !stream {
        let rendered = render(&format, &entries(&rows, trunc))?;
        if lock(&rows).is_empty() {
            return Ok(());
        }
        return app.print(&rendered);
    }
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + REDRAW, REDRAW);
    loop {
        ticker.tick().await;
        let current = entries(&rows, trunc);
        let table = render(&format, &current)?;
        app.print(&redraw(&table))?;
        if current.is_empty() && !show_all {
            return Ok(());
        }
    }
}

/// docker's redraw: cursor home, the table, then the same text again line by line with
/// each line erased past its end (`Println(line, "\x1b[K")`: a space before the escape),
/// then the screen cleared below.
fn redraw(table: &str) -> String {
    let first = format!("\x1b[H{table}");
    let mut out = first.clone();
    for line in first.split('\n') {
        out.push_str(line);
        out.push_str(" \x1b[K\n");
    }
    out.push_str("\x1b[J");
    out
}

fn render(format: &ListFormat, rows: &[Value]) -> anyhow::Result<String> {
    let header = object(
        [
            ("ID", "CONTAINER ID"),
            ("Name", "NAME"),
            ("CPUPerc", "CPU %"),
            ("MemUsage", "MEM USAGE / LIMIT"),
            ("MemPerc", "MEM %"),
            ("NetIO", "NET I/O"),
            ("BlockIO", "BLOCK I/O"),
            ("PIDs", "PIDS"),
            ("Container", "CONTAINER"),
        ]
        .map(|(k, v)| (k, Value::str(v))),
    );
    Ok(format.render(&header, rows)?)
}

/// The template contexts of every tracked row, in the order they were added.
fn entries(rows: &Rows, trunc: bool) -> Vec<Value> {
    let now = Instant::now();
    lock(rows)
        .iter()
        .map(|r| {
            let fresh = r.updated.is_some_and(|t| now.duration_since(t) < STALE);
            let sample = r.sample.as_ref().filter(|_| fresh && r.error.is_none());
            entry(&r.container, sample, trunc)
        })
        .collect()
}

/// Waits until every tracked container has a sample or an error (or went stale).
async fn wait_first_samples(rows: &Rows) {
    let start = Instant::now();
    loop {
        let settled = lock(rows).iter().all(|r| r.settled);
        if settled || start.elapsed() > STALE {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads one container's stats stream into its row until it ends or the row is dropped.
fn spawn_collector(client: Arc<Client>, rows: Rows, container: String, stream: bool) {
    tokio::spawn(async move {
        let path = format!(
            "/containers/{}/stats?stream={}&one-shot=0",
            super::segment(&container),
            if stream { 1 } else { 0 }
        );
        let update = |result: Result<Sample, String>| {
            let mut rows = lock(&rows);
            let Some(row) = rows.iter_mut().find(|r| r.container == container) else {
                return false;
            };
            row.settled = true;
            match result {
                Ok(sample) => {
                    row.sample = Some(sample);
                    row.updated = Some(Instant::now());
                    row.error = None;
                }
                Err(e) => row.error = Some(e),
            }
            true
        };
        let mut response = match client
            .request(Method::GET, &path, RequestBody::Empty, &[])
            .await
        {
            Ok(response) => response,
            Err(e) => {
                update(Err(e.message()));
                return;
            }
        };
        loop {
            match response.json_line::<serde_json::Value>().await {
                Ok(Some(value)) => {
                    if !update(Ok(sample_of(&value))) || !stream {
                        return;
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    update(Err(e.message()));
                    return;
                }
            }
        }
    });
}

/// Follows container events: `start` (and `create` with `-a`) add a row, `die` removes it
/// unless `-a`.
async fn watch_events(client: Arc<Client>, rows: Rows, all: bool) -> anyhow::Result<()> {
    let filters = berth_client::encode_query(r#"{"type":["container"]}"#);
    let mut response = client
        .request(
            Method::GET,
            &format!("/events?filters={filters}"),
            RequestBody::Empty,
            &[],
        )
        .await?;
    tokio::spawn(async move {
        while let Ok(Some(event)) = response.json_line::<serde_json::Value>().await {
            let id = event
                .pointer("/Actor/ID")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .to_string();
            if id.is_empty() {
                continue;
            }
            let action = event["Action"].as_str().unwrap_or_default();
            let adds = action == "start" || (action == "create" && all);
            if adds && track(&rows, &id) {
                spawn_collector(client.clone(), rows.clone(), id, true);
            } else if action == "die" && !all {
                untrack(&rows, &id);
            }
        }
    });
    Ok(())
}

/// docker's `calculateCPUPercentUnix`, `calculateMemUsageUnixNoCache`, network and block
/// I/O sums over one stats object.
pub fn sample_of(stats: &serde_json::Value) -> Sample {
    let number = |pointer: &str| {
        stats
            .pointer(pointer)
            .and_then(serde_json::Value::as_f64)
            .unwrap_or(0.0)
    };
    let cpu_delta =
        number("/cpu_stats/cpu_usage/total_usage") - number("/precpu_stats/cpu_usage/total_usage");
    let system_delta =
        number("/cpu_stats/system_cpu_usage") - number("/precpu_stats/system_cpu_usage");
    let mut cpus = number("/cpu_stats/online_cpus");
    if cpus == 0.0 {
        cpus = stats
            .pointer("/cpu_stats/cpu_usage/percpu_usage")
            .and_then(|p| p.as_array())
            .map_or(0.0, |a| a.len() as f64);
    }
    let cpu_percent = if system_delta > 0.0 && cpu_delta > 0.0 {
        cpu_delta / system_delta * cpus * 100.0
    } else {
        0.0
    };
    let usage = number("/memory_stats/usage");
    // The page cache is left out: total_inactive_file (cgroup v1) or inactive_file (v2).
    let inactive = |key: &str| {
        stats
            .pointer(&format!("/memory_stats/stats/{key}"))
            .and_then(serde_json::Value::as_f64)
    };
    let memory = match inactive("total_inactive_file") {
        Some(v1) if v1 < usage => usage - v1,
        _ => match inactive("inactive_file").unwrap_or(0.0) {
            v2 if v2 < usage => usage - v2,
            _ => usage,
        },
    };
    let memory_limit = number("/memory_stats/limit");
    let memory_percent = if memory_limit != 0.0 {
        memory / memory_limit * 100.0
    } else {
        0.0
    };
    let (mut network_rx, mut network_tx) = (0.0, 0.0);
    if let Some(networks) = stats.get("networks").and_then(|n| n.as_object()) {
        for network in networks.values() {
            network_rx += network["rx_bytes"].as_f64().unwrap_or(0.0);
            network_tx += network["tx_bytes"].as_f64().unwrap_or(0.0);
        }
    }
    let (mut block_read, mut block_write) = (0.0, 0.0);
    for entry in stats
        .pointer("/blkio_stats/io_service_bytes_recursive")
        .and_then(|e| e.as_array())
        .into_iter()
        .flatten()
    {
        match entry["op"].as_str().and_then(|op| op.chars().next()) {
            Some('r' | 'R') => block_read += entry["value"].as_f64().unwrap_or(0.0),
            Some('w' | 'W') => block_write += entry["value"].as_f64().unwrap_or(0.0),
            _ => {}
        }
    }
    Sample {
        id: stats["id"].as_str().unwrap_or_default().to_string(),
        name: stats["name"].as_str().unwrap_or_default().to_string(),
        cpu_percent,
        memory,
        memory_limit,
        memory_percent,
        network_rx,
        network_tx,
        block_read,
        block_write,
        pids: stats
            .pointer("/pids_stats/current")
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(0),
    }
}

/// The template context of one row (docker's `statsContext`); no sample renders as
/// docker's invalid entry (`--`).
pub fn entry(container: &str, sample: Option<&Sample>, trunc: bool) -> Value {
    let size = |v: f64| human_size_precision(v, 3);
    let Some(s) = sample else {
        return object([
            ("BlockIO", Value::str("--")),
            ("CPUPerc", Value::str("--")),
            ("Container", Value::str(container)),
            ("ID", Value::str("")),
            ("MemPerc", Value::str("--")),
            ("MemUsage", Value::str("-- / --")),
            ("Name", Value::str("--")),
            ("NetIO", Value::str("--")),
            ("PIDs", Value::str("--")),
        ]);
    };
    let name = if s.name.len() > 1 { &s.name[1..] } else { "--" };
    object([
        (
            "BlockIO",
            Value::Str(format!("{} / {}", size(s.block_read), size(s.block_write))),
        ),
        ("CPUPerc", Value::Str(format!("{:.2}%", s.cpu_percent))),
        ("Container", Value::str(container)),
        (
            "ID",
            Value::Str(if trunc {
                truncate_id(&s.id)
            } else {
                s.id.clone()
            }),
        ),
        ("MemPerc", Value::Str(format!("{:.2}%", s.memory_percent))),
        (
            "MemUsage",
            Value::Str(format!(
                "{} / {}",
                bytes_size(s.memory),
                bytes_size(s.memory_limit)
            )),
        ),
        ("Name", Value::str(name)),
        (
            "NetIO",
            Value::Str(format!("{} / {}", size(s.network_rx), size(s.network_tx))),
        ),
        ("PIDs", Value::Str(s.pids.to_string())),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_follows_dockers_calculations() {
        let stats = serde_json::json!({
            "id": "0123456789abcdef0123", "name": "/web",
            "cpu_stats": {"cpu_usage": {"total_usage": 300}, "system_cpu_usage": 2000, "online_cpus": 2},
            "precpu_stats": {"cpu_usage": {"total_usage": 100}, "system_cpu_usage": 1000},
            "memory_stats": {"usage": 3000, "limit": 10000, "stats": {"total_inactive_file": 1000}},
            "networks": {"eth0": {"rx_bytes": 1500, "tx_bytes": 20}},
            "blkio_stats": {"io_service_bytes_recursive": [
                {"op": "Read", "value": 4096}, {"op": "write", "value": 1000}, {"op": "Total", "value": 5}
            ]},
            "pids_stats": {"current": 3}
        });
        let sample = sample_of(&stats);
        assert_eq!(sample.cpu_percent, 40.0);
        assert_eq!(sample.memory, 2000.0);
        assert_eq!(sample.memory_percent, 20.0);
        let row = entry("web", Some(&sample), true);
        let template = crate::format::Template::parse(
            "{{.ID}}|{{.Name}}|{{.CPUPerc}}|{{.MemUsage}}|{{.MemPerc}}|{{.NetIO}}|{{.BlockIO}}|{{.PIDs}}|{{.Container}}",
        )
        .expect("template");
        assert_eq!(
            template.execute(&row).expect("render"),
            "0123456789ab|web|40.00%|1.953KiB / 9.766KiB|20.00%|1.5kB / 20B|4.1kB / 1kB|3|web"
        );
    }

    #[test]
    fn a_row_without_a_sample_renders_as_dockers_invalid_entry() {
        let template = crate::format::Template::parse(
            "{{.ID}}|{{.Name}}|{{.CPUPerc}}|{{.MemUsage}}|{{.MemPerc}}|{{.NetIO}}|{{.BlockIO}}|{{.PIDs}}",
        )
        .expect("template");
        assert_eq!(
            template.execute(&entry("x", None, true)).expect("render"),
            "|--|--|-- / --|--|--|--|--"
        );
    }

    #[test]
    fn redraw_homes_the_cursor_erases_each_line_and_clears_below() {
        assert_eq!(
            redraw("A\nB\n"),
            "\x1b[HA\nB\n\x1b[HA \x1b[K\nB \x1b[K\n \x1b[K\n\x1b[J"
        );
    }

    #[test]
    fn rows_are_tracked_once_and_untracked_by_id() {
        let rows: Rows = Arc::new(Mutex::new(Vec::new()));
        assert!(track(&rows, "0123456789abcdef"));
        assert!(!track(&rows, "0123456789abcdef"));
        assert!(track(&rows, "web"));
        untrack(&rows, "0123456789abcdef0000");
        assert_eq!(lock(&rows).len(), 2, "another id is not removed");
        untrack(&rows, "0123456789abcdef");
        assert_eq!(lock(&rows).len(), 1);
    }
}
