//! The build cache as `/system/df` and `/build/prune` see it: one record per cached step
//! (the cache index's key and the step's image), sized by the layer the step added, and
//! shared when a tagged image, a container or a kept child still needs that image.
//! Prune forgets every record and deletes the step images nothing else needs.

use std::collections::{BTreeMap, BTreeSet};

use berth_api::disk_usage::BuildCacheRecord;
use berth_api::Filters;

use super::cache::CacheIndex;
use crate::container::Status;
use crate::image::ImageDetails;
use crate::Engine;

/// What `/build/prune` did: the records forgotten.
#[derive(Debug, Default)]
pub struct CachePruneReport {
    pub caches_deleted: Vec<String>,
}

fn index(engine: &Engine) -> CacheIndex {
    CacheIndex::new(super::build_dir(engine).join("cache.json"))
}

/// An image as the cache's reachability sees it.
struct Node {
    id: String,
    parent: Option<String>,
    /// Tagged, digested or under a container.
    kept: bool,
}

impl Node {
    fn of(image: &ImageDetails) -> Node {
        Node {
            id: image.record.id.to_string(),
            parent: image.config.parent.clone(),
            kept: !image.repo_tags.is_empty()
                || !image.repo_digests.is_empty()
                || image.containers > 0,
        }
    }
}

/// Image ids that only the build cache keeps: cached, not kept, and every child image is
/// itself one of them (Docker's classic builder keeps intermediate images as parents of
/// the final one; those stay while it does).
fn cache_only(images: &[Node], cached: &BTreeSet<String>) -> BTreeSet<String> {
    let mut removable: BTreeSet<String> = images
        .iter()
        .filter(|i| cached.contains(&i.id) && !i.kept)
        .map(|i| i.id.clone())
        .collect();
    loop {
        let needed: BTreeSet<&String> = images
            .iter()
            .filter(|i| !removable.contains(&i.id))
            .filter_map(|i| i.parent.as_ref())
            .collect();
        let before = removable.len();
        removable.retain(|id| !needed.contains(id));
        if removable.len() == before {
            return removable;
        }
    }
}

fn nodes(images: &[ImageDetails]) -> Vec<Node> {
    images.iter().map(Node::of).collect()
}

/// Bytes of the layers `image` adds to its parent (0 for a step without a layer).
fn own_size(image: &ImageDetails, by_id: &BTreeMap<String, &ImageDetails>) -> i64 {
    let parent_layers: BTreeSet<String> = image
        .config
        .parent
        .as_ref()
        .and_then(|p| by_id.get(p))
        .map(|p| p.layers.iter().map(|(d, _)| d.to_string()).collect())
        .unwrap_or_default();
    image
        .layers
        .iter()
        .filter(|(d, _)| !parent_layers.contains(&d.to_string()))
        .map(|(_, size)| *size)
        .sum()
}

/// The build cache's records for `/system/df` (`BuildCache`), oldest step image first.
pub async fn records(engine: &Engine) -> Vec<BuildCacheRecord> {
    let entries = index(engine).entries();
    if entries.is_empty() {
        return Vec::new();
    }
    let images = engine.images.list(Filters::new()).await.unwrap_or_default();
    let cached: BTreeSet<String> = entries.values().cloned().collect();
    let removable = cache_only(&nodes(&images), &cached);
    let by_id: BTreeMap<String, &ImageDetails> = images
        .iter()
        .map(|i| (i.record.id.to_string(), i))
        .collect();
    let mut rows = Vec::new();
    for (key, image_id) in entries {
        let Some(image) = by_id.get(&image_id) else {
            continue;
        };
        let created = image.config.created.clone().unwrap_or_default();
        let description = image
            .config
            .history
            .last()
            .and_then(|h| h.created_by.clone())
            .unwrap_or_default();
        rows.push(BuildCacheRecord {
            id: key,
            parents: image.config.parent.clone().map(|p| vec![p]),
            r#type: "regular".to_string(),
            description,
            in_use: false,
            shared: !removable.contains(&image_id),
            size: own_size(image, &by_id),
            created_at: created.clone(),
            last_used_at: Some(created),
            usage_count: 1,
            ..BuildCacheRecord::default()
        });
    }
    rows.sort_by(|a, b| {
        a.created_at
            .cmp(&b.created_at)
            .then_with(|| a.id.cmp(&b.id))
    });
    rows
}

/// `POST /build/prune`: forgets every cache record and deletes the step images only the
/// cache kept (children before parents); returns the forgotten records' ids.
pub async fn prune(engine: &Engine) -> CachePruneReport {
    let entries = index(engine).clear_entries();
    let cached: BTreeSet<String> = entries.values().cloned().collect();
    let running = |id: &str| {
        engine.containers.get(id).is_ok_and(|c| {
            matches!(
                c.record().state.status,
                Status::Running | Status::Paused | Status::Restarting
            )
        })
    };
    loop {
        let images = engine.images.list(Filters::new()).await.unwrap_or_default();
        let removable = cache_only(&nodes(&images), &cached);
        let parents: BTreeSet<String> = images
            .iter()
            .filter_map(|i| i.config.parent.clone())
            .collect();
        // Leaves first: an image with a child is refused until the child is gone.
        let leaves: Vec<&String> = removable
            .iter()
            .filter(|id| !parents.contains(*id))
            .collect();
        let mut progress = false;
        for id in leaves {
            progress |= engine.images.delete(id, false, &running).await.is_ok();
        }
        if !progress {
            break;
        }
    }
    CachePruneReport {
        caches_deleted: entries.into_keys().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, parent: Option<&str>, kept: bool) -> Node {
        Node {
            id: id.to_string(),
            parent: parent.map(str::to_string),
            kept,
        }
    }

    #[test]
    fn cache_only_keeps_what_tagged_images_and_containers_need() {
        // a <- b <- c (tagged); a <- d <- e; f under a container; g not cached.
        let images = vec![
            node("a", None, false),
            node("b", Some("a"), false),
            node("c", Some("b"), true),
            node("d", Some("a"), false),
            node("e", Some("d"), false),
            node("f", None, true),
            node("g", None, false),
        ];
        let cached: BTreeSet<String> = ["a", "b", "c", "d", "e", "f"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let removable = cache_only(&images, &cached);
        let expected: BTreeSet<String> = ["d", "e"].iter().map(|s| s.to_string()).collect();
        assert_eq!(removable, expected);
    }

    #[test]
    fn cache_only_frees_a_whole_chain_nothing_tags() {
        let images = vec![
            node("a", None, false),
            node("b", Some("a"), false),
            node("c", Some("b"), false),
        ];
        let cached: BTreeSet<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        assert_eq!(cache_only(&images, &cached), cached);
    }
}
