//! The seam to the volume service: mount points resolved and referenced at create
//! (`--volumes-from` looked up here), volumes mounted and filled by copy-up before the
//! process starts, unmounted after it exits, references dropped (and anonymous volumes
//! removed with `rm -v` / `--rm`) when the record goes, and rebuilt when berthd starts.

use std::path::Path;
use std::sync::Arc;

use berth_api::container::{Config, HostConfig};

use super::{blocking, ContainerError, ContainerRecord, Inner, Status};
use crate::volume::{copy, mounts, MountPoint, VolumeService};

/// Resolves the new container's volumes (creating what is missing) and references them.
pub(super) async fn prepare(
    inner: &Arc<Inner>,
    id: &str,
    config: &Config,
    host: &HostConfig,
) -> Result<Vec<MountPoint>, ContainerError> {
    let mut volumes_from = Vec::new();
    for entry in host.volumes_from.iter().flatten() {
        let (name, mode) = match entry.split_once(':') {
            Some((name, mode)) => (name, mode),
            None => (entry.as_str(), ""),
        };
        let source = inner.get(name)?.record();
        let mut points = source.mount_points.clone();
        points.extend(mounts::bind_points(
            source.host_config.binds.as_deref().unwrap_or_default(),
            source.host_config.mounts.as_deref().unwrap_or_default(),
        ));
        volumes_from.push((points, mode.to_string()));
    }
    let request = mounts::MountRequest {
        binds: host.binds.clone().unwrap_or_default(),
        mounts: host.mounts.clone().unwrap_or_default(),
        volumes: config
            .volumes
            .as_ref()
            .map(|v| v.keys().cloned().collect())
            .unwrap_or_default(),
        tmpfs: host
            .tmpfs
            .as_ref()
            .map(|t| t.keys().cloned().collect())
            .unwrap_or_default(),
        volumes_from,
    };
    let service = inner.volumes.clone();
    let id = id.to_string();
    blocking(move || Ok(service.acquire(&id, &request)?)).await
}

/// Mounts the container's volumes and copies the image's content into empty ones (in
/// the blocking start path, after the rootfs is mounted at `rootfs`).
pub(super) fn before_start(
    volumes: &VolumeService,
    record: &ContainerRecord,
    rootfs: &Path,
) -> Result<(), ContainerError> {
    for point in record.mount_points.iter().filter(|p| p.is_volume()) {
        volumes.mount(&record.id, point)?;
        if point.copy_data && point.subpath.is_empty() {
            copy::copy_up(rootfs, &point.destination, Path::new(&point.source)).map_err(|e| {
                ContainerError::io(
                    format!(
                        "copying the image's {} into volume {}",
                        point.destination, point.name
                    ),
                    e,
                )
            })?;
        }
    }
    Ok(())
}

/// The process exited: volumes mounted for it are unmounted when nothing else uses them.
pub(super) async fn after_exit(inner: &Inner, id: &str) {
    let volumes = inner.volumes.clone();
    let id = id.to_string();
    let _ = blocking(move || {
        volumes.unmount_all(&id);
        Ok(())
    })
    .await;
}

/// The record is gone: drops its references; with `remove_anonymous` its anonymous
/// volumes that nothing else references are removed.
pub(super) async fn release(inner: &Inner, id: &str, remove_anonymous: bool) {
    let volumes = inner.volumes.clone();
    let id = id.to_string();
    let _ = blocking(move || {
        volumes.release(&id, remove_anonymous);
        Ok(())
    })
    .await;
}

/// berthd started: the records are the truth for reference counts.
pub(super) fn restore_references(inner: &Inner) {
    let records: Vec<ContainerRecord> = inner.list().iter().map(|c| c.record()).collect();
    inner.volumes.restore(records.iter().map(|r| {
        let running = matches!(r.state.status, Status::Running | Status::Paused);
        (r.id.as_str(), r.mount_points.as_slice(), running)
    }));
}
