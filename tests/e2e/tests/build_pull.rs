//! `docker build` (docker CLI 28, DOCKER_BUILDKIT=0) whose FROM image is in a local
//! registry (Debian's docker-registry on 127.0.0.1), as dockerd's classic builder does it:
//! an image that is not here is pulled, one that is here is used as is unless `--pull`
//! asks for the registry's, and one the registry does not have fails the build.

use std::path::Path;

use berth_e2e::daemon::{run_command, Berthd, Daemon};
use berth_e2e::registry::Registry;

fn build(berthd: &Berthd, dir: &Path, args: &[&str]) -> (bool, String) {
    let mut cmd = berthd.command(&["build"]);
    cmd.env("DOCKER_BUILDKIT", "0").args(args).arg(dir);
    let out = run_command(&mut cmd);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn from_images_are_pulled_when_missing_and_again_with_pull() {
    let registry = Registry::distribution();
    let berthd = Berthd::start();
    berthd.import_busybox();
    let base = format!("{}/e2e/base:1", registry.server());
    berthd.ok(&["tag", "busybox", &base]);
    berthd.ok(&["push", &base]);
    berthd.ok(&["rmi", &base]);
    let ctx = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {base}\nRUN (test -f /marker && echo marker || echo plain) > /seen\n"),
    )
    .expect("Dockerfile");
    let seen = |tag: &str| berthd.ok(&["run", "--rm", tag, "cat", "/seen"]);

    // Not here: pulled.
    let (ok, text) = build(&berthd, ctx.path(), &["-t", "e2e:pulled"]);
    assert!(ok, "{text}");
    // The pull's steps in the build's output, after the FROM step, as dockerd shows them.
    let from = text.find("Step 1/2 : FROM").expect("the FROM step");
    let pulling = text
        .find("1: Pulling from e2e/base\n")
        .expect("the pull's first line");
    assert!(from < pulling, "{text}");
    assert!(
        text.contains(&format!("Status: Downloaded newer image for {base}\n")),
        "{text}"
    );
    assert_eq!(seen("e2e:pulled"), "plain");
    berthd.ok(&["image", "inspect", &base]);

    // The registry gets a newer base under the same tag; the local tag stays the old one.
    berthd.ok(&["run", "--name", "marker", "busybox", "touch", "/marker"]);
    berthd.ok(&["commit", "marker", &base]);
    berthd.ok(&["rm", "marker"]);
    berthd.ok(&["push", &base]);
    berthd.ok(&["tag", "busybox", &base]);

    let (ok, text) = build(&berthd, ctx.path(), &["-t", "e2e:local"]);
    assert!(ok, "{text}");
    assert_eq!(
        seen("e2e:local"),
        "plain",
        "without --pull the local base is used"
    );
    let (ok, text) = build(&berthd, ctx.path(), &["--pull", "-t", "e2e:fresh"]);
    assert!(ok, "{text}");
    assert_eq!(
        seen("e2e:fresh"),
        "marker",
        "--pull takes the registry's base"
    );

    // Not in the registry: the build fails with the pull's error and leaves no image.
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {}/e2e/absent:1\n", registry.server()),
    )
    .expect("Dockerfile");
    let (ok, text) = build(&berthd, ctx.path(), &["-t", "e2e:absent"]);
    assert!(!ok, "{text}");
    assert!(
        text.contains("not found") || text.contains("manifest unknown"),
        "{text}"
    );
    assert!(!berthd
        .docker(&["image", "inspect", "e2e:absent"])
        .status
        .success());
}
