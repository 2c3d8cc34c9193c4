//! Export: a session's records as OTLP files, one per signal, or by phase.

mod by_phase;
mod file;

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::fs;
use std::path::PathBuf;

use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use tape_otlp::Signal;
use tape_session::{SessionId, SessionStore, read_session};

pub use self::by_phase::{FileEntry, LABELS_FILE, LabelEntry, Labels, RangeEntry};
use self::file::PendingFile;
use crate::{Error, FileFormat};

/// What to export, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExportConfig {
    /// The session to export.
    pub session: SessionId,
    /// Format of the files.
    pub format: FileFormat,
    /// Directory for the files, created when missing: one file per signal
    /// present (`traces.jsonl`, `metrics.pb`, ...).
    pub out: PathBuf,
    /// Training data: one directory per phase of the session's annotations
    /// (records by receive time), one for records outside every phase
    /// (`unlabelled`), and a `labels.json` manifest; default false.
    #[serde(default)]
    pub by_phase: bool,
    /// Replace files (by phase: phase directories and `labels.json`) that
    /// exist in the directory; default false.
    #[serde(default)]
    pub force: bool,
}

impl ExportConfig {
    /// A config with the defaults: one file per signal, nothing replaced.
    pub fn new(session: SessionId, format: FileFormat, out: impl Into<PathBuf>) -> Self {
        ExportConfig { session, format, out: out.into(), by_phase: false, force: false }
    }

    /// Checks the config. Every combination is valid today; the checked
    /// type is where a format with options of its own checks them.
    pub fn validate(self) -> Result<ValidExportConfig, Error> {
        Ok(ValidExportConfig(self))
    }
}

/// An [`ExportConfig`] that [`ExportConfig::validate`] accepted.
#[derive(Debug, Clone)]
pub struct ValidExportConfig(ExportConfig);

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ExportOutcome {
    /// One file per signal present.
    Files(ExportedFiles),
    /// By phase: the manifest written as `labels.json`.
    ByPhase(Labels),
}

/// The files of an export, one per signal present.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportedFiles {
    /// The session.
    pub session_id: SessionId,
    /// The files, in the order of the signals; empty for a session without records.
    pub files: Vec<ExportedFile>,
}

/// One exported file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportedFile {
    /// Its signal.
    pub signal: Signal,
    /// Where it is.
    pub path: PathBuf,
    /// Requests in it.
    pub requests: u64,
    /// Items (spans, data points, log records) in it.
    pub items: u64,
}

impl ValidExportConfig {
    /// The config.
    pub fn config(&self) -> &ExportConfig {
        &self.0
    }

    /// Writes the session's records into files. Files are written under
    /// temporary names and take their names only once every record is in:
    /// a failed export leaves nothing behind.
    pub async fn run(&self, store: &dyn SessionStore) -> Result<ExportOutcome, Error> {
        let config = &self.0;
        let metadata = store.read_metadata(&config.session).await?;
        if config.by_phase {
            return by_phase::run(store, &metadata, config).await.map(ExportOutcome::ByPhase);
        }
        let present: Vec<Signal> =
            Signal::ALL.into_iter().filter(|signal| metadata.request_counts.get(*signal) > 0).collect();
        fs::create_dir_all(&config.out)
            .map_err(|source| Error::CreateDirectory { path: config.out.clone(), source })?;
        if !config.force {
            for signal in &present {
                let path = config.out.join(config.format.file_name(*signal));
                if path.exists() {
                    return Err(Error::Exists { path });
                }
            }
        }

        let mut files: BTreeMap<Signal, PendingFile> = BTreeMap::new();
        let written = async {
            let mut records = std::pin::pin!(read_session(store, &metadata, |_| true));
            while let Some((signal, record)) = records.try_next().await? {
                let file = match files.entry(signal) {
                    Entry::Occupied(entry) => entry.into_mut(),
                    Entry::Vacant(entry) => entry.insert(PendingFile::create(
                        signal,
                        config.out.join(config.format.file_name(signal)),
                        config.format,
                    )?),
                };
                file.write(&metadata.session_id, &record)?;
            }
            Ok::<_, Error>(())
        }
        .await;
        if let Err(error) = written {
            files.into_values().for_each(PendingFile::discard);
            return Err(Error::ExportFailed { session: config.session.clone(), source: Box::new(error) });
        }
        let mut exported = Vec::new();
        for file in files.into_values() {
            exported.push(file.finish()?);
        }
        tracing::info!(session = %config.session, files = exported.len(), "Export finished.");
        Ok(ExportOutcome::Files(ExportedFiles { session_id: config.session.clone(), files: exported }))
    }
}
