//! `otlp-tape seed` and `demo`: their flags.

use clap::Args;
use tape_seed::SeedConfig;

use super::{ClickHouseArgs, TargetArgs};

/// `otlp-tape seed`
#[derive(Debug, Args)]
pub struct SeedArgs {
    /// What the seed generates: the flags of `tape_seed::SeedConfig`.
    #[command(flatten)]
    pub config: SeedConfig,
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
