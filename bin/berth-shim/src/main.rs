//! berth-shim: parses its command line, daemonises, and runs the supervisor.
//!
//! The invoking process (berthd) gets exit status 0 once the shim listens and `runtime create`
//! succeeded, or 1 with the error on stderr; the shim itself lives on in a new session,
//! re-parented away from berthd, as the child subreaper of its container.

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::ExitCode;

use berth_shim::logfile::Rotation;
use berth_shim::oci_runtime::RuntimeCli;
use berth_shim::supervisor::{Config, Supervisor};

const USAGE: &str = "usage: berth-shim --id ID --bundle DIR --runtime PATH --runtime-root DIR \
--socket PATH [--log-path FILE] [--log-max-size BYTES] [--log-max-file N] [--stdin] [--foreground]";

struct Args {
    config: Config,
    foreground: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut values: std::collections::HashMap<String, String> = Default::default();
    let mut stdin = false;
    let mut foreground = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--stdin" => stdin = true,
            "--foreground" => foreground = true,
            "--help" | "-h" => return Err(USAGE.to_string()),
            flag if flag.starts_with("--") => {
                let value = args
                    .next()
                    .ok_or(format!("{flag} needs a value\n{USAGE}"))?;
                values.insert(flag[2..].to_string(), value);
            }
            other => return Err(format!("unexpected argument {other:?}\n{USAGE}")),
        }
    }
    let mut take = |name: &str| values.remove(name);
    let mut required = |name: &str| take(name).ok_or(format!("--{name} is required\n{USAGE}"));
    let id = required("id")?;
    let bundle = PathBuf::from(required("bundle")?);
    let runtime = RuntimeCli {
        binary: PathBuf::from(required("runtime")?),
        root: PathBuf::from(required("runtime-root")?),
    };
    let socket = PathBuf::from(required("socket")?);
    let log_path = take("log-path").map(PathBuf::from);
    let number = |value: Option<String>, name: &str, default: u64| -> Result<u64, String> {
        value.map_or(Ok(default), |v| {
            v.parse().map_err(|_| format!("--{name} must be a number"))
        })
    };
    let max_size = number(take("log-max-size"), "log-max-size", 0)?;
    let max_file = number(take("log-max-file"), "log-max-file", 1)?;
    if let Some(unknown) = values.keys().next() {
        return Err(format!("unknown flag --{unknown}\n{USAGE}"));
    }
    Ok(Args {
        config: Config {
            id,
            bundle,
            runtime,
            socket,
            log_path,
            rotation: Rotation {
                max_size,
                max_file: u32::try_from(max_file).unwrap_or(u32::MAX),
            },
            stdin,
        },
        foreground,
    })
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("berth-shim: {e}");
            return ExitCode::from(2);
        }
    };
    if args.foreground {
        return match launch(args.config, None) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("berth-shim: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into the array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        eprintln!("berth-shim: pipe: {}", std::io::Error::last_os_error());
        return ExitCode::FAILURE;
    }
    // SAFETY: pipe2 succeeded, so both fds are open and owned by nobody else.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: the process is single-threaded here (nothing spawned threads yet), so fork is sound.
    match unsafe { libc::fork() } {
        -1 => {
            eprintln!("berth-shim: fork: {}", std::io::Error::last_os_error());
            ExitCode::FAILURE
        }
        0 => {
            drop(read);
            let ready = std::fs::File::from(write);
            // SAFETY: setsid has no preconditions; the child of fork is never a group leader.
            unsafe { libc::setsid() };
            redirect_stdio();
            match launch(args.config, Some(ready)) {
                Ok(()) => ExitCode::SUCCESS,
                // A failure before readiness went to the launcher through the ready pipe.
                Err(_) => ExitCode::FAILURE,
            }
        }
        _ => {
            drop(write);
            let mut answer = String::new();
            let _ = std::fs::File::from(read).read_to_string(&mut answer);
            if answer == "ok" {
                ExitCode::SUCCESS
            } else {
                let text = if answer.is_empty() {
                    "the shim died while starting"
                } else {
                    &answer
                };
                eprintln!("berth-shim: {text}");
                ExitCode::FAILURE
            }
        }
    }
}

/// Becomes the subreaper, creates the container, reports readiness, serves.
/// The readiness pipe gets "ok" or the error text, then is closed so the launcher returns.
fn launch(config: Config, ready: Option<std::fs::File>) -> Result<(), String> {
    let supervisor = match start_supervisor(config) {
        Ok(supervisor) => supervisor,
        Err(e) => {
            if let Some(mut ready) = ready {
                let _ = ready.write_all(e.as_bytes());
            }
            return Err(e);
        }
    };
    if let Some(mut ready) = ready {
        let _ = ready.write_all(b"ok");
    }
    supervisor.serve().map_err(|e| error_chain(&e))
}

fn start_supervisor(config: Config) -> Result<Supervisor, String> {
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER, 1) only sets a flag on this process.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err(format!(
            "becoming a subreaper: {}",
            std::io::Error::last_os_error()
        ));
    }
    Supervisor::launch(config).map_err(|e| error_chain(&e))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Points stdin/stdout/stderr at /dev/null so the shim holds none of berthd's pipes or ttys.
fn redirect_stdio() {
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        use std::os::fd::AsRawFd;
        for target in 0..3 {
            // SAFETY: dup2 onto the standard descriptors; `null` stays open during the calls.
            unsafe { libc::dup2(null.as_raw_fd(), target) };
        }
    }
}
