//! `sessions merge A B ... --into C`: one session made of several.
//!
//! Each source becomes a writer of the new session (a source with writers
//! of its own, joined or merged, keeps one writer per original writer): its
//! blobs are copied byte for byte under that writer's keys, their SHA-256
//! checked against the source's metadata while they stream; its phases are
//! kept, named `<source>/<name>` and paired with its writers only; its
//! annotations are kept, each labelled with its source. `metadata.json` is
//! written last; a failure midway deletes what was written of the new
//! session, so no half session is left. The sources are only read.

mod labels;

use std::collections::{BTreeMap, BTreeSet};

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{
    Annotation, BlobEntry, Error, SessionFile, SessionId, SessionMetadata, SessionStatus, SessionStore, SessionType,
    SignalCounts, Timestamp, WriteMode, WriterEntry, WriterId, WriterManifest, parse_jsonl,
};

/// What `metadata.json` says made a merged session.
pub const MERGE_CREATOR: &str = "otlp-tape sessions merge";

/// A merge of sessions, as `sessions merge` and `POST
/// /api/v1/sessions/merge` take it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MergeConfig {
    /// The sessions to merge: at least two, each once; all `completed`
    /// (or `failed`, with `include_failed`).
    pub sources: Vec<SessionId>,
    /// The new session; must not exist.
    pub into: SessionId,
    /// Its description; default: `merged from A, B, ...`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Merge `failed` sources too (what they hold; the new session is then
    /// `failed`). Default: false, a failed source is refused.
    #[serde(default)]
    pub include_failed: bool,
}

/// A [`MergeConfig`] that [`MergeConfig::validate`] accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidMergeConfig(MergeConfig);

impl ValidMergeConfig {
    /// The config.
    pub fn config(&self) -> &MergeConfig {
        &self.0
    }
}

impl MergeConfig {
    /// Checks what can be checked without the store: at least two sources,
    /// none twice, and the new session not one of them.
    pub fn validate(self) -> Result<ValidMergeConfig, MergeError> {
        let invalid = |message: String| Err(MergeError::Invalid(message));
        if self.sources.len() < 2 {
            return invalid(format!(
                "a merge needs at least two source sessions, got {}",
                match self.sources.first() {
                    Some(only) => format!("only {only}"),
                    None => "none".to_owned(),
                }
            ));
        }
        let mut seen = BTreeSet::new();
        for source in &self.sources {
            if !seen.insert(source) {
                return invalid(format!("source session {source} is given twice"));
            }
        }
        if seen.contains(&self.into) {
            return invalid(format!("the new session {} is one of the sources: give a new session id", self.into));
        }
        Ok(ValidMergeConfig(self))
    }
}

/// Why a merge did not happen; nothing of the new session is left.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// The config is not valid.
    #[error("{0}")]
    Invalid(String),
    /// A source session does not exist.
    #[error("source session {0} not found")]
    SourceNotFound(SessionId),
    /// A source session is still being written (or a crash left it so).
    #[error("source session {0} is active: merge it once it is completed (or repaired, after a crash)")]
    SourceActive(SessionId),
    /// A source session failed, and `include_failed` is not set.
    #[error("source session {0} failed: include failed sources (--include-failed) to merge what it holds")]
    SourceFailed(SessionId),
    /// The new session exists already.
    #[error("session {0} already exists: merge into a new session id")]
    TargetExists(SessionId),
    /// The new session's id is taken by what an interrupted merge (or
    /// capture) left: files without `metadata.json`.
    #[error(
        "session {0} exists without metadata.json (left by a merge or capture that was interrupted): delete it with \
         `otlp-tape sessions delete {0}` and merge again, or merge into a new session id"
    )]
    TargetIncomplete(SessionId),
    /// A source's annotations or phases cannot be carried over.
    #[error("source session {session}: {message}")]
    Source {
        /// The source.
        session: SessionId,
        /// What is wrong.
        message: String,
    },
    /// A source blob's bytes are not those its metadata lists.
    #[error("source session {session}: blob {key} is damaged: {message}")]
    DamagedBlob {
        /// The source.
        session: SessionId,
        /// The blob's key in the source.
        key: String,
        /// How it differs.
        message: String,
    },
    /// A source blob could not be read or its copy written.
    #[error("source session {session}: cannot copy blob {key}")]
    Copy {
        /// The source.
        session: SessionId,
        /// The blob's key in the source.
        key: String,
        /// Why.
        #[source]
        source: Box<Error>,
    },
    /// The store failed otherwise (reading a source, writing the new
    /// session's files).
    #[error(transparent)]
    Store(Box<Error>),
}

impl From<Error> for MergeError {
    fn from(error: Error) -> Self {
        MergeError::Store(Box::new(error))
    }
}

/// What one source gave the new session.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceReport {
    /// The source session.
    pub session_id: SessionId,
    /// Its writers in the new session (one, unless it had several).
    pub writers: Vec<WriterId>,
    /// Blobs copied.
    pub blobs: u64,
    /// Items per signal.
    pub items: SignalCounts,
    /// Requests per signal.
    pub requests: SignalCounts,
    /// Bytes copied (compressed blobs).
    pub bytes: u64,
    /// Phases carried, named `<source>/<name>`.
    pub phases: usize,
    /// Annotations carried (phase annotations included).
    pub annotations: usize,
}

/// What [`merge_sessions`] made.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MergeReport {
    /// The new session.
    pub session_id: SessionId,
    /// Per source, in the order given.
    pub sources: Vec<SourceReport>,
    /// Blobs copied.
    pub blobs: u64,
    /// Items per signal.
    pub items: SignalCounts,
    /// Requests per signal.
    pub requests: SignalCounts,
    /// Bytes copied.
    pub bytes: u64,
    /// The new session's `metadata.json`.
    pub metadata: SessionMetadata,
}

/// One source as read: its metadata, its annotations, and the writers it
/// becomes.
struct Source {
    metadata: SessionMetadata,
    annotations: Vec<Annotation>,
    /// Its writers (`None`: its blobs without a writer) → the new ids.
    writers: BTreeMap<Option<WriterId>, WriterId>,
}

/// Merges the sources of `config` into a new session (see the module
/// documentation). `now` is the wall clock: the new session's `createdAt`.
pub async fn merge_sessions(
    store: &dyn SessionStore,
    config: &ValidMergeConfig,
    now: Timestamp,
) -> Result<MergeReport, MergeError> {
    let config = config.config();
    let sources = read_sources(store, config).await?;
    match store.read_metadata(&config.into).await {
        Ok(_) => return Err(MergeError::TargetExists(config.into.clone())),
        Err(error) if error.is_not_found() => {}
        Err(error) => return Err(error.into()),
    }
    // No metadata.json, but the id is taken: the files of an interrupted
    // merge (it writes metadata.json last) or capture. They are not
    // deleted here: another merge into the same id may be at work.
    store.create_session(&config.into).await.map_err(|error| match error {
        Error::AlreadyExists(id) => MergeError::TargetIncomplete(id),
        error => error.into(),
    })?;
    tracing::info!(session = %config.into, sources = sources.len(), "Merging sessions.");
    match write_merged(store, config, &sources, now).await {
        Ok(report) => {
            tracing::info!(session = %config.into, blobs = report.blobs, bytes = report.bytes, "Merged the sessions.");
            Ok(report)
        }
        Err(error) => {
            if let Err(cleanup) = store.delete_session(&config.into).await {
                tracing::warn!(
                    session = %config.into,
                    "Could not delete what was written of the merged session: {}",
                    crate::error_chain(&cleanup)
                );
            }
            Err(error)
        }
    }
}

/// Reads and checks every source, and gives each its writers.
async fn read_sources(store: &dyn SessionStore, config: &MergeConfig) -> Result<Vec<Source>, MergeError> {
    let mut sources = Vec::new();
    let mut taken = BTreeSet::new();
    for id in &config.sources {
        let metadata = match store.read_metadata(id).await {
            Ok(metadata) => metadata,
            Err(Error::NotFound(_)) => return Err(MergeError::SourceNotFound(id.clone())),
            Err(error) => return Err(error.into()),
        };
        match metadata.status {
            SessionStatus::Active => return Err(MergeError::SourceActive(id.clone())),
            SessionStatus::Failed if !config.include_failed => return Err(MergeError::SourceFailed(id.clone())),
            SessionStatus::Completed | SessionStatus::Failed => {}
        }
        let annotations = match store.read_annotations(id).await? {
            Some(bytes) => parse_jsonl(id, &bytes)
                .map_err(|error| MergeError::Source { session: id.clone(), message: error.to_string() })?,
            None => Vec::new(),
        };
        let mut originals: BTreeSet<Option<WriterId>> =
            metadata.writers.iter().map(|writer| Some(writer.writer_id.clone())).collect();
        originals.extend(metadata.blobs.iter().map(|blob| blob.key.writer().cloned()));
        if originals.is_empty() {
            originals.insert(None);
        }
        let several = originals.iter().any(Option::is_some);
        let writers = originals
            .into_iter()
            .map(|original| {
                let name = match (&original, several) {
                    (Some(writer), true) => format!("{id}-{writer}"),
                    _ => id.to_string(),
                };
                let writer = unique_writer_id(&name, &mut taken);
                (original, writer)
            })
            .collect();
        sources.push(Source { metadata, annotations, writers });
    }
    Ok(sources)
}

/// A writer id made of `name` (lowercased, every character other than a
/// letter or digit made `-`, cut to fit), with `-2`, `-3`, ... when taken.
fn unique_writer_id(name: &str, taken: &mut BTreeSet<WriterId>) -> WriterId {
    let base = crate::writers::writer_name(name);
    let base = if base.is_empty() { "source".to_owned() } else { base };
    for number in 1_u32.. {
        let suffix = if number == 1 { String::new() } else { format!("-{number}") };
        let mut id = base.clone();
        id.truncate(crate::MAX_WRITER_ID_LEN - suffix.len());
        let id = format!("{}{suffix}", id.trim_end_matches('-'));
        if let Ok(writer) = WriterId::new(&id)
            && taken.insert(writer.clone())
        {
            return writer;
        }
    }
    unreachable!("some suffix is free")
}

/// Copies the blobs, then writes the manifests, the annotations and last
/// `metadata.json` of the new session.
async fn write_merged(
    store: &dyn SessionStore,
    config: &MergeConfig,
    sources: &[Source],
    now: Timestamp,
) -> Result<MergeReport, MergeError> {
    let into = &config.into;
    let mut blobs = Vec::new();
    let mut reports = Vec::new();
    let mut writer_entries = Vec::new();
    for source in sources {
        let id = &source.metadata.session_id;
        let mut copied: BTreeMap<&WriterId, Vec<BlobEntry>> = BTreeMap::new();
        for entry in &source.metadata.blobs {
            // Every blob's writer was given a new id by `read_sources`.
            let Some(writer) = source.writers.get(&entry.key.writer().cloned()) else { continue };
            let key = entry.key.with_writer(Some(writer.clone()));
            copy_blob(store, id, entry, into, &key).await?;
            copied.entry(writer).or_default().push(BlobEntry { key, ..entry.clone() });
        }
        let mut report = SourceReport {
            session_id: id.clone(),
            writers: source.writers.values().cloned().collect(),
            blobs: 0,
            items: SignalCounts::default(),
            requests: SignalCounts::default(),
            bytes: 0,
            phases: source.metadata.phases.len(),
            annotations: source.annotations.len(),
        };
        for (original, writer) in &source.writers {
            let entries = copied.remove(writer).unwrap_or_default();
            let entry = writer_entry(source, original.as_ref(), writer, &entries);
            report.blobs += entry.blobs;
            report.bytes += entry.total_size_bytes;
            for blob in &entries {
                report.items.add(blob.signal, blob.items);
                report.requests.add(blob.signal, blob.records);
            }
            let manifest = WriterManifest {
                format_version: crate::FORMAT_VERSION_WRITERS,
                session_id: into.clone(),
                writer_id: writer.clone(),
                host: entry.host.clone(),
                status: entry.status,
                start_time: entry.start_time,
                end_time: entry.end_time,
                updated_at: now,
                blobs: entries.clone(),
                repaired: entry.repaired,
                source: Some(id.clone()),
            };
            let mut json = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
            json.push(b'\n');
            store
                .write_file(into, &SessionFile::WriterManifest(writer.clone()), json.into(), WriteMode::CreateNew)
                .await?;
            blobs.extend(entries);
            writer_entries.push(entry);
        }
        reports.push(report);
    }
    let (annotations, phases) = labels::carry(into, sources, now)?;
    if !annotations.is_empty() {
        store.write_annotations(into, crate::to_jsonl(&annotations).into()).await?;
    }
    let metadata = merged_metadata(config, sources, blobs, writer_entries, phases, now);
    store.write_metadata(&metadata).await?;
    Ok(MergeReport {
        session_id: into.clone(),
        blobs: metadata.blobs.len() as u64,
        items: metadata.item_counts(),
        requests: metadata.request_counts,
        bytes: metadata.total_size_bytes,
        sources: reports,
        metadata,
    })
}

/// Copies one blob byte for byte, checking its SHA-256 and size against
/// the source's entry before the copy is committed.
async fn copy_blob(
    store: &dyn SessionStore,
    source: &SessionId,
    entry: &BlobEntry,
    into: &SessionId,
    key: &crate::BlobKey,
) -> Result<(), MergeError> {
    let copy_error = |error: Error| MergeError::Copy {
        session: source.clone(),
        key: entry.key.to_string(),
        source: Box::new(error),
    };
    let mut bytes = store.open_blob(source, &entry.key).await.map_err(copy_error)?;
    let mut sink = store.create_blob(into, key).await.map_err(copy_error)?;
    let mut hasher = Sha256::new();
    let mut size = 0_u64;
    while let Some(chunk) = bytes.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(error) => {
                let _ = sink.abort().await;
                return Err(copy_error(error));
            }
        };
        hasher.update(&chunk);
        size += chunk.len() as u64;
        if let Err(error) = sink.write(chunk).await {
            let _ = sink.abort().await;
            return Err(copy_error(error));
        }
    }
    let sha256 = hex::encode(hasher.finalize());
    if sha256 != entry.sha256 || size != entry.compressed_bytes {
        let _ = sink.abort().await;
        return Err(MergeError::DamagedBlob {
            session: source.clone(),
            key: entry.key.to_string(),
            message: format!(
                "{size} bytes with SHA-256 {sha256}, but metadata.json lists {} bytes with SHA-256 {}",
                entry.compressed_bytes, entry.sha256
            ),
        });
    }
    sink.commit().await.map_err(copy_error)
}

/// The figures of one writer of the new session: from the source's entry
/// for the original writer when it has one, else from the source.
fn writer_entry(source: &Source, original: Option<&WriterId>, writer: &WriterId, blobs: &[BlobEntry]) -> WriterEntry {
    let metadata = &source.metadata;
    let known = original.and_then(|original| metadata.writers.iter().find(|entry| &entry.writer_id == original));
    let mut items = SignalCounts::default();
    let mut requests = 0;
    for blob in blobs {
        items.add(blob.signal, blob.items);
        requests += blob.records;
    }
    WriterEntry {
        writer_id: writer.clone(),
        host: known.and_then(|entry| entry.host.clone()),
        status: known.map_or(metadata.status, |entry| entry.status),
        start_time: known.map_or(metadata.start_time, |entry| entry.start_time),
        end_time: known.map_or(metadata.end_time, |entry| entry.end_time),
        first_receive_time: blobs.iter().map(|blob| blob.first_receive_time).min(),
        last_receive_time: blobs.iter().map(|blob| blob.last_receive_time).max(),
        blobs: blobs.len() as u64,
        captured_traces: items.traces,
        captured_metrics: items.metrics,
        captured_logs: items.logs,
        requests,
        total_size_bytes: blobs.iter().map(|blob| blob.compressed_bytes).sum(),
        repaired: known.is_some_and(|entry| entry.repaired),
        source: Some(metadata.session_id.clone()),
    }
}

/// The new session's `metadata.json`.
fn merged_metadata(
    config: &MergeConfig,
    sources: &[Source],
    mut blobs: Vec<BlobEntry>,
    mut writers: Vec<WriterEntry>,
    phases: Vec<crate::PhaseEntry>,
    now: Timestamp,
) -> SessionMetadata {
    let first = &sources[0].metadata;
    let session_type = if sources.iter().all(|source| source.metadata.session_type == first.session_type) {
        first.session_type
    } else {
        SessionType::Capture
    };
    let start = sources.iter().map(|source| source.metadata.start_time).min().unwrap_or(now);
    let end = sources
        .iter()
        .filter_map(|source| {
            source.metadata.end_time.or(source.metadata.blobs.iter().map(|b| b.last_receive_time).max())
        })
        .max()
        .unwrap_or(start);
    let mut metadata = SessionMetadata::new(config.into.clone(), session_type, start, MERGE_CREATOR.to_owned());
    metadata.format_version = crate::FORMAT_VERSION_WRITERS;
    metadata.created_at = Some(now);
    let ids: Vec<&str> = sources.iter().map(|source| source.metadata.session_id.as_str()).collect();
    metadata.description =
        Some(config.description.clone().unwrap_or_else(|| format!("merged from {}", ids.join(", "))));
    let diagnostic: BTreeSet<Option<&String>> =
        sources.iter().map(|source| source.metadata.diagnostic_session_id.as_ref()).collect();
    if let [Some(diagnostic)] = diagnostic.into_iter().collect::<Vec<_>>()[..] {
        metadata.diagnostic_session_id = Some(diagnostic.clone());
    }
    let flags: BTreeSet<&String> = sources.iter().flat_map(|source| &source.metadata.enabled_flags).collect();
    metadata.enabled_flags = flags.into_iter().cloned().collect();
    let records: Vec<serde_json::Value> = sources
        .iter()
        .map(|source| {
            serde_json::json!({
                "sessionId": source.metadata.session_id,
                "sessionType": source.metadata.session_type,
                "status": source.metadata.status,
                "contentHash": source.metadata.content_hash,
                "writers": source.writers.values().collect::<Vec<_>>(),
            })
        })
        .collect();
    metadata.parameters.insert("sources".to_owned(), serde_json::Value::Array(records));
    blobs.sort_by(|a, b| a.first_receive_time.cmp(&b.first_receive_time).then_with(|| a.key.cmp(&b.key)));
    metadata.blobs = blobs;
    writers.sort_by(|a, b| a.writer_id.cmp(&b.writer_id));
    metadata.writers = writers;
    metadata.phases = phases;
    let failed = sources.iter().any(|source| source.metadata.status == SessionStatus::Failed);
    metadata.finish(end, if failed { SessionStatus::Failed } else { SessionStatus::Completed });
    metadata
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(sources: &[&str], into: &str) -> MergeConfig {
        MergeConfig {
            sources: sources.iter().map(|id| id.parse().unwrap()).collect(),
            into: into.parse().unwrap(),
            description: None,
            include_failed: false,
        }
    }

    #[test]
    fn a_merge_needs_two_distinct_sources_and_a_new_id() {
        let message = |config: MergeConfig| config.validate().unwrap_err().to_string();
        assert_eq!(message(config(&["a"], "c")), "a merge needs at least two source sessions, got only a");
        assert_eq!(message(config(&[], "c")), "a merge needs at least two source sessions, got none");
        assert_eq!(message(config(&["a", "b", "a"], "c")), "source session a is given twice");
        assert_eq!(message(config(&["a", "b"], "b")), "the new session b is one of the sources: give a new session id");
        assert!(config(&["a", "b"], "c").validate().is_ok());
    }

    #[test]
    fn the_config_is_camel_case_and_strict() {
        let parsed: MergeConfig =
            serde_json::from_str(r#"{"sources": ["a", "b"], "into": "c", "includeFailed": true}"#).unwrap();
        assert!(parsed.include_failed);
        let error = serde_json::from_str::<MergeConfig>(r#"{"sources": ["a", "b"], "into": "c", "to": "d"}"#)
            .unwrap_err()
            .to_string();
        assert!(error.contains("unknown field `to`"), "{error}");
        let error =
            serde_json::from_str::<MergeConfig>(r#"{"sources": ["a", "../b"], "into": "c"}"#).unwrap_err().to_string();
        assert!(error.contains("invalid session id"), "{error}");
    }

    #[test]
    fn writer_ids_come_from_session_ids_and_are_unique() {
        let mut taken = BTreeSet::new();
        let mut id = |name: &str| unique_writer_id(name, &mut taken).to_string();
        assert_eq!(id("Seed_Payment.Failure-1"), "seed-payment-failure-1");
        assert_eq!(id("seed-payment-failure-1"), "seed-payment-failure-1-2");
        assert_eq!(id("seed.payment.failure.1"), "seed-payment-failure-1-3");
        assert_eq!(id("..."), "source");
        let long = "x".repeat(100);
        assert_eq!(id(&long), "x".repeat(48));
        assert_eq!(id(&long), format!("{}-2", "x".repeat(46)));
        assert_eq!(id("a-b-----"), "a-b");
    }
}
