//! `POST /api/v1/sessions/{id}/seal`: merges the manifests of a session of
//! several writers (`capture --join`) into its `metadata.json` once every
//! writer has stopped, as `sessions seal` does.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State as Extract};
use serde_json::{Value, json};
use tape_session::{SealOptions, SealOutcome, WriterId, seal_session};

use crate::api::{ApiError, ApiResult, ok, session_id};
use crate::state::State;

/// How long a seal waits for another process that is sealing the session
/// (a writer stopping) before it merges the manifests itself.
const SEAL_WAIT: Duration = Duration::from_secs(10);

/// The JSON of a seal's outcome: `{"outcome": "sealed" | "alreadySealed",
/// "session": metadata}` or `{"outcome": "writersActive", "activeWriters": [...]}`.
pub(crate) fn outcome_json(outcome: &SealOutcome) -> Value {
    match outcome {
        SealOutcome::Sealed(metadata) => json!({ "outcome": "sealed", "session": metadata }),
        SealOutcome::AlreadySealed(metadata) => json!({ "outcome": "alreadySealed", "session": metadata }),
        SealOutcome::WritersActive(active) => json!({ "outcome": "writersActive", "activeWriters": active }),
    }
}

/// 200 with the outcome once sealed (now or before), 409 naming the
/// writers still active, 404 for an unknown session.
pub(crate) async fn seal(Extract(state): Extract<Arc<State>>, Path(id): Path<String>) -> ApiResult {
    let id = session_id(&id)?;
    let options = SealOptions { wait: SEAL_WAIT, by_writer: false };
    let outcome = seal_session(state.store.as_ref(), &id, None, options, tape_capture::now())
        .await
        .map_err(|error| ApiError::store(&error))?;
    if let SealOutcome::WritersActive(active) = &outcome {
        let names = active.iter().map(WriterId::as_str).collect::<Vec<_>>().join(", ");
        return Err(ApiError::conflict(format!(
            "session {id} is not sealed: writers {names} are still active; the last writer to stop seals it, and a \
             writer that crashed is finished with `otlp-tape sessions repair {id} --writer <writer>`"
        )));
    }
    tracing::info!(session = %id, "Sealed session {id} through the API.");
    ok(outcome_json(&outcome))
}
