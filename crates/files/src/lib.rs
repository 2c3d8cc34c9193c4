//! OTLP files for otlp-tape, in the OpenTelemetry Collector's file exporter
//! formats ([`FileFormat`]): OTLP/JSON lines and length-prefixed protobuf.
//!
//! - **import** ([`ImportConfig`]): files (plain, gzip or zstd, told apart by
//!   their first bytes) become a new session, each request one record
//!   received at the newest timestamp it carries; a failed import leaves
//!   nothing behind.
//! - **export** ([`ExportConfig`]): a session's records become one file per
//!   signal, or with `byPhase` one directory per phase of the session's
//!   annotations plus `unlabelled` and a `labels.json` manifest; files are
//!   written under temporary names and only take their names when whole.
//!
//! Both follow the components' shape: a serde config, `validate()` into a
//! checked config, then `run` returning a typed outcome. Nothing is
//! printed; the caller reports the outcome.
//!
//! ```no_run
//! # async fn example(store: &dyn tape_session::SessionStore) -> Result<(), tape_files::Error> {
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
//! let export = ExportConfig::new(imported.session_id.clone(), FileFormat::OtlpProto, "out");
//! if let ExportOutcome::Files(files) = export.validate()?.run(store).await? {
//!     for file in &files.files {
//!         println!("{} ({} requests)", file.path.display(), file.requests);
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
    ExportConfig, ExportOutcome, ExportedFile, ExportedFiles, FileEntry, LABELS_FILE, LabelEntry, Labels, RangeEntry,
    ValidExportConfig,
};
pub use format::FileFormat;
pub use import::{ImportConfig, ImportOutcome, MAX_MESSAGE_BYTES, ValidImportConfig};
