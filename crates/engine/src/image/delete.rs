//! `docker rmi` and `docker image prune`: Docker's untag-versus-delete rules (in
//! berth-image's store) with the containers that use each image, then garbage collection
//! of the blobs and ChainID snapshots no image needs any more.

use std::collections::BTreeSet;

use berth_api::Filters;
use berth_content::GcOptions;
use berth_image::{ContainerUse, DeleteItem};
use berth_oci::{Digest, Reference};

use super::details::unix_seconds;
use super::filters::{Candidate, ListFilters, PRUNE_FILTERS};
use super::{lock, ImageError, ImageService, Inner};

/// What `docker image prune` removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    pub items: Vec<DeleteItem>,
    pub space_reclaimed: u64,
}

impl Inner {
    /// Layer sizes of the DiffIDs that only the images in `gone` use.
    fn exclusive_size(&self, gone: &[Digest]) -> u64 {
        let mut kept = BTreeSet::new();
        for record in self.images.list() {
            if let Ok(resolved) = self.resolve(&record) {
                kept.extend(resolved.config.diff_ids().iter().cloned());
            }
        }
        let sizes = lock(&self.layer_sizes).clone();
        let mut counted = BTreeSet::new();
        let mut total = 0u64;
        for id in gone {
            let Ok(resolved) = self.resolve_id_cached(id) else {
                continue;
            };
            for diff_id in resolved.config.diff_ids() {
                if !kept.contains(diff_id) && counted.insert(diff_id.clone()) {
                    total += sizes.get(&diff_id.to_string()).copied().unwrap_or(0).max(0) as u64;
                }
            }
        }
        total
    }

    fn resolve_id_cached(
        &self,
        id: &Digest,
    ) -> Result<std::sync::Arc<super::Resolved>, ImageError> {
        self.cached(id)
            .ok_or_else(|| ImageError::NotFound(id.to_string()))
    }

    /// Whether another image was committed on top of image `id` (its config's parent).
    fn has_children(&self, id: &Digest) -> bool {
        let parent = id.to_string();
        self.images.list().iter().any(|r| {
            r.id != *id
                && self
                    .resolve(r)
                    .is_ok_and(|c| c.config.parent.as_deref() == Some(parent.as_str()))
        })
    }

    /// Docker's rules for an image with children: a name is only untagged (the image stays,
    /// quietly), an id is refused even when forced.
    fn delete_parent(
        &self,
        name: &str,
        id: &Digest,
        force: bool,
        uses: &[ContainerUse],
    ) -> Result<Vec<DeleteItem>, ImageError> {
        let by_id = id.to_string().starts_with(name) || id.hex().starts_with(name);
        if by_id {
            return Err(ImageError::Store(berth_image::StoreError::Conflict {
                short_id: id.hex().chars().take(12).collect(),
                hard: true,
                message: "image has dependent child images".into(),
            }));
        }
        let reference =
            Reference::parse_normalized(name).map_err(|e| ImageError::reference(name, e))?;
        let tags = self
            .images
            .references(id)
            .iter()
            .filter(|r| r.digest().is_none())
            .count();
        if let Some(user) = uses
            .iter()
            .find(|u| u.image_id == *id)
            .filter(|_| !force && tags <= 1)
        {
            return Err(ImageError::Store(
                berth_image::StoreError::RemoveReferenceInUse {
                    reference: name.to_string(),
                    container: user.container_id.chars().take(12).collect(),
                    image: id.hex().chars().take(12).collect(),
                },
            ));
        }
        let removed = self.images.untag(&reference)?;
        Ok(vec![DeleteItem::Untagged(removed.familiar_string())])
    }

    /// Deletes blobs no image references and ChainID snapshots no image stacks on;
    /// returns the ChainIDs of the removed snapshots.
    pub fn collect_garbage(&self) -> Result<BTreeSet<String>, ImageError> {
        let records = self.images.list();
        let mut layers = BTreeSet::new();
        for record in &records {
            if let Ok(resolved) = self.resolve(record) {
                layers.extend(resolved.manifest.layers.iter().map(|l| l.digest.clone()));
            }
        }
        // Gzip blobs made for pushes live as long as their uncompressed layer.
        let mut roots = self.compressed_roots(&layers);
        roots.extend(records.into_iter().map(|r| r.target.digest));
        self.content.gc(
            move || Ok(roots),
            berth_image::children,
            &GcOptions::with_default_expiry(std::time::SystemTime::now()),
        )?;
        let mut wanted = BTreeSet::new();
        for record in self.images.list() {
            if let Ok(resolved) = self.resolve(&record) {
                wanted.extend(resolved.config.chain_ids().iter().map(|c| c.to_string()));
            }
        }
        // Children first: a snapshot goes once nothing stacks on it.
        let mut gone = BTreeSet::new();
        loop {
            let Ok(all) = self.snapshotter.list() else {
                break;
            };
            let mut removed = false;
            for info in all {
                let is_chain = info.key.starts_with("sha256:");
                if is_chain
                    && info.kind == berth_snapshot::SnapshotKind::Committed
                    && !wanted.contains(&info.key)
                    && self.snapshotter.remove(&info.key).is_ok()
                {
                    removed = true;
                    gone.insert(info.key);
                }
            }
            if !removed {
                break;
            }
        }
        Ok(gone)
    }
}

impl ImageService {
    fn container_uses(&self, running: &(dyn Fn(&str) -> bool + Sync)) -> Vec<ContainerUse> {
        lock(&self.inner.rootfs)
            .iter()
            .map(|(container, image)| ContainerUse {
                container_id: container.clone(),
                image_id: image.clone(),
                running: running(container),
            })
            .collect()
    }

    /// `docker rmi [-f] NAME`: `running` says whether a container id is running.
    pub async fn delete(
        &self,
        name: &str,
        force: bool,
        running: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<Vec<DeleteItem>, ImageError> {
        let _exclusive = self.gc_gate.write().await;
        let uses = self.container_uses(running);
        let name = name.to_string();
        let (id, items) = self
            .blocking(move |inner| {
                let id = inner.images.resolve(&name)?.id;
                let chain = inner
                    .resolve_id(&id)
                    .map(|r| r.config.chain_ids())
                    .unwrap_or_default();
                if inner.has_children(&id) {
                    return inner
                        .delete_parent(&name, &id, force, &uses)
                        .map(|items| (id, items));
                }
                let mut items = inner.images.delete(&name, force, &uses)?;
                if items.iter().any(|i| matches!(i, DeleteItem::Deleted(_))) {
                    inner.forget(&id);
                    let removed = inner.collect_garbage()?;
                    // Docker lists the layers it released, top first, after the image.
                    items.extend(
                        chain
                            .iter()
                            .rev()
                            .map(|c| c.to_string())
                            .filter(|c| removed.contains(c))
                            .map(DeleteItem::Deleted),
                    );
                }
                Ok((id, items))
            })
            .await?;
        self.publish_deletes(&id, &items);
        Ok(items)
    }

    fn publish_deletes(&self, id: &Digest, items: &[DeleteItem]) {
        let id = id.to_string();
        for item in items {
            match item {
                DeleteItem::Untagged(_) => self.publish("untag", &id, &id),
                DeleteItem::Deleted(d) if *d == id => self.publish("delete", &id, &id),
                DeleteItem::Deleted(_) => {}
            }
        }
    }

    /// `docker image prune [-a] [--filter ...]`.
    pub async fn prune(
        &self,
        filters: Filters,
        running: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<PruneReport, ImageError> {
        let _exclusive = self.gc_gate.write().await;
        let uses = self.container_uses(running);
        let (report, deleted) = self
            .blocking(move |inner| {
                let mut parsed = ListFilters::parse(&filters, PRUNE_FILTERS, |_| Ok(0))?;
                let dangling_only = parsed.dangling.unwrap_or(true);
                parsed.dangling = dangling_only.then_some(true);
                let used: BTreeSet<Digest> = uses.iter().map(|u| u.image_id.clone()).collect();
                let mut items = Vec::new();
                let mut gone = Vec::new();
                // Passes until nothing more goes: a parent whose children went in one pass is a
                // candidate in the next, whatever order the store lists images in (Docker
                // prunes a deleted image's parent chain the same way).
                let mut progressed = true;
                while progressed {
                    progressed = false;
                    for record in inner.images.list() {
                        // Images in use, and parents of images still stored, are never pruned.
                        if gone.contains(&record.id)
                            || used.contains(&record.id)
                            || inner.has_children(&record.id)
                        {
                            continue;
                        }
                        let Ok(resolved) = inner.resolve(&record) else {
                            continue;
                        };
                        let references = inner.images.references(&record.id);
                        let labels = resolved
                            .config
                            .config
                            .as_ref()
                            .and_then(|c| c.labels.clone())
                            .unwrap_or_default();
                        if !parsed.matches(&Candidate {
                            references: &references,
                            labels: &labels,
                            created: unix_seconds(resolved.config.created.as_deref()),
                        }) {
                            continue;
                        }
                        let mut names: Vec<String> =
                            references.iter().map(|r| r.familiar_string()).collect();
                        if names.is_empty() {
                            names.push(record.id.to_string());
                        }
                        for name in names {
                            if let Ok(done) = inner.images.delete(&name, false, &uses) {
                                if done.iter().any(|i| matches!(i, DeleteItem::Deleted(_))) {
                                    gone.push(record.id.clone());
                                    progressed = true;
                                }
                                items.extend(done.into_iter().map(|i| (record.id.clone(), i)));
                            }
                        }
                    }
                }
                let space = inner.exclusive_size(&gone);
                let chains: Vec<(Digest, Vec<Digest>)> = gone
                    .iter()
                    .filter_map(|id| inner.cached(id).map(|r| (id.clone(), r.config.chain_ids())))
                    .collect();
                for id in &gone {
                    inner.forget(id);
                }
                if !gone.is_empty() {
                    let mut removed = inner.collect_garbage()?;
                    for (id, chain) in chains {
                        for c in chain.iter().rev() {
                            // Each released layer is listed once, under its first image.
                            if removed.remove(&c.to_string()) {
                                items.push((id.clone(), DeleteItem::Deleted(c.to_string())));
                            }
                        }
                    }
                }
                Ok((space, items))
            })
            .await?;
        let mut out = PruneReport {
            items: Vec::new(),
            space_reclaimed: report,
        };
        for (id, item) in deleted {
            self.publish_deletes(&id, std::slice::from_ref(&item));
            out.items.push(item);
        }
        let mut attributes = std::collections::BTreeMap::new();
        attributes.insert("reclaimed".to_string(), out.space_reclaimed.to_string());
        self.events.publish("image", "prune", "", attributes);
        Ok(out)
    }
}
