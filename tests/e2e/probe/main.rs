//! berth-probe: runs inside a container and prints what the container observes, one fact a line.
//!
//! Built statically by tests/e2e/build.rs (std only, no crates) and copied into test rootfses.
//! Every line is `<section> <key> <value...>` so the harness can normalise and diff two runs.
//! Actions (`--mkdir P`, `--read P`, `--write P`, `--scan-exe-until P`) add lines of their own.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

const NAMESPACES: &[&str] = &["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"];
const STATUS_KEYS: &[&str] = &[
    "Uid",
    "Gid",
    "Groups",
    "Umask",
    "CapInh",
    "CapPrm",
    "CapEff",
    "CapBnd",
    "CapAmb",
    "NoNewPrivs",
    "Seccomp",
    "Seccomp_filters",
];
const CGROUP_FILES: &[&str] = &[
    "memory/memory.limit_in_bytes",
    "memory/memory.soft_limit_in_bytes",
    "memory/memory.memsw.limit_in_bytes",
    "pids/pids.max",
    "cpu/cpu.shares",
    "cpu/cpu.cfs_quota_us",
    "cpu/cpu.cfs_period_us",
    "cpuset/cpuset.cpus",
    "memory.max",
    "pids.max",
    "cpu.max",
    "cpu.weight",
];

fn main() {
    let out = std::io::stdout();
    let mut out = out.lock();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut report = Vec::new();
    let mut i = 0;
    let mut only_actions = false;
    while i < args.len() {
        let value = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--only-actions" => {
                only_actions = true;
                i += 1;
                continue;
            }
            "--mkdir" => report.push(action_mkdir(&value)),
            "--read" => report.push(action_read(&value)),
            "--write" => report.push(action_write(&value)),
            "--scan-exe-until" => report.extend(action_scan_exe(&value)),
            other => report.push(format!("error unknown-argument {other}")),
        }
        i += 2;
    }
    if !only_actions {
        observe(&mut out);
    }
    for line in report {
        let _ = writeln!(out, "{line}");
    }
    let _ = out.flush();
}

fn observe(out: &mut impl Write) {
    let _ = writeln!(out, "pid self {}", std::process::id());
    for ns in NAMESPACES {
        let target = fs::read_link(format!("/proc/self/ns/{ns}"));
        let text = match target {
            Ok(t) => t.to_string_lossy().into_owned(),
            Err(e) => format!("err {}", errno_name(&e)),
        };
        let _ = writeln!(out, "ns {ns} {text}");
    }
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    for line in status.lines() {
        if let Some((key, value)) = line.split_once(':') {
            if STATUS_KEYS.contains(&key) {
                let value: Vec<&str> = value.split_whitespace().collect();
                let _ = writeln!(out, "status {key} {}", value.join(" "));
            }
        }
    }
    for file in ["uid_map", "gid_map", "setgroups"] {
        let text = fs::read_to_string(format!("/proc/self/{file}")).unwrap_or_default();
        for line in text.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let _ = writeln!(out, "userns {file} {}", fields.join(" "));
        }
    }
    let limits = fs::read_to_string("/proc/self/limits").unwrap_or_default();
    for line in limits.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let _ = writeln!(out, "rlimit {}", fields.join(" "));
    }
    for key in ["hostname", "domainname"] {
        let v = fs::read_to_string(format!("/proc/sys/kernel/{key}")).unwrap_or_default();
        let _ = writeln!(out, "uts {key} {}", v.trim());
    }
    observe_cwd(out);
    let mut env: Vec<(String, String)> = std::env::vars().collect();
    env.sort();
    for (k, v) in env {
        let _ = writeln!(out, "env {k}={v}");
    }
    let oom = fs::read_to_string("/proc/self/oom_score_adj").unwrap_or_default();
    let _ = writeln!(out, "oom_score_adj value {}", oom.trim());
    observe_mounts(out);
    observe_cgroups(out);
    observe_dev(out, Path::new("/dev"));
    observe_fds(out);
}

fn observe_cwd(out: &mut impl Write) {
    let cwd = fs::read_link("/proc/self/cwd")
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|e| format!("err {}", errno_name(&e)));
    let _ = writeln!(out, "cwd path {cwd}");
    // CVE-2024-21626: a cwd outside the container root never reaches the container's "/" when
    // walking "..", because ".." at the host root is the host root itself.
    let root = fs::metadata("/").map(|m| (m.dev(), m.ino())).ok();
    let mut path = std::path::PathBuf::from(".");
    let mut inside = "no";
    for _ in 0..256 {
        let here = fs::metadata(&path).map(|m| (m.dev(), m.ino())).ok();
        if here.is_some() && here == root {
            inside = "yes";
            break;
        }
        let parent = path.join("..");
        let up = fs::metadata(&parent).map(|m| (m.dev(), m.ino())).ok();
        if up.is_none() || up == here {
            break;
        }
        path = parent;
    }
    let _ = writeln!(out, "cwd inside-root {inside}");
}

fn observe_mounts(out: &mut impl Write) {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for line in text.lines() {
        // id parent major:minor root mountpoint options [optional...] - fstype source super
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(dash) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        if fields.len() < dash + 3 || dash < 6 {
            continue;
        }
        let root = fields[3];
        let point = fields[4];
        let options = fields[5];
        let fstype = fields[dash + 1];
        let source = fields[dash + 2];
        let sup = fields.get(dash + 3).copied().unwrap_or("");
        let _ = writeln!(
            out,
            "mount {point} {fstype} {options} root={root} source={source} super={sup}"
        );
    }
}

fn observe_cgroups(out: &mut impl Write) {
    let text = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    for line in text.lines() {
        let _ = writeln!(out, "cgroup membership {line}");
    }
    for file in CGROUP_FILES {
        let path = format!("/sys/fs/cgroup/{file}");
        if let Ok(v) = fs::read_to_string(&path) {
            let _ = writeln!(out, "cgroup file {file} {}", v.trim());
        }
    }
}

fn observe_dev(out: &mut impl Write, dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        let ft = meta.file_type();
        let mode = meta.mode() & 0o7777;
        let owner = format!("{}:{}", meta.uid(), meta.gid());
        let shown = path.display();
        if ft.is_symlink() {
            let target = fs::read_link(&path).unwrap_or_default();
            let _ = writeln!(out, "dev {shown} link {}", target.display());
        } else if ft.is_char_device() || ft.is_block_device() {
            let kind = if ft.is_char_device() { "c" } else { "b" };
            let rdev = meta.rdev();
            let (major, minor) = (dev_major(rdev), dev_minor(rdev));
            let _ = writeln!(out, "dev {shown} {kind} {major}:{minor} {mode:o} {owner}");
        } else if ft.is_dir() {
            let _ = writeln!(out, "dev {shown} dir {mode:o} {owner}");
            // /dev/pts and /dev/shm contents vary with what else runs; list top level only,
            // plus /dev/pts/ptmx which the spec requires.
            if path == Path::new("/dev/pts") {
                if let Ok(m) = fs::symlink_metadata("/dev/pts/ptmx") {
                    let rdev = m.rdev();
                    let (major, minor) = (dev_major(rdev), dev_minor(rdev));
                    let _ = writeln!(out, "dev /dev/pts/ptmx c {major}:{minor}");
                }
            }
        } else {
            let _ = writeln!(out, "dev {shown} other {mode:o} {owner}");
        }
    }
}

fn observe_fds(out: &mut impl Write) {
    // Collect names first: the directory handle itself is an fd we must not report.
    let names: Vec<String> = match fs::read_dir("/proc/self/fd") {
        Ok(d) => d
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(e) => {
            let _ = writeln!(out, "fd error {}", errno_name(&e));
            return;
        }
    };
    let mut fds: Vec<u32> = names.iter().filter_map(|n| n.parse().ok()).collect();
    fds.sort_unstable();
    for fd in fds {
        // The read_dir handle is closed by now, so its number fails readlink: skip it.
        if let Ok(target) = fs::read_link(format!("/proc/self/fd/{fd}")) {
            let _ = writeln!(out, "fd {fd} {}", target.display());
        }
    }
}

fn action_mkdir(path: &str) -> String {
    match fs::create_dir(path) {
        Ok(()) => {
            let _ = fs::remove_dir(path);
            format!("mkdir {path} ok")
        }
        Err(e) => format!("mkdir {path} err {}", errno_name(&e)),
    }
}

fn action_read(path: &str) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let flat: Vec<&str> = text.split_whitespace().collect();
            if flat.is_empty() {
                format!("read {path} ok")
            } else {
                format!("read {path} ok {}", flat.join(" "))
            }
        }
        Err(e) => format!("read {path} err {}", errno_name(&e)),
    }
}

fn action_write(path: &str) -> String {
    match fs::OpenOptions::new().write(true).open(path) {
        Ok(_) => format!("write {path} ok"),
        Err(e) => format!("write {path} err {}", errno_name(&e)),
    }
}

/// CVE-2019-5736: while the host runs `exec` into this container, try to open every visible
/// process's executable for writing, directly and by reopening an O_PATH handle, until `stop`
/// exists. Reports every success (there must be none) and the foreign executables it saw.
fn action_scan_exe(stop: &str) -> Vec<String> {
    let me = std::process::id().to_string();
    let mut seen = std::collections::BTreeSet::new();
    let mut pids = std::collections::BTreeSet::new();
    let mut opened = Vec::new();
    let mut rounds: u64 = 0;
    while !Path::new(stop).exists() {
        rounds += 1;
        let Ok(dir) = fs::read_dir("/proc") else {
            break;
        };
        for entry in dir.filter_map(Result::ok) {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if !name.bytes().all(|b| b.is_ascii_digit()) || name == me {
                continue;
            }
            pids.insert(name.to_string());
            let exe = format!("/proc/{name}/exe");
            if let Ok(target) = fs::read_link(&exe) {
                seen.insert(target.to_string_lossy().into_owned());
            }
            if let Ok(file) = fs::OpenOptions::new().write(true).open(&exe) {
                if !is_container_file(&file) {
                    opened.push(format!("exe-scan opened-direct {exe}"));
                }
            }
            if let Ok(handle) = fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc_o_path())
                .open(&exe)
            {
                let reopen = format!("/proc/self/fd/{}", raw_fd(&handle));
                if let Ok(file) = fs::OpenOptions::new().write(true).open(&reopen) {
                    if !is_container_file(&file) {
                        opened.push(format!("exe-scan opened-reopen {exe}"));
                    }
                }
            }
        }
    }
    let mut lines = vec![format!("exe-scan rounds-nonzero {}", rounds > 0)];
    lines.push(format!("exe-scan foreign-pids {}", pids.len()));
    lines.extend(seen.into_iter().map(|s| format!("exe-scan seen {s}")));
    lines.extend(opened);
    lines.push("exe-scan done".to_string());
    lines
}

/// Whether an executable we opened is a file of the container's own rootfs (a process that
/// exited just now frees its binary for writing; that is the container's business). Anything
/// else, such as a runtime's memfd or a host binary, is an escape.
fn is_container_file(file: &fs::File) -> bool {
    let Ok(opened) = file.metadata() else {
        return false;
    };
    // The path of what we hold stays readable even after the process it came from exited.
    let Ok(target) = fs::read_link(format!("/proc/self/fd/{}", raw_fd(file))) else {
        return false;
    };
    fs::metadata(&target).is_ok_and(|m| m.dev() == opened.dev() && m.ino() == opened.ino())
}

const fn libc_o_path() -> i32 {
    0o10000000 // O_PATH on Linux (all architectures Rust supports here)
}

fn raw_fd(file: &fs::File) -> i32 {
    use std::os::fd::AsRawFd;
    file.as_raw_fd()
}

fn dev_major(rdev: u64) -> u64 {
    ((rdev >> 32) & 0xffff_f000) | ((rdev >> 8) & 0xfff)
}

fn dev_minor(rdev: u64) -> u64 {
    ((rdev >> 12) & 0xffff_ff00) | (rdev & 0xff)
}

fn errno_name(e: &std::io::Error) -> String {
    let name = match e.raw_os_error() {
        Some(1) => "EPERM",
        Some(2) => "ENOENT",
        Some(13) => "EACCES",
        Some(17) => "EEXIST",
        Some(20) => "ENOTDIR",
        Some(22) => "EINVAL",
        Some(26) => "ETXTBSY",
        Some(30) => "EROFS",
        Some(38) => "ENOSYS",
        Some(n) => return format!("errno{n}"),
        None => return "unknown".to_string(),
    };
    name.to_string()
}
