//! cosign's formats: the simple-signing payload an image signature signs, the tag its
//! signature manifest lives under (`sha256-<hex>.sig` in the image's repository), and that
//! manifest: an OCI image manifest whose layers are payloads, each annotated with its
//! signature (`dev.cosignproject.cosign/signature`).

use berth_oci::Digest;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::TrustError;

/// The annotation holding a layer's base64 signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The media type of a payload layer.
pub const PAYLOAD_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The `critical.type` of an image signature.
pub const SIGNATURE_TYPE: &str = "cosign container image signature";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    #[serde(rename = "docker-reference")]
    pub docker_reference: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageDigest {
    #[serde(rename = "docker-manifest-digest")]
    pub docker_manifest_digest: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Critical {
    pub identity: Identity,
    pub image: ImageDigest,
    #[serde(rename = "type")]
    pub kind: String,
}

/// The simple-signing payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    pub critical: Critical,
    #[serde(default)]
    pub optional: Option<serde_json::Value>,
}

impl Payload {
    /// The payload for `manifest` of `repository` (`registry/path`, no tag).
    pub fn new(repository: &str, manifest: &Digest) -> Payload {
        Payload {
            critical: Critical {
                identity: Identity {
                    docker_reference: repository.to_string(),
                },
                image: ImageDigest {
                    docker_manifest_digest: manifest.to_string(),
                },
                kind: SIGNATURE_TYPE.to_string(),
            },
            optional: None,
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn parse(bytes: &[u8]) -> Result<Payload, TrustError> {
        let payload: Payload = serde_json::from_slice(bytes)
            .map_err(|e| TrustError::Invalid(format!("signature payload: {e}")))?;
        if payload.critical.kind != SIGNATURE_TYPE {
            return Err(TrustError::Invalid(format!(
                "signature payload of type {:?}, not {SIGNATURE_TYPE:?}",
                payload.critical.kind
            )));
        }
        Ok(payload)
    }
}

/// The tag of the signature manifest of `manifest`: `sha256-<hex>.sig`.
pub fn signature_tag(manifest: &Digest) -> String {
    format!("{}-{}.sig", manifest.algorithm().name(), manifest.hex())
}

/// One signature layer of a signature manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureLayer {
    pub payload_digest: Digest,
    pub payload_size: u64,
    pub signature: String,
}

/// The layers of a signature manifest that carry a signature annotation.
pub fn signature_layers(manifest: &[u8]) -> Result<Vec<SignatureLayer>, TrustError> {
    let value: serde_json::Value = serde_json::from_slice(manifest)
        .map_err(|e| TrustError::Invalid(format!("signature manifest: {e}")))?;
    let mut layers = Vec::new();
    for layer in value["layers"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let Some(signature) = layer["annotations"][SIGNATURE_ANNOTATION].as_str() else {
            continue;
        };
        let digest = layer["digest"]
            .as_str()
            .and_then(|d| Digest::parse(d).ok())
            .ok_or_else(|| TrustError::Invalid("signature layer without a digest".to_string()))?;
        layers.push(SignatureLayer {
            payload_digest: digest,
            payload_size: layer["size"].as_u64().unwrap_or(0),
            signature: signature.to_string(),
        });
    }
    Ok(layers)
}

/// The config blob of a signature manifest (an empty image whose diff IDs are the payloads).
pub fn signature_config(layers: &[SignatureLayer]) -> Vec<u8> {
    let diff_ids: Vec<String> = layers
        .iter()
        .map(|l| l.payload_digest.to_string())
        .collect();
    serde_json::to_vec(&json!({
        "architecture": "",
        "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "config": {},
    }))
    .unwrap_or_default()
}

/// The signature manifest for `layers` with its config blob `config`.
pub fn signature_manifest(layers: &[SignatureLayer], config: &[u8]) -> Vec<u8> {
    let layers: Vec<serde_json::Value> = layers
        .iter()
        .map(|l| {
            json!({
                "mediaType": PAYLOAD_MEDIA_TYPE,
                "size": l.payload_size,
                "digest": l.payload_digest.to_string(),
                "annotations": {SIGNATURE_ANNOTATION: l.signature},
            })
        })
        .collect();
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": OCI_CONFIG,
            "size": config.len(),
            "digest": Digest::sha256_of(config).to_string(),
        },
        "layers": layers,
    }))
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest() -> Digest {
        Digest::sha256_of(b"manifest")
    }

    #[test]
    fn payload_has_cosigns_shape() {
        let payload = Payload::new("127.0.0.1:5000/app", &digest());
        let value: serde_json::Value = serde_json::from_slice(&payload.to_bytes()).expect("json");
        assert_eq!(
            value["critical"]["identity"]["docker-reference"],
            "127.0.0.1:5000/app"
        );
        assert_eq!(
            value["critical"]["image"]["docker-manifest-digest"],
            digest().to_string()
        );
        assert_eq!(value["critical"]["type"], SIGNATURE_TYPE);
        assert!(value["optional"].is_null());
        assert_eq!(Payload::parse(&payload.to_bytes()).expect("parse"), payload);
    }

    #[test]
    fn payload_of_another_type_is_refused() {
        let text = br#"{"critical":{"identity":{"docker-reference":"r"},"image":{"docker-manifest-digest":"sha256:00"},"type":"atomic container signature"},"optional":null}"#;
        assert!(Payload::parse(text).is_err());
    }

    #[test]
    fn signature_tag_is_algorithm_dash_hex_dot_sig() {
        let tag = signature_tag(&digest());
        assert_eq!(tag, format!("sha256-{}.sig", digest().hex()));
    }

    #[test]
    fn manifest_layers_round_trip_with_their_signatures() {
        let layer = SignatureLayer {
            payload_digest: Digest::sha256_of(b"payload"),
            payload_size: 7,
            signature: "c2ln".to_string(),
        };
        let config = signature_config(std::slice::from_ref(&layer));
        let manifest = signature_manifest(std::slice::from_ref(&layer), &config);
        assert_eq!(signature_layers(&manifest).expect("layers"), vec![layer]);
        let value: serde_json::Value = serde_json::from_slice(&manifest).expect("json");
        assert_eq!(value["layers"][0]["mediaType"], PAYLOAD_MEDIA_TYPE);
    }
}
