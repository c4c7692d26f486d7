//! The last steps before execve, shared by a container's init and `exec`: user and
//! groups, capabilities, rlimits, seccomp, no_new_privs, cwd, environment, PATH lookup,
//! closing leaked fds.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Process;

use crate::error::chain;
use crate::syscall::{cstring, cvt};
use crate::{capabilities, lsm, rlimits, seccomp};

/// What execve needs, prepared before the point of no return.
pub struct Exec {
    pub path: CString,
    pub argv: Vec<CString>,
    pub envp: Vec<CString>,
}

/// The container's environment: process.env, plus HOME for the user when unset (runc).
pub fn environment(process: &Process) -> Vec<String> {
    let mut env: Vec<String> = process.env().clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", home_of(process.user().uid())));
    }
    env
}

fn home_of(uid: u32) -> String {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|p| {
            p.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() >= 6 && f[2].parse::<u32>().ok() == Some(uid)).then(|| f[5].to_string())
            })
        })
        .unwrap_or_else(|| "/".to_string())
}

/// Go's exec.LookPath with the container's PATH, with runc's error wording.
pub fn lookup(name: &str, env: &[String]) -> Result<PathBuf, String> {
    let executable = |p: &Path| -> Result<(), std::io::Error> {
        let meta = std::fs::metadata(p)?;
        if meta.is_dir() || meta.permissions().mode() & 0o111 == 0 {
            return Err(std::io::Error::from_raw_os_error(libc::EACCES));
        }
        Ok(())
    };
    if name.contains('/') {
        return match executable(Path::new(name)) {
            Ok(()) => Ok(PathBuf::from(name)),
            Err(e) => Err(format!("exec: {name:?}: stat {name}: {}", io_text(&e))),
        };
    }
    let path = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("");
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = Path::new(dir).join(name);
        if executable(&candidate).is_ok() {
            return Ok(candidate);
        }
    }
    Err(format!(
        "exec: {name:?}: executable file not found in $PATH"
    ))
}

/// An io error's text without Rust's " (os error N)" suffix, as Go prints it.
pub fn io_text(e: &std::io::Error) -> String {
    let s = e.to_string();
    let s = match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    };
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => s,
    }
}

/// Builds the execve arguments for `process` (PATH lookup in the container).
pub fn prepare_exec(process: &Process) -> Result<Exec, String> {
    let args = process.args().clone().unwrap_or_default();
    let first = args.first().ok_or("process.args must not be empty")?;
    let env = environment(process);
    let path = lookup(first, &env)?;
    let c = |s: &str| cstring(s).map_err(|e| format!("{s:?}: {e}"));
    Ok(Exec {
        path: cstring(path.as_os_str()).map_err(|e| e.to_string())?,
        argv: args.iter().map(|a| c(a)).collect::<Result<_, _>>()?,
        envp: env.iter().map(|a| c(a)).collect::<Result<_, _>>()?,
    })
}

/// Security settings in runc's order: rlimits, seccomp (early unless no_new_privs), bounding
/// set, user switch keeping caps, the other capability sets. Returns the seccomp filter
/// still to load after no_new_privs, if any.
pub fn apply_identity(
    process: &Process,
    filter: Option<seccomp::Filter>,
    set_groups: bool,
) -> Result<(Option<seccomp::Filter>, Option<std::os::fd::OwnedFd>), String> {
    if let Some(r) = process.rlimits() {
        rlimits::apply(r).map_err(|e| chain(&e))?;
    }
    let nnp = process.no_new_privileges().unwrap_or(false);
    let mut notify = None;
    let mut late = None;
    match filter {
        Some(f) if !nnp => {
            notify = f
                .load()
                .map_err(|e| format!("unable to init seccomp: {}", chain(&e)))?
        }
        other => late = other,
    }
    if let Some(caps) = process.capabilities() {
        capabilities::drop_bounding(caps).map_err(|e| chain(&e))?;
    }
    // SAFETY: prctl with integer arguments.
    cvt(unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) })
        .map_err(|e| format!("keepcaps: {e}"))?;
    let user = process.user();
    if set_groups {
        let gids: Vec<libc::gid_t> = user.additional_gids().clone().unwrap_or_default();
        // SAFETY: gids is a valid array of the given length.
        cvt(unsafe { libc::setgroups(gids.len(), gids.as_ptr()) })
            .map_err(|e| format!("setgroups {gids:?}: {}", io_text(&e)))?;
    }
    // SAFETY: plain id syscalls.
    unsafe {
        cvt(libc::setresgid(user.gid(), user.gid(), user.gid()))
            .map_err(|e| format!("setgid {}: {}", user.gid(), io_text(&e)))?;
        cvt(libc::setresuid(user.uid(), user.uid(), user.uid()))
            .map_err(|e| format!("setuid {}: {}", user.uid(), io_text(&e)))?;
    }
    if let Some(caps) = process.capabilities() {
        capabilities::apply(caps).map_err(|e| chain(&e))?;
    }
    Ok((late, notify))
}

/// chdir into process.cwd (inside the container), with runc's error text.
pub fn change_dir(process: &Process) -> Result<(), String> {
    let cwd = process.cwd();
    let c = cstring(cwd).map_err(|e| e.to_string())?;
    // SAFETY: valid C string.
    cvt(unsafe { libc::chdir(c.as_ptr()) })
        .map(drop)
        .map_err(|e| {
            format!(
                "chdir to cwd ({:?}) set in config.json failed: {}",
                cwd,
                io_text(&e)
            )
        })
}

/// Parent-side AppArmor/SELinux checks: refused early when the host has neither (runc).
pub fn check_lsm(process: &Process) -> Result<(), String> {
    lsm::check_apparmor(process.apparmor_profile().as_deref()).map_err(|e| chain(&e))?;
    lsm::check_selinux(process.selinux_label().as_deref()).map_err(|e| chain(&e))
}

/// AppArmor profile and SELinux label for the coming execve.
pub fn apply_lsm(process: &Process) -> Result<(), String> {
    lsm::apply_apparmor(process.apparmor_profile().as_deref()).map_err(|e| chain(&e))?;
    lsm::apply_selinux_label(process.selinux_label().as_deref()).map_err(|e| chain(&e))
}

/// no_new_privs and the late seccomp filter, last before exec.
pub fn finish_security(
    process: &Process,
    late: Option<seccomp::Filter>,
) -> Result<Option<std::os::fd::OwnedFd>, String> {
    if process.no_new_privileges().unwrap_or(false) {
        // SAFETY: prctl with integer arguments.
        cvt(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) })
            .map_err(|e| format!("set no_new_privs: {e}"))?;
    }
    match late {
        Some(f) => f
            .load()
            .map_err(|e| format!("unable to init seccomp: {}", chain(&e))),
        None => Ok(None),
    }
}

/// Restores the default signal mask and SIGPIPE disposition, and execs. Only returns on
/// failure.
pub fn execve(exec: &Exec) -> std::io::Error {
    // SAFETY: an empty sigset is valid; the pointers in argv/envp arrays point at
    // nul-terminated strings kept alive by `exec` for the duration of the call.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        // Rust's runtime ignores SIGPIPE in berth-runtime, and an ignored signal stays
        // ignored across execve: without this the container's processes would get EPIPE
        // where they expect to die of SIGPIPE (`yes | head -1`). runc's and crun's
        // containers start with SIGPIPE at its default.
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        let mut argv: Vec<*const libc::c_char> = exec.argv.iter().map(|a| a.as_ptr()).collect();
        argv.push(std::ptr::null());
        let mut envp: Vec<*const libc::c_char> = exec.envp.iter().map(|a| a.as_ptr()).collect();
        envp.push(std::ptr::null());
        libc::execve(exec.path.as_ptr(), argv.as_ptr(), envp.as_ptr());
    }
    std::io::Error::last_os_error()
}

/// The umask for the process (spec default 0022).
pub fn set_umask(process: &Process) {
    let mask = process.user().umask().unwrap_or(0o022);
    // SAFETY: umask cannot fail.
    unsafe { libc::umask(mask as libc::mode_t) };
}

/// Bytes of a path as a C string, for callers that have an OsStr.
pub fn path_cstring(p: &Path) -> Result<CString, String> {
    CString::new(p.as_os_str().as_bytes()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_reports_runc_s_not_found_text() {
        let env = vec!["PATH=/nonexistent-dir".to_string()];
        assert_eq!(
            lookup("nosuch", &env).expect_err("missing"),
            "exec: \"nosuch\": executable file not found in $PATH"
        );
        assert_eq!(
            lookup("/nosuch", &env).expect_err("missing"),
            "exec: \"/nosuch\": stat /nosuch: no such file or directory"
        );
    }

    #[test]
    fn lookup_finds_executables_in_the_container_path_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bin = dir.path().join("tool");
        std::fs::write(&bin, "#!/bin/sh\n").expect("write");
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let plain = dir.path().join("plain");
        std::fs::write(&plain, "").expect("write");
        let env = vec![format!("PATH=/nonexistent:{}", dir.path().display())];
        assert_eq!(lookup("tool", &env).expect("found"), bin);
        assert!(
            lookup("plain", &env).is_err(),
            "non-executable files are skipped"
        );
        assert!(lookup("tool", &["PATH=/nonexistent".to_string()]).is_err());
    }

    #[test]
    fn environment_adds_home_only_when_missing() {
        let p: Process = serde_json::from_str(
            r#"{"args":["sh"],"cwd":"/","user":{"uid":4242,"gid":0},"env":["PATH=/bin"]}"#,
        )
        .expect("process");
        assert_eq!(
            environment(&p),
            vec!["PATH=/bin".to_string(), "HOME=/".to_string()]
        );
        let p: Process = serde_json::from_str(
            r#"{"args":["sh"],"cwd":"/","user":{"uid":0,"gid":0},"env":["HOME=/x"]}"#,
        )
        .expect("process");
        assert_eq!(environment(&p), vec!["HOME=/x".to_string()]);
    }
}
