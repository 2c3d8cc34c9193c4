//! The wire rewrite against the decoded request's methods: the same bytes
//! for requests a protobuf encoder wrote, the same decoded request for
//! bytes written by hand (unknown fields, repeated fields, explicit zeros),
//! and errors, never panics, for malformed bytes.

use super::{newest_timestamp, rewrite_in_place};
use crate::proto::common::v1::any_value::Value;
use crate::proto::common::v1::{AnyValue, KeyValue};
use crate::proto::logs::v1::LogRecord;
use crate::proto::metrics::v1::metric::Data;
use crate::proto::metrics::v1::{Exemplar, Metric, exemplar};
use crate::proto::trace::v1::span::{Event, Link};
use crate::wire::{WireError, count_items};
use crate::{ExportRequest, IdRemap, Signal, sample};

const BASE: u64 = sample::BASE_TIME_UNIX_NANO;

/// Shifts of every kind: none, small, an hour, and ones that saturate at
/// either end.
const DELTAS: [i64; 8] = [0, 1, -1, 3_600_000_000_000, -3_600_000_000_000, i64::MAX, i64::MIN, -BASE.cast_signed()];

fn remaps() -> [Option<IdRemap>; 3] {
    [None, Some(IdRemap::new(1, 1)), Some(IdRemap::new(0xdead_beef, 42))]
}

/// What the decoded request's methods make of `bytes`.
fn decoded_rewrite(signal: Signal, bytes: &[u8], delta: i64, remap: Option<&IdRemap>) -> ExportRequest {
    let mut request = ExportRequest::decode_protobuf(signal, bytes).unwrap();
    request.shift_timestamps(delta);
    if let Some(remap) = remap {
        request.remap_ids(remap);
    }
    request
}

/// What the wire rewrite makes of `bytes`.
fn wire_rewrite(signal: Signal, bytes: &[u8], delta: i64, remap: Option<&IdRemap>) -> Result<Vec<u8>, WireError> {
    let mut bytes = bytes.to_vec();
    rewrite_in_place(signal, &mut bytes, delta, remap)?;
    Ok(bytes)
}

fn sample_requests() -> Vec<ExportRequest> {
    vec![
        ExportRequest::from(sample::traces("checkout", 25, 0)),
        ExportRequest::from(sample::traces("cart", 3, 12_345)),
        ExportRequest::from(sample::metrics("checkout", 0)),
        ExportRequest::from(sample::metrics("cart", 5_000)),
        ExportRequest::from(sample::logs("checkout", 12, 0)),
        ExportRequest::from(sample::logs("cart", 1, 777)),
    ]
}

fn empty_requests() -> Vec<ExportRequest> {
    vec![
        ExportRequest::from(crate::proto::collector::trace::v1::ExportTraceServiceRequest::default()),
        ExportRequest::from(crate::proto::collector::metrics::v1::ExportMetricsServiceRequest::default()),
        ExportRequest::from(crate::proto::collector::logs::v1::ExportLogsServiceRequest::default()),
    ]
}

/// Trace, metric and log requests that hold every timestamp and id field,
/// with the edge cases: zero and extreme timestamps, all-zero, empty and
/// wrong-length ids, exemplars on every type of point that has them, a
/// metric without data.
fn edge_requests() -> Vec<ExportRequest> {
    let mut traces = sample::traces("checkout", 12, 0);
    {
        let spans = &mut traces.resource_spans[0].scope_spans[0].spans;
        spans[0].start_time_unix_nano = 0;
        spans[1].trace_id = vec![0; 16];
        spans[1].parent_span_id = vec![0; 8];
        spans[2].trace_id = vec![7; 15];
        spans[2].span_id = vec![7; 9];
        spans[2].parent_span_id = vec![7; 17];
        spans[3].start_time_unix_nano = 1;
        spans[3].end_time_unix_nano = u64::MAX;
        spans[4].events = [0, u64::MAX - 1, 1, BASE]
            .into_iter()
            .map(|time_unix_nano| Event { time_unix_nano, name: "tick".to_owned(), ..Event::default() })
            .collect();
        spans[5].links = vec![
            Link { trace_id: vec![0; 16], span_id: vec![0; 8], ..Link::default() },
            Link { trace_id: vec![1; 3], span_id: vec![1; 4], ..Link::default() },
            Link { trace_id: sample::trace_id(99), span_id: sample::span_id(99), ..Link::default() },
            Link::default(),
        ];
        spans[6].trace_id.clear();
        spans[6].span_id.clear();
        spans[7].end_time_unix_nano = 0;
        spans[7].events.clear();
        spans[8].span_id = vec![0xff; 8];
        spans[8].trace_id = vec![0xff; 16];
    }
    // Another resource and scope, to walk past the first.
    let mut second = sample::traces("cart", 2, 5_000).resource_spans.remove(0);
    second.scope_spans.push(second.scope_spans[0].clone());
    second.resource = None;
    traces.resource_spans.push(second);

    let exemplar = |time_unix_nano: u64, trace_id: Vec<u8>, span_id: Vec<u8>| Exemplar {
        time_unix_nano,
        trace_id,
        span_id,
        value: Some(exemplar::Value::AsInt(-3)),
        filtered_attributes: vec![sample::string_attribute("user", "7")],
    };
    let exemplars = || {
        vec![
            exemplar(BASE + 5, sample::trace_id(3), sample::span_id(3)),
            exemplar(0, vec![0; 16], vec![0; 8]),
            exemplar(u64::MAX, vec![2; 5], vec![2; 7]),
            exemplar(1, Vec::new(), Vec::new()),
        ]
    };
    let mut metrics = sample::metrics("checkout", 1_000);
    {
        let list = &mut metrics.resource_metrics[0].scope_metrics[0].metrics;
        for metric in list.iter_mut() {
            match metric.data.as_mut().unwrap() {
                Data::Gauge(gauge) => {
                    gauge.data_points[0].exemplars = exemplars();
                    gauge.data_points[1].start_time_unix_nano = 0;
                }
                Data::Sum(sum) => {
                    sum.data_points[0].exemplars = exemplars();
                    sum.data_points[0].time_unix_nano = u64::MAX;
                }
                Data::Histogram(histogram) => {
                    histogram.data_points[1].exemplars.extend(exemplars());
                    histogram.data_points[1].time_unix_nano = 0;
                }
                Data::ExponentialHistogram(histogram) => histogram.data_points[0].exemplars = exemplars(),
                Data::Summary(summary) => {
                    let mut point = summary.data_points[0].clone();
                    point.start_time_unix_nano = 0;
                    point.time_unix_nano = 1;
                    summary.data_points.push(point);
                }
            }
        }
        list.push(Metric { name: "no.data".to_owned(), ..Metric::default() });
    }
    metrics.resource_metrics.push(sample::metrics("cart", 9).resource_metrics.remove(0));

    let mut logs = sample::logs("checkout", 6, 0);
    {
        let records = &mut logs.resource_logs[0].scope_logs[0].log_records;
        records[0].time_unix_nano = 0;
        records[1].observed_time_unix_nano = 0;
        records[2].trace_id.clear();
        records[2].span_id.clear();
        records[3].trace_id = vec![0; 16];
        records[3].span_id = vec![0; 8];
        records[4].trace_id = vec![4; 12];
        records[4].span_id = vec![4; 2];
        records[5].time_unix_nano = u64::MAX;
        records.push(LogRecord::default());
    }
    logs.resource_logs.push(sample::logs("cart", 3, 1).resource_logs.remove(0));

    vec![ExportRequest::from(traces), ExportRequest::from(metrics), ExportRequest::from(logs)]
}

#[test]
fn rewrites_encoded_requests_byte_for_byte_as_the_decoded_rewrite() {
    for request in sample_requests().into_iter().chain(edge_requests()).chain(empty_requests()) {
        let signal = request.signal();
        let bytes = request.encode_protobuf();
        for delta in DELTAS {
            for remap in remaps() {
                let expected = decoded_rewrite(signal, &bytes, delta, remap.as_ref()).encode_protobuf();
                let wire = wire_rewrite(signal, &bytes, delta, remap.as_ref()).unwrap();
                assert!(wire == expected, "{signal}, delta {delta}, remap {remap:?}");
            }
        }
    }
}

#[test]
fn the_rewrite_changes_what_it_should() {
    // Guards the comparison above against a rewrite that does nothing on
    // either side.
    for request in sample_requests().into_iter().chain(edge_requests()) {
        let signal = request.signal();
        let bytes = request.encode_protobuf();
        assert_eq!(wire_rewrite(signal, &bytes, 0, None).unwrap(), bytes, "{signal}");
        assert_ne!(wire_rewrite(signal, &bytes, 1, None).unwrap(), bytes, "{signal}");
        assert_ne!(wire_rewrite(signal, &bytes, 0, Some(&IdRemap::new(1, 1))).unwrap(), bytes, "{signal}");
        let shifted = ExportRequest::decode_protobuf(signal, &wire_rewrite(signal, &bytes, 10, None).unwrap()).unwrap();
        assert_eq!(shifted.newest_timestamp(), request.newest_timestamp().map(|time| time.saturating_add(10)));
    }
}

#[test]
fn reads_the_newest_timestamp_the_decoded_request_reads() {
    for request in sample_requests().into_iter().chain(edge_requests()).chain(empty_requests()) {
        let signal = request.signal();
        let bytes = request.encode_protobuf();
        assert_eq!(newest_timestamp(signal, &bytes), Ok(request.newest_timestamp()), "{signal}");
        for delta in [-5, 3_600_000_000_000] {
            let shifted = wire_rewrite(signal, &bytes, delta, None).unwrap();
            let expected = decoded_rewrite(signal, &bytes, delta, None).newest_timestamp();
            assert_eq!(newest_timestamp(signal, &shifted), Ok(expected), "{signal}");
        }
    }
    for request in empty_requests() {
        assert_eq!(newest_timestamp(request.signal(), &[]), Ok(None));
    }
}

/// Protobuf written field by field, as no encoder of the OTLP types would
/// write it.
#[derive(Debug, Clone, Default)]
struct Raw(Vec<u8>);

fn put_varint(bytes: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        bytes.push((value as u8) | 0x80);
        value >>= 7;
    }
    bytes.push(value as u8);
}

impl Raw {
    fn key(mut self, number: u64, wire_type: u64) -> Self {
        put_varint(&mut self.0, number << 3 | wire_type);
        self
    }

    fn varint(self, number: u64, value: u64) -> Self {
        let mut raw = self.key(number, 0);
        put_varint(&mut raw.0, value);
        raw
    }

    fn fixed64(self, number: u64, value: u64) -> Self {
        let mut raw = self.key(number, 1);
        raw.0.extend_from_slice(&value.to_le_bytes());
        raw
    }

    fn fixed32(self, number: u64, value: u32) -> Self {
        let mut raw = self.key(number, 5);
        raw.0.extend_from_slice(&value.to_le_bytes());
        raw
    }

    fn bytes(self, number: u64, value: &[u8]) -> Self {
        let mut raw = self.key(number, 2);
        put_varint(&mut raw.0, value.len() as u64);
        raw.0.extend_from_slice(value);
        raw
    }

    fn message(self, number: u64, value: &Raw) -> Self {
        self.bytes(number, &value.0)
    }
}

/// What hand-written requests hold where timestamps and ids are: the
/// values as given, or as a rewrite should leave them.
struct Patch {
    time: Box<dyn Fn(u64) -> u64>,
    trace_id: IdPatch,
    span_id: IdPatch,
}

/// What a patch does to an id.
type IdPatch = Box<dyn Fn(&[u8]) -> Vec<u8>>;

impl Patch {
    fn none() -> Self {
        Patch { time: Box::new(|time| time), trace_id: Box::new(<[u8]>::to_vec), span_id: Box::new(<[u8]>::to_vec) }
    }

    /// What `shift_timestamps(delta)` and `remap_ids(remap)` do, written
    /// out again.
    fn rewrite(delta: i64, remap: Option<IdRemap>) -> Self {
        Patch {
            time: Box::new(move |time| if time == 0 { 0 } else { time.saturating_add_signed(delta).max(1) }),
            trace_id: Box::new(move |id| {
                let mut id = id.to_vec();
                if let Some(remap) = remap {
                    remap.trace_id(&mut id);
                }
                id
            }),
            span_id: Box::new(move |id| {
                let mut id = id.to_vec();
                if let Some(remap) = remap {
                    remap.span_id(&mut id);
                }
                id
            }),
        }
    }
}

fn resource(service: &str) -> Raw {
    let value = Raw::default().bytes(1, service.as_bytes());
    let attribute = Raw::default().bytes(1, b"service.name").message(2, &value);
    Raw::default().message(1, &attribute).varint(2, 0)
}

fn scope() -> Raw {
    Raw::default().bytes(1, b"hand").bytes(2, b"1.0")
}

/// A request of `items` under two resources, with unknown fields at every
/// level.
fn request(items: &[Raw]) -> Raw {
    let mut first_scope = Raw::default().message(1, &scope()).varint(77, 1);
    for item in &items[..items.len() / 2] {
        first_scope = first_scope.message(2, item);
    }
    let mut second_scope = Raw::default();
    for item in &items[items.len() / 2..] {
        second_scope = second_scope.message(2, item);
    }
    let second_scope = second_scope.bytes(3, b"https://schema").fixed64(78, BASE);
    Raw::default()
        .fixed64(99, BASE)
        .message(1, &Raw::default().message(1, &resource("checkout")).message(2, &first_scope).fixed32(79, 5))
        .bytes(100, b"unknown")
        .message(1, &Raw::default().message(2, &second_scope).message(2, &Raw::default()).bytes(3, b"schema"))
}

const TRACE: [u8; 16] =
    [0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c];
const SPAN: [u8; 8] = [0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74];
const PARENT: [u8; 8] = [0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x73];

/// Spans with every timestamp and id, unknown fields that look like
/// timestamps and ids, explicit zeros, and repeated fields (of which a
/// decode keeps the last) whose first copy is the newest.
fn raw_traces(patch: &Patch) -> Vec<u8> {
    let (time, trace_id, span_id) = (&patch.time, &patch.trace_id, &patch.span_id);
    let event = |at: u64| {
        Raw::default()
            .fixed64(1, time(at))
            .bytes(2, b"retry")
            .fixed64(9, BASE + 1)
            .varint(4, 2)
            .fixed64(1, time(at + 1))
    };
    let link = |trace: &[u8], span: &[u8]| {
        Raw::default()
            .bytes(1, &trace_id(trace))
            .bytes(2, &span_id(span))
            .bytes(3, b"k=v")
            .fixed32(6, 1)
            .fixed64(7, BASE)
    };
    let span = Raw::default()
        .bytes(1, &trace_id(&TRACE))
        .bytes(2, &span_id(&SPAN))
        .bytes(3, b"state")
        .bytes(4, &span_id(&PARENT))
        .bytes(5, b"GET /")
        .varint(6, 2)
        .fixed64(7, time(BASE))
        .fixed64(8, time(BASE + 9_000_000))
        // A field from the future that looks like a time.
        .fixed64(17, BASE)
        .message(11, &event(BASE + 10))
        .message(11, &event(0))
        .message(13, &link(&TRACE, &PARENT))
        .message(13, &link(&[0; 16], &[0; 8]))
        .message(13, &link(&[3; 4], &[]))
        .fixed32(16, 0x101)
        // Repeated: a decode keeps the last copy.
        .fixed64(8, time(BASE + 1_000))
        .bytes(2, &span_id(&PARENT));
    let zeros = Raw::default()
        .bytes(1, &trace_id(&[0; 16]))
        .bytes(2, &span_id(&[0; 8]))
        .bytes(4, &span_id(&[]))
        .fixed64(7, time(0))
        .fixed64(8, time(0));
    let odd = Raw::default()
        .bytes(1, &trace_id(&[9; 15]))
        .bytes(2, &span_id(&[9; 9]))
        .fixed64(7, time(1))
        .fixed64(8, time(BASE + 2))
        .message(11, &Raw::default());
    let plain = Raw::default().bytes(1, &trace_id(&[1; 16])).bytes(2, &span_id(&[2; 8])).fixed64(7, time(BASE + 5));
    request(&[span, zeros, odd, plain]).0
}

/// Points of every type, with exemplars where they have them, fields that
/// are `fixed64` but no timestamps (values, counts, sums), a metric whose
/// data changes type (a decode keeps the last type) and one whose data
/// comes in two copies (a decode merges them).
fn raw_metrics(patch: &Patch) -> Vec<u8> {
    let (time, trace_id, span_id) = (&patch.time, &patch.trace_id, &patch.span_id);
    let exemplar = |at: u64, trace: &[u8], span: &[u8]| {
        Raw::default()
            .fixed64(2, time(at))
            .fixed64(3, BASE)
            .bytes(4, &span_id(span))
            .bytes(5, &trace_id(trace))
            .fixed64(6, BASE)
            .message(7, &Raw::default().bytes(1, b"user"))
            .fixed64(9, BASE)
    };
    let exemplars = |mut point: Raw, field: u64| {
        for (at, trace, span) in
            [(BASE + 20_000, &TRACE[..], &SPAN[..]), (0, &[0; 16], &[0; 8]), (BASE, &[5; 3], &[5; 9])]
        {
            point = point.message(field, &exemplar(at, trace, span));
        }
        point
    };
    let number = |at: u64, as_int: bool| {
        let point = Raw::default()
            .message(7, &Raw::default().bytes(1, b"cpu"))
            .fixed64(2, time(BASE))
            .fixed64(3, time(at))
            .fixed64(if as_int { 6 } else { 4 }, BASE)
            .varint(8, 1);
        exemplars(point, 5)
    };
    let histogram = |at: u64| {
        let point = Raw::default()
            .fixed64(2, time(0))
            .fixed64(3, time(at))
            .fixed64(4, BASE)
            .fixed64(5, BASE)
            .bytes(6, &[BASE.to_le_bytes(), 3_u64.to_le_bytes()].concat())
            .bytes(7, &1.5_f64.to_le_bytes())
            .fixed64(11, BASE)
            .fixed64(12, BASE);
        exemplars(point, 8)
    };
    let exponential = |at: u64| {
        let buckets = Raw::default().varint(1, 4).bytes(2, &[1, 2]);
        let point = Raw::default()
            .fixed64(2, time(BASE - 1))
            .fixed64(3, time(at))
            .fixed64(4, BASE)
            .fixed64(5, BASE)
            .varint(6, 6)
            .fixed64(7, BASE)
            .message(8, &buckets)
            .message(9, &buckets)
            .fixed64(14, BASE);
        exemplars(point, 11)
    };
    let summary = |at: u64| {
        let quantile = Raw::default().fixed64(1, 0.5_f64.to_bits()).fixed64(2, BASE);
        Raw::default()
            .fixed64(2, time(BASE))
            .fixed64(3, time(at))
            .fixed64(4, BASE)
            // Summary points keep their sum at 5, where number points keep
            // their exemplars.
            .fixed64(5, BASE)
            .message(6, &quantile)
            .fixed64(3, time(at + 7))
            // A start newer than every time, after the time: not a time
            // `newest_timestamp` reads.
            .fixed64(2, time(BASE + 10_000))
    };
    let gauge = Raw::default().message(1, &number(BASE + 10, false)).message(1, &number(0, true));
    let sum = Raw::default().message(1, &number(BASE + 20, true)).varint(2, 2).varint(3, 1);
    let histograms = Raw::default().message(1, &histogram(BASE + 30)).message(1, &histogram(0)).varint(2, 1);
    let exponentials = Raw::default().message(1, &exponential(BASE + 40)).varint(2, 1);
    let summaries = Raw::default().message(1, &summary(BASE + 50)).message(1, &summary(0));
    let metric = |number: u64, data: &Raw| Raw::default().bytes(1, b"name").bytes(3, b"1").message(number, data);
    // Gauge then sum: a decode keeps the sum, so the newest time, in the
    // gauge, does not count.
    let newer_gauge = Raw::default().message(1, &number(BASE + 900, false));
    let switched = metric(5, &newer_gauge).message(7, &sum).message(12, &Raw::default().bytes(1, b"meta"));
    let merged = metric(9, &histograms).message(9, &histograms);
    // A field from the future (6 is reserved) that looks like data.
    let lookalike_exemplar = Raw::default().fixed64(2, BASE).bytes(4, &SPAN).bytes(5, &TRACE);
    let lookalike_point = Raw::default().fixed64(2, BASE).fixed64(3, BASE + 1_000).message(5, &lookalike_exemplar);
    let unknown = Raw::default().bytes(1, b"future").message(6, &Raw::default().message(1, &lookalike_point));
    request(&[
        metric(5, &gauge),
        metric(7, &sum),
        metric(9, &histograms),
        metric(10, &exponentials),
        metric(11, &summaries),
        switched,
        merged,
        unknown,
        Raw::default().bytes(1, b"no data"),
    ])
    .0
}

/// Log records with every timestamp and id, and the same edge cases.
fn raw_logs(patch: &Patch) -> Vec<u8> {
    let (time, trace_id, span_id) = (&patch.time, &patch.trace_id, &patch.span_id);
    let body = Raw::default().bytes(1, b"order processed");
    let record = Raw::default()
        .fixed64(1, time(BASE + 9_000))
        .varint(2, 9)
        .bytes(3, b"INFO")
        .message(5, &body)
        .message(6, &Raw::default().bytes(1, b"k"))
        .fixed32(8, 1)
        .bytes(9, &trace_id(&TRACE))
        .bytes(10, &span_id(&SPAN))
        .fixed64(11, time(BASE + 6_000))
        .bytes(12, b"event")
        .fixed64(13, BASE)
        .fixed64(1, time(BASE + 1));
    let zeros = Raw::default()
        .fixed64(1, time(0))
        .fixed64(11, time(BASE))
        .bytes(9, &trace_id(&[0; 16]))
        .bytes(10, &span_id(&[0; 8]));
    let odd = Raw::default().fixed64(11, time(1)).bytes(9, &trace_id(&[8; 20])).bytes(10, &span_id(&[8; 7]));
    request(&[record, zeros, odd, Raw::default()]).0
}

type RawRequest = fn(&Patch) -> Vec<u8>;

const RAW_REQUESTS: [(Signal, RawRequest); 3] =
    [(Signal::Traces, raw_traces), (Signal::Metrics, raw_metrics), (Signal::Logs, raw_logs)];

#[test]
fn rewrites_hand_written_requests_where_their_timestamps_and_ids_lie() {
    for (signal, raw) in RAW_REQUESTS {
        let bytes = raw(&Patch::none());
        for delta in DELTAS {
            for remap in remaps() {
                let wire = wire_rewrite(signal, &bytes, delta, remap.as_ref()).unwrap();
                // Byte for byte where the fields are, unknown fields kept.
                assert!(wire == raw(&Patch::rewrite(delta, remap)), "{signal}, delta {delta}, remap {remap:?}");
                // And what a decode reads is the decoded rewrite.
                let decoded = ExportRequest::decode_protobuf(signal, &wire).unwrap();
                assert_eq!(decoded, decoded_rewrite(signal, &bytes, delta, remap.as_ref()), "{signal}");
            }
        }
    }
}

#[test]
fn reads_the_newest_timestamp_of_hand_written_requests_as_a_decode_does() {
    for (signal, raw) in RAW_REQUESTS {
        let bytes = raw(&Patch::none());
        let decoded = ExportRequest::decode_protobuf(signal, &bytes).unwrap();
        assert_eq!(newest_timestamp(signal, &bytes), Ok(decoded.newest_timestamp()), "{signal}");
        // The requests carry newer times where a decode does not count
        // them: in the first copy of a repeated field (a span's end, a log
        // record's time) and in metric data replaced by another type.
        let expected = match signal {
            Signal::Traces => BASE + 1_000,
            Signal::Metrics => BASE + 57,
            Signal::Logs => BASE + 6_000,
        };
        assert_eq!(decoded.newest_timestamp(), Some(expected), "{signal}");
    }
}

#[test]
fn a_timestamp_or_id_of_the_wrong_wire_type_is_refused() {
    let cases: [(Signal, Raw, &str); 6] = [
        (Signal::Traces, Raw::default().varint(7, BASE), "a timestamp field has the wrong wire type"),
        (Signal::Traces, Raw::default().fixed64(1, 5), "an id field has the wrong wire type"),
        (Signal::Traces, Raw::default().varint(11, 1), "a message field has the wrong wire type"),
        (Signal::Logs, Raw::default().fixed32(11, 5), "a timestamp field has the wrong wire type"),
        (Signal::Logs, Raw::default().varint(10, 5), "an id field has the wrong wire type"),
        (Signal::Metrics, Raw::default().varint(7, 5), "a message field has the wrong wire type"),
    ];
    for (signal, item, message) in cases {
        let bytes = request(&[Raw::default(), item]).0;
        let offset = bytes.len() - 1;
        let error = wire_rewrite(signal, &bytes, 1, None).unwrap_err();
        assert_eq!(error.message, message, "{signal}");
        assert!(error.offset > 0 && error.offset < bytes.len(), "{signal}: {error}");
        assert_eq!(newest_timestamp(signal, &bytes).unwrap_err(), error);
        // The prost decode refuses these too.
        assert!(ExportRequest::decode_protobuf(signal, &bytes).is_err(), "{signal} at {offset}");
    }
    // Inside an exemplar and a data point.
    let exemplar = Raw::default().varint(2, 1);
    let point = Raw::default().message(5, &exemplar);
    let metric = Raw::default().message(5, &Raw::default().message(1, &point));
    let bytes = request(&[Raw::default(), metric]).0;
    assert_eq!(
        wire_rewrite(Signal::Metrics, &bytes, 1, None).unwrap_err().message,
        "a timestamp field has the wrong wire type"
    );
    let point = Raw::default().bytes(3, &[0; 8]);
    let metric = Raw::default().message(11, &Raw::default().message(1, &point));
    let bytes = request(&[Raw::default(), metric]).0;
    assert_eq!(
        wire_rewrite(Signal::Metrics, &bytes, 1, None).unwrap_err().message,
        "a timestamp field has the wrong wire type"
    );
}

/// Every request of the tests, encoded, with its signal.
fn all_encoded() -> Vec<(Signal, Vec<u8>)> {
    let encoded = sample_requests()
        .into_iter()
        .chain(edge_requests())
        .map(|request| (request.signal(), request.encode_protobuf()));
    let raw = RAW_REQUESTS.into_iter().map(|(signal, raw)| (signal, raw(&Patch::none())));
    encoded.chain(raw).collect()
}

/// When both the wire functions and a decode accept `bytes`, they agree.
fn assert_agrees_with_a_decode(signal: Signal, bytes: &[u8], context: &str) {
    let remap = IdRemap::new(3, 4);
    let wire = wire_rewrite(signal, bytes, -7_000, Some(&remap));
    let newest = newest_timestamp(signal, bytes);
    assert_eq!(wire.is_err(), newest.is_err(), "{signal}, {context}: {wire:?} {newest:?}");
    if let Ok(wire) = &wire {
        assert_eq!(wire.len(), bytes.len());
    }
    let (Ok(wire), Ok(newest), Ok(decoded)) = (wire, newest, ExportRequest::decode_protobuf(signal, bytes)) else {
        return;
    };
    assert_eq!(newest, decoded.newest_timestamp(), "{signal}, {context}");
    let rewritten = ExportRequest::decode_protobuf(signal, &wire).unwrap();
    assert!(rewritten == decoded_rewrite(signal, bytes, -7_000, Some(&remap)), "{signal}, {context}");
}

#[test]
fn every_truncation_is_refused_unless_it_leaves_a_request() {
    for (signal, bytes) in all_encoded() {
        for cut in 0..bytes.len() {
            let cut_bytes = &bytes[..cut];
            let decoded = ExportRequest::decode_protobuf(signal, cut_bytes);
            let wire = wire_rewrite(signal, cut_bytes, 1, Some(&IdRemap::new(1, 1)));
            // A cut between top-level fields leaves a request; any other
            // is refused with an offset inside the bytes, as a decode and
            // the item count refuse it.
            assert_eq!(wire.is_err(), decoded.is_err(), "{signal}, cut at {cut}: {wire:?}");
            assert_eq!(wire.is_err(), count_items(signal, cut_bytes).is_err(), "{signal}, cut at {cut}");
            if let Err(error) = &wire {
                assert!(error.offset <= cut, "{signal}, cut at {cut}: {error}");
            }
            assert_agrees_with_a_decode(signal, cut_bytes, &format!("cut at {cut}"));
        }
    }
}

/// A small deterministic generator (xorshift64*) for the mutation loop.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }
}

#[test]
fn mutated_requests_never_panic_and_agree_with_a_decode_when_both_accept_them() {
    let mut random = Random(0x9e37_79b9_7f4a_7c15);
    let (mut accepted, mut refused) = (0, 0);
    for (signal, bytes) in all_encoded() {
        for round in 0..400 {
            let mut mutated = bytes.clone();
            for _ in 0..=random.below(3) {
                let at = random.below(mutated.len());
                mutated[at] = match random.below(4) {
                    0 => random.next() as u8,
                    1 => mutated[at] ^ (1 << random.below(8)),
                    2 => mutated[at].wrapping_add(1),
                    _ => mutated[at].wrapping_sub(1),
                };
            }
            assert_agrees_with_a_decode(signal, &mutated, &format!("round {round}"));
            if newest_timestamp(signal, &mutated).is_ok() {
                accepted += 1;
            } else {
                refused += 1;
            }
            let _ =
                crate::wire::retain_resources(signal, &mutated, |name| name.is_some_and(|name| name.len() % 2 == 0));
        }
    }
    // Both outcomes were exercised.
    assert!(accepted > 100 && refused > 100, "accepted {accepted}, refused {refused}");
}

#[test]
fn malformed_bytes_are_refused_with_their_offset() {
    let mut bytes = vec![0x0a, 0xff, 0xff, 0x01];
    assert_eq!(
        rewrite_in_place(Signal::Traces, &mut bytes, 1, None),
        Err(WireError { offset: 1, message: "length runs past the end of its message" })
    );
    assert_eq!(newest_timestamp(Signal::Logs, &[0x08]).unwrap_err().message, "truncated varint");
    assert_eq!(
        newest_timestamp(Signal::Metrics, &[0x0b]).unwrap_err().message,
        "unsupported wire type (groups are not OTLP)"
    );
    // A resource entry as a varint.
    assert_eq!(
        newest_timestamp(Signal::Traces, &[0x08, 0x01]).unwrap_err().message,
        "a message field has the wrong wire type"
    );
}

#[test]
fn keeps_attribute_values_that_look_like_timestamps() {
    // A bytes attribute holding what reads as a span's start time (key
    // 0x39: field 7, fixed64) lies inside the attribute and stays as it is.
    let lookalike = [&[0x39][..], &BASE.to_le_bytes()].concat();
    let mut traces = sample::traces("checkout", 1, 0);
    traces.resource_spans[0].scope_spans[0].spans[0].attributes.push(KeyValue {
        key: "blob".to_owned(),
        value: Some(AnyValue { value: Some(Value::BytesValue(lookalike.clone())) }),
        ..KeyValue::default()
    });
    let bytes = ExportRequest::from(traces).encode_protobuf();
    let wire = wire_rewrite(Signal::Traces, &bytes, 5, None).unwrap();
    assert!(wire == decoded_rewrite(Signal::Traces, &bytes, 5, None).encode_protobuf());
    assert!(wire.windows(lookalike.len()).any(|window| window == lookalike));
}

mod series {
    use super::*;
    use crate::proto::collector::metrics::v1::ExportMetricsServiceRequest;
    use crate::wire::{SeriesStarts, rewrite_metrics_in_place};

    const SECOND: i64 = 1_000_000_000;

    fn bytes(request: ExportMetricsServiceRequest) -> Vec<u8> {
        ExportRequest::from(request).encode_protobuf()
    }

    fn series_rewrite(bytes: &[u8], delta: i64, starts: &mut SeriesStarts) -> ExportRequest {
        let mut bytes = bytes.to_vec();
        rewrite_metrics_in_place(&mut bytes, delta, None, starts).unwrap();
        ExportRequest::decode_protobuf(Signal::Metrics, &bytes).unwrap()
    }

    /// `request` shifted by `delta`, with the start of every cumulative
    /// point (the sum, the histogram's and the summary's; the sample's
    /// exponential histogram is a delta one) set to `start`.
    fn expected(request: &[u8], delta: i64, start: u64) -> ExportRequest {
        let mut request = decoded_rewrite(Signal::Metrics, request, delta, None);
        let ExportRequest::Metrics(metrics) = &mut request else { unreachable!() };
        for metric in
            metrics.resource_metrics.iter_mut().flat_map(|r| &mut r.scope_metrics).flat_map(|s| &mut s.metrics)
        {
            match metric.data.as_mut().unwrap() {
                Data::Sum(sum) => sum.data_points.iter_mut().for_each(|point| point.start_time_unix_nano = start),
                Data::Histogram(histogram) => {
                    histogram.data_points.iter_mut().for_each(|point| point.start_time_unix_nano = start);
                }
                Data::Summary(summary) => {
                    summary.data_points.iter_mut().for_each(|point| point.start_time_unix_nano = start);
                }
                Data::Gauge(_) | Data::ExponentialHistogram(_) => {}
            }
        }
        request
    }

    #[test]
    fn a_cumulative_series_keeps_its_first_shifted_start_while_its_times_move() {
        let first = bytes(sample::metrics("checkout", 0));
        let later = bytes(sample::metrics("checkout", 10 * SECOND.cast_unsigned()));
        let mut starts = SeriesStarts::new();
        let (d1, d2) = (3_600 * SECOND, 3_600 * SECOND + 250_000_000);
        let shifted = BASE + d1.cast_unsigned();
        // The first request of a series is shifted as rewrite_in_place does.
        assert_eq!(series_rewrite(&first, d1, &mut starts), decoded_rewrite(Signal::Metrics, &first, d1, None));
        assert_eq!(starts.len(), 4, "a sum, two histogram points and a summary");
        // A later one with another shift keeps the series' start.
        assert_eq!(series_rewrite(&later, d2, &mut starts), expected(&later, d2, shifted));
        assert_eq!(starts.len(), 4);

        // Another resource is another series.
        let cart = bytes(sample::metrics("cart", 10 * SECOND.cast_unsigned()));
        let cart_shifted = BASE + d2.cast_unsigned();
        assert_eq!(series_rewrite(&cart, d2, &mut starts), expected(&cart, d2, cart_shifted));
        assert_eq!(starts.len(), 8);

        // A new pass starts anew.
        starts.clear();
        assert_eq!(series_rewrite(&later, d2, &mut starts), expected(&later, d2, BASE + d2.cast_unsigned()));
    }

    #[test]
    fn a_reset_in_the_recording_is_kept_and_attribute_order_does_not_matter() {
        let mut starts = SeriesStarts::new();
        let first = bytes(sample::metrics("checkout", 0));
        series_rewrite(&first, SECOND, &mut starts);
        // The recording's series restarted 5 s later: a new start, shifted
        // by the shift of the request that carries it.
        let mut reset = sample::metrics("checkout", 20 * SECOND.cast_unsigned());
        let reset_start = BASE + 5 * SECOND.cast_unsigned();
        let metrics = &mut reset.resource_metrics[0].scope_metrics[0].metrics;
        let Some(Data::Sum(sum)) = &mut metrics[1].data else { panic!("the sample's second metric is a sum") };
        sum.data_points[0].start_time_unix_nano = reset_start;
        let rewritten = series_rewrite(&bytes(reset), 2 * SECOND, &mut starts);
        let ExportRequest::Metrics(rewritten) = rewritten else { unreachable!() };
        let metrics = &rewritten.resource_metrics[0].scope_metrics[0].metrics;
        let Some(Data::Sum(sum)) = &metrics[1].data else { unreachable!() };
        assert_eq!(sum.data_points[0].start_time_unix_nano, reset_start + 2 * SECOND.cast_unsigned());
        let Some(Data::Histogram(histogram)) = &metrics[2].data else { unreachable!() };
        assert_eq!(histogram.data_points[0].start_time_unix_nano, BASE + SECOND.cast_unsigned());

        // The same resource with its attributes in another order is the
        // same series.
        let mut reordered = sample::metrics("checkout", 30 * SECOND.cast_unsigned());
        reordered.resource_metrics[0].resource.as_mut().unwrap().attributes.reverse();
        let before = starts.len();
        series_rewrite(&bytes(reordered), 3 * SECOND, &mut starts);
        assert_eq!(starts.len(), before);
    }

    #[test]
    fn malformed_metrics_are_errors_not_panics() {
        let mut starts = SeriesStarts::new();
        let good = bytes(sample::metrics("checkout", 0));
        for cut in 1..good.len() {
            let mut bytes = good[..cut].to_vec();
            let _ = rewrite_metrics_in_place(&mut bytes, SECOND, None, &mut starts);
        }
    }
}
