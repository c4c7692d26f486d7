//! `docker build` (the real docker CLI 28 with DOCKER_BUILDKIT=0, i.e. the classic
//! `POST /build`) and `berth build` against one private berthd: a multi-stage build with
//! RUN/COPY/ENV/WORKDIR/USER/CMD and .dockerignore, the cache on rebuild, a changed file
//! invalidating from its COPY on, the image running and showing its files, a failing RUN's
//! text and exit code with no container left behind, and a bad Dockerfile's line number.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use berth_e2e::berthd::bin_dir;
use berth_e2e::daemon::{run_command, Berthd, Daemon};

const DOCKERFILE: &str = "\
FROM busybox AS build
WORKDIR /src
COPY app/ ./
RUN echo built > /src/built.txt && cat hello.txt

FROM busybox
ENV GREETING=hi
WORKDIR /srv
COPY --from=build /src/ ./
COPY data.txt .
COPY . /ctx/
USER nobody
CMD [\"cat\", \"/srv/built.txt\"]
";

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `docker build` with the classic builder.
/// `berth -H <berthd> build <args> <dir>`.
fn berth_build(berthd: &Berthd, dir: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(bin_dir().join("berth"));
    cmd.env_remove("DOCKER_HOST")
        .env_remove("BERTH_HOST")
        .env("DOCKER_CONFIG", berthd.cli_config_dir())
        .arg("-H")
        .arg(berthd.host())
        .arg("build")
        .args(args)
        .arg(dir)
        .stdin(Stdio::null());
    run_command(&mut cmd)
}

fn write(dir: &Path, path: &str, content: &str) {
    let p = dir.join(path);
    std::fs::create_dir_all(p.parent().expect("a parent")).expect("mkdir");
    std::fs::write(p, content).expect("write");
}

fn context() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "Dockerfile", DOCKERFILE);
    write(dir.path(), "app/hello.txt", "hello from the context\n");
    write(dir.path(), "data.txt", "data v1\n");
    write(dir.path(), "ignored.txt", "must not be sent\n");
    write(dir.path(), ".dockerignore", "ignored.txt\n");
    dir
}

fn assert_ok(what: &str, out: &Output, berthd: &Berthd) {
    let (stdout, stderr) = text(out);
    assert!(
        out.status.success(),
        "{what} failed ({:?}):\nstdout: {stdout}\nstderr: {stderr}\nberthd log:\n{}",
        out.status,
        berthd.log()
    );
}

#[test]
fn docker_and_berth_build_multi_stage_images_with_cache_and_docker_errors() {
    let berthd = Berthd::start();
    berthd.import_busybox();
    let ctx = context();

    // A cold multi-stage build through the docker CLI.
    let out = berthd.docker_build(ctx.path(), &["-t", "e2e:one"]);
    assert_ok("docker build", &out, &berthd);
    let (stdout, _) = text(&out);
    assert!(
        stdout.contains("Step 1/12 : FROM busybox AS build\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("hello from the context\n"),
        "RUN output is streamed: {stdout}"
    );
    assert!(stdout.contains(" ---> Running in "), "{stdout}");
    assert!(stdout.contains("Successfully tagged e2e:one\n"), "{stdout}");
    let id = berthd.ok(&["image", "inspect", "-f", "{{.Id}}", "e2e:one"]);
    let short = &id["sha256:".len().."sha256:".len() + 12];
    assert!(
        stdout.contains(&format!("Successfully built {short}\n")),
        "{stdout}"
    );

    // The image runs as built: CMD, USER, WORKDIR, ENV and the copied files.
    assert_eq!(berthd.ok(&["run", "--rm", "e2e:one"]), "built");
    let shown = berthd.ok(&[
        "run",
        "--rm",
        "e2e:one",
        "sh",
        "-c",
        "pwd; id -u; echo $GREETING; cat hello.txt data.txt; ls -A /ctx",
    ]);
    assert_eq!(
        shown,
        "/srv\n65534\nhi\nhello from the context\ndata v1\n.dockerignore\nDockerfile\napp\ndata.txt"
    );
    let config = berthd.ok(&[
        "image",
        "inspect",
        "-f",
        "{{json .Config.Cmd}} {{.Config.User}} {{.Config.WorkingDir}} {{json .Config.Env}}",
        "e2e:one",
    ]);
    assert_eq!(
        config,
        r#"["cat","/srv/built.txt"] nobody /srv ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","GREETING=hi"]"#
    );
    let history = berthd.ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}",
        "e2e:one",
    ]);
    let newest: Vec<&str> = history.lines().take(3).collect();
    assert_eq!(
        newest,
        vec![
            r#"/bin/sh -c #(nop)  CMD ["cat" "/srv/built.txt"]"#,
            "/bin/sh -c #(nop)  USER nobody",
            newest[2],
        ]
    );
    assert!(
        newest[2].starts_with("/bin/sh -c #(nop) COPY dir:") && newest[2].ends_with(" in /ctx/ "),
        "{history}"
    );

    // A rebuild runs nothing: every step after each FROM is a cache hit.
    let out = berthd.docker_build(ctx.path(), &["-t", "e2e:one"]);
    assert_ok("cached docker build", &out, &berthd);
    let (stdout, _) = text(&out);
    assert_eq!(
        stdout.matches(" ---> Using cache\n").count(),
        10,
        "{stdout}"
    );
    assert!(!stdout.contains("Running in"), "{stdout}");
    assert_eq!(
        berthd.ok(&["image", "inspect", "-f", "{{.Id}}", "e2e:one"]),
        id
    );

    // One changed file rebuilds from the COPY that reads it on, through `berth build`.
    write(ctx.path(), "data.txt", "data v2\n");
    let iid = ctx
        .path()
        .join("..")
        .join(format!("iid-{}", std::process::id()));
    let iid_arg = iid.to_string_lossy().into_owned();
    let out = berth_build(
        &berthd,
        ctx.path(),
        &["-t", "e2e:two", "--iidfile", &iid_arg],
    );
    assert_ok("berth build", &out, &berthd);
    let (stdout, _) = text(&out);
    assert_eq!(stdout.matches(" ---> Using cache\n").count(), 6, "{stdout}");
    assert!(stdout.contains("Successfully tagged e2e:two\n"), "{stdout}");
    let two = berthd.ok(&["image", "inspect", "-f", "{{.Id}}", "e2e:two"]);
    assert_eq!(std::fs::read_to_string(&iid).expect("iidfile"), two);
    let _ = std::fs::remove_file(&iid);
    assert_ne!(two, id);
    assert_eq!(
        berthd.ok(&["run", "--rm", "e2e:two", "cat", "/srv/data.txt"]),
        "data v2"
    );

    // A failing RUN: Docker's text, the command's exit code, no container left.
    let failing = tempfile::tempdir().expect("tempdir");
    write(
        failing.path(),
        "Dockerfile",
        "FROM busybox\nRUN echo before && false\n",
    );
    let out = berthd.docker_build(failing.path(), &[]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr
            .contains("The command '/bin/sh -c echo before && false' returned a non-zero code: 1"),
        "{stderr}"
    );
    let out = berth_build(&berthd, failing.path(), &["-q"]);
    assert_eq!(out.status.code(), Some(1));
    let leftover: Vec<String> = berthd
        .ok(&["ps", "-aq"])
        .lines()
        .map(str::to_string)
        .collect();
    assert!(
        leftover.is_empty(),
        "build containers left behind: {leftover:?}"
    );

    // A bad Dockerfile: the parser's error with its line.
    let bad = tempfile::tempdir().expect("tempdir");
    write(
        bad.path(),
        "Dockerfile",
        "FROM busybox\nRUN true\nFOO bar\n",
    );
    let out = berthd.docker_build(bad.path(), &[]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains("dockerfile parse error on line 3: unknown instruction: FOO"),
        "{stderr}"
    );
}
