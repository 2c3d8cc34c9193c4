//! Checking that bytes are an export request the full decoder accepts,
//! without decoding them.
//!
//! [`validate_request`] walks every field of every message against the
//! OTLP schema (the messages of `opentelemetry-proto` that
//! [`ExportRequest::decode_protobuf`](crate::ExportRequest::decode_protobuf)
//! builds): each known field must have the wire type its type is written
//! with (a repeated number may be packed or not, as protobuf allows),
//! strings must be UTF-8, messages may nest as deep as prost's recursion
//! limit lets them (100) and no deeper, and a `Metric` may hold one kind
//! of data (two of gauge, sum, histogram, exponential histogram and summary
//! would decode to the last, with other points than the bytes hold).
//! Unknown fields are skipped as the decoder skips them, except groups,
//! which OTLP never writes and which the wire rewrites of a replay do not
//! read.
//!
//! What it accepts, the full decoder accepts too, and the items it counts
//! are the items of the decoded request: the tests of this crate check
//! both on valid, truncated and mutated requests of every signal. It takes
//! two to four times as long as [`count_items`](super::count_items), which
//! checks only the path down to the items, and a fifth of a full decode, so
//! that a receiver can check every request in full before it acknowledges
//! it (`docs/PERFORMANCE.md`, issue 13).

use std::fmt;

use super::{FIXED32, FIXED64, LEN, VARINT};
use crate::Signal;

/// prost's recursion limit: a message may sit at most this many levels
/// below the request, and the fields of a message at this depth are
/// decoded but unknown ones are not skipped.
pub const RECURSION_LIMIT: u32 = 100;

/// Why bytes are not an export request the full decoder of their signal
/// accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidRequest {
    /// The signal the bytes were checked as.
    pub signal: Signal,
    /// Offset in the request of the field or value at fault.
    pub offset: usize,
    /// The field at fault, when the fault is in one.
    pub field: Option<FieldName>,
    /// What is wrong.
    pub problem: Problem,
    /// Another signal whose request the bytes are (with at least one item),
    /// when they are one: most often a request sent to the wrong endpoint.
    pub decodes_as: Option<Signal>,
}

/// A field of an OTLP message, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldName {
    /// The message, as the OTLP protos name it (`Span`, `Metric`).
    pub message: &'static str,
    /// The field number.
    pub number: u32,
    /// The field, as the OTLP protos name it; empty for a field the schema
    /// does not have.
    pub name: &'static str,
}

/// What is wrong with a request, for [`InvalidRequest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// The bytes are not protobuf: a varint or length that runs past the
    /// end, an invalid key, a group.
    Malformed(&'static str),
    /// A known field with another wire type than its type is written with.
    WireType {
        /// The wire type found.
        found: u8,
        /// What the schema has.
        expected: &'static str,
    },
    /// A string field that is not UTF-8.
    NotUtf8,
    /// A message nested deeper than the decoder's recursion limit.
    TooDeep,
    /// A packed repeated fixed64 or double whose length is not a multiple
    /// of 8.
    PackedLength,
    /// A `Metric` with a second kind of data.
    SecondMetricData {
        /// The kind of data the metric had first.
        first: &'static str,
    },
}

impl fmt::Display for FieldName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.name.is_empty() {
            write!(f, "{} field {}", self.message, self.number)
        } else {
            write!(f, "{}.{} (field {})", self.message, self.name, self.number)
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Malformed(message) => f.write_str(message),
            Problem::WireType { found, expected } => {
                write!(f, "has wire type {} where the schema has {expected}", wire_type_name(*found))
            }
            Problem::NotUtf8 => f.write_str("is a string that is not valid UTF-8"),
            Problem::TooDeep => {
                write!(f, "nests messages deeper than the protobuf decoder's limit of {RECURSION_LIMIT} levels")
            }
            Problem::PackedLength => {
                f.write_str("is a packed list of 8-byte numbers whose length is not a multiple of 8")
            }
            Problem::SecondMetricData { first } => {
                write!(f, "is a second kind of data in a metric that already has {first} (a metric has one)")
            }
        }
    }
}

impl fmt::Display for InvalidRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{field} {} at byte {}", self.problem, self.offset)?,
            None => write!(f, "{} at byte {}", self.problem, self.offset)?,
        }
        if let Some(other) = self.decodes_as {
            write!(
                f,
                " (the bytes are a valid OTLP {other} export request, not a {} one: sent to the wrong endpoint?)",
                self.signal
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for InvalidRequest {}

fn wire_type_name(wire_type: u8) -> &'static str {
    match wire_type {
        VARINT => "varint",
        FIXED64 => "64-bit",
        LEN => "length-delimited",
        3 => "start group",
        4 => "end group",
        FIXED32 => "32-bit",
        _ => "invalid",
    }
}

/// The messages of the three requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Type {
    TraceRequest,
    ResourceSpans,
    ScopeSpans,
    Span,
    Event,
    Link,
    Status,
    MetricsRequest,
    ResourceMetrics,
    ScopeMetrics,
    Metric,
    Gauge,
    Sum,
    Histogram,
    ExponentialHistogram,
    Summary,
    NumberDataPoint,
    HistogramDataPoint,
    ExponentialHistogramDataPoint,
    Buckets,
    SummaryDataPoint,
    ValueAtQuantile,
    Exemplar,
    LogsRequest,
    ResourceLogs,
    ScopeLogs,
    LogRecord,
    Resource,
    EntityRef,
    InstrumentationScope,
    KeyValue,
    AnyValue,
    ArrayValue,
    KeyValueList,
}

const TYPES: usize = Type::KeyValueList as usize + 1;

/// How a field is written, and what it means to the walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Not in the schema: skipped.
    Unknown,
    /// int32, int64, uint32, uint64, sint32, bool, enum.
    Varint,
    /// fixed64, sfixed64, double.
    Fixed64,
    /// fixed32.
    Fixed32,
    /// bytes.
    Bytes,
    /// string: UTF-8.
    Str,
    /// An embedded message.
    Message(Type),
    /// An embedded message that is one item (span, data point, log record).
    Item(Type),
    /// One kind of a metric's data (a oneof).
    Data(Type),
    /// repeated uint64: packed or not.
    PackedVarint,
    /// repeated fixed64 or double: packed or not.
    PackedFixed64,
}

/// The largest field number in the schema, plus one.
const WIDTH: usize = 17;

struct Schema {
    name: &'static str,
    fields: &'static [(u8, &'static str, Kind)],
}

const fn schema(ty: Type) -> Schema {
    use Kind::{Bytes, Data, Fixed32, Fixed64, Item, Message, PackedFixed64, PackedVarint, Str, Varint};
    use Type::{
        AnyValue, ArrayValue, Buckets, EntityRef, Event, Exemplar, ExponentialHistogramDataPoint, Gauge, Histogram,
        HistogramDataPoint, InstrumentationScope, KeyValue, KeyValueList, Link, LogRecord, NumberDataPoint, Resource,
        ResourceLogs, ResourceMetrics, ResourceSpans, ScopeLogs, ScopeMetrics, ScopeSpans, Span, Status, Sum, Summary,
        SummaryDataPoint, ValueAtQuantile,
    };
    let (name, fields): (&'static str, &'static [(u8, &'static str, Kind)]) = match ty {
        Type::TraceRequest => ("ExportTraceServiceRequest", &[(1, "resource_spans", Message(ResourceSpans))]),
        Type::ResourceSpans => (
            "ResourceSpans",
            &[(1, "resource", Message(Resource)), (2, "scope_spans", Message(ScopeSpans)), (3, "schema_url", Str)],
        ),
        Type::ScopeSpans => (
            "ScopeSpans",
            &[(1, "scope", Message(InstrumentationScope)), (2, "spans", Item(Span)), (3, "schema_url", Str)],
        ),
        Type::Span => (
            "Span",
            &[
                (1, "trace_id", Bytes),
                (2, "span_id", Bytes),
                (3, "trace_state", Str),
                (4, "parent_span_id", Bytes),
                (5, "name", Str),
                (6, "kind", Varint),
                (7, "start_time_unix_nano", Fixed64),
                (8, "end_time_unix_nano", Fixed64),
                (9, "attributes", Message(KeyValue)),
                (10, "dropped_attributes_count", Varint),
                (11, "events", Message(Event)),
                (12, "dropped_events_count", Varint),
                (13, "links", Message(Link)),
                (14, "dropped_links_count", Varint),
                (15, "status", Message(Status)),
                (16, "flags", Fixed32),
            ],
        ),
        Type::Event => (
            "Span.Event",
            &[
                (1, "time_unix_nano", Fixed64),
                (2, "name", Str),
                (3, "attributes", Message(KeyValue)),
                (4, "dropped_attributes_count", Varint),
            ],
        ),
        Type::Link => (
            "Span.Link",
            &[
                (1, "trace_id", Bytes),
                (2, "span_id", Bytes),
                (3, "trace_state", Str),
                (4, "attributes", Message(KeyValue)),
                (5, "dropped_attributes_count", Varint),
                (6, "flags", Fixed32),
            ],
        ),
        Type::Status => ("Status", &[(2, "message", Str), (3, "code", Varint)]),
        Type::MetricsRequest => ("ExportMetricsServiceRequest", &[(1, "resource_metrics", Message(ResourceMetrics))]),
        Type::ResourceMetrics => (
            "ResourceMetrics",
            &[(1, "resource", Message(Resource)), (2, "scope_metrics", Message(ScopeMetrics)), (3, "schema_url", Str)],
        ),
        Type::ScopeMetrics => (
            "ScopeMetrics",
            &[
                (1, "scope", Message(InstrumentationScope)),
                (2, "metrics", Message(Type::Metric)),
                (3, "schema_url", Str),
            ],
        ),
        Type::Metric => (
            "Metric",
            &[
                (1, "name", Str),
                (2, "description", Str),
                (3, "unit", Str),
                (5, "gauge", Data(Gauge)),
                (7, "sum", Data(Sum)),
                (9, "histogram", Data(Histogram)),
                (10, "exponential_histogram", Data(Type::ExponentialHistogram)),
                (11, "summary", Data(Summary)),
                (12, "metadata", Message(KeyValue)),
            ],
        ),
        Type::Gauge => ("Gauge", &[(1, "data_points", Item(NumberDataPoint))]),
        Type::Sum => (
            "Sum",
            &[
                (1, "data_points", Item(NumberDataPoint)),
                (2, "aggregation_temporality", Varint),
                (3, "is_monotonic", Varint),
            ],
        ),
        Type::Histogram => {
            ("Histogram", &[(1, "data_points", Item(HistogramDataPoint)), (2, "aggregation_temporality", Varint)])
        }
        Type::ExponentialHistogram => (
            "ExponentialHistogram",
            &[(1, "data_points", Item(ExponentialHistogramDataPoint)), (2, "aggregation_temporality", Varint)],
        ),
        Type::Summary => ("Summary", &[(1, "data_points", Item(SummaryDataPoint))]),
        Type::NumberDataPoint => (
            "NumberDataPoint",
            &[
                (2, "start_time_unix_nano", Fixed64),
                (3, "time_unix_nano", Fixed64),
                (4, "as_double", Fixed64),
                (5, "exemplars", Message(Exemplar)),
                (6, "as_int", Fixed64),
                (7, "attributes", Message(KeyValue)),
                (8, "flags", Varint),
            ],
        ),
        Type::HistogramDataPoint => (
            "HistogramDataPoint",
            &[
                (2, "start_time_unix_nano", Fixed64),
                (3, "time_unix_nano", Fixed64),
                (4, "count", Fixed64),
                (5, "sum", Fixed64),
                (6, "bucket_counts", PackedFixed64),
                (7, "explicit_bounds", PackedFixed64),
                (8, "exemplars", Message(Exemplar)),
                (9, "attributes", Message(KeyValue)),
                (10, "flags", Varint),
                (11, "min", Fixed64),
                (12, "max", Fixed64),
            ],
        ),
        Type::ExponentialHistogramDataPoint => (
            "ExponentialHistogramDataPoint",
            &[
                (1, "attributes", Message(KeyValue)),
                (2, "start_time_unix_nano", Fixed64),
                (3, "time_unix_nano", Fixed64),
                (4, "count", Fixed64),
                (5, "sum", Fixed64),
                (6, "scale", Varint),
                (7, "zero_count", Fixed64),
                (8, "positive", Message(Buckets)),
                (9, "negative", Message(Buckets)),
                (10, "flags", Varint),
                (11, "exemplars", Message(Exemplar)),
                (12, "min", Fixed64),
                (13, "max", Fixed64),
                (14, "zero_threshold", Fixed64),
            ],
        ),
        Type::Buckets => {
            ("ExponentialHistogramDataPoint.Buckets", &[(1, "offset", Varint), (2, "bucket_counts", PackedVarint)])
        }
        Type::SummaryDataPoint => (
            "SummaryDataPoint",
            &[
                (2, "start_time_unix_nano", Fixed64),
                (3, "time_unix_nano", Fixed64),
                (4, "count", Fixed64),
                (5, "sum", Fixed64),
                (6, "quantile_values", Message(ValueAtQuantile)),
                (7, "attributes", Message(KeyValue)),
                (8, "flags", Varint),
            ],
        ),
        Type::ValueAtQuantile => {
            ("SummaryDataPoint.ValueAtQuantile", &[(1, "quantile", Fixed64), (2, "value", Fixed64)])
        }
        Type::Exemplar => (
            "Exemplar",
            &[
                (2, "time_unix_nano", Fixed64),
                (3, "as_double", Fixed64),
                (4, "span_id", Bytes),
                (5, "trace_id", Bytes),
                (6, "as_int", Fixed64),
                (7, "filtered_attributes", Message(KeyValue)),
            ],
        ),
        Type::LogsRequest => ("ExportLogsServiceRequest", &[(1, "resource_logs", Message(ResourceLogs))]),
        Type::ResourceLogs => (
            "ResourceLogs",
            &[(1, "resource", Message(Resource)), (2, "scope_logs", Message(ScopeLogs)), (3, "schema_url", Str)],
        ),
        Type::ScopeLogs => (
            "ScopeLogs",
            &[(1, "scope", Message(InstrumentationScope)), (2, "log_records", Item(LogRecord)), (3, "schema_url", Str)],
        ),
        Type::LogRecord => (
            "LogRecord",
            &[
                (1, "time_unix_nano", Fixed64),
                (2, "severity_number", Varint),
                (3, "severity_text", Str),
                (5, "body", Message(AnyValue)),
                (6, "attributes", Message(KeyValue)),
                (7, "dropped_attributes_count", Varint),
                (8, "flags", Fixed32),
                (9, "trace_id", Bytes),
                (10, "span_id", Bytes),
                (11, "observed_time_unix_nano", Fixed64),
                (12, "event_name", Str),
            ],
        ),
        Type::Resource => (
            "Resource",
            &[
                (1, "attributes", Message(KeyValue)),
                (2, "dropped_attributes_count", Varint),
                (3, "entity_refs", Message(EntityRef)),
            ],
        ),
        Type::EntityRef => (
            "EntityRef",
            &[(1, "schema_url", Str), (2, "type", Str), (3, "id_keys", Str), (4, "description_keys", Str)],
        ),
        Type::InstrumentationScope => (
            "InstrumentationScope",
            &[
                (1, "name", Str),
                (2, "version", Str),
                (3, "attributes", Message(KeyValue)),
                (4, "dropped_attributes_count", Varint),
            ],
        ),
        Type::KeyValue => {
            ("KeyValue", &[(1, "key", Str), (2, "value", Message(AnyValue)), (3, "key_strindex", Varint)])
        }
        Type::AnyValue => (
            "AnyValue",
            &[
                (1, "string_value", Str),
                (2, "bool_value", Varint),
                (3, "int_value", Varint),
                (4, "double_value", Fixed64),
                (5, "array_value", Message(ArrayValue)),
                (6, "kvlist_value", Message(KeyValueList)),
                (7, "bytes_value", Bytes),
                (8, "string_value_strindex", Varint),
            ],
        ),
        Type::ArrayValue => ("ArrayValue", &[(1, "values", Message(AnyValue))]),
        Type::KeyValueList => ("KeyValueList", &[(1, "values", Message(KeyValue))]),
    };
    Schema { name, fields }
}

/// A field as the walk reads it: the wire type its type is written with
/// (packed repeated numbers: the unpacked one; fields the schema does not
/// have: none), and what it is.
#[derive(Debug, Clone, Copy)]
struct Spec {
    wire_type: u8,
    kind: Kind,
}

/// The wire type of no field: every wire type of an unknown field goes the
/// slow way.
const ANY: u8 = 0xff;

const fn spec(kind: Kind) -> Spec {
    let wire_type = match kind {
        Kind::Unknown => ANY,
        Kind::Varint | Kind::PackedVarint => VARINT,
        Kind::Fixed64 | Kind::PackedFixed64 => FIXED64,
        Kind::Fixed32 => FIXED32,
        Kind::Bytes | Kind::Str | Kind::Message(_) | Kind::Item(_) | Kind::Data(_) => LEN,
    };
    Spec { wire_type, kind }
}

/// Every type's fields by number, for the walk.
static SPECS: [[Spec; WIDTH]; TYPES] = {
    let mut table = [[spec(Kind::Unknown); WIDTH]; TYPES];
    let mut ty = 0;
    while ty < TYPES {
        let fields = schema(TYPE_ORDER[ty]).fields;
        let mut i = 0;
        while i < fields.len() {
            table[ty][fields[i].0 as usize] = spec(fields[i].2);
            i += 1;
        }
        ty += 1;
    }
    table
};

/// The types by their number, for building [`SPECS`].
const TYPE_ORDER: [Type; TYPES] = [
    Type::TraceRequest,
    Type::ResourceSpans,
    Type::ScopeSpans,
    Type::Span,
    Type::Event,
    Type::Link,
    Type::Status,
    Type::MetricsRequest,
    Type::ResourceMetrics,
    Type::ScopeMetrics,
    Type::Metric,
    Type::Gauge,
    Type::Sum,
    Type::Histogram,
    Type::ExponentialHistogram,
    Type::Summary,
    Type::NumberDataPoint,
    Type::HistogramDataPoint,
    Type::ExponentialHistogramDataPoint,
    Type::Buckets,
    Type::SummaryDataPoint,
    Type::ValueAtQuantile,
    Type::Exemplar,
    Type::LogsRequest,
    Type::ResourceLogs,
    Type::ScopeLogs,
    Type::LogRecord,
    Type::Resource,
    Type::EntityRef,
    Type::InstrumentationScope,
    Type::KeyValue,
    Type::AnyValue,
    Type::ArrayValue,
    Type::KeyValueList,
];

fn field_name(ty: Type, number: u64) -> FieldName {
    let schema = schema(ty);
    let name = schema.fields.iter().find(|field| u64::from(field.0) == number).map_or("", |field| field.1);
    FieldName { message: schema.name, number: number as u32, name }
}

/// A fault found by the walk, before it is named for the caller.
struct Fault {
    offset: usize,
    field: Option<(Type, u64)>,
    problem: Problem,
}

/// The walk stopped at a fault, which it keeps: the error is a unit so that
/// the hot path passes no more than a flag up the stack.
struct Stop;

/// Checks that `bytes` is a protobuf `Export*ServiceRequest` of `signal`
/// that [`ExportRequest::decode_protobuf`](crate::ExportRequest::decode_protobuf)
/// decodes, as the module says, and returns its items (spans, metric data
/// points, log records).
pub fn validate_request(signal: Signal, bytes: &[u8]) -> Result<u64, InvalidRequest> {
    validate(signal, bytes).map_err(|fault| {
        let decodes_as = Signal::ALL
            .into_iter()
            .filter(|other| *other != signal)
            .find(|other| validate(*other, bytes).is_ok_and(|items| items > 0));
        InvalidRequest {
            signal,
            offset: fault.offset,
            field: fault.field.map(|(ty, number)| field_name(ty, number)),
            problem: fault.problem,
            decodes_as,
        }
    })
}

fn validate(signal: Signal, bytes: &[u8]) -> Result<u64, Fault> {
    let ty = match signal {
        Signal::Traces => Type::TraceRequest,
        Signal::Metrics => Type::MetricsRequest,
        Signal::Logs => Type::LogsRequest,
    };
    let mut walk = Walk { items: 0, fault: None };
    match walk.message(bytes, 0, ty, 0) {
        Ok(()) => Ok(walk.items),
        Err(Stop) => {
            Err(walk.fault.unwrap_or(Fault { offset: 0, field: None, problem: Problem::Malformed("invalid") }))
        }
    }
}

/// Whether `bytes` is UTF-8; most strings of telemetry are ASCII, which is
/// quicker to tell.
#[inline]
fn is_utf8(bytes: &[u8]) -> bool {
    bytes.is_ascii() || std::str::from_utf8(bytes).is_ok()
}

/// The walk: every message is read from the request cut at its end, so that
/// positions (and the offsets of faults) are the request's.
struct Walk {
    items: u64,
    fault: Option<Fault>,
}

impl Walk {
    #[cold]
    fn fail(&mut self, offset: usize, field: Option<(Type, u64)>, problem: Problem) -> Stop {
        self.fault = Some(Fault { offset, field, problem });
        Stop
    }

    /// A malformed varint at `at`: says why.
    #[cold]
    fn bad_varint(&mut self, bytes: &[u8], at: usize) -> Stop {
        let mut position = at;
        let message = match super::varint_slow(bytes, &mut position) {
            Err(error) => error.message,
            Ok(_) => "invalid varint",
        };
        self.fail(at, None, Problem::Malformed(message))
    }

    /// Reads a varint as prost does: at most 10 bytes, the tenth at most 1.
    // Inlined into the walks, as `next_field` is: the walk is the receivers'
    // work on every request.
    #[allow(clippy::inline_always)]
    #[inline(always)]
    fn varint(&mut self, bytes: &[u8], at: &mut usize) -> Result<u64, Stop> {
        if let Some(&byte) = bytes.get(*at)
            && byte < 0x80
        {
            *at += 1;
            return Ok(u64::from(byte));
        }
        let start = *at;
        super::varint_slow(bytes, at).map_err(|_| self.bad_varint(bytes, start))
    }

    /// A length-delimited value whose length varint is at `*at`: moves `*at`
    /// past it and returns where the value ends.
    #[allow(clippy::inline_always)]
    #[inline(always)]
    fn length_delimited(&mut self, bytes: &[u8], at: &mut usize) -> Result<usize, Stop> {
        let length_at = *at;
        let len = self.varint(bytes, at)?;
        match usize::try_from(len).ok().and_then(|len| at.checked_add(len)).filter(|end| *end <= bytes.len()) {
            Some(end) => Ok(end),
            None => Err(self.fail(length_at, None, Problem::Malformed("length runs past the end of its message"))),
        }
    }

    #[allow(clippy::inline_always)]
    #[inline(always)]
    fn skip_fixed(&mut self, bytes: &[u8], at: &mut usize, len: usize) -> Result<(), Stop> {
        if bytes.len() - *at >= len {
            *at += len;
            Ok(())
        } else {
            Err(self.fail(*at, None, Problem::Malformed("a fixed-size value runs past the end of its message")))
        }
    }

    /// Checks the message of type `ty` in `bytes[at..]`, `depth` levels
    /// below the request.
    ///
    /// A field whose wire type is the one its type is written with is read
    /// by wire type, with a few well-predicted branches; anything else
    /// (unknown fields, packed lists, faults) by [`Walk::other_field`].
    fn message(&mut self, bytes: &[u8], mut at: usize, ty: Type, depth: u32) -> Result<(), Stop> {
        let specs = &SPECS[ty as usize];
        let mut data: u64 = 0;
        while at < bytes.len() {
            let key_at = at;
            let key = self.varint(bytes, &mut at)?;
            if key > u64::from(u32::MAX) || key >> 3 == 0 {
                return Err(self.fail(key_at, None, Problem::Malformed("invalid field number")));
            }
            let number = key >> 3;
            let wire_type = (key & 7) as u8;
            let spec = specs.get(number as usize).copied().unwrap_or(spec(Kind::Unknown));
            if spec.wire_type != wire_type {
                self.other_field(bytes, &mut at, key_at, (ty, number), wire_type, spec.kind, depth)?;
                continue;
            }
            if wire_type == VARINT {
                self.varint(bytes, &mut at)?;
                continue;
            }
            if wire_type != LEN {
                // FIXED64 or FIXED32: the spec has no other wire type.
                let len = if wire_type == FIXED64 { 8 } else { 4 };
                self.skip_fixed(bytes, &mut at, len)?;
                continue;
            }
            let end = self.length_delimited(bytes, &mut at)?;
            match spec.kind {
                Kind::Str if !is_utf8(&bytes[at..end]) => {
                    return Err(self.fail(at, Some((ty, number)), Problem::NotUtf8));
                }
                Kind::Message(inner) | Kind::Item(inner) | Kind::Data(inner) => {
                    if depth >= RECURSION_LIMIT {
                        return Err(self.fail(key_at, Some((ty, number)), Problem::TooDeep));
                    }
                    if inner == Type::KeyValue {
                        self.key_value(&bytes[..end], at, depth + 1)?;
                    } else if inner == Type::AnyValue {
                        self.any_value(&bytes[..end], at, depth + 1)?;
                    } else {
                        self.message(&bytes[..end], at, inner, depth + 1)?;
                    }
                    if let Kind::Item(_) = spec.kind {
                        self.items += 1;
                    } else if let Kind::Data(_) = spec.kind {
                        if data != 0 && data != number {
                            let first = field_name(ty, data).name;
                            return Err(self.fail(key_at, Some((ty, number)), Problem::SecondMetricData { first }));
                        }
                        data = number;
                    }
                }
                _ => {}
            }
            at = end;
        }
        Ok(())
    }

    /// A field not written with the wire type of its type: a packed list, a
    /// field the schema does not have, or a fault.
    #[allow(clippy::too_many_arguments)]
    fn other_field(
        &mut self,
        bytes: &[u8],
        at: &mut usize,
        key_at: usize,
        field: (Type, u64),
        wire_type: u8,
        kind: Kind,
        depth: u32,
    ) -> Result<(), Stop> {
        match kind {
            Kind::Unknown => self.unknown(bytes, at, key_at, field, wire_type, depth),
            Kind::PackedVarint if wire_type == LEN => {
                let end = self.length_delimited(bytes, at)?;
                let packed = &bytes[..end];
                while *at < end {
                    self.varint(packed, at)?;
                }
                Ok(())
            }
            Kind::PackedFixed64 if wire_type == LEN => {
                let end = self.length_delimited(bytes, at)?;
                if !(end - *at).is_multiple_of(8) {
                    return Err(self.fail(key_at, Some(field), Problem::PackedLength));
                }
                *at = end;
                Ok(())
            }
            _ => Err(self.wrong_wire_type(key_at, field, kind, wire_type)),
        }
    }

    /// A field the schema does not have, which the decoder skips.
    fn unknown(
        &mut self,
        bytes: &[u8],
        at: &mut usize,
        key_at: usize,
        field: (Type, u64),
        wire_type: u8,
        depth: u32,
    ) -> Result<(), Stop> {
        if depth >= RECURSION_LIMIT {
            return Err(self.fail(key_at, Some(field), Problem::TooDeep));
        }
        match wire_type {
            VARINT => self.varint(bytes, at).map(|_| ()),
            FIXED64 => self.skip_fixed(bytes, at, 8),
            FIXED32 => self.skip_fixed(bytes, at, 4),
            LEN => {
                *at = self.length_delimited(bytes, at)?;
                Ok(())
            }
            3 | 4 => Err(self.fail(key_at, None, Problem::Malformed("a group (OTLP has none) in an unknown field"))),
            _ => Err(self.fail(key_at, None, Problem::Malformed("invalid wire type"))),
        }
    }

    #[cold]
    fn wrong_wire_type(&mut self, key_at: usize, field: (Type, u64), kind: Kind, found: u8) -> Stop {
        let expected = match kind {
            Kind::Varint => "varint",
            Kind::Fixed64 => "64-bit",
            Kind::Fixed32 => "32-bit",
            Kind::Bytes | Kind::Str => "length-delimited",
            Kind::Message(_) | Kind::Item(_) | Kind::Data(_) => "length-delimited (a message)",
            Kind::PackedVarint => "varint or length-delimited (packed)",
            Kind::PackedFixed64 => "64-bit or length-delimited (packed)",
            Kind::Unknown => "any",
        };
        self.fail(key_at, Some(field), Problem::WireType { found, expected })
    }

    /// A `KeyValue` (most of a request's bytes), with its `AnyValue` read in
    /// the same loop unless it holds an array or a list: the same checks as
    /// [`Walk::message`], with less work per attribute.
    #[inline]
    fn key_value(&mut self, bytes: &[u8], mut at: usize, depth: u32) -> Result<(), Stop> {
        while at < bytes.len() {
            let key_at = at;
            let key = self.varint(bytes, &mut at)?;
            match key {
                // key: string
                0x0a => {
                    let end = self.length_delimited(bytes, &mut at)?;
                    if !is_utf8(&bytes[at..end]) {
                        return Err(self.fail(at, Some((Type::KeyValue, 1)), Problem::NotUtf8));
                    }
                    at = end;
                }
                // value: AnyValue
                0x12 => {
                    let end = self.length_delimited(bytes, &mut at)?;
                    if depth >= RECURSION_LIMIT {
                        return Err(self.fail(key_at, Some((Type::KeyValue, 2)), Problem::TooDeep));
                    }
                    self.any_value(&bytes[..end], at, depth + 1)?;
                    at = end;
                }
                _ => {
                    // Anything else, as any message.
                    return self.message(bytes, key_at, Type::KeyValue, depth);
                }
            }
        }
        Ok(())
    }

    /// An `AnyValue`: a scalar read here, an array or list by
    /// [`Walk::message`].
    #[inline]
    fn any_value(&mut self, bytes: &[u8], mut at: usize, depth: u32) -> Result<(), Stop> {
        while at < bytes.len() {
            let key_at = at;
            let key = self.varint(bytes, &mut at)?;
            match key {
                // string_value
                0x0a => {
                    let end = self.length_delimited(bytes, &mut at)?;
                    if !is_utf8(&bytes[at..end]) {
                        return Err(self.fail(at, Some((Type::AnyValue, 1)), Problem::NotUtf8));
                    }
                    at = end;
                }
                // bool_value, int_value, string_value_strindex
                0x10 | 0x18 | 0x40 => {
                    self.varint(bytes, &mut at)?;
                }
                // double_value
                0x21 => self.skip_fixed(bytes, &mut at, 8)?,
                // bytes_value
                0x3a => at = self.length_delimited(bytes, &mut at)?,
                _ => return self.message(bytes, key_at, Type::AnyValue, depth),
            }
        }
        Ok(())
    }
}
