//! Repository metadata beside the content store: which blobs and manifests each
//! repository links, its tags, and open upload sessions. One small file per fact under
//! `repositories/<name>/{_layers,_manifests,_tags}/`, each written atomically (temp file,
//! fsync, rename, fsync of the directory), so a crash leaves either the old or the new fact.
//! Names never start with `_`, so a repository named `a/_tags` cannot collide.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use berth_oci::{Algorithm, Digest};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A metadata file could not be read or written.
#[derive(Debug, Error)]
pub enum MetaError {
    #[error("cannot {action} {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("corrupt metadata file {}", path.display())]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> MetaError + 'a {
    move |source| MetaError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

/// What the registry remembers about a manifest linked into a repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestLink {
    pub media_type: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Digest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<serde_json::Map<String, serde_json::Value>>,
}

/// An upload session's record (the bytes live in the content store's ingest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadRecord {
    pub name: String,
}

/// The metadata tree rooted at `<root>`.
#[derive(Debug, Clone)]
pub struct Meta {
    root: PathBuf,
}

impl Meta {
    pub fn open(root: impl Into<PathBuf>) -> Result<Meta, MetaError> {
        let root = root.into();
        for dir in [root.join("repositories"), root.join("uploads")] {
            fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        }
        Ok(Meta { root })
    }

    fn repo(&self, name: &str) -> PathBuf {
        self.root.join("repositories").join(name)
    }

    fn layer_path(&self, name: &str, digest: &Digest) -> PathBuf {
        digest_path(&self.repo(name).join("_layers"), digest)
    }

    fn manifest_path(&self, name: &str, digest: &Digest) -> PathBuf {
        digest_path(&self.repo(name).join("_manifests"), digest)
    }

    fn tag_path(&self, name: &str, tag: &str) -> PathBuf {
        self.repo(name).join("_tags").join(tag)
    }

    fn upload_path(&self, id: &str) -> PathBuf {
        self.root.join("uploads").join(id)
    }

    /// Whether the repository has anything in it (a linked blob, manifest or tag).
    pub fn repository_exists(&self, name: &str) -> bool {
        is_repository(&self.repo(name))
    }

    pub fn link_blob(&self, name: &str, digest: &Digest) -> Result<(), MetaError> {
        write_atomic(
            &self.layer_path(name, digest),
            digest.to_string().as_bytes(),
        )
    }

    pub fn blob_linked(&self, name: &str, digest: &Digest) -> bool {
        self.layer_path(name, digest).is_file()
    }

    /// Removes a blob link; false when there was none.
    pub fn unlink_blob(&self, name: &str, digest: &Digest) -> Result<bool, MetaError> {
        remove(&self.layer_path(name, digest))
    }

    pub fn link_manifest(
        &self,
        name: &str,
        digest: &Digest,
        link: &ManifestLink,
    ) -> Result<(), MetaError> {
        let bytes = serde_json::to_vec(link).map_err(|source| MetaError::Corrupt {
            path: self.manifest_path(name, digest),
            source,
        })?;
        write_atomic(&self.manifest_path(name, digest), &bytes)
    }

    pub fn manifest(&self, name: &str, digest: &Digest) -> Result<Option<ManifestLink>, MetaError> {
        let path = self.manifest_path(name, digest);
        let Some(bytes) = read_optional(&path)? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| MetaError::Corrupt { path, source })
    }

    /// Removes a manifest link and every tag pointing at it; false when it was not linked.
    pub fn unlink_manifest(&self, name: &str, digest: &Digest) -> Result<bool, MetaError> {
        for tag in self.tags(name)? {
            if self.tag(name, &tag)?.as_ref() == Some(digest) {
                self.untag(name, &tag)?;
            }
        }
        remove(&self.manifest_path(name, digest))
    }

    /// Every manifest linked in the repository, with its record.
    pub fn manifests(&self, name: &str) -> Result<Vec<(Digest, ManifestLink)>, MetaError> {
        let mut out = Vec::new();
        for algorithm in [Algorithm::Sha256, Algorithm::Sha512] {
            let dir = self.repo(name).join("_manifests").join(algorithm.name());
            for hex in list_dir(&dir)? {
                let Ok(digest) = Digest::from_parts(algorithm, &hex) else {
                    continue;
                };
                if let Some(link) = self.manifest(name, &digest)? {
                    out.push((digest, link));
                }
            }
        }
        Ok(out)
    }

    pub fn set_tag(&self, name: &str, tag: &str, digest: &Digest) -> Result<(), MetaError> {
        write_atomic(&self.tag_path(name, tag), digest.to_string().as_bytes())
    }

    pub fn tag(&self, name: &str, tag: &str) -> Result<Option<Digest>, MetaError> {
        let path = self.tag_path(name, tag);
        let Some(bytes) = read_optional(&path)? else {
            return Ok(None);
        };
        Ok(std::str::from_utf8(&bytes)
            .ok()
            .and_then(|s| Digest::parse(s.trim()).ok()))
    }

    pub fn untag(&self, name: &str, tag: &str) -> Result<bool, MetaError> {
        remove(&self.tag_path(name, tag))
    }

    /// Tags of the repository in lexical order (the spec's required order).
    pub fn tags(&self, name: &str) -> Result<Vec<String>, MetaError> {
        let mut tags = list_dir(&self.repo(name).join("_tags"))?;
        tags.retain(|t| !t.starts_with('.'));
        tags.sort();
        Ok(tags)
    }

    /// Every repository name, sorted.
    pub fn repositories(&self) -> Result<Vec<String>, MetaError> {
        let mut out = Vec::new();
        walk_repositories(&self.root.join("repositories"), "", &mut out)?;
        out.sort();
        Ok(out)
    }

    pub fn create_upload(&self, id: &str, record: &UploadRecord) -> Result<(), MetaError> {
        let path = self.upload_path(id);
        let bytes = serde_json::to_vec(record).map_err(|source| MetaError::Corrupt {
            path: path.clone(),
            source,
        })?;
        write_atomic(&path, &bytes)
    }

    pub fn upload(&self, id: &str) -> Result<Option<UploadRecord>, MetaError> {
        let path = self.upload_path(id);
        let Some(bytes) = read_optional(&path)? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| MetaError::Corrupt { path, source })
    }

    pub fn remove_upload(&self, id: &str) -> Result<bool, MetaError> {
        remove(&self.upload_path(id))
    }
}

fn digest_path(dir: &Path, digest: &Digest) -> PathBuf {
    dir.join(digest.algorithm().name()).join(digest.hex())
}

fn is_repository(dir: &Path) -> bool {
    ["_layers", "_manifests", "_tags"]
        .iter()
        .any(|d| dir.join(d).is_dir())
}

fn walk_repositories(dir: &Path, prefix: &str, out: &mut Vec<String>) -> Result<(), MetaError> {
    for entry in list_dir(dir)? {
        if entry.starts_with('_') || entry.starts_with('.') {
            continue;
        }
        let path = dir.join(&entry);
        if !path.is_dir() {
            continue;
        }
        let name = if prefix.is_empty() {
            entry
        } else {
            format!("{prefix}/{entry}")
        };
        if is_repository(&path) {
            out.push(name.clone());
        }
        walk_repositories(&path, &name, out)?;
    }
    Ok(())
}

fn list_dir(dir: &Path) -> Result<Vec<String>, MetaError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("list", dir)(e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_err("list", dir))?;
        if let Some(name) = entry.file_name().to_str() {
            out.push(name.to_owned());
        }
    }
    Ok(out)
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, MetaError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err("read", path)(e)),
    }
}

fn remove(path: &Path) -> Result<bool, MetaError> {
    match fs::remove_file(path) {
        Ok(()) => {
            if let Some(parent) = path.parent() {
                sync_dir(parent)?;
            }
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_err("remove", path)(e)),
    }
}

fn sync_dir(dir: &Path) -> Result<(), MetaError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("sync", dir))
}

/// Temp file in the same directory, fsync, rename over the target, fsync the directory.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), MetaError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io_err("create", dir))?;
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("meta");
    let temp = dir.join(format!(".{file_name}.{}.tmp", rand::random::<u64>()));
    let result = (|| {
        let mut file = File::create(&temp).map_err(io_err("create", &temp))?;
        file.write_all(bytes).map_err(io_err("write", &temp))?;
        file.sync_all().map_err(io_err("sync", &temp))?;
        fs::rename(&temp, path).map_err(io_err("rename", &temp))?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_are_listed_sorted_and_nested() {
        let dir = tempfile::tempdir().expect("tempdir");
        let meta = Meta::open(dir.path()).expect("open");
        let d = Digest::sha256_of(b"x");
        meta.link_blob("b/c", &d).expect("link");
        meta.link_blob("a", &d).expect("link");
        meta.set_tag("b", "t", &d).expect("tag");
        assert_eq!(meta.repositories().expect("list"), ["a", "b", "b/c"]);
        assert!(meta.blob_linked("b/c", &d));
        assert!(!meta.blob_linked("b", &d));
    }

    #[test]
    fn unlinking_a_manifest_removes_its_tags() {
        let dir = tempfile::tempdir().expect("tempdir");
        let meta = Meta::open(dir.path()).expect("open");
        let (d, other) = (Digest::sha256_of(b"m"), Digest::sha256_of(b"o"));
        let link = ManifestLink {
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            size: 1,
            artifact_type: None,
            subject: None,
            annotations: None,
        };
        meta.link_manifest("r", &d, &link).expect("link");
        meta.set_tag("r", "a", &d).expect("tag");
        meta.set_tag("r", "b", &other).expect("tag");
        assert!(meta.unlink_manifest("r", &d).expect("unlink"));
        assert_eq!(meta.tags("r").expect("tags"), ["b"]);
        assert_eq!(meta.manifest("r", &d).expect("read"), None);
    }
}
