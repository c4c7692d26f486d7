//! Which cgroup directories berth created, so that `destroy` removes those and nothing else.
//!
//! cgroupfs cannot hold regular files, and `delete` runs in another process than `create`,
//! so the record lives outside it: one small file per container cgroup under a record
//! directory (/run/berth-runtime/cgroups by default, on tmpfs like the cgroups themselves).
//! The record is written *before* each mkdir, so a crash half way still leaves a record that
//! a later `delete` uses to clean up. A directory that already existed is never recorded, so
//! a cgroupsPath pointing at someone else's cgroup is joined but never removed.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use super::CgroupError;

/// Plan-and-mkdir passes before a parent that keeps vanishing is reported.
const CREATE_ATTEMPTS: u32 = 5;

/// How a recorded directory is removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// The container's own cgroup: removed with any sub-cgroups the container made inside it.
    Leaf,
    /// A missing ancestor we had to create: removed only when empty (other containers may
    /// have put their cgroups beside ours since).
    Parent,
}

#[derive(Debug, Clone)]
pub(crate) struct Ownership {
    record: PathBuf,
}

impl Ownership {
    /// The record of the cgroup whose first directory is `key_dir`.
    pub(crate) fn new(record_dir: &Path, key_dir: &Path) -> Ownership {
        Ownership {
            record: record_dir.join(record_name(key_dir)),
        }
    }

    /// Creates each leaf and its missing ancestors below its mount point, recording every
    /// directory it is about to create. Existing directories are joined, not recorded. An
    /// ancestor that existed when planned may be removed before the leaf's mkdir (another
    /// container's delete removing a parent it had created, once empty): the plan is then
    /// made again, so that ancestor is created (and recorded) by this container.
    pub(crate) fn create(
        &self,
        targets: &[(PathBuf, PathBuf)],
        after_mkdir: fn(&Path),
    ) -> Result<Vec<PathBuf>, CgroupError> {
        let mut created = Vec::new();
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.create_planned(targets, after_mkdir, &mut created)? {
                None => return Ok(created),
                Some((dir, source)) if attempts >= CREATE_ATTEMPTS => {
                    return Err(CgroupError::io("create", &dir, source))
                }
                Some(_) => {}
            }
        }
    }

    /// One plan-and-mkdir pass of [`create`](Self::create); the directory whose parent
    /// vanished meanwhile, with its error, when the plan has to be made again.
    fn create_planned(
        &self,
        targets: &[(PathBuf, PathBuf)],
        after_mkdir: fn(&Path),
        created: &mut Vec<PathBuf>,
    ) -> Result<Option<(PathBuf, io::Error)>, CgroupError> {
        let mut planned = Vec::new();
        for (mount_point, leaf) in targets {
            let mut missing = Vec::new();
            let mut dir = leaf.as_path();
            while dir != mount_point.as_path() && dir.starts_with(mount_point) && !dir.exists() {
                missing.push(dir.to_path_buf());
                match dir.parent() {
                    Some(p) => dir = p,
                    None => break,
                }
            }
            missing.reverse();
            for d in missing {
                let role = if &d == leaf { Role::Leaf } else { Role::Parent };
                planned.push((role, d));
            }
        }
        if planned.is_empty() {
            return Ok(None);
        }
        let mut entries = self.entries()?;
        for p in &planned {
            if !entries.contains(p) {
                entries.push(p.clone());
            }
        }
        self.write_entries(&entries)?;
        for (_, d) in planned {
            match fs::create_dir(&d) {
                Ok(()) => {
                    after_mkdir(&d);
                    created.push(d);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Some((d, e))),
                Err(source) => return Err(CgroupError::io("create", &d, source)),
            }
        }
        Ok(None)
    }

    /// The recorded directories, in creation order (ancestors first).
    pub(crate) fn entries(&self) -> Result<Vec<(Role, PathBuf)>, CgroupError> {
        let text = match fs::read_to_string(&self.record) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(CgroupError::io("read", &self.record, source)),
        };
        Ok(text
            .lines()
            .filter_map(|l| {
                let (role, path) = l.split_once(' ')?;
                let role = match role {
                    "leaf" => Role::Leaf,
                    "parent" => Role::Parent,
                    _ => return None,
                };
                Some((role, PathBuf::from(path)))
            })
            .collect())
    }

    /// Whether the container's own cgroup directory was created by us.
    pub(crate) fn created_leaf(&self) -> Result<bool, CgroupError> {
        Ok(self.entries()?.iter().any(|(role, _)| *role == Role::Leaf))
    }

    /// Removes every recorded directory (deepest first), then the record. Leaves are removed
    /// with their sub-cgroups; a parent still holding others' cgroups is left in place.
    pub(crate) fn remove_created(&self) -> Result<(), CgroupError> {
        let mut entries = self.entries()?;
        // Deepest first: a parent re-planned by `create` is recorded after its leaf.
        entries.sort_by_key(|(_, dir)| std::cmp::Reverse(dir.components().count()));
        for (role, dir) in &entries {
            match role {
                Role::Leaf => remove_tree(dir)?,
                Role::Parent => match rmdir_retrying(dir) {
                    Ok(()) => {}
                    // Shared with another container's cgroup: not ours alone to remove.
                    Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTEMPTY | libc::EBUSY)) => {}
                    Err(source) => return Err(CgroupError::io("remove", dir, source)),
                },
            }
        }
        match fs::remove_file(&self.record) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(CgroupError::io("remove", &self.record, source)),
        }
    }

    fn write_entries(&self, entries: &[(Role, PathBuf)]) -> Result<(), CgroupError> {
        let dir = self.record.parent().unwrap_or(Path::new("/"));
        fs::create_dir_all(dir).map_err(|source| CgroupError::io("create", dir, source))?;
        let mut text = String::new();
        for (role, path) in entries {
            let role = match role {
                Role::Leaf => "leaf",
                Role::Parent => "parent",
            };
            text.push_str(role);
            text.push(' ');
            text.push_str(&path.to_string_lossy());
            text.push('\n');
        }
        // Atomic by rename. No fsync: the record only has to outlive the processes of this
        // boot, like the cgroups it describes (a power loss takes both), and fsync on a disk
        // backed /run would cost every `create` milliseconds.
        let tmp = self.record.with_extension("tmp");
        let write = || -> io::Result<()> {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            fs::rename(&tmp, &self.record)
        };
        write().map_err(|source| CgroupError::io("write", &self.record, source))
    }
}

/// Removes `dir` and the sub-cgroups inside it, deepest first. cgroupfs directories hold
/// only interface files, which rmdir removes with the directory.
fn remove_tree(dir: &Path) -> Result<(), CgroupError> {
    // Most containers make no sub-cgroups: rmdir at once, and list the directory (a
    // kernfs readdir of every interface file) only when the kernel refuses.
    match rmdir(dir) {
        Ok(()) => return Ok(()),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EBUSY | libc::ENOTEMPTY)) => {}
        Err(source) => return Err(CgroupError::io("remove", dir, source)),
    }
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(CgroupError::io("read", dir, source)),
    };
    for entry in entries {
        let entry = entry.map_err(|source| CgroupError::io("read", dir, source))?;
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if is_dir {
            remove_tree(&entry.path())?;
        }
    }
    match rmdir_retrying(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => Err(CgroupError::Busy {
            path: dir.to_path_buf(),
        }),
        Err(source) => Err(CgroupError::io("remove", dir, source)),
    }
}

/// rmdir, retried for a short while on EBUSY: processes just killed leave the cgroup
/// asynchronously, as runc also allows for.
fn rmdir_retrying(dir: &Path) -> io::Result<()> {
    let mut delay = Duration::from_millis(1);
    for _ in 0..25 {
        match rmdir(dir) {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(100));
            }
            other => return other,
        }
    }
    rmdir(dir)
}

/// cgroupfs directories can be rmdir'ed with their interface files inside; a fake tree in a
/// tempdir cannot, so plain files are removed first there (cgroupfs refuses to unlink them,
/// and their presence makes the real rmdir succeed anyway).
fn rmdir(dir: &Path) -> io::Result<()> {
    match fs::remove_dir(dir) {
        Err(e) if e.raw_os_error() == Some(libc::ENOTEMPTY) && only_files(dir) => {
            for entry in fs::read_dir(dir)? {
                fs::remove_file(entry?.path())?;
            }
            fs::remove_dir(dir)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

fn only_files(dir: &Path) -> bool {
    fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .flatten()
            .all(|e| e.file_type().is_ok_and(|t| t.is_file()))
    })
}

/// A file name for the record of `key_dir`: the path with every byte outside [A-Za-z0-9._-]
/// percent-encoded, or a hash when that would be too long for a file name.
fn record_name(key_dir: &Path) -> String {
    let raw = key_dir.to_string_lossy();
    let mut name = String::new();
    for b in raw.bytes() {
        if b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-' {
            name.push(b as char);
        } else {
            name.push_str(&format!("%{b:02X}"));
        }
    }
    if name.len() > 200 {
        // FNV-1a: stable across runs and builds, unlike std's hasher.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in raw.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        name = format!("{}-{h:016x}", &name[name.len() - 150..]);
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_records_only_missing_directories() {
        let t = tempfile::tempdir().expect("tempdir");
        let mount = t.path().join("memory");
        fs::create_dir_all(mount.join("existing")).expect("seed");
        let own = Ownership::new(&t.path().join("records"), &mount.join("existing/a/b"));
        let created = own
            .create(&[(mount.clone(), mount.join("existing/a/b"))], |_| {})
            .expect("create");
        assert_eq!(
            created,
            vec![mount.join("existing/a"), mount.join("existing/a/b")]
        );
        assert_eq!(
            own.entries().expect("entries"),
            vec![
                (Role::Parent, mount.join("existing/a")),
                (Role::Leaf, mount.join("existing/a/b"))
            ]
        );
    }

    /// The directory the next `after_mkdir` of the race test removes (once).
    static VANISHING: std::sync::Mutex<Option<PathBuf>> = std::sync::Mutex::new(None);

    fn remove_the_vanishing_parent(_: &Path) {
        let taken = VANISHING.lock().map(|mut v| v.take()).unwrap_or_default();
        if let Some(dir) = taken {
            fs::remove_dir(&dir).expect("remove the shared parent");
        }
    }

    #[test]
    fn a_parent_removed_by_another_delete_between_plan_and_mkdir_is_created_again() {
        let t = tempfile::tempdir().expect("tempdir");
        let cpu = t.path().join("cpu");
        let cpuset = t.path().join("cpuset");
        // `berth` exists in cpuset when planned (another container's parent), and that
        // container's delete removes it right after this one's first mkdir.
        fs::create_dir_all(cpuset.join("berth")).expect("seed");
        fs::create_dir_all(&cpu).expect("mount point");
        *VANISHING.lock().expect("lock") = Some(cpuset.join("berth"));
        let targets = [
            (cpu.clone(), cpu.join("berth/c1")),
            (cpuset.clone(), cpuset.join("berth/c1")),
        ];
        let own = Ownership::new(&t.path().join("records"), &targets[0].1);
        let created = own
            .create(&targets, remove_the_vanishing_parent)
            .expect("create");
        assert!(cpuset.join("berth/c1").is_dir());
        assert_eq!(
            created,
            vec![
                cpu.join("berth"),
                cpu.join("berth/c1"),
                cpuset.join("berth"),
                cpuset.join("berth/c1")
            ]
        );
        let entries = own.entries().expect("entries");
        assert!(entries.contains(&(Role::Parent, cpuset.join("berth"))));
        own.remove_created().expect("remove");
        assert!(!cpuset.join("berth").exists() && !cpu.join("berth").exists());
    }

    #[test]
    fn remove_created_leaves_preexisting_directories() {
        let t = tempfile::tempdir().expect("tempdir");
        let mount = t.path().join("pids");
        fs::create_dir_all(mount.join("theirs")).expect("seed");
        let leaf = mount.join("theirs/ours");
        let own = Ownership::new(&t.path().join("records"), &leaf);
        own.create(&[(mount.clone(), leaf.clone())], |_| {})
            .expect("create");
        fs::create_dir(leaf.join("nested-by-container")).expect("nested");
        fs::write(leaf.join("pids.max"), "max").expect("fake interface file");
        own.remove_created().expect("remove");
        assert!(!leaf.exists());
        assert!(mount.join("theirs").exists());
        assert!(own.entries().expect("entries").is_empty());
    }

    #[test]
    fn joining_an_existing_cgroup_records_nothing_and_removes_nothing() {
        let t = tempfile::tempdir().expect("tempdir");
        let mount = t.path().join("cpu");
        let leaf = mount.join("system.slice");
        fs::create_dir_all(&leaf).expect("seed");
        let own = Ownership::new(&t.path().join("records"), &leaf);
        assert!(own
            .create(&[(mount.clone(), leaf.clone())], |_| {})
            .expect("create")
            .is_empty());
        own.remove_created().expect("remove");
        assert!(leaf.exists());
    }

    #[test]
    fn a_parent_shared_with_another_cgroup_is_kept() {
        let t = tempfile::tempdir().expect("tempdir");
        let mount = t.path().join("memory");
        fs::create_dir_all(&mount).expect("seed");
        let leaf = mount.join("berth/c1");
        let own = Ownership::new(&t.path().join("records"), &leaf);
        own.create(&[(mount.clone(), leaf.clone())], |_| {})
            .expect("create");
        fs::create_dir(mount.join("berth/c2")).expect("other container");
        own.remove_created().expect("remove");
        assert!(!leaf.exists());
        assert!(mount.join("berth/c2").exists());
    }

    #[test]
    fn a_second_apply_keeps_the_first_record() {
        let t = tempfile::tempdir().expect("tempdir");
        let mount = t.path().join("memory");
        fs::create_dir_all(&mount).expect("seed");
        let leaf = mount.join("c1");
        let own = Ownership::new(&t.path().join("records"), &leaf);
        own.create(&[(mount.clone(), leaf.clone())], |_| {})
            .expect("create");
        own.create(&[(mount.clone(), leaf.clone())], |_| {})
            .expect("join again");
        assert_eq!(own.entries().expect("entries"), vec![(Role::Leaf, leaf)]);
    }

    #[test]
    fn record_names_are_flat_and_bounded() {
        let n = record_name(Path::new("/sys/fs/cgroup/memory/a b"));
        assert_eq!(n, "%2Fsys%2Ffs%2Fcgroup%2Fmemory%2Fa%20b");
        let long = format!("/sys/{}", "x".repeat(400));
        let n = record_name(Path::new(&long));
        assert!(n.len() < 255 && !n.contains('/'), "{n}");
        assert_ne!(n, record_name(Path::new(&format!("{long}y"))));
    }
}
