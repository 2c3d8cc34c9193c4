//! [`StoreLayer`]: a store that wraps another and changes a few of its
//! operations, written once instead of a full [`SessionStore`] that
//! repeats every delegating method.

use std::fmt::Debug;

use bytes::Bytes;

use crate::{
    BlobKey, BlobSink, ByteStream, Error, PartialBlob, SessionFile, SessionId, SessionMetadata, SessionStore,
    WriteMode, WriterId,
};

/// A store over another store: [`StoreLayer::inner`] is the store wrapped,
/// every operation goes to it unless the layer overrides it, and every
/// layer is a [`SessionStore`]. Such as a store that spools blobs to local
/// files, one that counts what it writes, or one that fails on demand in a
/// test.
///
/// ```
/// use tape_session::{Error, SessionId, SessionStore, StoreLayer};
///
/// /// A store whose sessions cannot be deleted.
/// #[derive(Debug)]
/// struct Undeletable(Box<dyn SessionStore>);
///
/// #[async_trait::async_trait]
/// impl StoreLayer for Undeletable {
///     fn inner(&self) -> &dyn SessionStore {
///         self.0.as_ref()
///     }
///
///     async fn delete_session(&self, id: &SessionId) -> Result<(), Error> {
///         Err(Error::backend(format!("cannot delete session {id}"), std::io::Error::other("read-only")))
///     }
/// }
/// ```
#[async_trait::async_trait]
pub trait StoreLayer: Send + Sync + Debug {
    /// The store wrapped.
    fn inner(&self) -> &dyn SessionStore;

    /// See [`SessionStore::location`].
    fn location(&self) -> String {
        self.inner().location()
    }

    /// See [`SessionStore::create_session`].
    async fn create_session(&self, id: &SessionId) -> Result<(), Error> {
        self.inner().create_session(id).await
    }

    /// See [`SessionStore::list_session_ids`].
    async fn list_session_ids(&self) -> Result<Vec<SessionId>, Error> {
        self.inner().list_session_ids().await
    }

    /// See [`SessionStore::read_metadata`].
    async fn read_metadata(&self, id: &SessionId) -> Result<SessionMetadata, Error> {
        self.inner().read_metadata(id).await
    }

    /// See [`SessionStore::write_metadata`].
    async fn write_metadata(&self, metadata: &SessionMetadata) -> Result<(), Error> {
        self.inner().write_metadata(metadata).await
    }

    /// See [`SessionStore::create_blob`].
    async fn create_blob(&self, id: &SessionId, key: &BlobKey) -> Result<Box<dyn BlobSink>, Error> {
        self.inner().create_blob(id, key).await
    }

    /// See [`SessionStore::open_blob`].
    async fn open_blob(&self, id: &SessionId, key: &BlobKey) -> Result<ByteStream, Error> {
        self.inner().open_blob(id, key).await
    }

    /// See [`SessionStore::list_blobs`].
    async fn list_blobs(&self, id: &SessionId) -> Result<Vec<BlobKey>, Error> {
        self.inner().list_blobs(id).await
    }

    /// See [`SessionStore::read_annotations`].
    async fn read_annotations(&self, id: &SessionId) -> Result<Option<Bytes>, Error> {
        self.inner().read_annotations(id).await
    }

    /// See [`SessionStore::write_annotations`].
    async fn write_annotations(&self, id: &SessionId, contents: Bytes) -> Result<(), Error> {
        self.inner().write_annotations(id, contents).await
    }

    /// See [`SessionStore::read_timeline`].
    async fn read_timeline(&self, id: &SessionId) -> Result<Option<Bytes>, Error> {
        self.inner().read_timeline(id).await
    }

    /// See [`SessionStore::write_timeline`].
    async fn write_timeline(&self, id: &SessionId, contents: Bytes) -> Result<(), Error> {
        self.inner().write_timeline(id, contents).await
    }

    /// See [`SessionStore::read_file`].
    async fn read_file(&self, id: &SessionId, file: &SessionFile) -> Result<Option<Bytes>, Error> {
        self.inner().read_file(id, file).await
    }

    /// See [`SessionStore::write_file`].
    async fn write_file(
        &self,
        id: &SessionId,
        file: &SessionFile,
        contents: Bytes,
        mode: WriteMode,
    ) -> Result<(), Error> {
        self.inner().write_file(id, file, contents, mode).await
    }

    /// See [`SessionStore::delete_file`].
    async fn delete_file(&self, id: &SessionId, file: &SessionFile) -> Result<(), Error> {
        self.inner().delete_file(id, file).await
    }

    /// See [`SessionStore::list_writers`].
    async fn list_writers(&self, id: &SessionId) -> Result<Vec<WriterId>, Error> {
        self.inner().list_writers(id).await
    }

    /// See [`SessionStore::delete_session`].
    async fn delete_session(&self, id: &SessionId) -> Result<(), Error> {
        self.inner().delete_session(id).await
    }

    /// See [`SessionStore::list_partial_blobs`].
    async fn list_partial_blobs(&self, id: &SessionId) -> Result<Vec<PartialBlob>, Error> {
        self.inner().list_partial_blobs(id).await
    }

    /// See [`SessionStore::read_partial_blob`].
    async fn read_partial_blob(&self, id: &SessionId, partial: &PartialBlob) -> Result<Bytes, Error> {
        self.inner().read_partial_blob(id, partial).await
    }

    /// See [`SessionStore::remove_partial_blob`].
    async fn remove_partial_blob(&self, id: &SessionId, partial: &PartialBlob) -> Result<(), Error> {
        self.inner().remove_partial_blob(id, partial).await
    }
}

#[async_trait::async_trait]
impl<L: StoreLayer> SessionStore for L {
    fn location(&self) -> String {
        StoreLayer::location(self)
    }

    async fn create_session(&self, id: &SessionId) -> Result<(), Error> {
        StoreLayer::create_session(self, id).await
    }

    async fn list_session_ids(&self) -> Result<Vec<SessionId>, Error> {
        StoreLayer::list_session_ids(self).await
    }

    async fn read_metadata(&self, id: &SessionId) -> Result<SessionMetadata, Error> {
        StoreLayer::read_metadata(self, id).await
    }

    async fn write_metadata(&self, metadata: &SessionMetadata) -> Result<(), Error> {
        StoreLayer::write_metadata(self, metadata).await
    }

    async fn create_blob(&self, id: &SessionId, key: &BlobKey) -> Result<Box<dyn BlobSink>, Error> {
        StoreLayer::create_blob(self, id, key).await
    }

    async fn open_blob(&self, id: &SessionId, key: &BlobKey) -> Result<ByteStream, Error> {
        StoreLayer::open_blob(self, id, key).await
    }

    async fn list_blobs(&self, id: &SessionId) -> Result<Vec<BlobKey>, Error> {
        StoreLayer::list_blobs(self, id).await
    }

    async fn read_annotations(&self, id: &SessionId) -> Result<Option<Bytes>, Error> {
        StoreLayer::read_annotations(self, id).await
    }

    async fn write_annotations(&self, id: &SessionId, contents: Bytes) -> Result<(), Error> {
        StoreLayer::write_annotations(self, id, contents).await
    }

    async fn read_timeline(&self, id: &SessionId) -> Result<Option<Bytes>, Error> {
        StoreLayer::read_timeline(self, id).await
    }

    async fn write_timeline(&self, id: &SessionId, contents: Bytes) -> Result<(), Error> {
        StoreLayer::write_timeline(self, id, contents).await
    }

    async fn read_file(&self, id: &SessionId, file: &SessionFile) -> Result<Option<Bytes>, Error> {
        StoreLayer::read_file(self, id, file).await
    }

    async fn write_file(
        &self,
        id: &SessionId,
        file: &SessionFile,
        contents: Bytes,
        mode: WriteMode,
    ) -> Result<(), Error> {
        StoreLayer::write_file(self, id, file, contents, mode).await
    }

    async fn delete_file(&self, id: &SessionId, file: &SessionFile) -> Result<(), Error> {
        StoreLayer::delete_file(self, id, file).await
    }

    async fn list_writers(&self, id: &SessionId) -> Result<Vec<WriterId>, Error> {
        StoreLayer::list_writers(self, id).await
    }

    async fn delete_session(&self, id: &SessionId) -> Result<(), Error> {
        StoreLayer::delete_session(self, id).await
    }

    async fn list_partial_blobs(&self, id: &SessionId) -> Result<Vec<PartialBlob>, Error> {
        StoreLayer::list_partial_blobs(self, id).await
    }

    async fn read_partial_blob(&self, id: &SessionId, partial: &PartialBlob) -> Result<Bytes, Error> {
        StoreLayer::read_partial_blob(self, id, partial).await
    }

    async fn remove_partial_blob(&self, id: &SessionId, partial: &PartialBlob) -> Result<(), Error> {
        StoreLayer::remove_partial_blob(self, id, partial).await
    }
}
