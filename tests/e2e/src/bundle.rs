//! Busybox bundles: a rootfs from /bin/busybox with applet links, users, and the static probe.
//!
//! Each bundle lives in its own temporary directory. Dropping it detaches any mount a broken
//! runtime left under it and removes the directory, so failing tests leave nothing behind.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::host;

/// Where the host's static busybox lives (Debian package busybox-static).
pub const BUSYBOX: &str = "/bin/busybox";
/// Path of the probe inside every rootfs.
pub const PROBE_IN_ROOTFS: &str = "/probe";
/// The probe binary built by build.rs.
pub const PROBE_HOST_PATH: &str = env!("BERTH_PROBE_PATH");

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
daemon:x:1:1:daemon:/usr/sbin:/bin/false\n\
e2e:x:1000:1000:e2e test user:/home/e2e:/bin/sh\n\
nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
const GROUP: &str = "root:x:0:\n\
daemon:x:1:\n\
wheel:x:10:e2e\n\
audio:x:29:e2e\n\
e2e:x:1000:\n\
nogroup:x:65534:\n";

/// A bundle directory: `config.json` plus a busybox `rootfs/`.
pub struct Bundle {
    dir: tempfile::TempDir,
}

impl Bundle {
    /// A fresh bundle whose rootfs holds busybox (+ applet links), /etc files and the probe.
    pub fn busybox(config: &Value) -> Result<Bundle> {
        let dir = tempfile::Builder::new()
            .prefix("berth-e2e-bundle-")
            .tempdir()
            .context("creating the bundle directory")?;
        let bundle = Bundle { dir };
        build_rootfs(&bundle.rootfs())?;
        bundle.write_config(config)?;
        Ok(bundle)
    }

    /// The bundle directory (what `--bundle` takes).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The rootfs directory on the host.
    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    /// Replaces config.json with `config`.
    pub fn write_config(&self, config: &Value) -> Result<()> {
        let text = serde_json::to_vec_pretty(config).context("serialising config.json")?;
        fs::write(self.path().join("config.json"), text).context("writing config.json")
    }

    /// Writes raw bytes as config.json (for malformed-input tests).
    pub fn write_raw_config(&self, bytes: &[u8]) -> Result<()> {
        fs::write(self.path().join("config.json"), bytes).context("writing config.json")
    }

    /// A host path for files a test keeps beside the bundle (stdio captures, pid files).
    pub fn scratch(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        // A runtime bug could leave a mount under the bundle; detach before removing files.
        host::detach_mounts_under(self.dir.path());
    }
}

fn build_rootfs(rootfs: &Path) -> Result<()> {
    if !Path::new(BUSYBOX).is_file() {
        bail!("{BUSYBOX} is missing: apt-get install busybox-static");
    }
    for dir in [
        "bin", "sbin", "usr/bin", "usr/sbin", "etc", "tmp", "root", "home/e2e", "proc", "sys",
        "dev", "mnt", "var/run",
    ] {
        fs::create_dir_all(rootfs.join(dir)).with_context(|| format!("creating rootfs/{dir}"))?;
    }
    fs::set_permissions(rootfs.join("tmp"), fs::Permissions::from_mode(0o1777))
        .context("chmod rootfs/tmp")?;
    fs::copy(BUSYBOX, rootfs.join("bin/busybox")).context("copying busybox")?;
    for applet in busybox_applets()? {
        let link = rootfs.join("bin").join(&applet);
        if applet != "busybox" && !link.exists() {
            symlink("busybox", &link).with_context(|| format!("linking applet {applet}"))?;
        }
    }
    fs::write(rootfs.join("etc/passwd"), PASSWD).context("writing /etc/passwd")?;
    fs::write(rootfs.join("etc/group"), GROUP).context("writing /etc/group")?;
    fs::write(rootfs.join("etc/hostname"), "berth-e2e\n").context("writing /etc/hostname")?;
    let probe = rootfs.join(PROBE_IN_ROOTFS.trim_start_matches('/'));
    fs::copy(PROBE_HOST_PATH, &probe)
        .with_context(|| format!("copying the probe from {PROBE_HOST_PATH}"))?;
    fs::set_permissions(&probe, fs::Permissions::from_mode(0o755)).context("chmod probe")?;
    Ok(())
}

fn busybox_applets() -> Result<Vec<String>> {
    let out = Command::new(BUSYBOX)
        .arg("--list")
        .output()
        .context("running busybox --list")?;
    if !out.status.success() {
        bail!(
            "busybox --list failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.contains('/'))
        .map(str::to_string)
        .collect())
}
