//! Export: a session's records as OTLP files, one per signal, or by phase,
//! or as Parquet tables; the records selected by signal and receive time.

mod by_phase;
mod file;
mod parquet;
mod per_signal;
mod select;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tape_otlp::{Signal, SignalSet};
use tape_session::{OutputDir, SessionId, SessionStore, TimeBound, config};

pub use self::by_phase::{FileEntry, LABELS_FILE, LabelEntry, Labels, RangeEntry};
use crate::{Error, FileFormat};

/// What to export, and where. The selection (`signals`, `from`, `until`,
/// `phase`) applies to every format, whole or by phase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExportConfig {
    /// The session to export.
    pub session: SessionId,
    /// Format of the files.
    pub format: FileFormat,
    /// Where the files go: a local directory, created when missing, or for
    /// `parquet` also an `s3://bucket/prefix` URL. One file per signal
    /// present (`traces.jsonl`, `metrics.pb`, ...), or per table with rows
    /// (`traces.parquet`, `metrics_sum.parquet`, ...).
    pub out: String,
    /// Training data: one directory per phase of the session's annotations
    /// (records by receive time; `Phase=<name>` for parquet, Hive
    /// partitioning), one for records outside every phase (`unlabelled`),
    /// and a `labels.json` manifest; default false.
    #[serde(default, deserialize_with = "config::switch")]
    pub by_phase: bool,
    /// The signals to export: a list such as `traces,logs`, or `all`;
    /// default all.
    #[serde(default = "all_signals", deserialize_with = "signal_set", serialize_with = "display")]
    pub signals: SignalSet,
    /// Only records received at or after this point: an offset into the
    /// session or an RFC 3339 time. Default: the start.
    #[serde(default, deserialize_with = "config::parsed", serialize_with = "optional_display")]
    pub from: Option<TimeBound>,
    /// Only records received before this point. Default: the end.
    #[serde(default, deserialize_with = "config::parsed", serialize_with = "optional_display")]
    pub until: Option<TimeBound>,
    /// Only records received during this phase of the session, within
    /// `from` and `until`. Default: every phase.
    #[serde(default, deserialize_with = "config::parsed", skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Replace files (by phase: phase directories and `labels.json`) that
    /// exist in the directory; default false.
    #[serde(default, deserialize_with = "config::switch")]
    pub force: bool,
}

fn all_signals() -> SignalSet {
    SignalSet::ALL
}

/// A value as the text its flag takes (which its `FromStr` reads back).
fn display<S: Serializer>(value: &impl std::fmt::Display, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

/// An optional value as the text its flag takes, or null.
#[allow(clippy::ref_option)] // serde's serialize_with passes a reference
fn optional_display<S: Serializer>(value: &Option<impl std::fmt::Display>, serializer: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(value) => serializer.collect_str(value),
        None => serializer.serialize_none(),
    }
}

fn signal_set<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SignalSet, D::Error> {
    Ok(config::parsed(deserializer)?.unwrap_or(SignalSet::ALL))
}

/// Whether `out` names an S3 location rather than a local directory.
pub fn is_s3_url(out: &str) -> bool {
    out.starts_with("s3://")
}

impl ExportConfig {
    /// A config with the defaults: every record, one file per signal (per
    /// table for parquet), nothing replaced.
    pub fn new(session: SessionId, format: FileFormat, out: impl Into<String>) -> Self {
        ExportConfig {
            session,
            format,
            out: out.into(),
            by_phase: false,
            signals: SignalSet::ALL,
            from: None,
            until: None,
            phase: None,
            force: false,
        }
    }

    /// Checks the config: an output is named, at least one signal is
    /// selected, and S3 output is only written as Parquet.
    ///
    /// # Errors
    /// [`Error::InvalidExport`] naming the field, [`Error::S3NeedsParquet`].
    pub fn validate(self) -> Result<ValidExportConfig, Error> {
        if self.out.trim().is_empty() {
            return Err(Error::InvalidExport("out: name a local directory or an s3://bucket/prefix URL".to_owned()));
        }
        if self.signals.is_empty() {
            return Err(Error::InvalidExport("signals: select at least one of traces, metrics and logs".to_owned()));
        }
        if is_s3_url(&self.out) && self.format.is_otlp() {
            return Err(Error::S3NeedsParquet { format: self.format, location: self.out });
        }
        Ok(ValidExportConfig(self))
    }
}

/// An [`ExportConfig`] that [`ExportConfig::validate`] accepted.
#[derive(Debug, Clone)]
pub struct ValidExportConfig(ExportConfig);

/// How far an export is: records read of the records selected, items
/// written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportProgress {
    /// Records read so far.
    pub records_done: u64,
    /// Records in the blobs the selection reads: the selected signals' blobs
    /// that meet the window (a blob the window cuts counts whole).
    pub records_total: u64,
    /// Items (spans, data points, log records) of the selected records
    /// read so far.
    pub items_done: u64,
    /// Bytes written into the output so far.
    pub bytes_written: u64,
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ExportOutcome {
    /// One file per signal present.
    Files(ExportedFiles),
    /// By phase: the manifest written as `labels.json`.
    ByPhase(Labels),
    /// Parquet: one file per table with rows, whole or by phase.
    Tables(ExportedTables),
}

/// The files of an export, one per signal present.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportedFiles {
    /// The session.
    pub session_id: SessionId,
    /// The files, in the order of the signals; empty when nothing was
    /// selected.
    pub files: Vec<ExportedFile>,
}

/// One exported file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportedFile {
    /// Its signal.
    pub signal: Signal,
    /// Where it is.
    pub path: std::path::PathBuf,
    /// Requests in it.
    pub requests: u64,
    /// Items (spans, data points, log records) in it.
    pub items: u64,
}

/// The Parquet files of an export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportedTables {
    /// The session.
    pub session_id: SessionId,
    /// The output directory: a path or `s3://bucket/prefix`.
    pub location: String,
    /// The files, by phase then in table order; empty when nothing was
    /// selected.
    pub files: Vec<TableFile>,
    /// With `byPhase`: the manifest written as `labels.json`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
}

/// One Parquet file of an export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TableFile {
    /// Its table: `traces`, `metrics_sum`, ...
    pub table: &'static str,
    /// Its name relative to the output directory: `traces.parquet`, or by
    /// phase `Phase=<name>/traces.parquet`.
    pub file: String,
    /// Rows in it.
    pub rows: u64,
    /// Its size.
    pub bytes: u64,
}

impl ValidExportConfig {
    /// The config.
    pub fn config(&self) -> &ExportConfig {
        &self.0
    }

    /// Writes the selected records of the session into `output`: OTLP
    /// files into its local directory, Parquet tables into any output.
    /// Files appear only once every record is in: a failed export leaves
    /// nothing behind. `progress` is called at the start, every few thousand
    /// records or tens of thousands of items, and once at the end.
    ///
    /// # Errors
    /// The session or its phases cannot be read, it has several writers and
    /// is not sealed ([`Error::Unsealed`]), the selection selects
    /// nothing ([`Error::Window`]), a file exists and `force` is off
    /// ([`Error::Exists`]), an OTLP format with an output that is not local
    /// ([`Error::S3NeedsParquet`]), or reading, converting or writing
    /// failed ([`Error::ExportFailed`], [`Error::ByPhaseFailed`]).
    pub async fn run(
        &self,
        store: &dyn SessionStore,
        output: &dyn OutputDir,
        progress: &(dyn Fn(ExportProgress) + Send + Sync),
    ) -> Result<ExportOutcome, Error> {
        let config = &self.0;
        let metadata = store.read_metadata(&config.session).await?;
        if tape_session::is_unsealed(&metadata) {
            let advice = tape_session::unsealed_advice(store, &config.session).await;
            return Err(Error::Unsealed { session: config.session.clone(), advice });
        }
        let needs_phases = config.by_phase || config.phase.is_some() || config.format == FileFormat::Parquet;
        let selection = select::Selection::resolve(store, &metadata, config, needs_phases).await?;
        if config.format == FileFormat::Parquet {
            return parquet::run(store, &metadata, &selection, config, output, progress)
                .await
                .map(ExportOutcome::Tables);
        }
        let Some(out) = output.local_path() else {
            return Err(Error::S3NeedsParquet { format: config.format, location: output.location() });
        };
        if config.by_phase {
            return by_phase::run(store, &metadata, &selection, config, &out, progress)
                .await
                .map(ExportOutcome::ByPhase);
        }
        per_signal::run(store, &metadata, &selection, config, &out, progress).await.map(ExportOutcome::Files)
    }
}

/// The export runs in spawned tasks (the control API's jobs): its future is
/// `Send`, which this checks when it compiles.
#[allow(dead_code)]
fn run_is_send(config: &ValidExportConfig, store: &dyn SessionStore, output: &dyn OutputDir) {
    fn send<T: Send>(_: T) {}
    send(config.run(store, output, &|_| {}));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: serde_json::Value) -> Result<ExportConfig, serde_json::Error> {
        serde_json::from_value(json)
    }

    #[test]
    fn configs_take_the_flags_forms() {
        let config = parse(serde_json::json!({
            "session": "s", "format": "parquet", "out": "s3://bucket/exports", "byPhase": true,
            "signals": "traces,logs", "from": 30, "until": "1m", "phase": "failure", "force": null
        }))
        .unwrap();
        assert_eq!(config.format, FileFormat::Parquet);
        assert_eq!(config.signals.to_string(), "traces,logs");
        assert_eq!(config.from, Some(TimeBound::Offset(30_000_000_000)));
        assert_eq!(config.until, Some(TimeBound::Offset(60_000_000_000)));
        assert_eq!(config.phase.as_deref(), Some("failure"));
        assert!(config.by_phase && !config.force);
        // What it serializes to reads back the same.
        assert_eq!(parse(serde_json::to_value(&config).unwrap()).unwrap(), config);

        let defaults = parse(serde_json::json!({ "session": "s", "format": "otlp-json", "out": "x" })).unwrap();
        assert_eq!(defaults, ExportConfig::new("s".parse().unwrap(), FileFormat::OtlpJson, "x"));
        for (json, message) in [
            (serde_json::json!({ "session": "s", "format": "csv", "out": "x" }), "unknown variant `csv`"),
            (serde_json::json!({ "session": "s", "format": "parquet", "out": "x", "signals": "bogus" }), "bogus"),
            (serde_json::json!({ "session": "s", "format": "parquet", "out": "x", "from": "soon" }), "soon"),
            (serde_json::json!({ "session": "s", "format": "parquet", "out": "x", "level": 3 }), "unknown field"),
        ] {
            let error = parse(json).unwrap_err().to_string();
            assert!(error.contains(message), "{error}");
        }
    }

    #[test]
    fn s3_output_is_parquet_only_and_something_is_selected() {
        let config = |format, out: &str| ExportConfig::new("s".parse().unwrap(), format, out);
        let error = config(FileFormat::OtlpJson, "s3://bucket/prefix").validate().unwrap_err().to_string();
        assert_eq!(
            error,
            "cannot write otlp-json files to s3://bucket/prefix: S3 output is written for --format parquet only"
        );
        assert!(config(FileFormat::Parquet, "s3://bucket/prefix").validate().is_ok());
        let error = config(FileFormat::Parquet, " ").validate().unwrap_err().to_string();
        assert!(error.starts_with("invalid export: out:"), "{error}");
        let mut none = config(FileFormat::Parquet, "x");
        none.signals = SignalSet::NONE;
        assert!(none.validate().unwrap_err().to_string().contains("signals"));
    }
}
