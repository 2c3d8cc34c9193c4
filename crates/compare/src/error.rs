//! What can go wrong comparing two sessions.

use tape_session::SessionId;

/// A comparison that could not be made (differences are not errors: they
/// are the [`Comparison`](crate::Comparison)'s verdict).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bad option.
    #[error("invalid comparison: {0}")]
    Invalid(String),
    /// The replay report is not one (not JSON, or fields missing).
    #[error("replay report {source_name}: {message}")]
    ReplayReport {
        /// The file or `replayReport` it came from.
        source_name: String,
        /// What is wrong with it.
        message: String,
    },
    /// The replay report is of another session than EXPECTED (or of
    /// another content of it).
    #[error(
        "{source_name} is the report of a replay of session {report_session} (content hash {report_hash}), not of the expected session {expected} (content hash {expected_hash})"
    )]
    ReportOfAnotherSession {
        /// The file or `replayReport` it came from.
        source_name: String,
        /// The session the report names.
        report_session: String,
        /// Its content hash in the report.
        report_hash: String,
        /// The expected session.
        expected: SessionId,
        /// The expected session's content hash.
        expected_hash: String,
    },
    /// A session named is not in the store.
    #[error("session {session} not found in {location}")]
    SessionNotFound {
        /// The session.
        session: SessionId,
        /// The store's location.
        location: String,
    },
    /// A session is still being written: its metadata lags behind its
    /// blobs, so a comparison would count what is not listed yet as
    /// missing.
    #[error(
        "session {session} is active: it is being recorded, or its writer stopped without finishing it; compare it once its capture has stopped ({finish})"
    )]
    SessionActive {
        /// The session.
        session: SessionId,
        /// What finishes it ([`SessionMetadata::how_to_finish`](tape_session::SessionMetadata::how_to_finish)).
        finish: String,
    },
    /// A session could not be read (unreadable metadata, a blob missing or
    /// corrupt).
    #[error("cannot read session {session}")]
    Session {
        /// The session.
        session: SessionId,
        /// Why.
        #[source]
        source: tape_session::Error,
    },
    /// A record of a session is not a valid OTLP request of its signal.
    #[error("session {session}: the {signal} record received at {received} is not a valid OTLP request: {message}")]
    UndecodableRecord {
        /// The session.
        session: SessionId,
        /// The record's signal.
        signal: tape_otlp::Signal,
        /// Its receive time (RFC 3339).
        received: String,
        /// The decoder's message.
        message: String,
    },
    /// The partitions on disk could not be written or read.
    #[error("partition files in {directory}: {source}")]
    Partition {
        /// The directory of the partition files.
        directory: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The comparison was stopped.
    #[error("the comparison was stopped")]
    Stopped,
}
