use std::path::PathBuf;
use std::time::Duration;

/// An exporter configuration that cannot work: found by
/// [`Exporter::new`](crate::Exporter::new) before anything is sent.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The endpoint is not a URL an OTLP exporter can send to.
    #[error("invalid OTLP endpoint {endpoint:?}: {reason}")]
    Endpoint {
        /// The endpoint as configured.
        endpoint: String,
        /// What is wrong with it and what would be valid.
        reason: String,
    },
    /// A header cannot be sent as an HTTP header or gRPC metadata.
    #[error("invalid header {name:?}: {reason}")]
    Header {
        /// The header's name as configured.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The CA certificate file cannot be read.
    #[error("cannot read the CA certificate file {path:?}")]
    CaFile {
        /// The file as configured.
        path: PathBuf,
        /// Why it cannot be read.
        #[source]
        source: std::io::Error,
    },
    /// The TLS settings cannot be applied, such as a CA file that holds no
    /// PEM certificate.
    #[error("invalid TLS settings: {reason}")]
    Tls {
        /// What is wrong.
        reason: String,
    },
    /// An OTLP protocol name other than `grpc`, `http/protobuf` or `http/json`.
    #[error("unknown OTLP protocol {0:?}: expected grpc, http/protobuf or http/json")]
    Protocol(String),
    /// The HTTP client cannot be built with these settings.
    #[error("cannot build the HTTP client: {reason}")]
    Client {
        /// What the client library reported.
        reason: String,
    },
}

/// Whether an export that failed may succeed when sent again, per the OTLP
/// specification's rules for retryable responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportErrorKind {
    /// Sending the same request again may succeed: the target was
    /// unavailable, overloaded, or did not answer in time.
    Retryable {
        /// How long the target asked the client to wait (HTTP
        /// `Retry-After`, gRPC `google.rpc.RetryInfo`), when it said.
        retry_after: Option<Duration>,
    },
    /// Sending the same request again will fail the same way: the target
    /// refused the request or the payload is not a valid request.
    Permanent,
}

/// An export that did not deliver its request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ExportError {
    /// Whether the export may be retried, and after how long.
    pub kind: ExportErrorKind,
    /// What happened, naming the endpoint and the status.
    pub message: String,
}

impl ExportError {
    /// A retryable error, with the delay the target asked for if any.
    pub fn retryable(message: impl Into<String>, retry_after: Option<Duration>) -> Self {
        ExportError { kind: ExportErrorKind::Retryable { retry_after }, message: message.into() }
    }

    /// A permanent error.
    pub fn permanent(message: impl Into<String>) -> Self {
        ExportError { kind: ExportErrorKind::Permanent, message: message.into() }
    }

    /// Whether the export may be retried.
    pub fn is_retryable(&self) -> bool {
        matches!(self.kind, ExportErrorKind::Retryable { .. })
    }

    /// The delay the target asked for before a retry, when it named one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self.kind {
            ExportErrorKind::Retryable { retry_after } => retry_after,
            ExportErrorKind::Permanent => None,
        }
    }
}
