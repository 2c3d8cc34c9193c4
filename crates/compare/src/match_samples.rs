//! Items for the matching's tests: OTLP requests (such as
//! `tape_otlp::sample`'s) split into items as a session's records are,
//! and a comparison of two lists of items.

use std::sync::Arc;

use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::resource::v1::Resource;
use tape_otlp::ExportRequest;
use tape_session::{SessionId, SignalCounts};

use crate::tally::Tally;
use crate::{CompareConfig, Comparison, Item, ItemBody, Origin, Point, PointValue, Scope, SideSummary};

fn scope(resource: Option<&Resource>, scope: Option<&InstrumentationScope>) -> Arc<Scope> {
    let resource = resource.cloned().unwrap_or_default();
    let service = resource
        .attributes
        .iter()
        .find(|attribute| attribute.key == "service.name")
        .and_then(|attribute| match attribute.value.as_ref().and_then(|value| value.value.as_ref()) {
            Some(Value::StringValue(name)) => Some(name.clone()),
            _ => None,
        })
        .unwrap_or_else(|| "unknown_service".to_owned());
    Arc::new(Scope { resource, scope: scope.cloned().unwrap_or_default(), service, ..Scope::default() })
}

/// The items of `request`, all of record `origin`.
pub(crate) fn items(request: impl Into<ExportRequest>, origin: Origin) -> Vec<Item> {
    let mut items = Vec::new();
    let mut push = |scope: &Arc<Scope>, body| items.push(Item { origin, scope: Arc::clone(scope), body });
    match request.into() {
        ExportRequest::Traces(request) => {
            for resource in request.resource_spans {
                for spans in resource.scope_spans {
                    let shared = scope(resource.resource.as_ref(), spans.scope.as_ref());
                    spans.spans.into_iter().for_each(|span| push(&shared, ItemBody::Span(span)));
                }
            }
        }
        ExportRequest::Logs(request) => {
            for resource in request.resource_logs {
                for logs in resource.scope_logs {
                    let shared = scope(resource.resource.as_ref(), logs.scope.as_ref());
                    logs.log_records.into_iter().for_each(|record| push(&shared, ItemBody::Log(record)));
                }
            }
        }
        ExportRequest::Metrics(request) => {
            for resource in request.resource_metrics {
                for metrics in resource.scope_metrics {
                    let shared = scope(resource.resource.as_ref(), metrics.scope.as_ref());
                    for metric in metrics.metrics {
                        let point = |value| {
                            ItemBody::Point(Point {
                                name: metric.name.clone(),
                                description: metric.description.clone(),
                                unit: metric.unit.clone(),
                                value,
                            })
                        };
                        let values: Vec<PointValue> = match metric.data.clone() {
                            Some(Data::Gauge(gauge)) => gauge.data_points.into_iter().map(PointValue::Gauge).collect(),
                            Some(Data::Sum(sum)) => {
                                let (temporality, monotonic) = (sum.aggregation_temporality, sum.is_monotonic);
                                let points = sum.data_points.into_iter();
                                points.map(|point| PointValue::Sum { point, temporality, monotonic }).collect()
                            }
                            Some(Data::Histogram(histogram)) => {
                                let temporality = histogram.aggregation_temporality;
                                let points = histogram.data_points.into_iter();
                                points.map(|point| PointValue::Histogram { point, temporality }).collect()
                            }
                            Some(Data::ExponentialHistogram(histogram)) => {
                                let temporality = histogram.aggregation_temporality;
                                let points = histogram.data_points.into_iter();
                                points.map(|point| PointValue::ExponentialHistogram { point, temporality }).collect()
                            }
                            Some(Data::Summary(summary)) => {
                                summary.data_points.into_iter().map(PointValue::Summary).collect()
                            }
                            None => Vec::new(),
                        };
                        for value in values {
                            push(&shared, point(value));
                        }
                    }
                }
            }
        }
    }
    items
}

/// The items of `requests`, record by record (record n from origin
/// `(pass, n)`).
pub(crate) fn records(pass: u64, requests: Vec<ExportRequest>) -> Vec<Item> {
    requests
        .into_iter()
        .enumerate()
        .flat_map(|(n, request)| items(request, Origin { pass, record: n as u64 }))
        .collect()
}

/// Every item's timestamps moved by `delta` (as a replay moves a record).
pub(crate) fn shift_all(all: &mut [Item], delta: i64) {
    for item in all {
        let mut request = request_of(item);
        request.shift_timestamps(delta);
        item.body = items(request, item.origin).remove(0).body;
    }
}

fn request_of(item: &Item) -> ExportRequest {
    use opentelemetry_proto::tonic::collector::{logs::v1 as logs, metrics::v1 as metrics, trace::v1 as trace};
    use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::metrics::v1::{ExponentialHistogram, Summary};
    use opentelemetry_proto::tonic::metrics::v1::{Gauge, Histogram, Metric, ResourceMetrics, ScopeMetrics, Sum};
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};
    let (resource, scope) = (Some(item.scope.resource.clone()), Some(item.scope.scope.clone()));
    match &item.body {
        ItemBody::Span(span) => ExportRequest::Traces(trace::ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource,
                scope_spans: vec![ScopeSpans { scope, spans: vec![span.clone()], ..ScopeSpans::default() }],
                ..ResourceSpans::default()
            }],
        }),
        ItemBody::Log(record) => ExportRequest::Logs(logs::ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource,
                scope_logs: vec![ScopeLogs { scope, log_records: vec![record.clone()], ..ScopeLogs::default() }],
                ..ResourceLogs::default()
            }],
        }),
        ItemBody::Point(point) => {
            let data = match point.value.clone() {
                PointValue::Gauge(p) => Data::Gauge(Gauge { data_points: vec![p] }),
                PointValue::Sum { point, temporality, monotonic } => Data::Sum(Sum {
                    data_points: vec![point],
                    aggregation_temporality: temporality,
                    is_monotonic: monotonic,
                }),
                PointValue::Histogram { point, temporality } => {
                    Data::Histogram(Histogram { data_points: vec![point], aggregation_temporality: temporality })
                }
                PointValue::ExponentialHistogram { point, temporality } => {
                    Data::ExponentialHistogram(ExponentialHistogram {
                        data_points: vec![point],
                        aggregation_temporality: temporality,
                    })
                }
                PointValue::Summary(p) => Data::Summary(Summary { data_points: vec![p] }),
            };
            let metric = Metric {
                name: point.name.clone(),
                description: point.description.clone(),
                unit: point.unit.clone(),
                data: Some(data),
                ..Metric::default()
            };
            ExportRequest::Metrics(metrics::ExportMetricsServiceRequest {
                resource_metrics: vec![ResourceMetrics {
                    resource,
                    scope_metrics: vec![ScopeMetrics { scope, metrics: vec![metric], ..ScopeMetrics::default() }],
                    ..ResourceMetrics::default()
                }],
            })
        }
    }
}

fn side(id: &str) -> SideSummary {
    SideSummary {
        session_id: SessionId::new(id).expect("a valid session id"),
        content_hash: String::new(),
        records: 0,
        items: SignalCounts::default(),
        canonical_sha256: String::new(),
    }
}

/// A comparison of `expected` with `actual` as partitions of the given
/// sizes would make it (`split(item)` picks an item's partition).
pub(crate) fn compare_in(
    parts: usize,
    split: impl Fn(&Item) -> usize,
    expected: Vec<Item>,
    actual: Vec<Item>,
    config: &CompareConfig,
) -> Comparison {
    let mut tally = Tally::new(config);
    let (mut e, mut a): (Vec<Vec<Item>>, Vec<Vec<Item>>) = (vec![Vec::new(); parts], vec![Vec::new(); parts]);
    for item in expected {
        e[split(&item) % parts].push(item);
    }
    for item in actual {
        a[split(&item) % parts].push(item);
    }
    for (expected, actual) in e.into_iter().zip(a) {
        tally.partition(expected, actual);
    }
    tally.finish(side("expected"), side("actual"), config)
}

/// A comparison of `expected` with `actual` in one partition.
pub(crate) fn compare(expected: Vec<Item>, actual: Vec<Item>, config: &CompareConfig) -> Comparison {
    compare_in(1, |_| 0, expected, actual, config)
}

/// The default options.
pub(crate) fn config() -> CompareConfig {
    CompareConfig::new(SessionId::new("expected").expect("valid"), SessionId::new("actual").expect("valid"))
}

/// A replay report's facts: `mode` timestamps, `passes` passes with ids
/// kept, and `sent` items sent per signal (traces, metrics, logs).
pub(crate) fn report(mode: &str, passes: u64, sent: [u64; 3]) -> crate::ReplayFacts {
    use crate::{ReplayCounts, ReplayOptionsFacts, ReplaySession, ReplaySignalCounts};
    let counts = |sent_items| ReplaySignalCounts { sent_items, rejected_items: 0, failed_items: 0 };
    crate::ReplayFacts {
        session: ReplaySession { id: "expected".to_owned(), content_hash: String::new() },
        options: ReplayOptionsFacts {
            timestamps: mode.to_owned(),
            ids: "never".to_owned(),
            signals: tape_otlp::Signal::ALL.to_vec(),
            services: Vec::new(),
            from: None,
            until: None,
            shard: None,
        },
        passes,
        id_seed: 1,
        reason: "finished".to_owned(),
        counts: ReplayCounts { traces: counts(sent[0]), metrics: counts(sent[1]), logs: counts(sent[2]) },
    }
}
