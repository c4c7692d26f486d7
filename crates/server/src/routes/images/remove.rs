//! `POST /images/{name}/tag`, `DELETE /images/{name}` and `POST /images/prune`.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use berth_api::image::{ImageDeleteResponseItem, ImagesPruneResponse};
use berth_api::Filters;
use berth_engine::container::Status;
use berth_engine::image::DeleteItem;

use super::stream::Query;
use crate::error::ApiError;
use crate::json;
use crate::AppState;

/// Whether container `id` runs (Docker refuses even forced deletes of its image).
fn running(engine: &AppState) -> impl Fn(&str) -> bool + Sync + '_ {
    move |id| {
        engine.containers.get(id).is_ok_and(|c| {
            matches!(
                c.record().state.status,
                Status::Running | Status::Paused | Status::Restarting
            )
        })
    }
}

fn item(item: DeleteItem) -> ImageDeleteResponseItem {
    match item {
        DeleteItem::Untagged(r) => ImageDeleteResponseItem::untagged(r),
        DeleteItem::Deleted(id) => ImageDeleteResponseItem::deleted(id),
    }
}

/// `POST /images/{name}/tag?repo=&tag=`: 201 with no body.
pub async fn tag(engine: AppState, name: &str, raw: Option<String>) -> Result<Response, ApiError> {
    let query = Query::parse(raw);
    let (repo, tag) = (query.get("repo"), query.get("tag"));
    let target = if tag.is_empty() {
        repo.to_string()
    } else {
        format!("{repo}:{tag}")
    };
    engine.images.tag(name, &target).await?;
    Ok(StatusCode::CREATED.into_response())
}

/// `DELETE /images/{name}?force=&noprune=`.
pub async fn delete(
    engine: AppState,
    name: &str,
    raw: Option<String>,
) -> Result<Response, ApiError> {
    let query = Query::parse(raw);
    let probe = running(&engine);
    let items = engine
        .images
        .delete(name, query.bool("force"), &probe)
        .await?;
    let items: Vec<ImageDeleteResponseItem> = items.into_iter().map(item).collect();
    Ok(json::ok(&items))
}

/// `POST /images/prune?filters=`.
pub async fn prune(
    State(engine): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let query = Query::parse(raw);
    let filters = Filters::parse(query.get("filters"))?;
    let probe = running(&engine);
    // What the data root's `du` loses, not the layers' apparent sizes.
    let data_root = engine.config.data_root.clone();
    let pruned = engine.images.prune(filters, &probe);
    let (report, reclaimed) = berth_engine::volume::usage::reclaimed(&data_root, pruned).await;
    let report = report?;
    let items: Vec<ImageDeleteResponseItem> = report.items.into_iter().map(item).collect();
    Ok(json::ok(&ImagesPruneResponse {
        images_deleted: Some(items).filter(|i| !i.is_empty()),
        space_reclaimed: reclaimed,
    }))
}
