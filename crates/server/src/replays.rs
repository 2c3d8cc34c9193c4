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

use crate::api::{ApiError, ApiResult, JobLimit, WaitParam, accepted, job_id, job_view, ok, options};
use crate::limits::check_target;
use crate::request::ReplayOptions;
use crate::state::{JobState, JobStatus, ReplayJob, State, lock};

fn replay_json(job: &ReplayJob) -> Value {
    job.status.json(json!({
        "id": job.id,
        "sessionId": job.session_id,
        "progress": job.progress.snapshot(),
        "report": job.report,
        "reportFile": job.report_file,
    }))
}

pub(crate) async fn replays(Extract(state): Extract<Arc<State>>) -> ApiResult {
    let replays: Vec<Value> = lock(&state.replays).values().rev().map(replay_json).collect();
    ok(json!({ "replays": replays }))
}

pub(crate) async fn replay(Extract(state): Extract<Arc<State>>, Path(id): Path<String>, wait: WaitParam) -> ApiResult {
    job_view(&state, wait, || {
        let replays = lock(&state.replays);
        let job = replays.get(&id).ok_or_else(|| ApiError::not_found(format!("no replay {id:?}")))?;
        Ok((job.status.is_running(), replay_json(job)))
    })
    .await
}

pub(crate) async fn stop_replay(Extract(state): Extract<Arc<State>>, Path(id): Path<String>) -> ApiResult {
    let replays = lock(&state.replays);
    let job = replays.get(&id).ok_or_else(|| ApiError::not_found(format!("no replay {id:?}")))?;
    job.stop.cancel();
    accepted(replay_json(job))
}

/// A replay's error: a store's (a missing session is 404) as the store
/// says it, anything else 400 with its whole chain.
fn replay_error(error: &tape_replay::Error) -> ApiError {
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
    let body = replay_json(&job);
    limit.admit(&state.replays, id.clone(), job)?;
    let runner = Arc::clone(&state);
    state.tasks.spawn(async move {
        let finished = ready.run(Arc::clone(&runner.store), &stop).await;
        let report = serde_json::to_value(&finished.report).unwrap_or(Value::Null);
        let path = runner.reports_dir.join(format!("{id}.json"));
        let written = std::fs::create_dir_all(&runner.reports_dir)
            .and_then(|()| serde_json::to_vec_pretty(&report).map_err(std::io::Error::other))
            .and_then(|json| tape_replay::write_atomically(&path, &json));
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
