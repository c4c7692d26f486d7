//! `POST /containers/{id}/start`: mount the rootfs, write the bundle, launch the shim
//! (`runtime create`), `Start` through the shim, record the pid, and watch for the exit.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{blocking, bundle, image_link, monitor, now_text, rootfs, shim};
use super::{Container, ContainerError, ContainerRecord, Inner, Lifecycle, Status};

/// The start verb: 304 when the container runs already.
pub(super) async fn start_verb(
    inner: &Arc<Inner>,
    container: &Arc<Container>,
) -> Result<(), ContainerError> {
    let _op = container.op.lock().await;
    match container.record().state.status {
        Status::Running | Status::Paused => return Err(ContainerError::NotModified),
        Status::Removing | Status::Dead => {
            return Err(ContainerError::InvalidArgument(format!(
                "container {} is marked for removal and cannot be started",
                container.id
            )))
        }
        _ => {}
    }
    container.update(|record| {
        record.state.has_been_manually_stopped = false;
    });
    let result = start_locked(inner, container).await;
    if result.is_err() && container.record().host_config.auto_remove {
        // Docker removes an `--rm` container whose start failed; the CLI waits for that.
        let _ = super::remove::remove_locked(inner, container, true).await;
    }
    result
}

/// Starts the container; the caller holds its operation lock.
pub(super) async fn start_locked(
    inner: &Arc<Inner>,
    container: &Arc<Container>,
) -> Result<(), ContainerError> {
    match launch(inner, container).await {
        Ok(pid) => {
            container.update(|record| {
                record.state.status = Status::Running;
                record.state.pid = pid;
                record.state.exit_code = 0;
                record.state.error.clear();
                record.state.oom_killed = false;
                record.state.started_at = now_text();
                record.state.finished_at = berth_api::time::ZERO_TIME.to_string();
            });
            inner.persist(container)?;
            container.lifecycle.send_modify(|l| l.running = true);
            inner.publish(container, "start", BTreeMap::new());
            let run = container.run.fetch_add(1, Ordering::SeqCst) + 1;
            monitor::spawn(inner.clone(), container.clone(), run);
            super::health::monitor::spawn(inner.clone(), container.clone(), run, false);
            Ok(())
        }
        Err(e) => {
            let code = exit_code_of_start_error(&e);
            let text = e.to_string();
            container.update(|record| {
                record.state.error = text;
                record.state.exit_code = code;
                if record.state.status == Status::Restarting {
                    record.state.status = Status::Exited;
                }
            });
            let _ = inner.persist(container);
            container.lifecycle.send_modify(|l: &mut Lifecycle| {
                l.exit_code = code;
            });
            cleanup_after_exit(inner, container).await;
            Err(e)
        }
    }
}

/// Docker's exit codes for processes that never ran: 127 not found, 126 not executable.
fn exit_code_of_start_error(error: &ContainerError) -> i32 {
    let text = error.to_string();
    if text.contains("executable file not found") || text.contains("no such file or directory") {
        127
    } else if text.contains("permission denied") {
        126
    } else {
        128
    }
}

/// Whether the container's layer is thrown away after it exits (mounted overlayfs
/// `volatile`: no sync of the upper filesystem at unmount): `--rm` containers, and a
/// build's RUN step, whose layer is diffed into the content store (which syncs the blob)
/// and then removed.
fn disposable(record: &ContainerRecord) -> bool {
    record.host_config.auto_remove
        || record
            .config
            .labels
            .as_ref()
            .is_some_and(|l| l.contains_key(crate::build::BUILD_STEP_LABEL))
}

/// Mounts, writes the bundle, launches the shim and starts the process; returns its pid.
async fn launch(inner: &Arc<Inner>, container: &Arc<Container>) -> Result<u32, ContainerError> {
    let record = container.record();
    let dir = inner.config.container_dir(&record.id);
    remove_stale_shim(inner, &record.id).await;
    let mounts = image_link::rootfs_mounts(&inner.images, &record.id).await?;
    let cgroup_parent = if record.host_config.resources.cgroup_parent.is_empty() {
        inner.config.cgroup_parent.clone()
    } else {
        record.host_config.resources.cgroup_parent.clone()
    };
    let spec = shim::LaunchSpec::of(&inner.config, &record)?;
    let socket = spec.socket.clone();
    let volumes = inner.volumes.clone();
    let roots = (
        inner.config.data_root.clone(),
        inner.config.exec_root.clone(),
    );
    let config = inner.config.clone();
    // The rootfs (with its volumes) and the network sandbox (namespace, veth, firewall)
    // touch different things: set them up side by side; the bundle needs both.
    let mount = {
        let (record, config, dir) = (record.clone(), config.clone(), dir.clone());
        blocking(move || {
            let target = rootfs::rootfs_path(&dir);
            let userns = super::userns::map_of(&config, &record)?;
            match &userns {
                None => rootfs::mount_for(&mounts, &target, disposable(&record))?,
                Some(map) => super::userns_rootfs::mount(
                    &config,
                    &record.id,
                    &mounts,
                    &target,
                    map,
                    record.host_config.auto_remove,
                )?,
            }
            super::volumes::before_start(&volumes, &record, &target)?;
            Ok(userns)
        })
    };
    let (sandbox, userns) = tokio::join!(super::network_link::setup(inner, &record), mount);
    let (sandbox, userns) = (sandbox?, userns?);
    blocking(move || {
        let target = rootfs::rootfs_path(&dir);
        bundle::write_config(
            &dir,
            &target,
            &record,
            &cgroup_parent,
            &sandbox,
            userns.as_ref(),
        )?;
        if let Some(map) = &userns {
            super::userns::prepare_dirs(&config, &record, map)?;
        }
        crate::secret::mount::prepare_bundle(&roots.0, &roots.1, &record, &dir)
            .map_err(crate::secret::SecretError::into_container)?;
        shim::launch(&spec)
    })
    .await?;
    // The process exists but has not run yet: attaches made before start connect now.
    container.release_prestart_attaches().await;
    blocking(move || {
        let client = shim::connect(&socket)
            .map_err(|e| ContainerError::shim("connecting to the new shim", e))?;
        if let Err(e) = client.start() {
            let _ = client.delete(true);
            return Err(ContainerError::CreateTask(e.to_string()));
        }
        let state = client
            .state(None)
            .map_err(|e| ContainerError::shim("reading the container state", e))?;
        Ok(state.pid)
    })
    .await
}

/// Deletes the shim of a previous run (if it is still there) and its exit record.
pub(super) async fn remove_stale_shim(inner: &Inner, id: &str) {
    let socket = inner.config.shim_socket(id);
    let _ = blocking(move || {
        if socket.exists() {
            if let Ok(client) = shim::connect(&socket) {
                let _ = client.delete(true);
            }
            let _ = std::fs::remove_file(&socket);
        }
        let _ = std::fs::remove_file(berth_shim::supervisor::exit_record_path(&socket));
        Ok(())
    })
    .await;
}

/// After the process exited (or never started): deletes the shim and unmounts the rootfs,
/// as Docker cleans up a stopped container. Idempotent.
pub(super) async fn cleanup_after_exit(inner: &Inner, container: &Container) {
    let target = rootfs::rootfs_path(&inner.config.container_dir(&container.id));
    // The runtime's delete (cgroups, state) and the unmounts touch different things, and the
    // init is dead already: overlap them (a process left behind makes the unmount lazy).
    let unmount = async {
        super::volumes::after_exit(inner, &container.id).await;
        let _ = blocking(move || rootfs::unmount(&target)).await;
    };
    // The sandbox (veths, namespace, firewall) is the container's too and goes alongside:
    // `run --rm` waits for all three.
    tokio::join!(
        remove_stale_shim(inner, &container.id),
        unmount,
        super::network_link::teardown(inner, &container.id)
    );
    crate::secret::mount::release_after_exit(&inner.config.exec_root, &container.id).await;
}
