//! `POST /containers/create`: validate the name, resolve the image, merge its config, pick
//! the runtime and log settings, prepare the rootfs and persist the record (Docker's
//! `daemon.ContainerCreate`).

use std::sync::Arc;

use berth_api::container::{Config, ContainerCreateRequest, HostConfig};

use super::{image_link, naming, now_text, write_lock, Container, ContainerError, Inner};
use super::{ContainerRecord, ContainerState, Status};

/// Docker's default `/dev/shm` size (64 MiB).
const DEFAULT_SHM_SIZE: i64 = 64 * 1024 * 1024;

/// A create request with its query parameters.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// `?name=`.
    pub name: Option<String>,
    /// `?platform=` (`os[/arch[/variant]]`).
    pub platform: Option<String>,
    pub request: ContainerCreateRequest,
}

/// The new container's ID and the warnings Docker would give.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Created {
    pub id: String,
    pub warnings: Vec<String>,
}

pub(super) async fn create(
    inner: &Arc<Inner>,
    options: CreateOptions,
) -> Result<Created, ContainerError> {
    let CreateOptions {
        name,
        platform: _,
        request,
    } = options;
    let mut config = request.config;
    let mut host_config = request.host_config.unwrap_or_default();
    let name = name
        .filter(|n| !n.is_empty())
        .map(|n| naming::validate(&n))
        .transpose()?;
    if config.image.is_empty() {
        return Err(ContainerError::InvalidArgument(
            "config cannot be empty in order to create a container".to_string(),
        ));
    }
    validate_restart_policy(&host_config)?;
    super::health::validate(&config)?;
    crate::spec::caps::validate(
        host_config.cap_add.as_deref().unwrap_or_default(),
        host_config.cap_drop.as_deref().unwrap_or_default(),
    )?;
    crate::spec::security::validate_at_create(&host_config)?;
    super::network_link::validate(
        inner,
        &config,
        &host_config,
        request.networking_config.as_ref(),
    )?;
    let runtime = pick_runtime(inner, &host_config)?;
    if let Some(references) = host_config.berth_secrets.as_mut() {
        crate::secret::resolve_references(&inner.config.data_root, references)
            .map_err(crate::secret::SecretError::into_container)?;
    }
    let image = image_link::lookup(&inner.images, &config.image).await?;
    inner.images.check_trusted(&config.image).await?;
    let image_name = config.image.clone();
    super::bundle::merge_image_config(&mut config, &image.config);
    let (path, args) = command_of(&config)?;
    let warnings = apply_host_defaults(inner, &mut host_config, &runtime);
    crate::logs::driver::resolve(
        &mut host_config.log_config,
        &inner.config.log_driver,
        &inner.config.log_opts,
    )
    .map_err(|e| ContainerError::InvalidArgument(e.to_string()))?;

    let id = new_id();
    if config.hostname.is_empty() && host_config.network_mode != "host" {
        // Docker's default hostname: the short ID.
        config.hostname = id[..12].to_string();
    }
    let name = {
        let mut names = write_lock(&inner.names);
        let name = match name {
            Some(name) => name,
            None => naming::generate(&id, |n| names.contains(n)),
        };
        names.reserve(&name, &id)?;
        name
    };
    let dir = inner.config.container_dir(&id);
    let (userns_config, userns_id, userns_host) =
        (inner.config.clone(), id.clone(), host_config.clone());
    let claimed =
        super::blocking(move || super::userns::claim(&userns_config, &userns_id, &userns_host))
            .await;
    let mount_points = match claimed {
        Err(e) => Err(e),
        Ok(_) => super::volumes::prepare(inner, &id, &config, &host_config).await,
    };
    let mount_points = match mount_points {
        Ok(points) => points,
        Err(e) => {
            write_lock(&inner.names).release(&name);
            super::userns::release(&inner.config, &id);
            return Err(e);
        }
    };
    let record = ContainerRecord {
        id: id.clone(),
        name: name.clone(),
        created: now_text(),
        image_id: image.id.clone(),
        config,
        host_config,
        networking_config: request.networking_config,
        path,
        args,
        runtime,
        state: ContainerState {
            status: Status::Created,
            started_at: berth_api::time::ZERO_TIME.to_string(),
            finished_at: berth_api::time::ZERO_TIME.to_string(),
            ..ContainerState::default()
        },
        log_path: None,
        platform: image.os.clone(),
        image_name,
        mount_points,
    };
    match persist_new(inner, &dir, record).await {
        Ok(container) => {
            inner.insert(container.clone());
            inner.publish(&container, "create", Default::default());
            Ok(Created { id, warnings })
        }
        Err(e) => {
            write_lock(&inner.names).release(&name);
            let _ = image_link::remove_rootfs(&inner.images, &id).await;
            let _ = std::fs::remove_dir_all(&dir);
            super::volumes::release(inner, &id, true).await;
            super::userns::release(&inner.config, &id);
            Err(e)
        }
    }
}

/// Creates the container directory, the rootfs layer and the record on disk.
async fn persist_new(
    inner: &Arc<Inner>,
    dir: &std::path::Path,
    mut record: ContainerRecord,
) -> Result<Arc<Container>, ContainerError> {
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .mode(0o710)
            .create(dir)
            .map_err(|e| ContainerError::io(format!("creating {}", dir.display()), e))?;
    }
    record.log_path = crate::logs::driver::prepare_log_path(
        dir,
        &record.id,
        &record.host_config.log_config.r#type,
    )
    .map_err(|e| ContainerError::io("creating the log directory", e))?;
    image_link::prepare_rootfs(&inner.images, &record.image_id, &record.id).await?;
    let dir = dir.to_path_buf();
    let record = super::blocking(move || {
        record.save(&dir)?;
        Ok(record)
    })
    .await?;
    Ok(Arc::new(Container::new(record)))
}

/// Docker's `validateRestartPolicy` and its `--rm` conflict.
pub(super) fn validate_restart_policy(host: &HostConfig) -> Result<(), ContainerError> {
    let policy = &host.restart_policy;
    let invalid = |text: &str| Err(ContainerError::InvalidArgument(text.to_string()));
    match policy.name.as_str() {
        "" | "no" | "always" | "unless-stopped" => {
            if policy.maximum_retry_count != 0 {
                return invalid(
                    "invalid restart policy: maximum retry count can only be used with 'on-failure'",
                );
            }
        }
        "on-failure" => {
            if policy.maximum_retry_count < 0 {
                return invalid("invalid restart policy: maximum retry count cannot be negative");
            }
        }
        other => {
            return Err(ContainerError::InvalidArgument(format!(
                "invalid restart policy: unknown policy '{other}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
            )))
        }
    }
    if host.auto_remove && !matches!(policy.name.as_str(), "" | "no") {
        return invalid("can't create 'AutoRemove' container with restart policy");
    }
    Ok(())
}

/// The runtime the container uses: `HostConfig.Runtime` or the daemon default.
fn pick_runtime(inner: &Inner, host_config: &HostConfig) -> Result<String, ContainerError> {
    let runtime = if host_config.runtime.is_empty() {
        inner.config.default_runtime.clone()
    } else {
        host_config.runtime.clone()
    };
    if inner.config.runtimes.contains_key(&runtime) {
        Ok(runtime)
    } else {
        Err(ContainerError::InvalidArgument(format!(
            "unknown or invalid runtime name: {runtime}"
        )))
    }
}

/// Fills what Docker fills at create (runtime, log driver, shm size); returns warnings.
fn apply_host_defaults(inner: &Inner, host: &mut HostConfig, runtime: &str) -> Vec<String> {
    host.runtime = runtime.to_string();
    if host.log_config.r#type.is_empty() {
        host.log_config.r#type = inner.config.log_driver.clone();
        if host.log_config.config.is_none() && !inner.config.log_opts.is_empty() {
            host.log_config.config = Some(inner.config.log_opts.clone());
        }
    }
    if host.shm_size == 0 {
        host.shm_size = DEFAULT_SHM_SIZE;
    }
    if host.network_mode.is_empty() {
        host.network_mode = "default".to_string();
    }
    let mut warnings = Vec::new();
    if host.resources.memory > 0 && host.resources.memory < 6 * 1024 * 1024 {
        warnings.push("Minimum memory limit allowed is 6MB.".to_string());
    }
    warnings
}

/// Docker's `Path` and `Args`: the entrypoint followed by the command.
pub(super) fn command_of(config: &Config) -> Result<(String, Vec<String>), ContainerError> {
    let mut argv: Vec<String> = Vec::new();
    if let Some(entrypoint) = &config.entrypoint {
        argv.extend(entrypoint.0.iter().cloned());
    }
    if let Some(cmd) = &config.cmd {
        argv.extend(cmd.0.iter().cloned());
    }
    if argv.is_empty() {
        return Err(ContainerError::InvalidArgument(
            "no command specified".to_string(),
        ));
    }
    let path = argv.remove(0);
    Ok((path, argv))
}

/// `N` random bytes from the kernel.
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    let mut filled = 0;
    while filled < N {
        // SAFETY: getrandom writes at most `N - filled` bytes into the rest of the array.
        let n = unsafe { libc::getrandom(bytes[filled..].as_mut_ptr().cast(), N - filled, 0) };
        if n <= 0 {
            break;
        }
        filled += n as usize;
    }
    bytes
}

/// `len` random lowercase hex characters (len ≤ 64).
pub(crate) fn random_hex(len: usize) -> String {
    let text: String = random_bytes::<32>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    text[..len.min(64)].to_string()
}

/// A 64-hex container ID whose 12-character short form is not all digits (Docker's
/// `stringid.GenerateRandomID` rule, so that a short ID never parses as a number).
pub(crate) fn new_id() -> String {
    loop {
        let id = random_hex(64);
        if !id[..12].bytes().all(|b| b.is_ascii_digit()) {
            return id;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::StrSlice;

    #[test]
    fn path_and_args_are_entrypoint_then_cmd() {
        let config = Config {
            entrypoint: Some(StrSlice(vec!["/bin/sh".into(), "-c".into()])),
            cmd: Some(StrSlice(vec!["echo hi".into()])),
            ..Config::default()
        };
        assert_eq!(
            command_of(&config).expect("command"),
            (
                "/bin/sh".to_string(),
                vec!["-c".to_string(), "echo hi".to_string()]
            )
        );
        let config = Config {
            cmd: Some(StrSlice(vec!["true".into()])),
            ..Config::default()
        };
        assert_eq!(command_of(&config).expect("cmd").0, "true");
        assert!(command_of(&Config::default()).is_err());
    }

    #[test]
    fn restart_policies_are_checked_like_docker() {
        let mut host = HostConfig::default();
        host.restart_policy.name = "on-failure".into();
        host.restart_policy.maximum_retry_count = 2;
        assert!(validate_restart_policy(&host).is_ok());
        host.restart_policy.name = "always".into();
        assert!(
            validate_restart_policy(&host).is_err(),
            "count needs on-failure"
        );
        host.restart_policy.maximum_retry_count = 0;
        host.auto_remove = true;
        assert_eq!(
            validate_restart_policy(&host)
                .expect_err("--rm")
                .to_string(),
            "can't create 'AutoRemove' container with restart policy"
        );
        host.restart_policy.name = "sometimes".into();
        assert!(validate_restart_policy(&host).is_err());
    }

    #[test]
    fn ids_are_64_hex_and_distinct() {
        let a = new_id();
        let b = new_id();
        assert_eq!(a.len(), 64);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b);
    }
}
