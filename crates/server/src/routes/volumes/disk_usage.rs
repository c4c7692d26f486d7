//! `GET /system/df` (Docker's `DiskUsage`): images with shared and unique sizes and the
//! containers using them, containers' writable layers (`SizeRw`, plus their json-file
//! logs, which Docker leaves out but which fill disks all the same) and `SizeRootFs`,
//! volumes with `UsageData`, and the build cache's records (one per cached step).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use berth_api::disk_usage::DiskUsage;
use berth_api::image::ImageSummary;
use berth_api::Filters;
use berth_engine::volume::usage;

use crate::error::ApiError;
use crate::json;
use crate::AppState;

/// `?type=` selects parts (API 1.42); none means all.
pub(super) async fn disk_usage(
    State(engine): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let wanted: Vec<&str> = params
        .get("type")
        .map(|t| t.split(',').collect())
        .unwrap_or_default();
    let want = |kind: &str| wanted.is_empty() || wanted.contains(&kind);
    let mut report = DiskUsage::default();
    let images = match engine.images.list(Filters::new()).await {
        Ok(images) => images,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let image_sizes: BTreeMap<String, i64> = images
        .iter()
        .map(|i| (i.record.id.to_string(), i.size))
        .collect();
    if want("image") {
        let mut users: BTreeMap<String, usize> = BTreeMap::new();
        let mut layer_sizes: BTreeMap<String, i64> = BTreeMap::new();
        for image in &images {
            for (diff_id, size) in &image.layers {
                *users.entry(diff_id.to_string()).or_default() += 1;
                layer_sizes.insert(diff_id.to_string(), *size);
            }
        }
        report.layers_size = layer_sizes.values().sum();
        let summaries = images
            .iter()
            .map(|image| {
                let shared: i64 = image
                    .layers
                    .iter()
                    .filter(|(d, _)| users.get(&d.to_string()).copied().unwrap_or(0) > 1)
                    .map(|(_, size)| size)
                    .sum();
                ImageSummary {
                    containers: image.containers,
                    created: image.created_unix,
                    id: image.record.id.to_string(),
                    labels: image.config.config.as_ref().and_then(|c| c.labels.clone()),
                    repo_digests: Some(image.repo_digests.clone()),
                    repo_tags: Some(image.repo_tags.clone()),
                    shared_size: shared,
                    size: image.size,
                    ..ImageSummary::default()
                }
            })
            .collect();
        report.images = Some(summaries);
    }
    if want("container") {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let mut rows = Vec::new();
        for container in engine.containers.list() {
            let record = container.record();
            let upper = engine
                .images
                .rootfs_mounts(&record.id)
                .await
                .ok()
                .and_then(|mounts| {
                    let mount = mounts.first()?;
                    upper_dir(
                        &mount.fstype,
                        &mount.source,
                        &mount.options,
                        mount.working_dir.as_deref(),
                    )
                });
            let logs = record.log_path.clone();
            let size_rw = tokio::task::spawn_blocking(move || writable_size(upper, logs))
                .await
                .unwrap_or(0);
            let mut row = super::super::containers::list::summary(&record, now);
            row.size_rw = size_rw;
            row.size_root_fs = size_rw + image_sizes.get(&record.image_id).copied().unwrap_or(0);
            rows.push(row);
        }
        report.containers = Some(rows);
    }
    if want("volume") {
        match engine.volumes.usage().await {
            Ok(volumes) => report.volumes = Some(volumes),
            Err(e) => return ApiError::from(e).into_response(),
        }
    }
    if want("build-cache") {
        report.build_cache = Some(berth_engine::build::cache_records(&engine).await);
    }
    json::ok(&report)
}

/// The overlay upper directory of a container's root filesystem.
fn upper_dir(
    fstype: &str,
    source: &std::path::Path,
    options: &[String],
    working_dir: Option<&std::path::Path>,
) -> Option<PathBuf> {
    if fstype == "bind" {
        return Some(source.to_path_buf());
    }
    options
        .iter()
        .find_map(|o| o.strip_prefix("upperdir="))
        .map(|dir| match working_dir {
            Some(base) => base.join(dir),
            None => PathBuf::from(dir),
        })
}

/// Apparent size of the writable layer plus the json-file log and its rotated files.
fn writable_size(upper: Option<PathBuf>, log: Option<PathBuf>) -> i64 {
    let mut total = upper.map_or(0, |dir| usage::size(&dir).unwrap_or(0));
    if let Some(log) = log {
        if let (Some(dir), Some(name)) = (log.parent(), log.file_name()) {
            let name = name.to_string_lossy().into_owned();
            if let Ok(entries) = std::fs::read_dir(dir) {
                for entry in entries.flatten() {
                    if entry.file_name().to_string_lossy().starts_with(&name) {
                        total += entry.metadata().map_or(0, |m| m.len());
                    }
                }
            }
        }
    }
    total as i64
}
