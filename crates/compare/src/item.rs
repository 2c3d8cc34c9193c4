//! One item of a session (a span, a log record or a metric data point)
//! with what it shares with the items of its resource and scope: the unit
//! the comparison matches.

use std::sync::Arc;

use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::metrics::v1::{
    ExponentialHistogramDataPoint, HistogramDataPoint, NumberDataPoint, SummaryDataPoint,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span;
use tape_otlp::Signal;

/// Where an item came from on its side: the replay pass (0 on the actual
/// side and without a replay report) and the index of its record in the
/// session's order (blobs in metadata order, records in blob order).
/// Every item of one expected record moved by one timestamp shift.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Origin {
    /// The replay pass, from 0.
    pub pass: u64,
    /// The record's index in its session.
    pub record: u64,
}

/// What the items of one resource and scope share.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Scope {
    /// The resource (attributes as received, in their order).
    pub resource: Resource,
    /// The resource's schema URL.
    pub resource_schema_url: String,
    /// The instrumentation scope.
    pub scope: InstrumentationScope,
    /// The scope's schema URL.
    pub scope_schema_url: String,
    /// The resource's `service.name` (`unknown_service` without one): what
    /// counts are grouped by.
    pub service: String,
}

/// A metric data point with its metric's description.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// The metric's name.
    pub name: String,
    /// The metric's description.
    pub description: String,
    /// The metric's unit.
    pub unit: String,
    /// The point and its metric's type.
    pub value: PointValue,
}

/// A data point of one of the five metric types, with the type's
/// aggregation fields.
#[derive(Debug, Clone, PartialEq)]
pub enum PointValue {
    /// A gauge's point.
    Gauge(NumberDataPoint),
    /// A sum's point.
    Sum {
        /// The point.
        point: NumberDataPoint,
        /// The sum's aggregation temporality.
        temporality: i32,
        /// Whether the sum is monotonic.
        monotonic: bool,
    },
    /// A histogram's point.
    Histogram {
        /// The point.
        point: HistogramDataPoint,
        /// The histogram's aggregation temporality.
        temporality: i32,
    },
    /// An exponential histogram's point.
    ExponentialHistogram {
        /// The point.
        point: ExponentialHistogramDataPoint,
        /// The histogram's aggregation temporality.
        temporality: i32,
    },
    /// A summary's point.
    Summary(SummaryDataPoint),
}

/// The item itself.
#[derive(Debug, Clone, PartialEq)]
pub enum ItemBody {
    /// A span.
    Span(Span),
    /// A log record.
    Log(LogRecord),
    /// A metric data point.
    Point(Point),
}

/// One item of a session, on the expected side with the replay's id
/// remapping of its pass applied (ids as the replay sent them), on the
/// actual side as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// Where it came from.
    pub origin: Origin,
    /// Its resource and scope, shared with the items next to it.
    pub scope: Arc<Scope>,
    /// The item.
    pub body: ItemBody,
}

impl Item {
    /// Its signal.
    pub fn signal(&self) -> Signal {
        match self.body {
            ItemBody::Span(_) => Signal::Traces,
            ItemBody::Log(_) => Signal::Logs,
            ItemBody::Point(_) => Signal::Metrics,
        }
    }

    /// Its trace id when it has a valid one (spans; log records with one).
    pub fn trace_id(&self) -> Option<[u8; 16]> {
        let id = match &self.body {
            ItemBody::Span(span) => &span.trace_id,
            ItemBody::Log(record) => &record.trace_id,
            ItemBody::Point(_) => return None,
        };
        <[u8; 16]>::try_from(id.as_slice()).ok().filter(|id| *id != [0; 16])
    }
}
