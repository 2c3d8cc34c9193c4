//! Replay for otlp-tape: OTLP exporters (gRPC and HTTP) that send stored
//! `Export*ServiceRequest` bytes to a target, a retry loop that follows the
//! OTLP specification, the replay engine (selection, id remapping,
//! timestamps, pacing, rate limit, concurrency, loops) and, on top of it,
//! the replay of a stored session as the command line and the control API
//! run it: [`ReplayConfig`] → [`ReplayConfig::validate`] → [`prepare`] (the
//! orchestrator picks the session; the window and the targets are
//! resolved) → [`Prepared::start`] (checkpoint, id seed) → [`Ready::run`],
//! which returns the [`Finished`] replay with its [`Report`]. Nothing here
//! reads the process environment or prints: variables come through a
//! lookup the caller gives (names in [`env`](mod@env)), and notes come back in the
//! outcome.
//!
//! Replaying a stored session from Rust:
//!
//! ```no_run
//! # async fn example(store: std::sync::Arc<dyn tape_session::SessionStore>) -> Result<(), tape_replay::Error> {
//! use tape_replay::{ReplayConfig, RunOptions, RunOutcome, replay_session};
//! use tokio_util::sync::CancellationToken;
//!
//! let config: ReplayConfig = serde_json::from_str(
//!     r#"{"session": "auto", "strategy": "largest", "endpoint": "http://localhost:4318", "speed": "max"}"#,
//! )
//! .expect("valid options");
//! let env = |name: &str| std::env::var(name).ok();
//! let stop = CancellationToken::new();
//! if let RunOutcome::Finished(finished) = replay_session(store, config, RunOptions::default(), env, &stop).await? {
//!     println!("{}: {} items sent", finished.report.reason, finished.report.counts.total.sent_items);
//!     if let Some(failure) = &finished.failure {
//!         eprintln!("failed: {}", failure.full());
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Sending one request with an exporter and the retry loop:
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
pub mod env;
mod error;
mod exporter;
mod pacing;
mod retry;
mod series;
mod session_replay;
mod target;
mod targets;
mod timestamps;

pub use engine::{
    Completed, EndReason, IdRegeneration, Plan, Position, Progress, ProgressSnapshot, ReplayError, ReplayOptions,
    ReplayOutcome, Selected, Selection, SendOutcome, Sender, SignalProgress, Sink, plan, replay,
};
pub use error::{ConfigError, ExportError, ExportErrorKind};
pub use exporter::{Compression, ExportOutcome, Exporter, ExporterConfig, Protocol, TlsOptions};
pub use pacing::{Pacer, RateLimiter, Speed};
pub use retry::{RetryPolicy, export_with_retry};
pub use series::{LagDistribution, ReplaySeries, SeriesRow};
pub use session_replay::{
    AlreadyComplete, CHECKPOINT_VERSION, Checkpoint, CheckpointWriter, Counts, DEFAULT_CONCURRENCY, DEFAULT_DURATION,
    DEFAULT_MAX_ATTEMPTS, DryRunPlan, Error, Failure, FailureLimit, Fingerprinted, Finished, MAX_CONCURRENCY,
    OptionsRecord, Pacing, Phase, Picked, PlanCounts, Prepared, Ready, ReplayConfig, Report, RunOptions, RunOutcome,
    SessionChoice, SessionRecord, SignalPlan, Start, Strategy, TargetRecord, TargetsRecord, ValidReplayConfig, Window,
    choose, describe_position, find_phase, parse_rate_limit, parse_start_at, phases, pick, prepare, replay_session,
    report_json, window, write_atomically, write_report,
};
pub use target::{
    DEFAULT_GRPC_ENDPOINT, DEFAULT_HTTP_ENDPOINT, TargetConfig, TargetError, parse_compression, parse_header,
    parse_protocol, parse_timeout, resolve, resolve_targets,
};
pub use targets::Targets;
pub use timestamps::TimestampMode;
