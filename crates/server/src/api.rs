//! The control API's routes, the token check, and what every handler
//! shares: errors, request bodies, waiting on jobs. Errors are JSON
//! `{"error": {"status": 404, "message": "..."}}` with the status code of
//! the problem; input errors are 4xx, never 500.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Query, Request, State as Extract};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use tape_session::{Error as StoreError, SessionId};

use crate::browse::{timeline, trace, traces};
use crate::captures::{capture, captures, start_capture, stop_capture};
use crate::compares::{compare, compare_report, compares, start_compare, stop_compare};
use crate::events::events;
use crate::exports::{export, exports, start_export, stop_export};
use crate::replays::{replay, replays, start_replay, stop_replay};
use crate::seeds::{seed, seeds, start_seed, stop_seed};
use crate::sessions::{
    add_annotation, annotations, delete, list, pattern, patterns, prune, push_annotations, show, verify,
};
use crate::state::{Job, State, insert, lock, running};

/// An API error: a status and a message for people.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into() }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::CONFLICT, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// The server is stopping: 503.
    pub fn shutting_down() -> Self {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting down")
    }

    /// As many jobs of a kind run as `serve` allows: 429, to be tried again
    /// once one has ended.
    pub fn too_many(running: usize, kind: &str, flag: &str) -> Self {
        let running_now =
            if running == 1 { format!("1 {kind} is running") } else { format!("{running} {kind}s are running") };
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "{running_now}, the most this serve allows at once ({flag} {running}); \
                 wait for one to end or stop one, then try again"
            ),
        )
    }

    /// A store error: unknown sessions are 404, invalid ids 400, what the
    /// session's state refuses (it exists, it cannot be joined, sealed or
    /// repaired so) 409, the rest 500 (the store, not the request, failed).
    /// The message carries the whole chain: a backend error names what it
    /// was doing, its cause (`No space left on device`) what went wrong.
    pub fn store(error: &StoreError) -> Self {
        let message = tape_session::error_chain(error);
        match error {
            StoreError::NotFound(_) => ApiError::not_found(message),
            StoreError::InvalidSessionId(_) | StoreError::InvalidBlobKey(_) | StoreError::InvalidWriterId(_) => {
                ApiError::bad_request(message)
            }
            StoreError::AlreadyExists(_)
            | StoreError::Symlink { .. }
            | StoreError::FileExists { .. }
            | StoreError::SessionNotJoinable { .. }
            | StoreError::NotSealable { .. }
            | StoreError::NotRepairable { .. }
            | StoreError::WriterLive { .. } => ApiError::conflict(message),
            _ => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message),
        }
    }

    /// An error of a component: a store error in its chain is answered as
    /// [`store`](ApiError::store) answers it (a missing session is 404),
    /// anything else is a bad request (400) with the whole chain.
    pub fn component(error: &(dyn std::error::Error + 'static)) -> Self {
        let mut cause = Some(error);
        while let Some(error) = cause {
            if let Some(store) = error.downcast_ref::<StoreError>() {
                return ApiError::store(store);
            }
            cause = error.source();
        }
        ApiError::bad_request(tape_session::error_chain(error))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "status": self.status.as_u16(), "message": self.message } });
        (self.status, axum::Json(body)).into_response()
    }
}

pub(crate) type ApiResult = Result<Response, ApiError>;

#[allow(clippy::unnecessary_wraps)] // every handler ends with it
pub(crate) fn ok(value: impl serde::Serialize) -> ApiResult {
    Ok(axum::Json(value).into_response())
}

#[allow(clippy::unnecessary_wraps)] // every handler ends with it
pub(crate) fn accepted(value: impl serde::Serialize) -> ApiResult {
    Ok((StatusCode::ACCEPTED, axum::Json(value)).into_response())
}

/// The routes: the API behind the token check and the body limit, and the
/// web UI's files, which need no token.
pub(crate) fn router(state: Arc<State>, max_body_bytes: usize) -> Router {
    api_router(state, max_body_bytes).merge(crate::web::router())
}

fn api_router(state: Arc<State>, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/sessions", get(list))
        .route("/api/v1/sessions/merge", post(crate::merge::merge))
        .route("/api/v1/sessions/{id}", get(show).delete(delete))
        .route("/api/v1/sessions/{id}/verify", post(verify))
        .route("/api/v1/sessions/{id}/seal", post(crate::seal::seal))
        .route("/api/v1/sessions/{id}/annotations", get(annotations).post(add_annotation))
        .route("/api/v1/sessions/{id}/annotations/push", post(push_annotations))
        .route("/api/v1/sessions/{id}/timeline", get(timeline))
        .route("/api/v1/sessions/{id}/traces", get(traces))
        .route("/api/v1/sessions/{id}/traces/{traceId}", get(trace))
        .route("/api/v1/events", get(events))
        .route("/api/v1/captures", get(captures).post(start_capture))
        .route("/api/v1/captures/{id}", get(capture))
        .route("/api/v1/captures/{id}/stop", post(stop_capture))
        .route("/api/v1/replays", get(replays).post(start_replay))
        .route("/api/v1/replays/{id}", get(replay))
        .route("/api/v1/replays/{id}/stop", post(stop_replay))
        .route("/api/v1/seeds", get(seeds).post(start_seed))
        .route("/api/v1/seeds/{id}", get(seed))
        .route("/api/v1/seeds/{id}/stop", post(stop_seed))
        .route("/api/v1/exports", get(exports).post(start_export))
        .route("/api/v1/exports/{id}", get(export))
        .route("/api/v1/exports/{id}/stop", post(stop_export))
        .route("/api/v1/compares", get(compares).post(start_compare))
        .route("/api/v1/compares/{id}", get(compare))
        .route("/api/v1/compares/{id}/stop", post(stop_compare))
        .route("/api/v1/compares/{id}/report", get(compare_report))
        .route("/api/v1/patterns", get(patterns))
        .route("/api/v1/patterns/{name}", get(pattern))
        .route("/api/v1/retention/prune", post(prune))
        .fallback(|| async { ApiError::not_found("no such endpoint; see docs/API.md") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "this endpoint does not take that method; see docs/API.md")
        })
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(middleware::from_fn_with_state(Arc::clone(&state), authorize))
        .with_state(state)
}

/// Compares in time independent of where the strings differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn authorize(Extract(state): Extract<Arc<State>>, request: Request, next: Next) -> Response {
    if let Some(token) = &state.token {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "));
        if !given.is_some_and(|given| same(given.trim().as_bytes(), token.as_bytes())) {
            let mut response =
                ApiError::new(StatusCode::UNAUTHORIZED, "this API needs Authorization: Bearer <token>").into_response();
            response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
            return response;
        }
    }
    next.run(request).await
}

/// A JSON request body: empty is `null`; too large is 413; not JSON is 400.
pub(crate) fn body(bytes: Result<Bytes, BytesRejection>) -> Result<Value, ApiError> {
    let bytes = bytes.map_err(|rejection| ApiError::new(rejection.status(), rejection.body_text()))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&bytes)
        .map_err(|error| ApiError::bad_request(format!("the request body is not JSON: {error}")))
}

pub(crate) fn session_id(text: &str) -> Result<SessionId, ApiError> {
    text.parse().map_err(|error| ApiError::bad_request(format!("{error}")))
}

async fn healthz() -> ApiResult {
    ok(json!({ "status": "ok" }))
}

async fn readyz(Extract(state): Extract<Arc<State>>) -> ApiResult {
    if state.shutting_down.is_cancelled() {
        return Err(ApiError::shutting_down());
    }
    match state.store.list_session_ids().await {
        Ok(_) => ok(json!({ "status": "ready", "store": state.store.location() })),
        Err(error) => {
            Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("the store is not reachable: {error}")))
        }
    }
}

async fn metrics(Extract(state): Extract<Arc<State>>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], state.metrics()).into_response()
}

/// Body of a request whose options are a component's config `T`; a body
/// that is not valid options is 400 with the option named.
pub(crate) fn options<T: serde::de::DeserializeOwned>(bytes: Result<Bytes, BytesRejection>) -> Result<T, ApiError> {
    crate::request::options(&body(bytes)?).map_err(|error| ApiError::bad_request(error.to_string()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WaitQuery {
    /// Seconds to wait for the job to end before answering, at most 60.
    wait: Option<u64>,
}

pub(crate) type WaitParam = Result<Query<WaitQuery>, axum::extract::rejection::QueryRejection>;

/// The jobs of `jobs` as JSON, the last id first.
pub(crate) fn list_jobs<K, V: Job>(jobs: &Mutex<BTreeMap<K, V>>) -> Vec<Value> {
    lock(jobs).values().rev().map(Job::json).collect()
}

/// Answers with job `key` of `jobs` at once, or with `?wait=N` once it is
/// no longer running (or after N seconds, at most 60); 404 with `missing`
/// when there is no such job.
pub(crate) async fn show_job<K: Ord, V: Job>(
    state: &State,
    jobs: &Mutex<BTreeMap<K, V>>,
    key: &K,
    wait: WaitParam,
    missing: impl Fn() -> ApiError,
) -> ApiResult {
    job_view(state, wait, || {
        let jobs = lock(jobs);
        let job = jobs.get(key).ok_or_else(&missing)?;
        Ok((job.status().is_running(), job.json()))
    })
    .await
}

/// Asks job `key` of `jobs` to stop: 202 with the job as it is; 404 with
/// `missing` when there is no such job.
pub(crate) fn stop_job<K: Ord, V: Job>(
    jobs: &Mutex<BTreeMap<K, V>>,
    key: &K,
    missing: impl Fn() -> ApiError,
) -> ApiResult {
    let jobs = lock(jobs);
    let job = jobs.get(key).ok_or_else(missing)?;
    job.stop();
    accepted(job.json())
}

/// Answers with `view` of a job at once, or with `?wait=N` once it is no
/// longer running (or after N seconds, at most 60).
async fn job_view(state: &State, wait: WaitParam, view: impl Fn() -> Result<(bool, Value), ApiError>) -> ApiResult {
    let Query(query) = wait.map_err(|rejection| ApiError::bad_request(rejection.body_text()))?;
    let limit = match query.wait {
        None => 0,
        Some(seconds) if seconds <= 60 => seconds,
        Some(_) => return Err(ApiError::bad_request("wait is at most 60 seconds")),
    };
    let mut ended = state.ended.subscribe();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(limit);
    loop {
        let (running, value) = view()?;
        if !running || limit == 0 {
            return ok(value);
        }
        if tokio::time::timeout_at(deadline, ended.changed()).await.is_err() {
            return ok(value);
        }
    }
}

/// A new job id: the time and a random suffix, sortable by start.
pub(crate) fn job_id(kind: &str) -> String {
    let now = chrono::Utc::now();
    format!("{kind}-{}-{:08x}", now.format("%Y%m%d-%H%M%S"), rand::random::<u32>())
}

/// How many jobs of a kind may run at once, for the 429 that says so.
pub(crate) struct JobLimit {
    /// The most that may run.
    pub most: usize,
    /// `replay`, `seed`.
    pub kind: &'static str,
    /// The flag of serve that sets it.
    pub flag: &'static str,
}

impl JobLimit {
    /// 429 when `jobs` runs as many as allowed.
    pub fn check<K, V: Job>(&self, jobs: &BTreeMap<K, V>) -> Result<(), ApiError> {
        if running(jobs) >= self.most {
            return Err(ApiError::too_many(self.most, self.kind, self.flag));
        }
        Ok(())
    }

    /// Adds a job under `limit`, counted again with the insert so that jobs
    /// started at the same moment cannot all pass.
    pub fn admit<K: Ord + Clone, V: Job>(&self, jobs: &Mutex<BTreeMap<K, V>>, key: K, job: V) -> Result<(), ApiError> {
        let mut jobs = lock(jobs);
        self.check(&jobs)?;
        insert(&mut jobs, key, job);
        Ok(())
    }
}
