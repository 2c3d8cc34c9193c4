//! Damaged blobs: each gives the precise `BlobError` with the right offset,
//! and the records before the damage come out first.

use std::io::{self, Read};

use tape_otlp::Signal;
use tape_session::BlobError;
use tape_session::blob::{MAX_FRAME_LEN, ReadError};

use crate::support::{
    Input, blob_error, decode_in_chunks, gzip_member, raw_frame, read_all, records, sample_inputs, write_blob,
};

/// Chunk sizes every case is decoded with: byte by byte, odd sizes, and all
/// at once.
const CHUNKINGS: [&[usize]; 4] = [&[1], &[7, 1000, 3], &[65_536], &[]];

/// Four realistic trace records in two gzip members of two records each.
fn two_members() -> (Vec<Input>, Vec<u8>, usize) {
    let inputs = sample_inputs(Signal::Traces, 1_767_225_600_000_000_000, 4);
    let written = write_blob(&inputs, &[false, true, false, false], 1);
    let first_member_end = written.member_ends[0].1;
    (inputs, written.blob, first_member_end)
}

/// Decodes `blob` every way: with the decoder in each chunking and with the
/// reader. Each must yield at least `at_least` of `inputs`' records, in
/// order, then an error; the errors are returned for the caller to check.
fn decode_every_way(blob: &[u8], inputs: &[Input], at_least: usize) -> Vec<BlobError> {
    let expected = records(inputs);
    let mut errors = Vec::new();
    for chunks in CHUNKINGS {
        let decoded = decode_in_chunks(blob, chunks);
        assert!(decoded.records.len() >= at_least, "chunks {chunks:?}: {} records", decoded.records.len());
        assert_eq!(decoded.records, expected[..decoded.records.len()], "chunks {chunks:?}");
        errors.push(decoded.error.unwrap_or_else(|| panic!("chunks {chunks:?}: no error")));
    }
    let (read, error) = read_all(blob);
    assert!(read.len() >= at_least, "reader: {} records", read.len());
    assert_eq!(read, expected[..read.len()], "reader");
    errors.push(blob_error(error).expect("the reader found no error"));
    errors
}

/// Cuts the blob of two members at each of the places `cuts` picks from
/// where the first member ends and the blob's length, and checks that it
/// decodes, every way, to a truncated member at the cut.
fn assert_truncated_members_at(cuts: impl FnOnce(usize, usize) -> Vec<usize>) {
    let (inputs, blob, first_member_end) = two_members();
    for cut in cuts(first_member_end, blob.len()) {
        let at_least = if cut > first_member_end { 2 } else { 0 };
        for error in decode_every_way(&blob[..cut], &inputs, at_least) {
            assert_eq!(error, BlobError::TruncatedMember { compressed_bytes: cut as u64 }, "cut at {cut}");
        }
    }
}

#[test]
fn a_blob_cut_inside_the_deflate_data_is_a_truncated_member() {
    // Inside the first member, just after the second's header, in the
    // middle of the second, and one byte before its trailer.
    assert_truncated_members_at(|first_member_end, len| {
        vec![first_member_end / 2, first_member_end + 11, first_member_end.midpoint(len), len - 9]
    });
}

#[test]
fn a_blob_cut_inside_a_member_header_is_a_truncated_member() {
    assert_truncated_members_at(|first_member_end, _| vec![0, 1, 9, 10, first_member_end + 1, first_member_end + 9]);
}

#[test]
fn a_blob_cut_inside_a_member_trailer_is_refused_at_the_cut() {
    // The decompressor (flate2) reports a trailer of fewer than 8 bytes as a
    // checksum mismatch, not as the end of the data, so this cut is a `Gzip`
    // error rather than `TruncatedMember`; either way it names the cut.
    let (inputs, blob, first_member_end) = two_members();
    for cut in (first_member_end - 7..first_member_end).chain(blob.len() - 7..blob.len()) {
        let at_least = if cut > first_member_end { 2 } else { 0 };
        for error in decode_every_way(&blob[..cut], &inputs, at_least) {
            match error {
                BlobError::TruncatedMember { compressed_bytes } => assert_eq!(compressed_bytes, cut as u64),
                BlobError::Gzip { compressed_offset, .. } => assert_eq!(compressed_offset, cut as u64),
                other => panic!("cut at {cut}: {other:?}"),
            }
        }
    }
}

#[test]
fn a_blob_cut_at_a_member_boundary_is_a_shorter_valid_blob() {
    // Only the metadata's size and hash can tell: the format cannot.
    let (inputs, blob, first_member_end) = two_members();
    let decoded = decode_in_chunks(&blob[..first_member_end], &[]);
    assert_eq!(decoded.error, None);
    assert_eq!(decoded.records, records(&inputs[..2]));
}

#[test]
fn garbage_in_the_deflate_data_is_a_gzip_error_at_its_offset() {
    let (inputs, mut blob, first_member_end) = two_members();
    // The first deflate byte of the second member: 0xff says "last block,
    // reserved block type 3", which no deflate decoder accepts.
    let damage = first_member_end + 10;
    blob[damage] = 0xff;
    let errors = decode_every_way(&blob, &inputs, 2);
    for error in &errors {
        let BlobError::Gzip { compressed_offset, message } = error else { panic!("{error:?}") };
        assert!(*compressed_offset as usize <= damage, "{error}");
        assert!(!message.is_empty());
    }
    // Fed byte by byte, the decoder names the damaged byte itself.
    assert!(matches!(errors[0], BlobError::Gzip { compressed_offset, .. } if compressed_offset as usize == damage));
}

#[test]
fn a_wrong_checksum_is_a_gzip_error() {
    let (inputs, mut blob, first_member_end) = two_members();
    // The CRC-32 of the first member.
    blob[first_member_end - 8] ^= 0x01;
    for error in decode_every_way(&blob, &inputs, 0) {
        let BlobError::Gzip { compressed_offset, .. } = error else { panic!("{error:?}") };
        assert!(compressed_offset as usize <= first_member_end, "{compressed_offset}");
    }
}

#[test]
fn bytes_after_the_last_member_are_a_gzip_error() {
    let (inputs, mut blob, _) = two_members();
    let end = blob.len();
    blob.extend_from_slice(b"this is not gzip");
    for error in decode_every_way(&blob, &inputs, 4) {
        let BlobError::Gzip { compressed_offset, .. } = error else { panic!("{error:?}") };
        // A member header is judged once its first 10 bytes are in.
        assert!(compressed_offset as usize <= end + 9, "{compressed_offset} after {end}");
    }
}

/// The first two records' frames, then `tail`, in one gzip member: a blob
/// a writer never produces, with the damage after two good records.
fn two_frames_then(tail: &[u8]) -> (Vec<Input>, Vec<u8>, u64) {
    let inputs = sample_inputs(Signal::Logs, 1_767_225_600_000_000_000, 2);
    let mut stream: Vec<u8> = inputs.iter().flat_map(Input::frame).collect();
    let offset = stream.len() as u64;
    stream.extend_from_slice(tail);
    (inputs, gzip_member(&stream), offset)
}

#[test]
fn a_frame_length_over_64_mib_is_frame_too_long() {
    let len = MAX_FRAME_LEN as u32 + 1;
    let mut tail = len.to_be_bytes().to_vec();
    tail.extend_from_slice(&[0x09; 100]);
    let (inputs, blob, offset) = two_frames_then(&tail);
    for error in decode_every_way(&blob, &inputs, 2) {
        assert_eq!(error, BlobError::FrameTooLong { offset, len: u64::from(len) });
    }
    // The largest length, 0xffffffff, too.
    let (inputs, blob, offset) = two_frames_then(&[0xff; 4]);
    for error in decode_every_way(&blob, &inputs, 2) {
        assert_eq!(error, BlobError::FrameTooLong { offset, len: u64::from(u32::MAX) });
    }
}

#[test]
fn a_frame_of_exactly_64_mib_is_allowed_but_here_truncated() {
    let mut tail = (MAX_FRAME_LEN as u32).to_be_bytes().to_vec();
    tail.extend_from_slice(&[0; 10]);
    let (inputs, blob, offset) = two_frames_then(&tail);
    for error in decode_every_way(&blob, &inputs, 2) {
        assert_eq!(error, BlobError::TruncatedFrame { offset, missing: MAX_FRAME_LEN as u64 - 10 });
    }
}

#[test]
fn a_frame_past_the_end_of_the_data_is_a_truncated_frame() {
    // A length of 100 with 10 bytes of record.
    let mut tail = 100u32.to_be_bytes().to_vec();
    tail.extend_from_slice(&[0; 10]);
    let (inputs, blob, offset) = two_frames_then(&tail);
    for error in decode_every_way(&blob, &inputs, 2) {
        assert_eq!(error, BlobError::TruncatedFrame { offset, missing: 90 });
    }
    // Two bytes of a length prefix.
    let (inputs, blob, offset) = two_frames_then(&[0, 0]);
    for error in decode_every_way(&blob, &inputs, 2) {
        assert_eq!(error, BlobError::TruncatedFrame { offset, missing: 2 });
    }
}

#[test]
fn a_record_that_does_not_decode_is_a_bad_record() {
    for record in [
        // Field 3 declares 5 bytes and has 1.
        &[0x1a, 0x05, 0x01][..],
        // Field 1 is fixed64 but only 3 bytes follow.
        &[0x09, 0x01, 0x02, 0x03],
        // Field 2 with wire type 2 (length-delimited) is not a uint64.
        &[0x12, 0x01, 0x00],
        // A varint that never ends.
        &[0x10, 0xff, 0xff],
        // Field number 0 is invalid.
        &[0x00, 0x00],
    ] {
        let mut tail = raw_frame(record);
        // A good frame after the bad one is never reached.
        tail.extend(crate::support::frame(1, 1, b"after"));
        let (inputs, blob, offset) = two_frames_then(&tail);
        for error in decode_every_way(&blob, &inputs, 2) {
            let BlobError::BadRecord { offset: found, message } = &error else { panic!("{record:02x?}: {error:?}") };
            assert_eq!(*found, offset, "{record:02x?}");
            assert!(!message.is_empty());
        }
    }
}

#[test]
fn records_before_damage_come_out_of_the_reader_first_even_across_chunks() {
    // Enough records that the reader needs several 64 KiB reads before the
    // damage: every good record comes out, then the error.
    let inputs = sample_inputs(Signal::Traces, 1_767_225_600_000_000_000, 300);
    let mut stream: Vec<u8> = inputs.iter().flat_map(Input::frame).collect();
    let offset = stream.len() as u64;
    stream.extend_from_slice(&raw_frame(&[0x1a, 0x05]));
    let blob = gzip_member(&stream);
    assert!(blob.len() > 3 * 65_536);
    let (read, error) = read_all(blob.as_slice());
    assert_eq!(read, records(&inputs));
    assert!(
        matches!(blob_error(error), Some(BlobError::BadRecord { offset: found, .. }) if found == offset),
        "expected a bad record at {offset}"
    );
}

/// A source that fails after `limit` bytes.
struct FailingSource<'a> {
    bytes: &'a [u8],
    limit: usize,
}

impl Read for FailingSource<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.limit == 0 {
            return Err(io::Error::other("the disk went away"));
        }
        let n = buf.len().min(self.limit).min(self.bytes.len());
        buf[..n].copy_from_slice(&self.bytes[..n]);
        self.bytes = &self.bytes[n..];
        self.limit -= n;
        Ok(n)
    }
}

#[test]
fn a_failing_source_ends_the_reader_with_its_error() {
    let (inputs, blob, first_member_end) = two_members();
    let (read, error) = read_all(FailingSource { bytes: &blob, limit: first_member_end });
    assert_eq!(read, records(&inputs[..2]));
    let Some(ReadError::Io(error)) = error else { panic!("{error:?}") };
    assert_eq!(error.to_string(), "the disk went away");
}
