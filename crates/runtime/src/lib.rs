//! berth's OCI runtime library (runtime-spec 1.2): everything `berth-runtime` does to
//! turn a bundle into a running container, as runc does it.
//!
//! Synchronous by design: this crate forks, clones and calls setns, so it never
//! depends on tokio or any async runtime (checked by xtask's architecture test).
//! It does not pull images, manage snapshots or talk to berthd.

pub mod capabilities;
pub mod cgroups;
pub mod example;
pub mod features;
pub mod hooks;
pub mod lsm;
pub mod rlimits;
pub mod seccomp;
