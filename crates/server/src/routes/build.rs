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
use berth_api::container::HostConfig;
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
    let map: Option<BTreeMap<String, Option<String>>> = serde_json::from_str(raw).map_err(|e| {
        ApiError::new(
            ErrorKind::InvalidArgument,
            format!("failed to parse {key}: {e}"),
        )
    })?;
    Ok(map
        .unwrap_or_default()
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
    serde_json::from_str::<Option<Vec<String>>>(raw)
        .map(Option::unwrap_or_default)
        .map_err(|e| {
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
        host_config: run_host_config(q)?,
        registry_config: String::new(),
    })
}

/// The host settings of every RUN container, from the query as moby's build router
/// reads it (resource numbers that do not parse count as 0, as its `Int64ValueOrZero`;
/// `shmsize` and `ulimits` fail the request) and as its classic builder applies them.
fn run_host_config(q: &Query) -> Result<HostConfig, ApiError> {
    let invalid = |text: String| ApiError::new(ErrorKind::InvalidArgument, text);
    let number = |key: &str| q.get(key).parse::<i64>().unwrap_or(0);
    let shm_size = match q.get("shmsize") {
        "" => 0,
        raw => raw.parse::<i64>().map_err(|e| {
            invalid(format!(
                "strconv.ParseInt: parsing {raw:?}: {}",
                if matches!(
                    e.kind(),
                    std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow
                ) {
                    "value out of range"
                } else {
                    "invalid syntax"
                }
            ))
        })?,
    };
    // The docker CLI 20.10 sends `ulimits=null` when there are none.
    let ulimits: Option<Vec<serde_json::Value>> = match q.get("ulimits") {
        "" => None,
        raw => serde_json::from_str(raw)
            .map_err(|e| invalid(format!("error reading ulimit settings: {e}")))?,
    };
    let list = |key: &str| {
        let values: Vec<String> = q.all(key).into_iter().filter(|v| !v.is_empty()).collect();
        (!values.is_empty()).then_some(values)
    };
    let config = serde_json::json!({
        "NetworkMode": q.get("networkmode"),
        "ExtraHosts": list("extrahosts"),
        "SecurityOpt": list("securityopt"),
        "ShmSize": shm_size,
        "Ulimits": ulimits,
        "CgroupParent": q.get("cgroupparent"),
        "CpuShares": number("cpushares"),
        "CpuPeriod": number("cpuperiod"),
        "CpuQuota": number("cpuquota"),
        "CpusetCpus": q.get("cpusetcpus"),
        "CpusetMems": q.get("cpusetmems"),
        "Memory": number("memory"),
        "MemorySwap": number("memswap"),
    });
    serde_json::from_value(config)
        .map_err(|e| invalid(format!("error reading ulimit settings: {e}")))
}

async fn build(State(engine): State<AppState>, RawQuery(raw): RawQuery, req: Request) -> Response {
    let q = Query::parse(raw);
    let mut request = match request(&q) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    // Credentials for pulling FROM images: base64 JSON, registry -> AuthConfig.
    request.registry_config = req
        .headers()
        .get("X-Registry-Config")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn query(raw: &str) -> Query {
        Query::parse(Some(raw.to_string()))
    }

    #[test]
    fn run_containers_get_the_builds_host_flags() {
        let q = query(
            "networkmode=none&extrahosts=a%3A10.0.0.1&extrahosts=b%3A10.0.0.2&shmsize=33554432\
             &ulimits=%5B%7B%22Name%22%3A%22nofile%22%2C%22Hard%22%3A1234%2C%22Soft%22%3A1000%7D%5D\
             &memory=100000000&cpushares=512&cpusetcpus=0&cgroupparent=p&securityopt=no-new-privileges",
        );
        let host = run_host_config(&q).unwrap();
        let json = serde_json::to_value(&host).unwrap();
        assert_eq!(json["NetworkMode"], "none");
        assert_eq!(
            json["ExtraHosts"],
            serde_json::json!(["a:10.0.0.1", "b:10.0.0.2"])
        );
        assert_eq!(json["ShmSize"], 33554432);
        assert_eq!(
            json["Ulimits"],
            serde_json::json!([{"Name": "nofile", "Hard": 1234, "Soft": 1000}])
        );
        assert_eq!(json["Memory"], 100000000);
        assert_eq!(json["CpuShares"], 512);
        assert_eq!(json["CpusetCpus"], "0");
        assert_eq!(json["CgroupParent"], "p");
        assert_eq!(
            json["SecurityOpt"],
            serde_json::json!(["no-new-privileges"])
        );
        // Numbers moby reads with Int64ValueOrZero: a bad one is 0, not an error.
        // The docker CLI 20.10 sends `null` for no ulimits.
        let host = run_host_config(&query("ulimits=null")).unwrap();
        assert_eq!(
            serde_json::to_value(&host).unwrap()["Ulimits"],
            serde_json::Value::Null
        );
        let host = run_host_config(&query("memory=lots")).unwrap();
        assert_eq!(serde_json::to_value(&host).unwrap()["Memory"], 0);
    }

    #[test]
    fn bad_shmsize_and_ulimits_fail_as_on_dockerd() {
        let err = run_host_config(&query("shmsize=big")).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidArgument);
        assert!(
            err.message
                .contains(r#"strconv.ParseInt: parsing "big": invalid syntax"#),
            "{err:?}"
        );
        let err = run_host_config(&query("ulimits=%5Bnope")).unwrap_err();
        assert!(
            err.message.starts_with("error reading ulimit settings: "),
            "{err:?}"
        );
    }
}
