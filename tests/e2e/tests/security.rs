//! Regression tests for known runtime attack classes: leaked fds and cwd (CVE-2024-21626),
//! overwriting the runtime binary through /proc/<pid>/exe (CVE-2019-5736), and symlinks in
//! mount destinations that point out of the rootfs.

use anyhow::{ensure, Context, Result};
use berth_e2e::probe::{observe, Observation};
use berth_e2e::spec::{add_mount, base_config};
use berth_e2e::{host, Bundle, Runtime};
use serde_json::json;

fn only_stdio(obs: &Observation) -> Result<()> {
    let fds = obs.with_prefix("fd ");
    let numbers: Vec<&str> = fds.iter().filter_map(|l| l.split(' ').nth(1)).collect();
    ensure!(
        numbers == ["0", "1", "2"],
        "fds beyond stdio are open: {fds:?}"
    );
    Ok(())
}

#[test]
fn container_process_has_only_stdio_and_its_cwd_inside_the_root() -> Result<()> {
    let rt = Runtime::subject();
    let obs = observe(&rt, &base_config(&[]), &[])?;
    only_stdio(&obs)?;
    ensure!(
        obs.has("cwd inside-root yes"),
        "cwd: {:?}",
        obs.with_prefix("cwd")
    );
    Ok(())
}

#[test]
fn exec_process_has_only_stdio_and_its_cwd_inside_the_root() -> Result<()> {
    let rt = Runtime::subject();
    let bundle = Bundle::busybox(&base_config(&["sleep", "1000"]))?;
    let c = rt.container("execfds");
    c.run_detached(&bundle, &[])?.success()?;
    let ran = c.op("exec", &["--cwd", "/tmp"], &["/probe"])?.success()?;
    let obs = Observation::parse(&ran.stdout, c.id(), bundle.path());
    only_stdio(&obs)?;
    ensure!(
        obs.has("cwd path /tmp"),
        "cwd: {:?}",
        obs.with_prefix("cwd")
    );
    ensure!(
        obs.has("cwd inside-root yes"),
        "cwd: {:?}",
        obs.with_prefix("cwd")
    );
    Ok(())
}

#[test]
fn cwd_through_a_leaked_fd_never_escapes_the_root() -> Result<()> {
    // CVE-2024-21626: runc leaked an fd to the host's /sys/fs/cgroup into init; a cwd of
    // /proc/self/fd/N then left the container. Either the runtime refuses, or the cwd it gives
    // the process is inside the root.
    let rt = Runtime::subject();
    for fd in 3..=9 {
        let mut config = base_config(&["/probe"]);
        config["process"]["cwd"] = json!(format!("/proc/self/fd/{fd}"));
        let bundle = Bundle::busybox(&config)?;
        let c = rt.container("leakcwd");
        let ran = c.run(&bundle)?;
        if ran.code() == 0 {
            let obs = Observation::parse(&ran.stdout, c.id(), bundle.path());
            ensure!(
                obs.has("cwd inside-root yes"),
                "cwd /proc/self/fd/{fd} escaped: {:?}",
                obs.with_prefix("cwd")
            );
        }
        ensure!(c.leftovers().is_empty(), "left behind: {:?}", c.leftovers());
    }
    Ok(())
}

#[test]
fn exec_never_lets_the_container_open_the_runtime_binary_for_writing() -> Result<()> {
    // CVE-2019-5736: while `exec` joins the container, the container scans every /proc/*/exe
    // and tries to open it for writing (directly, and by reopening an O_PATH handle).
    let rt = Runtime::subject();
    let before = std::fs::read(rt.binary()).context("reading the runtime binary")?;
    let config = base_config(&["/probe", "--only-actions", "--scan-exe-until", "/tmp/stop"]);
    let bundle = Bundle::busybox(&config)?;
    let c = rt.container("exe");
    c.run_detached(&bundle, &[])?.success()?;
    for _ in 0..30 {
        let ran = c.op("exec", &[], &["true"])?;
        ensure!(ran.code() == 0, "exec during the scan: {ran}");
    }
    // Stop the scan from the host: an exec'd `touch` could be killed when init exits first.
    std::fs::write(bundle.rootfs().join("tmp/stop"), "")?;
    c.wait_for_status("stopped")?;
    let (stdout, stderr) = c.output(&bundle);
    ensure!(
        stdout.contains("exe-scan done"),
        "the scan did not finish: {stdout}{stderr}"
    );
    eprintln!("executables the container saw during exec:\n{stdout}");
    let opened: Vec<&str> = stdout.lines().filter(|l| l.contains("opened")).collect();
    ensure!(
        opened.is_empty(),
        "the container opened an executable for writing: {opened:?}"
    );
    let after = std::fs::read(rt.binary()).context("reading the runtime binary")?;
    ensure!(before == after, "the runtime binary changed on the host");
    Ok(())
}

fn escape_name(tag: &str) -> String {
    format!("berth-e2e-escape-{tag}-{}", std::process::id())
}

#[test]
fn symlinked_mount_destination_is_resolved_inside_the_rootfs() -> Result<()> {
    let rt = Runtime::subject();
    for (kind, target_prefix) in [
        ("tmpfs", "/../../../../tmp/"),
        ("bind", "../../../../../tmp/"),
    ] {
        let name = escape_name(kind);
        let host_target = std::path::Path::new("/tmp").join(&name);
        ensure!(
            !host_target.exists(),
            "{} exists before the test",
            host_target.display()
        );
        let mut config = base_config(&["/probe"]);
        let mount = if kind == "tmpfs" {
            json!({ "destination": "/mnt", "type": "tmpfs", "source": "tmpfs",
                    "options": ["nosuid", "size=1m"] })
        } else {
            json!({ "destination": "/mnt", "type": "bind", "source": "/etc",
                    "options": ["bind", "ro"] })
        };
        add_mount(&mut config, mount);
        let bundle = Bundle::busybox(&config)?;
        std::fs::remove_dir(bundle.rootfs().join("mnt"))?;
        std::os::unix::fs::symlink(
            format!("{target_prefix}{name}"),
            bundle.rootfs().join("mnt"),
        )?;
        let c = rt.container("symlink");
        let ran = c.run(&bundle)?;
        let escaped = host_target.exists();
        if escaped {
            host::detach_mounts_under(&host_target);
            let _ = std::fs::remove_dir(&host_target);
        }
        ensure!(
            !escaped,
            "{kind} mount through /mnt created {}",
            host_target.display()
        );
        ensure!(
            host::mounts_mentioning(&name).is_empty(),
            "a host mount names {name}"
        );
        // runc resolves the symlink inside the rootfs and mounts there; so must we.
        ensure!(ran.code() == 0, "{kind} mount through a symlink: {ran}");
        let obs = Observation::parse(&ran.stdout, c.id(), bundle.path());
        let inside = obs.with_prefix(&format!("mount /tmp/{name} "));
        ensure!(
            inside.len() == 1,
            "the {kind} mount must land at /tmp/{name} inside: {ran}"
        );
    }
    Ok(())
}

#[test]
fn preserve_fds_passes_exactly_the_requested_fds() -> Result<()> {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let rt = Runtime::subject();
    let bundle = Bundle::busybox(&base_config(&["/probe"]))?;
    let kept = std::fs::File::create(bundle.scratch("preserved"))?;
    let raw = kept.as_raw_fd();
    let c = rt.container("preserve");
    let mut cmd = c.run_command(&bundle, &["--preserve-fds", "1"]);
    // SAFETY: only async-signal-safe dup2/fcntl calls between fork and exec; fds 3 and 4 both
    // refer to `kept`, which outlives the spawn. When `kept` already is fd 3 or 4, dup2 would
    // be a no-op that leaves close-on-exec set, so that flag is cleared instead.
    unsafe {
        cmd.pre_exec(move || {
            for target in [3, 4] {
                let ok = if raw == target {
                    libc::fcntl(target, libc::F_SETFD, 0) >= 0
                } else {
                    libc::dup2(raw, target) >= 0
                };
                if !ok {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let ran = berth_e2e::runtime::run_bounded(cmd)?.success()?;
    let obs = Observation::parse(&ran.stdout, c.id(), bundle.path());
    let fds = obs.with_prefix("fd ");
    ensure!(
        fds == [
            "fd 0 stdio",
            "fd 1 stdio",
            "fd 2 stdio",
            "fd 3 <bundle>/preserved"
        ],
        "with --preserve-fds 1 exactly fd 3 passes: {fds:?}"
    );
    drop(kept);
    Ok(())
}

#[test]
fn preserve_fds_never_hands_over_the_runtime_s_own_fds() -> Result<()> {
    // With --preserve-fds 1 but no fd 3 from the caller, runc 1.1.5 passes its own handle on
    // the host's /sys/fs/cgroup (the CVE-2024-21626 leak, by another door). Nothing of the
    // runtime may reach the container.
    use std::os::unix::process::CommandExt;
    let rt = Runtime::subject();
    let bundle = Bundle::busybox(&base_config(&["/probe"]))?;
    let c = rt.container("preserve-none");
    let mut cmd = c.run_command(&bundle, &["--preserve-fds", "1"]);
    // SAFETY: close(2) is async-signal-safe; it only makes sure fd 3 is free at exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::close(3);
            Ok(())
        });
    }
    let ran = berth_e2e::runtime::run_bounded(cmd)?.success()?;
    let obs = Observation::parse(&ran.stdout, c.id(), bundle.path());
    only_stdio(&obs)?;
    Ok(())
}
