//! Shared fixtures for berth's end-to-end tests (bundles, binaries, cleanup guards).
//!
//! These tests run the real binaries as root; `scripts/test.sh` builds them first and points
//! `BERTH_BIN_DIR` at them. Nothing here skips: a missing binary or a non-root caller is a
//! failure, because in CI a missing tool must not look like a pass.
//!
//! - [`bundle`]: busybox bundles (rootfs, users, the static probe) and their cleanup.
//! - [`spec`]: the base config.json every test starts from (written here, not by `spec`).
//! - [`runtime`]: a runtime binary (berth-runtime or runc) with a private `--root`, and
//!   container guards that `delete --force` on drop.
//! - [`probe`]: parsing and normalising what berth-probe printed, and diffing two runs.
//! - [`host`]: what a container may leave behind on the host (state, cgroups, mounts).
//! - [`daemon`]: private berthd and dockerd instances driven by the real docker CLI (see
//!   its docs for the API), [`normalize`] to compare their outputs, [`image_tar`] for
//!   busybox images without a registry, [`registry`] for private registries on loopback,
//!   [`teardown`] for what daemons leave behind.

pub mod berthd;
pub mod bundle;
pub mod daemon;
pub mod dockerd;
pub mod host;
pub mod http;
pub mod image_tar;
pub mod normalize;
pub mod probe;
pub mod registry;
pub mod runtime;
pub mod spec;
pub mod teardown;

pub use bundle::Bundle;
pub use runtime::{Container, Runtime, Subject};

/// Fails (never skips) when the tests do not run as root.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "berth-e2e needs root (namespaces, mounts, cgroups): run it through scripts/test.sh as root"
    );
}
