//! `POST /build` (the classic builder endpoint the docker CLI uses without buildx) and
//! `POST /build/prune`: query parameters as Docker reads them, the context tar from the
//! body, and the build's text as Docker's JSON stream (`stream` lines, the `aux` image ID,
//! `Successfully built/tagged`, `errorDetail` with a failing RUN's exit code).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{RawQuery, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use berth_api::progress::JsonMessage;
use berth_api::ErrorKind;
use berth_engine::build::{BuildFailure, BuildRequest, Output};
use tokio::sync::mpsc;

use super::images::stream::{json_stream_response, line, BodyReader, Query};
use crate::error::ApiError;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/build", post(build))
        .route("/build/prune", post(prune))
        .route("/session", post(buildkit_endpoint))
        .route("/grpc", post(buildkit_endpoint))
}

/// `POST /session` and `POST /grpc` (BuildKit's h2c session and gRPC control API, what
/// buildx speaks): berthd has only the classic builder, so a client that tries them gets
/// a 501 with a text saying what to use instead, never a hang or an empty 404.
async fn buildkit_endpoint(uri: axum::http::Uri) -> Response {
    ApiError::new(
        ErrorKind::NotImplemented,
        format!(
            "BuildKit is not implemented by berthd ({} is BuildKit's API): build with the classic builder (DOCKER_BUILDKIT=0 docker build, or berth build)",
            uri.path()
        ),
    )
    .into_response()
}

/// The builder's text as `{"stream": ...}` messages (nothing with `q`).
struct StreamOutput {
    tx: mpsc::UnboundedSender<JsonMessage>,
    quiet: bool,
}

impl Output for StreamOutput {
    fn stream(&self, text: &str) {
        if !self.quiet {
            let _ = self.tx.send(stream(text));
        }
    }
}

fn stream(text: &str) -> JsonMessage {
    JsonMessage {
        stream: text.to_string(),
        ..JsonMessage::default()
    }
}

fn json_map(q: &Query, key: &str) -> Result<BTreeMap<String, String>, ApiError> {
    let raw = q.get(key);
    if raw.is_empty() {
        return Ok(BTreeMap::new());
    }
    // Docker's buildargs values may be null ("take it from the client's environment",
    // which the CLI already did): those are left out.
    let map: BTreeMap<String, Option<String>> = serde_json::from_str(raw).map_err(|e| {
        ApiError::new(
            ErrorKind::InvalidArgument,
            format!("failed to parse {key}: {e}"),
        )
    })?;
    Ok(map
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect())
}

/// A JSON array of strings (`cachefrom`); empty when absent.
fn json_list(q: &Query, key: &str) -> Result<Vec<String>, ApiError> {
    let raw = q.get(key);
    if raw.is_empty() {
        return Ok(Vec::new());
    }
    serde_json::from_str(raw).map_err(|e| {
        ApiError::new(
            ErrorKind::InvalidArgument,
            format!("failed to parse {key}: {e}"),
        )
    })
}

fn request(q: &Query) -> Result<BuildRequest, ApiError> {
    let not_implemented = |what: String| ApiError::new(ErrorKind::NotImplemented, what);
    if !q.get("remote").is_empty() {
        return Err(not_implemented(format!(
            "remote build contexts are not implemented by berthd (remote={}): send the context as the request body",
            q.get("remote")
        )));
    }
    if q.get("version") == "2" {
        return Err(not_implemented(
            "BuildKit builds (version=2) are not implemented by berthd: use the classic builder (DOCKER_BUILDKIT=0)".into(),
        ));
    }
    match q.get("networkmode") {
        "" | "default" | "none" => {}
        other => {
            return Err(not_implemented(format!(
                "build network mode {other} is not implemented by berthd: RUN steps have no network"
            )))
        }
    }
    Ok(BuildRequest {
        dockerfile: q.get("dockerfile").to_string(),
        tags: q.all("t").into_iter().filter(|t| !t.is_empty()).collect(),
        build_args: json_map(q, "buildargs")?,
        labels: json_map(q, "labels")?,
        target: q.get("target").to_string(),
        no_cache: q.bool("nocache"),
        pull: q.bool("pull"),
        platform: q.get("platform").to_string(),
        cache_from: json_list(q, "cachefrom")?,
        // Docker allows squash only with experimental on; berthd always does.
        squash: q.bool("squash"),
    })
}

async fn build(State(engine): State<AppState>, RawQuery(raw): RawQuery, req: Request) -> Response {
    let q = Query::parse(raw);
    let request = match request(&q) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let quiet = q.bool("q");
    let body = BodyReader::new(req.into_body());
    let (tx, mut rx) = mpsc::unbounded_channel();
    let output: Arc<dyn Output> = Arc::new(StreamOutput {
        tx: tx.clone(),
        quiet,
    });
    let task = tokio::spawn(async move {
        let result = berth_engine::build::build(engine, request, Box::new(body), output).await?;
        let _ = tx.send(JsonMessage {
            aux: Some(serde_json::json!({ "ID": result.image })),
            ..JsonMessage::default()
        });
        if quiet {
            let _ = tx.send(stream(&format!("{}\n", result.image)));
        } else {
            let short: String = result
                .image
                .trim_start_matches("sha256:")
                .chars()
                .take(12)
                .collect();
            let _ = tx.send(stream(&format!("Successfully built {short}\n")));
            for tag in &result.tags {
                let _ = tx.send(stream(&format!("Successfully tagged {tag}\n")));
            }
        }
        Ok::<(), BuildFailure>(())
    });
    // An error before any output is an HTTP error (Docker's write-flusher has not sent the
    // headers yet); later it ends the stream as an errorDetail line.
    let Some(first) = rx.recv().await else {
        return match task.await {
            Ok(Ok(())) => json_stream_response(Body::empty()),
            Ok(Err(e)) => ApiError::new(e.kind(), e.to_string()).into_response(),
            Err(e) => ApiError::new(ErrorKind::Internal, e.to_string()).into_response(),
        };
    };
    struct Pending {
        first: Option<JsonMessage>,
        rx: mpsc::UnboundedReceiver<JsonMessage>,
        task: Option<tokio::task::JoinHandle<Result<(), BuildFailure>>>,
    }
    let state = Pending {
        first: Some(first),
        rx,
        task: Some(task),
    };
    let body = futures_util::stream::unfold(state, |mut state| async move {
        if let Some(first) = state.first.take() {
            return Some((Ok::<_, std::io::Error>(line(&first)), state));
        }
        if let Some(message) = state.rx.recv().await {
            return Some((Ok(line(&message)), state));
        }
        let task = state.task.take()?;
        let (message, code) = match task.await {
            Ok(Ok(())) => return None,
            Ok(Err(e)) => (e.to_string(), e.code()),
            Err(e) => (e.to_string(), 0),
        };
        let mut error = JsonMessage::error(message);
        if let Some(detail) = error.error_detail.as_mut() {
            detail.code = code;
        }
        Some((Ok(line(&error)), state))
    });
    json_stream_response(Body::from_stream(body))
}

/// `POST /build/prune`: the cache index is emptied and the step images only it kept are
/// deleted; `SpaceReclaimed` is what the data root's `du` lost.
async fn prune(State(engine): State<AppState>) -> Response {
    let data_root = engine.config.data_root.clone();
    let pruned = berth_engine::build::prune(&engine);
    let (report, reclaimed) = berth_engine::volume::usage::reclaimed(&data_root, pruned).await;
    let caches = if report.caches_deleted.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::json!(report.caches_deleted)
    };
    crate::json::ok(&serde_json::json!({ "CachesDeleted": caches, "SpaceReclaimed": reclaimed }))
}
