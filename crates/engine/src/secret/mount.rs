//! A running container's secrets: a tmpfs of its own at `<exec-root>/secrets/<id>` (under a
//! 0700 directory; memory only, never under the data root), the decrypted files written
//! there with the reference's uid, gid and mode, the tmpfs remounted read-only and bound
//! read-only at /run/secrets in the container's bundle; unmounted when the container exits.
//! Docker's swarm executor does the same with a tmpfs under its container directory.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rustix::mount::{MountFlags, UnmountFlags};

use super::reference::{file_of, SECRETS_DIR};
use super::{crypto, secrets_dir, store, SecretError};
use crate::container::ContainerRecord;

/// The tmpfs of container `id`.
pub fn tmpfs_path(exec_root: &Path, id: &str) -> PathBuf {
    exec_root.join("secrets").join(id)
}

/// Mounts and fills the container's secrets tmpfs; None when it references no secret.
pub fn prepare(
    data_root: &Path,
    exec_root: &Path,
    record: &ContainerRecord,
) -> Result<Option<PathBuf>, SecretError> {
    let references = record
        .host_config
        .berth_secrets
        .as_deref()
        .unwrap_or_default();
    if references.is_empty() {
        return Ok(None);
    }
    let parent = exec_root.join("secrets");
    super::store::create_private_dir(&parent)?;
    let target = tmpfs_path(exec_root, &record.id);
    release(exec_root, &record.id);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&target)
        .map_err(|e| SecretError::io(format!("creating {}", target.display()), e))?;
    let dir = secrets_dir(data_root);
    let key = crypto::DaemonKey::load(&dir)?;
    let mut files = Vec::with_capacity(references.len());
    for reference in references {
        let record = store::read(&dir, &reference.secret_id)?;
        files.push((file_of(reference), key.open(&record.id, &record.sealed()?)?));
    }
    let pages: usize = files.iter().map(|(_, data)| data.len() / 4096 + 2).sum();
    let options = format!("mode=0755,size={}", (pages + 4) * 4096);
    let flags = MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC;
    let data = std::ffi::CString::new(options)
        .map_err(|e| SecretError::io("tmpfs options", std::io::Error::other(e)))?;
    rustix::mount::mount("tmpfs", &target, "tmpfs", flags, data.as_c_str()).map_err(|e| {
        SecretError::io(
            format!("mounting a tmpfs on {}", target.display()),
            e.into(),
        )
    })?;
    let filled = files
        .iter()
        .try_for_each(|(file, data)| write_file(&target, file, data))
        .and_then(|()| {
            rustix::mount::mount_remount(&target, flags | MountFlags::RDONLY, "")
                .map_err(|e| SecretError::io("making the secrets tmpfs read-only", e.into()))
        });
    if let Err(e) = filled {
        release(exec_root, &record.id);
        return Err(e);
    }
    Ok(Some(target))
}

fn write_file(
    root: &Path,
    file: &berth_api::secret::SecretFileTarget,
    data: &[u8],
) -> Result<(), SecretError> {
    let path = root.join(&file.name);
    if let Some(parent) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(parent)
            .map_err(|e| SecretError::io(format!("creating {}", parent.display()), e))?;
    }
    let uid = file.uid.parse::<u32>().unwrap_or(0);
    let gid = file.gid.parse::<u32>().unwrap_or(0);
    let failed = |e: std::io::Error| SecretError::io(format!("writing secret {}", file.name), e);
    // Created 0600 root-owned, filled, then handed over: no moment with wider access.
    let mut handle = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(failed)?;
    handle.write_all(data).map_err(failed)?;
    rustix::fs::fchown(
        &handle,
        Some(rustix::fs::Uid::from_raw(uid)),
        Some(rustix::fs::Gid::from_raw(gid)),
    )
    .map_err(|e| failed(e.into()))?;
    rustix::fs::fchmod(&handle, rustix::fs::Mode::from_raw_mode(file.mode))
        .map_err(|e| failed(e.into()))
}

/// At start, after the bundle is written: mounts the secrets tmpfs and binds it into the
/// bundle. Nothing to do for a container without secrets.
pub fn prepare_bundle(
    data_root: &Path,
    exec_root: &Path,
    record: &ContainerRecord,
    bundle: &Path,
) -> Result<(), SecretError> {
    if let Some(source) = prepare(data_root, exec_root, record)? {
        if let Err(e) = add_to_bundle(bundle, &source) {
            release(exec_root, &record.id);
            return Err(e);
        }
    }
    Ok(())
}

/// Adds the read-only bind of `source` at /run/secrets to `<bundle>/config.json`, after
/// every other mount (so a user's tmpfs on /run does not hide it).
pub fn add_to_bundle(bundle: &Path, source: &Path) -> Result<(), SecretError> {
    let path = bundle.join("config.json");
    let failed =
        |e: std::io::Error| SecretError::io(format!("adding secrets to {}", path.display()), e);
    let bytes = std::fs::read(&path).map_err(failed)?;
    let mut spec: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| failed(std::io::Error::other(e)))?;
    let mount = serde_json::json!({
        "destination": SECRETS_DIR,
        "type": "bind",
        "source": source,
        "options": ["rbind", "ro", "nosuid", "nodev", "noexec"],
    });
    match spec.get_mut("mounts").and_then(|m| m.as_array_mut()) {
        Some(mounts) => mounts.push(mount),
        None => spec["mounts"] = serde_json::Value::Array(vec![mount]),
    }
    let bytes = serde_json::to_vec(&spec).map_err(|e| failed(std::io::Error::other(e)))?;
    let temp = bundle.join("config.json.tmp");
    std::fs::write(&temp, bytes)
        .and_then(|()| std::fs::rename(&temp, &path))
        .map_err(failed)
}

/// After the container exited: [`release`] off the async workers, if it had secrets.
pub async fn release_after_exit(exec_root: &Path, id: &str) {
    if !tmpfs_path(exec_root, id).exists() {
        return;
    }
    let (exec_root, id) = (exec_root.to_path_buf(), id.to_string());
    let _ = tokio::task::spawn_blocking(move || release(&exec_root, &id)).await;
}

/// Unmounts and removes the container's secrets tmpfs (if any). Idempotent.
pub fn release(exec_root: &Path, id: &str) {
    let target = tmpfs_path(exec_root, id);
    if !target.exists() {
        return;
    }
    // Detach: a process still holding a file open does not keep the directory busy.
    while rustix::mount::unmount(&target, UnmountFlags::DETACH).is_ok() {}
    let _ = std::fs::remove_dir(&target);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundle_gets_a_read_only_bind_at_run_secrets_last() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spec = r#"{"mounts":[{"destination":"/proc","type":"proc","source":"proc"}]}"#;
        std::fs::write(dir.path().join("config.json"), spec).expect("write");
        add_to_bundle(dir.path(), Path::new("/run/berth/secrets/abc")).expect("add");
        let text = std::fs::read_to_string(dir.path().join("config.json")).expect("read");
        let value: serde_json::Value = serde_json::from_str(&text).expect("json");
        let last = &value["mounts"][1];
        assert_eq!(last["destination"], "/run/secrets");
        assert_eq!(last["source"], "/run/berth/secrets/abc");
        assert!(last["options"]
            .as_array()
            .expect("options")
            .contains(&serde_json::json!("ro")));
    }
}
