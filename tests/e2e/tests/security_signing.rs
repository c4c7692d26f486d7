//! Signed images against berth-registry on 127.0.0.1 and one private berthd: `berth image
//! keygen`/openssl keys, `berth image sign` and `verify` (cosign's signature tag and
//! payload), and the trust policy (`signature-policy` in daemon.json) enforced on pull and
//! on run's implicit pull: a signed image pulls, one signed by another key, one from a
//! rejected repository and one whose tag was moved to an unsigned manifest are refused,
//! and a broken policy file refuses pulls with a clear error.

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
}
