//! Volumes on the wire: inspect/list items, list response, create body, prune response.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::json::{is_empty_map, nullable};

/// `UsageData` (only from `/system/df`): `-1` when not computed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VolumeUsageData {
    #[serde(default, deserialize_with = "nullable")]
    pub ref_count: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub size: i64,
}

/// A volume (Go's `volume.Volume`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Volume {
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub created_at: String,
    #[serde(default, deserialize_with = "nullable")]
    pub driver: String,
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub mountpoint: String,
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(default)]
    pub options: Option<BTreeMap<String, String>>,
    /// `local` or `global`.
    #[serde(default, deserialize_with = "nullable")]
    pub scope: String,
    #[serde(default, skip_serializing_if = "is_empty_map")]
    pub status: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_data: Option<VolumeUsageData>,
}

/// `GET /volumes` response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VolumeListResponse {
    #[serde(default)]
    pub volumes: Option<Vec<Volume>>,
    #[serde(default)]
    pub warnings: Option<Vec<String>>,
}

/// `POST /volumes/create` body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VolumeCreateRequest {
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub driver: String,
    #[serde(default)]
    pub driver_opts: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
}

/// `POST /volumes/prune` response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VolumesPruneResponse {
    #[serde(default)]
    pub volumes_deleted: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub space_reclaimed: u64,
}
