//! `/containers/{id}/exec` and `/exec/*`: create, start (hijacked or detached), resize and
//! inspect exec instances (moby's `router/container/exec.go`).

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{Response, StatusCode};
use axum::routing::{get, post};
use axum::{Extension, Router};
use berth_api::container::ops::{ExecCreateRequest, ExecStartRequest, IdResponse};
use berth_api::ApiVersion;
use berth_engine::exec::{self, ExecError, StartOutcome};

use crate::error::ApiError;
use crate::hijack::{stream_content_type, Hijack};
use crate::json;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/containers/{name}/exec", post(create))
        .route("/exec/{id}/start", post(start))
        .route("/exec/{id}/resize", post(resize))
        .route("/exec/{id}/json", get(inspect))
}

/// Largest request body of these routes (a command line and its environment).
const BODY_LIMIT: usize = 1 << 20;

async fn read_body(body: Body) -> Result<axum::body::Bytes, ApiError> {
    axum::body::to_bytes(body, BODY_LIMIT)
        .await
        .map_err(|e| ApiError::invalid(format!("reading the request body: {e}")))
}

/// API versions before 1.42 have no console size.
fn console_size(version: ApiVersion, size: Option<[u32; 2]>) -> Option<[u32; 2]> {
    if version < ApiVersion::new(1, 42) {
        None
    } else {
        size
    }
}

/// `POST /containers/{name}/exec` → `201 {"Id": ...}`.
async fn create(
    State(engine): State<AppState>,
    Path(name): Path<String>,
    Extension(version): Extension<ApiVersion>,
    body: axum::body::Bytes,
) -> Result<Response<Body>, ApiError> {
    let mut request: ExecCreateRequest = json::parse(&body)?;
    request.console_size = console_size(version, request.console_size);
    let id = tokio::task::spawn_blocking(move || exec::create(&engine, &name, &request))
        .await
        .map_err(|_| ApiError::from(ExecError::Cancelled))??;
    Ok(json::with_status(StatusCode::CREATED, &IdResponse { id }))
}

/// `POST /exec/{id}/start`: detached → `200` at once; otherwise the connection is hijacked.
async fn start(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    Extension(version): Extension<ApiVersion>,
    mut request: Request,
) -> Result<Response<Body>, ApiError> {
    let hijack = Hijack::prepare(&mut request);
    let body = read_body(request.into_body()).await?;
    let options: ExecStartRequest = json::parse(&body)?;
    let size = if options.tty {
        console_size(version, options.console_size)
    } else {
        None
    };
    match exec::start(&engine, &id, options.detach, size).await? {
        StartOutcome::Detached => Ok(Response::new(Body::empty())),
        StartOutcome::Attached(session) => {
            let content_type = stream_content_type(session.tty(), version);
            Ok(hijack.respond(content_type, move |io| async move {
                session.run(io).await;
            }))
        }
    }
}

/// Parses a resize dimension as Docker's `httputils.Uint32Value` (empty is 0).
pub fn dimension(
    query: &HashMap<String, String>,
    key: &'static str,
    what: &'static str,
) -> Result<u32, ApiError> {
    let value = query.get(key).map(String::as_str).unwrap_or("");
    if value.is_empty() {
        return Ok(0);
    }
    value.parse::<u32>().map_err(|e| {
        ApiError::invalid(format!(
            "invalid resize {what} {value:?}: strconv.ParseUint: parsing {value:?}: {}",
            if e.to_string().contains("too large") {
                "value out of range"
            } else {
                "invalid syntax"
            }
        ))
    })
}

/// `POST /exec/{id}/resize?h=&w=`.
async fn resize(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response<Body>, ApiError> {
    let height = dimension(&query, "h", "height")?;
    let width = dimension(&query, "w", "width")?;
    exec::resize(&engine, &id, height, width).await?;
    Ok(Response::new(Body::empty()))
}

/// `GET /exec/{id}/json`.
async fn inspect(
    State(engine): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response<Body>, ApiError> {
    Ok(json::ok(&exec::inspect(&engine, &id)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resize_dimensions_parse_like_docker() {
        let query: HashMap<String, String> = [("h", "24"), ("w", "abc")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(dimension(&query, "h", "height"), Ok(24));
        assert_eq!(dimension(&HashMap::new(), "h", "height"), Ok(0));
        let err = dimension(&query, "w", "width").expect_err("bad width");
        assert_eq!(
            err.message,
            "invalid resize width \"abc\": strconv.ParseUint: parsing \"abc\": invalid syntax"
        );
        assert_eq!(err.kind, berth_api::ErrorKind::InvalidArgument);
    }

    #[test]
    fn console_size_needs_api_1_42() {
        assert_eq!(console_size(ApiVersion::new(1, 41), Some([1, 2])), None);
        assert_eq!(
            console_size(ApiVersion::new(1, 42), Some([1, 2])),
            Some([1, 2])
        );
    }
}
