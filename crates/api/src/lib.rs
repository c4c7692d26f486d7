//! Docker Engine API wire models (v1.41 to v1.50) and version negotiation, shared by
//! berthd's server, the client and the CLI.
//!
//! Every type serialises exactly as Docker's Go types do through `encoding/json`:
//! PascalCase names as the API spells them, `omitempty` where Go has it, `null` where Go
//! emits a nil slice or map, and Go's RFC 3339 nanosecond times. Request types decode as
//! leniently as Go does (unknown fields ignored, `null` for any field).
//!
//! This crate does no I/O and has no async code: it knows nothing of HTTP servers,
//! sockets or the engine. Routes and the kind → status use live in the server crate;
//! this crate only defines the one kind → status function they call.

pub mod archive;
pub mod auth;
pub mod container;
pub mod disk_usage;
pub mod error;
pub mod events;
pub mod filters;
pub mod image;
pub mod network;
pub mod progress;
pub mod secret;
pub mod stream;
pub mod system;
pub mod time;
pub mod version;
pub mod volume;

mod json;

pub use auth::{AuthConfig, AuthError};
pub use error::{ErrorKind, ErrorResponse};
pub use filters::{Filters, FiltersError};
pub use json::{Empty, StrSlice};
pub use version::{ApiVersion, VersionError};
