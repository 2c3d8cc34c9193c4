//! The blob format: gzip members holding length-prefixed `Record` frames.
//!
//! See `docs/FORMAT.md` for the byte-level specification.

use std::collections::VecDeque;
use std::io::{self, Write};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use flate2::Compression;
use prost::Message;
use sha2::{Digest, Sha256};

use crate::Timestamp;

/// The largest frame a reader accepts and a writer produces: 64 MiB.
pub const MAX_FRAME_LEN: usize = 64 * 1024 * 1024;

/// The gzip level writers use unless told otherwise. Level 1 keeps writing
/// well above the capture rates otlp-tape targets while OTLP protobuf still
/// shrinks several times; see `docs/PERFORMANCE.md`.
pub const DEFAULT_COMPRESSION_LEVEL: u32 = 1;

/// One recorded request: what arrived, when, and how many items it held.
#[derive(Clone, PartialEq, Message)]
pub struct Record {
    /// When the request was received (or generated), unix nanoseconds.
    #[prost(fixed64, tag = "1")]
    pub receive_time_unix_nano: u64,
    /// Spans, metric data points or log records in the request.
    #[prost(uint64, tag = "2")]
    pub item_count: u64,
    /// The `Export*ServiceRequest` in protobuf, as received.
    #[prost(bytes = "bytes", tag = "3")]
    pub payload: Bytes,
}

impl Record {
    /// The receive time as a [`Timestamp`].
    pub fn receive_time(&self) -> Timestamp {
        Timestamp::from_unix_nanos(self.receive_time_unix_nano)
    }
}

/// Encodes the frame header of a record: the 4-byte big-endian frame length
/// and the record's fields 1 and 2 and the key and length of field 3, in the
/// canonical order of `docs/FORMAT.md`. The payload follows it.
fn frame_header(receive_time: u64, item_count: u64, payload_len: usize) -> Result<([u8; 40], usize), FrameTooLarge> {
    let mut fields = [0u8; 36];
    let mut cursor = &mut fields[..];
    cursor.put_u8(0x09); // field 1, fixed64
    cursor.put_u64_le(receive_time);
    cursor.put_u8(0x10); // field 2, varint
    prost::encoding::encode_varint(item_count, &mut cursor);
    cursor.put_u8(0x1a); // field 3, length-delimited
    prost::encoding::encode_varint(payload_len as u64, &mut cursor);
    let fields_len = 36 - cursor.len();
    let frame_len = fields_len + payload_len;
    if frame_len > MAX_FRAME_LEN {
        return Err(FrameTooLarge { frame_len });
    }
    let mut header = [0u8; 40];
    header[..4].copy_from_slice(&(frame_len as u32).to_be_bytes());
    header[4..4 + fields_len].copy_from_slice(&fields[..fields_len]);
    Ok((header, 4 + fields_len))
}

/// A record too large for one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a record of {frame_len} bytes is over the {} MiB frame limit", MAX_FRAME_LEN >> 20)]
pub struct FrameTooLarge {
    /// The frame length the record would need.
    pub frame_len: usize,
}

/// What a finished blob holds, for the session's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BlobSummary {
    /// Records written.
    pub records: u64,
    /// Items over all records.
    pub items: u64,
    /// Receive time of the first record.
    pub first_receive_time: Timestamp,
    /// Receive time of the last record.
    pub last_receive_time: Timestamp,
    /// Bytes of the gzip file.
    pub compressed_bytes: u64,
    /// Bytes of the frames before compression.
    pub uncompressed_bytes: u64,
    /// Lowercase hex SHA-256 of the gzip file.
    pub sha256: String,
}

/// Counts and hashes every byte written through it.
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.hasher.update(&buf[..written]);
        self.bytes += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes records into a blob: frames inside gzip members.
///
/// The writer is synchronous and pure: it writes into any `W: Write`, most
/// often a `Vec<u8>` that the caller drains to a store with [`inner_mut`].
/// [`finish_member`] closes the open gzip member, so that everything written
/// so far is readable even if nothing more ever is.
///
/// [`inner_mut`]: BlobWriter::inner_mut
/// [`finish_member`]: BlobWriter::finish_member
pub struct BlobWriter<W: Write> {
    state: WriterState<W>,
    level: Compression,
    summary: BlobSummary,
}

// The encoder is the state a writer is in nearly always; boxing it would
// add an allocation per gzip member for nothing.
#[allow(clippy::large_enum_variant)]
enum WriterState<W: Write> {
    Between(HashingWriter<W>),
    InMember(GzipMember<W>),
    Poisoned,
}

/// One gzip member being written: the header, raw deflate, and a trailer of
/// CRC-32 and length. Written by hand rather than with flate2's
/// `GzEncoder` so that the CRC is `crc32fast`'s (SIMD where the CPU has
/// it), which matters on the seed generator's path; the bytes are the same.
struct GzipMember<W: Write> {
    deflate: flate2::write::DeflateEncoder<HashingWriter<W>>,
    crc: crc32fast::Hasher,
    /// Uncompressed length modulo 2^32, as gzip's ISIZE.
    size: u32,
}

impl<W: Write> GzipMember<W> {
    fn start(mut inner: HashingWriter<W>, level: Compression) -> io::Result<Self> {
        // What flate2's GzBuilder writes: no name, no time, OS "unknown",
        // and the extra flags that say how hard the compressor tried.
        let extra_flags = if level.level() >= Compression::best().level() {
            2
        } else if level.level() <= Compression::fast().level() {
            4
        } else {
            0
        };
        inner.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, extra_flags, 255])?;
        Ok(GzipMember {
            deflate: flate2::write::DeflateEncoder::new(inner, level),
            crc: crc32fast::Hasher::new(),
            size: 0,
        })
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.deflate.write_all(bytes)?;
        self.crc.update(bytes);
        self.size = self.size.wrapping_add(bytes.len() as u32);
        Ok(())
    }

    fn finish(self) -> io::Result<HashingWriter<W>> {
        let mut inner = self.deflate.finish()?;
        inner.write_all(&self.crc.finalize().to_le_bytes())?;
        inner.write_all(&self.size.to_le_bytes())?;
        Ok(inner)
    }

    fn get_ref(&self) -> &HashingWriter<W> {
        self.deflate.get_ref()
    }

    fn get_mut(&mut self) -> &mut HashingWriter<W> {
        self.deflate.get_mut()
    }
}

impl<W: Write> BlobWriter<W> {
    /// A writer into `inner` at gzip `level` (0 to 9).
    pub fn new(inner: W, level: u32) -> Self {
        BlobWriter {
            state: WriterState::Between(HashingWriter { inner, hasher: Sha256::new(), bytes: 0 }),
            level: Compression::new(level.min(9)),
            summary: BlobSummary::default(),
        }
    }

    /// Appends one record. Receive times should not go backwards; the
    /// summary keeps the first and last seen.
    pub fn append(&mut self, receive_time: Timestamp, item_count: u64, payload: &[u8]) -> io::Result<()> {
        let (header, header_len) = frame_header(receive_time.unix_nanos(), item_count, payload.len())
            .map_err(|error| io::Error::new(io::ErrorKind::InvalidInput, error))?;
        let encoder = self.open_member()?;
        encoder.write_all(&header[..header_len])?;
        encoder.write_all(payload)?;
        let summary = &mut self.summary;
        if summary.records == 0 {
            summary.first_receive_time = receive_time;
        }
        summary.last_receive_time = receive_time;
        summary.records += 1;
        summary.items += item_count;
        summary.uncompressed_bytes += (header_len + payload.len()) as u64;
        Ok(())
    }

    fn open_member(&mut self) -> io::Result<&mut GzipMember<W>> {
        if let WriterState::Between(_) = self.state {
            let WriterState::Between(inner) = std::mem::replace(&mut self.state, WriterState::Poisoned) else {
                unreachable!("checked above")
            };
            self.state = WriterState::InMember(GzipMember::start(inner, self.level)?);
        }
        match &mut self.state {
            WriterState::InMember(encoder) => Ok(encoder),
            _ => Err(io::Error::other("the blob writer failed earlier and cannot be used")),
        }
    }

    /// Ends the open gzip member, if any, writing its trailer.
    pub fn finish_member(&mut self) -> io::Result<()> {
        if let WriterState::InMember(_) = self.state {
            let WriterState::InMember(encoder) = std::mem::replace(&mut self.state, WriterState::Poisoned) else {
                unreachable!("checked above")
            };
            self.state = WriterState::Between(encoder.finish()?);
        }
        Ok(())
    }

    /// The writer the compressed bytes go to, to drain them while writing.
    /// Bytes still inside the compressor appear after the next
    /// [`finish_member`](BlobWriter::finish_member).
    pub fn inner_mut(&mut self) -> Option<&mut W> {
        match &mut self.state {
            WriterState::Between(inner) => Some(&mut inner.inner),
            WriterState::InMember(encoder) => Some(&mut encoder.get_mut().inner),
            WriterState::Poisoned => None,
        }
    }

    /// What has been appended so far (compressed size and hash excluded).
    pub fn summary(&self) -> &BlobSummary {
        &self.summary
    }

    /// Compressed bytes produced so far.
    pub fn compressed_bytes(&self) -> u64 {
        match &self.state {
            WriterState::Between(inner) => inner.bytes,
            WriterState::InMember(encoder) => encoder.get_ref().bytes,
            WriterState::Poisoned => 0,
        }
    }

    /// Ends the blob and returns the writer and the blob's summary. A blob
    /// with no record still holds one empty gzip member, so it is a valid
    /// gzip file.
    pub fn finish(mut self) -> io::Result<(W, BlobSummary)> {
        if self.summary.records == 0 {
            self.open_member()?;
        }
        self.finish_member()?;
        let WriterState::Between(mut inner) = std::mem::replace(&mut self.state, WriterState::Poisoned) else {
            return Err(io::Error::other("the blob writer failed earlier and cannot be used"));
        };
        inner.flush()?;
        let mut summary = self.summary;
        summary.compressed_bytes = inner.bytes;
        summary.sha256 = hex::encode(inner.hasher.finalize());
        Ok((inner.inner, summary))
    }
}

/// Why the bytes of a blob are not a valid blob.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlobError {
    /// The gzip data is damaged.
    #[error("gzip data is corrupt at or after compressed byte {compressed_offset}: {message}")]
    Gzip {
        /// Bytes of the blob consumed before the damage was found.
        compressed_offset: u64,
        /// What the decompressor reported.
        message: String,
    },
    /// The blob ends inside a gzip member.
    #[error("the blob ends inside a gzip member at compressed byte {compressed_bytes}: it is truncated")]
    TruncatedMember {
        /// Length of the blob.
        compressed_bytes: u64,
    },
    /// A frame declares a length over [`MAX_FRAME_LEN`].
    #[error("the frame at uncompressed byte {offset} declares {len} bytes, over the {} MiB limit", MAX_FRAME_LEN >> 20)]
    FrameTooLong {
        /// Offset of the frame's length prefix in the decompressed stream.
        offset: u64,
        /// The declared length.
        len: u64,
    },
    /// The data ends inside a frame.
    #[error("the data ends inside the frame at uncompressed byte {offset}: {missing} more bytes were expected")]
    TruncatedFrame {
        /// Offset of the frame's length prefix in the decompressed stream.
        offset: u64,
        /// How many bytes are missing.
        missing: u64,
    },
    /// A frame's bytes are not a `Record`.
    #[error("the record at uncompressed byte {offset} does not decode: {message}")]
    BadRecord {
        /// Offset of the frame's length prefix in the decompressed stream.
        offset: u64,
        /// What the protobuf decoder reported.
        message: String,
    },
}

/// Collects decompressed bytes for the frame parser.
#[derive(Default)]
struct Decompressed(BytesMut);

impl Write for Decompressed {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Input is fed to the decompressor in slices of at most this many bytes, so
/// that even a maliciously compressible blob decompresses into a bounded
/// buffer (deflate expands at most about 1032 times) before frames are
/// taken out of it.
const FEED_SLICE: usize = 16 * 1024;

/// Decodes a blob pushed to it in chunks of any size: the sans-I/O core of
/// every blob reader. Memory is bounded by the largest frame plus a small
/// multiple of the chunk size, never by the blob.
pub struct BlobDecoder {
    gzip: flate2::write::MultiGzDecoder<Decompressed>,
    compressed_offset: u64,
    /// Offset in the decompressed stream of the first byte still buffered.
    buffered_offset: u64,
    records: VecDeque<Record>,
    failed: bool,
}

impl Default for BlobDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl BlobDecoder {
    /// A decoder at the start of a blob.
    pub fn new() -> Self {
        BlobDecoder {
            gzip: flate2::write::MultiGzDecoder::new(Decompressed::default()),
            compressed_offset: 0,
            buffered_offset: 0,
            records: VecDeque::new(),
            failed: false,
        }
    }

    /// Feeds the next bytes of the blob. Complete records become available
    /// from [`next_record`](BlobDecoder::next_record).
    pub fn feed(&mut self, mut chunk: &[u8]) -> Result<(), BlobError> {
        if self.failed {
            return Ok(());
        }
        while !chunk.is_empty() {
            let slice = &chunk[..chunk.len().min(FEED_SLICE)];
            let consumed = match self.gzip.write(slice) {
                Ok(consumed) => consumed,
                Err(error) => {
                    // Records whose bytes came out before the damage first.
                    self.take_frames()?;
                    return Err(self.fail_gzip(&error));
                }
            };
            if consumed == 0 {
                // The decoder refuses more input only after an error it has
                // not reported yet; flushing surfaces it.
                self.gzip.flush().map_err(|error| self.fail_gzip(&error))?;
                return Err(self.fail(BlobError::Gzip {
                    compressed_offset: self.compressed_offset,
                    message: "the decompressor accepts no more input".to_owned(),
                }));
            }
            self.compressed_offset += consumed as u64;
            chunk = &chunk[consumed..];
            self.take_frames()?;
        }
        // The decompressor keeps its last output until its next call;
        // flushing releases it, so that every record whose bytes were fed is
        // available now (a reader of a growing blob, or one whose source
        // fails next, would otherwise miss the end of a complete member).
        self.gzip.flush().map_err(|error| self.fail_gzip(&error))?;
        self.take_frames()
    }

    fn fail(&mut self, error: BlobError) -> BlobError {
        self.failed = true;
        error
    }

    fn fail_gzip(&mut self, error: &io::Error) -> BlobError {
        self.fail(BlobError::Gzip { compressed_offset: self.compressed_offset, message: error.to_string() })
    }

    /// Moves every complete frame from the buffer to the record queue.
    fn take_frames(&mut self) -> Result<(), BlobError> {
        loop {
            let buffer = &mut self.gzip.get_mut().0;
            if buffer.len() < 4 {
                return Ok(());
            }
            let len = u64::from(u32::from_be_bytes([buffer[0], buffer[1], buffer[2], buffer[3]]));
            let offset = self.buffered_offset;
            if len > MAX_FRAME_LEN as u64 {
                return Err(self.fail(BlobError::FrameTooLong { offset, len }));
            }
            let len = len as usize;
            if buffer.len() < 4 + len {
                buffer.reserve(4 + len - buffer.len());
                return Ok(());
            }
            buffer.advance(4);
            let frame = buffer.split_to(len).freeze();
            self.buffered_offset += 4 + len as u64;
            let record = Record::decode(frame)
                .map_err(|error| self.fail(BlobError::BadRecord { offset, message: error.to_string() }))?;
            self.records.push_back(record);
        }
    }

    /// The next complete record, if one is ready.
    pub fn next_record(&mut self) -> Option<Record> {
        self.records.pop_front()
    }

    /// Declares the end of the blob: fails if it ends inside a gzip member
    /// or inside a frame. Records still queued stay available.
    pub fn finish(&mut self) -> Result<(), BlobError> {
        if self.failed {
            return Ok(());
        }
        if let Err(error) = self.gzip.try_finish() {
            return Err(if error.kind() == io::ErrorKind::UnexpectedEof {
                self.fail(BlobError::TruncatedMember { compressed_bytes: self.compressed_offset })
            } else {
                self.fail_gzip(&error)
            });
        }
        self.take_frames()?;
        let buffered = self.gzip.get_mut().0.len();
        if buffered > 0 {
            let buffer = &self.gzip.get_mut().0;
            let missing = if buffered < 4 {
                (4 - buffered) as u64
            } else {
                let len = u32::from_be_bytes([buffer[0], buffer[1], buffer[2], buffer[3]]) as usize;
                (4 + len - buffered) as u64
            };
            return Err(self.fail(BlobError::TruncatedFrame { offset: self.buffered_offset, missing }));
        }
        Ok(())
    }

    /// Bytes of the blob consumed so far.
    pub fn compressed_offset(&self) -> u64 {
        self.compressed_offset
    }

    /// Bytes of complete frames decoded so far.
    pub fn uncompressed_offset(&self) -> u64 {
        self.buffered_offset
    }
}

/// Reads records from a blob held by any `std::io::Read`, one chunk at a time.
/// Records decoded before any damage are yielded first, then the error.
pub struct BlobReader<R> {
    source: R,
    decoder: BlobDecoder,
    chunk: Vec<u8>,
    pending_error: Option<ReadError>,
    done: bool,
}

impl<R: io::Read> BlobReader<R> {
    /// A reader of the blob in `source`.
    pub fn new(source: R) -> Self {
        BlobReader { source, decoder: BlobDecoder::new(), chunk: vec![0; 64 * 1024], pending_error: None, done: false }
    }

    /// Bytes of the blob consumed so far.
    pub fn compressed_offset(&self) -> u64 {
        self.decoder.compressed_offset()
    }
}

/// An error of a [`BlobReader`]: from the source or in the blob.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The source failed.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The blob is not valid.
    #[error(transparent)]
    Blob(#[from] BlobError),
}

impl<R: io::Read> Iterator for BlobReader<R> {
    type Item = Result<Record, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(record) = self.decoder.next_record() {
                return Some(Ok(record));
            }
            if let Some(error) = self.pending_error.take() {
                return Some(Err(error));
            }
            if self.done {
                return None;
            }
            let read = match self.source.read(&mut self.chunk) {
                Ok(read) => read,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    self.done = true;
                    self.pending_error = Some(error.into());
                    continue;
                }
            };
            let result = if read == 0 {
                self.done = true;
                self.decoder.finish()
            } else {
                self.decoder.feed(&self.chunk[..read])
            };
            if let Err(error) = result {
                self.done = true;
                self.pending_error = Some(error.into());
            }
        }
    }
}
