//! Idmapped bind mounts (runtime-spec 1.2: mounts[].uidMappings/gidMappings and the
//! "idmap"/"ridmap" options): `create` clones each source into a detached tree while it
//! is still in the host's mount and user namespaces, idmaps the tree through a user
//! namespace that holds the mount's mappings, and the init attaches the tree in place of
//! the bind mount. runc 1.2 does the same split (the parent makes the mount fds).

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Mount, Spec};

use super::mount_attr;
use super::mounts::{parse_options, Idmap};
use crate::namespaces::id_map_text;
use crate::syscall::{self, Forked};

#[derive(Debug, thiserror::Error)]
pub enum IdmapError {
    #[error("mount {dest:?}: idmapped mounts are only supported for bind mounts")]
    NotBind { dest: PathBuf },
    #[error("mount {dest:?}: an idmapped mount needs both uidMappings and gidMappings")]
    HalfMapped { dest: PathBuf },
    #[error(
        "mount {dest:?}: \"{option}\" without uidMappings and gidMappings takes the container's, but it has no user namespace with mappings (set linux.uidMappings and linux.gidMappings or give the mount its own)"
    )]
    NoMappings { dest: PathBuf, option: &'static str },
    #[error("mount {dest:?}: cannot make a user namespace with its mappings: {source}")]
    UserNamespace {
        dest: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("mount {dest:?}: cannot clone the mount tree of {source_path:?}: {source}")]
    CloneTree {
        dest: PathBuf,
        source_path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "mount {dest:?}: the filesystem of {source_path:?} does not support idmapped mounts ({source})"
    )]
    Unsupported {
        dest: PathBuf,
        source_path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("mount {dest:?}: cannot idmap the mount tree of {source_path:?}: {source}")]
    SetAttr {
        dest: PathBuf,
        source_path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// The detached idmapped trees of one container, by index into spec.mounts.
#[derive(Debug, Default)]
pub struct IdmappedTrees {
    trees: HashMap<usize, OwnedFd>,
}

impl IdmappedTrees {
    /// The tree made for mount `index`, if it is idmapped.
    pub fn take(&mut self, index: usize) -> Option<OwnedFd> {
        self.trees.remove(&index)
    }

    pub fn is_empty(&self) -> bool {
        self.trees.is_empty()
    }
}

/// Where an idmapped mount's user namespace comes from.
#[derive(Debug, PartialEq, Eq)]
enum Mapping {
    /// A new user namespace with these uid_map and gid_map texts.
    Maps { uid_map: String, gid_map: String },
    /// The user namespace the container joins.
    Path(PathBuf),
}

/// Which mounts are idmapped and through what, or why the spec cannot be honoured.
fn plan(spec: &Spec) -> Result<Vec<(usize, Mapping, bool)>, IdmapError> {
    let mut out = Vec::new();
    for (i, m) in spec.mounts().as_deref().unwrap_or(&[]).iter().enumerate() {
        let opts = parse_options(m.options().as_deref().unwrap_or(&[]));
        let explicit = m.uid_mappings().is_some() || m.gid_mappings().is_some();
        if !explicit && opts.idmap.is_none() {
            continue;
        }
        let dest = m.destination().clone();
        if !(opts.bind || m.typ().as_deref() == Some("bind")) {
            return Err(IdmapError::NotBind { dest });
        }
        let mapping = if explicit {
            match (m.uid_mappings(), m.gid_mappings()) {
                (Some(u), Some(g)) if !u.is_empty() && !g.is_empty() => Mapping::Maps {
                    uid_map: id_map_text(u),
                    gid_map: id_map_text(g),
                },
                _ => return Err(IdmapError::HalfMapped { dest }),
            }
        } else {
            let option = match opts.idmap {
                Some(Idmap::Recursive) => "ridmap",
                _ => "idmap",
            };
            container_mapping(spec).ok_or(IdmapError::NoMappings { dest, option })?
        };
        out.push((i, mapping, opts.idmap == Some(Idmap::Recursive)));
    }
    Ok(out)
}

/// The container's own user namespace as an idmap source (runc: "idmap" without
/// mappings uses the container's): the path it joins, or its mappings.
fn container_mapping(spec: &Spec) -> Option<Mapping> {
    let linux = spec.linux().as_ref()?;
    let user = linux
        .namespaces()
        .as_deref()
        .unwrap_or(&[])
        .iter()
        .find(|n| n.typ() == LinuxNamespaceType::User)?;
    if let Some(path) = user.path() {
        return Some(Mapping::Path(path.clone()));
    }
    let (uids, gids) = (
        linux.uid_mappings().as_ref()?,
        linux.gid_mappings().as_ref()?,
    );
    Some(Mapping::Maps {
        uid_map: id_map_text(uids),
        gid_map: id_map_text(gids),
    })
}

/// Makes the detached idmapped tree of every idmapped mount in `spec`. Runs in `create`,
/// before the init is cloned, in the caller's mount and user namespaces.
pub fn prepare_trees(spec: &Spec, bundle: &Path) -> Result<IdmappedTrees, IdmapError> {
    let planned = plan(spec)?;
    let mut trees = IdmappedTrees::default();
    if planned.is_empty() {
        return Ok(trees);
    }
    let mounts = spec.mounts().as_deref().unwrap_or(&[]);
    let mut namespaces: Vec<(Mapping, OwnedFd)> = Vec::new();
    for (index, mapping, recursive_idmap) in planned {
        let m = &mounts[index];
        let dest = m.destination().clone();
        let userns = match namespaces.iter().position(|(k, _)| *k == mapping) {
            Some(n) => n,
            None => {
                let fd =
                    open_user_namespace(&mapping).map_err(|source| IdmapError::UserNamespace {
                        dest: dest.clone(),
                        source,
                    })?;
                namespaces.push((mapping, fd));
                namespaces.len() - 1
            }
        };
        let tree = idmapped_tree(m, bundle, namespaces[userns].1.as_fd(), recursive_idmap)?;
        trees.trees.insert(index, tree);
    }
    Ok(trees)
}

fn idmapped_tree(
    m: &Mount,
    bundle: &Path,
    userns: std::os::fd::BorrowedFd<'_>,
    recursive_idmap: bool,
) -> Result<OwnedFd, IdmapError> {
    let dest = m.destination().clone();
    let opts = parse_options(m.options().as_deref().unwrap_or(&[]));
    let source = m.source().clone().unwrap_or_default();
    let source_path = if source.is_relative() {
        bundle.join(&source)
    } else {
        source
    };
    let tree = mount_attr::clone_tree(&source_path, opts.recursive).map_err(|source| {
        IdmapError::CloneTree {
            dest: dest.clone(),
            source_path: source_path.clone(),
            source,
        }
    })?;
    mount_attr::set_idmap(tree.as_fd(), userns, recursive_idmap).map_err(|source| {
        // The kernel says EINVAL when the filesystem lacks FS_ALLOW_IDMAP (the tree is
        // freshly detached, so it is not the "already visible" case).
        if source.raw_os_error() == Some(libc::EINVAL) {
            IdmapError::Unsupported {
                dest,
                source_path,
                source,
            }
        } else {
            IdmapError::SetAttr {
                dest,
                source_path,
                source,
            }
        }
    })?;
    Ok(tree)
}

fn open_user_namespace(mapping: &Mapping) -> io::Result<OwnedFd> {
    match mapping {
        Mapping::Path(path) => syscall::open(path, libc::O_RDONLY, 0),
        Mapping::Maps { uid_map, gid_map } => user_namespace_with(uid_map, gid_map),
    }
}

/// A user namespace holding the given maps: a child is cloned into a new one, we write
/// its maps and keep /proc/<child>/ns/user open; the namespace outlives the child.
fn user_namespace_with(uid_map: &str, gid_map: &str) -> io::Result<OwnedFd> {
    let (hold_read, hold_write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    let pid = match syscall::fork_with_flags(libc::CLONE_NEWUSER as u64)? {
        Forked::Child => {
            // Only async-signal-safe calls here: wait for the parent to close its end
            // (done, or gone), then leave.
            let mut byte = 0u8;
            // SAFETY: closing our copy of the write end, reading into a valid byte and
            // _exit are async-signal-safe and sound after a fork.
            unsafe {
                libc::close(hold_write.as_raw_fd());
                libc::read(hold_read.as_raw_fd(), (&mut byte as *mut u8).cast(), 1);
                libc::_exit(0)
            }
        }
        Forked::Parent(pid) => pid,
    };
    drop(hold_read);
    let opened = (|| {
        std::fs::write(format!("/proc/{pid}/uid_map"), uid_map)?;
        std::fs::write(format!("/proc/{pid}/gid_map"), gid_map)?;
        syscall::open(
            Path::new(&format!("/proc/{pid}/ns/user")),
            libc::O_RDONLY,
            0,
        )
    })();
    drop(hold_write);
    syscall::waitpid(pid, 0)?;
    opened
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(mounts: &str, linux: &str) -> Spec {
        serde_json::from_str(&format!(
            r#"{{"ociVersion":"1.2.0","root":{{"path":"rootfs"}},"mounts":{mounts},"linux":{linux}}}"#
        ))
        .expect("spec")
    }

    const MAPS: &str = r#""uidMappings":[{"containerID":0,"hostID":1000,"size":1}],"gidMappings":[{"containerID":0,"hostID":1000,"size":1}]"#;

    #[test]
    fn mounts_with_mappings_are_idmapped_and_ridmap_is_recursive() {
        let s = spec(
            &format!(
                r#"[{{"destination":"/a","type":"bind","source":"/x","options":["rbind"],{MAPS}}},
                    {{"destination":"/b","type":"bind","source":"/y","options":["bind"]}},
                    {{"destination":"/c","source":"/z","options":["rbind","ridmap"],{MAPS}}}]"#
            ),
            "{}",
        );
        let planned = plan(&s).expect("plan");
        let want = Mapping::Maps {
            uid_map: "0 1000 1\n".into(),
            gid_map: "0 1000 1\n".into(),
        };
        assert_eq!(planned.len(), 2);
        assert_eq!(planned[0], (0, want, false));
        assert_eq!(planned[1].0, 2);
        assert!(planned[1].2, "ridmap idmaps every mount in the tree");
    }

    #[test]
    fn idmap_without_mappings_takes_the_container_user_namespace() {
        let mounts = r#"[{"destination":"/a","type":"bind","source":"/x","options":["idmap"]}]"#;
        let own = spec(
            mounts,
            r#"{"namespaces":[{"type":"user"}],"uidMappings":[{"containerID":0,"hostID":100000,"size":65536}],"gidMappings":[{"containerID":0,"hostID":100000,"size":65536}]}"#,
        );
        assert_eq!(
            plan(&own).expect("plan")[0].1,
            Mapping::Maps {
                uid_map: "0 100000 65536\n".into(),
                gid_map: "0 100000 65536\n".into()
            }
        );
        let joined = spec(
            mounts,
            r#"{"namespaces":[{"type":"user","path":"/proc/42/ns/user"}]}"#,
        );
        assert_eq!(
            plan(&joined).expect("plan")[0].1,
            Mapping::Path("/proc/42/ns/user".into())
        );
        let err = plan(&spec(mounts, "{}")).expect_err("no user namespace");
        assert!(
            matches!(
                err,
                IdmapError::NoMappings {
                    option: "idmap",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn idmapped_mounts_must_be_binds_with_both_mappings() {
        let tmpfs = spec(
            &format!(r#"[{{"destination":"/t","type":"tmpfs","source":"tmpfs",{MAPS}}}]"#),
            "{}",
        );
        assert!(matches!(plan(&tmpfs), Err(IdmapError::NotBind { .. })));
        let half = spec(
            r#"[{"destination":"/a","type":"bind","source":"/x","uidMappings":[{"containerID":0,"hostID":1,"size":1}]}]"#,
            "{}",
        );
        let err = plan(&half).expect_err("half mapped");
        assert!(matches!(err, IdmapError::HalfMapped { .. }));
        assert!(err.to_string().contains("uidMappings and gidMappings"));
    }

    #[test]
    fn specs_without_idmapped_mounts_make_no_trees() {
        let s = spec(
            r#"[{"destination":"/a","type":"bind","source":"/x","options":["rbind","rro"]}]"#,
            "{}",
        );
        let trees = prepare_trees(&s, Path::new("/b")).expect("nothing to do");
        assert!(trees.is_empty());
    }
}
