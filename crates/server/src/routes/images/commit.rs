//! A container's writable layer as the image service sees it: `POST /commit` (the layer
//! becomes an image, the request's config merged over the container's, `--change`
//! applied), `GET /containers/{id}/changes` (`docker diff`) and
//! `GET /containers/{id}/export` (the flattened root filesystem, while it is mounted).

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_api::container::ops::IdResponse;
use berth_engine::image::CommitRequest;
use serde_json::Value;

use super::stream::Query;
use crate::error::ApiError;
use crate::json;
use crate::AppState;

/// Request fields that are set (not null, not empty) replace the container's.
fn merge(base: &mut Value, over: Value) {
    let (Value::Object(base), Value::Object(over)) = (base, over) else {
        return;
    };
    for (key, value) in over {
        let empty = match &value {
            Value::Null => true,
            Value::String(s) => s.is_empty(),
            Value::Array(a) => a.is_empty(),
            Value::Object(o) => o.is_empty(),
            Value::Bool(b) => !b,
            Value::Number(n) => n.as_i64() == Some(0),
        };
        if !empty {
            base.insert(key, value);
        }
    }
}

pub async fn commit(
    State(engine): State<AppState>,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let query = Query::parse(raw);
    let container = engine.containers.get(query.get("container"))?;
    let record = container.record();
    let mut config = serde_json::to_value(&record.config).unwrap_or(Value::Null);
    let requested: Value = json::parse::<Option<Value>>(&body)?.unwrap_or(Value::Null);
    if !matches!(requested, Value::Object(_) | Value::Null) {
        // Go's decoder into container.Config refuses anything but an object (or null).
        return Err(ApiError::invalid(
            "invalid container config: expected a JSON object",
        ));
    }
    merge(&mut config, requested);
    let config = serde_json::from_value(config)
        .map_err(|e| ApiError::invalid(format!("invalid container config: {e}")))?;
    let mut created_by = vec![record.path.clone()];
    created_by.extend(record.args.iter().cloned());
    let request = CommitRequest {
        container_id: record.id.clone(),
        image_id: record.image_id.clone(),
        config,
        changes: query.all("changes"),
        repo: query.get("repo").to_string(),
        tag: query.get("tag").to_string(),
        comment: query.get("comment").to_string(),
        author: query.get("author").to_string(),
        created_by: created_by.join(" "),
    };
    let id = engine.images.commit(request).await?;
    let mut attributes = std::collections::BTreeMap::new();
    attributes.insert("comment".to_string(), query.get("comment").to_string());
    attributes.insert("imageID".to_string(), id.to_string());
    attributes.insert(
        "name".to_string(),
        record.name.trim_start_matches('/').to_string(),
    );
    engine
        .events
        .publish("container", "commit", &record.id, attributes);
    Ok(json::with_status(
        StatusCode::CREATED,
        &IdResponse { id: id.to_string() },
    ))
}

/// `GET /containers/{id}/changes`: `[{"Kind": 0|1|2, "Path": ...}]`.
pub async fn changes(
    State(engine): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    #[derive(serde::Serialize)]
    struct Change {
        #[serde(rename = "Kind")]
        kind: u8,
        #[serde(rename = "Path")]
        path: String,
    }
    let container = engine.containers.get(&id)?;
    let changes = engine.images.container_changes(&container.id).await?;
    let out: Vec<Change> = changes
        .into_iter()
        .map(|c| Change {
            kind: c.kind,
            path: c.path,
        })
        .collect();
    Ok(json::ok(&out))
}

/// `GET /containers/{id}/export`: a tar of the container's root filesystem, running or not
/// (a stopped container's layer is mounted read-only for the export).
pub async fn export(
    State(engine): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let view = berth_engine::container::export::open(&engine, &id).await?;
    let (writer, body) = super::stream::BodyWriter::new();
    let failer = writer.failer();
    tokio::spawn(async move {
        if let Err(e) = view.write(Box::new(writer)).await {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_config_overrides_only_what_it_sets() {
        let mut base = serde_json::json!({"Cmd": ["sh"], "Env": ["A=1"], "User": "root"});
        merge(
            &mut base,
            serde_json::json!({"Cmd": ["echo", "hi"], "Env": null, "User": ""}),
        );
        assert_eq!(
            base,
            serde_json::json!({"Cmd": ["echo", "hi"], "Env": ["A=1"], "User": "root"})
        );
    }
}
