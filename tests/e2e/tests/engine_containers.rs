//! The container lifecycle through the real docker CLI against a private berthd: run --rm,
//! run -d + ps + stop + rm, exit codes, name conflicts, wait, restart policies, and live
//! restore across a SIGKILL of berthd. Each test owns its berthd; dropping it removes every
//! container process, shim, mount and cgroup it made, even when the test fails.

use std::time::{Duration, Instant};

use berth_e2e::daemon::{Berthd, Daemon};

/// Hang guard for polling loops (not a performance assertion).
const POLL_LIMIT: Duration = Duration::from_secs(90);

fn daemon() -> Berthd {
    let berthd = Berthd::start();
    berthd.import_busybox();
    berthd
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `docker inspect -f TEMPLATE ID`.
fn inspect(berthd: &Berthd, template: &str, id: &str) -> String {
    berthd.ok(&["inspect", "-f", template, id])
}

/// Polls `docker inspect -f TEMPLATE` until it prints `want` (hang guard: [`POLL_LIMIT`]).
fn wait_for_inspect(berthd: &Berthd, template: &str, id: &str, want: &str) {
    let start = Instant::now();
    loop {
        let got = inspect(berthd, template, id);
        if got == want {
            return;
        }
        assert!(
            start.elapsed() < POLL_LIMIT,
            "{template} of {id} stayed {got:?}, expected {want:?}; berthd log:\n{}",
            berthd.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn run_rm_prints_the_output_and_removes_the_container() {
    let berthd = daemon();
    assert_eq!(berthd.ok(&["run", "--rm", "busybox", "echo", "hi"]), "hi");
    assert_eq!(berthd.ok(&["ps", "-aq"]), "", "--rm removed the container");
    assert!(
        berthd.container_ids().is_empty(),
        "no container directory or shim socket is left: {:?}",
        berthd.container_ids()
    );
}

#[test]
fn run_detached_then_ps_stop_and_rm() {
    let berthd = daemon();
    let id = berthd.ok(&["run", "-d", "--name", "web", "busybox", "sleep", "1000"]);
    assert_eq!(id.len(), 64, "{id}");
    let ps = berthd.ok(&["ps", "--format", "{{.Names}} {{.Status}} {{.Command}}"]);
    assert!(ps.starts_with("web Up "), "{ps}");
    assert!(ps.ends_with("\"sleep 1000\""), "{ps}");
    assert_eq!(inspect(&berthd, "{{.State.Status}}", "web"), "running");
    let pid: i32 = inspect(&berthd, "{{.State.Pid}}", "web")
        .parse()
        .expect("a pid");
    assert!(pid > 0 && std::path::Path::new(&format!("/proc/{pid}")).exists());

    // sleep as PID 1 ignores SIGTERM: stop escalates to SIGKILL after the timeout.
    assert_eq!(berthd.ok(&["stop", "-t", "1", "web"]), "web");
    assert_eq!(inspect(&berthd, "{{.State.Status}}", "web"), "exited");
    assert_eq!(inspect(&berthd, "{{.State.ExitCode}}", "web"), "137");
    assert_eq!(berthd.ok(&["ps", "-q"]), "", "not running any more");
    let all = berthd.ok(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
    assert!(all.starts_with("web Exited (137) "), "{all}");

    // Stopping a stopped container is fine (304 for the API, success for the CLI).
    berthd.ok(&["stop", "web"]);
    assert_eq!(berthd.ok(&["rm", "web"]), "web");
    assert_eq!(berthd.ok(&["ps", "-aq"]), "");
    let out = berthd.docker(&["inspect", "web"]);
    assert!(!out.status.success());
    assert!(
        stderr_of(&out).contains("No such object: web")
            || stderr_of(&out).contains("No such container: web"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn exit_codes_reach_the_cli_and_missing_commands_give_127() {
    let berthd = daemon();
    let out = berthd.docker(&["run", "--rm", "busybox", "sh", "-c", "exit 3"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr_of(&out));

    let out = berthd.docker(&["run", "--name", "bad", "busybox", "nosuchcommand"]);
    assert_eq!(out.status.code(), Some(127), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("nosuchcommand"),
        "the error names the command: {}",
        stderr_of(&out)
    );
    assert_eq!(inspect(&berthd, "{{.State.ExitCode}}", "bad"), "127");
    berthd.ok(&["rm", "bad"]);
}

#[test]
fn a_taken_name_is_a_conflict_with_dockers_text() {
    let berthd = daemon();
    let id = berthd.ok(&["create", "--name", "dup", "busybox", "true"]);
    let out = berthd.docker(&["create", "--name", "dup", "busybox", "true"]);
    assert!(!out.status.success());
    let expected = format!(
        "Conflict. The container name \"/dup\" is already in use by container \"{id}\". \
         You have to remove (or rename) that container to be able to reuse that name."
    );
    assert!(stderr_of(&out).contains(&expected), "{}", stderr_of(&out));
    assert_eq!(inspect(&berthd, "{{.State.Status}}", "dup"), "created");
    // A short unique prefix finds the container too.
    assert_eq!(inspect(&berthd, "{{.Name}}", &id[..6]), "/dup");
    berthd.ok(&["rename", "dup", "renamed"]);
    assert_eq!(inspect(&berthd, "{{.Name}}", &id), "/renamed");
    berthd.ok(&["create", "--name", "dup", "busybox", "true"]);
    let out = berthd.docker(&["rm", "nosuch"]);
    assert!(
        stderr_of(&out).contains("No such container: nosuch"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn wait_returns_the_exit_code_and_rm_refuses_a_running_container() {
    let berthd = daemon();
    let id = berthd.ok(&["run", "-d", "busybox", "sh", "-c", "sleep 1; exit 5"]);
    let out = berthd.docker(&["rm", &id]);
    assert!(!out.status.success());
    assert!(
        stderr_of(&out)
            .contains("container is running: stop the container before removing or force remove"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(berthd.ok(&["wait", &id]), "5");
    assert_eq!(inspect(&berthd, "{{.State.Status}}", &id), "exited");

    let id = berthd.ok(&["run", "-d", "busybox", "sleep", "1000"]);
    berthd.ok(&["rm", "-f", &id]);
    assert_eq!(berthd.ok(&["ps", "-aq", "--no-trunc"]).lines().count(), 1);
}

#[test]
fn on_failure_2_restarts_twice_then_stays_exited() {
    let berthd = daemon();
    let id = berthd.ok(&[
        "run",
        "-d",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "exit 1",
    ]);
    wait_for_inspect(
        &berthd,
        "{{.RestartCount}} {{.State.Status}}",
        &id,
        "2 exited",
    );
    assert_eq!(inspect(&berthd, "{{.State.ExitCode}}", &id), "1");
    // Stays there: no third restart.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        inspect(&berthd, "{{.RestartCount}} {{.State.Status}}", &id),
        "2 exited"
    );
}

#[test]
fn kill_9_of_berthd_keeps_running_containers_and_records_exits_meanwhile() {
    let mut berthd = daemon();
    let long = berthd.ok(&["run", "-d", "--name", "long", "busybox", "sleep", "1000"]);
    let short = berthd.ok(&[
        "run",
        "-d",
        "--name",
        "short",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 7' TERM; while true; do sleep 1; done",
    ]);
    let long_pid = inspect(&berthd, "{{.State.Pid}}", &long);
    let short_pid: i32 = inspect(&berthd, "{{.State.Pid}}", &short)
        .parse()
        .expect("pid");
    berthd.kill9();
    // The short one exits (its TERM trap exits 7) while berthd is down.
    // SAFETY: kill has no memory preconditions; the pid is the container's init.
    unsafe { libc::kill(short_pid, libc::SIGTERM) };
    let start = Instant::now();
    while std::path::Path::new(&format!("/proc/{short_pid}")).exists() {
        assert!(
            start.elapsed() < POLL_LIMIT,
            "the container process did not exit"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    berthd.restart();
    assert_eq!(inspect(&berthd, "{{.State.Status}}", "long"), "running");
    assert_eq!(inspect(&berthd, "{{.State.Pid}}", "long"), long_pid);
    wait_for_inspect(&berthd, "{{.State.Status}}", "short", "exited");
    assert_eq!(inspect(&berthd, "{{.State.ExitCode}}", "short"), "7");
    assert_eq!(berthd.ok(&["ps", "--format", "{{.Names}}"]), "long");
    berthd.ok(&["stop", "-t", "0", "long"]);
    assert_eq!(inspect(&berthd, "{{.State.ExitCode}}", "long"), "137");
}

/// Docker brings `always` containers back when the daemon starts, even those stopped by
/// hand, and they come back on their networks: the restart waits for the network service
/// (it once ran before the service was attached and could start without a network).
#[test]
fn an_always_container_stopped_by_hand_comes_back_on_its_network_when_berthd_starts() {
    let mut berthd = daemon();
    berthd.ok(&[
        "run",
        "-d",
        "--name",
        "back",
        "--restart",
        "always",
        "busybox",
        "sleep",
        "1000",
    ]);
    let before = inspect(&berthd, "{{.NetworkSettings.IPAddress}}", "back");
    assert!(!before.is_empty(), "no address on the default bridge");
    berthd.ok(&["stop", "-t", "0", "back"]);
    assert_eq!(inspect(&berthd, "{{.State.Status}}", "back"), "exited");
    berthd.restart();
    wait_for_inspect(&berthd, "{{.State.Status}}", "back", "running");
    let after = inspect(&berthd, "{{.NetworkSettings.IPAddress}}", "back");
    assert!(!after.is_empty(), "restarted without an address");
    let eth0 = berthd.ok(&["exec", "back", "ip", "-4", "addr", "show", "eth0"]);
    assert!(
        eth0.contains(&format!("inet {after}/")),
        "eth0 of the restarted container lacks {after}:\n{eth0}"
    );
    berthd.ok(&["rm", "-f", "back"]);
}
