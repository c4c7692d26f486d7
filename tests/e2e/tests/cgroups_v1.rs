//! The cgroups module of berth-runtime against this host's real cgroup hierarchies (root):
//! on the v1 controllers, limits written and read back, freeze/thaw, OOM kill counting, stats,
//! and destroy removing only what it created; on the hybrid host's cgroup2 mount
//! (/sys/fs/cgroup/unified, no controllers) the v2 manager's eBPF device filter, freezer and
//! cleanup, which need no controller. Every cgroup and process is cleaned up by guards.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use berth_runtime::cgroups::{
    new_manager, new_manager_in, CgroupError, CgroupFs, Layout, Manager, DEFAULT_RECORD_DIR,
};
use oci_spec::runtime::{
    LinuxCpuBuilder, LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType,
    LinuxHugepageLimitBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResourcesBuilder,
};

/// Kills the test's processes, thaws and destroys the cgroup, and removes any directory the
/// test itself made, whatever happened before.
struct Guard {
    children: Vec<Child>,
    manager: Box<dyn Manager>,
    own_dirs: Vec<PathBuf>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.manager.thaw();
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = self.manager.destroy();
        for d in self.manager.paths().iter().chain(self.own_dirs.iter()) {
            let _ = fs::remove_dir(d);
        }
    }
}

fn cgroup_name(test: &str) -> String {
    format!("/berth-test-{}-{test}", std::process::id())
}

fn guard(test: &str) -> Guard {
    berth_e2e::require_root();
    let name = cgroup_name(test);
    Guard {
        children: Vec::new(),
        manager: new_manager(Some(&name), test, false).expect("manager"),
        own_dirs: Vec::new(),
    }
}

fn sleeper() -> Child {
    Command::new("/bin/busybox")
        .args(["sleep", "1000"])
        .spawn()
        .expect("spawn sleep")
}

fn read(dir: &Path, file: &str) -> String {
    fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("read {}/{file}: {e}", dir.display()))
        .trim()
        .to_string()
}

fn dir_of(g: &Guard, controller: &str) -> PathBuf {
    g.manager
        .paths()
        .into_iter()
        .find(|p| p.parent().and_then(Path::file_name) == Some(controller.as_ref()))
        .unwrap_or_else(|| panic!("no {controller} path in {:?}", g.manager.paths()))
}

#[test]
fn limits_are_written_to_the_real_v1_controllers_and_read_back() {
    let mut g = guard("limits");
    g.children.push(sleeper());
    let pid = g.children[0].id() as i32;
    g.manager.apply(pid).expect("apply");
    let own = fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("proc cgroup");
    // Like runc: every v1 hierarchy, the named systemd one and the hybrid cgroup2 mount.
    for key in ["memory", "pids", "cpu", "name=systemd", ""] {
        let line = format!(":{key}:{}\n", cgroup_name("limits"));
        assert!(own.contains(&line), "{line:?} not in {own}");
    }

    let r = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(64i64 << 20)
                .swap(128i64 << 20)
                .build()
                .expect("memory"),
        )
        .pids(LinuxPidsBuilder::default().limit(16).build().expect("pids"))
        .cpu(
            LinuxCpuBuilder::default()
                .shares(512u64)
                .quota(50_000i64)
                .period(100_000u64)
                .build()
                .expect("cpu"),
        )
        .devices(vec![])
        .build()
        .expect("resources");
    g.manager.set(&r).expect("set");

    let mem = dir_of(&g, "memory");
    assert_eq!(
        read(&mem, "memory.limit_in_bytes"),
        (64u64 << 20).to_string()
    );
    assert_eq!(
        read(&mem, "memory.memsw.limit_in_bytes"),
        (128u64 << 20).to_string()
    );
    assert_eq!(read(&dir_of(&g, "pids"), "pids.max"), "16");
    let cpu = dir_of(&g, "cpu");
    assert_eq!(read(&cpu, "cpu.shares"), "512");
    assert_eq!(read(&cpu, "cpu.cfs_quota_us"), "50000");
    let devices = read(&dir_of(&g, "devices"), "devices.list");
    assert!(devices.contains("c 1:3 rwm"), "{devices}");
    assert!(devices.contains("c 136:* rwm"), "{devices}");
    assert!(!devices.contains("a *:* rwm"), "{devices}");

    assert_eq!(g.manager.pids().expect("pids"), vec![pid]);
    let s = g.manager.stats().expect("stats");
    assert_eq!(s.memory.usage.limit, 64 << 20);
    assert_eq!(s.pids.current, 1);
    assert_eq!(s.pids.limit, 16);
    assert_eq!(g.manager.oom_kill_count().expect("oom"), 0);
}

#[test]
fn stats_from_real_v1_files_have_runc_events_shape() {
    let mut g = guard("stats");
    g.children.push(sleeper());
    g.manager.apply(g.children[0].id() as i32).expect("apply");
    let r = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(64i64 << 20)
                .build()
                .expect("memory"),
        )
        .build()
        .expect("resources");
    g.manager.set(&r).expect("set");
    let v = serde_json::to_value(g.manager.stats().expect("stats")).expect("json");
    let keys: Vec<&str> = v
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    let mut want = vec![
        "blkio",
        "cpu",
        "cpuset",
        "hugetlb",
        "intel_rdt",
        "memory",
        "network_interfaces",
        "pids",
    ];
    want.sort();
    let mut got = keys.clone();
    got.sort();
    assert_eq!(got, want, "runc's `events --stats` data keys");
    assert_eq!(v["memory"]["usage"]["limit"], 64u64 << 20);
    // No usage check: v1 does not move a process's existing charges when it moves in.
    assert!(v["memory"]["raw"].get("total_rss").is_some(), "{v}");
    assert!(v["memory"].get("kernelTCP").is_some());
    let cpus = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1);
    assert_eq!(
        v["cpuset"]["cpus"].as_array().map(Vec::len),
        Some(cpus),
        "{v}"
    );
    assert_eq!(v["pids"]["current"], 1);
    assert!(v["network_interfaces"].is_null());
}

#[test]
fn freeze_and_thaw_settle_on_the_real_freezer() {
    let mut g = guard("freeze");
    g.children.push(sleeper());
    let pid = g.children[0].id() as i32;
    g.manager.apply(pid).expect("apply");
    g.manager.freeze().expect("freeze");
    assert!(g.manager.is_frozen().expect("state"));
    assert_eq!(read(&dir_of(&g, "freezer"), "freezer.state"), "FROZEN");
    g.manager.thaw().expect("thaw");
    assert!(!g.manager.is_frozen().expect("state"));
    assert_eq!(read(&dir_of(&g, "freezer"), "freezer.state"), "THAWED");
}

#[test]
fn destroy_removes_created_cgroups_and_keeps_a_joined_one() {
    let mut g = guard("joined");
    let joined =
        Path::new("/sys/fs/cgroup/pids").join(cgroup_name("joined").trim_start_matches('/'));
    fs::create_dir(&joined).expect("pre-create the pids cgroup");
    g.own_dirs.push(joined.clone());
    g.children.push(sleeper());
    let pid = g.children[0].id() as i32;
    g.manager.apply(pid).expect("apply");
    let busy = g.manager.destroy().expect_err("processes still inside");
    assert!(matches!(busy, CgroupError::Busy { .. }), "{busy}");
    for c in &mut g.children {
        c.kill().expect("kill");
        c.wait().expect("wait");
    }
    g.children.clear();
    // `delete` rebuilds the manager in another process: do the same.
    let again = new_manager(Some(&cgroup_name("joined")), "joined", false).expect("manager");
    again.destroy().expect("destroy");
    for p in again.paths() {
        if p == joined {
            assert!(p.exists(), "a cgroup we only joined must stay");
        } else {
            assert!(!p.exists(), "{} should be removed", p.display());
        }
    }
}

#[test]
fn destroy_of_a_frozen_cgroup_thaws_it_so_killed_tasks_can_leave() {
    let mut g = guard("frozenkill");
    g.children.push(sleeper());
    let pid = g.children[0].id() as i32;
    g.manager.apply(pid).expect("apply");
    g.manager.freeze().expect("freeze");
    // SIGKILL is not delivered to a frozen task until it is thawed.
    g.children[0].kill().expect("kill");
    let again =
        new_manager(Some(&cgroup_name("frozenkill")), "frozenkill", false).expect("manager");
    again.destroy().expect("destroy thaws, then removes");
    for p in again.paths() {
        assert!(!p.exists(), "{} should be removed", p.display());
    }
    g.children[0].wait().expect("reap");
    g.children.clear();
}

#[test]
fn an_oom_kill_is_counted() {
    let mut g = guard("oom");
    // The child waits for a line on stdin so it is inside the cgroup before it allocates.
    let child = Command::new("/bin/busybox")
        .args([
            "sh",
            "-c",
            "read x; exec /bin/busybox dd if=/dev/zero of=/dev/null bs=64M count=1",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let pid = child.id() as i32;
    g.children.push(child);
    g.manager.apply(pid).expect("apply");
    let limit = 16i64 << 20;
    let r = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(limit)
                .swap(limit)
                .build()
                .expect("memory"),
        )
        .build()
        .expect("resources");
    g.manager.set(&r).expect("set");
    let mut stdin = g.children[0].stdin.take().expect("stdin");
    stdin.write_all(b"go\n").expect("release the child");
    drop(stdin);
    let status = g.children[0].wait().expect("wait");
    assert!(
        !status.success(),
        "dd of 64M under a 16M limit must be killed: {status:?}"
    );
    assert!(g.manager.oom_kill_count().expect("oom") >= 1);
}

#[test]
fn hugetlb_outside_v1_is_an_error_only_when_a_limit_is_asked_for() {
    let mut g = guard("hugetlb");
    g.children.push(sleeper());
    g.manager.apply(g.children[0].id() as i32).expect("apply");
    g.manager
        .set(&LinuxResourcesBuilder::default().build().expect("empty"))
        .expect("nothing asked");
    let h = LinuxHugepageLimitBuilder::default()
        .page_size("2MB")
        .limit(1i64 << 21)
        .build()
        .expect("h");
    let err = g
        .manager
        .set(
            &LinuxResourcesBuilder::default()
                .hugepage_limits(vec![h])
                .build()
                .expect("r"),
        )
        .expect_err("no v1 hugetlb on this host");
    assert!(err.to_string().contains("hugetlb"), "{err}");
}

/// A v2 manager on the hybrid host's cgroup2 mount, as pure-v2 hosts get for /sys/fs/cgroup.
fn unified_guard(test: &str) -> Guard {
    berth_e2e::require_root();
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let own = fs::read_to_string("/proc/self/cgroup").expect("own cgroup");
    let unified = Path::new("/sys/fs/cgroup/unified");
    let cgroupfs = CgroupFs::parse(&mountinfo, &own, unified, Path::new(DEFAULT_RECORD_DIR))
        .expect("parse the host's cgroup2 mount");
    assert!(
        matches!(cgroupfs.layout, Layout::V2 { .. }),
        "{:?}",
        cgroupfs.layout
    );
    Guard {
        children: Vec::new(),
        manager: new_manager_in(&cgroupfs, Some(&cgroup_name(test)), test).expect("manager"),
        own_dirs: Vec::new(),
    }
}

fn device_rule(
    allow: bool,
    typ: LinuxDeviceType,
    major: i64,
    minor: i64,
    access: &str,
) -> LinuxDeviceCgroup {
    LinuxDeviceCgroupBuilder::default()
        .allow(allow)
        .typ(typ)
        .major(major)
        .minor(minor)
        .access(access)
        .build()
        .expect("device rule")
}

/// A shell that, on each line it reads, tries to open each device for reading and for
/// writing and prints one line per attempt (in subshells: a failed redirection must not end
/// the probe).
const DEVICE_PROBE: &str = "while read x; do for f in /dev/null /dev/kmsg /dev/loop0; do \
    if (true < $f) 2>/dev/null; then echo \"$f r ok\"; else echo \"$f r denied\"; fi; \
    if (true > $f) 2>/dev/null; then echo \"$f w ok\"; else echo \"$f w denied\"; fi; \
    done; echo end; done";

fn probe_devices(child: &mut Child, out: &mut impl BufRead) -> Vec<String> {
    let stdin = child.stdin.as_mut().expect("stdin");
    stdin.write_all(b"go\n").expect("ask for a probe");
    stdin.flush().expect("flush");
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        assert!(
            out.read_line(&mut line).expect("read probe") > 0,
            "probe exited early: {lines:?}"
        );
        let line = line.trim().to_string();
        if line == "end" {
            return lines;
        }
        lines.push(line);
    }
}

#[test]
fn v2_device_filter_enforces_rules_on_real_opens_and_is_replaced_on_update() {
    let mut g = unified_guard("bpf");
    let mut child = Command::new("/bin/busybox")
        .args(["sh", "-c", DEVICE_PROBE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn probe");
    let pid = child.id() as i32;
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    g.children.push(child);
    g.manager.apply(pid).expect("apply");
    let own = fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("proc cgroup");
    assert!(own.contains(&format!("0::{}", cgroup_name("bpf"))), "{own}");

    // Before any filter every open works (root, no v1 device restriction here).
    let before = probe_devices(&mut g.children[0], &mut out);
    assert!(before.iter().all(|l| l.ends_with(" ok")), "{before:?}");

    let kmsg_write_only = vec![device_rule(true, LinuxDeviceType::C, 1, 11, "w")];
    let r = LinuxResourcesBuilder::default()
        .devices(kmsg_write_only)
        .build()
        .expect("r");
    g.manager.set(&r).expect("install the filter");
    let first = probe_devices(&mut g.children[0], &mut out);
    assert_eq!(
        first,
        vec![
            "/dev/null r ok",
            "/dev/null w ok",
            "/dev/kmsg r denied",
            "/dev/kmsg w ok",
            "/dev/loop0 r denied",
            "/dev/loop0 w denied",
        ],
        "default devices allowed, the spec's rule exactly, everything else refused"
    );

    // `update` replaces the filter: the old program must not linger.
    let loop_read_only = vec![device_rule(true, LinuxDeviceType::B, 7, 0, "r")];
    let r = LinuxResourcesBuilder::default()
        .devices(loop_read_only)
        .build()
        .expect("r");
    g.manager.set(&r).expect("replace the filter");
    let second = probe_devices(&mut g.children[0], &mut out);
    assert_eq!(
        second,
        vec![
            "/dev/null r ok",
            "/dev/null w ok",
            "/dev/kmsg r denied",
            "/dev/kmsg w denied",
            "/dev/loop0 r ok",
            "/dev/loop0 w denied",
        ]
    );
}

#[test]
fn v2_freezer_and_destroy_work_on_a_real_cgroup2_mount() {
    let mut g = unified_guard("v2freeze");
    g.children.push(sleeper());
    let pid = g.children[0].id() as i32;
    g.manager.apply(pid).expect("apply");
    assert_eq!(g.manager.pids().expect("pids"), vec![pid]);
    g.manager.freeze().expect("freeze");
    assert!(g.manager.is_frozen().expect("state"));
    let dir = g.manager.paths().remove(0);
    assert!(read(&dir, "cgroup.events").contains("frozen 1"));
    g.manager.thaw().expect("thaw");
    assert!(!g.manager.is_frozen().expect("state"));
    for c in &mut g.children {
        c.kill().expect("kill");
        c.wait().expect("wait");
    }
    g.children.clear();
    g.manager.destroy().expect("destroy");
    assert!(!dir.exists());
    assert!(Path::new("/sys/fs/cgroup/unified/cgroup.procs").exists());
}

/// Removes a runc container (and so its cgroups) whatever happened.
struct RuncContainer {
    root: PathBuf,
    id: String,
}

impl Drop for RuncContainer {
    fn drop(&mut self) {
        let _ = Command::new("runc")
            .arg("--root")
            .arg(&self.root)
            .args(["delete", "--force", &self.id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The resources both runtimes get in the differential test.
const DIFF_RESOURCES: &str = r#"{
    "devices": [
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"},
        {"allow": false, "type": "c", "major": 1, "minor": 9, "access": "w"}
    ],
    "memory": {"limit": 67108864, "reservation": 33554432, "swap": 134217728, "swappiness": 10},
    "cpu": {"shares": 512, "quota": 50000, "period": 200000, "cpus": "0", "mems": "0"},
    "pids": {"limit": 16},
    "blockIO": {
        "throttleReadBpsDevice": [{"major": 254, "minor": 0, "rate": 1048576}],
        "throttleWriteIOPSDevice": [{"major": 254, "minor": 0, "rate": 100}]
    }
}"#;

const DIFF_FILES: &[&str] = &[
    "memory/memory.limit_in_bytes",
    "memory/memory.soft_limit_in_bytes",
    "memory/memory.memsw.limit_in_bytes",
    "memory/memory.swappiness",
    "cpu/cpu.shares",
    "cpu/cpu.cfs_quota_us",
    "cpu/cpu.cfs_period_us",
    "cpuset/cpuset.cpus",
    "cpuset/cpuset.mems",
    "pids/pids.max",
    "devices/devices.list",
    // 254:0 is this host's /dev/vda.
    "blkio/blkio.throttle.read_bps_device",
    "blkio/blkio.throttle.write_iops_device",
];

fn read_diff_files(cgroup: &str) -> Vec<(String, String)> {
    DIFF_FILES
        .iter()
        .map(|f| {
            let (ctrl, file) = f.split_once('/').expect("ctrl/file");
            let dir = Path::new("/sys/fs/cgroup")
                .join(ctrl)
                .join(cgroup.trim_start_matches('/'));
            (f.to_string(), read(&dir, file))
        })
        .collect()
}

#[test]
fn v1_files_match_what_runc_writes_for_the_same_resources() {
    berth_e2e::require_root();
    let tmp = tempfile::tempdir().expect("tempdir");
    let bundle = tmp.path().join("bundle");
    fs::create_dir_all(bundle.join("rootfs/bin")).expect("rootfs");
    fs::copy("/bin/busybox", bundle.join("rootfs/bin/busybox")).expect("busybox");
    std::os::unix::fs::symlink("busybox", bundle.join("rootfs/bin/sleep")).expect("sleep");
    let spec = Command::new("runc")
        .args(["spec", "--bundle"])
        .arg(&bundle)
        .status()
        .expect("runc spec");
    assert!(spec.success());
    let runc_cgroup = cgroup_name("runc");
    let config_path = bundle.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&fs::read(&config_path).expect("config")).expect("json");
    config["process"]["terminal"] = false.into();
    config["process"]["args"] = serde_json::json!(["sleep", "1000"]);
    config["linux"]["cgroupsPath"] = runc_cgroup.clone().into();
    config["linux"]["resources"] = serde_json::from_str(DIFF_RESOURCES).expect("resources");
    fs::write(&config_path, serde_json::to_vec(&config).expect("json")).expect("write config");

    let runc = RuncContainer {
        root: tmp.path().join("runc-state"),
        id: format!("berth-test-{}", std::process::id()),
    };
    let created = Command::new("runc")
        .arg("--root")
        .arg(&runc.root)
        .args(["create", "--bundle"])
        .arg(&bundle)
        .arg(&runc.id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status()
        .expect("runc create");
    assert!(created.success(), "runc create failed");
    let theirs = read_diff_files(&runc_cgroup);
    assert!(
        theirs.iter().all(|(_, v)| !v.is_empty()),
        "runc set every file: {theirs:?}"
    );
    drop(runc);

    let mut g = guard("ours");
    g.children.push(sleeper());
    g.manager.apply(g.children[0].id() as i32).expect("apply");
    let resources: oci_spec::runtime::LinuxResources =
        serde_json::from_str(DIFF_RESOURCES).expect("resources");
    g.manager.set(&resources).expect("set");
    let ours = read_diff_files(&cgroup_name("ours"));
    assert_eq!(ours, theirs, "berth vs runc, file by file");
}
