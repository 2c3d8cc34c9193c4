//! The command line, as clap definitions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use tape_otlp::{Signal, SignalSet};
use tape_session::{SessionId, SessionType, Timestamp};
use tape_store::StoreLocation;

use crate::env;

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
    /// List, show, verify and delete stored sessions.
    #[command(subcommand)]
    Sessions(SessionsCommand),
    /// Import OTLP files (the Collector's file exporter formats) as a new session.
    Import(ImportArgs),
    /// Export a session's records as OTLP files (the Collector's file exporter formats).
    Export(ExportArgs),
    /// Generate a deterministic seed session from a scenario pattern.
    Seed(SeedArgs),
    /// List, show and validate scenario patterns.
    #[command(subcommand)]
    Patterns(PatternsCommand),
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
        /// Delete even a session whose status is still `active`.
        #[arg(long)]
        force: bool,
    },
    /// Check every blob's SHA-256, size and counts against the metadata; regenerate seed sessions and compare.
    Verify {
        /// The session id.
        id: SessionId,
    },
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
    /// Replace files that exist in the directory.
    #[arg(long)]
    pub force: bool,
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
}

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

fn parse_signal(name: &str) -> Result<Signal, String> {
    name.parse().map_err(|error: tape_otlp::ParseSignalError| error.to_string())
}
