//! berth's OCI distribution crate: the berth-registry server (routes, storage of
//! repositories, tags and upload sessions on the content store, offline GC) and the
//! registry client used to pull and push images.
//!
//! It does not unpack layers or keep image records (berth-image does), and it depends on
//! berth-oci and berth-content only.

pub mod client;
pub mod error;
pub mod gc;
pub mod manifest;
pub mod meta;
pub mod name;
pub mod server;

pub use error::{ApiError, ErrorCode};
pub use server::{router, Config, Storage};
