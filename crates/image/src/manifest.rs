//! Docker schema 2 and OCI image manifests and indexes (manifest lists): strict parsing of
//! untrusted bytes, descriptors, and platform selection in an index.
//!
//! These are read-only views: the bytes that were pulled or loaded are what is stored and
//! served, so nothing here is ever serialised back in place of them. Serialisation exists
//! only for manifests berth itself creates (import, load of legacy archives, save).

use std::collections::BTreeMap;

use berth_oci::media_type;
use berth_oci::{Digest, Platform, PlatformMatcher};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Largest manifest or index accepted (containerd's and distribution's limit).
pub const MAX_MANIFEST_SIZE: usize = 4 * 1024 * 1024;
/// Most descriptors (layers or index entries) accepted in one manifest or index.
pub const MAX_DESCRIPTORS: usize = 10_000;

/// Why manifest or index bytes were refused.
#[derive(Debug, Error)]
pub enum ManifestError {
    #[error("manifest is {size} bytes, more than the {MAX_MANIFEST_SIZE} bytes allowed")]
    TooLarge { size: usize },
    #[error("manifest is not valid json")]
    Json(#[source] serde_json::Error),
    #[error("unsupported manifest schemaVersion {found} (only 2 is supported)")]
    SchemaVersion { found: i64 },
    #[error(
        "docker schema 1 manifests are not supported (push the image again with a current docker)"
    )]
    SchemaOne,
    #[error("manifest has both \"manifests\" and \"layers\": it is ambiguous")]
    Ambiguous,
    #[error(
        "manifest has neither \"config\" nor \"manifests\": it is not an image manifest or index"
    )]
    UnknownShape,
    #[error("manifest declares media type {declared:?} but was served as {expected:?}")]
    MediaTypeMismatch { declared: String, expected: String },
    #[error("unsupported manifest media type {media_type:?}")]
    UnsupportedMediaType { media_type: String },
    #[error("manifest has {count} descriptors, more than the {MAX_DESCRIPTORS} allowed")]
    TooManyDescriptors { count: usize },
    #[error("descriptor {digest} has an empty media type")]
    EmptyMediaType { digest: Digest },
    #[error("config descriptor has media type {media_type:?}, not an image config")]
    NotAnImageConfig { media_type: String },
    #[error("layer {digest} has media type {media_type:?}, not an image layer")]
    NotALayer { digest: Digest, media_type: String },
    #[error("descriptor {digest} has size {size}, larger than any blob berth accepts")]
    ImplausibleSize { digest: Digest, size: u64 },
}

/// An OCI content descriptor (also Docker schema 2's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(
        rename = "artifactType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub artifact_type: Option<String>,
}

impl Descriptor {
    /// A descriptor with no urls, annotations or platform.
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.to_owned(),
            digest,
            size,
            urls: Vec::new(),
            annotations: BTreeMap::new(),
            platform: None,
            artifact_type: None,
        }
    }

    fn check(&self) -> Result<(), ManifestError> {
        if self.media_type.is_empty() {
            return Err(ManifestError::EmptyMediaType {
                digest: self.digest.clone(),
            });
        }
        // JSON numbers above 2^53 lose precision in most clients and no blob is that big;
        // refusing them keeps size arithmetic (sums, offsets) far from overflow.
        if self.size > (1 << 53) {
            return Err(ManifestError::ImplausibleSize {
                digest: self.digest.clone(),
                size: self.size,
            });
        }
        Ok(())
    }
}

/// An image manifest (OCI or Docker schema 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    #[serde(rename = "schemaVersion")]
    pub schema_version: i64,
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(
        rename = "artifactType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An OCI image index or Docker manifest list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    #[serde(rename = "schemaVersion")]
    pub schema_version: i64,
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(
        rename = "artifactType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub artifact_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// What a manifest blob turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Manifest(Box<Manifest>),
    Index(Box<Index>),
}

/// Only the keys that decide the shape; everything else is read by the typed parse.
#[derive(Deserialize)]
struct Shape {
    #[serde(rename = "schemaVersion", default)]
    schema_version: Option<i64>,
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    layers: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    config: Option<serde::de::IgnoredAny>,
    #[serde(default, rename = "fsLayers")]
    fs_layers: Option<serde::de::IgnoredAny>,
}

/// Parses manifest or index bytes. `served_as` is the media type the bytes came with (a
/// registry's Content-Type or the referring descriptor's mediaType); a body declaring a
/// different one is refused, as the OCI image spec asks to avoid content confusion.
pub fn parse(bytes: &[u8], served_as: Option<&str>) -> Result<Parsed, ManifestError> {
    if bytes.len() > MAX_MANIFEST_SIZE {
        return Err(ManifestError::TooLarge { size: bytes.len() });
    }
    let shape: Shape = serde_json::from_slice(bytes).map_err(ManifestError::Json)?;
    let schema_version = shape.schema_version.unwrap_or(0);
    if schema_version == 1 || shape.fs_layers.is_some() {
        return Err(ManifestError::SchemaOne);
    }
    if schema_version != 2 {
        return Err(ManifestError::SchemaVersion {
            found: schema_version,
        });
    }
    if let (Some(declared), Some(expected)) = (&shape.media_type, served_as) {
        // A generic Content-Type says nothing; only a specific one must agree.
        let generic = matches!(
            expected,
            "" | "application/json" | "application/octet-stream"
        );
        if !generic && declared != expected {
            return Err(ManifestError::MediaTypeMismatch {
                declared: declared.clone(),
                expected: expected.to_owned(),
            });
        }
    }
    let media_type = shape
        .media_type
        .as_deref()
        .or(served_as)
        .filter(|t| !matches!(*t, "" | "application/json" | "application/octet-stream"));
    let is_index = match (
        shape.manifests.is_some(),
        shape.layers.is_some() || shape.config.is_some(),
    ) {
        (true, true) => return Err(ManifestError::Ambiguous),
        (true, false) => true,
        (false, true) => false,
        (false, false) => return Err(ManifestError::UnknownShape),
    };
    if let Some(t) = media_type {
        let known = if is_index {
            media_type::is_index(t)
        } else {
            media_type::is_manifest(t)
        };
        if !known {
            return Err(ManifestError::UnsupportedMediaType {
                media_type: t.to_owned(),
            });
        }
    }
    if is_index {
        let index: Index = serde_json::from_slice(bytes).map_err(ManifestError::Json)?;
        index.check()?;
        Ok(Parsed::Index(Box::new(index)))
    } else {
        let manifest: Manifest = serde_json::from_slice(bytes).map_err(ManifestError::Json)?;
        manifest.check()?;
        Ok(Parsed::Manifest(Box::new(manifest)))
    }
}

impl Manifest {
    /// Parses bytes that must be an image manifest (not an index).
    pub fn parse(bytes: &[u8], served_as: Option<&str>) -> Result<Manifest, ManifestError> {
        match parse(bytes, served_as)? {
            Parsed::Manifest(m) => Ok(*m),
            Parsed::Index(_) => Err(ManifestError::UnsupportedMediaType {
                media_type: served_as.unwrap_or(media_type::OCI_INDEX).to_owned(),
            }),
        }
    }

    fn check(&self) -> Result<(), ManifestError> {
        if self.layers.len() > MAX_DESCRIPTORS {
            return Err(ManifestError::TooManyDescriptors {
                count: self.layers.len(),
            });
        }
        self.config.check()?;
        self.layers.iter().try_for_each(Descriptor::check)?;
        if let Some(subject) = &self.subject {
            subject.check()?;
        }
        Ok(())
    }

    /// Checks that this manifest describes a runnable image (an image config and image
    /// layers), not an artifact such as an attestation or a Helm chart.
    pub fn check_image(&self) -> Result<(), ManifestError> {
        if !media_type::is_config(&self.config.media_type) {
            return Err(ManifestError::NotAnImageConfig {
                media_type: self.config.media_type.clone(),
            });
        }
        for layer in &self.layers {
            if !media_type::is_layer(&layer.media_type) {
                return Err(ManifestError::NotALayer {
                    digest: layer.digest.clone(),
                    media_type: layer.media_type.clone(),
                });
            }
        }
        Ok(())
    }
}

impl Index {
    /// Parses bytes that must be an index or manifest list.
    pub fn parse(bytes: &[u8], served_as: Option<&str>) -> Result<Index, ManifestError> {
        match parse(bytes, served_as)? {
            Parsed::Index(i) => Ok(*i),
            Parsed::Manifest(_) => Err(ManifestError::UnsupportedMediaType {
                media_type: served_as.unwrap_or(media_type::OCI_MANIFEST).to_owned(),
            }),
        }
    }

    fn check(&self) -> Result<(), ManifestError> {
        if self.manifests.len() > MAX_DESCRIPTORS {
            return Err(ManifestError::TooManyDescriptors {
                count: self.manifests.len(),
            });
        }
        self.manifests.iter().try_for_each(Descriptor::check)
    }

    /// The entry to pull for `matcher`, as containerd's `images.Manifest` picks it: image
    /// manifests (and nested indexes) whose platform matches, best match first, ties to the
    /// earliest; entries without a platform are used only when no entry has a match.
    /// Attestation manifests (BuildKit's `unknown/unknown`) never match a real platform.
    pub fn select(&self, matcher: &PlatformMatcher) -> Option<&Descriptor> {
        let candidates: Vec<&Descriptor> = self
            .manifests
            .iter()
            .filter(|d| {
                media_type::is_manifest(&d.media_type) || media_type::is_index(&d.media_type)
            })
            .collect();
        let with_platform: Vec<(usize, &Platform)> = candidates
            .iter()
            .enumerate()
            .filter_map(|(i, d)| d.platform.as_ref().map(|p| (i, p)))
            .collect();
        if let Some(best) = matcher.best(with_platform.iter().map(|(_, p)| *p)) {
            return Some(candidates[with_platform[best].0]);
        }
        candidates.into_iter().find(|d| d.platform.is_none())
    }
}

#[cfg(test)]
#[path = "manifest_tests.rs"]
mod tests;
