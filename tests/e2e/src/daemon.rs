//! Daemon fixtures for tests that drive the real docker CLI: the [`Daemon`] trait both a
//! private berthd ([`Berthd`]) and a private Debian dockerd ([`Dockerd`]) implement.
//!
//! # Usage
//!
//! ```text
//! use berth_e2e::daemon::{Berthd, Daemon, Dockerd};
//!
//! let berthd = Berthd::start();          // release binaries from $BERTH_BIN_DIR
//! berthd.import_busybox();               // busybox:latest from busybox-static, no registry
//! assert_eq!(berthd.ok(&["run", "--rm", "busybox", "echo", "hi"]), "hi");
//! let out = berthd.docker(&["rm", "nosuch"]);   // std::process::Output, any exit code
//! let mut cmd = berthd.command(&["ps"]);         // a Command to add env or stdin to
//! let out = daemon::run_command(cmd.env("DOCKER_API_VERSION", "1.12"));
//! berthd.kill9(); berthd.restart();      // live-restore tests
//! let dockerd = Dockerd::start();        // the same trait against Debian's dockerd 20.10
//! ```
//!
//! - Every command is `/usr/local/bin/docker -H unix://<private socket>` (CLI 28.2.2, API
//!   1.50) with a private, empty `DOCKER_CONFIG`, no inherited `DOCKER_*` variables, stdin
//!   closed, and a hang guard ([`COMMAND_TIMEOUT`]) so a hung daemon fails the test.
//! - Each fixture lives in its own short directory under /tmp (shim sockets stay below the
//!   108-byte `sun_path` limit) with a unique cgroup parent. Dropping it stops the daemon by
//!   PID, kills every process it left (shims, containerd, container processes), detaches
//!   every mount under its roots and removes its cgroups: nothing leaks when a test fails.
//! - Nothing skips: a missing docker CLI, dockerd or berthd binary fails the test.
//! - [`crate::normalize`] makes two daemons' outputs comparable (IDs, times, sizes).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub use crate::berthd::Berthd;
pub use crate::dockerd::Dockerd;
use crate::image_tar::BusyboxTar;

/// The docker CLI every comparison uses (v28.2.2, API 1.50; negotiates down to 1.41).
pub const DOCKER_CLI: &str = "/usr/local/bin/docker";

/// Longest one docker command may take before the test fails as hung (not a performance
/// assertion: only a guard against a daemon that never answers).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(180);

/// Environment variables of the caller that would change what the CLI does.
const INHERITED_DOCKER_ENV: &[&str] = &[
    "DOCKER_HOST",
    "DOCKER_CONTEXT",
    "DOCKER_API_VERSION",
    "DOCKER_TLS_VERIFY",
    "DOCKER_CERT_PATH",
    "DOCKER_DEFAULT_PLATFORM",
    "BERTH_HOST",
];

/// A Docker Engine API daemon reachable on a private unix socket.
pub trait Daemon {
    /// `berthd` or `dockerd`, for messages.
    fn name(&self) -> &'static str;

    /// The API socket.
    fn socket(&self) -> PathBuf;

    /// A private, empty directory given to the CLI as `DOCKER_CONFIG`.
    fn cli_config_dir(&self) -> PathBuf;

    /// `unix:///path/to/socket`, as `-H` and `DOCKER_HOST` take it.
    fn host(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    /// The docker CLI pointed at this daemon, stdin closed, ready for more env or args.
    fn command(&self, args: &[&str]) -> Command {
        assert!(
            Path::new(DOCKER_CLI).is_file(),
            "{DOCKER_CLI} is missing: the docker CLI 28 must be installed for the e2e tests"
        );
        let mut cmd = Command::new(DOCKER_CLI);
        for var in INHERITED_DOCKER_ENV {
            cmd.env_remove(var);
        }
        cmd.env("DOCKER_CONFIG", self.cli_config_dir())
            .env("DOCKER_CLI_HINTS", "false")
            .arg("-H")
            .arg(self.host())
            .args(args)
            .stdin(Stdio::null());
        cmd
    }

    /// `python3` with docker-py's environment pointed at this daemon (`docker.from_env()`
    /// finds it), ready for the script and its args.
    fn docker_py_command(&self) -> Command {
        let mut cmd = Command::new("python3");
        cmd.env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", self.cli_config_dir())
            .env_remove("DOCKER_TLS_VERIFY")
            .env_remove("DOCKER_CERT_PATH")
            .env_remove("DOCKER_API_VERSION");
        cmd
    }

    /// Runs `docker <args>` and returns what it did, whatever its exit code.
    fn docker(&self, args: &[&str]) -> Output {
        run_command(&mut self.command(args))
    }

    /// Runs `docker <args>` with `input` on its stdin, whatever its exit code.
    fn docker_with_input(&self, args: &[&str], input: &[u8]) -> Output {
        run_command_with_input(&mut self.command(args), input)
    }

    /// Runs `docker <args>`, fails the test unless it exits 0, returns trimmed stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "docker {args:?} against {} failed ({:?}):\nstderr: {}\nstdout: {}",
            self.name(),
            out.status,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// `docker import`s a busybox-static rootfs as `busybox:latest` (CMD ["sh"]) and
    /// returns the image ID.
    fn import_busybox(&self) -> String {
        let tar = BusyboxTar::new();
        let path = tar.path().to_string_lossy().into_owned();
        self.ok(&[
            "import",
            "--change",
            "CMD [\"sh\"]",
            &path,
            "busybox:latest",
        ])
    }
}

/// Runs a prepared command to completion with the [`COMMAND_TIMEOUT`] hang guard; on a
/// hang the command is killed (by its PID, it is our child) and the test fails.
pub fn run_command(cmd: &mut Command) -> Output {
    run_command_with_input(cmd, &[])
}

/// [`run_command`] with `input` written to the command's stdin (then closed); with no
/// input the command keeps whatever stdin it was given.
pub fn run_command_with_input(cmd: &mut Command, input: &[u8]) -> Output {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    if !input.is_empty() {
        cmd.stdin(Stdio::piped());
    }
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let pid = child.id() as i32;
    let stdin = child.stdin.take();
    let input = input.to_vec();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        if let Some(mut stdin) = stdin {
            use std::io::Write;
            // A command that exits without reading all of its input is not an error here:
            // its exit status and output tell the test what happened.
            let _ = stdin.write_all(&input);
        }
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(COMMAND_TIMEOUT) {
        Ok(output) => output.unwrap_or_else(|e| panic!("waiting for {cmd:?}: {e}")),
        Err(_) => {
            // SAFETY: kill has no memory-safety preconditions; pid is our own child, not
            // yet reaped (the waiting thread has not returned).
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("{cmd:?} hung for {COMMAND_TIMEOUT:?} and was killed");
        }
    }
}

/// Sends `GET /_ping` over the unix socket; true when the daemon answers 200 `OK`.
pub fn ping(socket: &Path) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::os::unix::net::UnixStream::connect(socket) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    if stream
        .write_all(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response);
    text.starts_with("HTTP/1.1 200") && text.contains("OK")
}
