//! Host-shifted ownership for user namespaces without idmapped mounts: shifting a tree's
//! uids/gids into a user namespace's host range in place (lchown of every entry, setuid and
//! setgid bits restored, POSIX ACL ids shifted), translating host ids back to container ids
//! for diffs and exports, and the `idshift` mark beside an upper directory that says its
//! entries are host-shifted (Docker's userns-remap stores its layers the same way).

use std::collections::HashSet;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::idmap::{map_id, IdMapping};

/// Name of the mark file beside a host-shifted upper directory (`snapshots/<id>/idshift`).
pub const MARK: &str = "idshift";

/// POSIX ACL xattrs: `struct posix_acl_xattr_header` (u32 version 2) then 8-byte entries
/// (u16 tag, u16 perm, u32 id); tags 2 (ACL_USER) and 8 (ACL_GROUP) carry ids.
const ACL_XATTRS: [&str; 2] = ["system.posix_acl_access", "system.posix_acl_default"];
const ACL_USER: u16 = 2;
const ACL_GROUP: u16 = 8;

/// Container-to-host id maps of one user namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdShift {
    /// uid ranges.
    pub uids: Vec<IdMapping>,
    /// gid ranges.
    pub gids: Vec<IdMapping>,
}

/// Why shifting failed.
#[derive(Debug, thiserror::Error)]
pub enum ShiftError {
    /// An entry's id has no host id in the map (the map is too small for the image).
    #[error("{path}: {kind} {id} has no mapping in the user namespace (give the container a larger range)")]
    Unmapped {
        path: PathBuf,
        kind: &'static str,
        id: u32,
    },
    /// A syscall on an entry failed.
    #[error("shifting ownership of {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The mark file is not in the expected format.
    #[error("invalid id shift mark {path}")]
    BadMark { path: PathBuf },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ShiftError + '_ {
    move |source| ShiftError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The inverse of [`map_id`]: the container id of host id `id`, or `None` outside every range.
pub fn unmap_id(maps: &[IdMapping], id: u32) -> Option<u32> {
    maps.iter().find_map(|m| {
        let offset = id.checked_sub(m.host_id)?;
        (offset < m.size)
            .then(|| m.container_id.checked_add(offset))
            .flatten()
    })
}

impl IdShift {
    /// Host ids of container ids `(uid, gid)`, or the first unmapped one.
    pub fn to_host(&self, uid: u32, gid: u32) -> Result<(u32, u32), (&'static str, u32)> {
        let host_uid = map_id(&self.uids, uid).ok_or(("uid", uid))?;
        let host_gid = map_id(&self.gids, gid).ok_or(("gid", gid))?;
        Ok((host_uid, host_gid))
    }

    /// Container ids of host ids `(uid, gid)`. Ids outside the host ranges are kept: they
    /// belong to entries the engine made as host root (mount points of volumes and /etc
    /// files), which the container sees as its overflow id and a tar should show as root.
    pub fn to_container(&self, uid: u32, gid: u32) -> (u32, u32) {
        (
            unmap_id(&self.uids, uid).unwrap_or(uid),
            unmap_id(&self.gids, gid).unwrap_or(gid),
        )
    }

    /// Xattr `key`'s value with POSIX ACL ids translated back to container ids (other
    /// xattrs unchanged).
    pub fn unshift_acl(&self, key: &str, value: &[u8]) -> Vec<u8> {
        if !ACL_XATTRS.contains(&key) {
            return value.to_vec();
        }
        map_acl(value, |tag, id| {
            Ok::<_, ()>(match tag {
                ACL_USER => unmap_id(&self.uids, id).unwrap_or(id),
                _ => unmap_id(&self.gids, id).unwrap_or(id),
            })
        })
        .unwrap_or_else(|()| value.to_vec())
    }

    /// A stable short text of the maps (`u0-100000-65536.g0-100000-65536`), usable in paths.
    pub fn key(&self) -> String {
        let ranges = |maps: &[IdMapping]| {
            maps.iter()
                .map(|m| format!("{}-{}-{}", m.container_id, m.host_id, m.size))
                .collect::<Vec<_>>()
                .join("_")
        };
        format!("u{}.g{}", ranges(&self.uids), ranges(&self.gids))
    }

    fn parse_key(text: &str) -> Option<IdShift> {
        let ranges = |s: &str| -> Option<Vec<IdMapping>> {
            s.split('_')
                .map(|r| {
                    let mut parts = r.split('-').map(|n| n.parse::<u32>().ok());
                    Some(IdMapping {
                        container_id: parts.next()??,
                        host_id: parts.next()??,
                        size: parts.next()??,
                    })
                })
                .collect()
        };
        let (u, g) = text.trim().split_once('.')?;
        Some(IdShift {
            uids: ranges(u.strip_prefix('u')?)?,
            gids: ranges(g.strip_prefix('g')?)?,
        })
    }
}

/// Marks upper directory `upper` (`snapshots/<id>/fs`) as holding host-shifted ids, so that
/// its diff translates them back. Idempotent.
pub fn mark_upper(upper: &Path, shift: &IdShift) -> io::Result<()> {
    let Some(dir) = upper.parent() else {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    };
    std::fs::write(dir.join(MARK), shift.key())
}

/// The shift upper directory `upper` was marked with, if any.
pub fn read_mark(upper: &Path) -> Result<Option<IdShift>, ShiftError> {
    let Some(dir) = upper.parent() else {
        return Ok(None);
    };
    let path = dir.join(MARK);
    match std::fs::read_to_string(&path) {
        Ok(text) => IdShift::parse_key(&text)
            .map(Some)
            .ok_or(ShiftError::BadMark { path }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(&path)(e)),
    }
}

/// Shifts every entry under `root` (itself included, symlinks not followed) from container
/// ids to host ids, once per inode (hardlinks are shifted once). chown clears setuid and
/// setgid: each non-symlink entry gets its mode back afterwards. POSIX ACL ids are shifted
/// too; other xattrs are kept as they are (file capabilities without a root id, the only
/// kind image layers carry, work in any user namespace). Returns the entries shifted.
pub fn shift_tree(root: &Path, shift: &IdShift) -> Result<u64, ShiftError> {
    let mut seen = HashSet::new();
    let mut count = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path).map_err(io_err(&path))?;
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path).map_err(io_err(&path))? {
                stack.push(entry.map_err(io_err(&path))?.path());
            }
        }
        if meta.nlink() > 1 && !meta.is_dir() && !seen.insert((meta.dev(), meta.ino())) {
            continue;
        }
        shift_entry(&path, &meta, shift)?;
        count += 1;
    }
    Ok(count)
}

fn shift_entry(path: &Path, meta: &std::fs::Metadata, shift: &IdShift) -> Result<(), ShiftError> {
    let (uid, gid) = shift
        .to_host(meta.uid(), meta.gid())
        .map_err(|(kind, id)| ShiftError::Unmapped {
            path: path.to_path_buf(),
            kind,
            id,
        })?;
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).map_err(io_err(path))?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o6000 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(io_err(path))?;
    }
    for name in ACL_XATTRS {
        shift_acl(path, name, shift)?;
    }
    Ok(())
}

fn shift_acl(path: &Path, name: &str, shift: &IdShift) -> Result<(), ShiftError> {
    let Some(value) = read_xattr(path, name).map_err(|e| io_err(path)(e.into()))? else {
        return Ok(());
    };
    let shifted = map_acl(&value, |tag, id| match tag {
        ACL_USER => map_id(&shift.uids, id).ok_or(("uid", id)),
        ACL_GROUP => map_id(&shift.gids, id).ok_or(("gid", id)),
        _ => Ok(id),
    })
    .map_err(|(kind, id)| ShiftError::Unmapped {
        path: path.to_path_buf(),
        kind,
        id,
    })?;
    if shifted != value {
        rustix::fs::lsetxattr(path, name, &shifted, rustix::fs::XattrFlags::REPLACE)
            .map_err(|e| io_err(path)(e.into()))?;
    }
    Ok(())
}

/// The value of xattr `name` of `path` (not following symlinks), `None` when unset or
/// unsupported by the filesystem.
fn read_xattr(path: &Path, name: &str) -> Result<Option<Vec<u8>>, rustix::io::Errno> {
    use rustix::io::Errno;
    let len = match rustix::fs::lgetxattr_query(path, name) {
        Ok(len) => len,
        Err(Errno::NODATA | Errno::OPNOTSUPP) => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut value = vec![0u8; len];
    let n = rustix::fs::lgetxattr(path, name, &mut value[..])?;
    value.truncate(n);
    Ok(Some(value))
}

/// Rewrites the ids of a POSIX ACL xattr value through `map(tag, id)`; values in another
/// format are returned unchanged.
pub fn map_acl<E>(
    value: &[u8],
    mut map: impl FnMut(u16, u32) -> Result<u32, E>,
) -> Result<Vec<u8>, E> {
    let mut out = value.to_vec();
    if value.len() < 4 || (value.len() - 4) % 8 != 0 || value[..4] != 2u32.to_le_bytes() {
        return Ok(out);
    }
    for entry in out[4..].chunks_exact_mut(8) {
        let tag = u16::from_le_bytes([entry[0], entry[1]]);
        if tag == ACL_USER || tag == ACL_GROUP {
            let id = u32::from_le_bytes([entry[4], entry[5], entry[6], entry[7]]);
            entry[4..].copy_from_slice(&map(tag, id)?.to_le_bytes());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shift() -> IdShift {
        IdShift {
            uids: vec![IdMapping {
                container_id: 0,
                host_id: 100000,
                size: 65536,
            }],
            gids: vec![
                IdMapping {
                    container_id: 0,
                    host_id: 200000,
                    size: 10,
                },
                IdMapping {
                    container_id: 10,
                    host_id: 300000,
                    size: 5,
                },
            ],
        }
    }

    #[test]
    fn container_ids_go_to_the_host_range_and_back() {
        let s = shift();
        assert_eq!(s.to_host(0, 0), Ok((100000, 200000)));
        assert_eq!(s.to_host(5, 12), Ok((100005, 300002)));
        assert_eq!(s.to_host(0, 15), Err(("gid", 15)));
        assert_eq!(s.to_container(100005, 300002), (5, 12));
        // The engine's own host-root entries stay root.
        assert_eq!(s.to_container(0, 0), (0, 0));
    }

    #[test]
    fn the_key_round_trips_through_the_mark() {
        let dir = tempfile::tempdir().expect("tempdir");
        let upper = dir.path().join("fs");
        std::fs::create_dir(&upper).expect("mkdir");
        assert_eq!(read_mark(&upper).expect("none"), None);
        mark_upper(&upper, &shift()).expect("mark");
        assert_eq!(
            std::fs::read_to_string(dir.path().join(MARK)).expect("read"),
            "u0-100000-65536.g0-200000-10_10-300000-5"
        );
        assert_eq!(read_mark(&upper).expect("mark"), Some(shift()));
        std::fs::write(dir.path().join(MARK), "u1-2").expect("corrupt");
        assert!(matches!(read_mark(&upper), Err(ShiftError::BadMark { .. })));
    }

    #[test]
    fn acl_user_and_group_entries_are_mapped_and_others_kept() {
        let mut value = 2u32.to_le_bytes().to_vec();
        for (tag, perm, id) in [(1u16, 7u16, u32::MAX), (2, 6, 5), (8, 4, 12), (32, 7, 9)] {
            value.extend_from_slice(&tag.to_le_bytes());
            value.extend_from_slice(&perm.to_le_bytes());
            value.extend_from_slice(&id.to_le_bytes());
        }
        let s = shift();
        let out = map_acl(&value, |tag, id| match tag {
            ACL_USER => map_id(&s.uids, id).ok_or(id),
            ACL_GROUP => map_id(&s.gids, id).ok_or(id),
            _ => Ok(id),
        })
        .expect("map");
        let ids: Vec<u32> = out[4..]
            .chunks_exact(8)
            .map(|e| u32::from_le_bytes([e[4], e[5], e[6], e[7]]))
            .collect();
        assert_eq!(ids, vec![u32::MAX, 100005, 300002, 9]);
        assert_eq!(
            map_acl(b"junk", |_, id| Ok::<_, ()>(id)),
            Ok(b"junk".to_vec())
        );
    }

    #[test]
    fn a_tree_of_unmapped_ids_is_refused_before_anything_changes_for_that_entry() {
        // As a non-root user every entry is owned by us; a map that does not cover our ids
        // must fail with the entry's path instead of chowning it somewhere wrong.
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("f"), "x").expect("write");
        let meta = std::fs::metadata(dir.path()).expect("stat");
        let s = IdShift {
            uids: vec![IdMapping {
                container_id: meta.uid().wrapping_add(1),
                host_id: 100000,
                size: 1,
            }],
            gids: shift().gids,
        };
        let err = shift_tree(dir.path(), &s).expect_err("unmapped");
        assert!(
            matches!(err, ShiftError::Unmapped { kind: "uid", id, .. } if id == meta.uid()),
            "{err}"
        );
    }

    fn own_ids() -> (u32, u32) {
        let dir = tempfile::tempdir().expect("tempdir");
        let meta = std::fs::metadata(dir.path()).expect("stat");
        (meta.uid(), meta.gid())
    }

    /// Our own ids as a one-id map from container root (chown to them needs no privilege).
    fn own_root_shift() -> IdShift {
        let (uid, gid) = own_ids();
        IdShift {
            uids: vec![IdMapping {
                container_id: 0,
                host_id: uid,
                size: 1,
            }],
            gids: vec![IdMapping {
                container_id: 0,
                host_id: gid,
                size: 1,
            }],
        }
    }

    #[test]
    fn shifting_keeps_setuid_bits_and_visits_each_hardlinked_inode_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("layer");
        std::fs::create_dir_all(root.join("bin")).expect("mkdir");
        let tool = root.join("bin/tool");
        std::fs::write(&tool, "#!").expect("write");
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o6755)).expect("chmod");
        std::fs::hard_link(&tool, root.join("bin/alias")).expect("link");
        std::os::unix::fs::symlink("tool", root.join("bin/link")).expect("symlink");
        let (uid, gid) = own_ids();
        // Identity for our own ids: what changes is only what chown itself does.
        let s = IdShift {
            uids: vec![IdMapping {
                container_id: uid,
                host_id: uid,
                size: 1,
            }],
            gids: vec![IdMapping {
                container_id: gid,
                host_id: gid,
                size: 1,
            }],
        };
        // layer, bin, tool (alias is the same inode), link.
        assert_eq!(shift_tree(&root, &s).expect("shift"), 4);
        let mode = std::fs::metadata(&tool).expect("stat").permissions().mode();
        assert_eq!(mode & 0o7777, 0o6755);
        let link = std::fs::symlink_metadata(root.join("bin/link")).expect("lstat");
        assert!(link.file_type().is_symlink());
        assert_eq!((link.uid(), link.gid()), (uid, gid));
    }

    #[test]
    fn a_tar_of_a_shifted_tree_has_container_ids() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("f"), "data").expect("write");
        let (out, _) =
            crate::tar_tree_unshifted(dir.path(), Vec::new(), Some(own_root_shift())).expect("tar");
        let mut archive = tar::Archive::new(&out[..]);
        let mut seen = 0;
        for entry in archive.entries().expect("entries") {
            let entry = entry.expect("entry");
            assert_eq!(entry.header().uid().expect("uid"), 0);
            assert_eq!(entry.header().gid().expect("gid"), 0);
            seen += 1;
        }
        assert!(seen >= 1);
        // Without the shift the same tree keeps our ids.
        let (plain, _) = crate::tar_tree(dir.path(), Vec::new()).expect("tar");
        let mut archive = tar::Archive::new(&plain[..]);
        let first = archive
            .entries()
            .expect("entries")
            .next()
            .expect("one")
            .expect("entry");
        assert_eq!(first.header().uid().expect("uid"), u64::from(own_ids().0));
    }

    #[test]
    fn an_upper_diff_is_unshifted_when_its_snapshot_is_marked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let upper = dir.path().join("fs");
        std::fs::create_dir(&upper).expect("mkdir");
        std::fs::write(upper.join("new"), "x").expect("write");
        mark_upper(&upper, &own_root_shift()).expect("mark");
        let shift = read_mark(&upper).expect("read");
        let (out, _) =
            crate::diff_overlay_upper_unshifted(&upper, Vec::new(), shift).expect("diff");
        let mut archive = tar::Archive::new(&out[..]);
        let entry = archive
            .entries()
            .expect("entries")
            .next()
            .expect("one")
            .expect("entry");
        assert_eq!(entry.path().expect("path").to_string_lossy(), "new");
        assert_eq!(entry.header().uid().expect("uid"), 0);
    }
}
