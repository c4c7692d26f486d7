//! What a container can leave on the host: state dirs, cgroup dirs and mounts, and their removal.
//!
//! Lookups search by container id, which the harness makes unique per test, so removal only
//! ever touches what the tests themselves created.

use std::ffi::CString;
use std::fs;
use std::path::{Path, PathBuf};

/// Where cgroup hierarchies are mounted (v1 controllers and/or the v2 unified tree).
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";
const CGROUP_SEARCH_DEPTH: usize = 6;

/// Every cgroup directory (any hierarchy, any depth up to a bound) whose name contains `id`.
pub fn cgroup_dirs_named(id: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    if let Ok(entries) = fs::read_dir(CGROUP_ROOT) {
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            if fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
                walk_cgroups(&path, id, 0, &mut found);
            }
        }
    }
    found
}

fn walk_cgroups(dir: &Path, id: &str, depth: usize, found: &mut Vec<PathBuf>) {
    if depth > CGROUP_SEARCH_DEPTH {
        return;
    }
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if !kind.is_dir() {
            continue;
        }
        let path = entry.path();
        walk_cgroups(&path, id, depth + 1, found);
        if entry.file_name().to_string_lossy().contains(id) {
            found.push(path);
        }
    }
}

/// Lines of the host's /proc/self/mountinfo that mention `needle`.
pub fn mounts_mentioning(needle: &str) -> Vec<String> {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_string)
        .collect()
}

/// Everything a container `id` could have left: cgroup dirs and host mounts naming it.
pub fn leftovers(id: &str) -> Vec<String> {
    let mut left: Vec<String> = cgroup_dirs_named(id)
        .into_iter()
        .map(|p| format!("cgroup {}", p.display()))
        .collect();
    left.extend(
        mounts_mentioning(id)
            .into_iter()
            .map(|m| format!("mount {m}")),
    );
    left
}

/// Kills whatever still runs in cgroups named after `id` and removes those cgroups, deepest
/// first. Used by guards after `delete --force`, so a runtime bug cannot leak into later tests.
pub fn remove_cgroups_named(id: &str) {
    let mut dirs = cgroup_dirs_named(id);
    dirs.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for dir in &dirs {
        for _ in 0..50 {
            let procs = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
            let pids: Vec<i32> = procs
                .lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect();
            if pids.is_empty() {
                break;
            }
            for pid in pids {
                // SAFETY: kill has no memory-safety preconditions; these pids belong to a
                // container this test created (its cgroup carries the test's unique id).
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            // A frozen cgroup never lets SIGKILL land: thaw it (v1 freezer).
            let _ = fs::write(dir.join("freezer.state"), "THAWED");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = fs::remove_dir(dir);
    }
}

/// Lazily unmounts every host mount at or below `dir`, deepest first.
pub fn detach_mounts_under(dir: &Path) {
    let prefix = dir.to_string_lossy().into_owned();
    let mut points: Vec<String> = fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4).map(unescape_mountinfo))
        .filter(|p| p == &prefix || p.starts_with(&format!("{prefix}/")))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for point in points {
        if let Ok(c) = CString::new(point) {
            // SAFETY: c is a valid NUL-terminated path that outlives the call.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
    }
}

fn unescape_mountinfo(field: &str) -> String {
    field
        .replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// The host's namespace identity (`type:[inode]`) for `kind`, as seen by this test process.
pub fn namespace(kind: &str) -> String {
    fs::read_link(format!("/proc/self/ns/{kind}"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}
