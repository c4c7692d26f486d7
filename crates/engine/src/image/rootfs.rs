//! Container root filesystems: an image is unpacked once into ChainID snapshots, and each
//! container gets a writable snapshot keyed by its id on top of the image's ChainID (as
//! Docker's layer store creates the RW layer at `docker create`). Also the container's
//! changes (`docker diff`) and its layer as a tar (`docker commit`, `docker export`).

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use berth_image::ImageRecord;
use berth_oci::Digest;
use berth_snapshot::{Mount, SnapshotError};

use super::{lock, state, ImageError, ImageService, Inner};

/// One entry of `GET /containers/{id}/changes` (Docker's kinds: 0 modified, 1 added,
/// 2 deleted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub path: String,
    pub kind: u8,
}

impl Inner {
    /// Unpacks `record` into ChainID snapshots (layers already there are skipped) and
    /// returns its top ChainID (`None` for an image without layers).
    pub fn ensure_unpacked(&self, record: &ImageRecord) -> Result<Option<Digest>, ImageError> {
        let resolved = self.resolve(record)?;
        let chain = resolved.config.chain_ids();
        if let Some(top) = chain.last() {
            if self.snapshotter.stat(&top.to_string()).is_ok() {
                return Ok(Some(top.clone()));
            }
        }
        let _guard = lock(&self.unpack_lock);
        berth_image::unpack(
            &self.content,
            &self.snapshotter,
            &resolved.manifest,
            &resolved.config,
        )
        .map_err(|source| ImageError::Unpack {
            image: record.id.to_string(),
            source: Box::new(source),
        })
    }

    fn snapshot_error(container: &str) -> impl FnOnce(SnapshotError) -> ImageError + '_ {
        move |source| ImageError::Snapshot {
            container: container.to_string(),
            source: Box::new(source),
        }
    }

    /// A container's writable snapshot on `image`; without `durable` a scratch layer (a
    /// build step's: `Snapshotter::prepare_scratch`).
    pub fn prepare_rootfs_with(
        &self,
        image: &Digest,
        container: &str,
        durable: bool,
    ) -> Result<Vec<Mount>, ImageError> {
        let record = self
            .images
            .get(image)
            .ok_or_else(|| ImageError::NotFound(image.to_string()))?;
        let parent = self.ensure_unpacked(&record)?.map(|d| d.to_string());
        let mounts = match self.snapshotter.stat(container) {
            Ok(_) => self.snapshotter.mounts(container),
            Err(SnapshotError::NotFound { .. }) if durable => {
                self.snapshotter.prepare(container, parent.as_deref())
            }
            Err(SnapshotError::NotFound { .. }) => self
                .snapshotter
                .prepare_scratch(container, parent.as_deref()),
            Err(e) => Err(e),
        }
        .map_err(Self::snapshot_error(container))?;
        let mut uses = lock(&self.rootfs);
        if uses.insert(container.to_string(), image.clone()).as_ref() != Some(image) {
            state::write_json_unsynced(&self.dir.join(state::ROOTFS), &*uses)?;
        }
        Ok(mounts)
    }

    pub fn remove_rootfs(&self, container: &str) -> Result<(), ImageError> {
        match self.snapshotter.remove(container) {
            Ok(()) | Err(SnapshotError::NotFound { .. }) => {}
            Err(e) => return Err(Self::snapshot_error(container)(e)),
        }
        let mut uses = lock(&self.rootfs);
        if uses.remove(container).is_some() {
            state::write_json_unsynced(&self.dir.join(state::ROOTFS), &*uses)?;
        }
        Ok(())
    }

    /// The upper directory and lower directories (nearest first) of a container's layer.
    fn layer_dirs(&self, container: &str) -> Result<(PathBuf, Vec<PathBuf>), ImageError> {
        let mounts = self
            .snapshotter
            .mounts(container)
            .map_err(Self::snapshot_error(container))?;
        let mount = mounts.first().ok_or_else(|| ImageError::Broken {
            image: container.to_string(),
            reason: "snapshot has no mounts".into(),
        })?;
        if mount.fstype == "bind" {
            // Native driver (or no parent): the whole tree is the layer.
            return Ok((mount.source.clone(), Vec::new()));
        }
        let base = mount.working_dir.clone().unwrap_or_default();
        let mut upper = None;
        let mut lower = Vec::new();
        for option in &mount.options {
            if let Some(dir) = option.strip_prefix("upperdir=") {
                upper = Some(PathBuf::from(dir));
            } else if let Some(dirs) = option.strip_prefix("lowerdir=") {
                lower = dirs.split(':').map(|d| base.join(d)).collect();
            }
        }
        let upper = upper.ok_or_else(|| ImageError::Broken {
            image: container.to_string(),
            reason: "snapshot is not writable".into(),
        })?;
        Ok((upper, lower))
    }

    pub fn container_changes(&self, container: &str) -> Result<Vec<Change>, ImageError> {
        let (upper, lower) = self.layer_dirs(container)?;
        if lower.is_empty() && self.snapshotter.driver() == berth_snapshot::Driver::Native {
            return Err(ImageError::NotImplemented {
                what: "docker diff with the native snapshot driver".into(),
            });
        }
        let mut changes = Vec::new();
        overlay_changes(&upper, &upper, &lower, &mut changes).map_err(|source| ImageError::Io {
            op: "walk",
            path: upper.clone(),
            source,
        })?;
        Ok(without_init_paths(changes))
    }
}

/// What Docker's "-init" layer holds under every container layer: mount points and the
/// files bind-mounted over them. They never show in `docker diff`, and their parent
/// directories count as already present.
const INIT_PATHS: &[&str] = &[
    "/.dockerenv",
    "/dev",
    "/dev/console",
    "/dev/pts",
    "/dev/shm",
    "/etc/hostname",
    "/etc/hosts",
    "/etc/mtab",
    "/etc/resolv.conf",
    "/proc",
    "/sys",
];
const INIT_PARENTS: &[&str] = &["/etc", "/dev"];

/// Drops init-layer paths, and init parents with nothing else changed below them; an
/// init parent with other changes is "modified" (Docker's init layer created it).
pub fn without_init_paths(changes: Vec<Change>) -> Vec<Change> {
    let mut kept: Vec<Change> = changes
        .into_iter()
        .filter(|c| !INIT_PATHS.contains(&c.path.as_str()))
        .collect();
    let has_children = |dir: &str, all: &[Change]| {
        let prefix = format!("{dir}/");
        all.iter().any(|c| c.path.starts_with(&prefix))
    };
    let snapshot = kept.clone();
    kept.retain(|c| !INIT_PARENTS.contains(&c.path.as_str()) || has_children(&c.path, &snapshot));
    for change in &mut kept {
        if INIT_PARENTS.contains(&change.path.as_str()) && change.kind == 1 {
            change.kind = 0;
        }
    }
    kept.sort_by(|a, b| a.path.cmp(&b.path));
    kept
}

/// Docker's overlay `Changes`: whiteouts are deletions, entries that exist below are
/// modifications, the rest additions; opaque directories are modifications.
pub fn overlay_changes(
    root: &Path,
    dir: &Path,
    lower: &[PathBuf],
    out: &mut Vec<Change>,
) -> std::io::Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let relative = path.strip_prefix(root).unwrap_or(&path);
        let name = format!("/{}", relative.display());
        let meta = fs::symlink_metadata(&path)?;
        let whiteout = meta.file_type().is_char_device() && meta.rdev() == 0;
        let kind = if whiteout {
            2
        } else if lower
            .iter()
            .any(|l| fs::symlink_metadata(l.join(relative)).is_ok())
        {
            0
        } else {
            1
        };
        out.push(Change { path: name, kind });
        if meta.is_dir() {
            overlay_changes(root, &path, lower, out)?;
        }
    }
    Ok(())
}

impl ImageService {
    /// A writable snapshot keyed by `container_id` on top of image `image_id`'s layers
    /// (unpacking the image first if needed), and the mounts that show it. Calling it
    /// again for the same container returns the same snapshot's mounts.
    pub async fn prepare_rootfs(
        &self,
        image_id: &Digest,
        container_id: &str,
    ) -> Result<Vec<Mount>, ImageError> {
        self.prepare_rootfs_with(image_id, container_id, true).await
    }

    /// [`ImageService::prepare_rootfs`] of a build step's scratch layer (see
    /// [`Inner::prepare_rootfs_with`]).
    pub async fn prepare_scratch_rootfs(
        &self,
        image_id: &Digest,
        key: &str,
    ) -> Result<Vec<Mount>, ImageError> {
        self.prepare_rootfs_with(image_id, key, false).await
    }

    async fn prepare_rootfs_with(
        &self,
        image_id: &Digest,
        container_id: &str,
        durable: bool,
    ) -> Result<Vec<Mount>, ImageError> {
        let (image, container) = (image_id.clone(), container_id.to_string());
        let _in_flight = self.gc_gate.read().await;
        self.blocking(move |inner| inner.prepare_rootfs_with(&image, &container, durable))
            .await
    }

    /// The mounts of a container's root filesystem.
    pub async fn rootfs_mounts(&self, container_id: &str) -> Result<Vec<Mount>, ImageError> {
        let container = container_id.to_string();
        self.blocking(move |inner| {
            inner
                .snapshotter
                .mounts(&container)
                .map_err(Inner::snapshot_error(&container))
        })
        .await
    }

    /// Deletes a container's writable layer (it must be unmounted).
    pub async fn remove_rootfs(&self, container_id: &str) -> Result<(), ImageError> {
        let container = container_id.to_string();
        self.blocking(move |inner| inner.remove_rootfs(&container))
            .await
    }

    /// `docker diff`: what changed in the container's writable layer.
    pub async fn container_changes(&self, container_id: &str) -> Result<Vec<Change>, ImageError> {
        let container = container_id.to_string();
        self.blocking(move |inner| inner.container_changes(&container))
            .await
    }

    /// Makes the container-to-image map what the container records say (`uses`, from
    /// every record berthd loaded at start): `rootfs.json` is written without an fsync, so
    /// after a host crash it may miss a container or name one whose create never finished.
    pub fn reconcile_rootfs_uses(
        &self,
        uses: std::collections::BTreeMap<String, Digest>,
    ) -> Result<(), ImageError> {
        let mut current = lock(&self.inner.rootfs);
        if *current != uses {
            *current = uses;
            state::write_json_unsynced(&self.inner.dir.join(state::ROOTFS), &*current)?;
        }
        Ok(())
    }

    /// Container ids whose root filesystem sits on image `id`.
    pub fn containers_using(&self, id: &Digest) -> Vec<String> {
        lock(&self.inner.rootfs)
            .iter()
            .filter(|(_, image)| *image == id)
            .map(|(c, _)| c.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_layer_paths_are_hidden_from_changes() {
        let change = |path: &str, kind| Change {
            path: path.into(),
            kind,
        };
        let raw = vec![
            change("/dev", 1),
            change("/etc", 1),
            change("/etc/hostname", 1),
            change("/etc/passwd2", 1),
            change("/new", 1),
            change("/proc", 1),
        ];
        assert_eq!(
            without_init_paths(raw),
            vec![
                change("/etc", 0),
                change("/etc/passwd2", 1),
                change("/new", 1)
            ]
        );
    }

    #[test]
    fn changes_classify_added_modified_and_deleted_entries() {
        let dir = tempfile::tempdir().expect("tempdir");
        let lower = dir.path().join("lower");
        let upper = dir.path().join("upper");
        fs::create_dir_all(lower.join("etc")).expect("lower");
        fs::write(lower.join("etc/passwd"), b"root").expect("passwd");
        fs::create_dir_all(upper.join("etc")).expect("upper");
        fs::write(upper.join("etc/passwd"), b"root2").expect("changed");
        fs::write(upper.join("etc/new"), b"x").expect("added");
        let mut changes = Vec::new();
        overlay_changes(&upper, &upper, &[lower], &mut changes).expect("walk");
        assert_eq!(
            changes,
            vec![
                Change {
                    path: "/etc".into(),
                    kind: 0
                },
                Change {
                    path: "/etc/new".into(),
                    kind: 1
                },
                Change {
                    path: "/etc/passwd".into(),
                    kind: 0
                },
            ]
        );
    }
}
