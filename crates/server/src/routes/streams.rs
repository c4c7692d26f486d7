//! Container streams: `attach` (hijacked), `resize`, `logs`, `stats`, `top` and `/events`
//! (moby's `router/container/container_routes.go` and `router/system`).

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderValue, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use berth_api::stream::{encode_frame_header, StdStream};
use berth_api::ApiVersion;
use berth_engine::attach::{self, AttachOptions};
use berth_engine::logs::{encode, EncodeOptions, LogOptions};
use berth_engine::stats::StatsCollector;

use crate::error::ApiError;
use crate::hijack::{stream_content_type, Hijack};
use crate::json;
use crate::routes::exec::dimension;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/containers/{name}/attach", post(attach))
        .route("/containers/{name}/resize", post(resize))
        .route("/containers/{name}/logs", get(logs))
        .route("/containers/{name}/stats", get(stats))
        .route("/containers/{name}/top", get(top))
        .route("/events", get(events))
}

type QueryMap = HashMap<String, String>;

/// Docker's `httputils.BoolValue`: empty, `0`, `no`, `false` and `none` are false.
pub fn bool_value(query: &QueryMap, key: &str) -> bool {
    bool_or(query, key, false)
}

/// Docker's `BoolValueOrDefault`: `default` when the key is absent.
pub fn bool_or(query: &QueryMap, key: &str, default: bool) -> bool {
    match query.get(key) {
        None => default,
        Some(value) => !matches!(
            value.trim().to_ascii_lowercase().as_str(),
            "" | "0" | "no" | "false" | "none"
        ),
    }
}

/// `POST /containers/{name}/attach`.
async fn attach(
    State(engine): State<AppState>,
    Path(name): Path<String>,
    Query(query): Query<QueryMap>,
    Extension(version): Extension<ApiVersion>,
    mut request: Request,
) -> Result<Response<Body>, ApiError> {
    let hijack = Hijack::prepare(&mut request);
    let options = AttachOptions {
        stream: bool_value(&query, "stream"),
        logs: bool_value(&query, "logs"),
        stdin: bool_value(&query, "stdin"),
        stdout: bool_value(&query, "stdout"),
        stderr: bool_value(&query, "stderr"),
        detach_keys: query.get("detachKeys").cloned().unwrap_or_default(),
    };
    let session = attach::attach(&engine, &name, options).await?;
    let content_type = stream_content_type(session.tty(), version);
    Ok(hijack.respond(content_type, move |io| async move {
        session.run(io).await;
    }))
}

/// `POST /containers/{name}/resize?h=&w=`.
async fn resize(
    State(engine): State<AppState>,
    Path(name): Path<String>,
    Query(query): Query<QueryMap>,
) -> Result<Response<Body>, ApiError> {
    let height = dimension(&query, "h", "height")?;
    let width = dimension(&query, "w", "width")?;
    berth_engine::exec::resize_container(&engine, &name, height, width).await?;
    Ok(Response::new(Body::empty()))
}

/// `GET /containers/{name}/logs`: stdcopy frames (raw for a TTY), following until the
/// container stops and its log is drained.
async fn logs(
    State(engine): State<AppState>,
    Path(name): Path<String>,
    Query(query): Query<QueryMap>,
    Extension(version): Extension<ApiVersion>,
) -> Result<Response<Body>, ApiError> {
    let stdout = bool_value(&query, "stdout");
    let stderr = bool_value(&query, "stderr");
    if !(stdout || stderr) {
        return Err(ApiError::invalid(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let options = LogOptions {
        stdout,
        stderr,
        tail: parse_tail(query.get("tail")),
        since: parse_timestamp(query.get("since").map_or("", String::as_str))?,
        until: parse_timestamp(query.get("until").map_or("", String::as_str))?,
        follow: bool_value(&query, "follow"),
    };
    let (mut entries, tty) = attach::container_logs(&engine, &name, options)?;
    let encoding = EncodeOptions {
        tty,
        timestamps: bool_value(&query, "timestamps"),
        details: bool_value(&query, "details"),
    };
    let (tx, response) = channel_body(stream_content_type(tty, version));
    tokio::spawn(async move {
        loop {
            let entry = tokio::select! {
                entry = entries.next() => match entry {
                    Some(entry) => entry,
                    None => return,
                },
                // The client went away while a followed log was quiet.
                () = tx.closed() => return,
            };
            let chunk = match entry {
                Ok(entry) => encode(&entry, &encoding),
                Err(e) => {
                    // In band, as Docker's WriteLogStream: a systemerr frame ends the stream.
                    let text = e.to_string();
                    let mut frame =
                        encode_frame_header(StdStream::SystemErr, text.len() as u32).to_vec();
                    frame.extend_from_slice(text.as_bytes());
                    let _ = tx.send(Bytes::from(frame)).await;
                    return;
                }
            };
            if tx.send(Bytes::from(chunk)).await.is_err() {
                return;
            }
        }
    });
    Ok(response)
}

/// `GET /events?since=&until=&filters=`: one JSON object per line, the history from
/// `since`, then live events until `until` (or until the client goes).
async fn events(
    State(engine): State<AppState>,
    Query(query): Query<QueryMap>,
) -> Result<Response<Body>, ApiError> {
    let since_text = query.get("since").map_or("", String::as_str);
    let until_text = query.get("until").map_or("", String::as_str);
    let since = parse_timestamp(since_text)?;
    let until = parse_timestamp(until_text)?;
    if let (Some(since), Some(until)) = (since, until) {
        if until < since {
            return Err(ApiError::invalid(format!(
                "`since` time ({since_text}) cannot be after `until` time ({until_text})"
            )));
        }
    }
    let filters = berth_api::Filters::parse(query.get("filters").map_or("", String::as_str))?;
    let mut stream = engine.events.subscribe(since, until, filters)?;
    let (tx, response) = channel_body("application/json");
    tokio::spawn(async move {
        loop {
            tokio::select! {
                event = stream.next() => match event {
                    Some(event) => {
                        if tx.send(json_line(&event)).await.is_err() {
                            return;
                        }
                    }
                    None => return,
                },
                // The client went away while no event came.
                () = tx.closed() => return,
            }
        }
    });
    Ok(response)
}

/// A streamed body fed by a channel of chunks; the producer stops when the client goes.
fn channel_body(content_type: &'static str) -> (tokio::sync::mpsc::Sender<Bytes>, Response<Body>) {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<Bytes, Infallible>(chunk), rx))
    });
    let mut response = Response::new(Body::from_stream(stream));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    (tx, response)
}

fn json_line<T: serde::Serialize>(value: &T) -> Bytes {
    let mut line = serde_json::to_vec(value).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

/// `GET /containers/{name}/stats?stream=&one-shot=`: a sample per second while streaming;
/// without streaming, two samples a second apart so that `precpu_stats` is filled (Docker),
/// or one at once with `one-shot`.
async fn stats(
    State(engine): State<AppState>,
    Path(name): Path<String>,
    Query(query): Query<QueryMap>,
) -> Result<Response<Body>, ApiError> {
    let stream = bool_or(&query, "stream", true);
    let one_shot = bool_or(&query, "one-shot", false);
    let mut collector = StatsCollector::new(&engine, &name).await?;
    if !stream {
        if !collector.running() {
            return Ok(json::ok(&collector.empty()));
        }
        let mut sample = collector.sample().await?;
        if !one_shot {
            tokio::time::sleep(Duration::from_secs(1)).await;
            sample = collector.sample().await?;
        }
        return Ok(json::ok(&sample));
    }
    let (tx, response) = channel_body("application/json");
    tokio::spawn(async move {
        loop {
            if !collector.running() {
                let _ = tx.send(json_line(&collector.empty())).await;
                return;
            }
            let Ok(sample) = collector.sample().await else {
                return;
            };
            if tx.send(json_line(&sample)).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    Ok(response)
}

/// `GET /containers/{name}/top?ps_args=`.
async fn top(
    State(engine): State<AppState>,
    Path(name): Path<String>,
    Query(query): Query<QueryMap>,
) -> Result<Response<Body>, ApiError> {
    let ps_args = query.get("ps_args").cloned().unwrap_or_default();
    Ok(json::ok(
        &berth_engine::top::top(&engine, &name, &ps_args).await?,
    ))
}

/// Docker's `timetypes.ParseTimestamps`: `seconds[.fraction]` (what the CLI sends for
/// `--since`/`--until`) to Unix nanoseconds; empty is `None`.
pub fn parse_timestamp(value: &str) -> Result<Option<i64>, ApiError> {
    if value.is_empty() {
        return Ok(None);
    }
    let invalid = || {
        ApiError::invalid(format!(
            "strconv.ParseInt: parsing {value:?}: invalid syntax"
        ))
    };
    let (seconds, fraction) = match value.split_once('.') {
        Some((s, f)) => (s, Some(f)),
        None => (value, None),
    };
    let seconds: i64 = seconds.parse().map_err(|_| invalid())?;
    let nanos = match fraction {
        None => 0,
        Some(digits) => {
            let n: i64 = digits.parse().map_err(|_| invalid())?;
            let scale = 9 - digits.len() as i32;
            (n as f64 * 10f64.powi(scale)) as i64
        }
    };
    Ok(Some(
        seconds.saturating_mul(1_000_000_000).saturating_add(nanos),
    ))
}

/// Docker's `tail`: a count, or everything for `all`, empty or anything unparsable.
pub fn parse_tail(value: Option<&String>) -> Option<usize> {
    value
        .and_then(|v| v.trim().parse::<i64>().ok())
        .and_then(|n| usize::try_from(n).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_parse_like_dockers_timetypes() {
        assert_eq!(parse_timestamp(""), Ok(None));
        assert_eq!(parse_timestamp("12"), Ok(Some(12_000_000_000)));
        assert_eq!(parse_timestamp("12.5"), Ok(Some(12_500_000_000)));
        assert_eq!(parse_timestamp("1.000000001"), Ok(Some(1_000_000_001)));
        assert!(parse_timestamp("abc").is_err());
        assert!(parse_timestamp("1.x").is_err());
    }

    #[test]
    fn tail_follows_docker() {
        assert_eq!(parse_tail(Some(&"3".to_string())), Some(3));
        assert_eq!(parse_tail(Some(&"all".to_string())), None);
        assert_eq!(parse_tail(Some(&"-1".to_string())), None);
        assert_eq!(parse_tail(None), None);
    }

    #[test]
    fn booleans_follow_dockers_rules() {
        let query: QueryMap = [
            ("a", "1"),
            ("b", "False"),
            ("c", ""),
            ("d", "none"),
            ("e", "yes"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert!(bool_value(&query, "a"));
        assert!(!bool_value(&query, "b"));
        assert!(!bool_value(&query, "c"));
        assert!(!bool_value(&query, "d"));
        assert!(bool_value(&query, "e"));
        assert!(!bool_value(&query, "missing"));
        assert!(bool_or(&query, "missing", true));
        assert!(!bool_or(&query, "c", true));
    }
}
