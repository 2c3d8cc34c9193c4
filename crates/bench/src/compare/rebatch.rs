//! The ACTUAL sessions of `bench compare`: the expected session's items in
//! other requests, as a batching pipeline delivers them (the Collector's
//! batch processor: requests of a fixed number of items, merged across the
//! incoming requests and split inside a resource or scope wherever a batch
//! fills up), and a variant with a few spans dropped and changed.
//!
//! Spans and log records are batched one by one; metrics a whole metric at
//! a time (its data points counting as its items), as the batch processor
//! does unless it must split a metric.

use serde::{Deserialize, Serialize};
use tape_otlp::ExportRequest;
use tape_otlp::proto::collector::logs::v1::ExportLogsServiceRequest;
use tape_otlp::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use tape_otlp::proto::collector::trace::v1::ExportTraceServiceRequest;
use tape_otlp::proto::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use tape_otlp::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use tape_otlp::proto::metrics::v1::{Metric, ResourceMetrics, ScopeMetrics, metric};
use tape_otlp::proto::resource::v1::Resource;
use tape_otlp::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};
use tape_session::{
    SessionId, SessionMetadata, SessionStatus, SessionStore, SessionType, SessionWriter, Timestamp, WriterOptions,
    read_session_in_time_order,
};

use futures::StreamExt;

use crate::Error;

/// One span in this many is dropped, one renamed and one given an
/// attribute, in the variant with differences.
pub const ALTERATION_PERIOD: u64 = 1000;

/// The span attribute the variant with differences adds.
pub const ADDED_ATTRIBUTE: &str = "bench.changed";

/// What the variant with differences did to the expected session's spans:
/// what the comparison must find.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alterations {
    /// Spans left out: the comparison's `missing`.
    pub dropped_spans: u64,
    /// Spans whose name has ` (renamed)` appended.
    pub renamed_spans: u64,
    /// Spans given the attribute `bench.changed`.
    pub attributed_spans: u64,
}

impl Alterations {
    /// Spans delivered with a difference: the comparison's `changed`.
    pub fn changed(&self) -> u64 {
        self.renamed_spans + self.attributed_spans
    }
}

/// The ACTUAL session written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rebatched {
    /// Requests written.
    pub requests: u64,
    /// Items written.
    pub items: u64,
    /// What was changed (all zero without differences).
    pub alterations: Alterations,
}

/// Writes into `store` session `actual`, holding `expected`'s items in
/// requests of `batch_items` items (the last of each signal shorter), each
/// received when the expected record that filled it was; with `alter`, one
/// span in [`ALTERATION_PERIOD`] dropped, one renamed and one given an
/// attribute.
pub(super) async fn write_rebatched(
    store: &dyn SessionStore,
    expected: &SessionMetadata,
    actual: &SessionId,
    batch_items: u64,
    alter: bool,
) -> Result<Rebatched, Error> {
    let cannot_write = || Error::session(format!("cannot write session {actual}"));
    let metadata = SessionMetadata::new(
        actual.clone(),
        SessionType::Capture,
        expected.start_time,
        "otlp-tape bench compare".to_owned(),
    );
    let mut writer = SessionWriter::create(store, metadata, WriterOptions::default()).await.map_err(cannot_write())?;
    let mut batches = Batches { traces: Batch::default(), logs: Batch::default(), metrics: Batch::default() };
    let mut spans = SpanAlterer { alter, seen: 0, alterations: Alterations::default() };
    let mut written = Rebatched::default();
    let mut last = expected.start_time;
    let mut records = std::pin::pin!(read_session_in_time_order(store, expected, |_| true));
    while let Some(next) = records.next().await {
        let (signal, record) = next.map_err(Error::session(format!("cannot read session {}", expected.session_id)))?;
        let receive = Timestamp::from_unix_nanos(record.receive_time_unix_nano);
        last = last.max(receive);
        let request = ExportRequest::decode_protobuf(signal, &record.payload).map_err(|error| {
            Error::Invalid(format!("session {}: a {signal} record does not decode: {error}", expected.session_id))
        })?;
        let full = batches.take(request, &mut spans, batch_items);
        for request in full {
            written.write(&mut writer, receive, &request).await.map_err(cannot_write())?;
        }
    }
    for request in batches.rest() {
        written.write(&mut writer, last, &request).await.map_err(cannot_write())?;
    }
    writer.finish(last, SessionStatus::Completed).await.map_err(cannot_write())?;
    written.alterations = spans.alterations;
    Ok(written)
}

impl Rebatched {
    async fn write(
        &mut self,
        writer: &mut SessionWriter<'_>,
        receive: Timestamp,
        request: &ExportRequest,
    ) -> Result<(), tape_session::Error> {
        let items = request.item_count();
        writer.append(request.signal(), receive, items, &request.encode_protobuf()).await?;
        self.requests += 1;
        self.items += items;
        Ok(())
    }
}

/// Drops, renames and marks one span in [`ALTERATION_PERIOD`] each, when
/// altering.
struct SpanAlterer {
    alter: bool,
    /// Spans seen so far.
    seen: u64,
    alterations: Alterations,
}

impl SpanAlterer {
    /// The span as delivered, or `None` when it is dropped.
    fn apply(&mut self, mut span: Span) -> Option<Span> {
        let index = self.seen;
        self.seen += 1;
        if !self.alter {
            return Some(span);
        }
        match index % ALTERATION_PERIOD {
            0 => {
                self.alterations.dropped_spans += 1;
                return None;
            }
            250 => {
                self.alterations.attributed_spans += 1;
                span.attributes.push(KeyValue {
                    key: ADDED_ATTRIBUTE.to_owned(),
                    value: Some(AnyValue { value: Some(any_value::Value::BoolValue(true)) }),
                    ..KeyValue::default()
                });
            }
            500 => {
                self.alterations.renamed_spans += 1;
                span.name.push_str(" (renamed)");
            }
            _ => {}
        }
        Some(span)
    }
}

/// The requests being filled, one per signal.
struct Batches {
    traces: Batch<Span>,
    logs: Batch<LogRecord>,
    metrics: Batch<Metric>,
}

impl Batches {
    /// Takes `request`'s items into its signal's batch; returns the
    /// requests that filled up.
    fn take(&mut self, request: ExportRequest, spans: &mut SpanAlterer, batch_items: u64) -> Vec<ExportRequest> {
        match request {
            ExportRequest::Traces(request) => {
                let mut full = Vec::new();
                for resource in request.resource_spans {
                    for scope in resource.scope_spans {
                        let place =
                            Place::new(resource.resource.as_ref(), &resource.schema_url, scope.scope, scope.schema_url);
                        for span in scope.spans.into_iter().filter_map(|span| spans.apply(span)) {
                            full.extend(self.traces.push(&place, span, 1, batch_items).map(traces_request));
                        }
                    }
                }
                full
            }
            ExportRequest::Logs(request) => {
                let mut full = Vec::new();
                for resource in request.resource_logs {
                    for scope in resource.scope_logs {
                        let place =
                            Place::new(resource.resource.as_ref(), &resource.schema_url, scope.scope, scope.schema_url);
                        for record in scope.log_records {
                            full.extend(self.logs.push(&place, record, 1, batch_items).map(logs_request));
                        }
                    }
                }
                full
            }
            ExportRequest::Metrics(request) => {
                let mut full = Vec::new();
                for resource in request.resource_metrics {
                    for scope in resource.scope_metrics {
                        let place =
                            Place::new(resource.resource.as_ref(), &resource.schema_url, scope.scope, scope.schema_url);
                        for metric in scope.metrics {
                            let points = data_points(&metric);
                            full.extend(self.metrics.push(&place, metric, points, batch_items).map(metrics_request));
                        }
                    }
                }
                full
            }
        }
    }

    /// The requests left, not full.
    fn rest(mut self) -> Vec<ExportRequest> {
        [
            self.traces.take().map(traces_request),
            self.metrics.take().map(metrics_request),
            self.logs.take().map(logs_request),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

/// A resource and scope, with their schema URLs.
#[derive(Debug, Clone, PartialEq)]
struct Place {
    resource: Option<Resource>,
    resource_schema: String,
    scope: Option<InstrumentationScope>,
    scope_schema: String,
}

impl Place {
    fn new(
        resource: Option<&Resource>,
        resource_schema: &str,
        scope: Option<InstrumentationScope>,
        scope_schema: String,
    ) -> Place {
        Place { resource: resource.cloned(), resource_schema: resource_schema.to_owned(), scope, scope_schema }
    }
}

/// A request being filled: items grouped by resource and scope, in the
/// order they came.
struct Batch<I> {
    /// Each resource's scopes; a resource or scope repeats only when
    /// another came between.
    groups: Vec<(Place, Vec<I>)>,
    items: u64,
}

impl<I> Default for Batch<I> {
    fn default() -> Self {
        Batch { groups: Vec::new(), items: 0 }
    }
}

impl<I> Batch<I> {
    /// Adds `item` (`weight` items) of `place`; returns the batch when it
    /// has `batch_items` items or more.
    fn push(&mut self, place: &Place, item: I, weight: u64, batch_items: u64) -> Option<Vec<(Place, Vec<I>)>> {
        match self.groups.last_mut() {
            Some((last, items)) if last == place => items.push(item),
            _ => self.groups.push((place.clone(), vec![item])),
        }
        self.items += weight;
        if self.items >= batch_items { self.take() } else { None }
    }

    /// The groups so far, if any, leaving the batch empty.
    fn take(&mut self) -> Option<Vec<(Place, Vec<I>)>> {
        self.items = 0;
        let groups = std::mem::take(&mut self.groups);
        (!groups.is_empty()).then_some(groups)
    }
}

/// A resource, its schema URL, and its scopes' items.
type ResourceGroup<I> = (Option<Resource>, String, Vec<(Place, Vec<I>)>);

/// Consecutive groups of one resource merged into one resource entry.
fn by_resource<I>(groups: Vec<(Place, Vec<I>)>) -> Vec<ResourceGroup<I>> {
    let mut resources: Vec<ResourceGroup<I>> = Vec::new();
    for (place, items) in groups {
        match resources.last_mut() {
            Some((resource, schema, scopes)) if *resource == place.resource && *schema == place.resource_schema => {
                scopes.push((place, items));
            }
            _ => resources.push((place.resource.clone(), place.resource_schema.clone(), vec![(place, items)])),
        }
    }
    resources
}

fn traces_request(groups: Vec<(Place, Vec<Span>)>) -> ExportRequest {
    let resource_spans = by_resource(groups)
        .into_iter()
        .map(|(resource, schema_url, scopes)| ResourceSpans {
            resource,
            schema_url,
            scope_spans: scopes
                .into_iter()
                .map(|(place, spans)| ScopeSpans { scope: place.scope, schema_url: place.scope_schema, spans })
                .collect(),
        })
        .collect();
    ExportRequest::Traces(ExportTraceServiceRequest { resource_spans })
}

fn logs_request(groups: Vec<(Place, Vec<LogRecord>)>) -> ExportRequest {
    let resource_logs = by_resource(groups)
        .into_iter()
        .map(|(resource, schema_url, scopes)| ResourceLogs {
            resource,
            schema_url,
            scope_logs: scopes
                .into_iter()
                .map(|(place, log_records)| ScopeLogs {
                    scope: place.scope,
                    schema_url: place.scope_schema,
                    log_records,
                })
                .collect(),
        })
        .collect();
    ExportRequest::Logs(ExportLogsServiceRequest { resource_logs })
}

fn metrics_request(groups: Vec<(Place, Vec<Metric>)>) -> ExportRequest {
    let resource_metrics = by_resource(groups)
        .into_iter()
        .map(|(resource, schema_url, scopes)| ResourceMetrics {
            resource,
            schema_url,
            scope_metrics: scopes
                .into_iter()
                .map(|(place, metrics)| ScopeMetrics { scope: place.scope, schema_url: place.scope_schema, metrics })
                .collect(),
        })
        .collect();
    ExportRequest::Metrics(ExportMetricsServiceRequest { resource_metrics })
}

/// The data points of a metric: its items.
fn data_points(metric: &Metric) -> u64 {
    let points = match &metric.data {
        Some(metric::Data::Gauge(gauge)) => gauge.data_points.len(),
        Some(metric::Data::Sum(sum)) => sum.data_points.len(),
        Some(metric::Data::Histogram(histogram)) => histogram.data_points.len(),
        Some(metric::Data::ExponentialHistogram(histogram)) => histogram.data_points.len(),
        Some(metric::Data::Summary(summary)) => summary.data_points.len(),
        None => 0,
    };
    points as u64
}

#[cfg(test)]
mod tests;
