//! The capture jobs: a capture started through the API records what the
//! receivers take into a new session until it is stopped or reaches a
//! limit.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State as Extract};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{Value, json};
use tape_session::{SessionId, WriterId};

/// The host name's variable, read through the server's variable lookup for
/// a joining capture's writer id and manifest.
const HOSTNAME: &str = "HOSTNAME";

use crate::api::{ApiError, ApiResult, WaitParam, ok, options, session_id, show_job, stop_job};
use crate::request::CaptureOptions;
use crate::state::{CaptureJob, Job, JobState, JobStatus, State, insert, lock};

impl Job for CaptureJob {
    fn status(&self) -> &JobStatus {
        &self.status
    }

    fn json(&self) -> Value {
        let stats = self.live.as_ref().map(|(_, stats)| stats.snapshot()).or(self.stats);
        self.status.json(json!({
            "id": self.session_id,
            "sessionId": self.session_id,
            "counts": stats,
            "queue": self.queue.fill(),
            "session": self.session,
            "writerId": self.writer,
            "seal": self.seal,
        }))
    }

    /// The session is finished.
    fn stop(&self) {
        if let Some((stop, _)) = &self.live {
            stop.stop();
        }
    }
}

fn missing(id: &SessionId) -> ApiError {
    ApiError::not_found(format!("no capture of session {id}"))
}

pub(crate) async fn captures(Extract(state): Extract<Arc<State>>) -> ApiResult {
    ok(json!({ "captures": capture_list(&state) }))
}

/// The captures as `GET /api/v1/captures` lists them: the last started
/// first.
pub(crate) fn capture_list(state: &State) -> Vec<Value> {
    let captures = lock(&state.captures);
    let mut jobs: Vec<&CaptureJob> = captures.values().collect();
    jobs.sort_by(|a, b| b.status.started_at.cmp(&a.status.started_at).then_with(|| b.session_id.cmp(&a.session_id)));
    jobs.into_iter().map(Job::json).collect()
}

pub(crate) async fn capture(Extract(state): Extract<Arc<State>>, Path(id): Path<String>, wait: WaitParam) -> ApiResult {
    let id = session_id(&id)?;
    show_job(&state, &state.captures, &id, wait, || missing(&id)).await
}

pub(crate) async fn start_capture(
    Extract(state): Extract<Arc<State>>,
    bytes: Result<Bytes, BytesRejection>,
) -> ApiResult {
    if state.shutting_down.is_cancelled() {
        return Err(ApiError::shutting_down());
    }
    let settings: CaptureOptions = options(bytes)?;
    let plan = settings.validate(|name| (state.env)(name)).map_err(|error| ApiError::bad_request(error.to_string()))?;
    // A joining writer's default id and manifest name the host.
    let plan = plan.on_host((state.env)(HOSTNAME));
    let now = tape_capture::now();
    let id = plan.session_id(now);
    let writer = plan.writer_id().cloned();
    if lock(&state.captures).get(&id).is_some_and(|job| job.live.is_some() || writer.is_none()) {
        return Err(ApiError::conflict(format!("a capture of session {id} exists already")));
    }
    // The same lock as `capture` takes: no other process captures this id
    // (or, joining, this writer of it), and retention leaves it alone,
    // until the session is finished.
    let held = match &writer {
        None => tape_store::try_lock(&state.spool_dir, &id),
        Some(writer) => tape_store::try_lock_writer(&state.spool_dir, &id, writer),
    };
    let capture_lock = match held {
        Ok(Some(held)) => held,
        Ok(None) => {
            return Err(ApiError::conflict(match &writer {
                None => format!("session {id} is being captured by another running otlp-tape"),
                Some(writer) => format!(
                    "writer {writer} of session {id} is being captured by another running otlp-tape on this host; \
                     give every writer its own writerId"
                ),
            }));
        }
        Err(error) => return Err(ApiError::internal(tape_session::error_chain(&error))),
    };
    // The addresses are serve's, not the capture command's defaults.
    let endpoints = tape_capture::CaptureEndpoints {
        grpc: state.receivers.grpc_addr(),
        http: state.receivers.http_addr(),
        forward: None,
    };
    let metadata = plan.metadata(id.clone(), now, &endpoints);
    let recorder = plan.recorder;
    let live =
        state.receivers.attach(Arc::clone(&state.store), metadata, recorder).await.map_err(|error| match error {
            tape_capture::AttachError::Busy { session } => ApiError::conflict(format!(
                "session {session} is being captured; stop it before starting another capture"
            )),
            tape_capture::AttachError::Session(error) => join_refusal(&error, writer.as_ref()),
            tape_capture::AttachError::ShutDown => ApiError::shutting_down(),
        })?;
    let job = CaptureJob {
        session_id: id.clone(),
        status: JobStatus::started(now),
        live: Some((live.stop_handle(), Arc::clone(live.stats()))),
        queue: live.queue().clone(),
        stats: None,
        session: None,
        writer: writer.clone(),
        seal: None,
    };
    let body = job.json();
    insert(&mut lock(&state.captures), id.clone(), job);
    state.job_started();
    let waiter = Arc::clone(&state);
    state.capture_tasks.spawn(async move {
        let outcome = live.wait().await;
        drop(capture_lock);
        let mut captures = lock(&waiter.captures);
        if let Some(job) = captures.get_mut(&id) {
            if let Some((_, stats)) = job.live.take() {
                job.stats = Some(stats.snapshot());
            }
            match outcome {
                Ok(outcome) => {
                    job.status.end(JobState::Completed, None);
                    job.stats = Some(outcome.stats);
                    job.session = serde_json::to_value(&outcome.recording.metadata).ok();
                    job.seal = outcome.recording.seal.as_ref().map(crate::seal::outcome_json);
                }
                Err(error) => job.status.end(JobState::Failed, Some(error.to_string())),
            }
        }
        drop(captures);
        waiter.job_ended();
    });
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

/// The answer to a capture that could not start: a session that cannot be
/// joined, or a writer id that joined it before, is a conflict (409).
fn join_refusal(error: &tape_session::Error, writer: Option<&WriterId>) -> ApiError {
    match (error, writer) {
        (tape_session::Error::FileExists { session, file }, Some(writer)) => ApiError::conflict(format!(
            "writer {writer} has joined session {session} already ({file} exists): two writers with the same writer \
             id; give every writer its own writerId"
        )),
        (tape_session::Error::SessionNotJoinable { .. }, _) => ApiError::conflict(error.to_string()),
        _ => ApiError::store(error),
    }
}

pub(crate) async fn stop_capture(Extract(state): Extract<Arc<State>>, Path(id): Path<String>) -> ApiResult {
    let id = session_id(&id)?;
    stop_job(&state.captures, &id, || missing(&id))
}
