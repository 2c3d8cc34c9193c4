//! The traces of a window of receive time: one row per trace.

use serde::{Deserialize, Serialize};
use tape_session::{SessionId, SessionStore, Timestamp};

use crate::Error;

/// The most traces one query lists.
pub const MAX_TRACES: usize = 1000;

fn default_limit() -> usize {
    100
}

/// Which traces to list: those with a span in a record received in
/// `[from, until)`, first received first.
///
/// ```
/// let query: tape_browse::TracesQuery = serde_json::from_value(serde_json::json!({
///     "session": "seed-1",
///     "from": "2026-01-01T00:00:00Z",
///     "until": "2026-01-01T00:01:00Z",
///     "limit": 50,
/// }))
/// .unwrap();
/// assert!(query.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TracesQuery {
    /// The session.
    pub session: SessionId,
    /// Records received at or after this; default: the session's start.
    #[serde(default)]
    pub from: Option<Timestamp>,
    /// Records received before this; default: the session's end.
    #[serde(default)]
    pub until: Option<Timestamp>,
    /// Traces listed at most, 1 to [`MAX_TRACES`]; default 100.
    #[serde(default = "default_limit")]
    pub limit: usize,
    /// Only traces with a span of this service (`service.name`).
    #[serde(default)]
    pub service: Option<String>,
    /// Only traces with a span whose status is an error.
    #[serde(default)]
    pub errors_only: bool,
}

impl TracesQuery {
    /// Checks the limit and that `from` is before `until`.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the field.
    pub fn validate(&self) -> Result<(), Error> {
        todo!("browse: validate a traces query")
    }
}

/// One trace of the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceSummary {
    /// The trace id, 32 hex digits.
    pub trace_id: String,
    /// The service of the root span (the span without a parent), when the
    /// window holds it.
    pub root_service: Option<String>,
    /// The name (operation) of the root span, when the window holds it.
    pub root_name: Option<String>,
    /// Spans of the trace in the window.
    pub spans: u64,
    /// The services of its spans, sorted.
    pub services: Vec<String>,
    /// The earliest span start, Unix nanoseconds as a decimal string (as
    /// OTLP/JSON writes 64-bit times).
    pub start_time_unix_nano: String,
    /// From the earliest span start to the latest span end, in nanoseconds.
    pub duration_nanos: u64,
    /// Spans whose status is an error.
    pub error_spans: u64,
    /// When the first of its records was received.
    pub first_receive: Timestamp,
}

/// The answer to a [`TracesQuery`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceList {
    /// The session.
    pub session_id: SessionId,
    /// The window's start as resolved.
    pub from: Timestamp,
    /// The window's end as resolved.
    pub until: Timestamp,
    /// The traces, first received first.
    pub traces: Vec<TraceSummary>,
    /// Whether more traces matched than `limit`.
    pub truncated: bool,
}

/// The traces of a window of a session.
///
/// # Errors
/// An invalid query, an active session, or a store error.
pub async fn traces(store: &dyn SessionStore, query: &TracesQuery) -> Result<TraceList, Error> {
    let _ = (store, query);
    todo!("browse: list traces")
}
