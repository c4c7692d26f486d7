//! Routes by API area; each module exposes `routes() -> Router<AppState>`.

pub mod build;
pub mod containers;
pub mod exec;
pub mod images;
pub mod networks;
pub mod secrets;
pub mod streams;
pub mod system;
pub mod volumes;
