//! What `docker images`, `docker image inspect` and `docker history` show of an image:
//! names, sizes (Docker's layer sizes), creation times, the snapshot paths, in the
//! engine's own types (berth-server shapes them into Docker's JSON).

use std::collections::BTreeMap;

use berth_api::Filters;
use berth_image::{ImageConfig, ImageRecord, Manifest};
use berth_oci::Digest;

use super::filters::{Candidate, ListFilters, LIST_FILTERS};
use super::size::layer_size;
use super::{lock, state, ImageError, ImageService, Inner};

/// One image with everything the list and inspect routes show.
#[derive(Debug, Clone)]
pub struct ImageDetails {
    pub record: ImageRecord,
    pub manifest: Manifest,
    pub config: ImageConfig,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    /// Sum of the layer sizes.
    pub size: i64,
    /// Each layer's DiffID and size, bottom first.
    pub layers: Vec<(Digest, i64)>,
    /// Creation time, Unix seconds (0 when the config has none).
    pub created_unix: i64,
    /// Containers whose root filesystem sits on this image.
    pub containers: i64,
    pub last_tag_time: String,
    /// overlay2's `GraphDriver.Data` of the image's top layer, when unpacked.
    pub graph_data: BTreeMap<String, String>,
}

/// One line of `docker history`, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The image id for the top entry, `<missing>` below it.
    pub id: String,
    pub created: i64,
    pub created_by: String,
    pub tags: Vec<String>,
    pub size: i64,
    pub comment: String,
}

pub(crate) fn unix_seconds(rfc3339: Option<&str>) -> i64 {
    rfc3339
        .and_then(berth_api::time::parse_rfc3339)
        .map_or(0, |(secs, _)| secs)
}

impl Inner {
    /// Docker's size of every layer of `manifest` (computed once per DiffID).
    pub fn layer_sizes(&self, manifest: &Manifest, config: &ImageConfig) -> Vec<i64> {
        let mut out = Vec::new();
        let mut changed = false;
        for (layer, diff_id) in manifest.layers.iter().zip(config.diff_ids()) {
            let key = diff_id.to_string();
            if let Some(size) = lock(&self.layer_sizes).get(&key) {
                out.push(*size);
                continue;
            }
            let computed = self
                .content
                .reader(&layer.digest)
                .ok()
                .and_then(|r| berth_snapshot::compression::decompress(r).ok())
                .and_then(|(_, plain)| layer_size(plain).ok());
            match computed {
                Some(size) => {
                    lock(&self.layer_sizes).insert(key, size);
                    changed = true;
                    out.push(size);
                }
                None => out.push(i64::try_from(layer.size).unwrap_or(0)),
            }
        }
        if changed {
            let sizes = lock(&self.layer_sizes).clone();
            let _ = state::write_json(&self.dir.join(state::LAYER_SIZES), &sizes);
        }
        out
    }

    /// The details of one image; `graph` adds the snapshot paths (inspect only: walking
    /// the snapshot parents is not worth it for every line of `docker images`).
    pub fn details(&self, record: &ImageRecord, graph: bool) -> Result<ImageDetails, ImageError> {
        let resolved = self.resolve(record)?;
        let sizes = self.layer_sizes(&resolved.manifest, &resolved.config);
        let containers = lock(&self.rootfs)
            .values()
            .filter(|id| **id == record.id)
            .count() as i64;
        Ok(ImageDetails {
            repo_tags: self.images.repo_tags(&record.id),
            repo_digests: self.images.repo_digests(&record.id),
            size: sizes.iter().sum(),
            layers: resolved
                .config
                .diff_ids()
                .iter()
                .cloned()
                .zip(sizes.iter().copied())
                .collect(),
            created_unix: unix_seconds(resolved.config.created.as_deref()),
            containers,
            last_tag_time: self.last_tag_time(&record.id),
            graph_data: if graph {
                self.graph_data(&resolved.config)
            } else {
                BTreeMap::new()
            },
            manifest: resolved.manifest.clone(),
            config: resolved.config.clone(),
            record: record.clone(),
        })
    }

    /// overlay2-style paths of the image's layers, as `docker image inspect` shows them.
    fn graph_data(&self, config: &ImageConfig) -> BTreeMap<String, String> {
        let mut data = BTreeMap::new();
        let chain = config.chain_ids();
        let Some(top) = chain.last() else {
            return data;
        };
        let Ok(info) = self.snapshotter.stat(&top.to_string()) else {
            return data;
        };
        let snapshots = self.dir.join("snapshots").join("snapshots");
        let dir = snapshots.join(&info.id);
        data.insert("MergedDir".into(), dir.join("merged").display().to_string());
        data.insert("UpperDir".into(), dir.join("fs").display().to_string());
        data.insert("WorkDir".into(), dir.join("work").display().to_string());
        let parents: BTreeMap<String, Option<String>> = self
            .snapshotter
            .list()
            .unwrap_or_default()
            .into_iter()
            .map(|s| (s.id, s.parent))
            .collect();
        let mut lower = Vec::new();
        let mut parent = info.parent.clone();
        while let Some(id) = parent {
            lower.push(snapshots.join(&id).join("fs").display().to_string());
            parent = parents.get(&id).cloned().flatten();
            if lower.len() > parents.len() {
                break;
            }
        }
        if !lower.is_empty() {
            data.insert("LowerDir".into(), lower.join(":"));
        }
        data
    }

    fn created_of(&self, name: &str) -> Result<i64, ImageError> {
        let record = self.images.resolve(name)?;
        let resolved = self.resolve(&record)?;
        Ok(unix_seconds(resolved.config.created.as_deref()))
    }

    /// Images matching `filters` (`GET /images/json`), newest first as Docker sorts them.
    pub fn list(&self, filters: &Filters) -> Result<Vec<ImageDetails>, ImageError> {
        let filters = ListFilters::parse(filters, LIST_FILTERS, |n| self.created_of(n))?;
        let mut out = Vec::new();
        for record in self.images.list() {
            // An image whose blobs went missing is skipped, not fatal for the whole list.
            let Ok(details) = self.details(&record, false) else {
                continue;
            };
            let references = self.images.references(&record.id);
            let labels = details
                .config
                .config
                .as_ref()
                .and_then(|c| c.labels.clone())
                .unwrap_or_default();
            if !filters.matches(&Candidate {
                references: &references,
                labels: &labels,
                created: details.created_unix,
            }) {
                continue;
            }
            let mut details = details;
            if !filters.references.is_empty() {
                // Docker lists only the names the reference filter matched.
                let hit = |name: &String| {
                    berth_oci::Reference::parse_normalized(name).is_ok_and(|r| {
                        filters
                            .references
                            .iter()
                            .any(|p| super::filters::reference_matches(p, &r))
                    })
                };
                details.repo_tags.retain(hit);
                details.repo_digests.retain(hit);
            }
            out.push(details);
        }
        out.sort_by_key(|d| std::cmp::Reverse(d.created_unix));
        Ok(out)
    }
}

/// `docker history` of an image whose config is `config` and layer sizes `sizes`.
pub fn history(
    id: &Digest,
    config: &ImageConfig,
    sizes: &[i64],
    tags: Vec<String>,
) -> Vec<HistoryEntry> {
    let mut layers = sizes.iter();
    let mut entries: Vec<HistoryEntry> = config
        .history
        .iter()
        .map(|h| {
            let empty = h.empty_layer.unwrap_or(false);
            HistoryEntry {
                id: "<missing>".to_string(),
                created: unix_seconds(h.created.as_deref()),
                created_by: h.created_by.clone().unwrap_or_default(),
                tags: Vec::new(),
                size: if empty {
                    0
                } else {
                    layers.next().copied().unwrap_or(0)
                },
                comment: h.comment.clone().unwrap_or_default(),
            }
        })
        .collect();
    entries.reverse();
    if let Some(top) = entries.first_mut() {
        top.id = id.to_string();
        top.tags = tags;
    }
    entries
}

impl ImageService {
    /// `GET /images/json`.
    pub async fn list(&self, filters: Filters) -> Result<Vec<ImageDetails>, ImageError> {
        self.blocking(move |inner| inner.list(&filters)).await
    }

    /// `GET /images/{name}/json`.
    pub async fn inspect(&self, name: &str) -> Result<ImageDetails, ImageError> {
        let name = name.to_string();
        self.blocking(move |inner| {
            let record = inner.images.resolve(&name)?;
            inner.details(&record, true)
        })
        .await
    }

    /// `GET /images/{name}/history`.
    pub async fn history(&self, name: &str) -> Result<Vec<HistoryEntry>, ImageError> {
        let name = name.to_string();
        self.blocking(move |inner| {
            let record = inner.images.resolve(&name)?;
            let resolved = inner.resolve(&record)?;
            let sizes = inner.layer_sizes(&resolved.manifest, &resolved.config);
            Ok(history(
                &record.id,
                &resolved.config,
                &sizes,
                inner.images.repo_tags(&record.id),
            ))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_image::History;

    #[test]
    fn history_is_newest_first_with_missing_ids_below_the_top() {
        let config = ImageConfig {
            history: vec![
                History {
                    created: Some("2024-01-01T00:00:00Z".into()),
                    created_by: Some("ADD rootfs".into()),
                    ..History::default()
                },
                History {
                    created: Some("2024-01-02T00:00:00Z".into()),
                    created_by: Some("CMD [\"sh\"]".into()),
                    empty_layer: Some(true),
                    ..History::default()
                },
            ],
            ..ImageConfig::default()
        };
        let id = Digest::sha256_of(b"config");
        let entries = history(&id, &config, &[1234], vec!["busybox:latest".into()]);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].id, id.to_string());
        assert_eq!(entries[0].size, 0);
        assert_eq!(entries[0].tags, vec!["busybox:latest".to_string()]);
        assert_eq!(entries[1].id, "<missing>");
        assert_eq!(entries[1].size, 1234);
        assert_eq!(entries[1].created, 1_704_067_200);
    }
}
