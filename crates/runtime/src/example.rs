//! The example config.json that `berth-runtime spec [--rootless]` writes: the same data as
//! `runc spec` (runc's specconv.Example and ToRootless), field for field.

use serde_json::{json, Value};

/// The runtime-spec version written into example specs.
pub const OCI_VERSION: &str = "1.2.0";

/// `CGROUP2_SUPER_MAGIC` from linux/magic.h.
const CGROUP2_SUPER_MAGIC: u64 = 0x6367_7270;

/// Whether /sys/fs/cgroup is a pure cgroup v2 mount (runc adds a cgroup namespace then).
pub fn cgroup2_unified() -> bool {
    rustix::fs::statfs("/sys/fs/cgroup").is_ok_and(|s| s.f_type as u64 == CGROUP2_SUPER_MAGIC)
}

/// What `runc spec` writes, or `runc spec --rootless` when `rootless`.
pub fn example_spec(rootless: bool) -> Value {
    let uid = rustix::process::geteuid().as_raw();
    let gid = rustix::process::getegid().as_raw();
    build(rootless, cgroup2_unified(), uid, gid)
}

fn mount(destination: &str, typ: &str, source: &str, options: &[&str]) -> Value {
    let mut m = json!({"destination": destination, "type": typ, "source": source});
    if !options.is_empty() {
        m["options"] = json!(options);
    }
    m
}

fn build(rootless: bool, cgroup2: bool, uid: u32, gid: u32) -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let mut namespaces = vec!["pid", "network", "ipc", "uts", "mount"];
    if cgroup2 {
        namespaces.push("cgroup");
    }
    let sys = if rootless {
        // ToRootless: sysfs cannot be mounted in a user namespace; bind the host's.
        mount(
            "/sys",
            "none",
            "/sys",
            &["rbind", "nosuid", "noexec", "nodev", "ro"],
        )
    } else {
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        )
    };
    let devpts_options: &[&str] = if rootless {
        // ToRootless drops uid= and gid= options.
        &[
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620",
        ]
    } else {
        &[
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620",
            "gid=5",
        ]
    };
    let mounts = json!([
        mount("/proc", "proc", "proc", &[]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"]
        ),
        mount("/dev/pts", "devpts", "devpts", devpts_options),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"]
        ),
        sys,
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", "ro"]
        ),
    ]);
    // Keys in runc's order, which serde_json keeps when built with preserve_order.
    let mut linux = serde_json::Map::new();
    if rootless {
        namespaces.retain(|n| *n != "network" && *n != "user");
        namespaces.push("user");
        linux.insert(
            "uidMappings".into(),
            json!([{"containerID": 0, "hostID": uid, "size": 1}]),
        );
        linux.insert(
            "gidMappings".into(),
            json!([{"containerID": 0, "hostID": gid, "size": 1}]),
        );
    } else {
        linux.insert(
            "resources".into(),
            json!({"devices": [{"allow": false, "access": "rwm"}]}),
        );
    }
    linux.insert(
        "namespaces".into(),
        namespaces.iter().map(|n| json!({"type": n})).collect(),
    );
    linux.insert(
        "maskedPaths".into(),
        json!([
            "/proc/acpi",
            "/proc/asound",
            "/proc/kcore",
            "/proc/keys",
            "/proc/latency_stats",
            "/proc/timer_list",
            "/proc/timer_stats",
            "/proc/sched_debug",
            "/sys/firmware",
            "/proc/scsi"
        ]),
    );
    linux.insert(
        "readonlyPaths".into(),
        json!([
            "/proc/bus",
            "/proc/fs",
            "/proc/irq",
            "/proc/sys",
            "/proc/sysrq-trigger"
        ]),
    );
    json!({
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "runc",
        "mounts": mounts,
        "linux": linux,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_spec_process_matches_runc() {
        let spec = example_spec(false);
        let process = &spec["process"];
        assert_eq!(process["args"], json!(["sh"]));
        assert_eq!(process["terminal"], json!(true));
        assert_eq!(process["cwd"], json!("/"));
        assert_eq!(process["user"], json!({"uid": 0, "gid": 0}));
        assert_eq!(process["noNewPrivileges"], json!(true));
        let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
        // runc 1.2+ no longer writes inheritable or ambient.
        assert_eq!(
            process["capabilities"],
            json!({"bounding": caps, "effective": caps, "permitted": caps})
        );
        assert_eq!(
            process["rlimits"],
            json!([{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}])
        );
        assert_eq!(spec["root"], json!({"path": "rootfs", "readonly": true}));
        assert_eq!(spec["hostname"], json!("runc"));
        assert_eq!(spec["ociVersion"], json!("1.2.0"));
    }

    #[test]
    fn default_spec_linux_section_matches_runc() {
        let spec = build(false, false, 0, 0);
        let linux = &spec["linux"];
        assert_eq!(linux["maskedPaths"].as_array().unwrap().len(), 10);
        assert_eq!(linux["maskedPaths"][0], json!("/proc/acpi"));
        assert_eq!(linux["maskedPaths"][9], json!("/proc/scsi"));
        assert_eq!(
            linux["readonlyPaths"],
            json!([
                "/proc/bus",
                "/proc/fs",
                "/proc/irq",
                "/proc/sys",
                "/proc/sysrq-trigger"
            ])
        );
        assert_eq!(
            linux["resources"],
            json!({"devices": [{"allow": false, "access": "rwm"}]})
        );
        assert_eq!(
            linux["namespaces"],
            json!([{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"},
                {"type": "mount"}])
        );
        let with_cgroup2 = build(false, true, 0, 0);
        assert_eq!(
            with_cgroup2["linux"]["namespaces"][5],
            json!({"type": "cgroup"})
        );
    }

    #[test]
    fn default_spec_mounts_match_runc() {
        let spec = build(false, false, 0, 0);
        let mounts = spec["mounts"].as_array().unwrap();
        let destinations: Vec<&str> = mounts
            .iter()
            .map(|m| m["destination"].as_str().unwrap())
            .collect();
        assert_eq!(
            destinations,
            [
                "/proc",
                "/dev",
                "/dev/pts",
                "/dev/shm",
                "/dev/mqueue",
                "/sys",
                "/sys/fs/cgroup"
            ]
        );
        // Go's omitempty: /proc has no options key at all.
        assert_eq!(
            mounts[0],
            json!({"destination": "/proc", "type": "proc", "source": "proc"})
        );
        assert_eq!(
            mounts[2]["options"],
            json!([
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5"
            ])
        );
        assert_eq!(mounts[5]["type"], json!("sysfs"));
    }

    #[test]
    fn default_spec_parses_as_a_runtime_spec() {
        let spec: oci_spec::runtime::Spec = serde_json::from_value(example_spec(false)).unwrap();
        assert_eq!(spec.hostname().as_deref(), Some("runc"));
        let rootless: oci_spec::runtime::Spec = serde_json::from_value(example_spec(true)).unwrap();
        assert!(rootless.linux().as_ref().unwrap().uid_mappings().is_some());
    }

    #[test]
    fn rootless_spec_applies_runc_to_rootless() {
        let spec = build(true, false, 1000, 1001);
        let linux = &spec["linux"];
        assert_eq!(
            linux["namespaces"],
            json!([{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"},
                {"type": "user"}])
        );
        assert_eq!(
            linux["uidMappings"],
            json!([{"containerID": 0, "hostID": 1000, "size": 1}])
        );
        assert_eq!(
            linux["gidMappings"],
            json!([{"containerID": 0, "hostID": 1001, "size": 1}])
        );
        assert!(linux.get("resources").is_none());
        let mounts = spec["mounts"].as_array().unwrap();
        assert_eq!(
            mounts[5],
            json!({"destination": "/sys", "type": "none", "source": "/sys",
                "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]})
        );
        assert_eq!(
            mounts[2]["options"],
            json!([
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620"
            ])
        );
    }

    #[test]
    fn rootless_spec_maps_the_calling_user() {
        let spec = example_spec(true);
        let uid = rustix::process::geteuid().as_raw();
        assert_eq!(spec["linux"]["uidMappings"][0]["hostID"], json!(uid));
    }
}
