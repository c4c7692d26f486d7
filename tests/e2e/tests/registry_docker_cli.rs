//! The real docker CLI (v28) through a private Debian dockerd 20.10 against berth-registry
//! on 127.0.0.1 (a loopback registry is insecure by default in Docker): push of an imported
//! busybox image, a second tag and a second repository sharing its layer (existence check
//! and cross-repository mount), rmi and pull back with identical digests and image IDs; and
//! `docker login` plus push and pull with berth-registry's htpasswd (bcrypt) basic auth.
//!
//! dockerd and berth-registry are private (own roots, socket, pid), stopped by PID, and
//! their roots unmounted and removed on drop, also when a test fails. No container runs, so
//! dockerd creates no cgroup.

use std::fs;
use std::process::{Command, Output};

use berth_e2e::daemon::{Daemon, Dockerd};
use berth_e2e::image_tar::BusyboxTar;
use berth_e2e::registry::{Registry, PASSWORD, USER};

/// The busybox-static rootfs tarball `docker import` takes.
fn busybox_tar() -> Vec<u8> {
    fs::read(BusyboxTar::new().path()).expect("the busybox rootfs tarball")
}

fn image_id(dockerd: &Dockerd, name: &str) -> String {
    dockerd.ok(&["image", "inspect", "-f", "{{.Id}}", name])
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim().to_string()
}

/// The manifest digest from the `<tag>: digest: sha256:... size: N` line of a push.
fn pushed_digest(output: &str, tag: &str) -> String {
    let prefix = format!("{tag}: digest: ");
    output
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no digest line for {tag} in {output}"))
        .to_string()
}

fn repo_digests(dockerd: &Dockerd, name: &str) -> String {
    dockerd
        .ok(&["image", "inspect", "-f", "{{json .RepoDigests}}", name])
        .trim()
        .to_string()
}

#[test]
fn docker_push_and_pull_through_berth_registry_keep_digests_and_image_ids() {
    let registry = Registry::berth(false);
    let dockerd = Dockerd::start();
    let server = registry.server();
    let first = format!("{server}/bb:v1");
    let second_tag = format!("{server}/bb:v2");
    let other_repo = format!("{server}/other/bb:v3");
    let out = dockerd.docker_with_input(&["import", "-", &first], &busybox_tar());
    assert!(out.status.success(), "import: {}", text(&out.stderr));
    let id = image_id(&dockerd, &first);
    dockerd.ok(&["tag", &first, &second_tag]);
    dockerd.ok(&["tag", &first, &other_repo]);

    let pushed = dockerd.ok(&["push", &first]);
    assert!(
        pushed.starts_with(&format!("The push refers to repository [{server}/bb]")),
        "{pushed}"
    );
    assert!(pushed.contains(": Pushed"), "{pushed}");
    let digest = pushed_digest(&pushed, "v1");
    // Same repository, second tag: the layer is found by the HEAD existence check.
    let again = dockerd.ok(&["push", &second_tag]);
    assert!(again.contains(": Layer already exists"), "{again}");
    assert_eq!(pushed_digest(&again, "v2"), digest);
    // Another repository: dockerd asks for a cross-repository mount from bb.
    let mounted = dockerd.ok(&["push", &other_repo]);
    assert!(mounted.contains(": Mounted from bb"), "{mounted}");
    assert_eq!(pushed_digest(&mounted, "v3"), digest);

    // The registry serves the manifest under every tag with the same digest.
    for (repo, tag) in [("bb", "v1"), ("bb", "v2"), ("other/bb", "v3")] {
        let head = Command::new("curl")
            .args(["-sS", "-I", "-H"])
            .arg("Accept: application/vnd.docker.distribution.manifest.v2+json")
            .arg(format!("http://{server}/v2/{repo}/manifests/{tag}"))
            .output()
            .expect("curl runs");
        let headers = text(&head.stdout).to_ascii_lowercase();
        assert!(
            headers.contains(&format!("docker-content-digest: {digest}")),
            "{repo}:{tag}: {headers}"
        );
    }

    for name in [&first, &second_tag, &other_repo] {
        dockerd.ok(&["rmi", name]);
    }
    assert!(dockerd.ok(&["images", "-q"]).trim().is_empty());
    for (name, tag) in [(&first, "v1"), (&other_repo, "v3")] {
        let pulled = dockerd.ok(&["pull", name]);
        assert!(pulled.contains(&format!("Digest: {digest}")), "{pulled}");
        assert!(
            pulled.contains(&format!("Status: Downloaded newer image for {name}")),
            "{tag}: {pulled}"
        );
        assert_eq!(image_id(&dockerd, name), id, "{tag}: same image id");
    }
    assert!(repo_digests(&dockerd, &first).contains(&format!("{server}/bb@{digest}")));
    assert!(repo_digests(&dockerd, &other_repo).contains(&format!("{server}/other/bb@{digest}")));
    let by_digest = format!("{server}/bb@{digest}");
    let pulled = dockerd.ok(&["pull", &by_digest]);
    assert!(pulled.contains(&format!("Digest: {digest}")), "{pulled}");
    assert_eq!(image_id(&dockerd, &by_digest), id);
    // The image runs nowhere, but its root filesystem round-tripped: save lists busybox.
    let saved = dockerd.docker(&["save", &first]);
    assert!(saved.status.success(), "save: {}", text(&saved.stderr));
    assert!(!saved.stdout.is_empty());
}

fn login(dockerd: &Dockerd, server: &str, password: &str) -> Output {
    dockerd.docker_with_input(
        &["login", "-u", USER, "--password-stdin", server],
        password.as_bytes(),
    )
}

#[test]
fn docker_login_then_push_and_pull_with_berth_registry_htpasswd() {
    let registry = Registry::berth(true);
    let dockerd = Dockerd::start();
    let server = registry.server();
    let name = format!("{server}/private/bb:1");
    let out = dockerd.docker_with_input(&["import", "-", &name], &busybox_tar());
    assert!(out.status.success(), "import: {}", text(&out.stderr));
    let id = image_id(&dockerd, &name);

    let wrong = login(&dockerd, &server, "nope");
    assert_eq!(wrong.status.code(), Some(1), "{}", text(&wrong.stdout));
    assert!(
        text(&wrong.stderr).contains("401 Unauthorized"),
        "{}",
        text(&wrong.stderr)
    );
    // Without credentials the push is refused.
    let anonymous = dockerd.docker(&["push", &name]);
    assert_eq!(
        anonymous.status.code(),
        Some(1),
        "{}",
        text(&anonymous.stdout)
    );
    assert!(
        text(&anonymous.stderr).contains("no basic auth credentials"),
        "{}",
        text(&anonymous.stderr)
    );

    let ok = login(&dockerd, &server, PASSWORD);
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    assert!(
        text(&ok.stdout).contains("Login Succeeded"),
        "{}",
        text(&ok.stdout)
    );
    let config = fs::read_to_string(dockerd.root().join("cli/config.json")).expect("config.json");
    assert!(config.contains(&server), "{config}");

    let pushed = dockerd.ok(&["push", &name]);
    let digest = pushed_digest(&pushed, "1");
    dockerd.ok(&["rmi", &name]);
    let pulled = dockerd.ok(&["pull", &name]);
    assert!(pulled.contains(&format!("Digest: {digest}")), "{pulled}");
    assert_eq!(image_id(&dockerd, &name), id);

    // After logout the registry refuses the pull again.
    dockerd.ok(&["logout", &server]);
    dockerd.ok(&["rmi", &name]);
    let refused = dockerd.docker(&["pull", &name]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused.stdout));
}
