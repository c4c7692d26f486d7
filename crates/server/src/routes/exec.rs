//! `/containers/{id}/exec` and `/exec/*` (skeleton; the streams helper fills it in).

use axum::Router;

use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
}
