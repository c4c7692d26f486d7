//! The seam between containers and the image service: resolving the image of a create
//! request, and the writable rootfs snapshot of a container (keyed by its ID).

use berth_snapshot::Mount;

use super::ContainerError;
use crate::image::ImageService;

/// What create needs to know about an image.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// `sha256:...`.
    pub id: String,
    /// The image's container config (Env, Cmd, Entrypoint, WorkingDir, ...).
    pub config: berth_image::config::ContainerConfig,
    pub os: String,
}

/// Finds the image `name` refers to (404 `No such image: busybox:latest` when missing, so
/// that the CLI pulls and retries).
pub async fn lookup(images: &ImageService, name: &str) -> Result<ResolvedImage, ContainerError> {
    let info = images.lookup(name).await?;
    Ok(ResolvedImage {
        id: info.id.to_string(),
        config: info.config.config.clone().unwrap_or_default(),
        os: if info.config.os.is_empty() {
            "linux".to_string()
        } else {
            info.config.os.clone()
        },
    })
}

fn digest(image_id: &str) -> Result<berth_oci::Digest, ContainerError> {
    berth_oci::Digest::parse(image_id)
        .map_err(|e| ContainerError::InvalidArgument(format!("invalid image id {image_id}: {e}")))
}

/// Prepares the writable layer of container `container_id` on top of its image.
pub async fn prepare_rootfs(
    images: &ImageService,
    image_id: &str,
    container_id: &str,
) -> Result<Vec<Mount>, ContainerError> {
    Ok(images
        .prepare_rootfs(&digest(image_id)?, container_id)
        .await?)
}

/// The mounts of an existing container's rootfs.
pub async fn rootfs_mounts(
    images: &ImageService,
    container_id: &str,
) -> Result<Vec<Mount>, ContainerError> {
    Ok(images.rootfs_mounts(container_id).await?)
}

/// Drops the writable layer of a container (it must be unmounted).
pub async fn remove_rootfs(
    images: &ImageService,
    container_id: &str,
) -> Result<(), ContainerError> {
    Ok(images.remove_rootfs(container_id).await?)
}
