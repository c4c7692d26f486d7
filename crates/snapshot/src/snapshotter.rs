//! The snapshotter: one directory per snapshot under `<root>/snapshots/<id>/{fs,work}`,
//! committed (read-only, named by ChainID) or active (a container's writable layer), with
//! Docker overlay2's short `l/<link>` symlinks so that 120+ layer stacks fit in the single
//! page of overlay mount options; and a native driver that copies the parent instead.

mod in_place;
mod store;

#[cfg(test)]
mod tests;

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::apply::{ApplyOptions, WhiteoutMode};
use crate::diff::{diff_trees, DiffError, DiffSummary};
pub use store::SnapshotInfo;
use store::Store;

/// How snapshots are stacked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    /// overlayfs: a snapshot holds only its own layer; mounts stack the parents.
    Overlay,
    /// Copies: a snapshot holds the whole tree (parent copied at prepare).
    Native,
}

impl Driver {
    /// Overlay when the kernel lists overlayfs and we are root, otherwise native.
    pub fn detect() -> Driver {
        let listed = std::fs::read_to_string("/proc/filesystems")
            .map(|s| {
                s.lines()
                    .any(|l| l.trim_end().ends_with("\toverlay") || l.trim() == "nodev\toverlay")
            })
            .unwrap_or(false);
        if listed && rustix::process::geteuid().is_root() {
            Driver::Overlay
        } else {
            Driver::Native
        }
    }
}

/// Whether a snapshot can still change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotKind {
    /// Writable (a container layer or a layer being unpacked).
    Active,
    /// Read-only, a parent for others.
    Committed,
}

/// A mount the caller performs (berth-runtime or an unpacker) to see a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// `overlay` or `bind`.
    pub fstype: String,
    /// Mount source (`overlay`, or the directory to bind).
    pub source: PathBuf,
    /// Mount options (`lowerdir=...`, `ro`, `rbind`).
    pub options: Vec<String>,
    /// When set, `lowerdir` paths are relative to this directory and the mount must be made
    /// with it as the working directory (Docker's overlay2 does the same for long stacks).
    pub working_dir: Option<PathBuf>,
}

/// Largest overlay option string we hand out: mount(2) copies one page of data.
pub const MOUNT_DATA_MAX: usize = 4095;

/// Why a snapshot operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// No snapshot has this key.
    #[error("snapshot {key:?} does not exist")]
    NotFound {
        /// The key.
        key: String,
    },
    /// The key is taken.
    #[error("snapshot {key:?} already exists")]
    AlreadyExists {
        /// The key.
        key: String,
    },
    /// A key that cannot be stored.
    #[error("snapshot key {key:?} is invalid: {reason}")]
    InvalidKey {
        /// The key.
        key: String,
        /// Why.
        reason: &'static str,
    },
    /// The operation needs an active snapshot (commit, diff) or a committed parent.
    #[error("snapshot {key:?} is {actual:?}, expected {expected:?}")]
    WrongKind {
        /// The key.
        key: String,
        /// What it is.
        actual: SnapshotKind,
        /// What the operation needs.
        expected: SnapshotKind,
    },
    /// Other snapshots still stack on this one.
    #[error("snapshot {key:?} has children; remove them first")]
    HasChildren {
        /// The key.
        key: String,
    },
    /// Even relative `l/` names do not fit in a page of mount options.
    #[error("snapshot {key:?} stacks {layers} layers, too many for one overlay mount")]
    TooManyLayers {
        /// The key.
        key: String,
        /// Layers in the stack.
        layers: usize,
    },
    /// A filesystem operation failed.
    #[error("snapshot store: {operation} {path} failed")]
    Io {
        /// What was being done.
        operation: &'static str,
        /// Where.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// Writing a diff failed.
    #[error(transparent)]
    Diff(#[from] DiffError),
    /// Copying the parent (native driver) failed.
    #[error("copying the parent of snapshot {key:?} failed")]
    Copy {
        /// The key.
        key: String,
        /// Cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Snapshots under one root directory.
#[derive(Debug)]
pub struct Snapshotter {
    store: Store,
    driver: Driver,
}

impl Snapshotter {
    /// Opens (creating) the snapshot store at `root` (`<data-root>/snapshots` in berthd).
    pub fn open(root: &Path, driver: Driver) -> Result<Self, SnapshotError> {
        Ok(Snapshotter {
            store: Store::open(root)?,
            driver,
        })
    }

    /// The driver in use.
    pub fn driver(&self) -> Driver {
        self.driver
    }

    /// Creates active snapshot `key` on top of committed `parent` and returns its mounts.
    pub fn prepare(&self, key: &str, parent: Option<&str>) -> Result<Vec<Mount>, SnapshotError> {
        self.prepare_with(key, parent, true)
    }

    /// [`Snapshotter::prepare`] for a scratch layer (a build step's) that is committed or
    /// removed soon: its records are written without fsync, so a crash may lose them, and
    /// [`Snapshotter::cleanup`] then deletes what is left. Committing it writes the
    /// committed records durably.
    pub fn prepare_scratch(
        &self,
        key: &str,
        parent: Option<&str>,
    ) -> Result<Vec<Mount>, SnapshotError> {
        self.prepare_with(key, parent, false)
    }

    fn prepare_with(
        &self,
        key: &str,
        parent: Option<&str>,
        durable: bool,
    ) -> Result<Vec<Mount>, SnapshotError> {
        let parent_info = match parent {
            Some(p) => Some(self.committed(p)?),
            None => None,
        };
        let info = self.store.create(key, parent_info.as_ref(), durable)?;
        if let (Driver::Native, Some(parent_info)) = (self.driver, &parent_info) {
            if let Err(e) = copy_tree(
                &self.store.fs_dir(&parent_info.id),
                &self.store.fs_dir(&info.id),
            ) {
                // Best effort: an unusable half copy must not stay behind under the key.
                let _ = self.store.remove(key);
                return Err(SnapshotError::Copy {
                    key: key.to_string(),
                    source: e,
                });
            }
        }
        self.mounts_of(&info)
    }

    /// The mounts of snapshot `key`.
    pub fn mounts(&self, key: &str) -> Result<Vec<Mount>, SnapshotError> {
        let info = self.store.lookup(key)?;
        self.mounts_of(&info)
    }

    /// Metadata of snapshot `key`.
    pub fn stat(&self, key: &str) -> Result<SnapshotInfo, SnapshotError> {
        self.store.lookup(key)
    }

    /// The directory a layer is applied into for active snapshot `key`, with the whiteout
    /// mode that fits the driver (overlay markers, or deletions in the copied tree).
    pub fn apply_target(&self, key: &str) -> Result<(PathBuf, WhiteoutMode), SnapshotError> {
        let info = self.active(key)?;
        let mode = match self.driver {
            Driver::Overlay => WhiteoutMode::Overlay,
            Driver::Native => WhiteoutMode::Native,
        };
        Ok((self.store.fs_dir(&info.id), mode))
    }

    /// Apply options matching [`Snapshotter::apply_target`] for the current privileges.
    pub fn apply_options(&self) -> ApplyOptions {
        match self.driver {
            Driver::Overlay => ApplyOptions::overlay(),
            Driver::Native if rustix::process::geteuid().is_root() => ApplyOptions::native(),
            Driver::Native => ApplyOptions::unprivileged(),
        }
    }

    /// Turns active `key` into committed `name` (a ChainID when unpacking images).
    pub fn commit(&self, name: &str, key: &str) -> Result<SnapshotInfo, SnapshotError> {
        self.active(key)?;
        self.store.commit(name, key)
    }

    /// Turns active overlay snapshot `key` (unmounted) into committed `name` as it is,
    /// when its upper directory is exactly what applying its own diff would produce (see
    /// `in_place.rs`; mtimes are cut to whole seconds on the way). `Ok(None)` when it is
    /// not: the native driver, a host-shifted upper, or an entry the diff leaves out; the
    /// caller then applies the diff into a fresh snapshot as before. A build step's layer
    /// committed this way is written once instead of diffed and applied again.
    pub fn commit_in_place(
        &self,
        name: &str,
        key: &str,
    ) -> Result<Option<SnapshotInfo>, SnapshotError> {
        let info = self.active(key)?;
        if self.driver != Driver::Overlay {
            return Ok(None);
        }
        let fs = self.store.fs_dir(&info.id);
        let io = |operation| {
            let path = fs.clone();
            move |source| SnapshotError::Io {
                operation,
                path,
                source,
            }
        };
        let shifted = crate::idshift::read_mark(&fs)
            .map_err(|e| io("reading the id shift mark of")(io::Error::other(e)))?;
        if shifted.is_some() || !in_place::fits(&fs).map_err(io("normalising"))? {
            return Ok(None);
        }
        self.store.commit(name, key).map(Some)
    }

    /// Removes snapshot `key` (refused while others stack on it).
    pub fn remove(&self, key: &str) -> Result<(), SnapshotError> {
        self.store.remove(key)
    }

    /// Deletes what an interrupted prepare, commit or remove left behind (run at startup,
    /// before any other operation); returns how many records and directories went.
    pub fn cleanup(&self) -> Result<usize, SnapshotError> {
        self.store.cleanup()
    }

    /// Every snapshot.
    pub fn list(&self) -> Result<Vec<SnapshotInfo>, SnapshotError> {
        self.store.list()
    }

    /// Writes the layer tar of active snapshot `key` (what `docker commit` exports).
    pub fn diff<W: Write>(&self, key: &str, out: W) -> Result<(W, DiffSummary), SnapshotError> {
        let info = self.active(key)?;
        let fs = self.store.fs_dir(&info.id);
        Ok(match (self.driver, &info.parent) {
            (Driver::Overlay, _) => {
                // A userns chown copy's upper holds host-shifted ids (see `idshift`).
                let shift = crate::idshift::read_mark(&fs).map_err(|e| SnapshotError::Io {
                    operation: "reading the id shift mark of",
                    path: fs.clone(),
                    source: io::Error::other(e),
                })?;
                crate::diff::diff_overlay_upper_unshifted(&fs, out, shift)?
            }
            (Driver::Native, Some(parent)) => diff_trees(&self.store.fs_dir(parent), &fs, out)?,
            (Driver::Native, None) => crate::diff::tar_tree(&fs, out)?,
        })
    }

    fn committed(&self, key: &str) -> Result<SnapshotInfo, SnapshotError> {
        self.expect_kind(key, SnapshotKind::Committed)
    }

    fn active(&self, key: &str) -> Result<SnapshotInfo, SnapshotError> {
        self.expect_kind(key, SnapshotKind::Active)
    }

    fn expect_kind(
        &self,
        key: &str,
        expected: SnapshotKind,
    ) -> Result<SnapshotInfo, SnapshotError> {
        let info = self.store.lookup(key)?;
        if info.kind != expected {
            return Err(SnapshotError::WrongKind {
                key: key.to_string(),
                actual: info.kind,
                expected,
            });
        }
        Ok(info)
    }

    fn mounts_of(&self, info: &SnapshotInfo) -> Result<Vec<Mount>, SnapshotError> {
        let fs = self.store.fs_dir(&info.id);
        let read_only = info.kind == SnapshotKind::Committed;
        let bind = |source: PathBuf| {
            let mut options = vec!["rbind".to_string()];
            options.push(if read_only { "ro" } else { "rw" }.to_string());
            vec![Mount {
                fstype: "bind".into(),
                source,
                options,
                working_dir: None,
            }]
        };
        if self.driver == Driver::Native || info.lower.is_empty() {
            return Ok(bind(fs));
        }
        let root = self.store.root();
        // A committed snapshot is viewed read-only: its own fs joins the lower stack.
        let mut lower: Vec<String> = Vec::new();
        if read_only {
            lower.push(format!("l/{}", info.link));
        }
        lower.extend(info.lower.iter().map(|l| format!("l/{l}")));
        let absolute: Vec<String> = lower
            .iter()
            .map(|l| root.join(l).display().to_string())
            .collect();
        let mut options = Vec::new();
        let upper = |options: &mut Vec<String>| {
            if !read_only {
                options.push(format!("upperdir={}", fs.display()));
                options.push(format!(
                    "workdir={}",
                    self.store.work_dir(&info.id).display()
                ));
            }
        };
        options.push(format!("lowerdir={}", absolute.join(":")));
        upper(&mut options);
        let mut working_dir = None;
        if options.join(",").len() > MOUNT_DATA_MAX {
            options.clear();
            options.push(format!("lowerdir={}", lower.join(":")));
            upper(&mut options);
            working_dir = Some(root.to_path_buf());
            if options.join(",").len() > MOUNT_DATA_MAX {
                return Err(SnapshotError::TooManyLayers {
                    key: info.key.clone(),
                    layers: lower.len(),
                });
            }
        }
        if read_only {
            options.push("ro".into());
        }
        Ok(vec![Mount {
            fstype: "overlay".into(),
            source: "overlay".into(),
            options,
            working_dir,
        }])
    }
}

/// Copies tree `from` into the empty directory `to`, metadata included, by streaming a
/// tar of it through the layer applier (one tested code path for both).
fn copy_tree(from: &Path, to: &Path) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let (reader, writer) = rustix::pipe::pipe()?;
    let from = from.to_path_buf();
    let producer = std::thread::spawn(move || -> Result<(), DiffError> {
        crate::diff::tar_tree(&from, std::fs::File::from(writer)).map(|_| ())
    });
    let options = if rustix::process::geteuid().is_root() {
        ApplyOptions::native()
    } else {
        ApplyOptions::unprivileged()
    };
    let applied = crate::apply::apply_layer(std::fs::File::from(reader), to, &options);
    let produced = producer
        .join()
        .map_err(|_| io::Error::other("tar producer thread panicked"))?;
    produced?;
    applied?;
    Ok(())
}
