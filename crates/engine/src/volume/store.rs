//! Volume records on disk: `<root>/<name>/volume.json` beside `<root>/<name>/_data`,
//! written atomically (temp file, fsync, rename, fsync of the directory).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{VolumeError, ANONYMOUS_LABEL};

const RECORD_FILE: &str = "volume.json";

/// What berthd keeps about one volume.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeRecord {
    pub name: String,
    pub driver: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Driver options (`type`, `device`, `o`).
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// RFC 3339 with the zone, as Docker's `CreatedAt`.
    pub created_at: String,
}

impl VolumeRecord {
    /// Created for a container without a name (`-v /path`, image `VOLUME`).
    pub fn is_anonymous(&self) -> bool {
        self.labels.contains_key(ANONYMOUS_LABEL)
    }
}

/// Now in RFC 3339 with seconds and the zone (`Z`: berthd keeps UTC).
pub fn now_rfc3339() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    berth_api::time::format_rfc3339_nano(now.as_secs() as i64, 0)
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Makes `<root>/<name>/_data` and then the record: a crash in between leaves a
/// directory without record, which [`load_all`] removes.
pub fn create(root: &Path, record: &VolumeRecord) -> Result<(), VolumeError> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = root.join(&record.name);
    let data = dir.join("_data");
    let io = |context: &str, e| VolumeError::io(format!("{context} {}", dir.display()), e);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(root)
        .map_err(|e| io("creating", e))?;
    std::fs::DirBuilder::new()
        .mode(0o701)
        .create(&dir)
        .map_err(|e| io("creating", e))?;
    // As Docker's local driver: root-owned 0755 until copy-up gives it the image's mode.
    std::fs::DirBuilder::new()
        .mode(0o755)
        .create(&data)
        .map_err(|e| io("creating", e))?;
    let write = || -> std::io::Result<()> {
        let bytes = serde_json::to_vec(record).map_err(std::io::Error::other)?;
        let temp = dir.join(format!(".{RECORD_FILE}.tmp"));
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temp, dir.join(RECORD_FILE))?;
        sync_dir(&dir)?;
        sync_dir(root)
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(io("writing the record in", e));
    }
    Ok(())
}

/// Deletes the record first (so a crash never leaves a record without data), then the rest.
pub fn remove(root: &Path, name: &str) -> Result<(), VolumeError> {
    let dir = root.join(name);
    match std::fs::remove_file(dir.join(RECORD_FILE)) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(VolumeError::io(format!("removing {}", dir.display()), e)),
    }
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(VolumeError::io(format!("removing {}", dir.display()), e)),
    }
}

/// Reads every record under `root`; directories without a readable record are leftovers
/// of an interrupted create or remove and are deleted (unless something is mounted there).
pub fn load_all(root: &Path) -> Result<BTreeMap<String, VolumeRecord>, VolumeError> {
    let mut volumes = BTreeMap::new();
    let entries = match std::fs::read_dir(root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(volumes),
        Err(e) => return Err(VolumeError::io(format!("reading {}", root.display()), e)),
    };
    for entry in entries.flatten() {
        let dir = entry.path();
        if !dir.is_dir() {
            continue;
        }
        let record = std::fs::read(dir.join(RECORD_FILE))
            .ok()
            .and_then(|bytes| serde_json::from_slice::<VolumeRecord>(&bytes).ok());
        match record {
            Some(record) if Some(record.name.as_str()) == entry.file_name().to_str() => {
                volumes.insert(record.name.clone(), record);
            }
            _ => {
                if !super::local::is_mounted(&dir.join("_data")) {
                    let _ = std::fs::remove_dir_all(&dir);
                }
            }
        }
    }
    Ok(volumes)
}
