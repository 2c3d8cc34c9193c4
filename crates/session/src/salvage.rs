//! Salvaging what a writer that stopped left of a blob: the complete gzip
//! members at its start.
//!
//! A writer ends a gzip member only between frames (see `docs/FORMAT.md`,
//! section 4.1), and flushes by ending one, so every prefix of a blob that
//! ends at a member boundary is itself a valid blob. [`salvage_blob`] finds
//! the longest such prefix whose members are all intact and whose frames
//! are all complete, and describes it as the writer would have.

use flate2::{Decompress, FlushDecompress, Status};
use prost::Message;
use sha2::{Digest, Sha256};

use crate::Timestamp;
use crate::blob::{BlobError, BlobSummary, MAX_FRAME_LEN, Record};

/// Decompressed bytes produced per call to the decompressor: what is held
/// of a member at a time, besides an incomplete frame.
const OUTPUT_CHUNK: usize = 64 * 1024;

/// The first three bytes of every gzip member: ID1, ID2 and CM = deflate.
const MEMBER_MAGIC: [u8; 3] = [0x1f, 0x8b, 8];

/// gzip header flags (RFC 1952, section 2.3.1).
const FHCRC: u8 = 0x02;
const FEXTRA: u8 = 0x04;
const FNAME: u8 = 0x08;
const FCOMMENT: u8 = 0x10;
const RESERVED_FLAGS: u8 = 0xe0;

/// What [`salvage_blob`] kept of a blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Salvaged {
    /// Length of the kept prefix: complete, intact gzip members that end on
    /// a frame boundary. `bytes[..valid_len]` is a valid blob (or empty).
    pub valid_len: usize,
    /// What the kept prefix holds, as [`BlobWriter::finish`] would report
    /// it: `compressed_bytes` is `valid_len` and `sha256` that of the kept
    /// bytes.
    ///
    /// [`BlobWriter::finish`]: crate::BlobWriter::finish
    pub summary: BlobSummary,
    /// Bytes after the kept prefix.
    pub dropped_bytes: usize,
    /// Why the bytes after the kept prefix were dropped; `None` when the
    /// whole input is a valid blob (or empty).
    pub problem: Option<String>,
}

impl Salvaged {
    /// Whether everything was kept.
    pub fn is_whole(&self) -> bool {
        self.dropped_bytes == 0 && self.problem.is_none()
    }
}

/// Keeps the longest prefix of `bytes` made of complete gzip members, each
/// with a valid header (optional fields allowed), valid deflate data and a
/// matching CRC-32 and ISIZE, whose frames end exactly at its end and
/// decode as records. Everything after it is dropped, and the reason given.
///
/// Pure and bounded: it holds a chunk of one member's decompressed output
/// and at most one incomplete frame (64 MiB) at a time.
pub fn salvage_blob(bytes: &[u8]) -> Salvaged {
    let mut frames = Frames::default();
    let mut kept = (0, frames.counts.clone());
    let mut output = vec![0; OUTPUT_CHUNK];
    let mut position = 0;
    let problem = loop {
        if position == bytes.len() {
            // Every member is intact; the stream may still end inside a frame.
            break frames.unfinished();
        }
        match read_member(bytes, position, &mut frames, &mut output) {
            Ok(end) => {
                position = end;
                if frames.pending.is_empty() {
                    kept = (end, frames.counts.clone());
                }
            }
            Err(problem) => break Some(problem),
        }
    };
    let (valid_len, counts) = kept;
    let summary = BlobSummary {
        records: counts.records,
        items: counts.items,
        first_receive_time: counts.first,
        last_receive_time: counts.last,
        compressed_bytes: valid_len as u64,
        uncompressed_bytes: counts.uncompressed_bytes,
        sha256: hex::encode(Sha256::digest(&bytes[..valid_len])),
    };
    Salvaged { valid_len, summary, dropped_bytes: bytes.len() - valid_len, problem }
}

/// Counts of the complete frames parsed so far.
#[derive(Debug, Clone, Default)]
struct Counts {
    records: u64,
    items: u64,
    first: Timestamp,
    last: Timestamp,
    uncompressed_bytes: u64,
}

/// A frame parser fed the decompressed stream in pieces of any size.
#[derive(Default)]
struct Frames {
    counts: Counts,
    /// The bytes of an incomplete frame, length prefix included.
    pending: Vec<u8>,
}

impl Frames {
    /// Parses the frames in `data`, keeping an incomplete last one.
    fn feed(&mut self, mut data: &[u8]) -> Result<(), String> {
        while !data.is_empty() {
            if self.pending.is_empty() {
                // The usual case: whole frames straight from the output.
                if let Some(len) = self.complete_frame_len(data)? {
                    self.record(&data[4..4 + len])?;
                    data = &data[4 + len..];
                    continue;
                }
            }
            if self.pending.len() < 4 {
                let take = (4 - self.pending.len()).min(data.len());
                self.pending.extend_from_slice(&data[..take]);
                data = &data[take..];
                if self.pending.len() < 4 {
                    return Ok(());
                }
            }
            let len = self.declared_len(&self.pending)?;
            let take = (4 + len - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.pending.len() == 4 + len {
                let frame = std::mem::take(&mut self.pending);
                self.record(&frame[4..])?;
            }
        }
        Ok(())
    }

    /// The record length of the frame at the start of `data`, if all of it is there.
    fn complete_frame_len(&self, data: &[u8]) -> Result<Option<usize>, String> {
        if data.len() < 4 {
            return Ok(None);
        }
        let len = self.declared_len(data)?;
        Ok((data.len() >= 4 + len).then_some(len))
    }

    /// The length a frame's prefix declares, refused when over the limit.
    fn declared_len(&self, prefix: &[u8]) -> Result<usize, String> {
        let len = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
        if len > MAX_FRAME_LEN {
            return Err(BlobError::FrameTooLong { offset: self.counts.uncompressed_bytes, len: len as u64 }.to_string());
        }
        Ok(len)
    }

    /// Decodes one frame's record and counts it.
    fn record(&mut self, frame: &[u8]) -> Result<(), String> {
        let offset = self.counts.uncompressed_bytes;
        let record = Record::decode(frame)
            .map_err(|error| BlobError::BadRecord { offset, message: error.to_string() }.to_string())?;
        let counts = &mut self.counts;
        let time = record.receive_time();
        if counts.records == 0 {
            counts.first = time;
        }
        counts.last = time;
        counts.records += 1;
        counts.items += record.item_count;
        counts.uncompressed_bytes += 4 + frame.len() as u64;
        Ok(())
    }

    /// Why the stream cannot end here, if it ends inside a frame.
    fn unfinished(&self) -> Option<String> {
        if self.pending.is_empty() {
            return None;
        }
        let missing = if self.pending.len() < 4 {
            4 - self.pending.len()
        } else {
            let len = u32::from_be_bytes([self.pending[0], self.pending[1], self.pending[2], self.pending[3]]);
            4 + len as usize - self.pending.len()
        };
        Some(BlobError::TruncatedFrame { offset: self.counts.uncompressed_bytes, missing: missing as u64 }.to_string())
    }
}

fn truncated(start: usize, len: usize) -> String {
    format!("the last gzip member, from byte {start}, is truncated at byte {len}")
}

/// Reads the member at `start`, feeding its output to `frames`, and returns
/// where it ends; or why it is not a complete, intact member.
fn read_member(bytes: &[u8], start: usize, frames: &mut Frames, output: &mut [u8]) -> Result<usize, String> {
    let data_start = member_data_start(bytes, start)?;
    let mut inflater = Decompress::new(false);
    let mut crc = crc32fast::Hasher::new();
    let mut input = &bytes[data_start..];
    loop {
        let (before_in, before_out) = (inflater.total_in(), inflater.total_out());
        let status = inflater
            .decompress(input, output, FlushDecompress::None)
            .map_err(|error| format!("the gzip member at byte {start} holds invalid deflate data: {error}"))?;
        let consumed = (inflater.total_in() - before_in) as usize;
        let produced = (inflater.total_out() - before_out) as usize;
        input = &input[consumed..];
        crc.update(&output[..produced]);
        frames.feed(&output[..produced])?;
        if status == Status::StreamEnd {
            break;
        }
        if consumed == 0 && produced == 0 {
            // Given all the input there is and room for output, the
            // decompressor stops short only where the data does.
            return Err(if input.is_empty() {
                truncated(start, bytes.len())
            } else {
                format!("the gzip member at byte {start} holds deflate data the decompressor cannot continue")
            });
        }
    }
    let trailer_start = data_start + inflater.total_in() as usize;
    let trailer = bytes.get(trailer_start..trailer_start + 8).ok_or_else(|| truncated(start, bytes.len()))?;
    let stored_crc = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
    let stored_size = u32::from_le_bytes([trailer[4], trailer[5], trailer[6], trailer[7]]);
    if stored_crc != crc.finalize() {
        return Err(format!("the gzip member at byte {start} fails its CRC-32 check"));
    }
    if stored_size != inflater.total_out() as u32 {
        return Err(format!(
            "the gzip member at byte {start} declares {stored_size} bytes (ISIZE) but holds {}",
            inflater.total_out()
        ));
    }
    Ok(trailer_start + 8)
}

/// Checks the member header at `start` (RFC 1952, section 2.3) and returns
/// where its deflate data starts.
fn member_data_start(bytes: &[u8], start: usize) -> Result<usize, String> {
    let len = bytes.len();
    let available = &bytes[start..len.min(start + MEMBER_MAGIC.len())];
    if *available != MEMBER_MAGIC[..available.len()] {
        return Err(if available.len() >= 3 && available[..2] == MEMBER_MAGIC[..2] {
            format!("the gzip member at byte {start} uses compression method {}, not deflate", available[2])
        } else {
            format!("the bytes from byte {start} on are not a gzip member")
        });
    }
    let header = bytes.get(start..start + 10).ok_or_else(|| truncated(start, len))?;
    let flags = header[3];
    if flags & RESERVED_FLAGS != 0 {
        return Err(format!("the gzip member at byte {start} sets reserved header flags ({flags:#04x})"));
    }
    let mut position = start + 10;
    if flags & FEXTRA != 0 {
        let extra = bytes.get(position..position + 2).ok_or_else(|| truncated(start, len))?;
        position += 2 + usize::from(u16::from_le_bytes([extra[0], extra[1]]));
    }
    for field in [FNAME, FCOMMENT] {
        if flags & field != 0 {
            // Zero-terminated.
            let text = bytes.get(position..).unwrap_or_default();
            position += 1 + text.iter().position(|&byte| byte == 0).ok_or_else(|| truncated(start, len))?;
        }
    }
    if flags & FHCRC != 0 {
        let stored = bytes.get(position..position + 2).ok_or_else(|| truncated(start, len))?;
        let stored = u16::from_le_bytes([stored[0], stored[1]]);
        // The low 16 bits of the CRC-32 of the header before it.
        if stored != crc32fast::hash(&bytes[start..position]) as u16 {
            return Err(format!("the gzip member at byte {start} fails its header CRC check"));
        }
        position += 2;
    }
    if position > len {
        return Err(truncated(start, len));
    }
    Ok(position)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use proptest::prelude::*;

    use super::*;
    use crate::{BlobDecoder, BlobWriter};

    /// A record as the tests append it.
    #[derive(Debug, Clone)]
    struct Input {
        time: u64,
        items: u64,
        payload: Vec<u8>,
    }

    /// A blob written by `BlobWriter`, and where its members end.
    struct Written {
        blob: Vec<u8>,
        summary: BlobSummary,
        /// `(records before, compressed offset)` at every member boundary,
        /// the start of the blob included.
        boundaries: Vec<(usize, usize)>,
    }

    fn inputs(count: usize) -> Vec<Input> {
        (0..count)
            .map(|n| Input {
                time: 1_767_225_600_000_000_000 + n as u64 * 1_000_000,
                items: n as u64 % 4 + 1,
                payload: format!("request {n} ").repeat(n % 7 * 20 + 1).into_bytes(),
            })
            .collect()
    }

    /// Writes `inputs`, ending a member after record `i` when `ends[i]`.
    fn write(inputs: &[Input], ends: &[bool], level: u32) -> Written {
        let mut writer = BlobWriter::new(Vec::new(), level);
        let mut boundaries = vec![(0, 0)];
        for (n, input) in inputs.iter().enumerate() {
            writer.append(Timestamp::from_unix_nanos(input.time), input.items, &input.payload).unwrap();
            if ends.get(n).copied().unwrap_or(false) || n + 1 == inputs.len() {
                writer.finish_member().unwrap();
                boundaries.push((n + 1, writer.compressed_bytes() as usize));
            }
        }
        let (blob, summary) = writer.finish().unwrap();
        if inputs.is_empty() {
            boundaries.push((0, blob.len()));
        }
        Written { blob, summary, boundaries }
    }

    /// The summary of the first `count` inputs, for a kept prefix `kept`.
    fn expected_summary(inputs: &[Input], count: usize, kept: &[u8]) -> BlobSummary {
        let kept_inputs = &inputs[..count];
        BlobSummary {
            records: count as u64,
            items: kept_inputs.iter().map(|input| input.items).sum(),
            first_receive_time: Timestamp::from_unix_nanos(kept_inputs.first().map_or(0, |input| input.time)),
            last_receive_time: Timestamp::from_unix_nanos(kept_inputs.last().map_or(0, |input| input.time)),
            compressed_bytes: kept.len() as u64,
            uncompressed_bytes: kept_inputs.iter().map(|input| frame(input).len() as u64).sum(),
            sha256: hex::encode(Sha256::digest(kept)),
        }
    }

    /// The frame of a record, written from `docs/FORMAT.md`.
    fn frame(input: &Input) -> Vec<u8> {
        let mut record = vec![0x09];
        record.extend_from_slice(&input.time.to_le_bytes());
        record.push(0x10);
        prost::encoding::encode_varint(input.items, &mut record);
        record.push(0x1a);
        prost::encoding::encode_varint(input.payload.len() as u64, &mut record);
        record.extend_from_slice(&input.payload);
        let mut frame = (record.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(&record);
        frame
    }

    /// Every record of a blob, and whether it decoded without error.
    fn decode(blob: &[u8]) -> (Vec<Record>, bool) {
        let mut decoder = BlobDecoder::new();
        let ok = decoder.feed(blob).is_ok() && decoder.finish().is_ok();
        let records = std::iter::from_fn(|| decoder.next_record()).collect();
        (records, ok)
    }

    /// A gzip member with the given header flags and fields around `data`.
    fn member_with_fields(data: &[u8], extra: Option<&[u8]>, name: Option<&str>, comment: Option<&str>) -> Vec<u8> {
        let mut flags = FHCRC;
        flags |= if extra.is_some() { FEXTRA } else { 0 };
        flags |= if name.is_some() { FNAME } else { 0 };
        flags |= if comment.is_some() { FCOMMENT } else { 0 };
        let mut member = vec![0x1f, 0x8b, 8, flags, 1, 2, 3, 4, 0, 3];
        if let Some(extra) = extra {
            member.extend_from_slice(&(extra.len() as u16).to_le_bytes());
            member.extend_from_slice(extra);
        }
        for text in [name, comment].into_iter().flatten() {
            member.extend_from_slice(text.as_bytes());
            member.push(0);
        }
        let header_crc = crc32fast::hash(&member) as u16;
        member.extend_from_slice(&header_crc.to_le_bytes());
        let mut deflate = flate2::write::DeflateEncoder::new(member, flate2::Compression::default());
        deflate.write_all(data).unwrap();
        let mut member = deflate.finish().unwrap();
        member.extend_from_slice(&crc32fast::hash(data).to_le_bytes());
        member.extend_from_slice(&(data.len() as u32).to_le_bytes());
        member
    }

    #[test]
    fn a_complete_blob_is_kept_whole_with_the_writers_summary() {
        for level in [0, 1, 6, 9] {
            for (count, ends) in [(0, vec![]), (1, vec![]), (9, vec![]), (9, vec![true, false, true, true, false])] {
                let inputs = inputs(count);
                let written = write(&inputs, &ends, level);
                let salvaged = salvage_blob(&written.blob);
                assert_eq!(salvaged.summary, written.summary, "level {level}, {count} records");
                assert_eq!(salvaged.valid_len, written.blob.len());
                assert!(salvaged.is_whole(), "{salvaged:?}");
            }
        }
    }

    #[test]
    fn an_empty_input_keeps_nothing_and_reports_nothing() {
        let salvaged = salvage_blob(&[]);
        assert_eq!((salvaged.valid_len, salvaged.dropped_bytes, salvaged.problem), (0, 0, None));
        assert_eq!(salvaged.summary.records, 0);
    }

    #[test]
    fn a_cut_inside_a_member_keeps_the_members_before_it_and_says_where() {
        let inputs = inputs(6);
        let written = write(&inputs, &[false, true, false, true], 1);
        let (records, boundary) = written.boundaries[1];
        let cut = boundary + 15;
        let salvaged = salvage_blob(&written.blob[..cut]);
        assert_eq!(salvaged.valid_len, boundary);
        assert_eq!(salvaged.summary, expected_summary(&inputs, records, &written.blob[..boundary]));
        assert_eq!(salvaged.dropped_bytes, 15);
        assert_eq!(
            salvaged.problem.as_deref(),
            Some(format!("the last gzip member, from byte {boundary}, is truncated at byte {cut}").as_str())
        );
    }

    #[test]
    fn damage_drops_its_member_and_everything_after_it() {
        let inputs = inputs(6);
        let written = write(&inputs, &[true, true, true, true, true], 6);
        let (records, start) = written.boundaries[2];
        let end = written.boundaries[3].1;
        // Damage inside deflate data shows as invalid data, a bad frame or
        // a checksum mismatch, depending on the bytes.
        let cases: [(usize, &str); 4] = [
            (start, "are not a gzip member"),
            (start + 3, "reserved header flags"),
            (start + (end - start) / 2, ""),
            (end - 6, "CRC-32"),
        ];
        for (position, message) in cases {
            let mut blob = written.blob.clone();
            blob[position] ^= if position == start + 3 { 0x80 } else { 0x55 };
            let salvaged = salvage_blob(&blob);
            assert_eq!(salvaged.valid_len, start, "damage at {position}");
            assert_eq!(salvaged.summary.records, records as u64);
            assert_eq!(salvaged.dropped_bytes, blob.len() - start);
            let problem = salvaged.problem.unwrap();
            assert!(problem.contains(message), "damage at {position}: {problem}");
        }
    }

    #[test]
    fn bytes_after_the_last_member_are_dropped() {
        let inputs = inputs(3);
        let written = write(&inputs, &[], 1);
        let mut blob = written.blob.clone();
        blob.extend_from_slice(&[0; 100]);
        let salvaged = salvage_blob(&blob);
        assert_eq!(salvaged.summary, written.summary);
        assert_eq!(salvaged.dropped_bytes, 100);
        assert!(salvaged.problem.unwrap().contains("not a gzip member"));
    }

    #[test]
    fn optional_header_fields_are_accepted_and_checked() {
        let inputs = inputs(3);
        let frames: Vec<u8> = inputs.iter().flat_map(frame).collect();
        let split = frame(&inputs[0]).len();
        let first = member_with_fields(&frames[..split], Some(b"xy\0z"), Some("a.gz"), None);
        let second = member_with_fields(&frames[split..], None, None, Some("comment"));
        let blob = [first.clone(), second].concat();
        let salvaged = salvage_blob(&blob);
        assert!(salvaged.is_whole(), "{salvaged:?}");
        assert_eq!(salvaged.summary, expected_summary(&inputs, 3, &blob));

        // The second member's header CRC, after its 10 fixed bytes and comment.
        let mut damaged = blob.clone();
        damaged[first.len() + 10 + "comment".len() + 1] ^= 1;
        let salvaged = salvage_blob(&damaged);
        assert_eq!(salvaged.valid_len, first.len());
        assert!(salvaged.problem.unwrap().contains("header CRC"));
    }

    #[test]
    fn a_frame_across_members_counts_only_once_it_is_complete() {
        let inputs = inputs(3);
        let frames: Vec<u8> = inputs.iter().flat_map(frame).collect();
        let split = frame(&inputs[0]).len() + 10;
        let first = member_with_fields(&frames[..split], None, None, None);
        let second = member_with_fields(&frames[split..], None, None, None);
        let blob = [first.clone(), second].concat();
        assert_eq!(salvage_blob(&blob).summary, expected_summary(&inputs, 3, &blob));

        // Only the first member: no boundary after the first record's member.
        let salvaged = salvage_blob(&first);
        assert_eq!(salvaged.valid_len, 0);
        assert_eq!(salvaged.dropped_bytes, first.len());
        assert!(salvaged.problem.unwrap().contains("ends inside the frame"));
    }

    #[test]
    fn frames_that_break_the_rules_are_refused() {
        let too_long = ((MAX_FRAME_LEN + 1) as u32).to_be_bytes();
        let bad_record = [0, 0, 0, 2, 0x0a, 0x05];
        for (data, message) in [(&too_long[..], "over the 64 MiB limit"), (&bad_record[..], "does not decode")] {
            let salvaged = salvage_blob(&member_with_fields(data, None, None, None));
            assert_eq!(salvaged.valid_len, 0);
            assert!(salvaged.problem.unwrap().contains(message));
        }
    }

    fn blob_strategy() -> impl Strategy<Value = (Vec<Input>, Vec<bool>, u32)> {
        let input = (0u64..1_000_000, 0u64..300, prop::collection::vec(0u8..4, 0..600));
        (prop::collection::vec(input, 1..12), prop::collection::vec(any::<bool>(), 12), 0u32..=9).prop_map(
            |(raw, ends, level)| {
                let mut time = 1_767_225_600_000_000_000;
                let inputs = raw
                    .into_iter()
                    .map(|(delta, items, payload)| {
                        time += delta;
                        Input { time, items, payload }
                    })
                    .collect();
                (inputs, ends, level)
            },
        )
    }

    proptest! {
        #[test]
        fn any_truncation_keeps_exactly_the_complete_members_before_the_cut(
            (inputs, ends, level) in blob_strategy(),
            cut in any::<prop::sample::Index>(),
        ) {
            let written = write(&inputs, &ends, level);
            let cut = cut.index(written.blob.len() + 1);
            let &(records, boundary) =
                written.boundaries.iter().rev().find(|(_, offset)| *offset <= cut).unwrap();
            let salvaged = salvage_blob(&written.blob[..cut]);
            prop_assert_eq!(salvaged.valid_len, boundary);
            prop_assert_eq!(salvaged.dropped_bytes, cut - boundary);
            prop_assert_eq!(salvaged.problem.is_some(), cut != boundary);
            prop_assert_eq!(&salvaged.summary, &expected_summary(&inputs, records, &written.blob[..boundary]));
            if cut == written.blob.len() {
                prop_assert_eq!(&salvaged.summary, &written.summary);
            }
        }

        #[test]
        fn a_corrupt_byte_keeps_the_members_before_it(
            (inputs, ends, level) in blob_strategy(),
            position in any::<prop::sample::Index>(),
            flip in 1u8..=255,
        ) {
            let written = write(&inputs, &ends, level);
            let position = position.index(written.blob.len());
            let mut blob = written.blob.clone();
            blob[position] ^= flip;
            let member_start = written.boundaries.iter().rev().find(|(_, offset)| *offset <= position).unwrap().1;
            let salvaged = salvage_blob(&blob);
            // At least the members before the damaged one, and only whole members.
            prop_assert!(salvaged.valid_len >= member_start);
            let boundary = written.boundaries.iter().find(|(_, offset)| *offset == salvaged.valid_len);
            prop_assert!(boundary.is_some(), "kept {} bytes: not a member boundary", salvaged.valid_len);
            let records = boundary.unwrap().0;
            prop_assert_eq!(salvaged.summary.records, records as u64);
            // What is kept reads back as the records written, without error
            // (damage to a field that carries no meaning, such as MTIME, is kept).
            let (decoded, ok) = decode(&blob[..salvaged.valid_len]);
            prop_assert!(ok || salvaged.valid_len == 0);
            prop_assert_eq!(decoded.len(), records);
            for (record, input) in decoded.iter().zip(&inputs) {
                prop_assert_eq!(record.receive_time_unix_nano, input.time);
                prop_assert_eq!(&record.payload[..], &input.payload[..]);
            }
        }
    }
}
