//! Private registries on a free 127.0.0.1 port for push/pull tests (a loopback registry is
//! insecure by default for Docker): Debian's docker-registry (distribution 2.8) or
//! berth-registry from `BERTH_BIN_DIR`, optionally with htpasswd basic auth for
//! [`USER`]:[`PASSWORD`]. Stopped by PID and their roots removed on drop.

use std::fs::{self, File};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::berthd::{bin_dir, stop_child};
use crate::teardown::remove_root;

/// Debian's docker-registry (package docker-registry).
pub const DISTRIBUTION: &str = "/usr/bin/docker-registry";
/// The user an auth registry accepts.
pub const USER: &str = "alice";
/// [`USER`]'s password.
pub const PASSWORD: &str = "s3cret";

/// How long a registry may take to listen before the test fails (a hang guard).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running private registry.
pub struct Registry {
    root: PathBuf,
    child: Option<Child>,
    port: u16,
}

impl Registry {
    /// Debian's docker-registry, no auth.
    pub fn distribution() -> Registry {
        assert!(
            Path::new(DISTRIBUTION).is_file(),
            "{DISTRIBUTION} is missing: install docker-registry (scripts/setup.sh does)"
        );
        let (root, port) = prepare("rg-");
        let config = format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            root.join("data").display()
        );
        fs::write(root.join("config.yml"), config).expect("registry config.yml");
        let mut cmd = Command::new(DISTRIBUTION);
        cmd.arg("serve").arg(root.join("config.yml"));
        Registry::spawn(root, port, cmd)
    }

    /// berth-registry, with htpasswd (bcrypt) auth for [`USER`] when `auth`.
    pub fn berth(auth: bool) -> Registry {
        let binary = bin_dir().join("berth-registry");
        assert!(
            binary.is_file(),
            "{} is missing: build the release binaries (scripts/test.sh does)",
            binary.display()
        );
        let (root, port) = prepare("rb-");
        let mut cmd = Command::new(binary);
        cmd.arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--root")
            .arg(root.join("data"));
        if auth {
            let hash = bcrypt::hash(PASSWORD, 4).expect("bcrypt hash");
            fs::write(root.join("htpasswd"), format!("{USER}:{hash}\n")).expect("htpasswd");
            cmd.arg("--htpasswd").arg(root.join("htpasswd"));
        }
        Registry::spawn(root, port, cmd)
    }

    fn spawn(root: PathBuf, port: u16, mut cmd: Command) -> Registry {
        let log = File::create(root.join("registry.log")).expect("registry.log");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{cmd:?} starts: {e}"));
        let mut registry = Registry {
            root,
            child: Some(child),
            port,
        };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(Ok(Some(status))) = registry.child.as_mut().map(Child::try_wait) {
                registry.child = None;
                panic!("the registry exited ({status}):\n{}", registry.log());
            }
            assert!(
                started.elapsed() < START_TIMEOUT,
                "the registry did not listen:\n{}",
                registry.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        registry
    }

    /// `127.0.0.1:<port>`, the registry part of image names.
    pub fn server(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// What the registry logged.
    pub fn log(&self) -> String {
        fs::read_to_string(self.root.join("registry.log")).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = stop_child(&mut child);
        }
        remove_root(&self.root);
    }
}

/// A fresh directory under /tmp and a free loopback port.
fn prepare(prefix: &str) -> (PathBuf, u16) {
    let root = tempfile::Builder::new()
        .prefix(prefix)
        .rand_bytes(6)
        .tempdir_in("/tmp")
        .expect("a temporary directory under /tmp")
        .keep();
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port();
    (root, port)
}
