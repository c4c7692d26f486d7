//! `/containers/*` verbs: create, start, stop, kill, restart, wait, rm, rename, pause,
//! unpause, update, prune; `json` (ps) and `{id}/json` (inspect) shapes live in the
//! submodules. Attach, logs, stats, top and exec are the streams routes.

mod inspect;
pub(crate) mod list;

use std::collections::HashMap;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use berth_api::container::ops::{ContainerUpdateResponse, ContainersPruneResponse};
use berth_api::container::{
    ContainerCreateRequest, ContainerCreateResponse, ContainerUpdateRequest, ContainerWaitResponse,
};
use berth_api::Filters;
use berth_engine::container::{
    ContainerError, CreateOptions, RemoveOptions, StopOptions, WaitCondition,
};

use crate::error::ApiError;
use crate::json;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/containers/create", post(create))
        .route("/containers/json", get(list::list))
        .route("/containers/prune", post(prune))
        .route("/containers/{id}/json", get(inspect::inspect))
        .route("/containers/{id}/start", post(start))
        .route("/containers/{id}/stop", post(stop))
        .route("/containers/{id}/kill", post(kill))
        .route("/containers/{id}/restart", post(restart))
        .route("/containers/{id}/wait", post(wait))
        .route("/containers/{id}/rename", post(rename))
        .route("/containers/{id}/pause", post(pause))
        .route("/containers/{id}/unpause", post(unpause))
        .route("/containers/{id}/update", post(update))
        .route("/containers/{id}", delete(remove))
}

type Params = Query<HashMap<String, String>>;

/// Docker's `httputils.BoolValue`: anything but "", 0, no, false, none is true.
pub(crate) fn bool_param(params: &HashMap<String, String>, key: &str) -> bool {
    let value = params
        .get(key)
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    !matches!(value.as_str(), "" | "0" | "no" | "false" | "none")
}

fn int_param(params: &HashMap<String, String>, key: &str) -> Result<Option<i64>, ApiError> {
    match params.get(key).map(|v| v.trim()).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(text) => text.parse::<i64>().map(Some).map_err(|_| {
            ApiError::invalid(format!(
                "invalid value for {key}: strconv.Atoi: parsing \"{text}\": invalid syntax"
            ))
        }),
    }
}

pub(crate) fn filters_param(params: &HashMap<String, String>) -> Result<Filters, ApiError> {
    Ok(Filters::parse(
        params.get("filters").map_or("", String::as_str),
    )?)
}

/// 204 No Content, or 304 Not Modified for a verb that found nothing to do.
fn no_content(result: Result<(), ContainerError>) -> Response {
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(ContainerError::NotModified) => StatusCode::NOT_MODIFIED.into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

async fn create(State(engine): State<AppState>, Query(params): Params, body: Bytes) -> Response {
    let request = match ContainerCreateRequest::parse(&body) {
        Ok(request) => request,
        Err(e) => return ApiError::invalid(e.to_string()).into_response(),
    };
    let options = CreateOptions {
        name: params.get("name").cloned(),
        platform: params.get("platform").cloned().filter(|p| !p.is_empty()),
        request,
    };
    match engine.containers.create(options).await {
        Ok(created) => json::with_status(
            StatusCode::CREATED,
            &ContainerCreateResponse {
                id: created.id,
                warnings: created.warnings,
            },
        ),
        Err(e) => ApiError::from(e).into_response(),
    }
}

async fn start(State(engine): State<AppState>, Path(id): Path<String>) -> Response {
    no_content(engine.containers.start(&id).await)
}

fn stop_options(params: &HashMap<String, String>) -> Result<StopOptions, ApiError> {
    Ok(StopOptions {
        timeout: int_param(params, "t")?,
        signal: params.get("signal").cloned().filter(|s| !s.is_empty()),
    })
}

async fn stop(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    Query(params): Params,
) -> Response {
    let options = match stop_options(&params) {
        Ok(options) => options,
        Err(e) => return e.into_response(),
    };
    no_content(engine.containers.stop(&id, options).await)
}

async fn restart(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    Query(params): Params,
) -> Response {
    let options = match stop_options(&params) {
        Ok(options) => options,
        Err(e) => return e.into_response(),
    };
    no_content(engine.containers.restart(&id, options).await)
}

async fn kill(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    Query(params): Params,
) -> Response {
    let signal = params.get("signal").map(String::as_str);
    no_content(engine.containers.kill(&id, signal).await)
}

/// Headers go out at once (the CLI's `run` waits for them before it starts the container);
/// the body is written when the condition is met.
async fn wait(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    Query(params): Params,
) -> Response {
    let condition = params.get("condition").map_or("", String::as_str);
    let condition = match WaitCondition::parse(condition) {
        Ok(condition) => condition,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let done = match engine.containers.wait(&id, condition) {
        Ok(done) => done,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let body = futures_util::stream::once(async move {
        let code = done.await;
        let mut bytes = serde_json::to_vec(&ContainerWaitResponse {
            status_code: code,
            error: None,
        })
        .unwrap_or_default();
        bytes.push(b'\n');
        Ok::<_, std::convert::Infallible>(Bytes::from(bytes))
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(body),
    )
        .into_response()
}

async fn remove(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    Query(params): Params,
) -> Response {
    let options = RemoveOptions {
        force: bool_param(&params, "force"),
        volumes: bool_param(&params, "v"),
        link: bool_param(&params, "link"),
    };
    no_content(engine.containers.remove(&id, options).await)
}

async fn rename(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    Query(params): Params,
) -> Response {
    let name = params.get("name").map_or("", String::as_str);
    no_content(engine.containers.rename(&id, name))
}

async fn pause(State(engine): State<AppState>, Path(id): Path<String>) -> Response {
    no_content(engine.containers.pause(&id).await)
}

async fn unpause(State(engine): State<AppState>, Path(id): Path<String>) -> Response {
    no_content(engine.containers.unpause(&id).await)
}

async fn update(State(engine): State<AppState>, Path(id): Path<String>, body: Bytes) -> Response {
    let request: ContainerUpdateRequest = match json::parse(&body) {
        Ok(request) => request,
        Err(e) => return e.into_response(),
    };
    match engine.containers.update(&id, request).await {
        Ok(warnings) => json::ok(&ContainerUpdateResponse {
            warnings: Some(warnings),
        }),
        Err(e) => ApiError::from(e).into_response(),
    }
}

async fn prune(State(engine): State<AppState>, Query(params): Params) -> Response {
    let filters = match filters_param(&params) {
        Ok(filters) => filters,
        Err(e) => return e.into_response(),
    };
    let data_root = engine.config.data_root.clone();
    let pruned = engine.containers.prune(&filters);
    match berth_engine::volume::usage::reclaimed(&data_root, pruned).await {
        (Ok(removed), reclaimed) => json::ok(&ContainersPruneResponse {
            containers_deleted: Some(removed),
            space_reclaimed: reclaimed,
        }),
        (Err(e), _) => ApiError::from(e).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bool_params_follow_dockers_bool_value() {
        let params: HashMap<String, String> = [
            ("a", "1"),
            ("b", "true"),
            ("c", "False"),
            ("d", "no"),
            ("e", ""),
            ("f", "yes"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert!(bool_param(&params, "a"));
        assert!(bool_param(&params, "b"));
        assert!(!bool_param(&params, "c"));
        assert!(!bool_param(&params, "d"));
        assert!(!bool_param(&params, "e"));
        assert!(bool_param(&params, "f"));
        assert!(!bool_param(&params, "missing"));
    }
}
