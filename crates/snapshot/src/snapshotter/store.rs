//! On-disk records of the snapshotter: `snapshots/<id>/{fs,work,info}`, `l/<link>` symlinks to
//! each `fs`, and `keys/<sha256(key)>` naming the id of each key. Every record is written to
//! a temp file and renamed, so a crash leaves either the old or the new record.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::{SnapshotError, SnapshotKind};

/// What the store knows about one snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// Directory name under `snapshots/`.
    pub id: String,
    /// The key (active) or name (committed).
    pub key: String,
    /// Active or committed.
    pub kind: SnapshotKind,
    /// Id of the parent snapshot.
    pub parent: Option<String>,
    /// Short name of this snapshot's `fs` in `l/`.
    pub link: String,
    /// Short names of the parents' `fs`, nearest first (overlay's `lowerdir` order).
    pub lower: Vec<String>,
}

#[derive(Debug)]
pub(super) struct Store {
    root: PathBuf,
}

fn io_err<'a>(
    operation: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> SnapshotError + 'a {
    move |source| SnapshotError::Io {
        operation,
        path: path.to_path_buf(),
        source,
    }
}

/// `n` random characters from `alphabet` (ids and link names need only be unique).
fn random_name(alphabet: &[u8], n: usize) -> io::Result<String> {
    let mut bytes = vec![0u8; n];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes
        .iter()
        .map(|b| char::from(alphabet[usize::from(*b) % alphabet.len()]))
        .collect())
}

const HEX: &[u8] = b"0123456789abcdef";
/// Docker's overlay2 link names use base32 upper case; 16 of them keep 128 layers' lowerdir
/// (`l/` + 16 + `:`) at 2.4 KiB.
const LINK_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const LINK_LEN: usize = 16;

/// Creates `path` holding `data` only if it does not exist yet (a hard link of a complete
/// temp file, so readers never see a partial record and two writers cannot both win).
/// Without `durable` nothing is fsynced (scratch snapshots: see [`Store::create`]).
fn create_exclusive(path: &Path, data: &[u8], tag: &str, durable: bool) -> io::Result<()> {
    let tmp = path.with_extension(format!("tmp-{tag}"));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        if durable {
            f.sync_all()?;
        }
    }
    let linked = std::fs::hard_link(&tmp, path);
    std::fs::remove_file(&tmp)?;
    linked?;
    if let (true, Some(dir)) = (durable, path.parent()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

fn write_atomic(path: &Path, data: &[u8], durable: bool) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        if durable {
            f.sync_all()?;
        }
    }
    std::fs::rename(&tmp, path)?;
    // The rename is durable only once the directory entry is.
    if let (true, Some(dir)) = (durable, path.parent()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

impl Store {
    pub(super) fn open(root: &Path) -> Result<Store, SnapshotError> {
        for sub in ["snapshots", "l", "keys"] {
            let dir = root.join(sub);
            std::fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        }
        Ok(Store {
            root: root.to_path_buf(),
        })
    }

    pub(super) fn root(&self) -> &Path {
        &self.root
    }

    pub(super) fn fs_dir(&self, id: &str) -> PathBuf {
        self.root.join("snapshots").join(id).join("fs")
    }

    pub(super) fn work_dir(&self, id: &str) -> PathBuf {
        self.root.join("snapshots").join(id).join("work")
    }

    pub(super) fn key_file(&self, key: &str) -> PathBuf {
        let digest = Sha256::digest(key.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        self.root.join("keys").join(hex)
    }

    fn info_file(&self, id: &str) -> PathBuf {
        self.root.join("snapshots").join(id).join("info")
    }

    fn check_key(key: &str) -> Result<(), SnapshotError> {
        let reason = if key.is_empty() {
            "it is empty"
        } else if key.contains(['\n', '\0']) {
            "it contains a newline or NUL"
        } else {
            return Ok(());
        };
        Err(SnapshotError::InvalidKey {
            key: key.to_string(),
            reason,
        })
    }

    pub(super) fn lookup(&self, key: &str) -> Result<SnapshotInfo, SnapshotError> {
        Self::check_key(key)?;
        let key_file = self.key_file(key);
        let id = match std::fs::read_to_string(&key_file) {
            Ok(id) => id,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(SnapshotError::NotFound {
                    key: key.to_string(),
                })
            }
            Err(e) => return Err(io_err("read", &key_file)(e)),
        };
        let info = self.read_info(id.trim())?;
        // A crash inside commit can leave the old key's record behind: the snapshot's own
        // info names the key that is current.
        if info.key != key {
            return Err(SnapshotError::NotFound {
                key: key.to_string(),
            });
        }
        Ok(info)
    }

    /// Deletes what a crash can leave behind: key records naming another key's snapshot,
    /// snapshot directories no key names, and `l/` links to nothing. Returns how many.
    pub(super) fn cleanup(&self) -> Result<usize, SnapshotError> {
        let mut removed = 0;
        let mut live = std::collections::HashSet::new();
        let keys = self.root.join("keys");
        for entry in std::fs::read_dir(&keys).map_err(io_err("read", &keys))? {
            let path = entry.map_err(io_err("read", &keys))?.path();
            let id = std::fs::read_to_string(&path).unwrap_or_default();
            let current = path.extension().is_none()
                && self
                    .read_info(id.trim())
                    .is_ok_and(|info| self.key_file(&info.key) == path);
            if current {
                live.insert(id.trim().to_string());
            } else {
                std::fs::remove_file(&path).map_err(io_err("remove", &path))?;
                removed += 1;
            }
        }
        let snapshots = self.root.join("snapshots");
        for entry in std::fs::read_dir(&snapshots).map_err(io_err("read", &snapshots))? {
            let entry = entry.map_err(io_err("read", &snapshots))?;
            if !live.contains(entry.file_name().to_string_lossy().as_ref()) {
                std::fs::remove_dir_all(entry.path()).map_err(io_err("remove", &entry.path()))?;
                removed += 1;
            }
        }
        let links = self.root.join("l");
        for entry in std::fs::read_dir(&links).map_err(io_err("read", &links))? {
            let path = entry.map_err(io_err("read", &links))?.path();
            if !path.exists() {
                std::fs::remove_file(&path).map_err(io_err("remove", &path))?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn read_info(&self, id: &str) -> Result<SnapshotInfo, SnapshotError> {
        let path = self.info_file(id);
        let text = std::fs::read_to_string(&path).map_err(io_err("read", &path))?;
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
                .unwrap_or_default()
                .to_string()
        };
        let kind = if field("kind") == "committed" {
            SnapshotKind::Committed
        } else {
            SnapshotKind::Active
        };
        let parent = Some(field("parent")).filter(|p| !p.is_empty());
        let lower = field("lower")
            .split(':')
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        Ok(SnapshotInfo {
            id: id.to_string(),
            key: field("key"),
            kind,
            parent,
            link: field("link"),
            lower,
        })
    }

    fn write_info(&self, info: &SnapshotInfo, durable: bool) -> Result<(), SnapshotError> {
        let kind = match info.kind {
            SnapshotKind::Active => "active",
            SnapshotKind::Committed => "committed",
        };
        let text = format!(
            "kind={kind}\nkey={}\nparent={}\nlink={}\nlower={}\n",
            info.key,
            info.parent.as_deref().unwrap_or_default(),
            info.link,
            info.lower.join(":")
        );
        let path = self.info_file(&info.id);
        write_atomic(&path, text.as_bytes(), durable).map_err(io_err("write", &path))
    }

    /// Creates active snapshot `key`. Without `durable` its records are not fsynced: a
    /// crash may lose or tear them, and [`Store::cleanup`] then deletes the snapshot as one
    /// no key names (for scratch layers that are committed or removed soon; a commit
    /// writes its records durably).
    pub(super) fn create(
        &self,
        key: &str,
        parent: Option<&SnapshotInfo>,
        durable: bool,
    ) -> Result<SnapshotInfo, SnapshotError> {
        Self::check_key(key)?;
        if self.key_file(key).exists() {
            return Err(SnapshotError::AlreadyExists {
                key: key.to_string(),
            });
        }
        let snapshots = self.root.join("snapshots");
        let id = random_name(HEX, 24).map_err(io_err("read", Path::new("/dev/urandom")))?;
        let link = random_name(LINK_ALPHABET, LINK_LEN)
            .map_err(io_err("read", Path::new("/dev/urandom")))?;
        let dir = snapshots.join(&id);
        std::fs::create_dir(&dir).map_err(io_err("create", &dir))?;
        for sub in ["fs", "work"] {
            let p = dir.join(sub);
            std::fs::create_dir(&p).map_err(io_err("create", &p))?;
        }
        let link_path = self.root.join("l").join(&link);
        std::os::unix::fs::symlink(format!("../snapshots/{id}/fs"), &link_path)
            .map_err(io_err("create", &link_path))?;
        let mut lower = Vec::new();
        if let Some(p) = parent {
            lower.push(p.link.clone());
            lower.extend(p.lower.iter().cloned());
        }
        let info = SnapshotInfo {
            id: id.clone(),
            key: key.to_string(),
            kind: SnapshotKind::Active,
            parent: parent.map(|p| p.id.clone()),
            link,
            lower,
        };
        self.write_info(&info, durable)?;
        // The key record last: until it exists the snapshot is garbage, never half-visible.
        let key_file = self.key_file(key);
        match create_exclusive(&key_file, id.as_bytes(), &id, durable) {
            Ok(()) => Ok(info),
            Err(e) => {
                // Lost a race for the key (or failed): nothing else references this snapshot.
                let _ = std::fs::remove_file(&link_path);
                let _ = std::fs::remove_dir_all(&dir);
                if e.kind() == io::ErrorKind::AlreadyExists {
                    return Err(SnapshotError::AlreadyExists {
                        key: key.to_string(),
                    });
                }
                Err(io_err("write", &key_file)(e))
            }
        }
    }

    pub(super) fn commit(&self, name: &str, key: &str) -> Result<SnapshotInfo, SnapshotError> {
        Self::check_key(name)?;
        let mut info = self.lookup(key)?;
        let name_file = self.key_file(name);
        if name_file.exists() {
            return Err(SnapshotError::AlreadyExists {
                key: name.to_string(),
            });
        }
        // Claim the name first: a name record whose info still names the old key is stale
        // and invisible (see `lookup`), so a crash here loses nothing.
        match create_exclusive(&name_file, info.id.as_bytes(), &info.id, true) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(SnapshotError::AlreadyExists {
                    key: name.to_string(),
                })
            }
            Err(e) => return Err(io_err("write", &name_file)(e)),
        }
        info.kind = SnapshotKind::Committed;
        info.key = name.to_string();
        self.write_info(&info, true)?;
        let key_file = self.key_file(key);
        std::fs::remove_file(&key_file).map_err(io_err("remove", &key_file))?;
        Ok(info)
    }

    pub(super) fn list(&self) -> Result<Vec<SnapshotInfo>, SnapshotError> {
        let keys = self.root.join("keys");
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&keys).map_err(io_err("read", &keys))? {
            let path = entry.map_err(io_err("read", &keys))?.path();
            if path.extension().is_some() {
                continue;
            }
            let id = match std::fs::read_to_string(&path) {
                Ok(id) => id,
                // Removed by a concurrent `remove` since the directory was read.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("read", &path)(e)),
            };
            let info = match self.read_info(id.trim()) {
                Ok(info) => info,
                Err(_) if !path.exists() => continue,
                Err(e) => return Err(e),
            };
            // Skip a stale record an interrupted commit left (see `lookup`).
            if self.key_file(&info.key) == path {
                out.push(info);
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    pub(super) fn remove(&self, key: &str) -> Result<(), SnapshotError> {
        let info = self.lookup(key)?;
        if self
            .list()?
            .iter()
            .any(|s| s.parent.as_deref() == Some(info.id.as_str()))
        {
            return Err(SnapshotError::HasChildren {
                key: key.to_string(),
            });
        }
        // Key first: once it is gone the rest is unreferenced and safe to delete piecemeal.
        let key_file = self.key_file(key);
        std::fs::remove_file(&key_file).map_err(io_err("remove", &key_file))?;
        let link = self.root.join("l").join(&info.link);
        match std::fs::remove_file(&link) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("remove", &link)(e)),
        }
        let dir = self.root.join("snapshots").join(&info.id);
        std::fs::remove_dir_all(&dir).map_err(io_err("remove", &dir))
    }
}
