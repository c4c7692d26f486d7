//! A private Debian dockerd (20.10, with its own containerd) for differential tests: its own
//! data root, exec root, pidfile, socket and cgroup parent, no iptables, no bridge (so its
//! default network is `none`), stopped by PID with everything it started removed on drop.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::berthd::stop_child;
use crate::daemon::{ping, Daemon};
use crate::require_root;
use crate::teardown::{entry_names, remove_root, teardown};

/// Debian's dockerd (package docker.io).
pub const DOCKERD: &str = "/usr/sbin/dockerd";

/// How long dockerd may take to come up before the test fails (a hang guard).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running private dockerd.
pub struct Dockerd {
    root: PathBuf,
    child: Option<Child>,
    /// Containers' cgroup parent, unique to this daemon (never Docker's shared `docker`).
    cgroup_parent: String,
    startup: Duration,
}

impl Dockerd {
    /// Starts dockerd (and the containerd it spawns) and waits until `/_ping` answers.
    pub fn start() -> Dockerd {
        require_root();
        assert!(
            Path::new(DOCKERD).exists(),
            "{DOCKERD} is missing: install Debian's docker.io (scripts/setup.sh does)"
        );
        let root = tempfile::Builder::new()
            .prefix("dd-")
            .rand_bytes(6)
            .tempdir_in("/tmp")
            .expect("a temporary directory under /tmp")
            .keep();
        let name = root
            .file_name()
            .expect("invariant: a tempdir has a name")
            .to_string_lossy()
            .into_owned();
        let cgroup_parent = format!("berth-e2e-{name}");
        fs::create_dir_all(root.join("cli")).expect("cli config dir");
        // Its containerd dumps goroutine stacks into $TMPDIR when it is slow to stop
        // (`containerd.<pid>.stacks.log`): into the fixture's root, removed on drop.
        fs::create_dir_all(root.join("tmp")).expect("tmp dir");
        let config = root.join("daemon.json");
        fs::write(&config, b"{}").expect("daemon.json");
        let log = File::create(root.join("dockerd.log")).expect("dockerd.log");
        let spawned = Instant::now();
        let child = Command::new(DOCKERD)
            .arg("--config-file")
            .arg(&config)
            .arg("--data-root")
            .arg(root.join("data"))
            .arg("--exec-root")
            .arg(root.join("exec"))
            .arg("--pidfile")
            .arg(root.join("dockerd.pid"))
            .arg("-H")
            .arg(format!("unix://{}", root.join("d.sock").display()))
            .args(["--iptables=false", "--ip-masq=false", "--bridge=none"])
            .env("TMPDIR", root.join("tmp"))
            .arg("--cgroup-parent")
            .arg(&cgroup_parent)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("dockerd starts");
        let mut daemon = Dockerd {
            root,
            child: Some(child),
            cgroup_parent,
            startup: Duration::ZERO,
        };
        // Readiness: the API answers. Bounded so a broken daemon fails instead of hanging.
        let socket = daemon.socket();
        while spawned.elapsed() < START_TIMEOUT {
            if ping(&socket) {
                daemon.startup = spawned.elapsed();
                return daemon;
            }
            if let Some(child) = daemon.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    daemon.child = None;
                    panic!("dockerd exited ({status}); its log:\n{}", daemon.log());
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("dockerd did not come up; its log:\n{}", daemon.log());
    }

    /// The fixture's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// dockerd's PID.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Time from spawning dockerd to its first `/_ping` answer.
    pub fn startup_time(&self) -> Duration {
        self.startup
    }

    /// What dockerd logged.
    pub fn log(&self) -> String {
        fs::read_to_string(self.root.join("dockerd.log")).unwrap_or_default()
    }
}

impl Daemon for Dockerd {
    fn name(&self) -> &'static str {
        "dockerd"
    }

    fn socket(&self) -> PathBuf {
        self.root.join("d.sock")
    }

    fn cli_config_dir(&self) -> PathBuf {
        self.root.join("cli")
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = stop_child(&mut child);
        }
        // dockerd normally stops its containerd; if it was killed, containerd and the
        // containerd shims (whose command lines name our exec root) go here, with the
        // containers below them.
        let mut cgroups: Vec<String> = entry_names(&self.root.join("data/containers"));
        cgroups.retain(|id| id.len() == 64);
        cgroups.push(self.cgroup_parent.clone());
        teardown(&self.root, &cgroups);
        remove_root(&self.root);
    }
}
