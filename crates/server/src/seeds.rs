//! The seed jobs: a seed started through the API generates a session from
//! a built-in pattern into the store, as `otlp-tape seed` does.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State as Extract};
use futures::FutureExt;
use serde_json::{Value, json};
use tape_session::Error as StoreError;

use crate::api::{
    ApiError, ApiResult, JobLimit, WaitParam, accepted, job_id, list_jobs, ok, options, show_job, stop_job,
};
use crate::request::SeedOptions;
use crate::state::{Job, JobState, JobStatus, SeedJob, State, lock};

impl Job for SeedJob {
    fn status(&self) -> &JobStatus {
        &self.status
    }

    fn json(&self) -> Value {
        self.status.json(json!({ "id": self.id, "summary": self.summary }))
    }

    /// Generation stops between two records; the partial session is
    /// removed.
    fn stop(&self) {
        self.stop.cancel();
    }
}

fn missing(id: &str) -> ApiError {
    ApiError::not_found(format!("no seed {id:?}"))
}

pub(crate) async fn seeds(Extract(state): Extract<Arc<State>>) -> ApiResult {
    ok(json!({ "seeds": list_jobs(&state.seeds) }))
}

pub(crate) async fn seed(Extract(state): Extract<Arc<State>>, Path(id): Path<String>, wait: WaitParam) -> ApiResult {
    show_job(&state, &state.seeds, &id, wait, || missing(&id)).await
}

pub(crate) async fn stop_seed(Extract(state): Extract<Arc<State>>, Path(id): Path<String>) -> ApiResult {
    stop_job(&state.seeds, &id, || missing(&id))
}

pub(crate) async fn start_seed(Extract(state): Extract<Arc<State>>, bytes: Result<Bytes, BytesRejection>) -> ApiResult {
    if state.shutting_down.is_cancelled() {
        return Err(ApiError::shutting_down());
    }
    let config: SeedOptions = options(bytes)?;
    // The API reads no files of this host: built-in patterns only.
    if tape_seed_generator::builtin_pattern(&config.pattern).is_none() {
        return Err(ApiError::bad_request(format!(
            "unknown pattern {:?}: the API takes a built-in pattern's name (GET /api/v1/patterns lists them), not a file",
            config.pattern
        )));
    }
    // Bad parameters are refused now, not in the job.
    let checked = config.validate().map_err(|error| ApiError::component(&error))?;
    if checked.traces() > state.limits.max_seed_traces {
        return Err(ApiError::bad_request(format!(
            "this seed would generate {} traces (duration × rate), more than the {} this serve allows \
             (--max-seed-traces); lower the duration or the rate",
            checked.traces(),
            state.limits.max_seed_traces
        )));
    }
    let limit = JobLimit { most: state.limits.max_concurrent_seeds, kind: "seed", flag: "--max-concurrent-seeds" };
    limit.check(&lock(&state.seeds))?;
    if let Some(id) = &config.session_id {
        match state.store.read_metadata(id).await {
            Ok(_) => return Err(ApiError::conflict(format!("session {id} exists already"))),
            Err(StoreError::NotFound(_)) => {}
            Err(error) => return Err(ApiError::store(&error)),
        }
    }
    let id = job_id("seed");
    let stop = tokio_util::sync::CancellationToken::new();
    let job =
        SeedJob { id: id.clone(), status: JobStatus::started(tape_capture::now()), stop: stop.clone(), summary: None };
    let body = job.json();
    limit.admit(&state.seeds, id.clone(), job)?;
    state.job_started();
    let runner = Arc::clone(&state);
    state.tasks.spawn(async move {
        // The phases go to ClickHouse when serve's environment names one.
        let clickhouse = tape_annotations::ClickHouseSettings::default().resolve(|name| (runner.env)(name));
        let generated =
            std::panic::AssertUnwindSafe(tape_seed::run(runner.store.as_ref(), &checked, None, clickhouse, &stop))
                .catch_unwind()
                .await;
        runner.end_job(&runner.seeds, &id, |job| match generated {
            Ok(Ok(summary)) => {
                for warning in &summary.warnings {
                    (runner.warn)(warning);
                }
                job.summary = serde_json::to_value(&summary).ok();
                job.status.end(JobState::Completed, None);
            }
            Ok(Err(error)) if error.is_stopped() => job.status.end(JobState::Stopped, None),
            Ok(Err(error)) => job.status.end(JobState::Failed, Some(tape_session::error_chain(&error))),
            Err(_) => job.status.end(JobState::Failed, Some("the seed task panicked".to_owned())),
        });
    });
    accepted(body)
}
