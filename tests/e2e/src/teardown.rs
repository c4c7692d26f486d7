//! What a daemon fixture can leave behind after its daemon stopped (shims, containerd,
//! container processes, cgroup trees, mounts) and its removal.
//!
//! Everything is found through names unique to one fixture: its root directory (which every
//! shim and containerd command line names), the descendants of those processes, and cgroup
//! directories named after the fixture's cgroup parent or its container IDs. Nothing else on
//! the host is ever touched.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::host::{cgroup_dirs_named, detach_mounts_under};

/// How long killed processes get to disappear before teardown goes on regardless.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// Kills everything a daemon rooted at `root` left running, removes the cgroups named by
/// `cgroup_names` (whole subtrees) and detaches every mount under `root`. Call it after
/// the daemon itself was stopped.
pub fn teardown(root: &Path, cgroup_names: &[String]) {
    let leaders = processes_mentioning(root);
    let mut doomed: BTreeSet<i32> = descendants(&leaders);
    doomed.extend(&leaders);
    kill_and_wait(&doomed);
    for name in cgroup_names {
        remove_cgroup_trees_named(name);
    }
    detach_mounts_under(root);
}

/// Processes (other than this one) whose command line contains `root`'s path.
pub fn processes_mentioning(root: &Path) -> Vec<i32> {
    let needle = root.to_string_lossy().into_owned();
    let me = std::process::id() as i32;
    all_pids()
        .into_iter()
        .filter(|&pid| pid != me)
        .filter(|pid| {
            let raw = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            String::from_utf8_lossy(&raw)
                .replace('\0', " ")
                .contains(&needle)
        })
        .collect()
}

/// Every process descending from one of `ancestors` (not including them).
pub fn descendants(ancestors: &[i32]) -> BTreeSet<i32> {
    let parents: Vec<(i32, i32)> = all_pids()
        .into_iter()
        .filter_map(|pid| parent_of(pid).map(|ppid| (pid, ppid)))
        .collect();
    let mut found: BTreeSet<i32> = BTreeSet::new();
    let mut frontier: Vec<i32> = ancestors.to_vec();
    while let Some(parent) = frontier.pop() {
        for &(pid, ppid) in &parents {
            if ppid == parent && found.insert(pid) {
                frontier.push(pid);
            }
        }
    }
    found
}

/// SIGKILLs `pids` and waits (bounded) until they are gone or zombies.
pub fn kill_and_wait(pids: &BTreeSet<i32>) {
    for &pid in pids {
        // SAFETY: kill has no memory-safety preconditions; the pids were selected as
        // processes of this fixture (they name its private root or descend from one).
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    let deadline = Instant::now() + KILL_WAIT;
    while Instant::now() < deadline && pids.iter().any(|&pid| is_alive(pid)) {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// For every cgroup directory (any hierarchy) whose name contains `name`: thaws it, kills
/// every process in its subtree and removes the subtree, deepest first.
pub fn remove_cgroup_trees_named(name: &str) {
    let mut tops = cgroup_dirs_named(name);
    // Parents before children, so thawing a frozen parent comes first.
    tops.sort_by_key(|p| p.components().count());
    let mut all: Vec<PathBuf> = Vec::new();
    for top in &tops {
        collect_subtree(top, &mut all);
    }
    all.sort();
    all.dedup();
    for dir in &all {
        // v1 freezer: SIGKILL never lands in a frozen cgroup.
        let _ = fs::write(dir.join("freezer.state"), "THAWED");
        // v2: cgroup.kill kills the whole subtree at once where the kernel has it.
        let _ = fs::write(dir.join("cgroup.kill"), "1");
    }
    all.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for dir in &all {
        for _ in 0..100 {
            let pids: BTreeSet<i32> = fs::read_to_string(dir.join("cgroup.procs"))
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect();
            if pids.is_empty() {
                break;
            }
            for &pid in &pids {
                // SAFETY: as above; these processes live in a cgroup this fixture's daemon
                // created (named after its unique cgroup parent or container IDs).
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = fs::remove_dir(dir);
    }
}

/// `top` and every directory below it.
fn collect_subtree(top: &Path, into: &mut Vec<PathBuf>) {
    into.push(top.to_path_buf());
    let Ok(entries) = fs::read_dir(top) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            collect_subtree(&entry.path(), into);
        }
    }
}

/// Names of the entries of `dir` (for container IDs kept as directory or socket names).
pub fn entry_names(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Detaches mounts under `root` and removes the directory tree; errors are ignored (a
/// teardown must go on), what stays is visible in `/tmp` under the fixture's name.
pub fn remove_root(root: &Path) {
    detach_mounts_under(root);
    let _ = fs::remove_dir_all(root);
}

fn all_pids() -> Vec<i32> {
    fs::read_dir("/proc")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
                .collect()
        })
        .unwrap_or_default()
}

/// The parent PID from /proc/<pid>/stat (fields after the last `)`: state, ppid, ...).
fn parent_of(pid: i32) -> Option<i32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// True while `pid` exists and is not a zombie.
pub fn is_alive(pid: i32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].split_whitespace().next().map(str::to_string));
    !matches!(state.as_deref(), Some("Z") | Some("X") | None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_of_this_process_is_its_real_parent() {
        let me = std::process::id() as i32;
        // SAFETY: getppid has no preconditions.
        let parent = unsafe { libc::getppid() };
        assert_eq!(parent_of(me), Some(parent));
        assert!(is_alive(me));
    }

    #[test]
    fn descendants_include_a_spawned_child_and_its_child() {
        let mut child = std::process::Command::new("/bin/sh")
            .args(["-c", "sleep 30 & wait"])
            .spawn()
            .expect("sh runs");
        let shell = child.id() as i32;
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut grandchildren = BTreeSet::new();
        while Instant::now() < deadline && grandchildren.is_empty() {
            std::thread::sleep(Duration::from_millis(20));
            grandchildren = descendants(&[shell]);
        }
        assert_eq!(grandchildren.len(), 1, "{grandchildren:?}");
        let me = std::process::id() as i32;
        let mine = descendants(&[me]);
        assert!(mine.contains(&shell), "{mine:?}");
        assert!(grandchildren.iter().all(|p| mine.contains(p)), "{mine:?}");
        kill_and_wait(&grandchildren);
        assert!(grandchildren.iter().all(|&p| !is_alive(p)));
        let _ = child.wait();
    }
}
