//! `GET /containers/{id}/json`: Go's `container.InspectResponse` (ContainerJSON) with its
//! state, health, mounts, graph driver and network settings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::config::Config;
use super::host_config::{HostConfig, PortMap};
use crate::json::nullable;
use crate::network::EndpointSettings;

/// One healthcheck probe result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthcheckResult {
    #[serde(default, deserialize_with = "nullable")]
    pub start: String,
    #[serde(default, deserialize_with = "nullable")]
    pub end: String,
    #[serde(default, deserialize_with = "nullable")]
    pub exit_code: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub output: String,
}

/// `State.Health`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Health {
    /// `none`, `starting`, `healthy` or `unhealthy`.
    #[serde(default, deserialize_with = "nullable")]
    pub status: String,
    #[serde(default, deserialize_with = "nullable")]
    pub failing_streak: i64,
    #[serde(default)]
    pub log: Option<Vec<HealthcheckResult>>,
}

/// `State` of a container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerState {
    /// `created`, `running`, `paused`, `restarting`, `removing`, `exited` or `dead`.
    #[serde(default, deserialize_with = "nullable")]
    pub status: String,
    #[serde(default, deserialize_with = "nullable")]
    pub running: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub paused: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub restarting: bool,
    #[serde(rename = "OOMKilled", default, deserialize_with = "nullable")]
    pub oom_killed: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub dead: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub pid: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub exit_code: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub error: String,
    #[serde(default, deserialize_with = "nullable")]
    pub started_at: String,
    #[serde(default, deserialize_with = "nullable")]
    pub finished_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
}

/// A mount as inspect and ps report it (Go's `container.MountPoint`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MountPoint {
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub r#type: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub source: String,
    #[serde(default, deserialize_with = "nullable")]
    pub destination: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub driver: String,
    #[serde(default, deserialize_with = "nullable")]
    pub mode: String,
    #[serde(rename = "RW", default, deserialize_with = "nullable")]
    pub rw: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub propagation: String,
}

/// `GraphDriver`: storage driver name and its data (`LowerDir`, `MergedDir`, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GraphDriver {
    #[serde(default)]
    pub data: Option<BTreeMap<String, String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
}

/// `{"Addr", "PrefixLen"}` of the deprecated secondary addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Address {
    #[serde(default, deserialize_with = "nullable")]
    pub addr: String,
    #[serde(default, deserialize_with = "nullable")]
    pub prefix_len: i64,
}

/// `NetworkSettings` of inspect: the sandbox, published ports, and the per-network
/// endpoints; the top-level address fields mirror the default bridge endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkSettings {
    #[serde(default, deserialize_with = "nullable")]
    pub bridge: String,
    #[serde(rename = "SandboxID", default, deserialize_with = "nullable")]
    pub sandbox_id: String,
    #[serde(default, deserialize_with = "nullable")]
    pub sandbox_key: String,
    #[serde(default)]
    pub ports: Option<PortMap>,
    #[serde(default, deserialize_with = "nullable")]
    pub hairpin_mode: bool,
    #[serde(
        rename = "LinkLocalIPv6Address",
        default,
        deserialize_with = "nullable"
    )]
    pub link_local_ipv6_address: String,
    #[serde(
        rename = "LinkLocalIPv6PrefixLen",
        default,
        deserialize_with = "nullable"
    )]
    pub link_local_ipv6_prefix_len: i64,
    #[serde(rename = "SecondaryIPAddresses", default)]
    pub secondary_ip_addresses: Option<Vec<Address>>,
    #[serde(rename = "SecondaryIPv6Addresses", default)]
    pub secondary_ipv6_addresses: Option<Vec<Address>>,
    #[serde(rename = "EndpointID", default, deserialize_with = "nullable")]
    pub endpoint_id: String,
    #[serde(default, deserialize_with = "nullable")]
    pub gateway: String,
    #[serde(rename = "GlobalIPv6Address", default, deserialize_with = "nullable")]
    pub global_ipv6_address: String,
    #[serde(rename = "GlobalIPv6PrefixLen", default, deserialize_with = "nullable")]
    pub global_ipv6_prefix_len: i64,
    #[serde(rename = "IPAddress", default, deserialize_with = "nullable")]
    pub ip_address: String,
    #[serde(rename = "IPPrefixLen", default, deserialize_with = "nullable")]
    pub ip_prefix_len: i64,
    #[serde(rename = "IPv6Gateway", default, deserialize_with = "nullable")]
    pub ipv6_gateway: String,
    #[serde(default, deserialize_with = "nullable")]
    pub mac_address: String,
    #[serde(default)]
    pub networks: Option<BTreeMap<String, EndpointSettings>>,
}

/// `GET /containers/{id}/json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerInspect {
    #[serde(rename = "Id", default, deserialize_with = "nullable")]
    pub id: String,
    #[serde(default, deserialize_with = "nullable")]
    pub created: String,
    #[serde(default, deserialize_with = "nullable")]
    pub path: String,
    #[serde(default)]
    pub args: Option<Vec<String>>,
    #[serde(default)]
    pub state: Option<ContainerState>,
    #[serde(default, deserialize_with = "nullable")]
    pub image: String,
    #[serde(default, deserialize_with = "nullable")]
    pub resolv_conf_path: String,
    #[serde(default, deserialize_with = "nullable")]
    pub hostname_path: String,
    #[serde(default, deserialize_with = "nullable")]
    pub hosts_path: String,
    #[serde(default, deserialize_with = "nullable")]
    pub log_path: String,
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub restart_count: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub driver: String,
    #[serde(default, deserialize_with = "nullable")]
    pub platform: String,
    /// API 1.48+: the image manifest the container was created from (OCI descriptor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_manifest_descriptor: Option<serde_json::Value>,
    #[serde(default, deserialize_with = "nullable")]
    pub mount_label: String,
    #[serde(default, deserialize_with = "nullable")]
    pub process_label: String,
    #[serde(default, deserialize_with = "nullable")]
    pub app_armor_profile: String,
    #[serde(rename = "ExecIDs", default)]
    pub exec_ids: Option<Vec<String>>,
    #[serde(default)]
    pub host_config: Option<HostConfig>,
    #[serde(default, deserialize_with = "nullable")]
    pub graph_driver: GraphDriver,
    /// Only with `?size=true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_rw: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_root_fs: Option<i64>,
    #[serde(default)]
    pub mounts: Option<Vec<MountPoint>>,
    #[serde(default)]
    pub config: Option<Config>,
    #[serde(default)]
    pub network_settings: Option<NetworkSettings>,
}
