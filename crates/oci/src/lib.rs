//! Pure OCI and Docker types shared by every berth crate: ids, digests, image
//! references, platforms, capability names.
//!
//! This crate does no I/O and has no async code; anything that touches the disk or
//! the network belongs in a crate above it (see ARCHITECTURE.md). It does not parse
//! manifests or image configs: those keep their raw bytes in the image crate.

pub mod capability;
pub mod digest;
pub mod id;
pub mod media_type;
pub mod platform;
pub mod reference;

pub use digest::{Algorithm, Digest, DigestError, Digester};
pub use platform::{Platform, PlatformError, PlatformMatcher};
pub use reference::{AnyReference, Reference, ReferenceError};
