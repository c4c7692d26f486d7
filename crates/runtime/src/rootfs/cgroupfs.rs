//! The "cgroup" mount type: a fresh cgroup2 mount on a pure v2 host, or on a v1 host a
//! tmpfs holding one cgroup mount per hierarchy (plus the host's alias symlinks), the
//! layout runc gives containers.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use super::mounts::MountOptions;
use super::path::{create_in_root, open_in_root};
use crate::syscall::{self, fd_path};

/// A cgroup filesystem mounted on the host under /sys/fs/cgroup.
#[derive(Debug, PartialEq, Eq)]
pub struct HostHierarchy {
    /// Name of the mount point below /sys/fs/cgroup ("cpu,cpuacct", "unified"; "" for a
    /// cgroup2 mounted at /sys/fs/cgroup itself).
    pub name: String,
    pub fstype: String,
    /// Controller and name= options to pass to a new mount.
    pub data: String,
    /// The mount's root inside the hierarchy (mountinfo field 4).
    pub root: String,
}

/// Parses /proc/self/mountinfo lines into the host's cgroup hierarchies.
pub fn parse_hierarchies(mountinfo: &str) -> Vec<HostHierarchy> {
    let mut out = Vec::new();
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mount_root = left.split_whitespace().nth(3).unwrap_or("/");
        let mount_point = left.split_whitespace().nth(4).unwrap_or("");
        let mut r = right.split_whitespace();
        let fstype = r.next().unwrap_or("");
        let super_opts = r.nth(1).unwrap_or("");
        if fstype != "cgroup" && fstype != "cgroup2" {
            continue;
        }
        let Some(name) = mount_point
            .strip_prefix("/sys/fs/cgroup")
            .map(|n| n.trim_start_matches('/'))
        else {
            continue;
        };
        if name.contains('/') {
            continue;
        }
        let data = super_opts
            .split(',')
            .filter(|o| !matches!(*o, "rw" | "ro") && !o.starts_with("release_agent"))
            .collect::<Vec<_>>()
            .join(",");
        out.push(HostHierarchy {
            name: name.to_string(),
            fstype: fstype.to_string(),
            data: if fstype == "cgroup2" {
                String::new()
            } else {
                data
            },
            root: mount_root.to_string(),
        });
    }
    out
}

/// The calling process's cgroup path in the v1 hierarchy with `data`'s controllers
/// (from /proc/self/cgroup text).
pub fn own_path<'a>(proc_cgroup: &'a str, data: &str) -> Option<&'a str> {
    let opts: Vec<&str> = data.split(',').collect();
    proc_cgroup.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_, controllers, path) = (f.next()?, f.next()?, f.next()?);
        (!controllers.is_empty() && controllers.split(',').all(|c| opts.contains(&c)))
            .then_some(path)
    })
}

/// Mounts the container's view of the cgroup filesystems at `dest` inside the root.
///
/// Like runc on a v1 host: a tmpfs with one directory per v1 hierarchy; inside a cgroup
/// namespace each is a fresh cgroup mount (rooted at the namespace), otherwise a bind of
/// the container's own cgroup directory. On a pure v2 host, a cgroup2 mount.
/// `host_mountinfo`: the mountinfo this mount namespace was copied from (the cgroup mounts
/// under /sys/fs/cgroup are the same in both), or `None` to read our own.
pub fn mount_cgroup_tree(
    root: BorrowedFd<'_>,
    dest: &Path,
    opts: &MountOptions,
    in_user_ns: bool,
    cgroup_ns: bool,
    host_mountinfo: Option<&str>,
) -> io::Result<()> {
    let hierarchies = match host_mountinfo {
        Some(text) => parse_hierarchies(text),
        None => parse_hierarchies(&std::fs::read_to_string("/proc/self/mountinfo")?),
    };
    let base_flags = opts.flags & !(libc::MS_BIND | libc::MS_REC | libc::MS_REMOUNT);
    let target = create_in_root(root, dest, true)?;
    if hierarchies.iter().all(|h| h.fstype == "cgroup2") {
        let r = syscall::mount(
            Some(Path::new("cgroup2")),
            &fd_path(target.as_fd()),
            Some("cgroup2"),
            base_flags,
            None,
        );
        return match r {
            Err(e) if e.raw_os_error() == Some(libc::EPERM) && in_user_ns => bind_host(root, dest),
            other => other,
        };
    }
    syscall::mount(
        Some(Path::new("tmpfs")),
        &fd_path(target.as_fd()),
        Some("tmpfs"),
        base_flags & !libc::MS_RDONLY,
        Some("mode=755"),
    )?;
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    for h in hierarchies
        .iter()
        .filter(|h| h.fstype == "cgroup" && !h.name.is_empty())
    {
        let sub = dest.join(&h.name);
        let fd = create_in_root(root, &sub, true)?;
        let target = fd_path(fd.as_fd());
        let fresh = || {
            let data = (!h.data.is_empty()).then_some(h.data.as_str());
            syscall::mount(
                // runc names a named hierarchy's mount after it ("systemd").
                Some(Path::new(
                    h.data
                        .split(',')
                        .find_map(|o| o.strip_prefix("name="))
                        .unwrap_or("cgroup"),
                )),
                &target,
                Some("cgroup"),
                base_flags,
                data,
            )
        };
        let host_dir = own_path(&own, &h.data).map(|p| {
            let rel = p.strip_prefix(h.root.trim_end_matches('/')).unwrap_or(p);
            Path::new("/sys/fs/cgroup")
                .join(&h.name)
                .join(rel.trim_start_matches('/'))
        });
        let r = match (&host_dir, cgroup_ns) {
            (Some(dir), false) => {
                syscall::mount(Some(dir), &target, None, libc::MS_BIND | libc::MS_REC, None)
                    .and_then(|()| {
                        let mounted = open_in_root(root, &sub, rustix::fs::OFlags::PATH)?;
                        super::mounts::remount(&fd_path(mounted.as_fd()), base_flags)
                    })
            }
            _ => fresh(),
        };
        match r {
            Err(e) if e.raw_os_error() == Some(libc::EPERM) && in_user_ns => {
                let host = Path::new("/sys/fs/cgroup").join(&h.name);
                syscall::mount(
                    Some(&host),
                    &target,
                    None,
                    libc::MS_BIND | libc::MS_REC,
                    None,
                )?;
            }
            other => other?,
        }
    }
    // The host's aliases, e.g. cpu -> cpu,cpuacct.
    if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
        let dir = open_in_root(
            root,
            dest,
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY,
        )?;
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_symlink()) {
                if let Ok(link) = std::fs::read_link(e.path()) {
                    let _ = rustix::fs::symlinkat(&link, dir.as_fd(), e.file_name());
                }
            }
        }
    }
    Ok(())
}

fn bind_host(root: BorrowedFd<'_>, dest: &Path) -> io::Result<()> {
    let fd = create_in_root(root, dest, true)?;
    syscall::mount(
        Some(Path::new("/sys/fs/cgroup")),
        &fd_path(fd.as_fd()),
        None,
        libc::MS_BIND | libc::MS_REC,
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hybrid_host_hierarchies_are_found_with_their_controllers() {
        let info = "\
25 1 0:23 / /sys rw,nosuid shared:7 - sysfs sysfs rw
30 25 0:26 / /sys/fs/cgroup ro,nosuid shared:9 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw shared:10 - cgroup2 cgroup2 rw,nsdelegate
34 30 0:30 / /sys/fs/cgroup/cpu,cpuacct rw shared:14 - cgroup cgroup rw,cpu,cpuacct
35 30 0:31 / /sys/fs/cgroup/systemd rw shared:15 - cgroup cgroup rw,xattr,release_agent=/x,name=systemd
";
        let h = parse_hierarchies(info);
        assert_eq!(h.len(), 3);
        assert_eq!(
            h[0],
            HostHierarchy {
                name: "unified".into(),
                fstype: "cgroup2".into(),
                data: String::new(),
                root: "/".into()
            }
        );
        assert_eq!(h[1].data, "cpu,cpuacct");
        assert_eq!(h[2].data, "xattr,name=systemd");
    }

    #[test]
    fn pure_v2_host_has_one_unnamed_hierarchy() {
        let info = "31 25 0:27 / /sys/fs/cgroup rw shared:10 - cgroup2 cgroup2 rw,nsdelegate\n";
        let h = parse_hierarchies(info);
        assert_eq!(
            h,
            vec![HostHierarchy {
                name: String::new(),
                fstype: "cgroup2".into(),
                data: String::new(),
                root: "/".into()
            }]
        );
    }
}
