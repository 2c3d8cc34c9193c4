//! The traces of a window of receive time: one row per trace.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::ops::ControlFlow;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use serde::{Deserialize, Serialize};
use tape_session::{SessionId, SessionStore, Timestamp};

use crate::Error;
use crate::read::{extent, metadata, trace_key, visit_requests, window};

/// The most traces one query lists.
pub const MAX_TRACES: usize = 1000;

fn default_limit() -> usize {
    100
}

/// Which traces to list: those with a span in a record received in
/// `[from, until)`, first received first.
///
/// With `service` or `errorsOnly`, a trace is listed when one of its spans
/// in the window matches both (a span of that service, with an error
/// status when `errorsOnly`); its row still counts all its spans in the
/// window. Traces are then taken in the order their first matching span
/// was received, and listed by their first receive time.
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
    /// Only traces with a span of this service (`service.name`;
    /// `unknown_service` for resources without one).
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
        if !(1..=MAX_TRACES).contains(&self.limit) {
            return Err(Error::Invalid(format!("limit {} is not 1 to {MAX_TRACES}", self.limit)));
        }
        if self.service.as_deref() == Some("") {
            return Err(Error::Invalid("service is empty; give a service name or leave it out".to_owned()));
        }
        check_window(self.from, self.until)
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
    query.validate()?;
    let metadata = metadata(store, &query.session).await?;
    let window = window(&metadata, query.from, query.until)?;
    let filtered = query.service.is_some() || query.errors_only;
    let matches = |service: &str, span: &Span| {
        query.service.as_deref().is_none_or(|wanted| wanted == service) && (!query.errors_only || is_error(span))
    };
    // With a filter, a first pass picks the traces (a trace may match only
    // by a later span); without one, every trace matches at its first span.
    let mut truncated = false;
    let chosen = if filtered {
        let mut chosen = HashSet::new();
        visit_requests(store, &metadata, window, |_, request| {
            for (service, span) in spans(&request) {
                let Some(key) = trace_key(&span.trace_id) else { continue };
                if chosen.contains(&key) || !matches(service, span) {
                    continue;
                }
                if chosen.len() == query.limit {
                    truncated = true;
                    return ControlFlow::Break(());
                }
                chosen.insert(key);
            }
            ControlFlow::Continue(())
        })
        .await?;
        Some(chosen)
    } else {
        None
    };
    let mut rows: HashMap<[u8; 16], Row> = HashMap::new();
    visit_requests(store, &metadata, window, |receive_time, request| {
        for (service, span) in spans(&request) {
            let Some(key) = trace_key(&span.trace_id) else { continue };
            if let Some(row) = rows.get_mut(&key) {
                row.add(service, span);
                continue;
            }
            let admitted = match &chosen {
                Some(chosen) => chosen.contains(&key),
                None if rows.len() < query.limit => true,
                None => {
                    truncated = true;
                    false
                }
            };
            if admitted {
                let mut row = Row::new(rows.len(), receive_time);
                row.add(service, span);
                rows.insert(key, row);
            }
        }
        ControlFlow::Continue(())
    })
    .await?;
    let mut rows: Vec<([u8; 16], Row)> = rows.into_iter().collect();
    rows.sort_by_key(|(_, row)| (row.first_receive, row.order));
    let (start, end) = extent(&metadata);
    tracing::debug!(session = %metadata.session_id, traces = rows.len(), truncated, "Listed the traces of a window.");
    Ok(TraceList {
        session_id: metadata.session_id.clone(),
        from: query.from.unwrap_or(start),
        until: query.until.unwrap_or(end),
        traces: rows.into_iter().map(|(key, row)| row.summary(&key)).collect(),
        truncated,
    })
}

/// Checks that `from` is before `until` when both are given.
pub(crate) fn check_window(from: Option<Timestamp>, until: Option<Timestamp>) -> Result<(), Error> {
    match (from, until) {
        (Some(from), Some(until)) if from >= until => {
            Err(Error::Invalid(format!("from {from} is not before until {until}: the window would be empty")))
        }
        _ => Ok(()),
    }
}

/// Whether a span's status is an error.
pub(crate) fn is_error(span: &Span) -> bool {
    span.status.as_ref().is_some_and(|status| status.code == StatusCode::Error as i32)
}

/// Every span of a request with its resource's service.
fn spans(request: &ExportTraceServiceRequest) -> impl Iterator<Item = (&str, &Span)> {
    request.resource_spans.iter().flat_map(|resource_spans| {
        let service = crate::value::service_name(
            resource_spans.resource.as_ref().map_or(&[][..], |resource| &resource.attributes[..]),
        );
        resource_spans.scope_spans.iter().flat_map(move |scope| scope.spans.iter().map(move |span| (service, span)))
    })
}

/// A trace's row while the window is read.
struct Row {
    /// The order it was admitted in (ties of first receive time).
    order: usize,
    first_receive: u64,
    root: Option<(String, String)>,
    spans: u64,
    services: BTreeSet<String>,
    start: u64,
    end: u64,
    error_spans: u64,
}

impl Row {
    fn new(order: usize, first_receive: u64) -> Self {
        Row {
            order,
            first_receive,
            root: None,
            spans: 0,
            services: BTreeSet::new(),
            start: u64::MAX,
            end: 0,
            error_spans: 0,
        }
    }

    fn add(&mut self, service: &str, span: &Span) {
        self.spans += 1;
        if !self.services.contains(service) {
            self.services.insert(service.to_owned());
        }
        if span.parent_span_id.is_empty() && self.root.is_none() {
            self.root = Some((service.to_owned(), span.name.clone()));
        }
        self.start = self.start.min(span.start_time_unix_nano);
        self.end = self.end.max(span.end_time_unix_nano);
        self.error_spans += u64::from(is_error(span));
    }

    fn summary(self, key: &[u8; 16]) -> TraceSummary {
        let (root_service, root_name) = self.root.unzip();
        TraceSummary {
            trace_id: hex::encode(key),
            root_service,
            root_name,
            spans: self.spans,
            services: self.services.into_iter().collect(),
            start_time_unix_nano: self.start.to_string(),
            duration_nanos: self.end.saturating_sub(self.start),
            error_spans: self.error_spans,
            first_receive: Timestamp::from_unix_nanos(self.first_receive),
        }
    }
}
