//! The OCI Process of an exec, built as Docker builds it: the container's own spec process
//! (rlimits, capabilities, no-new-privileges, ...) with args, env, cwd and terminal replaced,
//! the user resolved from the container's /etc/passwd and /etc/group, and every capability
//! for `--privileged` (moby's `ContainerExecStart` and `execSetPlatformOpt`).
//!
//! The user lookup here follows runc's `GetExecUser`; it reads inside the untrusted rootfs
//! with `openat2(RESOLVE_IN_ROOT)`. (engine::spec resolves the container's own user; should it
//! expose a shared helper, this one can go.)

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::{Mode, OFlags, ResolveFlags};
use serde_json::{json, Value};

use crate::container::ContainerRecord;

/// Docker's default `PATH` for Linux containers (`oci.DefaultPathEnv`).
pub const DEFAULT_PATH_ENV: &str =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Failures resolving a user or group inside the container.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    /// Docker's (runc's) texts.
    #[error("unable to find user {0}: no matching entries in passwd file")]
    NoUser(String),
    #[error("unable to find group {0}: no matching entries in group file")]
    NoGroup(String),
}

/// Docker's `ReplaceOrAppendEnvValues`: an override `K=v` replaces `K` or is appended; a bare
/// `K` removes `K`.
pub fn replace_or_append_env(mut defaults: Vec<String>, overrides: &[String]) -> Vec<String> {
    let key = |entry: &str| entry.split_once('=').map_or(entry, |(k, _)| k).to_string();
    let index: std::collections::HashMap<String, usize> = defaults
        .iter()
        .enumerate()
        .map(|(i, entry)| (key(entry), i))
        .collect();
    let mut removed = vec![false; defaults.len()];
    for value in overrides {
        match value.split_once('=') {
            None => {
                if let Some(&i) = index.get(value.as_str()) {
                    removed[i] = true;
                }
            }
            Some((k, _)) => match index.get(k) {
                Some(&i) => {
                    defaults[i] = value.clone();
                    removed[i] = false;
                }
                None => defaults.push(value.clone()),
            },
        }
    }
    defaults
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !removed.get(*i).copied().unwrap_or(false))
        .map(|(_, entry)| entry)
        .collect()
}

/// The environment of an exec: Docker's daemon environment (PATH, HOSTNAME, TERM with a
/// terminal), the container's Config.Env over it, then the exec's own `Env`.
pub fn exec_env(record: &ContainerRecord, tty: bool, exec_env: &[String]) -> Vec<String> {
    let mut base = vec![
        DEFAULT_PATH_ENV.to_string(),
        format!("HOSTNAME={}", record.config.hostname),
    ];
    if tty {
        base.push("TERM=xterm".to_string());
    }
    let container_env = record.config.env.clone().unwrap_or_default();
    let merged = replace_or_append_env(base, &container_env);
    replace_or_append_env(merged, exec_env)
}

/// What the exec asks for on top of the container's process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessRequest {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub tty: bool,
    /// `[height, width]`.
    pub console_size: Option<[u32; 2]>,
    pub user: String,
    pub privileged: bool,
    /// HostConfig.GroupAdd of the container.
    pub group_add: Vec<String>,
}

/// Merges `request` into the container's spec process (`base`, from its config.json).
pub fn build_process(
    base: &Value,
    request: &ProcessRequest,
    rootfs: &Path,
) -> Result<Value, UserError> {
    let mut process = match base {
        Value::Object(_) => base.clone(),
        _ => json!({}),
    };
    process["args"] = json!(request.args);
    process["env"] = json!(request.env);
    process["cwd"] = json!(if request.cwd.is_empty() {
        "/"
    } else {
        request.cwd.as_str()
    });
    process["terminal"] = json!(request.tty);
    if let Some(object) = process.as_object_mut() {
        object.remove("consoleSize");
    }
    if let (true, Some([height, width])) = (request.tty, request.console_size) {
        process["consoleSize"] = json!({"height": height, "width": width});
    }
    if !request.user.is_empty() {
        let user = resolve_user(rootfs, &request.user, &request.group_add)?;
        process["user"] = json!({
            "uid": user.uid,
            "gid": user.gid,
            "additionalGids": user.additional_gids,
        });
    }
    if request.privileged {
        let all = all_capabilities();
        process["capabilities"] = json!({
            "bounding": all,
            "permitted": all,
            "effective": all,
        });
    }
    Ok(process)
}

/// Every capability this kernel knows (`/proc/sys/kernel/cap_last_cap`) and berthd holds in
/// its bounding set, by OCI name; the names are the spec builder's table.
pub fn all_capabilities() -> Vec<&'static str> {
    let names = &crate::spec::caps::ALL;
    let last = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|text| text.trim().parse::<usize>().ok())
        .unwrap_or(names.len() - 1);
    let mut all = names[..=last.min(names.len() - 1)].to_vec();
    crate::spec::caps::within_bounding(&mut all, crate::spec::caps::bounding_set());
    all
}

/// A resolved user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

/// Reads `etc/<name>` inside `rootfs` without following links out of it; a missing file is
/// empty, as runc treats it.
fn read_in_root(rootfs: &Path, name: &str) -> String {
    let opened = (|| -> std::io::Result<OwnedFd> {
        let root = rustix::fs::open(
            rootfs,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(rustix::fs::openat2(
            &root,
            name,
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        )?)
    })();
    let mut text = String::new();
    if let Ok(fd) = opened {
        let _ = std::fs::File::from(fd)
            .take(4 << 20)
            .read_to_string(&mut text);
    }
    text
}

/// Resolves `user[:group]` (names or numbers) against the rootfs' passwd and group files as
/// runc's `GetExecUser` does, then adds `group_add` (names or numbers).
pub fn resolve_user(
    rootfs: &Path,
    spec: &str,
    group_add: &[String],
) -> Result<ExecUser, UserError> {
    let passwd = read_in_root(rootfs, "etc/passwd");
    let group = read_in_root(rootfs, "etc/group");
    resolve_user_from(&passwd, &group, spec, group_add)
}

/// [`resolve_user`] on the files' contents.
pub fn resolve_user_from(
    passwd: &str,
    group: &str,
    spec: &str,
    group_add: &[String],
) -> Result<ExecUser, UserError> {
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let users: Vec<Vec<&str>> = passwd
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').collect())
        .filter(|f: &Vec<&str>| f.len() >= 4)
        .collect();
    let groups: Vec<Vec<&str>> = group
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').collect())
        .filter(|f: &Vec<&str>| f.len() >= 3)
        .collect();
    let numeric_user = user_part.parse::<u32>().ok();
    let entry = users.iter().find(|f| {
        f[0] == user_part || (numeric_user.is_some() && f[2].parse().ok() == numeric_user)
    });
    let (uid, mut gid, name) = match (entry, numeric_user) {
        (Some(f), _) => (
            f[2].parse().unwrap_or(0),
            f[3].parse().unwrap_or(0),
            Some(f[0]),
        ),
        (None, Some(uid)) => (uid, 0, None),
        (None, None) if user_part.is_empty() => (0, 0, None),
        (None, None) => return Err(UserError::NoUser(user_part.to_string())),
    };
    let find_group = |text: &str| -> Result<u32, UserError> {
        let numeric = text.parse::<u32>().ok();
        match groups
            .iter()
            .find(|f| f[0] == text || (numeric.is_some() && f[2].parse().ok() == numeric))
        {
            Some(f) => Ok(f[2].parse().unwrap_or(0)),
            None => numeric.ok_or_else(|| UserError::NoGroup(text.to_string())),
        }
    };
    if let Some(g) = group_part.filter(|g| !g.is_empty()) {
        gid = find_group(g)?;
    }
    let mut additional = Vec::new();
    if let (Some(name), None) = (name, group_part) {
        for f in &groups {
            let members = f.get(3).copied().unwrap_or("");
            if members.split(',').any(|m| m == name) {
                if let Ok(g) = f[2].parse::<u32>() {
                    if !additional.contains(&g) {
                        additional.push(g);
                    }
                }
            }
        }
    }
    for extra in group_add {
        let g = find_group(extra)?;
        if !additional.contains(&g) {
            additional.push(g);
        }
    }
    Ok(ExecUser {
        uid,
        gid,
        additional_gids: additional,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\nwww:x:33:33::/var/www:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nwww:x:33:\naudio:x:29:www,other\nvideo:x:44:www\nstaff:x:50:\n";

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn env_overrides_replace_append_and_unset_like_docker() {
        let merged = replace_or_append_env(
            strings(&["PATH=/bin", "HOSTNAME=a", "GONE=1"]),
            &strings(&["HOSTNAME=b", "NEW=1", "GONE", "NEW=2"]),
        );
        assert_eq!(
            merged,
            strings(&["PATH=/bin", "HOSTNAME=b", "NEW=1", "NEW=2"])
        );
    }

    #[test]
    fn exec_env_starts_from_the_daemon_environment() {
        let mut record = ContainerRecord::default();
        record.config.hostname = "box".into();
        record.config.env = Some(strings(&["PATH=/custom", "A=1"]));
        assert_eq!(
            exec_env(&record, true, &strings(&["A=2", "B=3"])),
            strings(&["PATH=/custom", "HOSTNAME=box", "TERM=xterm", "A=2", "B=3"])
        );
        assert_eq!(
            exec_env(&ContainerRecord::default(), false, &[]),
            strings(&[DEFAULT_PATH_ENV, "HOSTNAME="])
        );
    }

    #[test]
    fn users_resolve_by_name_number_and_group() {
        let www = resolve_user_from(PASSWD, GROUP, "www", &[]).expect("www");
        assert_eq!(
            www,
            ExecUser {
                uid: 33,
                gid: 33,
                additional_gids: vec![29, 44]
            }
        );
        let numeric = resolve_user_from(PASSWD, GROUP, "1234:staff", &[]).expect("numeric");
        assert_eq!((numeric.uid, numeric.gid), (1234, 50));
        let by_uid =
            resolve_user_from(PASSWD, GROUP, "65534", &strings(&["audio", "7"])).expect("uid");
        assert_eq!(
            by_uid,
            ExecUser {
                uid: 65534,
                gid: 65534,
                additional_gids: vec![29, 7]
            }
        );
    }

    #[test]
    fn unknown_users_and_groups_get_dockers_texts() {
        assert_eq!(
            resolve_user_from(PASSWD, GROUP, "ghost", &[])
                .expect_err("no user")
                .to_string(),
            "unable to find user ghost: no matching entries in passwd file"
        );
        assert_eq!(
            resolve_user_from(PASSWD, GROUP, "root:ghosts", &[])
                .expect_err("no group")
                .to_string(),
            "unable to find group ghosts: no matching entries in group file"
        );
    }

    #[test]
    fn the_process_keeps_the_containers_settings_and_takes_the_execs() {
        let base = json!({
            "args": ["sh"], "env": ["X=1"], "cwd": "/srv", "terminal": false,
            "user": {"uid": 0, "gid": 0}, "noNewPrivileges": true,
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}]
        });
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("etc")).expect("etc");
        std::fs::write(dir.path().join("etc/passwd"), PASSWD).expect("passwd");
        std::fs::write(dir.path().join("etc/group"), GROUP).expect("group");
        let request = ProcessRequest {
            args: strings(&["ls", "-l"]),
            env: strings(&["PATH=/bin"]),
            cwd: String::new(),
            tty: true,
            console_size: Some([24, 80]),
            user: "www".into(),
            privileged: true,
            group_add: Vec::new(),
        };
        let process = build_process(&base, &request, dir.path()).expect("process");
        assert_eq!(process["args"], json!(["ls", "-l"]));
        assert_eq!(process["cwd"], "/");
        assert_eq!(process["terminal"], true);
        assert_eq!(process["consoleSize"], json!({"height": 24, "width": 80}));
        assert_eq!(process["user"]["uid"], 33);
        assert_eq!(process["user"]["additionalGids"], json!([29, 44]));
        assert_eq!(process["noNewPrivileges"], true);
        assert_eq!(process["rlimits"][0]["hard"], 1024);
        let bounding = process["capabilities"]["bounding"]
            .as_array()
            .expect("caps");
        assert!(bounding.contains(&json!("CAP_SYS_ADMIN")));
    }

    #[test]
    fn passwd_links_out_of_the_rootfs_stay_inside() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("outside");
        std::fs::create_dir(outside.path().join("etc")).expect("etc");
        std::fs::write(outside.path().join("etc/passwd"), "leak:x:7:7::/:/bin/sh\n").expect("w");
        std::fs::create_dir(dir.path().join("etc")).expect("etc");
        std::os::unix::fs::symlink(
            outside.path().join("etc/passwd"),
            dir.path().join("etc/passwd"),
        )
        .expect("link");
        assert!(matches!(
            resolve_user(dir.path(), "leak", &[]),
            Err(UserError::NoUser(_))
        ));
    }
}
