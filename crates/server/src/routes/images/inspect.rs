//! `GET /images/json`, `GET /images/{name}/json` and `GET /images/{name}/history`: the
//! engine's image details shaped as Docker's JSON for the negotiated API version.

use std::collections::BTreeMap;

use axum::extract::{RawQuery, State};
use axum::response::Response;
use axum::Extension;
use berth_api::container::inspect::GraphDriver;
use berth_api::image::{HistoryItem, ImageInspect, ImageMetadata, ImageSummary, RootFs};
use berth_api::{ApiVersion, Filters};
use berth_engine::image::{HistoryEntry, ImageDetails};

use super::stream::Query;
use crate::error::ApiError;
use crate::json;
use crate::AppState;

/// Go's zero `time.Time`, which Docker shows for images never tagged.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Docker shows `<none>:<none>` / `<none>@<none>` for untagged images before API 1.44.
fn placeholders(version: ApiVersion, details: &ImageDetails) -> (Vec<String>, Vec<String>) {
    let (tags, digests) = (details.repo_tags.clone(), details.repo_digests.clone());
    if tags.is_empty() && digests.is_empty() && version < ApiVersion::new(1, 44) {
        return (vec!["<none>:<none>".into()], vec!["<none>@<none>".into()]);
    }
    (tags, digests)
}

fn labels(details: &ImageDetails) -> Option<BTreeMap<String, String>> {
    details
        .config
        .config
        .as_ref()
        .and_then(|c| c.labels.clone())
}

/// Sizes of the layers each image shares with at least one other image.
fn shared_sizes(images: &[ImageDetails]) -> Vec<i64> {
    let mut users: BTreeMap<String, usize> = BTreeMap::new();
    for image in images {
        for (diff_id, _) in &image.layers {
            *users.entry(diff_id.to_string()).or_default() += 1;
        }
    }
    images
        .iter()
        .map(|image| {
            image
                .layers
                .iter()
                .filter(|(d, _)| users.get(&d.to_string()).copied().unwrap_or(0) > 1)
                .map(|(_, size)| size)
                .sum()
        })
        .collect()
}

pub fn summary(details: &ImageDetails, version: ApiVersion, shared: Option<i64>) -> ImageSummary {
    let (repo_tags, repo_digests) = placeholders(version, details);
    ImageSummary {
        containers: if shared.is_some() {
            details.containers
        } else {
            -1
        },
        created: details.created_unix,
        id: details.record.id.to_string(),
        labels: labels(details),
        parent_id: String::new(),
        descriptor: None,
        repo_digests: Some(repo_digests),
        repo_tags: Some(repo_tags),
        shared_size: shared.unwrap_or(-1),
        size: details.size,
        virtual_size: 0,
    }
    .for_api_version(version)
}

/// `GET /images/json?all=&filters=&shared-size=&digests=`.
pub async fn list(
    State(engine): State<AppState>,
    Extension(version): Extension<ApiVersion>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let query = Query::parse(raw);
    let mut filters = Filters::parse(query.get("filters"))?;
    // API < 1.41 clients send the reference as `filter`.
    if !query.get("filter").is_empty() {
        filters.add("reference", query.get("filter"));
    }
    let images = engine.images.list(filters).await?;
    let shared = query.bool("shared-size").then(|| shared_sizes(&images));
    let out: Vec<ImageSummary> = images
        .iter()
        .enumerate()
        .map(|(i, d)| summary(d, version, shared.as_ref().map(|s| s[i])))
        .collect();
    Ok(json::ok(&out))
}

fn api_config(details: &ImageDetails) -> Option<berth_api::image::ImageConfig> {
    let config = details.config.config.as_ref()?;
    serde_json::to_value(config)
        .ok()
        .and_then(|v| serde_json::from_value(v).ok())
}

pub fn inspect_body(details: &ImageDetails, version: ApiVersion) -> ImageInspect {
    let config = &details.config;
    ImageInspect {
        id: details.record.id.to_string(),
        repo_tags: Some(details.repo_tags.clone()),
        repo_digests: Some(details.repo_digests.clone()),
        parent: String::new(),
        comment: config.comment.clone().unwrap_or_default(),
        created: config.created.clone().unwrap_or_default(),
        docker_version: config.docker_version.clone().unwrap_or_default(),
        author: config.author.clone().unwrap_or_default(),
        config: api_config(details),
        architecture: config.architecture.clone(),
        variant: config.variant.clone().unwrap_or_default(),
        os: config.os.clone(),
        os_version: config.os_version.clone().unwrap_or_default(),
        size: details.size,
        virtual_size: 0,
        graph_driver: GraphDriver {
            data: Some(details.graph_data.clone()).filter(|d| !d.is_empty()),
            name: "overlay2".into(),
        },
        root_fs: RootFs {
            r#type: "layers".into(),
            layers: Some(config.diff_ids().iter().map(|d| d.to_string()).collect()),
        },
        metadata: ImageMetadata {
            last_tag_time: if details.last_tag_time.is_empty() {
                ZERO_TIME.into()
            } else {
                details.last_tag_time.clone()
            },
        },
        descriptor: None,
        manifests: None,
    }
    .for_api_version(version)
}

/// `GET /images/{name}/json`.
pub async fn inspect(
    engine: AppState,
    version: ApiVersion,
    name: &str,
) -> Result<Response, ApiError> {
    let details = engine.images.inspect(name).await?;
    Ok(json::ok(&inspect_body(&details, version)))
}

fn history_item(entry: HistoryEntry) -> HistoryItem {
    HistoryItem {
        id: entry.id,
        created: entry.created,
        created_by: entry.created_by,
        tags: Some(entry.tags).filter(|t| !t.is_empty()),
        size: entry.size,
        comment: entry.comment,
    }
}

/// `GET /images/{name}/history`.
pub async fn history(engine: AppState, name: &str) -> Result<Response, ApiError> {
    let entries = engine.images.history(name).await?;
    let items: Vec<HistoryItem> = entries.into_iter().map(history_item).collect();
    Ok(json::ok(&items))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_tags_are_null_below_the_top() {
        let item = history_item(HistoryEntry {
            id: "<missing>".into(),
            created: 1,
            created_by: "ADD".into(),
            tags: Vec::new(),
            size: 3,
            comment: String::new(),
        });
        let json = serde_json::to_value(&item).expect("encode");
        assert!(json["Tags"].is_null());
        assert_eq!(json["Id"], "<missing>");
    }
}
