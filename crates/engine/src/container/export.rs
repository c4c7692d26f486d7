//! `docker export`: the flattened tar of a container's root filesystem, running or not
//! (moby's `daemon.containerExport`). A running container's mounted rootfs is read as is; a
//! created or exited one gets a read-only view of its layer, mounted beside its rootfs for the
//! export only and unmounted afterwards, so that a start meanwhile is not disturbed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use berth_snapshot::Mount;

use super::rootfs::{is_mounted, mount, rootfs_path, unmount};
use super::ContainerError;
use crate::Engine;

/// Distinguishes the views of concurrent exports of one container.
static VIEWS: AtomicU64 = AtomicU64::new(0);

/// A root filesystem ready to be written out as a tar.
pub struct ExportView {
    path: PathBuf,
    /// Set when the view was mounted for this export (and must be unmounted after it).
    temporary: bool,
    /// Host-shifted ids to write as container ids (a userns chown copy, `userns_chown.rs`).
    shift: Option<berth_snapshot::idshift::IdShift>,
}

/// Finds the container and makes its root filesystem readable: the mounted rootfs of a
/// running container, otherwise a temporary read-only mount of its layer.
pub async fn open(engine: &Engine, name: &str) -> Result<ExportView, ContainerError> {
    let container = engine.containers.get(name)?;
    let dir = engine.config.container_dir(&container.id);
    let rootfs = rootfs_path(&dir);
    let mounted = {
        let rootfs = rootfs.clone();
        blocking(move || Ok(is_mounted(&rootfs))).await?
    };
    let mounts = engine.images.rootfs_mounts(&container.id).await?;
    let (shift, mounts) = match super::userns_chown::view(&engine.config, &mounts) {
        Some((shift, shifted)) => (Some(shift), shifted),
        None => (None, mounts),
    };
    if mounted {
        return Ok(ExportView {
            path: rootfs,
            temporary: false,
            shift,
        });
    }
    let read_only: Vec<Mount> = mounts.iter().map(read_only_view).collect();
    let path = dir.join(format!(
        "export-{}-{}",
        std::process::id(),
        VIEWS.fetch_add(1, Ordering::Relaxed)
    ));
    let target = path.clone();
    blocking(move || {
        mount(&read_only, &target).inspect_err(|_| {
            let _ = std::fs::remove_dir(&target);
        })
    })
    .await?;
    Ok(ExportView {
        path,
        temporary: true,
        shift,
    })
}

impl ExportView {
    /// Writes the tar to `out`, then unmounts a temporary view (also when writing failed,
    /// e.g. because the client went away).
    pub async fn write(mut self, out: Box<dyn Write + Send>) -> Result<(), ContainerError> {
        let path = self.path.clone();
        let temporary = std::mem::replace(&mut self.temporary, false);
        let shift = self.shift.take();
        blocking(move || {
            let written = write_tar(&path, out, shift);
            if temporary {
                release(&path)?;
            }
            written
        })
        .await
    }
}

impl Drop for ExportView {
    /// A view that was never written (the request failed before streaming) is released here.
    fn drop(&mut self) {
        if self.temporary {
            let _ = release(&self.path);
        }
    }
}

fn write_tar(
    root: &Path,
    out: Box<dyn Write + Send>,
    shift: Option<berth_snapshot::idshift::IdShift>,
) -> Result<(), ContainerError> {
    let failed = |e: std::io::Error| ContainerError::io(format!("exporting {}", root.display()), e);
    let (mut out, _) = berth_snapshot::tar_tree_unshifted(root, out, shift)
        .map_err(|e| failed(std::io::Error::other(e)))?;
    out.flush().map_err(failed)
}

fn release(path: &Path) -> Result<(), ContainerError> {
    unmount(path)?;
    std::fs::remove_dir(path)
        .map_err(|e| ContainerError::io(format!("removing {}", path.display()), e))
}

/// The read-only form of a container layer's mount: an overlay's upper directory becomes its
/// top lower directory (no upper, no work directory: nothing can write, and the layer's
/// whiteouts and opaque directories still apply); a bind mount is made `ro`.
fn read_only_view(m: &Mount) -> Mount {
    if m.fstype != "overlay" {
        let mut options: Vec<String> = m
            .options
            .iter()
            .filter(|o| *o != "rw" && *o != "ro")
            .cloned()
            .collect();
        options.push("ro".to_string());
        return Mount {
            options,
            ..m.clone()
        };
    }
    let upper = m.options.iter().find_map(|o| o.strip_prefix("upperdir="));
    let mut options = Vec::new();
    for option in &m.options {
        if option.starts_with("upperdir=") || option.starts_with("workdir=") || option == "rw" {
            continue;
        }
        match (option.strip_prefix("lowerdir="), upper) {
            (Some(lower), Some(upper)) => options.push(format!("lowerdir={upper}:{lower}")),
            _ => options.push(option.clone()),
        }
    }
    if !options.iter().any(|o| o == "ro") {
        options.push("ro".to_string());
    }
    Mount {
        options,
        ..m.clone()
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ContainerError> + Send + 'static,
) -> Result<T, ContainerError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ContainerError::Join(e.to_string()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overlay(options: &[&str]) -> Mount {
        Mount {
            fstype: "overlay".into(),
            source: "overlay".into(),
            options: options.iter().map(|o| o.to_string()).collect(),
            working_dir: None,
        }
    }

    #[test]
    fn a_writable_overlay_is_viewed_with_its_upper_as_the_top_lower() {
        let view = read_only_view(&overlay(&[
            "lowerdir=/s/l/a:/s/l/b",
            "upperdir=/s/1/fs",
            "workdir=/s/1/work",
        ]));
        assert_eq!(view.options, vec!["lowerdir=/s/1/fs:/s/l/a:/s/l/b", "ro"]);
    }

    #[test]
    fn relative_lower_directories_keep_their_working_directory() {
        let mut m = overlay(&["lowerdir=l/a", "upperdir=/s/1/fs", "workdir=/s/1/work"]);
        m.working_dir = Some(PathBuf::from("/s"));
        let view = read_only_view(&m);
        assert_eq!(view.options, vec!["lowerdir=/s/1/fs:l/a", "ro"]);
        assert_eq!(view.working_dir, Some(PathBuf::from("/s")));
    }

    #[test]
    fn a_bind_mounted_layer_is_bound_read_only() {
        let view = read_only_view(&Mount {
            fstype: "bind".into(),
            source: "/s/1/fs".into(),
            options: vec!["rbind".into(), "rw".into()],
            working_dir: None,
        });
        assert_eq!(view.options, vec!["rbind", "ro"]);
        assert_eq!(view.source, PathBuf::from("/s/1/fs"));
    }
}
