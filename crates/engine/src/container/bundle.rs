//! The seam to the spec builder: merging the image config at create, and writing the OCI
//! bundle (`config.json` plus the /etc files) at start.
//!
//! TEMPORARY: until `crate::spec` offers `merge_image_config`, `write_etc_files` and
//! `build`, a minimal merge and a runc-like default spec stand in. Only this file changes
//! when the spec builder lands.

use std::path::Path;

use berth_api::container::Config;
use berth_api::StrSlice;
use serde_json::{json, Value};

use super::{ContainerError, ContainerRecord};

/// Docker's default PATH.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Merges the image's config into the request's, as Docker's `merge`: env by key, the
/// image's Cmd only when neither Cmd nor Entrypoint was given, and so on.
pub fn merge_image_config(config: &mut Config, image: &berth_image::config::ContainerConfig) {
    if config.user.is_empty() {
        config.user = image.user.clone().unwrap_or_default();
    }
    if config.working_dir.is_empty() {
        config.working_dir = image.working_dir.clone().unwrap_or_default();
    }
    let mut env: Vec<String> = image.env.clone().unwrap_or_default();
    for entry in config.env.clone().unwrap_or_default() {
        let key = entry.split('=').next().unwrap_or_default().to_string();
        env.retain(|e| e.split('=').next() != Some(key.as_str()));
        env.push(entry);
    }
    if !env.is_empty() {
        config.env = Some(env);
    }
    let no_entrypoint = config.entrypoint.as_ref().is_none_or(|e| e.0.is_empty());
    if no_entrypoint {
        let no_cmd = config.cmd.as_ref().is_none_or(|c| c.0.is_empty());
        if no_cmd {
            config.cmd = image.cmd.clone().map(StrSlice);
        }
        config.entrypoint = image.entrypoint.clone().map(StrSlice);
    }
    if let Some(labels) = &image.labels {
        let mut merged = labels.clone();
        merged.extend(config.labels.clone().unwrap_or_default());
        config.labels = Some(merged);
    }
    if config.stop_signal.is_empty() {
        config.stop_signal = image.stop_signal.clone().unwrap_or_default();
    }
}

/// Writes `/etc/hostname`, `/etc/hosts` and `/etc/resolv.conf` sources into the container
/// directory.
pub fn write_etc_files(dir: &Path, record: &ContainerRecord) -> std::io::Result<()> {
    let hostname = hostname_of(record);
    std::fs::write(dir.join("hostname"), format!("{hostname}\n"))?;
    std::fs::write(
        dir.join("hosts"),
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n\
         ff02::2\tip6-allrouters\n",
    )?;
    let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    std::fs::write(dir.join("resolv.conf"), resolv)?;
    Ok(())
}

fn hostname_of(record: &ContainerRecord) -> String {
    if record.config.hostname.is_empty() {
        record.id.chars().take(12).collect()
    } else {
        record.config.hostname.clone()
    }
}

/// Writes `<dir>/config.json` for the container whose rootfs is mounted at `rootfs`.
pub fn write_config(
    dir: &Path,
    rootfs: &Path,
    record: &ContainerRecord,
    cgroup_parent: &str,
) -> Result<(), ContainerError> {
    write_etc_files(dir, record)
        .map_err(|e| ContainerError::io("writing the container's /etc files", e))?;
    let spec = fallback_spec(dir, rootfs, record, cgroup_parent)?;
    let bytes = serde_json::to_vec(&spec)
        .map_err(|e| ContainerError::io("encoding config.json", std::io::Error::other(e)))?;
    std::fs::write(dir.join("config.json"), bytes)
        .map_err(|e| ContainerError::io("writing config.json", e))
}

fn fallback_spec(
    dir: &Path,
    rootfs: &Path,
    record: &ContainerRecord,
    cgroup_parent: &str,
) -> Result<Value, ContainerError> {
    let network = record.host_config.network_mode.as_str();
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    if network != "host" {
        namespaces.push(json!({"type": "network"}));
    }
    let mut env = record.config.env.clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, format!("PATH={DEFAULT_PATH}"));
    }
    env.insert(0, format!("HOSTNAME={}", hostname_of(record)));
    if record.config.tty {
        env.push("TERM=xterm".to_string());
    }
    let (uid, gid) = match record.config.user.as_str() {
        "" | "root" | "0" => (0, 0),
        other => {
            let mut parts = other.split(':');
            let uid = parts.next().and_then(|u| u.parse::<u32>().ok());
            let gid = parts.next().and_then(|g| g.parse::<u32>().ok());
            match uid {
                Some(uid) => (uid, gid.unwrap_or(uid)),
                None => {
                    return Err(ContainerError::NotImplemented(format!(
                        "user names need the spec builder: {other}"
                    )))
                }
            }
        }
    };
    let mut args = vec![record.path.clone()];
    args.extend(record.args.iter().cloned());
    let caps = [
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FSETID",
        "CAP_FOWNER",
        "CAP_MKNOD",
        "CAP_NET_RAW",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETFCAP",
        "CAP_SETPCAP",
        "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT",
        "CAP_KILL",
        "CAP_AUDIT_WRITE",
    ];
    let cwd = if record.config.working_dir.is_empty() {
        "/".to_string()
    } else {
        record.config.working_dir.clone()
    };
    let etc = |name: &str, target: &str| {
        json!({"destination": target, "type": "bind",
               "source": dir.join(name), "options": ["rbind", "rprivate"]})
    };
    Ok(json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": record.config.tty,
            "user": {"uid": uid, "gid": gid},
            "args": args,
            "env": env,
            "cwd": cwd,
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "noNewPrivileges": false
        },
        "root": {"path": rootfs, "readonly": record.host_config.readonly_rootfs},
        "hostname": hostname_of(record),
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777",
                         format!("size={}", record.host_config.shm_size.max(65536))]},
            etc("resolv.conf", "/etc/resolv.conf"),
            etc("hostname", "/etc/hostname"),
            etc("hosts", "/etc/hosts")
        ],
        "linux": {
            "cgroupsPath": format!("/{}/{}", cgroup_parent.trim_matches('/'), record.id),
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": namespaces,
            "maskedPaths": ["/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/proc/scsi", "/sys/firmware"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                "/proc/sysrq-trigger"]
        }
    }))
}
