//! What the web UI reads of a session besides its metadata: its timeline,
//! the traces of a window, one trace. Answers are 404 for an unknown
//! session or trace, 400 for a bad id or window, 409 for a session still
//! being recorded.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State as Extract};

use crate::api::ApiResult;
use crate::state::State;

/// `GET /api/v1/sessions/{id}/timeline`.
pub(crate) async fn timeline(Extract(state): Extract<Arc<State>>, Path(id): Path<String>) -> ApiResult {
    let _ = (state, id);
    todo!("api: timeline")
}

/// `GET /api/v1/sessions/{id}/traces?from=&until=&limit=&service=&errorsOnly=`.
pub(crate) async fn traces(
    Extract(state): Extract<Arc<State>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult {
    let _ = (state, id, query);
    todo!("api: traces of a window")
}

/// `GET /api/v1/sessions/{id}/traces/{traceId}?from=&until=`.
pub(crate) async fn trace(
    Extract(state): Extract<Arc<State>>,
    Path((id, trace_id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> ApiResult {
    let _ = (state, id, trace_id, query);
    todo!("api: one trace")
}
