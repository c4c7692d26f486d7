//! The cgroup v2 manager: one directory in the unified hierarchy, controllers enabled in
//! the parents' cgroup.subtree_control, devices through an eBPF filter.

use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

use super::bpf_program::Insn;
use super::control_file;
use super::hierarchy::{CgroupFs, CgroupPath};
use super::ownership::Ownership;
use super::{
    bpf_syscall, pids_recursive, v2_resources, v2_stats, wait_for_state, CgroupError, Entered,
    Manager, Stats,
};

/// Installs a device filter program on a cgroup directory (the bpf syscall; a recorder in
/// tests, since unprivileged tests cannot load programs).
pub(crate) type DeviceFilterInstaller = fn(&Path, &[Insn]) -> Result<(), CgroupError>;

#[derive(Debug, Clone)]
pub(crate) struct V2Manager {
    pub(crate) mount_point: PathBuf,
    pub(crate) dir: PathBuf,
    ownership: Ownership,
    after_mkdir: fn(&Path),
    pub(crate) install_device_filter: DeviceFilterInstaller,
}

impl V2Manager {
    pub(crate) fn new(
        fs: &CgroupFs,
        mount_point: &Path,
        inner: &CgroupPath,
    ) -> Result<V2Manager, CgroupError> {
        let dir = fs.v2_dir(mount_point, inner);
        if dir == mount_point {
            return Err(CgroupError::RootCgroup {
                path: dir.to_string_lossy().into_owned(),
            });
        }
        Ok(V2Manager {
            mount_point: mount_point.to_path_buf(),
            ownership: Ownership::new(&fs.record_dir, &dir),
            after_mkdir: fs.after_mkdir,
            dir,
            install_device_filter: bpf_syscall::install,
        })
    }

    /// Controllers usable in the container's cgroup.
    pub(crate) fn available(&self) -> Result<Vec<String>, CgroupError> {
        Ok(
            control_file::read_optional(&self.dir, "cgroup.controllers")?
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_string)
                .collect(),
        )
    }

    /// The container's directory when `controller` is enabled there, else a clear error.
    pub(crate) fn need(
        &self,
        controller: &'static str,
        resource: &'static str,
    ) -> Result<&Path, CgroupError> {
        if self.available()?.iter().any(|c| c == controller) {
            Ok(&self.dir)
        } else {
            Err(CgroupError::MissingController {
                resource,
                controller,
                hint: " (it is not enabled in the parent cgroups' cgroup.subtree_control)",
            })
        }
    }

    /// Enables, in every ancestor below the root, each controller it has but does not yet
    /// delegate, as runc does. The root cgroup itself is never written to: the controllers
    /// it delegates are the host's choice. Failures are tolerated per controller (runc too):
    /// a controller that stays disabled shows up as missing when a limit needs it.
    fn enable_controllers(&self) -> Result<(), CgroupError> {
        let Ok(below_root) = self.dir.strip_prefix(&self.mount_point) else {
            return Ok(());
        };
        let mut ancestor = self.mount_point.clone();
        let components: Vec<_> = below_root.components().collect();
        for c in components.iter().take(components.len().saturating_sub(1)) {
            ancestor.push(c);
            let have =
                control_file::read_optional(&ancestor, "cgroup.controllers")?.unwrap_or_default();
            let enabled = control_file::read_optional(&ancestor, "cgroup.subtree_control")?
                .unwrap_or_default();
            let enabled: Vec<&str> = enabled.split_whitespace().collect();
            for ctrl in have.split_whitespace().filter(|c| !enabled.contains(c)) {
                let _ =
                    control_file::write(&ancestor, "cgroup.subtree_control", &format!("+{ctrl}"));
            }
        }
        Ok(())
    }

    fn set_frozen(&self, frozen: bool) -> Result<(), CgroupError> {
        if !control_file::exists(&self.dir, "cgroup.freeze") {
            return Err(CgroupError::Unsupported {
                resource: "pause/resume",
                version: "v2 on this kernel (no cgroup.freeze: needs Linux 5.2 or later)",
            });
        }
        let (value, want) = if frozen {
            ("1", "FROZEN")
        } else {
            ("0", "THAWED")
        };
        control_file::write(&self.dir, "cgroup.freeze", value)?;
        wait_for_state(
            &self.dir,
            want,
            || {
                let events = control_file::read(&self.dir, "cgroup.events")?;
                let now = control_file::keyed_value(&events, "frozen") == 1;
                Ok((now != frozen).then(|| format!("frozen {}", u8::from(now))))
            },
            || Ok(()),
        )
    }
}

impl Manager for V2Manager {
    fn apply(&self, pid: i32) -> Result<(), CgroupError> {
        self.ownership.create(
            &[(self.mount_point.clone(), self.dir.clone())],
            self.after_mkdir,
        )?;
        self.enable_controllers()?;
        control_file::write(&self.dir, "cgroup.procs", &pid.to_string())
    }

    fn enter(&self) -> Result<Option<Entered>, CgroupError> {
        // Nothing moves: the child is born in the cgroup through CLONE_INTO_CGROUP.
        self.ownership.create(
            &[(self.mount_point.clone(), self.dir.clone())],
            self.after_mkdir,
        )?;
        self.enable_controllers()?;
        let mut entered = Entered::default();
        entered.clone_into_or_pending(self.dir.clone());
        Ok(Some(entered))
    }

    fn set(&self, r: &LinuxResources) -> Result<(), CgroupError> {
        v2_resources::set(self, r)
    }

    fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        pids_recursive(&self.dir)
    }

    fn freeze(&self) -> Result<(), CgroupError> {
        self.set_frozen(true)
    }

    fn thaw(&self) -> Result<(), CgroupError> {
        self.set_frozen(false)
    }

    fn is_frozen(&self) -> Result<bool, CgroupError> {
        Ok(control_file::read_optional(&self.dir, "cgroup.freeze")?
            .is_some_and(|s| s.trim() == "1"))
    }

    fn stats(&self) -> Result<Stats, CgroupError> {
        v2_stats::stats(&self.dir)
    }

    fn oom_kill_count(&self) -> Result<u64, CgroupError> {
        Ok(control_file::read_optional(&self.dir, "memory.events")?
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
        vec![self.dir.clone()]
    }
}
