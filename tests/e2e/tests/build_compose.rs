//! Debian's docker-compose 1.29.2 (python, docker-py's `images.build`, so the classic
//! `POST /build`) against a private berthd: two services built from one context with
//! build args, a target stage and labels, then `up -d` and `down`; the built images carry
//! the args' effects, the labels and their stage's config.

use std::path::Path;
use std::process::Command;

use berth_e2e::daemon::{run_command, Berthd, Daemon};

const COMPOSE: &str = "/usr/bin/docker-compose";

const DOCKERFILE: &str = "\
FROM busybox AS base
ARG GREETING=none
ENV GREETING=$GREETING
RUN echo \"$GREETING\" > /greeting

FROM base AS web
LABEL tier=front
CMD [\"sh\", \"-c\", \"cat /greeting; sleep 300\"]

FROM base AS worker
WORKDIR /work
CMD [\"sleep\", \"300\"]
";

const COMPOSE_FILE: &str = "\
version: \"3.8\"
services:
  web:
    build:
      context: .
      target: web
      args:
        GREETING: hello
      labels:
        com.example.role: web
    image: e2e-compose-web
  worker:
    build:
      context: .
      dockerfile: Dockerfile
      target: worker
      args:
        GREETING: bye
      labels:
        com.example.role: worker
    image: e2e-compose-worker
";

/// `docker-compose -p e2ebuild <args>` in `dir` against `berthd` (docker-py builds,
/// not the CLI).
fn compose(berthd: &Berthd, dir: &Path, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(COMPOSE);
    cmd.current_dir(dir)
        .env("DOCKER_HOST", berthd.host())
        .env("DOCKER_CONFIG", berthd.cli_config_dir())
        .env("COMPOSE_DOCKER_CLI_BUILD", "0")
        .env("DOCKER_BUILDKIT", "0")
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CERT_PATH")
        .args(["--no-ansi", "-p", "e2ebuild"])
        .args(args);
    run_command(&mut cmd)
}

fn check(berthd: &Berthd, what: &str, out: &std::process::Output) {
    assert!(
        out.status.success(),
        "docker-compose {what} failed ({:?}):\nstdout: {}\nstderr: {}\nberthd log:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        berthd.log()
    );
}

#[test]
fn docker_compose_builds_services_with_args_target_and_labels_then_runs_them() {
    assert!(
        Path::new(COMPOSE).is_file(),
        "{COMPOSE} is missing: scripts/setup.sh installs Debian's docker-compose"
    );
    let berthd = Berthd::start();
    berthd.import_busybox();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("Dockerfile"), DOCKERFILE).expect("write");
    std::fs::write(dir.path().join("docker-compose.yml"), COMPOSE_FILE).expect("write");

    let out = compose(&berthd, dir.path(), &["build"]);
    check(&berthd, "build", &out);
    let inspect = |format: &str, image: &str| berthd.ok(&["image", "inspect", "-f", format, image]);
    assert_eq!(
        inspect("{{json .Config.Labels}}", "e2e-compose-web"),
        r#"{"com.example.role":"web","tier":"front"}"#
    );
    assert_eq!(
        inspect("{{json .Config.Labels}}", "e2e-compose-worker"),
        r#"{"com.example.role":"worker"}"#,
        "the worker target never reads the web stage"
    );
    assert!(inspect("{{json .Config.Env}}", "e2e-compose-web").contains("GREETING=hello"));
    assert!(inspect("{{json .Config.Env}}", "e2e-compose-worker").contains("GREETING=bye"));
    assert_eq!(
        inspect("{{.Config.WorkingDir}}", "e2e-compose-worker"),
        "/work"
    );
    assert_eq!(
        inspect("{{json .Config.Cmd}}", "e2e-compose-worker"),
        r#"["sleep","300"]"#
    );

    let out = compose(&berthd, dir.path(), &["up", "-d"]);
    check(&berthd, "up -d", &out);
    let running = berthd.ok(&[
        "ps",
        "--filter",
        "label=com.docker.compose.project=e2ebuild",
        "--format",
        "{{.Image}}",
    ]);
    let mut images: Vec<&str> = running.lines().collect();
    images.sort();
    assert_eq!(images, ["e2e-compose-web", "e2e-compose-worker"]);
    let web = berthd.ok(&[
        "ps",
        "-q",
        "--filter",
        "label=com.docker.compose.service=web",
    ]);
    assert_eq!(
        berthd.ok(&["exec", &web, "cat", "/greeting"]),
        "hello",
        "the build arg reached the RUN"
    );

    let out = compose(&berthd, dir.path(), &["down", "-t", "1"]);
    check(&berthd, "down", &out);
    assert_eq!(berthd.ok(&["ps", "-aq"]), "", "down removed the containers");
    let networks = berthd.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!networks.contains("e2ebuild_default"), "{networks}");
}
