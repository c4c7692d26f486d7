//! Snapshotter behaviour without mounting: records, mount specs, native copies and diffs.

use super::*;
use crate::apply::apply_layer;
use crate::test_tar::LayerTar;

fn open(driver: Driver) -> (tempfile::TempDir, Snapshotter) {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Snapshotter::open(dir.path(), driver).expect("open");
    (dir, s)
}

fn unpack(s: &Snapshotter, key: &str, parent: Option<&str>, name: &str, layer: &[u8]) {
    s.prepare(key, parent).expect("prepare");
    let (target, whiteouts) = s.apply_target(key).expect("target");
    let options = ApplyOptions {
        whiteouts,
        ..s.apply_options()
    };
    apply_layer(layer, &target, &options).expect("apply");
    s.commit(name, key).expect("commit");
}

#[test]
fn native_child_starts_as_a_copy_of_its_parent_and_diffs_back_to_its_layer() {
    let (_dir, s) = open(Driver::Native);
    let base = LayerTar::new()
        .dir("etc", 0o755, 1)
        .file("etc/os", b"berth")
        .file("etc/gone", b"x")
        .finish();
    unpack(&s, "extract-1", None, "chain-1", &base);
    s.prepare("container", Some("chain-1")).expect("prepare");
    let (fs, mode) = s.apply_target("container").expect("target");
    assert_eq!(mode, WhiteoutMode::Native);
    assert_eq!(std::fs::read(fs.join("etc/os")).expect("copied"), b"berth");
    std::fs::remove_file(fs.join("etc/gone")).expect("rm");
    std::fs::write(fs.join("new"), b"n").expect("write");
    let (layer, summary) = s.diff("container", Vec::new()).expect("diff");
    assert_eq!(summary.size, layer.len() as u64);
    let mut names = Vec::new();
    for entry in tar::Archive::new(layer.as_slice())
        .entries()
        .expect("entries")
    {
        names.push(String::from_utf8_lossy(&entry.expect("entry").path_bytes()).into_owned());
    }
    assert_eq!(names, vec!["etc/", "etc/.wh.gone", "new"]);
}

#[test]
fn parents_with_children_cannot_be_removed() {
    let (_dir, s) = open(Driver::Native);
    unpack(
        &s,
        "k1",
        None,
        "c1",
        &LayerTar::new().file("a", b"a").finish(),
    );
    s.prepare("k2", Some("c1")).expect("prepare");
    assert!(matches!(
        s.remove("c1"),
        Err(SnapshotError::HasChildren { .. })
    ));
    s.remove("k2").expect("remove child");
    s.remove("c1").expect("remove parent");
    assert!(s.list().expect("list").is_empty());
    assert!(matches!(s.stat("c1"), Err(SnapshotError::NotFound { .. })));
}

#[test]
fn keys_are_unique_and_kinds_are_enforced() {
    let (_dir, s) = open(Driver::Overlay);
    s.prepare("k", None).expect("prepare");
    assert!(matches!(
        s.prepare("k", None),
        Err(SnapshotError::AlreadyExists { .. })
    ));
    assert_eq!(
        s.prepare("child", Some("k"))
            .expect_err("active parent")
            .to_string(),
        r#"snapshot "k" is Active, expected Committed"#
    );
    s.commit("c", "k").expect("commit");
    assert!(matches!(
        s.commit("c2", "c"),
        Err(SnapshotError::WrongKind { .. })
    ));
    assert!(matches!(s.stat("k"), Err(SnapshotError::NotFound { .. })));
    assert_eq!(s.stat("c").expect("stat").kind, SnapshotKind::Committed);
    assert!(matches!(
        s.prepare("bad\nkey", None),
        Err(SnapshotError::InvalidKey { .. })
    ));
}

#[test]
fn overlay_mounts_stack_parents_nearest_first() {
    let (dir, s) = open(Driver::Overlay);
    let first = s.prepare("k1", None).expect("prepare");
    assert_eq!(first[0].fstype, "bind");
    s.commit("c1", "k1").expect("commit");
    s.prepare("k2", Some("c1")).expect("prepare");
    s.commit("c2", "k2").expect("commit");
    let mounts = s.prepare("top", Some("c2")).expect("prepare");
    let (c1, c2, top) = (
        s.stat("c1").expect("c1"),
        s.stat("c2").expect("c2"),
        s.stat("top").expect("top"),
    );
    let root = dir.path();
    assert_eq!(
        mounts,
        vec![Mount {
            fstype: "overlay".into(),
            source: "overlay".into(),
            options: vec![
                format!(
                    "lowerdir={}/l/{}:{}/l/{}",
                    root.display(),
                    c2.link,
                    root.display(),
                    c1.link
                ),
                format!("upperdir={}/snapshots/{}/fs", root.display(), top.id),
                format!("workdir={}/snapshots/{}/work", root.display(), top.id),
            ],
            working_dir: None,
        }]
    );
    let view = s.mounts("c2").expect("view");
    assert_eq!(view[0].options.last().map(String::as_str), Some("ro"));
    assert!(std::fs::read_link(root.join("l").join(&c1.link))
        .expect("link")
        .ends_with("fs"));
}

#[test]
fn deep_overlay_stacks_switch_to_relative_link_names_within_one_page() {
    let (dir, s) = open(Driver::Overlay);
    let mut parent: Option<String> = None;
    for i in 0..130 {
        let key = format!("k{i}");
        s.prepare(&key, parent.as_deref()).expect("prepare");
        let name = format!("sha256:{i:064x}");
        s.commit(&name, &key).expect("commit");
        parent = Some(name);
    }
    let mounts = s.prepare("container", parent.as_deref()).expect("prepare");
    let m = &mounts[0];
    assert_eq!(m.working_dir.as_deref(), Some(dir.path()));
    let lowerdir = m.options[0]
        .strip_prefix("lowerdir=")
        .expect("lowerdir first");
    assert_eq!(lowerdir.split(':').count(), 130);
    assert!(lowerdir
        .split(':')
        .all(|l| l.starts_with("l/") && dir.path().join(l).join("..").exists()));
    assert!(m.options.join(",").len() <= MOUNT_DATA_MAX);
}

#[test]
fn cleanup_removes_what_interrupted_operations_left_behind() {
    let (dir, s) = open(Driver::Overlay);
    s.prepare("k", None).expect("prepare");
    s.commit("c", "k").expect("commit");
    let info = s.stat("c").expect("stat");
    // A prepare that died before writing its key record, and a commit that died before
    // deleting the old key record.
    std::fs::create_dir_all(dir.path().join("snapshots/orphan/fs")).expect("mkdir");
    std::os::unix::fs::symlink("../snapshots/orphan/fs", dir.path().join("l/ORPHAN"))
        .expect("link");
    std::fs::remove_dir_all(dir.path().join("snapshots/orphan")).expect("rm");
    std::fs::create_dir_all(dir.path().join("snapshots/orphan2/fs")).expect("mkdir");
    let stale_key = s.store.key_file("k");
    std::fs::write(&stale_key, info.id.as_bytes()).expect("stale key");
    assert!(
        matches!(s.stat("k"), Err(SnapshotError::NotFound { .. })),
        "stale key is not visible"
    );
    assert_eq!(s.cleanup().expect("cleanup"), 3);
    assert!(!stale_key.exists());
    assert!(!dir.path().join("snapshots/orphan2").exists());
    assert_eq!(s.stat("c").expect("kept"), info);
    assert_eq!(s.cleanup().expect("idempotent"), 0);
}

#[test]
fn concurrent_prepares_of_one_key_have_exactly_one_winner() {
    let (dir, s) = open(Driver::Overlay);
    let s = std::sync::Arc::new(s);
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let s = std::sync::Arc::clone(&s);
            std::thread::spawn(move || s.prepare("same", None).is_ok())
        })
        .collect();
    let wins = handles
        .into_iter()
        .filter(|_| true)
        .map(|h| h.join().expect("thread"))
        .filter(|ok| *ok)
        .count();
    assert_eq!(wins, 1);
    let left = std::fs::read_dir(dir.path().join("snapshots"))
        .expect("read")
        .count();
    assert_eq!(left, 1, "losers removed their directories");
    assert_eq!(
        std::fs::read_dir(dir.path().join("l"))
            .expect("read")
            .count(),
        1
    );
}
