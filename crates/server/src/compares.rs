//! The compare jobs: a comparison started through the API compares two
//! stored sessions item by item, as `otlp-tape compare` does, and keeps the
//! comparison for `GET /api/v1/compares/{id}` and its report (JSON, or
//! `?format=html` the page).
//!
//! A body that is not a valid comparison is refused at once: bad options
//! and a replay report that is not one are 400, an unknown session 404, a
//! session still being recorded (`active`) 409, a replay report of another
//! session than `expected` 400. What only the
//! run finds (an undecodable record, a partition file that cannot be
//! written) ends the job `failed` with its message. Partition files go
//! into a new directory under the host's temporary directory, removed when
//! the job ends; stopping drops the run and with it those files.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path as UrlPath, Query, State as Extract};
use axum::http::header;
use axum::response::IntoResponse;
use futures::FutureExt;
use serde::Deserialize;
use serde_json::{Value, json};
use tape_compare::CompareProgress;

use crate::api::{
    ApiError, ApiResult, JobLimit, WaitParam, accepted, job_id, list_jobs, ok, options, show_job, stop_job,
};
use crate::request::CompareOptions;
use crate::state::{CompareJob, Job, JobState, JobStatus, State, lock};

impl Job for CompareJob {
    fn status(&self) -> &JobStatus {
        &self.status
    }

    fn json(&self) -> Value {
        self.status.json(json!({
            "id": self.id,
            "expected": self.expected,
            "actual": self.actual,
            "options": self.options,
            "progress": *lock(&self.progress),
            "comparison": self.comparison.as_deref(),
        }))
    }

    /// The run is dropped at once, its partition files with it.
    fn stop(&self) {
        self.stop.cancel();
    }
}

fn missing(id: &str) -> ApiError {
    ApiError::not_found(format!("no compare {id:?}"))
}

pub(crate) async fn compares(Extract(state): Extract<Arc<State>>) -> ApiResult {
    ok(json!({ "compares": list_jobs(&state.compares) }))
}

pub(crate) async fn compare(
    Extract(state): Extract<Arc<State>>,
    UrlPath(id): UrlPath<String>,
    wait: WaitParam,
) -> ApiResult {
    show_job(&state, &state.compares, &id, wait, || missing(&id)).await
}

pub(crate) async fn stop_compare(Extract(state): Extract<Arc<State>>, UrlPath(id): UrlPath<String>) -> ApiResult {
    stop_job(&state.compares, &id, || missing(&id))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReportQuery {
    /// `json` (the default) or `html`.
    format: Option<String>,
}

/// The comparison of a completed compare job: its JSON, or with
/// `?format=html` the page; 409 while it runs or when it ended without one.
pub(crate) async fn compare_report(
    Extract(state): Extract<Arc<State>>,
    UrlPath(id): UrlPath<String>,
    query: Result<Query<ReportQuery>, QueryRejection>,
) -> ApiResult {
    let Query(query) = query.map_err(|rejection| ApiError::bad_request(rejection.body_text()))?;
    let html = match query.format.as_deref() {
        None | Some("json") => false,
        Some("html") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!("invalid format {other:?}: the report is json or html")));
        }
    };
    let comparison = {
        let jobs = lock(&state.compares);
        let job = jobs.get(&id).ok_or_else(|| missing(&id))?;
        match (&job.comparison, job.status.state) {
            (Some(comparison), _) => Arc::clone(comparison),
            (None, JobState::Running) => {
                return Err(ApiError::conflict(format!(
                    "compare {id:?} is still running: it has no report yet (GET /api/v1/compares/{id}?wait=60 waits \
                     for its end)"
                )));
            }
            (None, state) => {
                let why = job.status.error.as_deref().map_or_else(String::new, |error| format!(": {error}"));
                let state = serde_json::to_value(state).ok().and_then(|state| state.as_str().map(str::to_owned));
                return Err(ApiError::conflict(format!(
                    "compare {id:?} has no report: it {}{why}",
                    state.as_deref().unwrap_or("ended")
                )));
            }
        }
    };
    if html {
        Ok(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], comparison.to_html()).into_response())
    } else {
        ok(comparison.as_ref())
    }
}

pub(crate) async fn start_compare(
    Extract(state): Extract<Arc<State>>,
    bytes: Result<Bytes, BytesRejection>,
) -> ApiResult {
    if state.shutting_down.is_cancelled() {
        return Err(ApiError::shutting_down());
    }
    let config: CompareOptions = options(bytes)?;
    let checked = config.validate().map_err(|error| ApiError::component(&error))?;
    let limit =
        JobLimit { most: state.limits.max_concurrent_compares, kind: "compare", flag: "--max-concurrent-compares" };
    limit.check(&lock(&state.compares))?;
    let config = checked.config();
    let expected = state.store.read_metadata(&config.expected).await.map_err(|error| ApiError::store(&error))?;
    let actual = state.store.read_metadata(&config.actual).await.map_err(|error| ApiError::store(&error))?;
    for metadata in [&expected, &actual] {
        if metadata.status == tape_session::SessionStatus::Active {
            let active = tape_compare::Error::SessionActive {
                session: metadata.session_id.clone(),
                finish: metadata.how_to_finish(),
            };
            return Err(ApiError::conflict(active.to_string()));
        }
    }
    if let Some(report) = &config.replay_report {
        let checked = report
            .check_session(tape_compare::REPLAY_REPORT, &expected)
            .and_then(|()| report.selection(config.signals))
            .and_then(|_| report.id_regeneration());
        checked.map_err(|error| ApiError::bad_request(error.to_string()))?;
    }

    let id = job_id("compare");
    let stop = tokio_util::sync::CancellationToken::new();
    let progress = Arc::new(Mutex::new(CompareProgress::default()));
    let job = CompareJob {
        id: id.clone(),
        expected: config.expected.clone(),
        actual: config.actual.clone(),
        options: serde_json::to_value(config).unwrap_or(Value::Null),
        status: JobStatus::started(tape_capture::now()),
        progress: Arc::clone(&progress),
        stop: stop.clone(),
        comparison: None,
    };
    let body = job.json();
    limit.admit(&state.compares, id.clone(), job)?;
    state.job_started();
    let runner = Arc::clone(&state);
    state.tasks.spawn(async move {
        let report = move |now: CompareProgress| *lock(&progress) = now;
        let run = std::panic::AssertUnwindSafe(checked.run(runner.store.as_ref(), &runner.temp_dir, &report));
        // Stopping drops the run, and with it its partition files.
        let ended = tokio::select! {
            ended = run.catch_unwind() => Some(ended),
            () = stop.cancelled() => None,
        };
        runner.end_job(&runner.compares, &id, |job| match ended {
            Some(Ok(Ok(comparison))) => {
                job.comparison = Some(Arc::new(comparison));
                job.status.end(JobState::Completed, None);
            }
            Some(Ok(Err(error))) => job.status.end(JobState::Failed, Some(tape_session::error_chain(&error))),
            Some(Err(_)) => job.status.end(JobState::Failed, Some("the compare task panicked".to_owned())),
            None => job.status.end(JobState::Stopped, None),
        });
    });
    accepted(body)
}
