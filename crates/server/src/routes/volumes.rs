//! `/volumes` (create, ls, inspect, rm, prune) and `GET /system/df`, the disk usage of
//! images, containers, volumes and the build cache.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use berth_api::volume::{VolumeCreateRequest, VolumeListResponse, VolumesPruneResponse};
use berth_engine::volume::CreateRequest;

use super::containers::{bool_param, filters_param};
use crate::error::ApiError;
use crate::json;
use crate::AppState;

mod disk_usage;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/volumes", get(list))
        .route("/volumes/create", post(create))
        .route("/volumes/prune", post(prune))
        .route("/volumes/{name}", get(inspect).delete(remove))
        .route("/system/df", get(disk_usage::disk_usage))
}

type Params = Query<HashMap<String, String>>;

async fn list(State(engine): State<AppState>, Query(params): Params) -> Response {
    let filters = match filters_param(&params) {
        Ok(filters) => filters,
        Err(e) => return e.into_response(),
    };
    match engine.volumes.list(&filters).await {
        Ok(volumes) => json::ok(&VolumeListResponse {
            volumes: Some(volumes),
            warnings: None,
        }),
        Err(e) => ApiError::from(e).into_response(),
    }
}

async fn create(State(engine): State<AppState>, body: Bytes) -> Response {
    let request: VolumeCreateRequest = match json::parse(&body) {
        Ok(request) => request,
        Err(e) => return e.into_response(),
    };
    let request = CreateRequest {
        name: request.name,
        driver: request.driver,
        options: request.driver_opts.unwrap_or_default(),
        labels: request.labels.unwrap_or_default(),
    };
    match engine.volumes.create(request).await {
        Ok(volume) => json::with_status(StatusCode::CREATED, &volume),
        Err(e) => ApiError::from(e).into_response(),
    }
}

async fn inspect(State(engine): State<AppState>, Path(name): Path<String>) -> Response {
    match engine.volumes.inspect(&name).await {
        Ok(volume) => json::ok(&volume),
        Err(e) => ApiError::from(e).into_response(),
    }
}

async fn remove(
    State(engine): State<AppState>,
    Path(name): Path<String>,
    Query(params): Params,
) -> Response {
    match engine
        .volumes
        .remove(&name, bool_param(&params, "force"))
        .await
    {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

async fn prune(State(engine): State<AppState>, Query(params): Params) -> Response {
    let filters = match filters_param(&params) {
        Ok(filters) => filters,
        Err(e) => return e.into_response(),
    };
    match engine.volumes.prune(&filters).await {
        Ok((deleted, reclaimed)) => json::ok(&VolumesPruneResponse {
            volumes_deleted: Some(deleted),
            space_reclaimed: reclaimed,
        }),
        Err(e) => ApiError::from(e).into_response(),
    }
}
