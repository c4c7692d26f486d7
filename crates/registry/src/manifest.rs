//! Just enough reading of manifests for a registry: media type, the blobs and manifests a
//! manifest references, and its subject, artifact type and annotations (for referrers).
//! The bytes themselves are never re-serialised.

use berth_oci::Digest;
use serde_json::Value;

use crate::error::{ApiError, ErrorCode};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_SCHEMA1: [&str; 2] = [
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
];
const DOCKER_FOREIGN_LAYER: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
const OCI_NONDISTRIBUTABLE: &str = "application/vnd.oci.image.layer.nondistributable.";

/// Every manifest media type a client should accept on pull, preferred first.
pub const ACCEPT: [&str; 4] = [OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestKind {
    Image,
    Index,
    /// A media type the registry stores without looking inside.
    Other,
}

/// What a manifest references and says about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub kind: ManifestKind,
    pub media_type: String,
    /// Config and layers that must be in the repository (not foreign layers).
    pub blobs: Vec<Digest>,
    /// Layers with URLs or non-distributable types: not required to be pushed.
    pub foreign: Vec<Digest>,
    /// Manifests an index lists.
    pub manifests: Vec<Digest>,
    /// Platforms of an index's manifests, in order (`None` when a descriptor has none).
    pub platforms: Vec<Option<Value>>,
    pub subject: Option<Digest>,
    pub artifact_type: Option<String>,
    pub annotations: Option<serde_json::Map<String, Value>>,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::ManifestInvalid, message)
}

fn descriptor_digest(descriptor: &Value, what: &str) -> Result<Digest, ApiError> {
    let text = descriptor
        .get("digest")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("{what} descriptor has no digest")))?;
    Digest::parse(text).map_err(|e| invalid(format!("{what} descriptor digest {text:?}: {e}")))
}

/// Parses a manifest; `content_type` is the request's Content-Type (without parameters).
pub fn parse(bytes: &[u8], content_type: Option<&str>) -> Result<Manifest, ApiError> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| invalid(format!("manifest is not valid JSON: {e}")))?;
    let object = value
        .as_object()
        .ok_or_else(|| invalid("manifest is not a JSON object"))?;
    let body_type = object.get("mediaType").and_then(Value::as_str);
    if let (Some(body), Some(header)) = (body_type, content_type) {
        if body != header {
            return Err(invalid(format!(
                "manifest mediaType {body:?} does not match Content-Type {header:?}"
            )));
        }
    }
    let media_type = content_type
        .or(body_type)
        .unwrap_or(if object.contains_key("manifests") {
            OCI_INDEX
        } else {
            OCI_MANIFEST
        })
        .to_owned();
    if DOCKER_SCHEMA1.contains(&media_type.as_str()) {
        return Err(invalid(
            "schema 1 manifests are not supported (push schema 2 or OCI)",
        ));
    }
    let kind = match media_type.as_str() {
        OCI_MANIFEST | DOCKER_MANIFEST => ManifestKind::Image,
        OCI_INDEX | DOCKER_LIST => ManifestKind::Index,
        _ => ManifestKind::Other,
    };
    let mut parsed = Manifest {
        kind,
        media_type,
        blobs: Vec::new(),
        foreign: Vec::new(),
        manifests: Vec::new(),
        platforms: Vec::new(),
        subject: None,
        artifact_type: object
            .get("artifactType")
            .and_then(Value::as_str)
            .map(str::to_owned),
        annotations: object
            .get("annotations")
            .and_then(Value::as_object)
            .cloned(),
    };
    if let Some(subject) = object.get("subject") {
        parsed.subject = Some(descriptor_digest(subject, "subject")?);
    }
    match kind {
        ManifestKind::Image => read_image(object, &mut parsed)?,
        ManifestKind::Index => read_index(object, &mut parsed)?,
        ManifestKind::Other => {}
    }
    Ok(parsed)
}

fn read_image(
    object: &serde_json::Map<String, Value>,
    parsed: &mut Manifest,
) -> Result<(), ApiError> {
    let config = object
        .get("config")
        .ok_or_else(|| invalid("image manifest has no config"))?;
    parsed.blobs.push(descriptor_digest(config, "config")?);
    if parsed.artifact_type.is_none() {
        // The referrers API reports the config's media type when artifactType is absent.
        parsed.artifact_type = config
            .get("mediaType")
            .and_then(Value::as_str)
            .map(str::to_owned);
    }
    let layers = match object.get("layers") {
        Some(Value::Array(layers)) => layers.as_slice(),
        Some(Value::Null) | None => &[],
        Some(_) => return Err(invalid("image manifest layers is not an array")),
    };
    for layer in layers {
        let digest = descriptor_digest(layer, "layer")?;
        let media_type = layer.get("mediaType").and_then(Value::as_str).unwrap_or("");
        let has_urls = layer
            .get("urls")
            .and_then(Value::as_array)
            .is_some_and(|u| !u.is_empty());
        if has_urls
            || media_type == DOCKER_FOREIGN_LAYER
            || media_type.starts_with(OCI_NONDISTRIBUTABLE)
        {
            parsed.foreign.push(digest);
        } else {
            parsed.blobs.push(digest);
        }
    }
    Ok(())
}

fn read_index(
    object: &serde_json::Map<String, Value>,
    parsed: &mut Manifest,
) -> Result<(), ApiError> {
    let manifests = match object.get("manifests") {
        Some(Value::Array(m)) => m.as_slice(),
        Some(Value::Null) | None => &[],
        Some(_) => return Err(invalid("index manifests is not an array")),
    };
    for descriptor in manifests {
        parsed
            .manifests
            .push(descriptor_digest(descriptor, "manifest")?);
        parsed.platforms.push(descriptor.get("platform").cloned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> String {
        Digest::sha256_of(s.as_bytes()).to_string()
    }

    #[test]
    fn image_manifest_lists_config_and_layers_but_not_foreign_layers() {
        let body = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.example+json", "digest": d("c"), "size": 1},
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d("l"), "size": 1},
                {"mediaType": DOCKER_FOREIGN_LAYER, "digest": d("f"), "size": 1, "urls": ["http://x"]},
            ],
            "subject": {"mediaType": OCI_MANIFEST, "digest": d("s"), "size": 1},
        });
        let m = parse(body.to_string().as_bytes(), Some(OCI_MANIFEST)).expect("parse");
        assert_eq!(m.kind, ManifestKind::Image);
        assert_eq!(m.blobs.len(), 2);
        assert_eq!(m.foreign.len(), 1);
        assert_eq!(m.subject.map(|s| s.to_string()), Some(d("s")));
        assert_eq!(
            m.artifact_type.as_deref(),
            Some("application/vnd.example+json")
        );
    }

    #[test]
    fn mismatched_media_type_and_schema1_are_invalid() {
        let body = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []});
        assert!(parse(body.to_string().as_bytes(), Some(OCI_MANIFEST)).is_err());
        assert!(parse(b"{}", Some(DOCKER_SCHEMA1[0])).is_err());
        assert!(parse(b"not json", Some(OCI_MANIFEST)).is_err());
        assert!(
            parse(b"{}", Some(OCI_MANIFEST)).is_err(),
            "image manifest without config"
        );
    }
}
