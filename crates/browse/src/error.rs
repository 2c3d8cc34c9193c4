//! Why a query could not be answered.

use tape_session::SessionId;

/// Why a query could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The query is not valid (a bad window, trace id or limit); the
    /// message names the field.
    #[error("{0}")]
    Invalid(String),
    /// The session is still being recorded: its metadata lags behind its
    /// blobs.
    #[error("session {0} is still being recorded; open it once its capture has ended")]
    Active(SessionId),
    /// No span of the trace is in the session (in the window, when one was
    /// given).
    #[error("no span of trace {trace_id} in session {session}{window}")]
    TraceNotFound {
        /// The session.
        session: SessionId,
        /// The trace id, in hex.
        trace_id: String,
        /// ` between ... and ...` when a window was given, else empty.
        window: String,
    },
    /// A record of a trace blob does not hold an OTLP traces request (the
    /// blob's frames are sound, its payload is not).
    #[error("session {session}: a record of blob {blob} is not an OTLP traces request")]
    Payload {
        /// The session.
        session: SessionId,
        /// The blob's key.
        blob: String,
        /// What protobuf decoding said.
        #[source]
        source: prost::DecodeError,
    },
    /// The store failed, or the session does not exist.
    #[error(transparent)]
    Store(#[from] tape_session::Error),
}
