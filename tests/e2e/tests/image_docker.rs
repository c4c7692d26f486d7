//! Image interop with real Docker (Debian's docker.io): a private dockerd imports a busybox
//! rootfs and `docker save`s it, berth-image loads it with the same image ID and RepoTags
//! and unpacks it (DiffIDs checked); berth's own saves `docker load` into dockerd with the
//! same IDs, and dockerd runs a container from an image berth imported.
//!
//! The daemon is private to the test ([`berth_e2e::daemon::Dockerd`]: its own --data-root,
//! --exec-root, --pidfile, socket, no iptables, no bridge), stopped by PID with everything
//! it started removed on drop.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;

use berth_content::Store;
use berth_e2e::daemon::{Daemon, Dockerd};
use berth_e2e::require_root;
use berth_image::archive::{import, load, save, ImportOptions, SaveFormat, SaveImage};
use berth_image::{unpack, ImageConfig, ImageStore, Manifest};
use berth_oci::Reference;
use berth_snapshot::{Driver, Snapshotter};

/// `docker image inspect -f FORMAT NAME` against `daemon`.
fn inspect(daemon: &Dockerd, name: &str, format: &str) -> String {
    daemon.ok(&["image", "inspect", "-f", format, name])
}

/// berth's stores under one directory.
struct Berth {
    content: Store,
    images: ImageStore,
    root: PathBuf,
}

fn berth(root: &Path) -> Berth {
    Berth {
        content: Store::open(root.join("content")).expect("content store"),
        images: ImageStore::open(&root.join("images")).expect("image store"),
        root: root.to_path_buf(),
    }
}

/// A busybox rootfs tarball (busybox-static plus an `sh` link), made with GNU tar.
fn busybox_rootfs(dir: &Path) -> PathBuf {
    let rootfs = dir.join("rootfs");
    fs::create_dir_all(rootfs.join("bin")).expect("mkdir");
    fs::copy("/bin/busybox", rootfs.join("bin/busybox")).expect("busybox-static is installed");
    std::os::unix::fs::symlink("busybox", rootfs.join("bin/sh")).expect("symlink");
    let tarball = dir.join("rootfs.tar");
    let status = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tarball)
        .arg(".")
        .status()
        .expect("tar runs");
    assert!(status.success());
    tarball
}

fn save_to(b: &Berth, name: &str, path: &Path) {
    let record = b.images.resolve(name).expect("berth has the image");
    let image = SaveImage {
        record,
        names: vec![Reference::parse_docker(name).expect("reference")],
    };
    let file = File::create(path).expect("create");
    save(&b.content, &[image], SaveFormat::Docker, file).expect("berth save");
}

#[test]
fn docker_save_loads_into_berth_with_the_same_id_and_tags_and_back() {
    require_root();
    let work = tempfile::tempdir().expect("tempdir");
    let daemon = Dockerd::start();
    let rootfs = busybox_rootfs(work.path());
    daemon.ok(&[
        "import",
        "--change",
        "CMD [\"sh\"]",
        &rootfs.to_string_lossy(),
        "busybox:e2e",
    ]);
    let docker_id = inspect(&daemon, "busybox:e2e", "{{.Id}}");
    let docker_tags = inspect(&daemon, "busybox:e2e", "{{json .RepoTags}}");
    let saved = work.path().join("docker-save.tar");
    daemon.ok(&["save", "-o", &saved.to_string_lossy(), "busybox:e2e"]);

    let b = berth(&work.path().join("berth"));
    let loaded = load(&b.content, &b.images, File::open(&saved).expect("open"))
        .expect("berth loads docker's archive");
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].id.to_string(), docker_id);
    assert_eq!(
        loaded[0].messages,
        vec!["Loaded image: busybox:e2e".to_string()]
    );
    let berth_tags: Vec<String> = b.images.repo_tags(&loaded[0].id);
    assert_eq!(
        serde_json::to_string(&berth_tags).expect("json"),
        docker_tags
    );

    // Unpacking checks every layer against Docker's rootfs.diff_ids.
    let record = b.images.resolve("busybox:e2e").expect("resolve");
    let manifest = Manifest::parse(
        &b.content
            .read_to_vec(&record.target.digest)
            .expect("manifest"),
        None,
    )
    .expect("manifest parses");
    let config = ImageConfig::parse(&b.content.read_to_vec(&record.id).expect("config"))
        .expect("config parses");
    let snapshotter =
        Snapshotter::open(&b.root.join("snapshots"), Driver::detect()).expect("snapshotter");
    let top = unpack(&b.content, &snapshotter, &manifest, &config)
        .expect("unpack")
        .expect("one layer");
    let mounts = snapshotter.mounts(&top.to_string()).expect("mounts");
    assert!(mounts[0].source.join("bin/busybox").is_file(), "{mounts:?}");

    // And back: berth's save of Docker's image loads into Docker as the same image.
    daemon.ok(&["rmi", "busybox:e2e"]);
    let ours = work.path().join("berth-save.tar");
    save_to(&b, "busybox:e2e", &ours);
    let out = daemon.ok(&["load", "-i", &ours.to_string_lossy()]);
    assert!(out.contains("Loaded image: busybox:e2e"), "{out}");
    assert_eq!(inspect(&daemon, "busybox:e2e", "{{.Id}}"), docker_id);
}

#[test]
fn berth_import_and_save_loads_into_docker_with_the_same_id_and_runs() {
    require_root();
    let work = tempfile::tempdir().expect("tempdir");
    let rootfs = busybox_rootfs(work.path());
    let b = berth(&work.path().join("berth"));
    let gzipped = work.path().join("rootfs.tar.gz");
    let status = Command::new("gzip")
        .arg("-k")
        .arg(&rootfs)
        .status()
        .expect("gzip runs");
    assert!(status.success());
    let options = ImportOptions {
        reference: Some(Reference::parse_normalized("berth/imported:1").expect("reference")),
        changes: vec!["CMD [\"sh\"]".into(), "ENV GREETING=hello".into()],
        ..ImportOptions::default()
    };
    let record = import(
        &b.content,
        &b.images,
        File::open(&gzipped).expect("open"),
        &options,
    )
    .expect("berth import");
    let ours = work.path().join("berth-save.tar");
    save_to(&b, "berth/imported:1", &ours);

    let daemon = Dockerd::start();
    let out = daemon.ok(&["load", "-i", &ours.to_string_lossy()]);
    assert!(out.contains("Loaded image: berth/imported:1"), "{out}");
    assert_eq!(
        inspect(&daemon, "berth/imported:1", "{{.Id}}"),
        record.id.to_string()
    );
    assert_eq!(
        inspect(&daemon, "berth/imported:1", "{{json .RepoTags}}"),
        r#"["berth/imported:1"]"#
    );
    assert_eq!(
        inspect(&daemon, "berth/imported:1", "{{json .Config.Cmd}}"),
        r#"["sh"]"#
    );
    assert_eq!(
        inspect(&daemon, "berth/imported:1", "{{.Comment}}"),
        "Imported from -"
    );
    let said = daemon.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "berth/imported:1",
        "sh",
        "-c",
        "echo $GREETING from berth",
    ]);
    assert_eq!(said, "hello from berth");

    // Docker's save of the image berth made loads back into berth unchanged.
    let again = work.path().join("docker-save.tar");
    daemon.ok(&["save", "-o", &again.to_string_lossy(), "berth/imported:1"]);
    let c = berth(&work.path().join("berth2"));
    let loaded = load(&c.content, &c.images, File::open(&again).expect("open")).expect("load");
    assert_eq!(loaded[0].id, record.id);
    assert_eq!(c.images.repo_tags(&record.id), vec!["berth/imported:1"]);
}
