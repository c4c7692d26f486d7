//! `/images/*`, `/auth`, `/distribution/*` (skeleton; the images helper fills it in).

use axum::Router;

use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
}
