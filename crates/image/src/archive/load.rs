//! `docker load`: an archive from `docker save` (Docker 25+ layout or the older
//! `<id>.json` + `<layer>/layer.tar` one) or a plain OCI image layout, plain or
//! compressed. Every file is streamed into the content store once, under a lease, and the
//! archive is then read from there; names and `Loaded image` lines are Docker's.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Component, Path};
use std::time::SystemTime;

use berth_content::{ContentError, Expected, Store};
use berth_oci::{media_type, Digest, Reference};
use berth_snapshot::compression::decompress;

use super::layout::{
    check_size, digest_of_blob_path, layer_diff_id, oci_layer_type, parse_manifest_blob,
    read_config, select_host, ManifestEntry, ANNOTATION_IMAGE_NAME, INDEX_JSON, MANIFEST_JSON,
    MAX_INDEX_DEPTH,
};
use super::ArchiveError;
use crate::blob::{ingest_reference, put, put_stream, read_bounded};
use crate::manifest::{Descriptor, Index, Manifest, Parsed, MAX_MANIFEST_SIZE};
use crate::store::{ImageRecord, ImageStore};
use crate::time::rfc3339_nano;

/// One image the archive held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedImage {
    pub id: Digest,
    /// Names it was tagged with.
    pub names: Vec<Reference>,
    /// What `docker load` prints for it (`Loaded image: busybox:latest`, ...).
    pub messages: Vec<String>,
}

/// Files of the archive: path -> stored blob (links resolved to their targets).
struct Files {
    blobs: BTreeMap<String, (Digest, u64)>,
    links: BTreeMap<String, String>,
}

impl Files {
    fn get(&self, path: &str) -> Result<&(Digest, u64), ArchiveError> {
        let mut path = clean(path).ok_or_else(|| ArchiveError::BadPath {
            path: path.to_owned(),
        })?;
        for _ in 0..16 {
            if let Some(found) = self.blobs.get(&path) {
                return Ok(found);
            }
            match self.links.get(&path) {
                Some(target) => path = target.clone(),
                None => break,
            }
        }
        Err(ArchiveError::MissingFile { path })
    }
}

/// Loads the archive in `input` into `content` and records its images in `images`.
pub fn load<R: Read>(
    content: &Store,
    images: &ImageStore,
    input: R,
) -> Result<Vec<LoadedImage>, ArchiveError> {
    let lease = ingest_reference("load");
    content.create_lease(&lease, None, BTreeMap::new())?;
    let result = load_leased(content, images, input, &lease);
    // The images now reference what they need; the rest is left to GC.
    let _ = content.delete_lease(&lease);
    result
}

fn load_leased<R: Read>(
    content: &Store,
    images: &ImageStore,
    input: R,
    lease: &str,
) -> Result<Vec<LoadedImage>, ArchiveError> {
    let files = ingest_files(content, input, lease)?;
    if files.blobs.contains_key(MANIFEST_JSON) {
        let (digest, _) = files.get(MANIFEST_JSON)?;
        let bytes = read_bounded(content, digest, MAX_MANIFEST_SIZE)?;
        let entries: Vec<ManifestEntry> =
            serde_json::from_slice(&bytes).map_err(|source| ArchiveError::Json {
                file: MANIFEST_JSON.to_owned(),
                source,
            })?;
        let layout = layout_manifests(content, &files)?;
        let mut loaded = Vec::new();
        for entry in &entries {
            loaded.push(load_entry(content, images, &files, &layout, entry, lease)?);
        }
        return Ok(loaded);
    }
    if files.blobs.contains_key(INDEX_JSON) {
        return load_layout(content, images, &files);
    }
    Err(ArchiveError::NotAnImageArchive)
}

/// Normalises an archive path (`./a//b/` -> `a/b`); `None` for escapes or absolute paths.
fn clean(path: &str) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    for component in Path::new(path).components() {
        match component {
            Component::Normal(p) => parts.push(p.to_str()?.to_owned()),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(parts.join("/"))
}

fn ingest_files<R: Read>(content: &Store, input: R, lease: &str) -> Result<Files, ArchiveError> {
    let (_, plain) = decompress(input).map_err(ArchiveError::Read)?;
    let mut archive = tar::Archive::new(plain);
    let mut files = Files {
        blobs: BTreeMap::new(),
        links: BTreeMap::new(),
    };
    for entry in archive.entries().map_err(ArchiveError::Read)? {
        let mut entry = entry.map_err(ArchiveError::Read)?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let path = clean(&raw).ok_or(ArchiveError::BadPath { path: raw.clone() })?;
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            let target = entry
                .link_name_bytes()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            // Symlinks are relative to their directory (Docker's legacy save links
            // `<id>/layer.tar` to `../<other>/layer.tar`); hard links to the archive root.
            let joined = if kind.is_symlink() {
                let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
                format!("{dir}/{target}")
            } else {
                target.clone()
            };
            let resolved = clean(&joined).ok_or(ArchiveError::BadPath { path: target })?;
            files.links.insert(path, resolved);
            continue;
        }
        if !kind.is_file() {
            continue;
        }
        let expected = digest_of_blob_path(&path).map_or_else(Expected::none, Expected::digest);
        let committed = put_stream(content, &mut entry, "load", expected).map_err(|e| match e {
            crate::blob::StreamError::Content(source @ ContentError::DigestMismatch { .. }) => {
                ArchiveError::BlobMismatch {
                    path: path.clone(),
                    source,
                }
            }
            other => other.into(),
        })?;
        content.lease_add_content(lease, &committed.digest)?;
        files.blobs.insert(path, (committed.digest, committed.size));
    }
    Ok(files)
}

/// Manifests of the archive's OCI layout (if any), by config digest: (the manifest, the
/// `index.json` entry that leads to it, which is the manifest itself or an index).
type LayoutManifests = BTreeMap<Digest, Vec<(Descriptor, Descriptor)>>;

fn layout_manifests(content: &Store, files: &Files) -> Result<LayoutManifests, ArchiveError> {
    let mut out = LayoutManifests::new();
    let Ok((digest, _)) = files.get(INDEX_JSON) else {
        return Ok(out);
    };
    let bytes = read_bounded(content, digest, MAX_MANIFEST_SIZE)?;
    let index = Index::parse(&bytes, None).map_err(|source| ArchiveError::Manifest {
        digest: digest.clone(),
        source,
    })?;
    let mut pending: Vec<(Descriptor, Descriptor, usize)> = index
        .manifests
        .into_iter()
        .map(|d| (d.clone(), d, 0))
        .collect();
    while let Some((desc, top, depth)) = pending.pop() {
        if depth > MAX_INDEX_DEPTH {
            return Err(ArchiveError::TooDeep { depth });
        }
        if !content.contains(&desc.digest) {
            continue;
        }
        match parse_manifest_blob(content, &desc)? {
            Parsed::Manifest(m) => out.entry(m.config.digest).or_default().push((desc, top)),
            Parsed::Index(i) => {
                pending.extend(i.manifests.into_iter().map(|d| (d, top.clone(), depth + 1)))
            }
        }
    }
    Ok(out)
}

fn load_entry(
    content: &Store,
    images: &ImageStore,
    files: &Files,
    layout: &LayoutManifests,
    entry: &ManifestEntry,
    lease: &str,
) -> Result<LoadedImage, ArchiveError> {
    let (config_digest, config_size) = files.get(&entry.config)?.clone();
    let (_, config) = read_config(content, &config_digest, &entry.config)?;
    let diff_ids = config.diff_ids();
    if diff_ids.len() != entry.layers.len() {
        return Err(ArchiveError::LayerCount {
            id: config_digest,
            layers: entry.layers.len(),
            diff_ids: diff_ids.len(),
        });
    }
    let mut layers = Vec::new();
    for (path, expected) in entry.layers.iter().zip(diff_ids) {
        let (digest, size) = files.get(path)?.clone();
        let (actual, compression) = layer_diff_id(content, &digest)?;
        if &actual != expected {
            return Err(ArchiveError::DiffIdMismatch {
                path: path.clone(),
                expected: expected.clone(),
                actual,
            });
        }
        layers.push(Descriptor::new(oci_layer_type(compression), digest, size));
    }
    // Keep the archive's own manifest when it describes exactly these blobs (its digest
    // then survives the round trip); otherwise write one, as Docker does for old archives.
    let layer_digests: Vec<&Digest> = layers.iter().map(|l| &l.digest).collect();
    let from_layout = layout
        .get(&config_digest)
        .into_iter()
        .flatten()
        .find(|(desc, _)| {
            matches!(parse_manifest_blob(content, desc), Ok(Parsed::Manifest(m))
            if m.layers.iter().map(|l| &l.digest).collect::<Vec<_>>() == layer_digests)
        });
    // The target is what index.json lists: a multi-platform index stays one.
    let target = match from_layout {
        Some((_, top)) => top.clone(),
        None => {
            let manifest = Manifest {
                schema_version: 2,
                media_type: Some(media_type::OCI_MANIFEST.to_owned()),
                artifact_type: None,
                config: Descriptor::new(media_type::OCI_CONFIG, config_digest.clone(), config_size),
                layers,
                subject: None,
                annotations: BTreeMap::new(),
            };
            let bytes = serde_json::to_vec(&manifest).map_err(|source| ArchiveError::Json {
                file: "manifest".to_owned(),
                source,
            })?;
            let committed = put(content, &bytes)?;
            content.lease_add_content(lease, &committed.digest)?;
            Descriptor::new(media_type::OCI_MANIFEST, committed.digest, committed.size)
        }
    };
    let mut target = target;
    target.annotations.clear();
    let names = entry
        .repo_tags
        .iter()
        .flatten()
        .map(|t| {
            Reference::parse_normalized(t).map_err(|source| ArchiveError::Reference {
                reference: t.clone(),
                source,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    record(images, config_digest, target, names)
}

fn record(
    images: &ImageStore,
    id: Digest,
    target: Descriptor,
    names: Vec<Reference>,
) -> Result<LoadedImage, ArchiveError> {
    images.put(ImageRecord {
        id: id.clone(),
        target,
        created: rfc3339_nano(SystemTime::now()),
        labels: BTreeMap::new(),
    })?;
    let mut messages = Vec::new();
    let mut tagged = Vec::new();
    for name in names {
        let name = name.with_default_tag();
        if let Some(old) = images.tag(&id, &name)? {
            messages.push(format!(
                "The image {} already exists, renaming the old one with ID {old} to empty string",
                name.familiar_string()
            ));
        }
        messages.push(format!("Loaded image: {}", name.familiar_string()));
        tagged.push(name);
    }
    if tagged.is_empty() {
        messages.push(format!("Loaded image ID: {id}"));
    }
    Ok(LoadedImage {
        id,
        names: tagged,
        messages,
    })
}

/// An OCI layout without `manifest.json`: every image of `index.json`, named by
/// containerd's `io.containerd.image.name` annotation when present.
fn load_layout(
    content: &Store,
    images: &ImageStore,
    files: &Files,
) -> Result<Vec<LoadedImage>, ArchiveError> {
    let (digest, _) = files.get(INDEX_JSON)?;
    let bytes = read_bounded(content, digest, MAX_MANIFEST_SIZE)?;
    let index = Index::parse(&bytes, None).map_err(|source| ArchiveError::Manifest {
        digest: digest.clone(),
        source,
    })?;
    let mut loaded: Vec<LoadedImage> = Vec::new();
    for desc in &index.manifests {
        let manifest = platform_manifest(content, desc)?;
        let (_, config) = read_config(
            content,
            &manifest.config.digest,
            &manifest.config.digest.to_string(),
        )?;
        check_blobs(content, &manifest, &config)?;
        let mut target = desc.clone();
        target.annotations.clear();
        let names = match desc.annotations.get(ANNOTATION_IMAGE_NAME) {
            Some(name) => vec![Reference::parse_normalized(name).map_err(|source| {
                ArchiveError::Reference {
                    reference: name.clone(),
                    source,
                }
            })?],
            None => Vec::new(),
        };
        let id = manifest.config.digest.clone();
        let one = record(images, id.clone(), target, names)?;
        // Several names of one image are one entry, as `docker load` reports them.
        match loaded.iter_mut().find(|l| l.id == id) {
            Some(existing) if !one.names.is_empty() => {
                existing
                    .messages
                    .retain(|m| !m.starts_with("Loaded image ID: "));
                existing.names.extend(one.names);
                existing.messages.extend(one.messages);
            }
            Some(_) => {}
            None => loaded.push(one),
        }
    }
    Ok(loaded)
}

/// The image manifest `desc` leads to: itself, or the host platform's entry of an index.
fn platform_manifest(content: &Store, desc: &Descriptor) -> Result<Manifest, ArchiveError> {
    let mut desc = desc.clone();
    for _ in 0..=MAX_INDEX_DEPTH {
        if !content.contains(&desc.digest) {
            return Err(ArchiveError::MissingFile {
                path: super::layout::blob_path(&desc.digest),
            });
        }
        match parse_manifest_blob(content, &desc)? {
            Parsed::Manifest(m) => {
                m.check_image().map_err(|source| ArchiveError::Manifest {
                    digest: desc.digest.clone(),
                    source,
                })?;
                return Ok(*m);
            }
            Parsed::Index(i) => {
                desc =
                    select_host(&i)
                        .cloned()
                        .ok_or_else(|| ArchiveError::NoMatchingPlatform {
                            digest: desc.digest.clone(),
                        })?;
            }
        }
    }
    Err(ArchiveError::TooDeep {
        depth: MAX_INDEX_DEPTH,
    })
}

/// Config and layers present with the sizes the manifest says, DiffIDs as the config says.
fn check_blobs(
    content: &Store,
    manifest: &Manifest,
    config: &crate::ImageConfig,
) -> Result<(), ArchiveError> {
    let info = content.info(&manifest.config.digest)?;
    check_size(&manifest.config, info.size)?;
    let diff_ids = config.diff_ids();
    if diff_ids.len() != manifest.layers.len() {
        return Err(ArchiveError::LayerCount {
            id: manifest.config.digest.clone(),
            layers: manifest.layers.len(),
            diff_ids: diff_ids.len(),
        });
    }
    for (layer, expected) in manifest.layers.iter().zip(diff_ids) {
        let info = content
            .info(&layer.digest)
            .map_err(|_| ArchiveError::MissingFile {
                path: super::layout::blob_path(&layer.digest),
            })?;
        check_size(layer, info.size)?;
        let (actual, _) = layer_diff_id(content, &layer.digest)?;
        if &actual != expected {
            return Err(ArchiveError::DiffIdMismatch {
                path: super::layout::blob_path(&layer.digest),
                expected: expected.clone(),
                actual,
            });
        }
    }
    Ok(())
}
