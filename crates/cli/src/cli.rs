//! The command line, as clap definitions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use tape_otlp::{Signal, SignalSet};
use tape_replay::{Speed, TimestampMode};
use tape_session::{SessionId, SessionType, Timestamp};
use tape_store::StoreLocation;

use crate::commands::replay::{FailureLimit, SessionChoice, Strategy, TimeBound};
use crate::env;
use crate::target::TargetArgs;

/// Record, generate and replay OpenTelemetry (OTLP) traffic.
#[derive(Debug, Parser)]
#[command(name = "otlp-tape", version, about, max_term_width = 100)]
pub struct Cli {
    /// Where sessions are stored: a directory (sessions go in <dir>/sessions/), file://<path>, or s3://<bucket>/<prefix>.
    #[arg(long, global = true, env = env::OTLP_TAPE_STORE, default_value = ".", value_name = "URL")]
    pub store: StoreLocation,

    /// Output format of results on stdout.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,

    /// More log output on stderr (-v info, -vv debug, -vvv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Only errors on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// How results are printed on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Tables and sentences for people.
    Text,
    /// One JSON document for programs.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The whole loop on this machine: seed a session, replay it into a capture on loopback, and check that
    /// every item arrived with its timestamps moved as one.
    Demo(DemoArgs),
    /// List, show, verify and delete stored sessions.
    #[command(subcommand)]
    Sessions(SessionsCommand),
    /// Import OTLP files (the Collector's file exporter formats) as a new session.
    Import(ImportArgs),
    /// Export a session's records as OTLP files (the Collector's file exporter formats), whole or by phase.
    Export(ExportArgs),
    /// List, add and push a session's annotations (phases and incidents), in the session and in ClickHouse.
    #[command(subcommand)]
    Annotations(AnnotationsCommand),
    /// Generate a deterministic seed session from a scenario pattern.
    Seed(SeedArgs),
    /// Receive live OTLP (gRPC and HTTP) and record it into a new session until Ctrl-C, SIGTERM or a limit.
    Capture(CaptureArgs),
    /// Send a stored session to an OTLP target (gRPC or HTTP) at its recorded pace or faster, once or in a loop.
    Replay(ReplayArgs),
    /// List, show and validate scenario patterns.
    #[command(subcommand)]
    Patterns(PatternsCommand),
    /// Run as a long-lived service: OTLP receivers that record while a capture is running, and an HTTP control
    /// API for sessions, captures, replays, seeds, annotations, patterns, retention and metrics.
    Serve(ServeArgs),
    /// Measure otlp-tape on this machine.
    #[command(subcommand)]
    Bench(BenchCommand),
}

/// `otlp-tape bench ...`
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Seed generation throughput (spans per second written to a compressed
    /// local session) and peak memory, in a temporary directory that is removed afterwards.
    Seed(BenchSeedArgs),
    /// Capture throughput with nothing lost (closed-loop OTLP/gRPC senders on loopback), acknowledgement
    /// latency at half that load, and peak memory, senders included; sessions go to a temporary directory.
    Capture(BenchCaptureArgs),
    /// Resident memory of a capture process (peak, and after the load) under many concurrent large uploads over
    /// OTLP/gRPC and OTLP/HTTP, each sent again after a retryable refusal until accepted; a temporary store.
    CaptureMemory(BenchCaptureMemoryArgs),
    /// Replay throughput (full speed into a discarding OTLP/gRPC receiver in the process), peak memory of a
    /// large replay, and pacing accuracy at 1x and 10x; sessions go to a temporary directory.
    Replay(BenchReplayArgs),
}

/// `otlp-tape bench seed`
#[derive(Debug, Args)]
pub struct BenchSeedArgs {
    /// Pattern to generate: a built-in name or a YAML file.
    #[arg(long, value_name = "NAME|FILE", default_value = "high-load")]
    pub pattern: String,
    /// Virtual duration of the session (such as 60s or 10m).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "60s")]
    pub duration: u64,
    /// Traces per second; default: the pattern's.
    #[arg(long, value_name = "TRACES_PER_SECOND")]
    pub rate: Option<f64>,
    /// Seed of the generator.
    #[arg(long, value_name = "N", default_value_t = 42)]
    pub seed: u64,
}

/// `otlp-tape bench capture`
#[derive(Debug, Args)]
pub struct BenchCaptureArgs {
    /// Senders, each with an OTLP/gRPC connection of its own.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub connections: usize,
    /// Length of the throughput phase, in which each sender sends its next request as soon as the last is acknowledged.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "20s")]
    pub duration: u64,
    /// Length of the latency phase, in which the senders send at a fixed rate.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "10s")]
    pub latency_duration: u64,
    /// Spans per second of the latency phase; default: half the throughput phase's.
    #[arg(long, value_name = "SPANS_PER_SECOND")]
    pub latency_rate: Option<f64>,
    /// Compress the requests with gzip (off by default: compressing would make the sender the bottleneck).
    #[arg(long)]
    pub gzip: bool,
    /// gzip level of the capture's blobs, 0 (stored, no compression) to 9.
    #[arg(long, value_name = "0..9", value_parser = clap::value_parser!(u32).range(0..=9), default_value_t = 1)]
    pub compression_level: u32,
    /// Distinct trace requests (pattern high-load, up to 512 spans each) generated before sending and sent in turn.
    #[arg(long, value_name = "N", default_value_t = 200)]
    pub requests: usize,
}

/// `otlp-tape bench capture-memory`
#[derive(Debug, Args)]
pub struct BenchCaptureMemoryArgs {
    /// Uploads sent at once.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub uploads: usize,
    /// Size of each upload (one OTLP trace request, protobuf), in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 15)]
    pub upload_size_mb: u64,
    /// Where the uploads go: grpc, http (protobuf), or both (half each).
    #[arg(long, value_name = "grpc|http|both", value_parser = ["grpc", "http", "both"], default_value = "both")]
    pub protocol: String,
    /// How long after the last upload is acknowledged the memory is read again.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "3s")]
    pub settle: u64,
    /// The otlp-tape binary whose `capture` is measured (to compare versions); default: this one.
    #[arg(long, value_name = "PATH")]
    pub binary: Option<PathBuf>,
}

/// `otlp-tape bench replay`
#[derive(Debug, Args)]
pub struct BenchReplayArgs {
    /// Virtual duration of the high-load session replayed at full speed for throughput (such as 60s or 10m).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "60s")]
    pub duration: u64,
    /// Traces per second of the high-load sessions (throughput and memory); default: the pattern's.
    #[arg(long, value_name = "TRACES_PER_SECOND")]
    pub rate: Option<f64>,
    /// Requests in flight at most (the default of `otlp-tape replay`).
    #[arg(long, value_name = "N", default_value_t = 32)]
    pub concurrency: usize,
    /// Compress the requests with gzip.
    #[arg(long)]
    pub gzip: bool,
    /// Payload (uncompressed) of the high-load session replayed for peak memory, in GB of 10^9 bytes; 0 skips it.
    #[arg(long, value_name = "GB", default_value_t = 1.0)]
    pub memory_gb: f64,
    /// Virtual duration of the payment-failure session replayed at 1x and 10x for pacing accuracy; 0 skips it.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "20s")]
    pub pacing_duration: u64,
    /// Seed of the generator.
    #[arg(long, value_name = "N", default_value_t = 42)]
    pub seed: u64,
    /// Internal, for the memory measurement's child process: only replay session bench-memory of the local
    /// store in DIR and print the report as JSON.
    #[arg(long, value_name = "DIR", hide = true)]
    pub replay_only: Option<PathBuf>,
}

/// `otlp-tape sessions ...`
#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// List complete sessions, oldest first.
    List {
        /// Only sessions of this type.
        #[arg(long = "type", value_name = "TYPE", value_parser = parse_session_type)]
        session_type: Option<SessionType>,
    },
    /// Show a session's metadata and blobs.
    Show {
        /// The session id.
        id: SessionId,
    },
    /// Delete a session and everything stored under it.
    Delete {
        /// The session id.
        id: SessionId,
        /// Delete even a session whose status is still `active` (never one a running capture holds).
        #[arg(long)]
        force: bool,
        /// Where capture keeps its session locks (a session a running capture holds is not deleted); default: OTLP_TAPE_SPOOL_DIR, else .otlp-tape/spool in the working directory.
        #[arg(long, value_name = "DIR")]
        spool_dir: Option<PathBuf>,
    },
    /// Check every blob's SHA-256, size and counts against the metadata; regenerate seed sessions and compare.
    Verify {
        /// The session id.
        id: SessionId,
    },
    /// Finish a session that a crash left `active`: keep the complete part of the blobs it was writing, recount every blob and mark it completed.
    Repair {
        /// The session id.
        id: SessionId,
        /// Where capture spools the blobs it writes, used when it exists; default: OTLP_TAPE_SPOOL_DIR, else .otlp-tape/spool in the working directory.
        #[arg(long, value_name = "DIR")]
        spool_dir: Option<PathBuf>,
    },
    /// Delete sessions by age, count and total size; `active` sessions and those a running capture holds are kept.
    Prune(PruneArgs),
}

/// `otlp-tape sessions prune`: at least one of --older-than, --keep-last and --max-total-size.
#[derive(Debug, Args)]
#[command(group(
    clap::ArgGroup::new("criterion").required(true).multiple(true).args(["older_than", "keep_last", "max_total_size"])
))]
pub struct PruneArgs {
    /// Delete sessions that ended longer ago than this, such as 30d, 12h or 1d12h.
    #[arg(long, value_name = "AGE", value_parser = crate::retention::parse_age)]
    pub older_than: Option<std::time::Duration>,
    /// Always keep the N newest sessions (of the --type); as the only criterion, delete all the others.
    #[arg(long, value_name = "N", value_parser = parse_keep_last)]
    pub keep_last: Option<usize>,
    /// Then delete the oldest sessions until all sessions of the store take at most this much, such as 50GB, 500MB
    /// or 1.5GiB (KB, MB, GB, TB are powers of 1000; KiB, MiB, GiB, TiB of 1024).
    #[arg(long, value_name = "SIZE", value_parser = crate::retention::parse_size)]
    pub max_total_size: Option<u64>,
    /// Only delete sessions of these types (repeat or comma-separate: seed, capture, training); default: all.
    #[arg(long = "type", value_name = "TYPE", value_parser = parse_session_type, value_delimiter = ',')]
    pub types: Vec<SessionType>,
    /// List what would be deleted and delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Where capture keeps its session locks (sessions a running capture holds are kept); default: OTLP_TAPE_SPOOL_DIR, else .otlp-tape/spool in the working directory.
    #[arg(long, value_name = "DIR")]
    pub spool_dir: Option<PathBuf>,
}

/// File formats of import and export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FileFormat {
    /// JSON Lines, one OTLP/JSON request per line, one signal per file.
    OtlpJson,
    /// Length-prefixed protobuf: each request preceded by its 4-byte big-endian length.
    OtlpProto,
}

/// `otlp-tape import`
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Format of the files.
    #[arg(long, value_enum)]
    pub format: FileFormat,
    /// Id of the new session; generated when absent.
    #[arg(long)]
    pub session_id: Option<SessionId>,
    /// Type of the new session.
    #[arg(long = "type", value_name = "TYPE", value_parser = parse_session_type, default_value = "capture")]
    pub session_type: SessionType,
    /// Signal of every file; otherwise taken from the JSON, or for otlp-proto from a file name that contains traces, metrics or logs.
    #[arg(long, value_parser = parse_signal)]
    pub signal: Option<Signal>,
    /// Human-readable description of the session.
    #[arg(long)]
    pub description: Option<String>,
    /// The files (plain, .gz or .zst).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// `otlp-tape export`
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The session to export.
    #[arg(long)]
    pub session: SessionId,
    /// Format of the files.
    #[arg(long, value_enum)]
    pub format: FileFormat,
    /// Directory for the files (created when missing): traces, metrics and logs files, one per signal present.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Training data: one directory per phase of the session's annotations (records by receive time), one for
    /// records outside every phase (unlabelled), and a labels.json manifest.
    #[arg(long)]
    pub by_phase: bool,
    /// Replace files (with --by-phase, phase directories and labels.json) that exist in the directory.
    #[arg(long)]
    pub force: bool,
}

/// Where the ClickHouse `annotations` table is.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "ClickHouse")]
#[allow(clippy::struct_field_names)] // the flags' names: --clickhouse-url, ...
pub struct ClickHouseArgs {
    /// HTTP URL of ClickHouse, such as http://localhost:8123; CLICKHOUSE_URL. Without it, annotations stay in
    /// the session only.
    #[arg(long, value_name = "URL")]
    pub clickhouse_url: Option<String>,
    /// ClickHouse user; CLICKHOUSE_USER, else `default`. The password comes from CLICKHOUSE_PASSWORD only.
    #[arg(long, value_name = "USER")]
    pub clickhouse_user: Option<String>,
    /// Database of the annotations table, created when missing; CLICKHOUSE_DATABASE, else `otel`.
    #[arg(long, value_name = "NAME")]
    pub clickhouse_database: Option<String>,
}

/// Where `annotations list` reads from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AnnotationSource {
    /// The session's annotations.jsonl.
    Session,
    /// The ClickHouse annotations table.
    Clickhouse,
}

/// `otlp-tape annotations ...`
#[derive(Debug, Subcommand)]
pub enum AnnotationsCommand {
    /// A session's annotations, by start of their time range.
    List {
        /// The session.
        #[arg(long)]
        session: SessionId,
        /// Read them from the session (default) or from ClickHouse.
        #[arg(long, value_enum, default_value_t = AnnotationSource::Session)]
        source: AnnotationSource,
        #[command(flatten)]
        clickhouse: ClickHouseArgs,
    },
    /// Add an annotation to a session, such as an incident an operator marks in a capture
    /// (--key test.phase.incident); it is also pushed to ClickHouse when that is configured.
    Add {
        /// The session.
        #[arg(long)]
        session: SessionId,
        /// Its key: test.phase.<name> makes a phase (the name: letters, digits, '_' and '-').
        #[arg(long)]
        key: String,
        /// Start of its range: an offset into the session (30s, 1m30s, 90) or an RFC 3339 time.
        #[arg(long, value_name = "OFFSET|TIME", value_parser = parse_time_bound)]
        from: TimeBound,
        /// End of its range (exclusive): an offset into the session or an RFC 3339 time.
        #[arg(long, value_name = "OFFSET|TIME", value_parser = parse_time_bound)]
        until: TimeBound,
        /// Its value, JSON; default for a phase {"sessionId", "phase", "flags": [], "description"}, else {}.
        #[arg(long, value_name = "JSON")]
        value: Option<String>,
        /// Its type; default `test` for test.* keys, else the key's first part.
        #[arg(long = "type", value_name = "TYPE")]
        annotation_type: Option<String>,
        /// What a phase is about (goes into the default value).
        #[arg(long, conflicts_with = "value")]
        description: Option<String>,
        /// Who adds it.
        #[arg(long, value_name = "NAME", default_value = "otlp-tape annotations add")]
        created_by: String,
        #[command(flatten)]
        clickhouse: ClickHouseArgs,
    },
    /// Write a session's annotations to ClickHouse; those already there are not written again.
    Push {
        /// The session.
        #[arg(long)]
        session: SessionId,
        #[command(flatten)]
        clickhouse: ClickHouseArgs,
    },
}

/// `otlp-tape seed`
#[derive(Debug, Args)]
pub struct SeedArgs {
    /// A built-in pattern's name or a pattern file (YAML); `otlp-tape patterns list` shows the built-in ones.
    #[arg(long, value_name = "NAME|FILE", default_value = "basic-topology")]
    pub pattern: String,
    /// Length of the session on the virtual clock, such as 30s, 1m30s or 2h (a bare number is seconds); default: the pattern's.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, allow_hyphen_values = true)]
    pub duration: Option<u64>,
    /// A preset duration: quick (10s) or basic (30s).
    #[arg(long, value_enum, conflicts_with = "duration")]
    pub preset: Option<Preset>,
    /// Traces per second; default: the pattern's, else 10.
    #[arg(long, value_name = "TRACES_PER_SECOND", allow_negative_numbers = true)]
    pub rate: Option<f64>,
    /// Error probability of spans whose pattern sets none, 0 to 1; default: the pattern's, else 0.05.
    #[arg(long, value_name = "0..1", allow_negative_numbers = true)]
    pub error_rate: Option<f64>,
    /// Seed of every random choice; default: a random seed, recorded and printed.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Start of the session on the virtual clock: an RFC 3339 time, or `now`; default 2026-01-01T00:00:00Z.
    #[arg(long, value_name = "TIME|now", value_parser = parse_start)]
    pub start: Option<Start>,
    /// Signals to write: a comma-separated list of traces, metrics and logs, or all.
    #[arg(long, value_name = "LIST", value_parser = parse_signals, default_value = "all")]
    pub signals: SignalSet,
    /// Id of the new session; generated as seed-<pattern>-YYYYMMDD-HHMMSS-xxxxxxxx when absent.
    #[arg(long)]
    pub session_id: Option<SessionId>,
    /// Human-readable description of the session.
    #[arg(long)]
    pub description: Option<String>,
    /// `--live` and its target.
    #[command(flatten)]
    pub live: LiveArgs,
    /// Where the phases are also written, when configured.
    #[command(flatten)]
    pub clickhouse: ClickHouseArgs,
}

/// `seed --live`: real-time pacing and the OTLP target.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Live")]
pub struct LiveArgs {
    /// Pace the session in real time (its start is now unless --start is given) and send each request to the
    /// OTLP target as it is written; Ctrl-C or SIGTERM stops early and keeps what was written.
    #[arg(long = "live")]
    pub enabled: bool,
    /// Requests in flight to the target at most, 1 to 256; 1 keeps the session's order. [default: 4]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256), requires = "enabled")]
    pub concurrency: Option<u16>,
    /// Where the requests go (only with --live).
    #[command(flatten)]
    pub target: TargetArgs,
}

/// `otlp-tape demo`
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The pattern to seed: a built-in pattern's name or a pattern file.
    #[arg(long, value_name = "NAME|FILE", default_value = "payment-failure")]
    pub pattern: String,
    /// Seed of the generator.
    #[arg(long, value_name = "N", default_value_t = 42)]
    pub seed: u64,
    /// Length of the seed session on its virtual clock, such as 30s or 2m (a bare number is seconds).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "30s")]
    pub duration: u64,
    /// Replay pace: the recorded pace times FACTOR (50 replays 30s in 0.6s), or max for as fast as it goes.
    #[arg(long, value_name = "FACTOR|max", value_parser = parse_speed, default_value = "50")]
    pub speed: Speed,
    /// OTLP protocol of the replay into the capture: grpc, http/protobuf or http/json.
    #[arg(long, value_name = "PROTOCOL", value_parser = parse_demo_protocol, default_value = "grpc")]
    pub protocol: tape_replay::Protocol,
}

/// `otlp-tape capture`
#[derive(Debug, Args)]
#[allow(clippy::struct_excessive_bools)] // independent switches
pub struct CaptureArgs {
    /// Id of the new session; generated as capture-YYYYMMDD-HHMMSS-xxxxxxxx when absent.
    #[arg(long)]
    pub session_id: Option<SessionId>,
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
    /// Do not show live progress on a terminal.
    #[arg(long)]
    pub no_progress: bool,
}

/// `otlp-tape replay`
#[derive(Debug, Args)]
#[allow(clippy::struct_excessive_bools)] // independent switches
pub struct ReplayArgs {
    /// The session to replay, or auto to pick one of the store's completed sessions by --strategy and
    /// --filter-type (with --resume: the checkpoint's session).
    #[arg(long, value_name = "ID|auto", value_parser = parse_session_choice, default_value = "auto")]
    pub session: SessionChoice,
    /// How --session auto picks: latest (newest start time), random, largest or smallest (by items, then
    /// size, then id). [default: latest]
    #[arg(long, value_enum)]
    pub strategy: Option<Strategy>,
    /// Only sessions of this type: seed, capture or training (for --session auto; an explicit session
    /// must be of this type).
    #[arg(long, value_name = "TYPE", value_parser = parse_session_type)]
    pub filter_type: Option<SessionType>,

    /// Where the requests go.
    #[command(flatten)]
    pub target: TargetArgs,

    /// Pace: the recorded pace times FACTOR (0.5 is half as fast, 10 ten times as fast), or max for as fast
    /// as the target accepts. [env: REPLAY_DEFAULT_SPEED] [default: 1]
    #[arg(long, value_name = "FACTOR|max", value_parser = parse_speed, allow_hyphen_values = true)]
    pub speed: Option<Speed>,
    /// How timestamps move: none (kept as recorded), relative (moved by as much as each record's send time
    /// is after its receive time) or current (each record's newest timestamp becomes its send time).
    #[arg(long, value_name = "MODE", value_parser = parse_timestamps, default_value = "relative")]
    pub timestamps: TimestampMode,
    /// Replay the session again and again, each pass after the one before, until --duration or Ctrl-C;
    /// passes after the first get new trace and span ids.
    #[arg(long = "loop")]
    pub looping: bool,
    /// The longest the whole replay runs, looping or not, such as 90s, 10m or 2h (a bare number is seconds).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "3600s")]
    pub duration: u64,

    /// Replay traces (with --metrics and --logs: only the signals named; none of the three: all).
    #[arg(long)]
    pub traces: bool,
    /// Replay metrics (see --traces).
    #[arg(long)]
    pub metrics: bool,
    /// Replay logs (see --traces).
    #[arg(long)]
    pub logs: bool,
    /// Only these services, by the resource attribute service.name, comma-separated; resources of other
    /// services are cut out of each request. [default: every service]
    #[arg(long, value_name = "NAME,...", value_delimiter = ',')]
    pub services: Vec<String>,
    /// Only records received at or after this point: an offset into the session from its start time
    /// (30s, 1m30s; a bare number is seconds) or an RFC 3339 time.
    #[arg(long, value_name = "OFFSET|TIME", value_parser = parse_time_bound)]
    pub from: Option<TimeBound>,
    /// Only records received before this point: an offset into the session from its start time or an RFC
    /// 3339 time.
    #[arg(long, value_name = "OFFSET|TIME", value_parser = parse_time_bound)]
    pub until: Option<TimeBound>,
    /// Only records received during this phase of the session (its test.phase.NAME annotation, else its
    /// metadata's phases), within --from and --until.
    #[arg(long, value_name = "NAME")]
    pub phase: Option<String>,

    /// Items (spans, data points, log records) per second at most, on top of the pace. [default: no limit]
    #[arg(long, value_name = "ITEMS_PER_SECOND", value_parser = parse_rate_limit, allow_hyphen_values = true)]
    pub rate_limit: Option<f64>,
    /// Requests in flight at most, 1 to 256. Real-time replay of a session whose requests come in bursts needs at
    /// least the burst's size, or the rest of the burst waits for answers (see docs/PERFORMANCE.md).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256), default_value_t = 32)]
    pub concurrency: u16,
    /// Give trace and span ids new values on every pass, the first included (by default only passes after
    /// the first get new ids).
    #[arg(long, conflicts_with = "keep_ids")]
    pub regenerate_ids: bool,
    /// Send the recorded trace and span ids on every pass, also when looping.
    #[arg(long)]
    pub keep_ids: bool,
    /// Seed of the new ids: the same seed gives the same ids. [default: random, printed in the summary]
    #[arg(long, value_name = "N")]
    pub id_seed: Option<u64>,
    /// Attempts per request, the first included, before it counts as failed; retryable failures (HTTP 429,
    /// 502, 503, 504, gRPC UNAVAILABLE and the like) are retried with backoff or after the delay the target asks for.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..), default_value_t = 5)]
    pub max_attempts: u32,
    /// Failed requests tolerated before the replay stops, or unlimited; 0 stops at the first request
    /// that still fails after its retries.
    #[arg(long, value_name = "N|unlimited", value_parser = parse_failure_limit, default_value = "0")]
    pub max_failures: FailureLimit,
    /// Skip the rest of a damaged blob (counted and reported) instead of stopping there.
    #[arg(long)]
    pub skip_corrupt: bool,

    /// How often a status line is written to stderr when stderr is not a terminal (on a terminal a
    /// progress bar is shown instead).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "60s")]
    pub log_interval: u64,
    /// No progress bar and no status lines.
    #[arg(long)]
    pub no_progress: bool,
    /// Read the session and say what would be sent, where and how long it would take, without connecting.
    #[arg(long, conflicts_with = "resume")]
    pub dry_run: bool,
    /// Write a JSON report of the replay to this file when it ends (also when it fails or is stopped).
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Keep the replay's position in this JSON file, rewritten as records are done, so that --resume can
    /// go on from there.
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Option<PathBuf>,
    /// Go on from the position in --checkpoint, with its counts and id seed, instead of starting over.
    #[arg(long, requires = "checkpoint")]
    pub resume: bool,
}

/// A listen address, or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listen(pub Option<std::net::SocketAddr>);

/// Preset durations of `seed`, as the earlier system's `seed:quick` and `seed:basic`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Preset {
    /// 10 seconds.
    Quick,
    /// 30 seconds.
    Basic,
}

impl Preset {
    /// The preset's duration in nanoseconds.
    pub fn duration_nanos(self) -> u64 {
        match self {
            Preset::Quick => 10_000_000_000,
            Preset::Basic => 30_000_000_000,
        }
    }
}

/// Where a seed session starts on the virtual clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The wall clock when the command runs.
    Now,
    /// A given time.
    At(Timestamp),
}

/// `otlp-tape patterns ...`
#[derive(Debug, Subcommand)]
pub enum PatternsCommand {
    /// List the built-in patterns.
    List,
    /// Print a pattern's YAML (or with --output json, a summary of it).
    Show {
        /// A built-in pattern's name or a pattern file.
        #[arg(value_name = "NAME|FILE")]
        pattern: String,
    },
    /// Check a pattern file; errors name the file, line and column.
    Validate {
        /// The pattern file (YAML).
        file: PathBuf,
    },
}

fn parse_duration(text: &str) -> Result<u64, String> {
    // A bare number is seconds, as the earlier system's --duration 60.
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit() || byte == b'.') {
        tape_seed_generator::parse_duration(&format!("{text}s"))
    } else {
        tape_seed_generator::parse_duration(text)
    }
}

fn parse_listen(text: &str) -> Result<Listen, String> {
    let text = text.trim();
    if matches!(text.to_ascii_lowercase().as_str(), "off" | "none" | "false") {
        return Ok(Listen(None));
    }
    // `localhost:4317` is common; resolve it without DNS to loopback.
    let normalised =
        text.strip_prefix("localhost:").map_or_else(|| text.to_owned(), |port| format!("127.0.0.1:{port}"));
    normalised
        .parse()
        .map(|addr| Listen(Some(addr)))
        .map_err(|_| format!("invalid address {text:?}: expected HOST:PORT such as 127.0.0.1:4317, or off"))
}

fn parse_header(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => Ok((key.trim().to_owned(), value.trim().to_owned())),
        _ => Err(format!("invalid header {text:?}: expected KEY=VALUE")),
    }
}

fn parse_start(text: &str) -> Result<Start, String> {
    if text.trim().eq_ignore_ascii_case("now") {
        return Ok(Start::Now);
    }
    Timestamp::parse_rfc3339(text.trim()).map(Start::At).ok_or_else(|| {
        format!("invalid start {text:?}: expected `now` or an RFC 3339 time such as 2026-01-01T00:00:00Z")
    })
}

fn parse_signals(list: &str) -> Result<SignalSet, String> {
    list.parse().map_err(|error: tape_otlp::ParseSignalError| error.to_string())
}

fn parse_session_type(name: &str) -> Result<SessionType, String> {
    name.parse()
}

fn parse_keep_last(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(0) => Err("--keep-last 0 would keep nothing: give at least 1".to_owned()),
        Ok(count) => Ok(count),
        Err(_) => Err(format!("invalid count {text:?}: expected a whole number, at least 1")),
    }
}

fn parse_signal(name: &str) -> Result<Signal, String> {
    name.parse().map_err(|error: tape_otlp::ParseSignalError| error.to_string())
}

fn parse_session_choice(text: &str) -> Result<SessionChoice, String> {
    crate::commands::replay::parse_session_choice(text)
}

fn parse_time_bound(text: &str) -> Result<TimeBound, String> {
    crate::commands::replay::parse_time_bound(text)
}

fn parse_failure_limit(text: &str) -> Result<FailureLimit, String> {
    crate::commands::replay::parse_failure_limit(text)
}

fn parse_speed(text: &str) -> Result<Speed, String> {
    crate::commands::replay::parse_speed(text)
}

fn parse_demo_protocol(text: &str) -> Result<tape_replay::Protocol, String> {
    text.parse().map_err(|_| "expected grpc, http/protobuf or http/json".to_owned())
}

fn parse_timestamps(text: &str) -> Result<TimestampMode, String> {
    text.parse::<TimestampMode>().map_err(|_| "expected none, relative or current".to_owned())
}

fn parse_rate_limit(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err("expected items per second above 0, such as 500 or 2.5".to_owned()),
    }
}

/// `otlp-tape serve`
#[derive(Debug, Args)]
#[allow(clippy::struct_excessive_bools)] // independent switches
pub struct ServeArgs {
    /// Address of the HTTP control API.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub api: std::net::SocketAddr,
    /// Require `Authorization: Bearer TOKEN` on every API call; OTLP_TAPE_API_TOKEN.
    #[arg(long, value_name = "TOKEN", env = env::OTLP_TAPE_API_TOKEN, hide_env_values = true)]
    pub api_token: Option<String>,
    /// Allow a non-loopback --api address without --api-token.
    #[arg(long)]
    pub insecure_api: bool,
    /// Largest API request body, in KiB.
    #[arg(long, value_name = "KIB", default_value_t = 64)]
    pub max_body_kb: usize,
    /// Where OTLP/gRPC is received, or off.
    #[arg(long, value_name = "ADDR|off", value_parser = parse_listen, default_value = "127.0.0.1:4317")]
    pub grpc: Listen,
    /// Where OTLP/HTTP is received, or off.
    #[arg(long, value_name = "ADDR|off", value_parser = parse_listen, default_value = "127.0.0.1:4318")]
    pub http: Listen,
    /// Largest OTLP request accepted, after decompression, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 16)]
    pub max_request_size_mb: u64,
    /// How request bodies are read.
    #[command(flatten)]
    pub receive: ReceiveArgs,
    /// Pass-through.
    #[command(flatten)]
    pub forward: ForwardArgs,
    /// Where finished replays' JSON reports are written (created when missing).
    #[arg(long, value_name = "DIR", default_value = ".otlp-tape/reports")]
    pub reports_dir: PathBuf,
    /// Where blobs being captured wait until committed when the store is S3, and where capture locks are kept;
    /// OTLP_TAPE_SPOOL_DIR, else .otlp-tape/spool under the working directory.
    #[arg(long, value_name = "DIR")]
    pub spool_dir: Option<PathBuf>,
    /// Apply the retention policy this often, such as 1h; off unless given (needs a --retention-* criterion).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub retention_interval: Option<u64>,
    /// Retention: delete sessions that ended longer ago than this, such as 30d.
    #[arg(long, value_name = "DURATION")]
    pub retention_older_than: Option<String>,
    /// Retention: always keep this many newest sessions.
    #[arg(long, value_name = "N")]
    pub retention_keep_last: Option<usize>,
    /// Retention: delete the oldest sessions while the store holds more than this, such as 50GB.
    #[arg(long, value_name = "SIZE")]
    pub retention_max_total_size: Option<String>,
    /// Retention: only sessions of these types (seed, capture, training); all when absent.
    #[arg(long = "retention-type", value_name = "TYPE", value_delimiter = ',', value_parser = parse_session_type)]
    pub retention_types: Vec<SessionType>,
    /// Replays started through the API that may run at once; one more is refused with 429.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrent_replays: u32,
    /// Seeds started through the API that may run at once; one more is refused with 429.
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrent_seeds: u32,
    /// The most traces (duration × rate) a seed started through the API may generate; more is refused with 400.
    #[arg(long, value_name = "N", default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_seed_traces: u64,
    /// Where replays started through the API may send: HOST, HOST:PORT, [IPv6]:PORT or a CIDR such as
    /// 10.0.0.0/8 (repeat the flag for more); any other target is refused with 403. Anywhere when absent.
    #[arg(long = "allow-target", value_name = "HOST[:PORT]|CIDR", value_parser = parse_allowed_target)]
    pub allow_targets: Vec<crate::serve::AllowedTarget>,
}

fn parse_allowed_target(text: &str) -> Result<crate::serve::AllowedTarget, String> {
    text.parse()
}

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
