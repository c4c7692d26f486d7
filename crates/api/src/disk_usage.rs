//! `GET /system/df` (Go's `types.DiskUsage`) and its build cache records.

use serde::{Deserialize, Serialize};

use crate::container::ContainerSummary;
use crate::image::ImageSummary;
use crate::json::{is_empty_vec, is_zero, nullable};
use crate::volume::Volume;

/// One build cache record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BuildCacheRecord {
    #[serde(rename = "ID", default, deserialize_with = "nullable")]
    pub id: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub parent: String,
    #[serde(default, skip_serializing_if = "is_empty_vec")]
    pub parents: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub r#type: String,
    #[serde(default, deserialize_with = "nullable")]
    pub description: String,
    #[serde(default, deserialize_with = "nullable")]
    pub in_use: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub shared: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub size: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub created_at: String,
    #[serde(default)]
    pub last_used_at: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub usage_count: i64,
}

/// `GET /system/df`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DiskUsage {
    #[serde(default, deserialize_with = "nullable")]
    pub layers_size: i64,
    #[serde(default)]
    pub images: Option<Vec<ImageSummary>>,
    #[serde(default)]
    pub containers: Option<Vec<ContainerSummary>>,
    #[serde(default)]
    pub volumes: Option<Vec<Volume>>,
    #[serde(default)]
    pub build_cache: Option<Vec<BuildCacheRecord>>,
    /// Deprecated; written only for old clients.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub builder_size: i64,
}
