//! Stats from cgroup v1 files, as runc's fs driver reads them. A controller that is not
//! mounted leaves its part at zero.

use std::collections::BTreeMap;
use std::path::Path;

use super::control_file::{self, keyed_value, parse_keyed, read_optional, read_u64_or_zero};
use super::stats::{self, Hugetlb, MemoryEntry, Stats};
use super::v1::V1Manager;
use super::CgroupError;

/// cpuacct.stat counts in USER_HZ ticks, which is 100 on Linux.
const NANOS_PER_TICK: u64 = 1_000_000_000 / 100;

pub(crate) fn stats(m: &V1Manager) -> Result<Stats, CgroupError> {
    let mut s = Stats::default();
    if let Some(dir) = m.dir("cpuacct") {
        cpuacct(dir, &mut s)?;
    }
    if let Some(dir) = m.dir("cpu") {
        if let Some(t) = read_optional(dir, "cpu.stat")? {
            s.cpu.throttling.periods = keyed_value(&t, "nr_periods");
            s.cpu.throttling.throttled_periods = keyed_value(&t, "nr_throttled");
            s.cpu.throttling.throttled_time = keyed_value(&t, "throttled_time");
        }
    }
    if let Some(dir) = m.dir("memory") {
        memory(dir, &mut s)?;
    }
    if let Some(dir) = m.dir("cpuset") {
        cpuset(dir, &mut s)?;
    }
    if let Some(dir) = m.dir("pids") {
        s.pids.current = read_u64_or_zero(dir, "pids.current")?;
        s.pids.limit = unlimited_is_zero(read_u64_or_zero(dir, "pids.max")?);
    }
    if let Some(dir) = m.dir("blkio") {
        blkio(dir, &mut s)?;
    }
    if let Some(dir) = m.dir("hugetlb") {
        for size in stats::hugetlb_sizes(dir, ".limit_in_bytes") {
            let f = |name: &str| format!("hugetlb.{size}.{name}");
            let entry = Hugetlb {
                usage: read_u64_or_zero(dir, &f("usage_in_bytes"))?,
                max: read_u64_or_zero(dir, &f("max_usage_in_bytes"))?,
                failcnt: read_u64_or_zero(dir, &f("failcnt"))?,
            };
            s.hugetlb.insert(size, entry);
        }
    }
    Ok(s)
}

fn unlimited_is_zero(v: u64) -> u64 {
    if v == u64::MAX {
        0
    } else {
        v
    }
}

fn numbers(dir: &Path, file: &str) -> Result<Vec<u64>, CgroupError> {
    let Some(text) = read_optional(dir, file)? else {
        return Ok(Vec::new());
    };
    text.split_whitespace()
        .map(|n| control_file::parse_u64(dir, file, n))
        .collect()
}

fn cpuacct(dir: &Path, s: &mut Stats) -> Result<(), CgroupError> {
    let u = &mut s.cpu.usage;
    u.total = read_u64_or_zero(dir, "cpuacct.usage")?;
    u.percpu = numbers(dir, "cpuacct.usage_percpu")?;
    u.percpu_kernel = numbers(dir, "cpuacct.usage_percpu_sys")?;
    u.percpu_user = numbers(dir, "cpuacct.usage_percpu_user")?;
    if let Some(t) = read_optional(dir, "cpuacct.stat")? {
        u.user = keyed_value(&t, "user") * NANOS_PER_TICK;
        u.kernel = keyed_value(&t, "system") * NANOS_PER_TICK;
    }
    Ok(())
}

fn cpuset(dir: &Path, s: &mut Stats) -> Result<(), CgroupError> {
    let c = &mut s.cpuset;
    c.cpus = stats::parse_id_list(&read_optional(dir, "cpuset.cpus")?.unwrap_or_default());
    c.mems = stats::parse_id_list(&read_optional(dir, "cpuset.mems")?.unwrap_or_default());
    c.cpu_exclusive = read_u64_or_zero(dir, "cpuset.cpu_exclusive")?;
    c.mem_hardwall = read_u64_or_zero(dir, "cpuset.mem_hardwall")?;
    c.mem_exclusive = read_u64_or_zero(dir, "cpuset.mem_exclusive")?;
    c.memory_migrate = read_u64_or_zero(dir, "cpuset.memory_migrate")?;
    c.memory_spread_page = read_u64_or_zero(dir, "cpuset.memory_spread_page")?;
    c.memory_spread_slab = read_u64_or_zero(dir, "cpuset.memory_spread_slab")?;
    c.memory_pressure = read_u64_or_zero(dir, "cpuset.memory_pressure")?;
    c.sched_load_balance = read_u64_or_zero(dir, "cpuset.sched_load_balance")?;
    if let Some(t) = read_optional(dir, "cpuset.sched_relax_domain_level")? {
        c.sched_relax_domain_level = t.trim().parse().unwrap_or(0);
    }
    Ok(())
}

fn memory_entry(dir: &Path, prefix: &str) -> Result<MemoryEntry, CgroupError> {
    let f = |name: &str| {
        if prefix.is_empty() {
            format!("memory.{name}")
        } else {
            format!("memory.{prefix}.{name}")
        }
    };
    Ok(MemoryEntry {
        limit: read_u64_or_zero(dir, &f("limit_in_bytes"))?,
        usage: read_u64_or_zero(dir, &f("usage_in_bytes"))?,
        max: read_u64_or_zero(dir, &f("max_usage_in_bytes"))?,
        failcnt: read_u64_or_zero(dir, &f("failcnt"))?,
    })
}

fn memory(dir: &Path, s: &mut Stats) -> Result<(), CgroupError> {
    s.memory.usage = memory_entry(dir, "")?;
    s.memory.swap = memory_entry(dir, "memsw")?;
    s.memory.kernel = memory_entry(dir, "kmem")?;
    s.memory.kernel_tcp = memory_entry(dir, "kmem.tcp")?;
    if let Some(t) = read_optional(dir, "memory.stat")? {
        s.memory.raw = parse_keyed(&t).into_iter().collect::<BTreeMap<_, _>>();
        s.memory.cache = s.memory.raw.get("cache").copied().unwrap_or(0);
    }
    if let Some(t) = read_optional(dir, "memory.oom_control")? {
        s.memory.event_count.oom_kill = keyed_value(&t, "oom_kill");
    }
    Ok(())
}

/// CFQ's statistics when present, else BFQ's, else the throttle ones, as runc chooses.
fn blkio(dir: &Path, s: &mut Stats) -> Result<(), CgroupError> {
    let b = &mut s.blkio;
    if control_file::exists(dir, "blkio.io_serviced_recursive") {
        b.io_service_bytes_recursive =
            stats::parse_blkio_v1(dir, "blkio.io_service_bytes_recursive")?;
        b.io_serviced_recursive = stats::parse_blkio_v1(dir, "blkio.io_serviced_recursive")?;
        b.io_queued_recursive = stats::parse_blkio_v1(dir, "blkio.io_queued_recursive")?;
        b.io_service_time_recursive =
            stats::parse_blkio_v1(dir, "blkio.io_service_time_recursive")?;
        b.io_wait_time_recursive = stats::parse_blkio_v1(dir, "blkio.io_wait_time_recursive")?;
        b.io_merged_recursive = stats::parse_blkio_v1(dir, "blkio.io_merged_recursive")?;
        b.io_time_recursive = stats::parse_blkio_v1(dir, "blkio.time_recursive")?;
        b.sectors_recursive = stats::parse_blkio_v1(dir, "blkio.sectors_recursive")?;
    } else if control_file::exists(dir, "blkio.bfq.io_serviced_recursive") {
        b.io_service_bytes_recursive =
            stats::parse_blkio_v1(dir, "blkio.bfq.io_service_bytes_recursive")?;
        b.io_serviced_recursive = stats::parse_blkio_v1(dir, "blkio.bfq.io_serviced_recursive")?;
    } else {
        b.io_service_bytes_recursive =
            stats::parse_blkio_v1(dir, "blkio.throttle.io_service_bytes_recursive")?;
        b.io_serviced_recursive =
            stats::parse_blkio_v1(dir, "blkio.throttle.io_serviced_recursive")?;
    }
    Ok(())
}
