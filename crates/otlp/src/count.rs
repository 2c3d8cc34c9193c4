//! Item counting: spans, metric data points and log records.

use crate::proto::collector::logs::v1::ExportLogsServiceRequest;
use crate::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use crate::proto::collector::trace::v1::ExportTraceServiceRequest;
use crate::proto::metrics::v1::Metric;
use crate::proto::metrics::v1::metric::Data;

/// The number of spans in a trace request.
pub(crate) fn spans(request: &ExportTraceServiceRequest) -> u64 {
    request.resource_spans.iter().flat_map(|resource| &resource.scope_spans).map(|scope| scope.spans.len() as u64).sum()
}

/// The number of data points in a metrics request, over every metric type.
pub(crate) fn data_points(request: &ExportMetricsServiceRequest) -> u64 {
    request
        .resource_metrics
        .iter()
        .flat_map(|resource| &resource.scope_metrics)
        .flat_map(|scope| &scope.metrics)
        .map(metric_data_points)
        .sum()
}

/// The number of data points of one metric.
pub(crate) fn metric_data_points(metric: &Metric) -> u64 {
    let points = match &metric.data {
        Some(Data::Gauge(gauge)) => gauge.data_points.len(),
        Some(Data::Sum(sum)) => sum.data_points.len(),
        Some(Data::Histogram(histogram)) => histogram.data_points.len(),
        Some(Data::ExponentialHistogram(histogram)) => histogram.data_points.len(),
        Some(Data::Summary(summary)) => summary.data_points.len(),
        None => 0,
    };
    points as u64
}

/// The number of log records in a logs request.
pub(crate) fn log_records(request: &ExportLogsServiceRequest) -> u64 {
    request
        .resource_logs
        .iter()
        .flat_map(|resource| &resource.scope_logs)
        .map(|scope| scope.log_records.len() as u64)
        .sum()
}
