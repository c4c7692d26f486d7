use std::collections::BTreeMap;
use std::io::Read;
use std::time::{Duration, UNIX_EPOCH};

use berth_oci::{media_type, Digest, Platform, Reference};

use super::layout::ManifestEntry;
use super::*;
use crate::config::ImageConfig;
use crate::manifest::{Index, Manifest};
use crate::store::ImageRecord;
use crate::testing::{config_for, gzip, layer_tar, legacy_archive, stores, zstd, Stores};

fn r(s: &str) -> Reference {
    Reference::parse_normalized(s).expect("reference")
}

fn import_options(reference: Option<&str>, changes: &[&str]) -> ImportOptions {
    ImportOptions {
        reference: reference.map(r),
        changes: changes.iter().map(|c| c.to_string()).collect(),
        platform: Platform::parse("linux/amd64").expect("platform"),
        created: UNIX_EPOCH + Duration::new(1_700_000_000, 5),
        ..ImportOptions::default()
    }
}

/// Path -> contents of every regular file in a tar.
fn entries(tar_bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut archive = tar::Archive::new(tar_bytes);
    for entry in archive.entries().expect("entries") {
        let mut entry = entry.expect("entry");
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry.path().expect("path").display().to_string();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).expect("read");
        out.insert(path, data);
    }
    out
}

fn config_of(s: &Stores, id: &Digest) -> ImageConfig {
    ImageConfig::parse(&s.content.read_to_vec(id).expect("config")).expect("parse")
}

fn manifest_of(s: &Stores, record: &ImageRecord) -> Manifest {
    Manifest::parse(
        &s.content
            .read_to_vec(&record.target.digest)
            .expect("manifest"),
        None,
    )
    .expect("parse")
}

fn save_one(s: &Stores, name: &str, format: SaveFormat) -> Vec<u8> {
    let record = s.images.resolve(name).expect("resolve");
    let image = SaveImage {
        record,
        names: vec![r(name).with_default_tag()],
    };
    save(&s.content, &[image], format, Vec::new()).expect("save")
}

#[test]
fn import_creates_a_one_layer_image_with_a_config_like_dockers() {
    let s = stores();
    let layer = layer_tar(&[("bin/hello", b"hi")]);
    let record = import(
        &s.content,
        &s.images,
        layer.as_slice(),
        &import_options(Some("imported:v1"), &["CMD [\"/bin/hello\"]", "ENV A=b"]),
    )
    .expect("import");
    let config = config_of(&s, &record.id);
    assert_eq!(config.architecture, "amd64");
    assert_eq!(config.os, "linux");
    assert_eq!(config.comment.as_deref(), Some("Imported from -"));
    assert_eq!(
        config.created.as_deref(),
        Some("2023-11-14T22:13:20.000000005Z")
    );
    assert_eq!(config.history.len(), 1);
    assert_eq!(
        config.history[0].comment.as_deref(),
        Some("Imported from -")
    );
    assert_eq!(config.history[0].created, config.created);
    assert_eq!(config.diff_ids(), &[Digest::sha256_of(&layer)]);
    let cc = config.config.expect("config");
    assert_eq!(cc.cmd, Some(vec!["/bin/hello".to_string()]));
    assert_eq!(cc.env, Some(vec!["A=b".to_string()]));
    assert_eq!(s.images.repo_tags(&record.id), vec!["imported:v1"]);
    let manifest = manifest_of(&s, &record);
    manifest.check_image().expect("image manifest");
    assert_eq!(manifest.config.digest, record.id);
    assert_eq!(manifest.layers[0].media_type, media_type::OCI_LAYER);
}

#[test]
fn import_of_gzip_and_zstd_rootfs_gives_the_same_layer() {
    let s = stores();
    let layer = layer_tar(&[("etc/os-release", b"ID=test\n")]);
    let options = import_options(None, &[]);
    let plain = import(&s.content, &s.images, layer.as_slice(), &options).expect("plain");
    let gz = import(&s.content, &s.images, gzip(&layer).as_slice(), &options).expect("gzip");
    let zst = import(&s.content, &s.images, zstd(&layer).as_slice(), &options).expect("zstd");
    assert_eq!(plain.id, gz.id, "same tar and time: same config, same id");
    assert_eq!(plain.id, zst.id);
    assert_eq!(
        config_of(&s, &gz.id).diff_ids(),
        &[Digest::sha256_of(&layer)]
    );
}

#[test]
fn import_refuses_input_that_is_not_a_tar() {
    let s = stores();
    let err = import(
        &s.content,
        &s.images,
        &b"definitely not a tar archive, just text"[..],
        &import_options(None, &[]),
    );
    assert!(matches!(err, Err(ArchiveError::Read(_))), "{err:?}");
    assert!(s.images.list().is_empty());
    let bad = import(
        &s.content,
        &s.images,
        layer_tar(&[]).as_slice(),
        &import_options(None, &["RUN x"]),
    );
    assert!(matches!(bad, Err(ArchiveError::Change(_))));
}

#[test]
fn save_writes_dockers_layout_and_load_restores_ids_tags_and_manifest() {
    let s = stores();
    let layer = layer_tar(&[("a", b"1")]);
    let record = import(
        &s.content,
        &s.images,
        layer.as_slice(),
        &import_options(Some("app:1"), &[]),
    )
    .expect("import");
    let archive = save_one(&s, "app:1", SaveFormat::Docker);
    let files = entries(&archive);
    let oci_layout: serde_json::Value =
        serde_json::from_slice(&files["oci-layout"]).expect("oci-layout");
    assert_eq!(oci_layout["imageLayoutVersion"], "1.0.0");
    let manifest_json: Vec<ManifestEntry> =
        serde_json::from_slice(&files["manifest.json"]).expect("manifest.json");
    assert_eq!(manifest_json.len(), 1);
    assert_eq!(
        manifest_json[0].config,
        format!("blobs/sha256/{}", record.id.hex())
    );
    assert_eq!(manifest_json[0].repo_tags, Some(vec!["app:1".to_string()]));
    assert_eq!(
        manifest_json[0].layers,
        vec![format!("blobs/sha256/{}", Digest::sha256_of(&layer).hex())]
    );
    let index = Index::parse(&files["index.json"], None).expect("index.json");
    assert_eq!(index.manifests[0].digest, record.target.digest);
    assert_eq!(
        index.manifests[0].annotations["io.containerd.image.name"],
        "docker.io/library/app:1"
    );
    assert_eq!(
        index.manifests[0].annotations["org.opencontainers.image.ref.name"],
        "1"
    );
    let repositories: serde_json::Value =
        serde_json::from_slice(&files["repositories"]).expect("repositories");
    assert!(repositories["app"]["1"].is_string());
    for (path, data) in &files {
        if let Some(hex) = path.strip_prefix("blobs/sha256/") {
            assert_eq!(
                Digest::sha256_of(data).hex(),
                hex,
                "blob {path} keeps its digest"
            );
        }
    }

    let other = stores();
    let loaded = load(&other.content, &other.images, archive.as_slice()).expect("load");
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].id, record.id);
    assert_eq!(loaded[0].messages, vec!["Loaded image: app:1".to_string()]);
    let again = other.images.resolve("app:1").expect("resolve");
    assert_eq!(
        again.target.digest, record.target.digest,
        "manifest digest survives"
    );
    assert_eq!(other.images.repo_tags(&record.id), vec!["app:1"]);
}

#[test]
fn oci_layout_save_has_no_docker_files_and_loads_by_annotation() {
    let s = stores();
    let record = import(
        &s.content,
        &s.images,
        layer_tar(&[("x", b"x")]).as_slice(),
        &import_options(Some("ocitest:2"), &[]),
    )
    .expect("import");
    let archive = save_one(&s, "ocitest:2", SaveFormat::OciLayout);
    let files = entries(&archive);
    assert!(!files.contains_key("manifest.json"));
    assert!(!files.contains_key("repositories"));
    let other = stores();
    let loaded = load(&other.content, &other.images, archive.as_slice()).expect("load");
    assert_eq!(loaded[0].id, record.id);
    assert_eq!(other.images.repo_tags(&record.id), vec!["ocitest:2"]);
}

#[test]
fn legacy_archive_with_compressed_layers_loads_and_saves_the_same_bytes() {
    let s = stores();
    let base = layer_tar(&[("base", b"base")]);
    let top = layer_tar(&[("top", b"top")]);
    let config = config_for(&[&base, &top]);
    let stored = vec![gzip(&base), zstd(&top)];
    let archive = legacy_archive(&config, &stored, &["legacy:old"]);
    let loaded =
        load(&s.content, &s.images, gzip(&archive).as_slice()).expect("load compressed archive");
    let id = Digest::sha256_of(&config);
    assert_eq!(loaded[0].id, id);
    let record = s.images.resolve("legacy:old").expect("resolve");
    let manifest = manifest_of(&s, &record);
    assert_eq!(manifest.layers[0].media_type, media_type::OCI_LAYER_GZIP);
    assert_eq!(manifest.layers[1].media_type, media_type::OCI_LAYER_ZSTD);
    assert_eq!(manifest.layers[0].digest, Digest::sha256_of(&stored[0]));
    let saved = entries(&save_one(&s, "legacy:old", SaveFormat::Docker));
    assert_eq!(
        saved[&format!("blobs/sha256/{}", Digest::sha256_of(&stored[1]).hex())],
        stored[1]
    );
    assert_eq!(saved[&format!("blobs/sha256/{}", id.hex())], config);
}

#[test]
fn legacy_archive_layers_linked_by_symlink_resolve() {
    let s = stores();
    let layer = layer_tar(&[("f", b"f")]);
    let config = config_for(&[&layer]);
    let config_name = format!("{}.json", Digest::sha256_of(&config).hex());
    let manifest = serde_json::to_vec(&serde_json::json!([
        {"Config": config_name, "RepoTags": ["linked:1"], "Layers": ["b/layer.tar"]}
    ]))
    .expect("json");
    let archive = crate::testing::archive(
        &[
            (&config_name, &config),
            ("a/layer.tar", &layer),
            ("manifest.json", &manifest),
        ],
        &[("b/layer.tar", "../a/layer.tar")],
    );
    let loaded = load(&s.content, &s.images, archive.as_slice()).expect("load");
    assert_eq!(loaded[0].id, Digest::sha256_of(&config));
}

#[test]
fn load_refuses_wrong_diff_ids_and_mislabelled_blobs() {
    let s = stores();
    let layer = layer_tar(&[("f", b"f")]);
    let config = config_for(&[&layer_tar(&[("other", b"o")])]);
    let err = load(
        &s.content,
        &s.images,
        legacy_archive(&config, std::slice::from_ref(&layer), &["bad:1"]).as_slice(),
    )
    .unwrap_err();
    assert!(matches!(err, ArchiveError::DiffIdMismatch { .. }), "{err}");
    assert!(s.images.list().is_empty());

    let wrong = format!("blobs/sha256/{}", "0".repeat(64));
    let archive = crate::testing::archive(
        &[(&wrong, b"not what the name says"), ("index.json", b"{}")],
        &[],
    );
    let err = load(&s.content, &s.images, archive.as_slice()).unwrap_err();
    assert!(matches!(err, ArchiveError::BlobMismatch { .. }), "{err}");

    let err = load(
        &s.content,
        &s.images,
        crate::testing::archive(&[("x", b"y")], &[]).as_slice(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "archive has neither manifest.json nor index.json: it is not an image archive"
    );
}

#[test]
fn load_of_a_tag_already_in_use_moves_it_with_dockers_message() {
    let s = stores();
    let first = import(
        &s.content,
        &s.images,
        layer_tar(&[("1", b"1")]).as_slice(),
        &import_options(Some("moving:1"), &[]),
    )
    .expect("import");
    let layer = layer_tar(&[("2", b"2")]);
    let config = config_for(&[&layer]);
    let loaded = load(
        &s.content,
        &s.images,
        legacy_archive(&config, &[layer], &["moving:1"]).as_slice(),
    )
    .expect("load");
    assert_eq!(
        loaded[0].messages,
        vec![
            format!("The image moving:1 already exists, renaming the old one with ID {} to empty string", first.id),
            "Loaded image: moving:1".to_string()
        ]
    );
    assert!(s.images.repo_tags(&first.id).is_empty());
    assert!(
        s.images.get(&first.id).is_some(),
        "the old image stays, dangling"
    );
}

#[test]
fn untagged_save_loads_as_image_id() {
    let s = stores();
    let record = import(
        &s.content,
        &s.images,
        layer_tar(&[("u", b"u")]).as_slice(),
        &import_options(None, &[]),
    )
    .expect("import");
    let archive = save(
        &s.content,
        &[SaveImage {
            record: record.clone(),
            names: vec![],
        }],
        SaveFormat::Docker,
        Vec::new(),
    )
    .expect("save");
    let other = stores();
    let loaded = load(&other.content, &other.images, archive.as_slice()).expect("load");
    assert_eq!(
        loaded[0].messages,
        vec![format!("Loaded image ID: {}", record.id)]
    );
}

/// An image whose target is a two-platform index of which only amd64 was pulled.
fn multi_platform(s: &Stores) -> (ImageRecord, Digest) {
    let layer = layer_tar(&[("m", b"m")]);
    let config = config_for(&[&layer]);
    let layer_blob = crate::blob::put(&s.content, &gzip(&layer)).expect("layer");
    let config_blob = crate::blob::put(&s.content, &config).expect("config");
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media_type::DOCKER_MANIFEST.into()),
        artifact_type: None,
        config: crate::Descriptor::new(
            media_type::DOCKER_CONFIG,
            config_blob.digest.clone(),
            config_blob.size,
        ),
        layers: vec![crate::Descriptor::new(
            media_type::DOCKER_LAYER,
            layer_blob.digest,
            layer_blob.size,
        )],
        subject: None,
        annotations: BTreeMap::new(),
    };
    let manifest_blob = crate::blob::put(&s.content, &serde_json::to_vec(&manifest).expect("json"))
        .expect("manifest");
    let mut amd64 = crate::Descriptor::new(
        media_type::DOCKER_MANIFEST,
        manifest_blob.digest.clone(),
        manifest_blob.size,
    );
    amd64.platform = Some(Platform::parse("linux/amd64").expect("platform"));
    let mut arm64 = crate::Descriptor::new(
        media_type::DOCKER_MANIFEST,
        Digest::sha256_of(b"never pulled"),
        12,
    );
    arm64.platform = Some(Platform::parse("linux/arm64").expect("platform"));
    let index = Index {
        schema_version: 2,
        media_type: Some(media_type::DOCKER_MANIFEST_LIST.into()),
        artifact_type: None,
        manifests: vec![amd64, arm64],
        subject: None,
        annotations: BTreeMap::new(),
    };
    let index_blob =
        crate::blob::put(&s.content, &serde_json::to_vec(&index).expect("json")).expect("index");
    let record = ImageRecord {
        id: config_blob.digest,
        target: crate::Descriptor::new(
            media_type::DOCKER_MANIFEST_LIST,
            index_blob.digest,
            index_blob.size,
        ),
        created: "2024-01-01T00:00:00Z".into(),
        labels: BTreeMap::new(),
    };
    s.images.put(record.clone()).expect("put");
    s.images.tag(&record.id, &r("multi:1")).expect("tag");
    (record, manifest_blob.digest)
}

#[test]
fn saving_a_multi_platform_image_keeps_its_index_and_what_was_pulled() {
    let s = stores();
    let (record, platform_manifest) = multi_platform(&s);
    let archive = save_one(&s, "multi:1", SaveFormat::Docker);
    let files = entries(&archive);
    let index = Index::parse(&files["index.json"], None).expect("index.json");
    assert_eq!(index.manifests[0].digest, record.target.digest);
    assert!(files.contains_key(&format!("blobs/sha256/{}", record.target.digest.hex())));
    assert!(files.contains_key(&format!("blobs/sha256/{}", platform_manifest.hex())));
    assert!(!files.contains_key(&format!(
        "blobs/sha256/{}",
        Digest::sha256_of(b"never pulled").hex()
    )));

    let other = stores();
    let loaded = load(&other.content, &other.images, archive.as_slice()).expect("load");
    assert_eq!(loaded[0].id, record.id);
    let again = other.images.resolve("multi:1").expect("resolve");
    assert_eq!(
        again.target.digest, record.target.digest,
        "the index digest survives"
    );
    assert_eq!(again.target.media_type, media_type::DOCKER_MANIFEST_LIST);
}

#[test]
fn saving_several_images_and_tags_lists_each_in_manifest_json_and_index_json() {
    let s = stores();
    let a = import(
        &s.content,
        &s.images,
        layer_tar(&[("a", b"a")]).as_slice(),
        &import_options(Some("a:1"), &[]),
    )
    .expect("a");
    s.images.tag(&a.id, &r("a:2")).expect("tag");
    let b = import(
        &s.content,
        &s.images,
        layer_tar(&[("b", b"b")]).as_slice(),
        &import_options(Some("b:1"), &[]),
    )
    .expect("b");
    let images = vec![
        SaveImage {
            record: a.clone(),
            names: vec![r("a:1"), r("a:2")],
        },
        SaveImage {
            record: b.clone(),
            names: vec![r("b:1")],
        },
    ];
    let archive = save(&s.content, &images, SaveFormat::Docker, Vec::new()).expect("save");
    let files = entries(&archive);
    let manifest_json: Vec<ManifestEntry> =
        serde_json::from_slice(&files["manifest.json"]).expect("manifest.json");
    assert_eq!(manifest_json.len(), 2);
    assert_eq!(
        manifest_json[0].repo_tags,
        Some(vec!["a:1".to_string(), "a:2".to_string()])
    );
    let index = Index::parse(&files["index.json"], None).expect("index.json");
    assert_eq!(index.manifests.len(), 3);
    let other = stores();
    let loaded = load(&other.content, &other.images, archive.as_slice()).expect("load");
    assert_eq!(loaded.len(), 2);
    assert_eq!(other.images.repo_tags(&a.id), vec!["a:1", "a:2"]);
    assert_eq!(other.images.repo_tags(&b.id), vec!["b:1"]);
    // Without manifest.json, the OCI layout's annotations name the same images.
    let layout = save(&s.content, &images, SaveFormat::OciLayout, Vec::new()).expect("save layout");
    let third = stores();
    let loaded = load(&third.content, &third.images, layout.as_slice()).expect("load layout");
    assert_eq!(loaded.len(), 2);
    assert_eq!(
        loaded[0].messages,
        vec![
            "Loaded image: a:1".to_string(),
            "Loaded image: a:2".to_string()
        ]
    );
    assert_eq!(third.images.repo_tags(&a.id), vec!["a:1", "a:2"]);
}
