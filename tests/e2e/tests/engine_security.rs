//! Confinement of containers run through the real docker CLI against one private berthd:
//! the default seccomp profile (user namespaces and mounts refused with EPERM, `Seccomp: 2`),
//! `seccomp=unconfined`, `--privileged` and `--cap-add SYS_ADMIN` lifting it as Docker's do,
//! Docker's texts for bad capabilities and sysctls, bad security input (seccomp profiles,
//! capabilities, sysctls, AppArmor/SELinux options) refused at create leaving no container,
//! and memory limits: an OOM kill is reported in State.OOMKilled and as an `oom` event,
//! `docker update --memory` changes the cgroup live. One daemon for the whole file (CI budget); every check runs and the test
//! reports all failures at once.

use std::time::{Duration, Instant};

use berth_e2e::daemon::{Berthd, Daemon};

/// Hang guard for polling loops (not a performance assertion).
const POLL_LIMIT: Duration = Duration::from_secs(60);

type Check = Result<(), String>;

fn output(berthd: &Berthd, args: &[&str]) -> (bool, String, String) {
    let out = berthd.docker(args);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).trim().to_string(),
    )
}

fn expect(condition: bool, what: impl FnOnce() -> String) -> Check {
    if condition {
        Ok(())
    } else {
        Err(what())
    }
}

/// `docker run --rm FLAGS busybox sh -c SCRIPT`: (success, stdout, stderr).
fn run_sh(berthd: &Berthd, flags: &[&str], script: &str) -> (bool, String, String) {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["busybox", "sh", "-c", script]);
    output(berthd, &args)
}

fn seccomp_mode(berthd: &Berthd, flags: &[&str]) -> String {
    let (_, stdout, stderr) = run_sh(berthd, flags, "grep '^Seccomp:' /proc/self/status");
    format!("{stdout}{stderr}")
}

fn default_container_is_filtered(berthd: &Berthd) -> Check {
    let mode = seccomp_mode(berthd, &[]);
    expect(mode.ends_with('2'), || format!("default: {mode:?}"))?;
    let (ok, out, err) = run_sh(berthd, &[], "unshare -U true");
    expect(!ok && err.contains("Operation not permitted"), || {
        format!("unshare -U in a default container: ok={ok} {out} {err}")
    })?;
    // busybox mount words EPERM as Docker's containers show it.
    let (ok, out, err) = run_sh(berthd, &[], "mkdir -p /m && mount -t tmpfs none /m");
    expect(!ok && err.contains("mount: permission denied"), || {
        format!("mount in a default container: ok={ok} {out} {err}")
    })
}

fn unconfined_lets_the_syscall_reach_the_kernel(berthd: &Berthd) -> Check {
    let flags = ["--security-opt", "seccomp=unconfined"];
    let mode = seccomp_mode(berthd, &flags);
    expect(mode.ends_with('0'), || format!("unconfined: {mode:?}"))?;
    // Creating a user namespace needs no capability: only the filter refused it.
    let (ok, out, err) = run_sh(berthd, &flags, "unshare -U true && echo unshared");
    expect(ok && out == "unshared", || {
        format!("unshare -U with seccomp=unconfined: ok={ok} {out} {err}")
    })
}

fn privileged_has_no_filter(berthd: &Berthd) -> Check {
    let mode = seccomp_mode(berthd, &["--privileged"]);
    expect(mode.ends_with('0'), || format!("privileged: {mode:?}"))?;
    let (ok, out, err) = run_sh(
        berthd,
        &["--privileged"],
        "mkdir -p /m && mount -t tmpfs none /m && echo mounted",
    );
    expect(ok && out == "mounted", || {
        format!("mount when privileged: ok={ok} {out} {err}")
    })
}

fn cap_add_sys_admin_allows_mount(berthd: &Berthd) -> Check {
    let flags = ["--cap-add", "SYS_ADMIN"];
    let mode = seccomp_mode(berthd, &flags);
    expect(mode.ends_with('2'), || {
        format!("cap-add SYS_ADMIN: {mode:?}")
    })?;
    let (ok, out, err) = run_sh(
        berthd,
        &flags,
        "mkdir -p /m && mount -t tmpfs none /m && echo mounted",
    );
    expect(ok && out == "mounted", || {
        format!("mount with --cap-add SYS_ADMIN: ok={ok} {out} {err}")
    })
}

fn bad_capabilities_and_sysctls_are_refused_with_dockers_texts(berthd: &Berthd) -> Check {
    let (ok, _, err) = output(berthd, &["create", "--cap-add", "foo", "busybox"]);
    expect(
        !ok && err.contains("invalid CapAdd: unknown capability: \"CAP_FOO\""),
        || format!("--cap-add foo: {err}"),
    )?;
    let (ok, _, err) = output(berthd, &["create", "--cap-drop", "cap_bogus", "busybox"]);
    expect(
        !ok && err.contains("invalid CapDrop: unknown capability: \"CAP_BOGUS\""),
        || format!("--cap-drop cap_bogus: {err}"),
    )?;
    let (ok, _, err) = run_sh(
        berthd,
        &["--network", "host", "--sysctl", "net.ipv4.ip_forward=1"],
        "true",
    );
    expect(
        !ok && err.contains("sysctl \"net.ipv4.ip_forward\" not allowed in host network namespace"),
        || format!("--sysctl net.* with --network host: {err}"),
    )
}

/// Whether the host has AppArmor enabled (runc's check).
fn apparmor_enabled() -> bool {
    std::path::Path::new("/sys/kernel/security/apparmor").exists()
        && std::fs::read("/sys/module/apparmor/parameters/enabled")
            .is_ok_and(|b| b.first() == Some(&b'Y'))
}

/// Malformed seccomp profiles, unknown capabilities, sysctls of host-wide or shared
/// namespaces and AppArmor profiles on a host without AppArmor are refused by create with
/// a clear text, and no container is left behind (Docker finds the profile and sysctl faults
/// only at start and keeps the created container; berth refuses before creating).
fn bad_security_input_leaves_no_container(berthd: &Berthd) -> Check {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let profile = |name: &str, text: &str| -> Result<String, String> {
        let path = dir.path().join(name);
        std::fs::write(&path, text).map_err(|e| e.to_string())?;
        Ok(format!("seccomp={}", path.display()))
    };
    let bad_action = profile("action.json", r#"{"defaultAction":"SCMP_ACT_BOGUS"}"#)?;
    let bad_arch = profile(
        "arch.json",
        r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_Z80"]}"#,
    )?;
    let no_default = profile("empty.json", r#"{"syscalls":[]}"#)?;
    let not_json = profile("broken.json", "{\"defaultAction\":")?;
    let before = output(berthd, &["ps", "-aq"]).1;
    let cases: [(&[&str], &str); 10] = [
        (
            &["--security-opt", &bad_action],
            "decoding seccomp profile failed: unknown action \"SCMP_ACT_BOGUS\"",
        ),
        (
            &["--security-opt", &bad_arch],
            "unknown architecture \"SCMP_ARCH_Z80\"",
        ),
        (
            &["--security-opt", &no_default],
            "decoding seccomp profile failed: missing field `defaultAction`",
        ),
        // The docker CLI reads the file and refuses what is not JSON itself.
        (&["--security-opt", &not_json], "seccomp profile"),
        (
            &["--security-opt", "bogus=1"],
            "invalid --security-opt 2: \"bogus=1\"",
        ),
        (
            &["--cap-add", "CAP_NOPE"],
            "unknown capability: \"CAP_NOPE\"",
        ),
        (&["--sysctl", "kernel.panic=1"], "kernel.panic"),
        (
            &["--network", "host", "--sysctl", "net.core.somaxconn=1"],
            "sysctl \"net.core.somaxconn\" not allowed in host network namespace",
        ),
        (
            &["--ipc", "host", "--sysctl", "kernel.shmmax=1"],
            "sysctl \"kernel.shmmax\" is not allowed in the hosts ipc namespace",
        ),
        (
            &["--security-opt", "label=type:spc_t"],
            "SELinux is not enabled on this host",
        ),
    ];
    let mut failures = Vec::new();
    for (flags, want) in cases {
        for verb in ["create", "run"] {
            let mut args = vec![verb];
            args.extend_from_slice(flags);
            args.extend_from_slice(&["busybox", "true"]);
            let (ok, _, err) = output(berthd, &args);
            if ok || !err.contains(want) {
                failures.push(format!(
                    "{verb} {flags:?}: ok={ok} want {want:?} in {err:?}"
                ));
            }
        }
    }
    // AppArmor: accepted where the kernel has it, refused clearly where it does not.
    let aa = ["--security-opt", "apparmor=docker-default"];
    let (ok, id, err) = output(
        berthd,
        &[&["create"][..], &aa, &["busybox", "true"]].concat(),
    );
    if ok {
        output(berthd, &["rm", &id]);
    }
    if apparmor_enabled() != ok {
        failures.push(format!(
            "apparmor=docker-default, host AppArmor {}: ok={ok} {err}",
            apparmor_enabled()
        ));
    }
    if !apparmor_enabled() && !err.contains("AppArmor is not enabled on this host") {
        failures.push(format!("apparmor=docker-default without AppArmor: {err:?}"));
    }
    let (ok, _, err) = run_sh(berthd, &["--security-opt", "apparmor=unconfined"], "true");
    if !ok {
        failures.push(format!("apparmor=unconfined: {err}"));
    }
    let after = output(berthd, &["ps", "-aq"]).1;
    if after != before {
        failures.push(format!(
            "containers left behind: before {before:?}, after {after:?}"
        ));
    }
    expect(failures.is_empty(), || failures.join("\n"))
}

fn memory_cgroup_dir(pid: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).map_err(|e| e.to_string())?;
    text.lines()
        .find_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (_, names, path) = (parts.next()?, parts.next()?, parts.next()?);
            names
                .split(',')
                .any(|n| n == "memory")
                .then(|| format!("/sys/fs/cgroup/memory{path}"))
        })
        .ok_or_else(|| format!("no memory cgroup in {text}"))
}

fn update_changes_the_memory_limit_live(berthd: &Berthd) -> Check {
    let id = berthd.ok(&["run", "-d", "--memory", "32m", "busybox", "sleep", "1000"]);
    let result = (|| {
        let pid = berthd.ok(&["inspect", "-f", "{{.State.Pid}}", &id]);
        let dir = memory_cgroup_dir(&pid)?;
        let limit = |dir: &str| {
            std::fs::read_to_string(format!("{dir}/memory.limit_in_bytes"))
                .map(|t| t.trim().to_string())
                .unwrap_or_else(|e| e.to_string())
        };
        expect(limit(&dir) == "33554432", || {
            format!("limit before update: {}", limit(&dir))
        })?;
        berthd.ok(&["update", "--memory", "64m", "--memory-swap", "128m", &id]);
        expect(limit(&dir) == "67108864", || {
            format!("limit after update: {}", limit(&dir))
        })?;
        let recorded = berthd.ok(&["inspect", "-f", "{{.HostConfig.Memory}}", &id]);
        expect(recorded == "67108864", || {
            format!("inspect after update: {recorded}")
        })
    })();
    berthd.ok(&["rm", "-f", &id]);
    result
}

fn oom_kill_is_reported(berthd: &Berthd) -> Check {
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (ok, out, err) = output(
        berthd,
        &[
            "run",
            "--name",
            "hog",
            "--memory",
            "8m",
            "--memory-swap",
            "8m",
            "busybox",
            "sh",
            "-c",
            "x=a; while true; do x=$x$x; done",
        ],
    );
    let result = (|| {
        expect(!ok, || format!("the hog exited cleanly: {out} {err}"))?;
        let state = berthd.ok(&[
            "inspect",
            "-f",
            "{{.State.OOMKilled}} {{.State.ExitCode}}",
            "hog",
        ]);
        expect(state == "true 137", || format!("hog state: {state}"))?;
        let start = Instant::now();
        loop {
            let events = berthd.ok(&[
                "events",
                "--since",
                &started.to_string(),
                "--until",
                // One second from now: the stream ends then instead of waiting for events.
                &(std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs())
                    + 1)
                .to_string(),
                "--filter",
                "container=hog",
                "--format",
                "{{.Action}}",
            ]);
            let actions: Vec<&str> = events.lines().collect();
            let oom = actions.iter().position(|a| *a == "oom");
            let die = actions.iter().position(|a| *a == "die");
            if let (Some(oom), Some(die)) = (oom, die) {
                return expect(oom < die, || format!("oom after die: {actions:?}"));
            }
            if start.elapsed() > POLL_LIMIT {
                return Err(format!("no oom and die events: {actions:?}"));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    })();
    berthd.docker(&["rm", "-f", "hog"]);
    result
}

/// One named check run against the shared berthd.
type CheckFn = fn(&Berthd) -> Check;

#[test]
fn default_confinement_and_limits_match_docker() {
    let berthd = Berthd::start();
    berthd.import_busybox();
    let checks: [(&str, CheckFn); 8] = [
        ("default filter", default_container_is_filtered),
        ("unconfined", unconfined_lets_the_syscall_reach_the_kernel),
        ("privileged", privileged_has_no_filter),
        ("cap-add SYS_ADMIN", cap_add_sys_admin_allows_mount),
        (
            "validation",
            bad_capabilities_and_sysctls_are_refused_with_dockers_texts,
        ),
        ("bad input", bad_security_input_leaves_no_container),
        ("update", update_changes_the_memory_limit_live),
        ("oom", oom_kill_is_reported),
    ];
    let failures: Vec<String> = checks
        .iter()
        .filter_map(|(name, check)| check(&berthd).err().map(|e| format!("{name}: {e}")))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} checks failed:\n{}\nberthd log:\n{}",
        failures.len(),
        checks.len(),
        failures.join("\n"),
        berthd.log()
    );
}
