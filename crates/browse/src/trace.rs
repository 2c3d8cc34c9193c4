//! One trace whole: its spans with what a waterfall shows.

use std::ops::ControlFlow;

use opentelemetry_proto::tonic::trace::v1::{Span, span};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tape_session::{SessionId, SessionStore, Timestamp};

use crate::Error;
use crate::read::{extent, metadata, visit_requests, window};
use crate::traces::{check_window, is_error};
use crate::value::{attributes, service_name};

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
        parse_trace_id(&self.trace_id)?;
        check_window(self.from, self.until)
    }
}

/// A trace id of 32 hex digits (either case), not all zero, as bytes.
fn parse_trace_id(text: &str) -> Result<[u8; 16], Error> {
    let invalid = || Error::Invalid(format!("trace id {text:?} is not 32 hex digits (16 bytes, not all zero)"));
    if text.len() != 32 {
        return Err(invalid());
    }
    let mut bytes = [0; 16];
    hex::decode_to_slice(text, &mut bytes).map_err(|_| invalid())?;
    if bytes == [0; 16] {
        return Err(invalid());
    }
    Ok(bytes)
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
    query.validate()?;
    let wanted = parse_trace_id(&query.trace_id)?;
    let metadata = metadata(store, &query.session).await?;
    let window = window(&metadata, query.from, query.until)?;
    let mut spans = Vec::new();
    visit_requests(store, &metadata, window, |receive_time, request| {
        for resource_spans in &request.resource_spans {
            let resource = resource_spans.resource.as_ref().map_or(&[][..], |resource| &resource.attributes[..]);
            for scope_spans in &resource_spans.scope_spans {
                let scope = scope_spans.scope.as_ref().map_or("", |scope| scope.name.as_str());
                for span in scope_spans.spans.iter().filter(|span| span.trace_id == wanted) {
                    spans.push(view(span, resource, scope, receive_time));
                }
            }
        }
        ControlFlow::Continue(())
    })
    .await?;
    if spans.is_empty() {
        let window = if query.from.is_some() || query.until.is_some() {
            let (start, end) = extent(&metadata);
            format!(" between {} and {}", query.from.unwrap_or(start), query.until.unwrap_or(end))
        } else {
            String::new()
        };
        return Err(Error::TraceNotFound { session: metadata.session_id, trace_id: hex::encode(wanted), window });
    }
    // Start times as numbers (the views hold them as text), ties by span id.
    spans.sort_by_cached_key(|(start, view)| (*start, view.span_id.clone()));
    tracing::debug!(session = %metadata.session_id, spans = spans.len(), "Read one trace.");
    Ok(Trace {
        session_id: metadata.session_id,
        trace_id: hex::encode(wanted),
        spans: spans.into_iter().map(|(_, view)| view).collect(),
    })
}

/// A span as the waterfall shows it, with its start time for sorting.
fn view(
    span: &Span,
    resource: &[opentelemetry_proto::tonic::common::v1::KeyValue],
    scope: &str,
    receive_time: u64,
) -> (u64, SpanView) {
    let status = span.status.as_ref();
    let code = if is_error(span) {
        "error"
    } else if status.is_some_and(|status| status.code == 1) {
        "ok"
    } else {
        "unset"
    };
    let view = SpanView {
        span_id: hex::encode(&span.span_id),
        parent_span_id: (!span.parent_span_id.is_empty()).then(|| hex::encode(&span.parent_span_id)),
        name: span.name.clone(),
        kind: kind_name(span.kind).to_owned(),
        service: service_name(resource).to_owned(),
        scope: scope.to_owned(),
        start_time_unix_nano: span.start_time_unix_nano.to_string(),
        end_time_unix_nano: span.end_time_unix_nano.to_string(),
        duration_nanos: span.end_time_unix_nano.saturating_sub(span.start_time_unix_nano),
        status: SpanStatus {
            code: code.to_owned(),
            message: status.map(|status| status.message.clone()).unwrap_or_default(),
        },
        attributes: attributes(&span.attributes),
        resource: attributes(resource),
        events: span
            .events
            .iter()
            .map(|event| SpanEvent {
                time_unix_nano: event.time_unix_nano.to_string(),
                name: event.name.clone(),
                attributes: attributes(&event.attributes),
            })
            .collect(),
        links: span
            .links
            .iter()
            .map(|link| Link {
                trace_id: hex::encode(&link.trace_id),
                span_id: hex::encode(&link.span_id),
                attributes: attributes(&link.attributes),
            })
            .collect(),
        receive_time: Timestamp::from_unix_nanos(receive_time),
    };
    (span.start_time_unix_nano, view)
}

/// A span kind's name, lowercase; unknown values are `unspecified`.
fn kind_name(kind: i32) -> &'static str {
    match span::SpanKind::try_from(kind) {
        Ok(span::SpanKind::Internal) => "internal",
        Ok(span::SpanKind::Server) => "server",
        Ok(span::SpanKind::Client) => "client",
        Ok(span::SpanKind::Producer) => "producer",
        Ok(span::SpanKind::Consumer) => "consumer",
        Ok(span::SpanKind::Unspecified) | Err(_) => "unspecified",
    }
}
