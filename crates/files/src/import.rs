//! Import: OTLP files become a new session.

mod read;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tape_otlp::Signal;
use tape_session::{
    SessionId, SessionMetadata, SessionStatus, SessionStore, SessionType, SessionWriter, SignalCounts, Timestamp,
    WriterOptions,
};

use crate::{Error, FileFormat};

/// The largest message or line accepted: the blob frame limit, less room
/// for the frame's own fields.
pub const MAX_MESSAGE_BYTES: usize = tape_session::blob::MAX_FRAME_LEN - 64;

/// What to import: the files and the session they become.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImportConfig {
    /// Format of the files.
    pub format: FileFormat,
    /// Id of the new session; default: generated (`import-...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<SessionId>,
    /// Type of the new session; default `capture`.
    #[serde(default = "default_session_type")]
    pub session_type: SessionType,
    /// Signal of every file; default: taken from each OTLP/JSON line, or for
    /// otlp-proto from a file name that contains traces, metrics or logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<Signal>,
    /// Human-readable description of the session; default none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The files (plain, .gz or .zst), read in this order; at least one.
    pub files: Vec<PathBuf>,
}

fn default_session_type() -> SessionType {
    SessionType::Capture
}

impl ImportConfig {
    /// A config with the defaults: a `capture` session with a generated id.
    pub fn new(format: FileFormat, files: Vec<PathBuf>) -> Self {
        ImportConfig {
            format,
            session_id: None,
            session_type: default_session_type(),
            signal: None,
            description: None,
            files,
        }
    }

    /// Checks the config: at least one file.
    pub fn validate(self) -> Result<ValidImportConfig, Error> {
        if self.files.is_empty() {
            return Err(Error::NoFiles);
        }
        if !self.format.is_otlp() {
            return Err(Error::NotImportable { format: self.format });
        }
        Ok(ValidImportConfig(self))
    }
}

/// An [`ImportConfig`] that [`ImportConfig::validate`] accepted.
#[derive(Debug, Clone)]
pub struct ValidImportConfig(ImportConfig);

impl ValidImportConfig {
    /// The config.
    pub fn config(&self) -> &ImportConfig {
        &self.0
    }

    /// Reads every file into a new session of `store`, created at `now`.
    /// Each request becomes a record received at the newest timestamp it
    /// carries (never going back in time within a signal; `now` and on for
    /// a request without any). The session starts at the first record and
    /// ends at the last. On failure nothing is stored.
    pub async fn run(&self, store: &dyn SessionStore, now: Timestamp) -> Result<ImportOutcome, Error> {
        let config = &self.0;
        let id = config.session_id.clone().unwrap_or_else(|| SessionId::generate("import", now, rand::random()));
        let mut metadata = SessionMetadata::new(id.clone(), config.session_type, now, created_by());
        metadata.description.clone_from(&config.description);
        metadata.parameters.insert("format".to_owned(), serde_json::json!(config.format.as_str()));
        metadata.parameters.insert(
            "files".to_owned(),
            serde_json::json!(config.files.iter().map(|path| path.display().to_string()).collect::<Vec<_>>()),
        );

        let mut writer = SessionWriter::create(store, metadata, WriterOptions::default()).await.map_err(|source| {
            Error::CreateSession { id: id.clone(), location: store.location(), source: Box::new(source) }
        })?;
        let span = match write_files(&mut writer, config, now).await {
            Ok(span) => span,
            Err(error) => {
                // Nothing is written half-way: the partial session goes.
                if let Err(cleanup) = writer.discard().await {
                    tracing::warn!(session = %id, "Could not remove the partial session: {cleanup}");
                }
                return Err(Error::ImportFailed { id, source: Box::new(error) });
            }
        };
        let (first, last) = span.unwrap_or((now, now));
        writer.metadata_mut().start_time = first;
        let metadata = match writer.finish(last, SessionStatus::Completed).await {
            Ok(metadata) => metadata,
            Err(error) => {
                // Without its metadata.json the session is not listed: it goes.
                if let Err(cleanup) = store.delete_session(&id).await {
                    tracing::warn!(session = %id, "Could not remove the partial session: {cleanup}");
                }
                return Err(Error::ImportFailed { id, source: Box::new(error.into()) });
            }
        };
        tracing::info!(session = %id, files = config.files.len(), "Import finished.");
        Ok(ImportOutcome {
            session_id: id,
            store: store.location(),
            files: config.files.len(),
            requests: metadata.request_counts,
            items: metadata.item_counts(),
        })
    }
}

/// What an import wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportOutcome {
    /// The new session.
    pub session_id: SessionId,
    /// The store's location.
    pub store: String,
    /// Files read.
    pub files: usize,
    /// Requests stored, per signal.
    pub requests: SignalCounts,
    /// Items (spans, data points, log records) stored, per signal.
    pub items: SignalCounts,
}

/// Writes every file's requests; returns the first and last receive time.
async fn write_files(
    writer: &mut SessionWriter<'_>,
    config: &ImportConfig,
    now: Timestamp,
) -> Result<Option<(Timestamp, Timestamp)>, Error> {
    // Records get the newest timestamp they carry as their receive time,
    // never going back in time within a signal.
    let mut last_time = [0u64; 3];
    let mut fallback = now.unix_nanos();
    let mut span: Option<(Timestamp, Timestamp)> = None;
    for path in &config.files {
        let messages = read::read_file(path, config.format, config.signal)?;
        for message in messages {
            let message = message?;
            let slot = message.signal.index();
            let time = message.request.newest_timestamp().unwrap_or_else(|| {
                fallback += 1;
                fallback
            });
            let time = time.max(last_time[slot]);
            last_time[slot] = time;
            let time = Timestamp::from_unix_nanos(time);
            span = Some(span.map_or((time, time), |(first, last)| (first.min(time), last.max(time))));
            let payload = message.request.encode_protobuf();
            writer
                .append(message.signal, time, message.request.item_count(), &payload)
                .await
                .map_err(|source| Error::Store { origin: message.origin, source: Box::new(source) })?;
        }
    }
    Ok(span)
}

fn created_by() -> String {
    format!("otlp-tape {} import", env!("CARGO_PKG_VERSION"))
}
