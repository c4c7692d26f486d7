//! `docker import`, `docker load` and `docker save` through berth-image's archive formats,
//! with the tags Docker gives and the events it publishes.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::time::SystemTime;

use berth_image::archive::{self, ImportOptions, SaveFormat, SaveImage};
use berth_oci::{AnyReference, Digest, Platform, Reference};

use super::{ImageError, ImageService, Inner};

/// `POST /images/create?fromSrc=...`.
#[derive(Debug, Clone, Default)]
pub struct ImportRequest {
    /// `fromSrc` (`-` for the request body).
    pub source: String,
    /// `repo` (may carry a tag) and `tag`.
    pub repo: String,
    pub tag: String,
    pub message: String,
    pub changes: Vec<String>,
    pub platform: String,
}

/// What `docker load` prints, one line per entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadedImages {
    pub ids: Vec<Digest>,
    pub messages: Vec<String>,
}

/// Docker's import target: `repo` normalised, `tag` added when given.
pub fn import_reference(repo: &str, tag: &str) -> Result<Option<Reference>, ImageError> {
    if repo.is_empty() {
        return Ok(None);
    }
    let named = Reference::parse_normalized(repo).map_err(|e| ImageError::reference(repo, e))?;
    let named = if tag.is_empty() {
        named.with_default_tag()
    } else {
        named
            .with_tag(tag)
            .map_err(|e| ImageError::reference(tag, e))?
    };
    Ok(Some(named))
}

impl Inner {
    /// The images `docker save NAME...` writes and the names each is saved under (Docker's
    /// tar exporter rules: an id saves untagged, `repo:tag` that tag, a bare repository
    /// every tag of it).
    fn save_set(&self, names: &[String]) -> Result<Vec<SaveImage>, ImageError> {
        let mut by_id: BTreeMap<Digest, SaveImage> = BTreeMap::new();
        let mut order = Vec::new();
        let mut add = |record: berth_image::ImageRecord, name: Option<Reference>| {
            let entry = by_id.entry(record.id.clone()).or_insert_with(|| {
                order.push(record.id.clone());
                SaveImage {
                    record,
                    names: Vec::new(),
                }
            });
            if let Some(name) = name {
                if !entry.names.contains(&name) {
                    entry.names.push(name);
                }
            }
        };
        for name in names {
            let record = self.images.resolve(name)?;
            match Reference::parse_any(name) {
                Ok(AnyReference::Named(named)) if !is_id_prefix(&record.id, name) => {
                    if named.is_name_only() {
                        for other in self.images.list() {
                            for r in self.images.references(&other.id) {
                                if r.tag().is_some() && r.name() == named.name() {
                                    add(other.clone(), Some(r));
                                }
                            }
                        }
                    } else {
                        add(record, Some(named));
                    }
                }
                _ => add(record, None),
            }
        }
        Ok(order
            .into_iter()
            .filter_map(|id| by_id.remove(&id))
            .collect())
    }
}

fn is_id_prefix(id: &Digest, name: &str) -> bool {
    name.len() >= 3
        && (id.to_string().starts_with(name) || id.hex().starts_with(name))
        && name
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b':' || b.is_ascii_lowercase())
}

impl ImageService {
    /// `docker import`: the tarball in `body` becomes a one-layer image; returns its id.
    pub async fn import(
        &self,
        request: ImportRequest,
        body: Box<dyn Read + Send>,
    ) -> Result<Digest, ImageError> {
        if request.source != "-" {
            return Err(ImageError::NotImplemented {
                what: format!("importing from a URL ({})", request.source),
            });
        }
        let reference = import_reference(&request.repo, &request.tag)?;
        let _in_flight = self.gc_gate.read().await;
        let platform = if request.platform.is_empty() {
            Platform::host()
        } else {
            Platform::parse(&request.platform).map_err(|source| ImageError::Platform {
                platform: request.platform.clone(),
                source,
            })?
        };
        let options = ImportOptions {
            reference: reference.clone(),
            changes: request.changes.clone(),
            message: Some(request.message.clone()).filter(|m| !m.is_empty()),
            source: request.source.clone(),
            platform,
            created: SystemTime::now(),
        };
        let record = self
            .blocking(move |inner| {
                let record = archive::import(&inner.content, &inner.images, body, &options)?;
                if let Some(reference) = &options.reference {
                    inner.touch_tag(reference);
                }
                // Docker unpacks at import; the first container then starts at once.
                inner.ensure_unpacked(&record)?;
                Ok(record)
            })
            .await?;
        let id = record.id.to_string();
        self.publish("import", &id, &id);
        Ok(record.id)
    }

    /// `docker load`: every image of the archive in `body`, with Docker's messages.
    pub async fn load(&self, body: Box<dyn Read + Send>) -> Result<LoadedImages, ImageError> {
        let _in_flight = self.gc_gate.read().await;
        let loaded = self
            .blocking(move |inner| {
                let loaded = archive::load(&inner.content, &inner.images, body)?;
                for image in &loaded {
                    inner.forget(&image.id);
                    if let Some(record) = inner.images.get(&image.id) {
                        inner.ensure_unpacked(&record)?;
                    }
                    for name in &image.names {
                        inner.touch_tag(name);
                    }
                }
                Ok(loaded)
            })
            .await?;
        let mut out = LoadedImages::default();
        for image in loaded {
            let id = image.id.to_string();
            self.publish("load", &id, &id);
            out.ids.push(image.id);
            out.messages.extend(image.messages);
        }
        Ok(out)
    }

    /// Checks that every name resolves (before a response starts streaming).
    pub async fn check_save(&self, names: Vec<String>) -> Result<(), ImageError> {
        self.blocking(move |inner| inner.save_set(&names).map(|_| ()))
            .await
    }

    /// `docker save NAME...`: writes the archive to `out` (blocking writes).
    pub async fn save(
        &self,
        names: Vec<String>,
        out: Box<dyn Write + Send>,
    ) -> Result<(), ImageError> {
        let ids = self
            .blocking(move |inner| {
                let set = inner.save_set(&names)?;
                let ids: Vec<Digest> = set.iter().map(|s| s.record.id.clone()).collect();
                let mut out = archive::save(&inner.content, &set, SaveFormat::Docker, out)?;
                out.flush()
                    .map_err(|e| ImageError::from(archive::ArchiveError::Write(e)))?;
                Ok(ids)
            })
            .await?;
        for id in ids {
            let id = id.to_string();
            self.publish("save", &id, &id);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_reference_adds_tags_like_docker() {
        assert_eq!(import_reference("", "").expect("none"), None);
        let r = import_reference("busybox", "").expect("ok").expect("some");
        assert_eq!(r.familiar_string(), "busybox:latest");
        let r = import_reference("busybox", "1.36")
            .expect("ok")
            .expect("some");
        assert_eq!(r.familiar_string(), "busybox:1.36");
        let r = import_reference("localhost:5000/bb:v1", "")
            .expect("ok")
            .expect("some");
        assert_eq!(r.familiar_string(), "localhost:5000/bb:v1");
        assert!(import_reference("BusyBox", "").is_err());
    }
}
