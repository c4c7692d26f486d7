//! Behaviour of the v2 manager against a fake cgroupfs tree.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use oci_spec::runtime::{
    LinuxBlockIoBuilder, LinuxCpuBuilder, LinuxDeviceCgroupBuilder, LinuxDeviceType,
    LinuxHugepageLimitBuilder, LinuxMemoryBuilder, LinuxNetworkBuilder, LinuxPidsBuilder,
    LinuxResources, LinuxResourcesBuilder, LinuxThrottleDeviceBuilder, LinuxWeightDeviceBuilder,
};

use super::bpf_program::Insn;
use super::fake_tree::FakeTree;
use super::hierarchy::CgroupPath;
use super::v2::V2Manager;
use super::v2_resources::{cpu_max, cpu_weight, io_weight, swap_v2};
use super::{new_manager_in, CgroupError, Manager};

const ALL: &[&str] = &["cpuset", "cpu", "io", "memory", "hugetlb", "pids"];

static INSTALLED: Mutex<Vec<(PathBuf, Vec<Insn>)>> = Mutex::new(Vec::new());

fn record_filter(dir: &Path, prog: &[Insn]) -> Result<(), CgroupError> {
    INSTALLED
        .lock()
        .expect("lock")
        .push((dir.to_path_buf(), prog.to_vec()));
    Ok(())
}

fn v2(t: &FakeTree, path: &str) -> V2Manager {
    let mut m =
        V2Manager::new(&t.fs(), &t.root, &CgroupPath::new(Some(path), "ctr1")).expect("manager");
    m.install_device_filter = record_filter;
    m
}

fn applied(t: &FakeTree) -> V2Manager {
    let m = v2(t, "/berth/ctr1");
    m.apply(4242).expect("apply");
    m
}

fn resources(f: impl FnOnce(LinuxResourcesBuilder) -> LinuxResourcesBuilder) -> LinuxResources {
    f(LinuxResourcesBuilder::default())
        .build()
        .expect("resources")
}

#[test]
fn pure_v2_hosts_get_the_v2_manager() {
    let t = FakeTree::v2(ALL);
    let m = new_manager_in(&t.fs(), Some("/berth/ctr1"), "ctr1").expect("manager");
    assert_eq!(m.paths(), vec![t.root.join("berth/ctr1")]);
}

#[test]
fn apply_delegates_controllers_down_to_the_container_and_moves_the_pid() {
    let t = FakeTree::v2(ALL);
    let root_before = t.read("cgroup.subtree_control");
    applied(&t);
    assert_eq!(t.read("berth/ctr1/cgroup.procs"), "4242");
    // The fake file keeps the last "+controller" written; the root is never written.
    assert_eq!(t.read("berth/cgroup.subtree_control"), "+pids");
    assert_eq!(t.read("cgroup.subtree_control"), root_before);
    assert_eq!(t.read("cgroup.procs"), "1\n");
}

#[test]
fn controllers_the_root_does_not_delegate_are_missing_not_forced() {
    let t = FakeTree::v2(&["memory", "pids"]);
    t.write("cgroup.subtree_control", "memory");
    let m = applied(&t);
    m.set(&resources(|r| {
        r.memory(
            LinuxMemoryBuilder::default()
                .limit(1i64 << 30)
                .build()
                .expect("m"),
        )
    }))
    .expect("memory is delegated");
    let err = m
        .set(&resources(|r| {
            r.pids(LinuxPidsBuilder::default().limit(9).build().expect("p"))
        }))
        .expect_err("pids is not");
    assert!(
        matches!(
            err,
            CgroupError::MissingController {
                controller: "pids",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(t.read("cgroup.subtree_control"), "memory");
}

#[test]
fn memory_maps_to_max_low_and_swap_without_memory() {
    let t = FakeTree::v2(ALL);
    let m = applied(&t);
    let mem = LinuxMemoryBuilder::default()
        .limit(1i64 << 30)
        .reservation(1i64 << 29)
        .swap(3i64 << 30)
        .swappiness(10u64)
        .build()
        .expect("m");
    m.set(&resources(|r| r.memory(mem))).expect("set");
    assert_eq!(t.read("berth/ctr1/memory.max"), (1u64 << 30).to_string());
    assert_eq!(t.read("berth/ctr1/memory.low"), (1u64 << 29).to_string());
    assert_eq!(
        t.read("berth/ctr1/memory.swap.max"),
        (2u64 << 30).to_string()
    );
    let unlimited = LinuxMemoryBuilder::default()
        .limit(-1i64)
        .build()
        .expect("m");
    m.set(&resources(|r| r.memory(unlimited))).expect("set");
    assert_eq!(t.read("berth/ctr1/memory.max"), "max");
    assert_eq!(t.read("berth/ctr1/memory.swap.max"), "max");
}

#[test]
fn swap_conversion_follows_runc() {
    assert_eq!(swap_v2(0, -1).expect("both unlimited"), -1);
    assert_eq!(swap_v2(-1, 100).expect("unlimited swap"), -1);
    assert_eq!(swap_v2(0, 100).expect("unset"), 0);
    assert_eq!(swap_v2(300, 100).expect("difference"), 200);
    assert!(swap_v2(50, 100).is_err(), "memsw below memory");
    assert!(swap_v2(300, 0).is_err(), "swap without a memory limit");
}

#[test]
fn cpu_shares_quota_and_period_convert_like_runc() {
    assert_eq!(cpu_weight(2), 1);
    assert_eq!(cpu_weight(1024), 39);
    assert_eq!(cpu_weight(262_144), 10_000);
    assert_eq!(cpu_max(50_000, 100_000), "50000 100000");
    assert_eq!(cpu_max(-1, 0), "max");
    assert_eq!(cpu_max(0, 250_000), "max 250000");
    let t = FakeTree::v2(ALL);
    let m = applied(&t);
    let cpu = LinuxCpuBuilder::default()
        .shares(512u64)
        .quota(20_000i64)
        .period(100_000u64)
        .cpus("0")
        .mems("0")
        .build()
        .expect("cpu");
    m.set(&resources(|r| r.cpu(cpu))).expect("set");
    assert_eq!(t.read("berth/ctr1/cpu.weight"), "20");
    assert_eq!(t.read("berth/ctr1/cpu.max"), "20000 100000");
    assert_eq!(t.read("berth/ctr1/cpuset.cpus"), "0");
    assert_eq!(t.read("berth/ctr1/cpuset.mems"), "0");
}

#[test]
fn realtime_cpu_is_refused_on_v2() {
    let t = FakeTree::v2(ALL);
    let m = applied(&t);
    let cpu = LinuxCpuBuilder::default()
        .realtime_runtime(1000i64)
        .build()
        .expect("cpu");
    let err = m.set(&resources(|r| r.cpu(cpu))).expect_err("rt");
    assert!(matches!(err, CgroupError::Unsupported { .. }), "{err}");
}

#[test]
fn pids_limit_goes_to_pids_max() {
    let t = FakeTree::v2(ALL);
    let m = applied(&t);
    m.set(&resources(|r| {
        r.pids(LinuxPidsBuilder::default().limit(100).build().expect("p"))
    }))
    .expect("set");
    assert_eq!(t.read("berth/ctr1/pids.max"), "100");
    m.set(&resources(|r| {
        r.pids(LinuxPidsBuilder::default().limit(-1).build().expect("p"))
    }))
    .expect("set");
    assert_eq!(t.read("berth/ctr1/pids.max"), "max");
}

#[test]
fn io_weights_convert_and_throttles_go_to_io_max() {
    assert_eq!(io_weight(10), 1);
    assert_eq!(io_weight(500), 4950);
    assert_eq!(io_weight(1000), 10_000);
    let t = FakeTree::v2(ALL);
    let m = applied(&t);
    let b = LinuxBlockIoBuilder::default()
        .weight(500u16)
        .throttle_write_bps_device(vec![LinuxThrottleDeviceBuilder::default()
            .major(8)
            .minor(0)
            .rate(2_097_152u64)
            .build()
            .expect("t")])
        .build()
        .expect("io");
    m.set(&resources(|r| r.block_io(b))).expect("set");
    assert_eq!(t.read("berth/ctr1/io.weight"), "4950");
    assert_eq!(t.read("berth/ctr1/io.max"), "8:0 wbps=2097152");
}

#[test]
fn bfq_takes_blkio_weights_unconverted() {
    let t = FakeTree::v2(ALL);
    let m = applied(&t);
    t.write("berth/ctr1/io.bfq.weight", "default 100");
    let b = LinuxBlockIoBuilder::default()
        .weight_device(vec![LinuxWeightDeviceBuilder::default()
            .major(8)
            .minor(0)
            .weight(300u16)
            .build()
            .expect("wd")])
        .build()
        .expect("io");
    m.set(&resources(|r| r.block_io(b))).expect("set");
    assert_eq!(t.read("berth/ctr1/io.bfq.weight"), "8:0 300");
}

#[test]
fn hugetlb_limits_go_to_size_max() {
    let t = FakeTree::v2(ALL);
    let m = applied(&t);
    let h = LinuxHugepageLimitBuilder::default()
        .page_size("2MB")
        .limit(8i64 << 20)
        .build()
        .expect("h");
    m.set(&resources(|r| r.hugepage_limits(vec![h])))
        .expect("set");
    assert_eq!(
        t.read("berth/ctr1/hugetlb.2MB.max"),
        (8u64 << 20).to_string()
    );
    let h = LinuxHugepageLimitBuilder::default()
        .page_size("1GB")
        .limit(1i64)
        .build()
        .expect("h");
    let err = m
        .set(&resources(|r| r.hugepage_limits(vec![h])))
        .expect_err("no 1GB pages");
    assert!(err.to_string().contains("1GB"), "{err}");
}

#[test]
fn unified_keys_are_written_verbatim_and_checked() {
    let t = FakeTree::v2(ALL);
    let m = applied(&t);
    t.write("berth/ctr1/memory.high", "max");
    let map = |k: &str, v: &str| {
        [(k.to_string(), v.to_string())]
            .into_iter()
            .collect::<std::collections::HashMap<_, _>>()
    };
    m.set(&resources(|r| r.unified(map("memory.high", "512M"))))
        .expect("set");
    assert_eq!(t.read("berth/ctr1/memory.high"), "512M");
    let err = m
        .set(&resources(|r| r.unified(map("../cgroup.procs", "1"))))
        .expect_err("escape");
    assert!(
        err.to_string().contains("not a cgroup interface file"),
        "{err}"
    );
    let err = m
        .set(&resources(|r| r.unified(map("rdma.max", "x"))))
        .expect_err("missing");
    assert!(err.to_string().contains("rdma controller"), "{err}");
}

#[test]
fn net_cls_is_refused_on_v2() {
    let t = FakeTree::v2(ALL);
    let m = applied(&t);
    let n = LinuxNetworkBuilder::default()
        .class_id(1u32)
        .build()
        .expect("n");
    let err = m.set(&resources(|r| r.network(n))).expect_err("net_cls");
    assert!(err.to_string().contains("net_cls"), "{err}");
}

#[test]
fn devices_install_a_filter_on_the_container_cgroup() {
    let t = FakeTree::v2(ALL);
    let m = applied(&t);
    let rule = LinuxDeviceCgroupBuilder::default()
        .allow(true)
        .typ(LinuxDeviceType::C)
        .major(10i64)
        .minor(229i64)
        .access("rw")
        .build()
        .expect("rule");
    m.set(&resources(|r| r.devices(vec![rule]))).expect("set");
    let installed = INSTALLED.lock().expect("lock");
    let (_, prog) = installed
        .iter()
        .find(|(d, _)| d == &t.root.join("berth/ctr1"))
        .expect("a filter for this cgroup");
    // The spec's rule shows up as a comparison with its major and minor.
    assert!(prog.iter().any(|i| i.imm == 229), "{prog:?}");
    assert!(prog.iter().any(|i| i.imm == 10), "{prog:?}");
    drop(installed);
    m.set(&resources(|r| {
        r.pids(LinuxPidsBuilder::default().limit(3).build().expect("p"))
    }))
    .expect("devices: None leaves the filter alone");
}

/// Stands in for the kernel's asynchronous freezer: mirrors cgroup.freeze into cgroup.events.
struct FakeFreezer {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeFreezer {
    fn start(dir: PathBuf) -> FakeFreezer {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let want = std::fs::read_to_string(dir.join("cgroup.freeze")).unwrap_or_default();
                // Skip a read that raced the manager's truncating write; publish by rename
                // so readers never see a half-written file.
                if !want.trim().is_empty() {
                    let events = format!("populated 1\nfrozen {}\n", want.trim());
                    let _ = std::fs::write(dir.join("events.tmp"), events);
                    let _ = std::fs::rename(dir.join("events.tmp"), dir.join("cgroup.events"));
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        });
        FakeFreezer {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for FakeFreezer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn freeze_waits_for_cgroup_events_to_report_frozen() {
    let t = FakeTree::v2(ALL);
    let m = applied(&t);
    let _kernel = FakeFreezer::start(t.root.join("berth/ctr1"));
    m.freeze().expect("freeze");
    assert!(m.is_frozen().expect("state"));
    assert!(t.read("berth/ctr1/cgroup.events").contains("frozen 1"));
    m.thaw().expect("thaw");
    assert!(!m.is_frozen().expect("state"));
    assert!(t.read("berth/ctr1/cgroup.events").contains("frozen 0"));
}

#[test]
fn stats_and_oom_kills_come_from_v2_files() {
    let t = FakeTree::v2(ALL);
    let m = applied(&t);
    let w = |f: &str, v: &str| t.write(&format!("berth/ctr1/{f}"), v);
    w("cpu.stat", "usage_usec 100\nuser_usec 60\nsystem_usec 40\nnr_periods 5\nnr_throttled 1\nthrottled_usec 7\n");
    w("memory.current", "4096");
    w("memory.max", "max");
    w("memory.swap.current", "1024");
    w("memory.swap.max", "max");
    w("memory.stat", "anon 10\nfile 20\n");
    w("memory.events", "low 0\nhigh 1\nmax 2\noom 3\noom_kill 4\n");
    w("pids.current", "3");
    w("pids.max", "50");
    w(
        "io.stat",
        "8:0 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0 dios=0\n",
    );
    w("hugetlb.2MB.current", "2097152");
    w("hugetlb.2MB.events", "max 6\n");
    w("cpuset.cpus.effective", "0-3\n");
    assert_eq!(m.oom_kill_count().expect("oom"), 4);
    let s = m.stats().expect("stats");
    assert_eq!(s.cpu.usage.total, 100_000);
    assert_eq!(s.cpu.usage.user, 60_000);
    assert_eq!(s.cpu.usage.kernel, 40_000);
    assert_eq!(s.cpu.throttling.throttled_time, 7_000);
    assert_eq!(s.memory.usage.usage, 4096);
    assert_eq!(s.memory.usage.limit, u64::MAX);
    assert_eq!(
        s.memory.swap.usage, 5120,
        "swap is reported with memory, as v1"
    );
    assert_eq!(s.memory.cache, 20);
    assert_eq!(s.memory.event_count.oom_kill, 4);
    assert_eq!(s.memory.event_count.max, 2);
    assert_eq!(s.pids.current, 3);
    assert_eq!(s.pids.limit, 50);
    assert_eq!(s.blkio.io_service_bytes_recursive.len(), 2);
    assert_eq!(s.blkio.io_serviced_recursive[1].op, "Write");
    assert_eq!(s.hugetlb["2MB"].usage, 2_097_152);
    assert_eq!(s.hugetlb["2MB"].failcnt, 6);
    assert_eq!(s.cpuset.cpus, vec![0, 1, 2, 3]);
    let json = serde_json::to_value(&s).expect("json");
    assert_eq!(json["blkio"]["ioServiceBytesRecursive"][0]["op"], "Read");
    assert_eq!(json["memory"]["raw"]["anon"], 10);
}

#[test]
fn destroy_removes_the_created_cgroup_and_parent_only() {
    let t = FakeTree::v2(ALL);
    let m = applied(&t);
    let again = v2(&t, "/berth/ctr1");
    again.destroy().expect("destroy");
    assert!(!t.exists("berth"));
    assert!(t.exists("cgroup.procs"), "the root is untouched");
    m.destroy().expect("second destroy finds nothing left");
}

#[test]
fn enter_creates_the_cgroup_and_offers_it_to_clone_into_cgroup() {
    let t = FakeTree::v2(ALL);
    let m = new_manager_in(&t.fs(), Some("/berth/ctr1"), "ctr1").expect("manager");
    let entered = m.enter().expect("enter").expect("v2 supports enter");
    assert!(t.exists("berth/ctr1"));
    assert!(entered.clone_into().is_some());
    entered.finish(Some(4242)).expect("finish");
    // The child was born in the cgroup: no pid is written afterwards.
    assert!(t.read("berth/ctr1/cgroup.procs").trim().is_empty());
}

#[test]
fn enter_without_clone_into_cgroup_writes_the_pid_after_the_clone() {
    let t = FakeTree::v2(ALL);
    let m = new_manager_in(&t.fs(), Some("/berth/ctr1"), "ctr1").expect("manager");
    let mut entered = m.enter().expect("enter").expect("v2 supports enter");
    entered.without_clone_into();
    assert!(entered.clone_into().is_none());
    entered.finish(Some(4242)).expect("finish");
    assert_eq!(t.read("berth/ctr1/cgroup.procs"), "4242");
}
