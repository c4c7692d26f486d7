//! `/images/*`, `/commit`, `/auth`, `/distribution/*`: image names contain slashes, so the routes
//! with a name (`/images/{name}/json`, `/tag`, `/push`, `/history`, `/get`, DELETE) share
//! one catch-all and are told apart by their last segment, as Docker's `{name:.*}` does.

mod commit;
mod inspect;
mod remove;
pub(crate) mod stream;
mod transfer;

use axum::extract::{Path, RawQuery, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use berth_api::{ApiVersion, ErrorKind};

use crate::error::ApiError;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/images/json", get(inspect::list))
        .route("/images/create", post(transfer::create))
        .route("/images/load", post(transfer::load))
        .route("/images/get", get(transfer::save_many))
        .route("/images/prune", post(remove::prune))
        .route("/images/search", get(transfer::search))
        .route(
            "/images/{*rest}",
            get(by_name_get).post(by_name_post).delete(by_name_delete),
        )
        .route("/commit", post(commit::commit))
        .route("/containers/{id}/changes", get(commit::changes))
        .route("/containers/{id}/export", get(commit::export))
        .route("/auth", post(transfer::auth))
        .route("/distribution/{*rest}", get(transfer::distribution))
}

fn page_not_found() -> ApiError {
    ApiError::new(ErrorKind::NotFound, "page not found")
}

async fn by_name_get(
    State(engine): State<AppState>,
    Extension(version): Extension<ApiVersion>,
    Path(rest): Path<String>,
) -> Result<Response, ApiError> {
    if let Some(name) = rest.strip_suffix("/json") {
        return inspect::inspect(engine, version, name).await;
    }
    if let Some(name) = rest.strip_suffix("/history") {
        return inspect::history(engine, name).await;
    }
    if let Some(name) = rest.strip_suffix("/get") {
        return transfer::save_one(engine, name).await;
    }
    Err(page_not_found())
}

async fn by_name_post(
    State(engine): State<AppState>,
    Path(rest): Path<String>,
    RawQuery(raw): RawQuery,
    request: Request,
) -> Result<Response, ApiError> {
    if let Some(name) = rest.strip_suffix("/tag") {
        return remove::tag(engine, name, raw).await;
    }
    if let Some(name) = rest.strip_suffix("/push") {
        return Ok(transfer::push(engine, name, raw, request.headers()).await);
    }
    Err(page_not_found())
}

async fn by_name_delete(
    State(engine): State<AppState>,
    Path(rest): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    remove::delete(engine, &rest, raw)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}
