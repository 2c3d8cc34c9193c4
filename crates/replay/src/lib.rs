//! Replay for otlp-tape: OTLP exporters (gRPC and HTTP) that send stored
//! `Export*ServiceRequest` bytes to a target, a retry loop that follows the
//! OTLP specification and, later, the replay engine and orchestrator.
//!
//! ```no_run
//! # async fn example(payload: bytes::Bytes) -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//!
//! use tape_otlp::Signal;
//! use tape_replay::{Compression, Exporter, ExporterConfig, Protocol, RetryPolicy, export_with_retry};
//!
//! let mut config = ExporterConfig::new("http://localhost:4317", Protocol::Grpc);
//! config.compression = Compression::Gzip;
//! config.timeout = Duration::from_secs(5);
//! let exporter = Exporter::new(config)?;
//! let outcome = export_with_retry(&exporter, &RetryPolicy::default(), Signal::Traces, payload).await?;
//! if outcome.rejected_items > 0 {
//!     eprintln!("the target rejected {} spans: {:?}", outcome.rejected_items, outcome.message);
//! }
//! # Ok(())
//! # }
//! ```

pub mod delivery;
mod engine;
mod error;
mod exporter;
mod pacing;
mod retry;
mod targets;
mod timestamps;

pub use engine::{
    EndReason, IdRegeneration, Plan, Position, Progress, ProgressSnapshot, ReplayError, ReplayOptions, ReplayOutcome,
    Selected, Selection, SignalProgress, Sink, plan, replay,
};
pub use error::{ConfigError, ExportError, ExportErrorKind};
pub use exporter::{Compression, ExportOutcome, Exporter, ExporterConfig, Protocol, TlsOptions};
pub use pacing::{Pacer, RateLimiter, Speed};
pub use retry::{RetryPolicy, export_with_retry};
pub use targets::Targets;
pub use timestamps::TimestampMode;
