//! Shapes shared by save and load: Docker's `manifest.json` entries, `oci-layout`, blob
//! paths, and reading an image's manifest, config and layer DiffIDs from the store.

use std::collections::BTreeMap;
use std::io::{self, Read};

use berth_content::Store;
use berth_oci::{media_type, Digest, Platform, PlatformMatcher};
use berth_snapshot::compression::{decompress, Compression};
use serde::{Deserialize, Serialize};

use super::ArchiveError;
use crate::blob::read_bounded;
use crate::config::{ImageConfig, MAX_CONFIG_SIZE};
use crate::manifest::{self, Descriptor, Manifest, Parsed, MAX_MANIFEST_SIZE};

pub const MANIFEST_JSON: &str = "manifest.json";
pub const INDEX_JSON: &str = "index.json";
pub const OCI_LAYOUT: &str = "oci-layout";
pub const REPOSITORIES: &str = "repositories";
pub const OCI_LAYOUT_BODY: &str = r#"{"imageLayoutVersion":"1.0.0"}"#;
/// containerd's annotation with the full image name, which Docker 25+ writes too.
pub const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";
/// OCI's ref-name annotation (the tag, in Docker's and containerd's layouts).
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Deepest index-in-index nesting followed.
pub const MAX_INDEX_DEPTH: usize = 4;

/// One entry of Docker's `manifest.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    #[serde(rename = "Config")]
    pub config: String,
    #[serde(rename = "RepoTags", default)]
    pub repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    pub layers: Vec<String>,
    #[serde(
        rename = "LayerSources",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub layer_sources: Option<BTreeMap<Digest, Descriptor>>,
}

/// `blobs/<alg>/<hex>`.
pub fn blob_path(digest: &Digest) -> String {
    format!("blobs/{}/{}", digest.algorithm(), digest.hex())
}

/// The digest a `blobs/<alg>/<hex>` path names.
pub fn digest_of_blob_path(path: &str) -> Option<Digest> {
    let rest = path.strip_prefix("blobs/")?;
    let (alg, hex) = rest.split_once('/')?;
    Digest::parse(&format!("{alg}:{hex}")).ok()
}

/// An image's platform manifest as stored: the target itself, or the entry of a target
/// index whose config is the image id.
pub struct ImageManifest {
    pub manifest: Manifest,
}

/// Finds the manifest of image `id` under `target` (a manifest or an index).
pub fn image_manifest(
    store: &Store,
    id: &Digest,
    target: &Descriptor,
) -> Result<ImageManifest, ArchiveError> {
    let mut pending = vec![(target.clone(), 0usize)];
    while let Some((desc, depth)) = pending.pop() {
        if depth > MAX_INDEX_DEPTH {
            return Err(ArchiveError::TooDeep { depth });
        }
        if !store.contains(&desc.digest) {
            continue;
        }
        match parse_manifest_blob(store, &desc)? {
            Parsed::Manifest(m) if &m.config.digest == id => {
                return Ok(ImageManifest { manifest: *m })
            }
            Parsed::Manifest(_) => {}
            Parsed::Index(i) => {
                pending.extend(i.manifests.into_iter().rev().map(|d| (d, depth + 1)))
            }
        }
    }
    Err(ArchiveError::MissingBlob {
        image: id.clone(),
        digest: target.digest.clone(),
    })
}

/// Reads and parses a manifest or index blob, checking the descriptor's size.
pub fn parse_manifest_blob(store: &Store, desc: &Descriptor) -> Result<Parsed, ArchiveError> {
    let bytes = read_bounded(store, &desc.digest, MAX_MANIFEST_SIZE)?;
    check_size(desc, bytes.len() as u64)?;
    manifest::parse(&bytes, Some(&desc.media_type)).map_err(|source| ArchiveError::Manifest {
        digest: desc.digest.clone(),
        source,
    })
}

/// Reads and parses a config blob.
pub fn read_config(
    store: &Store,
    digest: &Digest,
    path: &str,
) -> Result<(Vec<u8>, ImageConfig), ArchiveError> {
    let bytes = read_bounded(store, digest, MAX_CONFIG_SIZE)?;
    let config = ImageConfig::parse(&bytes).map_err(|source| ArchiveError::Config {
        path: path.to_owned(),
        source,
    })?;
    Ok((bytes, config))
}

pub fn check_size(desc: &Descriptor, actual: u64) -> Result<(), ArchiveError> {
    if desc.size != actual {
        return Err(ArchiveError::SizeMismatch {
            digest: desc.digest.clone(),
            expected: desc.size,
            actual,
        });
    }
    Ok(())
}

/// The DiffID (sha256 of the uncompressed tar) and compression of a stored layer.
/// An uncompressed blob's DiffID is its own sha256 digest, which the store verified when
/// it committed the blob: only its first bytes are read then (`docker load` of a Docker
/// archive would otherwise hash every layer a second time).
pub fn layer_diff_id(
    store: &Store,
    digest: &Digest,
) -> Result<(Digest, Compression), ArchiveError> {
    let reader = store.reader(digest)?;
    let (compression, mut plain) = decompress(reader).map_err(ArchiveError::Read)?;
    if compression == Compression::None && digest.algorithm() == berth_oci::Algorithm::Sha256 {
        return Ok((digest.clone(), compression));
    }
    let mut digester = berth_oci::Digester::new(berth_oci::Algorithm::Sha256);
    io::copy(&mut plain as &mut dyn Read, &mut digester).map_err(ArchiveError::Read)?;
    Ok((digester.finish(), compression))
}

/// The OCI layer media type for a compression.
pub fn oci_layer_type(compression: Compression) -> &'static str {
    match compression {
        Compression::None => media_type::OCI_LAYER,
        Compression::Gzip => media_type::OCI_LAYER_GZIP,
        Compression::Zstd => media_type::OCI_LAYER_ZSTD,
    }
}

/// The manifest to use from an index for this host (Docker loads the host's platform).
pub fn select_host(index: &manifest::Index) -> Option<&Descriptor> {
    index.select(&PlatformMatcher::only(&Platform::host()))
}
