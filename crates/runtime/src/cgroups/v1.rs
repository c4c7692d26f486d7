//! The cgroup v1 manager: one directory per mounted hierarchy, as runc's fs driver.

use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

use super::control_file;
use super::hierarchy::{CgroupFs, CgroupPath, V1Mount, HYBRID_UNIFIED};
use super::ownership::Ownership;
use super::{
    pids_recursive, v1_resources, v1_stats, wait_for_state, CgroupError, Entered, Manager, Stats,
};

#[derive(Debug, Clone)]
pub(crate) struct Hierarchy {
    pub controllers: Vec<String>,
    pub mount_point: PathBuf,
    pub dir: PathBuf,
    /// This process's own cgroup in the hierarchy (where `Entered::finish` moves it back).
    pub own: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub(crate) struct V1Manager {
    hierarchies: Vec<Hierarchy>,
    ownership: Ownership,
    after_mkdir: fn(&Path),
}

impl V1Manager {
    pub(crate) fn new(
        fs: &CgroupFs,
        mounts: &[V1Mount],
        inner: &CgroupPath,
    ) -> Result<V1Manager, CgroupError> {
        let mut hierarchies = Vec::new();
        for m in mounts {
            let dir = fs.v1_dir(m, inner);
            if dir == m.mount_point {
                return Err(CgroupError::RootCgroup {
                    path: dir.to_string_lossy().into_owned(),
                });
            }
            hierarchies.push(Hierarchy {
                controllers: m.controllers.clone(),
                mount_point: m.mount_point.clone(),
                dir,
                own: fs.own_v1_dir(m),
            });
        }
        let key = hierarchies
            .first()
            .map(|h| h.dir.clone())
            .unwrap_or_default();
        Ok(V1Manager {
            ownership: Ownership::new(&fs.record_dir, &key),
            after_mkdir: fs.after_mkdir,
            hierarchies,
        })
    }

    /// The container's directory in the hierarchy holding `controller`.
    pub(crate) fn dir(&self, controller: &str) -> Option<&Path> {
        self.hierarchies
            .iter()
            .find(|h| h.controllers.iter().any(|c| c == controller))
            .map(|h| h.dir.as_path())
    }

    fn freezer(&self, action: &'static str) -> Result<&Path, CgroupError> {
        self.dir("freezer").ok_or(CgroupError::MissingController {
            resource: action,
            controller: "freezer",
            hint: "",
        })
    }

    fn set_freezer(&self, want: &'static str) -> Result<(), CgroupError> {
        let dir = self.freezer(if want == "FROZEN" { "pause" } else { "resume" })?;
        control_file::write(dir, "freezer.state", want)?;
        wait_for_state(
            dir,
            want,
            || {
                let s = control_file::read(dir, "freezer.state")?;
                Ok((s.trim() != want).then(|| s.trim().to_string()))
            },
            || control_file::write(dir, "freezer.state", want),
        )
    }

    /// runc's cpuset rule: a new cpuset cgroup starts with empty cpus and mems, and no task
    /// can join it until they are set, so every directory we created inherits its parent's.
    /// Directories on the way that another berth process created are filled too when they
    /// are still empty (it may not have written them yet: two containers created at once
    /// under a new cgroup parent), top-down, so no child copies an empty parent.
    fn init_cpusets(&self, created: &[PathBuf]) -> Result<(), CgroupError> {
        let Some(h) = self
            .hierarchies
            .iter()
            .find(|h| h.controllers.iter().any(|c| c == "cpuset"))
        else {
            return Ok(());
        };
        if !created.iter().any(|d| d.starts_with(&h.mount_point)) {
            return Ok(());
        }
        let Ok(below) = h.dir.strip_prefix(&h.mount_point) else {
            return Ok(());
        };
        let mut dir = h.mount_point.clone();
        for part in below.components() {
            let parent = dir.clone();
            dir.push(part);
            for file in ["cpuset.cpus", "cpuset.mems"] {
                let current = control_file::read_optional(&dir, file)?.unwrap_or_default();
                if current.trim().is_empty() {
                    let from_parent = control_file::read(&parent, file)?;
                    control_file::write(&dir, file, from_parent.trim())?;
                }
            }
        }
        Ok(())
    }
}

impl V1Manager {
    /// Creates the missing directories (recorded as ours) with runc's cpuset rule.
    fn make(&self) -> Result<(), CgroupError> {
        let targets: Vec<(PathBuf, PathBuf)> = self
            .hierarchies
            .iter()
            .map(|h| (h.mount_point.clone(), h.dir.clone()))
            .collect();
        let created = self.ownership.create(&targets, self.after_mkdir)?;
        self.init_cpusets(&created)
    }
}

impl Manager for V1Manager {
    fn apply(&self, pid: i32) -> Result<(), CgroupError> {
        self.make()?;
        for h in &self.hierarchies {
            control_file::write(&h.dir, "cgroup.procs", &pid.to_string())?;
        }
        Ok(())
    }

    fn enter(&self) -> Result<Option<Entered>, CgroupError> {
        // Without our own cgroup in every hierarchy we could not move back: use `apply`.
        if self.hierarchies.iter().any(|h| h.own.is_none()) {
            return Ok(None);
        }
        self.make()?;
        let mut entered = Entered::default();
        for h in &self.hierarchies {
            // cgroup2 (the unified mount of a hybrid host) has no `tasks` file.
            if h.controllers.iter().any(|c| c == HYBRID_UNIFIED) {
                entered.clone_into_or_pending(h.dir.clone());
                continue;
            }
            if let Err(e) = control_file::write(&h.dir, "tasks", "0") {
                let _ = entered.finish(None);
                return Err(e);
            }
            entered.back.extend(h.own.clone());
        }
        Ok(Some(entered))
    }

    fn set(&self, r: &LinuxResources) -> Result<(), CgroupError> {
        v1_resources::set(self, r)
    }

    fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        let dir = self.dir("memory").or_else(|| self.dir("pids")).or_else(|| {
            self.hierarchies
                .iter()
                .map(|h| h.dir.as_path())
                .find(|d| d.exists())
        });
        match dir {
            Some(d) => pids_recursive(d),
            None => Ok(Vec::new()),
        }
    }

    fn freeze(&self) -> Result<(), CgroupError> {
        self.set_freezer("FROZEN")
    }

    fn thaw(&self) -> Result<(), CgroupError> {
        self.set_freezer("THAWED")
    }

    fn is_frozen(&self) -> Result<bool, CgroupError> {
        let dir = self.freezer("pause state")?;
        Ok(
            control_file::read_optional(dir, "freezer.state")?
                .is_some_and(|s| s.trim() == "FROZEN"),
        )
    }

    fn stats(&self) -> Result<Stats, CgroupError> {
        v1_stats::stats(self)
    }

    fn oom_kill_count(&self) -> Result<u64, CgroupError> {
        let Some(dir) = self.dir("memory") else {
            return Ok(0);
        };
        Ok(control_file::read_optional(dir, "memory.oom_control")?
            .map_or(0, |t| control_file::keyed_value(&t, "oom_kill")))
    }

    fn destroy(&self) -> Result<(), CgroupError> {
        // Killed tasks of a frozen cgroup stay until thawed, and their cgroup stays busy.
        // Only a cgroup we created is thawed: a joined one is not ours to resume.
        if self.ownership.created_leaf()? && self.is_frozen().unwrap_or(false) {
            let _ = self.thaw();
        }
        self.ownership.remove_created()
    }

    fn paths(&self) -> Vec<PathBuf> {
        self.hierarchies.iter().map(|h| h.dir.clone()).collect()
    }
}
