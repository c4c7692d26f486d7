//! `docker stats`: samples of a container's cgroup (v1: memory, cpuacct, cpu, pids, blkio;
//! v2: memory.*, cpu.stat, pids.*, io.stat) in Docker's `StatsResponse` shape, with the
//! host's CPU time for the CLI's CPU % and `precpu_stats` from the previous sample (moby's
//! `daemon/stats_unix.go` over containerd's cgroup metrics).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use berth_api::container::stats::{
    BlkioStatEntry, BlkioStats, CpuStats, CpuUsage, MemoryStats, PidsStats, StatsResponse,
    ThrottlingData,
};

use crate::container::{ContainerError, Status};
use crate::error::ErrorKind;
use crate::Engine;

/// Failures of stats.
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error("the stats task was cancelled")]
    Cancelled,
}

impl StatsError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            StatsError::Container(e) => e.kind(),
            StatsError::Cancelled => ErrorKind::Internal,
        }
    }
}

/// Where the container's cgroup files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupDirs {
    /// Unified hierarchy: one directory.
    V2(PathBuf),
    /// Legacy hierarchy: a directory per controller (`memory`, `cpuacct`, `cpu`, `pids`,
    /// `blkio`).
    V1(HashMap<String, PathBuf>),
}

const V1_CONTROLLERS: [&str; 5] = ["memory", "cpuacct", "cpu", "pids", "blkio"];

/// Finds the cgroup of a container: the spec's `cgroupsPath` under each hierarchy mounted at
/// `cgroup_root`, or, when that directory does not exist, the init's own cgroups from
/// `<proc_root>/<pid>/cgroup` (a relative cgroupsPath lands under the runtime's cgroup).
pub fn locate(cgroup_root: &Path, proc_root: &Path, cgroups_path: &str, pid: u32) -> CgroupDirs {
    let relative = cgroups_path.trim_start_matches('/');
    let own = if pid > 0 {
        std::fs::read_to_string(proc_root.join(pid.to_string()).join("cgroup")).unwrap_or_default()
    } else {
        String::new()
    };
    if cgroup_root.join("cgroup.controllers").exists() {
        let by_spec = cgroup_root.join(relative);
        if by_spec.is_dir() && !relative.is_empty() {
            return CgroupDirs::V2(by_spec);
        }
        let from_proc = own
            .lines()
            .find_map(|line| line.strip_prefix("0::"))
            .map(|path| cgroup_root.join(path.trim_start_matches('/')));
        return CgroupDirs::V2(from_proc.unwrap_or(by_spec));
    }
    let mut dirs = HashMap::new();
    for controller in V1_CONTROLLERS {
        let by_spec = cgroup_root.join(controller).join(relative);
        let from_proc = own.lines().find_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (_, names, path) = (parts.next()?, parts.next()?, parts.next()?);
            names.split(',').any(|n| n == controller).then(|| {
                cgroup_root
                    .join(controller)
                    .join(path.trim_start_matches('/'))
            })
        });
        let dir = match from_proc {
            Some(dir) if !by_spec.is_dir() || relative.is_empty() => dir,
            _ => by_spec,
        };
        dirs.insert(controller.to_string(), dir);
    }
    CgroupDirs::V1(dirs)
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn read_u64(path: &Path) -> Option<u64> {
    read(path)?.trim().parse().ok()
}

/// `key value` lines (memory.stat, cpu.stat, cpuacct.stat).
fn flat_keyed(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|line| {
            let (key, value) = line.split_once(' ')?;
            Some((key.to_string(), value.trim().parse().ok()?))
        })
        .collect()
}

/// The host's side of a sample: total CPU time and online CPUs from /proc/stat (Docker's
/// `getSystemCPUUsage`), and the memory limit for unlimited containers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostSample {
    pub system_cpu_usage: u64,
    pub online_cpus: u32,
    pub memory_total: u64,
}

/// USER_HZ: /proc/stat and cpuacct.stat count in these ticks.
const CLOCK_TICKS: u64 = 100;
const NANOS_PER_TICK: u64 = 1_000_000_000 / CLOCK_TICKS;

/// Parses /proc/stat and /proc/meminfo text.
pub fn host_sample(proc_stat: &str, meminfo: &str) -> HostSample {
    let mut sample = HostSample::default();
    for line in proc_stat.lines() {
        let mut fields = line.split_whitespace();
        match fields.next() {
            Some("cpu") => {
                let ticks: u64 = fields.take(7).filter_map(|f| f.parse::<u64>().ok()).sum();
                sample.system_cpu_usage = ticks.saturating_mul(NANOS_PER_TICK);
            }
            Some(name) if name.starts_with("cpu") => sample.online_cpus += 1,
            _ => {}
        }
    }
    sample.memory_total = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kb| kb * 1024);
    sample
}

/// One sample of the cgroup (no name, id or times).
pub fn read_cgroup(dirs: &CgroupDirs, host: &HostSample) -> StatsResponse {
    let mut stats = match dirs {
        CgroupDirs::V2(dir) => read_v2(dir),
        CgroupDirs::V1(dirs) => read_v1(dirs),
    };
    if host.memory_total > 0
        && (stats.memory_stats.limit == 0 || stats.memory_stats.limit > host.memory_total)
    {
        stats.memory_stats.limit = host.memory_total;
    }
    stats.cpu_stats.system_cpu_usage = host.system_cpu_usage;
    stats.cpu_stats.online_cpus = host.online_cpus;
    stats
}

fn read_v1(dirs: &HashMap<String, PathBuf>) -> StatsResponse {
    let dir = |name: &str| dirs.get(name).cloned().unwrap_or_default();
    let (memory, cpuacct, cpu, pids, blkio) = (
        dir("memory"),
        dir("cpuacct"),
        dir("cpu"),
        dir("pids"),
        dir("blkio"),
    );
    let mut stats = StatsResponse::default();
    let memory_stat = flat_keyed(&read(&memory.join("memory.stat")).unwrap_or_default());
    stats.memory_stats = MemoryStats {
        usage: read_u64(&memory.join("memory.usage_in_bytes")).unwrap_or(0),
        max_usage: read_u64(&memory.join("memory.max_usage_in_bytes")).unwrap_or(0),
        failcnt: read_u64(&memory.join("memory.failcnt")).unwrap_or(0),
        limit: memory_stat
            .get("hierarchical_memory_limit")
            .copied()
            .or_else(|| read_u64(&memory.join("memory.limit_in_bytes")))
            .unwrap_or(0),
        stats: (!memory_stat.is_empty()).then_some(memory_stat),
        ..MemoryStats::default()
    };
    let cpuacct_stat = flat_keyed(&read(&cpuacct.join("cpuacct.stat")).unwrap_or_default());
    let percpu: Vec<u64> = read(&cpuacct.join("cpuacct.usage_percpu"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    let cpu_stat = flat_keyed(&read(&cpu.join("cpu.stat")).unwrap_or_default());
    stats.cpu_stats = CpuStats {
        cpu_usage: CpuUsage {
            total_usage: read_u64(&cpuacct.join("cpuacct.usage")).unwrap_or(0),
            percpu_usage: (!percpu.is_empty()).then_some(percpu),
            usage_in_kernelmode: cpuacct_stat.get("system").copied().unwrap_or(0) * NANOS_PER_TICK,
            usage_in_usermode: cpuacct_stat.get("user").copied().unwrap_or(0) * NANOS_PER_TICK,
        },
        throttling_data: ThrottlingData {
            periods: cpu_stat.get("nr_periods").copied().unwrap_or(0),
            throttled_periods: cpu_stat.get("nr_throttled").copied().unwrap_or(0),
            throttled_time: cpu_stat.get("throttled_time").copied().unwrap_or(0),
        },
        ..CpuStats::default()
    };
    stats.pids_stats = PidsStats {
        current: read_u64(&pids.join("pids.current")).unwrap_or(0),
        limit: read_u64(&pids.join("pids.max")).unwrap_or(0),
    };
    stats.blkio_stats = read_blkio_v1(&blkio);
    stats
}

/// containerd's v1 blkio: the CFQ files when the kernel has them, otherwise the throttle
/// counters (the only ones on kernels without CFQ); every list present, maybe empty.
fn read_blkio_v1(dir: &Path) -> BlkioStats {
    let list = |name: &str| Some(parse_blkio_v1(&read(&dir.join(name)).unwrap_or_default()));
    if dir.join("blkio.io_serviced_recursive").exists() {
        return BlkioStats {
            io_service_bytes_recursive: list("blkio.io_service_bytes_recursive"),
            io_serviced_recursive: list("blkio.io_serviced_recursive"),
            io_queue_recursive: list("blkio.io_queued_recursive"),
            io_service_time_recursive: list("blkio.io_service_time_recursive"),
            io_wait_time_recursive: list("blkio.io_wait_time_recursive"),
            io_merged_recursive: list("blkio.io_merged_recursive"),
            io_time_recursive: list("blkio.time_recursive"),
            sectors_recursive: list("blkio.sectors_recursive"),
        };
    }
    BlkioStats {
        io_service_bytes_recursive: list("blkio.throttle.io_service_bytes"),
        io_serviced_recursive: list("blkio.throttle.io_serviced"),
        io_queue_recursive: Some(Vec::new()),
        io_service_time_recursive: Some(Vec::new()),
        io_wait_time_recursive: Some(Vec::new()),
        io_merged_recursive: Some(Vec::new()),
        io_time_recursive: Some(Vec::new()),
        sectors_recursive: Some(Vec::new()),
    }
}

/// `8:0 Read 4096` lines (or `8:0 4096`); the `Total` line is skipped.
pub fn parse_blkio_v1(text: &str) -> Vec<BlkioStatEntry> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (device, op, value) = match fields.as_slice() {
                [device, op, value] => (*device, *op, *value),
                [device, value] if *device != "Total" => (*device, "", *value),
                _ => return None,
            };
            let (major, minor) = device.split_once(':')?;
            Some(BlkioStatEntry {
                major: major.parse().ok()?,
                minor: minor.parse().ok()?,
                op: op.to_string(),
                value: value.parse().ok()?,
            })
        })
        .collect()
}

fn read_v2(dir: &Path) -> StatsResponse {
    let mut stats = StatsResponse::default();
    let memory_stat = flat_keyed(&read(&dir.join("memory.stat")).unwrap_or_default());
    let events = flat_keyed(&read(&dir.join("memory.events")).unwrap_or_default());
    stats.memory_stats = MemoryStats {
        usage: read_u64(&dir.join("memory.current")).unwrap_or(0),
        // "max" does not parse: unlimited, clamped to the host's memory later.
        limit: read_u64(&dir.join("memory.max")).unwrap_or(u64::MAX),
        failcnt: events.get("oom").copied().unwrap_or(0),
        stats: (!memory_stat.is_empty()).then_some(memory_stat),
        ..MemoryStats::default()
    };
    let cpu = flat_keyed(&read(&dir.join("cpu.stat")).unwrap_or_default());
    let micros = |key: &str| cpu.get(key).copied().unwrap_or(0).saturating_mul(1000);
    stats.cpu_stats = CpuStats {
        cpu_usage: CpuUsage {
            total_usage: micros("usage_usec"),
            percpu_usage: None,
            usage_in_kernelmode: micros("system_usec"),
            usage_in_usermode: micros("user_usec"),
        },
        throttling_data: ThrottlingData {
            periods: cpu.get("nr_periods").copied().unwrap_or(0),
            throttled_periods: cpu.get("nr_throttled").copied().unwrap_or(0),
            throttled_time: micros("throttled_usec"),
        },
        ..CpuStats::default()
    };
    stats.pids_stats = PidsStats {
        current: read_u64(&dir.join("pids.current")).unwrap_or(0),
        limit: read_u64(&dir.join("pids.max")).unwrap_or(0),
    };
    stats.blkio_stats = BlkioStats {
        io_service_bytes_recursive: Some(parse_io_stat(
            &read(&dir.join("io.stat")).unwrap_or_default(),
        )),
        ..BlkioStats::default()
    };
    stats
}

/// io.stat: `8:0 rbytes=1 wbytes=2 rios=3 ...` → Docker's `read`/`write` byte entries.
pub fn parse_io_stat(text: &str) -> Vec<BlkioStatEntry> {
    let mut entries = Vec::new();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let Some((major, minor)) = fields.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (major.parse::<u64>(), minor.parse::<u64>()) else {
            continue;
        };
        let values: HashMap<&str, u64> = fields
            .filter_map(|f| {
                let (k, v) = f.split_once('=')?;
                Some((k, v.parse().ok()?))
            })
            .collect();
        for (key, op) in [("rbytes", "read"), ("wbytes", "write")] {
            entries.push(BlkioStatEntry {
                major,
                minor,
                op: op.to_string(),
                value: values.get(key).copied().unwrap_or(0),
            });
        }
    }
    entries
}

fn go_time(at: SystemTime) -> String {
    let since = at.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    berth_api::time::format_rfc3339_nano(since.as_secs() as i64, since.subsec_nanos())
}

/// Successive samples of one container, each with the previous one's CPU as `precpu`.
pub struct StatsCollector {
    engine: Arc<Engine>,
    id: String,
    name: String,
    dirs: Option<CgroupDirs>,
    previous: Option<(String, CpuStats)>,
}

impl StatsCollector {
    /// A collector for container `name` (404 when it does not exist).
    pub async fn new(engine: &Arc<Engine>, name: &str) -> Result<StatsCollector, StatsError> {
        let container = engine.containers.get(name)?;
        let record = container.record();
        Ok(StatsCollector {
            engine: engine.clone(),
            id: record.id.clone(),
            name: record.name.clone(),
            dirs: None,
            previous: None,
        })
    }

    /// Whether the container runs now (stats of a stopped container are empty).
    pub fn running(&self) -> bool {
        self.engine
            .containers
            .get(&self.id)
            .is_ok_and(|c| c.record().state.status == Status::Running)
    }

    /// Docker's answer for a container that does not run: name and id only.
    pub fn empty(&self) -> StatsResponse {
        StatsResponse {
            name: self.name.clone(),
            id: self.id.clone(),
            read: berth_api::time::ZERO_TIME.to_string(),
            preread: berth_api::time::ZERO_TIME.to_string(),
            ..StatsResponse::default()
        }
    }

    /// Takes a sample now.
    pub async fn sample(&mut self) -> Result<StatsResponse, StatsError> {
        let container = self.engine.containers.get(&self.id)?;
        let record = container.record();
        let container_dir = self.engine.config.container_dir(&self.id);
        let cached = self.dirs.clone();
        let (dirs, mut stats) = tokio::task::spawn_blocking(move || {
            let dirs = cached.unwrap_or_else(|| {
                let spec: serde_json::Value = std::fs::read(container_dir.join("config.json"))
                    .ok()
                    .and_then(|text| serde_json::from_slice(&text).ok())
                    .unwrap_or_default();
                let path = spec["linux"]["cgroupsPath"].as_str().unwrap_or("");
                locate(
                    Path::new("/sys/fs/cgroup"),
                    Path::new("/proc"),
                    path,
                    record.state.pid,
                )
            });
            let host = host_sample(
                &read(Path::new("/proc/stat")).unwrap_or_default(),
                &read(Path::new("/proc/meminfo")).unwrap_or_default(),
            );
            let stats = read_cgroup(&dirs, &host);
            (dirs, stats)
        })
        .await
        .map_err(|_| StatsError::Cancelled)?;
        self.dirs = Some(dirs);
        let now = go_time(SystemTime::now());
        stats.name = self.name.clone();
        stats.id = self.id.clone();
        stats.read = now.clone();
        match self.previous.take() {
            Some((preread, precpu)) => {
                stats.preread = preread;
                stats.precpu_stats = precpu;
            }
            None => stats.preread = berth_api::time::ZERO_TIME.to_string(),
        }
        self.previous = Some((now, stats.cpu_stats.clone()));
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::create_dir_all(dir).expect("mkdir");
        std::fs::write(dir.join(name), text).expect("write");
    }

    const PROC_STAT: &str = "cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 50 0 25 400 25 0 0 0 0 0\ncpu1 50 0 25 400 25 0 0 0 0 0\nintr 1 2 3\n";
    const MEMINFO: &str = "MemTotal:        2048000 kB\nMemFree:  1 kB\n";

    #[test]
    fn host_cpu_time_and_cpus_come_from_proc_stat() {
        let host = host_sample(PROC_STAT, MEMINFO);
        assert_eq!(host.system_cpu_usage, 1000 * NANOS_PER_TICK);
        assert_eq!(host.online_cpus, 2);
        assert_eq!(host.memory_total, 2048000 * 1024);
    }

    #[test]
    fn v1_stats_read_every_controller() {
        let root = tempfile::tempdir().expect("tempdir");
        let path = "berth/abc";
        let dir = |c: &str| root.path().join(c).join(path);
        write(&dir("memory"), "memory.usage_in_bytes", "1000\n");
        write(&dir("memory"), "memory.max_usage_in_bytes", "2000\n");
        write(&dir("memory"), "memory.failcnt", "1\n");
        write(
            &dir("memory"),
            "memory.stat",
            "cache 10\ntotal_inactive_file 300\nhierarchical_memory_limit 9223372036854771712\n",
        );
        write(&dir("cpuacct"), "cpuacct.usage", "5000\n");
        write(&dir("cpuacct"), "cpuacct.usage_percpu", "3000 2000 \n");
        write(&dir("cpuacct"), "cpuacct.stat", "user 3\nsystem 1\n");
        write(
            &dir("cpu"),
            "cpu.stat",
            "nr_periods 4\nnr_throttled 2\nthrottled_time 77\n",
        );
        write(&dir("pids"), "pids.current", "3\n");
        write(&dir("pids"), "pids.max", "max\n");
        write(
            &dir("blkio"),
            "blkio.throttle.io_service_bytes",
            "8:0 Read 4096\n8:0 Write 8192\nTotal 12288\n",
        );
        let dirs = locate(root.path(), root.path(), "/berth/abc", 0);
        let host = host_sample(PROC_STAT, MEMINFO);
        let stats = read_cgroup(&dirs, &host);
        assert_eq!(stats.memory_stats.usage, 1000);
        assert_eq!(stats.memory_stats.max_usage, 2000);
        assert_eq!(stats.memory_stats.failcnt, 1);
        assert_eq!(
            stats.memory_stats.limit, host.memory_total,
            "unlimited → host memory"
        );
        assert_eq!(stats.memory_usage(), 700);
        assert_eq!(stats.cpu_stats.cpu_usage.total_usage, 5000);
        assert_eq!(
            stats.cpu_stats.cpu_usage.percpu_usage,
            Some(vec![3000, 2000])
        );
        assert_eq!(
            stats.cpu_stats.cpu_usage.usage_in_usermode,
            3 * NANOS_PER_TICK
        );
        assert_eq!(
            stats.cpu_stats.cpu_usage.usage_in_kernelmode,
            NANOS_PER_TICK
        );
        assert_eq!(stats.cpu_stats.throttling_data.throttled_periods, 2);
        assert_eq!(stats.cpu_stats.online_cpus, 2);
        assert_eq!(
            stats.pids_stats,
            PidsStats {
                current: 3,
                limit: 0
            }
        );
        let bytes = stats.blkio_stats.io_service_bytes_recursive.expect("bytes");
        assert_eq!(bytes.len(), 2);
        assert_eq!((bytes[1].op.as_str(), bytes[1].value), ("Write", 8192));
        assert_eq!(stats.blkio_stats.sectors_recursive, Some(Vec::new()));
    }

    #[test]
    fn v2_stats_convert_microseconds_and_io_stat() {
        let root = tempfile::tempdir().expect("tempdir");
        write(root.path(), "cgroup.controllers", "cpu memory pids io\n");
        let dir = root.path().join("berth/abc");
        write(&dir, "memory.current", "4096\n");
        write(&dir, "memory.max", "1048576\n");
        write(
            &dir,
            "memory.events",
            "low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\n",
        );
        write(&dir, "memory.stat", "anon 100\ninactive_file 96\n");
        write(
            &dir,
            "cpu.stat",
            "usage_usec 10\nuser_usec 6\nsystem_usec 4\nnr_periods 1\nnr_throttled 0\nthrottled_usec 0\n",
        );
        write(&dir, "pids.current", "2\n");
        write(&dir, "pids.max", "100\n");
        write(
            &dir,
            "io.stat",
            "8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n",
        );
        let dirs = locate(root.path(), root.path(), "/berth/abc", 0);
        assert_eq!(dirs, CgroupDirs::V2(dir.clone()));
        let stats = read_cgroup(&dirs, &host_sample(PROC_STAT, MEMINFO));
        assert_eq!(stats.memory_stats.limit, 1048576);
        assert_eq!(stats.memory_stats.failcnt, 1);
        assert_eq!(stats.memory_usage(), 4000);
        assert_eq!(stats.cpu_stats.cpu_usage.total_usage, 10_000);
        assert_eq!(stats.cpu_stats.cpu_usage.usage_in_usermode, 6_000);
        assert_eq!(stats.cpu_stats.cpu_usage.percpu_usage, None);
        assert_eq!(
            stats.pids_stats,
            PidsStats {
                current: 2,
                limit: 100
            }
        );
        let io = stats
            .blkio_stats
            .io_service_bytes_recursive
            .clone()
            .expect("io");
        assert_eq!(
            io.iter()
                .map(|e| (e.op.as_str(), e.value))
                .collect::<Vec<_>>(),
            vec![("read", 10), ("write", 20)]
        );
        assert_eq!(stats.blkio_stats.io_serviced_recursive, None);
        let json = serde_json::to_value(&stats).expect("json");
        assert!(json["blkio_stats"]["io_serviced_recursive"].is_null());
    }

    #[test]
    fn cpu_percent_uses_the_previous_sample() {
        let mut stats = StatsResponse::default();
        stats.cpu_stats.cpu_usage.total_usage = 3_000;
        stats.cpu_stats.system_cpu_usage = 20_000;
        stats.cpu_stats.online_cpus = 2;
        stats.precpu_stats.cpu_usage.total_usage = 1_000;
        stats.precpu_stats.system_cpu_usage = 10_000;
        assert!((stats.cpu_percent() - 40.0).abs() < 1e-9);
    }

    #[test]
    fn a_missing_spec_cgroup_falls_back_to_the_inits_own() {
        let root = tempfile::tempdir().expect("tempdir");
        let proc_root = tempfile::tempdir().expect("proc");
        write(
            &proc_root.path().join("42"),
            "cgroup",
            "4:memory:/elsewhere/x\n3:cpu,cpuacct:/elsewhere/x\n0::/\n",
        );
        std::fs::create_dir_all(root.path().join("memory/elsewhere/x")).expect("mkdir");
        let CgroupDirs::V1(dirs) = locate(root.path(), proc_root.path(), "relative/x", 42) else {
            panic!("v1 expected");
        };
        assert_eq!(dirs["memory"], root.path().join("memory/elsewhere/x"));
        assert_eq!(dirs["cpuacct"], root.path().join("cpuacct/elsewhere/x"));
        assert_eq!(dirs["pids"], root.path().join("pids/relative/x"));
    }

    #[test]
    fn blkio_lines_parse_with_and_without_an_op() {
        let entries = parse_blkio_v1("8:16 Read 1\n8:16 5\nTotal 6\ngarbage\n");
        assert_eq!(entries.len(), 2);
        assert_eq!((entries[0].major, entries[0].minor), (8, 16));
        assert_eq!(entries[1].op, "");
    }
}
