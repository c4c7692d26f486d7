//! A fake cgroupfs in a tempdir for unit tests: mounts described by a generated
//! mountinfo, and a stand-in for the kernel that fills each new cgroup directory with the
//! interface files (and default values) the real one would have.

use std::fs;
use std::path::{Path, PathBuf};

use super::hierarchy::CgroupFs;

/// Marks a mount point of the fake tree; holds the v1 controller name or "cgroup2".
const MARKER: &str = "fake.mount";

pub(crate) struct FakeTree {
    _tmp: tempfile::TempDir,
    pub root: PathBuf,
    pub records: PathBuf,
    mountinfo: String,
}

fn put(dir: &Path, files: &[(&str, &str)]) {
    for (name, value) in files {
        fs::write(dir.join(name), value).expect("fake interface file");
    }
}

const V1_COMMON: &[(&str, &str)] = &[
    ("cgroup.procs", ""),
    ("tasks", ""),
    ("notify_on_release", "0"),
];
const UNLIMITED: &str = "9223372036854771712";

fn v1_files(controller: &str) -> Vec<(&'static str, &'static str)> {
    let mut v = V1_COMMON.to_vec();
    v.extend_from_slice(match controller {
        "memory" => &[
            ("memory.limit_in_bytes", UNLIMITED),
            ("memory.soft_limit_in_bytes", UNLIMITED),
            ("memory.memsw.limit_in_bytes", UNLIMITED),
            ("memory.kmem.limit_in_bytes", UNLIMITED),
            ("memory.kmem.tcp.limit_in_bytes", UNLIMITED),
            ("memory.swappiness", "60"),
            (
                "memory.oom_control",
                "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
            ),
            ("memory.usage_in_bytes", "0"),
        ][..],
        "cpu" => &[
            ("cpu.shares", "1024"),
            ("cpu.cfs_quota_us", "-1"),
            ("cpu.cfs_period_us", "100000"),
            ("cpu.cfs_burst_us", "0"),
            ("cpu.idle", "0"),
            ("cpu.rt_period_us", "1000000"),
            ("cpu.rt_runtime_us", "0"),
        ][..],
        // The kernel starts a cpuset cgroup with no cpus and no mems.
        "cpuset" => &[("cpuset.cpus", ""), ("cpuset.mems", "")][..],
        "pids" => &[("pids.max", "max"), ("pids.current", "0")][..],
        "blkio" => &[
            ("blkio.bfq.weight", "100"),
            ("blkio.bfq.weight_device", ""),
            ("blkio.throttle.read_bps_device", ""),
            ("blkio.throttle.write_bps_device", ""),
            ("blkio.throttle.read_iops_device", ""),
            ("blkio.throttle.write_iops_device", ""),
        ][..],
        "devices" => &[
            ("devices.allow", ""),
            ("devices.deny", ""),
            ("devices.list", "a *:* rwm\n"),
        ][..],
        "freezer" => &[("freezer.state", "THAWED")][..],
        "net_cls" => &[("net_cls.classid", "0")][..],
        "net_prio" => &[("net_prio.ifpriomap", "lo 0\n")][..],
        "hugetlb" => &[("hugetlb.2MB.limit_in_bytes", UNLIMITED)][..],
        _ => &[][..],
    });
    v
}

const V2_FILES: &[(&str, &str)] = &[
    ("cgroup.procs", ""),
    ("cgroup.subtree_control", ""),
    ("cgroup.freeze", "0"),
    ("cgroup.events", "populated 0\nfrozen 0\n"),
    ("memory.max", "max"),
    ("memory.low", "0"),
    ("memory.swap.max", "max"),
    ("memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n"),
    ("cpu.weight", "100"),
    ("cpu.max", "max 100000"),
    ("cpu.max.burst", "0"),
    ("cpu.idle", "0"),
    ("cpuset.cpus", ""),
    ("cpuset.mems", ""),
    ("pids.max", "max"),
    ("io.weight", "default 100"),
    ("io.max", ""),
    ("hugetlb.2MB.max", "max"),
];

/// The fake kernel: fills a new directory according to the mount it is under.
fn populate(dir: &Path) {
    let Some(mount) = dir.ancestors().skip(1).find(|a| a.join(MARKER).exists()) else {
        return;
    };
    let kind = fs::read_to_string(mount.join(MARKER)).expect("marker");
    if kind == "cgroup2" {
        put(dir, V2_FILES);
        // A child may use exactly what its parent delegates. The root's delegation is fixed;
        // below it the manager delegates everything after creating the directories, which
        // plain files cannot replay, so deeper cgroups see what their parent has.
        let parent = dir.parent().expect("parent");
        let source = if parent == mount {
            "cgroup.subtree_control"
        } else {
            "cgroup.controllers"
        };
        let delegated = fs::read_to_string(parent.join(source)).unwrap_or_default();
        put(dir, &[("cgroup.controllers", delegated.trim())]);
    } else {
        put(dir, &v1_files(&kind));
    }
}

impl FakeTree {
    fn new() -> FakeTree {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().join("sys/fs/cgroup");
        let records = tmp.path().join("run/records");
        fs::create_dir_all(&root).expect("root");
        FakeTree {
            _tmp: tmp,
            root,
            records,
            mountinfo: String::new(),
        }
    }

    /// v1 hierarchies, one per controller; the root cgroups hold the host's values.
    pub(crate) fn v1(controllers: &[&str]) -> FakeTree {
        let mut t = FakeTree::new();
        for (i, c) in controllers.iter().enumerate() {
            let mount = t.root.join(c);
            fs::create_dir_all(&mount).expect("mount");
            put(&mount, &v1_files(c));
            put(&mount, &[(MARKER, c)]);
            if *c == "cpuset" {
                put(&mount, &[("cpuset.cpus", "0-1\n"), ("cpuset.mems", "0\n")]);
            }
            t.mountinfo.push_str(&format!(
                "{} 1 0:{} / {} rw,relatime - cgroup cgroup rw,{c}\n",
                40 + i,
                40 + i,
                mount.display()
            ));
        }
        t
    }

    /// A pure v2 tree whose root delegates `controllers`.
    pub(crate) fn v2(controllers: &[&str]) -> FakeTree {
        let mut t = FakeTree::new();
        let list = controllers.join(" ");
        put(
            &t.root,
            &[
                ("cgroup.controllers", &list),
                ("cgroup.subtree_control", &list),
                ("cgroup.procs", "1\n"),
            ],
        );
        put(&t.root, &[(MARKER, "cgroup2")]);
        t.mountinfo = format!("30 1 0:26 / {} rw - cgroup2 cgroup2 rw\n", t.root.display());
        t
    }

    /// The layout as `CgroupFs::detect` would read it, for a process in the root cgroups.
    pub(crate) fn fs(&self) -> CgroupFs {
        let own = "5:memory:/\n0::/\n";
        let mut fs =
            CgroupFs::parse(&self.mountinfo, own, &self.root, &self.records).expect("parse fake");
        fs.after_mkdir = populate;
        fs
    }

    pub(crate) fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.root.join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    pub(crate) fn write(&self, rel: &str, value: &str) {
        fs::write(self.root.join(rel), value).unwrap_or_else(|e| panic!("write {rel}: {e}"));
    }

    pub(crate) fn exists(&self, rel: &str) -> bool {
        self.root.join(rel).exists()
    }
}
