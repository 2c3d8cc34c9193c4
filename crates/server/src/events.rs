//! `GET /api/v1/events`: the live event stream (server-sent events). Every
//! second, and when a job starts or ends, one `jobs` event whose data is
//! every job as its own endpoint shows it:
//! `{"time": ..., "captures": [...], "replays": [...], "seeds": [...],
//! "exports": [...], "compares": [...]}`.

use std::sync::Arc;

use axum::extract::State as Extract;
use axum::response::Response;

use crate::state::State;

/// `GET /api/v1/events`.
pub(crate) async fn events(Extract(state): Extract<Arc<State>>) -> Response {
    let _ = state;
    todo!("api: the live event stream")
}
