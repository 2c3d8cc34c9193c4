use bytes::Bytes;
use tape_otlp::Signal;
use tracing::{debug, warn};

use crate::blob::{BlobWriter, DEFAULT_COMPRESSION_LEVEL};
use crate::{
    BlobEntry, BlobKey, BlobSink, Error, FORMAT_VERSION_WRITERS, SealOptions, SealOutcome, SessionFile,
    SessionMetadata, SessionStatus, SessionStore, TimelineBuilder, Timestamp, WriteMode, WriterId, WriterManifest,
    join_session, seal_session,
};

/// How a [`SessionWriter`] lays out blobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterOptions {
    /// gzip level, 0 to 9.
    pub compression_level: u32,
    /// A blob is closed once this many uncompressed bytes are in it.
    pub max_blob_bytes: u64,
    /// A blob is closed before a record received this many nanoseconds
    /// after its first one is appended; `None` rolls by size and hour only.
    pub max_blob_age_nanos: Option<u64>,
    /// Compressed bytes gathered before they are handed to the store.
    pub chunk_bytes: usize,
    /// Whether `metadata.json` (status `active`) is written when the session
    /// starts, so that it is visible while it is written. Off, the session
    /// stays invisible until [`SessionWriter::finish`].
    pub announce: bool,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            compression_level: DEFAULT_COMPRESSION_LEVEL,
            max_blob_bytes: 64 * 1024 * 1024,
            max_blob_age_nanos: None,
            chunk_bytes: 1024 * 1024,
            announce: false,
        }
    }
}

struct OpenBlob {
    key: BlobKey,
    partition: String,
    writer: BlobWriter<Vec<u8>>,
    sink: Box<dyn BlobSink>,
    /// The blob's records, counted into the session's timeline when it is
    /// committed.
    timeline: TimelineBuilder,
}

/// Writes a session through any [`SessionStore`]: one open blob per signal,
/// rolled at the UTC hour boundary of receive time and by size, and
/// `metadata.json` written after every blob is committed, then the
/// session's `timeline.json` (see [`timeline`](crate::timeline)), counted
/// from the records of the committed blobs.
///
/// A store that fails (a full disk) loses nothing the writer holds: bytes
/// that could not be handed to the store stay in memory, and every method
/// but [`finish`](SessionWriter::finish) and
/// [`discard`](SessionWriter::discard) can be called again once the store
/// works. [`add`](SessionWriter::add) takes a record only when it returns
/// `Ok`. A blob whose commit fails stays in the store as a partial blob,
/// which [`uncommitted`](SessionWriter::uncommitted) names and
/// `sessions repair` salvages.
pub struct SessionWriter<'a> {
    store: &'a dyn SessionStore,
    metadata: SessionMetadata,
    options: WriterOptions,
    open: [Option<OpenBlob>; 3],
    next_blob: u64,
    uncommitted: Vec<BlobKey>,
    /// The records of the committed blobs.
    timeline: TimelineBuilder,
    /// Whether `timeline` holds every blob of the session: not when the
    /// metadata listed blobs before this writer.
    timeline_whole: bool,
    /// For a writer that joined: its manifest, and what sealing did.
    joined: Option<JoinedWriter>,
}

/// What a writer that joined keeps besides the metadata of its own blobs.
struct JoinedWriter {
    manifest: WriterManifest,
    seal: Option<SealOutcome>,
}

impl<'a> SessionWriter<'a> {
    /// Reserves the session's id in `store` and starts writing it.
    pub async fn create(
        store: &'a dyn SessionStore,
        metadata: SessionMetadata,
        options: WriterOptions,
    ) -> Result<Self, Error> {
        store.create_session(&metadata.session_id).await?;
        if options.announce {
            store.write_metadata(&metadata).await?;
        }
        let next_blob = metadata.blobs.len() as u64 + 1;
        let timeline_whole = metadata.blobs.is_empty();
        Ok(SessionWriter {
            store,
            metadata,
            options,
            open: [None, None, None],
            next_blob,
            uncommitted: Vec::new(),
            timeline: TimelineBuilder::new(),
            timeline_whole,
            joined: None,
        })
    }

    /// Joins session `template.session_id` as `writer`, one of several
    /// writers (`capture --join`), creating the session when it is not
    /// there ([`join_session`](crate::join_session)). Blob keys then carry
    /// the writer id, counted from `000001`; after each commit the
    /// writer's manifest (`writers/<writer-id>.json`) is replaced instead
    /// of `metadata.json`. [`try_finish`](SessionWriter::try_finish) writes
    /// the manifest with the final status, then seals the session if no
    /// other writer is active ([`seal_session`](crate::seal_session)),
    /// and returns the merged metadata when the session is sealed (by this
    /// writer or another), or otherwise the active session's metadata with
    /// this writer's blobs; [`seal`](SessionWriter::seal) says which.
    ///
    /// The writer's start time, in its manifest, is `template.start_time`
    /// (the caller's wall clock). [`metadata`](SessionWriter::metadata)
    /// lists this writer's blobs only.
    pub async fn join(
        store: &'a dyn SessionStore,
        template: SessionMetadata,
        writer: WriterId,
        host: Option<String>,
        options: WriterOptions,
    ) -> Result<Self, Error> {
        let joined = Box::pin(join_session(store, &template, &writer, host, template.start_time)).await?;
        let mut metadata = template;
        metadata.format_version = FORMAT_VERSION_WRITERS;
        metadata.status = SessionStatus::Active;
        metadata.end_time = None;
        metadata.blobs.clear();
        metadata.writers.clear();
        metadata.update_totals();
        Ok(SessionWriter {
            store,
            metadata,
            options,
            open: [None, None, None],
            next_blob: 1,
            uncommitted: Vec::new(),
            timeline: TimelineBuilder::new(),
            // The session's timeline is built from every writer's blobs on
            // first use.
            timeline_whole: false,
            joined: Some(JoinedWriter { manifest: joined.manifest, seal: None }),
        })
    }

    /// The writer id, for a writer that joined.
    pub fn writer_id(&self) -> Option<&WriterId> {
        self.joined.as_ref().map(|joined| &joined.manifest.writer_id)
    }

    /// For a writer that joined, what sealing did when it finished.
    pub fn seal(&self) -> Option<&SealOutcome> {
        self.joined.as_ref().and_then(|joined| joined.seal.as_ref())
    }

    /// Replaces a joined writer's manifest with its blobs as they stand,
    /// `status` and `end_time`, stamped `updated_at`.
    async fn write_manifest(
        &mut self,
        status: SessionStatus,
        end_time: Option<Timestamp>,
        updated_at: Timestamp,
    ) -> Result<(), Error> {
        let Some(joined) = self.joined.as_mut() else { return Ok(()) };
        let mut manifest = joined.manifest.clone();
        manifest.blobs.clone_from(&self.metadata.blobs);
        manifest.status = status;
        manifest.end_time = end_time;
        // Never back in time: a heartbeat may have stamped it later than
        // the receive time of the last record.
        manifest.updated_at = updated_at.max(joined.manifest.updated_at);
        let file = SessionFile::WriterManifest(manifest.writer_id.clone());
        self.store
            .write_file(&self.metadata.session_id, &file, Bytes::from(manifest.to_json()), WriteMode::Replace)
            .await?;
        joined.manifest = manifest;
        Ok(())
    }

    /// For a writer that joined, its heartbeat: rewrites its manifest as it
    /// stands (`active`, its committed blobs) stamped `now`, so that
    /// `sessions repair --writer` on another host sees that it runs (see
    /// [`WRITER_STALE_AFTER`](crate::WRITER_STALE_AFTER)). Returns whether
    /// another process had finished the manifest since this writer last
    /// wrote it (`sessions repair --writer --force` while it runs): it is
    /// written `active` again all the same, and when the writer finishes,
    /// sealing merges every blob it committed into the sealed session
    /// ([`seal_session`](crate::seal_session) seals again a session whose
    /// metadata misses blobs of its manifests). A writer that did not join
    /// does nothing.
    pub async fn heartbeat(&mut self, now: Timestamp) -> Result<bool, Error> {
        let Some(joined) = self.joined.as_ref() else { return Ok(false) };
        let file = SessionFile::WriterManifest(joined.manifest.writer_id.clone());
        let stored = self.store.read_file(&self.metadata.session_id, &file).await?;
        let taken_over = match stored.as_deref().map(serde_json::from_slice::<WriterManifest>) {
            Some(Ok(stored)) => stored.status != SessionStatus::Active || stored.repaired,
            // Deleted or overwritten with something else: not this writer's.
            Some(Err(_)) | None => true,
        };
        self.write_manifest(SessionStatus::Active, None, now).await?;
        Ok(taken_over)
    }

    /// The metadata as it stands: committed blobs only.
    pub fn metadata(&self) -> &SessionMetadata {
        &self.metadata
    }

    /// The metadata to fill in before [`finish`](SessionWriter::finish):
    /// description, flags, parameters, start time. Blob entries and counts
    /// are the writer's own and are recomputed when it finishes.
    pub fn metadata_mut(&mut self) -> &mut SessionMetadata {
        &mut self.metadata
    }

    /// Appends one record of `signal`: [`add`](SessionWriter::add), then
    /// [`write_out`](SessionWriter::write_out). When the second fails, the
    /// record is taken all the same.
    pub async fn append(
        &mut self,
        signal: Signal,
        receive_time: Timestamp,
        item_count: u64,
        payload: &[u8],
    ) -> Result<(), Error> {
        self.add(signal, receive_time, item_count, payload).await?;
        self.write_out().await
    }

    /// Takes one record of `signal` into its open blob, in memory; it reaches
    /// the store with the next [`write_out`](SessionWriter::write_out),
    /// [`flush`](SessionWriter::flush) or roll. Rolling the blob or opening
    /// a new one uses the store: when that fails, the record is not taken
    /// and the writer is as it was.
    pub async fn add(
        &mut self,
        signal: Signal,
        receive_time: Timestamp,
        item_count: u64,
        payload: &[u8],
    ) -> Result<(), Error> {
        let partition = receive_time.hour_partition();
        let options = &self.options;
        let roll = self.open[signal.index()].as_ref().is_some_and(|blob| {
            let summary = blob.writer.summary();
            let age = receive_time.unix_nanos().saturating_sub(summary.first_receive_time.unix_nanos());
            blob.partition != partition
                || summary.uncompressed_bytes >= options.max_blob_bytes
                || options.max_blob_age_nanos.is_some_and(|max| summary.records > 0 && age >= max)
        });
        if roll {
            self.close(signal).await?;
        }
        if self.open[signal.index()].is_none() {
            let blob_id = format!("{:06}", self.next_blob);
            let key = match self.writer_id() {
                Some(writer) => BlobKey::for_writer(signal, receive_time, writer, &blob_id)?,
                None => BlobKey::new(signal, receive_time, &blob_id)?,
            };
            let sink = self.store.create_blob(&self.metadata.session_id, &key).await?;
            self.next_blob += 1;
            let writer = BlobWriter::new(Vec::with_capacity(self.options.chunk_bytes), self.options.compression_level);
            self.open[signal.index()] =
                Some(OpenBlob { key, partition, writer, sink, timeline: TimelineBuilder::new() });
        }
        let session = &self.metadata.session_id;
        let Some(blob) = self.open[signal.index()].as_mut() else { unreachable!("opened above") };
        blob.writer.append(receive_time, item_count, payload).map_err(|source| Error::Write {
            session: session.clone(),
            key: blob.key.to_string(),
            source,
        })?;
        blob.timeline.add_record(signal, receive_time, item_count, payload);
        Ok(())
    }

    /// Hands the store the compressed bytes of every open blob that holds
    /// a chunk's worth (see [`WriterOptions::chunk_bytes`]). Bytes the store
    /// does not take stay in memory for the next call.
    pub async fn write_out(&mut self) -> Result<(), Error> {
        let chunk_bytes = self.options.chunk_bytes;
        for blob in self.open.iter_mut().flatten() {
            if blob.writer.inner_mut().is_some_and(|buffer| buffer.len() >= chunk_bytes) {
                drain(blob).await?;
            }
        }
        Ok(())
    }

    /// Bytes held in memory that the store has not taken yet, over every
    /// open blob (the open gzip members' compressor state excluded).
    pub fn buffered_bytes(&mut self) -> usize {
        self.open.iter_mut().flatten().filter_map(|blob| blob.writer.inner_mut().map(|buffer| buffer.len())).sum()
    }

    /// Blobs whose commit failed: their bytes are in the store as partial
    /// blobs, not listed in the metadata, until `sessions repair` (or
    /// [`repair_session`](crate::repair_session)) salvages them.
    pub fn uncommitted(&self) -> &[BlobKey] {
        &self.uncommitted
    }

    /// Ends the open gzip member of every open blob and hands everything
    /// written so far to the store ([`BlobSink::flush`]): a crash of this
    /// process after it returns loses none of it.
    pub async fn flush(&mut self) -> Result<(), Error> {
        self.end_members().await?;
        for blob in self.open.iter_mut().flatten() {
            blob.sink.flush().await?;
        }
        Ok(())
    }

    /// Like [`flush`](SessionWriter::flush), and waits until everything is
    /// on stable storage ([`BlobSink::sync`]).
    pub async fn sync(&mut self) -> Result<(), Error> {
        self.end_members().await?;
        for blob in self.open.iter_mut().flatten() {
            blob.sink.sync().await?;
        }
        Ok(())
    }

    async fn end_members(&mut self) -> Result<(), Error> {
        for blob in self.open.iter_mut().flatten() {
            blob.writer.finish_member().map_err(|source| Error::Write {
                session: self.metadata.session_id.clone(),
                key: blob.key.to_string(),
                source,
            })?;
            drain(blob).await?;
        }
        Ok(())
    }

    /// Commits every open blob now, so that the next record of each signal
    /// starts a new one.
    pub async fn roll(&mut self) -> Result<(), Error> {
        for signal in Signal::ALL {
            self.close(signal).await?;
        }
        Ok(())
    }

    async fn close(&mut self, signal: Signal) -> Result<(), Error> {
        // Everything goes to the store while the blob is still open, so that
        // a failure here leaves it open, whole, to close again later.
        let Some(blob) = self.open[signal.index()].as_mut() else { return Ok(()) };
        let session = &self.metadata.session_id;
        blob.writer.finish_member().map_err(|source| Error::Write {
            session: session.clone(),
            key: blob.key.to_string(),
            source,
        })?;
        drain(blob).await?;
        let Some(OpenBlob { key, writer, mut sink, timeline, .. }) = self.open[signal.index()].take() else {
            unreachable!("checked above")
        };
        let (rest, summary) = writer.finish().map_err(|source| Error::Write {
            session: self.metadata.session_id.clone(),
            key: key.to_string(),
            source,
        })?;
        if !rest.is_empty() {
            // Only an empty blob has bytes left here: its empty member.
            if let Err(error) = sink.write(Bytes::from(rest)).await {
                let _ = sink.abort().await;
                return Err(error);
            }
        }
        if let Err(error) = sink.commit().await {
            if !matches!(error, Error::BlobExists { .. }) && summary.records > 0 {
                self.uncommitted.push(key);
            }
            return Err(error);
        }
        debug!(session = %self.metadata.session_id, blob = %key, records = summary.records, "Blob committed.");
        let last_receive_time = summary.last_receive_time;
        self.metadata.add_blob(BlobEntry::new(key, summary));
        self.timeline.merge(timeline);
        // A joined writer lists its blobs in its manifest as it commits
        // them, stamped with its clock (the receive time of its last record).
        // When that write fails, the next commit or the finish writes it.
        self.write_manifest(SessionStatus::Active, None, last_receive_time).await
    }

    /// Commits every open blob and writes the final `metadata.json` with
    /// `status` and `end_time`.
    pub async fn finish(mut self, end_time: Timestamp, status: SessionStatus) -> Result<SessionMetadata, Error> {
        self.try_finish(end_time, status).await
    }

    /// Like [`finish`](SessionWriter::finish), but can be called again when
    /// the store fails: what was committed stays committed, and the final
    /// metadata is written by the call that succeeds.
    ///
    /// `timeline.json` is written after the metadata, at best: when the
    /// store fails then, a warning says so and the session is finished all
    /// the same ([`timeline`](crate::timeline) builds it on first use).
    pub async fn try_finish(&mut self, end_time: Timestamp, status: SessionStatus) -> Result<SessionMetadata, Error> {
        for signal in Signal::ALL {
            self.close(signal).await?;
        }
        if self.joined.is_some() {
            // Boxed: sealing waits and retries, and would make every
            // caller's future of a plain finish as large.
            return Box::pin(self.finish_joined(end_time, status)).await;
        }
        let mut metadata = self.metadata.clone();
        metadata.finish(end_time, status);
        self.store.write_metadata(&metadata).await?;
        self.metadata = metadata;
        if self.timeline_whole && status != SessionStatus::Active {
            let session = &self.metadata.session_id;
            let timeline = self.timeline.build(session.clone(), self.metadata.content_hash.clone());
            if let Err(error) = self.store.write_timeline(session, Bytes::from(timeline.to_json())).await {
                warn!(
                    session = %session,
                    error = %crate::error_chain(&error),
                    "Cannot write the timeline; it is built from the blobs when first asked for."
                );
            }
        }
        Ok(self.metadata.clone())
    }

    /// The finish of a writer that joined: its manifest with the final
    /// status, then the seal.
    async fn finish_joined(&mut self, end_time: Timestamp, status: SessionStatus) -> Result<SessionMetadata, Error> {
        let stopped = status != SessionStatus::Active;
        self.write_manifest(status, stopped.then_some(end_time), end_time).await?;
        let mut own = self.metadata.clone();
        own.update_totals();
        if !stopped {
            return Ok(own);
        }
        let writer = self.writer_id().cloned();
        let outcome =
            seal_session(self.store, &self.metadata.session_id, writer.as_ref(), SealOptions::for_writer(), end_time)
                .await?;
        let metadata = match &outcome {
            SealOutcome::Sealed(metadata) | SealOutcome::AlreadySealed(metadata) => metadata.clone(),
            SealOutcome::WritersActive(_) => own,
        };
        if let Some(joined) = self.joined.as_mut() {
            joined.seal = Some(outcome);
        }
        Ok(metadata)
    }

    /// Discards open blobs and deletes everything written under the
    /// session, so that a failed write leaves nothing behind.
    pub async fn discard(mut self) -> Result<(), Error> {
        for blob in self.open.iter_mut().filter_map(Option::take) {
            blob.sink.abort().await?;
        }
        if let Some(writer) = self.writer_id().cloned() {
            return Box::pin(self.discard_joined(&writer)).await;
        }
        match self.store.delete_session(&self.metadata.session_id).await {
            Ok(()) | Err(Error::NotFound(_)) => Ok(()),
            Err(error) => Err(error),
        }
    }
}

impl SessionWriter<'_> {
    /// The discard of a writer that joined: the other writers' blobs stay.
    /// Without committed blobs its manifest is deleted, as if it had never
    /// joined; with some, its manifest is marked `failed` and keeps them.
    /// Then the session is sealed if no other writer is active.
    async fn discard_joined(mut self, writer: &WriterId) -> Result<(), Error> {
        let session = self.metadata.session_id.clone();
        let end_time = self.metadata.blobs.iter().map(|blob| blob.last_receive_time).max();
        let end_time = end_time.unwrap_or(self.metadata.start_time);
        if self.metadata.blobs.is_empty() {
            self.store.delete_file(&session, &SessionFile::WriterManifest(writer.clone())).await?;
        } else {
            self.write_manifest(SessionStatus::Failed, Some(end_time), end_time).await?;
        }
        seal_session(self.store, &session, Some(writer), SealOptions::for_writer(), end_time).await?;
        Ok(())
    }
}

/// Hands the blob's compressed bytes to its sink. When the sink fails,
/// the bytes go back into the buffer (the sinks take a chunk whole or not
/// at all), to be handed over again.
async fn drain(blob: &mut OpenBlob) -> Result<(), Error> {
    if let Some(buffer) = blob.writer.inner_mut().filter(|buffer| !buffer.is_empty()) {
        let chunk = Bytes::from(std::mem::take(buffer));
        if let Err(error) = blob.sink.write(chunk.clone()).await {
            if let Some(buffer) = blob.writer.inner_mut() {
                let mut restored = Vec::from(chunk);
                restored.append(buffer);
                *buffer = restored;
            }
            return Err(error);
        }
    }
    Ok(())
}
