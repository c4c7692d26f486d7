//! OCI hooks (prestart, createRuntime, createContainer, startContainer, poststart,
//! poststop): run each one with the container state on stdin, its own argv and env, and a
//! timeout, as runc does; report which hook failed and why.
//!
//! No threads: one poll(2) loop feeds stdin, collects stdout/stderr and waits on a pidfd
//! until the hook exits or its timeout passes (then SIGKILL). The hook is always reaped.

use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::Hook;

/// Hook output kept for the error message (runc includes stdout and stderr).
const OUTPUT_LIMIT: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("hook {path} has a relative path (runtime-spec: absolute)")]
    RelativePath { path: PathBuf },
    #[error("hook {path} has timeout {timeout} (runtime-spec: greater than zero)")]
    BadTimeout { path: PathBuf, timeout: i64 },
    #[error("hook {path} could not be started")]
    Spawn {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("hook {path} could not be watched")]
    Wait {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("hook {path} {status}{output}")]
    Failed {
        path: PathBuf,
        status: String,
        output: String,
    },
    #[error("hook {path} ran past its timeout of {timeout}s and was killed{output}")]
    Timeout {
        path: PathBuf,
        timeout: i64,
        output: String,
    },
}

/// Runs `hooks` in order; the first failure stops the list and is returned.
/// `state_json` is the container state written to each hook's stdin.
pub fn run(hooks: &[Hook], state_json: &[u8]) -> Result<(), HookError> {
    hooks.iter().try_for_each(|h| run_one(h, state_json))
}

/// Checks paths and timeouts without running anything (for the parent's early validation).
pub fn validate(hooks: &[Hook]) -> Result<(), HookError> {
    for h in hooks {
        if !h.path().is_absolute() {
            return Err(HookError::RelativePath {
                path: h.path().clone(),
            });
        }
        if let Some(t) = h.timeout() {
            if t <= 0 {
                return Err(HookError::BadTimeout {
                    path: h.path().clone(),
                    timeout: t,
                });
            }
        }
    }
    Ok(())
}

fn command(h: &Hook) -> Command {
    let mut cmd = Command::new(h.path());
    // args[0] is argv0, as in execv(3); without args argv0 is the path (Go's exec).
    if let Some([argv0, rest @ ..]) = h.args().as_deref() {
        cmd.arg0(argv0).args(rest);
    }
    // env replaces the environment; without env the hook inherits the runtime's, as runc.
    if let Some(env) = h.env() {
        cmd.env_clear();
        for entry in env {
            match entry.split_once('=') {
                Some((k, v)) => cmd.env(k, v),
                None => cmd.env(entry, OsStr::new("")),
            };
        }
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

fn run_one(h: &Hook, state_json: &[u8]) -> Result<(), HookError> {
    validate(std::slice::from_ref(h))?;
    let path = h.path().clone();
    let mut child = command(h).spawn().map_err(|source| HookError::Spawn {
        path: path.clone(),
        source,
    })?;
    let deadline = h
        .timeout()
        .map(|t| Instant::now() + Duration::from_secs(t.unsigned_abs()));
    let watched = watch(&mut child, state_json, deadline);
    // Whatever happened, the hook is gone before we return: kill it unless it exited,
    // then reap it so no zombie is left.
    if !matches!(&watched, Ok(w) if w.exited) {
        let _ = child.kill();
    }
    let status = child.wait();
    let watched = match (watched, status) {
        (Err(source), _) => return Err(HookError::Wait { path, source }),
        (Ok(w), Ok(status)) => (w, status),
        (Ok(_), Err(source)) => return Err(HookError::Wait { path, source }),
    };
    match watched {
        (w, _) if !w.exited => Err(HookError::Timeout {
            path,
            timeout: h.timeout().unwrap_or_default(),
            output: w.output(),
        }),
        (_, status) if status.success() => Ok(()),
        (w, status) => Err(HookError::Failed {
            path,
            status: describe(status),
            output: w.output(),
        }),
    }
}

fn describe(s: ExitStatus) -> String {
    match (s.code(), s.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(sig)) => format!("was killed by signal {sig}"),
        (None, None) => format!("ended with {s}"),
    }
}

/// How watching a hook ended: it exited, or the deadline passed first.
struct Watched {
    exited: bool,
    stdout: String,
    stderr: String,
}

impl Watched {
    /// The hook's output for an error message (runc includes both streams).
    fn output(&self) -> String {
        let mut text = String::new();
        for (name, s) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            if !s.trim().is_empty() {
                text.push_str(&format!(", {name}: {}", s.trim()));
            }
        }
        text
    }
}

/// Feeds stdin, drains stdout/stderr, and returns when the hook exits or the deadline
/// passes.
fn watch(child: &mut Child, input: &[u8], deadline: Option<Instant>) -> io::Result<Watched> {
    let pid = rustix::process::Pid::from_child(child);
    let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())?;
    let mut stdin = child.stdin.take().filter(|_| !input.is_empty());
    let mut written = 0;
    if let Some(s) = &stdin {
        set_nonblocking(s.as_fd())?;
    }
    let mut out = Output::new(child.stdout.take().map(OwnedFd::from))?;
    let mut err = Output::new(child.stderr.take().map(OwnedFd::from))?;
    let finish = |exited, out: &Output, err: &Output| Watched {
        exited,
        stdout: out.text(),
        stderr: err.text(),
    };
    loop {
        let mut fds = vec![pollfd(pidfd.as_raw_fd(), libc::POLLIN)];
        let stdin_slot = stdin.as_ref().map(|s| {
            fds.push(pollfd(s.as_raw_fd(), libc::POLLOUT));
            fds.len() - 1
        });
        let out_slot = out.poll_slot(&mut fds);
        let err_slot = err.poll_slot(&mut fds);
        let timeout_ms = match deadline {
            None => -1,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(finish(false, &out, &err));
                }
                i32::try_from(left.as_millis().saturating_add(1)).unwrap_or(i32::MAX)
            }
        };
        // SAFETY: fds is a valid, initialised array of fds.len() pollfd structs.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if let (Some(i), Some(s)) = (stdin_slot, stdin.as_mut()) {
            if fds[i].revents != 0 {
                match s.write(&input[written..]) {
                    Ok(k) => written += k,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    // EPIPE: the hook does not read its stdin, which is its right.
                    Err(_) => written = input.len(),
                }
                if written >= input.len() {
                    stdin = None; // close: the hook sees EOF
                }
            }
        }
        out.read_ready(out_slot.map(|i| fds[i].revents));
        err.read_ready(err_slot.map(|i| fds[i].revents));
        if fds[0].revents != 0 {
            // Exited: keep what is buffered now; do not wait for grandchildren that may
            // still hold the pipes open.
            out.drain();
            err.drain();
            return Ok(finish(true, &out, &err));
        }
    }
}

fn pollfd(fd: libc::c_int, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

fn set_nonblocking(fd: std::os::fd::BorrowedFd<'_>) -> io::Result<()> {
    let flags = rustix::fs::fcntl_getfl(fd)?;
    rustix::fs::fcntl_setfl(fd, flags | rustix::fs::OFlags::NONBLOCK)?;
    Ok(())
}

/// One of the hook's output pipes and what was read from it (up to OUTPUT_LIMIT).
struct Output {
    file: Option<std::fs::File>,
    bytes: Vec<u8>,
}

impl Output {
    fn new(fd: Option<OwnedFd>) -> io::Result<Output> {
        if let Some(fd) = &fd {
            set_nonblocking(fd.as_fd())?;
        }
        Ok(Output {
            file: fd.map(std::fs::File::from),
            bytes: Vec::new(),
        })
    }

    fn poll_slot(&self, fds: &mut Vec<libc::pollfd>) -> Option<usize> {
        self.file.as_ref().map(|f| {
            fds.push(pollfd(f.as_raw_fd(), libc::POLLIN));
            fds.len() - 1
        })
    }

    fn read_ready(&mut self, revents: Option<libc::c_short>) {
        if revents.is_some_and(|r| r != 0) {
            self.drain();
        }
    }

    /// Reads what is available now; closes the pipe at EOF or error.
    fn drain(&mut self) {
        let Some(file) = self.file.as_mut() else {
            return;
        };
        let mut buf = [0u8; 4096];
        loop {
            match file.read(&mut buf) {
                Ok(0) => {
                    self.file = None;
                    return;
                }
                Ok(k) => {
                    let room = OUTPUT_LIMIT.saturating_sub(self.bytes.len());
                    self.bytes.extend_from_slice(&buf[..k.min(room)]);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.file = None;
                    return;
                }
            }
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::HookBuilder;
    use std::path::Path;

    fn sh(script: &str) -> HookBuilder {
        HookBuilder::default().path("/bin/sh").args(vec![
            "sh".to_string(),
            "-c".to_string(),
            script.to_string(),
        ])
    }

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap()
    }

    #[test]
    fn hook_receives_the_state_json_on_stdin() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("state");
        let hook = sh(&format!("cat > {}", out.display())).build().unwrap();
        let state = br#"{"ociVersion":"1.2.0","id":"c1","status":"created","pid":7,"bundle":"/b"}"#;
        run(&[hook], state).unwrap();
        assert_eq!(read(&out).as_bytes(), state);
    }

    #[test]
    fn args_zero_is_argv0_and_the_rest_follow() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("argv");
        let hook = HookBuilder::default()
            .path("/bin/sh")
            .args(vec![
                "custom-argv0".to_string(),
                "-c".to_string(),
                format!("printf '%s|%s|%s' \"$0\" \"$1\" \"$2\" > {}", out.display()),
                "zero".to_string(),
                "one".to_string(),
            ])
            .build()
            .unwrap();
        run(&[hook], b"{}").unwrap();
        assert_eq!(read(&out), "zero|one|");
        // busybox picks its applet from argv0: "false" only runs if argv0 is passed as given.
        let busybox = HookBuilder::default()
            .path("/bin/busybox")
            .args(vec!["false".to_string()])
            .build()
            .unwrap();
        let err = run(&[busybox], b"{}").unwrap_err();
        assert_eq!(err.to_string(), "hook /bin/busybox exited with status 1");
    }

    #[test]
    fn env_replaces_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("env");
        let hook = sh(&format!(
            "printf '%s:%s' \"$FOO\" \"${{HOME-unset}}\" > {}",
            out.display()
        ))
        .env(vec!["FOO=bar".to_string()])
        .build()
        .unwrap();
        run(&[hook], b"{}").unwrap();
        assert_eq!(read(&out), "bar:unset");
    }

    #[test]
    fn non_zero_exit_names_the_hook_status_and_output() {
        let hook = sh("echo progress; echo boom >&2; exit 3").build().unwrap();
        let err = run(&[hook], b"{}").unwrap_err();
        assert_eq!(
            err.to_string(),
            "hook /bin/sh exited with status 3, stdout: progress, stderr: boom"
        );
    }

    #[test]
    fn hook_killed_by_a_signal_says_so() {
        let hook = sh("kill -9 $$").build().unwrap();
        let err = run(&[hook], b"{}").unwrap_err();
        assert_eq!(err.to_string(), "hook /bin/sh was killed by signal 9");
    }

    #[test]
    fn timeout_kills_and_reaps_the_hook() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let hook = sh(&format!("echo $$ > {}; exec sleep 60", pidfile.display()))
            .timeout(1)
            .build()
            .unwrap();
        let err = run(&[hook], b"{}").unwrap_err();
        assert!(matches!(err, HookError::Timeout { timeout: 1, .. }));
        assert_eq!(
            err.to_string(),
            "hook /bin/sh ran past its timeout of 1s and was killed"
        );
        // Killed and reaped: no process (not even a zombie) is left under that pid.
        let pid = read(&pidfile).trim().to_string();
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
    }

    #[test]
    fn hooks_run_in_order_and_stop_at_the_first_failure() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let hooks = [
            sh(&format!("echo one >> {}", log.display()))
                .build()
                .unwrap(),
            sh("exit 1").build().unwrap(),
            sh(&format!("echo three >> {}", log.display()))
                .build()
                .unwrap(),
        ];
        assert!(run(&hooks, b"{}").is_err());
        assert_eq!(read(&log), "one\n");
    }

    #[test]
    fn hook_that_ignores_a_large_stdin_does_not_block() {
        let state = vec![b' '; 1 << 20];
        let hook = sh("exit 0").build().unwrap();
        run(&[hook], &state).unwrap();
    }

    #[test]
    fn background_child_holding_stdout_does_not_keep_the_runtime_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("bg");
        let hook = sh(&format!("sleep 60 & echo $! > {}", pidfile.display()))
            .timeout(30)
            .build()
            .unwrap();
        let result = run(&[hook], b"{}");
        // Clean up the background sleep we caused, by its pid.
        let pid: i32 = read(&pidfile).trim().parse().unwrap();
        // SAFETY: plain kill(2) of the process this test started.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        result.unwrap();
    }

    #[test]
    fn missing_executable_is_a_spawn_error_naming_the_hook() {
        let hook = HookBuilder::default()
            .path("/nonexistent/hook")
            .build()
            .unwrap();
        let err = run(&[hook], b"{}").unwrap_err();
        assert_eq!(
            err.to_string(),
            "hook /nonexistent/hook could not be started"
        );
        assert!(matches!(err, HookError::Spawn { .. }));
    }

    #[test]
    fn relative_path_and_non_positive_timeout_are_refused() {
        let relative = HookBuilder::default().path("bin/hook").build().unwrap();
        assert_eq!(
            validate(&[relative]).unwrap_err().to_string(),
            "hook bin/hook has a relative path (runtime-spec: absolute)"
        );
        let zero = sh("true").timeout(0).build().unwrap();
        assert_eq!(
            run(&[zero], b"{}").unwrap_err().to_string(),
            "hook /bin/sh has timeout 0 (runtime-spec: greater than zero)"
        );
    }
}
