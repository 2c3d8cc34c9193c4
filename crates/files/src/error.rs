//! The errors of import and export.

use std::io;
use std::path::PathBuf;

use tape_otlp::Signal;
use tape_session::SessionId;

use crate::FileFormat;

/// Why an import or an export failed. The messages name the file, line or
/// record; the cause, when there is one, is the [`source`](std::error::Error::source).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An import config names no file.
    #[error("import needs at least one file")]
    NoFiles,
    /// The store failed.
    #[error(transparent)]
    Session(Box<tape_session::Error>),
    /// A request could not be encoded.
    #[error(transparent)]
    Otlp(#[from] tape_otlp::Error),
    /// The new session could not be created.
    #[error("cannot create session {id} in {location}")]
    CreateSession {
        /// The session.
        id: SessionId,
        /// The store's location.
        location: String,
        /// Why.
        #[source]
        source: Box<tape_session::Error>,
    },
    /// An import failed; the partial session was removed.
    #[error("import into session {id} failed; nothing was stored")]
    ImportFailed {
        /// The session that was being written.
        id: SessionId,
        /// Why.
        #[source]
        source: Box<Error>,
    },
    /// A request read from a file could not be stored.
    #[error("cannot store the request from {origin}")]
    Store {
        /// Where the request came from: `file:line` or `file: message N at byte B`.
        origin: String,
        /// Why.
        #[source]
        source: Box<tape_session::Error>,
    },
    /// A file could not be opened.
    #[error("cannot open {}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A file, a line or a message could not be read.
    #[error("cannot read {what}")]
    Read {
        /// The file, or the line or message in it.
        what: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A zstd file's decompression could not start.
    #[error("cannot start decompressing {}", path.display())]
    Decompress {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// An otlp-proto file whose signal is neither given nor in its name.
    #[error(
        "{file}: cannot tell whether it holds traces, metrics or logs; pass --signal, or name the file after its signal (traces.pb, metrics.pb, logs.pb)"
    )]
    UnknownSignal {
        /// The file.
        file: String,
    },
    /// A line of an otlp-json file over [`MAX_MESSAGE_BYTES`](crate::MAX_MESSAGE_BYTES).
    #[error("{origin}: the line is longer than {limit_mib} MiB")]
    LineTooLong {
        /// `file:line`.
        origin: String,
        /// The limit, in MiB.
        limit_mib: usize,
    },
    /// A line of an otlp-json file that is not UTF-8.
    #[error("{origin}: the line is not UTF-8 text, so not OTLP/JSON")]
    NotUtf8 {
        /// `file:line`.
        origin: String,
    },
    /// A line of an otlp-json file that holds no signal's top-level field.
    #[error(
        "{origin}: not an OTLP/JSON line: expected one of resourceSpans, resourceMetrics or resourceLogs at the top level (or pass --signal)"
    )]
    NotOtlpJson {
        /// `file:line`.
        origin: String,
    },
    /// A line or message that does not decode as the signal's request.
    #[error("{origin}")]
    Decode {
        /// `file:line` or `file: message N at byte B`.
        origin: String,
        /// Why.
        #[source]
        source: tape_otlp::Error,
    },
    /// An otlp-proto file that ends inside a length prefix.
    #[error("{origin}: the file ends inside a length prefix ({read} of 4 bytes)")]
    TruncatedPrefix {
        /// `file: message N at byte B`.
        origin: String,
        /// The bytes of the prefix that are there.
        read: usize,
    },
    /// An otlp-proto length prefix over [`MAX_MESSAGE_BYTES`](crate::MAX_MESSAGE_BYTES).
    #[error("{origin}: declares {len} bytes, over the {limit_mib} MiB limit; is this really otlp-proto?")]
    MessageTooLarge {
        /// `file: message N at byte B`.
        origin: String,
        /// The length declared.
        len: usize,
        /// The limit, in MiB.
        limit_mib: usize,
    },
    /// An otlp-proto file that ends inside a message.
    #[error("{origin}: the file ends after {read} of the {len} bytes the message declares")]
    TruncatedMessage {
        /// `file: message N at byte B`.
        origin: String,
        /// The bytes of the message that are there.
        read: usize,
        /// The length declared.
        len: usize,
    },
    /// A directory could not be created.
    #[error("cannot create the directory {}", path.display())]
    CreateDirectory {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A file the export would write exists, and `force` is off.
    #[error("{path} exists; pass --force to replace it")]
    Exists {
        /// The file or directory: a path or an S3 URL.
        path: String,
    },
    /// An import of a format that is only exported.
    #[error("import reads otlp-json and otlp-proto files, not {format}")]
    NotImportable {
        /// The format.
        format: FileFormat,
    },
    /// A file per signal asked of a format that writes tables.
    #[error("{format} is not an OTLP file format (otlp-json, otlp-proto)")]
    NotOtlp {
        /// The format.
        format: FileFormat,
    },
    /// An export config that is not valid; the message names the field.
    #[error("invalid export: {0}")]
    InvalidExport(String),
    /// An OTLP format asked to write into S3.
    #[error("cannot write {format} files to {location}: S3 output is written for --format parquet only")]
    S3NeedsParquet {
        /// The format.
        format: FileFormat,
        /// The output.
        location: String,
    },
    /// The session has several writers and is not sealed: its blob list
    /// is empty until it is, so an export would find nothing or a part.
    #[error(
        "cannot export session {session}: its writers' records are listed only once it is sealed, and it is not ({advice})"
    )]
    Unsealed {
        /// The session.
        session: tape_session::SessionId,
        /// The writers still active and what seals it.
        advice: String,
    },
    /// `from`, `until` and `phase` select nothing; the message says why.
    #[error(transparent)]
    Window(#[from] tape_session::WindowError),
    /// A file of the output could not be checked, created, written,
    /// committed or removed.
    #[error("cannot write {file}")]
    Output {
        /// The file: a path or an S3 URL.
        file: String,
        /// Why.
        #[source]
        source: Box<tape_session::Error>,
    },
    /// A Parquet file could not be encoded.
    #[error("cannot encode {file}")]
    Encode {
        /// The file: a path or an S3 URL.
        file: String,
        /// Why.
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// A thread of the export stopped without finishing (it panicked).
    #[error("the export's {thread} thread stopped before it finished")]
    Worker {
        /// Which: `decode`, `encode`.
        thread: &'static str,
    },
    /// A file could not be created.
    #[error("cannot create {}", path.display())]
    Create {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A file could not be written.
    #[error("cannot write {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A stored record that does not decode, so cannot be written as OTLP/JSON.
    #[error("session {session}: a {signal} record received at {received}")]
    UndecodableRecord {
        /// The session.
        session: SessionId,
        /// The record's signal.
        signal: Signal,
        /// When the record was received.
        received: String,
        /// Why.
        #[source]
        source: tape_otlp::Error,
    },
    /// An export failed; no file was written.
    #[error("export of session {session} failed; no file was written")]
    ExportFailed {
        /// The session.
        session: SessionId,
        /// Why.
        #[source]
        source: Box<Error>,
    },
    /// The phases of a session could not be read.
    #[error("cannot export session {session} by phase")]
    Phases {
        /// The session.
        session: SessionId,
        /// Why.
        #[source]
        source: tape_annotations::PhasesError,
    },
    /// An export by phase failed; nothing was written.
    #[error("export of session {session} by phase failed; nothing was written")]
    ByPhaseFailed {
        /// The session.
        session: SessionId,
        /// Why.
        #[source]
        source: Box<Error>,
    },
    /// The manifest could not be encoded.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// `labels.json` could not be written.
    #[error("cannot write labels.json")]
    WriteLabels {
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A file or directory of an earlier export could not be removed.
    #[error("cannot replace {}", path.display())]
    Replace {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A finished file or directory could not be moved into place.
    #[error("cannot move {}", path.display())]
    Move {
        /// Where it was going.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

impl From<tape_session::Error> for Error {
    fn from(error: tape_session::Error) -> Self {
        Error::Session(Box::new(error))
    }
}
