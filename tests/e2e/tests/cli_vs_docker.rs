//! The berth CLI against the docker CLI (v28.2.2), both pointed at the same private Debian
//! dockerd 20.10: for each scenario `berth X` must print what `docker X` prints (after
//! normalising IDs, times, sizes and the program name) and exit with the same code.
//!
//! The daemon is the [`Dockerd`] fixture (own roots, socket and cgroup parent, stopped by
//! PID with its mounts and cgroups removed on drop); berth is the release binary from
//! `BERTH_BIN_DIR`.

use std::process::{Command, Output, Stdio};

use berth_e2e::berthd::bin_dir;
use berth_e2e::daemon::{run_command, Daemon, Dockerd};
use berth_e2e::image_tar::BusyboxTar;
use berth_e2e::normalize::Outcome;
use berth_e2e::require_root;

/// Variables of the caller that would change what either CLI does.
const CLEARED_ENV: &[&str] = &[
    "DOCKER_HOST",
    "BERTH_HOST",
    "DOCKER_CONTEXT",
    "DOCKER_API_VERSION",
    "DOCKER_TLS_VERIFY",
    "DOCKER_CERT_PATH",
];

/// `berth -H <dockerd> <args>` with the daemon's private CLI config, stdin closed.
fn berth(daemon: &Dockerd, args: &[&str]) -> Output {
    let binary = bin_dir().join("berth");
    assert!(
        binary.is_file(),
        "{} is missing: build the release binaries first",
        binary.display()
    );
    let mut cmd = Command::new(binary);
    for var in CLEARED_ENV {
        cmd.env_remove(var);
    }
    cmd.env("DOCKER_CONFIG", daemon.cli_config_dir())
        .arg("-H")
        .arg(daemon.host())
        .args(args)
        .stdin(Stdio::null());
    run_command(&mut cmd)
}

/// berth's outcome with its program name written as docker's, so messages that embed
/// the binary name ("berth: Error response ...", "Run 'berth run --help'") compare.
fn berth_outcome(daemon: &Dockerd, args: &[&str]) -> Outcome {
    let mut outcome = Outcome::of(&berth(daemon, args));
    outcome.stderr = outcome.stderr.replace("berth", "docker");
    outcome
}

/// Runs `docker_args` with docker and `berth_args` with berth and requires the same
/// normalised stdout, stderr and exit code; returns docker's outcome.
fn same_as_docker(daemon: &Dockerd, docker_args: &[&str], berth_args: &[&str]) -> Outcome {
    let docker = Outcome::of(&daemon.docker(docker_args));
    let ours = berth_outcome(daemon, berth_args);
    assert_eq!(
        ours, docker,
        "berth {berth_args:?} differs from docker {docker_args:?}"
    );
    docker
}

/// [`same_as_docker`] with berth's run starting in a later second than docker's, for
/// commands whose objects are ordered by their creation second.
fn same_as_docker_spaced(daemon: &Dockerd, docker_args: &[&str], berth_args: &[&str]) -> Outcome {
    let docker = Outcome::of(&daemon.docker(docker_args));
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let ours = berth_outcome(daemon, berth_args);
    assert_eq!(
        ours, docker,
        "berth {berth_args:?} differs from docker {docker_args:?}"
    );
    docker
}

/// The same arguments for both CLIs (read-only or idempotent commands).
fn same(daemon: &Dockerd, args: &[&str]) -> Outcome {
    same_as_docker(daemon, args, args)
}

#[test]
fn listing_importing_tagging_and_inspecting_match_docker() {
    require_root();
    let daemon = Dockerd::start();
    // Empty tables hold no times or IDs: byte for byte, padding included.
    for args in [&["ps"][..], &["images"], &["ps", "-a", "-s"]] {
        let docker = daemon.docker(args);
        let ours = berth(&daemon, args);
        assert_eq!(
            String::from_utf8_lossy(&ours.stdout),
            String::from_utf8_lossy(&docker.stdout),
            "{args:?}"
        );
        assert_eq!(ours.status.code(), docker.status.code(), "{args:?}");
    }
    assert_eq!(
        same(&daemon, &["ps"]).stdout,
        "CONTAINER ID   IMAGE   COMMAND   CREATED   STATUS   PORTS   NAMES"
    );
    same(&daemon, &["ps", "-a", "-q"]);
    same(&daemon, &["images"]);

    let tar = BusyboxTar::new();
    let path = tar.path().to_string_lossy().into_owned();
    // The two imports must not share a creation second: the daemon lists images by
    // creation time, and equal times come back in no fixed order.
    let imported = same_as_docker_spaced(
        &daemon,
        &[
            "import",
            "--change",
            "CMD [\"sh\"]",
            &path,
            "busybox:latest",
        ],
        &[
            "import",
            "--change",
            "CMD [\"sh\"]",
            &path,
            "bbimport:latest",
        ],
    );
    assert_eq!(imported.code, 0, "{imported:?}");
    assert_eq!(imported.stdout, "sha256:<id>");

    for args in [
        &["images"][..],
        &["images", "-q"],
        &["images", "--no-trunc"],
        &["images", "--digests"],
        &["images", "busybox"],
        &["images", "--format", "{{.Repository}}:{{.Tag}} {{.Size}}"],
        &["images", "--format", "table {{.Repository}}\t{{.Tag}}"],
        &[
            "image",
            "inspect",
            "-f",
            "{{.Config.Cmd}} {{.Os}} {{json .RepoTags}}",
            "busybox",
        ],
        &[
            "inspect",
            "--type",
            "image",
            "-f",
            "{{.Architecture}}",
            "busybox:latest",
        ],
        &["image", "inspect", "busybox"],
        &["inspect", "nosuchthing"],
        &["container", "inspect", "nosuchthing"],
        &["image", "inspect", "nosuchimage"],
        &["rmi", "nosuchimage"],
        &["rm", "nosuchcontainer"],
        &["rm", "-f", "nosuchcontainer"],
        &["stop", "nosuchcontainer"],
        &["logs", "nosuchcontainer"],
        &["history", "busybox"],
        &["image", "history", "--no-trunc", "busybox"],
        &["volume", "ls"],
        &["volume", "inspect", "nosuchvolume"],
        &["network", "ls"],
        &["network", "inspect", "none"],
        &["network", "rm", "nosuchnetwork"],
        &["run"],
        &["ps", "--bogus"],
        &["logs"],
        &["bogus"],
    ] {
        same(&daemon, args);
    }
    // Tags go last: docker lists an image's several tags in Go map order (random), so
    // multi-tag images are only compared through a reference filter.
    same_as_docker(
        &daemon,
        &["tag", "busybox:latest", "docker/tagged:v1"],
        &["tag", "busybox:latest", "berth/tagged:v1"],
    );
    same(&daemon, &["images", "docker/tagged"]);
    same(
        &daemon,
        &[
            "images",
            "--format",
            "{{.Repository}}:{{.Tag}}",
            "berth/tagged",
        ],
    );
    let ours = berth_outcome(&daemon, &["rmi", "berth/tagged:v1"]);
    assert_eq!(
        (ours.code, ours.stdout.as_str()),
        (0, "Untagged: berth/tagged:v1")
    );
    let docker = Outcome::of(&daemon.docker(&["rmi", "docker/tagged:v1"]));
    assert_eq!(
        (docker.code, docker.stdout.as_str()),
        (0, "Untagged: docker/tagged:v1")
    );
    same(&daemon, &["images"]);
}

#[test]
fn running_containers_exit_codes_logs_and_ps_match_docker() {
    require_root();
    let daemon = Dockerd::start();
    daemon.import_busybox();
    let echo = same(&daemon, &["run", "--rm", "busybox", "echo", "hi"]);
    assert_eq!((echo.code, echo.stdout.as_str()), (0, "hi"));
    let cases: [(&[&str], i32); 4] = [
        (
            &[
                "run",
                "--rm",
                "busybox",
                "sh",
                "-c",
                "echo out; echo err >&2; exit 3",
            ],
            3,
        ),
        (&["run", "--rm", "busybox", "nonexistent-binary"], 127),
        (&["run", "--rm", "--pull=never", "nosuchimage:1"], 125),
        (
            &[
                "run",
                "--rm",
                "-e",
                "GREETING=hello",
                "-w",
                "/tmp",
                "busybox",
                "sh",
                "-c",
                "echo $GREETING $PWD",
            ],
            0,
        ),
    ];
    for (args, code) in cases {
        assert_eq!(same(&daemon, args).code, code, "{args:?}");
    }

    // One container each, with the same name pattern, so ps tables line up row by row.
    same_as_docker(
        &daemon,
        &[
            "run",
            "--name",
            "docker-logs",
            "busybox",
            "sh",
            "-c",
            "echo line one; echo line two >&2; exit 2",
        ],
        &[
            "run",
            "--name",
            "berth-logs",
            "busybox",
            "sh",
            "-c",
            "echo line one; echo line two >&2; exit 2",
        ],
    );
    same(&daemon, &["logs", "docker-logs"]);
    same(&daemon, &["logs", "berth-logs"]);
    same(&daemon, &["logs", "--tail", "1", "docker-logs"]);
    same(&daemon, &["wait", "docker-logs"]);
    same(
        &daemon,
        &[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}} {{.Config.Cmd}}",
            "docker-logs",
            "berth-logs",
        ],
    );
    same(&daemon, &["ps", "-a"]);
    same(&daemon, &["ps", "-a", "--no-trunc"]);
    same(
        &daemon,
        &[
            "ps",
            "-a",
            "--format",
            "{{.Names}}\t{{.Status}}\t{{.Command}}",
        ],
    );
    same(
        &daemon,
        &["ps", "-a", "--format", "table {{.Names}}\t{{.State}}"],
    );
    same(
        &daemon,
        &[
            "ps",
            "-a",
            "--filter",
            "name=berth-logs",
            "--format",
            "{{json .Names}}",
        ],
    );

    let detached = Outcome::of(&berth(
        &daemon,
        &["run", "-d", "--name", "sleeper", "busybox", "sleep", "300"],
    ));
    assert_eq!(
        (detached.code, detached.stdout.as_str()),
        (0, "<id>"),
        "{detached:?}"
    );
    same(
        &daemon,
        &["exec", "sleeper", "sh", "-c", "echo in exec; exit 4"],
    );
    same(&daemon, &["ps", "--format", "{{.Names}} {{.Command}}"]);
    // cp both ways: what berth puts in, docker reads back, and the other way round.
    let scratch = tempfile::tempdir().expect("tempdir");
    let local = scratch.path().join("greeting.txt");
    std::fs::write(&local, "hello from the host\n").expect("write");
    let local_text = local.to_string_lossy().into_owned();
    let put = berth_outcome(&daemon, &["cp", &local_text, "sleeper:/tmp/in.txt"]);
    assert_eq!(put.code, 0, "{put:?}");
    assert_eq!(
        daemon.ok(&["exec", "sleeper", "cat", "/tmp/in.txt"]),
        "hello from the host"
    );
    let back = scratch.path().join("back.txt");
    let back_text = back.to_string_lossy().into_owned();
    let got = berth_outcome(&daemon, &["cp", "sleeper:/tmp/in.txt", &back_text]);
    assert_eq!(got.code, 0, "{got:?}");
    assert_eq!(
        std::fs::read_to_string(&back).expect("copied back"),
        "hello from the host\n"
    );
    let dir_text = scratch.path().to_string_lossy().into_owned();
    same(&daemon, &["cp", "sleeper:/nonexistent", &dir_text]);
    same(&daemon, &["cp", "nosuchcontainer:/x", &dir_text]);
    let stopped = berth_outcome(&daemon, &["rm", "-f", "sleeper"]);
    assert_eq!((stopped.code, stopped.stdout.as_str()), (0, "sleeper"));
    let removed = berth_outcome(&daemon, &["rm", "berth-logs"]);
    assert_eq!((removed.code, removed.stdout.as_str()), (0, "berth-logs"));
    let removed = Outcome::of(&daemon.docker(&["rm", "docker-logs"]));
    assert_eq!((removed.code, removed.stdout.as_str()), (0, "docker-logs"));
    same(&daemon, &["ps", "-a", "--format", "{{.Names}}"]);
}
