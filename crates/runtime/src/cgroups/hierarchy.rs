//! Which cgroup layout is mounted (pure v2, or v1/hybrid) and where a cgroupsPath lands in
//! each hierarchy, read from /proc/self/mountinfo and /proc/self/cgroup. Injectable so tests
//! run against a fake cgroupfs tree in a tempdir.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Component, Path, PathBuf};

use super::CgroupError;

/// The v1 hierarchies a container joins, as runc's fs driver: the controllers it drives,
/// plus perf_event, misc and the named systemd hierarchy, which are joined without limits.
pub const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "blkio",
    "pids",
    "hugetlb",
    "net_cls",
    "net_prio",
    "rdma",
    "perf_event",
    "misc",
    "name=systemd",
];

/// The "controller" name of a hybrid host's cgroup2 mount (its /proc/self/cgroup key is the
/// empty string): runc joins it too, so the container's cgroup2 path matches its v1 paths.
pub const HYBRID_UNIFIED: &str = "";

/// One mounted v1 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Mount {
    /// Where it is mounted, e.g. /sys/fs/cgroup/memory.
    pub mount_point: PathBuf,
    /// The cgroup shown at the mount point (mountinfo field 4; "/" outside containers).
    pub root: PathBuf,
    /// The controllers bound to it, e.g. ["cpu", "cpuacct"].
    pub controllers: Vec<String>,
}

/// The mounted layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// cgroup2 mounted at the cgroup root (/sys/fs/cgroup).
    V2 { mount_point: PathBuf },
    /// v1 controllers each under their own mount (a cgroup2 mount beside them is ignored,
    /// as runc does in hybrid mode).
    V1 { mounts: Vec<V1Mount> },
}

/// Everything the managers need to know about the host's cgroupfs.
#[derive(Debug, Clone)]
pub struct CgroupFs {
    pub layout: Layout,
    /// This process's own cgroup per v1 controller, and under "" its v2 cgroup
    /// (from /proc/self/cgroup); relative cgroupsPaths are resolved against these.
    pub own_cgroups: BTreeMap<String, PathBuf>,
    /// Where ownership records of the cgroups we create are kept (see ownership.rs).
    pub record_dir: PathBuf,
    /// Called on each directory right after we create it: the kernel fills new cgroups
    /// with interface files, a fake tree in tests does it here.
    pub(crate) after_mkdir: fn(&Path),
}

/// runc's and Docker's default cgroup root.
pub const DEFAULT_CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// Kept under /run so that records vanish on reboot together with the cgroups they describe.
pub const DEFAULT_RECORD_DIR: &str = "/run/berth-runtime/cgroups";

impl CgroupFs {
    /// Reads the host's layout from /proc/self.
    pub fn detect() -> Result<CgroupFs, CgroupError> {
        CgroupFs::detect_with(&read_proc("/proc/self/mountinfo")?)
    }

    /// `detect` with the text of /proc/self/mountinfo already read by the caller (`create`
    /// reads it once for the cgroups and the container's cgroup mount: generating it costs
    /// the kernel a walk over every mount).
    pub fn detect_with(mountinfo: &str) -> Result<CgroupFs, CgroupError> {
        let own = read_proc("/proc/self/cgroup")?;
        CgroupFs::parse(
            mountinfo,
            &own,
            Path::new(DEFAULT_CGROUP_ROOT),
            Path::new(DEFAULT_RECORD_DIR),
        )
    }

    /// Builds the layout from the text of mountinfo and /proc/self/cgroup; only mounts at or
    /// under `cgroup_root` count.
    pub fn parse(
        mountinfo: &str,
        proc_self_cgroup: &str,
        cgroup_root: &Path,
        record_dir: &Path,
    ) -> Result<CgroupFs, CgroupError> {
        let mut v2_at_root = false;
        let mut mounts = Vec::new();
        for line in mountinfo.lines() {
            let Some(m) = parse_mountinfo_line(line) else {
                continue;
            };
            if !m.mount_point.starts_with(cgroup_root) {
                continue;
            }
            match m.fstype.as_str() {
                "cgroup2" if m.mount_point == cgroup_root => v2_at_root = true,
                "cgroup2" => {
                    let seen = mounts
                        .iter()
                        .any(|m: &V1Mount| m.controllers.iter().any(|c| c == HYBRID_UNIFIED));
                    if !seen {
                        mounts.push(V1Mount {
                            mount_point: m.mount_point,
                            root: m.root,
                            controllers: vec![HYBRID_UNIFIED.to_string()],
                        });
                    }
                }
                "cgroup" => {
                    let controllers: Vec<String> = m
                        .super_options
                        .split(',')
                        .filter(|o| V1_CONTROLLERS.contains(o))
                        .map(str::to_string)
                        .collect();
                    // A hierarchy mounted twice (bind mounts) is used where it was seen first.
                    let seen = mounts
                        .iter()
                        .any(|m: &V1Mount| m.controllers.iter().any(|c| controllers.contains(c)));
                    if !controllers.is_empty() && !seen {
                        mounts.push(V1Mount {
                            mount_point: m.mount_point,
                            root: m.root,
                            controllers,
                        });
                    }
                }
                _ => {}
            }
        }
        let layout = if v2_at_root {
            Layout::V2 {
                mount_point: cgroup_root.to_path_buf(),
            }
        } else if mounts
            .iter()
            .all(|m| m.controllers.iter().all(|c| c == HYBRID_UNIFIED))
        {
            return Err(CgroupError::NoCgroupfs {
                root: cgroup_root.to_path_buf(),
            });
        } else {
            Layout::V1 { mounts }
        };
        Ok(CgroupFs {
            layout,
            own_cgroups: parse_proc_self_cgroup(proc_self_cgroup),
            record_dir: record_dir.to_path_buf(),
            after_mkdir: |_| {},
        })
    }

    /// The directory of the v1 cgroup `inner` (cleaned, absolute or relative to our own cgroup)
    /// in `mount`, as runc's fs driver computes it.
    pub(crate) fn v1_dir(&self, mount: &V1Mount, inner: &CgroupPath) -> PathBuf {
        let cgroup = match inner {
            CgroupPath::Absolute(p) => p.clone(),
            CgroupPath::Relative(p) => {
                let own = mount
                    .controllers
                    .iter()
                    .find_map(|c| self.own_cgroups.get(c))
                    .cloned()
                    .unwrap_or_else(|| PathBuf::from("/"));
                // Inside a container the mount shows a sub-tree: strip its root.
                let own = own
                    .strip_prefix(&mount.root)
                    .map(|p| Path::new("/").join(p))
                    .unwrap_or(own);
                own.join(p)
            }
        };
        join_under(&mount.mount_point, &cgroup)
    }

    /// The directory of this process's own cgroup in `mount`, when /proc/self/cgroup names
    /// one inside what the mount shows (None otherwise, e.g. a cgroup outside a nested mount).
    pub(crate) fn own_v1_dir(&self, mount: &V1Mount) -> Option<PathBuf> {
        let own = mount
            .controllers
            .iter()
            .find_map(|c| self.own_cgroups.get(c))?;
        let rel = own.strip_prefix(&mount.root).ok()?;
        Some(join_under(&mount.mount_point, rel))
    }

    /// The directory of the v2 cgroup `inner`: relative paths go under the parent of our own
    /// cgroup, as runc does (our own cgroup usually holds processes, so it cannot delegate).
    pub(crate) fn v2_dir(&self, mount_point: &Path, inner: &CgroupPath) -> PathBuf {
        let cgroup = match inner {
            CgroupPath::Absolute(p) => p.clone(),
            CgroupPath::Relative(p) => {
                let own = self
                    .own_cgroups
                    .get("")
                    .cloned()
                    .unwrap_or_else(|| PathBuf::from("/"));
                own.parent().unwrap_or(Path::new("/")).join(p)
            }
        };
        join_under(mount_point, &cgroup)
    }
}

/// A cleaned linux.cgroupsPath.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CgroupPath {
    Absolute(PathBuf),
    Relative(PathBuf),
}

impl CgroupPath {
    /// `None` or an empty path gives runc's default: the container id, relative.
    /// `..` never climbs above the start, as runc's CleanPath guarantees.
    pub(crate) fn new(cgroups_path: Option<&str>, id: &str) -> CgroupPath {
        let raw = cgroups_path.filter(|p| !p.is_empty()).unwrap_or(id);
        let cleaned = clean(raw);
        if raw.starts_with('/') {
            CgroupPath::Absolute(Path::new("/").join(cleaned))
        } else {
            CgroupPath::Relative(cleaned)
        }
    }
}

/// Lexically cleans `p` to a relative path with no `.`/`..` left, never escaping upwards.
fn clean(p: &str) -> PathBuf {
    let mut out = PathBuf::new();
    for c in Path::new(p).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

fn join_under(mount_point: &Path, cgroup: &Path) -> PathBuf {
    mount_point.join(clean(&cgroup.to_string_lossy()))
}

fn read_proc(path: &str) -> Result<String, CgroupError> {
    fs::read_to_string(path).map_err(|source| CgroupError::io("read", Path::new(path), source))
}

struct MountinfoLine {
    root: PathBuf,
    mount_point: PathBuf,
    fstype: String,
    super_options: String,
}

/// `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue`
fn parse_mountinfo_line(line: &str) -> Option<MountinfoLine> {
    let (left, right) = line.split_once(" - ")?;
    let fields: Vec<&str> = left.split(' ').collect();
    let root = unescape_octal(fields.get(3)?);
    let mount_point = unescape_octal(fields.get(4)?);
    let mut right = right.split(' ');
    let fstype = right.next()?.to_string();
    let _source = right.next()?;
    let super_options = right.next().unwrap_or("").to_string();
    Some(MountinfoLine {
        root: PathBuf::from(root),
        mount_point: PathBuf::from(mount_point),
        fstype,
        super_options,
    })
}

/// mountinfo escapes space, tab, newline and backslash as \ooo.
fn unescape_octal(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let oct = std::str::from_utf8(&bytes[i + 1..i + 4]).ok();
            if let Some(v) = oct.and_then(|o| u8::from_str_radix(o, 8).ok()) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `4:memory:/a/b` per v1 hierarchy (one entry per controller), `0::/x` for v2 (key "").
fn parse_proc_self_cgroup(text: &str) -> BTreeMap<String, PathBuf> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if controllers.is_empty() {
            out.insert(String::new(), PathBuf::from(path));
            continue;
        }
        for c in controllers.split(',') {
            out.insert(c.to_string(), PathBuf::from(path));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const OWN: &str = "9:name=systemd:/\n4:memory:/sandbox/x\n2:cpu,cpuacct:/\n0::/user.slice/s1\n";

    fn hybrid() -> CgroupFs {
        CgroupFs::parse(HYBRID, OWN, Path::new("/sys/fs/cgroup"), Path::new("/r")).expect("parse")
    }

    #[test]
    fn hybrid_layout_joins_v1_controllers_systemd_and_the_unified_mount() {
        let fs = hybrid();
        let Layout::V1 { mounts } = &fs.layout else {
            panic!("expected v1, got {:?}", fs.layout);
        };
        let names: Vec<Vec<String>> = mounts.iter().map(|m| m.controllers.clone()).collect();
        assert_eq!(
            names,
            vec![
                vec!["cpu".to_string(), "cpuacct".to_string()],
                vec!["memory".to_string()],
                vec!["name=systemd".to_string()],
                vec![HYBRID_UNIFIED.to_string()],
            ]
        );
        assert_eq!(
            mounts[0].mount_point,
            Path::new("/sys/fs/cgroup/cpu,cpuacct")
        );
        let p = CgroupPath::new(Some("c1"), "x");
        assert_eq!(
            fs.v1_dir(&mounts[3], &p),
            Path::new("/sys/fs/cgroup/unified/user.slice/s1/c1"),
            "relative to our own cgroup2 path, as runc's fs driver"
        );
        assert_eq!(
            fs.v1_dir(&mounts[2], &p),
            Path::new("/sys/fs/cgroup/systemd/c1")
        );
    }

    #[test]
    fn a_hierarchy_mounted_twice_is_used_once() {
        let mi = "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                  36 31 0:32 / /sys/fs/cgroup/memory-again rw - cgroup cgroup rw,memory\n";
        let fs =
            CgroupFs::parse(mi, "", Path::new("/sys/fs/cgroup"), Path::new("/r")).expect("parse");
        let Layout::V1 { mounts } = &fs.layout else {
            panic!()
        };
        assert_eq!(mounts.len(), 1);
        assert_eq!(mounts[0].mount_point, Path::new("/sys/fs/cgroup/memory"));
    }

    #[test]
    fn a_cgroup2_mount_beside_nothing_else_is_not_a_v1_layout() {
        let mi = "41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n";
        assert!(CgroupFs::parse(mi, "", Path::new("/sys/fs/cgroup"), Path::new("/r")).is_err());
    }

    #[test]
    fn cgroup2_at_the_root_is_pure_v2() {
        let mi = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        let fs = CgroupFs::parse(
            mi,
            "0::/user.slice/a.scope\n",
            Path::new("/sys/fs/cgroup"),
            Path::new("/r"),
        )
        .expect("parse");
        assert_eq!(
            fs.layout,
            Layout::V2 {
                mount_point: PathBuf::from("/sys/fs/cgroup")
            }
        );
    }

    #[test]
    fn no_cgroup_mount_is_a_clear_error() {
        let err = CgroupFs::parse("", "", Path::new("/sys/fs/cgroup"), Path::new("/r"))
            .expect_err("nothing mounted");
        assert!(err.to_string().contains("/sys/fs/cgroup"), "{err}");
    }

    #[test]
    fn absolute_cgroups_path_goes_under_each_mount() {
        let fs = hybrid();
        let Layout::V1 { mounts } = &fs.layout else {
            panic!()
        };
        let p = CgroupPath::new(Some("/berth/../../c1"), "id");
        assert_eq!(
            fs.v1_dir(&mounts[1], &p),
            Path::new("/sys/fs/cgroup/memory/c1")
        );
    }

    #[test]
    fn relative_cgroups_path_goes_under_our_own_v1_cgroup() {
        let fs = hybrid();
        let Layout::V1 { mounts } = &fs.layout else {
            panic!()
        };
        let p = CgroupPath::new(Some("a/b"), "id");
        assert_eq!(
            fs.v1_dir(&mounts[1], &p),
            Path::new("/sys/fs/cgroup/memory/sandbox/x/a/b")
        );
        assert_eq!(
            fs.v1_dir(&mounts[0], &p),
            Path::new("/sys/fs/cgroup/cpu,cpuacct/a/b")
        );
    }

    #[test]
    fn missing_cgroups_path_defaults_to_the_container_id() {
        let fs = hybrid();
        let Layout::V1 { mounts } = &fs.layout else {
            panic!()
        };
        let p = CgroupPath::new(None, "ctr1");
        assert_eq!(
            fs.v1_dir(&mounts[0], &p),
            Path::new("/sys/fs/cgroup/cpu,cpuacct/ctr1")
        );
        assert_eq!(CgroupPath::new(Some(""), "ctr1"), p);
    }

    #[test]
    fn relative_v2_path_goes_under_the_parent_of_our_cgroup() {
        let fs = hybrid();
        let p = CgroupPath::new(None, "ctr1");
        assert_eq!(
            fs.v2_dir(Path::new("/cg"), &p),
            Path::new("/cg/user.slice/ctr1")
        );
        let abs = CgroupPath::new(Some("/machine/ctr1"), "x");
        assert_eq!(
            fs.v2_dir(Path::new("/cg"), &abs),
            Path::new("/cg/machine/ctr1")
        );
    }

    #[test]
    fn dot_dot_cannot_escape_the_mount() {
        let fs = hybrid();
        let p = CgroupPath::new(Some("../../../../etc"), "x");
        assert_eq!(
            fs.v2_dir(Path::new("/cg"), &p),
            Path::new("/cg/user.slice/etc")
        );
    }

    #[test]
    fn mount_root_inside_a_container_is_stripped() {
        let mi = "35 31 0:32 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
        let fs = CgroupFs::parse(
            mi,
            "4:memory:/docker/abc\n",
            Path::new("/sys/fs/cgroup"),
            Path::new("/r"),
        )
        .expect("parse");
        let Layout::V1 { mounts } = &fs.layout else {
            panic!()
        };
        let p = CgroupPath::new(Some("inner"), "x");
        assert_eq!(
            fs.v1_dir(&mounts[0], &p),
            Path::new("/sys/fs/cgroup/memory/inner")
        );
    }

    #[test]
    fn mountinfo_octal_escapes_are_decoded() {
        assert_eq!(unescape_octal("/a\\040b"), "/a b");
        assert_eq!(unescape_octal("/plain"), "/plain");
    }
}
