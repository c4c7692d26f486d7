//! `docker save` as Docker 25+ writes it (an OCI image layout plus `manifest.json` and
//! `repositories`), or a plain OCI image layout. Blobs are written as stored, so the
//! manifests, configs and layers in the archive have the digests they have in berth.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};

use berth_content::Store;
use berth_oci::{media_type, Digest, Reference};
use serde::Serialize;

use super::layout::{
    blob_path, image_manifest, ManifestEntry, ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME,
    INDEX_JSON, MANIFEST_JSON, OCI_LAYOUT, OCI_LAYOUT_BODY, REPOSITORIES,
};
use super::ArchiveError;
use crate::manifest::{Descriptor, Index, Parsed};
use crate::store::ImageRecord;

/// Which archive to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveFormat {
    /// `docker save` of Docker 25+: OCI layout + `manifest.json` + `repositories`.
    Docker,
    /// An OCI image layout only (`oci-layout`, `index.json`, `blobs/`).
    OciLayout,
}

/// One image to save and the names it is saved under (empty: saved by id, untagged).
#[derive(Debug, Clone)]
pub struct SaveImage {
    pub record: ImageRecord,
    pub names: Vec<Reference>,
}

/// Writes the archive of `images` to `out` as a tar stream and returns `out`.
pub fn save<W: Write>(
    store: &Store,
    images: &[SaveImage],
    format: SaveFormat,
    out: W,
) -> Result<W, ArchiveError> {
    let mut tar = tar::Builder::new(out);
    tar.mode(tar::HeaderMode::Deterministic);
    let mut written = BTreeSet::new();
    let mut index = Index {
        schema_version: 2,
        media_type: Some(media_type::OCI_INDEX.to_owned()),
        artifact_type: None,
        manifests: Vec::new(),
        subject: None,
        annotations: BTreeMap::new(),
    };
    let mut entries = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    add_dir(&mut tar, "blobs/")?;
    add_dir(&mut tar, "blobs/sha256/")?;
    for image in images {
        let record = &image.record;
        let found = image_manifest(store, &record.id, &record.target)?;
        // The target (an index keeps every platform that is present) and what it holds.
        write_tree(store, &mut tar, &record.target, &mut written, 0)?;
        let mut entry = ManifestEntry {
            config: blob_path(&record.id),
            repo_tags: None,
            layers: Vec::new(),
            layer_sources: None,
        };
        for layer in &found.manifest.layers {
            entry.layers.push(blob_path(&layer.digest));
        }
        let tags: Vec<&Reference> = image.names.iter().filter(|r| r.tag().is_some()).collect();
        if tags.is_empty() {
            index.manifests.push(record.target.clone());
        }
        for name in tags {
            let mut desc = record.target.clone();
            desc.annotations
                .insert(ANNOTATION_IMAGE_NAME.to_owned(), name.to_string());
            let tag = name.tag().unwrap_or_default().to_owned();
            desc.annotations
                .insert(ANNOTATION_REF_NAME.to_owned(), tag.clone());
            index.manifests.push(desc);
            entry
                .repo_tags
                .get_or_insert_with(Vec::new)
                .push(name.familiar_string());
            if let Some(top) = found.manifest.layers.last() {
                repositories
                    .entry(name.familiar_name())
                    .or_default()
                    .insert(tag, top.digest.hex().to_owned());
            }
        }
        entries.push(entry);
    }
    add_file(&mut tar, INDEX_JSON, &to_json(&index)?)?;
    if format == SaveFormat::Docker {
        add_file(&mut tar, MANIFEST_JSON, &to_json(&entries)?)?;
    }
    add_file(&mut tar, OCI_LAYOUT, OCI_LAYOUT_BODY.as_bytes())?;
    if format == SaveFormat::Docker && !repositories.is_empty() {
        add_file(&mut tar, REPOSITORIES, &to_json(&repositories)?)?;
    }
    tar.into_inner().map_err(ArchiveError::Write)
}

fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, ArchiveError> {
    serde_json::to_vec(value).map_err(|source| ArchiveError::Json {
        file: "archive metadata".to_owned(),
        source,
    })
}

/// Writes `desc`'s blob and, for manifests and indexes, what they reference. Children of
/// an index that are not in the store (platforms never pulled) are left out, as
/// containerd's export does; anything a present manifest needs must be there.
fn write_tree<W: Write>(
    store: &Store,
    tar: &mut tar::Builder<W>,
    desc: &Descriptor,
    written: &mut BTreeSet<Digest>,
    depth: usize,
) -> Result<(), ArchiveError> {
    if depth > super::layout::MAX_INDEX_DEPTH {
        return Err(ArchiveError::TooDeep { depth });
    }
    if written.contains(&desc.digest) {
        return Ok(());
    }
    let is_manifest =
        media_type::is_manifest(&desc.media_type) || media_type::is_index(&desc.media_type);
    if is_manifest {
        match super::layout::parse_manifest_blob(store, desc)? {
            Parsed::Index(index) => {
                for child in &index.manifests {
                    if store.contains(&child.digest) {
                        write_tree(store, tar, child, written, depth + 1)?;
                    }
                }
            }
            Parsed::Manifest(m) => {
                write_blob(store, tar, &m.config, written)?;
                for layer in &m.layers {
                    if media_type::is_foreign_layer(&layer.media_type)
                        && !store.contains(&layer.digest)
                    {
                        continue;
                    }
                    write_blob(store, tar, layer, written)?;
                }
            }
        }
    }
    write_blob(store, tar, desc, written)
}

fn write_blob<W: Write>(
    store: &Store,
    tar: &mut tar::Builder<W>,
    desc: &Descriptor,
    written: &mut BTreeSet<Digest>,
) -> Result<(), ArchiveError> {
    if !written.insert(desc.digest.clone()) {
        return Ok(());
    }
    let reader = store.reader(&desc.digest)?;
    let mut header = file_header(reader.size());
    tar.append_data(&mut header, blob_path(&desc.digest), reader)
        .map_err(ArchiveError::Write)
}

fn file_header(size: u64) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(size);
    header.set_mode(0o644);
    header.set_mtime(0);
    header
}

fn add_file<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &str,
    bytes: &[u8],
) -> Result<(), ArchiveError> {
    let mut header = file_header(bytes.len() as u64);
    tar.append_data(&mut header, path, bytes)
        .map_err(ArchiveError::Write)
}

fn add_dir<W: Write>(tar: &mut tar::Builder<W>, path: &str) -> Result<(), ArchiveError> {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Directory);
    header.set_size(0);
    header.set_mode(0o755);
    header.set_mtime(0);
    tar.append_data(&mut header, path, io::empty())
        .map_err(ArchiveError::Write)
}
