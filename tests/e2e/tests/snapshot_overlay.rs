//! The overlay snapshotter for real: a 125-layer stack mounts (short `l/` links keep the
//! options in one page), every layer and whiteout shows through, and the container's
//! changes diff back into a layer. Mounts are undone by a guard even when a test fails.

use std::path::{Path, PathBuf};
use std::process::Command;

use berth_e2e::require_root;
use berth_snapshot::{apply_layer, tar_tree, Driver, Mount, Snapshotter};

/// Unmounts (lazily) on drop.
struct MountGuard(PathBuf);

impl Drop for MountGuard {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Mounts `m` on `target` with the `mount` binary, in `m.working_dir` when the lowerdirs
/// are relative (a child process, so this test's cwd never changes).
fn mount(m: &Mount, target: &Path) -> MountGuard {
    let mut cmd = Command::new("mount");
    cmd.arg("-t")
        .arg(&m.fstype)
        .arg("-o")
        .arg(m.options.join(","))
        .arg(&m.source)
        .arg(target);
    if let Some(dir) = &m.working_dir {
        cmd.current_dir(dir);
    }
    let out = cmd.output().expect("mount runs");
    assert!(
        out.status.success(),
        "mount failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    MountGuard(target.to_path_buf())
}

fn layer(files: &[(&str, &[u8])]) -> Vec<u8> {
    let src = tempfile::tempdir().expect("tempdir");
    for (name, data) in files {
        let path = src.path().join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, data).expect("write");
    }
    tar_tree(src.path(), Vec::new()).expect("tar").0
}

#[test]
fn stack_of_125_layers_mounts_and_shows_every_layer_and_whiteout() {
    require_root();
    let root = tempfile::tempdir().expect("tempdir");
    let store = root.path().join("snapshots");
    let s = Snapshotter::open(&store, Driver::Overlay).expect("open");
    let mut parent: Option<String> = None;
    for i in 0..125 {
        let name = format!("layer-{i:03}");
        let mut files: Vec<(String, Vec<u8>)> =
            vec![(format!("layers/{name}"), name.clone().into_bytes())];
        if i == 100 {
            files.push(("layers/.wh.layer-010".into(), Vec::new()));
        }
        let refs: Vec<(&str, &[u8])> = files
            .iter()
            .map(|(n, d)| (n.as_str(), d.as_slice()))
            .collect();
        let key = format!("extract-{i}");
        s.prepare(&key, parent.as_deref()).expect("prepare");
        let (target, _) = s.apply_target(&key).expect("target");
        apply_layer(layer(&refs).as_slice(), &target, &s.apply_options()).expect("apply");
        let chain = format!("sha256:{i:064x}");
        s.commit(&chain, &key).expect("commit");
        parent = Some(chain);
    }
    let mounts = s.prepare("container", parent.as_deref()).expect("prepare");
    assert_eq!(mounts.len(), 1);
    assert!(
        mounts[0].working_dir.is_some(),
        "125 absolute lowerdirs cannot fit one page"
    );
    let rootfs = root.path().join("rootfs");
    std::fs::create_dir(&rootfs).expect("mkdir");
    {
        let _guard = mount(&mounts[0], &rootfs);
        let mut names: Vec<String> = std::fs::read_dir(rootfs.join("layers"))
            .expect("read merged dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names.len(), 124);
        assert!(!names.contains(&"layer-010".to_string()));
        assert_eq!(
            std::fs::read(rootfs.join("layers/layer-124")).expect("top"),
            b"layer-124"
        );
        assert_eq!(
            std::fs::read(rootfs.join("layers/layer-000")).expect("bottom"),
            b"layer-000"
        );

        // The container writes and deletes through the mount.
        std::fs::write(rootfs.join("new-file"), b"n").expect("write");
        std::fs::remove_file(rootfs.join("layers/layer-050")).expect("rm lower");
    }
    let (diff, summary) = s.diff("container", Vec::new()).expect("diff");
    assert!(summary.entries >= 3);
    let text = String::from_utf8_lossy(&diff);
    assert!(
        text.contains("layers/.wh.layer-050"),
        "whiteout in the diff"
    );
    assert!(text.contains("new-file"));
    assert!(
        !text.contains("layer-049"),
        "unchanged lower files stay out of the diff"
    );

    s.remove("container").expect("remove container");
    assert!(s.remove(parent.as_deref().expect("top")).is_ok());
}

#[test]
fn committed_snapshot_view_is_read_only() {
    require_root();
    let root = tempfile::tempdir().expect("tempdir");
    let s = Snapshotter::open(&root.path().join("s"), Driver::Overlay).expect("open");
    for (i, parent) in [(0, None), (1, Some("c0"))] {
        let key = format!("k{i}");
        s.prepare(&key, parent).expect("prepare");
        let (target, _) = s.apply_target(&key).expect("target");
        let file = format!("f{i}");
        apply_layer(
            layer(&[(file.as_str(), b"x")]).as_slice(),
            &target,
            &s.apply_options(),
        )
        .expect("apply");
        s.commit(&format!("c{i}"), &key).expect("commit");
    }
    let view = s.mounts("c1").expect("mounts");
    let target = root.path().join("view");
    std::fs::create_dir(&target).expect("mkdir");
    let _guard = mount(&view[0], &target);
    assert!(target.join("f0").exists() && target.join("f1").exists());
    let err = std::fs::write(target.join("nope"), b"x").expect_err("read-only");
    assert_eq!(err.raw_os_error(), Some(libc::EROFS));
}
