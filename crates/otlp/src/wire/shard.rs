//! Cutting a request to one shard of N, so that N replays of one session
//! send disjoint parts whose union is the whole, without talking to each
//! other: which shard an item belongs to is a pure function of its stored
//! bytes.
//!
//! - A span belongs to shard `fnv1a64(trace_id) mod N`, where `trace_id`
//!   is the span's 16 stored bytes: every span of a trace goes to one
//!   shard, whichever request carries it.
//! - A log record with a trace id (not empty, not all zero) follows its
//!   trace the same way; any other log record goes by its resource:
//!   `fnv1a64(R) mod N`.
//! - A metric data point goes by its series: `fnv1a64(R ‖ S ‖ M ‖ P) mod
//!   N`, so every point of a series (and the start time of a cumulative
//!   sum) goes out from one shard, in order.
//!
//! `fnv1a64` is FNV-1a with 64 bits (offset basis `0xcbf29ce484222325`,
//! prime `0x100000001b3`). `R` is the resource's attributes: their count
//! as 8 bytes little-endian, then each attribute's `KeyValue` bytes as
//! stored, in bytewise order (so the order they came in does not count),
//! each after its length as 8 bytes little-endian. `S` and `M` are the
//! scope name and the metric name, each after its length as 8 bytes
//! little-endian; `P` is the point's attributes as `R` is the resource's.

use std::fmt;
use std::str::FromStr;

use prost::encoding::{self, WireType};

use super::rewrite::last_field;
use super::{FieldAt, LEN, WireError, next_field};
use crate::Signal;

/// The most shards a replay may be cut into.
pub const MAX_SHARDS: u32 = 1024;

/// One of N disjoint parts of a replay: `I/N`, `I` from 0 to `N - 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shard {
    index: u32,
    count: u32,
}

/// Why a text is not a shard; the message says what would be valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidShard(String);

impl Shard {
    /// The shard `index` of `count`.
    ///
    /// # Errors
    /// `count` is 0 or above [`MAX_SHARDS`], or `index` is not below it.
    pub fn new(index: u32, count: u32) -> Result<Shard, InvalidShard> {
        if count == 0 || count > MAX_SHARDS {
            return Err(InvalidShard(format!("the count must be 1 to {MAX_SHARDS}, not {count}")));
        }
        if index >= count {
            return Err(InvalidShard(format!("the index must be below the count (0 to {}), not {index}", count - 1)));
        }
        Ok(Shard { index, count })
    }

    /// Which part: 0 to `count - 1`.
    pub fn index(self) -> u32 {
        self.index
    }

    /// How many parts.
    pub fn count(self) -> u32 {
        self.count
    }

    /// Whether this is the only part (`0/1`): it holds everything.
    pub fn is_whole(self) -> bool {
        self.count == 1
    }

    /// Whether an item whose hash is `hash` belongs to this shard.
    pub fn owns(self, hash: u64) -> bool {
        hash % u64::from(self.count) == u64::from(self.index)
    }

    /// The shard of a trace id: see the module.
    pub fn of_trace(trace_id: &[u8], count: u32) -> u32 {
        let mut hash = Fnv::new();
        hash.write(trace_id);
        u32::try_from(hash.0 % u64::from(count.max(1))).unwrap_or(0)
    }
}

impl fmt::Display for Shard {
    /// `I/N`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&format!("{}/{}", self.index, self.count))
    }
}

impl FromStr for Shard {
    type Err = InvalidShard;

    /// `I/N`: two whole numbers, `I` below `N`, `N` at most [`MAX_SHARDS`].
    fn from_str(text: &str) -> Result<Self, InvalidShard> {
        let expected = || {
            InvalidShard(format!(
                "expected I/N: the index I (from 0) of N shards, such as 0/3, 1/3 or 2/3 (N at most {MAX_SHARDS})"
            ))
        };
        let (index, count) = text.trim().split_once('/').ok_or_else(expected)?;
        let (index, count) = (index.trim(), count.trim());
        // Digits only, then too large is the only way to fail: the message
        // names the number as given.
        let number = |text: &str| {
            if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
                return Err(expected());
            }
            Ok(text.parse::<u32>().ok())
        };
        let (index_value, count_value) = (number(index)?, number(count)?);
        let Some(count_value) = count_value.filter(|count| (1..=MAX_SHARDS).contains(count)) else {
            return Err(InvalidShard(format!("the count must be 1 to {MAX_SHARDS}, not {count}")));
        };
        let Some(index_value) = index_value.filter(|index| *index < count_value) else {
            return Err(InvalidShard(format!(
                "the index must be below the count (0 to {}), not {index}",
                count_value - 1
            )));
        };
        Shard::new(index_value, count_value)
    }
}

crate::serde_as_text!(Shard: Serialize, Deserialize);

/// What is left of a request in a shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardCut {
    /// Every item is in the shard: the request goes as it is.
    Whole,
    /// Some items are: the request cut to them.
    Part {
        /// The new request: every other field copied as it was, the kept
        /// items byte for byte, resources, scopes and metrics left with no
        /// item dropped.
        payload: Vec<u8>,
        /// Items in it.
        items: u64,
    },
    /// No item is in the shard.
    Empty,
}

/// Cuts the protobuf `Export*ServiceRequest` of `signal` in `bytes` to the
/// items of `shard` (see the module for which items those are).
///
/// The path down to the items is checked as [`count_items`](super::count_items)
/// checks it, and the fields read (trace ids, attributes, names) must have
/// their wire type; what an item holds besides is copied unread. The whole
/// shard `0/1` returns [`ShardCut::Whole`] without reading.
///
/// # Errors
/// The bytes are not a request of `signal`.
pub fn cut_to_shard(signal: Signal, bytes: &[u8], shard: Shard) -> Result<ShardCut, WireError> {
    if shard.is_whole() {
        return Ok(ShardCut::Whole);
    }
    let mut cutter = Cutter { bytes, signal, shard, kept: 0, dropped: false, scratch: Vec::new() };
    let payload = cutter.request()?;
    Ok(if !cutter.dropped {
        ShardCut::Whole
    } else if cutter.kept == 0 {
        ShardCut::Empty
    } else {
        ShardCut::Part { payload, items: cutter.kept }
    })
}

/// FNV-1a, 64 bits.
#[derive(Debug, Clone, Copy)]
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 ^= u64::from(byte);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    /// `bytes` after their length, 8 bytes little-endian.
    fn part(&mut self, bytes: &[u8]) {
        self.write(&(bytes.len() as u64).to_le_bytes());
        self.write(bytes);
    }
}

/// A message at `start..end` of the request.
type Span = (usize, usize);

struct Cutter<'a> {
    bytes: &'a [u8],
    signal: Signal,
    shard: Shard,
    /// Items kept.
    kept: u64,
    /// Whether anything was left out.
    dropped: bool,
    /// Attributes being sorted.
    scratch: Vec<Span>,
}

/// What a cut makes of one field that holds items.
enum Cut {
    /// Copied as it is.
    Keep,
    /// Written anew with this body (some of its items left out).
    Rewrite(Vec<u8>),
    /// Left out.
    Drop,
}

impl Cut {
    fn keep(keep: bool) -> Self {
        if keep { Cut::Keep } else { Cut::Drop }
    }

    fn of(body: Option<Vec<u8>>) -> Self {
        body.map_or(Cut::Drop, Cut::Rewrite)
    }
}

impl<'a> Cutter<'a> {
    /// The message at `start..end` rebuilt field by field: `cut` says what
    /// becomes of a field that holds items, or `None` for one that does not,
    /// which is copied as it is. `None` when no field with items is left.
    fn rebuild(
        &mut self,
        start: usize,
        end: usize,
        mut cut: impl FnMut(&mut Self, FieldAt) -> Result<Option<Cut>, WireError>,
    ) -> Result<Option<Vec<u8>>, WireError> {
        let whole: &'a [u8] = self.bytes;
        let bytes = &whole[..end];
        let mut out = Vec::with_capacity(end - start);
        let mut kept = false;
        let mut at = start;
        loop {
            let field_start = at;
            let Some(field) = next_field(bytes, &mut at)? else { break };
            match cut(self, field)? {
                None => out.extend_from_slice(&bytes[field_start..at]),
                Some(Cut::Keep) => {
                    out.extend_from_slice(&bytes[field_start..at]);
                    kept = true;
                }
                Some(Cut::Rewrite(body)) => {
                    put_message(&mut out, field.number, &body);
                    kept = true;
                }
                Some(Cut::Drop) => self.dropped = true,
            }
        }
        Ok(kept.then_some(out))
    }

    /// The request, its resource entries (field 1) cut.
    fn request(&mut self) -> Result<Vec<u8>, WireError> {
        let cut = self.rebuild(0, self.bytes.len(), |cutter, field| {
            if field.number != 1 {
                return Ok(None);
            }
            let (start, end) = field.message()?;
            Ok(Some(Cut::of(cutter.resource(start, end)?)))
        })?;
        Ok(cut.unwrap_or_default())
    }

    /// A resource entry: its resource (field 1) read, its scope entries
    /// (field 2) cut; `None` when no item is left.
    fn resource(&mut self, start: usize, end: usize) -> Result<Option<Vec<u8>>, WireError> {
        let whole: &'a [u8] = self.bytes;
        let bytes = &whole[..end];
        // The resource's hash, for logs without a trace and for metrics.
        let resource = if self.signal == Signal::Traces {
            Fnv::new()
        } else {
            let mut attributes = std::mem::take(&mut self.scratch);
            attributes.clear();
            let mut at = start;
            while let Some(field) = next_field(bytes, &mut at)? {
                if field.number == 1 {
                    let (start, end) = field.message()?;
                    collect_messages(bytes, start, end, 1, &mut attributes)?;
                }
            }
            let mut hash = Fnv::new();
            self.hash_sorted(&mut hash, &mut attributes);
            self.scratch = attributes;
            hash
        };
        self.rebuild(start, end, |cutter, field| {
            if field.number != 2 {
                return Ok(None);
            }
            let (start, end) = field.message()?;
            Ok(Some(Cut::of(cutter.scope(start, end, resource)?)))
        })
    }

    /// A scope entry: its items (field 2) cut; `None` when none is left.
    fn scope(&mut self, start: usize, end: usize, resource: Fnv) -> Result<Option<Vec<u8>>, WireError> {
        let whole: &'a [u8] = self.bytes;
        let bytes = &whole[..end];
        // For metrics: the resource and the scope name (field 1 of the
        // scope at field 1; of several, the last).
        let mut series = resource;
        if self.signal == Signal::Metrics {
            let mut name: &[u8] = &[];
            let mut at = start;
            while let Some(field) = next_field(bytes, &mut at)? {
                if field.number == 1 {
                    let (start, end) = field.message()?;
                    if let Some((start, end)) = last_bytes(bytes, start, end, 1)? {
                        name = &bytes[start..end];
                    }
                }
            }
            series.part(name);
        }
        self.rebuild(start, end, |cutter, field| {
            if field.number != 2 {
                return Ok(None);
            }
            let (start, end) = field.message()?;
            let in_trace = |number| {
                last_bytes(bytes, start, end, number).map(|id| id.map_or(&[][..], |(start, end)| &bytes[start..end]))
            };
            let owner = |trace_id: &[u8]| Shard::of_trace(trace_id, cutter.shard.count) == cutter.shard.index;
            Ok(Some(match cutter.signal {
                Signal::Traces => {
                    let mine = owner(in_trace(1)?);
                    Cut::keep(cutter.item(mine))
                }
                Signal::Logs => {
                    let trace_id = in_trace(9)?;
                    let mine = if trace_id.iter().any(|&byte| byte != 0) {
                        owner(trace_id)
                    } else {
                        cutter.shard.owns(resource.0)
                    };
                    Cut::keep(cutter.item(mine))
                }
                Signal::Metrics => Cut::of(cutter.metric(start, end, series)?),
            }))
        })
    }

    /// Counts an item kept or dropped; returns `keep`.
    fn item(&mut self, keep: bool) -> bool {
        if keep {
            self.kept += 1;
        } else {
            self.dropped = true;
        }
        keep
    }

    /// A metric: the points of its data (gauge 5, sum 7, histogram 9,
    /// exponential histogram 10, summary 11) cut; `None` when none is left.
    fn metric(&mut self, start: usize, end: usize, mut series: Fnv) -> Result<Option<Vec<u8>>, WireError> {
        let whole: &'a [u8] = self.bytes;
        let bytes = &whole[..end];
        let name = last_bytes(bytes, start, end, 1)?.map_or(&[][..], |(start, end)| &bytes[start..end]);
        series.part(name);
        self.rebuild(start, end, |cutter, field| {
            // Where each kind of point keeps its attributes.
            let attributes = match field.number {
                5 | 7 | 11 => 7,
                9 => 9,
                10 => 1,
                _ => return Ok(None),
            };
            let (start, end) = field.message()?;
            Ok(Some(Cut::of(cutter.points(start, end, series, attributes)?)))
        })
    }

    /// A metric's data: its points (field 1) cut by series, the point's
    /// attributes at field `attributes`; `None` when none is left.
    fn points(&mut self, start: usize, end: usize, series: Fnv, attributes: u64) -> Result<Option<Vec<u8>>, WireError> {
        let mut scratch = std::mem::take(&mut self.scratch);
        let cut = self.rebuild(start, end, |cutter, field| {
            if field.number != 1 {
                return Ok(None);
            }
            let (start, end) = field.message()?;
            scratch.clear();
            collect_messages(cutter.bytes, start, end, attributes, &mut scratch)?;
            let mut hash = series;
            cutter.hash_sorted(&mut hash, &mut scratch);
            Ok(Some(Cut::keep(cutter.item(cutter.shard.owns(hash.0)))))
        });
        self.scratch = scratch;
        cut
    }

    /// Hashes `attributes` (messages of the request) as the module says:
    /// their count, then each with its length, in bytewise order.
    fn hash_sorted(&self, hash: &mut Fnv, attributes: &mut [Span]) {
        let bytes = self.bytes;
        attributes.sort_unstable_by(|a, b| bytes[a.0..a.1].cmp(&bytes[b.0..b.1]));
        hash.write(&(attributes.len() as u64).to_le_bytes());
        for &(start, end) in attributes.iter() {
            hash.part(&bytes[start..end]);
        }
    }
}

/// Adds where the messages at field `number` of the message at
/// `start..end` of `bytes` are.
fn collect_messages(
    bytes: &[u8],
    start: usize,
    end: usize,
    number: u64,
    found: &mut Vec<Span>,
) -> Result<(), WireError> {
    let bytes = &bytes[..end];
    let mut at = start;
    while let Some(field) = next_field(bytes, &mut at)? {
        if field.number == number {
            found.push(field.message()?);
        }
    }
    Ok(())
}

/// Where the last bytes field `number` of the message at `start..end` of
/// `bytes` is (the one a decode keeps).
fn last_bytes(bytes: &[u8], start: usize, end: usize, number: u64) -> Result<Option<Span>, WireError> {
    last_field(bytes, start, end, number)?.map(|(_, field)| bytes_field(field)).transpose()
}

/// The field must be length-delimited (bytes or a string).
fn bytes_field(field: FieldAt) -> Result<Span, WireError> {
    if field.wire_type == LEN {
        Ok((field.start, field.end))
    } else {
        Err(WireError { offset: field.start, message: "a bytes or string field has the wrong wire type" })
    }
}

/// Writes field `number` holding the message `body`.
fn put_message(out: &mut Vec<u8>, number: u64, body: &[u8]) {
    let number = u32::try_from(number).expect("a field number read from the wire fits in 29 bits");
    encoding::encode_key(number, WireType::LengthDelimited, out);
    encoding::encode_varint(body.len() as u64, out);
    out.extend_from_slice(body);
}

#[cfg(test)]
#[path = "shard_tests.rs"]
mod tests;
