//! Docker's default OCI runtime spec for a container, built from its Config, HostConfig
//! (the image config merged in at create by [`merge_image_config`]) and its rootfs' users.
//!
//! Matches what dockerd 20.10 hands runc (golden files in `test_data/`, captured from a real
//! dockerd: see `test_data/README.md`), except: no libnetwork hook, no AppArmor profile,
//! host networking shares berthd's namespace instead of naming a netns file, and berth's own
//! default seccomp profile (`seccomp.rs`, golden-tested against dockerd's separately).

pub mod apparmor;
pub mod caps;
mod etc_files;
mod merge;
mod mounts;
mod resources;
mod seccomp;
pub(crate) mod security;
mod user;
pub mod userns;

#[cfg(test)]
mod golden_tests;

use std::path::Path;

use serde_json::{json, Value};

use crate::container::ContainerRecord;
use crate::error::ErrorKind;

pub use etc_files::{
    update_hosts, write_etc_files, write_etc_files_from, write_etc_files_with, EtcNetwork,
    HostFiles,
};
pub use merge::{entrypoint_and_args, merge_image_config};
pub use user::ResolvedUser;

/// Docker's default PATH (moby's `DefaultPathEnv` on Linux).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where `--init` puts docker-init in the container.
const INIT_PATH: &str = "/sbin/docker-init";

/// Docker's masked paths (moby's `DefaultLinuxSpec`).
const MASKED_PATHS: [&str; 10] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
];

/// Docker's read-only paths.
const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Everything the spec of one container is made of.
pub struct SpecInput<'a> {
    pub id: &'a str,
    /// Config, HostConfig, Path and Args of the container.
    pub record: &'a ContainerRecord,
    /// The mounted root filesystem (users are resolved from its /etc/passwd and /etc/group).
    pub rootfs: &'a Path,
    /// Where `hostname`, `hosts` and `resolv.conf` live ([`write_etc_files`]).
    pub container_dir: &'a Path,
    /// The daemon's cgroup parent, used when the container has no `--cgroup-parent`.
    pub cgroup_parent: &'a str,
    /// The pinned network namespace the container joins (bridge networks and
    /// `container:<id>`); None: a private namespace with loopback only, or the host's.
    pub network_namespace: Option<&'a Path>,
}

/// Why a spec cannot be built; texts are Docker's where Docker has one.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("{0}")]
    InvalidArgument(String),
    /// `--user`/`--group-add` resolution (runc's texts).
    #[error("{0}")]
    User(String),
    #[error("{0}")]
    NotImplemented(String),
    #[error("No command specified")]
    NoCommand,
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("building the OCI spec")]
    Encode(#[source] serde_json::Error),
}

impl SpecError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            SpecError::InvalidArgument(_) | SpecError::User(_) | SpecError::NoCommand => {
                ErrorKind::InvalidArgument
            }
            SpecError::NotImplemented(_) => ErrorKind::NotImplemented,
            SpecError::Io { .. } | SpecError::Encode(_) => ErrorKind::Internal,
        }
    }
}

/// Facts about the host that change the spec (read once per build; fixed in tests).
#[derive(Debug, Clone)]
pub struct HostInfo {
    /// Unified cgroup hierarchy: containers get a private cgroup namespace by default.
    pub cgroup_v2: bool,
    /// /proc/sys/kernel/cap_last_cap.
    pub last_cap: usize,
    /// berthd's capability bounding set ([`caps::bounding_set`]): `--privileged` and
    /// `--cap-add ALL` give what the kernel knows and berthd holds.
    pub cap_bounding: u64,
    /// The host's hostname, for `--network host` containers without `--hostname`.
    pub hostname: String,
    /// Docker's `docker-init` (tini), for `--init`.
    pub init_path: Option<std::path::PathBuf>,
}

impl HostInfo {
    pub fn detect() -> HostInfo {
        // The field's type differs between architectures, hence the casts.
        #[allow(clippy::unnecessary_cast)]
        let cgroup_v2 = rustix::fs::statfs("/sys/fs/cgroup")
            .map(|s| s.f_type as i64 == libc::CGROUP2_SUPER_MAGIC as i64)
            .unwrap_or(false);
        let last_cap = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(caps::ALL.len() - 1);
        let hostname = rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned();
        let init_path = [
            "/usr/bin/docker-init",
            "/usr/sbin/docker-init",
            "/usr/libexec/docker/docker-init",
            "/usr/local/bin/docker-init",
        ]
        .iter()
        .map(std::path::PathBuf::from)
        .find(|path| path.exists());
        HostInfo {
            cgroup_v2,
            last_cap,
            cap_bounding: caps::bounding_set(),
            hostname,
            init_path,
        }
    }
}

/// The container's hostname: `--hostname`, else the host's for `--network host`, else the
/// first 12 characters of its ID (Docker sets these at create; an empty one is filled here).
pub fn hostname(record: &ContainerRecord, host_hostname: &str) -> String {
    if !record.config.hostname.is_empty() {
        record.config.hostname.clone()
    } else if record.host_config.network_mode == "host" {
        host_hostname.to_string()
    } else {
        record.id.chars().take(12).collect()
    }
}

/// Docker's spec for this container on this host.
pub fn build(input: &SpecInput) -> Result<oci_spec::runtime::Spec, SpecError> {
    build_with(input, &HostInfo::detect())
}

/// [`build`] with the host facts given.
pub fn build_with(
    input: &SpecInput,
    host: &HostInfo,
) -> Result<oci_spec::runtime::Spec, SpecError> {
    let value = build_value(input, host)?;
    serde_json::from_value(value).map_err(SpecError::Encode)
}

/// Namespace modes Docker accepts; `container:<id>` and user namespaces come later.
fn namespace_mode(flag: &str, mode: &str, allowed: &[&str]) -> Result<bool, SpecError> {
    match mode {
        "host" => Ok(true),
        m if allowed.contains(&m) => Ok(false),
        m if m.starts_with("container:") => Err(SpecError::NotImplemented(format!(
            "--{flag}={m}: joining another container's namespace is not implemented yet"
        ))),
        m => Err(SpecError::InvalidArgument(format!(
            "invalid {flag} mode: {m}"
        ))),
    }
}

fn build_value(input: &SpecInput, host: &HostInfo) -> Result<Value, SpecError> {
    let record = input.record;
    let config = &record.config;
    let hc = &record.host_config;
    // Bridge networks and `container:<id>` join the namespace the network service pinned
    // (`network_namespace`); `none` (or a bridge container whose namespace is not given)
    // gets a private one with loopback only.
    let host_network = hc.network_mode == "host";
    let host_pid = namespace_mode("pid", &hc.pid_mode, &[""])?;
    let host_ipc = namespace_mode("ipc", &hc.ipc_mode, &["", "private", "shareable", "none"])?;
    let host_uts = namespace_mode("uts", &hc.uts_mode, &[""])?;
    // The map itself is added by the bundle writer (`userns::apply`): `auto` blocks are
    // claimed at create and kept outside the record.
    userns::parse_mode(&hc.userns_mode).map_err(|e| SpecError::InvalidArgument(e.to_string()))?;
    let private_cgroupns = match hc.cgroupns_mode.as_str() {
        "private" => true,
        "host" => false,
        "" => host.cgroup_v2,
        other => {
            return Err(SpecError::InvalidArgument(format!(
                "invalid cgroup namespace mode: {other}"
            )))
        }
    };
    if host_uts && !config.hostname.is_empty() {
        return Err(SpecError::InvalidArgument(
            "conflicting options: hostname and the UTS mode".to_string(),
        ));
    }
    let hostname = hostname(record, &host.hostname);

    let user = user::resolve(
        input.rootfs,
        &config.user,
        hc.group_add.as_deref().unwrap_or_default(),
    )?;
    let cap_add = hc.cap_add.as_deref().unwrap_or_default();
    let mut capabilities = caps::tweak(
        cap_add,
        hc.cap_drop.as_deref().unwrap_or_default(),
        hc.privileged,
        host.last_cap,
    )?;
    if hc.privileged || cap_add.iter().any(|c| c.eq_ignore_ascii_case("ALL")) {
        caps::within_bounding(&mut capabilities, host.cap_bounding);
    }
    let security = security::parse(
        hc.security_opt.as_deref().unwrap_or_default(),
        &capabilities,
    )?;

    let mut args: Vec<String> = std::iter::once(record.path.clone())
        .chain(record.args.iter().cloned())
        .collect();
    let init_mount = match (hc.init, &host.init_path) {
        (Some(true), Some(init)) => {
            // Docker's `--init`: tini as PID 1, bind-mounted read-only from the host.
            args.splice(0..0, [INIT_PATH.to_string(), "--".to_string()]);
            Some(json!({
                "destination": INIT_PATH, "type": "bind", "source": init,
                "options": ["bind", "ro"]
            }))
        }
        (Some(true), None) => {
            return Err(SpecError::NotImplemented(
                "--init needs docker-init (tini) on the host: install tini-static or docker.io"
                    .to_string(),
            ))
        }
        _ => None,
    };
    let mut process = json!({
        "user": {"uid": user.uid, "gid": user.gid, "additionalGids": user.additional_gids},
        "args": args,
        "env": environment(record, &hostname),
        "cwd": working_dir(&config.working_dir)?,
        "oomScoreAdj": hc.oom_score_adj,
    });
    if config.tty {
        process["terminal"] = true.into();
    }
    let mut capability_sets = json!({"bounding": capabilities});
    // Docker gives a non-root process no effective or permitted capabilities.
    if user.uid == 0 {
        capability_sets["effective"] = capability_sets["bounding"].clone();
        capability_sets["permitted"] = capability_sets["bounding"].clone();
    }
    process["capabilities"] = capability_sets;
    let rlimits = resources::rlimits(hc)?;
    if !rlimits.is_empty() {
        process["rlimits"] = rlimits.into();
    }
    if security.no_new_privileges {
        process["noNewPrivileges"] = true.into();
    }
    if let Some(profile) = apparmor::process_profile(
        apparmor::AppArmorHost::detect().enabled(),
        security.apparmor_profile.as_deref(),
        hc.privileged,
    ) {
        process["apparmorProfile"] = profile.into();
    }

    let private_shm = !host_ipc && hc.ipc_mode != "none";
    let mut mounts = mounts::build(&mounts::MountContext {
        host_config: hc,
        container_dir: input.container_dir,
        private_shm,
        mount_points: &record.mount_points,
    })?;
    mounts.extend(init_mount);

    let mut namespaces = vec![json!({"type": "mount"})];
    match (host_network, input.network_namespace) {
        (true, _) => {}
        (false, Some(path)) => namespaces.push(json!({"type": "network", "path": path})),
        (false, None) => namespaces.push(json!({"type": "network"})),
    }
    if !host_uts {
        namespaces.push(json!({"type": "uts"}));
    }
    if !host_pid {
        namespaces.push(json!({"type": "pid"}));
    }
    if !host_ipc {
        namespaces.push(json!({"type": "ipc"}));
    }
    if private_cgroupns {
        namespaces.push(json!({"type": "cgroup"}));
    }

    let mut sysctl = resources::sysctls(hc, host_network, host_ipc)?;
    if !config.domainname.is_empty() {
        sysctl.insert("kernel.domainname".into(), config.domainname.clone());
    }
    let (devices, device_rules) = resources::devices(hc)?;
    let cgroup_parent = match hc.resources.cgroup_parent.as_str() {
        "" => input.cgroup_parent,
        parent => parent,
    };
    let mut linux = json!({
        "resources": resources::resources(&hc.resources, device_rules)?,
        "cgroupsPath": format!("{}/{}", cgroup_parent.trim_end_matches('/'), input.id),
        "namespaces": namespaces,
    });
    if !sysctl.is_empty() {
        linux["sysctl"] = json!(sysctl);
    }
    if !devices.is_empty() {
        linux["devices"] = devices.into();
    }
    if let Some(propagation) = mounts::rootfs_propagation(&mounts, mounts::host_mount_info)? {
        linux["rootfsPropagation"] = propagation.into();
    }
    if !hc.privileged && !security.unconfined_paths {
        let masked = hc
            .masked_paths
            .clone()
            .unwrap_or_else(|| MASKED_PATHS.iter().map(|p| p.to_string()).collect());
        let readonly = hc
            .readonly_paths
            .clone()
            .unwrap_or_else(|| READONLY_PATHS.iter().map(|p| p.to_string()).collect());
        if !masked.is_empty() {
            linux["maskedPaths"] = masked.into();
        }
        if !readonly.is_empty() {
            linux["readonlyPaths"] = readonly.into();
        }
    }
    if let (Some(seccomp), false) = (security.seccomp, hc.privileged) {
        linux["seccomp"] = seccomp;
    }

    let mut root = json!({"path": input.rootfs});
    if hc.readonly_rootfs {
        root["readonly"] = true.into();
    }
    let mut spec = json!({
        "ociVersion": "1.0.2-dev",
        "process": process,
        "root": root,
        "mounts": mounts,
        "linux": linux,
    });
    if !host_uts {
        spec["hostname"] = hostname.into();
    }
    Ok(spec)
}

/// Docker's `CreateDaemonEnvironment` + `ReplaceOrAppendEnvValues`: PATH, HOSTNAME and
/// (with a TTY) TERM first, then the container's Env replacing by key or appending; an entry
/// without `=` removes the variable.
fn environment(record: &ContainerRecord, hostname: &str) -> Vec<String> {
    let mut env = vec![
        format!("PATH={DEFAULT_PATH}"),
        format!("HOSTNAME={hostname}"),
    ];
    if record.config.tty {
        env.push("TERM=xterm".to_string());
    }
    let key = |entry: &str| entry.split('=').next().unwrap_or_default().to_string();
    let mut removed = Vec::new();
    for entry in record.config.env.iter().flatten() {
        let wanted = key(entry);
        let position = env.iter().position(|e| key(e) == wanted);
        match (entry.contains('='), position) {
            (true, Some(i)) => env[i] = entry.clone(),
            (true, None) => env.push(entry.clone()),
            (false, Some(i)) => removed.push(i),
            (false, None) => {}
        }
    }
    env.into_iter()
        .enumerate()
        .filter(|(i, _)| !removed.contains(i))
        .map(|(_, e)| e)
        .collect()
}

/// `-w`: absolute, cleaned as Go's `filepath.Clean`; `/` when unset.
fn working_dir(dir: &str) -> Result<String, SpecError> {
    if dir.is_empty() {
        return Ok("/".to_string());
    }
    if !dir.starts_with('/') {
        return Err(SpecError::InvalidArgument(format!(
            "the working directory '{dir}' is invalid, it needs to be an absolute path"
        )));
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in dir.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    Ok(format!("/{}", parts.join("/")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(config: &str, host: &str) -> ContainerRecord {
        ContainerRecord {
            id: "0123456789abcdef".repeat(4),
            config: serde_json::from_str(config).expect("config"),
            host_config: serde_json::from_str(host).expect("host config"),
            path: "sh".into(),
            args: vec!["-c".into(), "true".into()],
            ..ContainerRecord::default()
        }
    }

    fn host_info() -> HostInfo {
        HostInfo {
            cgroup_v2: false,
            last_cap: 40,
            cap_bounding: u64::MAX,
            hostname: "thehost".into(),
            init_path: Some("/usr/bin/docker-init".into()),
        }
    }

    fn spec(config: &str, host: &str) -> Result<Value, SpecError> {
        let rootfs = tempfile::tempdir().expect("rootfs");
        let record = record(config, host);
        let input = SpecInput {
            id: &record.id,
            record: &record,
            rootfs: rootfs.path(),
            container_dir: Path::new("/c"),
            cgroup_parent: "berth",
            network_namespace: None,
        };
        let spec = build_with(&input, &host_info())?;
        Ok(serde_json::to_value(spec).expect("encode"))
    }

    #[test]
    fn env_replaces_by_key_and_unsets_without_equals() {
        let record = record(r#"{"Env":["PATH=/x","A=1","HOSTNAME"],"Tty":true}"#, "{}");
        assert_eq!(
            environment(&record, "h"),
            vec!["PATH=/x".to_string(), "TERM=xterm".into(), "A=1".into()]
        );
    }

    #[test]
    fn working_dir_is_cleaned_and_must_be_absolute() {
        assert_eq!(working_dir("").expect("root"), "/");
        assert_eq!(working_dir("/a/./b/../c/").expect("clean"), "/a/c");
        assert!(working_dir("rel").is_err());
    }

    #[test]
    fn bridge_and_container_modes_join_the_pinned_namespace() {
        let rootfs = tempfile::tempdir().expect("rootfs");
        for mode in ["bridge", "default", "mynet", "container:abc"] {
            let record = record("{}", &format!(r#"{{"NetworkMode":"{mode}"}}"#));
            let input = SpecInput {
                id: &record.id,
                record: &record,
                rootfs: rootfs.path(),
                container_dir: Path::new("/c"),
                cgroup_parent: "berth",
                network_namespace: Some(Path::new("/run/berth/netns/x")),
            };
            let value = serde_json::to_value(build_with(&input, &host_info()).expect("spec"))
                .expect("encode");
            let namespaces = value["linux"]["namespaces"].as_array().expect("ns").clone();
            assert!(
                namespaces.contains(&json!({"type": "network", "path": "/run/berth/netns/x"})),
                "{mode}: {namespaces:?}"
            );
        }
    }

    #[test]
    fn none_network_is_a_private_loopback_namespace() {
        let value = spec("{}", r#"{"NetworkMode":"none"}"#).expect("spec");
        let namespaces = value["linux"]["namespaces"].to_string();
        assert!(namespaces.contains("\"network\""), "{namespaces}");
        assert!(!namespaces.contains("path"), "{namespaces}");
    }

    #[test]
    fn host_namespaces_are_left_out() {
        let value = spec(
            "{}",
            r#"{"NetworkMode":"host","PidMode":"host","IpcMode":"host","UTSMode":"host"}"#,
        )
        .expect("spec");
        assert_eq!(value["linux"]["namespaces"], json!([{"type": "mount"}]));
        assert!(value.get("hostname").is_none());
        let mounts = value["mounts"].as_array().expect("mounts");
        assert!(mounts.iter().all(|m| m["destination"] != "/dev/shm"));
        assert!(value["linux"].get("sysctl").is_none());
    }

    #[test]
    fn cgroup_namespace_follows_the_cgroup_version_unless_asked() {
        let value = spec("{}", r#"{"NetworkMode":"none","CgroupnsMode":"private"}"#).expect("spec");
        let namespaces = value["linux"]["namespaces"].as_array().expect("ns");
        assert_eq!(namespaces.last(), Some(&json!({"type": "cgroup"})));
    }

    #[test]
    fn own_cgroup_parent_wins() {
        let value = spec("{}", r#"{"NetworkMode":"none","CgroupParent":"/mine/"}"#).expect("spec");
        let path = value["linux"]["cgroupsPath"].as_str().expect("path");
        assert!(path.starts_with("/mine/0123"), "{path}");
    }

    #[test]
    fn hostname_with_uts_host_conflicts() {
        let err = spec(
            r#"{"Hostname":"x"}"#,
            r#"{"NetworkMode":"none","UTSMode":"host"}"#,
        )
        .expect_err("conflict");
        assert_eq!(
            err.to_string(),
            "conflicting options: hostname and the UTS mode"
        );
    }

    #[test]
    fn host_network_takes_the_hosts_hostname() {
        let value = spec("{}", r#"{"NetworkMode":"host"}"#).expect("spec");
        assert_eq!(value["hostname"], "thehost");
        assert_eq!(value["process"]["env"][1], "HOSTNAME=thehost");
    }

    #[test]
    fn init_runs_docker_init_as_pid_one() {
        let value = spec("{}", r#"{"NetworkMode":"none","Init":true}"#).expect("spec");
        assert_eq!(
            value["process"]["args"],
            json!(["/sbin/docker-init", "--", "sh", "-c", "true"])
        );
        let mounts = value["mounts"].as_array().expect("mounts");
        assert_eq!(
            mounts.last(),
            Some(&json!({"destination": "/sbin/docker-init", "type": "bind",
                         "source": "/usr/bin/docker-init", "options": ["bind", "ro"]}))
        );
    }

    #[test]
    fn seccomp_profile_is_dropped_when_privileged() {
        let profile = r#"seccomp={"defaultAction":"SCMP_ACT_ALLOW"}"#;
        let host = format!(
            r#"{{"NetworkMode":"none","SecurityOpt":[{}]}}"#,
            json!(profile)
        );
        let value = spec("{}", &host).expect("spec");
        assert_eq!(value["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ALLOW");
        let host = format!(
            r#"{{"NetworkMode":"none","Privileged":true,"SecurityOpt":[{}]}}"#,
            json!(profile)
        );
        let value = spec("{}", &host).expect("spec");
        assert!(value["linux"].get("seccomp").is_none());
        assert!(value["linux"].get("maskedPaths").is_none());
    }
}
