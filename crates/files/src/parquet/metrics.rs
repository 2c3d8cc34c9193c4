//! Rows of the five `metrics_*` tables: one per data point, in the table
//! of its metric's type, as the Collector's ClickHouse exporter writes
//! `otel_metrics_gauge`, `_sum`, `_histogram`, `_exponential_histogram`
//! and `_summary`.

use arrow_array::builder::{
    BooleanBuilder, Float64Builder, Int32Builder, ListBuilder, StringBuilder, TimestampNanosecondBuilder,
    UInt32Builder, UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::DataType;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{
    Exemplar, Metric, NumberDataPoint, SummaryDataPoint, exemplar, metric, number_data_point,
};

use super::attributes::{
    AttributesBuilder, ContextColumns, RenderedAttributes, append_attributes, append_id, attributes_builder, finish,
    list_builder, nanos, record_batch, service_name, timestamp_builder,
};
use super::{RowContext, Table, schema};

mod histograms;

use self::histograms::{ExponentialRows, HistogramRows};

/// The rows of the five `metrics_*` tables being built.
pub(super) struct MetricsRows {
    gauge: Box<NumberRows>,
    sum: Box<NumberRows>,
    histogram: Box<HistogramRows>,
    exponential: Box<ExponentialRows>,
    summary: Box<SummaryRows>,
}

/// What the data points of one metric share.
struct Shared<'a> {
    resource: &'a RenderedAttributes,
    resource_schema_url: &'a str,
    scope_name: &'a str,
    scope_version: &'a str,
    scope: &'a RenderedAttributes,
    scope_dropped: u32,
    scope_schema_url: &'a str,
    service: &'a str,
    metric: &'a Metric,
    context: &'a RowContext<'a>,
}

impl MetricsRows {
    pub(super) fn new(with_phase: bool) -> Self {
        MetricsRows {
            gauge: Box::new(NumberRows::new(Table::MetricsGauge, with_phase)),
            sum: Box::new(NumberRows::new(Table::MetricsSum, with_phase)),
            histogram: Box::new(HistogramRows::new(with_phase)),
            exponential: Box::new(ExponentialRows::new(with_phase)),
            summary: Box::new(SummaryRows::new(with_phase)),
        }
    }

    pub(super) fn append(&mut self, request: &ExportMetricsServiceRequest, context: &RowContext<'_>) -> u64 {
        let mut appended = 0;
        for resource_metrics in &request.resource_metrics {
            let attributes = resource_metrics.resource.as_ref().map_or(&[][..], |resource| &resource.attributes);
            let resource = RenderedAttributes::new(attributes);
            for scope_metrics in &resource_metrics.scope_metrics {
                let scope = scope_metrics.scope.as_ref();
                let scope_attributes = RenderedAttributes::new(scope.map_or(&[][..], |scope| &scope.attributes));
                for metric in &scope_metrics.metrics {
                    let shared = Shared {
                        resource: &resource,
                        resource_schema_url: &resource_metrics.schema_url,
                        scope_name: scope.map_or("", |scope| &scope.name),
                        scope_version: scope.map_or("", |scope| &scope.version),
                        scope: &scope_attributes,
                        scope_dropped: scope.map_or(0, |scope| scope.dropped_attributes_count),
                        scope_schema_url: &scope_metrics.schema_url,
                        service: service_name(attributes),
                        metric,
                        context,
                    };
                    appended += self.append_metric(&shared);
                }
            }
        }
        appended
    }

    fn append_metric(&mut self, shared: &Shared<'_>) -> u64 {
        let points = match &shared.metric.data {
            None => 0,
            Some(metric::Data::Gauge(gauge)) => {
                gauge.data_points.iter().for_each(|point| self.gauge.append(point, None, shared));
                gauge.data_points.len()
            }
            Some(metric::Data::Sum(sum)) => {
                let kind = Some((sum.aggregation_temporality, sum.is_monotonic));
                sum.data_points.iter().for_each(|point| self.sum.append(point, kind, shared));
                sum.data_points.len()
            }
            Some(metric::Data::Histogram(histogram)) => {
                let temporality = histogram.aggregation_temporality;
                histogram.data_points.iter().for_each(|point| self.histogram.append(point, temporality, shared));
                histogram.data_points.len()
            }
            Some(metric::Data::ExponentialHistogram(histogram)) => {
                let temporality = histogram.aggregation_temporality;
                histogram.data_points.iter().for_each(|point| self.exponential.append(point, temporality, shared));
                histogram.data_points.len()
            }
            Some(metric::Data::Summary(summary)) => {
                summary.data_points.iter().for_each(|point| self.summary.append(point, shared));
                summary.data_points.len()
            }
        };
        points as u64
    }

    pub(super) fn buffered(&self, table: Table) -> usize {
        match table {
            Table::MetricsGauge => self.gauge.rows,
            Table::MetricsSum => self.sum.rows,
            Table::MetricsHistogram => self.histogram.rows,
            Table::MetricsExponentialHistogram => self.exponential.rows,
            Table::MetricsSummary => self.summary.rows,
            Table::Traces | Table::Logs => 0,
        }
    }

    pub(super) fn take(&mut self, table: Table) -> Option<RecordBatch> {
        if self.buffered(table) == 0 {
            return None;
        }
        Some(match table {
            Table::MetricsGauge => self.gauge.take(),
            Table::MetricsSum => self.sum.take(),
            Table::MetricsHistogram => self.histogram.take(),
            Table::MetricsExponentialHistogram => self.exponential.take(),
            Table::MetricsSummary => self.summary.take(),
            Table::Traces | Table::Logs => return None,
        })
    }
}

/// The columns every metrics table starts with, from the resource, the
/// scope, the metric and the point's attributes and times, and the
/// context columns it ends with.
struct CommonColumns {
    resource_attributes: AttributesBuilder,
    resource_schema_url: StringBuilder,
    scope_name: StringBuilder,
    scope_version: StringBuilder,
    scope_attributes: AttributesBuilder,
    scope_dropped_attr_count: UInt32Builder,
    scope_schema_url: StringBuilder,
    service_name: StringBuilder,
    metric_name: StringBuilder,
    metric_description: StringBuilder,
    metric_unit: StringBuilder,
    attributes: AttributesBuilder,
    start_time_unix: TimestampNanosecondBuilder,
    time_unix: TimestampNanosecondBuilder,
    context: ContextColumns,
}

impl CommonColumns {
    fn new(with_phase: bool) -> Self {
        CommonColumns {
            resource_attributes: attributes_builder(),
            resource_schema_url: StringBuilder::new(),
            scope_name: StringBuilder::new(),
            scope_version: StringBuilder::new(),
            scope_attributes: attributes_builder(),
            scope_dropped_attr_count: UInt32Builder::new(),
            scope_schema_url: StringBuilder::new(),
            service_name: StringBuilder::new(),
            metric_name: StringBuilder::new(),
            metric_description: StringBuilder::new(),
            metric_unit: StringBuilder::new(),
            attributes: attributes_builder(),
            start_time_unix: timestamp_builder(),
            time_unix: timestamp_builder(),
            context: ContextColumns::new(with_phase),
        }
    }

    fn append(&mut self, shared: &Shared<'_>, attributes: &[KeyValue], start: u64, time: u64) {
        shared.resource.append_to(&mut self.resource_attributes);
        self.resource_schema_url.append_value(shared.resource_schema_url);
        self.scope_name.append_value(shared.scope_name);
        self.scope_version.append_value(shared.scope_version);
        shared.scope.append_to(&mut self.scope_attributes);
        self.scope_dropped_attr_count.append_value(shared.scope_dropped);
        self.scope_schema_url.append_value(shared.scope_schema_url);
        self.service_name.append_value(shared.service);
        self.metric_name.append_value(&shared.metric.name);
        self.metric_description.append_value(&shared.metric.description);
        self.metric_unit.append_value(&shared.metric.unit);
        append_attributes(&mut self.attributes, attributes);
        self.start_time_unix.append_value(nanos(start));
        self.time_unix.append_value(nanos(time));
        self.context.append(shared.context);
    }

    /// The leading columns, leaving them empty.
    fn finish_into(&mut self, columns: &mut Vec<ArrayRef>) {
        columns.push(finish(&mut self.resource_attributes));
        columns.push(finish(&mut self.resource_schema_url));
        columns.push(finish(&mut self.scope_name));
        columns.push(finish(&mut self.scope_version));
        columns.push(finish(&mut self.scope_attributes));
        columns.push(finish(&mut self.scope_dropped_attr_count));
        columns.push(finish(&mut self.scope_schema_url));
        columns.push(finish(&mut self.service_name));
        columns.push(finish(&mut self.metric_name));
        columns.push(finish(&mut self.metric_description));
        columns.push(finish(&mut self.metric_unit));
        columns.push(finish(&mut self.attributes));
        columns.push(finish(&mut self.start_time_unix));
        columns.push(finish(&mut self.time_unix));
    }
}

/// The `Exemplars.*` columns.
struct ExemplarColumns {
    filtered_attributes: ListBuilder<AttributesBuilder>,
    time_unix: ListBuilder<TimestampNanosecondBuilder>,
    value: ListBuilder<Float64Builder>,
    span_id: ListBuilder<StringBuilder>,
    trace_id: ListBuilder<StringBuilder>,
}

impl ExemplarColumns {
    fn new() -> Self {
        ExemplarColumns {
            filtered_attributes: list_builder(attributes_builder(), schema::attributes()),
            time_unix: list_builder(timestamp_builder(), schema::timestamp()),
            value: list_builder(Float64Builder::new(), DataType::Float64),
            span_id: list_builder(StringBuilder::new(), DataType::Utf8),
            trace_id: list_builder(StringBuilder::new(), DataType::Utf8),
        }
    }

    fn append(&mut self, exemplars: &[Exemplar]) {
        for exemplar in exemplars {
            append_attributes(self.filtered_attributes.values(), &exemplar.filtered_attributes);
            self.time_unix.values().append_value(nanos(exemplar.time_unix_nano));
            self.value.values().append_value(match exemplar.value {
                Some(exemplar::Value::AsDouble(value)) => value,
                Some(exemplar::Value::AsInt(value)) => int_as_double(value),
                None => 0.0,
            });
            append_id(self.span_id.values(), &exemplar.span_id);
            append_id(self.trace_id.values(), &exemplar.trace_id);
        }
        self.filtered_attributes.append(true);
        self.time_unix.append(true);
        self.value.append(true);
        self.span_id.append(true);
        self.trace_id.append(true);
    }

    fn finish_into(&mut self, columns: &mut Vec<ArrayRef>) {
        columns.push(finish(&mut self.filtered_attributes));
        columns.push(finish(&mut self.time_unix));
        columns.push(finish(&mut self.value));
        columns.push(finish(&mut self.span_id));
        columns.push(finish(&mut self.trace_id));
    }
}

/// An integer value as the exporter stores it, `float64(v)`: beyond 2^53
/// it rounds to the nearest double.
#[allow(clippy::cast_precision_loss)]
fn int_as_double(value: i64) -> f64 {
    value as f64
}

/// A list column of unsigned integers.
fn u64_list() -> ListBuilder<UInt64Builder> {
    list_builder(UInt64Builder::new(), DataType::UInt64)
}

/// A list column of doubles.
fn f64_list() -> ListBuilder<Float64Builder> {
    list_builder(Float64Builder::new(), DataType::Float64)
}

/// `metrics_gauge` or, with the sum's columns, `metrics_sum`.
struct NumberRows {
    table: Table,
    with_phase: bool,
    rows: usize,
    common: CommonColumns,
    value: Float64Builder,
    flags: UInt32Builder,
    exemplars: ExemplarColumns,
    aggregation_temporality: Int32Builder,
    is_monotonic: BooleanBuilder,
}

impl NumberRows {
    fn new(table: Table, with_phase: bool) -> Self {
        NumberRows {
            table,
            with_phase,
            rows: 0,
            common: CommonColumns::new(with_phase),
            value: Float64Builder::new(),
            flags: UInt32Builder::new(),
            exemplars: ExemplarColumns::new(),
            aggregation_temporality: Int32Builder::new(),
            is_monotonic: BooleanBuilder::new(),
        }
    }

    /// Appends a point; `sum` is the sum's temporality and monotonicity.
    fn append(&mut self, point: &NumberDataPoint, sum: Option<(i32, bool)>, shared: &Shared<'_>) {
        self.common.append(shared, &point.attributes, point.start_time_unix_nano, point.time_unix_nano);
        self.value.append_value(match point.value {
            Some(number_data_point::Value::AsDouble(value)) => value,
            Some(number_data_point::Value::AsInt(value)) => int_as_double(value),
            None => 0.0,
        });
        self.flags.append_value(point.flags);
        self.exemplars.append(&point.exemplars);
        if let Some((temporality, monotonic)) = sum {
            self.aggregation_temporality.append_value(temporality);
            self.is_monotonic.append_value(monotonic);
        }
        self.rows += 1;
    }

    fn take(&mut self) -> RecordBatch {
        self.rows = 0;
        let mut columns = Vec::new();
        self.common.finish_into(&mut columns);
        columns.push(finish(&mut self.value));
        columns.push(finish(&mut self.flags));
        self.exemplars.finish_into(&mut columns);
        if self.table == Table::MetricsSum {
            columns.push(finish(&mut self.aggregation_temporality));
            columns.push(finish(&mut self.is_monotonic));
        }
        self.common.context.finish_into(&mut columns);
        record_batch(self.table.schema(self.with_phase), columns)
    }
}

/// `metrics_summary`.
struct SummaryRows {
    with_phase: bool,
    rows: usize,
    common: CommonColumns,
    count: UInt64Builder,
    sum: Float64Builder,
    quantile: ListBuilder<Float64Builder>,
    value: ListBuilder<Float64Builder>,
    flags: UInt32Builder,
}

impl SummaryRows {
    fn new(with_phase: bool) -> Self {
        SummaryRows {
            with_phase,
            rows: 0,
            common: CommonColumns::new(with_phase),
            count: UInt64Builder::new(),
            sum: Float64Builder::new(),
            quantile: f64_list(),
            value: f64_list(),
            flags: UInt32Builder::new(),
        }
    }

    fn append(&mut self, point: &SummaryDataPoint, shared: &Shared<'_>) {
        self.common.append(shared, &point.attributes, point.start_time_unix_nano, point.time_unix_nano);
        self.count.append_value(point.count);
        self.sum.append_value(point.sum);
        for quantile in &point.quantile_values {
            self.quantile.values().append_value(quantile.quantile);
            self.value.values().append_value(quantile.value);
        }
        self.quantile.append(true);
        self.value.append(true);
        self.flags.append_value(point.flags);
        self.rows += 1;
    }

    fn take(&mut self) -> RecordBatch {
        self.rows = 0;
        let mut columns = Vec::new();
        self.common.finish_into(&mut columns);
        columns.push(finish(&mut self.count));
        columns.push(finish(&mut self.sum));
        columns.push(finish(&mut self.quantile));
        columns.push(finish(&mut self.value));
        columns.push(finish(&mut self.flags));
        self.common.context.finish_into(&mut columns);
        record_batch(Table::MetricsSummary.schema(self.with_phase), columns)
    }
}
