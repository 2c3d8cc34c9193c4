//! Sessions with several writers: `capture --join` processes (on one host
//! or many) recording into one session on a shared store, and sessions
//! made by `sessions merge`, whose sources are its writers.
//!
//! Each writer has a [`WriterId`], which is part of its blob keys (so no
//! writer can overwrite another's blob) and names its manifest,
//! `writers/<writer-id>.json` ([`WriterManifest`]): created when the writer
//! joins (create-only, so two writers cannot share an id), replaced by the
//! writer as it commits blobs and when it stops. The session is `active`
//! while any writer is; [`seal_session`] merges the manifests into
//! `metadata.json` once every writer has stopped, exactly once even when
//! writers stop together (the seal marker, `writers/.seal`, is created
//! create-only by the one that merges). See `docs/FORMAT.md` section 11.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{BlobEntry, FORMAT_VERSION_WRITERS, SessionId, SessionMetadata, SessionStatus, Timestamp};

pub use crate::join::{JOIN_SEAL_WAIT, join_session, read_manifests};
pub use crate::repair_writer::{WriterLiveness, repair_writer};
pub use crate::seal::seal_session;

/// How often a running writer rewrites its manifest (its heartbeat, the
/// `updatedAt` stamp) even when it commits nothing: `capture --join`'s
/// default `--heartbeat`.
pub const WRITER_HEARTBEAT: Duration = Duration::from_secs(10);

/// How long after its last manifest write a writer whose manifest is
/// `active` is taken to be running: three heartbeats. `sessions repair
/// --writer` refuses a writer seen within it (unless `--force`, or it holds
/// the writer's capture lock on its host).
pub const WRITER_STALE_AFTER: Duration = Duration::from_secs(30);

/// The longest writer id accepted.
pub const MAX_WRITER_ID_LEN: usize = 48;

/// The id of one writer of a session: 1 to 48 lowercase ASCII letters,
/// digits and `-`, starting and ending with a letter or digit (a host name
/// lowercased, with a suffix, fits).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WriterId(String);

/// Why a string is not a valid writer id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid writer id {id:?}: {reason}")]
pub struct InvalidWriterId {
    /// The refused id.
    pub id: String,
    /// What rule it broke.
    pub reason: &'static str,
}

impl WriterId {
    /// The id, checked.
    pub fn new(id: &str) -> Result<Self, InvalidWriterId> {
        let refuse = |reason| InvalidWriterId { id: id.to_owned(), reason };
        if id.is_empty() || id.len() > MAX_WRITER_ID_LEN {
            return Err(refuse("a writer id is 1 to 48 characters"));
        }
        if !id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
            return Err(refuse("a writer id holds lowercase letters, digits and '-' only"));
        }
        if id.starts_with('-') || id.ends_with('-') {
            return Err(refuse("a writer id starts and ends with a letter or digit"));
        }
        Ok(WriterId(id.to_owned()))
    }

    /// The default id of a writer on `host`: the host name lowercased, every
    /// other character than a letter or digit made `-`, cut to leave room,
    /// then `-` and `suffix` (random, from the caller: this crate does no
    /// I/O). A host name with nothing usable gives `writer-<suffix>`.
    pub fn for_host(host: &str, suffix: &str) -> Result<Self, InvalidWriterId> {
        let mut name = writer_name(host);
        let room = MAX_WRITER_ID_LEN.saturating_sub(suffix.len() + 1);
        name.truncate(room);
        let name = name.trim_end_matches('-');
        let name = if name.is_empty() { "writer" } else { name };
        WriterId::new(&format!("{name}-{suffix}"))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `text` made fit for a writer id: lowercased, every character other
/// than a letter or digit made `-`, runs of `-` made one, none at either
/// end (not cut to length; empty when nothing is usable).
pub(crate) fn writer_name(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
        .collect::<String>()
        .split('-')
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

impl fmt::Display for WriterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl FromStr for WriterId {
    type Err = InvalidWriterId;

    fn from_str(id: &str) -> Result<Self, Self::Err> {
        WriterId::new(id)
    }
}

tape_otlp::serde_as_text!(WriterId: Serialize, Deserialize);

/// A small file of a session besides `metadata.json`, `annotations.jsonl`
/// and `timeline.json`, kept by sessions with several writers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SessionFile {
    /// `writers/<writer-id>.json`: one writer's [`WriterManifest`].
    WriterManifest(WriterId),
    /// `writers/.seal`: created (create-only) by the one that merges the
    /// manifests into `metadata.json`; holds a [`SealMarker`].
    Seal,
}

impl SessionFile {
    /// The file's path relative to the session: `writers/<id>.json` or
    /// `writers/.seal`.
    pub fn path(&self) -> String {
        match self {
            SessionFile::WriterManifest(writer) => format!("writers/{writer}.json"),
            SessionFile::Seal => "writers/.seal".to_owned(),
        }
    }
}

impl fmt::Display for SessionFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.path())
    }
}

/// How [`SessionStore::write_file`](crate::SessionStore::write_file) writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Only when nothing is stored under the name: fails with
    /// [`Error::FileExists`](crate::Error::FileExists) otherwise, atomically where the store can
    /// (a local `O_EXCL` create or link; S3 `If-None-Match: *`).
    CreateNew,
    /// Replaces whatever is there, whole or not at all.
    Replace,
}

/// One writer's manifest, `writers/<writer-id>.json`: what it has written
/// and whether it is still writing. camelCase JSON, like `metadata.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WriterManifest {
    /// The session format version of the blobs (that of `metadata.json`).
    pub format_version: u32,
    /// The session.
    pub session_id: SessionId,
    /// The writer.
    pub writer_id: WriterId,
    /// The host the writer ran on, as it knew its name, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// `active` while the writer writes (or when it crashed), `completed`
    /// when it stopped, `failed` when it stopped on an error.
    pub status: SessionStatus,
    /// When the writer joined, by its own wall clock.
    pub start_time: Timestamp,
    /// When the writer stopped; absent while active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<Timestamp>,
    /// When the manifest was last written, by the writer's clock.
    pub updated_at: Timestamp,
    /// The writer's committed blobs, in the order it wrote them; every key
    /// carries this writer's id.
    pub blobs: Vec<BlobEntry>,
    /// Whether `sessions repair --writer` finished this manifest (the
    /// writer stopped without finishing it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub repaired: bool,
    /// For a session made by `sessions merge`: the source session this
    /// writer's blobs were copied from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SessionId>,
}

/// One writer's figures in a sealed session's `metadata.json`
/// (`writers`), from its manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WriterEntry {
    /// The writer.
    pub writer_id: WriterId,
    /// Its host, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// How it stopped: `completed`, or `failed`.
    pub status: SessionStatus,
    /// When it joined.
    pub start_time: Timestamp,
    /// When it stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<Timestamp>,
    /// Receive time of its first record, if it wrote any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_receive_time: Option<Timestamp>,
    /// Receive time of its last record, if it wrote any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_receive_time: Option<Timestamp>,
    /// Its blobs.
    pub blobs: u64,
    /// Spans it wrote.
    pub captured_traces: u64,
    /// Metric data points it wrote.
    pub captured_metrics: u64,
    /// Log records it wrote.
    pub captured_logs: u64,
    /// Its requests (records) over all signals.
    pub requests: u64,
    /// Bytes of its blobs, compressed.
    pub total_size_bytes: u64,
    /// Whether its manifest was finished by a repair.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub repaired: bool,
    /// For a merged session: its source session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SessionId>,
}

/// The contents of `writers/.seal`: who sealed the session, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SealMarker {
    /// The writer that sealed it, or `None` for `sessions seal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writer_id: Option<WriterId>,
    /// When the marker was created.
    pub created_at: Timestamp,
}

/// What [`join_session`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct Joined {
    /// The session's metadata (`active`) as it stands.
    pub metadata: SessionMetadata,
    /// Whether this writer created the session (it was not there).
    pub created: bool,
    /// The writer's manifest as created.
    pub manifest: WriterManifest,
}

/// What [`seal_session`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum SealOutcome {
    /// It merged the manifests and wrote `metadata.json`, `completed`.
    Sealed(SessionMetadata),
    /// The session was sealed already (by another writer or an earlier
    /// `sessions seal`): its metadata.
    AlreadySealed(SessionMetadata),
    /// Writers are still active (or crashed, and need `sessions repair
    /// --writer`): nothing was changed. The last to stop seals it.
    WritersActive(Vec<WriterId>),
}

/// How [`seal_session`] behaves when another process holds the seal marker
/// and has not finished the metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealOptions {
    /// How long to wait for another sealer to finish (or give the marker
    /// up) before going on as if it had crashed.
    pub wait: Duration,
    /// Who seals: a writer as it stops, or `None` for `sessions seal`.
    pub by_writer: bool,
}

impl SealOptions {
    /// How long a writer waits for another sealer by default.
    pub const DEFAULT_WAIT: Duration = Duration::from_secs(30);

    /// What a writer uses as it stops: waits [`SealOptions::DEFAULT_WAIT`].
    pub fn for_writer() -> Self {
        SealOptions { wait: Self::DEFAULT_WAIT, by_writer: true }
    }
}

impl WriterManifest {
    /// The manifest of a writer that starts `now`: `active`, no blobs yet.
    pub fn started(id: &SessionId, writer: &WriterId, host: Option<String>, now: Timestamp) -> Self {
        WriterManifest {
            format_version: FORMAT_VERSION_WRITERS,
            session_id: id.clone(),
            writer_id: writer.clone(),
            host,
            status: SessionStatus::Active,
            start_time: now,
            end_time: None,
            updated_at: now,
            blobs: Vec::new(),
            repaired: false,
            source: None,
        }
    }

    /// The manifest as pretty-printed JSON with a final newline.
    pub fn to_json(&self) -> Vec<u8> {
        let mut json = serde_json::to_vec_pretty(self).unwrap_or_default();
        json.push(b'\n');
        json
    }

    /// The writer's figures for `metadata.json`'s `writers`.
    pub fn entry(&self) -> WriterEntry {
        let mut entry = WriterEntry {
            writer_id: self.writer_id.clone(),
            host: self.host.clone(),
            status: self.status,
            start_time: self.start_time,
            end_time: self.end_time,
            first_receive_time: self.blobs.iter().map(|blob| blob.first_receive_time).min(),
            last_receive_time: self.blobs.iter().map(|blob| blob.last_receive_time).max(),
            blobs: self.blobs.len() as u64,
            captured_traces: 0,
            captured_metrics: 0,
            captured_logs: 0,
            requests: 0,
            total_size_bytes: 0,
            repaired: self.repaired,
            source: self.source.clone(),
        };
        for blob in &self.blobs {
            match blob.signal {
                tape_otlp::Signal::Traces => entry.captured_traces += blob.items,
                tape_otlp::Signal::Metrics => entry.captured_metrics += blob.items,
                tape_otlp::Signal::Logs => entry.captured_logs += blob.items,
            }
            entry.requests += blob.records;
            entry.total_size_bytes += blob.compressed_bytes;
        }
        entry
    }
}
