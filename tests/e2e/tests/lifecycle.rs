//! Lifecycle as runtime-spec and runc define it: states, exit codes, exec, pause/resume, ps,
//! list and duplicate ids, each checked by what `state` and the container really report.

use std::process::Stdio;

use anyhow::{ensure, Context, Result};
use berth_e2e::runtime::run_bounded;
use berth_e2e::spec::base_config;
use berth_e2e::{host, Bundle, Runtime};
use serde_json::Value;

fn sleeper() -> Result<Bundle> {
    Bundle::busybox(&base_config(&["sleep", "1000"]))
}

#[test]
fn create_start_kill_delete_walk_the_spec_states() -> Result<()> {
    let rt = Runtime::subject();
    let bundle = sleeper()?;
    let c = rt.container("states");
    c.create(&bundle)?.success()?;
    let state = c.state()?;
    ensure!(state["status"] == "created", "after create: {state}");
    ensure!(state["id"] == c.id(), "state id: {state}");
    ensure!(
        state["pid"].as_i64().unwrap_or(0) > 0,
        "created pid: {state}"
    );
    let bundle_path = bundle.path().to_string_lossy();
    ensure!(state["bundle"] == *bundle_path, "state bundle: {state}");
    ensure!(state["ociVersion"].is_string(), "state ociVersion: {state}");
    ensure!(
        rt.root().join(c.id()).is_dir(),
        "state dir under --root after create"
    );

    c.op("start", &[], &[])?.success()?;
    c.wait_for_status("running")?;
    c.op("kill", &[], &["KILL"])?.success()?;
    c.wait_for_status("stopped")?;
    c.op("delete", &[], &[])?.success()?;

    let after = c.op("state", &[], &[])?;
    ensure!(after.code() != 0, "state after delete must fail: {after}");
    ensure!(
        !rt.root().join(c.id()).exists(),
        "state dir left after delete"
    );
    let left = host::leftovers(c.id());
    ensure!(left.is_empty(), "left behind after delete: {left:?}");
    Ok(())
}

#[test]
fn run_returns_the_container_exit_code() -> Result<()> {
    let rt = Runtime::subject();
    let bundle = Bundle::busybox(&base_config(&[
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]))?;
    let c = rt.container("exit3");
    let ran = c.run(&bundle)?;
    ensure!(ran.code() == 3, "exit code: {ran}");
    ensure!(ran.stdout == "out\n", "stdout: {ran}");
    ensure!(ran.stderr.contains("err\n"), "stderr: {ran}");
    ensure!(
        host::leftovers(c.id()).is_empty(),
        "run leaves nothing after exit"
    );
    ensure!(!rt.root().join(c.id()).exists(), "run removes its state");
    Ok(())
}

#[test]
fn run_of_a_killed_container_exits_137() -> Result<()> {
    let rt = Runtime::subject();
    let bundle = sleeper()?;
    let c = rt.container("killed");
    let mut cmd = rt.command();
    cmd.arg("run")
        .arg("--bundle")
        .arg(bundle.path())
        .arg(c.id());
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().context("spawning run")?;
    let waited = (|| -> Result<i32> {
        c.wait_until_exists()?;
        c.wait_for_status("running")?;
        c.op("kill", &[], &["KILL"])?.success()?;
        let status = child.wait()?;
        Ok(status.code().unwrap_or(-1))
    })();
    if waited.is_err() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let code = waited?;
    ensure!(code == 137, "run exit code after SIGKILL: {code}");
    Ok(())
}

#[test]
fn kill_accepts_signal_names_and_numbers() -> Result<()> {
    let rt = Runtime::subject();
    // pid 1 ignores signals it has no handler for: signal only once the trap is installed.
    let script = "trap 'exit 0' USR1; touch /tmp/ready; while true; do sleep 0.05; done";
    let bundle = Bundle::busybox(&base_config(&["sh", "-c", script]))?;
    let ready = bundle.rootfs().join("tmp/ready");
    for signal in ["USR1", "SIGUSR1", "10"] {
        let _ = std::fs::remove_file(&ready);
        let c = rt.container("signal");
        c.run_detached(&bundle, &[])?.success()?;
        let deadline = std::time::Instant::now() + berth_e2e::runtime::COMMAND_TIMEOUT;
        while !ready.exists() {
            ensure!(
                std::time::Instant::now() < deadline,
                "the trap was never installed"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        c.op("kill", &[], &[signal])?.success()?;
        c.wait_for_status("stopped")?;
    }
    Ok(())
}

#[test]
fn exec_returns_exit_code_and_output() -> Result<()> {
    let rt = Runtime::subject();
    let bundle = sleeper()?;
    let c = rt.container("exec");
    c.run_detached(&bundle, &[])?.success()?;
    let ran = c.op(
        "exec",
        &[],
        &["sh", "-c", "echo hello; echo oops >&2; exit 5"],
    )?;
    ensure!(ran.code() == 5, "exec exit code: {ran}");
    ensure!(ran.stdout == "hello\n", "exec stdout: {ran}");
    ensure!(ran.stderr.contains("oops\n"), "exec stderr: {ran}");
    let env = c.op(
        "exec",
        &["--env", "E2E=yes", "--cwd", "/tmp"],
        &["sh", "-c", "echo $E2E $PWD"],
    )?;
    ensure!(env.success()?.stdout == "yes /tmp\n", "exec --env/--cwd");
    let user = c
        .op("exec", &["--user", "1000:1000"], &["id", "-u"])?
        .success()?;
    ensure!(user.stdout == "1000\n", "exec --user: {user}");
    Ok(())
}

#[test]
fn exec_of_a_missing_binary_reports_it_like_runc() -> Result<()> {
    let rt = Runtime::subject();
    let bundle = sleeper()?;
    let c = rt.container("nosuch");
    c.run_detached(&bundle, &[])?.success()?;
    let ran = c.op("exec", &[], &["nosuch"])?;
    ensure!(ran.code() != 0, "exec nosuch must fail: {ran}");
    // runc's logrus text format escapes the quotes; the message itself must match.
    let stderr = ran.stderr.replace("\\\"", "\"");
    ensure!(
        stderr.contains(r#"exec: "nosuch": executable file not found in $PATH"#),
        "error text: {ran}"
    );
    ensure!(
        c.status()? == "running",
        "a failed exec leaves the container running"
    );
    Ok(())
}

#[test]
fn pause_and_resume_change_the_state() -> Result<()> {
    let rt = Runtime::subject();
    let bundle = sleeper()?;
    let c = rt.container("pause");
    c.run_detached(&bundle, &[])?.success()?;
    c.op("pause", &[], &[])?.success()?;
    ensure!(c.status()? == "paused", "after pause");
    c.op("resume", &[], &[])?.success()?;
    ensure!(c.status()? == "running", "after resume");
    let ran = c.op("exec", &[], &["true"])?;
    ensure!(ran.code() == 0, "a resumed container runs exec: {ran}");
    Ok(())
}

#[test]
fn ps_json_lists_the_container_processes() -> Result<()> {
    let rt = Runtime::subject();
    let bundle = Bundle::busybox(&base_config(&["sh", "-c", "sleep 1000 & exec sleep 1001"]))?;
    let c = rt.container("ps");
    c.run_detached(&bundle, &[])?.success()?;
    let pid = c.state()?["pid"].as_i64().unwrap_or(0);
    let deadline = std::time::Instant::now() + berth_e2e::runtime::COMMAND_TIMEOUT;
    loop {
        let ran = c.op("ps", &["--format", "json"], &[])?.success()?;
        let pids: Vec<i64> = serde_json::from_str::<Value>(&ran.stdout)
            .with_context(|| format!("ps output is not JSON: {ran}"))?
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_i64).collect())
            .unwrap_or_default();
        ensure!(
            pids.contains(&pid),
            "ps must list the init pid {pid}: {pids:?}"
        );
        if pids.len() == 2 {
            return Ok(());
        }
        ensure!(
            std::time::Instant::now() < deadline,
            "ps never listed 2 pids: {pids:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[test]
fn list_shows_containers_with_their_status() -> Result<()> {
    let rt = Runtime::subject();
    let bundle = sleeper()?;
    let c = rt.container("list");
    c.create(&bundle)?.success()?;
    let ran = rt.cmd(&["list", "--format", "json"])?.success()?;
    let list: Value = serde_json::from_str(&ran.stdout).context("list json")?;
    let entry = list
        .as_array()
        .and_then(|a| a.iter().find(|e| e["id"] == c.id()))
        .with_context(|| format!("{} missing from list: {ran}", c.id()))?;
    ensure!(entry["status"] == "created", "list status: {entry}");
    let table = rt.cmd(&["list"])?.success()?;
    ensure!(table.stdout.starts_with("ID"), "list table header: {table}");
    ensure!(table.stdout.contains(c.id()), "list table row: {table}");
    Ok(())
}

#[test]
fn duplicate_container_id_is_refused_and_the_first_survives() -> Result<()> {
    let rt = Runtime::subject();
    let bundle = sleeper()?;
    let c = rt.container("dup");
    c.create(&bundle)?.success()?;
    let mut cmd = rt.command();
    cmd.arg("create")
        .arg("--bundle")
        .arg(bundle.path())
        .arg(c.id());
    let second = run_bounded(cmd)?;
    ensure!(second.code() != 0, "second create must fail: {second}");
    ensure!(
        second.stderr.contains("already exists"),
        "error text: {second}"
    );
    ensure!(c.status()? == "created", "the first container survives");
    Ok(())
}

#[test]
fn features_reports_hooks_namespaces_and_mount_options() -> Result<()> {
    let rt = Runtime::subject();
    let ran = rt.cmd(&["features"])?.success()?;
    let features: Value = serde_json::from_str(&ran.stdout).context("features json")?;
    let strings = |pointer: &str| -> Vec<String> {
        features
            .pointer(pointer)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    ensure!(
        features["ociVersionMin"].is_string(),
        "ociVersionMin: {features}"
    );
    ensure!(
        features["ociVersionMax"].is_string(),
        "ociVersionMax: {features}"
    );
    let hooks = strings("/hooks");
    for hook in [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ] {
        ensure!(
            hooks.iter().any(|h| h == hook),
            "hook {hook} missing: {hooks:?}"
        );
    }
    let namespaces = strings("/linux/namespaces");
    for ns in ["pid", "network", "ipc", "uts", "mount", "user", "cgroup"] {
        ensure!(
            namespaces.iter().any(|n| n == ns),
            "namespace {ns} missing: {namespaces:?}"
        );
    }
    let options = strings("/mountOptions");
    for option in ["bind", "rbind", "ro", "nosuid", "nodev", "noexec"] {
        ensure!(
            options.iter().any(|o| o == option),
            "mount option {option}: {options:?}"
        );
    }
    Ok(())
}

#[test]
fn events_stats_reports_the_container_cgroup() -> Result<()> {
    let rt = Runtime::subject();
    let mut config = base_config(&["sleep", "1000"]);
    config["linux"]["resources"]["pids"] = serde_json::json!({ "limit": 50 });
    let bundle = Bundle::busybox(&config)?;
    let c = rt.container("events");
    c.run_detached(&bundle, &[])?.success()?;
    let ran = c.op("events", &["--stats"], &[])?.success()?;
    let event: Value = serde_json::from_str(ran.stdout.trim()).context("events json")?;
    ensure!(event["type"] == "stats", "event type: {event}");
    ensure!(event["id"] == c.id(), "event id: {event}");
    ensure!(
        event["data"]["pids"]["current"].as_u64() == Some(1),
        "pids.current: {event}"
    );
    ensure!(
        event["data"]["pids"]["limit"].as_u64() == Some(50),
        "pids.limit: {event}"
    );
    let usage = event["data"]["memory"]["usage"]["usage"]
        .as_u64()
        .unwrap_or(0);
    ensure!(usage > 0, "memory usage: {event}");
    Ok(())
}

#[test]
fn update_changes_the_limits_in_the_container_cgroup() -> Result<()> {
    let rt = Runtime::subject();
    let bundle = sleeper()?;
    let c = rt.container("update");
    c.run_detached(&bundle, &[])?.success()?;
    c.op("update", &["--pids-limit", "42", "--memory", "100M"], &[])?
        .success()?;
    let ran = c.op("events", &["--stats"], &[])?.success()?;
    let event: Value = serde_json::from_str(ran.stdout.trim()).context("events json")?;
    ensure!(
        event["data"]["pids"]["limit"].as_u64() == Some(42),
        "pids limit after update: {event}"
    );
    ensure!(
        event["data"]["memory"]["usage"]["limit"].as_u64() == Some(100 * 1024 * 1024),
        "memory limit after update: {event}"
    );
    Ok(())
}

#[test]
fn hooks_run_in_order_with_the_state_on_stdin() -> Result<()> {
    let rt = Runtime::subject();
    let mut config = base_config(&["sleep", "1000"]);
    let bundle = Bundle::busybox(&config)?;
    let log = bundle.scratch("hooks.log");
    let hook = |name: &str| {
        serde_json::json!({
            "path": "/bin/sh",
            "args": ["sh", "-c", format!("printf '{name} ' >> {0}; cat >> {0}; echo >> {0}", log.display())]
        })
    };
    config["hooks"] = serde_json::json!({
        "createRuntime": [hook("createRuntime")],
        "prestart": [hook("prestart")],
        "poststart": [hook("poststart")],
        "poststop": [hook("poststop")]
    });
    bundle.write_config(&config)?;
    let c = rt.container("hooks");
    c.create(&bundle)?.success()?;
    c.op("start", &[], &[])?.success()?;
    c.op("delete", &["--force"], &[])?.success()?;
    let text = std::fs::read_to_string(&log).context("no hook ran")?;
    let mut order = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let (name, json) = line.split_once(' ').context("hook log line")?;
        let state: Value = serde_json::from_str(json).with_context(|| format!("{name}: {json}"))?;
        ensure!(state["id"] == c.id(), "{name} state id: {state}");
        ensure!(
            state["bundle"] == *bundle.path().to_string_lossy(),
            "{name}: {state}"
        );
        order.push((
            name.to_string(),
            state["status"].as_str().unwrap_or("").to_string(),
        ));
    }
    let names: Vec<&str> = order.iter().map(|(n, _)| n.as_str()).collect();
    // runc runs the (deprecated) prestart hooks just before createRuntime, both at create.
    ensure!(
        names == ["prestart", "createRuntime", "poststart", "poststop"],
        "hook order: {order:?}"
    );
    ensure!(
        order[0].1 == "creating" && order[1].1 == "creating",
        "create-time status: {order:?}"
    );
    Ok(())
}
