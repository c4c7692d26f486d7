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
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const DOCKER: &str = "/usr/local/bin/docker";
const DOCKERD: &str = "/usr/sbin/dockerd";
/// Hang guard for daemons to come up (not a performance assertion).
const START_TIMEOUT: Duration = Duration::from_secs(120);

fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() == 0 };
    assert!(
        root,
        "registry_docker_cli needs root (run the e2e suite through scripts/test.sh)"
    );
}

fn bin_dir() -> PathBuf {
    std::env::var_os("BERTH_BIN_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/release"),
        PathBuf::from,
    )
}

fn ping(socket: &Path) -> bool {
    let Ok(mut stream) = UnixStream::connect(socket) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    if stream
        .write_all(b"GET /_ping HTTP/1.0\r\nHost: x\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.") && answer.contains(" 200 ")
}

/// Unmounts everything under `root` (deepest first) and removes it.
fn remove_root(root: &Path) {
    let prefix = root.display().to_string();
    let mut mounts: Vec<String> = fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .filter(|m| m.starts_with(&prefix))
        .collect();
    mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for m in mounts {
        let _ = Command::new("umount").arg("-l").arg(&m).status();
    }
    let _ = fs::remove_dir_all(root);
}

/// Sends SIGTERM, waits, then SIGKILL: only this child, by its PID.
fn stop_child(child: &mut Child, grace: Duration) {
    let pid = child.id() as i32;
    // SAFETY: kill(2) on the PID of a child we spawned and have not reaped.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn temp_root(prefix: &str) -> PathBuf {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in("/tmp")
        .expect("tempdir")
        .keep()
}

/// A private dockerd 20.10 and the docker CLI pointed at it.
struct Dockerd {
    root: PathBuf,
    child: Option<Child>,
}

impl Dockerd {
    fn start() -> Dockerd {
        require_root();
        assert!(
            Path::new(DOCKERD).exists(),
            "{DOCKERD} is missing (install docker.io)"
        );
        let root = temp_root("rdc-");
        fs::create_dir_all(root.join("cli")).expect("cli dir");
        fs::write(root.join("daemon.json"), b"{}").expect("daemon.json");
        let name = root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let log = fs::File::create(root.join("daemon.log")).expect("log");
        let child = Command::new(DOCKERD)
            .arg("--config-file")
            .arg(root.join("daemon.json"))
            .arg("--data-root")
            .arg(root.join("data"))
            .arg("--exec-root")
            .arg(root.join("exec"))
            .arg("--pidfile")
            .arg(root.join("d.pid"))
            .arg("-H")
            .arg(format!("unix://{}", root.join("d.sock").display()))
            .args(["--iptables=false", "--ip-masq=false", "--bridge=none"])
            .arg("--cgroup-parent")
            .arg(format!("berth-e2e-{name}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("dockerd starts");
        let mut daemon = Dockerd {
            root,
            child: Some(child),
        };
        let started = Instant::now();
        while !ping(&daemon.root.join("d.sock")) {
            if let Some(Ok(Some(status))) = daemon.child.as_mut().map(Child::try_wait) {
                daemon.child = None;
                panic!("dockerd exited ({status}):\n{}", daemon.log());
            }
            assert!(
                started.elapsed() < START_TIMEOUT,
                "dockerd did not come up:\n{}",
                daemon.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        daemon
    }

    fn log(&self) -> String {
        fs::read_to_string(self.root.join("daemon.log")).unwrap_or_default()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(DOCKER);
        cmd.env("DOCKER_CONFIG", self.root.join("cli"))
            .env_remove("DOCKER_HOST")
            .arg("-H")
            .arg(format!("unix://{}", self.root.join("d.sock").display()))
            .args(args);
        cmd
    }

    fn docker(&self, args: &[&str]) -> Output {
        self.command(args)
            .stdin(Stdio::null())
            .output()
            .expect("docker CLI runs")
    }

    /// Runs docker and asserts success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "docker {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs docker with `input` on stdin.
    fn with_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("docker CLI runs");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input)
            .expect("write stdin");
        child.wait_with_output().expect("docker CLI ends")
    }

    fn image_id(&self, name: &str) -> String {
        self.ok(&["image", "inspect", "-f", "{{.Id}}", name])
            .trim()
            .to_string()
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop_child(&mut child, Duration::from_secs(30));
        }
        remove_root(&self.root);
    }
}

/// berth-registry (from `BERTH_BIN_DIR`) on a free 127.0.0.1 port, with htpasswd auth for
/// `alice:s3cret` when asked.
struct BerthRegistry {
    root: PathBuf,
    child: Child,
    port: u16,
}

impl BerthRegistry {
    fn start(auth: bool) -> BerthRegistry {
        let binary = bin_dir().join("berth-registry");
        assert!(
            binary.is_file(),
            "{} is missing (build the release binaries or set BERTH_BIN_DIR)",
            binary.display()
        );
        let root = temp_root("rdr-");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let mut cmd = Command::new(binary);
        cmd.arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--root")
            .arg(root.join("data"));
        if auth {
            let hash = bcrypt::hash("s3cret", 4).expect("bcrypt");
            fs::write(root.join("htpasswd"), format!("alice:{hash}\n")).expect("htpasswd");
            cmd.arg("--htpasswd").arg(root.join("htpasswd"));
        }
        let log = fs::File::create(root.join("registry.log")).expect("log");
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("berth-registry starts");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if started.elapsed() > START_TIMEOUT {
                stop_child(&mut child, Duration::from_secs(5));
                remove_root(&root);
                panic!("berth-registry did not come up");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        BerthRegistry { root, child, port }
    }

    fn server(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for BerthRegistry {
    fn drop(&mut self) {
        stop_child(&mut self.child, Duration::from_secs(10));
        remove_root(&self.root);
    }
}

/// A header with every numeric field filled, as real tar tools write them.
fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h
}

/// A busybox-static rootfs as a tar (what `docker import` takes).
fn busybox_tar() -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.mode(tar::HeaderMode::Deterministic);
    let dir = header(tar::EntryType::Directory, 0o755, 0);
    for d in ["bin/", "etc/"] {
        builder
            .append_data(&mut dir.clone(), d, std::io::empty())
            .expect("dir");
    }
    builder
        .append_path_with_name("/bin/busybox", "bin/busybox")
        .expect("busybox (install busybox-static)");
    for applet in ["sh", "echo", "ls", "cat", "true"] {
        let mut link = header(tar::EntryType::Symlink, 0o777, 0);
        builder
            .append_link(&mut link, format!("bin/{applet}"), "busybox")
            .expect("applet");
    }
    let passwd = b"root:x:0:0:root:/root:/bin/sh\n";
    let mut file = header(tar::EntryType::Regular, 0o644, passwd.len() as u64);
    builder
        .append_data(&mut file, "etc/passwd", &passwd[..])
        .expect("passwd");
    builder.into_inner().expect("tar")
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
    let registry = BerthRegistry::start(false);
    let dockerd = Dockerd::start();
    let server = registry.server();
    let first = format!("{server}/bb:v1");
    let second_tag = format!("{server}/bb:v2");
    let other_repo = format!("{server}/other/bb:v3");
    let out = dockerd.with_stdin(&["import", "-", &first], &busybox_tar());
    assert!(out.status.success(), "import: {}", text(&out.stderr));
    let id = dockerd.image_id(&first);
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
        assert_eq!(dockerd.image_id(name), id, "{tag}: same image id");
    }
    assert!(repo_digests(&dockerd, &first).contains(&format!("{server}/bb@{digest}")));
    assert!(repo_digests(&dockerd, &other_repo).contains(&format!("{server}/other/bb@{digest}")));
    let by_digest = format!("{server}/bb@{digest}");
    let pulled = dockerd.ok(&["pull", &by_digest]);
    assert!(pulled.contains(&format!("Digest: {digest}")), "{pulled}");
    assert_eq!(dockerd.image_id(&by_digest), id);
    // The image runs nowhere, but its root filesystem round-tripped: save lists busybox.
    let saved = dockerd.docker(&["save", &first]);
    assert!(saved.status.success(), "save: {}", text(&saved.stderr));
    assert!(!saved.stdout.is_empty());
}

fn login(dockerd: &Dockerd, server: &str, password: &str) -> Output {
    dockerd.with_stdin(
        &["login", "-u", "alice", "--password-stdin", server],
        password.as_bytes(),
    )
}

#[test]
fn docker_login_then_push_and_pull_with_berth_registry_htpasswd() {
    let registry = BerthRegistry::start(true);
    let dockerd = Dockerd::start();
    let server = registry.server();
    let name = format!("{server}/private/bb:1");
    let out = dockerd.with_stdin(&["import", "-", &name], &busybox_tar());
    assert!(out.status.success(), "import: {}", text(&out.stderr));
    let id = dockerd.image_id(&name);

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

    let ok = login(&dockerd, &server, "s3cret");
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    assert!(
        text(&ok.stdout).contains("Login Succeeded"),
        "{}",
        text(&ok.stdout)
    );
    let config = fs::read_to_string(dockerd.root.join("cli/config.json")).expect("config.json");
    assert!(config.contains(&server), "{config}");

    let pushed = dockerd.ok(&["push", &name]);
    let digest = pushed_digest(&pushed, "1");
    dockerd.ok(&["rmi", &name]);
    let pulled = dockerd.ok(&["pull", &name]);
    assert!(pulled.contains(&format!("Digest: {digest}")), "{pulled}");
    assert_eq!(dockerd.image_id(&name), id);

    // After logout the registry refuses the pull again.
    dockerd.ok(&["logout", &server]);
    dockerd.ok(&["rmi", &name]);
    let refused = dockerd.docker(&["pull", &name]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused.stdout));
}
