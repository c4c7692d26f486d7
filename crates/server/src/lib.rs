//! The Docker Engine API over HTTP: routes, version negotiation, hijacked attach and exec
//! streams, and the one mapping from error kinds to status codes (through berth-api's
//! `ErrorKind::status`). No container or image logic: every handler calls berth-engine.
//!
//! # Layout
//! - [`serve`]: listeners (unix socket, TCP), the `/vX.Y` prefix rewrite and version
//!   negotiation in front of the router, HTTP upgrades for hijacked streams.
//! - [`error`]: [`ApiError`], the only place an error becomes a status and `{"message"}`.
//! - [`routes`]: one module per API area, each exposing `routes() -> Router<AppState>`.

pub mod error;
pub mod hijack;
pub mod json;
pub mod routes;
pub mod serve;
pub mod tls;

use std::sync::Arc;

use axum::Router;
use berth_engine::Engine;

pub use error::ApiError;

/// Version of berthd reported by `/version`, `/_ping` and the `Server` header.
pub const SERVER_VERSION: &str = env!("CARGO_PKG_VERSION");

/// What every handler gets: the engine.
pub type AppState = Arc<Engine>;

/// The whole API router (without the version prefix, which [`serve`] strips).
pub fn router(engine: Arc<Engine>) -> Router {
    Router::new()
        .merge(routes::system::routes())
        .merge(routes::images::routes())
        .merge(routes::build::routes())
        .merge(routes::containers::routes())
        .merge(routes::exec::routes())
        .merge(routes::streams::routes())
        .merge(routes::volumes::routes())
        .merge(routes::networks::routes())
        .merge(routes::secrets::routes())
        .fallback(routes::system::not_found)
        .with_state(engine)
}
