//! Re-batching: incoming requests cut into single-item units (one span,
//! log record or data point with its resource and scope), buffered in
//! arrival order, and put together again into outgoing requests of a
//! fixed number of items, whatever requests the items came in.

use std::collections::{HashMap, HashSet, VecDeque};

use tape_otlp::proto::collector::logs::v1::ExportLogsServiceRequest;
use tape_otlp::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use tape_otlp::proto::collector::trace::v1::ExportTraceServiceRequest;
use tape_otlp::proto::logs::v1::{ResourceLogs, ScopeLogs};
use tape_otlp::proto::metrics::v1::metric::Data;
use tape_otlp::proto::metrics::v1::{
    ExponentialHistogram, Gauge, Histogram, Metric, ResourceMetrics, ScopeMetrics, Sum, Summary,
};
use tape_otlp::proto::trace::v1::{ResourceSpans, ScopeSpans};

/// A resource's place in the incoming stream: the request's number and
/// the resource's index in it.
type Origin = (u64, usize);

/// One signal's resource type, cut into units that hold one item each and
/// put together again.
pub(super) trait Batchable: Sized {
    /// The signal's export request.
    type Request;

    /// Each resource of `request`, as its single-item units in order.
    fn units(request: Self::Request) -> Vec<Vec<Self>>;

    /// One request of `units`, in order: consecutive units of the same
    /// resource share a resource entry, of the same scope a scope entry
    /// (and, for data points, of the same metric a metric).
    fn assemble(units: Vec<Self>) -> Self::Request;
}

/// Outgoing requests cut from a [`Buffer`].
pub(super) struct Batch<R> {
    /// The request.
    pub request: R,
    /// Its items.
    pub items: u64,
    /// Whether it holds items of more than one incoming request.
    pub merged: bool,
}

/// The buffered units of one signal, and what the cutting did to the
/// incoming resources.
pub(super) struct Buffer<T> {
    units: VecDeque<(Origin, T)>,
    batches: u64,
    last_batch_of: HashMap<Origin, u64>,
    split: HashSet<Origin>,
}

impl<T> Default for Buffer<T> {
    fn default() -> Self {
        Buffer { units: VecDeque::new(), batches: 0, last_batch_of: HashMap::new(), split: HashSet::new() }
    }
}

impl<T: Batchable> Buffer<T> {
    /// Buffers the items of incoming request number `number`; returns
    /// how many.
    pub fn push(&mut self, number: u64, request: T::Request) -> u64 {
        let before = self.units.len();
        for (index, units) in T::units(request).into_iter().enumerate() {
            self.units.extend(units.into_iter().map(|unit| ((number, index), unit)));
        }
        (self.units.len() - before) as u64
    }

    /// Cuts the buffered units into requests of `size` items; with
    /// `whole`, the rest too (a last, smaller request).
    pub fn cut(&mut self, size: usize, whole: bool) -> Vec<Batch<T::Request>> {
        let mut batches = Vec::new();
        while self.units.len() >= size || (whole && !self.units.is_empty()) {
            let take = size.min(self.units.len());
            let number = self.batches;
            self.batches += 1;
            let mut requests = HashSet::new();
            let mut units = Vec::with_capacity(take);
            for (origin, unit) in self.units.drain(..take) {
                requests.insert(origin.0);
                if self.last_batch_of.insert(origin, number).is_some_and(|last| last != number) {
                    self.split.insert(origin);
                }
                units.push(unit);
            }
            batches.push(Batch { request: T::assemble(units), items: take as u64, merged: requests.len() > 1 });
        }
        batches
    }

    /// Incoming resources whose items went out in more than one request.
    pub fn split_resources(&self) -> u64 {
        self.split.len() as u64
    }
}

/// Appends `scope` to `scopes`, into the last entry when it is of the
/// same scope (and schema).
macro_rules! merge_scope {
    ($scopes:expr, $scope:expr, $items:ident) => {{
        let scope = $scope;
        match $scopes.last_mut() {
            Some(last) if last.scope == scope.scope && last.schema_url == scope.schema_url => {
                last.$items.extend(scope.$items)
            }
            _ => $scopes.push(scope),
        }
    }};
}

/// Appends the single-scope resource `unit` to `resources`, into the last
/// entry when it is of the same resource (and schema), with `merge` for
/// its scope.
macro_rules! merge_resource {
    ($resources:expr, $unit:expr, $scopes:ident, $merge:expr) => {{
        let mut unit = $unit;
        match $resources.last_mut() {
            Some(last) if last.resource == unit.resource && last.schema_url == unit.schema_url => {
                for scope in std::mem::take(&mut unit.$scopes) {
                    $merge(&mut last.$scopes, scope);
                }
            }
            _ => $resources.push(unit),
        }
    }};
}

impl Batchable for ResourceSpans {
    type Request = ExportTraceServiceRequest;

    fn units(request: ExportTraceServiceRequest) -> Vec<Vec<Self>> {
        let resources = request.resource_spans.into_iter().map(|resource| {
            let ResourceSpans { resource, scope_spans, schema_url } = resource;
            let units = scope_spans.into_iter().flat_map(|scope| {
                let ScopeSpans { scope, spans, schema_url: scope_schema } = scope;
                spans.into_iter().map(move |span| ScopeSpans {
                    scope: scope.clone(),
                    spans: vec![span],
                    schema_url: scope_schema.clone(),
                })
            });
            units
                .map(|scope| ResourceSpans {
                    resource: resource.clone(),
                    scope_spans: vec![scope],
                    schema_url: schema_url.clone(),
                })
                .collect()
        });
        resources.collect()
    }

    fn assemble(units: Vec<Self>) -> ExportTraceServiceRequest {
        let mut resource_spans: Vec<ResourceSpans> = Vec::new();
        let merge = |scopes: &mut Vec<ScopeSpans>, scope: ScopeSpans| merge_scope!(scopes, scope, spans);
        for unit in units {
            merge_resource!(resource_spans, unit, scope_spans, merge);
        }
        ExportTraceServiceRequest { resource_spans }
    }
}

impl Batchable for ResourceLogs {
    type Request = ExportLogsServiceRequest;

    fn units(request: ExportLogsServiceRequest) -> Vec<Vec<Self>> {
        let resources = request.resource_logs.into_iter().map(|resource| {
            let ResourceLogs { resource, scope_logs, schema_url } = resource;
            let units = scope_logs.into_iter().flat_map(|scope| {
                let ScopeLogs { scope, log_records, schema_url: scope_schema } = scope;
                log_records.into_iter().map(move |record| ScopeLogs {
                    scope: scope.clone(),
                    log_records: vec![record],
                    schema_url: scope_schema.clone(),
                })
            });
            units
                .map(|scope| ResourceLogs {
                    resource: resource.clone(),
                    scope_logs: vec![scope],
                    schema_url: schema_url.clone(),
                })
                .collect()
        });
        resources.collect()
    }

    fn assemble(units: Vec<Self>) -> ExportLogsServiceRequest {
        let mut resource_logs: Vec<ResourceLogs> = Vec::new();
        let merge = |scopes: &mut Vec<ScopeLogs>, scope: ScopeLogs| merge_scope!(scopes, scope, log_records);
        for unit in units {
            merge_resource!(resource_logs, unit, scope_logs, merge);
        }
        ExportLogsServiceRequest { resource_logs }
    }
}

impl Batchable for ResourceMetrics {
    type Request = ExportMetricsServiceRequest;

    fn units(request: ExportMetricsServiceRequest) -> Vec<Vec<Self>> {
        let resources = request.resource_metrics.into_iter().map(|resource| {
            let ResourceMetrics { resource, scope_metrics, schema_url } = resource;
            let units = scope_metrics.into_iter().flat_map(|scope| {
                let ScopeMetrics { scope, metrics, schema_url: scope_schema } = scope;
                metrics.into_iter().flat_map(split_points).map(move |metric| ScopeMetrics {
                    scope: scope.clone(),
                    metrics: vec![metric],
                    schema_url: scope_schema.clone(),
                })
            });
            units
                .map(|scope| ResourceMetrics {
                    resource: resource.clone(),
                    scope_metrics: vec![scope],
                    schema_url: schema_url.clone(),
                })
                .collect()
        });
        resources.collect()
    }

    fn assemble(units: Vec<Self>) -> ExportMetricsServiceRequest {
        let mut resource_metrics: Vec<ResourceMetrics> = Vec::new();
        let merge = |scopes: &mut Vec<ScopeMetrics>, scope: ScopeMetrics| match scopes.last_mut() {
            Some(last) if last.scope == scope.scope && last.schema_url == scope.schema_url => {
                for metric in scope.metrics {
                    merge_metric(&mut last.metrics, metric);
                }
            }
            _ => scopes.push(scope),
        };
        for unit in units {
            merge_resource!(resource_metrics, unit, scope_metrics, merge);
        }
        ExportMetricsServiceRequest { resource_metrics }
    }
}

/// A metric as one metric per data point, each with the metric's name,
/// description, unit, metadata and aggregation. A metric without data
/// points has no items and gives none.
fn split_points(metric: Metric) -> Vec<Metric> {
    let Metric { name, description, unit, metadata, data } = metric;
    let with = |data: Data| Metric {
        name: name.clone(),
        description: description.clone(),
        unit: unit.clone(),
        metadata: metadata.clone(),
        data: Some(data),
    };
    match data {
        None => Vec::new(),
        Some(Data::Gauge(gauge)) => {
            gauge.data_points.into_iter().map(|point| with(Data::Gauge(Gauge { data_points: vec![point] }))).collect()
        }
        Some(Data::Sum(sum)) => (sum.data_points.into_iter())
            .map(|point| with(Data::Sum(Sum { data_points: vec![point], ..sum })))
            .collect(),
        Some(Data::Histogram(histogram)) => (histogram.data_points.into_iter())
            .map(|point| with(Data::Histogram(Histogram { data_points: vec![point], ..histogram })))
            .collect(),
        Some(Data::ExponentialHistogram(histogram)) => (histogram.data_points.into_iter())
            .map(|point| {
                with(Data::ExponentialHistogram(ExponentialHistogram { data_points: vec![point], ..histogram }))
            })
            .collect(),
        Some(Data::Summary(summary)) => (summary.data_points.into_iter())
            .map(|point| with(Data::Summary(Summary { data_points: vec![point] })))
            .collect(),
    }
}

/// Appends `metric`'s data points to the last of `metrics` when it is the
/// same metric (name, description, unit, metadata, type and
/// aggregation), else appends `metric`.
fn merge_metric(metrics: &mut Vec<Metric>, metric: Metric) {
    let Some(last) = metrics.last_mut() else {
        metrics.push(metric);
        return;
    };
    let same_header = last.name == metric.name
        && last.description == metric.description
        && last.unit == metric.unit
        && last.metadata == metric.metadata;
    let merged = match (same_header, &mut last.data, &metric.data) {
        (true, Some(Data::Gauge(into)), Some(Data::Gauge(from))) => {
            into.data_points.extend(from.data_points.iter().cloned());
            true
        }
        (true, Some(Data::Sum(into)), Some(Data::Sum(from)))
            if into.aggregation_temporality == from.aggregation_temporality
                && into.is_monotonic == from.is_monotonic =>
        {
            into.data_points.extend(from.data_points.iter().cloned());
            true
        }
        (true, Some(Data::Histogram(into)), Some(Data::Histogram(from)))
            if into.aggregation_temporality == from.aggregation_temporality =>
        {
            into.data_points.extend(from.data_points.iter().cloned());
            true
        }
        (true, Some(Data::ExponentialHistogram(into)), Some(Data::ExponentialHistogram(from)))
            if into.aggregation_temporality == from.aggregation_temporality =>
        {
            into.data_points.extend(from.data_points.iter().cloned());
            true
        }
        (true, Some(Data::Summary(into)), Some(Data::Summary(from))) => {
            into.data_points.extend(from.data_points.iter().cloned());
            true
        }
        _ => false,
    };
    if !merged {
        metrics.push(metric);
    }
}

#[cfg(test)]
mod tests {
    use tape_otlp::{ExportRequest, sample};

    use super::*;

    #[test]
    fn items_cut_into_batches_come_back_whole_and_in_order() {
        let mut buffer = Buffer::<ResourceSpans>::default();
        let requests = [sample::traces("a", 10, 0), sample::traces("b", 10, 1_000), sample::traces("a", 3, 2_000)];
        let mut spans = Vec::new();
        for (number, request) in requests.into_iter().enumerate() {
            spans.extend(request.resource_spans.iter().flat_map(|r| &r.scope_spans).flat_map(|s| s.spans.clone()));
            assert_eq!(buffer.push(number as u64, request), [10, 10, 3][number]);
        }
        let mut batches = buffer.cut(7, false);
        assert_eq!(batches.iter().map(|batch| batch.items).collect::<Vec<_>>(), [7, 7, 7]);
        batches.extend(buffer.cut(7, true));
        assert_eq!(batches.len(), 4);
        assert_eq!(batches[3].items, 2);
        // Batch 2 holds spans 8 to 10 of `a`, 1 to 4 of `b`: two resources.
        assert!(batches[1].merged && batches[1].request.resource_spans.len() == 2);
        // Every resource went out in two requests or more.
        assert_eq!(buffer.split_resources(), 3);
        let delivered: Vec<_> = batches
            .iter()
            .flat_map(|batch| &batch.request.resource_spans)
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| s.spans.clone())
            .collect();
        assert_eq!(delivered, spans);
    }

    #[test]
    fn data_points_keep_their_metric_and_rejoin_it() {
        let request = sample::metrics("a", 0);
        let points = ExportRequest::Metrics(request.clone()).item_count();
        let mut buffer = Buffer::<ResourceMetrics>::default();
        assert_eq!(buffer.push(0, request.clone()), points);
        let whole = buffer.cut(100, true);
        assert_eq!(whole.len(), 1);
        assert_eq!(whole[0].request, request, "all points in one batch give the request back");

        buffer.push(1, request.clone());
        let batches = buffer.cut(3, true);
        let items: u64 = batches.iter().map(|batch| ExportRequest::Metrics(batch.request.clone()).item_count()).sum();
        assert_eq!(items, points);
        assert!(batches.iter().all(|batch| !batch.merged));
    }
}
