//! Working on the protobuf bytes of an export request without decoding it.
//!
//! A receiver must count the spans, data points or log records of every
//! request and refuse one that is not a request, but it stores the bytes as
//! they came: building the whole message tree only to count and drop it is
//! most of a receiver's work. [`count_items`] walks the wire format instead
//! ([`count_spans`] also counts the spans with an error status):
//! every field of every message on the path down to the items (requests,
//! resources, scopes, metrics, and the items themselves) must be well formed
//! (valid tags and wire types, varints that end, lengths inside their
//! message), and the fields on that path must have the wire type of the
//! OTLP schema. What it does not check is the UTF-8 of strings, the wire
//! types of fields inside an item, nesting and a metric's kinds of data:
//! [`validate_request`] checks all of that, as the full decoder would, and
//! is what the receivers of a capture use.
//!
//! A replay rewrites every stored request it sends, at millions of items a
//! second, so it does the same: [`rewrite_in_place`] patches timestamps
//! (`fixed64`) and trace and span ids (16 and 8 bytes) where they lie,
//! which never changes a length, and gives the request that
//! [`ExportRequest::shift_timestamps`](crate::ExportRequest::shift_timestamps)
//! and [`ExportRequest::remap_ids`](crate::ExportRequest::remap_ids) give;
//! [`newest_timestamp`] reads what
//! [`ExportRequest::newest_timestamp`](crate::ExportRequest::newest_timestamp)
//! reads; [`retain_resources`] drops the resources of services a replay
//! leaves out, copying the others byte for byte. The first two walk down
//! to the timestamps and ids, check what [`count_items`] checks on the
//! way, and refuse a timestamp or id field of the wrong wire type; the
//! last reads the top level and the resource attributes. All of them skip
//! every other field unread, and none allocates per item.
//! [`cut_to_shard`] cuts a request to the items of one [`Shard`] of N
//! (`replay --shard I/N`): spans by their trace id, log records by their
//! trace id or resource, metric points by their series, copying the items
//! kept byte for byte.
//!
//! ```no_run
//! use tape_otlp::{IdRemap, Signal, wire};
//!
//! # fn stored_request() -> Vec<u8> { Vec::new() }
//! let now: u64 = 1_767_225_600_000_000_000;
//! let mut request = stored_request();
//! // Move the request so that its newest time is now, with the ids of
//! // pass 2, and leave out the services other than checkout.
//! let newest = wire::newest_timestamp(Signal::Traces, &request)?.unwrap_or(now);
//! let delta = i64::try_from(now.saturating_sub(newest)).unwrap_or(i64::MAX);
//! wire::rewrite_in_place(Signal::Traces, &mut request, delta, Some(&IdRemap::new(7, 2)))?;
//! if let Some(retained) = wire::retain_resources(Signal::Traces, &request, |service| service == Some("checkout"))? {
//!     request = retained;
//! }
//! # Ok::<(), wire::WireError>(())
//! ```

mod retain;
mod rewrite;
mod shard;
mod spans;
mod validate;

pub use retain::retain_resources;
pub use rewrite::{SeriesStarts, newest_timestamp, rewrite_in_place, rewrite_metrics_in_place};
pub use shard::{InvalidShard, MAX_SHARDS, Shard, ShardCut, cut_to_shard};
pub use spans::{SpanCount, count_spans};
pub use validate::{FieldName, InvalidRequest, Problem, RECURSION_LIMIT, validate_request};

use crate::Signal;

/// Why bytes are not an export request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} at byte {offset}")]
pub struct WireError {
    /// Offset in the request of the field or value at fault.
    pub offset: usize,
    /// What is wrong.
    pub message: &'static str,
}

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

/// One field of a message: its number, wire type, and for
/// length-delimited fields the bytes (with their offset in the request).
struct Field<'a> {
    number: u64,
    wire_type: u8,
    offset: usize,
    bytes: &'a [u8],
}

/// One field of a message, located by positions in the buffer it was read
/// from: the value is `start..end` (empty for a varint, at the end of it).
#[derive(Debug, Clone, Copy)]
struct FieldAt {
    number: u64,
    wire_type: u8,
    start: usize,
    end: usize,
}

impl FieldAt {
    /// The field must be length-delimited: an embedded message, whose
    /// bytes are `start..end`.
    fn message(self) -> Result<(usize, usize), WireError> {
        if self.wire_type == LEN {
            Ok((self.start, self.end))
        } else {
            Err(WireError { offset: self.start, message: "a message field has the wrong wire type" })
        }
    }
}

/// Reads the field that starts at `*at` in `bytes` and moves `*at` past
/// it; `None` at the end of `bytes`. Positions (and error offsets) are
/// indices into `bytes`, so a caller walking a message inside a larger
/// buffer passes the buffer cut at the message's end and keeps its
/// positions absolute.
// Inlined into every walk: measured, it more than doubles the rate of
// `rewrite_in_place` (the compiler keeps it out of line otherwise).
#[allow(clippy::inline_always)]
#[inline(always)]
fn next_field(bytes: &[u8], at: &mut usize) -> Result<Option<FieldAt>, WireError> {
    if *at >= bytes.len() {
        return Ok(None);
    }
    let offset = *at;
    let key = varint(bytes, at)?;
    let number = key >> 3;
    let wire_type = (key & 7) as u8;
    if number == 0 || number > (1 << 29) - 1 {
        return Err(WireError { offset, message: "invalid field number" });
    }
    let (start, end) = match wire_type {
        VARINT => {
            varint(bytes, at)?;
            (*at, *at)
        }
        FIXED64 => skip(bytes, at, 8)?,
        FIXED32 => skip(bytes, at, 4)?,
        LEN => {
            let length_at = *at;
            let len = varint(bytes, at)?;
            let past_end = WireError { offset: length_at, message: "length runs past the end of its message" };
            let len = usize::try_from(len).map_err(|_| past_end.clone())?;
            skip(bytes, at, len).map_err(|_| past_end)?
        }
        _ => return Err(WireError { offset, message: "unsupported wire type (groups are not OTLP)" }),
    };
    Ok(Some(FieldAt { number, wire_type, start, end }))
}

/// The fields of the message in `bytes`, which starts at `base` in the
/// request; fails on the first malformed one.
fn for_each_field<'a>(
    bytes: &'a [u8],
    base: usize,
    mut visit: impl FnMut(Field<'a>) -> Result<(), WireError>,
) -> Result<(), WireError> {
    let rebase = |error: WireError| WireError { offset: base + error.offset, ..error };
    let mut at = 0;
    while let Some(field) = next_field(bytes, &mut at).map_err(rebase)? {
        visit(Field {
            number: field.number,
            wire_type: field.wire_type,
            offset: base + field.start,
            bytes: &bytes[field.start..field.end],
        })?;
    }
    Ok(())
}

#[inline]
fn varint(bytes: &[u8], at: &mut usize) -> Result<u64, WireError> {
    // Most varints of a request (tags, lengths below 128) are one byte.
    if let Some(&byte) = bytes.get(*at)
        && byte < 0x80
    {
        *at += 1;
        return Ok(u64::from(byte));
    }
    varint_slow(bytes, at)
}

/// [`varint`] past its first byte.
fn varint_slow(bytes: &[u8], at: &mut usize) -> Result<u64, WireError> {
    let start = *at;
    let mut value: u64 = 0;
    for shift in 0..10 {
        let Some(&byte) = bytes.get(*at) else {
            return Err(WireError { offset: start, message: "truncated varint" });
        };
        *at += 1;
        value |= u64::from(byte & 0x7f) << (shift * 7);
        if byte < 0x80 {
            // The tenth byte holds the 64th bit and no more, as prost reads it.
            if shift == 9 && byte > 1 {
                return Err(WireError { offset: start, message: "varint overflows 64 bits" });
            }
            return Ok(value);
        }
    }
    Err(WireError { offset: start, message: "varint longer than 10 bytes" })
}

/// Moves `*at` past `len` bytes, returning the range they span.
#[inline]
fn skip(bytes: &[u8], at: &mut usize, len: usize) -> Result<(usize, usize), WireError> {
    let end = at.checked_add(len).filter(|end| *end <= bytes.len());
    let Some(end) = end else {
        return Err(WireError { offset: *at, message: "length runs past the end of its message" });
    };
    let start = *at;
    *at = end;
    Ok((start, end))
}

/// `field` must be length-delimited: an embedded message.
fn message<'a>(field: &Field<'a>) -> Result<&'a [u8], WireError> {
    if field.wire_type == LEN {
        Ok(field.bytes)
    } else {
        Err(WireError { offset: field.offset, message: "a message field has the wrong wire type" })
    }
}

/// Checks that `bytes` is a well-formed message, without looking inside
/// its fields.
fn well_formed(bytes: &[u8], base: usize) -> Result<(), WireError> {
    for_each_field(bytes, base, |_| Ok(()))
}

/// Counts the items in the messages at field `field` of the message
/// `bytes`, checking that each is well formed.
fn count_leaves(bytes: &[u8], base: usize, field: u64) -> Result<u64, WireError> {
    let mut count = 0;
    for_each_field(bytes, base, |item| {
        if item.number == field {
            well_formed(message(&item)?, item.offset)?;
            count += 1;
        }
        Ok(())
    })?;
    Ok(count)
}

/// Counts the items of one scope message starting at an offset.
type ScopeCounter<'a> = dyn Fn(&[u8], usize) -> Result<u64, WireError> + 'a;

/// Walks `resource → scope → item` for traces and logs: field 1 of the
/// request holds resources, field 2 of a resource holds scopes, field 2 of
/// a scope holds the items; `leaves` counts within one scope.
fn walk(bytes: &[u8], leaves: &ScopeCounter<'_>) -> Result<u64, WireError> {
    let mut count = 0;
    for_each_field(bytes, 0, |resource| {
        if resource.number != 1 {
            return Ok(());
        }
        for_each_field(message(&resource)?, resource.offset, |scope| {
            match scope.number {
                // The resource itself: well formed.
                1 => well_formed(message(&scope)?, scope.offset),
                2 => {
                    count += leaves(message(&scope)?, scope.offset)?;
                    Ok(())
                }
                _ => Ok(()),
            }
        })
    })?;
    Ok(count)
}

/// The data points of one `Metric`: field 1 of its data (gauge 5, sum 7,
/// histogram 9, exponential histogram 10, summary 11).
fn metric_points(metric: &[u8], base: usize) -> Result<u64, WireError> {
    let mut count = 0;
    for_each_field(metric, base, |data| {
        if matches!(data.number, 5 | 7 | 9 | 10 | 11) {
            count += count_leaves(message(&data)?, data.offset, 1)?;
        }
        Ok(())
    })?;
    Ok(count)
}

/// The items (spans, metric data points, log records) of a protobuf
/// `Export*ServiceRequest` of `signal`, checked as the module says.
pub fn count_items(signal: Signal, bytes: &[u8]) -> Result<u64, WireError> {
    match signal {
        // ScopeSpans.spans and ScopeLogs.log_records are field 2.
        Signal::Traces | Signal::Logs => walk(bytes, &|scope, base| {
            let mut count = 0;
            for_each_field(scope, base, |field| {
                match field.number {
                    1 => well_formed(message(&field)?, field.offset)?,
                    2 => {
                        well_formed(message(&field)?, field.offset)?;
                        count += 1;
                    }
                    _ => {}
                }
                Ok(())
            })?;
            Ok(count)
        }),
        // ScopeMetrics.metrics is field 2; each metric holds its points.
        Signal::Metrics => walk(bytes, &|scope, base| {
            let mut count = 0;
            for_each_field(scope, base, |field| {
                match field.number {
                    1 => well_formed(message(&field)?, field.offset)?,
                    2 => count += metric_points(message(&field)?, field.offset)?,
                    _ => {}
                }
                Ok(())
            })?;
            Ok(count)
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ExportRequest, sample};

    fn requests() -> Vec<ExportRequest> {
        vec![
            ExportRequest::Traces(sample::traces("checkout", 7, 0)),
            ExportRequest::Metrics(sample::metrics("checkout", 0)),
            ExportRequest::Logs(sample::logs("checkout", 5, 0)),
        ]
    }

    #[test]
    fn counts_what_a_full_decode_counts() {
        for request in requests() {
            let bytes = request.encode_protobuf();
            assert_eq!(count_items(request.signal(), &bytes), Ok(request.item_count()), "{}", request.signal());
        }
        for signal in Signal::ALL {
            assert_eq!(count_items(signal, &[]), Ok(0));
        }
    }

    #[test]
    fn every_truncation_that_breaks_the_wire_format_is_refused() {
        for request in requests() {
            let bytes = request.encode_protobuf();
            for cut in 1..bytes.len() {
                let wire = count_items(request.signal(), &bytes[..cut]);
                let decoded = ExportRequest::decode_protobuf(request.signal(), &bytes[..cut]);
                // A cut that leaves a valid request (between top-level
                // fields) counts what is left; any other is refused, as a
                // full decode refuses it.
                match decoded {
                    Ok(decoded) => assert_eq!(wire, Ok(decoded.item_count()), "cut at {cut}"),
                    Err(_) => assert!(wire.is_err(), "cut at {cut} of {}", request.signal()),
                }
            }
        }
    }

    #[test]
    fn malformed_bytes_are_refused_with_their_offset() {
        assert_eq!(
            count_items(Signal::Traces, &[0x0a, 0xff, 0xff, 0x01]),
            Err(WireError { offset: 1, message: "length runs past the end of its message" })
        );
        assert_eq!(count_items(Signal::Traces, &[0x08]).unwrap_err().message, "truncated varint");
        assert_eq!(
            count_items(Signal::Logs, &[0x0b]).unwrap_err().message,
            "unsupported wire type (groups are not OTLP)"
        );
        // resource_spans as a varint: the wrong wire type for a message.
        assert_eq!(
            count_items(Signal::Traces, &[0x08, 0x01]).unwrap_err().message,
            "a message field has the wrong wire type"
        );
        assert_eq!(count_items(Signal::Metrics, &[0x00, 0x01]).unwrap_err().message, "invalid field number");
    }
}
