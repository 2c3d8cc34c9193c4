//! The file formats, and how a record is written in each.

use std::io::Write;

use serde::{Deserialize, Serialize};
use tape_otlp::{ExportRequest, Signal};
use tape_session::{Record, SessionId};

use crate::Error;

/// A format of OTLP files, as the Collector's file exporter writes them.
///
/// Another format (a columnar one, say) is a variant here, its file name in
/// [`FileFormat::file_name`] and its writer in [`RecordWriter::new`]; the
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
    /// The format's name, as in configs and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            FileFormat::OtlpJson => "otlp-json",
            FileFormat::OtlpProto => "otlp-proto",
        }
    }

    /// The name of the file that holds a signal's records in this format:
    /// `traces.jsonl`, `logs.pb`.
    pub fn file_name(self, signal: Signal) -> String {
        match self {
            FileFormat::OtlpJson => format!("{signal}.jsonl"),
            FileFormat::OtlpProto => format!("{signal}.pb"),
        }
    }
}

impl std::fmt::Display for FileFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// Writes the records of one signal into one file, in one format.
pub(crate) struct RecordWriter {
    format: FileFormat,
    signal: Signal,
}

impl RecordWriter {
    pub(crate) fn new(format: FileFormat, signal: Signal) -> Self {
        RecordWriter { format, signal }
    }

    /// Appends one record. A record that cannot be encoded is an error
    /// (`Ok(Err)` is a write that failed, for the caller to name its file).
    pub(crate) fn write(
        &self,
        out: &mut impl Write,
        session: &SessionId,
        record: &Record,
    ) -> Result<std::io::Result<()>, Error> {
        let signal = self.signal;
        Ok(match self.format {
            FileFormat::OtlpProto => u32::try_from(record.payload.len())
                .map_err(std::io::Error::other)
                .and_then(|len| out.write_all(&len.to_be_bytes()))
                .and_then(|()| out.write_all(&record.payload)),
            FileFormat::OtlpJson => {
                let request = ExportRequest::decode_protobuf(signal, &record.payload).map_err(|source| {
                    Error::UndecodableRecord {
                        session: session.clone(),
                        signal,
                        received: record.receive_time().to_string(),
                        source,
                    }
                })?;
                let json = request.encode_json()?;
                out.write_all(&json).and_then(|()| out.write_all(b"\n"))
            }
        })
    }
}
