//! Live capture for otlp-tape: OTLP receivers that record into sessions.
//!
//! - [`grpc`] and [`http`] are the OTLP/gRPC and OTLP/HTTP receivers, per
//!   the OTLP specification (bodies, encodings, status codes);
//! - [`Recorder`] is the bounded path from the receivers to the session
//!   writer: receive times, flushing, durable acknowledgement, limits, and
//!   retryable refusals instead of unbounded buffering;
//! - [`Forwarder`] passes accepted requests on to an upstream endpoint
//!   without holding up recording;
//! - [`Capture`] starts and stops them together;
//! - [`Receivers`] keep serving while captures are attached and stopped,
//!   one at a time, for a long-running server;
//! - [`CaptureSettings`] is one capture as people describe it (the control
//!   API's options, the command line's flags), checked into a [`CapturePlan`];
//!   with `join` the capture is one writer ([`JoinAs`]) of a session that
//!   several captures record into, and its [`RecordingOutcome`] says which
//!   writer it was and what sealing the session did as it stopped.
//!
//! ```no_run
//! # async fn example(store: std::sync::Arc<dyn tape_session::SessionStore>) -> Result<(), Box<dyn std::error::Error>> {
//! use tape_capture::{Capture, CaptureConfig, CaptureEndpoints, CaptureSettings, DEFAULT_MAX_REQUEST_BYTES};
//!
//! let settings: CaptureSettings = serde_json::from_str(r#"{"maxDuration": "60s", "signals": "traces"}"#)?;
//! let plan = settings.validate(|name| std::env::var(name).ok())?;
//! let (grpc, http) = (Some("127.0.0.1:4317".parse()?), None);
//! let now = tape_capture::now();
//! let metadata = plan.metadata(plan.session_id(now), now, &CaptureEndpoints { grpc, http, forward: None });
//! let receive = tape_capture::ReceiveLimits::default();
//! let config =
//!     CaptureConfig { grpc, http, max_request_bytes: DEFAULT_MAX_REQUEST_BYTES, receive, recorder: plan.recorder, forward: None };
//! let outcome = Capture::start(store, metadata, config).await?.wait().await?;
//! println!("{} finished: {}", outcome.recording.metadata.session_id, outcome.recording.reason);
//! # Ok(()) }
//! ```

mod capture;
mod forward;
pub mod grpc;
pub mod http;
mod http_body;
mod intake;
mod receivers;
mod recorder;
mod settings;
mod stats;

pub use capture::{Capture, CaptureConfig, CaptureOutcome, StartError};
pub use forward::{ForwardConfig, Forwarder, Upstream, forwarder};
pub use http_body::{
    DEFAULT_MAX_REQUEST_BYTES, ReceivedBody, Rejection, decode_body, error_response, success_response,
};
pub use intake::{DEFAULT_READ_TIMEOUT, DEFAULT_RECEIVE_BUDGET_BYTES, Held, Intake, ReceiveBudget, ReceiveLimits};
pub use receivers::{AttachError, AttachedCapture, Receivers, ReceiversConfig};
pub use recorder::{
    Admitted, JoinAs, QueueFill, QueueGauge, Recorder, RecorderConfig, RecordingOutcome, RecordingTask, Refusal,
    StopHandle, StopReason, now, recorder,
};
pub use settings::{
    CAPTURE_COMPRESSION_ENABLED, CAPTURE_MAX_DURATION_MINUTES, CAPTURE_MAX_SIZE_MB, CaptureEndpoints, CapturePlan,
    CaptureSettings, DEFAULT_BLOB_MAX_AGE, DEFAULT_BLOB_MAX_SIZE_MB, DEFAULT_FLUSH_INTERVAL, DEFAULT_QUEUE_SIZE_MB,
    SettingsError, max_request_bytes, receive_limits,
};
pub use stats::{SignalSnapshot, Stats, StatsSnapshot};
