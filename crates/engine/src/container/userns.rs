//! User namespaces of containers, the side with effects: the daemon-wide `userns-remap`
//! (its user, ranges and `<data-root>/<uid>.<gid>` root), `--userns auto` claims under
//! `<data-root>/userns/auto/<uid>.<gid>` (one file per block, holding the container ID: never
//! handed out twice, freed on rm), which map a container runs with, and the host directories
//! its root must be able to traverse. The idmapped rootfs is in `userns_rootfs.rs`.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use berth_api::container::HostConfig;

use super::{ContainerError, ContainerRecord};
use crate::config::EngineConfig;
use crate::spec::userns::{self, IdMap, UsernsError, UsernsMode, AUTO_SIZE};

/// The subordinate-id owner `userns-remap: default` uses (Docker's `dockremap`).
pub const REMAP_USER: &str = "berthremap";
/// The subordinate-id owner `--userns auto` carves blocks from (podman's `containers`).
pub const AUTO_USER: &str = "berthauto";
/// Ids berthd gives [`AUTO_USER`] when it creates it: 64 containers' worth.
const AUTO_POOL: u32 = 64 * AUTO_SIZE;

const SUBUID: &str = "/etc/subuid";
const SUBGID: &str = "/etc/subgid";

/// Serializes user creation and claims inside this berthd (files make them safe across).
static SETUP: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Why the daemon-wide remap cannot be set up (berthd refuses to start).
#[derive(Debug, thiserror::Error)]
pub enum RemapError {
    #[error(transparent)]
    Userns(#[from] UsernsError),
    #[error("userns-remap: no such user {0} (create it, or use \"default\")")]
    NoUser(String),
    #[error("userns-remap: {context}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl From<UsernsError> for ContainerError {
    fn from(e: UsernsError) -> ContainerError {
        ContainerError::InvalidArgument(e.to_string())
    }
}

impl From<RemapError> for ContainerError {
    fn from(e: RemapError) -> ContainerError {
        match e {
            RemapError::Userns(e) => e.into(),
            RemapError::NoUser(_) => ContainerError::InvalidArgument(e.to_string()),
            RemapError::Io { context, source } => ContainerError::Io { context, source },
        }
    }
}

fn io_error(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> RemapError {
    let context = context.into();
    move |source| RemapError::Io { context, source }
}

/// Docker's `userns-remap`: `default` (user `berthremap`, created with a range if missing),
/// `user`, `user:group`, `uid` or `uid:gid`. Sets `config.userns_remap` and moves the data
/// root to `<data-root>/<uid>.<gid>` as dockerd does, so remapped and plain state never mix.
pub fn setup_remap(config: &mut EngineConfig, value: &str) -> Result<(), RemapError> {
    let (user, group) = match value.split_once(':') {
        Some((u, g)) => (u.to_string(), Some(g.to_string())),
        None => (value.to_string(), None),
    };
    let (user, group) = if user == "default" {
        ensure_user(REMAP_USER, AUTO_SIZE)?;
        (REMAP_USER.to_string(), None)
    } else {
        (user, group)
    };
    let (user_name, uid) = lookup("passwd", &user)?;
    let group = group.unwrap_or_else(|| user_name.clone());
    let gid = lookup("group", &group).ok().map(|(_, id)| id);
    let subuid = read(SUBUID)?;
    let subgid = read(SUBGID)?;
    let uids = userns::subordinate_ranges(&subuid, &user_name, Some(uid));
    let group_name = lookup("group", &group).map_or(group.clone(), |(n, _)| n);
    let gids = userns::subordinate_ranges(&subgid, &group_name, gid);
    if uids.is_empty() {
        return Err(UsernsError::NoRange {
            file: SUBUID,
            user: user_name,
        }
        .into());
    }
    if gids.is_empty() {
        return Err(UsernsError::NoRange {
            file: SUBGID,
            user: group_name,
        }
        .into());
    }
    let map = IdMap::from_ranges(&uids, &gids);
    let (root_uid, root_gid) = map.root();
    let parent = config.data_root.clone();
    config.data_root = parent.join(format!("{root_uid}.{root_gid}"));
    std::fs::create_dir_all(&config.data_root)
        .map_err(io_error(format!("creating {}", config.data_root.display())))?;
    add_search(&parent).map_err(io_error(format!("chmod {}", parent.display())))?;
    config.userns_remap = Some(map);
    Ok(())
}

/// `(name, id)` of a user or group given by name or number (`getent`, so NSS users count).
fn lookup(database: &str, key: &str) -> Result<(String, u32), RemapError> {
    let output = Command::new("getent")
        .args([database, key])
        .output()
        .map_err(io_error("running getent"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    let mut fields = text.trim().split(':');
    match (fields.next(), fields.nth(1).and_then(|id| id.parse().ok())) {
        (Some(name), Some(id)) if output.status.success() && !name.is_empty() => {
            Ok((name.to_string(), id))
        }
        _ => Err(RemapError::NoUser(key.to_string())),
    }
}

fn read(path: &str) -> Result<String, RemapError> {
    match std::fs::read_to_string(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        other => other.map_err(io_error(format!("reading {path}"))),
    }
}

/// Creates system user `name` and gives it `count` subordinate uids and gids after the
/// highest range any user has (Docker's `dockremap` setup), unless it has ranges already.
fn ensure_user(name: &str, count: u32) -> Result<(), RemapError> {
    let _guard = SETUP.lock().unwrap_or_else(|e| e.into_inner());
    if lookup("passwd", name).is_err() {
        run(Command::new("useradd").args([
            "--system",
            "--shell",
            "/bin/false",
            "--no-create-home",
            name,
        ]))?;
    }
    let (_, uid) = lookup("passwd", name)?;
    for (file, flag) in [(SUBUID, "--add-subuids"), (SUBGID, "--add-subgids")] {
        let text = read(file)?;
        if !userns::subordinate_ranges(&text, name, Some(uid)).is_empty() {
            continue;
        }
        let start = text
            .lines()
            .filter_map(|line| {
                let mut f = line.trim().split(':').skip(1);
                let start: u64 = f.next()?.parse().ok()?;
                let count: u64 = f.next()?.parse().ok()?;
                Some(start + count)
            })
            .max()
            .unwrap_or(0)
            .max(100_000);
        let end = start + u64::from(count) - 1;
        run(Command::new("usermod").args([flag, &format!("{start}-{end}"), name]))?;
    }
    Ok(())
}

fn run(command: &mut Command) -> Result<(), RemapError> {
    let what = format!("{command:?}");
    let output = command
        .output()
        .map_err(io_error(format!("running {what}")))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(RemapError::Io {
            context: format!("{what} failed"),
            source: std::io::Error::other(
                String::from_utf8_lossy(&output.stderr).trim().to_string(),
            ),
        })
    }
}

/// `<data-root>/userns/auto`.
fn claims_dir(config: &EngineConfig) -> PathBuf {
    config.data_root.join("userns").join("auto")
}

/// The map of a container being created: checks the mode, refuses `--privileged` in a user
/// namespace (Docker's rule) and claims a block for `auto`. Blocking.
pub fn claim(
    config: &EngineConfig,
    id: &str,
    host_config: &HostConfig,
) -> Result<Option<IdMap>, ContainerError> {
    let mode = userns::parse_mode(&host_config.userns_mode)?;
    let in_user_namespace = match &mode {
        UsernsMode::Host => false,
        UsernsMode::Default => config.userns_remap.is_some(),
        UsernsMode::Map(_) | UsernsMode::Auto => true,
    };
    if in_user_namespace && host_config.privileged {
        return Err(ContainerError::InvalidArgument(
            "privileged mode is incompatible with user namespaces: run the container with --userns host".to_string(),
        ));
    }
    Ok(match mode {
        UsernsMode::Host => None,
        UsernsMode::Default => config.userns_remap.clone(),
        UsernsMode::Map(map) => Some(map),
        UsernsMode::Auto => Some(claim_auto(config, id)?),
    })
}

fn claim_auto(config: &EngineConfig, id: &str) -> Result<IdMap, ContainerError> {
    ensure_user(AUTO_USER, AUTO_POOL)?;
    let (_, uid) = lookup("passwd", AUTO_USER)?;
    let gid = lookup("group", AUTO_USER).ok().map(|(_, g)| g);
    let uids = userns::subordinate_ranges(&read(SUBUID)?, AUTO_USER, Some(uid));
    let gids = userns::subordinate_ranges(&read(SUBGID)?, AUTO_USER, gid);
    let dir = claims_dir(config);
    std::fs::create_dir_all(&dir)
        .map_err(|e| ContainerError::io(format!("creating {}", dir.display()), e))?;
    let _guard = SETUP.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let taken: Vec<(u32, u32)> = claims(&dir).into_iter().map(|c| c.0).collect();
        let Some((host_uid, host_gid)) =
            userns::pick_auto_block(&uids, &gids, &taken, config.userns_remap.as_ref())
        else {
            return Err(UsernsError::Exhausted {
                user: AUTO_USER.to_string(),
            }
            .into());
        };
        let path = dir.join(format!("{host_uid}.{host_gid}"));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut file) => {
                file.write_all(id.as_bytes())
                    .and_then(|()| file.sync_all())
                    .map_err(|e| ContainerError::io(format!("writing {}", path.display()), e))?;
                return Ok(IdMap::block(host_uid, host_gid, AUTO_SIZE));
            }
            // Another berthd on this data root took it between the listing and now.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(ContainerError::io(
                    format!("creating {}", path.display()),
                    e,
                ))
            }
        }
    }
}

/// Every claim: `((uid, gid), container id)`.
fn claims(dir: &Path) -> Vec<((u32, u32), String)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let (uid, gid) = name.split_once('.')?;
            let owner = std::fs::read_to_string(entry.path()).ok()?;
            Some(((uid.parse().ok()?, gid.parse().ok()?), owner))
        })
        .collect()
}

/// Frees the `auto` block of container `id` and its use of a chowned layer stack (at rm;
/// idempotent).
pub fn release(config: &EngineConfig, id: &str) {
    super::userns_chown::release(config, id);
    let dir = claims_dir(config);
    for ((uid, gid), owner) in claims(&dir) {
        if owner == id {
            let _ = std::fs::remove_file(dir.join(format!("{uid}.{gid}")));
        }
    }
}

/// The map container `record` runs with, or None in the host's user namespace. Blocking.
pub fn map_of(
    config: &EngineConfig,
    record: &ContainerRecord,
) -> Result<Option<IdMap>, ContainerError> {
    Ok(match userns::parse_mode(&record.host_config.userns_mode)? {
        UsernsMode::Host => None,
        UsernsMode::Default => config.userns_remap.clone(),
        UsernsMode::Map(map) => Some(map),
        UsernsMode::Auto => {
            let claim = claims(&claims_dir(config))
                .into_iter()
                .find(|(_, owner)| owner == &record.id);
            match claim {
                Some(((uid, gid), _)) => Some(IdMap::block(uid, gid, AUTO_SIZE)),
                None => Some(claim_auto(config, &record.id)?),
            }
        }
    })
}

/// Adds search permission for others (Docker's 0711 on its root when remapping): the
/// runtime resolves the rootfs and bind sources as the container's root, which owns none
/// of these directories. Listing stays root's, and each container directory is closed to
/// all but its own root's group ([`prepare_dirs`]), so images and other containers' files
/// stay out of reach (CVE-2021-41091).
fn add_search(dir: &Path) -> std::io::Result<()> {
    let mode = std::fs::metadata(dir)?.permissions().mode();
    if mode & 0o001 == 0 {
        std::fs::set_permissions(
            dir,
            std::fs::Permissions::from_mode((mode & 0o7777) | 0o011),
        )?;
    }
    Ok(())
}

/// Makes the container's directory, its /etc files and its volumes reachable by its root:
/// `<data-root>` and `containers/` searchable, the container directory root:<root gid>
/// 0710 (Docker's layout), hostname/hosts/resolv.conf owned by the container's root, and
/// each volume's `_data` traversable (and owned by the container's root while still owned
/// by host root, as dockerd's remapped volumes are). Blocking; call after the bundle.
pub fn prepare_dirs(
    config: &EngineConfig,
    record: &ContainerRecord,
    map: &IdMap,
) -> Result<(), ContainerError> {
    let (uid, gid) = map.root();
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |e| ContainerError::io(format!("preparing {path} for the user namespace"), e)
    };
    for dir in [config.data_root.clone(), config.containers_dir()] {
        add_search(&dir).map_err(io(&dir))?;
    }
    let dir = config.container_dir(&record.id);
    std::os::unix::fs::chown(&dir, Some(0), Some(gid)).map_err(io(&dir))?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o710)).map_err(io(&dir))?;
    for name in ["hostname", "hosts", "resolv.conf"] {
        let file = dir.join(name);
        if file.exists() {
            std::os::unix::fs::chown(&file, Some(uid), Some(gid)).map_err(io(&file))?;
        }
    }
    let volumes = config.data_root.join("volumes");
    for point in record.mount_points.iter().filter(|p| p.r#type == "volume") {
        let source = Path::new(&point.source);
        let Ok(below) = source.strip_prefix(&volumes) else {
            continue;
        };
        let mut dir = volumes.clone();
        add_search(&dir).map_err(io(&dir))?;
        for part in below.parent().into_iter().flat_map(Path::components) {
            dir.push(part);
            add_search(&dir).map_err(io(&dir))?;
        }
        if let Ok(meta) = std::fs::metadata(source) {
            use std::os::unix::fs::MetadataExt;
            if meta.uid() == 0 && meta.gid() == 0 {
                std::os::unix::fs::chown(source, Some(uid), Some(gid)).map_err(io(source))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(root: &Path) -> EngineConfig {
        EngineConfig::new(root.join("data"), root.join("exec"))
    }

    #[test]
    fn claims_are_found_by_owner_and_released() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = config(dir.path());
        let claims_dir = claims_dir(&config);
        std::fs::create_dir_all(&claims_dir).expect("mkdir");
        std::fs::write(claims_dir.join("100000.200000"), "aaa").expect("claim a");
        std::fs::write(claims_dir.join("165536.265536"), "bbb").expect("claim b");
        std::fs::write(claims_dir.join("junk"), "ccc").expect("junk");
        let mut found = claims(&claims_dir);
        found.sort();
        assert_eq!(
            found,
            vec![
                ((100000, 200000), "aaa".to_string()),
                ((165536, 265536), "bbb".to_string())
            ]
        );
        let record = ContainerRecord {
            id: "bbb".into(),
            host_config: HostConfig {
                userns_mode: "auto".into(),
                ..HostConfig::default()
            },
            ..ContainerRecord::default()
        };
        assert_eq!(
            map_of(&config, &record).expect("map"),
            Some(IdMap::block(165536, 265536, AUTO_SIZE))
        );
        release(&config, "aaa");
        assert_eq!(claims(&claims_dir).len(), 1);
        assert!(claims_dir.join("165536.265536").exists());
    }

    #[test]
    fn host_and_explicit_modes_claim_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = config(dir.path());
        let mut host = HostConfig {
            userns_mode: "map=0:300000:10".into(),
            ..HostConfig::default()
        };
        let map = claim(&config, "x", &host).expect("map");
        assert_eq!(map.map(|m| m.root()), Some((300000, 300000)));
        assert!(!claims_dir(&config).exists());
        config.userns_remap = Some(IdMap::block(1000, 2000, 10));
        host.userns_mode = "host".into();
        assert_eq!(claim(&config, "x", &host).expect("host"), None);
        host.userns_mode = String::new();
        assert_eq!(
            claim(&config, "x", &host)
                .expect("default")
                .map(|m| m.root()),
            Some((1000, 2000))
        );
    }

    #[test]
    fn privileged_containers_refuse_a_user_namespace() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = config(dir.path());
        let host = HostConfig {
            userns_mode: "map=0:300000:10".into(),
            privileged: true,
            ..HostConfig::default()
        };
        let err = claim(&config, "x", &host).expect_err("privileged");
        assert!(err.to_string().contains("--userns host"), "{err}");
    }

    #[test]
    fn search_permission_is_added_without_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("d");
        std::fs::create_dir(&path).expect("mkdir");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        add_search(&path).expect("add");
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o711);
    }
}
