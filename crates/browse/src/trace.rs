//! One trace whole: its spans with what a waterfall shows.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tape_session::{SessionId, SessionStore, Timestamp};

use crate::Error;

/// One trace of a session, optionally only the records received in
/// `[from, until)` (which the UI knows from the list it came from; without
/// a window every trace blob is read).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TraceQuery {
    /// The session.
    pub session: SessionId,
    /// The trace id, 32 hex digits.
    pub trace_id: String,
    /// Records received at or after this.
    #[serde(default)]
    pub from: Option<Timestamp>,
    /// Records received before this.
    #[serde(default)]
    pub until: Option<Timestamp>,
}

impl TraceQuery {
    /// Checks the trace id (32 hex digits, not all zero) and the window.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the field.
    pub fn validate(&self) -> Result<(), Error> {
        todo!("browse: validate a trace query")
    }
}

/// A span's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpanStatus {
    /// `unset`, `ok` or `error`.
    pub code: String,
    /// The status message, possibly empty.
    pub message: String,
}

/// An event of a span.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpanEvent {
    /// Unix nanoseconds as a decimal string.
    pub time_unix_nano: String,
    /// Its name.
    pub name: String,
    /// Its attributes, key to value (OTLP/JSON `AnyValue` made plain: a
    /// string, number, boolean, array or object).
    pub attributes: serde_json::Map<String, Value>,
}

/// A link of a span.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Link {
    /// The linked trace, hex.
    pub trace_id: String,
    /// The linked span, hex.
    pub span_id: String,
    /// Its attributes.
    pub attributes: serde_json::Map<String, Value>,
}

/// One span as the waterfall shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpanView {
    /// 16 hex digits.
    pub span_id: String,
    /// 16 hex digits, or `None` for a root span.
    pub parent_span_id: Option<String>,
    /// The operation.
    pub name: String,
    /// `internal`, `server`, `client`, `producer`, `consumer` or
    /// `unspecified`.
    pub kind: String,
    /// `service.name` of its resource.
    pub service: String,
    /// Its instrumentation scope's name.
    pub scope: String,
    /// Unix nanoseconds as a decimal string.
    pub start_time_unix_nano: String,
    /// Unix nanoseconds as a decimal string.
    pub end_time_unix_nano: String,
    /// End minus start, in nanoseconds (0 when the end is before the start).
    pub duration_nanos: u64,
    /// Its status.
    pub status: SpanStatus,
    /// Its attributes.
    pub attributes: serde_json::Map<String, Value>,
    /// Its resource's attributes.
    pub resource: serde_json::Map<String, Value>,
    /// Its events.
    pub events: Vec<SpanEvent>,
    /// Its links.
    pub links: Vec<Link>,
    /// When its record was received.
    pub receive_time: Timestamp,
}

/// The answer to a [`TraceQuery`]: spans by start time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Trace {
    /// The session.
    pub session_id: SessionId,
    /// The trace id, hex.
    pub trace_id: String,
    /// Its spans, by start time.
    pub spans: Vec<SpanView>,
}

/// One trace of a session.
///
/// # Errors
/// An invalid query, an active session, no span of the trace, or a store
/// error.
pub async fn trace(store: &dyn SessionStore, query: &TraceQuery) -> Result<Trace, Error> {
    let _ = (store, query);
    todo!("browse: one trace")
}
