//! A runtime binary (berth-runtime or runc) driven through runc's command line with a private
//! `--root`, and container guards that force-delete on drop.
//!
//! Every command runs with stdin closed and a hang guard ([`COMMAND_TIMEOUT`]): a hung runtime
//! fails the test instead of stalling CI. The guard is not a performance assertion.

use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::{host, require_root, Bundle};

/// Longest any single runtime command may take before the test fails as hung.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// Which binary plays "the runtime under test".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subject {
    /// Debian's runc (the oracle), used until berth-runtime implements the command line.
    Runc,
    /// berth-runtime from `BERTH_BIN_DIR`.
    Berth,
}

/// The runtime under test. Switching the e2e tests between runc and berth-runtime is this one
/// line; `BERTH_E2E_SUBJECT=runc|berth` overrides it (and [`crate::probe::DIFFERENTIAL_SUBJECT`])
/// for a local run.
pub const SUBJECT: Subject = Subject::Berth;

static NEXT_ID: AtomicUsize = AtomicUsize::new(0);

/// A runtime binary plus a private state root, removed on drop.
pub struct Runtime {
    name: &'static str,
    binary: PathBuf,
    root: tempfile::TempDir,
}

impl Runtime {
    /// Debian's runc, the differential oracle. Panics (fails the test) when it is missing.
    pub fn runc() -> Runtime {
        let binary = ["/usr/sbin/runc", "/usr/bin/runc"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .unwrap_or_else(|| panic!("runc is missing: apt-get install runc"));
        Runtime::new("runc", binary)
    }

    /// berth-runtime from `$BERTH_BIN_DIR` (scripts/test.sh sets it to the release dir).
    pub fn berth() -> Runtime {
        let dir = std::env::var_os("BERTH_BIN_DIR").unwrap_or_else(|| {
            panic!("BERTH_BIN_DIR is not set: run the e2e tests through scripts/test.sh")
        });
        let binary = Path::new(&dir).join("berth-runtime");
        assert!(
            binary.is_file(),
            "{} is missing: build it with cargo build --release --bins",
            binary.display()
        );
        Runtime::new("berth-runtime", binary)
    }

    /// The runtime under test ([`SUBJECT`], or `BERTH_E2E_SUBJECT` when set).
    pub fn subject() -> Runtime {
        Runtime::subject_or(SUBJECT)
    }

    /// `BERTH_E2E_SUBJECT` when set, else `default`.
    pub fn subject_or(default: Subject) -> Runtime {
        let subject = match std::env::var("BERTH_E2E_SUBJECT").as_deref() {
            Ok("runc") => Subject::Runc,
            Ok("berth") => Subject::Berth,
            Ok(other) => panic!("BERTH_E2E_SUBJECT must be runc or berth, not {other:?}"),
            Err(_) => default,
        };
        match subject {
            Subject::Runc => Runtime::runc(),
            Subject::Berth => Runtime::berth(),
        }
    }

    fn new(name: &'static str, binary: PathBuf) -> Runtime {
        require_root();
        let root = tempfile::Builder::new()
            .prefix(&format!("berth-e2e-{name}-root-"))
            .tempdir()
            .unwrap_or_else(|e| panic!("creating a state root for {name}: {e}"));
        Runtime { name, binary, root }
    }

    /// Short name for messages ("runc" or "berth-runtime").
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The binary this handle runs.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// The private `--root` state directory.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// `<binary> --root <root>`, ready for a subcommand.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--root").arg(self.root.path());
        cmd
    }

    /// Runs `<binary> --root <root> args...` with captured output.
    pub fn cmd(&self, args: &[&str]) -> Result<Ran> {
        let mut cmd = self.command();
        cmd.args(args);
        run_bounded(cmd)
    }

    /// A guard for a new, unique container id (nothing is created yet).
    pub fn container(&self, tag: &str) -> Container<'_> {
        let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let id = format!("e2e-{tag}-{}-{n}", std::process::id());
        Container { runtime: self, id }
    }
}

/// A container id on one runtime; dropping it runs `delete --force` and removes any cgroup the
/// runtime left under that id.
pub struct Container<'a> {
    runtime: &'a Runtime,
    id: String,
}

impl Container<'_> {
    /// The container id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The runtime this container belongs to.
    pub fn runtime(&self) -> &Runtime {
        self.runtime
    }

    /// `run --bundle B ID` in the foreground with captured stdio.
    pub fn run(&self, bundle: &Bundle) -> Result<Ran> {
        self.run_with(bundle, &[])
    }

    /// `run [extra...] --bundle B ID` in the foreground with captured stdio.
    pub fn run_with(&self, bundle: &Bundle, extra: &[&str]) -> Result<Ran> {
        run_bounded(self.run_command(bundle, extra))
    }

    /// The `run [extra...] --bundle B ID` command, for tests that adjust it (extra fds).
    pub fn run_command(&self, bundle: &Bundle, extra: &[&str]) -> Command {
        let mut cmd = self.runtime.command();
        cmd.arg("run")
            .args(extra)
            .arg("--bundle")
            .arg(bundle.path())
            .arg(&self.id);
        cmd
    }

    /// `create --bundle B ID`; the container's stdio goes to files read by [`Self::output`].
    pub fn create(&self, bundle: &Bundle) -> Result<Ran> {
        self.create_with(bundle, &[])
    }

    /// `create [extra...] --bundle B ID` with the container's stdio in files.
    pub fn create_with(&self, bundle: &Bundle, extra: &[&str]) -> Result<Ran> {
        let mut cmd = self.runtime.command();
        cmd.arg("create")
            .args(extra)
            .arg("--bundle")
            .arg(bundle.path())
            .arg(&self.id);
        self.detached(bundle, cmd)
    }

    /// `run --detach [extra...] --bundle B ID` with the container's stdio in files.
    pub fn run_detached(&self, bundle: &Bundle, extra: &[&str]) -> Result<Ran> {
        let mut cmd = self.runtime.command();
        cmd.arg("run").arg("--detach").args(extra);
        cmd.arg("--bundle").arg(bundle.path()).arg(&self.id);
        self.detached(bundle, cmd)
    }

    fn detached(&self, bundle: &Bundle, mut cmd: Command) -> Result<Ran> {
        let (out, err) = self.stdio_paths(bundle);
        cmd.stdout(File::create(&out).context("creating the stdout capture")?);
        cmd.stderr(File::create(&err).context("creating the stderr capture")?);
        let describe = format!("{cmd:?}");
        let status = wait_bounded(cmd.stdin(Stdio::null()).spawn(), &describe)?;
        Ok(Ran {
            command: describe,
            status,
            stdout: std::fs::read_to_string(&out).unwrap_or_default(),
            stderr: std::fs::read_to_string(&err).unwrap_or_default(),
        })
    }

    fn stdio_paths(&self, bundle: &Bundle) -> (PathBuf, PathBuf) {
        (
            bundle.scratch(&format!("{}.stdout", self.id)),
            bundle.scratch(&format!("{}.stderr", self.id)),
        )
    }

    /// What a detached container wrote so far: (stdout, stderr).
    pub fn output(&self, bundle: &Bundle) -> (String, String) {
        let (out, err) = self.stdio_paths(bundle);
        (
            std::fs::read_to_string(out).unwrap_or_default(),
            std::fs::read_to_string(err).unwrap_or_default(),
        )
    }

    /// Runs `<subcommand> [args...] ID [trailing...]`.
    pub fn op(&self, subcommand: &str, args: &[&str], trailing: &[&str]) -> Result<Ran> {
        let mut cmd = self.runtime.command();
        cmd.arg(subcommand).args(args).arg(&self.id).args(trailing);
        run_bounded(cmd)
    }

    /// `state ID` parsed as JSON (fails when the command fails).
    pub fn state(&self) -> Result<Value> {
        let ran = self.op("state", &[], &[])?.success()?;
        serde_json::from_str(&ran.stdout)
            .with_context(|| format!("state output is not JSON: {}", ran.stdout))
    }

    /// The `status` field of `state ID`.
    pub fn status(&self) -> Result<String> {
        let state = self.state()?;
        Ok(state["status"].as_str().unwrap_or_default().to_string())
    }

    /// Everything this container left behind: its state dir, cgroups and host mounts.
    pub fn leftovers(&self) -> Vec<String> {
        let mut left = host::leftovers(&self.id);
        let state_dir = self.runtime.root().join(&self.id);
        if state_dir.exists() {
            left.push(format!("state dir {}", state_dir.display()));
        }
        left
    }

    /// Polls `state` until it succeeds (for a `run` started in the background).
    pub fn wait_until_exists(&self) -> Result<()> {
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        while self.op("state", &[], &[])?.code() != 0 {
            if Instant::now() > deadline {
                bail!("container {} never appeared in state", self.id);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    /// Polls `state` until `status` is `want` (bounded by [`COMMAND_TIMEOUT`]).
    pub fn wait_for_status(&self, want: &str) -> Result<()> {
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        loop {
            let now = self.status()?;
            if now == want {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "container {} stayed {now:?}, never became {want:?}",
                    self.id
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        let _ = self.op("delete", &["--force"], &[]);
        host::remove_cgroups_named(&self.id);
    }
}

/// One finished command: its exit status and captured text.
pub struct Ran {
    /// How it was invoked (for messages).
    pub command: String,
    /// Exit status.
    pub status: ExitStatus,
    /// Captured stdout.
    pub stdout: String,
    /// Captured stderr.
    pub stderr: String,
}

impl Ran {
    /// The exit code, or 128 + signal when the command died of a signal.
    pub fn code(&self) -> i32 {
        use std::os::unix::process::ExitStatusExt;
        self.status
            .code()
            .unwrap_or_else(|| 128 + self.status.signal().unwrap_or(0))
    }

    /// Self when the exit code is 0, an error showing everything otherwise.
    pub fn success(self) -> Result<Ran> {
        if self.code() != 0 {
            bail!("command failed: {self}");
        }
        Ok(self)
    }
}

impl fmt::Display for Ran {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} exited {}\n--- stdout\n{}\n--- stderr\n{}",
            self.command,
            self.code(),
            self.stdout,
            self.stderr
        )
    }
}

impl fmt::Debug for Ran {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Runs `cmd` with stdin closed and stdout/stderr captured, failing if it hangs.
pub fn run_bounded(mut cmd: Command) -> Result<Ran> {
    let describe = format!("{cmd:?}");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .with_context(|| format!("spawning {describe}"))?;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let (tx_out, rx_out) = mpsc::channel();
    let (tx_err, rx_err) = mpsc::channel();
    std::thread::spawn(move || tx_out.send(read_all(stdout)));
    std::thread::spawn(move || tx_err.send(read_all(stderr)));
    let status = wait_bounded(Ok(child), &describe)?;
    // A process that leaked our pipes into a still-running container would block forever:
    // give the readers a bounded time once the command itself has exited.
    let grace = Duration::from_secs(10);
    let stdout = rx_out
        .recv_timeout(grace)
        .unwrap_or_else(|_| "<stdout still held open by another process>".to_string());
    let stderr = rx_err
        .recv_timeout(grace)
        .unwrap_or_else(|_| "<stderr still held open by another process>".to_string());
    Ok(Ran {
        command: describe,
        status,
        stdout,
        stderr,
    })
}

fn read_all(pipe: Option<impl std::io::Read>) -> String {
    let mut text = Vec::new();
    if let Some(mut p) = pipe {
        let _ = p.read_to_end(&mut text);
    }
    String::from_utf8_lossy(&text).into_owned()
}

fn wait_bounded(child: std::io::Result<std::process::Child>, describe: &str) -> Result<ExitStatus> {
    let mut child = child.with_context(|| format!("spawning {describe}"))?;
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().context("waiting for a runtime command")? {
            return Ok(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{describe} hung for {COMMAND_TIMEOUT:?} and was killed");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
