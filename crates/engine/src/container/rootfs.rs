//! Mounting and unmounting a container's rootfs at `<container_dir>/rootfs` (blocking:
//! call from `spawn_blocking`). Both are idempotent.

use std::path::{Path, PathBuf};
use std::process::Command;

use berth_snapshot::Mount;

use super::ContainerError;

/// `<container_dir>/rootfs`.
pub fn rootfs_path(container_dir: &Path) -> PathBuf {
    container_dir.join("rootfs")
}

/// Whether `path` is a mount point (an entry of /proc/self/mountinfo).
pub fn is_mounted(path: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let wanted = escape_mountinfo(&path.to_string_lossy());
    info.lines()
        .filter_map(|line| line.split(' ').nth(4))
        .any(|mount_point| mount_point == wanted)
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn escape_mountinfo(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        match c {
            ' ' => out.push_str("\\040"),
            '\t' => out.push_str("\\011"),
            '\n' => out.push_str("\\012"),
            '\\' => out.push_str("\\134"),
            other => out.push(other),
        }
    }
    out
}

/// Mounts `mounts` (in order) on `target` unless something is mounted there already.
pub fn mount(mounts: &[Mount], target: &Path) -> Result<(), ContainerError> {
    mount_for(mounts, target, false)
}

/// [`mount`]; a `disposable` rootfs (an `--rm` container's, deleted when it exits and never
/// mounted twice) gets overlayfs' `volatile` option where the kernel has it (5.10+): its
/// unmount then skips syncing the whole upper filesystem, which on a busy host costs more
/// than the rest of the container's exit. Data durability does not matter for a layer that
/// is thrown away; a host crash leaves only a snapshot that the removal deletes anyway.
pub fn mount_for(mounts: &[Mount], target: &Path, disposable: bool) -> Result<(), ContainerError> {
    std::fs::create_dir_all(target)
        .map_err(|e| ContainerError::io(format!("creating {}", target.display()), e))?;
    if is_mounted(target) {
        return Ok(());
    }
    for m in mounts {
        mount_one(m, target, disposable)?;
    }
    Ok(())
}

fn mount_one(m: &Mount, target: &Path, disposable: bool) -> Result<(), ContainerError> {
    if m.working_dir.is_none() && m.fstype == "overlay" {
        let overlay = |options: String| -> rustix::io::Result<()> {
            let data = std::ffi::CString::new(options).map_err(|_| rustix::io::Errno::INVAL)?;
            rustix::mount::mount(
                m.source.as_path(),
                target,
                m.fstype.as_str(),
                rustix::mount::MountFlags::empty(),
                Some(data.as_c_str()),
            )
        };
        let options = m.options.join(",");
        let volatile_writable = disposable && m.options.iter().any(|o| o.starts_with("upperdir="));
        if volatile_writable && overlay(format!("{options},volatile")).is_ok() {
            return Ok(());
        }
        // Kernels before 5.10 refuse `volatile` with EINVAL: mount as usual.
        return overlay(options).map_err(|e| {
            ContainerError::io(
                format!("mounting the rootfs on {}", target.display()),
                e.into(),
            )
        });
    }
    // Relative lowerdirs need the mount made from `working_dir`; changing the directory of
    // berthd itself would race every other thread, so the mount(8) child does it.
    let mut command = Command::new("mount");
    command
        .arg("-t")
        .arg(&m.fstype)
        .arg("-o")
        .arg(m.options.join(","))
        .arg(&m.source)
        .arg(target);
    if let Some(dir) = &m.working_dir {
        command.current_dir(dir);
    }
    let output = command
        .output()
        .map_err(|e| ContainerError::io("running mount", e))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(ContainerError::io(
            format!("mounting the rootfs on {}", target.display()),
            std::io::Error::other(String::from_utf8_lossy(&output.stderr).trim().to_string()),
        ))
    }
}

/// Unmounts whatever is stacked on `target` (lazily when busy).
pub fn unmount(target: &Path) -> Result<(), ContainerError> {
    while is_mounted(target) {
        let flags = rustix::mount::UnmountFlags::empty();
        if let Err(e) = rustix::mount::unmount(target, flags) {
            if e == rustix::io::Errno::BUSY {
                rustix::mount::unmount(target, rustix::mount::UnmountFlags::DETACH).map_err(
                    |e| ContainerError::io(format!("unmounting {}", target.display()), e.into()),
                )?;
            } else if e == rustix::io::Errno::INVAL {
                return Ok(());
            } else {
                return Err(ContainerError::io(
                    format!("unmounting {}", target.display()),
                    e.into(),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_whitespace_and_backslashes() {
        assert_eq!(escape_mountinfo("/a b\\c"), "/a\\040b\\134c");
        assert!(is_mounted(Path::new("/")) || !Path::new("/proc/self/mountinfo").exists());
        assert!(!is_mounted(Path::new("/no/such/berth/path")));
    }
}
