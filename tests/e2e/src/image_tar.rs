//! Busybox images without a registry: a busybox-static rootfs tarball for `docker import`,
//! and a `docker save`-format archive of it for `docker load`.

use std::fs::{self, File};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use berth_content::Store;
use berth_image::archive::{import, save, ImportOptions, SaveFormat, SaveImage};
use berth_image::ImageStore;
use berth_oci::Reference;

use crate::bundle::BUSYBOX;

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
daemon:x:1:1:daemon:/usr/sbin:/bin/false\n\
nobody:x:65534:65534:nobody:/home:/bin/false\n";
const GROUP: &str = "root:x:0:\n\
daemon:x:1:\n\
nogroup:x:65534:\n";

/// A tarball in its own temporary directory, removed on drop.
pub struct BusyboxTar {
    dir: tempfile::TempDir,
    path: PathBuf,
}

impl BusyboxTar {
    /// The busybox rootfs tarball (same as [`busybox_image_tar`]).
    pub fn new() -> BusyboxTar {
        busybox_image_tar()
    }

    /// The tarball.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Default for BusyboxTar {
    fn default() -> BusyboxTar {
        BusyboxTar::new()
    }
}

/// A rootfs tarball holding /bin/busybox (busybox-static) with a symlink per applet in
/// /bin (sh, echo, sleep, ...), /etc/passwd, /etc/group and /tmp, /root, /proc, /sys, /dev:
/// `docker import FILE busybox:latest` makes a working image of it. Owners are root and
/// mtimes fixed, so the same content gives the same layer digest.
pub fn busybox_image_tar() -> BusyboxTar {
    assert!(
        Path::new(BUSYBOX).is_file(),
        "{BUSYBOX} is missing: apt-get install busybox-static"
    );
    let dir = tempfile::Builder::new()
        .prefix("berth-e2e-busybox-")
        .tempdir()
        .expect("tempdir");
    let rootfs = dir.path().join("rootfs");
    for sub in [
        "bin", "etc", "tmp", "root", "proc", "sys", "dev", "home", "var", "usr/bin",
    ] {
        fs::create_dir_all(rootfs.join(sub)).expect("mkdir in rootfs");
    }
    fs::set_permissions(rootfs.join("tmp"), fs::Permissions::from_mode(0o1777)).expect("chmod");
    fs::copy(BUSYBOX, rootfs.join("bin/busybox")).expect("copy busybox");
    let list = Command::new(BUSYBOX)
        .arg("--list")
        .output()
        .expect("busybox --list runs");
    assert!(list.status.success(), "busybox --list failed");
    for applet in String::from_utf8_lossy(&list.stdout).lines().map(str::trim) {
        if applet.is_empty() || applet.contains('/') || applet == "busybox" {
            continue;
        }
        symlink("busybox", rootfs.join("bin").join(applet)).expect("applet symlink");
    }
    fs::write(rootfs.join("etc/passwd"), PASSWD).expect("passwd");
    fs::write(rootfs.join("etc/group"), GROUP).expect("group");
    let path = dir.path().join("busybox-rootfs.tar");
    let status = Command::new("tar")
        .args([
            "--sort=name",
            "--mtime=@0",
            "--owner=0",
            "--group=0",
            "--numeric-owner",
        ])
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&path)
        .arg(".")
        .status()
        .expect("tar runs");
    assert!(status.success(), "tar of the busybox rootfs failed");
    BusyboxTar { dir, path }
}

/// A `docker save` archive (manifest.json, config, one layer) of the busybox rootfs,
/// tagged `tag` with `CMD ["sh"]`, made by berth-image (whose archives `docker load`
/// accepts: tests/image_docker.rs proves it against dockerd).
pub fn busybox_image_archive(tag: &str) -> BusyboxTar {
    let rootfs = busybox_image_tar();
    let store_dir = rootfs.dir.path().join("store");
    let content = Store::open(store_dir.join("content")).expect("content store");
    let images = ImageStore::open(&store_dir.join("images")).expect("image store");
    let reference = Reference::parse_normalized(tag).expect("a valid image reference");
    let options = ImportOptions {
        reference: Some(reference.clone()),
        changes: vec!["CMD [\"sh\"]".into()],
        ..ImportOptions::default()
    };
    let record = import(
        &content,
        &images,
        File::open(rootfs.path()).expect("open rootfs tar"),
        &options,
    )
    .expect("berth-image imports the rootfs");
    let path = rootfs.dir.path().join("busybox-image.tar");
    let image = SaveImage {
        record,
        names: vec![reference],
    };
    save(
        &content,
        &[image],
        SaveFormat::Docker,
        File::create(&path).expect("create archive"),
    )
    .expect("berth-image saves the archive");
    BusyboxTar {
        dir: rootfs.dir,
        path,
    }
}
