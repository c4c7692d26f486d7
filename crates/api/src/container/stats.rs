//! `GET /containers/{id}/stats`: the stats JSON from which the CLI computes CPU % and
//! memory usage (Go's `container.StatsResponse`, snake_case names on the wire).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::json::{is_empty_map, is_empty_vec, is_zero, nullable};

/// `pids_stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PidsStats {
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub current: u64,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub limit: u64,
}

/// One blkio counter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlkioStatEntry {
    #[serde(default, deserialize_with = "nullable")]
    pub major: u64,
    #[serde(default, deserialize_with = "nullable")]
    pub minor: u64,
    #[serde(default, deserialize_with = "nullable")]
    pub op: String,
    #[serde(default, deserialize_with = "nullable")]
    pub value: u64,
}

/// `blkio_stats`: on cgroup v2 only `io_service_bytes_recursive` is filled, the rest `null`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlkioStats {
    #[serde(default)]
    pub io_service_bytes_recursive: Option<Vec<BlkioStatEntry>>,
    #[serde(default)]
    pub io_serviced_recursive: Option<Vec<BlkioStatEntry>>,
    #[serde(default)]
    pub io_queue_recursive: Option<Vec<BlkioStatEntry>>,
    #[serde(default)]
    pub io_service_time_recursive: Option<Vec<BlkioStatEntry>>,
    #[serde(default)]
    pub io_wait_time_recursive: Option<Vec<BlkioStatEntry>>,
    #[serde(default)]
    pub io_merged_recursive: Option<Vec<BlkioStatEntry>>,
    #[serde(default)]
    pub io_time_recursive: Option<Vec<BlkioStatEntry>>,
    #[serde(default)]
    pub sectors_recursive: Option<Vec<BlkioStatEntry>>,
}

/// `storage_stats` (Windows only; `{}` on Linux).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageStats {
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub read_count_normalized: u64,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub read_size_bytes: u64,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub write_count_normalized: u64,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub write_size_bytes: u64,
}

/// `cpu_usage`: nanoseconds of CPU time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuUsage {
    #[serde(default, deserialize_with = "nullable")]
    pub total_usage: u64,
    /// cgroup v1 only.
    #[serde(default, skip_serializing_if = "is_empty_vec")]
    pub percpu_usage: Option<Vec<u64>>,
    #[serde(default, deserialize_with = "nullable")]
    pub usage_in_kernelmode: u64,
    #[serde(default, deserialize_with = "nullable")]
    pub usage_in_usermode: u64,
}

/// `throttling_data`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThrottlingData {
    #[serde(default, deserialize_with = "nullable")]
    pub periods: u64,
    #[serde(default, deserialize_with = "nullable")]
    pub throttled_periods: u64,
    #[serde(default, deserialize_with = "nullable")]
    pub throttled_time: u64,
}

/// `cpu_stats` and `precpu_stats`. The CLI's CPU % is
/// `Δtotal_usage / Δsystem_cpu_usage × online_cpus × 100`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuStats {
    #[serde(default, deserialize_with = "nullable")]
    pub cpu_usage: CpuUsage,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub system_cpu_usage: u64,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub online_cpus: u32,
    #[serde(default, deserialize_with = "nullable")]
    pub throttling_data: ThrottlingData,
}

/// `memory_stats`. The CLI shows `usage - stats.inactive_file` (v2) or
/// `usage - stats.total_inactive_file` (v1) against `limit`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryStats {
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub usage: u64,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub max_usage: u64,
    #[serde(default, skip_serializing_if = "is_empty_map")]
    pub stats: Option<BTreeMap<String, u64>>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub failcnt: u64,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub limit: u64,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub commitbytes: u64,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub commitpeakbytes: u64,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub privateworkingset: u64,
}

/// Per-interface counters in `networks`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkStats {
    #[serde(default, deserialize_with = "nullable")]
    pub rx_bytes: u64,
    #[serde(default, deserialize_with = "nullable")]
    pub rx_packets: u64,
    #[serde(default, deserialize_with = "nullable")]
    pub rx_errors: u64,
    #[serde(default, deserialize_with = "nullable")]
    pub rx_dropped: u64,
    #[serde(default, deserialize_with = "nullable")]
    pub tx_bytes: u64,
    #[serde(default, deserialize_with = "nullable")]
    pub tx_packets: u64,
    #[serde(default, deserialize_with = "nullable")]
    pub tx_errors: u64,
    #[serde(default, deserialize_with = "nullable")]
    pub tx_dropped: u64,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub endpoint_id: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub instance_id: String,
}

/// One stats sample.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsResponse {
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub name: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub id: String,
    /// Go time of this sample; `preread` is the previous one (zero time on the first).
    #[serde(default, deserialize_with = "nullable")]
    pub read: String,
    #[serde(default, deserialize_with = "nullable")]
    pub preread: String,
    #[serde(default, deserialize_with = "nullable")]
    pub pids_stats: PidsStats,
    #[serde(default, deserialize_with = "nullable")]
    pub blkio_stats: BlkioStats,
    /// Windows only; always 0 on Linux but still written.
    #[serde(default, deserialize_with = "nullable")]
    pub num_procs: u32,
    #[serde(default, deserialize_with = "nullable")]
    pub storage_stats: StorageStats,
    #[serde(default, deserialize_with = "nullable")]
    pub cpu_stats: CpuStats,
    #[serde(default, deserialize_with = "nullable")]
    pub precpu_stats: CpuStats,
    #[serde(default, deserialize_with = "nullable")]
    pub memory_stats: MemoryStats,
    #[serde(default, skip_serializing_if = "is_empty_map")]
    pub networks: Option<BTreeMap<String, NetworkStats>>,
}

impl StatsResponse {
    /// CPU % as docker/cli computes it from this sample and its `precpu_stats`.
    pub fn cpu_percent(&self) -> f64 {
        let cpu_delta = self
            .cpu_stats
            .cpu_usage
            .total_usage
            .saturating_sub(self.precpu_stats.cpu_usage.total_usage) as f64;
        let system_delta = self
            .cpu_stats
            .system_cpu_usage
            .saturating_sub(self.precpu_stats.system_cpu_usage) as f64;
        let online = match self.cpu_stats.online_cpus {
            0 => self
                .cpu_stats
                .cpu_usage
                .percpu_usage
                .as_ref()
                .map_or(0, Vec::len) as f64,
            n => f64::from(n),
        };
        if system_delta > 0.0 && cpu_delta > 0.0 {
            cpu_delta / system_delta * online * 100.0
        } else {
            0.0
        }
    }

    /// Memory in use as docker/cli shows it: usage minus the inactive page cache.
    pub fn memory_usage(&self) -> u64 {
        let stats = self.memory_stats.stats.as_ref();
        let cache = stats
            .and_then(|s| {
                s.get("total_inactive_file")
                    .filter(|v| **v < self.memory_stats.usage)
            })
            .or_else(|| {
                stats.and_then(|s| {
                    s.get("inactive_file")
                        .filter(|v| **v < self.memory_stats.usage)
                })
            })
            .copied()
            .unwrap_or(0);
        self.memory_stats.usage - cache
    }
}
