//! `--user` and `--group-add` resolution against the container's own /etc/passwd and
//! /etc/group (runc's `GetExecUser` rules, as Docker uses them), read inside the rootfs with
//! `openat2(RESOLVE_IN_ROOT)` so a hostile image's symlinks cannot reach host files.

use std::io::Read;
use std::path::Path;

use rustix::fs::{Mode, OFlags, ResolveFlags};

use super::SpecError;

/// Largest uid/gid Docker (runc) accepts.
const MAX_ID: u64 = i32::MAX as u64;

/// The process identity Docker puts in the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    /// Docker's `additionalGids`: the primary gid first, then the user's supplementary
    /// groups (only when no group was named), then `--group-add`.
    pub additional_gids: Vec<u32>,
    /// The passwd entry's home directory (`/` when unknown), for `HOME`.
    pub home: String,
}

struct PasswdEntry {
    name: String,
    uid: u64,
    gid: u64,
    home: String,
}

struct GroupEntry {
    name: String,
    gid: u64,
    members: Vec<String>,
}

/// Resolves `user` (`""`, `name`, `uid`, `name:group`, `uid:gid`...) and `group_add`
/// inside `rootfs`, with Docker's error texts.
pub fn resolve(rootfs: &Path, user: &str, group_add: &[String]) -> Result<ResolvedUser, SpecError> {
    let passwd = read_in_root(rootfs, "etc/passwd")?.map(|t| parse_passwd(&t));
    let groups = read_in_root(rootfs, "etc/group")?.map(|t| parse_group(&t));
    let (user_arg, group_arg) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let mut uid = 0u64;
    let mut gid = 0u64;
    let mut home = "/".to_string();
    let mut name = String::new();
    if !user_arg.is_empty() {
        let numeric = user_arg.parse::<u64>().ok();
        let found = passwd.iter().flatten().find(|entry| match numeric {
            Some(n) => entry.uid == n,
            None => entry.name == user_arg,
        });
        match (found, numeric) {
            (Some(entry), _) => {
                uid = entry.uid;
                gid = entry.gid;
                home = entry.home.clone();
                name = entry.name.clone();
            }
            (None, Some(n)) => uid = n,
            (None, None) => {
                return Err(SpecError::User(format!(
                    "unable to find user {user_arg}: no matching entries in passwd file"
                )))
            }
        }
    } else if let Some(root) = passwd.iter().flatten().find(|entry| entry.uid == 0) {
        gid = root.gid;
        home = root.home.clone();
        name = root.name.clone();
    }
    let mut supplementary = Vec::new();
    match group_arg {
        Some(group) if !group.is_empty() => gid = lookup_group(groups.as_deref(), group)?,
        _ if !name.is_empty() => {
            for entry in groups.iter().flatten() {
                if entry.members.contains(&name) {
                    supplementary.push(entry.gid);
                }
            }
        }
        _ => {}
    }
    for group in group_add {
        let found = groups.iter().flatten().find(|g| g.name == *group);
        let added = match (found, group.parse::<u64>()) {
            (Some(entry), _) => entry.gid,
            (None, Ok(n)) => n,
            (None, Err(_)) => return Err(SpecError::User(format!("Unable to find group {group}"))),
        };
        // runc collects these in a set: each gid once.
        if !supplementary.contains(&added) {
            supplementary.push(added);
        }
    }
    let id = |value: u64| {
        u32::try_from(value)
            .ok()
            .filter(|v| u64::from(*v) <= MAX_ID)
            .ok_or_else(|| {
                SpecError::User("uids and gids must be in range 0-2147483647".to_string())
            })
    };
    let mut additional_gids = vec![id(gid)?];
    for extra in supplementary {
        additional_gids.push(id(extra)?);
    }
    Ok(ResolvedUser {
        uid: id(uid)?,
        gid: id(gid)?,
        additional_gids,
        home,
    })
}

fn lookup_group(groups: Option<&[GroupEntry]>, group: &str) -> Result<u64, SpecError> {
    let numeric = group.parse::<u64>().ok();
    let found = groups.into_iter().flatten().find(|entry| match numeric {
        Some(n) => entry.gid == n,
        None => entry.name == group,
    });
    match (found, numeric) {
        (Some(entry), _) => Ok(entry.gid),
        (None, Some(n)) => Ok(n),
        (None, None) => Err(SpecError::User(format!(
            "unable to find group {group}: no matching entries in group file"
        ))),
    }
}

/// Reads `relative` inside `rootfs`, resolving every symlink as if `rootfs` were `/`;
/// `None` when the file does not exist.
fn read_in_root(rootfs: &Path, relative: &str) -> Result<Option<String>, SpecError> {
    let io_error = |source: std::io::Error| SpecError::Io {
        context: format!("reading /{relative} in the container's root filesystem"),
        source,
    };
    let root = rustix::fs::open(
        rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io_error(e.into()))?;
    let opened = rustix::fs::openat2(
        &root,
        relative,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    );
    let fd = match opened {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) | Err(rustix::io::Errno::NOTDIR) => return Ok(None),
        Err(e) => return Err(io_error(e.into())),
    };
    let mut file = std::fs::File::from(fd);
    if !file.metadata().map_err(io_error)?.is_file() {
        return Ok(None);
    }
    let mut text = String::new();
    // Bounded: a passwd file of a hostile image must not exhaust memory.
    file.by_ref()
        .take(16 << 20)
        .read_to_string(&mut text)
        .map_err(io_error)?;
    Ok(Some(text))
}

/// `name:password:uid:gid:gecos:home:shell`; malformed lines are skipped, as runc does.
fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            Some(PasswdEntry {
                name: fields.first()?.to_string(),
                uid: fields.get(2)?.parse().ok()?,
                gid: fields.get(3)?.parse().ok()?,
                home: fields.get(5).map_or("/", |h| h).to_string(),
            })
        })
        .collect()
}

/// `name:password:gid:member,member`.
fn parse_group(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            Some(GroupEntry {
                name: fields.first()?.to_string(),
                gid: fields.get(2)?.parse().ok()?,
                members: fields
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rootfs() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("etc")).expect("etc");
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33:www:/var/www:/bin/sh\n\
             alice:x:1000:1000::/home/alice:/bin/sh\nbroken line\n",
        )
        .expect("passwd");
        std::fs::write(
            dir.path().join("etc/group"),
            "root:x:0:\nwww:x:33:alice\nalice:x:1000:\nstaff:x:50:alice,www\naudio:x:29:\n",
        )
        .expect("group");
        dir
    }

    fn resolved(user: &str, add: &[&str]) -> Result<ResolvedUser, String> {
        let root = rootfs();
        let add: Vec<String> = add.iter().map(|s| s.to_string()).collect();
        resolve(root.path(), user, &add).map_err(|e| e.to_string())
    }

    #[test]
    fn root_by_default_with_its_own_gid_as_additional() {
        let user = resolved("", &[]).expect("root");
        assert_eq!((user.uid, user.gid, user.additional_gids), (0, 0, vec![0]));
        assert_eq!(user.home, "/root");
    }

    #[test]
    fn named_user_gets_primary_then_member_groups_as_docker() {
        let user = resolved("www", &[]).expect("www");
        assert_eq!((user.uid, user.gid), (33, 33));
        assert_eq!(user.additional_gids, vec![33, 50]);
        let alice = resolved("alice", &[]).expect("alice");
        assert_eq!(alice.additional_gids, vec![1000, 33, 50]);
    }

    #[test]
    fn explicit_group_skips_membership_and_group_add_appends() {
        let user = resolved("1000:staff", &["audio", "77"]).expect("user");
        assert_eq!((user.uid, user.gid), (1000, 50));
        assert_eq!(user.additional_gids, vec![50, 29, 77]);
    }

    #[test]
    fn unknown_numeric_ids_are_used_as_given() {
        let user = resolved("4242:4343", &[]).expect("numeric");
        assert_eq!((user.uid, user.gid, user.home.as_str()), (4242, 4343, "/"));
        let user = resolved("4242", &[]).expect("numeric");
        assert_eq!(user.gid, 0);
    }

    #[test]
    fn unknown_names_get_dockers_texts() {
        assert_eq!(
            resolved("nobody", &[]),
            Err("unable to find user nobody: no matching entries in passwd file".into())
        );
        assert_eq!(
            resolved("root:wheel", &[]),
            Err("unable to find group wheel: no matching entries in group file".into())
        );
        assert_eq!(
            resolved("", &["wheel"]),
            Err("Unable to find group wheel".into())
        );
        assert_eq!(
            resolved("4294967295", &[]),
            Err("uids and gids must be in range 0-2147483647".into())
        );
    }

    #[test]
    fn symlinked_passwd_resolves_inside_the_root_not_on_the_host() {
        let root = tempfile::tempdir().expect("tempdir");
        let host = tempfile::tempdir().expect("host dir");
        std::fs::write(host.path().join("passwd"), "evil:x:0:0::/:/bin/sh\n").expect("host");
        std::fs::create_dir(root.path().join("etc")).expect("etc");
        // An absolute symlink to a host path: inside the root it names <root>/<host path>.
        std::os::unix::fs::symlink(host.path().join("passwd"), root.path().join("etc/passwd"))
            .expect("symlink");
        let err = resolve(root.path(), "evil", &[]).expect_err("host file is not read");
        assert!(
            err.to_string().contains("unable to find user evil"),
            "{err}"
        );
        // A relative escape is clamped at the root as well.
        std::fs::remove_file(root.path().join("etc/passwd")).expect("rm");
        let depth = host.path().components().count() + 3;
        let escape = format!(
            "{}{}",
            "../".repeat(depth),
            host.path().join("passwd").display()
        );
        std::os::unix::fs::symlink(escape, root.path().join("etc/passwd")).expect("symlink");
        assert!(resolve(root.path(), "evil", &[]).is_err());
    }

    #[test]
    fn missing_passwd_allows_numeric_users_only() {
        let root = tempfile::tempdir().expect("tempdir");
        assert_eq!(resolve(root.path(), "7:8", &[]).expect("numeric").uid, 7);
        assert!(resolve(root.path(), "www", &[]).is_err());
    }
}
