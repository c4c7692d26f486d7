//! Signed images against berth-registry on 127.0.0.1 and one private berthd: `berth image
//! keygen`/openssl keys, `berth image sign` and `verify` (cosign's signature tag and
//! payload), and the trust policy (`signature-policy` in daemon.json) enforced on pull, on
//! run's implicit pull, on create/run of a local image and on build's FROM: a signed image
//! pulls and runs, one signed by another key, one from a rejected repository and one whose
//! tag was moved to an unsigned manifest are refused; a local retag under a signed name, a
//! verified image once its key left the policy, and a broken policy file refuse create and
//! FROM with a clear error and leave no container behind.

use std::path::Path;
use std::process::{Command, Output};

use berth_e2e::daemon::{run_command, Berthd, Daemon};
use berth_e2e::registry::Registry;

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).trim().to_string(),
    )
}

fn berth(berthd: &Berthd, args: &[&str]) -> Output {
    run_command(&mut berthd.berth_command(args))
}

fn berth_ok(berthd: &Berthd, args: &[&str]) -> String {
    let out = berth(berthd, args);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "berth {args:?}: {stderr}\n{stdout}");
    stdout
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl");
    assert!(out.status.success(), "openssl {args:?}: {}", text(&out).1);
}

fn refused(berthd: &Berthd, args: &[&str], want: &str) {
    let out = berthd.docker(args);
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "docker {args:?} succeeded: {stdout}");
    assert!(
        stderr.contains(want),
        "docker {args:?}: want {want:?} in {stderr}"
    );
}

/// Every container, running or not (`docker ps -aq`).
fn containers(berthd: &Berthd) -> String {
    berthd.ok(&["ps", "-aq"])
}

/// `docker build` (classic builder) of `FROM image`; the output whatever the exit code.
fn build_from(berthd: &Berthd, image: &str) -> Output {
    let dir = tempfile::tempdir().expect("context");
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!("FROM {image}\nRUN true\n"),
    )
    .expect("Dockerfile");
    let mut cmd = berthd.command(&["build", "-q"]);
    cmd.env("DOCKER_BUILDKIT", "0").arg(dir.path());
    run_command(&mut cmd)
}

/// Create, run and build FROM `image` are all refused with `want`, and no container is left.
fn refused_locally(berthd: &Berthd, image: &str, want: &str) {
    let before = containers(berthd);
    refused(berthd, &["create", image, "true"], want);
    refused(berthd, &["run", "--rm", image, "true"], want);
    let built = build_from(berthd, image);
    let (stdout, stderr) = text(&built);
    assert!(
        !built.status.success() && format!("{stdout}{stderr}").contains(want),
        "build FROM {image}: want {want:?} in {stdout} {stderr}"
    );
    assert_eq!(
        containers(berthd),
        before,
        "a refused create left a container"
    );
}

fn write_policy(path: &Path, server: &str, trusted: &Path) {
    let policy = serde_json::json!({
        "default": [{"type": "insecureAcceptAnything"}],
        "transports": {"docker": {
            format!("{server}/signed"): [{"type": "sigstoreSigned", "keyPath": trusted}],
            format!("{server}/blocked"): [{"type": "reject"}],
        }},
    });
    std::fs::write(path, policy.to_string()).expect("policy");
}

#[test]
fn signatures_are_made_verified_and_enforced_on_pull() {
    let registry = Registry::berth(false);
    let server = registry.server();
    let keys = tempfile::tempdir().expect("tempdir");
    let policy_path = keys.path().join("policy.json");
    let mut daemon_json = serde_json::Map::new();
    daemon_json.insert(
        "signature-policy".to_string(),
        policy_path.display().to_string().into(),
    );
    let berthd = Berthd::start_with(daemon_json);
    berthd.import_busybox();

    let prefix = keys.path().join("trusted");
    berth_ok(
        &berthd,
        &[
            "image",
            "keygen",
            "--output-key-prefix",
            &prefix.display().to_string(),
        ],
    );
    let (trusted_key, trusted_pub) = (
        keys.path().join("trusted.key"),
        keys.path().join("trusted.pub"),
    );
    let (other_key, other_pub) = (keys.path().join("other.key"), keys.path().join("other.pub"));
    let other_key_text = other_key.display().to_string();
    openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        &other_key_text,
    ]);
    openssl(&[
        "pkey",
        "-in",
        &other_key_text,
        "-pubout",
        "-out",
        &other_pub.display().to_string(),
    ]);
    write_policy(&policy_path, &server, &trusted_pub);

    let good = format!("{server}/signed/app:v1");
    let forged = format!("{server}/signed/forged:v1");
    let blocked = format!("{server}/blocked/app:v1");
    let open = format!("{server}/open/app:v1");
    for image in [&good, &forged, &blocked, &open] {
        berthd.ok(&["tag", "busybox:latest", image]);
        berthd.ok(&["push", image]);
    }
    let trusted = trusted_key.display().to_string();
    let signed = berth_ok(&berthd, &["image", "sign", "--key", &trusted, &good]);
    assert!(signed.contains(".sig"), "{signed}");
    berth_ok(
        &berthd,
        &["image", "sign", "--key", &other_key_text, &forged],
    );

    let pub_text = trusted_pub.display().to_string();
    let verified = berth_ok(&berthd, &["image", "verify", "--key", &pub_text, &good]);
    assert!(verified.contains("1 valid signature"), "{verified}");
    let wrong = berth(
        &berthd,
        &[
            "image",
            "verify",
            "--key",
            &other_pub.display().to_string(),
            &good,
        ],
    );
    assert!(!wrong.status.success(), "verified with the wrong key");
    let unsigned = berth(&berthd, &["image", "verify", "--key", &pub_text, &open]);
    assert!(
        text(&unsigned).1.contains("no signature found"),
        "{:?}",
        text(&unsigned)
    );

    for image in [&good, &forged, &blocked, &open] {
        berthd.ok(&["rmi", image]);
    }
    berthd.ok(&["pull", &good]);
    berthd.ok(&["pull", &open]);
    // Verified at pull: create, run and build FROM accept it.
    berthd.ok(&["run", "--rm", &good, "true"]);
    let built = build_from(&berthd, &good);
    assert!(
        built.status.success(),
        "build FROM {good}: {:?}",
        text(&built)
    );
    berthd.ok(&["run", "--rm", &open, "true"]);
    // A local image under a signed name has no verified signature, whatever its tag says.
    let retagged = format!("{server}/signed/retagged:v1");
    berthd.ok(&["tag", "busybox:latest", &retagged]);
    refused_locally(
        &berthd,
        &retagged,
        "has no signature by a trusted key verified at pull",
    );
    let blocked_local = format!("{server}/blocked/local:v1");
    berthd.ok(&["tag", "busybox:latest", &blocked_local]);
    refused_locally(
        &berthd,
        &blocked_local,
        "the trust policy rejects images from",
    );
    // Its key leaves the policy: the image verified at pull no longer runs.
    write_policy(&policy_path, &server, &other_pub);
    refused_locally(
        &berthd,
        &good,
        "has no signature by a trusted key verified at pull",
    );
    write_policy(&policy_path, &server, &trusted_pub);
    berthd.ok(&["run", "--rm", &good, "true"]);
    refused(
        &berthd,
        &["pull", &forged],
        "requires a signature by a trusted key",
    );
    refused(
        &berthd,
        &["run", "--rm", &forged, "true"],
        "requires a signature",
    );
    refused(
        &berthd,
        &["pull", &blocked],
        "the trust policy rejects images from",
    );

    // Moving the signed tag to another manifest: the new digest has no signature.
    berthd.ok(&["run", "--name", "changed", "busybox", "touch", "/tampered"]);
    berthd.ok(&["commit", "changed", &good]);
    berthd.ok(&["push", &good]);
    berthd.ok(&["rmi", &good]);
    refused(&berthd, &["pull", &good], "no signature found");
    let moved = berth(&berthd, &["image", "verify", "--key", &pub_text, &good]);
    assert!(!moved.status.success(), "a moved tag verified");

    std::fs::write(&policy_path, "{\"default\": [{\"type\": \"signedBy\"}]}").expect("policy");
    refused(&berthd, &["pull", &open], "invalid trust policy");
    refused_locally(&berthd, &open, "invalid trust policy");
}
