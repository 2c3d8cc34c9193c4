//! Small, realistic OTLP requests for tests, examples and benchmarks.
//!
//! Every request is a pure function of its arguments, so tests can compare
//! what they sent with what they got back.

use crate::proto::collector::logs::v1::ExportLogsServiceRequest;
use crate::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use crate::proto::collector::trace::v1::ExportTraceServiceRequest;
use crate::proto::common::v1::any_value::Value;
use crate::proto::common::v1::{AnyValue, ArrayValue, InstrumentationScope, KeyValue};
use crate::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};
use crate::proto::metrics::v1::{
    AggregationTemporality, Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram,
    HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint,
    exemplar, exponential_histogram_data_point, metric, number_data_point, summary_data_point,
};
use crate::proto::resource::v1::Resource;
use crate::proto::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span, status};

/// 2026-01-01T00:00:00Z in unix nanoseconds: the base of every sample time.
pub const BASE_TIME_UNIX_NANO: u64 = 1_767_225_600_000_000_000;

/// A string attribute.
pub fn string_attribute(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(Value::StringValue(value.to_owned())) }),
        ..KeyValue::default()
    }
}

/// An integer attribute.
pub fn int_attribute(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(Value::IntValue(value)) }),
        ..KeyValue::default()
    }
}

fn resource(service: &str) -> Resource {
    Resource {
        attributes: vec![
            string_attribute("service.name", service),
            string_attribute("service.version", "1.4.2"),
            string_attribute("deployment.environment.name", "staging"),
        ],
        ..Resource::default()
    }
}

fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: "otlp-tape.sample".to_owned(),
        version: "1.0.0".to_owned(),
        ..InstrumentationScope::default()
    }
}

/// A 16-byte trace id derived from `n`.
pub fn trace_id(n: u64) -> Vec<u8> {
    let mut id = Vec::with_capacity(16);
    id.extend_from_slice(&n.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes());
    id.extend_from_slice(&(n ^ 0x5DEE_CE66_D1CE_4E5B).to_be_bytes());
    id
}

/// An 8-byte span id derived from `n`.
pub fn span_id(n: u64) -> Vec<u8> {
    (n.wrapping_mul(0xD6E8_FEB8_6659_FD93) | 1).to_be_bytes().to_vec()
}

/// A trace request of `spans` spans of service `service`, starting at
/// `offset_nanos` after [`BASE_TIME_UNIX_NANO`]. Spans form chains of
/// parent and child within traces of eight spans, with HTTP attributes,
/// an event and (on every tenth span) an error status and a link.
pub fn traces(service: &str, spans: u64, offset_nanos: u64) -> ExportTraceServiceRequest {
    let start = BASE_TIME_UNIX_NANO + offset_nanos;
    let spans = (0..spans)
        .map(|n| {
            let trace = n / 8;
            let parent = if n % 8 == 0 { Vec::new() } else { span_id(offset_nanos + n - 1) };
            let begin = start + n * 1_000_000;
            let failed = n % 10 == 9;
            Span {
                trace_id: trace_id(offset_nanos + trace),
                span_id: span_id(offset_nanos + n),
                parent_span_id: parent,
                name: format!("GET /api/orders/{}", n % 5),
                kind: if n % 8 == 0 { span::SpanKind::Server } else { span::SpanKind::Client } as i32,
                start_time_unix_nano: begin,
                end_time_unix_nano: begin + 750_000 + n % 7 * 10_000,
                attributes: vec![
                    string_attribute("http.request.method", "GET"),
                    string_attribute("url.path", "/api/orders"),
                    int_attribute("http.response.status_code", if failed { 503 } else { 200 }),
                    string_attribute("server.address", "orders.internal"),
                ],
                events: vec![span::Event {
                    time_unix_nano: begin + 100_000,
                    name: if failed { "exception" } else { "cache.miss" }.to_owned(),
                    attributes: vec![string_attribute("exception.type", "TimeoutError")],
                    dropped_attributes_count: 0,
                }],
                links: if failed {
                    vec![span::Link {
                        trace_id: trace_id(offset_nanos + trace + 1_000),
                        span_id: span_id(7),
                        attributes: vec![string_attribute("link.reason", "retry")],
                        ..span::Link::default()
                    }]
                } else {
                    Vec::new()
                },
                status: Some(Status {
                    code: if failed { status::StatusCode::Error } else { status::StatusCode::Unset } as i32,
                    message: if failed { "upstream timed out".to_owned() } else { String::new() },
                }),
                flags: 0x101,
                ..Span::default()
            }
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(resource(service)),
            scope_spans: vec![ScopeSpans { scope: Some(scope()), spans, schema_url: String::new() }],
            schema_url: "https://opentelemetry.io/schemas/1.26.0".to_owned(),
        }],
    }
}

/// A metrics request holding one metric of every type: a gauge (2 points),
/// a sum (1), a histogram (2), an exponential histogram (1) and a summary
/// (1): seven data points in all.
pub fn metrics(service: &str, offset_nanos: u64) -> ExportMetricsServiceRequest {
    let time = BASE_TIME_UNIX_NANO + offset_nanos;
    let start = BASE_TIME_UNIX_NANO;
    let number = |value: f64, core: &str| NumberDataPoint {
        attributes: vec![string_attribute("cpu.core", core)],
        start_time_unix_nano: start,
        time_unix_nano: time,
        value: Some(number_data_point::Value::AsDouble(value)),
        ..NumberDataPoint::default()
    };
    let histogram_point = |route: &str| HistogramDataPoint {
        attributes: vec![string_attribute("http.route", route)],
        start_time_unix_nano: start,
        time_unix_nano: time,
        count: 6,
        sum: Some(1.25),
        bucket_counts: vec![1, 2, 3, 0],
        explicit_bounds: vec![0.1, 0.25, 0.5],
        exemplars: vec![Exemplar {
            time_unix_nano: time - 5_000,
            trace_id: trace_id(offset_nanos),
            span_id: span_id(offset_nanos),
            value: Some(exemplar::Value::AsDouble(0.3)),
            ..Exemplar::default()
        }],
        min: Some(0.05),
        max: Some(0.45),
        ..HistogramDataPoint::default()
    };
    let metrics = vec![
        Metric {
            name: "system.cpu.utilization".to_owned(),
            unit: "1".to_owned(),
            data: Some(metric::Data::Gauge(Gauge { data_points: vec![number(0.42, "0"), number(0.17, "1")] })),
            ..Metric::default()
        },
        Metric {
            name: "http.server.requests".to_owned(),
            unit: "{request}".to_owned(),
            data: Some(metric::Data::Sum(Sum {
                data_points: vec![NumberDataPoint {
                    start_time_unix_nano: start,
                    time_unix_nano: time,
                    value: Some(number_data_point::Value::AsInt(9_007_199_254_740_993)),
                    ..NumberDataPoint::default()
                }],
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                is_monotonic: true,
            })),
            ..Metric::default()
        },
        Metric {
            name: "http.server.request.duration".to_owned(),
            unit: "s".to_owned(),
            data: Some(metric::Data::Histogram(Histogram {
                data_points: vec![histogram_point("/api/orders"), histogram_point("/api/cart")],
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
            })),
            ..Metric::default()
        },
        Metric {
            name: "rpc.server.duration".to_owned(),
            unit: "ms".to_owned(),
            data: Some(metric::Data::ExponentialHistogram(ExponentialHistogram {
                data_points: vec![ExponentialHistogramDataPoint {
                    start_time_unix_nano: start,
                    time_unix_nano: time,
                    count: 5,
                    sum: Some(12.5),
                    scale: 3,
                    zero_count: 1,
                    positive: Some(exponential_histogram_data_point::Buckets { offset: 2, bucket_counts: vec![1, 3] }),
                    negative: None,
                    ..ExponentialHistogramDataPoint::default()
                }],
                aggregation_temporality: AggregationTemporality::Delta as i32,
            })),
            ..Metric::default()
        },
        Metric {
            name: "db.query.latency".to_owned(),
            unit: "ms".to_owned(),
            data: Some(metric::Data::Summary(Summary {
                data_points: vec![SummaryDataPoint {
                    start_time_unix_nano: start,
                    time_unix_nano: time,
                    count: 10,
                    sum: 48.0,
                    quantile_values: vec![
                        summary_data_point::ValueAtQuantile { quantile: 0.5, value: 4.0 },
                        summary_data_point::ValueAtQuantile { quantile: 0.99, value: 11.0 },
                    ],
                    ..SummaryDataPoint::default()
                }],
            })),
            ..Metric::default()
        },
    ];
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(resource(service)),
            scope_metrics: vec![ScopeMetrics { scope: Some(scope()), metrics, schema_url: String::new() }],
            schema_url: String::new(),
        }],
    }
}

/// A logs request of `records` log records correlated with the spans of
/// [`traces`] for the same `offset_nanos`.
pub fn logs(service: &str, records: u64, offset_nanos: u64) -> ExportLogsServiceRequest {
    let start = BASE_TIME_UNIX_NANO + offset_nanos;
    let log_records = (0..records)
        .map(|n| {
            let failed = n % 10 == 9;
            LogRecord {
                time_unix_nano: start + n * 1_000_000,
                observed_time_unix_nano: start + n * 1_000_000 + 20_000,
                severity_number: if failed { SeverityNumber::Error } else { SeverityNumber::Info } as i32,
                severity_text: if failed { "ERROR" } else { "INFO" }.to_owned(),
                body: Some(AnyValue { value: Some(Value::StringValue(format!("order {n} processed"))) }),
                attributes: vec![
                    int_attribute("order.items", i64::from((n % 4) as u8) + 1),
                    KeyValue {
                        key: "order.tags".to_owned(),
                        value: Some(AnyValue {
                            value: Some(Value::ArrayValue(ArrayValue {
                                values: vec![AnyValue { value: Some(Value::BoolValue(true)) }],
                            })),
                        }),
                        ..KeyValue::default()
                    },
                ],
                trace_id: trace_id(offset_nanos + n / 8),
                span_id: span_id(offset_nanos + n),
                flags: 1,
                event_name: String::new(),
                ..LogRecord::default()
            }
        })
        .collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(resource(service)),
            scope_logs: vec![ScopeLogs { scope: Some(scope()), log_records, schema_url: String::new() }],
            schema_url: String::new(),
        }],
    }
}
