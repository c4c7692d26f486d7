//! docker-py against berthd: tests/e2e/docker_py/compat_checks.py (version, ping, images,
//! run with remove, detached run + logs + stop + remove, exec, NotFound and ImageNotFound)
//! runs against a private dockerd, proving its expectations are Docker's, and against a
//! private berthd. A missing python3 or docker-py fails the test.

use std::path::PathBuf;
use std::process::Command;

use berth_e2e::daemon::{run_command, Berthd, Daemon, Dockerd};

/// The checks berthd passes today, by name; the script's other checks (run with remove,
/// run with a non-zero exit, detached run + logs) wait for berthd's logs route. Add each
/// one here as berthd gains what it needs, until this is all of them.
const BERTHD_CHECKS: &[&str] = &[
    "version",
    "ping",
    "images_list",
    "exec_run_output_and_exit_code",
    "missing_container_raises_not_found",
    "missing_image_raises_image_not_found",
    "run_missing_image_raises_image_not_found",
];

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docker_py/compat_checks.py")
}

/// Runs the script (only `checks`, or all when empty) against `daemon`; returns its report.
fn run_checks(daemon: &dyn Daemon, checks: &[&str]) -> String {
    let mut cmd = daemon.docker_py_command();
    cmd.arg(script()).args(checks);
    let out = run_command(&mut cmd);
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "docker-py checks failed against {}:\n{report}\n{}",
        daemon.name(),
        String::from_utf8_lossy(&out.stderr)
    );
    report
}

fn python_has_docker_py() {
    let out = Command::new("python3")
        .args(["-c", "import docker; print(docker.__version__)"])
        .output()
        .expect("python3 is installed");
    assert!(
        out.status.success(),
        "docker-py is missing (pip install docker): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn docker_py_checks_hold_against_dockerd() {
    python_has_docker_py();
    let dockerd = Dockerd::start();
    dockerd.import_busybox();
    let report = run_checks(&dockerd, &[]);
    assert!(report.lines().all(|l| l.starts_with("ok ")), "{report}");
    assert!(report.lines().count() >= BERTHD_CHECKS.len(), "{report}");
}

#[test]
fn docker_py_checks_pass_against_berthd() {
    python_has_docker_py();
    let berthd = Berthd::start();
    berthd.import_busybox();
    let report = run_checks(&berthd, BERTHD_CHECKS);
    assert_eq!(report.lines().count(), BERTHD_CHECKS.len(), "{report}");
    assert!(report.lines().all(|l| l.starts_with("ok ")), "{report}");
}
