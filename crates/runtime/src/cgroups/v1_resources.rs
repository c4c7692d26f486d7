//! linux.resources on cgroup v1: each resource to its controller's files, as runc's fs
//! driver writes them. A resource that is not asked for never needs its controller.

use std::path::Path;

use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxHugepageLimit, LinuxMemory, LinuxNetwork, LinuxResources,
};

use super::control_file::{self, exists, write};
use super::devices;
use super::v1::V1Manager;
use super::CgroupError;

pub(crate) const HUGETLB_HINT: &str =
    " (on hybrid hosts hugetlb may exist only in the cgroup2 unified hierarchy, which the v1 driver does not use)";

pub(crate) fn set(m: &V1Manager, r: &LinuxResources) -> Result<(), CgroupError> {
    if r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
        return Err(CgroupError::Unsupported {
            resource: "linux.resources.unified",
            version: "v1 (unified keys need cgroup v2)",
        });
    }
    if let Some(mem) = r.memory() {
        set_memory(m, mem)?;
    }
    if let Some(cpu) = r.cpu() {
        set_cpu(m, cpu)?;
        set_cpuset(m, cpu)?;
    }
    if let Some(p) = r.pids() {
        let dir = need(m, "pids", "linux.resources.pids", "")?;
        write(dir, "pids.max", &pids_value(p.limit()))?;
    }
    if let Some(b) = r.block_io() {
        set_blkio(m, b)?;
    }
    if let Some(h) = r.hugepage_limits() {
        set_hugetlb(m, h)?;
    }
    if let Some(n) = r.network() {
        set_network(m, n)?;
    }
    if let Some(rdma) = r.rdma().as_ref().filter(|x| !x.is_empty()) {
        let dir = need(m, "rdma", "linux.resources.rdma", "")?;
        for (dev, limit) in rdma {
            write(
                dir,
                "rdma.max",
                &super::v2_resources::rdma_value(dev, limit),
            )?;
        }
    }
    if let Some(list) = r.devices() {
        set_devices(m, list)?;
    }
    Ok(())
}

fn need<'a>(
    m: &'a V1Manager,
    controller: &'static str,
    resource: &'static str,
    hint: &'static str,
) -> Result<&'a Path, CgroupError> {
    m.dir(controller).ok_or(CgroupError::MissingController {
        resource,
        controller,
        hint,
    })
}

/// runc: a limit of 0 or below means unlimited.
pub(crate) fn pids_value(limit: i64) -> String {
    if limit > 0 {
        limit.to_string()
    } else {
        "max".to_string()
    }
}

fn set_memory(m: &V1Manager, mem: &LinuxMemory) -> Result<(), CgroupError> {
    let asked = mem.limit().is_some_and(|v| v != 0)
        || mem.reservation().is_some_and(|v| v != 0)
        || mem.swap().is_some_and(|v| v != 0)
        || mem.kernel().is_some()
        || mem.kernel_tcp().is_some()
        || mem.swappiness().is_some()
        || mem.disable_oom_killer() == Some(true);
    if !asked {
        return Ok(());
    }
    let dir = need(m, "memory", "linux.resources.memory", "")?;
    let limit = mem.limit().unwrap_or(0);
    let mut swap = mem.swap().unwrap_or(0);
    // runc: an unlimited memory with swap unset means both unlimited.
    if limit == -1 && swap == 0 {
        swap = -1;
    }
    let has_memsw = exists(dir, "memory.memsw.limit_in_bytes");
    if swap != 0 && !has_memsw && swap != -1 {
        return Err(CgroupError::MissingController {
            resource: "linux.resources.memory.swap",
            controller: "memory swap accounting (memory.memsw)",
            hint: " (boot the kernel with swapaccount=1)",
        });
    }
    let set_swap = |v: i64| -> Result<(), CgroupError> {
        if v == 0 || !has_memsw {
            return Ok(());
        }
        write(dir, "memory.memsw.limit_in_bytes", &v.to_string())
    };
    let set_limit = |v: i64| -> Result<(), CgroupError> {
        if v == 0 {
            return Ok(());
        }
        write(dir, "memory.limit_in_bytes", &v.to_string()).map_err(busy_is_usage)
    };
    // The kernel keeps memory <= memory+swap at every step, so when raising both the swap
    // limit goes first (as runc orders it).
    let swap_first = limit != 0
        && swap != 0
        && (swap == -1 || {
            let cur = control_file::read(dir, "memory.limit_in_bytes")?;
            control_file::parse_u64(dir, "memory.limit_in_bytes", &cur)? < swap as u64
        });
    if swap_first {
        set_swap(swap)?;
        set_limit(limit)?;
    } else {
        set_limit(limit)?;
        set_swap(swap)?;
    }
    if let Some(v) = mem.reservation().filter(|v| *v != 0) {
        write(dir, "memory.soft_limit_in_bytes", &v.to_string())?;
    }
    if let Some(v) = mem.kernel() {
        write_deprecated(dir, "memory.kmem.limit_in_bytes", v)?;
    }
    if let Some(v) = mem.kernel_tcp() {
        write_deprecated(dir, "memory.kmem.tcp.limit_in_bytes", v)?;
    }
    if let Some(v) = mem.swappiness() {
        if v > 100 {
            return Err(CgroupError::InvalidValue {
                resource: "linux.resources.memory.swappiness",
                reason: format!("{v} is above 100"),
            });
        }
        write(dir, "memory.swappiness", &v.to_string())?;
    }
    if mem.disable_oom_killer() == Some(true) {
        write(dir, "memory.oom_control", "1")?;
    }
    Ok(())
}

/// Kernel memory limits are gone from recent kernels (the file is missing or refuses with
/// EOPNOTSUPP); runc ignores them there, and so does berth.
fn write_deprecated(dir: &Path, file: &str, v: i64) -> Result<(), CgroupError> {
    if !exists(dir, file) {
        return Ok(());
    }
    match write(dir, file, &v.to_string()) {
        Err(CgroupError::Write { source, .. })
            if matches!(source.raw_os_error(), Some(libc::EOPNOTSUPP | libc::EINVAL)) =>
        {
            Ok(())
        }
        other => other,
    }
}

fn busy_is_usage(e: CgroupError) -> CgroupError {
    match e {
        CgroupError::Write { source, value, .. } if source.raw_os_error() == Some(libc::EBUSY) => {
            CgroupError::InvalidValue {
                resource: "linux.resources.memory.limit",
                reason: format!("{value} is below the container's current memory usage"),
            }
        }
        other => other,
    }
}

fn set_cpu(m: &V1Manager, cpu: &LinuxCpu) -> Result<(), CgroupError> {
    let shares = cpu.shares().filter(|v| *v != 0);
    let quota = cpu.quota().filter(|v| *v != 0);
    let period = cpu.period().filter(|v| *v != 0);
    let asked = shares.is_some()
        || quota.is_some()
        || period.is_some()
        || cpu.burst().is_some()
        || cpu.idle().is_some()
        || cpu.realtime_period().is_some_and(|v| v != 0)
        || cpu.realtime_runtime().is_some_and(|v| v != 0);
    if !asked {
        return Ok(());
    }
    let dir = need(m, "cpu", "linux.resources.cpu", "")?;
    if let Some(s) = shares {
        write(dir, "cpu.shares", &s.to_string())?;
        // The kernel clamps out-of-range shares silently; runc reports it.
        let got = control_file::read(dir, "cpu.shares")?;
        if got.trim() != s.to_string() {
            return Err(CgroupError::InvalidValue {
                resource: "linux.resources.cpu.shares",
                reason: format!("{s} is out of range (the kernel set {})", got.trim()),
            });
        }
    }
    if let Some(p) = period {
        match write(dir, "cpu.cfs_period_us", &p.to_string()) {
            // A new period can conflict with the old quota: set the quota first, then retry.
            Err(CgroupError::Write { source, .. })
                if source.raw_os_error() == Some(libc::EINVAL) && quota.is_some() =>
            {
                write(dir, "cpu.cfs_quota_us", &quota.unwrap_or(-1).to_string())?;
                write(dir, "cpu.cfs_period_us", &p.to_string())?;
            }
            other => other?,
        }
    }
    if let Some(q) = quota {
        write(dir, "cpu.cfs_quota_us", &q.to_string())?;
    }
    if let Some(b) = cpu.burst() {
        write(dir, "cpu.cfs_burst_us", &b.to_string())?;
    }
    if let Some(i) = cpu.idle() {
        write(dir, "cpu.idle", &i.to_string())?;
    }
    if let Some(p) = cpu.realtime_period().filter(|v| *v != 0) {
        write(dir, "cpu.rt_period_us", &p.to_string())?;
    }
    if let Some(r) = cpu.realtime_runtime().filter(|v| *v != 0) {
        write(dir, "cpu.rt_runtime_us", &r.to_string())?;
    }
    Ok(())
}

fn set_cpuset(m: &V1Manager, cpu: &LinuxCpu) -> Result<(), CgroupError> {
    let cpus = cpu.cpus().as_deref().filter(|s| !s.is_empty());
    let mems = cpu.mems().as_deref().filter(|s| !s.is_empty());
    if cpus.is_none() && mems.is_none() {
        return Ok(());
    }
    let dir = need(m, "cpuset", "linux.resources.cpu.cpus/mems", "")?;
    if let Some(c) = cpus {
        write(dir, "cpuset.cpus", c)?;
    }
    if let Some(c) = mems {
        write(dir, "cpuset.mems", c)?;
    }
    Ok(())
}

fn set_blkio(m: &V1Manager, b: &LinuxBlockIo) -> Result<(), CgroupError> {
    let throttles = [
        (
            "blkio.throttle.read_bps_device",
            b.throttle_read_bps_device(),
        ),
        (
            "blkio.throttle.write_bps_device",
            b.throttle_write_bps_device(),
        ),
        (
            "blkio.throttle.read_iops_device",
            b.throttle_read_iops_device(),
        ),
        (
            "blkio.throttle.write_iops_device",
            b.throttle_write_iops_device(),
        ),
    ];
    // A zero weight means "unset", as runc reads it (Docker always sends `weight: 0`).
    let asked = b.weight().is_some_and(|w| w != 0)
        || b.leaf_weight().is_some_and(|w| w != 0)
        || b.weight_device().as_ref().is_some_and(|v| !v.is_empty())
        || throttles
            .iter()
            .any(|(_, t)| t.as_ref().is_some_and(|v| !v.is_empty()));
    if !asked {
        return Ok(());
    }
    let dir = need(m, "blkio", "linux.resources.blockIO", "")?;
    // CFQ's files when present, else BFQ's (kernels >= 5.0 have only BFQ), as runc.
    let (weight_file, weight_device_file) = if exists(dir, "blkio.weight") {
        ("blkio.weight", "blkio.weight_device")
    } else {
        ("blkio.bfq.weight", "blkio.bfq.weight_device")
    };
    let need_file = |file: &'static str| -> Result<(), CgroupError> {
        if exists(dir, file) {
            Ok(())
        } else {
            Err(CgroupError::Unsupported {
                resource: "blkio weights",
                version:
                    "v1 on this host (no CFQ or BFQ io scheduler files: select the bfq scheduler)",
            })
        }
    };
    if let Some(w) = b.weight().filter(|w| *w != 0) {
        need_file(weight_file)?;
        write(dir, weight_file, &w.to_string())?;
    }
    if let Some(w) = b.leaf_weight().filter(|w| *w != 0) {
        need_file("blkio.leaf_weight")?;
        write(dir, "blkio.leaf_weight", &w.to_string())?;
    }
    for d in b.weight_device().iter().flatten() {
        if let Some(w) = d.weight() {
            need_file(weight_device_file)?;
            write(
                dir,
                weight_device_file,
                &format!("{}:{} {w}", d.major(), d.minor()),
            )?;
        }
        if let Some(w) = d.leaf_weight() {
            need_file("blkio.leaf_weight_device")?;
            write(
                dir,
                "blkio.leaf_weight_device",
                &format!("{}:{} {w}", d.major(), d.minor()),
            )?;
        }
    }
    for (file, list) in throttles {
        for t in list.iter().flatten() {
            write(
                dir,
                file,
                &format!("{}:{} {}", t.major(), t.minor(), t.rate()),
            )?;
        }
    }
    Ok(())
}

/// Page sizes go into file names: refuse anything that is not a plain size like "2MB".
pub(crate) fn page_size(h: &LinuxHugepageLimit) -> Result<&str, CgroupError> {
    let s = h.page_size().as_str();
    if s.is_empty() || !s.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(CgroupError::InvalidValue {
            resource: "linux.resources.hugepageLimits",
            reason: format!("page size {s:?} is not a size like \"2MB\""),
        });
    }
    Ok(s)
}

fn set_hugetlb(m: &V1Manager, limits: &[LinuxHugepageLimit]) -> Result<(), CgroupError> {
    if limits.is_empty() {
        return Ok(());
    }
    let dir = need(m, "hugetlb", "linux.resources.hugepageLimits", HUGETLB_HINT)?;
    for h in limits {
        let size = page_size(h)?;
        let file = format!("hugetlb.{size}.limit_in_bytes");
        if !exists(dir, &file) {
            return Err(CgroupError::InvalidValue {
                resource: "linux.resources.hugepageLimits",
                reason: format!("the kernel has no {size} huge pages"),
            });
        }
        write(dir, &file, &h.limit().to_string())?;
        // runc also sets the reservation limit when the kernel has it.
        let rsvd = format!("hugetlb.{size}.rsvd.limit_in_bytes");
        if exists(dir, &rsvd) {
            write(dir, &rsvd, &h.limit().to_string())?;
        }
    }
    Ok(())
}

fn set_network(m: &V1Manager, n: &LinuxNetwork) -> Result<(), CgroupError> {
    if let Some(id) = n.class_id() {
        let dir = need(m, "net_cls", "linux.resources.network.classID", "")?;
        write(dir, "net_cls.classid", &id.to_string())?;
    }
    let prios = n.priorities().as_deref().unwrap_or(&[]);
    if !prios.is_empty() {
        let dir = need(m, "net_prio", "linux.resources.network.priorities", "")?;
        for p in prios {
            write(
                dir,
                "net_prio.ifpriomap",
                &format!("{} {}", p.name(), p.priority()),
            )?;
        }
    }
    Ok(())
}

fn set_devices(
    m: &V1Manager,
    list: &[oci_spec::runtime::LinuxDeviceCgroup],
) -> Result<(), CgroupError> {
    let rules = devices::container_rules(list)?;
    // Like runc, a missing devices controller is fatal even for the default rules: the
    // container would otherwise get every host device.
    let Some(dir) = m.dir("devices") else {
        return Err(CgroupError::MissingController {
            resource: "linux.resources.devices",
            controller: "devices",
            hint: "",
        });
    };
    for (file, value) in devices::v1_writes(&rules) {
        write(dir, file, &value)?;
    }
    Ok(())
}
