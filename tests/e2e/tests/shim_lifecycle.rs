//! berth-shim end to end, with berth-runtime and with runc: create/start, json-file logs,
//! exit codes through State/Wait, kill, exec, attach with stdin, a TTY through the console
//! socket, and the container outliving the process that launched its shim.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use berth_e2e::spec::base_config;
use berth_e2e::{require_root, Bundle, Runtime};
use berth_shim::client::{AttachEvent, Client};
use berth_shim::protocol::Status;
use serde_json::Value;

/// Hang guard only (a stuck shim fails the test instead of stalling CI); not a timing assertion.
const HANG_GUARD: Duration = Duration::from_secs(60);

fn shim_binary() -> PathBuf {
    let dir = std::env::var_os("BERTH_BIN_DIR").unwrap_or_else(|| {
        panic!("BERTH_BIN_DIR is not set: run the e2e tests through scripts/test.sh")
    });
    let binary = Path::new(&dir).join("berth-shim");
    assert!(
        binary.is_file(),
        "{} is missing: cargo build --release --bins",
        binary.display()
    );
    binary
}

/// A running shim: the fake "berthd" that launched it, its socket, and cleanup on drop.
struct Shim {
    launcher: Option<Child>,
    socket: PathBuf,
    shim_pid: u32,
    client: Client,
    _dir: tempfile::TempDir,
}

impl Shim {
    /// Launches `berth-shim` from a stand-in berthd (`sh` that stays alive after the shim
    /// daemonised) and connects to it.
    fn launch(runtime: &Runtime, id: &str, bundle: &Bundle, stdin: bool) -> Result<Shim> {
        let dir = tempfile::Builder::new()
            .prefix("berth-shim-e2e-")
            .tempdir()?;
        let socket = dir.path().join(format!("{id}.sock"));
        let log = bundle.scratch("container-json.log");
        let mut args: Vec<String> = vec![
            "--id".into(),
            id.into(),
            "--bundle".into(),
            bundle.path().display().to_string(),
            "--runtime".into(),
            runtime.binary().display().to_string(),
            "--runtime-root".into(),
            runtime.root().display().to_string(),
            "--socket".into(),
            socket.display().to_string(),
            "--log-path".into(),
            log.display().to_string(),
        ];
        if stdin {
            args.push("--stdin".into());
        }
        let ready = dir.path().join("ready");
        // The stand-in berthd runs the shim launcher, records its status, then lives on until
        // the test kills it with SIGKILL.
        let script = format!(
            "\"$0\" \"$@\"; echo $? > {}; exec sleep 1000",
            ready.display()
        );
        let launcher = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(shim_binary())
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("spawning the stand-in berthd")?;
        let launcher = Some(launcher);
        wait_until(|| std::fs::read_to_string(&ready).is_ok_and(|t| t.ends_with('\n')))?;
        let code = std::fs::read_to_string(&ready)?;
        let mut shim = Shim {
            launcher,
            socket: socket.clone(),
            shim_pid: 0,
            client: Client::connect(&socket).map(|c| c.0).or_else(|e| {
                if code.trim() != "0" {
                    bail!("berth-shim launcher exited with {}", code.trim());
                }
                Err(e.into())
            })?,
            _dir: dir,
        };
        let (_, info) = Client::connect(&shim.socket)?;
        assert_eq!(info.container_id, id);
        shim.shim_pid = info.shim_pid;
        Ok(shim)
    }

    /// SIGKILLs the process that launched the shim (what a berthd crash does).
    fn kill_launcher(&mut self) -> Result<()> {
        if let Some(mut launcher) = self.launcher.take() {
            launcher.kill()?;
            launcher.wait()?;
        }
        Ok(())
    }

    fn shim_alive(&self) -> bool {
        // SAFETY: kill with signal 0 only checks that the pid exists.
        self.shim_pid != 0 && unsafe { libc::kill(self.shim_pid as i32, 0) } == 0
    }
}

impl Drop for Shim {
    fn drop(&mut self) {
        let _ = self.client.delete(true);
        if self.shim_alive() {
            // SAFETY: signalling the shim this test started, by its pid.
            unsafe { libc::kill(self.shim_pid as i32, libc::SIGKILL) };
        }
        let _ = self.kill_launcher();
    }
}

fn wait_until(mut done: impl FnMut() -> bool) -> Result<()> {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > HANG_GUARD {
            bail!("gave up waiting (hang guard)");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Reads an attach stream to its end: (stdout, stderr, exit code).
fn drain(mut attach: berth_shim::client::Attach) -> Result<(String, String, Option<i32>)> {
    let (mut out, mut err, mut code) = (Vec::new(), Vec::new(), None);
    while let Some(event) = attach.next_event()? {
        match event {
            AttachEvent::Stdout(d) => out.extend(d),
            AttachEvent::Stderr(d) => err.extend(d),
            AttachEvent::Exit(e) => code = Some(e.code),
        }
    }
    Ok((
        String::from_utf8_lossy(&out).into(),
        String::from_utf8_lossy(&err).into(),
        code,
    ))
}

fn log_entries(bundle: &Bundle) -> Result<Vec<Value>> {
    let text = std::fs::read_to_string(bundle.scratch("container-json.log"))?;
    text.lines()
        .map(|l| serde_json::from_str(l).with_context(|| format!("log line {l:?}")))
        .collect()
}

fn lifecycle_survives_launcher_death(runtime: Runtime) -> Result<()> {
    require_root();
    let container = runtime.container("shim-life");
    let bundle = Bundle::busybox(&base_config(&[
        "sh",
        "-c",
        "echo out; echo err >&2; read x; echo got $x; exit 3",
    ]))?;
    let mut shim = Shim::launch(&runtime, container.id(), &bundle, true)?;
    assert_eq!(shim.client.state(None)?.status, Status::Created);
    let attach = shim.client.attach(None, true)?;
    let mut stdin = attach.stdin()?;
    shim.client.start()?;
    // berthd dies: the container and its shim live on, a new client finds them.
    shim.kill_launcher()?;
    assert!(shim.shim_alive(), "the shim died with its launcher");
    let (fresh, _) = Client::connect(&shim.socket)?;
    let state = fresh.state(None)?;
    assert_eq!(state.status, Status::Running);
    assert!(state.pid > 0);
    stdin.write(b"hi\n")?;
    stdin.close()?;
    let (out, err, code) = drain(attach)?;
    assert_eq!(out, "out\ngot hi\n");
    assert_eq!(err, "err\n");
    assert_eq!(code, Some(3));
    assert_eq!(fresh.wait(None)?.code, 3);
    let state = fresh.state(None)?;
    assert_eq!(state.status, Status::Stopped);
    assert_eq!(state.exit.map(|e| e.code), Some(3));
    let entries = log_entries(&bundle)?;
    let lines: Vec<(String, String)> = entries
        .iter()
        .map(|e| {
            (
                e["stream"].as_str().unwrap_or("").to_string(),
                e["log"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert!(
        lines.contains(&("stdout".into(), "out\n".into())),
        "{lines:?}"
    );
    assert!(
        lines.contains(&("stderr".into(), "err\n".into())),
        "{lines:?}"
    );
    assert!(
        lines.contains(&("stdout".into(), "got hi\n".into())),
        "{lines:?}"
    );
    assert!(entries
        .iter()
        .all(|e| e["time"].as_str().is_some_and(|t| t.ends_with('Z'))));
    fresh.delete(false)?;
    wait_until(|| !shim.shim_alive())?;
    assert!(!shim.socket.exists(), "the shim left its socket behind");
    Ok(())
}

fn exec_attach_and_kill(runtime: Runtime) -> Result<()> {
    require_root();
    let container = runtime.container("shim-exec");
    let config = base_config(&["sleep", "1000"]);
    let bundle = Bundle::busybox(&config)?;
    let shim = Shim::launch(&runtime, container.id(), &bundle, false)?;
    let client = &shim.client;
    client.start()?;
    let mut process = config["process"].clone();
    process["args"] = serde_json::json!(["sh", "-c", "echo exec-out; echo exec-err >&2; exit 5"]);
    client.exec("e1", process.clone(), false)?;
    let attach = client.attach(Some("e1".into()), false)?;
    client.exec_start("e1")?;
    let (out, err, code) = drain(attach)?;
    assert_eq!(
        (out.as_str(), err.as_str(), code),
        ("exec-out\n", "exec-err\n", Some(5))
    );
    assert_eq!(client.wait(Some("e1".into()))?.code, 5);
    assert_eq!(client.state(Some("e1".into()))?.status, Status::Stopped);

    process["args"] = serde_json::json!(["cat"]);
    client.exec("e2", process, true)?;
    let attach = client.attach(Some("e2".into()), true)?;
    let mut stdin = attach.stdin()?;
    client.exec_start("e2")?;
    stdin.write(b"ping\n")?;
    stdin.close()?;
    let (out, _, code) = drain(attach)?;
    assert_eq!((out.as_str(), code), ("ping\n", Some(0)));

    let missing = client.state(Some("nope".into())).expect_err("unknown exec");
    assert_eq!(missing.kind(), berth_shim::protocol::ErrorKind::NotFound);
    assert_eq!(client.state(None)?.status, Status::Running);
    client.kill(None, libc::SIGKILL, false)?;
    assert_eq!(client.wait(None)?.code, 137);
    client.delete(false)?;
    Ok(())
}

fn tty_through_console_socket(runtime: Runtime) -> Result<()> {
    require_root();
    let container = runtime.container("shim-tty");
    let mut config = base_config(&[
        "sh",
        "-c",
        "test -t 0 && test -t 1 && echo is-a-tty; stty size; exit 4",
    ]);
    config["process"]["terminal"] = Value::Bool(true);
    let bundle = Bundle::busybox(&config)?;
    let shim = Shim::launch(&runtime, container.id(), &bundle, false)?;
    shim.client.resize(None, 33, 101)?;
    let attach = shim.client.attach(None, false)?;
    shim.client.start()?;
    let (out, _, code) = drain(attach)?;
    assert!(out.contains("is-a-tty"), "{out:?}");
    assert!(out.contains("33 101"), "{out:?}");
    assert_eq!(code, Some(4));
    let logged: String = log_entries(&bundle)?
        .iter()
        .map(|e| e["log"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(logged.contains("is-a-tty"), "{logged:?}");
    shim.client.delete(false)?;
    Ok(())
}

fn exit_while_nobody_listens_is_kept(runtime: Runtime) -> Result<()> {
    require_root();
    let container = runtime.container("shim-alone");
    let bundle = Bundle::busybox(&base_config(&["sh", "-c", "echo bye; exit 9"]))?;
    let mut shim = Shim::launch(&runtime, container.id(), &bundle, false)?;
    shim.client.start()?;
    shim.kill_launcher()?;
    // Nobody is connected while the container exits; the shim records the exit durably.
    let record = berth_shim::supervisor::exit_record_path(&shim.socket);
    wait_until(|| record.exists())?;
    let recorded: Value = serde_json::from_slice(&std::fs::read(&record)?)?;
    assert_eq!(recorded["code"], 9);
    let (fresh, _) = Client::connect(&shim.socket)?;
    let state = fresh.state(None)?;
    assert_eq!(state.status, Status::Stopped);
    assert_eq!(state.exit.map(|e| e.code), Some(9));
    assert_eq!(fresh.wait(None)?.code, 9);
    let logged: Vec<String> = log_entries(&bundle)?
        .iter()
        .map(|e| e["log"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(logged, vec!["bye\n".to_string()]);
    let attach = fresh.attach(None, false)?;
    assert_eq!(
        drain(attach)?.2,
        Some(9),
        "attaching to an exited process reports its exit"
    );
    fresh.delete(false)?;
    wait_until(|| !shim.socket.exists())?;
    Ok(())
}

#[test]
fn shim_keeps_exit_that_happened_while_nobody_listened_with_berth_runtime() -> Result<()> {
    exit_while_nobody_listens_is_kept(Runtime::berth())
}

#[test]
fn shim_keeps_exit_that_happened_while_nobody_listened_with_runc() -> Result<()> {
    exit_while_nobody_listens_is_kept(Runtime::runc())
}

#[test]
fn shim_lifecycle_survives_launcher_death_with_berth_runtime() -> Result<()> {
    lifecycle_survives_launcher_death(Runtime::berth())
}

#[test]
fn shim_lifecycle_survives_launcher_death_with_runc() -> Result<()> {
    lifecycle_survives_launcher_death(Runtime::runc())
}

#[test]
fn shim_exec_attach_and_kill_with_berth_runtime() -> Result<()> {
    exec_attach_and_kill(Runtime::berth())
}

#[test]
fn shim_exec_attach_and_kill_with_runc() -> Result<()> {
    exec_attach_and_kill(Runtime::runc())
}

#[test]
fn shim_tty_through_console_socket_with_berth_runtime() -> Result<()> {
    tty_through_console_socket(Runtime::berth())
}

#[test]
fn shim_tty_through_console_socket_with_runc() -> Result<()> {
    tty_through_console_socket(Runtime::runc())
}
