use std::fmt::Debug;

use bytes::Bytes;
use futures::stream::BoxStream;

use crate::{BlobKey, Error, SessionFile, SessionId, SessionMetadata, WriteMode, WriterId};

/// A stream of a blob's bytes, in chunks.
pub type ByteStream = BoxStream<'static, Result<Bytes, Error>>;

/// Where sessions live: a local directory or an S3 bucket.
///
/// Every implementation keeps the layout of `docs/FORMAT.md`
/// (`sessions/<id>/metadata.json`, `sessions/<id>/annotations.jsonl`,
/// `sessions/<id>/timeline.json`,
/// `sessions/<id>/raw/...`) and these promises, which the conformance suite
/// in the `testkit` crate checks for each backend:
///
/// - a blob becomes visible under its key only when [`BlobSink::commit`]
///   returns, and `metadata.json` is replaced whole or not at all;
/// - a session without `metadata.json` is incomplete and is not listed by
///   [`list_sessions`](crate::list_sessions);
/// - reads stream: a blob is never held whole in memory.
#[async_trait::async_trait]
pub trait SessionStore: Send + Sync + Debug {
    /// Where the store is, for messages: a directory or an `s3://` URL.
    fn location(&self) -> String;

    /// Reserves a new session id. Fails with [`Error::AlreadyExists`] when
    /// anything is stored under the id.
    async fn create_session(&self, id: &SessionId) -> Result<(), Error>;

    /// Ids of every session in the store, complete or not, sorted.
    async fn list_session_ids(&self) -> Result<Vec<SessionId>, Error>;

    /// Reads and checks a session's `metadata.json`.
    async fn read_metadata(&self, id: &SessionId) -> Result<SessionMetadata, Error>;

    /// Writes (or atomically replaces) a session's `metadata.json`.
    async fn write_metadata(&self, metadata: &SessionMetadata) -> Result<(), Error>;

    /// Starts writing a blob. Nothing is visible until the sink is committed.
    async fn create_blob(&self, id: &SessionId, key: &BlobKey) -> Result<Box<dyn BlobSink>, Error>;

    /// Streams a blob's bytes.
    async fn open_blob(&self, id: &SessionId, key: &BlobKey) -> Result<ByteStream, Error>;

    /// Keys of the committed blobs of a session, sorted.
    async fn list_blobs(&self, id: &SessionId) -> Result<Vec<BlobKey>, Error>;

    /// A session's `annotations.jsonl`, or `None` when it has none.
    async fn read_annotations(&self, id: &SessionId) -> Result<Option<Bytes>, Error>;

    /// Writes (or atomically replaces) a session's `annotations.jsonl`.
    async fn write_annotations(&self, id: &SessionId, contents: Bytes) -> Result<(), Error>;

    /// A session's `timeline.json`, or `None` when it has none.
    async fn read_timeline(&self, id: &SessionId) -> Result<Option<Bytes>, Error>;

    /// Writes (or atomically replaces) a session's `timeline.json`.
    async fn write_timeline(&self, id: &SessionId, contents: Bytes) -> Result<(), Error>;

    /// A session's [`SessionFile`] (a writer's manifest, the seal marker),
    /// or `None` when it has none.
    async fn read_file(&self, id: &SessionId, file: &SessionFile) -> Result<Option<Bytes>, Error> {
        let _ = (id, file);
        Err(Error::backend(format!("{}: this store keeps no writer files", self.location()), "unsupported"))
    }

    /// Writes a session's [`SessionFile`]: with [`WriteMode::CreateNew`],
    /// only when nothing is stored under its name, failing with
    /// [`Error::FileExists`] otherwise (atomically where the store can);
    /// with [`WriteMode::Replace`], replacing it whole or not at all.
    async fn write_file(
        &self,
        id: &SessionId,
        file: &SessionFile,
        contents: Bytes,
        mode: WriteMode,
    ) -> Result<(), Error> {
        let _ = (id, file, contents, mode);
        Err(Error::backend(format!("{}: this store keeps no writer files", self.location()), "unsupported"))
    }

    /// Deletes a session's [`SessionFile`]; deleting one that is not there
    /// is not an error.
    async fn delete_file(&self, id: &SessionId, file: &SessionFile) -> Result<(), Error> {
        let _ = (id, file);
        Err(Error::backend(format!("{}: this store keeps no writer files", self.location()), "unsupported"))
    }

    /// The writers with a manifest (`writers/<writer-id>.json`) in a
    /// session, sorted; names that are not valid writer ids are ignored.
    async fn list_writers(&self, id: &SessionId) -> Result<Vec<WriterId>, Error> {
        let _ = id;
        Ok(Vec::new())
    }

    /// Deletes everything stored under a session id. Fails with
    /// [`Error::NotFound`] when nothing is.
    async fn delete_session(&self, id: &SessionId) -> Result<(), Error>;

    /// Blobs of a session that a writer started and neither committed nor
    /// aborted, because its process stopped (a crash, SIGKILL). Their bytes
    /// are whatever reached the store before it stopped; `sessions repair`
    /// salvages their complete gzip members. Stores that keep nothing
    /// before a commit have none.
    async fn list_partial_blobs(&self, id: &SessionId) -> Result<Vec<PartialBlob>, Error> {
        let _ = id;
        Ok(Vec::new())
    }

    /// The bytes of a partial blob.
    async fn read_partial_blob(&self, id: &SessionId, partial: &PartialBlob) -> Result<Bytes, Error> {
        Err(Error::BlobNotFound { session: id.clone(), key: partial.name.clone() })
    }

    /// Removes a partial blob once it has been salvaged (or found empty).
    async fn remove_partial_blob(&self, id: &SessionId, partial: &PartialBlob) -> Result<(), Error> {
        Err(Error::BlobNotFound { session: id.clone(), key: partial.name.clone() })
    }
}

/// A blob left uncommitted by a writer that stopped: the key it was being
/// written under and the store's own name for the partial bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartialBlob {
    /// The key the blob would have been committed under.
    pub key: BlobKey,
    /// Where the partial bytes are, in the store's terms (a file name).
    pub name: String,
}

/// A blob being written. Dropping it without [`commit`](BlobSink::commit)
/// leaves nothing visible.
#[async_trait::async_trait]
pub trait BlobSink: Send {
    /// Appends bytes.
    async fn write(&mut self, chunk: Bytes) -> Result<(), Error>;

    /// Hands everything written so far to the operating system, so that it
    /// survives a crash of this process (not of the machine), and can be
    /// found by [`SessionStore::list_partial_blobs`] afterwards. A sink
    /// that keeps the blob in memory until it is committed (S3) does
    /// nothing; capture spools such blobs to a local file instead.
    async fn flush(&mut self) -> Result<(), Error> {
        Ok(())
    }

    /// Like [`flush`](BlobSink::flush), and waits until the bytes are on
    /// stable storage, so that they survive a crash of the machine.
    async fn sync(&mut self) -> Result<(), Error> {
        self.flush().await
    }

    /// Makes the blob visible under its key, durably. Fails with
    /// [`Error::BlobExists`] when the key is taken.
    async fn commit(self: Box<Self>) -> Result<(), Error>;

    /// Discards what was written.
    async fn abort(self: Box<Self>) -> Result<(), Error>;
}
