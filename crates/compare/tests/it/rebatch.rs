//! A copy of a session whose requests are batched differently: the items
//! of every signal in their order, cut into requests of a fixed number of
//! items (spans, log records; whole metrics), merging requests and
//! splitting them across resources and scopes, as a batching processor
//! does.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{ResourceMetrics, ScopeMetrics, metric};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};
use prost::Message;
use tape_otlp::{ExportRequest, Signal};
use tape_session::Record;

/// The records of one signal, re-batched into requests of `size` items
/// (metrics: of about `size` points, whole metrics), each received when
/// the last record it takes from was.
macro_rules! rebatch {
    ($name:ident, $request:ident, $resources:ident, $resource:ident, $scopes:ident, $scope:ident, $items:ident, $count:expr) => {
        fn $name(records: &[Record], size: u64) -> Vec<Record> {
            let mut out = Vec::new();
            let mut current = $request::default();
            let mut items = 0;
            for record in records {
                let request = $request::decode(record.payload.as_ref()).expect("a valid request");
                for resource in request.$resources {
                    for scope in resource.$scopes {
                        for item in scope.$items {
                            let last = current.$resources.last_mut().filter(|last| {
                                last.resource == resource.resource && last.schema_url == resource.schema_url
                            });
                            let last = match last {
                                Some(last) => last,
                                None => {
                                    current.$resources.push($resource {
                                        resource: resource.resource.clone(),
                                        schema_url: resource.schema_url.clone(),
                                        ..Default::default()
                                    });
                                    current.$resources.last_mut().expect("pushed")
                                }
                            };
                            let same = last
                                .$scopes
                                .last_mut()
                                .filter(|last| last.scope == scope.scope && last.schema_url == scope.schema_url);
                            let target = match same {
                                Some(target) => target,
                                None => {
                                    last.$scopes.push($scope {
                                        scope: scope.scope.clone(),
                                        schema_url: scope.schema_url.clone(),
                                        ..Default::default()
                                    });
                                    last.$scopes.last_mut().expect("pushed")
                                }
                            };
                            let count: fn(&_) -> u64 = $count;
                            items += count(&item);
                            target.$items.push(item);
                            if items >= size {
                                out.push(cut(&mut current, items, record.receive_time_unix_nano));
                                items = 0;
                            }
                        }
                    }
                }
            }
            if items > 0 {
                let last = records.last().map_or(0, |record| record.receive_time_unix_nano);
                out.push(cut(&mut current, items, last));
            }
            out
        }
    };
}

fn cut<M: Message + Default>(current: &mut M, items: u64, receive: u64) -> Record {
    let request = std::mem::take(current);
    Record { receive_time_unix_nano: receive, item_count: items, payload: request.encode_to_vec().into() }
}

rebatch!(spans, ExportTraceServiceRequest, resource_spans, ResourceSpans, scope_spans, ScopeSpans, spans, |_| 1);
rebatch!(logs, ExportLogsServiceRequest, resource_logs, ResourceLogs, scope_logs, ScopeLogs, log_records, |_| 1);
rebatch!(
    metrics,
    ExportMetricsServiceRequest,
    resource_metrics,
    ResourceMetrics,
    scope_metrics,
    ScopeMetrics,
    metrics,
    |metric: &opentelemetry_proto::tonic::metrics::v1::Metric| match &metric.data {
        Some(metric::Data::Gauge(data)) => data.data_points.len() as u64,
        Some(metric::Data::Sum(data)) => data.data_points.len() as u64,
        Some(metric::Data::Histogram(data)) => data.data_points.len() as u64,
        Some(metric::Data::ExponentialHistogram(data)) => data.data_points.len() as u64,
        Some(metric::Data::Summary(data)) => data.data_points.len() as u64,
        None => 0,
    }
);

/// `records` re-batched per signal into requests of `size` items, the
/// signals' requests in receive-time order.
pub fn rebatched(records: &[(Signal, Record)], size: u64) -> Vec<(Signal, Record)> {
    let of = |wanted: Signal| -> Vec<Record> {
        records.iter().filter(|(signal, _)| *signal == wanted).map(|(_, record)| record.clone()).collect()
    };
    let mut out: Vec<(Signal, Record)> = Vec::new();
    out.extend(spans(&of(Signal::Traces), size).into_iter().map(|record| (Signal::Traces, record)));
    out.extend(metrics(&of(Signal::Metrics), size).into_iter().map(|record| (Signal::Metrics, record)));
    out.extend(logs(&of(Signal::Logs), size).into_iter().map(|record| (Signal::Logs, record)));
    out.sort_by_key(|(_, record)| record.receive_time_unix_nano);
    for (signal, record) in &out {
        let request = ExportRequest::decode_protobuf(*signal, &record.payload).expect("re-encoded");
        assert_eq!(request.item_count(), record.item_count);
    }
    out
}
