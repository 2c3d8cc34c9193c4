//! Helpers shared by the tests: a reference frame encoder written from
//! `docs/FORMAT.md` (not from the crate), blob writing and reading, and
//! realistic OTLP payloads.

use std::io::{Read, Write};

use bytes::Bytes;
use flate2::Compression;
use sha2::{Digest, Sha256};
use tape_otlp::{ExportRequest, Signal, sample};
use tape_session::blob::ReadError;
use tape_session::{BlobDecoder, BlobError, BlobReader, BlobSummary, BlobWriter, Record, Timestamp};

/// A record as a test appends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    pub receive_time: u64,
    pub item_count: u64,
    pub payload: Vec<u8>,
}

impl Input {
    pub fn new(receive_time: u64, item_count: u64, payload: impl Into<Vec<u8>>) -> Self {
        Input { receive_time, item_count, payload: payload.into() }
    }

    /// The record a reader should give back.
    pub fn record(&self) -> Record {
        Record {
            receive_time_unix_nano: self.receive_time,
            item_count: self.item_count,
            payload: Bytes::copy_from_slice(&self.payload),
        }
    }

    /// The frame writers emit for this record.
    pub fn frame(&self) -> Vec<u8> {
        frame(self.receive_time, self.item_count, &self.payload)
    }
}

/// The records `inputs` should read back as.
pub fn records(inputs: &[Input]) -> Vec<Record> {
    inputs.iter().map(Input::record).collect()
}

/// Appends `value` as a protobuf base-128 varint.
pub fn varint(mut value: u64, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push((value & 0x7f) as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// The frame of a record in the canonical encoding of `docs/FORMAT.md`:
/// a 4-byte big-endian length, then fields 1, 2 and 3, always present.
pub fn frame(receive_time: u64, item_count: u64, payload: &[u8]) -> Vec<u8> {
    let mut record = vec![0x09];
    record.extend_from_slice(&receive_time.to_le_bytes());
    record.push(0x10);
    varint(item_count, &mut record);
    record.push(0x1a);
    varint(payload.len() as u64, &mut record);
    record.extend_from_slice(payload);
    raw_frame(&record)
}

/// A frame around arbitrary bytes.
pub fn raw_frame(bytes: &[u8]) -> Vec<u8> {
    let mut frame = u32::try_from(bytes.len()).unwrap().to_be_bytes().to_vec();
    frame.extend_from_slice(bytes);
    frame
}

/// The concatenated frames of `inputs`: the decompressed bytes of their blob.
pub fn frames(inputs: &[Input]) -> Vec<u8> {
    inputs.iter().flat_map(Input::frame).collect()
}

/// A blob and what the writer said about it.
pub struct Written {
    pub blob: Vec<u8>,
    pub summary: BlobSummary,
    /// Compressed length after each `finish_member` that closed a member.
    pub member_ends: Vec<(usize, usize)>,
}

/// Writes `inputs` at `level`, finishing the gzip member after every record
/// whose flag in `finish_after` is set (missing flags are unset).
pub fn write_blob(inputs: &[Input], finish_after: &[bool], level: u32) -> Written {
    let mut writer = BlobWriter::new(Vec::new(), level);
    let mut member_ends = Vec::new();
    for (index, input) in inputs.iter().enumerate() {
        writer.append(Timestamp::from_unix_nanos(input.receive_time), input.item_count, &input.payload).unwrap();
        if finish_after.get(index).copied().unwrap_or(false) {
            writer.finish_member().unwrap();
            // Records before the end of this member, and where it ends.
            member_ends.push((index + 1, writer.compressed_bytes() as usize));
        }
    }
    let (blob, summary) = writer.finish().unwrap();
    Written { blob, summary, member_ends }
}

/// One gzip member holding `bytes`, to build blobs the writer never would.
pub fn gzip_member(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// Decompresses every member of a gzip file.
pub fn gunzip(blob: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::new();
    flate2::read::MultiGzDecoder::new(blob).read_to_end(&mut bytes).unwrap();
    bytes
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// What a decoder gave: the records, then the error, if any.
#[derive(Debug)]
pub struct Decoded {
    pub records: Vec<Record>,
    pub error: Option<BlobError>,
    pub compressed_offset: u64,
    pub uncompressed_offset: u64,
}

/// Feeds `blob` to a [`BlobDecoder`] in chunks of the sizes in `chunk_sizes`
/// (cycled; empty means one chunk), taking records out after every feed.
pub fn decode_in_chunks(blob: &[u8], chunk_sizes: &[usize]) -> Decoded {
    let mut decoder = BlobDecoder::new();
    let mut records = Vec::new();
    let mut sizes = chunk_sizes.iter().copied().cycle();
    let mut rest = blob;
    let mut error = None;
    while !rest.is_empty() {
        let size = sizes.next().unwrap_or(rest.len()).clamp(1, rest.len());
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        let result = decoder.feed(chunk);
        records.extend(std::iter::from_fn(|| decoder.next_record()));
        if let Err(failure) = result {
            error = Some(failure);
            break;
        }
    }
    if error.is_none() {
        error = decoder.finish().err();
        records.extend(std::iter::from_fn(|| decoder.next_record()));
    }
    Decoded {
        records,
        error,
        compressed_offset: decoder.compressed_offset(),
        uncompressed_offset: decoder.uncompressed_offset(),
    }
}

/// Reads `source` with a [`BlobReader`]: the records, then the error, and
/// checks that nothing comes after the error.
pub fn read_all(source: impl Read) -> (Vec<Record>, Option<ReadError>) {
    let mut reader = BlobReader::new(source);
    let mut records = Vec::new();
    for result in reader.by_ref() {
        match result {
            Ok(record) => records.push(record),
            Err(error) => {
                assert!(reader.next().is_none(), "the reader went on after {error}");
                return (records, Some(error));
            }
        }
    }
    (records, None)
}

/// The blob error a [`BlobReader`] ended with, if it was one.
pub fn blob_error(error: Option<ReadError>) -> Option<BlobError> {
    match error {
        None => None,
        Some(ReadError::Blob(error)) => Some(error),
        Some(ReadError::Io(error)) => panic!("unexpected I/O error {error}"),
    }
}

/// A realistic request of `signal` in protobuf and its item count; `n`
/// varies ids, times and sizes.
pub fn sample_payload(signal: Signal, n: u64) -> (Vec<u8>, u64) {
    let service = ["checkout", "payments", "inventory", "frontend"][(n % 4) as usize];
    let offset = n * 1_000_000_000;
    let request: ExportRequest = match signal {
        Signal::Traces => sample::traces(service, 8 + n % 40, offset).into(),
        Signal::Metrics => sample::metrics(service, offset).into(),
        Signal::Logs => sample::logs(service, 4 + n % 20, offset).into(),
    };
    (request.encode_protobuf(), request.item_count())
}

/// `count` realistic records of `signal`, a millisecond apart from `start`.
pub fn sample_inputs(signal: Signal, start: u64, count: u64) -> Vec<Input> {
    (0..count)
        .map(|n| {
            let (payload, items) = sample_payload(signal, n);
            Input::new(start + n * 1_000_000, items, payload)
        })
        .collect()
}

/// `len` bytes of deterministic noise (splitmix64), incompressible.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        bytes.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}
