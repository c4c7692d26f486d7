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
}

/// Parses /proc/self/mountinfo lines into the host's cgroup hierarchies.
pub fn parse_hierarchies(mountinfo: &str) -> Vec<HostHierarchy> {
    let mut out = Vec::new();
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
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
        });
    }
    out
}

/// Mounts the container's view of the cgroup filesystems at `dest` inside the root.
pub fn mount_cgroup_tree(
    root: BorrowedFd<'_>,
    dest: &Path,
    opts: &MountOptions,
    in_user_ns: bool,
) -> io::Result<()> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")?;
    let hierarchies = parse_hierarchies(&mountinfo);
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
    for h in &hierarchies {
        if h.name.is_empty() {
            continue;
        }
        let sub = dest.join(&h.name);
        let fd = create_in_root(root, &sub, true)?;
        let data = (!h.data.is_empty()).then_some(h.data.as_str());
        let r = syscall::mount(
            Some(Path::new(&h.fstype)),
            &fd_path(fd.as_fd()),
            Some(&h.fstype),
            base_flags,
            data,
        );
        match r {
            Err(e) if e.raw_os_error() == Some(libc::EPERM) && in_user_ns => {
                let host = Path::new("/sys/fs/cgroup").join(&h.name);
                syscall::mount(
                    Some(&host),
                    &fd_path(fd.as_fd()),
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
    if opts.flags & libc::MS_RDONLY != 0 {
        let mounted = open_in_root(root, dest, rustix::fs::OFlags::PATH)?;
        syscall::mount(
            None,
            &fd_path(mounted.as_fd()),
            None,
            libc::MS_REMOUNT | libc::MS_RDONLY | base_flags,
            Some("mode=755"),
        )?;
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
                data: String::new()
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
                data: String::new()
            }]
        );
    }
}
