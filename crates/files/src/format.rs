//! The file formats, and how the records of one signal are written in each.

use std::fs::File;
use std::io::{BufWriter, Write};

use serde::{Deserialize, Serialize};
use tape_otlp::{ExportRequest, Signal};
use tape_session::{Record, SessionId};

use crate::Error;

/// A format of OTLP files, as the Collector's file exporter writes them.
///
/// Another export format (a columnar one, say) is a variant here, its file
/// name in [`FileFormat::file_name`], and a `SignalWriter` of its own
/// made by `FileFormat::writer`: a writer owns its file and may hold
/// records back until `SignalWriter::finish` (row groups, a footer). The
/// import side names the formats it reads in its own match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileFormat {
    /// JSON Lines, one OTLP/JSON request per line, one signal per file
    /// (`otlp-json`).
    OtlpJson,
    /// Length-prefixed protobuf: each request preceded by its 4-byte
    /// big-endian length (`otlp-proto`).
    OtlpProto,
}

impl FileFormat {
    /// The name of the file that holds a signal's records in this format:
    /// `traces.jsonl`, `logs.pb`.
    pub fn file_name(self, signal: Signal) -> String {
        match self {
            FileFormat::OtlpJson => format!("{signal}.jsonl"),
            FileFormat::OtlpProto => format!("{signal}.pb"),
        }
    }

    /// A writer of `signal`'s records into `file` in this format.
    pub(crate) fn writer(self, signal: Signal, file: File) -> Box<dyn SignalWriter> {
        Box::new(FramedWriter { format: self, signal, out: BufWriter::new(file) })
    }
}

tape_otlp::named_enum! {
    /// The format's name, as in configs and on the command line.
    FileFormat { OtlpJson => "otlp-json", OtlpProto => "otlp-proto" }
}

/// Why a `SignalWriter` failed: a record it cannot write, or its file.
pub(crate) enum WriteError {
    /// The record (the message names it).
    Record(Error),
    /// The file.
    Io(std::io::Error),
}

/// Writes the records of one signal into one file, in one format.
pub(crate) trait SignalWriter {
    /// Appends one record of session `session`.
    fn write(&mut self, session: &SessionId, record: &Record) -> Result<(), WriteError>;

    /// Writes what is held back and returns the file, flushed but not yet
    /// synced.
    fn finish(self: Box<Self>) -> std::io::Result<File>;
}

/// The Collector's two formats: one record after another, each framed
/// (a length prefix) or on its own line.
struct FramedWriter {
    format: FileFormat,
    signal: Signal,
    out: BufWriter<File>,
}

impl SignalWriter for FramedWriter {
    fn write(&mut self, session: &SessionId, record: &Record) -> Result<(), WriteError> {
        let out = &mut self.out;
        let written = match self.format {
            FileFormat::OtlpProto => u32::try_from(record.payload.len())
                .map_err(std::io::Error::other)
                .and_then(|len| out.write_all(&len.to_be_bytes()))
                .and_then(|()| out.write_all(&record.payload)),
            FileFormat::OtlpJson => {
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
                out.write_all(&json).and_then(|()| out.write_all(b"\n"))
            }
        };
        written.map_err(WriteError::Io)
    }

    fn finish(self: Box<Self>) -> std::io::Result<File> {
        self.out.into_inner().map_err(std::io::IntoInnerError::into_error)
    }
}
