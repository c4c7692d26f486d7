//! Pure OCI and Docker types shared by every berth crate: ids, digests, references.
//!
//! This crate does no I/O and has no async code; anything that touches the disk or
//! the network belongs in a crate above it (see ARCHITECTURE.md).

pub mod id;
