//! Reading the messages of one file, lazily.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use tape_otlp::{Encoding, ExportRequest, Signal};

use super::MAX_MESSAGE_BYTES;
use crate::{Error, FileFormat};

/// One request read from a file, with where it came from.
pub(super) struct Message {
    pub(super) signal: Signal,
    pub(super) request: ExportRequest,
    /// `file:line` or `file: message N at byte B`, for errors.
    pub(super) origin: String,
}

/// Opens a file, decompressing gzip or zstd as its first bytes say.
fn open_decompressed(path: &Path) -> Result<Box<dyn BufRead>, Error> {
    let file = File::open(path).map_err(|source| Error::Open { path: path.to_owned(), source })?;
    let mut reader = BufReader::with_capacity(256 * 1024, file);
    let magic = reader.fill_buf().map_err(|source| Error::Read { what: path.display().to_string(), source })?;
    Ok(if magic.starts_with(&[0x1f, 0x8b]) {
        Box::new(BufReader::new(flate2::bufread::MultiGzDecoder::new(reader)))
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        let decoder = zstd::stream::read::Decoder::with_buffer(reader)
            .map_err(|source| Error::Decompress { path: path.to_owned(), source })?;
        Box::new(BufReader::new(decoder))
    } else {
        Box::new(reader)
    })
}

/// The messages of one file, read lazily.
pub(super) fn read_file(
    path: &Path,
    format: FileFormat,
    signal: Option<Signal>,
) -> Result<Box<dyn Iterator<Item = Result<Message, Error>>>, Error> {
    let reader = open_decompressed(path)?;
    let name = path.display().to_string();
    Ok(match format {
        FileFormat::OtlpJson => Box::new(JsonLines { reader, name, signal, line: 0, done: false }),
        FileFormat::OtlpProto => {
            let Some(signal) = signal.or_else(|| signal_from_file_name(path)) else {
                return Err(Error::UnknownSignal { file: name });
            };
            Box::new(ProtoMessages { reader, name, signal, index: 0, offset: 0, done: false })
        }
        FileFormat::Parquet => return Err(Error::NotImportable { format }),
    })
}

/// The one signal whose marker `text` contains; `None` for none or several.
fn only_signal_named(text: &str, markers: [(&str, Signal); 3]) -> Option<Signal> {
    let mut found = markers.into_iter().filter(|(marker, _)| text.contains(marker)).map(|(_, signal)| signal);
    match (found.next(), found.next()) {
        (Some(signal), None) => Some(signal),
        _ => None,
    }
}

/// The signal named by a file name: `traces`, `metrics` or `logs` in it.
fn signal_from_file_name(path: &Path) -> Option<Signal> {
    let name = path.file_name()?.to_string_lossy().to_ascii_lowercase();
    only_signal_named(&name, [("trace", Signal::Traces), ("metric", Signal::Metrics), ("log", Signal::Logs)])
}

/// The signal of an OTLP/JSON line, from its top-level field.
fn signal_of_json(line: &str) -> Option<Signal> {
    only_signal_named(
        line,
        [
            ("\"resourceSpans\"", Signal::Traces),
            ("\"resourceMetrics\"", Signal::Metrics),
            ("\"resourceLogs\"", Signal::Logs),
        ],
    )
}

/// JSON Lines: one OTLP/JSON `TracesData`, `MetricsData` or `LogsData` per line.
struct JsonLines {
    reader: Box<dyn BufRead>,
    name: String,
    signal: Option<Signal>,
    line: u64,
    done: bool,
}

impl Iterator for JsonLines {
    type Item = Result<Message, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            self.line += 1;
            let origin = format!("{}:{}", self.name, self.line);
            let mut bytes = Vec::new();
            let limit = (MAX_MESSAGE_BYTES + 1) as u64;
            match self.reader.by_ref().take(limit).read_until(b'\n', &mut bytes) {
                Ok(0) => self.done = true,
                Ok(_) if bytes.len() > MAX_MESSAGE_BYTES => {
                    self.done = true;
                    return Some(Err(Error::LineTooLong { origin, limit_mib: MAX_MESSAGE_BYTES >> 20 }));
                }
                Ok(_) => {
                    let Ok(text) = std::str::from_utf8(&bytes) else {
                        self.done = true;
                        return Some(Err(Error::NotUtf8 { origin }));
                    };
                    let text = text.trim();
                    if text.is_empty() {
                        continue;
                    }
                    let Some(signal) = signal_of_json(text).or(self.signal) else {
                        self.done = true;
                        return Some(Err(Error::NotOtlpJson { origin }));
                    };
                    return Some(match ExportRequest::decode(signal, Encoding::Json, text.as_bytes()) {
                        Ok(request) => Ok(Message { signal, request, origin }),
                        Err(source) => {
                            self.done = true;
                            Err(Error::Decode { origin, source })
                        }
                    });
                }
                Err(source) => {
                    self.done = true;
                    return Some(Err(Error::Read { what: origin, source }));
                }
            }
        }
        None
    }
}

/// Length-prefixed protobuf: a 4-byte big-endian length, then the message.
struct ProtoMessages {
    reader: Box<dyn BufRead>,
    name: String,
    signal: Signal,
    index: u64,
    offset: u64,
    done: bool,
}

impl ProtoMessages {
    fn read_message(&mut self, origin: &str) -> Result<Option<Message>, Error> {
        let mut prefix = [0u8; 4];
        match read_exact_or_eof(&mut self.reader, &mut prefix) {
            Ok(0) => return Ok(None),
            Ok(4) => {}
            Ok(read) => return Err(Error::TruncatedPrefix { origin: origin.to_owned(), read }),
            Err(source) => return Err(Error::Read { what: origin.to_owned(), source }),
        }
        let len = u32::from_be_bytes(prefix) as usize;
        if len > MAX_MESSAGE_BYTES {
            return Err(Error::MessageTooLarge { origin: origin.to_owned(), len, limit_mib: MAX_MESSAGE_BYTES >> 20 });
        }
        let mut body = vec![0; len];
        let read = read_exact_or_eof(&mut self.reader, &mut body)
            .map_err(|source| Error::Read { what: origin.to_owned(), source })?;
        if read < len {
            return Err(Error::TruncatedMessage { origin: origin.to_owned(), read, len });
        }
        self.offset += 4 + len as u64;
        let request = ExportRequest::decode(self.signal, Encoding::Protobuf, &body)
            .map_err(|source| Error::Decode { origin: origin.to_owned(), source })?;
        Ok(Some(Message { signal: self.signal, request, origin: origin.to_owned() }))
    }
}

impl Iterator for ProtoMessages {
    type Item = Result<Message, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        self.index += 1;
        let origin = format!("{}: message {} at byte {}", self.name, self.index, self.offset);
        match self.read_message(&origin) {
            Ok(Some(message)) => Some(Ok(message)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(error) => {
                self.done = true;
                Some(Err(error))
            }
        }
    }
}

/// Reads until `buffer` is full or the input ends; returns the bytes read.
fn read_exact_or_eof(reader: &mut dyn Read, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}
