//! Disk usage of a tree as Docker counts it (moby's `directory.Size`: the apparent size of
//! regular files and symlinks, each hard-linked inode once, directories not counted), and
//! the bytes a prune gives back to the disk (the data root's `du -x` before minus after).

use std::collections::BTreeSet;
use std::future::Future;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Apparent size of everything under `root` (0 for a missing tree).
pub fn size(root: &Path) -> std::io::Result<u64> {
    let mut seen = BTreeSet::new();
    let mut total = 0u64;
    walk(root, &mut |meta| {
        if meta.is_dir() {
            return;
        }
        if meta.nlink() > 1 && !seen.insert((meta.dev(), meta.ino())) {
            return;
        }
        total += meta.len();
    })?;
    Ok(total)
}

/// Bytes of disk the tree takes (`du -B1`: allocated blocks, each inode once).
pub fn disk_bytes(root: &Path) -> std::io::Result<u64> {
    let mut seen = BTreeSet::new();
    let mut total = 0u64;
    walk(root, &mut |meta| {
        if seen.insert((meta.dev(), meta.ino())) {
            total += meta.blocks() * 512;
        }
    })?;
    Ok(total)
}

/// Bytes of disk the data root takes on its own filesystem (`du -sxB1`), leaving out the
/// `exclude`d subtrees: mounts inside it (container root filesystems, tmpfs volumes) are
/// other filesystems and not walked.
pub fn data_root_bytes(root: &Path, exclude: &[PathBuf]) -> u64 {
    let Ok(top) = std::fs::symlink_metadata(root) else {
        return 0;
    };
    let mut seen = BTreeSet::new();
    let mut total = 0u64;
    let mut stack = vec![root.to_path_buf()];
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.dev() != top.dev() || exclude.contains(&path) {
            continue;
        }
        if seen.insert(meta.ino()) {
            total += meta.blocks() * 512;
        }
        if meta.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&path) {
                stack.extend(entries.flatten().map(|e| e.path()));
            }
        }
    }
    total
}

/// Runs a prune (`work`) and returns its result with the bytes it gave back: the data
/// root's disk usage (volumes left out: only volume prune touches them, and it counts
/// each volume it deletes) before minus after. Exact when nothing else writes meanwhile;
/// concurrent writers can only make the figure smaller, never negative.
pub async fn reclaimed<T>(data_root: &Path, work: impl Future<Output = T>) -> (T, u64) {
    let measure = |root: PathBuf| async move {
        let exclude = vec![root.join("volumes")];
        tokio::task::spawn_blocking(move || data_root_bytes(&root, &exclude))
            .await
            .unwrap_or(0)
    };
    let before = measure(data_root.to_path_buf()).await;
    let out = work.await;
    let after = measure(data_root.to_path_buf()).await;
    (out, before.saturating_sub(after))
}

fn walk(root: &Path, visit: &mut dyn FnMut(&std::fs::Metadata)) -> std::io::Result<()> {
    let meta = match std::fs::symlink_metadata(root) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    visit(&meta);
    if meta.is_dir() {
        for entry in std::fs::read_dir(root)? {
            let entry = entry?;
            walk(&entry.path(), visit)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_counts_files_and_symlinks_once_per_inode() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("sub")).expect("sub");
        std::fs::write(dir.path().join("sub/a"), [1u8; 1000]).expect("a");
        std::fs::hard_link(dir.path().join("sub/a"), dir.path().join("b")).expect("link");
        std::os::unix::fs::symlink("sub/a", dir.path().join("c")).expect("symlink");
        assert_eq!(size(dir.path()).expect("size"), 1000 + "sub/a".len() as u64);
        assert!(disk_bytes(dir.path()).expect("du") >= 4096);
        assert_eq!(size(&dir.path().join("missing")).expect("missing"), 0);
    }

    #[test]
    fn data_root_bytes_counts_inodes_once_and_skips_excluded_trees() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("volumes/v")).expect("volumes");
        std::fs::write(root.join("volumes/v/big"), vec![7u8; 64 * 1024]).expect("big");
        std::fs::write(root.join("a"), vec![1u8; 8192]).expect("a");
        std::fs::hard_link(root.join("a"), root.join("b")).expect("link");
        let all = data_root_bytes(root, &[]);
        let without = data_root_bytes(root, &[root.join("volumes")]);
        assert_eq!(all, disk_bytes(root).expect("du"));
        assert!(all >= without + 64 * 1024, "{all} vs {without}");
        std::fs::remove_file(root.join("a")).expect("rm a");
        assert_eq!(data_root_bytes(root, &[]), all, "b still holds the blocks");
    }

    #[tokio::test]
    async fn reclaimed_is_what_the_work_removed_from_disk() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().to_path_buf();
        std::fs::create_dir_all(root.join("containers/c1")).expect("dir");
        std::fs::write(root.join("containers/c1/log"), vec![3u8; 40_000]).expect("log");
        std::fs::write(root.join("keep"), vec![3u8; 5000]).expect("keep");
        let before = disk_bytes(&root).expect("du");
        let gone = root.join("containers/c1");
        let ((), reclaimed) = reclaimed(&root, async {
            std::fs::remove_dir_all(&gone).expect("rm");
        })
        .await;
        assert_eq!(reclaimed, before - disk_bytes(&root).expect("du"));
        assert!(reclaimed >= 40_000);
    }
}
