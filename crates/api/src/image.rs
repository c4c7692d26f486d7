//! Image wire models: list summary, inspect, history, delete items and prune.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::container::inspect::GraphDriver;
use crate::container::HealthConfig;
use crate::json::{is_empty_map, is_empty_vec, is_false, is_zero, nullable, Empty, StrSlice};
use crate::version::ApiVersion;

/// `GET /images/json` item (Go's `image.Summary`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageSummary {
    /// `-1` when not computed (Docker only counts with `?shared-size`/df).
    #[serde(rename = "Containers", default, deserialize_with = "nullable")]
    pub containers: i64,
    /// Unix seconds.
    #[serde(rename = "Created", default, deserialize_with = "nullable")]
    pub created: i64,
    #[serde(rename = "Id", default, deserialize_with = "nullable")]
    pub id: String,
    #[serde(rename = "Labels", default)]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(rename = "ParentId", default, deserialize_with = "nullable")]
    pub parent_id: String,
    /// API 1.48+, containerd store only.
    #[serde(
        rename = "Descriptor",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub descriptor: Option<serde_json::Value>,
    #[serde(rename = "RepoDigests", default)]
    pub repo_digests: Option<Vec<String>>,
    #[serde(rename = "RepoTags", default)]
    pub repo_tags: Option<Vec<String>>,
    #[serde(rename = "SharedSize", default, deserialize_with = "nullable")]
    pub shared_size: i64,
    #[serde(rename = "Size", default, deserialize_with = "nullable")]
    pub size: i64,
    /// Removed in API 1.44; written only for older clients.
    #[serde(
        rename = "VirtualSize",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub virtual_size: i64,
}

/// `VirtualSize` was removed in API 1.44: older clients still get it, equal to `Size`
/// (Docker's image routes do the same).
fn virtual_size_for(version: ApiVersion, size: i64) -> i64 {
    if version < ApiVersion::new(1, 44) {
        size
    } else {
        0
    }
}

impl ImageSummary {
    /// Shapes this list item for the negotiated API version.
    pub fn for_api_version(mut self, version: ApiVersion) -> Self {
        self.virtual_size = virtual_size_for(version, self.size);
        self
    }
}

impl ImageInspect {
    /// Shapes this inspect body for the negotiated API version.
    pub fn for_api_version(mut self, version: ApiVersion) -> Self {
        self.virtual_size = virtual_size_for(version, self.size);
        self
    }
}

/// The image's `Config` in inspect: Docker 28's `DockerOCIImageConfig` (OCI image config
/// fields plus Healthcheck, OnBuild, Shell), every field `omitempty`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageConfig {
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub user: String,
    #[serde(default, skip_serializing_if = "is_empty_map")]
    pub exposed_ports: Option<BTreeMap<String, Empty>>,
    #[serde(default, skip_serializing_if = "is_empty_vec")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<StrSlice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<StrSlice>,
    #[serde(default, skip_serializing_if = "is_empty_map")]
    pub volumes: Option<BTreeMap<String, Empty>>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub working_dir: String,
    #[serde(default, skip_serializing_if = "is_empty_map")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub stop_signal: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_false"
    )]
    pub args_escaped: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthConfig>,
    #[serde(default, skip_serializing_if = "is_empty_vec")]
    pub on_build: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<StrSlice>,
}

/// `RootFS` of inspect.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RootFs {
    #[serde(default, deserialize_with = "nullable")]
    pub r#type: String,
    #[serde(default, skip_serializing_if = "is_empty_vec")]
    pub layers: Option<Vec<String>>,
}

/// `Metadata` of inspect: `LastTagTime` is Go's zero time for never-tagged images.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageMetadata {
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub last_tag_time: String,
}

/// `GET /images/{name}/json` (Go's `image.InspectResponse`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageInspect {
    #[serde(rename = "Id", default, deserialize_with = "nullable")]
    pub id: String,
    #[serde(default)]
    pub repo_tags: Option<Vec<String>>,
    #[serde(default)]
    pub repo_digests: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub parent: String,
    #[serde(default, deserialize_with = "nullable")]
    pub comment: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub created: String,
    #[serde(default, deserialize_with = "nullable")]
    pub docker_version: String,
    #[serde(default, deserialize_with = "nullable")]
    pub author: String,
    #[serde(default)]
    pub config: Option<ImageConfig>,
    #[serde(default, deserialize_with = "nullable")]
    pub architecture: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub variant: String,
    #[serde(default, deserialize_with = "nullable")]
    pub os: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub os_version: String,
    #[serde(default, deserialize_with = "nullable")]
    pub size: i64,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub virtual_size: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub graph_driver: GraphDriver,
    #[serde(rename = "RootFS", default, deserialize_with = "nullable")]
    pub root_fs: RootFs,
    #[serde(default, deserialize_with = "nullable")]
    pub metadata: ImageMetadata,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub descriptor: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifests: Option<serde_json::Value>,
}

/// `GET /images/{name}/history` item.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HistoryItem {
    /// Image ID, or `<missing>` for layers without an image of their own.
    #[serde(rename = "Id", default, deserialize_with = "nullable")]
    pub id: String,
    /// Unix seconds.
    #[serde(default, deserialize_with = "nullable")]
    pub created: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub created_by: String,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub size: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub comment: String,
}

/// `DELETE /images/{name}` item: either `{"Untagged": ref}` or `{"Deleted": id}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageDeleteResponseItem {
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub untagged: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub deleted: String,
}

impl ImageDeleteResponseItem {
    pub fn untagged(reference: impl Into<String>) -> Self {
        ImageDeleteResponseItem {
            untagged: reference.into(),
            ..Self::default()
        }
    }

    pub fn deleted(id: impl Into<String>) -> Self {
        ImageDeleteResponseItem {
            deleted: id.into(),
            ..Self::default()
        }
    }
}

/// `POST /images/prune` response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImagesPruneResponse {
    #[serde(default)]
    pub images_deleted: Option<Vec<ImageDeleteResponseItem>>,
    #[serde(default, deserialize_with = "nullable")]
    pub space_reclaimed: u64,
}

/// An OCI platform as `/distribution/{name}/json` lists it (lowercase names).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DistributionPlatform {
    #[serde(default, deserialize_with = "nullable")]
    pub architecture: String,
    #[serde(default, deserialize_with = "nullable")]
    pub os: String,
    #[serde(
        rename = "os.version",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub os_version: String,
    #[serde(rename = "os.features", default, skip_serializing_if = "is_empty_vec")]
    pub os_features: Option<Vec<String>>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub variant: String,
}

/// `GET /distribution/{name}/json`: the registry's descriptor of a reference (an OCI
/// descriptor, kept as JSON) and the platforms it offers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DistributionInspect {
    #[serde(rename = "Descriptor", default)]
    pub descriptor: serde_json::Value,
    #[serde(rename = "Platforms", default)]
    pub platforms: Option<Vec<DistributionPlatform>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delete_items_carry_one_key() {
        let items = vec![
            ImageDeleteResponseItem::untagged("busybox:latest"),
            ImageDeleteResponseItem::deleted("sha256:abc"),
        ];
        assert_eq!(
            serde_json::to_string(&items).expect("encode"),
            r#"[{"Untagged":"busybox:latest"},{"Deleted":"sha256:abc"}]"#
        );
    }

    #[test]
    fn distribution_inspect_uses_oci_platform_names() {
        let body = r#"{"Descriptor":{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"sha256:f853","size":9014},"Platforms":[{"architecture":"amd64","os":"linux"},{"architecture":"arm","os":"linux","variant":"v7"}]}"#;
        let inspect: DistributionInspect = serde_json::from_str(body).expect("decode");
        assert_eq!(
            inspect.platforms.as_ref().expect("platforms")[1].variant,
            "v7"
        );
        let again: serde_json::Value = serde_json::to_value(&inspect).expect("encode");
        assert_eq!(
            again,
            serde_json::from_str::<serde_json::Value>(body).expect("json")
        );
    }

    #[test]
    fn virtual_size_is_written_only_below_api_1_44() {
        let summary = ImageSummary {
            size: 42,
            ..ImageSummary::default()
        };
        let old = serde_json::to_value(summary.clone().for_api_version(ApiVersion::new(1, 43)))
            .expect("encode");
        assert_eq!(old["VirtualSize"], 42);
        let new =
            serde_json::to_value(summary.for_api_version(ApiVersion::new(1, 44))).expect("encode");
        assert!(new.get("VirtualSize").is_none());
        let inspect = ImageInspect {
            size: 7,
            ..ImageInspect::default()
        }
        .for_api_version(ApiVersion::new(1, 41));
        assert_eq!(inspect.virtual_size, 7);
    }

    #[test]
    fn image_config_omits_everything_empty() {
        let config = ImageConfig {
            cmd: Some(StrSlice(vec!["sh".into()])),
            ..ImageConfig::default()
        };
        assert_eq!(
            serde_json::to_string(&config).expect("encode"),
            r#"{"Cmd":["sh"]}"#
        );
    }
}
