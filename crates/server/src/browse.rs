//! What the web UI reads of a session besides its metadata: its timeline,
//! the traces of a window, one trace. Answers are 404 for an unknown
//! session or trace, 400 for a bad id, window or query parameter, 409 for
//! a session still being recorded.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State as Extract};
use tape_browse::{Error as BrowseError, TraceQuery, TracesQuery};
use tape_session::{SessionStatus, Timestamp};

use crate::api::{ApiError, ApiResult, ok, session_id};
use crate::state::State;

/// The query string as its pairs, in order.
type Pairs = Result<Query<Vec<(String, String)>>, QueryRejection>;

/// `GET /api/v1/sessions/{id}/timeline`.
pub(crate) async fn timeline(Extract(state): Extract<Arc<State>>, Path(id): Path<String>) -> ApiResult {
    let id = session_id(&id)?;
    let metadata = state.store.read_metadata(&id).await.map_err(|error| ApiError::store(&error))?;
    if metadata.status == SessionStatus::Active {
        return Err(answer(&BrowseError::Active(id)));
    }
    let timeline =
        tape_session::timeline_of(state.store.as_ref(), &metadata).await.map_err(|error| ApiError::store(&error))?;
    ok(timeline)
}

/// `GET /api/v1/sessions/{id}/traces?from=&until=&limit=&service=&errorsOnly=`.
pub(crate) async fn traces(Extract(state): Extract<Arc<State>>, Path(id): Path<String>, query: Pairs) -> ApiResult {
    let session = session_id(&id)?;
    let mut wanted = TracesQuery {
        session,
        from: None,
        until: None,
        limit: tape_browse::DEFAULT_LIMIT,
        service: None,
        errors_only: false,
    };
    let mut seen = Vec::new();
    for (name, value) in pairs(query)? {
        once(&mut seen, &name)?;
        match name.as_str() {
            "from" => wanted.from = Some(time(&name, &value)?),
            "until" => wanted.until = Some(time(&name, &value)?),
            "limit" => {
                wanted.limit = value.parse().map_err(|_| {
                    ApiError::bad_request(format!(
                        "limit {value:?} is not a number from 1 to {}",
                        tape_browse::MAX_TRACES
                    ))
                })?;
            }
            "service" => wanted.service = Some(value),
            "errorsOnly" => {
                wanted.errors_only = value
                    .parse()
                    .map_err(|_| ApiError::bad_request(format!("errorsOnly {value:?} is not true or false")))?;
            }
            _ => return Err(unknown(&name, "from, until, limit, service, errorsOnly")),
        }
    }
    let list = tape_browse::traces(state.store.as_ref(), &wanted).await.map_err(|error| answer(&error))?;
    ok(list)
}

/// `GET /api/v1/sessions/{id}/traces/{traceId}?from=&until=`.
pub(crate) async fn trace(
    Extract(state): Extract<Arc<State>>,
    Path((id, trace_id)): Path<(String, String)>,
    query: Pairs,
) -> ApiResult {
    let session = session_id(&id)?;
    let mut wanted = TraceQuery { session, trace_id, from: None, until: None };
    let mut seen = Vec::new();
    for (name, value) in pairs(query)? {
        once(&mut seen, &name)?;
        match name.as_str() {
            "from" => wanted.from = Some(time(&name, &value)?),
            "until" => wanted.until = Some(time(&name, &value)?),
            _ => return Err(unknown(&name, "from, until")),
        }
    }
    let trace = tape_browse::trace(state.store.as_ref(), &wanted).await.map_err(|error| answer(&error))?;
    ok(trace)
}

/// The query string's pairs; one that cannot be decoded is 400.
fn pairs(query: Pairs) -> Result<Vec<(String, String)>, ApiError> {
    query.map(|Query(pairs)| pairs).map_err(|rejection| ApiError::bad_request(rejection.body_text()))
}

/// A parameter given twice is 400.
fn once(seen: &mut Vec<String>, name: &str) -> Result<(), ApiError> {
    if seen.iter().any(|known| known == name) {
        return Err(ApiError::bad_request(format!("query parameter {name} is given more than once")));
    }
    seen.push(name.to_owned());
    Ok(())
}

/// An unknown parameter is 400, naming it and those the endpoint takes.
fn unknown(name: &str, known: &str) -> ApiError {
    ApiError::bad_request(format!("unknown query parameter {name:?}; this endpoint takes {known}"))
}

/// A time parameter in RFC 3339, or 400 naming the parameter.
fn time(name: &str, value: &str) -> Result<Timestamp, ApiError> {
    Timestamp::parse_rfc3339(value).ok_or_else(|| {
        ApiError::bad_request(format!("{name} {value:?} is not an RFC 3339 time, such as 2026-01-01T00:00:00Z"))
    })
}

/// The answer to a browse error: a bad query 400, a session being recorded
/// 409, a missing trace 404, a store error as the store answers it, an
/// undecodable record 500.
fn answer(error: &BrowseError) -> ApiError {
    match error {
        BrowseError::Invalid(_) => ApiError::bad_request(error.to_string()),
        BrowseError::Active(_) => ApiError::conflict(error.to_string()),
        BrowseError::TraceNotFound { .. } => ApiError::not_found(error.to_string()),
        BrowseError::Store(store) => ApiError::store(store),
        BrowseError::Payload { .. } => ApiError::internal(tape_session::error_chain(error)),
    }
}
