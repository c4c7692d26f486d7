//! Disk usage of a tree as Docker counts it (moby's `directory.Size`: the apparent size of
//! regular files and symlinks, each hard-linked inode once, directories not counted).

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

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
}
