//! Behaviour of the v1 manager against a fake cgroupfs tree.

use oci_spec::runtime::{
    LinuxBlockIoBuilder, LinuxCpuBuilder, LinuxDeviceCgroupBuilder, LinuxDeviceType,
    LinuxHugepageLimitBuilder, LinuxInterfacePriorityBuilder, LinuxMemoryBuilder,
    LinuxNetworkBuilder, LinuxPidsBuilder, LinuxResources, LinuxResourcesBuilder,
    LinuxThrottleDeviceBuilder, LinuxWeightDeviceBuilder,
};

use super::fake_tree::FakeTree;
use super::{new_manager_in, CgroupError, Manager};

const ALL: &[&str] = &[
    "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids",
];

fn manager(t: &FakeTree, path: Option<&str>) -> Box<dyn Manager> {
    new_manager_in(&t.fs(), path, "ctr1").expect("manager")
}

fn applied(t: &FakeTree) -> Box<dyn Manager> {
    let m = manager(t, Some("/berth/ctr1"));
    m.apply(4242).expect("apply");
    m
}

fn memory(limit: i64, swap: Option<i64>) -> LinuxResources {
    let mut b = LinuxMemoryBuilder::default().limit(limit);
    if let Some(s) = swap {
        b = b.swap(s);
    }
    LinuxResourcesBuilder::default()
        .memory(b.build().expect("memory"))
        .build()
        .expect("resources")
}

#[test]
fn apply_creates_the_cgroup_in_every_hierarchy_and_moves_the_pid_in() {
    let t = FakeTree::v1(ALL);
    let m = applied(&t);
    for c in ALL {
        assert_eq!(
            t.read(&format!("{c}/berth/ctr1/cgroup.procs")),
            "4242",
            "{c}"
        );
    }
    assert_eq!(m.paths().len(), ALL.len());
    assert!(m.paths().contains(&t.root.join("memory/berth/ctr1")));
}

#[test]
fn apply_fills_new_cpusets_from_the_parent() {
    let t = FakeTree::v1(ALL);
    applied(&t);
    assert_eq!(t.read("cpuset/berth/cpuset.cpus"), "0-1");
    assert_eq!(t.read("cpuset/berth/ctr1/cpuset.cpus"), "0-1");
    assert_eq!(t.read("cpuset/berth/ctr1/cpuset.mems"), "0");
}

/// Two containers created at once under a new parent: the other process made the parent
/// but has not filled its cpuset yet. Copying its empty cpus would leave ours empty and the
/// join would fail with ENOSPC, so the parent is filled first.
#[test]
fn apply_fills_a_parent_cpuset_that_another_process_left_empty() {
    let t = FakeTree::v1(ALL);
    std::fs::create_dir(t.root.join("cpuset/berth")).expect("mkdir");
    t.write("cpuset/berth/cpuset.cpus", "");
    t.write("cpuset/berth/cpuset.mems", "");
    applied(&t);
    assert_eq!(t.read("cpuset/berth/cpuset.cpus"), "0-1");
    assert_eq!(t.read("cpuset/berth/cpuset.mems"), "0");
    assert_eq!(t.read("cpuset/berth/ctr1/cpuset.cpus"), "0-1");
    assert_eq!(t.read("cpuset/berth/ctr1/cpuset.mems"), "0");
}

#[test]
fn the_root_cgroup_is_refused() {
    let t = FakeTree::v1(ALL);
    let err = new_manager_in(&t.fs(), Some("/"), "x")
        .err()
        .expect("root refused");
    assert!(matches!(err, CgroupError::RootCgroup { .. }), "{err}");
    let err = new_manager_in(&t.fs(), Some("/a/.."), "x")
        .err()
        .expect("root refused");
    assert!(matches!(err, CgroupError::RootCgroup { .. }), "{err}");
}

#[test]
fn memory_limit_reservation_swappiness_and_oom_killer_are_written() {
    let t = FakeTree::v1(ALL);
    let m = applied(&t);
    let mem = LinuxMemoryBuilder::default()
        .limit(256 << 20)
        .reservation(128 << 20)
        .swap(512 << 20)
        .swappiness(10u64)
        .disable_oom_killer(true)
        .build()
        .expect("memory");
    m.set(
        &LinuxResourcesBuilder::default()
            .memory(mem)
            .build()
            .expect("r"),
    )
    .expect("set");
    let d = "memory/berth/ctr1";
    assert_eq!(
        t.read(&format!("{d}/memory.limit_in_bytes")),
        (256 << 20).to_string()
    );
    assert_eq!(
        t.read(&format!("{d}/memory.soft_limit_in_bytes")),
        (128 << 20).to_string()
    );
    assert_eq!(
        t.read(&format!("{d}/memory.memsw.limit_in_bytes")),
        (512 << 20).to_string()
    );
    assert_eq!(t.read(&format!("{d}/memory.swappiness")), "10");
    assert_eq!(t.read(&format!("{d}/memory.oom_control")), "1");
}

#[test]
fn unlimited_memory_without_swap_makes_swap_unlimited_too() {
    let t = FakeTree::v1(ALL);
    let m = applied(&t);
    m.set(&memory(-1, None)).expect("set");
    assert_eq!(t.read("memory/berth/ctr1/memory.limit_in_bytes"), "-1");
    assert_eq!(
        t.read("memory/berth/ctr1/memory.memsw.limit_in_bytes"),
        "-1"
    );
}

#[test]
fn swap_without_swap_accounting_is_a_clear_error() {
    let t = FakeTree::v1(ALL);
    let m = applied(&t);
    std::fs::remove_file(t.root.join("memory/berth/ctr1/memory.memsw.limit_in_bytes")).expect("rm");
    let err = m
        .set(&memory(1 << 30, Some(2 << 30)))
        .expect_err("no memsw");
    assert!(err.to_string().contains("swapaccount=1"), "{err}");
    m.set(&memory(1 << 30, None))
        .expect("a plain limit still works");
}

#[test]
fn swappiness_above_100_is_rejected() {
    let t = FakeTree::v1(ALL);
    let m = applied(&t);
    let mem = LinuxMemoryBuilder::default()
        .swappiness(101u64)
        .build()
        .expect("memory");
    let err = m
        .set(
            &LinuxResourcesBuilder::default()
                .memory(mem)
                .build()
                .expect("r"),
        )
        .expect_err("101");
    assert!(err.to_string().contains("101"), "{err}");
}

#[test]
fn cpu_shares_quota_period_realtime_and_cpuset_are_written() {
    let t = FakeTree::v1(ALL);
    let m = applied(&t);
    let cpu = LinuxCpuBuilder::default()
        .shares(512u64)
        .quota(50_000i64)
        .period(200_000u64)
        .realtime_period(1_000_000u64)
        .realtime_runtime(950_000i64)
        .cpus("1")
        .mems("0")
        .build()
        .expect("cpu");
    m.set(
        &LinuxResourcesBuilder::default()
            .cpu(cpu)
            .build()
            .expect("r"),
    )
    .expect("set");
    assert_eq!(t.read("cpu/berth/ctr1/cpu.shares"), "512");
    assert_eq!(t.read("cpu/berth/ctr1/cpu.cfs_quota_us"), "50000");
    assert_eq!(t.read("cpu/berth/ctr1/cpu.cfs_period_us"), "200000");
    assert_eq!(t.read("cpu/berth/ctr1/cpu.rt_period_us"), "1000000");
    assert_eq!(t.read("cpu/berth/ctr1/cpu.rt_runtime_us"), "950000");
    assert_eq!(t.read("cpuset/berth/ctr1/cpuset.cpus"), "1");
    assert_eq!(t.read("cpuset/berth/ctr1/cpuset.mems"), "0");
}

#[test]
fn pids_limit_zero_means_unlimited() {
    let t = FakeTree::v1(ALL);
    let m = applied(&t);
    let r = |limit| {
        LinuxResourcesBuilder::default()
            .pids(
                LinuxPidsBuilder::default()
                    .limit(limit)
                    .build()
                    .expect("pids"),
            )
            .build()
            .expect("r")
    };
    m.set(&r(64)).expect("set");
    assert_eq!(t.read("pids/berth/ctr1/pids.max"), "64");
    m.set(&r(0)).expect("set");
    assert_eq!(t.read("pids/berth/ctr1/pids.max"), "max");
}

#[test]
fn blkio_weights_use_bfq_files_when_cfq_is_absent() {
    let t = FakeTree::v1(ALL);
    let m = applied(&t);
    let b = LinuxBlockIoBuilder::default()
        .weight(300u16)
        .weight_device(vec![LinuxWeightDeviceBuilder::default()
            .major(8)
            .minor(0)
            .weight(200u16)
            .build()
            .expect("wd")])
        .throttle_read_bps_device(vec![LinuxThrottleDeviceBuilder::default()
            .major(8)
            .minor(0)
            .rate(1_048_576u64)
            .build()
            .expect("td")])
        .throttle_write_iops_device(vec![LinuxThrottleDeviceBuilder::default()
            .major(8)
            .minor(16)
            .rate(100u64)
            .build()
            .expect("td")])
        .build()
        .expect("blkio");
    m.set(
        &LinuxResourcesBuilder::default()
            .block_io(b)
            .build()
            .expect("r"),
    )
    .expect("set");
    let d = "blkio/berth/ctr1";
    assert_eq!(t.read(&format!("{d}/blkio.bfq.weight")), "300");
    assert_eq!(t.read(&format!("{d}/blkio.bfq.weight_device")), "8:0 200");
    assert_eq!(
        t.read(&format!("{d}/blkio.throttle.read_bps_device")),
        "8:0 1048576"
    );
    assert_eq!(
        t.read(&format!("{d}/blkio.throttle.write_iops_device")),
        "8:16 100"
    );
}

#[test]
fn leaf_weight_without_cfq_is_a_clear_error() {
    let t = FakeTree::v1(ALL);
    let m = applied(&t);
    let b = LinuxBlockIoBuilder::default()
        .leaf_weight(300u16)
        .build()
        .expect("blkio");
    let err = m
        .set(
            &LinuxResourcesBuilder::default()
                .block_io(b)
                .build()
                .expect("r"),
        )
        .expect_err("no cfq");
    assert!(err.to_string().contains("bfq"), "{err}");
}

fn hugepages(limit: i64) -> LinuxResources {
    let h = LinuxHugepageLimitBuilder::default()
        .page_size("2MB")
        .limit(limit)
        .build()
        .expect("h");
    LinuxResourcesBuilder::default()
        .hugepage_limits(vec![h])
        .build()
        .expect("r")
}

#[test]
fn missing_hugetlb_is_fine_until_a_limit_is_asked_for() {
    let t = FakeTree::v1(ALL);
    let m = applied(&t);
    m.set(
        &LinuxResourcesBuilder::default()
            .hugepage_limits(vec![])
            .build()
            .expect("r"),
    )
    .expect("no limit asked");
    m.set(&memory(1 << 30, None))
        .expect("other resources still work");
    let err = m.set(&hugepages(1 << 21)).expect_err("limit asked");
    assert!(
        matches!(
            err,
            CgroupError::MissingController {
                controller: "hugetlb",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("unified"), "{err}");
}

#[test]
fn hugetlb_limits_are_written_per_page_size() {
    let t = FakeTree::v1(&["memory", "hugetlb"]);
    let m = applied(&t);
    m.set(&hugepages(4 << 21)).expect("set");
    assert_eq!(
        t.read("hugetlb/berth/ctr1/hugetlb.2MB.limit_in_bytes"),
        (4 << 21).to_string()
    );
    let h = LinuxHugepageLimitBuilder::default()
        .page_size("../x")
        .limit(1)
        .build()
        .expect("h");
    let err = m
        .set(
            &LinuxResourcesBuilder::default()
                .hugepage_limits(vec![h])
                .build()
                .expect("r"),
        )
        .expect_err("bad size");
    assert!(err.to_string().contains("../x"), "{err}");
}

#[test]
fn devices_end_with_runc_default_allowed_devices() {
    let t = FakeTree::v1(ALL);
    let m = applied(&t);
    let rule = LinuxDeviceCgroupBuilder::default()
        .allow(false)
        .typ(LinuxDeviceType::B)
        .major(8i64)
        .minor(0i64)
        .access("rwm")
        .build()
        .expect("rule");
    m.set(
        &LinuxResourcesBuilder::default()
            .devices(vec![rule])
            .build()
            .expect("r"),
    )
    .expect("set");
    // Each write replaces the fake file: the last of each kind stays. The spec's deny of
    // 8:0 is already implied by the leading deny-all.
    assert_eq!(t.read("devices/berth/ctr1/devices.deny"), "a *:* rwm");
    assert_eq!(t.read("devices/berth/ctr1/devices.allow"), "c 136:* rwm");
}

#[test]
fn device_rules_without_a_devices_controller_are_refused() {
    let t = FakeTree::v1(&["memory"]);
    let m = applied(&t);
    let err = m
        .set(
            &LinuxResourcesBuilder::default()
                .devices(vec![])
                .build()
                .expect("r"),
        )
        .expect_err("the default rules cannot be enforced");
    assert!(
        matches!(
            err,
            CgroupError::MissingController {
                controller: "devices",
                ..
            }
        ),
        "{err}"
    );
    m.set(&LinuxResourcesBuilder::default().build().expect("r"))
        .expect("no device rules asked for");
}

#[test]
fn net_cls_and_net_prio_are_written_or_reported_missing() {
    let with = FakeTree::v1(&["net_cls", "net_prio"]);
    let without = FakeTree::v1(&["memory"]);
    let n = LinuxNetworkBuilder::default()
        .class_id(0x0010_0001u32)
        .priorities(vec![LinuxInterfacePriorityBuilder::default()
            .name("eth0")
            .priority(5u32)
            .build()
            .expect("prio")])
        .build()
        .expect("network");
    let r = LinuxResourcesBuilder::default()
        .network(n)
        .build()
        .expect("r");
    applied(&with).set(&r).expect("set");
    assert_eq!(with.read("net_cls/berth/ctr1/net_cls.classid"), "1048577");
    assert_eq!(
        with.read("net_prio/berth/ctr1/net_prio.ifpriomap"),
        "eth0 5"
    );
    let err = applied(&without).set(&r).expect_err("no net_cls");
    assert!(err.to_string().contains("net_cls"), "{err}");
}

#[test]
fn unified_keys_are_refused_on_v1() {
    let t = FakeTree::v1(ALL);
    let m = applied(&t);
    let r = LinuxResourcesBuilder::default()
        .unified(
            [("memory.high".to_string(), "1G".to_string())]
                .into_iter()
                .collect::<std::collections::HashMap<_, _>>(),
        )
        .build()
        .expect("r");
    let err = m.set(&r).expect_err("unified on v1");
    assert!(err.to_string().contains("unified"), "{err}");
}

#[test]
fn freeze_and_thaw_go_through_freezer_state() {
    let t = FakeTree::v1(ALL);
    let m = applied(&t);
    assert!(!m.is_frozen().expect("state"));
    m.freeze().expect("freeze");
    assert_eq!(t.read("freezer/berth/ctr1/freezer.state"), "FROZEN");
    assert!(m.is_frozen().expect("state"));
    m.thaw().expect("thaw");
    assert!(!m.is_frozen().expect("state"));
}

#[test]
fn freezing_without_a_freezer_is_a_clear_error() {
    let t = FakeTree::v1(&["memory"]);
    let m = applied(&t);
    let err = m.freeze().expect_err("no freezer");
    assert!(err.to_string().contains("freezer"), "{err}");
}

#[test]
fn destroy_removes_only_what_apply_created_even_from_another_process() {
    let t = FakeTree::v1(ALL);
    std::fs::create_dir(t.root.join("memory/berth")).expect("pre-existing parent");
    applied(&t);
    // `delete` runs in another process: a fresh manager for the same path finds the record.
    let again = manager(&t, Some("/berth/ctr1"));
    again.destroy().expect("destroy");
    for c in ALL {
        assert!(!t.exists(&format!("{c}/berth/ctr1")), "{c}");
    }
    assert!(t.exists("memory/berth"), "pre-existing parent kept");
    assert!(!t.exists("cpu/berth"), "parent we created removed");
    again.destroy().expect("destroy twice is fine");
}

#[test]
fn destroy_never_removes_a_cgroup_we_only_joined() {
    let t = FakeTree::v1(&["memory", "pids"]);
    std::fs::create_dir_all(t.root.join("memory/system.slice")).expect("theirs");
    std::fs::create_dir_all(t.root.join("pids/system.slice")).expect("theirs");
    let m = manager(&t, Some("/system.slice"));
    m.destroy().expect("destroy");
    assert!(t.exists("memory/system.slice") && t.exists("pids/system.slice"));
}

#[test]
fn pids_come_from_the_memory_hierarchy_including_sub_cgroups() {
    let t = FakeTree::v1(&["memory", "pids"]);
    let m = applied(&t);
    t.write("memory/berth/ctr1/cgroup.procs", "10\n11\n");
    std::fs::create_dir(t.root.join("memory/berth/ctr1/inner")).expect("inner");
    t.write("memory/berth/ctr1/inner/cgroup.procs", "12\n");
    assert_eq!(m.pids().expect("pids"), vec![10, 11, 12]);
    m.destroy()
        .expect("destroy removes the container's own sub-cgroups");
    assert!(!t.exists("memory/berth"));
}

#[test]
fn oom_kills_and_stats_are_read_from_v1_files() {
    let t = FakeTree::v1(&["cpu", "cpuacct", "cpuset", "memory", "pids", "blkio"]);
    let m = applied(&t);
    let w = |f: &str, v: &str| t.write(f, v);
    w(
        "memory/berth/ctr1/memory.oom_control",
        "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
    );
    w("memory/berth/ctr1/memory.usage_in_bytes", "4096");
    w("memory/berth/ctr1/memory.max_usage_in_bytes", "8192");
    w("memory/berth/ctr1/memory.failcnt", "2");
    w("memory/berth/ctr1/memory.limit_in_bytes", "1048576");
    w("memory/berth/ctr1/memory.stat", "cache 100\nrss 200\n");
    w("cpuacct/berth/ctr1/cpuacct.usage", "123456");
    w("cpuacct/berth/ctr1/cpuacct.usage_percpu", "100000 23456 \n");
    w("cpuacct/berth/ctr1/cpuacct.stat", "user 3\nsystem 4\n");
    w(
        "cpu/berth/ctr1/cpu.stat",
        "nr_periods 10\nnr_throttled 2\nthrottled_time 5000\n",
    );
    w("pids/berth/ctr1/pids.current", "7");
    w(
        "blkio/berth/ctr1/blkio.throttle.io_serviced_recursive",
        "8:0 Read 5\nTotal 5\n",
    );
    assert_eq!(m.oom_kill_count().expect("oom"), 3);
    let s = m.stats().expect("stats");
    assert_eq!(s.memory.usage.usage, 4096);
    assert_eq!(s.memory.usage.max, 8192);
    assert_eq!(s.memory.usage.failcnt, 2);
    assert_eq!(s.memory.usage.limit, 1_048_576);
    assert_eq!(s.memory.cache, 100);
    assert_eq!(s.memory.raw.get("rss"), Some(&200));
    assert_eq!(s.memory.event_count.oom_kill, 3);
    assert_eq!(s.cpu.usage.total, 123_456);
    assert_eq!(s.cpu.usage.percpu, vec![100_000, 23_456]);
    assert_eq!(s.cpu.usage.user, 30_000_000);
    assert_eq!(s.cpu.usage.kernel, 40_000_000);
    assert_eq!(s.cpu.throttling.throttled_periods, 2);
    assert_eq!(s.pids.current, 7);
    assert_eq!(s.pids.limit, 0, "max is reported as 0");
    assert_eq!(s.blkio.io_serviced_recursive.len(), 1);
    assert_eq!(s.blkio.io_serviced_recursive[0].value, 5);
    assert_eq!(
        s.cpuset.cpus,
        vec![0, 1],
        "inherited from the parent at apply"
    );
    assert_eq!(s.cpuset.mems, vec![0]);
}

#[test]
fn oom_kill_count_is_zero_without_a_memory_controller() {
    let t = FakeTree::v1(&["pids"]);
    assert_eq!(applied(&t).oom_kill_count().expect("oom"), 0);
}

#[test]
fn missing_controllers_are_named_in_errors() {
    let t = FakeTree::v1(&["memory"]);
    let m = applied(&t);
    let r = LinuxResourcesBuilder::default()
        .pids(LinuxPidsBuilder::default().limit(5).build().expect("pids"))
        .build()
        .expect("r");
    let err = m.set(&r).expect_err("no pids controller");
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
}

#[test]
fn enter_moves_the_caller_in_and_finish_moves_it_back_to_its_own_cgroup() {
    // The fake process is in the root memory cgroup and knows no other hierarchy.
    let t = FakeTree::v1(&["memory"]);
    let m = manager(&t, Some("/berth/ctr1"));
    let entered = m.enter().expect("enter").expect("own cgroup known");
    assert_eq!(t.read("memory/berth/ctr1/tasks"), "0");
    t.write("memory/tasks", "");
    entered.finish(Some(4242)).expect("finish");
    assert_eq!(t.read("memory/tasks"), "0");
    // The child was born in the cgroup: its pid is not written afterwards.
    assert!(t.read("memory/berth/ctr1/cgroup.procs").trim().is_empty());
}

#[test]
fn enter_is_declined_when_our_own_cgroup_in_a_hierarchy_is_unknown() {
    let t = FakeTree::v1(ALL);
    let m = manager(&t, Some("/berth/ctr1"));
    assert!(m.enter().expect("enter").is_none());
    // Nothing was created: the caller falls back to apply(pid) after the clone.
    assert!(!t.exists("cpu/berth/ctr1"));
}
