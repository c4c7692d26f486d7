//! `GET /containers/json` items (`docker ps`): Go's `container.Summary`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::inspect::MountPoint;
use crate::json::{is_zero, nullable};
use crate::network::EndpointSettings;

/// A port of `docker ps`: `{"IP":"0.0.0.0","PrivatePort":80,"PublicPort":8080,"Type":"tcp"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Port {
    #[serde(
        rename = "IP",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub ip: String,
    #[serde(default, deserialize_with = "nullable")]
    pub private_port: u16,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub public_port: u16,
    #[serde(default, deserialize_with = "nullable")]
    pub r#type: String,
}

/// `HostConfig` of a list item.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SummaryHostConfig {
    #[serde(default, deserialize_with = "nullable")]
    pub network_mode: String,
    #[serde(default, skip_serializing_if = "crate::json::is_empty_map")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// `NetworkSettings` of a list item.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SummaryNetworkSettings {
    #[serde(default)]
    pub networks: Option<BTreeMap<String, EndpointSettings>>,
}

/// One `docker ps` row.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerSummary {
    #[serde(rename = "Id", default, deserialize_with = "nullable")]
    pub id: String,
    /// With the leading `/`.
    #[serde(default)]
    pub names: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub image: String,
    #[serde(rename = "ImageID", default, deserialize_with = "nullable")]
    pub image_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_manifest_descriptor: Option<serde_json::Value>,
    #[serde(default, deserialize_with = "nullable")]
    pub command: String,
    /// Unix seconds.
    #[serde(default, deserialize_with = "nullable")]
    pub created: i64,
    #[serde(default)]
    pub ports: Option<Vec<Port>>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub size_rw: i64,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub size_root_fs: i64,
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub state: String,
    /// `Up 3 minutes`, `Exited (0) 2 seconds ago`, ...
    #[serde(default, deserialize_with = "nullable")]
    pub status: String,
    #[serde(default, deserialize_with = "nullable")]
    pub host_config: SummaryHostConfig,
    #[serde(default)]
    pub network_settings: Option<SummaryNetworkSettings>,
    #[serde(default)]
    pub mounts: Option<Vec<MountPoint>>,
}
