use bytes::Bytes;
use tape_otlp::Signal;
use tracing::debug;

use crate::blob::{BlobWriter, DEFAULT_COMPRESSION_LEVEL};
use crate::{BlobEntry, BlobKey, BlobSink, Error, SessionMetadata, SessionStatus, SessionStore, Timestamp};

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
}

/// Writes a session through any [`SessionStore`]: one open blob per signal,
/// rolled at the UTC hour boundary of receive time and by size, and
/// `metadata.json` written after every blob is committed.
pub struct SessionWriter<'a> {
    store: &'a dyn SessionStore,
    metadata: SessionMetadata,
    options: WriterOptions,
    open: [Option<OpenBlob>; 3],
    next_blob: u64,
}

fn slot(signal: Signal) -> usize {
    match signal {
        Signal::Traces => 0,
        Signal::Metrics => 1,
        Signal::Logs => 2,
    }
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
        Ok(SessionWriter { store, metadata, options, open: [None, None, None], next_blob })
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

    /// Appends one record of `signal`.
    pub async fn append(
        &mut self,
        signal: Signal,
        receive_time: Timestamp,
        item_count: u64,
        payload: &[u8],
    ) -> Result<(), Error> {
        let partition = receive_time.hour_partition();
        let options = &self.options;
        let roll = self.open[slot(signal)].as_ref().is_some_and(|blob| {
            let summary = blob.writer.summary();
            let age = receive_time.unix_nanos().saturating_sub(summary.first_receive_time.unix_nanos());
            blob.partition != partition
                || summary.uncompressed_bytes >= options.max_blob_bytes
                || options.max_blob_age_nanos.is_some_and(|max| summary.records > 0 && age >= max)
        });
        if roll {
            self.close(signal).await?;
        }
        if self.open[slot(signal)].is_none() {
            let blob_id = format!("{:06}", self.next_blob);
            self.next_blob += 1;
            let key = BlobKey::new(signal, receive_time, &blob_id)?;
            let sink = self.store.create_blob(&self.metadata.session_id, &key).await?;
            let writer = BlobWriter::new(Vec::with_capacity(self.options.chunk_bytes), self.options.compression_level);
            self.open[slot(signal)] = Some(OpenBlob { key, partition, writer, sink });
        }
        let session = &self.metadata.session_id;
        let Some(blob) = self.open[slot(signal)].as_mut() else { unreachable!("opened above") };
        blob.writer.append(receive_time, item_count, payload).map_err(|source| Error::Write {
            session: session.clone(),
            key: blob.key.to_string(),
            source,
        })?;
        if blob.writer.inner_mut().is_some_and(|buffer| buffer.len() >= self.options.chunk_bytes) {
            drain(blob).await?;
        }
        Ok(())
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
        let Some(blob) = self.open[slot(signal)].take() else { return Ok(()) };
        let OpenBlob { key, writer, mut sink, .. } = blob;
        let (rest, summary) = writer.finish().map_err(|source| Error::Write {
            session: self.metadata.session_id.clone(),
            key: key.to_string(),
            source,
        })?;
        if !rest.is_empty() {
            sink.write(Bytes::from(rest)).await?;
        }
        sink.commit().await?;
        debug!(session = %self.metadata.session_id, blob = %key, records = summary.records, "Blob committed.");
        self.metadata.add_blob(BlobEntry::new(key, summary));
        Ok(())
    }

    /// Commits every open blob and writes the final `metadata.json` with
    /// `status` and `end_time`.
    pub async fn finish(mut self, end_time: Timestamp, status: SessionStatus) -> Result<SessionMetadata, Error> {
        for signal in Signal::ALL {
            self.close(signal).await?;
        }
        self.metadata.finish(end_time, status);
        self.store.write_metadata(&self.metadata).await?;
        Ok(self.metadata)
    }

    /// Discards open blobs and deletes everything written under the
    /// session, so that a failed write leaves nothing behind.
    pub async fn discard(mut self) -> Result<(), Error> {
        for blob in self.open.iter_mut().filter_map(Option::take) {
            blob.sink.abort().await?;
        }
        match self.store.delete_session(&self.metadata.session_id).await {
            Ok(()) | Err(Error::NotFound(_)) => Ok(()),
            Err(error) => Err(error),
        }
    }
}

async fn drain(blob: &mut OpenBlob) -> Result<(), Error> {
    if let Some(buffer) = blob.writer.inner_mut().filter(|buffer| !buffer.is_empty()) {
        let chunk = Bytes::from(std::mem::take(buffer));
        blob.sink.write(chunk).await?;
    }
    Ok(())
}
