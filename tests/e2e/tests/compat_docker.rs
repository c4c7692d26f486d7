//! Differential compatibility with Docker: the real docker CLI (28.2.2) runs the same
//! commands against a private Debian dockerd (20.10) and a private berthd, and their exit
//! codes and normalised stdout/stderr ([`berth_e2e::normalize`]) must be equal. Where Docker
//! itself legitimately differs from berth (its API version range, runc's own error wording)
//! the test says so and compares what must still hold.

use std::time::{Duration, Instant};

use berth_e2e::daemon::{run_command, Berthd, Daemon, Dockerd};
use berth_e2e::normalize::{normalize, Outcome};

/// One private dockerd and one private berthd, both started at once.
struct Pair {
    dockerd: Dockerd,
    berthd: Berthd,
}

impl Pair {
    fn start() -> Pair {
        let (dockerd, berthd) = std::thread::scope(|s| {
            let dockerd = s.spawn(Dockerd::start);
            let berthd = Berthd::start();
            (dockerd.join().expect("dockerd fixture"), berthd)
        });
        Pair { dockerd, berthd }
    }

    /// Both daemons with `busybox:latest` imported from busybox-static.
    fn with_busybox() -> Pair {
        let pair = Pair::start();
        pair.dockerd.import_busybox();
        pair.berthd.import_busybox();
        pair
    }

    fn both(&self, args: &[&str]) -> (Outcome, Outcome) {
        (
            Outcome::of(&self.dockerd.docker(args)),
            Outcome::of(&self.berthd.docker(args)),
        )
    }

    /// Runs `docker <args>` against both and fails unless the outcomes are equal.
    fn same(&self, args: &[&str]) -> Outcome {
        let (docker, berth) = self.both(args);
        assert_eq!(
            docker,
            berth,
            "docker {args:?}: dockerd (left) and berthd (right) differ\nberthd log tail:\n{}",
            log_tail(&self.berthd)
        );
        docker
    }

    /// Runs `docker <args>` against both; both must succeed; returns both trimmed stdouts.
    fn ok(&self, args: &[&str]) -> (String, String) {
        (self.dockerd.ok(args), self.berthd.ok(args))
    }
}

fn log_tail(berthd: &Berthd) -> String {
    let log = berthd.log();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Polls `docker inspect -f FORMAT NAME` until it prints `want` (bounded hang guard).
fn wait_for_inspect(daemon: &dyn Daemon, name: &str, format: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = String::new();
    while Instant::now() < deadline {
        let out = daemon.docker(&["inspect", "-f", format, name]);
        last = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if last == want {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "{}: {name} never reached {format} = {want} (last {last:?})",
        daemon.name()
    );
}

#[test]
fn version_negotiates_each_daemons_newest_api() {
    let pair = Pair::start();
    let format = ["version", "--format", "{{.Server.APIVersion}}"];
    // Docker 20.10 speaks up to 1.41; berth up to 1.50, which the CLI 28 speaks too.
    assert_eq!(pair.dockerd.ok(&format), "1.41");
    assert_eq!(pair.berthd.ok(&format), "1.50");
    let (docker, berth) = pair.ok(&["version", "--format", "{{.Server.MinAPIVersion}}"]);
    assert_eq!(docker, "1.12");
    assert_eq!(berth, "1.41");
    let (docker, berth) = pair.ok(&["version", "--format", "{{.Server.Os}}/{{.Server.Arch}}"]);
    assert_eq!(docker, berth);
}

#[test]
fn client_versions_out_of_range_are_refused_with_dockers_text() {
    let pair = Pair::start();
    // Just below each daemon's minimum, and above its maximum: the same sentences as moby's
    // version middleware, with each daemon's own bounds.
    let cases: [(&dyn Daemon, &str, &str, &str); 2] = [
        (&pair.dockerd, "1.11", "1.12", "1.41"),
        (&pair.berthd, "1.12", "1.41", "1.50"),
    ];
    for (daemon, too_old, min, max) in cases {
        let mut cmd = daemon.command(&["ps"]);
        let out = run_command(cmd.env("DOCKER_API_VERSION", too_old));
        assert_eq!(out.status.code(), Some(1), "{}", daemon.name());
        assert_eq!(
            String::from_utf8_lossy(&out.stderr).trim(),
            format!(
                "Error response from daemon: client version {too_old} is too old. Minimum \
                 supported API version is {min}, please upgrade your client to a newer version"
            ),
            "{}",
            daemon.name()
        );
        let mut cmd = daemon.command(&["ps"]);
        let out = run_command(cmd.env("DOCKER_API_VERSION", "1.99"));
        assert_eq!(out.status.code(), Some(1), "{}", daemon.name());
        assert_eq!(
            String::from_utf8_lossy(&out.stderr).trim(),
            format!(
                "Error response from daemon: client version 1.99 is too new. Maximum \
                 supported API version is {max}"
            ),
            "{}",
            daemon.name()
        );
    }
    // A version both accept answers the same table.
    let mut cmd = pair.dockerd.command(&["ps"]);
    let docker = Outcome::of(&run_command(cmd.env("DOCKER_API_VERSION", "1.41")));
    let mut cmd = pair.berthd.command(&["ps"]);
    let berth = Outcome::of(&run_command(cmd.env("DOCKER_API_VERSION", "1.41")));
    assert_eq!(docker, berth);
}

#[test]
fn info_has_the_fields_scripts_read() {
    let pair = Pair::start();
    let (docker, berth) = pair.ok(&["info", "--format", "{{json .}}"]);
    let docker: serde_json::Value = serde_json::from_str(&docker).expect("dockerd info json");
    let berth: serde_json::Value = serde_json::from_str(&berth).expect("berthd info json");
    for key in [
        "ID",
        "Containers",
        "ContainersRunning",
        "ContainersPaused",
        "ContainersStopped",
        "Images",
        "Driver",
        "DockerRootDir",
        "ServerVersion",
        "OperatingSystem",
        "OSType",
        "Architecture",
        "NCPU",
        "MemTotal",
        "KernelVersion",
        "CgroupDriver",
        "CgroupVersion",
        "LoggingDriver",
        "DefaultRuntime",
        "Runtimes",
        "LiveRestoreEnabled",
        "Name",
        "IndexServerAddress",
        "RegistryConfig",
        "SecurityOptions",
        "Swarm",
        "Warnings",
    ] {
        assert!(docker.get(key).is_some(), "dockerd's info lacks {key}");
        assert!(
            berth.get(key).is_some(),
            "berthd's info lacks {key}: {berth}"
        );
    }
    for key in [
        "Containers",
        "Images",
        "OSType",
        "Architecture",
        "NCPU",
        "KernelVersion",
        "CgroupVersion",
    ] {
        assert_eq!(docker[key], berth[key], "{key}");
    }
    // The plain `docker info` renders without a client-side error on both.
    let (docker, berth) = pair.both(&["info"]);
    assert_eq!((docker.code, berth.code), (0, 0), "{berth:?}");
}

#[test]
fn empty_daemons_list_the_same_empty_tables() {
    let pair = Pair::start();
    for args in [
        &["ps"][..],
        &["ps", "-a"],
        &["ps", "-q"],
        &["ps", "-a", "--format", "{{.ID}} {{.Names}}"],
        &["images"],
        &["images", "-q"],
        &["container", "ls", "--all", "--no-trunc"],
    ] {
        pair.same(args);
    }
}

#[test]
fn missing_containers_and_images_give_dockers_errors_and_exit_codes() {
    let pair = Pair::start();
    for args in [
        &["rm", "nosuch"][..],
        &["inspect", "nosuch"],
        &["container", "inspect", "nosuch"],
        &["rmi", "nosuch"],
        &["logs", "nosuch"],
        &["start", "nosuch"],
        &["stop", "nosuch"],
        &["restart", "nosuch"],
        &["wait", "nosuch"],
        &["exec", "nosuch", "true"],
    ] {
        let outcome = pair.same(args);
        assert_ne!(outcome.code, 0, "{args:?}");
    }
    // `rm -f` of a missing container exits 0 (moby ignores NotFound with force; the CLI 28
    // still prints the daemon's text on stderr).
    let outcome = pair.same(&["rm", "-f", "nosuch"]);
    assert_eq!(outcome.code, 0, "{outcome:?}");
}

#[test]
fn imported_busybox_runs_and_lists_like_docker() {
    let pair = Pair::with_busybox();
    let out = pair.same(&["run", "--rm", "busybox", "echo", "hi"]);
    assert_eq!(out.stdout, "hi");
    pair.same(&["run", "--rm", "busybox", "sh", "-c", "echo to-stderr >&2"]);
    pair.same(&["images"]);
    pair.same(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    pair.same(&["image", "inspect", "-f", "{{json .Config.Cmd}}", "busybox"]);
    // --rm leaves nothing behind.
    pair.same(&["ps", "-a"]);
}

#[test]
fn run_exit_codes_match_docker() {
    let pair = Pair::with_busybox();
    for args in [
        &["run", "--rm", "busybox", "true"][..],
        &["run", "--rm", "busybox", "sh", "-c", "exit 3"],
        // 125: the CLI refuses a flag; the daemon refuses the request.
        &["run", "--rm", "--bogus", "busybox", "true"],
        &["run", "--rm", "--name", "bad/name", "busybox", "true"],
    ] {
        pair.same(args);
    }
    // 126 (not executable): Docker's stderr carries runc's wording, so only the exit code
    // and Docker's key phrase must match.
    let args = ["run", "--rm", "busybox", "/etc/passwd"];
    let (docker, berth) = pair.both(&args);
    for (name, outcome) in [("dockerd", &docker), ("berthd", &berth)] {
        assert_eq!(outcome.code, 126, "{name} {args:?}: {outcome:?}");
        assert!(
            outcome
                .stderr
                .starts_with("docker: Error response from daemon: ")
                && outcome.stderr.contains("permission denied"),
            "{name} {args:?}: {outcome:?}"
        );
    }
}

#[test]
fn detached_container_lists_stops_and_is_removed() {
    let pair = Pair::with_busybox();
    let (docker_id, berth_id) = pair.ok(&["run", "-d", "--name", "c1", "busybox", "sleep", "100"]);
    assert_eq!(normalize(&docker_id), "<id>");
    assert_eq!(normalize(&berth_id), "<id>");
    pair.same(&["ps"]);
    pair.same(&[
        "ps",
        "--format",
        "{{.Names}} {{.Image}} {{.Command}} {{.Status}}",
    ]);
    pair.same(&["ps", "-q", "--no-trunc"]);
    pair.same(&["ps", "-a", "--filter", "name=c1", "--format", "{{.Names}}"]);
    // sleep as PID 1 ignores SIGTERM: stop escalates to SIGKILL after the timeout (137).
    pair.same(&["stop", "-t", "1", "c1"]);
    pair.same(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
    pair.same(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.ExitCode}}",
        "c1",
    ]);
    pair.same(&["rm", "c1"]);
    pair.same(&["ps", "-a"]);
}

#[test]
fn name_conflicts_are_refused_with_dockers_text() {
    let pair = Pair::with_busybox();
    pair.ok(&["create", "--name", "taken", "busybox", "true"]);
    pair.same(&["create", "--name", "taken", "busybox", "true"]);
    pair.same(&["run", "--rm", "--name", "taken", "busybox", "true"]);
    pair.same(&["rm", "taken"]);
}

#[test]
fn inspect_format_fields_match_docker() {
    let pair = Pair::with_busybox();
    pair.ok(&["run", "-d", "--name", "kept", "busybox", "sleep", "100"]);
    pair.ok(&[
        "run", "-d", "--rm", "--name", "auto", "busybox", "sleep", "100",
    ]);
    for name in ["kept", "auto"] {
        for format in [
            "{{.State.Status}}",
            "{{.State.Running}}",
            "{{.Config.Cmd}}",
            "{{json .Config.Cmd}}",
            "{{.HostConfig.AutoRemove}}",
            "{{.Name}} {{.Path}} {{.Args}} {{.Config.Image}}",
            "{{.RestartCount}} {{.HostConfig.NetworkMode}}",
        ] {
            pair.same(&["inspect", "-f", format, name]);
        }
    }
    pair.same(&["rm", "-f", "kept", "auto"]);
}

#[test]
fn exec_runs_in_running_containers_only() {
    let pair = Pair::with_busybox();
    pair.ok(&["run", "-d", "--name", "box", "busybox", "sleep", "100"]);
    let out = pair.same(&["exec", "box", "echo", "from-exec"]);
    assert_eq!(out.stdout, "from-exec");
    pair.same(&["exec", "box", "sh", "-c", "exit 7"]);
    pair.same(&[
        "exec",
        "-e",
        "GREETING=hi",
        "box",
        "sh",
        "-c",
        "echo $GREETING",
    ]);
    pair.same(&["kill", "box"]);
    wait_for_inspect(&pair.dockerd, "box", "{{.State.Status}}", "exited");
    wait_for_inspect(&pair.berthd, "box", "{{.State.Status}}", "exited");
    pair.same(&["rm", "box"]);
}
