//! Timestamps and ids, patched where they lie in the protobuf bytes.
//!
//! One walk goes down every request to its timestamps (`fixed64`) and its
//! trace and span ids (`bytes`), reporting each to a [`Visitor`]: the
//! rewrite patches them, [`newest_timestamp`] reads them. The walk names
//! the fields once, so the two agree on which fields they are, and both
//! agree with the decoded request's methods in [`crate::rewrite`] and
//! [`crate::timestamps`], whose lists of fields they mirror.
//!
//! Bytes that a full decode would read differently from how they are laid
//! out are read as the decode reads them: of a timestamp given twice in one
//! message the last counts, and of a metric whose data is given as two
//! types the last type counts. A rewrite patches every copy, which decodes
//! to what the decoded rewrite gives.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hasher};

use super::{FIXED64, FieldAt, LEN, VARINT, WireError, next_field, varint};
use crate::rewrite::shift_timestamp;
use crate::{IdRemap, Signal};

/// Which timestamp a `fixed64` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Time {
    SpanStart,
    SpanEnd,
    Event,
    PointStart,
    Point,
    Exemplar,
    Record,
    RecordObserved,
}

/// A message whose end the walk reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Span,
    Event,
    Point,
    Metric,
    Record,
}

/// What a walk does with what it finds. Positions are indices into
/// [`Visitor::bytes`], always in bounds.
trait Visitor {
    /// The whole request.
    fn bytes(&self) -> &[u8];
    /// A timestamp: the 8 bytes at `at`, little-endian.
    fn time(&mut self, at: usize, time: Time);
    /// A trace id (of any length) at `start..end`.
    fn trace_id(&mut self, start: usize, end: usize);
    /// A span id (of any length) at `start..end`.
    fn span_id(&mut self, start: usize, end: usize);
    /// The start of one data field of a metric (gauge 5, sum 7, histogram
    /// 9, exponential histogram 10, summary 11).
    fn metric_data(&mut self, _number: u64) {}
    /// The end of a message.
    fn end(&mut self, _message: End) {}

    /// Whether the walk reports what identifies a metric series (the
    /// calls below); only the series rewrite needs it, and it costs a
    /// second look at the fields of resources, scopes and metrics.
    const SERIES: bool = false;
    /// The resource of the metrics that follow, at `start..end` (empty
    /// when there is none).
    fn resource(&mut self, _start: usize, _end: usize) {}
    /// The scope of the metrics that follow.
    fn scope(&mut self, _start: usize, _end: usize) {}
    /// The name of the metric whose points follow.
    fn metric_name(&mut self, _start: usize, _end: usize) {}
    /// Whether the data whose points follow is cumulative: a sum,
    /// histogram or exponential histogram of cumulative temporality, or a
    /// summary.
    fn cumulative(&mut self, _cumulative: bool) {}
    /// One attribute (a `KeyValue`) of the data point being read.
    fn point_attribute(&mut self, _start: usize, _end: usize) {}
}

/// The last field `number` of the message at `start..end` (a decode keeps
/// the last), with the offset of its key.
pub(super) fn last_field(
    bytes: &[u8],
    start: usize,
    end: usize,
    number: u64,
) -> Result<Option<(usize, FieldAt)>, WireError> {
    let mut at = start;
    let mut found = None;
    loop {
        let key_at = at;
        let Some(field) = next_field(&bytes[..end], &mut at)? else { return Ok(found) };
        if field.number == number {
            found = Some((key_at, field));
        }
    }
}

/// Whether the metric data at `start..end` (field `number` of a `Metric`)
/// is cumulative: `aggregation_temporality` (field 2) is
/// `AGGREGATION_TEMPORALITY_CUMULATIVE` (2) for sums, histograms and
/// exponential histograms; summaries always are; gauges never.
fn is_cumulative(bytes: &[u8], number: u64, start: usize, end: usize) -> Result<bool, WireError> {
    match number {
        7 | 9 | 10 => match last_field(bytes, start, end, 2)? {
            Some((mut at, field)) if field.wire_type == VARINT => {
                varint(bytes, &mut at)?;
                Ok(varint(bytes, &mut at)? == 2)
            }
            _ => Ok(false),
        },
        11 => Ok(true),
        _ => Ok(false),
    }
}

/// Calls `each` with every field of the message at `start..end`.
#[inline]
fn fields<V: Visitor>(
    visitor: &mut V,
    start: usize,
    end: usize,
    mut each: impl FnMut(&mut V, FieldAt) -> Result<(), WireError>,
) -> Result<(), WireError> {
    let mut at = start;
    while let Some(field) = next_field(&visitor.bytes()[..end], &mut at)? {
        each(visitor, field)?;
    }
    Ok(())
}

/// The field must be a timestamp: `fixed64`.
#[inline]
fn timestamp(field: FieldAt) -> Result<usize, WireError> {
    if field.wire_type == FIXED64 {
        Ok(field.start)
    } else {
        Err(WireError { offset: field.start, message: "a timestamp field has the wrong wire type" })
    }
}

/// The field must be an id: `bytes`.
#[inline]
fn id(field: FieldAt) -> Result<(usize, usize), WireError> {
    if field.wire_type == LEN {
        Ok((field.start, field.end))
    } else {
        Err(WireError { offset: field.start, message: "an id field has the wrong wire type" })
    }
}

/// Hands the id in `field` to the visitor's `take`
/// ([`Visitor::trace_id`] or [`Visitor::span_id`]).
fn id_field<V: Visitor>(visitor: &mut V, field: FieldAt, take: fn(&mut V, usize, usize)) -> Result<(), WireError> {
    let (start, end) = id(field)?;
    take(visitor, start, end);
    Ok(())
}

/// Checks that the field is a well-formed message, without looking inside
/// its fields.
fn well_formed<V: Visitor>(visitor: &mut V, field: FieldAt) -> Result<(), WireError> {
    let (start, end) = field.message()?;
    fields(visitor, start, end, |_, _| Ok(()))
}

/// Walks `request → resource → scope → item` (field 1, then 2, then 2 in
/// every signal), checking the resource (field 1 of a resource entry) and
/// the scope (field 1 of a scope entry) as `count_items` does.
fn walk<V: Visitor>(signal: Signal, visitor: &mut V) -> Result<(), WireError> {
    let len = visitor.bytes().len();
    fields(visitor, 0, len, |visitor, resource| {
        if resource.number != 1 {
            return Ok(());
        }
        let (start, end) = resource.message()?;
        if V::SERIES && signal == Signal::Metrics {
            let (from, to) = match last_field(visitor.bytes(), start, end, 1)? {
                Some((_, field)) => field.message()?,
                None => (start, start),
            };
            visitor.resource(from, to);
        }
        fields(visitor, start, end, |visitor, scope| match scope.number {
            1 => well_formed(visitor, scope),
            2 => {
                let (start, end) = scope.message()?;
                if V::SERIES && signal == Signal::Metrics {
                    let (from, to) = match last_field(visitor.bytes(), start, end, 1)? {
                        Some((_, field)) => field.message()?,
                        None => (start, start),
                    };
                    visitor.scope(from, to);
                }
                fields(visitor, start, end, |visitor, item| match item.number {
                    1 => well_formed(visitor, item),
                    2 => {
                        let (start, end) = item.message()?;
                        match signal {
                            Signal::Traces => span(visitor, start, end),
                            Signal::Metrics => metric(visitor, start, end),
                            Signal::Logs => log_record(visitor, start, end),
                        }
                    }
                    _ => Ok(()),
                })
            }
            _ => Ok(()),
        })
    })
}

/// A `Span`: ids 1, 2 and 4 (parent), times 7 and 8, events 11, links 13.
fn span<V: Visitor>(visitor: &mut V, start: usize, end: usize) -> Result<(), WireError> {
    fields(visitor, start, end, |visitor, field| {
        match field.number {
            1 => id_field(visitor, field, V::trace_id)?,
            2 | 4 => id_field(visitor, field, V::span_id)?,
            7 => visitor.time(timestamp(field)?, Time::SpanStart),
            8 => visitor.time(timestamp(field)?, Time::SpanEnd),
            11 => {
                let (start, end) = field.message()?;
                // Event: time 1.
                fields(visitor, start, end, |visitor, field| {
                    if field.number == 1 {
                        visitor.time(timestamp(field)?, Time::Event);
                    }
                    Ok(())
                })?;
                visitor.end(End::Event);
            }
            13 => {
                let (start, end) = field.message()?;
                // Link: ids 1 and 2, no time.
                fields(visitor, start, end, |visitor, field| {
                    match field.number {
                        1 => id_field(visitor, field, V::trace_id)?,
                        2 => id_field(visitor, field, V::span_id)?,
                        _ => {}
                    }
                    Ok(())
                })?;
            }
            _ => {}
        }
        Ok(())
    })?;
    visitor.end(End::Span);
    Ok(())
}

/// A `Metric`: its data (gauge 5, sum 7, histogram 9, exponential
/// histogram 10, summary 11) holds data points at field 1.
fn metric<V: Visitor>(visitor: &mut V, start: usize, end: usize) -> Result<(), WireError> {
    if V::SERIES {
        let (from, to) = match last_field(visitor.bytes(), start, end, 1)? {
            Some((_, field)) if field.wire_type == LEN => (field.start, field.end),
            _ => (start, start),
        };
        visitor.metric_name(from, to);
    }
    fields(visitor, start, end, |visitor, data| {
        // Where each type of data point keeps its exemplars: number points
        // (gauge and sum) 5, histogram points 8, exponential histogram
        // points 11; summary points have none (their 5 is the sum). And
        // its attributes: 7, 9, 1 and 7.
        let (exemplars, attributes) = match data.number {
            5 | 7 => (Some(5), 7),
            9 => (Some(8), 9),
            10 => (Some(11), 1),
            11 => (None, 7),
            _ => return Ok(()),
        };
        let (start, end) = data.message()?;
        visitor.metric_data(data.number);
        if V::SERIES {
            let cumulative = is_cumulative(visitor.bytes(), data.number, start, end)?;
            visitor.cumulative(cumulative);
        }
        fields(visitor, start, end, |visitor, point| {
            if point.number == 1 {
                let (start, end) = point.message()?;
                data_point(visitor, start, end, exemplars, attributes)?;
            }
            Ok(())
        })
    })?;
    visitor.end(End::Metric);
    Ok(())
}

/// A data point of any type: start time 2, time 3, exemplars at
/// `exemplars`, attributes at `attributes`.
fn data_point<V: Visitor>(
    visitor: &mut V,
    start: usize,
    end: usize,
    exemplars: Option<u64>,
    attributes: u64,
) -> Result<(), WireError> {
    fields(visitor, start, end, |visitor, field| {
        match field.number {
            2 => visitor.time(timestamp(field)?, Time::PointStart),
            3 => visitor.time(timestamp(field)?, Time::Point),
            number if Some(number) == exemplars => {
                let (start, end) = field.message()?;
                // Exemplar: time 2, span id 4, trace id 5.
                fields(visitor, start, end, |visitor, field| {
                    match field.number {
                        2 => visitor.time(timestamp(field)?, Time::Exemplar),
                        4 => id_field(visitor, field, V::span_id)?,
                        5 => id_field(visitor, field, V::trace_id)?,
                        _ => {}
                    }
                    Ok(())
                })?;
            }
            number if V::SERIES && number == attributes && field.wire_type == LEN => {
                visitor.point_attribute(field.start, field.end);
            }
            _ => {}
        }
        Ok(())
    })?;
    visitor.end(End::Point);
    Ok(())
}

/// A `LogRecord`: time 1, observed time 11, trace id 9, span id 10.
fn log_record<V: Visitor>(visitor: &mut V, start: usize, end: usize) -> Result<(), WireError> {
    fields(visitor, start, end, |visitor, field| {
        match field.number {
            1 => visitor.time(timestamp(field)?, Time::Record),
            11 => visitor.time(timestamp(field)?, Time::RecordObserved),
            9 => id_field(visitor, field, V::trace_id)?,
            10 => id_field(visitor, field, V::span_id)?,
            _ => {}
        }
        Ok(())
    })?;
    visitor.end(End::Record);
    Ok(())
}

/// Patches every timestamp and id the walk finds.
struct Rewrite<'a> {
    bytes: &'a mut [u8],
    delta: i64,
    remap: Option<&'a IdRemap>,
}

impl Visitor for Rewrite<'_> {
    fn bytes(&self) -> &[u8] {
        self.bytes
    }

    #[inline]
    fn time(&mut self, at: usize, _: Time) {
        if self.delta == 0 {
            return;
        }
        if let Some(slot) = self.bytes.get_mut(at..).and_then(<[u8]>::first_chunk_mut::<8>) {
            *slot = shift_timestamp(u64::from_le_bytes(*slot), self.delta).to_le_bytes();
        }
    }

    #[inline]
    fn trace_id(&mut self, start: usize, end: usize) {
        if let Some(remap) = self.remap
            && let Some(id) = self.bytes.get_mut(start..end)
        {
            remap.trace_id(id);
        }
    }

    #[inline]
    fn span_id(&mut self, start: usize, end: usize) {
        if let Some(remap) = self.remap
            && let Some(id) = self.bytes.get_mut(start..end)
        {
            remap.span_id(id);
        }
    }
}

/// Shifts every non-zero timestamp of the protobuf `Export*ServiceRequest`
/// of `signal` in `bytes` by `delta` nanoseconds and, with `remap`, maps
/// every trace id and span id, in place and in one pass.
///
/// The result decodes to the decoded request after
/// [`ExportRequest::shift_timestamps`](crate::ExportRequest::shift_timestamps)
/// and [`ExportRequest::remap_ids`](crate::ExportRequest::remap_ids), and
/// for bytes that a protobuf encoder wrote it is, byte for byte, that
/// request encoded:
/// the same timestamps move (span start, end and event times, data point
/// start times, times and exemplar times, log record times and observed
/// times), a zero timestamp stays zero and the others saturate inside
/// `1..=u64::MAX`; the same ids map (span, parent span and link ids of
/// spans, ids of exemplars and of log records), and ids that are all zero
/// or not 16 (trace) or 8 (span) bytes long are kept. Every other byte is
/// kept, unknown fields included. `delta == 0` with no `remap` changes
/// nothing but still checks the request.
///
/// The request is checked as [`count_items`](super::count_items) checks
/// it, and a timestamp or id field of the wrong wire type is refused. On
/// an error the request is malformed and should be dropped: the walk
/// patches as it goes, so fields before the error may have been patched
/// already (checking first would read every request twice).
pub fn rewrite_in_place(
    signal: Signal,
    bytes: &mut [u8],
    delta: i64,
    remap: Option<&IdRemap>,
) -> Result<(), WireError> {
    walk(signal, &mut Rewrite { bytes, delta, remap })
}

/// The start times of the cumulative metric series of one replay pass:
/// each series (resource, scope, metric name and point attributes) and
/// recorded start time keeps the first shifted start time it was sent
/// with, so that a backend sees one start per series, not a counter reset
/// on every export. A new start time in the recording (a reset) gets its
/// own. It holds one entry per series and recorded start time.
#[derive(Debug, Clone, Default)]
pub struct SeriesStarts {
    first: HashMap<(u64, u64), u64>,
}

impl SeriesStarts {
    /// No series seen yet.
    pub fn new() -> Self {
        SeriesStarts::default()
    }

    /// Forgets every series: for a new pass, whose series start anew.
    pub fn clear(&mut self) {
        self.first.clear();
    }

    /// Series (and recorded start times) seen.
    pub fn len(&self) -> usize {
        self.first.len()
    }

    /// Whether no series was seen.
    pub fn is_empty(&self) -> bool {
        self.first.is_empty()
    }
}

/// A hash of bytes.
fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut hasher = DefaultHasher::new();
    hasher.write(bytes);
    hasher.finish()
}

/// A hash of the fields of the message at `start..end` that does not
/// depend on their order (attributes may come in any order).
fn hash_message(bytes: &[u8], start: usize, end: usize) -> u64 {
    let mut at = start;
    let mut sum = 0_u64;
    while let Ok(Some(field)) = next_field(&bytes[..end], &mut at) {
        let mut hasher = DefaultHasher::new();
        hasher.write_u64(field.number);
        hasher.write(&bytes[field.start..field.end]);
        sum = sum.wrapping_add(hasher.finish());
    }
    sum
}

/// [`Rewrite`], and the start times of cumulative points through
/// [`SeriesStarts`].
struct SeriesRewrite<'a> {
    rewrite: Rewrite<'a>,
    starts: &'a mut SeriesStarts,
    resource: u64,
    scope: u64,
    metric: u64,
    cumulative: bool,
    /// Of the point being read: its attributes' hash, where its start
    /// time lies (every copy) and what it was, and its shifted time.
    attributes: u64,
    start_at: Vec<usize>,
    start: u64,
    time: u64,
}

impl Visitor for SeriesRewrite<'_> {
    const SERIES: bool = true;

    fn bytes(&self) -> &[u8] {
        self.rewrite.bytes
    }

    fn time(&mut self, at: usize, time: Time) {
        match time {
            Time::PointStart if self.cumulative => {
                if let Some(slot) = self.rewrite.bytes.get(at..).and_then(<[u8]>::first_chunk::<8>) {
                    self.start = u64::from_le_bytes(*slot);
                    self.start_at.push(at);
                }
            }
            Time::Point => {
                self.rewrite.time(at, time);
                if let Some(slot) = self.rewrite.bytes.get(at..).and_then(<[u8]>::first_chunk::<8>) {
                    self.time = u64::from_le_bytes(*slot);
                }
            }
            _ => self.rewrite.time(at, time),
        }
    }

    fn trace_id(&mut self, start: usize, end: usize) {
        self.rewrite.trace_id(start, end);
    }

    fn span_id(&mut self, start: usize, end: usize) {
        self.rewrite.span_id(start, end);
    }

    fn end(&mut self, message: End) {
        match message {
            End::Point => {
                if !self.start_at.is_empty() && self.start != 0 {
                    let mut series = DefaultHasher::new();
                    for part in [self.resource, self.scope, self.metric, self.attributes] {
                        series.write_u64(part);
                    }
                    let delta = self.rewrite.delta;
                    let start = self.start;
                    let first = *self
                        .starts
                        .first
                        .entry((series.finish(), start))
                        .or_insert_with(|| shift_timestamp(start, delta));
                    // A start after its point's time is not valid OTLP: in
                    // the rare case that the first shift puts it there, the
                    // point's time bounds it.
                    let value = if self.time != 0 { first.min(self.time) } else { first };
                    for &at in &self.start_at {
                        if let Some(slot) = self.rewrite.bytes.get_mut(at..).and_then(<[u8]>::first_chunk_mut::<8>) {
                            *slot = value.to_le_bytes();
                        }
                    }
                }
                self.start_at.clear();
                (self.attributes, self.start, self.time) = (0, 0, 0);
            }
            End::Metric => self.cumulative = false,
            _ => {}
        }
    }

    fn resource(&mut self, start: usize, end: usize) {
        self.resource = hash_message(self.rewrite.bytes, start, end);
    }

    fn scope(&mut self, start: usize, end: usize) {
        self.scope = hash_message(self.rewrite.bytes, start, end);
    }

    fn metric_name(&mut self, start: usize, end: usize) {
        self.metric = hash_bytes(&self.rewrite.bytes[start..end]);
    }

    fn cumulative(&mut self, cumulative: bool) {
        self.cumulative = cumulative;
    }

    fn point_attribute(&mut self, start: usize, end: usize) {
        self.attributes = self.attributes.wrapping_add(hash_bytes(&self.rewrite.bytes[start..end]));
    }
}

/// [`rewrite_in_place`] of an `ExportMetricsServiceRequest`, except for
/// the start time of every point of a cumulative series (sums, histograms
/// and exponential histograms of cumulative temporality, and summaries):
/// the first time `starts` sees a series (resource, scope, metric name and
/// point attributes, in any order) with a recorded start time, it shifts
/// that start by `delta` and remembers it; later requests of the series
/// get the start time remembered, whatever their own `delta`, so the
/// series keeps one start time while its points' times move. A start time
/// is never put after its point's time. Zero start times stay zero.
pub fn rewrite_metrics_in_place(
    bytes: &mut [u8],
    delta: i64,
    remap: Option<&IdRemap>,
    starts: &mut SeriesStarts,
) -> Result<(), WireError> {
    let mut visitor = SeriesRewrite {
        rewrite: Rewrite { bytes, delta, remap },
        starts,
        resource: 0,
        scope: 0,
        metric: 0,
        cumulative: false,
        attributes: 0,
        start_at: Vec::new(),
        start: 0,
        time: 0,
    };
    walk(Signal::Metrics, &mut visitor)
}

/// Keeps the newest time the decoded request's `newest_timestamp` sees.
struct NewestTimestamp<'a> {
    bytes: &'a [u8],
    newest: u64,
    // The times of the message being read: the last copy counts.
    span_start: u64,
    span_end: u64,
    event: u64,
    point: u64,
    record: u64,
    record_observed: u64,
    /// The metric data field being read, and the newest of its points.
    data: u64,
    data_newest: u64,
}

impl Visitor for NewestTimestamp<'_> {
    fn bytes(&self) -> &[u8] {
        self.bytes
    }

    #[inline]
    fn time(&mut self, at: usize, time: Time) {
        let Some(value) = self.bytes.get(at..).and_then(<[u8]>::first_chunk::<8>) else { return };
        let value = u64::from_le_bytes(*value);
        match time {
            Time::SpanStart => self.span_start = value,
            Time::SpanEnd => self.span_end = value,
            Time::Event => self.event = value,
            Time::Point => self.point = value,
            Time::Record => self.record = value,
            Time::RecordObserved => self.record_observed = value,
            // Not among the times `newest_timestamp` reads.
            Time::PointStart | Time::Exemplar => {}
        }
    }

    fn trace_id(&mut self, _: usize, _: usize) {}

    fn span_id(&mut self, _: usize, _: usize) {}

    #[inline]
    fn metric_data(&mut self, number: u64) {
        // A decode merges repeated copies of the same data type and
        // replaces the data when another type follows.
        if number != self.data {
            self.data = number;
            self.data_newest = 0;
        }
    }

    #[inline]
    fn end(&mut self, message: End) {
        match message {
            End::Span => {
                self.newest = self.newest.max(self.span_start).max(self.span_end);
                (self.span_start, self.span_end) = (0, 0);
            }
            End::Event => self.newest = self.newest.max(std::mem::take(&mut self.event)),
            End::Point => self.data_newest = self.data_newest.max(std::mem::take(&mut self.point)),
            End::Metric => {
                self.newest = self.newest.max(std::mem::take(&mut self.data_newest));
                self.data = 0;
            }
            End::Record => {
                self.newest = self.newest.max(self.record).max(self.record_observed);
                (self.record, self.record_observed) = (0, 0);
            }
        }
    }
}

/// The newest (largest) non-zero timestamp of the protobuf
/// `Export*ServiceRequest` of `signal` in `bytes`, `None` when it has
/// none: the answer of
/// [`ExportRequest::newest_timestamp`](crate::ExportRequest::newest_timestamp)
/// (span start, end and event times, data point times, log record times
/// and observed times), read in one pass without decoding.
///
/// The request is checked as in [`rewrite_in_place`].
pub fn newest_timestamp(signal: Signal, bytes: &[u8]) -> Result<Option<u64>, WireError> {
    let mut newest = NewestTimestamp {
        bytes,
        newest: 0,
        span_start: 0,
        span_end: 0,
        event: 0,
        point: 0,
        record: 0,
        record_observed: 0,
        data: 0,
        data_newest: 0,
    };
    walk(signal, &mut newest)?;
    Ok(Some(newest.newest).filter(|&time| time != 0))
}

#[cfg(test)]
mod tests;
