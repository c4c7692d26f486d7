//! `/containers/*` (skeleton; the containers helper fills it in).

use axum::Router;

use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
}
