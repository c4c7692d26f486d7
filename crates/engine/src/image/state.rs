//! The image service's small side files (`layer-sizes.json`, `rootfs.json`,
//! `tag-times.json`): whole-document JSON, written to a temp file, fsynced and renamed.
//! `rootfs.json` alone is renamed without the fsync: the container records rebuild it when
//! berthd starts (`ImageService::reconcile_rootfs_uses`), and an unreadable one reads empty.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::ImageError;

pub const LAYER_SIZES: &str = "layer-sizes.json";
pub const ROOTFS: &str = "rootfs.json";
pub const TAG_TIMES: &str = "tag-times.json";

/// Reads `path`, or the default when it does not exist yet.
pub fn read_json<T: DeserializeOwned + Default>(path: &Path) -> Result<T, ImageError> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| ImageError::Io {
            op: "parse",
            path: path.to_path_buf(),
            source: io::Error::new(io::ErrorKind::InvalidData, e),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(T::default()),
        Err(source) => Err(ImageError::Io {
            op: "read",
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Reads `path`, or the default when it does not exist or does not parse (for files that
/// are rebuilt from other state when berthd starts).
pub fn read_json_or_default<T: DeserializeOwned + Default>(path: &Path) -> T {
    read_json(path).unwrap_or_default()
}

/// Replaces `path` with `value` atomically and durably.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), ImageError> {
    write_json_with(path, value, true)
}

/// Replaces `path` with `value` atomically, without waiting for the disk: after a host
/// crash the file may hold an older version (or nothing), so only for files rebuilt from
/// other state when berthd starts.
pub fn write_json_unsynced<T: Serialize>(path: &Path, value: &T) -> Result<(), ImageError> {
    write_json_with(path, value, false)
}

fn write_json_with<T: Serialize>(path: &Path, value: &T, sync: bool) -> Result<(), ImageError> {
    let io_err = |op: &'static str| {
        move |source| ImageError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    };
    let bytes = serde_json::to_vec(value)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
        .map_err(io_err("encode"))?;
    let tmp = path.with_extension("json.tmp");
    let mut file = File::create(&tmp).map_err(io_err("create"))?;
    file.write_all(&bytes).map_err(io_err("write"))?;
    if sync {
        file.sync_all().map_err(io_err("sync"))?;
    }
    fs::rename(&tmp, path).map_err(io_err("rename"))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn side_files_round_trip_and_start_empty() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(ROOTFS);
        let empty: BTreeMap<String, i64> = read_json(&path).expect("missing is empty");
        assert!(empty.is_empty());
        let mut map = BTreeMap::new();
        map.insert("a".to_string(), 7i64);
        write_json(&path, &map).expect("write");
        let back: BTreeMap<String, i64> = read_json(&path).expect("read");
        assert_eq!(back, map);
    }

    #[test]
    fn a_rebuildable_side_file_that_does_not_parse_reads_empty() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(ROOTFS);
        fs::write(&path, b"").expect("write an empty file");
        assert!(read_json::<BTreeMap<String, i64>>(&path).is_err());
        let map: BTreeMap<String, i64> = read_json_or_default(&path);
        assert!(map.is_empty());
        let mut map = BTreeMap::new();
        map.insert("b".to_string(), 1i64);
        write_json_unsynced(&path, &map).expect("write");
        assert_eq!(
            read_json::<BTreeMap<String, i64>>(&path).expect("read"),
            map
        );
    }
}
