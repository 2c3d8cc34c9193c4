//! The command line, as clap definitions.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use tape_store::StoreLocation;

use crate::env;
use crate::target::TargetArgs;
use tape_session::TimeBound;

mod bench;
mod capture;
mod compare;
mod demo;
mod parse;
mod replay;
mod seed;
mod serve;
mod sessions;

pub use bench::*;
pub use capture::*;
pub use compare::*;
pub use demo::*;
pub use replay::*;
pub use seed::*;
pub use serve::*;
pub use sessions::*;

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
    /// Export a session's records as OTLP files (the Collector's file exporter formats) or Parquet tables,
    /// whole or by phase.
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
    /// Compare two sessions item by item: what a pipeline delivered (ACTUAL, such as a capture behind it) against
    /// what was sent into it (EXPECTED, such as a seed). Exit status 0 when ACTUAL holds EXPECTED, 1 when they
    /// differ, 2 when they cannot be compared.
    Compare(CompareArgs),
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
