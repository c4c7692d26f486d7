//! Moving images in and out: `POST /images/create` (pull with `fromImage`, import with
//! `fromSrc`), `POST /images/{name}/push`, `POST /images/load`, `GET /images/get` and
//! `/images/{name}/get`, `POST /auth`, `GET /distribution/{name}/json`.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_api::auth::{AuthConfig, AuthResponse};
use berth_api::image::DistributionPlatform;
use berth_api::progress::JsonMessage;
use berth_engine::image::{ImportRequest, PullRequest, PushRequest};
use tokio::sync::mpsc;

use super::stream::{progress, stream_progress, BodyReader, BodyWriter, Query};
use crate::error::ApiError;
use crate::json;
use crate::AppState;

fn registry_auth(headers: &HeaderMap) -> String {
    headers
        .get("X-Registry-Auth")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// `POST /images/create`: pull (`fromImage`) or import (`fromSrc`).
pub async fn create(
    State(engine): State<AppState>,
    RawQuery(raw): RawQuery,
    request: Request,
) -> Result<Response, ApiError> {
    let query = Query::parse(raw);
    let (tx, rx) = mpsc::unbounded_channel();
    if !query.get("fromImage").is_empty() {
        let pull = PullRequest {
            image: query.get("fromImage").to_string(),
            tag: query.get("tag").to_string(),
            platform: query.get("platform").to_string(),
            registry_auth: registry_auth(request.headers()),
        };
        let task = tokio::spawn(async move { engine.images.pull(pull, tx).await });
        return Ok(progress(rx, task).await);
    }
    if !query.get("fromSrc").is_empty() {
        let import = ImportRequest {
            source: query.get("fromSrc").to_string(),
            repo: query.get("repo").to_string(),
            tag: query.get("tag").to_string(),
            message: query.get("message").to_string(),
            changes: query.all("changes"),
            platform: query.get("platform").to_string(),
        };
        let body = BodyReader::new(request.into_body());
        let task = tokio::spawn(async move {
            let id = engine.images.import(import, Box::new(body)).await?;
            let _ = tx.send(JsonMessage::status(id.to_string()));
            Ok(())
        });
        return Ok(progress(rx, task).await);
    }
    Err(ApiError::invalid("either fromImage or fromSrc must be set"))
}

/// `POST /images/{name}/push?tag=`.
pub async fn push(
    engine: AppState,
    name: &str,
    raw: Option<String>,
    headers: &HeaderMap,
) -> Response {
    let query = Query::parse(raw);
    let request = PushRequest {
        name: name.to_string(),
        tag: query.get("tag").to_string(),
        registry_auth: registry_auth(headers),
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move { engine.images.push(request, tx).await });
    progress(rx, task).await
}

/// `POST /images/load?quiet=`: `{"stream":"Loaded image: ...\n"}` lines.
pub async fn load(State(engine): State<AppState>, request: Request) -> Response {
    let body = BodyReader::new(request.into_body());
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        let loaded = engine.images.load(Box::new(body)).await?;
        for message in loaded.messages {
            let _ = tx.send(JsonMessage {
                stream: format!("{message}\n"),
                ..JsonMessage::default()
            });
        }
        Ok(())
    });
    stream_progress(rx, task, true).await
}

async fn save(engine: AppState, names: Vec<String>) -> Result<Response, ApiError> {
    engine.images.check_save(names.clone()).await?;
    let (writer, body) = BodyWriter::new();
    let failer = writer.failer();
    tokio::spawn(async move {
        if let Err(e) = engine.images.save(names, Box::new(writer)).await {
            let _ = failer.send(Err(std::io::Error::other(e.to_string()))).await;
        }
    });
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-tar")],
        body,
    )
        .into_response())
}

/// `GET /images/get?names=a&names=b`.
pub async fn save_many(
    State(engine): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let names = Query::parse(raw).all("names");
    save(engine, names).await
}

/// `GET /images/{name}/get`.
pub async fn save_one(engine: AppState, name: &str) -> Result<Response, ApiError> {
    save(engine, vec![name.to_string()]).await
}

/// `POST /auth`: a login check against the registry.
pub async fn auth(State(engine): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let config: AuthConfig = json::parse(&body)?;
    let status = engine
        .images
        .login(&config.serveraddress, &config.username, &config.password)
        .await?;
    Ok(json::ok(&AuthResponse {
        status,
        identity_token: String::new(),
    }))
}

/// `GET /distribution/{name}/json`.
pub async fn distribution(
    State(engine): State<AppState>,
    Path(rest): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Some(name) = rest.strip_suffix("/json") else {
        return Err(ApiError::new(
            berth_api::ErrorKind::NotFound,
            "page not found",
        ));
    };
    let info = engine
        .images
        .distribution(name, &registry_auth(&headers))
        .await?;
    let platforms = info
        .platforms
        .iter()
        .map(|p| DistributionPlatform {
            architecture: p.architecture.clone(),
            os: p.os.clone(),
            os_version: p.os_version.clone(),
            os_features: Some(p.os_features.clone()).filter(|f| !f.is_empty()),
            variant: p.variant.clone(),
        })
        .collect();
    // Go writes the descriptor's fields in declaration order (mediaType, digest, size); a
    // JSON value would sort them, so the answer has its own shape here.
    #[derive(serde::Serialize)]
    struct Descriptor {
        #[serde(rename = "mediaType")]
        media_type: String,
        digest: String,
        size: u64,
    }
    #[derive(serde::Serialize)]
    struct Answer {
        #[serde(rename = "Descriptor")]
        descriptor: Descriptor,
        #[serde(rename = "Platforms")]
        platforms: Vec<DistributionPlatform>,
    }
    Ok(json::ok(&Answer {
        descriptor: Descriptor {
            media_type: info.media_type,
            digest: info.digest.to_string(),
            size: info.size,
        },
        platforms,
    }))
}

/// `GET /images/search`: registries have no search API; Docker Hub's is not reachable.
pub async fn search() -> ApiError {
    ApiError::not_implemented("image search")
}
