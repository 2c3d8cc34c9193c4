//! Rows of `metrics_histogram` and `metrics_exponential_histogram`.

use arrow_array::builder::{Float64Builder, Int32Builder, ListBuilder, UInt32Builder, UInt64Builder};
use arrow_array::{ArrayRef, RecordBatch};
use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets;
use opentelemetry_proto::tonic::metrics::v1::{ExponentialHistogramDataPoint, HistogramDataPoint};

use super::super::attributes::{finish, record_batch};
use super::{CommonColumns, ExemplarColumns, Shared, f64_list, u64_list};
use crate::parquet::Table;

/// `metrics_histogram`.
pub(super) struct HistogramRows {
    with_phase: bool,
    pub(super) rows: usize,
    common: CommonColumns,
    count: UInt64Builder,
    sum: Float64Builder,
    bucket_counts: ListBuilder<UInt64Builder>,
    explicit_bounds: ListBuilder<Float64Builder>,
    exemplars: ExemplarColumns,
    tail: TailColumns,
}

impl HistogramRows {
    pub(super) fn new(with_phase: bool) -> Self {
        HistogramRows {
            with_phase,
            rows: 0,
            common: CommonColumns::new(with_phase),
            count: UInt64Builder::new(),
            sum: Float64Builder::new(),
            bucket_counts: u64_list(),
            explicit_bounds: f64_list(),
            exemplars: ExemplarColumns::new(),
            tail: TailColumns::new(),
        }
    }

    pub(super) fn append(&mut self, point: &HistogramDataPoint, temporality: i32, shared: &Shared<'_>) {
        self.common.append(shared, &point.attributes, point.start_time_unix_nano, point.time_unix_nano);
        self.count.append_value(point.count);
        self.sum.append_value(point.sum.unwrap_or_default());
        self.bucket_counts.values().append_slice(&point.bucket_counts);
        self.bucket_counts.append(true);
        self.explicit_bounds.values().append_slice(&point.explicit_bounds);
        self.explicit_bounds.append(true);
        self.exemplars.append(&point.exemplars);
        self.tail.append(point.flags, point.min, point.max, temporality);
        self.rows += 1;
    }

    pub(super) fn take(&mut self) -> RecordBatch {
        self.rows = 0;
        let mut columns = Vec::new();
        self.common.finish_into(&mut columns);
        columns.push(finish(&mut self.count));
        columns.push(finish(&mut self.sum));
        columns.push(finish(&mut self.bucket_counts));
        columns.push(finish(&mut self.explicit_bounds));
        self.exemplars.finish_into(&mut columns);
        self.tail.finish_into(&mut columns);
        self.common.context.finish_into(&mut columns);
        record_batch(Table::MetricsHistogram.schema(self.with_phase), columns)
    }
}

/// `metrics_exponential_histogram`.
pub(super) struct ExponentialRows {
    with_phase: bool,
    pub(super) rows: usize,
    common: CommonColumns,
    count: UInt64Builder,
    sum: Float64Builder,
    scale: Int32Builder,
    zero_count: UInt64Builder,
    positive_offset: Int32Builder,
    positive_bucket_counts: ListBuilder<UInt64Builder>,
    negative_offset: Int32Builder,
    negative_bucket_counts: ListBuilder<UInt64Builder>,
    exemplars: ExemplarColumns,
    tail: TailColumns,
}

impl ExponentialRows {
    pub(super) fn new(with_phase: bool) -> Self {
        ExponentialRows {
            with_phase,
            rows: 0,
            common: CommonColumns::new(with_phase),
            count: UInt64Builder::new(),
            sum: Float64Builder::new(),
            scale: Int32Builder::new(),
            zero_count: UInt64Builder::new(),
            positive_offset: Int32Builder::new(),
            positive_bucket_counts: u64_list(),
            negative_offset: Int32Builder::new(),
            negative_bucket_counts: u64_list(),
            exemplars: ExemplarColumns::new(),
            tail: TailColumns::new(),
        }
    }

    pub(super) fn append(&mut self, point: &ExponentialHistogramDataPoint, temporality: i32, shared: &Shared<'_>) {
        self.common.append(shared, &point.attributes, point.start_time_unix_nano, point.time_unix_nano);
        self.count.append_value(point.count);
        self.sum.append_value(point.sum.unwrap_or_default());
        self.scale.append_value(point.scale);
        self.zero_count.append_value(point.zero_count);
        append_buckets(&mut self.positive_offset, &mut self.positive_bucket_counts, point.positive.as_ref());
        append_buckets(&mut self.negative_offset, &mut self.negative_bucket_counts, point.negative.as_ref());
        self.exemplars.append(&point.exemplars);
        self.tail.append(point.flags, point.min, point.max, temporality);
        self.rows += 1;
    }

    pub(super) fn take(&mut self) -> RecordBatch {
        self.rows = 0;
        let mut columns = Vec::new();
        self.common.finish_into(&mut columns);
        columns.push(finish(&mut self.count));
        columns.push(finish(&mut self.sum));
        columns.push(finish(&mut self.scale));
        columns.push(finish(&mut self.zero_count));
        columns.push(finish(&mut self.positive_offset));
        columns.push(finish(&mut self.positive_bucket_counts));
        columns.push(finish(&mut self.negative_offset));
        columns.push(finish(&mut self.negative_bucket_counts));
        self.exemplars.finish_into(&mut columns);
        self.tail.finish_into(&mut columns);
        self.common.context.finish_into(&mut columns);
        record_batch(Table::MetricsExponentialHistogram.schema(self.with_phase), columns)
    }
}

/// An exponential histogram's buckets of one sign: offset 0 and no counts
/// when absent.
fn append_buckets(offset: &mut Int32Builder, counts: &mut ListBuilder<UInt64Builder>, buckets: Option<&Buckets>) {
    offset.append_value(buckets.map_or(0, |buckets| buckets.offset));
    counts.values().append_slice(buckets.map_or(&[][..], |buckets| &buckets.bucket_counts));
    counts.append(true);
}

/// The columns both histogram tables end with, after the exemplars:
/// `Flags`, `Min`, `Max` (null when absent), `AggregationTemporality`.
struct TailColumns {
    flags: UInt32Builder,
    min: Float64Builder,
    max: Float64Builder,
    aggregation_temporality: Int32Builder,
}

impl TailColumns {
    fn new() -> Self {
        TailColumns {
            flags: UInt32Builder::new(),
            min: Float64Builder::new(),
            max: Float64Builder::new(),
            aggregation_temporality: Int32Builder::new(),
        }
    }

    fn append(&mut self, flags: u32, min: Option<f64>, max: Option<f64>, temporality: i32) {
        self.flags.append_value(flags);
        self.min.append_option(min);
        self.max.append_option(max);
        self.aggregation_temporality.append_value(temporality);
    }

    fn finish_into(&mut self, columns: &mut Vec<ArrayRef>) {
        columns.push(finish(&mut self.flags));
        columns.push(finish(&mut self.min));
        columns.push(finish(&mut self.max));
        columns.push(finish(&mut self.aggregation_temporality));
    }
}
