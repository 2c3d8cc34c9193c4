//! Repairing one writer of a session with several writers: `otlp-tape
//! sessions repair S --writer W` (`docs/FORMAT.md` section 11).

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use tracing::{info, warn};

use crate::join::parse_manifest;
use crate::repair::relist;
use crate::{
    BlobKey, Error, RepairReport, RepairTotals, SealOptions, SealOutcome, SessionFile, SessionId, SessionStatus,
    SessionStore, Timestamp, WriteMode, WriterId, WriterManifest, WriterRepairSeal, seal_session,
};

/// What the caller of [`repair_writer`] knows of whether the writer still
/// runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriterLiveness {
    /// It has stopped: the caller holds the writer's capture lock on its
    /// host (spool recovery, a repair on that host), or the operator says
    /// so (`--force`).
    Stopped,
    /// Not known (the repair runs on another host): a writer whose manifest
    /// is `active` and was written within `stale_after` before `now` is
    /// taken to be running, and refused with [`Error::WriterLive`].
    Unknown {
        /// The staleness window ([`WRITER_STALE_AFTER`](crate::WRITER_STALE_AFTER) by default).
        stale_after: Duration,
    },
}

/// Repairs one writer of a session that stopped without finishing (a crash,
/// SIGKILL): salvages its partial blobs (those whose key carries its id),
/// lists its committed blobs that its manifest misses (in blob id order,
/// after those it lists), drops listed blobs that are not stored, and
/// marks its manifest `completed` (a `failed` one stays `failed`) and
/// `repaired`, ending at its last record (or a later end it gave). The
/// other writers' blobs and manifests are not touched. Then seals the
/// session when no writer is active any more (waiting for another sealer
/// as `sessions seal` does), which the report's `seal` tells.
///
/// A writer that finished (its manifest is not `active`) with nothing left
/// behind is not changed. `now` stamps the manifest and the report, and
/// judges `liveness`: a writer that may still run and whose manifest was
/// written (its heartbeat) within the staleness window is refused with
/// [`Error::WriterLive`], so that no session is sealed under a writer that
/// still acknowledges data.
pub async fn repair_writer(
    store: &dyn SessionStore,
    id: &SessionId,
    writer: &WriterId,
    now: Timestamp,
    liveness: WriterLiveness,
) -> Result<RepairReport, Error> {
    let refuse = |reason: String| Error::NotRepairable { session: id.clone(), reason };
    let metadata = store.read_metadata(id).await?;
    if !metadata.has_writers() {
        return Err(refuse(format!(
            "it has a single writer, and no writer {writer}: `otlp-tape sessions repair {id}` repairs it"
        )));
    }
    let file = SessionFile::WriterManifest(writer.clone());
    let mine = |key: &BlobKey| key.writer() == Some(writer);
    let partials: Vec<_> =
        store.list_partial_blobs(id).await?.into_iter().filter(|partial| mine(&partial.key)).collect();
    let stored: BTreeSet<BlobKey> = store.list_blobs(id).await?.into_iter().filter(|key| mine(key)).collect();
    // A manifest that is lost, or damaged past reading, while the writer's
    // blobs are stored is rebuilt from those blobs: they are what it wrote.
    let (manifest, rebuilt) = match store.read_file(id, &file).await? {
        Some(bytes) => match parse_manifest(id, writer, &bytes) {
            Ok(manifest) => (manifest, false),
            Err(error) => {
                warn!(session = %id, writer = %writer, %error, "Rebuilding the writer's manifest from its blobs.");
                (WriterManifest::started(id, writer, None, now), true)
            }
        },
        None if stored.is_empty() && partials.is_empty() => {
            let writers: Vec<String> = store.list_writers(id).await?.iter().map(ToString::to_string).collect();
            return Err(refuse(format!("it has no writer {writer} (its writers: {})", writers.join(", "))));
        }
        None => {
            warn!(session = %id, writer = %writer, "The writer has blobs but no manifest: rebuilding it from its blobs.");
            (WriterManifest::started(id, writer, None, now), true)
        }
    };
    // A manifest rebuilt here says nothing of when the writer was seen.
    if let WriterLiveness::Unknown { stale_after } = liveness
        && !rebuilt
        && manifest.status == SessionStatus::Active
    {
        let ago = now.unix_nanos().saturating_sub(manifest.updated_at.unix_nanos());
        // A manifest stamped after `now` (a clock ahead of ours) is fresh.
        if u128::from(ago) < stale_after.as_nanos() {
            let host = manifest.host.as_deref().unwrap_or("unknown");
            return Err(Error::WriterLive {
                session: id.clone(),
                writer: writer.clone(),
                reason: format!(
                    "its manifest (host {host}) was written {:.1} s ago, within the {} s in which a running writer \
                     rewrites it; stop that capture first, or wait until it is stale, or pass --force if it is known \
                     to have stopped",
                    Duration::from_nanos(ago).as_secs_f64(),
                    stale_after.as_secs()
                ),
            });
        }
    }
    let listed: BTreeSet<BlobKey> = manifest.blobs.iter().map(|blob| blob.key.clone()).collect();
    let before = RepairTotals::of_blobs(&manifest.blobs);
    let mut report = RepairReport {
        session_id: id.clone(),
        repaired_at: now,
        changed: false,
        status_before: manifest.status,
        rebuilt_metadata: None,
        status_after: manifest.status,
        end_time: manifest.end_time,
        partial_blobs: Vec::new(),
        newly_listed: Vec::new(),
        missing: Vec::new(),
        damaged: Vec::new(),
        before,
        after: before,
        writer: Some(writer.clone()),
        seal: None,
    };
    // In a session still to be sealed, a listed blob that is not stored is
    // dropped too (the seal refuses it); a sealed session reads its own list.
    let sealed = metadata.status != SessionStatus::Active;
    let untouched = manifest.status != SessionStatus::Active
        && partials.is_empty()
        && stored.is_subset(&listed)
        && (sealed || listed.is_subset(&stored));
    if !untouched {
        let blobs = relist(store, id, &partials, stored, &manifest.blobs, mine, &mut report).await?;

        let mut repaired = manifest.clone();
        let last_record = blobs.iter().filter(|blob| blob.records > 0).map(|blob| blob.last_receive_time).max();
        let end_time = last_record.unwrap_or(manifest.start_time).max(manifest.end_time.unwrap_or_default());
        if rebuilt && let Some(first) = blobs.iter().map(|blob| blob.first_receive_time).min() {
            repaired.start_time = first;
        }
        repaired.blobs = blobs;
        repaired.status =
            if manifest.status == SessionStatus::Failed { SessionStatus::Failed } else { SessionStatus::Completed };
        repaired.end_time = Some(end_time);
        repaired.repaired = true;
        repaired.updated_at = now;
        store.write_file(id, &file, Bytes::from(repaired.to_json()), WriteMode::Replace).await?;
        info!(session = %id, writer = %writer, blobs = repaired.blobs.len(), "Writer repaired.");
        report.changed = true;
        report.status_after = repaired.status;
        report.end_time = repaired.end_time;
        report.after = RepairTotals::of_blobs(&repaired.blobs);
    }

    let options = SealOptions { wait: SealOptions::DEFAULT_WAIT, by_writer: false };
    report.seal = Some(match seal_session(store, id, None, options, now).await? {
        SealOutcome::Sealed(metadata) => {
            WriterRepairSeal { session_status: metadata.status, sealed_now: true, active_writers: Vec::new() }
        }
        SealOutcome::AlreadySealed(metadata) => {
            WriterRepairSeal { session_status: metadata.status, sealed_now: false, active_writers: Vec::new() }
        }
        SealOutcome::WritersActive(active_writers) => {
            WriterRepairSeal { session_status: SessionStatus::Active, sealed_now: false, active_writers }
        }
    });
    Ok(report)
}
