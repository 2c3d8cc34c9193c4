//! `otlp-tape seed` and `demo`: their flags.

use clap::{Args, ValueEnum};
use tape_otlp::SignalSet;
use tape_session::SessionId;

pub use tape_seed::Start;

use super::parse::{parse_duration, parse_signals, parse_start};
use super::{ClickHouseArgs, TargetArgs};

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

/// Preset durations of `seed`, as the earlier system's `seed:quick` and `seed:basic`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Preset {
    /// 10 seconds.
    Quick,
    /// 30 seconds.
    Basic,
}
