//! The non-portable container configuration (`HostConfig`, Go's `container.HostConfig`
//! with `Resources` embedded), its pieces (restart policy, log config, port bindings,
//! devices, ulimits) and `Mounts` (Go's `mount.Mount`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::json::{is_empty_map, is_empty_vec, is_false, is_zero, nullable};

/// `{"HostIp": "", "HostPort": "8080"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PortBinding {
    #[serde(default, deserialize_with = "nullable")]
    pub host_ip: String,
    #[serde(default, deserialize_with = "nullable")]
    pub host_port: String,
}

/// Go's `nat.PortMap`: `"80/tcp"` → bindings; `null` for an exposed, unpublished port.
pub type PortMap = BTreeMap<String, Option<Vec<PortBinding>>>;

/// `{"Name": "on-failure", "MaximumRetryCount": 3}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RestartPolicy {
    /// `""`, `no`, `always`, `unless-stopped` or `on-failure`.
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub maximum_retry_count: i64,
}

/// `{"Type": "json-file", "Config": {"max-size": "10m"}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LogConfig {
    #[serde(default, deserialize_with = "nullable")]
    pub r#type: String,
    #[serde(default)]
    pub config: Option<BTreeMap<String, String>>,
}

/// `--device`: `{"PathOnHost", "PathInContainer", "CgroupPermissions"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeviceMapping {
    #[serde(default, deserialize_with = "nullable")]
    pub path_on_host: String,
    #[serde(default, deserialize_with = "nullable")]
    pub path_in_container: String,
    #[serde(default, deserialize_with = "nullable")]
    pub cgroup_permissions: String,
}

/// `--gpus`: Go's `container.DeviceRequest`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeviceRequest {
    #[serde(default, deserialize_with = "nullable")]
    pub driver: String,
    #[serde(default, deserialize_with = "nullable")]
    pub count: i64,
    #[serde(default, rename = "DeviceIDs")]
    pub device_ids: Option<Vec<String>>,
    #[serde(default)]
    pub capabilities: Option<Vec<Vec<String>>>,
    #[serde(default)]
    pub options: Option<BTreeMap<String, String>>,
}

/// `--blkio-weight-device`: `{"Path", "Weight"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WeightDevice {
    #[serde(default, deserialize_with = "nullable")]
    pub path: String,
    #[serde(default, deserialize_with = "nullable")]
    pub weight: u16,
}

/// `--device-read-bps` and friends: `{"Path", "Rate"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ThrottleDevice {
    #[serde(default, deserialize_with = "nullable")]
    pub path: String,
    #[serde(default, deserialize_with = "nullable")]
    pub rate: u64,
}

/// `--ulimit`: go-units' `Ulimit` `{"Name", "Hard", "Soft"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Ulimit {
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub hard: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub soft: i64,
}

/// Go's `container.Resources`, embedded (flattened) in `HostConfig` and in the update
/// request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Resources {
    #[serde(default, deserialize_with = "nullable")]
    pub cpu_shares: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub memory: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub nano_cpus: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub cgroup_parent: String,
    #[serde(default, deserialize_with = "nullable")]
    pub blkio_weight: u16,
    #[serde(default)]
    pub blkio_weight_device: Option<Vec<WeightDevice>>,
    #[serde(default)]
    pub blkio_device_read_bps: Option<Vec<ThrottleDevice>>,
    #[serde(default)]
    pub blkio_device_write_bps: Option<Vec<ThrottleDevice>>,
    #[serde(default, rename = "BlkioDeviceReadIOps")]
    pub blkio_device_read_iops: Option<Vec<ThrottleDevice>>,
    #[serde(default, rename = "BlkioDeviceWriteIOps")]
    pub blkio_device_write_iops: Option<Vec<ThrottleDevice>>,
    #[serde(default, deserialize_with = "nullable")]
    pub cpu_period: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub cpu_quota: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub cpu_realtime_period: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub cpu_realtime_runtime: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub cpuset_cpus: String,
    #[serde(default, deserialize_with = "nullable")]
    pub cpuset_mems: String,
    #[serde(default)]
    pub devices: Option<Vec<DeviceMapping>>,
    #[serde(default)]
    pub device_cgroup_rules: Option<Vec<String>>,
    #[serde(default)]
    pub device_requests: Option<Vec<DeviceRequest>>,
    /// Deprecated (kernel 5.4 dropped kmem limits); omitted when zero.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub kernel_memory: i64,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero",
        rename = "KernelMemoryTCP"
    )]
    pub kernel_memory_tcp: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub memory_reservation: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub memory_swap: i64,
    #[serde(default)]
    pub memory_swappiness: Option<i64>,
    #[serde(default)]
    pub oom_kill_disable: Option<bool>,
    /// `null` means "do not change" in updates; `0` or `-1` unlimited.
    #[serde(default)]
    pub pids_limit: Option<i64>,
    #[serde(default)]
    pub ulimits: Option<Vec<Ulimit>>,
    #[serde(default, deserialize_with = "nullable")]
    pub cpu_count: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub cpu_percent: i64,
    #[serde(default, deserialize_with = "nullable", rename = "IOMaximumIOps")]
    pub io_maximum_iops: u64,
    #[serde(default, deserialize_with = "nullable", rename = "IOMaximumBandwidth")]
    pub io_maximum_bandwidth: u64,
}

/// Go's `mount.BindOptions`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BindOptions {
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub propagation: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_false"
    )]
    pub non_recursive: bool,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_false"
    )]
    pub create_mountpoint: bool,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_false"
    )]
    pub read_only_non_recursive: bool,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_false"
    )]
    pub read_only_force_recursive: bool,
}

/// Go's `mount.Driver`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MountDriver {
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub name: String,
    #[serde(default, skip_serializing_if = "is_empty_map")]
    pub options: Option<BTreeMap<String, String>>,
}

/// Go's `mount.VolumeOptions`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VolumeOptions {
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_false"
    )]
    pub no_copy: bool,
    #[serde(default, skip_serializing_if = "is_empty_map")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub subpath: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_config: Option<MountDriver>,
}

/// Go's `mount.ImageOptions` (API 1.48+).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageOptions {
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub subpath: String,
}

/// Go's `mount.TmpfsOptions`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TmpfsOptions {
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub size_bytes: i64,
    /// `os.FileMode` bits.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub mode: u32,
    #[serde(default, skip_serializing_if = "is_empty_vec")]
    pub options: Option<Vec<Vec<String>>>,
}

/// One `--mount`: Go's `mount.Mount`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Mount {
    /// `bind`, `volume`, `tmpfs`, `npipe`, `cluster` or `image`.
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
    pub source: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub target: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_false"
    )]
    pub read_only: bool,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub consistency: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_options: Option<BindOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_options: Option<VolumeOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_options: Option<ImageOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmpfs_options: Option<TmpfsOptions>,
}

/// Go's `container.HostConfig`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HostConfig {
    #[serde(default)]
    pub binds: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable", rename = "ContainerIDFile")]
    pub container_id_file: String,
    #[serde(default, deserialize_with = "nullable")]
    pub log_config: LogConfig,
    #[serde(default, deserialize_with = "nullable")]
    pub network_mode: String,
    #[serde(default)]
    pub port_bindings: Option<PortMap>,
    #[serde(default, deserialize_with = "nullable")]
    pub restart_policy: RestartPolicy,
    #[serde(default, deserialize_with = "nullable")]
    pub auto_remove: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub volume_driver: String,
    #[serde(default)]
    pub volumes_from: Option<Vec<String>>,
    /// `[height, width]`.
    #[serde(default, deserialize_with = "nullable")]
    pub console_size: [u32; 2],
    #[serde(default, skip_serializing_if = "is_empty_map")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub cap_add: Option<Vec<String>>,
    #[serde(default)]
    pub cap_drop: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub cgroupns_mode: String,
    #[serde(default)]
    pub dns: Option<Vec<String>>,
    #[serde(default)]
    pub dns_options: Option<Vec<String>>,
    #[serde(default)]
    pub dns_search: Option<Vec<String>>,
    #[serde(default)]
    pub extra_hosts: Option<Vec<String>>,
    #[serde(default)]
    pub group_add: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub ipc_mode: String,
    #[serde(default, deserialize_with = "nullable")]
    pub cgroup: String,
    #[serde(default)]
    pub links: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub oom_score_adj: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub pid_mode: String,
    #[serde(default, deserialize_with = "nullable")]
    pub privileged: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub publish_all_ports: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub readonly_rootfs: bool,
    #[serde(default)]
    pub security_opt: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "is_empty_map")]
    pub storage_opt: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "is_empty_map")]
    pub tmpfs: Option<BTreeMap<String, String>>,
    #[serde(default, deserialize_with = "nullable", rename = "UTSMode")]
    pub uts_mode: String,
    #[serde(default, deserialize_with = "nullable")]
    pub userns_mode: String,
    #[serde(default, deserialize_with = "nullable")]
    pub shm_size: i64,
    #[serde(default, skip_serializing_if = "is_empty_map")]
    pub sysctls: Option<BTreeMap<String, String>>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub runtime: String,
    #[serde(default, deserialize_with = "nullable")]
    pub isolation: String,
    #[serde(flatten)]
    pub resources: Resources,
    #[serde(default, skip_serializing_if = "is_empty_vec")]
    pub mounts: Option<Vec<Mount>>,
    #[serde(default)]
    pub masked_paths: Option<Vec<String>>,
    #[serde(default)]
    pub readonly_paths: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<bool>,
    /// berth's extension: secrets mounted at /run/secrets (swarm's `SecretReference`s,
    /// which Docker only has in a service's ContainerSpec). References only, never data.
    #[serde(default, rename = "BerthSecrets", skip_serializing_if = "is_empty_vec")]
    pub berth_secrets: Option<Vec<crate::secret::SecretReference>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_are_flattened_into_host_config() {
        let host: HostConfig = serde_json::from_str(
            r#"{"Memory":1048576,"CpuShares":512,"PidsLimit":null,"UTSMode":"host",
                "IOMaximumIOps":3,"BlkioDeviceReadIOps":[{"Path":"/dev/sda","Rate":5}]}"#,
        )
        .expect("decode");
        assert_eq!(host.resources.memory, 1_048_576);
        assert_eq!(host.resources.cpu_shares, 512);
        assert_eq!(host.uts_mode, "host");
        assert_eq!(host.resources.io_maximum_iops, 3);
        let json = serde_json::to_value(&host).expect("encode");
        assert_eq!(json["Memory"], 1_048_576);
        assert_eq!(json["BlkioDeviceReadIOps"][0]["Rate"], 5);
        assert_eq!(json["PidsLimit"], serde_json::Value::Null);
        assert!(json.get("Resources").is_none());
        assert!(json.get("KernelMemory").is_none(), "omitempty");
        assert!(json.get("Mounts").is_none(), "omitempty");
        assert_eq!(json["ConsoleSize"], serde_json::json!([0, 0]));
    }

    #[test]
    fn mounts_omit_empty_options() {
        let mount: Mount = serde_json::from_str(
            r#"{"Type":"bind","Source":"/src","Target":"/dst","BindOptions":{"Propagation":"rprivate"}}"#,
        )
        .expect("decode");
        assert_eq!(
            serde_json::to_string(&mount).expect("encode"),
            r#"{"Type":"bind","Source":"/src","Target":"/dst","BindOptions":{"Propagation":"rprivate"}}"#
        );
    }
}
