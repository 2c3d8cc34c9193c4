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

use super::{FIXED64, FieldAt, LEN, WireError, next_field};
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
        fields(visitor, start, end, |visitor, scope| match scope.number {
            1 => well_formed(visitor, scope),
            2 => {
                let (start, end) = scope.message()?;
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
            1 => {
                let (start, end) = id(field)?;
                visitor.trace_id(start, end);
            }
            2 | 4 => {
                let (start, end) = id(field)?;
                visitor.span_id(start, end);
            }
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
                        1 => {
                            let (start, end) = id(field)?;
                            visitor.trace_id(start, end);
                        }
                        2 => {
                            let (start, end) = id(field)?;
                            visitor.span_id(start, end);
                        }
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
    fields(visitor, start, end, |visitor, data| {
        // Where each type of data point keeps its exemplars: number points
        // (gauge and sum) 5, histogram points 8, exponential histogram
        // points 11; summary points have none (their 5 is the sum).
        let exemplars = match data.number {
            5 | 7 => Some(5),
            9 => Some(8),
            10 => Some(11),
            11 => None,
            _ => return Ok(()),
        };
        let (start, end) = data.message()?;
        visitor.metric_data(data.number);
        fields(visitor, start, end, |visitor, point| {
            if point.number == 1 {
                let (start, end) = point.message()?;
                data_point(visitor, start, end, exemplars)?;
            }
            Ok(())
        })
    })?;
    visitor.end(End::Metric);
    Ok(())
}

/// A data point of any type: start time 2, time 3, exemplars at
/// `exemplars`.
fn data_point<V: Visitor>(visitor: &mut V, start: usize, end: usize, exemplars: Option<u64>) -> Result<(), WireError> {
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
                        4 => {
                            let (start, end) = id(field)?;
                            visitor.span_id(start, end);
                        }
                        5 => {
                            let (start, end) = id(field)?;
                            visitor.trace_id(start, end);
                        }
                        _ => {}
                    }
                    Ok(())
                })?;
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
            9 => {
                let (start, end) = id(field)?;
                visitor.trace_id(start, end);
            }
            10 => {
                let (start, end) = id(field)?;
                visitor.span_id(start, end);
            }
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
