//! `otlp-tape sessions`, `import`, `export` and `annotations`: their flags.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use tape_otlp::{Signal, SignalSet};
use tape_session::retention::RetentionConfig;
use tape_session::{SessionId, SessionType, WriterId};

use super::TimeBound;
use super::parse::{parse_session_type, parse_signal, parse_signals, parse_time_bound};

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
        /// Of a session with several writers (capture --join): repair this writer only (one that crashed), leaving the
        /// others alone; the session is sealed when no writer is active any more.
        #[arg(long, value_name = "ID")]
        writer: Option<WriterId>,
        /// With --writer: repair it even though its manifest was written within the last 30 s (it looks alive), when
        /// it is known to have stopped; without, such a writer is refused (exit 2) unless its capture lock is in this
        /// host's spool directory and free.
        #[arg(long, requires = "writer")]
        force: bool,
        /// Where capture spools the blobs it writes, used when it exists; default: OTLP_TAPE_SPOOL_DIR, else .otlp-tape/spool in the working directory.
        #[arg(long, value_name = "DIR")]
        spool_dir: Option<PathBuf>,
    },
    /// Seal a session of several writers (capture --join) once every writer has stopped: merge their manifests into
    /// metadata.json. Exit 1, naming them, while writers are active.
    Seal {
        /// The session id.
        id: SessionId,
    },
    /// Delete sessions by age, count and total size; `active` sessions and those a running capture holds are kept.
    Prune(PruneArgs),
    /// Merge sessions into a new one: each source becomes a writer, its phases are named SOURCE/NAME.
    Merge(crate::commands::merge::MergeArgs),
}

/// `otlp-tape sessions prune`: at least one of --older-than, --keep-last and --max-total-size.
#[derive(Debug, Args)]
#[command(group(
    clap::ArgGroup::new("criterion").required(true).multiple(true).args(["older_than", "keep_last", "max_total_size"])
))]
pub struct PruneArgs {
    /// The retention policy, as the control API's prune request takes it.
    #[command(flatten)]
    pub policy: RetentionConfig,
    /// Where capture keeps its session locks (sessions a running capture holds are kept); default: OTLP_TAPE_SPOOL_DIR, else .otlp-tape/spool in the working directory.
    #[arg(long, value_name = "DIR")]
    pub spool_dir: Option<PathBuf>,
}

/// File formats of import.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FileFormat {
    /// JSON Lines, one OTLP/JSON request per line, one signal per file.
    OtlpJson,
    /// Length-prefixed protobuf: each request preceded by its 4-byte big-endian length.
    OtlpProto,
}

/// File formats of export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// JSON Lines, one OTLP/JSON request per line, one signal per file.
    OtlpJson,
    /// Length-prefixed protobuf: each request preceded by its 4-byte big-endian length.
    OtlpProto,
    /// Parquet tables in the schema of the Collector's ClickHouse exporter, one row per span, log record or data
    /// point.
    Parquet,
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
    pub format: ExportFormat,
    /// Where the files go: a directory (created when missing), or with --format parquet also an
    /// s3://bucket/prefix URL (written with the store's S3 settings). One file per signal present, or per table.
    #[arg(long, value_name = "DIR|S3-URL")]
    pub out: String,
    /// Training data: one directory per phase of the session's annotations (records by receive time;
    /// Phase=NAME with parquet, Hive partitioning), one for records outside every phase (unlabelled), and a
    /// labels.json manifest.
    #[arg(long)]
    pub by_phase: bool,
    /// Signals to export: a comma-separated list of traces, metrics and logs, or all.
    #[arg(long, value_name = "LIST", value_parser = parse_signals, default_value = "all")]
    pub signals: SignalSet,
    /// Only records received at or after this point: an offset into the session from its start time (30s,
    /// 1m30s, 90) or an RFC 3339 time.
    #[arg(long, value_name = "OFFSET|TIME", value_parser = parse_time_bound)]
    pub from: Option<TimeBound>,
    /// Only records received before this point: an offset into the session from its start time or an RFC 3339
    /// time.
    #[arg(long, value_name = "OFFSET|TIME", value_parser = parse_time_bound)]
    pub until: Option<TimeBound>,
    /// Only records received during this phase of the session (its test.phase.NAME annotation, else its
    /// metadata's phases), within --from and --until.
    #[arg(long, value_name = "NAME")]
    pub phase: Option<String>,
    /// Replace files (with --by-phase, phase directories and labels.json) that exist in the directory.
    #[arg(long)]
    pub force: bool,
}

impl From<FileFormat> for tape_files::FileFormat {
    fn from(format: FileFormat) -> Self {
        match format {
            FileFormat::OtlpJson => tape_files::FileFormat::OtlpJson,
            FileFormat::OtlpProto => tape_files::FileFormat::OtlpProto,
        }
    }
}

impl ImportArgs {
    /// The import these flags ask for.
    pub fn config(self) -> tape_files::ImportConfig {
        tape_files::ImportConfig {
            format: self.format.into(),
            session_id: self.session_id,
            session_type: self.session_type,
            signal: self.signal,
            description: self.description,
            files: self.files,
        }
    }
}

impl From<ExportFormat> for tape_files::FileFormat {
    fn from(format: ExportFormat) -> Self {
        match format {
            ExportFormat::OtlpJson => tape_files::FileFormat::OtlpJson,
            ExportFormat::OtlpProto => tape_files::FileFormat::OtlpProto,
            ExportFormat::Parquet => tape_files::FileFormat::Parquet,
        }
    }
}

impl ExportArgs {
    /// The export these flags ask for.
    pub fn config(self) -> tape_files::ExportConfig {
        tape_files::ExportConfig {
            session: self.session,
            format: self.format.into(),
            out: self.out,
            by_phase: self.by_phase,
            signals: self.signals,
            from: self.from,
            until: self.until,
            phase: self.phase,
            force: self.force,
        }
    }
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
