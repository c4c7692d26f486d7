//! berth-image: the image model (Docker schema 2 and OCI manifests, indexes with platform
//! selection, Docker image configs that keep every field), image records with Docker's
//! RepoTags/RepoDigests and delete rules, unpacking into ChainID snapshots, and the
//! `docker save` / OCI layout / `docker load` / `docker import` formats.
//!
//! It does not talk to registries (berth-registry) and never re-serialises a manifest or
//! config it did not create: raw bytes live in berth-content, keyed by digest, and the
//! parsed types here are views of them. Blocking std I/O; async callers use
//! `spawn_blocking`.

pub mod archive;
pub mod blob;
pub mod config;
pub mod gc;
pub mod manifest;
pub mod store;
#[cfg(test)]
mod testing;
pub mod time;
pub mod unpack;

pub use config::{
    chain_ids, ConfigError, ContainerConfig, Healthcheck, History, ImageConfig, RootFs,
};
pub use gc::children;
pub use manifest::{Descriptor, Index, Manifest, ManifestError, Parsed};
pub use store::{ContainerUse, DeleteItem, ImageRecord, ImageStore, StoreError};
pub use unpack::{unpack, UnpackError};
