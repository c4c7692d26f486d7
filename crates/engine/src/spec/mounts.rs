//! The container's mounts as Docker lays them out: its default mounts (/proc, /dev, devpts,
//! /sys, cgroup, mqueue, /dev/shm), then the user's binds (`-v`, `--mount type=bind`) and
//! tmpfs (`--tmpfs`, `--mount type=tmpfs`), the volumes and `--volumes-from` mounts resolved
//! at create (`crate::volume::mounts`) and the /etc files from the container
//! directory, sorted by depth of destination so that parents mount before children.

use std::collections::BTreeSet;
use std::path::Path;

use berth_api::container::HostConfig;
use serde_json::{json, Value};

use super::SpecError;

/// What decides the default mounts.
pub struct MountContext<'a> {
    pub host_config: &'a HostConfig,
    pub container_dir: &'a Path,
    /// Whether the container gets a /dev/shm of its own (`--ipc` private or shareable).
    pub private_shm: bool,
    /// Volumes and inherited mounts, with their host paths.
    pub mount_points: &'a [crate::volume::MountPoint],
}

fn mount(destination: &str, kind: &str, source: &str, options: &[&str]) -> Value {
    json!({"destination": destination, "type": kind, "source": source, "options": options})
}

/// Docker's defaults (moby's `DefaultLinuxSpec`), /sys and cgroup writable when privileged.
fn defaults(context: &MountContext) -> Vec<Value> {
    let privileged = context.host_config.privileged;
    let shm_size = match context.host_config.shm_size {
        0 => 64 << 20,
        size => size,
    };
    let mut sys = vec!["nosuid", "noexec", "nodev"];
    let mut cgroup = vec!["nosuid", "noexec", "nodev"];
    if !privileged {
        sys.push("ro");
        cgroup.insert(0, "ro");
    }
    let shm_options = format!("size={shm_size}");
    let mut mounts = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount("/sys", "sysfs", "sysfs", &sys),
        mount("/sys/fs/cgroup", "cgroup", "cgroup", &cgroup),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
    ];
    if context.private_shm {
        mounts.push(mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", &shm_options],
        ));
    }
    mounts
}

/// All mounts of the spec, in Docker's order.
pub fn build(context: &MountContext) -> Result<Vec<Value>, SpecError> {
    let host = context.host_config;
    let mut user = user_mounts(host)?;
    for point in context.mount_points {
        let propagation = match point.propagation.as_str() {
            "" => "rprivate",
            p => p,
        };
        user.push(bind_mount(
            &point.source,
            &point.destination,
            point.rw,
            propagation,
            true,
        ));
    }
    let mut seen = BTreeSet::new();
    for m in &user {
        let destination = m["destination"].as_str().unwrap_or_default().to_string();
        if !seen.insert(destination.clone()) {
            return Err(SpecError::InvalidArgument(format!(
                "Duplicate mount point: {destination}"
            )));
        }
    }
    user.sort_by(|a, b| a["destination"].as_str().cmp(&b["destination"].as_str()));
    for name in ["resolv.conf", "hostname", "hosts"] {
        let destination = format!("/etc/{name}");
        if seen.contains(&destination) {
            continue;
        }
        let source = context.container_dir.join(name);
        user.push(bind_mount(
            &source.to_string_lossy(),
            &destination,
            !host.readonly_rootfs,
            "rprivate",
            true,
        ));
    }
    user.sort_by_key(|m| depth(m["destination"].as_str().unwrap_or_default()));
    let mount_dev = seen.contains("/dev");
    let mut mounts: Vec<Value> = defaults(context)
        .into_iter()
        .filter(|m| {
            let destination = m["destination"].as_str().unwrap_or_default();
            !(seen.contains(destination) || mount_dev && destination.starts_with("/dev/"))
        })
        .collect();
    mounts.extend(user);
    Ok(mounts)
}

/// The host mount holding `path` (the longest mount point above its real path) and that
/// mount's optional fields (`shared:N`, `master:N`), from `/proc/self/mountinfo`.
pub fn host_mount_info(path: &str) -> Option<(String, Vec<String>)> {
    let real = std::fs::canonicalize(path).ok()?;
    let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    source_mount(&text, &real.to_string_lossy())
}

fn source_mount(mountinfo: &str, path: &str) -> Option<(String, Vec<String>)> {
    let mut best: Option<(String, Vec<String>)> = None;
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(point) = fields.get(4) else {
            continue;
        };
        let inside = *point == "/"
            || path == *point
            || path
                .strip_prefix(point)
                .is_some_and(|rest| rest.starts_with('/'));
        // Later lines are mounted on top of earlier ones at the same point.
        if inside && best.as_ref().is_none_or(|(b, _)| point.len() >= b.len()) {
            let optional = fields
                .iter()
                .skip(6)
                .take_while(|f| **f != "-")
                .map(|f| f.to_string())
                .collect();
            best = Some((point.to_string(), optional));
        }
    }
    best
}

/// moby's `setMounts` propagation rules: a `shared`/`rshared` bind needs a shared source
/// mount and makes the container's root `shared`; a `slave`/`rslave` bind needs a shared or
/// slave source and makes the root `rslave` (unless already shared). `None`: the runtime's
/// default (rprivate).
pub fn rootfs_propagation(
    mounts: &[Value],
    mount_info: impl Fn(&str) -> Option<(String, Vec<String>)>,
) -> Result<Option<&'static str>, SpecError> {
    let mut root = None;
    for m in mounts.iter().filter(|m| m["type"] == "bind") {
        let options: Vec<&str> = m["options"]
            .as_array()
            .map(|o| o.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default();
        let shared = options.iter().any(|o| *o == "shared" || *o == "rshared");
        let slave = options.iter().any(|o| *o == "slave" || *o == "rslave");
        if !shared && !slave {
            continue;
        }
        let source = m["source"].as_str().unwrap_or_default();
        let (point, optional) = mount_info(source).unwrap_or_default();
        let has = |prefix: &str| optional.iter().any(|f| f.starts_with(prefix));
        if shared {
            if !has("shared:") {
                return Err(SpecError::InvalidArgument(format!(
                    "path {source} is mounted on {point} but it is not a shared mount"
                )));
            }
            root = Some("shared");
        } else {
            if !has("shared:") && !has("master:") {
                return Err(SpecError::InvalidArgument(format!(
                    "path {source} is mounted on {point} but it is not a shared or slave mount"
                )));
            }
            root = root.or(Some("rslave"));
        }
    }
    Ok(root)
}

/// Path components of a destination (Docker sorts mounts by this, parents first).
fn depth(destination: &str) -> usize {
    destination.split('/').filter(|c| !c.is_empty()).count()
}

fn bind_mount(
    source: &str,
    destination: &str,
    writable: bool,
    propagation: &str,
    recursive: bool,
) -> Value {
    let mut options = vec![if recursive { "rbind" } else { "bind" }];
    if !writable {
        options.push("ro");
    }
    options.push(propagation);
    mount(destination, "bind", source, &options)
}

fn user_mounts(host: &HostConfig) -> Result<Vec<Value>, SpecError> {
    let mut mounts = Vec::new();
    for bind in host.binds.iter().flatten() {
        mounts.extend(parse_bind(bind)?);
    }
    for m in host.mounts.iter().flatten() {
        mounts.extend(api_mount(m)?);
    }
    for (destination, data) in host.tmpfs.iter().flatten() {
        check_destination(destination, destination)?;
        mounts.push(tmpfs_mount(destination, data)?);
    }
    Ok(mounts)
}

fn check_destination(destination: &str, spec: &str) -> Result<(), SpecError> {
    if !destination.starts_with('/') {
        return Err(SpecError::InvalidArgument(format!(
            "invalid mount config: mount path must be absolute: {spec}"
        )));
    }
    if destination == "/" {
        return Err(SpecError::InvalidArgument(
            "invalid specification: destination can't be '/'".to_string(),
        ));
    }
    Ok(())
}

const PROPAGATIONS: [&str; 6] = [
    "private", "rprivate", "shared", "rshared", "slave", "rslave",
];

/// `-v /host:/ctr[:ro|rw,z,Z,nocopy,<propagation>]`; volumes (`-v name:/ctr`, `-v /ctr`)
/// are mounted from the container's mount points instead (`None` here).
fn parse_bind(spec: &str) -> Result<Option<Value>, SpecError> {
    let parts: Vec<&str> = spec.split(':').collect();
    let invalid = || SpecError::InvalidArgument(format!("invalid volume specification: '{spec}'"));
    let (source, destination, mode) = match parts.as_slice() {
        [_destination] => return Ok(None),
        [source, destination] => (*source, *destination, ""),
        [source, destination, mode] => (*source, *destination, *mode),
        _ => return Err(invalid()),
    };
    if source.is_empty() || destination.is_empty() {
        return Err(invalid());
    }
    if !source.starts_with('/') {
        return Ok(None);
    }
    check_destination(destination, spec)?;
    let mut writable = true;
    let mut propagation = "rprivate";
    for option in mode.split(',').filter(|o| !o.is_empty()) {
        match option {
            "ro" => writable = false,
            "rw" => writable = true,
            // SELinux relabelling and nocopy have no effect without SELinux or volumes.
            "z" | "Z" | "nocopy" => {}
            p if PROPAGATIONS.contains(&p) => propagation = p,
            _ => return Err(invalid()),
        }
    }
    // As Docker for `-v`: a missing host directory is created (an existing file is bound
    // as it is: create_dir_all fails on it with EEXIST).
    if std::fs::symlink_metadata(source).is_err() {
        std::fs::create_dir_all(source).map_err(|e| SpecError::Io {
            context: format!("creating the bind source {source}"),
            source: e,
        })?;
    }
    Ok(Some(bind_mount(
        source,
        destination,
        writable,
        propagation,
        true,
    )))
}

/// One `--mount` (Go's `mount.Mount`); volumes come from the mount points (`None`).
fn api_mount(m: &berth_api::container::Mount) -> Result<Option<Value>, SpecError> {
    if m.r#type == "volume" {
        return Ok(None);
    }
    api_mount_value(m).map(Some)
}

fn api_mount_value(m: &berth_api::container::Mount) -> Result<Value, SpecError> {
    crate::volume::mounts::validate_mount(m)
        .map_err(|e| SpecError::InvalidArgument(e.to_string()))?;
    match m.r#type.as_str() {
        "bind" => {
            let options = m.bind_options.clone().unwrap_or_default();
            let propagation = match options.propagation.as_str() {
                "" => "rprivate",
                p => p,
            };
            Ok(bind_mount(
                &m.source,
                &m.target,
                !m.read_only,
                propagation,
                !options.non_recursive,
            ))
        }
        "tmpfs" => {
            let options = m.tmpfs_options.clone().unwrap_or_default();
            let mut data = Vec::new();
            if options.size_bytes > 0 {
                data.push(format!("size={}", size_text(options.size_bytes)));
            }
            if options.mode != 0 {
                data.push(format!("mode={:o}", options.mode));
            }
            if m.read_only {
                data.push("ro".to_string());
            }
            tmpfs_mount(&m.target, &data.join(","))
        }
        other => Err(SpecError::NotImplemented(format!(
            "mount type {other:?} is not supported"
        ))),
    }
}

/// go-units' way of writing a byte count for tmpfs (`2m`, `512k`, `1000`).
fn size_text(bytes: i64) -> String {
    if bytes % (1 << 30) == 0 {
        format!("{}g", bytes >> 30)
    } else if bytes % (1 << 20) == 0 {
        format!("{}m", bytes >> 20)
    } else if bytes % (1 << 10) == 0 {
        format!("{}k", bytes >> 10)
    } else {
        bytes.to_string()
    }
}

/// Mount flags that collide with each other in tmpfs options (moby's
/// `MergeTmpfsOptions`): the last one given wins, keeping its position.
fn flag_key(option: &str) -> Option<&'static str> {
    Some(match option {
        "ro" | "rw" => "rdonly",
        "exec" | "noexec" => "noexec",
        "suid" | "nosuid" => "nosuid",
        "dev" | "nodev" => "nodev",
        "sync" | "async" => "sync",
        "atime" | "noatime" => "noatime",
        "diratime" | "nodiratime" => "nodiratime",
        "relatime" | "norelatime" => "relatime",
        "strictatime" | "nostrictatime" => "strictatime",
        "mand" | "nomand" => "mand",
        "dirsync" => "dirsync",
        "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" | "unbindable"
        | "runbindable" => "propagation",
        _ => return None,
    })
}

const TMPFS_DATA: [&str; 7] = [
    "size",
    "mode",
    "uid",
    "gid",
    "nr_inodes",
    "nr_blocks",
    "mpol",
];

fn tmpfs_mount(destination: &str, data: &str) -> Result<Value, SpecError> {
    let mut options: Vec<&str> = vec!["noexec", "nosuid", "nodev", "rprivate"];
    options.extend(data.split(',').filter(|o| !o.is_empty()));
    let mut merged: Vec<&str> = Vec::new();
    let mut seen = BTreeSet::new();
    for option in options.into_iter().rev() {
        if option == "defaults" {
            continue;
        }
        let key = match flag_key(option) {
            Some(key) => key,
            None => match option.split_once('=') {
                Some((key, _)) if TMPFS_DATA.contains(&key) => key,
                _ => {
                    return Err(SpecError::InvalidArgument(format!(
                        "invalid tmpfs option {option:?}"
                    )))
                }
            },
        };
        if seen.insert(key) {
            merged.insert(0, option);
        }
    }
    Ok(mount(destination, "tmpfs", "tmpfs", &merged))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(json: &str) -> HostConfig {
        serde_json::from_str(json).expect("host config")
    }

    fn build_for(host: &HostConfig) -> Result<Vec<Value>, SpecError> {
        build(&MountContext {
            host_config: host,
            container_dir: Path::new("/c"),
            private_shm: true,
            mount_points: &[],
        })
    }

    fn destinations(mounts: &[Value]) -> Vec<&str> {
        mounts
            .iter()
            .map(|m| m["destination"].as_str().unwrap_or_default())
            .collect()
    }

    #[test]
    fn defaults_then_etc_files_in_dockers_order() {
        let mounts = build_for(&host("{}")).expect("mounts");
        assert_eq!(
            destinations(&mounts),
            vec![
                "/proc",
                "/dev",
                "/dev/pts",
                "/sys",
                "/sys/fs/cgroup",
                "/dev/mqueue",
                "/dev/shm",
                "/etc/resolv.conf",
                "/etc/hostname",
                "/etc/hosts"
            ]
        );
        assert_eq!(mounts[6]["options"][4], "size=67108864");
        assert_eq!(mounts[7]["source"], "/c/resolv.conf");
        assert_eq!(mounts[7]["options"], json!(["rbind", "rprivate"]));
    }

    #[test]
    fn read_only_rootfs_makes_the_etc_files_read_only() {
        let mounts = build_for(&host(r#"{"ReadonlyRootfs":true}"#)).expect("mounts");
        assert_eq!(mounts[9]["options"], json!(["rbind", "ro", "rprivate"]));
    }

    #[test]
    fn binds_and_tmpfs_sort_by_depth_and_replace_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        let source = dir.path().join("made-by-v");
        let host = host(&format!(
            r#"{{"Binds":["{}:/data/x:ro,rshared"],"Tmpfs":{{"/dev/shm":"size=1m,exec"}}}}"#,
            source.display()
        ));
        let mounts = build_for(&host).expect("mounts");
        assert!(
            source.is_dir(),
            "-v creates a missing host directory as Docker"
        );
        let dests = destinations(&mounts);
        assert_eq!(dests.iter().filter(|d| **d == "/dev/shm").count(), 1);
        let shm = mounts
            .iter()
            .find(|m| m["destination"] == "/dev/shm")
            .expect("shm");
        assert_eq!(
            shm["options"],
            json!(["nosuid", "nodev", "rprivate", "size=1m", "exec"])
        );
        // Depth 2 like the /etc files, after the depth-1 defaults; user mounts come first.
        let bind = &mounts[dests.iter().position(|d| *d == "/data/x").expect("bind")];
        let position = |d: &str| dests.iter().position(|x| *x == d).expect("mounted");
        assert!(position("/dev/mqueue") < position("/data/x"));
        assert!(position("/data/x") < position("/etc/resolv.conf"));
        assert_eq!(bind["options"], json!(["rbind", "ro", "rshared"]));
    }

    #[test]
    fn mount_api_binds_need_an_existing_source() {
        let host = host(r#"{"Mounts":[{"Type":"bind","Source":"/nonexistent/x","Target":"/x"}]}"#);
        let err = build_for(&host).expect_err("missing source");
        assert_eq!(
            err.to_string(),
            "invalid mount config for type \"bind\": bind source path does not exist: /nonexistent/x"
        );
    }

    #[test]
    fn mount_api_tmpfs_sizes_are_written_as_docker() {
        let host = host(
            r#"{"Mounts":[{"Type":"tmpfs","Target":"/scratch","TmpfsOptions":{"SizeBytes":2097152,"Mode":448}}]}"#,
        );
        let mounts = build_for(&host).expect("mounts");
        let scratch = mounts
            .iter()
            .find(|m| m["destination"] == "/scratch")
            .expect("tmpfs");
        assert_eq!(
            scratch["options"],
            json!(["noexec", "nosuid", "nodev", "rprivate", "size=2m", "mode=700"])
        );
    }

    #[test]
    fn volumes_mount_from_their_mount_points_with_their_mode() {
        let host = host(r#"{"Binds":["data:/data:ro","/scratch"],"ReadonlyRootfs":true}"#);
        let points = [crate::volume::MountPoint {
            r#type: "volume".into(),
            name: "data".into(),
            source: "/v/data/_data".into(),
            destination: "/data".into(),
            rw: false,
            ..crate::volume::MountPoint::default()
        }];
        let mounts = build(&MountContext {
            host_config: &host,
            container_dir: Path::new("/c"),
            private_shm: true,
            mount_points: &points,
        })
        .expect("mounts");
        let data = mounts
            .iter()
            .find(|m| m["destination"] == "/data")
            .expect("volume");
        assert_eq!(data["source"], "/v/data/_data");
        assert_eq!(data["options"], json!(["rbind", "ro", "rprivate"]));
        assert!(
            !mounts.iter().any(|m| m["destination"] == "/scratch"),
            "a volume bind without a mount point mounts nothing"
        );
    }

    #[test]
    fn duplicate_destinations_and_bad_options_are_refused() {
        let err = build_for(&host(r#"{"Binds":["/tmp:/x","/tmp:/x"]}"#)).expect_err("dup");
        assert_eq!(err.to_string(), "Duplicate mount point: /x");
        let err = build_for(&host(r#"{"Binds":["/tmp:/x:bogus"]}"#)).expect_err("mode");
        assert_eq!(
            err.to_string(),
            "invalid volume specification: '/tmp:/x:bogus'"
        );
        let err = build_for(&host(r#"{"Tmpfs":{"/t":"colour=red"}}"#)).expect_err("tmpfs");
        assert!(err.to_string().starts_with("invalid tmpfs option"), "{err}");
    }

    #[test]
    fn privileged_gets_writable_sys_and_cgroup() {
        let mounts = build_for(&host(r#"{"Privileged":true}"#)).expect("mounts");
        assert_eq!(mounts[3]["options"], json!(["nosuid", "noexec", "nodev"]));
        assert_eq!(mounts[4]["options"], json!(["nosuid", "noexec", "nodev"]));
    }

    #[test]
    fn source_mount_is_the_longest_mount_point_above_the_path() {
        let info = "1 0 8:1 / / rw shared:1 - ext4 /dev/vda rw\n\
                    2 1 0:2 / /mnt/a rw - tmpfs tmpfs rw\n\
                    3 1 0:3 / /mnt/ab rw shared:7 master:2 - tmpfs tmpfs rw\n";
        let (point, optional) = source_mount(info, "/mnt/a/x").expect("mount");
        assert_eq!(point, "/mnt/a");
        assert!(optional.is_empty());
        let (point, optional) = source_mount(info, "/mnt/ab").expect("mount");
        assert_eq!(point, "/mnt/ab");
        assert_eq!(optional, vec!["shared:7", "master:2"]);
        assert_eq!(source_mount(info, "/srv").expect("root").0, "/");
    }

    #[test]
    fn rootfs_propagation_follows_moby_and_checks_the_source_mount() {
        let bind = |source: &str, propagation: &str| {
            json!({"type": "bind", "source": source, "destination": "/x",
                   "options": ["rbind", propagation]})
        };
        let info = |path: &str| {
            Some(match path {
                "/shared" => ("/shared".to_string(), vec!["shared:3".to_string()]),
                "/slave" => ("/slave".to_string(), vec!["master:3".to_string()]),
                _ => ("/".to_string(), Vec::new()),
            })
        };
        let plain = [bind("/private", "rprivate")];
        assert_eq!(rootfs_propagation(&plain, info).expect("ok"), None);
        let shared = [bind("/shared", "rshared"), bind("/slave", "rslave")];
        assert_eq!(
            rootfs_propagation(&shared, info).expect("ok"),
            Some("shared")
        );
        let slave = [bind("/slave", "slave"), bind("/shared", "rslave")];
        assert_eq!(
            rootfs_propagation(&slave, info).expect("ok"),
            Some("rslave")
        );
        let err = rootfs_propagation(&[bind("/private", "rshared")], info).expect_err("private");
        assert_eq!(
            err.to_string(),
            "path /private is mounted on / but it is not a shared mount"
        );
        let err = rootfs_propagation(&[bind("/slave", "shared")], info).expect_err("slave");
        assert!(err.to_string().contains("is not a shared mount"), "{err}");
        let err = rootfs_propagation(&[bind("/private", "rslave")], info).expect_err("private");
        assert_eq!(
            err.to_string(),
            "path /private is mounted on / but it is not a shared or slave mount"
        );
    }
}
