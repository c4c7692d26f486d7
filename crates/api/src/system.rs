//! `GET /version` and `GET /info` (Go's `types.Version` and `system.Info`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::json::{is_empty_map, is_empty_vec, is_false, nullable};

/// `Platform` of `/version`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PlatformName {
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
}

/// One entry of `Components` (`Engine`, `containerd`, `runc`, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ComponentVersion {
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub version: String,
    #[serde(default, skip_serializing_if = "is_empty_map")]
    pub details: Option<BTreeMap<String, String>>,
}

/// `GET /version`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionResponse {
    #[serde(rename = "Platform", default, deserialize_with = "nullable")]
    pub platform: PlatformName,
    #[serde(rename = "Components", default, skip_serializing_if = "is_empty_vec")]
    pub components: Option<Vec<ComponentVersion>>,
    #[serde(rename = "Version", default, deserialize_with = "nullable")]
    pub version: String,
    #[serde(rename = "ApiVersion", default, deserialize_with = "nullable")]
    pub api_version: String,
    #[serde(
        rename = "MinAPIVersion",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub min_api_version: String,
    #[serde(rename = "GitCommit", default, deserialize_with = "nullable")]
    pub git_commit: String,
    #[serde(rename = "GoVersion", default, deserialize_with = "nullable")]
    pub go_version: String,
    #[serde(rename = "Os", default, deserialize_with = "nullable")]
    pub os: String,
    #[serde(rename = "Arch", default, deserialize_with = "nullable")]
    pub arch: String,
    #[serde(
        rename = "KernelVersion",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub kernel_version: String,
    #[serde(
        rename = "Experimental",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_false"
    )]
    pub experimental: bool,
    #[serde(
        rename = "BuildTime",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub build_time: String,
}

/// `Plugins` of `/info`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PluginsInfo {
    #[serde(default)]
    pub volume: Option<Vec<String>>,
    #[serde(default)]
    pub network: Option<Vec<String>>,
    #[serde(default)]
    pub authorization: Option<Vec<String>>,
    #[serde(default)]
    pub log: Option<Vec<String>>,
}

/// An index (registry) of `RegistryConfig.IndexConfigs`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IndexInfo {
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(default)]
    pub mirrors: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub secure: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub official: bool,
}

/// `RegistryConfig` of `/info`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RegistryServiceConfig {
    #[serde(rename = "InsecureRegistryCIDRs", default)]
    pub insecure_registry_cidrs: Option<Vec<String>>,
    #[serde(default)]
    pub index_configs: Option<BTreeMap<String, IndexInfo>>,
    #[serde(default)]
    pub mirrors: Option<Vec<String>>,
}

/// A runtime of `Runtimes` (lowercase names on the wire).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeInfo {
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub path: String,
    #[serde(rename = "runtimeArgs", default, skip_serializing_if = "is_empty_vec")]
    pub runtime_args: Option<Vec<String>>,
    #[serde(
        rename = "runtimeType",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub runtime_type: String,
    #[serde(default, skip_serializing_if = "is_empty_map")]
    pub options: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "is_empty_map")]
    pub status: Option<BTreeMap<String, String>>,
}

/// `{"ID": "...", "Expected": "..."}` of ContainerdCommit, RuncCommit, InitCommit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commit {
    #[serde(rename = "ID", default, deserialize_with = "nullable")]
    pub id: String,
    #[serde(
        rename = "Expected",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub expected: String,
}

/// A manager of `Swarm.RemoteManagers`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    #[serde(rename = "NodeID", default, deserialize_with = "nullable")]
    pub node_id: String,
    #[serde(rename = "Addr", default, deserialize_with = "nullable")]
    pub addr: String,
}

/// `Swarm` of `/info`; `Cluster` is kept as raw JSON until swarm lands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwarmInfo {
    #[serde(rename = "NodeID", default, deserialize_with = "nullable")]
    pub node_id: String,
    #[serde(rename = "NodeAddr", default, deserialize_with = "nullable")]
    pub node_addr: String,
    /// `inactive`, `pending`, `active`, `error` or `locked`.
    #[serde(rename = "LocalNodeState", default, deserialize_with = "nullable")]
    pub local_node_state: String,
    #[serde(rename = "ControlAvailable", default, deserialize_with = "nullable")]
    pub control_available: bool,
    #[serde(rename = "Error", default, deserialize_with = "nullable")]
    pub error: String,
    #[serde(rename = "RemoteManagers", default)]
    pub remote_managers: Option<Vec<Peer>>,
    #[serde(
        rename = "Nodes",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "crate::json::is_zero"
    )]
    pub nodes: i64,
    #[serde(
        rename = "Managers",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "crate::json::is_zero"
    )]
    pub managers: i64,
    #[serde(rename = "Cluster", default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<serde_json::Value>,
    #[serde(rename = "Warnings", default, skip_serializing_if = "is_empty_vec")]
    pub warnings: Option<Vec<String>>,
}

/// `{"Base": "172.17.0.0/16", "Size": 24}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkAddressPool {
    #[serde(default, deserialize_with = "nullable")]
    pub base: String,
    #[serde(default, deserialize_with = "nullable")]
    pub size: i64,
}

/// `FirewallBackend` (API 1.48+).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FirewallInfo {
    #[serde(default, deserialize_with = "nullable")]
    pub driver: String,
    #[serde(default, skip_serializing_if = "is_empty_vec")]
    pub info: Option<Vec<[String; 2]>>,
}

/// A device found by a device driver (`DiscoveredDevices`, API 1.50).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    #[serde(rename = "Source", default, deserialize_with = "nullable")]
    pub source: String,
    #[serde(rename = "ID", default, deserialize_with = "nullable")]
    pub id: String,
}

/// `Containerd` of `/info`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerdInfo {
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub address: String,
    #[serde(default, deserialize_with = "nullable")]
    pub namespaces: ContainerdNamespaces,
}

/// Namespaces of `Containerd`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerdNamespaces {
    #[serde(default, deserialize_with = "nullable")]
    pub containers: String,
    #[serde(default, deserialize_with = "nullable")]
    pub plugins: String,
}

/// `GET /info` (Go's `system.Info`), everything `docker info` prints.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemInfo {
    #[serde(rename = "ID", default, deserialize_with = "nullable")]
    pub id: String,
    #[serde(rename = "Containers", default, deserialize_with = "nullable")]
    pub containers: i64,
    #[serde(rename = "ContainersRunning", default, deserialize_with = "nullable")]
    pub containers_running: i64,
    #[serde(rename = "ContainersPaused", default, deserialize_with = "nullable")]
    pub containers_paused: i64,
    #[serde(rename = "ContainersStopped", default, deserialize_with = "nullable")]
    pub containers_stopped: i64,
    #[serde(rename = "Images", default, deserialize_with = "nullable")]
    pub images: i64,
    #[serde(rename = "Driver", default, deserialize_with = "nullable")]
    pub driver: String,
    #[serde(rename = "DriverStatus", default)]
    pub driver_status: Option<Vec<[String; 2]>>,
    #[serde(rename = "SystemStatus", default, skip_serializing_if = "is_empty_vec")]
    pub system_status: Option<Vec<[String; 2]>>,
    #[serde(rename = "Plugins", default, deserialize_with = "nullable")]
    pub plugins: PluginsInfo,
    #[serde(rename = "MemoryLimit", default, deserialize_with = "nullable")]
    pub memory_limit: bool,
    #[serde(rename = "SwapLimit", default, deserialize_with = "nullable")]
    pub swap_limit: bool,
    #[serde(
        rename = "KernelMemory",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_false"
    )]
    pub kernel_memory: bool,
    #[serde(
        rename = "KernelMemoryTCP",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_false"
    )]
    pub kernel_memory_tcp: bool,
    #[serde(rename = "CpuCfsPeriod", default, deserialize_with = "nullable")]
    pub cpu_cfs_period: bool,
    #[serde(rename = "CpuCfsQuota", default, deserialize_with = "nullable")]
    pub cpu_cfs_quota: bool,
    #[serde(rename = "CPUShares", default, deserialize_with = "nullable")]
    pub cpu_shares: bool,
    #[serde(rename = "CPUSet", default, deserialize_with = "nullable")]
    pub cpu_set: bool,
    #[serde(rename = "PidsLimit", default, deserialize_with = "nullable")]
    pub pids_limit: bool,
    #[serde(rename = "IPv4Forwarding", default, deserialize_with = "nullable")]
    pub ipv4_forwarding: bool,
    #[serde(rename = "Debug", default, deserialize_with = "nullable")]
    pub debug: bool,
    #[serde(rename = "NFd", default, deserialize_with = "nullable")]
    pub nfd: i64,
    #[serde(rename = "OomKillDisable", default, deserialize_with = "nullable")]
    pub oom_kill_disable: bool,
    #[serde(rename = "NGoroutines", default, deserialize_with = "nullable")]
    pub ngoroutines: i64,
    #[serde(rename = "SystemTime", default, deserialize_with = "nullable")]
    pub system_time: String,
    #[serde(rename = "LoggingDriver", default, deserialize_with = "nullable")]
    pub logging_driver: String,
    #[serde(rename = "CgroupDriver", default, deserialize_with = "nullable")]
    pub cgroup_driver: String,
    #[serde(
        rename = "CgroupVersion",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub cgroup_version: String,
    #[serde(rename = "NEventsListener", default, deserialize_with = "nullable")]
    pub nevents_listener: i64,
    #[serde(rename = "KernelVersion", default, deserialize_with = "nullable")]
    pub kernel_version: String,
    #[serde(rename = "OperatingSystem", default, deserialize_with = "nullable")]
    pub operating_system: String,
    #[serde(rename = "OSVersion", default, deserialize_with = "nullable")]
    pub os_version: String,
    #[serde(rename = "OSType", default, deserialize_with = "nullable")]
    pub os_type: String,
    #[serde(rename = "Architecture", default, deserialize_with = "nullable")]
    pub architecture: String,
    #[serde(rename = "IndexServerAddress", default, deserialize_with = "nullable")]
    pub index_server_address: String,
    #[serde(rename = "RegistryConfig", default)]
    pub registry_config: Option<RegistryServiceConfig>,
    #[serde(rename = "NCPU", default, deserialize_with = "nullable")]
    pub ncpu: i64,
    #[serde(rename = "MemTotal", default, deserialize_with = "nullable")]
    pub mem_total: i64,
    #[serde(rename = "GenericResources", default)]
    pub generic_resources: Option<Vec<serde_json::Value>>,
    #[serde(rename = "DockerRootDir", default, deserialize_with = "nullable")]
    pub docker_root_dir: String,
    #[serde(rename = "HttpProxy", default, deserialize_with = "nullable")]
    pub http_proxy: String,
    #[serde(rename = "HttpsProxy", default, deserialize_with = "nullable")]
    pub https_proxy: String,
    #[serde(rename = "NoProxy", default, deserialize_with = "nullable")]
    pub no_proxy: String,
    #[serde(rename = "Name", default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(rename = "Labels", default)]
    pub labels: Option<Vec<String>>,
    #[serde(rename = "ExperimentalBuild", default, deserialize_with = "nullable")]
    pub experimental_build: bool,
    #[serde(rename = "ServerVersion", default, deserialize_with = "nullable")]
    pub server_version: String,
    #[serde(rename = "Runtimes", default)]
    pub runtimes: Option<BTreeMap<String, RuntimeInfo>>,
    #[serde(rename = "DefaultRuntime", default, deserialize_with = "nullable")]
    pub default_runtime: String,
    #[serde(rename = "Swarm", default, deserialize_with = "nullable")]
    pub swarm: SwarmInfo,
    #[serde(rename = "LiveRestoreEnabled", default, deserialize_with = "nullable")]
    pub live_restore_enabled: bool,
    #[serde(rename = "Isolation", default, deserialize_with = "nullable")]
    pub isolation: String,
    #[serde(rename = "InitBinary", default, deserialize_with = "nullable")]
    pub init_binary: String,
    #[serde(rename = "ContainerdCommit", default, deserialize_with = "nullable")]
    pub containerd_commit: Commit,
    #[serde(rename = "RuncCommit", default, deserialize_with = "nullable")]
    pub runc_commit: Commit,
    #[serde(rename = "InitCommit", default, deserialize_with = "nullable")]
    pub init_commit: Commit,
    #[serde(rename = "SecurityOptions", default)]
    pub security_options: Option<Vec<String>>,
    #[serde(
        rename = "ProductLicense",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub product_license: String,
    #[serde(
        rename = "DefaultAddressPools",
        default,
        skip_serializing_if = "is_empty_vec"
    )]
    pub default_address_pools: Option<Vec<NetworkAddressPool>>,
    #[serde(
        rename = "FirewallBackend",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub firewall_backend: Option<FirewallInfo>,
    #[serde(rename = "CDISpecDirs", default)]
    pub cdi_spec_dirs: Option<Vec<String>>,
    #[serde(
        rename = "DiscoveredDevices",
        default,
        skip_serializing_if = "is_empty_vec"
    )]
    pub discovered_devices: Option<Vec<DeviceInfo>>,
    #[serde(
        rename = "Containerd",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub containerd: Option<ContainerdInfo>,
    #[serde(rename = "Warnings", default)]
    pub warnings: Option<Vec<String>>,
}
