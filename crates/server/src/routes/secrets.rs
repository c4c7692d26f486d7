//! `/secrets` (create, ls, inspect, update, rm) as swarm mode serves them, on one node and
//! without swarm: Docker's JSON shapes, `Data` never in a response.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use berth_api::secret::{SecretCreateResponse, SecretSpec};
use berth_engine::secret::{SecretError, SecretService};

use super::containers::filters_param;
use crate::error::ApiError;
use crate::json;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/secrets", get(list))
        .route("/secrets/create", post(create))
        .route("/secrets/{id}", get(inspect).delete(remove))
        .route("/secrets/{id}/update", post(update))
}

type Params = Query<HashMap<String, String>>;

fn error(e: SecretError) -> Response {
    ApiError::from_error(e.kind(), &e).into_response()
}

/// Runs a secret verb (file writes with fsync, decryption) off the async workers.
async fn blocking<T: Send + 'static>(
    secrets: &Arc<SecretService>,
    work: impl FnOnce(&SecretService) -> Result<T, SecretError> + Send + 'static,
) -> Result<T, SecretError> {
    let secrets = secrets.clone();
    tokio::task::spawn_blocking(move || work(&secrets))
        .await
        .map_err(|e| SecretError::Join(e.to_string()))?
}

async fn list(State(engine): State<AppState>, Query(params): Params) -> Response {
    let filters = match filters_param(&params) {
        Ok(filters) => filters,
        Err(e) => return e.into_response(),
    };
    match engine.secrets.list(&filters) {
        Ok(secrets) => json::ok(&secrets),
        Err(e) => error(e),
    }
}

async fn create(State(engine): State<AppState>, body: Bytes) -> Response {
    let spec: SecretSpec = match json::parse(&body) {
        Ok(spec) => spec,
        Err(e) => return e.into_response(),
    };
    match blocking(&engine.secrets, move |s| s.create(spec)).await {
        Ok(id) => json::with_status(StatusCode::CREATED, &SecretCreateResponse { id }),
        Err(e) => error(e),
    }
}

async fn inspect(State(engine): State<AppState>, Path(id): Path<String>) -> Response {
    match engine.secrets.inspect(&id) {
        Ok(secret) => json::ok(&secret),
        Err(e) => error(e),
    }
}

async fn update(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    Query(params): Params,
    body: Bytes,
) -> Response {
    // dockerd's text for a missing or malformed `version`.
    let Some(version) = params.get("version").and_then(|v| v.parse::<u64>().ok()) else {
        return ApiError::invalid("invalid secret version").into_response();
    };
    let spec: SecretSpec = match json::parse(&body) {
        Ok(spec) => spec,
        Err(e) => return e.into_response(),
    };
    match blocking(&engine.secrets, move |s| s.update(&id, version, spec)).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => error(e),
    }
}

async fn remove(State(engine): State<AppState>, Path(id): Path<String>) -> Response {
    // Names of the containers (running or not) whose HostConfig references each secret.
    let users: Vec<(String, Vec<String>)> = engine
        .containers
        .list()
        .iter()
        .map(|c| {
            let record = c.record();
            let ids = record
                .host_config
                .berth_secrets
                .unwrap_or_default()
                .into_iter()
                .map(|r| r.secret_id)
                .collect();
            (record.name.trim_start_matches('/').to_string(), ids)
        })
        .collect();
    let users_of = move |secret: &str| -> Vec<String> {
        users
            .iter()
            .filter(|(_, ids)| ids.iter().any(|id| id == secret))
            .map(|(name, _)| name.clone())
            .collect()
    };
    match blocking(&engine.secrets, move |s| s.remove(&id, users_of)).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => error(e),
    }
}
