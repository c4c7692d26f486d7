use std::collections::BTreeMap;

use berth_oci::{media_type, Digest};
use berth_snapshot::{Driver, Snapshotter};

use super::*;
use crate::archive::load;
use crate::manifest::{Descriptor, Manifest};
use crate::testing::{config_for, gzip, layer_tar, legacy_archive, stores};

fn manifest_and_config(s: &crate::testing::Stores, name: &str) -> (Manifest, ImageConfig) {
    let record = s.images.resolve(name).expect("resolve");
    let manifest = Manifest::parse(
        &s.content
            .read_to_vec(&record.target.digest)
            .expect("manifest"),
        None,
    )
    .expect("parse");
    let config =
        ImageConfig::parse(&s.content.read_to_vec(&record.id).expect("config")).expect("config");
    (manifest, config)
}

#[test]
fn unpack_applies_layers_into_chain_id_snapshots_shared_between_images() {
    let s = stores();
    let base = layer_tar(&[("etc/base", b"base")]);
    let one = layer_tar(&[("etc/one", b"one")]);
    let two = layer_tar(&[("etc/two", b"two")]);
    let first = legacy_archive(
        &config_for(&[&base, &one]),
        &[gzip(&base), one.clone()],
        &["first:1"],
    );
    let second = legacy_archive(
        &config_for(&[&base, &two]),
        &[base.clone(), two.clone()],
        &["second:1"],
    );
    load(&s.content, &s.images, first.as_slice()).expect("load first");
    load(&s.content, &s.images, second.as_slice()).expect("load second");
    let snapshotter =
        Snapshotter::open(&s.dir.path().join("snapshots"), Driver::Native).expect("snapshotter");

    let (manifest, config) = manifest_and_config(&s, "first:1");
    let top = unpack(&s.content, &snapshotter, &manifest, &config)
        .expect("unpack")
        .expect("top");
    assert_eq!(top, config.chain_ids()[1]);
    let mounts = snapshotter.mounts(&top.to_string()).expect("mounts");
    let root = &mounts[0].source;
    assert_eq!(std::fs::read(root.join("etc/base")).expect("base"), b"base");
    assert_eq!(std::fs::read(root.join("etc/one")).expect("one"), b"one");

    let (manifest, config) = manifest_and_config(&s, "second:1");
    let top2 = unpack(&s.content, &snapshotter, &manifest, &config)
        .expect("unpack")
        .expect("top");
    let names: Vec<String> = snapshotter
        .list()
        .expect("list")
        .into_iter()
        .map(|i| i.key)
        .collect();
    assert_eq!(names.len(), 3, "the base snapshot is shared: {names:?}");
    assert!(names.contains(&Digest::sha256_of(&base).to_string()));
    assert!(names.contains(&top2.to_string()));
    // Unpacking again changes nothing.
    unpack(&s.content, &snapshotter, &manifest, &config).expect("again");
    assert_eq!(snapshotter.list().expect("list").len(), 3);
}

#[test]
fn unpack_refuses_a_layer_whose_diff_id_differs_and_leaves_nothing() {
    let s = stores();
    let layer = layer_tar(&[("f", b"f")]);
    let blob = crate::blob::put(&s.content, &layer).expect("put");
    let claimed = layer_tar(&[("g", b"g")]);
    let config = ImageConfig::parse(&config_for(&[&claimed])).expect("config");
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media_type::OCI_MANIFEST.into()),
        artifact_type: None,
        config: Descriptor::new(media_type::OCI_CONFIG, Digest::sha256_of(b"c"), 1),
        layers: vec![Descriptor::new(
            media_type::OCI_LAYER,
            blob.digest,
            blob.size,
        )],
        subject: None,
        annotations: BTreeMap::new(),
    };
    let snapshotter =
        Snapshotter::open(&s.dir.path().join("snapshots"), Driver::Native).expect("snapshotter");
    let err = unpack(&s.content, &snapshotter, &manifest, &config).unwrap_err();
    assert!(matches!(err, UnpackError::DiffIdMismatch { .. }), "{err}");
    assert!(snapshotter.list().expect("list").is_empty());

    let mut short = manifest.clone();
    short.layers.clear();
    assert!(matches!(
        unpack(&s.content, &snapshotter, &short, &config),
        Err(UnpackError::LayerCount {
            layers: 0,
            diff_ids: 1
        })
    ));
}

#[test]
fn unpack_refuses_a_gzip_blob_named_as_its_own_diff_id() {
    // A config may claim a compressed blob's digest as the DiffID; the shortcut that skips
    // hashing store-verified tars must not apply that blob.
    let s = stores();
    let blob = crate::blob::put(&s.content, &gzip(&layer_tar(&[("f", b"f")]))).expect("put");
    let mut config: serde_json::Value =
        serde_json::from_slice(&config_for(&[b"x".as_slice()])).expect("json");
    config["rootfs"]["diff_ids"] = serde_json::json!([blob.digest.to_string()]);
    let config = ImageConfig::parse(&serde_json::to_vec(&config).expect("json")).expect("config");
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media_type::OCI_MANIFEST.into()),
        artifact_type: None,
        config: Descriptor::new(media_type::OCI_CONFIG, Digest::sha256_of(b"c"), 1),
        layers: vec![Descriptor::new(
            media_type::OCI_LAYER_GZIP,
            blob.digest,
            blob.size,
        )],
        subject: None,
        annotations: BTreeMap::new(),
    };
    let snapshotter =
        Snapshotter::open(&s.dir.path().join("snapshots"), Driver::Native).expect("snapshotter");
    let err = unpack(&s.content, &snapshotter, &manifest, &config).expect_err("refused");
    assert!(matches!(err, UnpackError::Apply { .. }), "{err}");
    assert!(snapshotter.list().expect("list").is_empty());
}
