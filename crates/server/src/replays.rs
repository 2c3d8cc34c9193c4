//! The replay jobs: a replay started through the API sends a stored
//! session to a target, as `otlp-tape replay` does, and writes its JSON
//! report into serve's reports directory.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State as Extract};
use axum::http::StatusCode;
use serde_json::{Value, json};
use tape_replay::{EndReason, RunOptions, SessionChoice};

use crate::api::{
    ApiError, ApiResult, JobLimit, WaitParam, accepted, job_id, list_jobs, ok, options, show_job, stop_job,
};
use crate::limits::check_target;
use crate::request::ReplayOptions;
use crate::state::{Job, JobState, JobStatus, ReplayJob, State, lock};

impl Job for ReplayJob {
    fn status(&self) -> &JobStatus {
        &self.status
    }

    fn json(&self) -> Value {
        self.status.json(json!({
            "id": self.id,
            "sessionId": self.session_id,
            "progress": self.progress.snapshot(),
            "report": self.report,
            "reportFile": self.report_file,
        }))
    }

    /// It ends within its drain timeout and writes its report.
    fn stop(&self) {
        self.stop.cancel();
    }
}

fn missing(id: &str) -> ApiError {
    ApiError::not_found(format!("no replay {id:?}"))
}

pub(crate) async fn replays(Extract(state): Extract<Arc<State>>) -> ApiResult {
    ok(json!({ "replays": list_jobs(&state.replays) }))
}

pub(crate) async fn replay(Extract(state): Extract<Arc<State>>, Path(id): Path<String>, wait: WaitParam) -> ApiResult {
    show_job(&state, &state.replays, &id, wait, || missing(&id)).await
}

pub(crate) async fn stop_replay(Extract(state): Extract<Arc<State>>, Path(id): Path<String>) -> ApiResult {
    stop_job(&state.replays, &id, || missing(&id))
}

/// A replay's error: a store's (a missing session is 404) as the store
/// says it, anything else 400 with its whole chain.
fn replay_error(error: &tape_replay::Error) -> ApiError {
    if let tape_replay::Error::UnsealedSession { .. } = error {
        return ApiError::conflict(error.to_string());
    }
    match error.store_error() {
        Some(store) => ApiError::store(store),
        None => ApiError::component(error),
    }
}

pub(crate) async fn start_replay(
    Extract(state): Extract<Arc<State>>,
    bytes: Result<Bytes, BytesRejection>,
) -> ApiResult {
    if state.shutting_down.is_cancelled() {
        return Err(ApiError::shutting_down());
    }
    let config: ReplayOptions = options(bytes)?;
    let config = config.validate(|name| (state.env)(name)).map_err(|error| replay_error(&error))?;
    let limit =
        JobLimit { most: state.limits.max_concurrent_replays, kind: "replay", flag: "--max-concurrent-replays" };
    limit.check(&lock(&state.replays))?;
    if let SessionChoice::Id(id) = &config.session {
        state.store.read_metadata(id).await.map_err(|error| ApiError::store(&error))?;
    }
    // The report of a replay of the API always has the hash of what it
    // sent; files of this host (checkpoints, CA files) are not the API's.
    let run = RunOptions { content_hash: true, ..RunOptions::default() };
    let prepared = tape_replay::prepare(state.store.as_ref(), config, run, |name| (state.env)(name))
        .await
        .map_err(|error| replay_error(&error))?;
    for signal in tape_otlp::Signal::ALL {
        check_target(prepared.targets().exporter(signal).endpoint(), &state.limits.allowed_targets)
            .map_err(|message| ApiError::new(StatusCode::FORBIDDEN, message))?;
    }
    let session_id = prepared.session_id().clone();
    let ready = match prepared.start().map_err(|error| replay_error(&error))? {
        tape_replay::Start::Ready(ready) => ready,
        // Only a resume, which the API does not take, can be complete.
        tape_replay::Start::AlreadyComplete(_) => {
            return Err(ApiError::conflict(format!("the replay of session {session_id} is complete already")));
        }
    };
    let id = job_id("replay");
    let progress = ready.progress();
    let stop = tokio_util::sync::CancellationToken::new();
    let job = ReplayJob {
        id: id.clone(),
        session_id,
        status: JobStatus::started(tape_capture::now()),
        started: std::time::Instant::now(),
        progress,
        stop: stop.clone(),
        report: None,
        report_file: None,
    };
    let body = job.json();
    limit.admit(&state.replays, id.clone(), job)?;
    state.job_started();
    let runner = Arc::clone(&state);
    state.tasks.spawn(async move {
        let finished = ready.run(Arc::clone(&runner.store), &stop).await;
        let report = serde_json::to_value(&finished.report).unwrap_or(Value::Null);
        let path = runner.reports_dir.join(format!("{id}.json"));
        // `.json`: the JSON report, as `replay --report FILE.json` writes it.
        let written = std::fs::create_dir_all(&runner.reports_dir)
            .and_then(|()| tape_replay::write_report(&path, &finished.report));
        let state = match (&finished.failure, finished.reason()) {
            (Some(_), _) => JobState::Failed,
            (None, EndReason::Stopped) => JobState::Stopped,
            (None, _) => JobState::Completed,
        };
        // Summed under the lock of the replays, so that `/metrics` never
        // counts a replay both as running and as ended.
        runner.end_job(&runner.replays, &id, |job| {
            lock(&runner.replay_totals).push(&finished.outcome.progress);
            job.status.end(state, finished.failure.as_ref().map(tape_replay::Failure::full));
            job.report = Some(report);
            match written {
                Ok(()) => job.report_file = Some(path),
                Err(error) => tracing::error!("Cannot write the report {}: {error}", path.display()),
            }
        });
    });
    accepted(body)
}
