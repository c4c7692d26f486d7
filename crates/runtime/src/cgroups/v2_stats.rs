//! Stats from cgroup v2 files in runc's v1-compatible shape (runc's fs2 driver).

use std::collections::BTreeMap;
use std::path::Path;

use super::control_file::{keyed_value, parse_keyed, read_optional, read_u64_or_zero};
use super::stats::{self, BlkioEntry, Hugetlb, MemoryEntry, Stats};
use super::CgroupError;

pub(crate) fn stats(dir: &Path) -> Result<Stats, CgroupError> {
    let mut s = Stats::default();
    if let Some(t) = read_optional(dir, "cpu.stat")? {
        let u = &mut s.cpu.usage;
        u.total = keyed_value(&t, "usage_usec") * 1000;
        u.user = keyed_value(&t, "user_usec") * 1000;
        u.kernel = keyed_value(&t, "system_usec") * 1000;
        let th = &mut s.cpu.throttling;
        th.periods = keyed_value(&t, "nr_periods");
        th.throttled_periods = keyed_value(&t, "nr_throttled");
        th.throttled_time = keyed_value(&t, "throttled_usec") * 1000;
    }
    memory(dir, &mut s)?;
    let effective = |f: &str| -> Result<Vec<u16>, CgroupError> {
        Ok(stats::parse_id_list(
            &read_optional(dir, f)?.unwrap_or_default(),
        ))
    };
    s.cpuset.cpus = effective("cpuset.cpus.effective")?;
    s.cpuset.mems = effective("cpuset.mems.effective")?;
    s.pids.current = read_u64_or_zero(dir, "pids.current")?;
    let limit = read_u64_or_zero(dir, "pids.max")?;
    s.pids.limit = if limit == u64::MAX { 0 } else { limit };
    if let Some(t) = read_optional(dir, "io.stat")? {
        io(&t, &mut s);
    }
    for size in stats::hugetlb_sizes(dir, ".max") {
        if size == "rsvd" {
            continue;
        }
        let events = read_optional(dir, &format!("hugetlb.{size}.events"))?.unwrap_or_default();
        let entry = Hugetlb {
            usage: read_u64_or_zero(dir, &format!("hugetlb.{size}.current"))?,
            max: 0,
            failcnt: keyed_value(&events, "max"),
        };
        s.hugetlb.insert(size, entry);
    }
    Ok(s)
}

fn memory_entry(dir: &Path, prefix: &str) -> Result<MemoryEntry, CgroupError> {
    Ok(MemoryEntry {
        usage: read_u64_or_zero(dir, &format!("{prefix}.current"))?,
        limit: read_u64_or_zero(dir, &format!("{prefix}.max"))?,
        max: read_u64_or_zero(dir, &format!("{prefix}.peak"))?,
        failcnt: 0,
    })
}

fn memory(dir: &Path, s: &mut Stats) -> Result<(), CgroupError> {
    if read_optional(dir, "memory.current")?.is_none() {
        return Ok(());
    }
    let usage = memory_entry(dir, "memory")?;
    let mut swap = memory_entry(dir, "memory.swap")?;
    // v1 reports memory+swap; runc combines v2's numbers the same way.
    swap.usage = swap.usage.saturating_add(usage.usage);
    if swap.limit != u64::MAX {
        swap.limit = swap.limit.saturating_add(usage.limit);
    }
    s.memory.usage = usage;
    s.memory.swap = swap;
    if let Some(t) = read_optional(dir, "memory.stat")? {
        s.memory.raw = parse_keyed(&t).into_iter().collect::<BTreeMap<_, _>>();
        s.memory.cache = s.memory.raw.get("file").copied().unwrap_or(0);
    }
    if let Some(t) = read_optional(dir, "memory.events")? {
        let e = &mut s.memory.event_count;
        e.low = keyed_value(&t, "low");
        e.high = keyed_value(&t, "high");
        e.max = keyed_value(&t, "max");
        e.oom = keyed_value(&t, "oom");
        e.oom_kill = keyed_value(&t, "oom_kill");
    }
    Ok(())
}

/// `8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0` lines.
fn io(text: &str, s: &mut Stats) {
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let Some((major, minor)) = fields.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (major.parse::<u64>(), minor.parse::<u64>()) else {
            continue;
        };
        for kv in fields {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(value) = v.parse::<u64>() else {
                continue;
            };
            let (list, op) = match k {
                "rbytes" => (&mut s.blkio.io_service_bytes_recursive, "Read"),
                "wbytes" => (&mut s.blkio.io_service_bytes_recursive, "Write"),
                "rios" => (&mut s.blkio.io_serviced_recursive, "Read"),
                "wios" => (&mut s.blkio.io_serviced_recursive, "Write"),
                _ => continue,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.to_string(),
                value,
            });
        }
    }
}
