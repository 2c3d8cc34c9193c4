//! The command line, as clap definitions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use tape_otlp::Signal;
use tape_session::{SessionId, SessionType};
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
    /// Check every blob's SHA-256, size and counts against the metadata.
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

fn parse_session_type(name: &str) -> Result<SessionType, String> {
    name.parse()
}

fn parse_signal(name: &str) -> Result<Signal, String> {
    name.parse().map_err(|error: tape_otlp::ParseSignalError| error.to_string())
}
