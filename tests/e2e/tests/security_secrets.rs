//! Secrets without swarm against one private berthd: `berth secret create/ls/inspect/rm`,
//! `berth run --secret name,target=,uid=,gid=,mode=` read inside the container with its
//! owner and mode, and the plaintext nowhere it must not be: not under the data root (while
//! the container runs and after a commit), not in inspect, logs, a commit or an export; the
//! container's secrets tmpfs is gone once it stops; a used secret cannot be removed. The
//! docker CLI's `secret` commands work against berthd as against a swarm manager.

use std::path::Path;
use std::process::{Command, Output};

use berth_e2e::daemon::{run_command, run_command_with_input, Berthd, Daemon};

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).trim().to_string(),
    )
}

fn berth_command(berthd: &Berthd, args: &[&str]) -> Command {
    berthd.berth_command(args)
}

fn berth_ok(berthd: &Berthd, args: &[&str]) -> String {
    let out = run_command(&mut berth_command(berthd, args));
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "berth {args:?}: {stderr}\n{stdout}");
    stdout
}

/// Files under `root` (mounts included) whose bytes contain `needle`.
fn files_containing(root: &Path, needle: &str) -> Vec<String> {
    let out = Command::new("grep")
        .args(["-rlaF", "--no-messages", needle])
        .arg(root)
        .output()
        .expect("grep");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

fn plaintext() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("berth-plaintext-{}-{nanos}", std::process::id())
}

#[test]
fn secrets_reach_only_the_container_that_asks_for_them() {
    let berthd = Berthd::start();
    berthd.import_busybox();
    let secret = plaintext();
    let data_root = berthd.data_root();

    let out = run_command_with_input(
        &mut berth_command(
            &berthd,
            &["secret", "create", "--label", "app=web", "db_pw", "-"],
        ),
        secret.as_bytes(),
    );
    let (id, stderr) = text(&out);
    assert!(out.status.success(), "secret create: {stderr}");
    assert_eq!(id.len(), 25, "swarm-style ID: {id}");
    assert!(files_containing(&data_root, &secret).is_empty());

    let listed = berth_ok(&berthd, &["secret", "ls", "--format", "{{.ID}} {{.Name}}"]);
    assert_eq!(listed, format!("{id} db_pw"));
    let inspected = berth_ok(&berthd, &["secret", "inspect", "db_pw"]);
    assert!(inspected.contains("\"app\": \"web\""), "{inspected}");
    assert!(!inspected.contains(&secret) && !inspected.contains("\"Data\""));
    let duplicate = run_command(&mut berth_command(
        &berthd,
        &["secret", "create", "db_pw", "/etc/hostname"],
    ));
    assert!(text(&duplicate).1.contains("secret db_pw already exists"));

    let container = berth_ok(
        &berthd,
        &[
            "run",
            "-d",
            "--name",
            "s1",
            "--secret",
            "db_pw,target=app/pw,uid=1000,gid=1001,mode=0440",
            "--secret",
            "db_pw",
            "busybox",
            "sleep",
            "1000",
        ],
    );
    assert_eq!(
        berthd.ok(&["exec", "s1", "cat", "/run/secrets/app/pw"]),
        secret
    );
    assert_eq!(
        berthd.ok(&["exec", "s1", "cat", "/run/secrets/db_pw"]),
        secret
    );
    assert_eq!(
        berthd.ok(&[
            "exec",
            "s1",
            "stat",
            "-c",
            "%u %g %a",
            "/run/secrets/app/pw"
        ]),
        "1000 1001 440"
    );
    assert_eq!(
        berthd.ok(&["exec", "s1", "stat", "-c", "%u %g %a", "/run/secrets/db_pw"]),
        "0 0 444"
    );
    let as_owner = berthd.ok(&[
        "exec",
        "-u",
        "1000:1001",
        "s1",
        "cat",
        "/run/secrets/app/pw",
    ]);
    assert_eq!(as_owner, secret);
    let stranger = berthd.docker(&[
        "exec",
        "-u",
        "2000:2000",
        "s1",
        "cat",
        "/run/secrets/app/pw",
    ]);
    assert!(!stranger.status.success(), "mode 0440 let uid 2000 read");
    let write = berthd.docker(&["exec", "s1", "sh", "-c", "echo x > /run/secrets/db_pw"]);
    assert!(!write.status.success(), "the secrets mount is writable");

    assert_eq!(files_containing(&data_root, &secret), Vec::<String>::new());
    let inspect = berthd.ok(&["inspect", "s1"]);
    assert!(!inspect.contains(&secret));
    assert!(inspect.contains("\"BerthSecrets\""), "references are shown");
    assert!(!berthd.ok(&["logs", "s1"]).contains(&secret));

    berthd.ok(&["commit", "s1", "committed:secrets"]);
    let in_image = berthd.docker(&[
        "run",
        "--rm",
        "committed:secrets",
        "sh",
        "-c",
        "cat /run/secrets/* 2>/dev/null; true",
    ]);
    assert!(
        !text(&in_image).0.contains(&secret),
        "the commit carries the secret"
    );
    let export = berthd.docker(&["export", "s1"]);
    assert!(export.status.success(), "export: {}", text(&export).1);
    assert!(!String::from_utf8_lossy(&export.stdout).contains(&secret));
    assert_eq!(files_containing(&data_root, &secret), Vec::<String>::new());

    let in_use = run_command(&mut berth_command(&berthd, &["secret", "rm", "db_pw"]));
    assert!(!in_use.status.success());
    assert!(text(&in_use)
        .1
        .contains("in use by the following containers: s1"));

    berthd.ok(&["stop", "-t", "0", "s1"]);
    let tmpfs = berthd.exec_root().join("secrets").join(&container);
    // The exit's cleanup runs once the monitor saw the exit (stop may answer first).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while tmpfs.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(!tmpfs.exists(), "{} left after stop", tmpfs.display());
    berthd.ok(&["start", "s1"]);
    assert_eq!(
        berthd.ok(&["exec", "s1", "cat", "/run/secrets/db_pw"]),
        secret
    );
    berthd.ok(&["rm", "-f", "s1"]);
    assert!(!tmpfs.exists(), "{} left after rm", tmpfs.display());

    let missing = berthd.docker(&["create", "busybox"]);
    assert!(missing.status.success());
    let refused = run_command(&mut berth_command(
        &berthd,
        &["create", "--secret", "nope", "busybox"],
    ));
    assert!(
        text(&refused).1.contains("secret nope not found"),
        "{:?}",
        text(&refused)
    );

    berth_ok(&berthd, &["secret", "rm", "db_pw"]);
    assert_eq!(berth_ok(&berthd, &["secret", "ls", "-q"]), "");
}

/// The docker CLI 28 does not gate `docker secret` on swarm state: against berthd it
/// creates, lists, inspects and removes secrets through the same API.
#[test]
fn docker_cli_secret_commands_work_against_berthd() {
    let berthd = Berthd::start();
    let out = berthd.docker_with_input(&["secret", "create", "api_key", "-"], b"k3y-material");
    let (id, stderr) = text(&out);
    assert!(out.status.success(), "docker secret create: {stderr}");
    let listed = berthd.ok(&["secret", "ls", "--format", "{{.ID}} {{.Name}}"]);
    assert_eq!(listed, format!("{id} api_key"));
    let name = berthd.ok(&["secret", "inspect", "--format", "{{.Spec.Name}}", &id[..8]]);
    assert_eq!(name, "api_key");
    let pretty = berthd.ok(&["secret", "inspect", "--pretty", "api_key"]);
    assert!(
        pretty.contains("api_key") && !pretty.contains("k3y-material"),
        "{pretty}"
    );
    let duplicate = berthd.docker_with_input(&["secret", "create", "api_key", "-"], b"x");
    assert!(
        text(&duplicate).1.contains("already exists"),
        "{:?}",
        text(&duplicate)
    );
    assert_eq!(berthd.ok(&["secret", "rm", "api_key"]), "api_key");
    let gone = berthd.docker(&["secret", "inspect", "api_key"]);
    assert!(text(&gone).1.contains("not found"), "{:?}", text(&gone));
}
