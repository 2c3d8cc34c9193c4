//! `otlp-tape capture`: its flags, and the receivers' flags that `serve` shares.

use std::path::PathBuf;

use clap::Args;
use tape_otlp::SignalSet;
use tape_session::{SessionId, WriterId};

use super::env;
use super::parse::{parse_duration, parse_header, parse_listen, parse_positive_duration, parse_signals};

/// `otlp-tape capture`
#[derive(Debug, Args)]
#[allow(clippy::struct_excessive_bools)] // independent switches
pub struct CaptureArgs {
    /// Id of the new session; generated as capture-YYYYMMDD-HHMMSS-xxxxxxxx when absent.
    #[arg(long)]
    pub session_id: Option<SessionId>,
    /// Join session --session-id as one of several writers (other capture processes, here or on other hosts, behind a
    /// load balancer), creating it if it is not there; the last writer to stop seals it.
    #[arg(long, requires = "session_id")]
    pub join: bool,
    /// This writer's id when joining (1 to 48 of a-z, 0-9 and -); default: the host name and 6 random characters.
    #[arg(long, value_name = "ID", requires = "join")]
    pub writer_id: Option<WriterId>,
    /// Human-readable description of the session.
    #[arg(long)]
    pub description: Option<String>,
    /// The diagnostic session this capture belongs to (stored as diagnosticSessionId).
    #[arg(long, value_name = "ID")]
    pub diagnostic_session_id: Option<String>,
    /// Feature flags in force while recording, comma-separated (stored as enabledFlags).
    #[arg(long, value_name = "A,B", value_delimiter = ',')]
    pub flags: Vec<String>,
    /// Where to serve OTLP/gRPC, or `off`.
    #[arg(long, value_name = "ADDR|off", value_parser = parse_listen, default_value = "127.0.0.1:4317")]
    pub grpc: Listen,
    /// Where to serve OTLP/HTTP, or `off`.
    #[arg(long, value_name = "ADDR|off", value_parser = parse_listen, default_value = "127.0.0.1:4318")]
    pub http: Listen,
    /// Signals to record: a comma-separated list of traces, metrics and logs, or all. Requests of the others are acknowledged and not recorded.
    #[arg(long, value_name = "LIST", value_parser = parse_signals, default_value = "all")]
    pub signals: SignalSet,
    /// Stop once this many MiB of OTLP requests (protobuf) are recorded.
    #[arg(long, value_name = "MIB", env = env::CAPTURE_MAX_SIZE_MB)]
    pub max_size_mb: Option<u64>,
    /// Stop after this long, such as 90s, 10m or 2h (a bare number is seconds). CAPTURE_MAX_DURATION_MINUTES sets it in minutes.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub max_duration: Option<u64>,
    /// Largest request accepted, in MiB after decompression; larger ones get 413 (HTTP) or RESOURCE_EXHAUSTED/OUT_OF_RANGE (gRPC).
    #[arg(long, value_name = "MIB", default_value_t = 16)]
    pub max_request_size_mb: u64,
    /// How request bodies are read.
    #[command(flatten)]
    pub receive: ReceiveArgs,
    /// Acknowledge a request only once it is on stable storage (fsync), not just handed to the operating system.
    #[arg(long)]
    pub durable: bool,
    /// gzip level of the blobs, 0 (stored, no compression) to 9; CAPTURE_COMPRESSION_ENABLED=false means 0.
    #[arg(long, value_name = "0..9", value_parser = clap::value_parser!(u32).range(0..=9))]
    pub compression_level: Option<u32>,
    /// MiB of requests that may wait for the writer; past it, clients are told to retry (HTTP 429, gRPC RESOURCE_EXHAUSTED with RetryInfo).
    #[arg(long, value_name = "MIB", default_value_t = 32)]
    pub queue_size_mb: u64,
    /// Longest time recorded data waits in memory before it is flushed to the store (at most 1s is the promise of the README).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "1s")]
    pub flush_interval: u64,
    /// A blob is closed and a new one started after this long (blobs also roll at each UTC hour and by size).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "5m")]
    pub blob_max_age: u64,
    /// A blob is closed once it holds this many MiB before compression.
    #[arg(long, value_name = "MIB", default_value_t = 64)]
    pub blob_max_size_mb: u64,
    /// Pass-through.
    #[command(flatten)]
    pub forward: ForwardArgs,
    /// Where blobs being written wait until they are committed, when the store is S3 (and where capture locks are kept);
    /// OTLP_TAPE_SPOOL_DIR, else .otlp-tape/spool under the working directory.
    #[arg(long, value_name = "DIR")]
    pub spool_dir: Option<PathBuf>,
    /// With --join: how often the writer rewrites its manifest while it runs (its heartbeat), so that `sessions repair
    /// --writer` on another host refuses it as alive; keep it under a third of the repair's 30 s staleness window.
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration, default_value = "10s")]
    pub heartbeat: u64,
    /// Do not show live progress on a terminal.
    #[arg(long)]
    pub no_progress: bool,
}

/// A listen address, or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listen(pub Option<std::net::SocketAddr>);

/// How the OTLP receivers read request bodies, for `capture` and `serve`.
#[derive(Debug, Clone, Args)]
pub struct ReceiveArgs {
    /// MiB of request bodies each receiver (gRPC and HTTP each) may hold while reading them, taken as bytes arrive;
    /// a body that does not fit is refused with HTTP 503 + Retry-After or gRPC UNAVAILABLE. At least
    /// --max-request-size-mb.
    #[arg(long, value_name = "MIB", default_value_t = 48)]
    pub receive_budget_mb: u64,
    /// Longest time a request body may take to arrive after its headers; later, HTTP 408 or gRPC DEADLINE_EXCEEDED.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "30s")]
    pub request_read_timeout: u64,
}

/// `--forward` and its options, of `capture` and `serve`.
#[derive(Debug, Clone, Args)]
pub struct ForwardArgs {
    /// Also send every accepted request to this OTLP endpoint (pass-through), such as http://collector:4318; with
    /// `serve`, also while no capture is running.
    #[arg(id = "forward", long = "forward", value_name = "URL")]
    pub url: Option<String>,
    /// Protocol of --forward: grpc, http/protobuf or http/json.
    #[arg(long = "forward-protocol", value_name = "PROTOCOL", default_value = "http/protobuf", requires = "forward")]
    pub protocol: String,
    /// A header for --forward, as KEY=VALUE; repeat for more.
    #[arg(long = "forward-header", value_name = "KEY=VALUE", value_parser = parse_header, requires = "forward")]
    pub headers: Vec<(String, String)>,
    /// Timeout of one forwarded request.
    #[arg(long = "forward-timeout", value_name = "DURATION", value_parser = parse_duration, default_value = "10s")]
    pub timeout: u64,
    /// Requests that may wait to be forwarded; past it, they are recorded but not forwarded (counted as failed).
    #[arg(long = "forward-queue", value_name = "N", default_value_t = 1024)]
    pub queue: usize,
}
