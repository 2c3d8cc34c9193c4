//! OTLP files and Parquet tables for otlp-tape, in the OpenTelemetry
//! Collector's formats ([`FileFormat`]): its file exporter's OTLP/JSON lines
//! and length-prefixed protobuf, and the tables of its ClickHouse exporter.
//!
//! - **import** ([`ImportConfig`]): OTLP files (plain, gzip or zstd, told
//!   apart by their first bytes) become a new session, each request one
//!   record received at the newest timestamp it carries; a failed import
//!   leaves nothing behind.
//! - **export** ([`ExportConfig`]): a session's records, selected by signal
//!   and receive time (`from`, `until`, `phase`), become one OTLP file per
//!   signal or one Parquet file per table ([`parquet`]), or with `byPhase`
//!   one directory per phase of the session's annotations plus
//!   `unlabelled` and a `labels.json` manifest. Files go into an
//!   [`OutputDir`](tape_session::OutputDir) (Parquet also to S3) and only
//!   appear when every file is whole.
//!
//! Both follow the components' shape: a serde config, `validate()` into a
//! checked config, then `run` returning a typed outcome. Nothing is
//! printed; the caller reports the outcome.
//!
//! ```no_run
//! # async fn example(store: &dyn tape_session::SessionStore, output: &dyn tape_session::OutputDir)
//! # -> Result<(), tape_files::Error> {
//! use tape_files::{ExportConfig, ExportOutcome, FileFormat, ImportConfig};
//!
//! let import: ImportConfig = serde_json::from_value(serde_json::json!({
//!     "format": "otlp-json",
//!     "files": ["traces.jsonl.gz"],
//! }))
//! .expect("a valid config");
//! let now = tape_session::Timestamp::from_unix_nanos(1_767_225_600_000_000_000);
//! let imported = import.validate()?.run(store, now).await?;
//!
//! let export = ExportConfig::new(imported.session_id.clone(), FileFormat::Parquet, "tables");
//! let progress = |progress: tape_files::ExportProgress| {
//!     eprintln!("{} of {} records", progress.records_done, progress.records_total);
//! };
//! if let ExportOutcome::Tables(tables) = export.validate()?.run(store, output, &progress).await? {
//!     for file in &tables.files {
//!         println!("{} ({} rows)", file.file, file.rows);
//!     }
//! }
//! # Ok(())
//! # }
//! ```

mod error;
mod export;
mod format;
mod import;
pub mod parquet;

pub use error::Error;
pub use export::{
    ExportConfig, ExportOutcome, ExportProgress, ExportedFile, ExportedFiles, ExportedTables, FileEntry, LABELS_FILE,
    LabelEntry, Labels, RangeEntry, TableFile, ValidExportConfig, is_s3_url,
};
pub use format::FileFormat;
pub use import::{ImportConfig, ImportOutcome, MAX_MESSAGE_BYTES, ValidImportConfig};
