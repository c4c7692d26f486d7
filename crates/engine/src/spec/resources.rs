//! Cgroup resources (memory, cpu, cpuset, pids, blkio), devices (`--device`,
//! `--device-cgroup-rule`, all host devices when privileged), rlimits (`--ulimit`) and
//! sysctls (`--sysctl` with Docker's namespacing rules).

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use berth_api::container::host_config::{ThrottleDevice, WeightDevice};
use berth_api::container::{HostConfig, Resources};
use serde_json::{json, Map, Value};

use super::SpecError;

/// Docker's default device cgroup rules (moby's `DefaultLinuxSpec`): deny everything, allow
/// the standard character devices, deny /dev/fuse-style misc 10:229.
fn default_device_rules() -> Vec<Value> {
    let allow = |major: i64, minor: i64| json!({"allow": true, "type": "c", "major": major, "minor": minor, "access": "rwm"});
    vec![
        json!({"allow": false, "access": "rwm"}),
        allow(1, 5),
        allow(1, 3),
        allow(1, 9),
        allow(1, 8),
        allow(5, 0),
        allow(5, 1),
        json!({"allow": false, "type": "c", "major": 10, "minor": 229, "access": "rwm"}),
    ]
}

/// `linux.devices` and `linux.resources.devices`.
pub fn devices(host: &HostConfig) -> Result<(Vec<Value>, Vec<Value>), SpecError> {
    if host.privileged {
        let mut nodes = Vec::new();
        host_devices(Path::new("/dev"), &mut nodes);
        nodes.sort_by(|a, b| a["path"].as_str().cmp(&b["path"].as_str()));
        return Ok((nodes, vec![json!({"allow": true, "access": "rwm"})]));
    }
    let mut nodes = Vec::new();
    let mut rules = default_device_rules();
    for mapping in host.resources.devices.iter().flatten() {
        let permissions = match mapping.cgroup_permissions.as_str() {
            "" => "rwm",
            p if p.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) => p,
            other => {
                return Err(SpecError::InvalidArgument(format!(
                    "invalid device mode: {other}"
                )))
            }
        };
        let host_path = Path::new(&mapping.path_on_host);
        let in_container = match mapping.path_in_container.as_str() {
            "" => mapping.path_on_host.as_str(),
            p => p,
        };
        let node = device_node(host_path, in_container).ok_or_else(|| {
            SpecError::InvalidArgument(format!(
                "error gathering device information while adding custom device \"{}\": no such file or directory",
                mapping.path_on_host
            ))
        })?;
        rules.push(json!({
            "allow": true, "type": node["type"], "major": node["major"], "minor": node["minor"],
            "access": permissions
        }));
        nodes.push(node);
    }
    for rule in host.resources.device_cgroup_rules.iter().flatten() {
        rules.push(parse_cgroup_rule(rule)?);
    }
    Ok((nodes, rules))
}

/// A device node as the spec describes it, from the host's node.
fn device_node(host_path: &Path, in_container: &str) -> Option<Value> {
    let meta = std::fs::metadata(host_path).ok()?;
    let kind = if meta.file_type().is_char_device() {
        "c"
    } else if meta.file_type().is_block_device() {
        "b"
    } else {
        return None;
    };
    let rdev = meta.rdev();
    Some(json!({
        "path": in_container, "type": kind,
        "major": libc::major(rdev), "minor": libc::minor(rdev),
        "fileMode": meta.mode() & 0o7777, "uid": meta.uid(), "gid": meta.gid()
    }))
}

/// Every device under the host's /dev, skipping what Docker's `HostDevices` skips.
fn host_devices(dir: &Path, out: &mut Vec<Value>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            let name = entry.file_name();
            if !matches!(
                name.to_str(),
                Some("pts" | "shm" | "fd" | "mqueue" | ".lxc" | ".lxd-mounts" | ".udev")
            ) {
                host_devices(&path, out);
            }
            continue;
        }
        if path == Path::new("/dev/console") || kind.is_symlink() {
            continue;
        }
        if let Some(node) = device_node(&path, &path.to_string_lossy()) {
            out.push(node);
        }
    }
}

/// `c 1:3 mr`, `a *:* rwm`, `b 8:* r`.
fn parse_cgroup_rule(rule: &str) -> Result<Value, SpecError> {
    let invalid =
        || SpecError::InvalidArgument(format!("invalid device cgroup rule format: '{rule}'"));
    let fields: Vec<&str> = rule.split_whitespace().collect();
    let [kind, numbers, access] = fields.as_slice() else {
        return Err(invalid());
    };
    if !matches!(*kind, "a" | "b" | "c") || !access.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) {
        return Err(invalid());
    }
    let (major, minor) = numbers.split_once(':').ok_or_else(invalid)?;
    let number = |text: &str| -> Result<Value, SpecError> {
        match text {
            "*" => Ok(Value::Null),
            n => n.parse::<i64>().map(Value::from).map_err(|_| invalid()),
        }
    };
    let mut value = Map::new();
    value.insert("allow".into(), true.into());
    value.insert("type".into(), (*kind).into());
    for (key, text) in [("major", major), ("minor", minor)] {
        let n = number(text)?;
        if !n.is_null() {
            value.insert(key.into(), n);
        }
    }
    value.insert("access".into(), (*access).into());
    Ok(Value::Object(value))
}

/// `linux.resources` (without devices), as Docker fills it.
pub fn resources(resources: &Resources, devices: Vec<Value>) -> Result<Value, SpecError> {
    let mut memory = Map::new();
    let positive = |v: i64| (v > 0).then_some(v);
    if let Some(limit) = positive(resources.memory) {
        memory.insert("limit".into(), limit.into());
    }
    if let Some(reservation) = positive(resources.memory_reservation) {
        memory.insert("reservation".into(), reservation.into());
    }
    if resources.memory_swap != 0 {
        memory.insert("swap".into(), resources.memory_swap.into());
    }
    if let Some(swappiness) = resources.memory_swappiness.filter(|s| *s >= 0) {
        memory.insert("swappiness".into(), swappiness.into());
    }
    memory.insert(
        "disableOOMKiller".into(),
        resources.oom_kill_disable.unwrap_or(false).into(),
    );
    let mut cpu = Map::new();
    cpu.insert("shares".into(), resources.cpu_shares.max(0).into());
    if resources.nano_cpus > 0 {
        if resources.cpu_period > 0 || resources.cpu_quota > 0 {
            return Err(SpecError::InvalidArgument(
                "Conflicting options: Nano CPUs and CPU Period cannot both be set".to_string(),
            ));
        }
        // Docker: a 100ms period and the quota that gives the requested share of CPUs.
        let period: i64 = 100_000;
        cpu.insert(
            "quota".into(),
            (resources.nano_cpus * period / 1_000_000_000).into(),
        );
        cpu.insert("period".into(), period.into());
    } else {
        if resources.cpu_quota != 0 {
            cpu.insert("quota".into(), resources.cpu_quota.into());
        }
        if resources.cpu_period > 0 {
            cpu.insert("period".into(), resources.cpu_period.into());
        }
    }
    if resources.cpu_realtime_period > 0 {
        cpu.insert(
            "realtimePeriod".into(),
            resources.cpu_realtime_period.into(),
        );
    }
    if resources.cpu_realtime_runtime > 0 {
        cpu.insert(
            "realtimeRuntime".into(),
            resources.cpu_realtime_runtime.into(),
        );
    }
    if !resources.cpuset_cpus.is_empty() {
        cpu.insert("cpus".into(), resources.cpuset_cpus.clone().into());
    }
    if !resources.cpuset_mems.is_empty() {
        cpu.insert("mems".into(), resources.cpuset_mems.clone().into());
    }
    let mut value = Map::new();
    value.insert("devices".into(), devices.into());
    value.insert("memory".into(), memory.into());
    value.insert("cpu".into(), cpu.into());
    if let Some(limit) = resources.pids_limit.filter(|l| *l > 0) {
        value.insert("pids".into(), json!({"limit": limit}));
    }
    value.insert("blockIO".into(), block_io(resources)?);
    Ok(Value::Object(value))
}

fn block_io(resources: &Resources) -> Result<Value, SpecError> {
    let mut block = Map::new();
    block.insert("weight".into(), resources.blkio_weight.into());
    let weights = resources
        .blkio_weight_device
        .iter()
        .flatten()
        .map(|WeightDevice { path, weight }| {
            let (major, minor) = block_device_numbers(path)?;
            Ok(json!({"major": major, "minor": minor, "weight": weight}))
        })
        .collect::<Result<Vec<_>, SpecError>>()?;
    if !weights.is_empty() {
        block.insert("weightDevice".into(), weights.into());
    }
    for (key, list) in [
        ("throttleReadBpsDevice", &resources.blkio_device_read_bps),
        ("throttleWriteBpsDevice", &resources.blkio_device_write_bps),
        ("throttleReadIOPSDevice", &resources.blkio_device_read_iops),
        (
            "throttleWriteIOPSDevice",
            &resources.blkio_device_write_iops,
        ),
    ] {
        let throttles = list
            .iter()
            .flatten()
            .map(|ThrottleDevice { path, rate }| {
                let (major, minor) = block_device_numbers(path)?;
                Ok(json!({"major": major, "minor": minor, "rate": rate}))
            })
            .collect::<Result<Vec<_>, SpecError>>()?;
        if !throttles.is_empty() {
            block.insert(key.into(), throttles.into());
        }
    }
    Ok(Value::Object(block))
}

fn block_device_numbers(path: &str) -> Result<(u32, u32), SpecError> {
    let meta = std::fs::metadata(path).map_err(|source| SpecError::Io {
        context: format!("reading block device {path}"),
        source,
    })?;
    if !meta.file_type().is_block_device() {
        return Err(SpecError::InvalidArgument(format!(
            "{path} is not a block device"
        )));
    }
    Ok((libc::major(meta.rdev()), libc::minor(meta.rdev())))
}

/// `--ulimit nofile=1024:2048` → `RLIMIT_NOFILE`.
pub fn rlimits(host: &HostConfig) -> Result<Vec<Value>, SpecError> {
    const KNOWN: [&str; 16] = [
        "as",
        "core",
        "cpu",
        "data",
        "fsize",
        "locks",
        "memlock",
        "msgqueue",
        "nice",
        "nofile",
        "nproc",
        "rss",
        "rtprio",
        "rttime",
        "sigpending",
        "stack",
    ];
    host.resources
        .ulimits
        .iter()
        .flatten()
        .map(|ulimit| {
            if !KNOWN.contains(&ulimit.name.as_str()) {
                return Err(SpecError::InvalidArgument(format!(
                    "invalid ulimit type: {}",
                    ulimit.name
                )));
            }
            if ulimit.soft > ulimit.hard {
                return Err(SpecError::InvalidArgument(format!(
                    "ulimit soft limit must be less than or equal to hard limit: {} > {}",
                    ulimit.soft, ulimit.hard
                )));
            }
            Ok(json!({
                "type": format!("RLIMIT_{}", ulimit.name.to_ascii_uppercase()),
                "hard": ulimit.hard, "soft": ulimit.soft
            }))
        })
        .collect()
}

/// Sysctls Docker allows in a container (moby's `ValidateSysctl`), refusing those of
/// namespaces the container shares with the host.
pub fn sysctls(
    host: &HostConfig,
    host_network: bool,
    host_ipc: bool,
) -> Result<BTreeMap<String, String>, SpecError> {
    const IPC: [&str; 8] = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let mut out = BTreeMap::new();
    if !host_network {
        // Docker 20.10+: unprivileged ports and ping work inside a network namespace.
        out.insert("net.ipv4.ip_unprivileged_port_start".into(), "0".into());
        out.insert(
            "net.ipv4.ping_group_range".into(),
            super::userns::DEFAULT_PING_GROUP_RANGE.into(),
        );
    }
    for (key, value) in host.sysctls.iter().flatten() {
        let ipc = IPC.contains(&key.as_str()) || key.starts_with("fs.mqueue.");
        if ipc {
            if host_ipc {
                return Err(SpecError::InvalidArgument(format!(
                    "sysctl {key:?} is not allowed in the hosts ipc namespace"
                )));
            }
        } else if key.starts_with("net.") {
            if host_network {
                return Err(SpecError::InvalidArgument(format!(
                    "sysctl {key:?} not allowed in host network namespace"
                )));
            }
        } else {
            return Err(SpecError::InvalidArgument(format!(
                "sysctl {key:?} is not in a separate kernel namespace"
            )));
        }
        out.insert(key.clone(), value.clone());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(json: &str) -> HostConfig {
        serde_json::from_str(json).expect("host config")
    }

    #[test]
    fn default_devices_deny_all_then_allow_the_standard_nodes() {
        let (nodes, rules) = devices(&host("{}")).expect("devices");
        assert!(nodes.is_empty());
        assert_eq!(rules.len(), 8);
        assert_eq!(rules[0], json!({"allow": false, "access": "rwm"}));
        assert_eq!(rules[1]["minor"], 5);
    }

    #[test]
    fn device_flag_adds_the_node_and_its_rule() {
        let host = host(
            r#"{"Devices":[{"PathOnHost":"/dev/null","PathInContainer":"/dev/mynull","CgroupPermissions":"rw"}]}"#,
        );
        let (nodes, rules) = devices(&host).expect("devices");
        assert_eq!(nodes[0]["path"], "/dev/mynull");
        assert_eq!(
            (nodes[0]["major"].clone(), nodes[0]["minor"].clone()),
            (json!(1), json!(3))
        );
        assert_eq!(rules.last().expect("rule")["access"], "rw");
        let missing = self::host(r#"{"Devices":[{"PathOnHost":"/dev/nope"}]}"#);
        assert!(devices(&missing).is_err());
    }

    #[test]
    fn device_cgroup_rules_parse_with_wildcards() {
        assert_eq!(
            parse_cgroup_rule("c 1:* rm").expect("rule"),
            json!({"allow": true, "type": "c", "major": 1, "access": "rm"})
        );
        assert!(parse_cgroup_rule("x 1:2 r").is_err());
        assert!(parse_cgroup_rule("c 1:2 rwx").is_err());
    }

    #[test]
    fn cpus_become_quota_over_a_100ms_period() {
        let host = host(
            r#"{"NanoCpus":500000000,"CpuShares":512,"CpusetCpus":"0","PidsLimit":20,"Memory":67108864}"#,
        );
        let value = resources(&host.resources, Vec::new()).expect("resources");
        assert_eq!(
            value["cpu"],
            json!({"shares": 512, "quota": 50000, "period": 100000, "cpus": "0"})
        );
        assert_eq!(value["pids"], json!({"limit": 20}));
        assert_eq!(
            value["memory"],
            json!({"limit": 67108864, "disableOOMKiller": false})
        );
        assert_eq!(value["blockIO"], json!({"weight": 0}));
    }

    #[test]
    fn ulimits_become_rlimits() {
        let host = host(r#"{"Ulimits":[{"Name":"nofile","Soft":1024,"Hard":2048}]}"#);
        assert_eq!(
            rlimits(&host).expect("rlimits"),
            vec![json!({"type": "RLIMIT_NOFILE", "hard": 2048, "soft": 1024})]
        );
        let bad = self::host(r#"{"Ulimits":[{"Name":"bogus","Soft":1,"Hard":1}]}"#);
        assert_eq!(
            rlimits(&bad).map_err(|e| e.to_string()),
            Err("invalid ulimit type: bogus".into())
        );
    }

    #[test]
    fn sysctls_follow_dockers_namespace_rules() {
        let host = host(r#"{"Sysctls":{"net.ipv4.ip_forward":"1","kernel.shmmax":"1"}}"#);
        let got = sysctls(&host, false, false).expect("sysctls");
        assert_eq!(got["net.ipv4.ip_forward"], "1");
        assert_eq!(got["net.ipv4.ip_unprivileged_port_start"], "0");
        let err = sysctls(&host, true, false).expect_err("host net");
        assert_eq!(
            err.to_string(),
            "sysctl \"net.ipv4.ip_forward\" not allowed in host network namespace"
        );
        let bad = self::host(r#"{"Sysctls":{"kernel.panic":"1"}}"#);
        assert_eq!(
            sysctls(&bad, false, false).map_err(|e| e.to_string()),
            Err("sysctl \"kernel.panic\" is not in a separate kernel namespace".into())
        );
    }
}
