//! Linux namespaces from the spec: which are new (clone flags), which are joined by
//! path (setns), the order they are entered in, uid/gid maps and time offsets.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxIdMapping, LinuxNamespace, LinuxNamespaceType, Spec};

use crate::syscall::{self, cvt};

/// CLONE_NEWTIME (not in every libc version).
pub const CLONE_NEWTIME: libc::c_int = 0x80;

/// The clone flag and /proc/<pid>/ns name of a namespace type.
pub fn flag_and_name(t: LinuxNamespaceType) -> (libc::c_int, &'static str) {
    match t {
        LinuxNamespaceType::Mount => (libc::CLONE_NEWNS, "mnt"),
        LinuxNamespaceType::Cgroup => (libc::CLONE_NEWCGROUP, "cgroup"),
        LinuxNamespaceType::Uts => (libc::CLONE_NEWUTS, "uts"),
        LinuxNamespaceType::Ipc => (libc::CLONE_NEWIPC, "ipc"),
        LinuxNamespaceType::User => (libc::CLONE_NEWUSER, "user"),
        LinuxNamespaceType::Pid => (libc::CLONE_NEWPID, "pid"),
        LinuxNamespaceType::Network => (libc::CLONE_NEWNET, "net"),
        LinuxNamespaceType::Time => (CLONE_NEWTIME, "time"),
    }
}

/// How the container's namespaces are set up.
///
/// new pid/net/ipc/uts/mnt/user namespaces come from the clone3 flags (so a new user
/// namespace owns the others, as in runc); pid, time, net, ipc and uts namespaces joined
/// by path are entered by the parent just around the clone (they only affect the child,
/// and the parent returns to its own afterwards); user, mnt and cgroup paths are joined
/// by the child, user first. A new cgroup namespace is unshared by the child after the
/// parent has moved it into its cgroup, so the cgroup root is the container's.
#[derive(Debug, Default)]
pub struct Plan {
    pub clone_flags: u64,
    /// With a new user namespace: the other new namespaces, unshared by the child once it
    /// is root in the user namespace (runc's nsexec order, so e.g. the ipc namespace's
    /// mqueue gets the same owner as under runc).
    pub unshare_flags: u64,
    pub parent_joins: Vec<(PathBuf, libc::c_int)>,
    pub child_joins: Vec<(PathBuf, libc::c_int)>,
    pub new_user: bool,
    pub new_mount: bool,
    pub new_cgroup: bool,
    pub new_time: bool,
    /// The spec lists a uts namespace, new or joined by path: the container may set its
    /// hostname and domainname there (as runc allows), never in the runtime's own one.
    pub uts_entry: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum NamespaceError {
    #[error("duplicate namespace type {0} in linux.namespaces")]
    Duplicate(&'static str),
    #[error("cannot open namespace {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot join namespace {path}: {source}")]
    Join {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write {what} for pid {pid}: {source}")]
    Map {
        what: &'static str,
        pid: i32,
        #[source]
        source: io::Error,
    },
    #[error("cannot create time namespace: {0}")]
    Time(#[source] io::Error),
    #[error("user namespaces are enabled but linux.uidMappings/gidMappings are missing")]
    NoMappings,
}

impl Plan {
    pub fn from_spec(spec: &Spec) -> Result<Plan, NamespaceError> {
        let empty = Vec::new();
        let namespaces: &Vec<LinuxNamespace> = spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().as_ref())
            .unwrap_or(&empty);
        Self::from_namespaces(namespaces)
    }

    pub fn from_namespaces(namespaces: &[LinuxNamespace]) -> Result<Plan, NamespaceError> {
        let mut plan = Plan::default();
        let mut seen = Vec::new();
        let mut user_join = None;
        for ns in namespaces {
            let (flag, name) = flag_and_name(ns.typ());
            if seen.contains(&flag) {
                return Err(NamespaceError::Duplicate(name));
            }
            seen.push(flag);
            plan.uts_entry |= ns.typ() == LinuxNamespaceType::Uts;
            match (ns.path(), ns.typ()) {
                (Some(p), LinuxNamespaceType::User) => user_join = Some((p.clone(), flag)),
                (Some(p), LinuxNamespaceType::Mount | LinuxNamespaceType::Cgroup) => {
                    plan.child_joins.push((p.clone(), flag))
                }
                (Some(p), _) => plan.parent_joins.push((p.clone(), flag)),
                (None, LinuxNamespaceType::Cgroup) => plan.new_cgroup = true,
                (None, LinuxNamespaceType::Time) => plan.new_time = true,
                (None, t) => {
                    plan.clone_flags |= flag as u64;
                    plan.new_user |= t == LinuxNamespaceType::User;
                    plan.new_mount |= t == LinuxNamespaceType::Mount;
                }
            }
        }
        if let Some(join) = user_join {
            plan.child_joins.insert(0, join);
        }
        if plan.new_user {
            let keep = (libc::CLONE_NEWUSER | libc::CLONE_NEWPID) as u64;
            plan.unshare_flags = plan.clone_flags & !keep;
            plan.clone_flags &= keep;
        }
        Ok(plan)
    }
}

/// Namespaces the parent entered for the clone, and how to get back.
pub struct ParentJoin {
    restore: Vec<(OwnedFd, libc::c_int)>,
}

/// Enters the namespaces the child must be born in (pid/time/net/ipc/uts by path, a new
/// time namespace with its offsets); `ParentJoin::restore` returns afterwards.
pub fn enter_for_clone(plan: &Plan, spec: &Spec) -> Result<ParentJoin, NamespaceError> {
    let mut restore = Vec::new();
    let save = |flag: libc::c_int, restore: &mut Vec<(OwnedFd, libc::c_int)>| {
        let name = ns_name(flag);
        let path = PathBuf::from(format!("/proc/self/ns/{name}"));
        let own = open_ns(&path)?;
        restore.push((own, flag));
        Ok::<(), NamespaceError>(())
    };
    for (path, flag) in &plan.parent_joins {
        save(*flag, &mut restore)?;
        let fd = open_ns(path)?;
        syscall::setns(fd.as_fd(), *flag).map_err(|source| NamespaceError::Join {
            path: path.clone(),
            source,
        })?;
    }
    if plan.new_time {
        save(CLONE_NEWTIME, &mut restore)?;
        // SAFETY: plain syscall; affects only children of this single-threaded process.
        cvt(unsafe { libc::unshare(CLONE_NEWTIME) }).map_err(NamespaceError::Time)?;
        write_time_offsets(spec).map_err(NamespaceError::Time)?;
    }
    Ok(ParentJoin { restore })
}

impl ParentJoin {
    /// Returns the parent to the namespaces it had before `enter_for_clone`.
    pub fn restore(self) {
        for (fd, flag) in self.restore.into_iter().rev() {
            // Best effort: the parent only runs hooks and exits after this.
            let _ = syscall::setns(fd.as_fd(), flag);
        }
    }
}

fn ns_name(flag: libc::c_int) -> &'static str {
    [
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Cgroup,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::User,
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Network,
        LinuxNamespaceType::Time,
    ]
    .into_iter()
    .map(flag_and_name)
    .find(|(f, _)| *f == flag)
    .map_or("", |(_, n)| n)
}

fn open_ns(path: &Path) -> Result<OwnedFd, NamespaceError> {
    File::open(path)
        .map(OwnedFd::from)
        .map_err(|source| NamespaceError::Open {
            path: path.to_path_buf(),
            source,
        })
}

/// The time offsets file format: "<clock> <secs> <nanosecs>" per line.
pub fn time_offsets_text(spec: &Spec) -> String {
    let mut out = String::new();
    if let Some(offsets) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.time_offsets().as_ref())
    {
        let mut clocks: Vec<_> = offsets.iter().collect();
        clocks.sort_by(|a, b| a.0.cmp(b.0));
        for (clock, off) in clocks {
            out.push_str(&format!(
                "{clock} {} {}\n",
                off.secs().unwrap_or(0),
                off.nanosecs().unwrap_or(0)
            ));
        }
    }
    out
}

fn write_time_offsets(spec: &Spec) -> io::Result<()> {
    let text = time_offsets_text(spec);
    if text.is_empty() {
        return Ok(());
    }
    std::fs::write("/proc/self/timens_offsets", text)
}

/// Joins the namespaces the child enters by path (user first), in the child.
pub fn join_in_child(plan: &Plan) -> Result<(), NamespaceError> {
    // Open every path before entering any: a joined mount namespace changes what paths mean.
    let mut fds = Vec::new();
    for (path, flag) in &plan.child_joins {
        fds.push((open_ns(path)?, *flag, path));
    }
    for (fd, flag, path) in fds {
        syscall::setns(fd.as_fd(), flag).map_err(|source| NamespaceError::Join {
            path: path.clone(),
            source,
        })?;
    }
    Ok(())
}

/// The uid_map/gid_map text for a list of mappings.
pub fn id_map_text(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// Writes /proc/<pid>/{uid_map,gid_map} for a child in a new user namespace.
pub fn write_id_maps(pid: i32, spec: &Spec) -> Result<(), NamespaceError> {
    let linux = spec.linux().as_ref();
    let uids = linux.and_then(|l| l.uid_mappings().as_ref());
    let gids = linux.and_then(|l| l.gid_mappings().as_ref());
    let (Some(uids), Some(gids)) = (uids, gids) else {
        return Err(NamespaceError::NoMappings);
    };
    std::fs::write(format!("/proc/{pid}/uid_map"), id_map_text(uids)).map_err(|source| {
        NamespaceError::Map {
            what: "uid_map",
            pid,
            source,
        }
    })?;
    std::fs::write(format!("/proc/{pid}/gid_map"), id_map_text(gids)).map_err(|source| {
        NamespaceError::Map {
            what: "gid_map",
            pid,
            source,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Vec<LinuxNamespace> {
        serde_json::from_str(json).expect("namespaces")
    }

    #[test]
    fn new_namespaces_become_clone_flags_and_cgroup_time_are_deferred() {
        let plan = Plan::from_namespaces(&parse(
            r#"[{"type":"pid"},{"type":"network"},{"type":"mount"},{"type":"cgroup"},{"type":"time"},{"type":"user"}]"#,
        ))
        .expect("plan");
        // With a new user namespace only user and pid come from clone3; the child
        // unshares the rest once it is root in the user namespace.
        assert_eq!(
            plan.clone_flags,
            (libc::CLONE_NEWPID | libc::CLONE_NEWUSER) as u64
        );
        assert_eq!(
            plan.unshare_flags,
            (libc::CLONE_NEWNET | libc::CLONE_NEWNS) as u64
        );
        assert!(plan.new_cgroup && plan.new_time && plan.new_user && plan.new_mount);
    }

    #[test]
    fn without_a_user_namespace_every_new_namespace_is_a_clone_flag() {
        let plan = Plan::from_namespaces(&parse(
            r#"[{"type":"pid"},{"type":"network"},{"type":"ipc"},{"type":"uts"},{"type":"mount"}]"#,
        ))
        .expect("plan");
        let want = libc::CLONE_NEWPID
            | libc::CLONE_NEWNET
            | libc::CLONE_NEWIPC
            | libc::CLONE_NEWUTS
            | libc::CLONE_NEWNS;
        assert_eq!(plan.clone_flags, want as u64);
        assert_eq!(plan.unshare_flags, 0);
    }

    #[test]
    fn a_uts_namespace_new_or_joined_by_path_allows_a_hostname() {
        let new = Plan::from_namespaces(&parse(r#"[{"type":"uts"}]"#)).expect("plan");
        assert!(new.uts_entry);
        let joined = Plan::from_namespaces(&parse(r#"[{"type":"uts","path":"/proc/1/ns/uts"}]"#))
            .expect("plan");
        assert!(joined.uts_entry);
        assert_eq!(joined.clone_flags & libc::CLONE_NEWUTS as u64, 0);
        let none = Plan::from_namespaces(&parse(r#"[{"type":"pid"}]"#)).expect("plan");
        assert!(!none.uts_entry);
    }

    #[test]
    fn joined_user_namespace_is_entered_first_by_the_child() {
        let plan = Plan::from_namespaces(&parse(
            r#"[{"type":"mount","path":"/proc/1/ns/mnt"},{"type":"user","path":"/proc/1/ns/user"},{"type":"network","path":"/run/netns/x"}]"#,
        ))
        .expect("plan");
        assert_eq!(plan.clone_flags, 0);
        assert_eq!(
            plan.child_joins[0],
            (PathBuf::from("/proc/1/ns/user"), libc::CLONE_NEWUSER)
        );
        assert_eq!(plan.child_joins[1].1, libc::CLONE_NEWNS);
        assert_eq!(
            plan.parent_joins,
            vec![(PathBuf::from("/run/netns/x"), libc::CLONE_NEWNET)]
        );
    }

    #[test]
    fn duplicate_namespace_types_are_refused() {
        let err = Plan::from_namespaces(&parse(r#"[{"type":"pid"},{"type":"pid"}]"#))
            .expect_err("duplicate");
        assert_eq!(
            err.to_string(),
            "duplicate namespace type pid in linux.namespaces"
        );
    }

    #[test]
    fn id_maps_render_one_line_per_mapping() {
        let maps: Vec<LinuxIdMapping> = serde_json::from_str(
            r#"[{"containerID":0,"hostID":1000,"size":1},{"containerID":1,"hostID":100000,"size":65536}]"#,
        )
        .expect("maps");
        assert_eq!(id_map_text(&maps), "0 1000 1\n1 100000 65536\n");
    }

    #[test]
    fn time_offsets_render_sorted_clock_lines() {
        let spec: Spec = serde_json::from_str(
            r#"{"ociVersion":"1.2.0","linux":{"timeOffsets":{"monotonic":{"secs":10,"nanosecs":5},"boottime":{"secs":-3}}}}"#,
        )
        .expect("spec");
        assert_eq!(time_offsets_text(&spec), "boottime -3 0\nmonotonic 10 5\n");
    }
}
