//! Sealing a session with several writers exactly once, and repairing one
//! of its writers (`docs/FORMAT.md` section 11).

use std::collections::BTreeSet;

use bytes::Bytes;
use tracing::{debug, info, warn};

use crate::join::{POLL_INTERVAL, read_manifests};
use crate::{
    BlobKey, Error, FORMAT_VERSION_WRITERS, SealMarker, SealOptions, SealOutcome, SessionFile, SessionId,
    SessionMetadata, SessionStatus, SessionStore, Timestamp, WriteMode, WriterId, WriterManifest,
};

/// Merges every writer's manifest into `metadata.json` (`completed`, or
/// `failed` when a writer failed; blobs of all writers, counts, time range,
/// `writers`), once every writer has stopped. Safe to call from every
/// writer as it stops and from `sessions seal` at the same time: one of
/// them merges, the others see [`SealOutcome::AlreadySealed`] or
/// [`SealOutcome::WritersActive`].
///
/// The one that merges is the one that creates the seal marker,
/// `writers/.seal`, create-only. It then reads every manifest: when a
/// writer is still active it deletes the marker again and returns
/// [`SealOutcome::WritersActive`] (that writer seals when it stops, as it
/// writes its manifest before it tries). A sealer that finds the marker
/// taken waits up to `options.wait` for the session to be completed or
/// the marker to go, polling the store, and tries again. When the wait
/// runs out, or at once when the marker says it was created `options.wait`
/// or more before `now`, the marker is taken to be stale (its sealer
/// stopped): a writer (`options.by_writer`) gives up, returning the active
/// writers (none,
/// when only the stale marker stands in the way: `sessions seal` finishes
/// the session), while `sessions seal` merges all the same. The merge is
/// deterministic (it depends on the manifests and the active metadata
/// only), so two merges write the same `metadata.json`.
///
/// A session found sealed whose `metadata.json` misses blobs that the
/// manifests list (a writer was repaired, and the session sealed, while it
/// still ran) is sealed again with them, and the outcome is
/// [`SealOutcome::Sealed`]: nothing a writer committed is left out.
pub async fn seal_session(
    store: &dyn SessionStore,
    id: &SessionId,
    sealer: Option<&WriterId>,
    options: SealOptions,
    now: Timestamp,
) -> Result<SealOutcome, Error> {
    let marker = SealMarker { writer_id: sealer.cloned(), created_at: now };
    let mut marker_json = serde_json::to_vec_pretty(&marker).unwrap_or_default();
    marker_json.push(b'\n');
    let marker_bytes = Bytes::from(marker_json);
    let deadline = tokio::time::Instant::now() + options.wait;
    loop {
        let metadata = store.read_metadata(id).await?;
        // A session of a single writer has no manifests to merge, finished
        // or not: saying it was sealed would be a guess.
        if !metadata.has_writers() {
            let what = if metadata.status == SessionStatus::Active {
                format!("finish it with `otlp-tape sessions repair {id}`")
            } else {
                format!("it is {} and has nothing to seal", metadata.status)
            };
            return Err(Error::NotSealable {
                session: id.clone(),
                reason: format!(
                    "it is written by a single writer (format version {}); {what}",
                    metadata.format_version
                ),
            });
        }
        if metadata.status != SessionStatus::Active {
            if let Some(resealed) = reseal(store, id, metadata.clone()).await? {
                return Ok(SealOutcome::Sealed(resealed));
            }
            return Ok(SealOutcome::AlreadySealed(metadata));
        }
        let stale = tokio::time::Instant::now() >= deadline;
        let held = match store.write_file(id, &SessionFile::Seal, marker_bytes.clone(), WriteMode::CreateNew).await {
            // A server that checks `If-None-Match` apart from the write can
            // let two creates through: the marker read back says which won.
            Ok(()) => store.read_file(id, &SessionFile::Seal).await?.as_ref() == Some(&marker_bytes),
            Err(Error::FileExists { .. }) => false,
            Err(error) => return Err(error),
        };
        if held {
            return merge_holding_marker(store, id, &metadata, &marker_bytes).await;
        }
        if stale || marker_older_than(store, id, now, options.wait).await? {
            if options.by_writer {
                let active = active_writers(&read_manifests(store, id).await?);
                warn!(
                    session = %id,
                    active = active.len(),
                    "Another process holds the seal marker and did not finish; `sessions seal` finishes the session."
                );
                return Ok(SealOutcome::WritersActive(active));
            }
            warn!(session = %id, "Taking the seal marker as stale: its sealer did not finish in time.");
            store.write_file(id, &SessionFile::Seal, marker_bytes.clone(), WriteMode::Replace).await?;
            return merge_holding_marker(store, id, &metadata, &marker_bytes).await;
        }
        // Another sealer is at work: wait until it completes the session or
        // gives the marker up, then try again.
        while tokio::time::Instant::now() < deadline {
            tokio::time::sleep(POLL_INTERVAL).await;
            if store.read_metadata(id).await?.status != SessionStatus::Active
                || store.read_file(id, &SessionFile::Seal).await?.is_none()
            {
                break;
            }
        }
    }
}

/// Whether the seal marker standing says it was created `wait` or more
/// before `now`: its sealer would have finished long since, so it is stale
/// without waiting again. A marker that cannot be read says nothing.
async fn marker_older_than(
    store: &dyn SessionStore,
    id: &SessionId,
    now: Timestamp,
    wait: std::time::Duration,
) -> Result<bool, Error> {
    let Some(bytes) = store.read_file(id, &SessionFile::Seal).await? else { return Ok(false) };
    let Ok(marker) = serde_json::from_slice::<SealMarker>(&bytes) else { return Ok(false) };
    let age = now.unix_nanos().saturating_sub(marker.created_at.unix_nanos());
    Ok(u128::from(age) >= wait.as_nanos())
}

/// Merges the manifests again into a sealed session whose `metadata.json`
/// misses blobs that they list, or whose `writers` figures no longer say
/// what a manifest says (its status, end, `repaired`, blob count): a writer
/// was repaired (or the session sealed) while it still ran, and it went on
/// committing blobs, which it lists in its manifest, and stopped. Merges every manifest as it stands over the sealed
/// metadata, writes it, and reads the manifests again until the metadata
/// written lists every blob they list (a writer that wrote its manifest
/// meanwhile is then merged too, whoever writes last). Returns the metadata
/// written, or `None` when nothing was missing.
async fn reseal(
    store: &dyn SessionStore,
    id: &SessionId,
    sealed: SessionMetadata,
) -> Result<Option<SessionMetadata>, Error> {
    let mut current = sealed;
    let mut resealed = None;
    loop {
        let manifests = read_manifests(store, id).await?;
        let listed: BTreeSet<String> = current.blobs.iter().map(|blob| blob.key.to_string()).collect();
        // A writer whose blobs are all listed may still have stopped (or
        // been repaired) since: its figures in `writers` must say so.
        let outdated = |manifest: &WriterManifest| {
            current.writers.iter().find(|entry| entry.writer_id == manifest.writer_id).is_none_or(|entry| {
                (entry.status, entry.end_time, entry.repaired, entry.blobs)
                    != (manifest.status, manifest.end_time, manifest.repaired, manifest.blobs.len() as u64)
            })
        };
        let missing: Vec<&WriterId> = manifests
            .iter()
            .filter(|manifest| {
                manifest.blobs.iter().any(|blob| !listed.contains(&blob.key.to_string())) || outdated(manifest)
            })
            .map(|manifest| &manifest.writer_id)
            .collect();
        if missing.is_empty() {
            return Ok(resealed);
        }
        warn!(
            session = %id,
            writers = %missing.iter().map(|writer| writer.as_str()).collect::<Vec<_>>().join(", "),
            "The sealed session misses what writers did after it was sealed (a writer repaired or sealed while it \
             still ran); sealing it again with every blob they committed."
        );
        let merged = merge_manifests(&current, &manifests);
        store.write_metadata(&merged).await?;
        current = merged.clone();
        resealed = Some(merged);
    }
}

/// Merges once this sealer holds the marker; gives the marker up when a
/// writer is still active, and when the merge fails (a manifest that
/// cannot be read, a `metadata.json` that cannot be written: a full disk):
/// the session stays active, and the next seal (this writer trying again,
/// `sessions seal`) does not wait for a marker nobody holds any more.
async fn merge_holding_marker(
    store: &dyn SessionStore,
    id: &SessionId,
    metadata: &SessionMetadata,
    marker: &Bytes,
) -> Result<SealOutcome, Error> {
    match merge_or_give_up(store, id, metadata, marker).await {
        Ok(outcome) => Ok(outcome),
        Err(error) => {
            // Only this sealer's own marker (a server that lets two creates
            // through may have let another's replace it). Deleting frees
            // space, so it works on a full disk; when the store refuses it
            // too, a later seal takes the marker as stale after its wait.
            let own = async { store.read_file(id, &SessionFile::Seal).await.map(|held| held.as_ref() == Some(marker)) };
            let given_up = match own.await {
                Ok(true) => store.delete_file(id, &SessionFile::Seal).await,
                Ok(false) => Ok(()),
                Err(error) => Err(error),
            };
            if let Err(cleanup) = given_up {
                warn!(
                    session = %id,
                    error = %crate::error_chain(&cleanup),
                    "Cannot delete the seal marker after a failed seal; the next seal takes it as stale after its wait."
                );
            }
            Err(error)
        }
    }
}

async fn merge_or_give_up(
    store: &dyn SessionStore,
    id: &SessionId,
    metadata: &SessionMetadata,
    marker: &Bytes,
) -> Result<SealOutcome, Error> {
    // A manifest that cannot be read, or blobs no manifest accounts for,
    // refuse the seal; the marker goes again (above), so that writers can
    // still join and stop and the seal can be tried once the session is
    // repaired.
    let manifests = read_manifests(store, id).await?;
    let active = active_writers(&manifests);
    if !active.is_empty() {
        store.delete_file(id, &SessionFile::Seal).await?;
        debug!(session = %id, active = active.len(), "Not sealed: writers are active.");
        return Ok(SealOutcome::WritersActive(active));
    }
    check_blobs_listed(store, id, &manifests).await?;
    let merged = merge_manifests(metadata, &manifests);
    store.write_metadata(&merged).await?;
    // Two sealers let through by a server that checks `If-None-Match`
    // apart from the write both merged the same metadata: the one whose
    // marker stands reports the seal.
    if store.read_file(id, &SessionFile::Seal).await?.as_ref() != Some(marker) {
        return Ok(SealOutcome::AlreadySealed(merged));
    }
    info!(
        session = %id,
        writers = manifests.len(),
        blobs = merged.blobs.len(),
        status = %merged.status,
        "Session sealed."
    );
    Ok(SealOutcome::Sealed(merged))
}

/// Every stored blob that carries a writer id is listed by that writer's
/// manifest, and every listed blob is stored: a seal must neither drop a
/// writer's blobs (a manifest lost, or one that misses blobs) nor list
/// blobs that are not there. Either is refused, naming the writer to
/// repair.
async fn check_blobs_listed(
    store: &dyn SessionStore,
    id: &SessionId,
    manifests: &[WriterManifest],
) -> Result<(), Error> {
    let stored: BTreeSet<BlobKey> = store.list_blobs(id).await?.into_iter().collect();
    let listed: BTreeSet<&BlobKey> =
        manifests.iter().flat_map(|manifest| &manifest.blobs).map(|blob| &blob.key).collect();
    let refuse = |reason: String| Err(Error::NotSealable { session: id.clone(), reason });
    if let Some((key, writer)) =
        stored.iter().filter(|key| !listed.contains(key)).find_map(|key| Some((key, key.writer()?)))
    {
        let manifest = SessionFile::WriterManifest(writer.clone());
        let whose = if manifests.iter().any(|manifest| &manifest.writer_id == writer) {
            format!("its manifest {manifest} does not list it")
        } else {
            format!("writer {writer} has no manifest ({manifest})")
        };
        return refuse(format!(
            "blob {key} is stored but {whose}, so sealing would drop it; \
             run `otlp-tape sessions repair {id} --writer {writer}`"
        ));
    }
    for manifest in manifests {
        if let Some(blob) = manifest.blobs.iter().find(|blob| !stored.contains(&blob.key)) {
            let writer = &manifest.writer_id;
            return refuse(format!(
                "{} lists blob {}, which is not stored; run `otlp-tape sessions repair {id} --writer {writer}`",
                SessionFile::WriterManifest(writer.clone()),
                blob.key
            ));
        }
    }
    Ok(())
}

fn active_writers(manifests: &[WriterManifest]) -> Vec<WriterId> {
    manifests
        .iter()
        .filter(|manifest| manifest.status == SessionStatus::Active)
        .map(|manifest| manifest.writer_id.clone())
        .collect()
}

/// The sealed metadata of a session whose writers have all stopped: the
/// active metadata's description, flags and parameters; every writer's
/// blobs, sorted by (first receive time, key); the earliest start and the
/// latest end of the writers; `failed` when a writer failed, else
/// `completed`; the writers' figures sorted by id.
pub(crate) fn merge_manifests(active: &SessionMetadata, manifests: &[WriterManifest]) -> SessionMetadata {
    let mut merged = active.clone();
    merged.format_version = FORMAT_VERSION_WRITERS;
    merged.blobs = manifests.iter().flat_map(|manifest| manifest.blobs.iter().cloned()).collect();
    merged.blobs.sort_by_key(|blob| (blob.first_receive_time, blob.key.to_string()));
    if let Some(start) = manifests.iter().map(|manifest| manifest.start_time).min() {
        merged.start_time = start;
    }
    let end = manifests
        .iter()
        .filter_map(|manifest| manifest.end_time)
        .chain(merged.blobs.iter().map(|blob| blob.last_receive_time))
        .max()
        .unwrap_or(merged.start_time)
        .max(merged.start_time);
    let status = if manifests.iter().any(|manifest| manifest.status == SessionStatus::Failed) {
        SessionStatus::Failed
    } else {
        SessionStatus::Completed
    };
    let mut writers: Vec<_> = manifests.iter().map(WriterManifest::entry).collect();
    writers.sort_by(|a, b| a.writer_id.cmp(&b.writer_id));
    merged.writers = writers;
    merged.finish(end, status);
    merged
}
