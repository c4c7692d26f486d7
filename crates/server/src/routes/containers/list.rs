//! `GET /containers/json` (`docker ps`): Docker's summary rows, with its `Command` quoting
//! and its `Status` text (`Up 3 seconds`, `Exited (0) 2 minutes ago`, go-units'
//! `HumanDuration`).

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use berth_api::container::list::{SummaryHostConfig, SummaryNetworkSettings};
use berth_api::container::ContainerSummary;
use berth_engine::container::filter::ListOptions;
use berth_engine::container::{ContainerRecord, Status};

use super::{bool_param, filters_param};
use crate::error::ApiError;
use crate::json;
use crate::AppState;

pub(super) async fn list(
    State(engine): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let filters = match filters_param(&params) {
        Ok(filters) => filters,
        Err(e) => return e.into_response(),
    };
    let limit = params
        .get("limit")
        .and_then(|l| l.trim().parse::<i64>().ok())
        .unwrap_or(0);
    let options = ListOptions {
        all: bool_param(&params, "all"),
        limit,
        filters,
    };
    let records = match engine.containers.select(&options) {
        Ok(records) => records,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let now = unix_now();
    let mut rows: Vec<ContainerSummary> = records
        .iter()
        .map(|r| {
            let mut row = summary(r, now);
            row.ports = Some(crate::routes::networks::summary_ports(&engine.networks, r));
            row
        })
        .collect();
    // `ps --size`: measured only when asked, as Docker (walking layers is slow).
    if bool_param(&params, "size") {
        let sizes = berth_engine::container::size::sizes(&engine, &records).await;
        for (row, size) in rows.iter_mut().zip(sizes) {
            row.size_rw = size.rw;
            row.size_root_fs = size.root_fs;
        }
    }
    json::ok(&rows)
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn unix_of(text: &str) -> Option<i64> {
    berth_api::time::parse_rfc3339(text)
        .map(|(secs, _)| secs)
        .filter(|secs| *secs > berth_api::time::ZERO_TIME_UNIX)
}

/// One `docker ps` row.
pub(crate) fn summary(record: &ContainerRecord, now: i64) -> ContainerSummary {
    let network = super::inspect::network_name(record);
    ContainerSummary {
        id: record.id.clone(),
        names: Some(vec![record.name.clone()]),
        image: record.config.image.clone(),
        image_id: record.image_id.clone(),
        image_manifest_descriptor: None,
        command: command_text(&record.path, &record.args),
        created: unix_of(&record.created).unwrap_or(0),
        ports: Some(Vec::new()),
        size_rw: 0,
        size_root_fs: 0,
        labels: Some(record.config.labels.clone().unwrap_or_default()),
        state: record.state.status.as_str().to_string(),
        status: status_text(record, now),
        host_config: SummaryHostConfig {
            network_mode: record.host_config.network_mode.clone(),
            annotations: None,
        },
        network_settings: Some(SummaryNetworkSettings {
            networks: Some(BTreeMap::from([(network, Default::default())])),
        }),
        mounts: Some(super::inspect::mount_points(record)),
    }
}

/// Docker's `Command`: the path, then the args with those holding a space in single quotes.
pub(crate) fn command_text(path: &str, args: &[String]) -> String {
    if args.is_empty() {
        return path.to_string();
    }
    let args: Vec<String> = args
        .iter()
        .map(|arg| {
            if arg.contains(' ') {
                format!("'{arg}'")
            } else {
                arg.clone()
            }
        })
        .collect();
    format!("{path} {}", args.join(" "))
}

/// Docker's `State.String()`.
pub(crate) fn status_text(record: &ContainerRecord, now: i64) -> String {
    let state = &record.state;
    let since = |text: &str| human_duration(now - unix_of(text).unwrap_or(now));
    match state.status {
        Status::Running => format!("Up {}{}", since(&state.started_at), health_suffix(record)),
        Status::Paused => format!("Up {} (Paused)", since(&state.started_at)),
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            state.exit_code,
            since(&state.finished_at)
        ),
        Status::Removing => "Removal In Progress".to_string(),
        Status::Dead => "Dead".to_string(),
        Status::Created => "Created".to_string(),
        Status::Exited => {
            if unix_of(&state.started_at).is_none() {
                "Created".to_string()
            } else if unix_of(&state.finished_at).is_none() {
                String::new()
            } else {
                format!(
                    "Exited ({}) {} ago",
                    state.exit_code,
                    since(&state.finished_at)
                )
            }
        }
    }
}

/// Docker's `Health.String()` after a running container's status: ` (healthy)`,
/// ` (health: starting)`, ` (unhealthy)`.
fn health_suffix(record: &ContainerRecord) -> String {
    use berth_engine::container::health::HealthStatus;
    match record.state.health.as_ref().map(|h| h.status) {
        None => String::new(),
        Some(HealthStatus::Starting) => " (health: starting)".to_string(),
        Some(status) => format!(" ({})", status.as_str()),
    }
}

/// go-units' `HumanDuration` of a number of seconds.
pub(crate) fn human_duration(seconds: i64) -> String {
    let minutes = seconds / 60;
    // Go rounds to the nearest hour here (`d.Round(time.Hour)`).
    let hours = (seconds + 1800) / 3600;
    if seconds < 1 {
        "Less than a second".to_string()
    } else if seconds == 1 {
        "1 second".to_string()
    } else if seconds < 60 {
        format!("{seconds} seconds")
    } else if minutes == 1 {
        "About a minute".to_string()
    } else if minutes < 60 {
        format!("{minutes} minutes")
    } else if hours == 1 {
        "About an hour".to_string()
    } else if hours < 48 {
        format!("{hours} hours")
    } else if hours < 24 * 7 * 2 {
        format!("{} days", hours / 24)
    } else if hours < 24 * 30 * 2 {
        format!("{} weeks", hours / 24 / 7)
    } else if hours < 24 * 365 * 2 {
        format!("{} months", hours / 24 / 30)
    } else {
        format!("{} years", seconds / 3600 / 24 / 365)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_go_units() {
        let table = [
            (0, "Less than a second"),
            (1, "1 second"),
            (59, "59 seconds"),
            (60, "About a minute"),
            (119, "About a minute"),
            (120, "2 minutes"),
            (3599, "59 minutes"),
            (3600, "About an hour"),
            (5399, "About an hour"),
            (5400, "2 hours"),
            (47 * 3600, "47 hours"),
            (48 * 3600, "2 days"),
            (14 * 86400, "2 weeks"),
            (60 * 86400, "2 months"),
            (730 * 86400, "2 years"),
        ];
        for (seconds, text) in table {
            assert_eq!(human_duration(seconds), text, "{seconds}s");
        }
    }

    fn record(status: Status, started: &str, finished: &str, code: i32) -> ContainerRecord {
        let mut record = ContainerRecord::default();
        record.state.status = status;
        record.state.started_at = started.to_string();
        record.state.finished_at = finished.to_string();
        record.state.exit_code = code;
        record
    }

    #[test]
    fn status_text_matches_docker_state_string() {
        let now = 1_700_000_100;
        let t0 = "2023-11-14T22:13:20Z"; // 1_700_000_000
        let zero = berth_api::time::ZERO_TIME;
        assert_eq!(
            status_text(&record(Status::Running, t0, zero, 0), now),
            "Up About a minute"
        );
        assert_eq!(
            status_text(&record(Status::Paused, t0, zero, 0), now),
            "Up About a minute (Paused)"
        );
        assert_eq!(
            status_text(&record(Status::Exited, t0, "2023-11-14T22:14:57Z", 3), now),
            "Exited (3) 3 seconds ago"
        );
        assert_eq!(
            status_text(&record(Status::Created, zero, zero, 0), now),
            "Created"
        );
        assert_eq!(
            status_text(&record(Status::Exited, zero, zero, 127), now),
            "Created"
        );
    }

    #[test]
    fn command_quotes_arguments_with_spaces() {
        assert_eq!(command_text("echo", &[]), "echo");
        assert_eq!(
            command_text("sh", &["-c".into(), "echo hi".into()]),
            "sh -c 'echo hi'"
        );
    }
}
