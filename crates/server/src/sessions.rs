//! The handlers of stored things: sessions (list, show, delete, verify),
//! their annotations, retention, and the built-in patterns.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State as Extract};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};
use tape_session::retention::{RetentionConfig, prune as prune_sessions};
use tape_session::{SessionStatus, SessionType, list_sessions};

use crate::api::{ApiError, ApiResult, body, ok, session_id};
use crate::state::State;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    #[serde(rename = "type")]
    session_type: Option<String>,
    status: Option<String>,
    limit: Option<usize>,
    offset: Option<usize>,
}

pub(crate) async fn list(
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

pub(crate) async fn show(Extract(state): Extract<Arc<State>>, Path(id): Path<String>) -> ApiResult {
    let id = session_id(&id)?;
    let metadata = state.store.read_metadata(&id).await.map_err(|error| ApiError::store(&error))?;
    ok(metadata)
}

pub(crate) async fn delete(Extract(state): Extract<Arc<State>>, Path(id): Path<String>) -> ApiResult {
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

pub(crate) async fn verify(Extract(state): Extract<Arc<State>>, Path(id): Path<String>) -> ApiResult {
    let id = session_id(&id)?;
    let report = tape_seed::verify(state.store.as_ref(), &id).await.map_err(|error| ApiError::store(&error))?;
    ok(report)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AnnotationsQuery {
    source: Option<String>,
}

pub(crate) async fn annotations(
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
                .map_err(|error| ApiError::component(&error))?;
            ok(annotations)
        }
        "clickhouse" => {
            let config = clickhouse_required(&state)?;
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

/// Who adds the annotations of the API, unless the request says.
const CREATED_BY: &str = "otlp-tape serve";

pub(crate) async fn add_annotation(
    Extract(state): Extract<Arc<State>>,
    Path(id): Path<String>,
    bytes: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let id = session_id(&id)?;
    let mut config: tape_annotations::AddAnnotationConfig =
        serde_path_to_error::deserialize(body(bytes)?).map_err(|error| {
            let message = error.inner().to_string();
            match error.path().iter().next() {
                // A range that does not parse names its end, as before.
                Some(serde_path_to_error::Segment::Map { key }) if key == "from" || key == "until" => {
                    ApiError::bad_request(format!("{key}: {message}"))
                }
                _ => ApiError::bad_request(format!("invalid annotation: {message}")),
            }
        })?;
    config.created_by.get_or_insert_with(|| CREATED_BY.to_owned());
    let added = tape_annotations::add_annotation(
        state.store.as_ref(),
        &id,
        config,
        clickhouse_config(&state),
        tape_capture::now(),
    )
    .await
    .map_err(|error| match error.store_error() {
        // A missing session is 404, as the store says it.
        Some(store) => ApiError::store(store),
        None => ApiError::component(&error),
    })?;
    if let Some(warning) = added.clickhouse.as_ref().and_then(|report| report.warning("the annotation", &id)) {
        (state.warn)(&warning);
    }
    Ok((StatusCode::CREATED, axum::Json(added)).into_response())
}

pub(crate) async fn push_annotations(Extract(state): Extract<Arc<State>>, Path(id): Path<String>) -> ApiResult {
    let id = session_id(&id)?;
    state.store.read_metadata(&id).await.map_err(|error| ApiError::store(&error))?;
    let config = clickhouse_required(&state)?;
    let annotations = tape_annotations::session_annotations(state.store.as_ref(), &id)
        .await
        .map_err(|error| ApiError::component(&error))?;
    let (table, outcome) = tape_annotations::push(config, &id, &annotations)
        .await
        .map_err(|error| ApiError::new(StatusCode::BAD_GATEWAY, error.to_string()))?;
    ok(
        json!({ "sessionId": id, "table": table, "inserted": outcome.inserted, "alreadyPresent": outcome.already_present }),
    )
}

/// ClickHouse as `serve`'s environment names it (`CLICKHOUSE_*`), if any.
fn clickhouse_config(state: &State) -> Option<tape_annotations::ClickHouseConfig> {
    tape_annotations::ClickHouseSettings::default().resolve(|name| (state.env)(name))
}

/// ClickHouse as `serve`'s environment names it, or 409.
fn clickhouse_required(state: &State) -> Result<tape_annotations::ClickHouseConfig, ApiError> {
    clickhouse_config(state).ok_or_else(|| {
        ApiError::conflict(
            "no ClickHouse is configured: start serve with CLICKHOUSE_URL (and CLICKHOUSE_USER, ...) set",
        )
    })
}

pub(crate) async fn patterns() -> ApiResult {
    let patterns = tape_seed::patterns::summaries().map_err(|error| ApiError::component(&error))?;
    ok(json!({ "patterns": patterns }))
}

pub(crate) async fn pattern(Path(name): Path<String>) -> ApiResult {
    let pattern = tape_seed::patterns::built_in(&name)
        .ok_or_else(|| ApiError::not_found(format!("no built-in pattern {name:?}; GET /api/v1/patterns lists them")))?;
    ok(pattern)
}

pub(crate) async fn prune(Extract(state): Extract<Arc<State>>, bytes: Result<Bytes, BytesRejection>) -> ApiResult {
    let config: RetentionConfig = serde_json::from_value(body(bytes)?)
        .map_err(|error| ApiError::bad_request(format!("invalid retention policy: {error}")))?;
    let policy = config.validate().map_err(|error| ApiError::bad_request(error.to_string()))?;
    let protected = state.busy_sessions();
    let report = prune_sessions(state.store.as_ref(), &policy, tape_capture::now(), &protected, config.dry_run)
        .await
        .map_err(|error| ApiError::internal(tape_session::error_chain(&error)))?;
    ok(report)
}
