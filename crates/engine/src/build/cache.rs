//! The build cache index: step cache key -> image id, one JSON file under
//! `<data-root>/build/cache.json`, written atomically; `/build/prune` empties it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

/// Serialises every reader-modify-writer of the index in this process.
static LOCK: Mutex<()> = Mutex::new(());

pub struct CacheIndex {
    path: PathBuf,
}

impl CacheIndex {
    pub fn new(path: PathBuf) -> CacheIndex {
        CacheIndex { path }
    }

    fn read(&self) -> BTreeMap<String, String> {
        std::fs::read(&self.path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn write(&self, map: &BTreeMap<String, String>) {
        let tmp = self.path.with_extension("json.tmp");
        if let Ok(bytes) = serde_json::to_vec(map) {
            if std::fs::write(&tmp, bytes).is_ok() {
                let _ = std::fs::rename(&tmp, &self.path);
            }
        }
    }

    pub fn get(&self, key: &str) -> Option<String> {
        let _guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
        self.read().get(key).cloned()
    }

    pub fn put(&self, key: &str, image: &str) {
        let _guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let mut map = self.read();
        map.insert(key.to_string(), image.to_string());
        self.write(&map);
    }

    /// Every entry: cache key -> image id.
    pub fn entries(&self) -> BTreeMap<String, String> {
        let _guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
        self.read()
    }

    /// Forgets every entry; returns them.
    pub fn clear_entries(&self) -> BTreeMap<String, String> {
        let _guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let map = self.read();
        self.write(&BTreeMap::new());
        map
    }

    /// Forgets every entry; returns the image ids they named.
    #[cfg(test)]
    pub fn clear(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.clear_entries().into_values().collect();
        ids.sort();
        ids.dedup();
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_survive_a_new_index_and_prune_clears_them() {
        let dir = tempfile::tempdir().unwrap();
        let index = CacheIndex::new(dir.path().join("cache.json"));
        index.put("k1", "sha256:a");
        index.put("k2", "sha256:a");
        let again = CacheIndex::new(dir.path().join("cache.json"));
        assert_eq!(again.get("k1").as_deref(), Some("sha256:a"));
        assert_eq!(again.clear(), vec!["sha256:a".to_string()]);
        assert_eq!(index.get("k2"), None);
    }
}
