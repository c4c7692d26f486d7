//! Property: for random small trees, apply(tar_tree(x)) == x, and GNU tar extracting the
//! same bytes sees the same tree (content, modes, link targets, hardlink groups, mtimes).

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use berth_snapshot::{apply_layer, tar_tree, ApplyOptions};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Kind {
    File(Vec<u8>, u32),
    Dir(u32),
    Symlink(String),
    Hardlink(usize),
}

#[derive(Debug, Clone)]
struct Spec {
    path: Vec<&'static str>,
    kind: Kind,
    mtime: i64,
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        (
            proptest::collection::vec(any::<u8>(), 0..300),
            // Owner-readable only: a diff of an unreadable file fails without root (as Docker's).
            prop::sample::select(vec![0o644u32, 0o600, 0o755, 0o4755, 0o2755, 0o400, 0o444])
        )
            .prop_map(|(c, m)| Kind::File(c, m)),
        prop::sample::select(vec![0o755u32, 0o700, 0o1777, 0o555, 0o2775]).prop_map(Kind::Dir),
        prop::sample::select(vec![
            "a",
            "b/c",
            "../a",
            "/abs/target",
            "d/../a",
            "x".repeat(120).leak()
        ])
        .prop_map(|t| Kind::Symlink(t.to_string())),
        (0usize..8).prop_map(Kind::Hardlink),
    ]
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        proptest::collection::vec(
            prop::sample::select(vec!["a", "b", "c", "d", "long-name-".repeat(12).leak()]),
            1..4,
        ),
        kind(),
        0i64..4_000_000_000,
    )
        .prop_map(|(path, kind, mtime)| Spec { path, kind, mtime })
}

/// A temp dir that makes its directories writable again before removal, so read-only
/// directories from the generated trees do not outlive the test when it runs without root.
struct Scratch(tempfile::TempDir);

impl Scratch {
    fn new() -> Self {
        Scratch(tempfile::tempdir().expect("tempdir"))
    }

    fn path(&self) -> &Path {
        self.0.path()
    }
}

fn unlock(dir: &Path) {
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                unlock(&entry.path());
            }
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        unlock(self.0.path());
    }
}

fn set_mtime(path: &Path, secs: i64) {
    let t = rustix::fs::Timespec {
        tv_sec: secs,
        tv_nsec: 0,
    };
    let times = rustix::fs::Timestamps {
        last_access: t,
        last_modification: t,
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        path,
        &times,
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .expect("utimensat");
}

/// Builds the tree; entries that collide with earlier ones are dropped.
fn build(root: &Path, specs: &[Spec]) {
    let mut files: Vec<std::path::PathBuf> = Vec::new();
    let mut modes: Vec<(std::path::PathBuf, u32)> = Vec::new();
    let mut times: Vec<(std::path::PathBuf, i64)> = Vec::new();
    for spec in specs {
        let rel: std::path::PathBuf = spec.path.iter().collect();
        let path = root.join(&rel);
        let parent = path.parent().expect("below root");
        if std::fs::create_dir_all(parent).is_err() || std::fs::symlink_metadata(&path).is_ok() {
            continue;
        }
        let ok = match &spec.kind {
            Kind::File(content, mode) => {
                let ok = std::fs::write(&path, content).is_ok();
                if ok {
                    files.push(path.clone());
                    modes.push((path.clone(), *mode));
                }
                ok
            }
            Kind::Dir(mode) => {
                let ok = std::fs::create_dir(&path).is_ok();
                if ok {
                    modes.push((path.clone(), *mode));
                }
                ok
            }
            Kind::Symlink(target) => std::os::unix::fs::symlink(target, &path).is_ok(),
            Kind::Hardlink(i) if !files.is_empty() => {
                std::fs::hard_link(&files[i % files.len()], &path).is_ok()
            }
            Kind::Hardlink(_) => false,
        };
        if ok {
            times.push((path, spec.mtime));
        }
    }
    for (path, mode) in &modes {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(*mode)).expect("chmod");
    }
    // Children first, so parent directory mtimes stick.
    times.sort_by_key(|(p, _)| std::cmp::Reverse(p.components().count()));
    for (path, secs) in &times {
        set_mtime(path, *secs);
    }
}

/// Everything a layer must carry, keyed by path; hardlinks as the first path of the inode.
fn snapshot(root: &Path, symlink_times: bool) -> BTreeMap<String, (u32, i64, Vec<u8>, String)> {
    let mut out = BTreeMap::new();
    let mut inodes: HashMap<u64, String> = HashMap::new();
    let mut stack = vec![root.to_path_buf()];
    let mut all = Vec::new();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            let meta = std::fs::symlink_metadata(&path).expect("lstat");
            if meta.is_dir() {
                stack.push(path.clone());
            }
            all.push((path, meta));
        }
    }
    all.sort_by(|a, b| a.0.cmp(&b.0));
    for (path, meta) in all {
        let rel = path
            .strip_prefix(root)
            .expect("below root")
            .display()
            .to_string();
        let ft = meta.file_type();
        let content = if ft.is_file() {
            std::fs::read(&path).expect("read")
        } else if ft.is_symlink() {
            std::fs::read_link(&path)
                .expect("readlink")
                .display()
                .to_string()
                .into_bytes()
        } else {
            Vec::new()
        };
        let group = if ft.is_file() && meta.nlink() > 1 {
            inodes
                .entry(meta.ino())
                .or_insert_with(|| rel.clone())
                .clone()
        } else {
            String::new()
        };
        let mtime = if ft.is_symlink() && !symlink_times {
            0
        } else {
            meta.mtime()
        };
        out.insert(rel, (meta.mode(), mtime, content, group));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn apply_of_tar_tree_reproduces_the_tree(specs in proptest::collection::vec(spec(), 1..14)) {
        let src = Scratch::new();
        build(src.path(), &specs);
        let (layer, summary) = tar_tree(src.path(), Vec::new()).expect("tar");
        let dst = Scratch::new();
        let applied = apply_layer(layer.as_slice(), dst.path(), &ApplyOptions::unprivileged()).expect("apply");
        prop_assert_eq!(applied.diff_id, summary.diff_id);
        prop_assert_eq!(snapshot(dst.path(), true), snapshot(src.path(), true));
        // And the same tree diffed again gives the same bytes.
        let (again, _) = tar_tree(dst.path(), Vec::new()).expect("tar");
        prop_assert_eq!(again, layer);
    }

    #[test]
    fn gnu_tar_extracts_the_same_tree_as_apply(specs in proptest::collection::vec(spec(), 1..10)) {
        let src = Scratch::new();
        build(src.path(), &specs);
        let (layer, _) = tar_tree(src.path(), Vec::new()).expect("tar");
        let gnu = Scratch::new();
        let tar_file = gnu.path().join("layer.tar");
        std::fs::write(&tar_file, &layer).expect("write");
        let out_dir = gnu.path().join("x");
        std::fs::create_dir(&out_dir).expect("mkdir");
        let status = std::process::Command::new("tar")
            .args(["-xpf"]).arg(&tar_file).arg("-C").arg(&out_dir)
            .args(["--numeric-owner", "--no-same-owner", "--warning=no-timestamp"])
            .status()
            .expect("GNU tar runs");
        prop_assert!(status.success());
        let dst = Scratch::new();
        apply_layer(layer.as_slice(), dst.path(), &ApplyOptions::unprivileged()).expect("apply");
        prop_assert_eq!(snapshot(&out_dir, false), snapshot(dst.path(), false));
    }
}
