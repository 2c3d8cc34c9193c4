//! `POST /api/v1/sessions/merge`: one session made of several
//! (`tape_session::merge_sessions`), answered when the new session is
//! written: 201 with the merge's report.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State as Extract;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use tape_session::{MergeConfig, MergeError, merge_sessions};

use crate::api::{ApiError, ApiResult, body};
use crate::state::State;

/// Merges the sessions the body names (a [`MergeConfig`]): 201 with the
/// report; 400 for a bad body, 404 for an unknown source, 409 when the new
/// session exists or a source is active (or failed), 500 when the store
/// fails (nothing of the new session is left then).
pub(crate) async fn merge(Extract(state): Extract<Arc<State>>, bytes: Result<Bytes, BytesRejection>) -> ApiResult {
    let config: MergeConfig = serde_path_to_error::deserialize(body(bytes)?)
        .map_err(|error| ApiError::bad_request(format!("invalid merge: {}: {}", error.path(), error.inner())))?;
    let config = config.validate().map_err(|error| answer(&error))?;
    if state.shutting_down.is_cancelled() {
        return Err(ApiError::shutting_down());
    }
    let report =
        merge_sessions(state.store.as_ref(), &config, tape_capture::now()).await.map_err(|error| answer(&error))?;
    Ok((StatusCode::CREATED, axum::Json(report)).into_response())
}

/// The answer to a merge that did not happen.
fn answer(error: &MergeError) -> ApiError {
    let message = tape_session::error_chain(error);
    match error {
        MergeError::Invalid(_) | MergeError::Source { .. } => ApiError::bad_request(message),
        MergeError::SourceNotFound(_) => ApiError::not_found(message),
        MergeError::SourceActive(_)
        | MergeError::SourceFailed(_)
        | MergeError::TargetExists(_)
        | MergeError::TargetIncomplete(_) => ApiError::conflict(message),
        MergeError::DamagedBlob { .. } | MergeError::Copy { .. } => ApiError::internal(message),
        MergeError::Store(store) => ApiError::store(store),
    }
}
