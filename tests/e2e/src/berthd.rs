//! A private berthd (release binaries from `BERTH_BIN_DIR`: berthd, berth-shim,
//! berth-runtime) with its own data root, exec root, socket and cgroup parent, which can be
//! killed with SIGKILL and restarted on the same roots, and which leaves nothing behind.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::daemon::{ping, Daemon};
use crate::require_root;
use crate::teardown::{entry_names, is_alive, remove_root, teardown};

/// The binaries a berthd fixture needs, all from `BERTH_BIN_DIR`.
pub const BERTH_BINARIES: &[&str] = &["berthd", "berth-shim", "berth-runtime"];

/// How long berthd may take to answer its first `/_ping` before the test fails (a hang
/// guard, not a performance assertion).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long berthd gets to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// A running (or killed, restartable) private berthd.
pub struct Berthd {
    /// `/tmp/bd-XXXXXX`: short, so `<exec-root>/shim/<64-hex id>.sock` fits in `sun_path`.
    root: PathBuf,
    child: Option<Child>,
    binary: PathBuf,
    cgroup_parent: String,
    /// Time from spawning berthd to its first successful `/_ping` (last start).
    startup: Duration,
}

impl Berthd {
    /// `berth -H <this berthd> <args>` with its own CLI config and no stdin, unaffected by
    /// DOCKER_HOST/BERTH_HOST in the test's environment.
    pub fn berth_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin_dir().join("berth"));
        cmd.env_remove("DOCKER_HOST")
            .env_remove("BERTH_HOST")
            .env("DOCKER_CONFIG", self.cli_config_dir())
            .arg("-H")
            .arg(self.host())
            .args(args)
            .stdin(Stdio::null());
        cmd
    }

    /// Starts berthd with an empty daemon.json (apart from its private cgroup parent) and
    /// waits until `/_ping` answers.
    pub fn start() -> Berthd {
        Berthd::start_with(serde_json::Map::new())
    }

    /// Starts berthd with extra daemon.json keys (e.g. `log-opts`, `runtimes`).
    pub fn start_with(mut daemon_json: serde_json::Map<String, serde_json::Value>) -> Berthd {
        require_root();
        let bin_dir = bin_dir();
        for name in BERTH_BINARIES {
            let path = bin_dir.join(name);
            assert!(
                path.is_file(),
                "{} is missing: build the release binaries (scripts/test.sh does)",
                path.display()
            );
        }
        let root = tempfile::Builder::new()
            .prefix("bd-")
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
        daemon_json.insert(
            "cgroup-parent".to_string(),
            serde_json::Value::String(cgroup_parent.clone()),
        );
        // Its own default bridge (deleted on drop) on a subnet of its own, unless the test
        // chose one: berthds of one host otherwise share `berth0`, each adding an address.
        if !daemon_json.contains_key("bridge") {
            let hash = name
                .bytes()
                .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
            daemon_json.insert("bridge".to_string(), format!("bt{}", &name[3..]).into());
            daemon_json.insert(
                "bip".to_string(),
                format!("10.{}.{}.1/24", 100 + hash % 150, (hash >> 8) % 256).into(),
            );
        }
        fs::create_dir_all(root.join("cli")).expect("cli config dir");
        fs::write(
            root.join("daemon.json"),
            serde_json::to_vec_pretty(&daemon_json).expect("daemon.json serialises"),
        )
        .expect("daemon.json");
        let mut daemon = Berthd {
            root,
            child: None,
            binary: bin_dir.join("berthd"),
            cgroup_parent,
            startup: Duration::ZERO,
        };
        daemon.spawn_and_wait();
        daemon
    }

    /// The fixture's directory (data root, exec root, socket, logs live below it).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `--data-root`.
    pub fn data_root(&self) -> PathBuf {
        self.root.join("data")
    }

    /// `--exec-root` (shim sockets and exit records, runtime state).
    pub fn exec_root(&self) -> PathBuf {
        self.root.join("x")
    }

    /// The cgroup parent given to berthd (unique to this fixture).
    pub fn cgroup_parent(&self) -> &str {
        &self.cgroup_parent
    }

    /// berthd's PID, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// How long the last start took from spawn to the first `/_ping` answer.
    pub fn startup_time(&self) -> Duration {
        self.startup
    }

    /// Everything berthd wrote to stdout and stderr, across restarts.
    pub fn log(&self) -> String {
        fs::read_to_string(self.root.join("berthd.log")).unwrap_or_default()
    }

    /// `docker build <args> <dir>` with the classic builder (`DOCKER_BUILDKIT=0`).
    pub fn docker_build(&self, dir: &Path, args: &[&str]) -> std::process::Output {
        let mut cmd = self.command(&["build"]);
        cmd.env("DOCKER_BUILDKIT", "0").args(args).arg(dir);
        crate::daemon::run_command(&mut cmd)
    }

    /// The stdout of `out`, failing the test with both streams and berthd's log unless it
    /// succeeded (`what` names the step).
    pub fn stdout_of(&self, what: &str, out: &std::process::Output) -> String {
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{what} failed ({:?}):\nstdout: {stdout}\nstderr: {}\nberthd log:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        stdout
    }

    /// Kills berthd with SIGKILL (containers and shims keep running: live restore).
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops berthd with SIGTERM (SIGKILL after a bound); containers keep running. Panics
    /// unless berthd shut down the orderly way (exit status 0 within the bound): killed by
    /// the signal's default action, it would skip the work its stop waits for.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let status = stop_child(&mut child);
            assert!(
                status.is_some_and(|s| s.success()),
                "berthd did not shut down cleanly on SIGTERM ({status:?}); see {}",
                self.root.join("berthd.log").display()
            );
        }
    }

    /// Stops berthd if it runs, then starts it again on the same roots and waits for
    /// `/_ping`.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn_and_wait();
    }

    fn spawn_and_wait(&mut self) {
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.root.join("berthd.log"))
            .expect("berthd.log");
        let spawned = Instant::now();
        let child = Command::new(&self.binary)
            .arg("-H")
            .arg(self.host())
            .arg("--data-root")
            .arg(self.data_root())
            .arg("--exec-root")
            .arg(self.exec_root())
            .arg("--pidfile")
            .arg(self.root.join("berthd.pid"))
            .arg("--config-file")
            .arg(self.root.join("daemon.json"))
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.binary.display()));
        self.child = Some(child);
        let socket = self.socket();
        while spawned.elapsed() < START_TIMEOUT {
            if ping(&socket) {
                self.startup = spawned.elapsed();
                return;
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    panic!(
                        "berthd exited ({status}) before answering /_ping; its log:\n{}",
                        self.log()
                    );
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        panic!(
            "berthd did not answer /_ping within {START_TIMEOUT:?}; its log:\n{}",
            self.log()
        );
    }

    /// Container IDs berthd knows of on disk (container dirs and shim sockets).
    pub fn container_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = entry_names(&self.data_root().join("containers"));
        ids.extend(
            entry_names(&self.exec_root().join("shim"))
                .into_iter()
                .filter_map(|n| n.strip_suffix(".sock").map(str::to_string)),
        );
        ids.retain(|id| id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()));
        ids.sort();
        ids.dedup();
        ids
    }

    /// PIDs of the berth-shim processes of this daemon (their command lines name its
    /// exec root).
    pub fn shim_pids(&self) -> Vec<i32> {
        crate::teardown::processes_mentioning(&self.exec_root())
            .into_iter()
            .filter(|&pid| {
                is_alive(pid)
                    && fs::read_link(format!("/proc/{pid}/exe"))
                        .is_ok_and(|exe| exe.ends_with("berth-shim"))
            })
            .collect()
    }
}

impl Daemon for Berthd {
    fn name(&self) -> &'static str {
        "berthd"
    }

    fn socket(&self) -> PathBuf {
        self.root.join("b.sock")
    }

    fn cli_config_dir(&self) -> PathBuf {
        self.root.join("cli")
    }
}

impl Drop for Berthd {
    fn drop(&mut self) {
        self.stop();
        let mut cgroups = self.container_ids();
        cgroups.push(self.cgroup_parent.clone());
        let bridge = fs::read(self.root.join("daemon.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v["bridge"].as_str().map(str::to_string));
        // The bridges of the networks it made (a failed test never ran `network rm`).
        let network_bridges: Vec<String> = fs::read_dir(self.data_root().join("networks"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| fs::read(entry.path()).ok())
            .filter_map(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .filter_map(|v| v["bridge"].as_str().map(str::to_string))
            .filter(|b| b.starts_with("br-"))
            .collect();
        teardown(&self.root, &cgroups);
        for bridge in network_bridges {
            let _ = Command::new("ip")
                .args(["link", "delete", &bridge, "type", "bridge"])
                .stderr(Stdio::null())
                .status();
        }
        // The fixture's default bridge (veths went with their namespaces) and its berthd's
        // own nftables tables (`berth-<bridge>`), left when containers still ran at stop.
        if let Some(bridge) = bridge {
            let _ = Command::new("ip")
                .args(["link", "delete", &bridge, "type", "bridge"])
                .stderr(Stdio::null())
                .status();
            if bridge != "berth0" {
                let _ = berth_network::firewall::clear_in(&format!("berth-{bridge}"));
            }
        }
        remove_root(&self.root);
    }
}

/// SIGTERM, then SIGKILL after [`STOP_TIMEOUT`]; always reaps. The exit status when the
/// child ended within the bound (None when it had to be killed).
pub(crate) fn stop_child(child: &mut Child) -> Option<std::process::ExitStatus> {
    // SAFETY: kill has no memory-safety preconditions; the pid is our unreaped child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + STOP_TIMEOUT;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// `$BERTH_BIN_DIR`, which scripts/test.sh points at the release binaries.
pub fn bin_dir() -> PathBuf {
    std::env::var_os("BERTH_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!("BERTH_BIN_DIR is not set: run the e2e tests through scripts/test.sh")
        })
}
