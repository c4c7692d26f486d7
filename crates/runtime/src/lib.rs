//! berth's OCI runtime library (runtime-spec 1.2): everything `berth-runtime` does to
//! turn a bundle into a running container, as runc does it.
//!
//! Synchronous by design: this crate forks, clones and calls setns, so it never
//! depends on tokio or any async runtime (checked by xtask's architecture test).
//! It does not pull images, manage snapshots or talk to berthd.

pub mod capabilities;
pub mod cgroups;
pub mod console;
pub mod container;
pub mod error;
pub mod example;
pub mod features;
pub mod go_json;
pub mod hooks;
pub mod init;
pub mod logging;
pub mod lsm;
pub mod namespaces;
pub mod rlimits;
pub mod rootfs;
pub mod seccomp;
pub mod signal;
pub mod spec;
pub mod state;
pub mod sync;
pub mod syscall;
