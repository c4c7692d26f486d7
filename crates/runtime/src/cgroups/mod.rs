//! Container cgroups, v1 (and hybrid) and v2, driven through cgroupfs as runc's fs drivers
//! do: create the container's cgroup from linux.cgroupsPath, apply linux.resources, freeze
//! and thaw, report stats and OOM kills, and remove only the cgroups berth created.
//! The systemd driver is not implemented (--systemd-cgroup is refused with a clear error).

mod bpf_program;
mod bpf_syscall;
mod control_file;
mod devices;
mod hierarchy;
mod ownership;
mod stats;
mod v1;
mod v1_resources;
mod v1_stats;
mod v2;
mod v2_resources;
mod v2_stats;

#[cfg(test)]
mod fake_tree;
#[cfg(test)]
mod v1_tests;
#[cfg(test)]
mod v2_tests;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

pub use hierarchy::{CgroupFs, Layout, V1Mount, DEFAULT_CGROUP_ROOT, DEFAULT_RECORD_DIR};
pub use stats::{
    Blkio, BlkioEntry, Cpu, CpuSet, CpuUsage, Hugetlb, IntelRdt, Memory, MemoryEntry,
    MemoryEventCount, Pids, Stats, Throttling,
};

/// Errors of the cgroups module. The OS error is part of the text (as in runc's messages):
/// callers print these flattened, and "cannot write to memory.max" without the errno is not
/// something a person can act on.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cannot {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write {value:?} to {path}: {source}")]
    Write {
        path: PathBuf,
        value: String,
        #[source]
        source: io::Error,
    },
    #[error("no cgroup filesystem is mounted under {root}")]
    NoCgroupfs { root: PathBuf },
    #[error("the systemd cgroup driver is not supported by berth-runtime (run without --systemd-cgroup)")]
    SystemdUnsupported,
    #[error("cgroupsPath {path:?} is the root cgroup: refusing to use it (give the container a cgroup of its own)")]
    RootCgroup { path: String },
    #[error("cannot set {resource}: the {controller} cgroup controller is not available on this host{hint}")]
    MissingController {
        resource: &'static str,
        controller: &'static str,
        hint: &'static str,
    },
    #[error("{resource} is not supported with cgroup {version}")]
    Unsupported {
        resource: &'static str,
        version: &'static str,
    },
    #[error("invalid {resource}: {reason}")]
    InvalidValue {
        resource: &'static str,
        reason: String,
    },
    #[error("unexpected content in {path}: {content:?}")]
    Parse { path: PathBuf, content: String },
    #[error("cgroup {path} did not reach state {want} (last seen {seen:?})")]
    FreezeTimeout {
        path: PathBuf,
        want: &'static str,
        seen: String,
    },
    #[error("cannot remove cgroup {path}: processes are still in it (kill them first)")]
    Busy { path: PathBuf },
    #[error("cannot {op} the cgroup v2 device filter: {source}")]
    DeviceFilter {
        op: &'static str,
        #[source]
        source: io::Error,
    },
}

impl CgroupError {
    pub(crate) fn io(op: &'static str, path: &Path, source: io::Error) -> CgroupError {
        CgroupError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// One container's cgroup, whatever the cgroup version.
pub trait Manager {
    /// Creates the cgroup directories that are missing (recording them as ours) and moves
    /// `pid` in. Calling it again (exec) joins the existing cgroup.
    fn apply(&self, pid: i32) -> Result<(), CgroupError>;
    /// Creates the cgroup like `apply`, then moves the calling process itself in, so that
    /// the child it clones next is born in the container's cgroup. `None`: not supported,
    /// clone first and call `apply(pid)`. Why: on cgroup v1 writing another process's pid
    /// to cgroup.procs takes the threadgroup rwsem for writing (an RCU grace period, 10-25
    /// ms on a busy host), while a single-threaded process moving itself ("0" to `tasks`)
    /// does not (kernel commit 9a3284fad42f, "cgroup: Optimize single thread migration").
    fn enter(&self) -> Result<Option<Entered>, CgroupError> {
        Ok(None)
    }
    /// Applies linux.resources. `devices: None` leaves the device rules alone (`update`);
    /// at create, pass `Some` (empty when the spec has none) to get runc's defaults.
    fn set(&self, r: &LinuxResources) -> Result<(), CgroupError>;
    /// Every pid in the cgroup and its sub-cgroups.
    fn pids(&self) -> Result<Vec<i32>, CgroupError>;
    fn freeze(&self) -> Result<(), CgroupError>;
    fn thaw(&self) -> Result<(), CgroupError>;
    fn is_frozen(&self) -> Result<bool, CgroupError>;
    fn stats(&self) -> Result<Stats, CgroupError>;
    /// OOM kills so far (v1 memory.oom_control, v2 memory.events); 0 without a memory
    /// controller.
    fn oom_kill_count(&self) -> Result<u64, CgroupError>;
    /// Removes the directories `apply` created, and nothing else.
    fn destroy(&self) -> Result<(), CgroupError>;
    /// The container's cgroup directories (one per v1 hierarchy, one on v2).
    fn paths(&self) -> Vec<PathBuf>;
}

/// The calling process's stay in a container's cgroup (see `Manager::enter`).
#[derive(Debug, Default)]
#[must_use = "the caller must leave the container's cgroup after the clone"]
pub struct Entered {
    /// Where the caller was, per hierarchy it moved out of.
    back: Vec<PathBuf>,
    /// Container cgroups the caller could not enter itself (the cgroup2 mount of a hybrid
    /// host has no `tasks` file): the child's pid is written to their cgroup.procs.
    pending: Vec<PathBuf>,
    /// A cgroup2 directory for clone3's CLONE_INTO_CGROUP (the unified mount of a hybrid
    /// host): the child is born there, which again avoids a migration.
    clone_into: Option<(PathBuf, std::os::fd::OwnedFd)>,
}

impl Entered {
    /// The cgroup2 directory to pass to clone3 with CLONE_INTO_CGROUP, if any.
    pub fn clone_into(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        self.clone_into.as_ref().map(|(_, fd)| fd.as_fd())
    }

    /// Adds the cgroup2 directory `dir` for CLONE_INTO_CGROUP; if it cannot be opened the
    /// child's pid is written to it after the clone instead.
    pub(crate) fn clone_into_or_pending(&mut self, dir: PathBuf) {
        if self.clone_into.is_some() {
            self.pending.push(dir);
            return;
        }
        match crate::syscall::open(&dir, libc::O_RDONLY | libc::O_DIRECTORY, 0) {
            Ok(fd) => self.clone_into = Some((dir, fd)),
            Err(_) => self.pending.push(dir),
        }
    }

    /// The clone with CLONE_INTO_CGROUP failed (kernel older than 5.7, or refused): join
    /// that cgroup the old way after the next clone.
    pub fn without_clone_into(&mut self) {
        if let Some((dir, _)) = self.clone_into.take() {
            self.pending.push(dir);
        }
    }

    /// Whether a child cloned now still has cgroups to be put in after the clone (see
    /// `finish`): until then it must wait.
    pub fn joins_after_clone(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Moves the caller back to its own cgroups and, when given, puts `pid` into the
    /// cgroups the caller could not enter itself.
    pub fn finish(self, pid: Option<i32>) -> Result<(), CgroupError> {
        let mut result = Ok(());
        for dir in &self.back {
            if let Err(e) = control_file::write(dir, "tasks", "0") {
                result = result.and(Err(e));
            }
        }
        result?;
        if let Some(pid) = pid {
            for dir in &self.pending {
                control_file::write(dir, "cgroup.procs", &pid.to_string())?;
            }
        }
        Ok(())
    }
}

/// Picks v1 or v2 by what is mounted at /sys/fs/cgroup; `cgroups_path` is the spec's
/// linux.cgroupsPath (None -> runc's default for `id`). `systemd` = --systemd-cgroup.
/// Relative paths resolve against the calling process's cgroup, as runc's.
pub fn new_manager(
    cgroups_path: Option<&str>,
    id: &str,
    systemd: bool,
) -> Result<Box<dyn Manager>, CgroupError> {
    if systemd {
        return Err(CgroupError::SystemdUnsupported);
    }
    new_manager_in(&CgroupFs::detect()?, cgroups_path, id)
}

/// `new_manager` with the text of /proc/self/mountinfo already read by the caller.
pub fn new_manager_with(
    mountinfo: &str,
    cgroups_path: Option<&str>,
    id: &str,
    systemd: bool,
) -> Result<Box<dyn Manager>, CgroupError> {
    if systemd {
        return Err(CgroupError::SystemdUnsupported);
    }
    new_manager_in(&CgroupFs::detect_with(mountinfo)?, cgroups_path, id)
}

/// `new_manager` on an explicit cgroupfs (tests use a fake tree).
pub fn new_manager_in(
    fs: &CgroupFs,
    cgroups_path: Option<&str>,
    id: &str,
) -> Result<Box<dyn Manager>, CgroupError> {
    let inner = hierarchy::CgroupPath::new(cgroups_path, id);
    if matches!(&inner, hierarchy::CgroupPath::Absolute(p) if p == Path::new("/")) {
        return Err(CgroupError::RootCgroup {
            path: cgroups_path.unwrap_or("/").to_string(),
        });
    }
    match &fs.layout {
        Layout::V2 { mount_point } => Ok(Box::new(v2::V2Manager::new(fs, mount_point, &inner)?)),
        Layout::V1 { mounts } => Ok(Box::new(v1::V1Manager::new(fs, mounts, &inner)?)),
    }
}

/// Pids listed in `cgroup.procs` of `dir` and of every sub-cgroup below it.
pub(crate) fn pids_recursive(dir: &Path) -> Result<Vec<i32>, CgroupError> {
    let mut pids = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Some(text) = control_file::read_optional(&d, "cgroup.procs")? else {
            continue;
        };
        for line in text.lines() {
            let pid = line.trim().parse::<i32>().map_err(|_| CgroupError::Parse {
                path: d.join("cgroup.procs"),
                content: line.to_string(),
            })?;
            pids.push(pid);
        }
        let entries = match fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(source) => return Err(CgroupError::io("read", &d, source)),
        };
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(e.path());
            }
        }
    }
    pids.sort_unstable();
    pids.dedup();
    Ok(pids)
}

/// Polls `check` until it reports the wanted state: the kernel freezes asynchronously.
/// `retry` is called every few rounds (runc re-writes FROZEN to v1's freezer.state, which
/// can stall while tasks fork).
pub(crate) fn wait_for_state(
    path: &Path,
    want: &'static str,
    mut check: impl FnMut() -> Result<Option<String>, CgroupError>,
    mut retry: impl FnMut() -> Result<(), CgroupError>,
) -> Result<(), CgroupError> {
    let mut seen = String::new();
    let mut delay = std::time::Duration::from_micros(100);
    for round in 0..1000 {
        match check()? {
            None => return Ok(()),
            Some(s) => seen = s,
        }
        if round % 25 == 24 {
            retry()?;
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(std::time::Duration::from_millis(10));
    }
    Err(CgroupError::FreezeTimeout {
        path: path.to_path_buf(),
        want,
        seen,
    })
}
