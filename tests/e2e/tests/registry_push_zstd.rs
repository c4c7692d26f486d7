//! daemon.json `push-compression: zstd`: `docker push` through berthd sends the layers it
//! keeps uncompressed as `application/vnd.oci.image.layer.v1.tar+zstd` in an OCI manifest
//! (BuildKit's `compression=zstd` shape) to Debian's docker-registry on 127.0.0.1, and the
//! image comes back whole: a second berthd pulls it with the same image id and runs it.
//! Debian's dockerd 20.10 cannot read zstd layers (its pull fails with "archive/tar: invalid
//! tar header"): that is why gzip stays the default.
//!
//! Daemons and the registry are private fixtures, stopped by PID and cleaned on drop.

use std::process::Command;

use berth_e2e::daemon::{Berthd, Daemon};
use berth_e2e::registry::Registry;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const ZSTD_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// The manifest the registry holds for `repo:tag`, as JSON.
fn manifest(registry: &Registry, repo: &str, tag: &str) -> serde_json::Value {
    let url = format!("http://{}/v2/{repo}/manifests/{tag}", registry.server());
    let out = Command::new("curl")
        .args(["-sf", "-H"])
        .arg(format!("Accept: {OCI_MANIFEST}"))
        .arg(&url)
        .output()
        .expect("curl runs");
    assert!(out.status.success(), "GET {url}: {out:?}");
    serde_json::from_slice(&out.stdout).expect("the manifest is JSON")
}

/// The first bytes of blob `digest` of `repo`.
fn blob_magic(registry: &Registry, repo: &str, digest: &str) -> Vec<u8> {
    let url = format!("http://{}/v2/{repo}/blobs/{digest}", registry.server());
    let out = Command::new("curl")
        .args(["-sfL", "-r", "0-3"])
        .arg(&url)
        .output()
        .expect("curl runs");
    assert!(out.status.success(), "GET {url}: {out:?}");
    out.stdout
}

fn image_id(daemon: &impl Daemon, name: &str) -> String {
    daemon.ok(&["image", "inspect", "-f", "{{.Id}}", name])
}

#[test]
fn zstd_push_is_an_oci_manifest_of_zstd_layers_that_berthd_and_dockerd_pull_back() {
    let registry = Registry::distribution();
    let mut daemon_json = serde_json::Map::new();
    daemon_json.insert("push-compression".into(), "zstd".into());
    let pusher = Berthd::start_with(daemon_json);
    pusher.import_busybox();
    let name = format!("{}/zstd/busybox:1", registry.server());
    pusher.ok(&["tag", "busybox", &name]);
    let id = image_id(&pusher, &name);
    let pushed = pusher.ok(&["push", &name]);
    assert!(pushed.contains(": Pushed"), "{pushed}");

    let manifest = manifest(&registry, "zstd/busybox", "1");
    assert_eq!(manifest["mediaType"], OCI_MANIFEST, "{manifest}");
    let layers = manifest["layers"].as_array().expect("layers");
    assert!(!layers.is_empty(), "{manifest}");
    for layer in layers {
        assert_eq!(layer["mediaType"], ZSTD_LAYER, "{manifest}");
        let digest = layer["digest"].as_str().expect("digest");
        assert_eq!(
            blob_magic(&registry, "zstd/busybox", digest),
            [0x28, 0xb5, 0x2f, 0xfd],
            "zstd frame magic of {digest}"
        );
    }

    let puller = Berthd::start();
    puller.ok(&["pull", &name]);
    assert_eq!(image_id(&puller, &name), id, "berthd: same image id");
    assert_eq!(
        puller.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            &name,
            "echo",
            "unpacked"
        ]),
        "unpacked"
    );
}
