//! berth-snapshot: applies OCI/Docker layer tars onto directories with every entry resolved
//! inside the target, diffs directories back into reproducible layer tars, and keeps the
//! overlayfs snapshots containers run on.
//!
//! It does not fetch or store blobs (berth-content), read manifests (berth-image), or mount
//! container root filesystems (berth-runtime); it only hands out mount specs.

pub mod apply;
pub mod compression;
pub mod diff;
pub mod idmap;
pub mod idshift;
pub mod path;
mod root;
pub mod snapshotter;
#[cfg(test)]
mod test_tar;

pub use apply::{
    apply_layer, apply_layer_parallel, apply_verified_tar, AppliedTar, ApplyError, ApplyOptions,
    ApplySummary, DevicePolicy, WhiteoutMode,
};
pub use compression::Compression;
pub use diff::{
    diff_overlay_upper, diff_overlay_upper_unshifted, diff_trees, tar_tree, tar_tree_unshifted,
    DiffError, DiffSummary,
};
pub use idmap::{IdMapping, Ownership};
pub use snapshotter::{Driver, Mount, SnapshotError, SnapshotInfo, SnapshotKind, Snapshotter};
