//! Committing an overlay upper in place: the committed tree is the one its diff applies to.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::super::{Driver, SnapshotError, SnapshotKind, Snapshotter};
use crate::apply::apply_layer;

fn open(driver: Driver) -> (tempfile::TempDir, Snapshotter) {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Snapshotter::open(dir.path(), driver).expect("open");
    (dir, s)
}

fn set_mtime(path: &Path, sec: i64, nsec: i64) {
    let times = rustix::fs::Timestamps {
        last_access: rustix::fs::Timespec {
            tv_sec: sec,
            tv_nsec: 0,
        },
        last_modification: rustix::fs::Timespec {
            tv_sec: sec,
            tv_nsec: nsec as _,
        },
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        path,
        &times,
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .expect("utimensat");
}

/// Every node under `root` as (relative path, mode, mtime, mtime nsec, content or link).
fn tree(root: &Path) -> Vec<(PathBuf, u32, i64, i64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            let meta = std::fs::symlink_metadata(&path).expect("lstat");
            let body = if meta.file_type().is_symlink() {
                std::fs::read_link(&path)
                    .expect("readlink")
                    .into_os_string()
                    .into_encoded_bytes()
            } else if meta.is_file() {
                std::fs::read(&path).expect("read")
            } else {
                stack.push(path.clone());
                Vec::new()
            };
            let relative = path.strip_prefix(root).expect("inside").to_path_buf();
            out.push((relative, meta.mode(), meta.mtime(), meta.mtime_nsec(), body));
        }
    }
    out.sort();
    out
}

fn fs_of(s: &Snapshotter, key: &str) -> PathBuf {
    s.store.fs_dir(&s.stat(key).expect("stat").id)
}

#[test]
fn an_upper_committed_in_place_is_the_tree_its_diff_applies_to() {
    let (_dir, s) = open(Driver::Overlay);
    s.prepare("step", None).expect("prepare");
    let upper = fs_of(&s, "step");
    std::fs::create_dir_all(upper.join("app/data")).expect("mkdir");
    std::fs::write(upper.join("app/data/a.txt"), b"alpha").expect("write");
    std::fs::write(upper.join("app/run.sh"), b"#!/bin/sh\n").expect("write");
    std::fs::set_permissions(
        upper.join("app/run.sh"),
        std::fs::Permissions::from_mode(0o750),
    )
    .expect("chmod");
    std::os::unix::fs::symlink("data/a.txt", upper.join("app/link")).expect("symlink");
    set_mtime(&upper.join("app/data/a.txt"), 1_700_000_000, 123_456_789);
    set_mtime(&upper.join("app/link"), 1_700_000_001, 5);
    set_mtime(&upper.join("app/data"), 1_700_000_002, 999_999_999);
    set_mtime(&upper.join("app"), 1_700_000_003, 1);
    let (layer, _) = s.diff("step", Vec::new()).expect("diff");

    let info = s
        .commit_in_place("chain", "step")
        .expect("commit")
        .expect("committed in place");
    assert_eq!(info.kind, SnapshotKind::Committed);
    assert!(matches!(
        s.stat("step"),
        Err(SnapshotError::NotFound { .. })
    ));
    assert_eq!(fs_of(&s, "chain"), upper, "the upper itself is the layer");

    s.prepare("check", None).expect("prepare");
    let (target, _) = s.apply_target("check").expect("target");
    apply_layer(layer.as_slice(), &target, &s.apply_options()).expect("apply");
    let committed = tree(&upper);
    assert_eq!(committed, tree(&target));
    assert!(committed.iter().all(|(_, _, _, nsec, _)| *nsec == 0));
    assert_eq!(committed.len(), 5);
}

#[test]
fn an_upper_holding_a_socket_stays_active() {
    let (_dir, s) = open(Driver::Overlay);
    s.prepare("step", None).expect("prepare");
    let upper = fs_of(&s, "step");
    std::fs::create_dir(upper.join("run")).expect("mkdir");
    let _listener = std::os::unix::net::UnixListener::bind(upper.join("run/s.sock")).expect("bind");
    assert!(s
        .commit_in_place("chain", "step")
        .expect("commit")
        .is_none());
    assert_eq!(
        s.stat("step").expect("still there").kind,
        SnapshotKind::Active
    );
    assert!(matches!(
        s.stat("chain"),
        Err(SnapshotError::NotFound { .. })
    ));
}

#[test]
fn native_snapshots_are_never_committed_in_place() {
    let (_dir, s) = open(Driver::Native);
    s.prepare("step", None).expect("prepare");
    std::fs::write(fs_of(&s, "step").join("f"), b"x").expect("write");
    assert!(s
        .commit_in_place("chain", "step")
        .expect("commit")
        .is_none());
    assert_eq!(
        s.stat("step").expect("still there").kind,
        SnapshotKind::Active
    );
}
