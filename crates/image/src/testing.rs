//! Test fixtures: layer tars, compressed variants, legacy Docker archives, stores.

use std::io::Write;

use berth_content::Store;
use berth_oci::Digest;

use crate::store::ImageStore;

/// A content store and an image store in one temporary directory.
pub struct Stores {
    pub dir: tempfile::TempDir,
    pub content: Store,
    pub images: ImageStore,
}

pub fn stores() -> Stores {
    let dir = tempfile::tempdir().expect("tempdir");
    let content = Store::open(dir.path().join("content")).expect("content");
    let images = ImageStore::open(&dir.path().join("images")).expect("images");
    Stores {
        dir,
        content,
        images,
    }
}

/// An uncompressed layer tar with the given (path, contents) regular files.
pub fn layer_tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(1_700_000_000);
        header.set_uid(0);
        header.set_gid(0);
        builder
            .append_data(&mut header, path, *data)
            .expect("append");
    }
    builder.into_inner().expect("finish")
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

pub fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::encode_all(bytes, 3).expect("zstd")
}

/// An archive of (path, contents) regular files plus (path, target) symlinks.
pub fn archive(files: &[(&str, &[u8])], symlinks: &[(&str, &str)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        builder
            .append_data(&mut header, path, *data)
            .expect("append");
    }
    for (path, target) in symlinks {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        builder
            .append_link(&mut header, path, target)
            .expect("link");
    }
    builder.into_inner().expect("finish")
}

/// A minimal Docker image config over the given uncompressed layers.
pub fn config_for(layers: &[&[u8]]) -> Vec<u8> {
    let diff_ids: Vec<String> = layers
        .iter()
        .map(|l| Digest::sha256_of(l).to_string())
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]},
        "created": "2024-01-01T00:00:00Z",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "test"}],
    }))
    .expect("json")
}

/// An old-style `docker save` archive (Docker < 25): `<id>.json`, `<n>/layer.tar` and a
/// `manifest.json`, with each layer stored as given (plain or compressed).
pub fn legacy_archive(config: &[u8], stored_layers: &[Vec<u8>], repo_tags: &[&str]) -> Vec<u8> {
    let config_name = format!("{}.json", Digest::sha256_of(config).hex());
    let layer_names: Vec<String> = (0..stored_layers.len())
        .map(|i| format!("layer{i}/layer.tar"))
        .collect();
    let manifest = serde_json::to_vec(&serde_json::json!([{
        "Config": config_name,
        "RepoTags": repo_tags,
        "Layers": layer_names,
    }]))
    .expect("json");
    let mut files: Vec<(&str, &[u8])> = vec![(config_name.as_str(), config)];
    for (name, data) in layer_names.iter().zip(stored_layers) {
        files.push((name.as_str(), data.as_slice()));
    }
    files.push(("manifest.json", &manifest));
    archive(&files, &[])
}
