//! Metrics derived from the spans, so that the signals agree: request
//! duration histograms and request counts per server route, and the
//! pattern's gauges. Cumulative temporality, from the session's start.

use std::collections::BTreeMap;

use tape_otlp::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use tape_otlp::proto::metrics::v1::{
    AggregationTemporality, Exemplar, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics,
    ScopeMetrics, Sum, exemplar, metric, number_data_point,
};

use tape_otlp::ExportRequest;

use crate::generator::SpanRecord;
use crate::pattern::{Attributes, GaugeKind, Pattern, Protocol, SpanKind, Value};
use crate::proto;

/// The explicit bucket boundaries the semantic conventions advise for
/// `http.server.request.duration`, in seconds.
pub const DURATION_BUCKETS: [f64; 14] =
    [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0];

/// A set of server spans that share their metric attributes (apart from
/// the status).
#[derive(Debug)]
struct Family {
    service: usize,
    protocol: Protocol,
    attributes: Attributes,
}

/// One histogram stream.
#[derive(Debug, Clone)]
struct Stream {
    bucket_counts: [u64; DURATION_BUCKETS.len() + 1],
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
    /// The latest span of the current interval, as an exemplar.
    exemplar: Option<Exemplar>,
}

impl Stream {
    fn new() -> Self {
        Stream {
            bucket_counts: [0; DURATION_BUCKETS.len() + 1],
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            exemplar: None,
        }
    }
}

/// Metric state of a session.
#[derive(Debug)]
pub(crate) struct MetricState {
    start: u64,
    families: Vec<Family>,
    /// Per node, the family of its spans, if they are measured.
    node_family: Vec<Option<usize>>,
    /// Per (family, status code).
    streams: BTreeMap<(usize, i64), Stream>,
    /// Per service, nanoseconds of server spans ended in this interval.
    busy: Vec<u64>,
    last_export: u64,
}

impl MetricState {
    pub fn new(pattern: &Pattern, start: u64) -> Self {
        let mut families: Vec<Family> = Vec::new();
        let node_family = pattern
            .nodes
            .iter()
            .map(|node| {
                if !pattern.metrics.requests || node.kind != SpanKind::Server {
                    return None;
                }
                let keys: &[&str] = match node.protocol {
                    Protocol::Http => &["http.request.method", "http.route", "url.scheme"],
                    Protocol::Rpc => &["rpc.system", "rpc.service", "rpc.method"],
                    Protocol::None | Protocol::Db | Protocol::Messaging => return None,
                };
                let attributes: Attributes =
                    node.attributes.iter().filter(|(key, _)| keys.contains(&key.as_str())).cloned().collect();
                let family = Family { service: node.service, protocol: node.protocol, attributes };
                Some(
                    families
                        .iter()
                        .position(|known| {
                            known.service == family.service
                                && known.protocol == family.protocol
                                && known.attributes == family.attributes
                        })
                        .unwrap_or_else(|| {
                            families.push(family);
                            families.len() - 1
                        }),
                )
            })
            .collect();
        MetricState {
            start,
            families,
            node_family,
            streams: BTreeMap::new(),
            busy: vec![0; pattern.services.len()],
            last_export: start,
        }
    }

    /// Counts a span that ended.
    pub fn observe(&mut self, pattern: &Pattern, span: &SpanRecord) {
        let node = &pattern.nodes[span.node as usize];
        if node.kind == SpanKind::Server {
            self.busy[node.service] += span.end - span.start;
        }
        let Some(family) = self.node_family[span.node as usize] else {
            return;
        };
        #[allow(clippy::cast_precision_loss)]
        let seconds = (span.end - span.start) as f64 / 1e9;
        let stream = self.streams.entry((family, span.status_code.unwrap_or(0))).or_insert_with(Stream::new);
        let bucket = DURATION_BUCKETS.iter().position(|&bound| seconds <= bound).unwrap_or(DURATION_BUCKETS.len());
        stream.bucket_counts[bucket] += 1;
        stream.count += 1;
        stream.sum += seconds;
        stream.min = stream.min.min(seconds);
        stream.max = stream.max.max(seconds);
        stream.exemplar = Some(Exemplar {
            time_unix_nano: span.end,
            span_id: span.span_id.to_vec(),
            trace_id: span.trace_id.to_vec(),
            value: Some(exemplar::Value::AsDouble(seconds)),
            ..Exemplar::default()
        });
    }

    /// The metrics requests at `time`, one per service that has metrics:
    /// (service, data points, encoded request). `in_flight` is the number
    /// of server spans in progress per service.
    pub fn export(&mut self, pattern: &Pattern, time: u64, in_flight: &[u64]) -> Vec<(usize, u64, Vec<u8>)> {
        let elapsed = time - self.last_export;
        let mut requests = Vec::new();
        for (service_index, service) in pattern.services.iter().enumerate() {
            let mut metrics = Vec::new();
            for protocol in [Protocol::Http, Protocol::Rpc] {
                let streams: Vec<(&(usize, i64), &Stream)> = self
                    .streams
                    .iter()
                    .filter(|((family, _), _)| {
                        self.families[*family].service == service_index && self.families[*family].protocol == protocol
                    })
                    .collect();
                if streams.is_empty() {
                    continue;
                }
                let (duration_name, count_name, status_key) = match protocol {
                    Protocol::Http => {
                        ("http.server.request.duration", "http.server.request.count", "http.response.status_code")
                    }
                    _ => ("rpc.server.call.duration", "rpc.server.call.count", "rpc.grpc.status_code"),
                };
                let attributes = |family: usize, status: i64| {
                    let mut attributes = proto::key_values(&self.families[family].attributes);
                    attributes.push(proto::key_value(status_key, &Value::Int(status)));
                    attributes
                };
                let histogram_points = streams
                    .iter()
                    .map(|&(&(family, status), stream)| HistogramDataPoint {
                        attributes: attributes(family, status),
                        start_time_unix_nano: self.start,
                        time_unix_nano: time,
                        count: stream.count,
                        sum: Some(stream.sum),
                        bucket_counts: stream.bucket_counts.to_vec(),
                        explicit_bounds: DURATION_BUCKETS.to_vec(),
                        exemplars: stream.exemplar.iter().cloned().collect(),
                        min: Some(stream.min),
                        max: Some(stream.max),
                        ..HistogramDataPoint::default()
                    })
                    .collect();
                let count_points = streams
                    .iter()
                    .map(|&(&(family, status), stream)| NumberDataPoint {
                        attributes: attributes(family, status),
                        start_time_unix_nano: self.start,
                        time_unix_nano: time,
                        value: Some(number_data_point::Value::AsInt(i64::try_from(stream.count).unwrap_or(i64::MAX))),
                        ..NumberDataPoint::default()
                    })
                    .collect();
                metrics.push(Metric {
                    name: duration_name.to_owned(),
                    description: "Duration of server requests.".to_owned(),
                    unit: "s".to_owned(),
                    data: Some(metric::Data::Histogram(Histogram {
                        data_points: histogram_points,
                        aggregation_temporality: AggregationTemporality::Cumulative as i32,
                    })),
                    ..Metric::default()
                });
                metrics.push(Metric {
                    name: count_name.to_owned(),
                    description: "Server requests handled.".to_owned(),
                    unit: "{request}".to_owned(),
                    data: Some(metric::Data::Sum(Sum {
                        data_points: count_points,
                        aggregation_temporality: AggregationTemporality::Cumulative as i32,
                        is_monotonic: true,
                    })),
                    ..Metric::default()
                });
            }
            for gauge in pattern.metrics.gauges.iter().filter(|gauge| gauge.service == service_index) {
                #[allow(clippy::cast_precision_loss)]
                let value = match gauge.value {
                    GaugeKind::Utilization { capacity, base } => number_data_point::Value::AsDouble(
                        (base + self.busy[service_index] as f64 / (elapsed.max(1) as f64 * capacity)).min(1.0),
                    ),
                    GaugeKind::InFlight => {
                        number_data_point::Value::AsInt(i64::try_from(in_flight[service_index]).unwrap_or(i64::MAX))
                    }
                };
                metrics.push(Metric {
                    name: gauge.name.clone(),
                    description: gauge.description.clone(),
                    unit: gauge.unit.clone(),
                    data: Some(metric::Data::Gauge(Gauge {
                        data_points: vec![NumberDataPoint {
                            time_unix_nano: time,
                            value: Some(value),
                            ..NumberDataPoint::default()
                        }],
                    })),
                    ..Metric::default()
                });
            }
            if metrics.is_empty() {
                continue;
            }
            let request = ExportMetricsServiceRequest {
                resource_metrics: vec![ResourceMetrics {
                    resource: Some(proto::resource(&service.resource)),
                    scope_metrics: vec![ScopeMetrics {
                        scope: Some(proto::scope()),
                        metrics,
                        schema_url: String::new(),
                    }],
                    schema_url: String::new(),
                }],
            };
            let request = ExportRequest::Metrics(request);
            requests.push((service_index, request.item_count(), request.encode_protobuf()));
        }
        for stream in self.streams.values_mut() {
            stream.exemplar = None;
        }
        self.busy.iter_mut().for_each(|busy| *busy = 0);
        self.last_export = time;
        requests
    }
}
