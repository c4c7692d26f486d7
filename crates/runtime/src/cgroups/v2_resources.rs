//! linux.resources on cgroup v2, mapped to the unified hierarchy's files as runc's fs2
//! driver does (including its conversions from v1 values).

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxRdma, LinuxResources};

use super::control_file::{exists, write};
use super::v2::V2Manager;
use super::{bpf_program, devices, v1_resources, CgroupError};

pub(crate) fn set(m: &V2Manager, r: &LinuxResources) -> Result<(), CgroupError> {
    if let Some(mem) = r.memory() {
        set_memory(m, mem)?;
    }
    if let Some(cpu) = r.cpu() {
        set_cpu(m, cpu)?;
    }
    if let Some(p) = r.pids() {
        let dir = m.need("pids", "linux.resources.pids")?;
        write(dir, "pids.max", &v1_resources::pids_value(p.limit()))?;
    }
    if let Some(b) = r.block_io() {
        set_io(m, b)?;
    }
    if let Some(limits) = r.hugepage_limits().as_ref().filter(|l| !l.is_empty()) {
        let dir = m.need("hugetlb", "linux.resources.hugepageLimits")?;
        for h in limits {
            let size = v1_resources::page_size(h)?;
            let file = format!("hugetlb.{size}.max");
            if !exists(dir, &file) {
                return Err(CgroupError::InvalidValue {
                    resource: "linux.resources.hugepageLimits",
                    reason: format!("the kernel has no {size} huge pages"),
                });
            }
            write(dir, &file, &h.limit().to_string())?;
            let rsvd = format!("hugetlb.{size}.rsvd.max");
            if exists(dir, &rsvd) {
                write(dir, &rsvd, &h.limit().to_string())?;
            }
        }
    }
    if let Some(n) = r.network() {
        if n.class_id().is_some() || n.priorities().as_ref().is_some_and(|p| !p.is_empty()) {
            return Err(CgroupError::Unsupported {
                resource: "linux.resources.network (net_cls/net_prio)",
                version: "v2",
            });
        }
    }
    if let Some(rdma) = r.rdma().as_ref().filter(|x| !x.is_empty()) {
        let dir = m.need("rdma", "linux.resources.rdma")?;
        for (dev, limit) in rdma {
            write(dir, "rdma.max", &rdma_value(dev, limit))?;
        }
    }
    if let Some(list) = r.devices() {
        let rules = devices::container_rules(list)?;
        let prog = bpf_program::generate(&devices::Effective::from_rules(&rules));
        (m.install_device_filter)(&m.dir, &prog)?;
    }
    if let Some(unified) = r.unified() {
        set_unified(m, unified)?;
    }
    Ok(())
}

/// `mlx4_0 hca_handle=2 hca_object=max` (same syntax on v1 and v2).
pub(crate) fn rdma_value(dev: &str, l: &LinuxRdma) -> String {
    let n = |v: Option<u32>| v.map_or_else(|| "max".to_string(), |v| v.to_string());
    format!(
        "{dev} hca_handle={} hca_object={}",
        n(l.hca_handles()),
        n(l.hca_objects())
    )
}

/// runc's ConvertMemorySwapToCgroupV2Value: v1's swap is memory+swap, v2's is swap alone.
/// -1 is unlimited, 0 is unset.
pub(crate) fn swap_v2(swap: i64, memory: i64) -> Result<i64, CgroupError> {
    let bad = |reason: &str| CgroupError::InvalidValue {
        resource: "linux.resources.memory.swap",
        reason: reason.to_string(),
    };
    if memory == -1 && swap == 0 {
        return Ok(-1);
    }
    if swap == -1 || swap == 0 {
        return Ok(swap);
    }
    if memory == 0 || memory == -1 {
        return Err(bad("a swap limit needs a memory limit"));
    }
    if memory < 0 || swap < memory {
        return Err(bad("memory+swap must be at least the memory limit"));
    }
    Ok(swap - memory)
}

fn limit_text(v: i64) -> String {
    if v < 0 {
        "max".to_string()
    } else {
        v.to_string()
    }
}

fn set_memory(m: &V2Manager, mem: &LinuxMemory) -> Result<(), CgroupError> {
    let limit = mem.limit().unwrap_or(0);
    let swap = swap_v2(mem.swap().unwrap_or(0), limit)?;
    let low = mem.reservation().unwrap_or(0);
    // kernel, kernelTCP, swappiness and disableOOMKiller have no v2 files; runc ignores them.
    if limit == 0 && swap == 0 && low == 0 {
        return Ok(());
    }
    let dir = m.need("memory", "linux.resources.memory")?;
    if swap != 0 {
        if !exists(dir, "memory.swap.max") {
            if swap != -1 {
                return Err(CgroupError::MissingController {
                    resource: "linux.resources.memory.swap",
                    controller: "memory swap accounting (memory.swap.max)",
                    hint: " (boot the kernel with swapaccount=1)",
                });
            }
        } else {
            write(dir, "memory.swap.max", &limit_text(swap))?;
        }
    }
    if limit != 0 {
        write(dir, "memory.max", &limit_text(limit))?;
    }
    if low != 0 {
        write(dir, "memory.low", &low.to_string())?;
    }
    Ok(())
}

/// runc's ConvertCPUSharesToCgroupV2Value: [2, 262144] onto [1, 10000] linearly.
pub(crate) fn cpu_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.saturating_sub(2) * 9999) / 262_142
}

/// runc's cpu.max: "max" or the quota, then the period when given.
pub(crate) fn cpu_max(quota: i64, period: u64) -> String {
    let mut s = if quota > 0 {
        quota.to_string()
    } else {
        "max".to_string()
    };
    if period != 0 {
        s.push_str(&format!(" {period}"));
    }
    s
}

fn set_cpu(m: &V2Manager, cpu: &LinuxCpu) -> Result<(), CgroupError> {
    if cpu.realtime_period().is_some_and(|v| v != 0)
        || cpu.realtime_runtime().is_some_and(|v| v != 0)
    {
        return Err(CgroupError::Unsupported {
            resource: "linux.resources.cpu realtime period/runtime",
            version: "v2",
        });
    }
    let shares = cpu.shares().unwrap_or(0);
    let quota = cpu.quota().unwrap_or(0);
    let period = cpu.period().unwrap_or(0);
    if shares != 0 || quota != 0 || period != 0 || cpu.burst().is_some() || cpu.idle().is_some() {
        let dir = m.need("cpu", "linux.resources.cpu")?;
        if shares != 0 {
            write(dir, "cpu.weight", &cpu_weight(shares).to_string())?;
        }
        if quota != 0 || period != 0 {
            write(dir, "cpu.max", &cpu_max(quota, period))?;
        }
        if let Some(b) = cpu.burst() {
            write(dir, "cpu.max.burst", &b.to_string())?;
        }
        if let Some(i) = cpu.idle() {
            write(dir, "cpu.idle", &i.to_string())?;
        }
    }
    let cpus = cpu.cpus().as_deref().filter(|s| !s.is_empty());
    let mems = cpu.mems().as_deref().filter(|s| !s.is_empty());
    if cpus.is_some() || mems.is_some() {
        let dir = m.need("cpuset", "linux.resources.cpu.cpus/mems")?;
        if let Some(c) = cpus {
            write(dir, "cpuset.cpus", c)?;
        }
        if let Some(c) = mems {
            write(dir, "cpuset.mems", c)?;
        }
    }
    Ok(())
}

/// runc's convertBlkIOToIOWeightValue: blkio [10, 1000] onto io.weight [1, 10000].
pub(crate) fn io_weight(blkio_weight: u16) -> u64 {
    if blkio_weight == 0 {
        return 0;
    }
    1 + (u64::from(blkio_weight).saturating_sub(10) * 9999) / 990
}

fn set_io(m: &V2Manager, b: &LinuxBlockIo) -> Result<(), CgroupError> {
    let throttles = [
        ("rbps", b.throttle_read_bps_device()),
        ("wbps", b.throttle_write_bps_device()),
        ("riops", b.throttle_read_iops_device()),
        ("wiops", b.throttle_write_iops_device()),
    ];
    let weights = b.weight_device().as_deref().unwrap_or(&[]);
    let asked = b.weight().is_some_and(|w| w != 0)
        || weights.iter().any(|d| d.weight().is_some())
        || throttles
            .iter()
            .any(|(_, t)| t.as_ref().is_some_and(|v| !v.is_empty()));
    if !asked {
        return Ok(());
    }
    let dir = m.need("io", "linux.resources.blockIO")?;
    // BFQ takes blkio-range weights as they are; io.weight needs the conversion.
    let bfq = exists(dir, "io.bfq.weight");
    if let Some(w) = b.weight().filter(|w| *w != 0) {
        if bfq {
            write(dir, "io.bfq.weight", &w.to_string())?;
        } else {
            write(dir, "io.weight", &io_weight(w).to_string())?;
        }
    }
    for d in weights {
        if let Some(w) = d.weight() {
            let (file, value) = if bfq {
                ("io.bfq.weight", u64::from(w))
            } else {
                ("io.weight", io_weight(w))
            };
            write(dir, file, &format!("{}:{} {value}", d.major(), d.minor()))?;
        }
    }
    for (key, list) in throttles {
        for t in list.iter().flatten() {
            write(
                dir,
                "io.max",
                &format!("{}:{} {key}={}", t.major(), t.minor(), t.rate()),
            )?;
        }
    }
    Ok(())
}

/// Unified keys are interface file names written verbatim: refuse anything that could
/// name a file outside the container's cgroup.
fn set_unified(
    m: &V2Manager,
    unified: &std::collections::HashMap<String, String>,
) -> Result<(), CgroupError> {
    let mut keys: Vec<&String> = unified.keys().collect();
    keys.sort();
    for key in keys {
        if key.contains('/') || key.starts_with('.') || !key.contains('.') {
            return Err(CgroupError::InvalidValue {
                resource: "linux.resources.unified",
                reason: format!("{key:?} is not a cgroup interface file name"),
            });
        }
        if !exists(&m.dir, key) {
            let controller = key.split('.').next().unwrap_or_default();
            return Err(CgroupError::InvalidValue {
                resource: "linux.resources.unified",
                reason: format!("{key:?} does not exist in the container's cgroup (is the {controller} controller enabled?)"),
            });
        }
        write(&m.dir, key, &unified[key])?;
    }
    Ok(())
}
