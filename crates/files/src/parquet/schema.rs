//! The tables of a Parquet export and their columns: the schema of the
//! OpenTelemetry Collector's ClickHouse exporter (`otel_traces`,
//! `otel_logs`, `otel_metrics_*`), one row per span, log record or data
//! point, plus `SessionId`, `ReceiveTime` and `Phase`.
//!
//! ClickHouse's `Nested` columns are flattened as ClickHouse shows them:
//! `Events.Timestamp`, `Events.Name`, ... are list columns of equal length
//! per row. Attributes are `map<string, string>` with the values rendered
//! as the exporter renders them (see `attributes`). Timestamps are
//! nanoseconds since the epoch, UTC; ids are lower-case hex, empty when
//! absent.

use std::fmt;
use std::sync::{Arc, LazyLock};

use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use tape_otlp::Signal;

/// One table of a Parquet export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Table {
    /// Spans: `traces.parquet`.
    Traces,
    /// Log records: `logs.parquet`.
    Logs,
    /// Gauge data points: `metrics_gauge.parquet`.
    MetricsGauge,
    /// Sum data points: `metrics_sum.parquet`.
    MetricsSum,
    /// Histogram data points: `metrics_histogram.parquet`.
    MetricsHistogram,
    /// Exponential histogram data points: `metrics_exponential_histogram.parquet`.
    MetricsExponentialHistogram,
    /// Summary data points: `metrics_summary.parquet`.
    MetricsSummary,
}

impl Table {
    /// Every table, in file order.
    pub const ALL: [Table; 7] = [
        Table::Traces,
        Table::Logs,
        Table::MetricsGauge,
        Table::MetricsSum,
        Table::MetricsHistogram,
        Table::MetricsExponentialHistogram,
        Table::MetricsSummary,
    ];

    /// The table's name: `traces`, `metrics_sum`, ...
    pub fn name(self) -> &'static str {
        match self {
            Table::Traces => "traces",
            Table::Logs => "logs",
            Table::MetricsGauge => "metrics_gauge",
            Table::MetricsSum => "metrics_sum",
            Table::MetricsHistogram => "metrics_histogram",
            Table::MetricsExponentialHistogram => "metrics_exponential_histogram",
            Table::MetricsSummary => "metrics_summary",
        }
    }

    /// The table's file name: `traces.parquet`, ...
    pub fn file_name(self) -> String {
        format!("{}.parquet", self.name())
    }

    /// The signal whose records fill the table.
    pub fn signal(self) -> Signal {
        match self {
            Table::Traces => Signal::Traces,
            Table::Logs => Signal::Logs,
            _ => Signal::Metrics,
        }
    }

    /// The tables a signal's records fill.
    pub fn of(signal: Signal) -> &'static [Table] {
        match signal {
            Signal::Traces => &Table::ALL[0..1],
            Signal::Logs => &Table::ALL[1..2],
            Signal::Metrics => &Table::ALL[2..],
        }
    }

    /// The table's schema, with the `Phase` column or, for a file of a
    /// Hive-partitioned export (`Phase=<name>/`), without it.
    pub fn schema(self, with_phase: bool) -> SchemaRef {
        static SCHEMAS: LazyLock<Vec<(SchemaRef, SchemaRef)>> = LazyLock::new(|| {
            Table::ALL
                .into_iter()
                .map(|table| {
                    let with = build_schema(table, true);
                    let without = build_schema(table, false);
                    (Arc::new(with), Arc::new(without))
                })
                .collect()
        });
        let (with, without) = &SCHEMAS[self as usize];
        Arc::clone(if with_phase { with } else { without })
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The session's id: every table's first extra column.
pub const SESSION_ID: &str = "SessionId";
/// When the record (request) was received: every table's second extra column.
pub const RECEIVE_TIME: &str = "ReceiveTime";
/// The phase of the receive time, `unlabelled` outside every phase: the
/// last column, left out of the files of a Hive-partitioned export.
pub const PHASE: &str = "Phase";

/// Nanosecond timestamps, UTC.
pub fn timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
}

/// The entries of an attributes map: `key_value` structs of a `key` and a
/// `value`, the names Parquet's own map type uses.
pub fn map_entries() -> Field {
    Field::new(
        "key_value",
        DataType::Struct(Fields::from(vec![
            Field::new("key", DataType::Utf8, false),
            Field::new("value", DataType::Utf8, false),
        ])),
        false,
    )
}

/// An attributes map, `map<string, string>`.
pub fn attributes() -> DataType {
    DataType::Map(Arc::new(map_entries()), false)
}

/// A list of `item`.
pub fn list(item: DataType) -> DataType {
    DataType::List(Arc::new(Field::new("element", item, false)))
}

fn string(name: &str) -> Field {
    Field::new(name, DataType::Utf8, false)
}

fn field(name: &str, data_type: DataType) -> Field {
    Field::new(name, data_type, false)
}

fn nullable(name: &str, data_type: DataType) -> Field {
    Field::new(name, data_type, true)
}

fn build_schema(table: Table, with_phase: bool) -> Schema {
    let mut fields = match table {
        Table::Traces => traces(),
        Table::Logs => logs(),
        Table::MetricsGauge => {
            metric(&[field("Value", DataType::Float64), field("Flags", DataType::UInt32)], true, &[])
        }
        Table::MetricsSum => metric(
            &[field("Value", DataType::Float64), field("Flags", DataType::UInt32)],
            true,
            &[field("AggregationTemporality", DataType::Int32), field("IsMonotonic", DataType::Boolean)],
        ),
        Table::MetricsHistogram => metric(
            &[
                field("Count", DataType::UInt64),
                field("Sum", DataType::Float64),
                field("BucketCounts", list(DataType::UInt64)),
                field("ExplicitBounds", list(DataType::Float64)),
            ],
            true,
            &[
                field("Flags", DataType::UInt32),
                nullable("Min", DataType::Float64),
                nullable("Max", DataType::Float64),
                field("AggregationTemporality", DataType::Int32),
            ],
        ),
        Table::MetricsExponentialHistogram => metric(
            &[
                field("Count", DataType::UInt64),
                field("Sum", DataType::Float64),
                field("Scale", DataType::Int32),
                field("ZeroCount", DataType::UInt64),
                field("PositiveOffset", DataType::Int32),
                field("PositiveBucketCounts", list(DataType::UInt64)),
                field("NegativeOffset", DataType::Int32),
                field("NegativeBucketCounts", list(DataType::UInt64)),
            ],
            true,
            &[
                field("Flags", DataType::UInt32),
                nullable("Min", DataType::Float64),
                nullable("Max", DataType::Float64),
                field("AggregationTemporality", DataType::Int32),
            ],
        ),
        Table::MetricsSummary => metric(
            &[
                field("Count", DataType::UInt64),
                field("Sum", DataType::Float64),
                field("ValueAtQuantiles.Quantile", list(DataType::Float64)),
                field("ValueAtQuantiles.Value", list(DataType::Float64)),
                field("Flags", DataType::UInt32),
            ],
            false,
            &[],
        ),
    };
    fields.push(string(SESSION_ID));
    fields.push(field(RECEIVE_TIME, timestamp()));
    if with_phase {
        fields.push(string(PHASE));
    }
    Schema::new(fields)
}

/// `otel_traces`.
fn traces() -> Vec<Field> {
    vec![
        field("Timestamp", timestamp()),
        string("TraceId"),
        string("SpanId"),
        string("ParentSpanId"),
        string("TraceState"),
        string("SpanName"),
        string("SpanKind"),
        string("ServiceName"),
        field("ResourceAttributes", attributes()),
        string("ScopeName"),
        string("ScopeVersion"),
        field("SpanAttributes", attributes()),
        field("Duration", DataType::UInt64),
        string("StatusCode"),
        string("StatusMessage"),
        field("Events.Timestamp", list(timestamp())),
        field("Events.Name", list(DataType::Utf8)),
        field("Events.Attributes", list(attributes())),
        field("Links.TraceId", list(DataType::Utf8)),
        field("Links.SpanId", list(DataType::Utf8)),
        field("Links.TraceState", list(DataType::Utf8)),
        field("Links.Attributes", list(attributes())),
    ]
}

/// `otel_logs` (without its derived `TimestampTime`).
fn logs() -> Vec<Field> {
    vec![
        field("Timestamp", timestamp()),
        string("TraceId"),
        string("SpanId"),
        field("TraceFlags", DataType::UInt8),
        string("SeverityText"),
        field("SeverityNumber", DataType::UInt8),
        string("ServiceName"),
        string("Body"),
        string("ResourceSchemaUrl"),
        field("ResourceAttributes", attributes()),
        string("ScopeSchemaUrl"),
        string("ScopeName"),
        string("ScopeVersion"),
        field("ScopeAttributes", attributes()),
        field("LogAttributes", attributes()),
        string("EventName"),
    ]
}

/// `otel_metrics_*`: the columns every metric table shares, then the
/// point's own columns, the exemplars when the point type has them, and
/// the columns after them.
fn metric(own: &[Field], exemplars: bool, after: &[Field]) -> Vec<Field> {
    let mut fields = vec![
        field("ResourceAttributes", attributes()),
        string("ResourceSchemaUrl"),
        string("ScopeName"),
        string("ScopeVersion"),
        field("ScopeAttributes", attributes()),
        field("ScopeDroppedAttrCount", DataType::UInt32),
        string("ScopeSchemaUrl"),
        string("ServiceName"),
        string("MetricName"),
        string("MetricDescription"),
        string("MetricUnit"),
        field("Attributes", attributes()),
        field("StartTimeUnix", timestamp()),
        field("TimeUnix", timestamp()),
    ];
    fields.extend_from_slice(own);
    if exemplars {
        fields.extend([
            field("Exemplars.FilteredAttributes", list(attributes())),
            field("Exemplars.TimeUnix", list(timestamp())),
            field("Exemplars.Value", list(DataType::Float64)),
            field("Exemplars.SpanId", list(DataType::Utf8)),
            field("Exemplars.TraceId", list(DataType::Utf8)),
        ]);
    }
    fields.extend_from_slice(after);
    fields
}
