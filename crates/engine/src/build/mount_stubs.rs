//! The mount points a RUN step's runtime created for its mounts (`RUN --mount`, the heredoc
//! script directory) are removed from the step's writable layer after it ran, so that the
//! layer holds none of them — BuildKit's mount stub cleaner does the same. Only empty
//! directories and empty files that no lower layer has are removed, the deepest first,
//! then their ancestors that the runtime created with them.

use std::path::{Path, PathBuf};

use berth_snapshot::snapshotter::Mount;

/// The upper and lower directories of an overlay rootfs (`None` for other drivers).
fn overlay_dirs(mounts: &[Mount]) -> Option<(PathBuf, Vec<PathBuf>)> {
    let m = mounts.iter().find(|m| m.fstype == "overlay")?;
    let base = m.working_dir.clone().unwrap_or_default();
    let mut upper = None;
    let mut lowers = Vec::new();
    for option in &m.options {
        if let Some(dir) = option.strip_prefix("upperdir=") {
            upper = Some(base.join(dir));
        } else if let Some(dirs) = option.strip_prefix("lowerdir=") {
            lowers.extend(dirs.split(':').map(|d| base.join(d)));
        }
    }
    Some((upper?, lowers))
}

/// Whether `path` is an empty directory or an empty regular file (not a symlink).
fn is_stub(path: &Path) -> bool {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => std::fs::read_dir(path).is_ok_and(|mut d| d.next().is_none()),
        Ok(meta) => meta.is_file() && meta.len() == 0,
        Err(_) => false,
    }
}

/// Removes the stubs of `targets` (absolute container paths) from the rootfs' upper dir.
pub fn remove(mounts: &[Mount], targets: &[String]) {
    let Some((upper, lowers)) = overlay_dirs(mounts) else {
        return;
    };
    let mut targets: Vec<&String> = targets.iter().collect();
    targets.sort_by_key(|t| std::cmp::Reverse(t.matches('/').count()));
    for target in targets {
        let mut rel = PathBuf::from(target.trim_start_matches('/'));
        while !rel.as_os_str().is_empty() {
            if lowers
                .iter()
                .any(|l| std::fs::symlink_metadata(l.join(&rel)).is_ok())
            {
                break;
            }
            let path = upper.join(&rel);
            if !is_stub(&path) {
                break;
            }
            let removed = if path.is_dir() {
                std::fs::remove_dir(&path)
            } else {
                std::fs::remove_file(&path)
            };
            if removed.is_err() {
                break;
            }
            rel = rel.parent().map(Path::to_path_buf).unwrap_or_default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_mount_points_go_and_existing_or_written_paths_stay() {
        let dir = tempfile::tempdir().expect("tempdir");
        let upper = dir.path().join("upper");
        let lower = dir.path().join("lower");
        for d in [
            "upper/root/.cache",
            "upper/new/deep/stub",
            "upper/kept",
            "lower/root",
        ] {
            std::fs::create_dir_all(dir.path().join(d)).expect("mkdir");
        }
        std::fs::create_dir_all(upper.join("run/secrets")).expect("mkdir");
        std::fs::write(upper.join("run/secrets/tok"), "").expect("stub file");
        std::fs::write(upper.join("kept/file"), "data").expect("write");
        let mounts = vec![Mount {
            fstype: "overlay".into(),
            source: PathBuf::from("overlay"),
            options: vec![
                format!("lowerdir={}", lower.display()),
                format!("upperdir={}", upper.display()),
            ],
            working_dir: None,
        }];
        let targets = [
            "/root/.cache",
            "/new/deep/stub",
            "/kept",
            "/run/secrets/tok",
        ]
        .map(String::from);
        remove(&mounts, &targets);
        assert!(!upper.join("root/.cache").exists());
        assert!(upper.join("root").exists(), "a lower layer has /root");
        assert!(!upper.join("new").exists(), "created ancestors go too");
        assert!(!upper.join("run").exists());
        assert!(upper.join("kept/file").exists());
    }
}
