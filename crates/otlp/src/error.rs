use crate::{Encoding, Signal};

/// Errors from decoding or encoding OTLP messages.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bytes are not a valid protobuf `Export*ServiceRequest` of the signal.
    #[error("not a valid OTLP {signal} request in protobuf: {source}")]
    Protobuf {
        /// The signal the bytes were decoded as.
        signal: Signal,
        /// What the protobuf decoder found.
        #[source]
        source: prost::DecodeError,
    },
    /// The bytes are not a valid OTLP/JSON `Export*ServiceRequest` of the signal.
    #[error("not a valid OTLP {signal} request in OTLP/JSON: {source}")]
    Json {
        /// The signal the bytes were decoded as.
        signal: Signal,
        /// What the JSON decoder found, with line and column.
        #[source]
        source: serde_json::Error,
    },
    /// A message could not be written in the encoding.
    #[error("cannot encode an OTLP {signal} request as {encoding}: {message}")]
    Encode {
        /// The signal of the message.
        signal: Signal,
        /// The encoding that failed.
        encoding: Encoding,
        /// What went wrong.
        message: String,
    },
}
