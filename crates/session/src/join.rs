//! Joining a session with several writers, and reading its writers'
//! manifests (`docs/FORMAT.md` section 11).

use std::time::Duration;

use bytes::Bytes;
use tracing::{debug, info};

use crate::{
    Error, FORMAT_VERSION_WRITERS, Joined, SessionFile, SessionId, SessionMetadata, SessionStatus, SessionStore,
    Timestamp, WriteMode, WriterId, WriterManifest,
};

/// How long [`join_session`] waits for a sealer that holds the seal marker
/// to finish (the session is then completed, and the join refused) or to
/// give the marker up (a writer was still active).
pub const JOIN_SEAL_WAIT: Duration = Duration::from_secs(30);

/// How often a wait for another process polls the store.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Joins session `template.session_id` as writer `writer`, creating the
/// session (its `metadata.json`, `active`, format version 2, from
/// `template`) when it is not there. `now` is the writer's wall clock, its
/// start time.
///
/// The writer's manifest is created first, create-only: a writer with
/// this id that joined before makes it fail with [`Error::FileExists`].
/// Then the session must be `active` and have several writers (format
/// version 2): a `completed` or `failed` session, or one written by a
/// single writer, fails with [`Error::SessionNotJoinable`], and the
/// manifest just created is deleted again. When another process is
/// sealing the session, the join waits up to [`JOIN_SEAL_WAIT`] for it to
/// give up (a writer was active) or finish (the join is then refused).
pub async fn join_session(
    store: &dyn SessionStore,
    template: &SessionMetadata,
    writer: &WriterId,
    host: Option<String>,
    now: Timestamp,
) -> Result<Joined, Error> {
    let id = &template.session_id;
    let created = match store.create_session(id).await {
        Ok(()) => true,
        Err(Error::AlreadyExists(_)) => false,
        Err(error) => return Err(error),
    };
    let manifest = WriterManifest::started(id, writer, host, now);
    let file = SessionFile::WriterManifest(writer.clone());
    store.write_file(id, &file, Bytes::from(manifest.to_json()), WriteMode::CreateNew).await?;
    match check_joinable(store, template, created).await {
        Ok(metadata) => {
            info!(session = %id, writer = %writer, created, "Joined the session.");
            Ok(Joined { metadata, created, manifest })
        }
        Err(error) => {
            // Leave nothing behind: the session does not count this writer.
            if let Err(cleanup) = store.delete_file(id, &file).await {
                debug!(session = %id, writer = %writer, error = %cleanup, "Cannot delete the manifest of a refused join.");
            }
            Err(error)
        }
    }
}

/// The session's metadata once the writer's manifest is there, when the
/// session can be joined: writes it from `template` when there is none yet
/// (the first writer), waits out a sealer.
async fn check_joinable(
    store: &dyn SessionStore,
    template: &SessionMetadata,
    created: bool,
) -> Result<SessionMetadata, Error> {
    let id = &template.session_id;
    let metadata = match store.read_metadata(id).await {
        Ok(metadata) => metadata,
        // The first writer (or one of the first, at the same moment: they
        // write equivalent metadata) announces the session. A capture by a
        // single writer announces its session as it creates it, so a
        // session without metadata is one that joiners are starting.
        Err(Error::NotFound(_)) => {
            let mut metadata = template.clone();
            metadata.format_version = FORMAT_VERSION_WRITERS;
            metadata.status = SessionStatus::Active;
            metadata.end_time = None;
            metadata.blobs.clear();
            metadata.writers.clear();
            metadata.update_totals();
            store.write_metadata(&metadata).await?;
            debug!(session = %id, created, "Session announced for its writers.");
            metadata
        }
        Err(error) => return Err(error),
    };
    refuse_unjoinable(&metadata)?;
    let deadline = tokio::time::Instant::now() + JOIN_SEAL_WAIT;
    while store.read_file(id, &SessionFile::Seal).await?.is_some() {
        // A sealer is at work. It either saw this writer's manifest (and
        // gives the marker up) or did not (and completes the session).
        let metadata = store.read_metadata(id).await?;
        refuse_unjoinable(&metadata)?;
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::SessionNotJoinable {
                session: id.clone(),
                reason: format!(
                    "it is being sealed ({} exists) and the sealer did not finish within {} s; \
                     if it stopped, run `otlp-tape sessions seal {id}`",
                    SessionFile::Seal,
                    JOIN_SEAL_WAIT.as_secs()
                ),
            });
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    // The marker is gone: a sealer that held it gave it up, or completed the
    // session just before.
    let metadata = store.read_metadata(id).await?;
    refuse_unjoinable(&metadata)?;
    Ok(metadata)
}

fn refuse_unjoinable(metadata: &SessionMetadata) -> Result<(), Error> {
    let refuse = |reason: String| Err(Error::SessionNotJoinable { session: metadata.session_id.clone(), reason });
    if metadata.status != SessionStatus::Active {
        return refuse(format!("it is {}; only an active session with several writers can be joined", metadata.status));
    }
    if !metadata.has_writers() {
        return refuse(format!(
            "it is written by a single writer (format version {}); join only sessions whose every writer joined",
            metadata.format_version
        ));
    }
    Ok(())
}

/// Every writer manifest of a session, sorted by writer id. A manifest that
/// cannot be read is an error naming it; one deleted between the listing
/// and the read (a refused join) is left out.
pub async fn read_manifests(store: &dyn SessionStore, id: &SessionId) -> Result<Vec<WriterManifest>, Error> {
    let mut manifests = Vec::new();
    for writer in store.list_writers(id).await? {
        let file = SessionFile::WriterManifest(writer.clone());
        let Some(bytes) = store.read_file(id, &file).await? else { continue };
        manifests.push(parse_manifest(id, &writer, &bytes)?);
    }
    manifests.sort_by(|a, b| a.writer_id.cmp(&b.writer_id));
    Ok(manifests)
}

/// Parses and checks the manifest of `writer` in session `id`.
pub(crate) fn parse_manifest(id: &SessionId, writer: &WriterId, bytes: &[u8]) -> Result<WriterManifest, Error> {
    let file = SessionFile::WriterManifest(writer.clone()).path();
    let refuse = |reason: String| Error::Manifest { session: id.clone(), file: file.clone(), reason };
    let manifest: WriterManifest = serde_json::from_slice(bytes).map_err(|error| refuse(error.to_string()))?;
    if manifest.format_version != FORMAT_VERSION_WRITERS {
        return Err(refuse(format!(
            "format version {}, but manifests are of version {FORMAT_VERSION_WRITERS}",
            manifest.format_version
        )));
    }
    if &manifest.session_id != id {
        return Err(refuse(format!("it names session {} instead", manifest.session_id)));
    }
    if &manifest.writer_id != writer {
        return Err(refuse(format!("it names writer {} instead", manifest.writer_id)));
    }
    if let Some(blob) = manifest.blobs.iter().find(|blob| blob.key.writer() != Some(writer)) {
        return Err(refuse(format!("blob {} is not one of this writer's keys", blob.key)));
    }
    if let Some(blob) = manifest.blobs.iter().find(|blob| blob.key.signal() != blob.signal) {
        return Err(refuse(format!("blob {} is listed as {} but its key says otherwise", blob.key, blob.signal)));
    }
    let mut keys: Vec<String> = manifest.blobs.iter().map(|blob| blob.key.to_string()).collect();
    keys.sort();
    if let Some([twice, _]) = keys.windows(2).find(|pair| pair[0] == pair[1]) {
        return Err(refuse(format!("blob {twice} is listed twice")));
    }
    Ok(manifest)
}
