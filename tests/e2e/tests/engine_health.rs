//! Healthchecks through the real docker CLI (and `berth run --health-on-unhealthy`) against
//! one private berthd: a probe that flips with a file touched and removed through exec,
//! `State.Health` (status, failing streak, log), `(healthy)` in ps and the `health` filter,
//! `health_status` and exec events, the probe timeout, probes resuming after a SIGKILL of
//! berthd, and berth's on-unhealthy actions (restart, stop). One berthd for the file: the
//! scenarios run one after the other inside a single test.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_e2e::berthd::bin_dir;
use berth_e2e::daemon::{run_command, Berthd, Daemon};

/// Hang guard for polling loops (not a performance assertion).
const POLL_LIMIT: Duration = Duration::from_secs(60);

fn inspect(berthd: &Berthd, template: &str, id: &str) -> String {
    berthd.ok(&["inspect", "-f", template, id])
}

/// Polls `docker inspect -f TEMPLATE` until `accept` likes the output; returns it.
fn wait_inspect(
    berthd: &Berthd,
    template: &str,
    id: &str,
    accept: impl Fn(&str) -> bool,
) -> String {
    let start = Instant::now();
    loop {
        let got = inspect(berthd, template, id);
        if accept(&got) {
            return got;
        }
        assert!(
            start.elapsed() < POLL_LIMIT,
            "{template} of {id} stayed {got:?}; berthd log:\n{}",
            berthd.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_health(berthd: &Berthd, id: &str, want: &str) {
    wait_inspect(berthd, "{{.State.Health.Status}}", id, |got| got == want);
}

/// `berth -H <berthd> <args>`.
fn berth(berthd: &Berthd, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(bin_dir().join("berth"));
    cmd.env_remove("DOCKER_HOST")
        .env_remove("BERTH_HOST")
        .env("DOCKER_CONFIG", berthd.cli_config_dir())
        .arg("-H")
        .arg(berthd.host())
        .args(args)
        .stdin(Stdio::null());
    run_command(&mut cmd)
}

#[test]
fn healthchecks_flip_report_survive_restarts_and_act_when_unhealthy() {
    let mut berthd = Berthd::start();
    berthd.import_busybox();
    flipping_probe(&berthd);
    probe_timeout_kills_the_probe(&berthd);
    probes_resume_after_berthd_is_killed(&mut berthd);
    on_unhealthy_actions(&berthd);
}

fn flipping_probe(berthd: &Berthd) {
    let id = berthd.ok(&[
        "run",
        "-d",
        "--name",
        "flip",
        "--health-cmd",
        "cat /tmp/ok",
        "--health-interval",
        "200ms",
        "--health-retries",
        "2",
        "busybox",
        "sh",
        "-c",
        "echo up > /tmp/ok; exec sleep 1000",
    ]);
    wait_health(berthd, &id, "healthy");
    let ps = berthd.ok(&["ps", "--filter", "name=flip", "--format", "{{.Status}}"]);
    assert!(ps.starts_with("Up ") && ps.ends_with(" (healthy)"), "{ps}");
    assert_eq!(
        berthd.ok(&["ps", "-q", "--no-trunc", "--filter", "health=healthy"]),
        id
    );
    assert_eq!(berthd.ok(&["ps", "-q", "--filter", "health=unhealthy"]), "");
    let last_output = inspect(berthd, "{{(index .State.Health.Log 0).Output}}", &id);
    assert_eq!(last_output, "up");

    berthd.ok(&["exec", "flip", "rm", "/tmp/ok"]);
    wait_health(berthd, &id, "unhealthy");
    let streak: u32 = inspect(berthd, "{{.State.Health.FailingStreak}}", &id)
        .parse()
        .expect("a number");
    assert!(streak >= 2, "streak {streak}");
    let ps = berthd.ok(&[
        "ps",
        "--filter",
        "health=unhealthy",
        "--format",
        "{{.Names}} {{.Status}}",
    ]);
    assert!(
        ps.starts_with("flip Up ") && ps.ends_with(" (unhealthy)"),
        "{ps}"
    );
    let entries = wait_inspect(berthd, "{{len .State.Health.Log}}", &id, |n| n == "5");
    assert_eq!(entries, "5", "the log keeps the last five results");
    let codes = inspect(
        berthd,
        "{{range .State.Health.Log}}{{.ExitCode}} {{end}}",
        &id,
    );
    assert!(codes.trim_end().ends_with('1'), "{codes}");

    berthd.ok(&["exec", "flip", "touch", "/tmp/ok"]);
    wait_health(berthd, &id, "healthy");
    assert_eq!(inspect(berthd, "{{.State.Health.FailingStreak}}", &id), "0");

    let until = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
        + 1)
    .to_string();
    let events = berthd.ok(&[
        "events",
        "--since",
        "0",
        "--until",
        &until,
        "--filter",
        "container=flip",
        "--format",
        "{{.Action}}",
    ]);
    let health: Vec<&str> = events
        .lines()
        .filter(|l| l.starts_with("health_status"))
        .collect();
    assert_eq!(
        health,
        [
            "health_status: healthy",
            "health_status: unhealthy",
            "health_status: healthy"
        ],
        "{events}"
    );
    assert!(
        events
            .lines()
            .any(|l| l == "exec_create: /bin/sh -c cat /tmp/ok"),
        "{events}"
    );
    assert!(
        events
            .lines()
            .any(|l| l == "exec_start: /bin/sh -c cat /tmp/ok"),
        "{events}"
    );
    assert!(events.lines().any(|l| l == "exec_die"), "{events}");

    // A stopped container is no longer probed: its log stops growing.
    berthd.ok(&["stop", "-t", "0", "flip"]);
    let log = inspect(berthd, "{{range .State.Health.Log}}{{.Start}} {{end}}", &id);
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(
        inspect(berthd, "{{range .State.Health.Log}}{{.Start}} {{end}}", &id),
        log
    );
    berthd.ok(&["rm", "flip"]);
}

fn probe_timeout_kills_the_probe(berthd: &Berthd) {
    let id = berthd.ok(&[
        "run",
        "-d",
        "--name",
        "slow",
        "--health-cmd",
        "echo started; sleep 77",
        "--health-interval",
        "100ms",
        "--health-timeout",
        "300ms",
        "--health-retries",
        "1",
        "busybox",
        "sleep",
        "1000",
    ]);
    wait_health(berthd, &id, "unhealthy");
    let entry = inspect(
        berthd,
        "{{with index .State.Health.Log 0}}{{.ExitCode}}|{{.Output}}{{end}}",
        &id,
    );
    // (The CLI's output is trimmed: the probe's `started\n` ends the text.)
    assert_eq!(entry, "-1|Health check exceeded timeout (300ms): started");
    assert_eq!(inspect(berthd, "{{.State.Status}}", &id), "running");
    // Killed probes do not pile up: at most the current probe's `sleep 77` runs.
    let sleepers = || {
        berthd
            .ok(&["top", "slow"])
            .lines()
            .filter(|l| l.contains("sleep 77"))
            .count()
    };
    assert!(sleepers() <= 1, "{}", berthd.ok(&["top", "slow"]));
    berthd.ok(&["rm", "-f", "slow"]);
}

fn probes_resume_after_berthd_is_killed(berthd: &mut Berthd) {
    let id = berthd.ok(&[
        "run",
        "-d",
        "--name",
        "live",
        "--health-cmd",
        "test -f /tmp/ok",
        "--health-interval",
        "200ms",
        "--health-retries",
        "1",
        "busybox",
        "sh",
        "-c",
        "touch /tmp/ok; exec sleep 1000",
    ]);
    wait_health(berthd, &id, "healthy");
    berthd.kill9();
    berthd.restart();
    assert_eq!(inspect(berthd, "{{.State.Health.Status}}", &id), "healthy");
    berthd.ok(&["exec", "live", "rm", "/tmp/ok"]);
    wait_health(berthd, &id, "unhealthy");
    berthd.ok(&["rm", "-f", "live"]);
}

fn on_unhealthy_actions(berthd: &Berthd) {
    // restart through the docker CLI's --label: each unhealthy turn restarts the container
    // and counts as a restart; the fresh run starts `starting` again.
    let restarted = berthd.ok(&[
        "run",
        "-d",
        "--name",
        "restarts",
        "--label",
        "berth.health.on-unhealthy=restart",
        "--health-cmd",
        "test -f /tmp/ok",
        "--health-interval",
        "200ms",
        "--health-retries",
        "1",
        "busybox",
        "sleep",
        "1000",
    ]);
    wait_inspect(berthd, "{{.RestartCount}}", &restarted, |n| {
        n.parse::<u32>().is_ok_and(|n| n >= 1)
    });
    wait_inspect(berthd, "{{.State.Status}}", &restarted, |s| s == "running");
    berthd.ok(&["rm", "-f", "restarts"]);

    // stop through berth's own flag: the unhealthy container is stopped and stays stopped.
    let out = berth(
        berthd,
        &[
            "run",
            "-d",
            "--name",
            "stops",
            "--health-on-unhealthy",
            "stop",
            "--health-cmd",
            "false",
            "--health-interval",
            "200ms",
            "--health-retries",
            "1",
            "busybox",
            "sleep",
            "1000",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(
        inspect(
            berthd,
            "{{index .Config.Labels \"berth.health.on-unhealthy\"}}",
            &id
        ),
        "stop"
    );
    wait_inspect(berthd, "{{.State.Status}}", &id, |s| s == "exited");
    assert_eq!(
        inspect(berthd, "{{.State.Health.Status}}", &id),
        "unhealthy"
    );
    assert_eq!(inspect(berthd, "{{.RestartCount}}", &id), "0");

    let bad = berthd.docker(&[
        "create",
        "--label",
        "berth.health.on-unhealthy=reboot",
        "busybox",
        "true",
    ]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr)
            .contains("invalid berth.health.on-unhealthy label value \"reboot\""),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    berthd.ok(&["rm", "-f", "stops"]);
}
