//! `docker build` (docker CLI 28, DOCKER_BUILDKIT=0: the classic `POST /build`) against one
//! private berthd: `--cache-from` an image that came back through `docker save`/`load` with
//! every build cache gone reuses each step (the last one is the source image itself), and
//! only the steps after a changed one run; `ADD` of a Git repository served by `git daemon`
//! on 127.0.0.1 (`#ref:subdir`, the default branch, `--keep-git-dir`, a missing ref's
//! BuildKit text).

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use berth_e2e::daemon::{Berthd, Daemon};

#[test]
fn cache_from_a_loaded_image_reuses_its_steps_up_to_the_first_change() {
    let berthd = Berthd::start();
    berthd.import_busybox();
    let ctx = tempfile::tempdir().expect("tempdir");
    let dockerfile = |run: &str| {
        format!("FROM busybox\nENV A=1\nRUN {run}\nCOPY f.txt /f.txt\nCMD [\"cat\", \"/x\"]\n")
    };
    std::fs::write(ctx.path().join("Dockerfile"), dockerfile("echo hi > /x")).expect("write");
    std::fs::write(ctx.path().join("f.txt"), "f\n").expect("write");
    berthd.stdout_of(
        "first build",
        &berthd.docker_build(ctx.path(), &["-t", "e2e:src"]),
    );
    let source_id = berthd.ok(&["image", "inspect", "-f", "{{.Id}}", "e2e:src"]);
    let saved = ctx.path().join("src.tar");
    berthd.ok(&["save", "-o", saved.to_str().expect("utf-8"), "e2e:src"]);
    berthd.ok(&["image", "rm", "e2e:src"]);
    berthd.ok(&["builder", "prune", "-af"]);
    berthd.ok(&["image", "prune", "-f"]);
    berthd.ok(&["load", "-i", saved.to_str().expect("utf-8")]);

    // Without --cache-from nothing is cached any more: the RUN runs.
    let out = berthd.docker_build(ctx.path(), &["--cache-from", "e2e:src", "-t", "e2e:again"]);
    let stdout = berthd.stdout_of("build --cache-from", &out);
    assert_eq!(stdout.matches(" ---> Using cache").count(), 4, "{stdout}");
    assert!(!stdout.contains("Running in"), "{stdout}");
    let again = berthd.ok(&["image", "inspect", "-f", "{{.Id}}", "e2e:again"]);
    assert_eq!(again, source_id, "the last step is the source image itself");
    assert_eq!(berthd.ok(&["run", "--rm", "e2e:again"]), "hi");

    // A changed RUN: ENV still comes from the source, RUN and what follows run again.
    std::fs::write(ctx.path().join("Dockerfile"), dockerfile("echo other > /x")).expect("write");
    let out = berthd.docker_build(
        ctx.path(),
        &["--cache-from", "e2e:src", "-t", "e2e:changed"],
    );
    let stdout = berthd.stdout_of("build --cache-from after a change", &out);
    assert_eq!(stdout.matches(" ---> Using cache").count(), 1, "{stdout}");
    assert_eq!(berthd.ok(&["run", "--rm", "e2e:changed"]), "other");
}

/// A `git daemon` serving `root` on 127.0.0.1, killed (it is our child) on drop.
struct GitDaemon {
    child: Child,
    port: u16,
}

impl GitDaemon {
    fn start(root: &Path) -> GitDaemon {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("git")
            .args([
                "daemon",
                "--reuseaddr",
                "--export-all",
                "--listen=127.0.0.1",
            ])
            .arg(format!("--port={port}"))
            .arg(format!("--base-path={}", root.display()))
            .arg(root)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("git daemon (apt-get install git)");
        let daemon = GitDaemon { child, port };
        for _ in 0..200 {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return daemon;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        panic!("git daemon did not listen on 127.0.0.1:{port}");
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=e2e", "-c", "user.email=e2e@berth"])
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .expect("git");
    assert!(out.status.success(), "git {args:?}: {out:?}");
}

#[test]
fn add_of_a_git_repository_takes_the_ref_and_subdirectory_as_buildkit_does() {
    // srv/repo.git: tag v1 has sub/a = one, main (the default branch) has sub/a = two.
    let repos = tempfile::tempdir().expect("tempdir");
    let work = repos.path().join("work");
    std::fs::create_dir_all(work.join("sub")).expect("mkdir");
    git(&work, &["init", "-q", "-b", "main"]);
    for text in ["one", "two"] {
        std::fs::write(work.join("sub/a"), format!("{text}\n")).expect("write");
        std::fs::write(work.join("top"), "top\n").expect("write");
        git(&work, &["add", "."]);
        git(&work, &["commit", "-q", "-m", text]);
        if text == "one" {
            git(&work, &["tag", "v1"]);
        }
    }
    let srv = repos.path().join("srv");
    std::fs::create_dir_all(&srv).expect("mkdir");
    git(
        &srv,
        &[
            "clone",
            "-q",
            "--bare",
            work.to_str().expect("utf-8"),
            "repo.git",
        ],
    );
    let daemon = GitDaemon::start(&srv);
    let url = format!("git://127.0.0.1:{}/repo.git", daemon.port);

    let berthd = Berthd::start();
    berthd.import_busybox();
    let ctx = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!(
            "FROM busybox\nADD {url}#v1:sub /src\nADD {url} /full/\nADD --keep-git-dir=true {url}#main /kept\n"
        ),
    )
    .expect("write");
    let out = berthd.docker_build(ctx.path(), &["-t", "e2e:git"]);
    berthd.stdout_of("build with ADD <git>", &out);
    let shown = berthd.ok(&[
        "run",
        "--rm",
        "e2e:git",
        "sh",
        "-c",
        "cat /src/a /full/sub/a /full/top; ls -a /src | wc -l; test -e /full/.git || echo no-git; test -d /kept/.git && echo kept-git",
    ]);
    assert_eq!(shown, "one\ntwo\ntop\n3\nno-git\nkept-git", "{shown}");

    // Unchanged repository: the rebuild is all cache.
    let out = berthd.docker_build(ctx.path(), &["-t", "e2e:git"]);
    let stdout = berthd.stdout_of("rebuild with ADD <git>", &out);
    assert_eq!(stdout.matches(" ---> Using cache").count(), 3, "{stdout}");

    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM busybox\nADD {url}#nope /x\n"),
    )
    .expect("write");
    let out = berthd.docker_build(ctx.path(), &["-t", "e2e:nope"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("repository does not contain ref nope"),
        "{stderr}"
    );
    assert_eq!(berthd.ok(&["ps", "-aq"]), "", "no container left behind");
}
