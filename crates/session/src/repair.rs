//! Finishing a session that its writer left behind: `otlp-tape sessions
//! repair`.
//!
//! A writer that stops without finishing (a crash, SIGKILL) leaves
//! `metadata.json` with status `active` and only the blobs committed before
//! it was written, committed blobs that no metadata lists yet, and the blobs
//! it had open as partial blobs in the store. [`repair_session`] commits
//! the complete gzip members of each partial blob, recounts every committed
//! blob and writes the metadata of a finished session.

use std::collections::BTreeSet;
use std::fmt;

use futures::StreamExt;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::blob::{BlobDecoder, BlobSummary};
use crate::salvage::salvage_blob;
use crate::{
    BlobEntry, BlobKey, Error, PartialBlob, SessionId, SessionMetadata, SessionStatus, SessionStore, SessionType,
    SignalCounts, Timestamp, WriterId,
};

/// What [`repair_session`] did to a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RepairReport {
    /// The session.
    pub session_id: SessionId,
    /// When the repair ran.
    pub repaired_at: Timestamp,
    /// Whether anything in the store changed: a blob committed, a partial
    /// blob removed or `metadata.json` rewritten.
    pub changed: bool,
    /// The status before the repair.
    pub status_before: SessionStatus,
    /// Why `metadata.json` could not be read, when the repair rebuilt it
    /// from the blobs (as a `capture` session starting at its first record).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rebuilt_metadata: Option<String>,
    /// The status after it: `completed`, or `failed` for a failed session.
    pub status_after: SessionStatus,
    /// The end time after the repair.
    pub end_time: Option<Timestamp>,
    /// Every partial blob found, and what became of it.
    pub partial_blobs: Vec<RecoveredBlob>,
    /// Committed blobs that `metadata.json` did not list, now listed
    /// (salvaged partial blobs are not repeated here).
    pub newly_listed: Vec<BlobKey>,
    /// Blobs listed in `metadata.json` that are not stored: dropped from
    /// the list.
    pub missing: Vec<BlobKey>,
    /// Committed blobs that are damaged. They are kept and listed, counting
    /// the records before the damage.
    pub damaged: Vec<DamagedBlob>,
    /// The totals `metadata.json` gave before the repair (an active
    /// session's may lag behind its blobs).
    pub before: RepairTotals,
    /// The totals after it.
    pub after: RepairTotals,
    /// For `sessions repair --writer`: the writer repaired. Its manifest is
    /// what was repaired: the statuses and totals above are the writer's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub writer: Option<WriterId>,
    /// For `sessions repair --writer`: what sealing the session did after
    /// the repair (`None` when it was not tried).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seal: Option<WriterRepairSeal>,
}

/// What sealing did after a writer's repair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WriterRepairSeal {
    /// The session's status afterwards: `completed` or `failed` when it is
    /// sealed, `active` when writers are active.
    pub session_status: SessionStatus,
    /// Whether this repair sealed it (it may have been sealed before).
    pub sealed_now: bool,
    /// The writers still active, which keep the session active.
    pub active_writers: Vec<WriterId>,
}

/// What became of one partial blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecoveredBlob {
    /// The key it was being written under.
    pub key: BlobKey,
    /// The store's name for the partial bytes.
    pub name: String,
    /// What was done with it.
    pub outcome: PartialOutcome,
    /// Records kept.
    pub records: u64,
    /// Items in the records kept.
    pub items: u64,
    /// Bytes committed.
    pub kept_bytes: u64,
    /// Bytes of the partial blob that were not kept.
    pub dropped_bytes: u64,
    /// Why bytes were dropped, when they were.
    pub problem: Option<String>,
}

/// What [`repair_session`] did with a partial blob. In every case the
/// partial blob is removed afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum PartialOutcome {
    /// Its complete gzip members were committed under its key.
    Committed,
    /// A blob with its key was committed already: the partial copy is
    /// left over from a commit that was interrupted after it took effect.
    AlreadyCommitted,
    /// It held no complete record.
    NothingToKeep,
}

/// A committed blob that does not read to its end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DamagedBlob {
    /// The blob's key.
    pub key: BlobKey,
    /// Records before the damage, which are counted.
    pub readable_records: u64,
    /// Where and how it is damaged.
    pub problem: String,
}

/// A session's totals as its metadata gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RepairTotals {
    /// Blobs listed.
    pub blobs: usize,
    /// Records (requests) over all signals.
    pub records: u64,
    /// Items per signal: spans, metric data points, log records.
    pub items: SignalCounts,
    /// Compressed bytes of the listed blobs.
    pub bytes: u64,
}

impl RepairTotals {
    /// The totals of a blob list.
    pub(crate) fn of_blobs(blobs: &[BlobEntry]) -> Self {
        let mut items = SignalCounts::default();
        for blob in blobs {
            items.add(blob.signal, blob.items);
        }
        RepairTotals {
            blobs: blobs.len(),
            records: blobs.iter().map(|blob| blob.records).sum(),
            items,
            bytes: blobs.iter().map(|blob| blob.compressed_bytes).sum(),
        }
    }

    fn of(metadata: &SessionMetadata) -> Self {
        RepairTotals {
            blobs: metadata.blobs.len(),
            records: metadata.request_counts.total(),
            items: metadata.item_counts(),
            bytes: metadata.total_size_bytes,
        }
    }
}

/// Finishes session `id` of `store` from what its writer left:
///
/// 1. every partial blob ([`SessionStore::list_partial_blobs`]) is read and
///    salvaged ([`salvage_blob`]); when it holds a complete record and no
///    committed blob has its key, its complete gzip members are committed
///    under its key; then it is removed, whatever it held;
/// 2. every committed blob is read again and listed with its counts, sizes
///    and SHA-256 as read (a damaged blob is kept, with the records before
///    the damage, and reported); blobs already listed keep their place and
///    the others follow in blob id order;
/// 3. the totals and content hash are recomputed, the status becomes
///    `completed` (a `failed` session stays `failed`), the end time becomes
///    the last record's receive time (the start time without records, an
///    existing later end time is kept), and `metadata.json` is written.
///
/// A session that is not `active` and has no partial blob and no unlisted
/// blob is left as it is, unread: checking its blobs (and finding listed
/// blobs that are missing) is `sessions verify`'s job. Repairing twice
/// changes nothing the second time.
///
/// The session's `metadata.json` must exist: it holds the session's type
/// and start time, which nothing else does.
pub async fn repair_session(store: &dyn SessionStore, id: &SessionId, now: Timestamp) -> Result<RepairReport, Error> {
    let (metadata, rebuilt_metadata) = read_metadata(store, id).await?;
    let partials = store.list_partial_blobs(id).await?;
    let stored: BTreeSet<BlobKey> = store.list_blobs(id).await?.into_iter().collect();
    let listed: BTreeSet<BlobKey> = metadata.blobs.iter().map(|blob| blob.key.clone()).collect();
    let mut report = RepairReport {
        session_id: id.clone(),
        repaired_at: now,
        changed: false,
        status_before: metadata.status,
        rebuilt_metadata,
        status_after: metadata.status,
        end_time: metadata.end_time,
        partial_blobs: Vec::new(),
        newly_listed: Vec::new(),
        missing: Vec::new(),
        damaged: Vec::new(),
        before: RepairTotals::of(&metadata),
        after: RepairTotals::of(&metadata),
        writer: None,
        seal: None,
    };
    if metadata.status != SessionStatus::Active && partials.is_empty() && stored.is_subset(&listed) {
        return Ok(report);
    }
    if metadata.has_writers() {
        return Err(several_writers(store, id).await);
    }

    let blobs = relist(store, id, &partials, stored, &metadata.blobs, |_| true, &mut report).await?;

    let mut repaired = metadata.clone();
    repaired.blobs = blobs;
    let last_record = repaired.blobs.iter().filter(|blob| blob.records > 0).map(|blob| blob.last_receive_time).max();
    let end_time = last_record.unwrap_or(repaired.start_time).max(metadata.end_time.unwrap_or_default());
    let status =
        if metadata.status == SessionStatus::Failed { SessionStatus::Failed } else { SessionStatus::Completed };
    repaired.finish(end_time, status);
    if repaired != metadata {
        store.write_metadata(&repaired).await?;
    }
    report.changed = !report.partial_blobs.is_empty() || repaired != metadata;
    report.status_after = repaired.status;
    report.end_time = repaired.end_time;
    report.after = RepairTotals::of(&repaired);
    Ok(report)
}

/// Why a session with several writers is not repaired as a whole: each
/// writer that stopped without finishing is repaired by itself, and a
/// session whose writers have all stopped is sealed.
async fn several_writers(store: &dyn SessionStore, id: &SessionId) -> Error {
    let manifests = match crate::read_manifests(store, id).await {
        Ok(manifests) => manifests,
        Err(error) => return error,
    };
    let active: Vec<String> = manifests
        .iter()
        .filter(|manifest| manifest.status == SessionStatus::Active)
        .map(|manifest| manifest.writer_id.to_string())
        .collect();
    let reason = match active.first() {
        Some(first) => format!(
            "it has several writers, and each writer that stopped without finishing is repaired by itself: \
             `otlp-tape sessions repair {id} --writer {first}` (active writers: {})",
            active.join(", ")
        ),
        None => format!("it has several writers and none is active: `otlp-tape sessions seal {id}` finishes it"),
    };
    Error::NotRepairable { session: id.clone(), reason }
}

/// Reads the metadata, telling a session without `metadata.json` from one
/// that does not exist. A `metadata.json` that cannot be read (empty or
/// cut short, as a full disk could leave it before otlp-tape wrote it
/// atomically) is rebuilt from the blobs: an `active` capture session
/// starting at the first record, with why it was rebuilt.
async fn read_metadata(store: &dyn SessionStore, id: &SessionId) -> Result<(SessionMetadata, Option<String>), Error> {
    match store.read_metadata(id).await {
        Err(error @ Error::Metadata { .. }) => {
            let problem = crate::error_chain(&error);
            let committed = store.list_blobs(id).await?;
            let partials = store.list_partial_blobs(id).await?;
            let first = committed
                .iter()
                .chain(partials.iter().map(|partial| &partial.key))
                .map(BlobKey::first_record_time)
                .min();
            let Some(start_time) = first else {
                return Err(Error::backend(
                    format!("cannot repair session {id}"),
                    format!("{problem}, and the session holds no blob to rebuild it from"),
                ));
            };
            let metadata = SessionMetadata::new(
                id.clone(),
                SessionType::Capture,
                start_time,
                "otlp-tape sessions repair".to_owned(),
            );
            Ok((metadata, Some(problem)))
        }
        Ok(metadata) => Ok((metadata, None)),
        Err(Error::NotFound(_)) => {
            // Fails with `NotFound` when nothing is stored under the id.
            store.list_blobs(id).await?;
            Err(Error::backend(
                format!("cannot repair session {id}"),
                "it has no metadata.json: repair needs the session's type and start time, which a writer \
                 records there when it announces the session as it starts",
            ))
        }
        Err(error) => Err(error),
    }
}

/// What both repairs do after their checks: salvages `partials`, then
/// reads every blob of `listed` that is still stored (in that order), and
/// every stored blob it does not list, in blob-id order (the order a writer
/// made them in), keeping only the keys `keep` takes. Fills the report's
/// partial blobs, damaged blobs, newly listed and missing keys; returns
/// the blob entries read.
pub(crate) async fn relist(
    store: &dyn SessionStore,
    id: &SessionId,
    partials: &[PartialBlob],
    stored: BTreeSet<BlobKey>,
    listed: &[BlobEntry],
    keep: impl Fn(&BlobKey) -> bool,
    report: &mut RepairReport,
) -> Result<Vec<BlobEntry>, Error> {
    let mut committed = stored;
    for partial in partials {
        let recovered = match recover(store, id, partial, &committed).await {
            Ok(recovered) => recovered,
            // Gone since it was listed: removed with another one.
            Err(Error::BlobNotFound { .. }) => continue,
            Err(error) => return Err(error),
        };
        if recovered.outcome == PartialOutcome::Committed {
            committed.insert(partial.key.clone());
        }
        report.partial_blobs.push(recovered);
    }

    let stored: BTreeSet<BlobKey> = store.list_blobs(id).await?.into_iter().filter(|key| keep(key)).collect();
    let listed_keys: BTreeSet<&BlobKey> = listed.iter().map(|blob| &blob.key).collect();
    let mut new_keys: Vec<&BlobKey> = stored.iter().filter(|key| !listed_keys.contains(key)).collect();
    new_keys.sort_by(|a, b| {
        (a.blob_id().len(), a.blob_id(), a.to_string()).cmp(&(b.blob_id().len(), b.blob_id(), b.to_string()))
    });
    let order = listed.iter().map(|blob| &blob.key).filter(|key| stored.contains(*key)).chain(new_keys.iter().copied());
    let mut blobs = Vec::with_capacity(stored.len());
    for key in order {
        let (entry, damage) = scan_blob(store, id, key).await?;
        if let Some(problem) = damage {
            report.damaged.push(DamagedBlob { key: key.clone(), readable_records: entry.records, problem });
        }
        blobs.push(entry);
    }
    let salvaged: BTreeSet<&BlobKey> = report
        .partial_blobs
        .iter()
        .filter(|partial| partial.outcome == PartialOutcome::Committed)
        .map(|partial| &partial.key)
        .collect();
    report.newly_listed = new_keys.iter().filter(|key| !salvaged.contains(**key)).map(|key| (*key).clone()).collect();
    report.missing = listed.iter().map(|blob| blob.key.clone()).filter(|key| !stored.contains(key)).collect();
    Ok(blobs)
}

/// Salvages one partial blob, commits what it holds when its key is free,
/// and removes it.
pub(crate) async fn recover(
    store: &dyn SessionStore,
    id: &SessionId,
    partial: &PartialBlob,
    committed: &BTreeSet<BlobKey>,
) -> Result<RecoveredBlob, Error> {
    let bytes = store.read_partial_blob(id, partial).await?;
    let salvaged = salvage_blob(&bytes);
    let mut recovered = RecoveredBlob {
        key: partial.key.clone(),
        name: partial.name.clone(),
        outcome: PartialOutcome::NothingToKeep,
        records: 0,
        items: 0,
        kept_bytes: 0,
        dropped_bytes: bytes.len() as u64,
        problem: salvaged.problem.clone(),
    };
    if committed.contains(&partial.key) {
        recovered.outcome = PartialOutcome::AlreadyCommitted;
    } else if salvaged.summary.records > 0 {
        let mut sink = store.create_blob(id, &partial.key).await?;
        sink.write(bytes.slice(..salvaged.valid_len)).await?;
        sink.commit().await?;
        let BlobSummary { records, items, compressed_bytes, .. } = salvaged.summary;
        recovered = RecoveredBlob {
            outcome: PartialOutcome::Committed,
            records,
            items,
            kept_bytes: compressed_bytes,
            dropped_bytes: salvaged.dropped_bytes as u64,
            ..recovered
        };
    }
    store.remove_partial_blob(id, partial).await?;
    Ok(recovered)
}

/// Reads a committed blob to its end: its entry as read, and the damage
/// found, if any. The entry of a damaged blob counts the records before
/// the damage; its size and hash are those of the stored bytes.
pub(crate) async fn scan_blob(
    store: &dyn SessionStore,
    id: &SessionId,
    key: &BlobKey,
) -> Result<(BlobEntry, Option<String>), Error> {
    let mut bytes = store.open_blob(id, key).await?;
    let mut decoder = BlobDecoder::new();
    let mut hasher = Sha256::new();
    let mut summary = BlobSummary {
        first_receive_time: key.first_record_time(),
        last_receive_time: key.first_record_time(),
        ..BlobSummary::default()
    };
    let mut damage = None;
    let count = |decoder: &mut BlobDecoder, summary: &mut BlobSummary| {
        while let Some(record) = decoder.next_record() {
            if summary.records == 0 {
                summary.first_receive_time = record.receive_time();
            }
            summary.last_receive_time = record.receive_time();
            summary.records += 1;
            summary.items += record.item_count;
        }
    };
    while let Some(chunk) = bytes.next().await {
        let chunk = chunk?;
        hasher.update(&chunk);
        summary.compressed_bytes += chunk.len() as u64;
        // After damage the decoder ignores what it is fed; the rest is hashed.
        if let Err(error) = decoder.feed(&chunk) {
            damage.get_or_insert(error);
        }
        count(&mut decoder, &mut summary);
    }
    if damage.is_none()
        && let Err(error) = decoder.finish()
    {
        damage = Some(error);
    }
    count(&mut decoder, &mut summary);
    summary.uncompressed_bytes = decoder.uncompressed_offset();
    summary.sha256 = hex::encode(hasher.finalize());
    Ok((BlobEntry::new(key.clone(), summary), damage.map(|error| error.to_string())))
}

impl fmt::Display for RepairReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = &self.session_id;
        let what = match &self.writer {
            Some(writer) => format!("writer {writer} of session {id}"),
            None => format!("session {id}"),
        };
        if !self.changed {
            let subject = match &self.writer {
                Some(writer) => format!("Writer {writer} of session {id}"),
                None => format!("Session {id}"),
            };
            writeln!(f, "{subject} is {}, with no partial or unlisted blobs: nothing to repair.", self.status_after)?;
            return self.fmt_seal(f);
        }
        write!(f, "Repaired {what}: {} -> {}", self.status_before, self.status_after)?;
        match self.end_time {
            Some(end) => writeln!(f, ", ended at {end}.")?,
            None => writeln!(f, ".")?,
        }
        if let Some(problem) = &self.rebuilt_metadata {
            writeln!(
                f,
                "  rebuilt metadata.json from the blobs, as a capture session starting at its first record ({problem})"
            )?;
        }
        for partial in &self.partial_blobs {
            let key = &partial.key;
            let dropped = partial.dropped_bytes;
            match partial.outcome {
                PartialOutcome::Committed => {
                    write!(
                        f,
                        "  recovered {key}: {} records, {} items, {} bytes kept",
                        partial.records, partial.items, partial.kept_bytes
                    )?;
                    match &partial.problem {
                        Some(problem) => writeln!(f, "; {dropped} bytes dropped: {problem}")?,
                        None if dropped > 0 => writeln!(f, "; {dropped} bytes dropped")?,
                        None => writeln!(f)?,
                    }
                }
                PartialOutcome::AlreadyCommitted => writeln!(
                    f,
                    "  removed the partial copy of {key} ({dropped} bytes): the blob was committed already"
                )?,
                PartialOutcome::NothingToKeep if dropped == 0 => writeln!(f, "  removed empty partial blob {key}")?,
                PartialOutcome::NothingToKeep => {
                    write!(f, "  removed partial blob {key}: no complete record in its {dropped} bytes")?;
                    match &partial.problem {
                        Some(problem) => writeln!(f, " ({problem})")?,
                        None => writeln!(f)?,
                    }
                }
            }
        }
        if !self.newly_listed.is_empty() {
            writeln!(f, "  listed {} committed blobs that metadata.json did not list", self.newly_listed.len())?;
        }
        for damaged in &self.damaged {
            writeln!(
                f,
                "  blob {} is damaged; its {} readable records are counted: {}",
                damaged.key, damaged.readable_records, damaged.problem
            )?;
        }
        for key in &self.missing {
            writeln!(f, "  blob {key} was listed in metadata.json but is not stored: no longer listed")?;
        }
        writeln!(f, "Before: {}", self.before)?;
        writeln!(f, "After:  {}", self.after)?;
        self.fmt_seal(f)
    }
}

impl RepairReport {
    /// The line about sealing after a writer's repair.
    fn fmt_seal(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = &self.session_id;
        match &self.seal {
            None => Ok(()),
            Some(seal) if seal.sealed_now => writeln!(f, "Sealed session {id}: {}.", seal.session_status),
            Some(seal) if seal.active_writers.is_empty() => writeln!(f, "Session {id} is {}.", seal.session_status),
            Some(seal) => {
                let active: Vec<String> = seal.active_writers.iter().map(ToString::to_string).collect();
                writeln!(f, "Session {id} stays active: writers still active: {}.", active.join(", "))
            }
        }
    }
}

impl fmt::Display for RepairTotals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} blobs, {} requests ({} spans, {} data points, {} log records), {} bytes",
            self.blobs, self.records, self.items.traces, self.items.metrics, self.items.logs, self.bytes
        )
    }
}
