//! The file formats, and how the records of one signal are written in each.

use std::fs::File;
use std::io::{BufWriter, Write};

use serde::{Deserialize, Serialize};
use tape_otlp::{ExportRequest, Signal};
use tape_session::{Record, SessionId};

use crate::Error;

/// A format of exported files: the Collector's file exporter's two OTLP
/// formats, one file per signal (these are also imported), and Parquet
/// tables, one file per table (export only).
///
/// An OTLP format names its file in [`FileFormat::file_name`] and writes
/// it with a `SignalWriter` made by `FileFormat::writer`: a writer owns its
/// file and may hold records back until `SignalWriter::finish`. Parquet
/// goes its own way (`export::parquet`): tables, not signals, and any
/// [`OutputDir`](tape_session::OutputDir), S3 included. The import side
/// names the formats it reads in its own match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileFormat {
    /// JSON Lines, one OTLP/JSON request per line, one signal per file
    /// (`otlp-json`).
    OtlpJson,
    /// Length-prefixed protobuf: each request preceded by its 4-byte
    /// big-endian length (`otlp-proto`).
    OtlpProto,
    /// Parquet tables in the schema of the Collector's ClickHouse exporter,
    /// one row per span, log record or data point (`parquet`; export only).
    Parquet,
}

impl FileFormat {
    /// The name of the file that holds a signal's records in an OTLP
    /// format: `traces.jsonl`, `logs.pb`; `None` for Parquet, which writes
    /// a file per table
    /// ([`Table::file_name`](crate::parquet::Table::file_name)).
    pub fn file_name(self, signal: Signal) -> Option<String> {
        match self {
            FileFormat::OtlpJson => Some(format!("{signal}.jsonl")),
            FileFormat::OtlpProto => Some(format!("{signal}.pb")),
            FileFormat::Parquet => None,
        }
    }

    /// Whether the format writes one file per signal, each a local file
    /// (the OTLP formats), rather than tables into any output directory.
    pub fn is_otlp(self) -> bool {
        matches!(self, FileFormat::OtlpJson | FileFormat::OtlpProto)
    }

    /// A writer of `signal`'s records into `file` in an OTLP format; `None`
    /// for Parquet.
    pub(crate) fn writer(self, signal: Signal, file: File) -> Option<Box<dyn SignalWriter>> {
        let json = match self {
            FileFormat::OtlpJson => true,
            FileFormat::OtlpProto => false,
            FileFormat::Parquet => return None,
        };
        Some(Box::new(FramedWriter { json, signal, out: BufWriter::new(file) }))
    }
}

tape_otlp::named_enum! {
    /// The format's name, as in configs and on the command line.
    FileFormat { OtlpJson => "otlp-json", OtlpProto => "otlp-proto", Parquet => "parquet" }
}

/// Why a `SignalWriter` failed: a record it cannot write, or its file.
pub(crate) enum WriteError {
    /// The record (the message names it).
    Record(Error),
    /// The file.
    Io(std::io::Error),
}

/// Writes the records of one signal into one file, in one format.
pub(crate) trait SignalWriter: Send {
    /// Appends one record of session `session`; returns the bytes written.
    fn write(&mut self, session: &SessionId, record: &Record) -> Result<u64, WriteError>;

    /// Writes what is held back and returns the file, flushed but not yet
    /// synced.
    fn finish(self: Box<Self>) -> std::io::Result<File>;
}

/// The Collector's two formats: one record after another, each framed
/// (a length prefix) or on its own line.
struct FramedWriter {
    /// OTLP/JSON lines; otherwise length-prefixed protobuf.
    json: bool,
    signal: Signal,
    out: BufWriter<File>,
}

impl SignalWriter for FramedWriter {
    fn write(&mut self, session: &SessionId, record: &Record) -> Result<u64, WriteError> {
        let out = &mut self.out;
        let (written, bytes) = if self.json {
            let signal = self.signal;
            let request = ExportRequest::decode_protobuf(signal, &record.payload).map_err(|source| {
                WriteError::Record(Error::UndecodableRecord {
                    session: session.clone(),
                    signal,
                    received: record.receive_time().to_string(),
                    source,
                })
            })?;
            let json = request.encode_json().map_err(|error| WriteError::Record(error.into()))?;
            (out.write_all(&json).and_then(|()| out.write_all(b"\n")), json.len() + 1)
        } else {
            let written = u32::try_from(record.payload.len())
                .map_err(std::io::Error::other)
                .and_then(|len| out.write_all(&len.to_be_bytes()))
                .and_then(|()| out.write_all(&record.payload));
            (written, record.payload.len() + 4)
        };
        written.map(|()| bytes as u64).map_err(WriteError::Io)
    }

    fn finish(self: Box<Self>) -> std::io::Result<File> {
        self.out.into_inner().map_err(std::io::IntoInnerError::into_error)
    }
}
