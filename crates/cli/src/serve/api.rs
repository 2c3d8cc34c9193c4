//! The control API's routes and handlers. Errors are JSON
//! `{"error": {"status": 404, "message": "..."}}` with the status code of
//! the problem; input errors are 4xx, never 500.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State as Extract};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::FutureExt;
use serde::Deserialize;
use serde_json::{Value, json};
use tape_session::{Error as StoreError, SessionId, SessionStatus, SessionType, list_sessions};

use super::{CaptureJob, JobState, ReplayJob, SeedJob, State, lock, options, trim};

/// An API error: a status and a message for people.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into() }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    fn conflict(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::CONFLICT, message)
    }

    /// As many jobs of a kind run as `serve` allows: 429, to be tried again
    /// once one has ended.
    fn too_many(running: usize, kind: &str, flag: &str) -> Self {
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

    /// A store error: unknown sessions are 404, invalid ids 400, the rest
    /// 500 (the store, not the request, failed).
    fn store(error: &StoreError) -> Self {
        let message = format!("{:#}", anyhow::anyhow!(error.to_string()));
        match error {
            StoreError::NotFound(_) => ApiError::not_found(message),
            StoreError::InvalidSessionId(_) | StoreError::InvalidBlobKey(_) => ApiError::bad_request(message),
            StoreError::AlreadyExists(_) | StoreError::Symlink { .. } => ApiError::conflict(message),
            _ => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message),
        }
    }

    /// An error of a command's own code: a missing session is 404, bad
    /// options 400.
    fn command(error: &anyhow::Error) -> Self {
        if let Some(store) = error.chain().find_map(|cause| cause.downcast_ref::<StoreError>()) {
            return ApiError::store(store);
        }
        ApiError::bad_request(format!("{error:#}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "status": self.status.as_u16(), "message": self.message } });
        (self.status, axum::Json(body)).into_response()
    }
}

type ApiResult = Result<Response, ApiError>;

#[allow(clippy::unnecessary_wraps)] // every handler ends with it
fn ok(value: impl serde::Serialize) -> ApiResult {
    Ok(axum::Json(value).into_response())
}

#[allow(clippy::unnecessary_wraps)] // every handler ends with it
fn accepted(value: impl serde::Serialize) -> ApiResult {
    Ok((StatusCode::ACCEPTED, axum::Json(value)).into_response())
}

/// The routes, behind the token check and the body limit.
pub fn router(state: Arc<State>, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/sessions", get(list))
        .route("/api/v1/sessions/{id}", get(show).delete(delete))
        .route("/api/v1/sessions/{id}/verify", post(verify))
        .route("/api/v1/sessions/{id}/annotations", get(annotations).post(add_annotation))
        .route("/api/v1/sessions/{id}/annotations/push", post(push_annotations))
        .route("/api/v1/captures", get(captures).post(start_capture))
        .route("/api/v1/captures/{id}", get(capture))
        .route("/api/v1/captures/{id}/stop", post(stop_capture))
        .route("/api/v1/replays", get(replays).post(start_replay))
        .route("/api/v1/replays/{id}", get(replay))
        .route("/api/v1/replays/{id}/stop", post(stop_replay))
        .route("/api/v1/seeds", get(seeds).post(start_seed))
        .route("/api/v1/seeds/{id}", get(seed))
        .route("/api/v1/seeds/{id}/stop", post(stop_seed))
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
fn body(bytes: Result<Bytes, BytesRejection>) -> Result<Value, ApiError> {
    let bytes = bytes.map_err(|rejection| ApiError::new(rejection.status(), rejection.body_text()))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&bytes)
        .map_err(|error| ApiError::bad_request(format!("the request body is not JSON: {error}")))
}

fn session_id(text: &str) -> Result<SessionId, ApiError> {
    text.parse().map_err(|error| ApiError::bad_request(format!("{error}")))
}

async fn healthz() -> ApiResult {
    ok(json!({ "status": "ok" }))
}

async fn readyz(Extract(state): Extract<Arc<State>>) -> ApiResult {
    if state.shutting_down.is_cancelled() {
        return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting down"));
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(rename = "type")]
    session_type: Option<String>,
    status: Option<String>,
    limit: Option<usize>,
    offset: Option<usize>,
}

async fn list(
    Extract(state): Extract<Arc<State>>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let Query(query) = query.map_err(|rejection| ApiError::bad_request(rejection.body_text()))?;
    let session_type = match &query.session_type {
        None => None,
        Some(text) => Some(
            text.parse::<SessionType>()
                .map_err(|_| ApiError::bad_request(format!("type {text:?} is not one of seed, capture, training")))?,
        ),
    };
    let status =
        match &query.status {
            None => None,
            Some(text) => Some(serde_json::from_value::<SessionStatus>(Value::String(text.clone())).map_err(|_| {
                ApiError::bad_request(format!("status {text:?} is not one of active, completed, failed"))
            })?),
        };
    let limit = query.limit.unwrap_or(100);
    if limit == 0 || limit > 1000 {
        return Err(ApiError::bad_request("limit must be 1 to 1000"));
    }
    let offset = query.offset.unwrap_or(0);
    let listing = list_sessions(state.store.as_ref(), session_type).await.map_err(|error| ApiError::store(&error))?;
    let matching: Vec<_> =
        listing.sessions.into_iter().filter(|session| status.is_none_or(|status| session.status == status)).collect();
    let total = matching.len();
    let page: Vec<Value> = matching
        .into_iter()
        .rev()
        .skip(offset)
        .take(limit)
        .map(|session| {
            json!({
                "sessionId": session.session_id,
                "sessionType": session.session_type,
                "status": session.status,
                "startTime": session.start_time,
                "createdAt": session.created(),
                "endTime": session.end_time,
                "description": session.description,
                "items": session.item_counts(),
                "requests": session.request_counts,
                "totalSizeBytes": session.total_size_bytes,
            })
        })
        .collect();
    ok(json!({ "sessions": page, "total": total, "limit": limit, "offset": offset }))
}

async fn show(Extract(state): Extract<Arc<State>>, Path(id): Path<String>) -> ApiResult {
    let id = session_id(&id)?;
    let metadata = state.store.read_metadata(&id).await.map_err(|error| ApiError::store(&error))?;
    ok(metadata)
}

async fn delete(Extract(state): Extract<Arc<State>>, Path(id): Path<String>) -> ApiResult {
    let id = session_id(&id)?;
    if state.busy_sessions().contains(&id) {
        return Err(ApiError::conflict(format!("session {id} is being captured or replayed; stop that first")));
    }
    let metadata = state.store.read_metadata(&id).await.map_err(|error| ApiError::store(&error))?;
    if metadata.status == SessionStatus::Active {
        return Err(ApiError::conflict(format!("session {id} is active (being written); it cannot be deleted")));
    }
    state.store.delete_session(&id).await.map_err(|error| ApiError::store(&error))?;
    tracing::info!(session = %id, "Deleted session {id} through the API.");
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn verify(Extract(state): Extract<Arc<State>>, Path(id): Path<String>) -> ApiResult {
    let id = session_id(&id)?;
    let report = tape_seed::verify(state.store.as_ref(), &id).await.map_err(|error| ApiError::store(&error))?;
    ok(report)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AnnotationsQuery {
    source: Option<String>,
}

async fn annotations(
    Extract(state): Extract<Arc<State>>,
    Path(id): Path<String>,
    query: Result<Query<AnnotationsQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let Query(query) = query.map_err(|rejection| ApiError::bad_request(rejection.body_text()))?;
    let id = session_id(&id)?;
    state.store.read_metadata(&id).await.map_err(|error| ApiError::store(&error))?;
    match query.source.as_deref().unwrap_or("session") {
        "session" => {
            let annotations = tape_annotations::session_annotations(state.store.as_ref(), &id)
                .await
                .map_err(|error| ApiError::command(&error.into()))?;
            ok(annotations)
        }
        "clickhouse" => {
            let config = clickhouse_config()?;
            let sink = tape_annotations::ClickHouseSink::connect(config)
                .await
                .map_err(|error| ApiError::new(StatusCode::BAD_GATEWAY, error.to_string()))?;
            let annotations =
                sink.list(&id).await.map_err(|error| ApiError::new(StatusCode::BAD_GATEWAY, error.to_string()))?;
            ok(annotations)
        }
        other => Err(ApiError::bad_request(format!("source {other:?} is not session or clickhouse"))),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AddAnnotation {
    key: String,
    from: String,
    until: String,
    value: Option<Value>,
    #[serde(rename = "type")]
    annotation_type: Option<String>,
    description: Option<String>,
    created_by: Option<String>,
}

async fn add_annotation(
    Extract(state): Extract<Arc<State>>,
    Path(id): Path<String>,
    bytes: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let id = session_id(&id)?;
    let request: AddAnnotation = serde_json::from_value(body(bytes)?)
        .map_err(|error| ApiError::bad_request(format!("invalid annotation: {error}")))?;
    let bound = |flag: &str, text: &str| {
        text.parse::<tape_session::TimeBound>().map_err(|error| ApiError::bad_request(format!("{flag}: {error}")))
    };
    let request = crate::commands::annotations::AddRequest {
        key: request.key,
        from: bound("from", &request.from)?,
        until: bound("until", &request.until)?,
        value: request.value.map(|value| value.to_string()),
        annotation_type: request.annotation_type,
        description: request.description,
        created_by: request.created_by.unwrap_or_else(|| "otlp-tape serve".to_owned()),
    };
    let added = crate::commands::annotations::add_annotation(
        state.store.as_ref(),
        &id,
        request,
        &crate::cli::ClickHouseArgs::default(),
    )
    .await
    .map_err(|error| ApiError::command(&error))?;
    Ok((StatusCode::CREATED, axum::Json(added)).into_response())
}

async fn push_annotations(Extract(state): Extract<Arc<State>>, Path(id): Path<String>) -> ApiResult {
    let id = session_id(&id)?;
    state.store.read_metadata(&id).await.map_err(|error| ApiError::store(&error))?;
    let config = clickhouse_config()?;
    let annotations = tape_annotations::session_annotations(state.store.as_ref(), &id)
        .await
        .map_err(|error| ApiError::command(&error.into()))?;
    let (table, outcome) = tape_annotations::push(config, &id, &annotations)
        .await
        .map_err(|error| ApiError::new(StatusCode::BAD_GATEWAY, format!("{error:#}")))?;
    ok(
        json!({ "sessionId": id, "table": table, "inserted": outcome.inserted, "alreadyPresent": outcome.already_present }),
    )
}

/// ClickHouse as `serve` was started with (`CLICKHOUSE_*`), or 409.
fn clickhouse_config() -> Result<tape_annotations::ClickHouseConfig, ApiError> {
    crate::clickhouse::config(&crate::cli::ClickHouseArgs::default()).ok_or_else(|| {
        ApiError::conflict(
            "no ClickHouse is configured: start serve with CLICKHOUSE_URL (and CLICKHOUSE_USER, ...) set",
        )
    })
}

fn capture_json(job: &CaptureJob) -> Value {
    let stats = job.live.as_ref().map(|(_, stats)| stats.snapshot()).or(job.stats);
    json!({
        "id": job.session_id,
        "sessionId": job.session_id,
        "state": job.state,
        "startedAt": job.started_at,
        "endedAt": job.ended_at,
        "counts": stats,
        "session": job.session,
        "error": job.error,
    })
}

async fn captures(Extract(state): Extract<Arc<State>>) -> ApiResult {
    let captures = lock(&state.captures);
    let mut jobs: Vec<&CaptureJob> = captures.values().collect();
    jobs.sort_by(|a, b| b.started_at.cmp(&a.started_at).then_with(|| b.session_id.cmp(&a.session_id)));
    let captures: Vec<Value> = jobs.into_iter().map(capture_json).collect();
    ok(json!({ "captures": captures }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WaitQuery {
    /// Seconds to wait for the job to end before answering, at most 60.
    wait: Option<u64>,
}

type WaitParam = Result<Query<WaitQuery>, axum::extract::rejection::QueryRejection>;

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

async fn capture(Extract(state): Extract<Arc<State>>, Path(id): Path<String>, wait: WaitParam) -> ApiResult {
    let id = session_id(&id)?;
    job_view(&state, wait, || {
        let captures = lock(&state.captures);
        let job = captures.get(&id).ok_or_else(|| ApiError::not_found(format!("no capture of session {id}")))?;
        Ok((job.state == JobState::Running, capture_json(job)))
    })
    .await
}

async fn start_capture(Extract(state): Extract<Arc<State>>, bytes: Result<Bytes, BytesRejection>) -> ApiResult {
    if state.shutting_down.is_cancelled() {
        return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting down"));
    }
    let args = options::capture(&body(bytes)?).map_err(|error| ApiError::bad_request(error.to_string()))?;
    let recorder = crate::commands::capture::recorder_config(&args)
        .map_err(|error| ApiError::bad_request(format!("{error:#}")))?;
    let now = tape_capture::now();
    let id = args.session_id.clone().unwrap_or_else(|| SessionId::generate("capture", now, rand::random()));
    if lock(&state.captures).get(&id).is_some() {
        return Err(ApiError::conflict(format!("a capture of session {id} exists already")));
    }
    // The same lock as `capture` takes: no other process captures this id,
    // and retention leaves it alone, until the session is finished.
    let capture_lock = match crate::lock::try_lock(&state.spool_dir, &id) {
        Ok(Some(held)) => held,
        Ok(None) => {
            return Err(ApiError::conflict(format!("session {id} is being captured by another running otlp-tape")));
        }
        Err(error) => return Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("{error:#}"))),
    };
    let mut metadata = crate::commands::capture::capture_metadata(&args, id.clone(), now);
    // The addresses are serve's, not the capture command's defaults.
    for (key, addr) in [("grpc", state.receivers.grpc_addr()), ("http", state.receivers.http_addr())] {
        metadata.parameters.insert(key.to_owned(), addr.map_or(Value::Null, |addr| Value::String(addr.to_string())));
    }
    let live =
        state.receivers.attach(Arc::clone(&state.store), metadata, recorder).await.map_err(|error| match error {
            tape_capture::AttachError::Busy { session } => ApiError::conflict(format!(
                "session {session} is being captured; stop it before starting another capture"
            )),
            tape_capture::AttachError::Session(error) => ApiError::store(&error),
            tape_capture::AttachError::ShutDown => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting down"),
        })?;
    let job = CaptureJob {
        session_id: id.clone(),
        state: JobState::Running,
        started_at: now,
        ended_at: None,
        live: Some((live.stop_handle(), Arc::clone(live.stats()))),
        stats: None,
        session: None,
        error: None,
    };
    let body = capture_json(&job);
    {
        let mut captures = lock(&state.captures);
        captures.insert(id.clone(), job);
        trim(&mut captures, |job| job.state == JobState::Running, |job| job.started_at);
    }
    let waiter = Arc::clone(&state);
    state.capture_tasks.spawn(async move {
        let outcome = live.wait().await;
        drop(capture_lock);
        let mut captures = lock(&waiter.captures);
        if let Some(job) = captures.get_mut(&id) {
            job.ended_at = Some(tape_capture::now());
            if let Some((_, stats)) = job.live.take() {
                job.stats = Some(stats.snapshot());
            }
            match outcome {
                Ok(outcome) => {
                    job.state = JobState::Completed;
                    job.stats = Some(outcome.stats);
                    job.session = serde_json::to_value(&outcome.recording.metadata).ok();
                }
                Err(error) => {
                    job.state = JobState::Failed;
                    job.error = Some(error.to_string());
                }
            }
        }
        drop(captures);
        waiter.job_ended();
    });
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

async fn stop_capture(Extract(state): Extract<Arc<State>>, Path(id): Path<String>) -> ApiResult {
    let id = session_id(&id)?;
    let captures = lock(&state.captures);
    let job = captures.get(&id).ok_or_else(|| ApiError::not_found(format!("no capture of session {id}")))?;
    if let Some((stop, _)) = &job.live {
        stop.stop();
    }
    accepted(capture_json(job))
}

fn replay_json(job: &ReplayJob) -> Value {
    json!({
        "id": job.id,
        "sessionId": job.session_id,
        "state": job.state,
        "startedAt": job.started_at,
        "endedAt": job.ended_at,
        "progress": job.progress.snapshot(),
        "report": job.report,
        "reportFile": job.report_file,
        "error": job.error,
    })
}

async fn replays(Extract(state): Extract<Arc<State>>) -> ApiResult {
    let replays: Vec<Value> = lock(&state.replays).values().rev().map(replay_json).collect();
    ok(json!({ "replays": replays }))
}

async fn replay(Extract(state): Extract<Arc<State>>, Path(id): Path<String>, wait: WaitParam) -> ApiResult {
    job_view(&state, wait, || {
        let replays = lock(&state.replays);
        let job = replays.get(&id).ok_or_else(|| ApiError::not_found(format!("no replay {id:?}")))?;
        Ok((job.state == JobState::Running, replay_json(job)))
    })
    .await
}

async fn stop_replay(Extract(state): Extract<Arc<State>>, Path(id): Path<String>) -> ApiResult {
    let replays = lock(&state.replays);
    let job = replays.get(&id).ok_or_else(|| ApiError::not_found(format!("no replay {id:?}")))?;
    job.stop.cancel();
    accepted(replay_json(job))
}

/// A new job id: the time and a random suffix, sortable by start.
fn job_id(kind: &str) -> String {
    let now = chrono::Utc::now();
    format!("{kind}-{}-{:08x}", now.format("%Y%m%d-%H%M%S"), rand::random::<u32>())
}

/// An error of a replay that cannot start: a store's error keeps its
/// status (a missing session is 404), bad options are 400.
fn replay_error(error: tape_replay::Error) -> ApiError {
    match error.store_error() {
        Some(store) => ApiError::store(store),
        None => ApiError::bad_request(format!("{:#}", anyhow::Error::new(error))),
    }
}

async fn start_replay(Extract(state): Extract<Arc<State>>, bytes: Result<Bytes, BytesRejection>) -> ApiResult {
    if state.shutting_down.is_cancelled() {
        return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting down"));
    }
    let args = options::replay(&body(bytes)?).map_err(|error| ApiError::bad_request(error.to_string()))?;
    let limit = state.limits.max_concurrent_replays;
    let running = |replays: &std::collections::BTreeMap<String, ReplayJob>| {
        replays.values().filter(|job| job.state == JobState::Running).count()
    };
    if running(&lock(&state.replays)) >= limit {
        return Err(ApiError::too_many(limit, "replay", "--max-concurrent-replays"));
    }
    let env = |name: &str| std::env::var(name).ok();
    let config = args.config().validate(env).map_err(replay_error)?;
    if let tape_replay::SessionChoice::Id(id) = &config.session {
        state.store.read_metadata(id).await.map_err(|error| ApiError::store(&error))?;
    }
    let run = tape_replay::RunOptions { content_hash: true, ..tape_replay::RunOptions::default() };
    let prepared = tape_replay::prepare(state.store.as_ref(), config, run, env).await.map_err(replay_error)?;
    for signal in tape_otlp::Signal::ALL {
        super::limits::check_target(prepared.targets().exporter(signal).endpoint(), &state.limits.allowed_targets)
            .map_err(|message| ApiError::new(StatusCode::FORBIDDEN, message))?;
    }
    let ready = match prepared.start().map_err(replay_error)? {
        tape_replay::Start::Ready(ready) => ready,
        // Only a resume finds a replay complete, and the API does not resume.
        tape_replay::Start::AlreadyComplete(_) => {
            return Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the replay is already complete"));
        }
    };
    let id = job_id("replay");
    let progress = ready.progress();
    let stop = tokio_util::sync::CancellationToken::new();
    let job = ReplayJob {
        id: id.clone(),
        session_id: ready.prepared().session_id().clone(),
        state: JobState::Running,
        started_at: tape_capture::now(),
        started: std::time::Instant::now(),
        ended_at: None,
        progress: Arc::clone(&progress),
        stop: stop.clone(),
        report: None,
        report_file: None,
        error: None,
    };
    let body = replay_json(&job);
    {
        let mut replays = lock(&state.replays);
        // Counted again with the insert, so that replays started at the
        // same moment cannot all pass.
        if running(&replays) >= limit {
            return Err(ApiError::too_many(limit, "replay", "--max-concurrent-replays"));
        }
        replays.insert(id.clone(), job);
        trim(&mut replays, |job| job.state == JobState::Running, |job| job.started_at);
    }
    let runner = Arc::clone(&state);
    state.tasks.spawn(async move {
        let finished = ready.run(Arc::clone(&runner.store), &stop).await;
        let report = serde_json::to_value(&finished.report).unwrap_or(Value::Null);
        let path = runner.reports_dir.join(format!("{id}.json"));
        let written = std::fs::create_dir_all(&runner.reports_dir)
            .and_then(|()| serde_json::to_vec_pretty(&report).map_err(std::io::Error::other))
            .and_then(|json| tape_replay::write_atomically(&path, &json));
        let mut replays = lock(&runner.replays);
        lock(&runner.replay_totals).push(&finished.outcome.progress);
        if let Some(job) = replays.get_mut(&id) {
            job.ended_at = Some(tape_capture::now());
            job.state = match (&finished.failure, finished.reason()) {
                (Some(_), _) => JobState::Failed,
                (None, tape_replay::EndReason::Stopped) => JobState::Stopped,
                (None, _) => JobState::Completed,
            };
            job.error = finished.failure.as_ref().map(tape_replay::Failure::full);
            job.report = Some(report);
            match written {
                Ok(()) => job.report_file = Some(path),
                Err(error) => {
                    tracing::error!("Cannot write the report {}: {error}", path.display());
                }
            }
        }
        drop(replays);
        runner.job_ended();
    });
    accepted(body)
}

async fn stop_seed(Extract(state): Extract<Arc<State>>, Path(id): Path<String>) -> ApiResult {
    let seeds = lock(&state.seeds);
    let job = seeds.get(&id).ok_or_else(|| ApiError::not_found(format!("no seed {id:?}")))?;
    job.stop.cancel();
    accepted(seed_json(job))
}

fn seed_json(job: &SeedJob) -> Value {
    json!({
        "id": job.id,
        "state": job.state,
        "startedAt": job.started_at,
        "endedAt": job.ended_at,
        "summary": job.summary,
        "error": job.error,
    })
}

async fn seeds(Extract(state): Extract<Arc<State>>) -> ApiResult {
    let seeds: Vec<Value> = lock(&state.seeds).values().rev().map(seed_json).collect();
    ok(json!({ "seeds": seeds }))
}

async fn seed(Extract(state): Extract<Arc<State>>, Path(id): Path<String>, wait: WaitParam) -> ApiResult {
    job_view(&state, wait, || {
        let seeds = lock(&state.seeds);
        let job = seeds.get(&id).ok_or_else(|| ApiError::not_found(format!("no seed {id:?}")))?;
        Ok((job.state == JobState::Running, seed_json(job)))
    })
    .await
}

async fn start_seed(Extract(state): Extract<Arc<State>>, bytes: Result<Bytes, BytesRejection>) -> ApiResult {
    if state.shutting_down.is_cancelled() {
        return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting down"));
    }
    let args = options::seed(&body(bytes)?).map_err(|error| ApiError::bad_request(error.to_string()))?;
    // The API reads no files of this host: built-in patterns only.
    if tape_seed_generator::builtin_pattern(&args.pattern).is_none() {
        return Err(ApiError::bad_request(format!(
            "unknown pattern {:?}: the API takes a built-in pattern's name (GET /api/v1/patterns lists them), not a file",
            args.pattern
        )));
    }
    // Bad parameters are refused now, not in the job.
    let seed = crate::commands::seed::config(&args)
        .validate()
        .map_err(|error| ApiError::command(&anyhow::Error::new(error)))?;
    let traces = seed.traces();
    if traces > state.limits.max_seed_traces {
        return Err(ApiError::bad_request(format!(
            "this seed would generate {traces} traces (duration × rate), more than the {} this serve allows \
             (--max-seed-traces); lower the duration or the rate",
            state.limits.max_seed_traces
        )));
    }
    let limit = state.limits.max_concurrent_seeds;
    let running = |seeds: &std::collections::BTreeMap<String, SeedJob>| {
        seeds.values().filter(|job| job.state == JobState::Running).count()
    };
    if running(&lock(&state.seeds)) >= limit {
        return Err(ApiError::too_many(limit, "seed", "--max-concurrent-seeds"));
    }
    if let Some(id) = &args.session_id {
        match state.store.read_metadata(id).await {
            Ok(_) => return Err(ApiError::conflict(format!("session {id} exists already"))),
            Err(StoreError::NotFound(_)) => {}
            Err(error) => return Err(ApiError::store(&error)),
        }
    }
    let id = job_id("seed");
    let stop = tokio_util::sync::CancellationToken::new();
    let job = SeedJob {
        id: id.clone(),
        state: JobState::Running,
        stop: stop.clone(),
        started_at: tape_capture::now(),
        ended_at: None,
        summary: None,
        error: None,
    };
    let body = seed_json(&job);
    {
        let mut seeds = lock(&state.seeds);
        if running(&seeds) >= limit {
            return Err(ApiError::too_many(limit, "seed", "--max-concurrent-seeds"));
        }
        seeds.insert(id.clone(), job);
        trim(&mut seeds, |job| job.state == JobState::Running, |job| job.started_at);
    }
    // CLICKHOUSE_URL and the other variables, as `seed` reads them.
    let clickhouse = crate::clickhouse::config(&args.clickhouse);
    let runner = Arc::clone(&state);
    state.tasks.spawn(async move {
        let generated =
            std::panic::AssertUnwindSafe(tape_seed::run(runner.store.as_ref(), &seed, None, clickhouse, &stop))
                .catch_unwind()
                .await;
        let mut seeds = lock(&runner.seeds);
        if let Some(job) = seeds.get_mut(&id) {
            job.ended_at = Some(tape_capture::now());
            match generated {
                Ok(Ok(summary)) => {
                    for warning in &summary.warnings {
                        crate::output::note(warning);
                    }
                    job.state = JobState::Completed;
                    job.summary = serde_json::to_value(&summary).ok();
                }
                Ok(Err(error)) if error.is_stopped() => job.state = JobState::Stopped,
                Ok(Err(error)) => {
                    job.state = JobState::Failed;
                    job.error = Some(tape_session::error_chain(&error));
                }
                Err(_) => {
                    job.state = JobState::Failed;
                    job.error = Some("the seed task panicked".to_owned());
                }
            }
        }
        drop(seeds);
        runner.job_ended();
    });
    accepted(body)
}

async fn patterns() -> ApiResult {
    let patterns = tape_seed::patterns::summaries().map_err(|error| ApiError::command(&anyhow::Error::new(error)))?;
    ok(json!({ "patterns": patterns }))
}

async fn pattern(Path(name): Path<String>) -> ApiResult {
    let pattern = tape_seed::patterns::built_in(&name)
        .ok_or_else(|| ApiError::not_found(format!("no built-in pattern {name:?}; GET /api/v1/patterns lists them")))?;
    ok(pattern)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PruneRequest {
    older_than: Option<String>,
    keep_last: Option<usize>,
    max_total_size: Option<String>,
    #[serde(default)]
    types: Vec<String>,
    #[serde(default)]
    dry_run: bool,
}

async fn prune(Extract(state): Extract<Arc<State>>, bytes: Result<Bytes, BytesRejection>) -> ApiResult {
    let request: PruneRequest = serde_json::from_value(body(bytes)?)
        .map_err(|error| ApiError::bad_request(format!("invalid retention policy: {error}")))?;
    let mut types = Vec::new();
    for name in &request.types {
        types.push(
            name.parse::<SessionType>()
                .map_err(|_| ApiError::bad_request(format!("type {name:?} is not one of seed, capture, training")))?,
        );
    }
    let policy = super::policy_from_flags(
        request.older_than.as_deref(),
        request.keep_last,
        request.max_total_size.as_deref(),
        &types,
    )
    .map_err(|error| ApiError::bad_request(format!("{error:#}")))?
    .ok_or_else(|| ApiError::bad_request("a retention policy needs olderThan, keepLast or maxTotalSize"))?;
    let protected = state.busy_sessions();
    let report =
        crate::retention::prune(state.store.as_ref(), &policy, tape_capture::now(), &protected, request.dry_run)
            .await
            .map_err(|error| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("{error:#}")))?;
    ok(report)
}
