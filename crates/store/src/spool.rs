//! A store whose open blobs are spooled to local files until they are
//! committed: how capture to S3 keeps what it has received safe from a
//! crash of its process.
//!
//! An S3 blob is uploaded only when it is committed, so before that its
//! bytes live in the writer's memory and a crash loses them. [`SpooledStore`]
//! writes each blob to a local spool file instead,
//! `<spool dir>/<session id>/<blob key>.partial`, which
//! [`BlobSink::flush`] hands to the operating system and
//! [`BlobSink::sync`] to the disk; committing uploads the file to the inner
//! store and deletes it. Spool files left by a crash are the session's
//! partial blobs, which `sessions repair` salvages into the inner store.

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use tape_session::{BlobKey, BlobSink, Error, PartialBlob, SessionId, SessionStore};
use tokio::fs;
use tokio_util::io::ReaderStream;
use tracing::warn;

use crate::local::{files_under, relative_name};
use crate::sink_file::SinkFile;

/// The extension of spool files, after the blob's own name.
const SPOOL_EXTENSION: &str = ".partial";

/// Bytes read from a spool file at a time while it is uploaded.
const UPLOAD_CHUNK: usize = 1024 * 1024;

/// A [`SessionStore`] that delegates to `inner`, except that the blobs it
/// writes go to local spool files under `spool_dir` until they are
/// committed (see the module docs). Its partial blobs are the spool files
/// of the session and the inner store's own partial blobs.
#[derive(Debug, Clone)]
pub struct SpooledStore {
    inner: Arc<dyn SessionStore>,
    spool_dir: PathBuf,
}

impl SpooledStore {
    /// A store that spools the blobs written to `inner` under `spool_dir`,
    /// which is created when the first blob is.
    pub fn new(inner: Arc<dyn SessionStore>, spool_dir: PathBuf) -> Self {
        SpooledStore { inner, spool_dir }
    }

    /// The store the blobs are committed to.
    pub fn inner(&self) -> &Arc<dyn SessionStore> {
        &self.inner
    }

    /// The directory of the spool files.
    pub fn spool_dir(&self) -> &Path {
        &self.spool_dir
    }

    fn session_spool(&self, id: &SessionId) -> PathBuf {
        self.spool_dir.join(id.as_str())
    }

    fn spool_path(&self, id: &SessionId, key: &BlobKey) -> PathBuf {
        // Keys are validated: `raw/<date>/<hour>/<file>`, no `..`.
        self.session_spool(id).join(format!("{key}{SPOOL_EXTENSION}"))
    }

    /// Whether `partial` is one of this store's spool files rather than a
    /// partial blob of the inner store.
    fn is_spooled(&self, id: &SessionId, partial: &PartialBlob) -> bool {
        partial.name == self.spool_path(id, &partial.key).display().to_string()
    }

    async fn spooled_partials(&self, id: &SessionId) -> Result<Vec<PartialBlob>, Error> {
        let dir = self.session_spool(id);
        let mut partials: Vec<PartialBlob> = files_under(&dir.join("raw"))
            .await?
            .into_iter()
            .filter_map(|path| {
                let key: BlobKey = relative_name(&dir, &path)?.strip_suffix(SPOOL_EXTENSION)?.parse().ok()?;
                Some(PartialBlob { name: self.spool_path(id, &key).display().to_string(), key })
            })
            .collect();
        partials.sort_by_key(|partial| partial.key.to_string());
        Ok(partials)
    }
}

/// Removes `dir` and its parents up to `top` included, as long as they are
/// empty, so that a session's spool leaves no empty directories behind.
async fn prune(top: &Path, mut dir: &Path) {
    while dir.starts_with(top) && fs::remove_dir(dir).await.is_ok() {
        match dir.parent() {
            Some(parent) => dir = parent,
            None => break,
        }
    }
}

/// Sessions that have spool files under `spool_dir`, so that capture can
/// repair them when it starts: blobs a writer neither committed nor
/// aborted because its process stopped, or blobs still being written by a
/// writer that runs (this cannot tell them apart). None when the directory
/// does not exist.
pub async fn spooled_sessions(spool_dir: impl AsRef<Path>) -> Result<Vec<SessionId>, Error> {
    let spool_dir = spool_dir.as_ref();
    let mut entries = match fs::read_dir(spool_dir).await {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(Error::backend(format!("cannot list {}", spool_dir.display()), error)),
    };
    let mut ids = Vec::new();
    while let Some(entry) = entries
        .next_entry()
        .await
        .map_err(|error| Error::backend(format!("cannot list {}", spool_dir.display()), error))?
    {
        // Names that are not valid ids are not sessions.
        let Ok(id) = SessionId::new(entry.file_name().to_string_lossy()) else { continue };
        let dir = entry.path();
        let spooled = files_under(&dir.join("raw")).await?.iter().any(|path| {
            relative_name(&dir, path)
                .and_then(|name| name.strip_suffix(SPOOL_EXTENSION).map(|key| key.parse::<BlobKey>().is_ok()))
                .unwrap_or(false)
        });
        if spooled {
            ids.push(id);
        }
    }
    ids.sort();
    Ok(ids)
}

#[async_trait::async_trait]
impl tape_session::StoreLayer for SpooledStore {
    fn inner(&self) -> &dyn SessionStore {
        self.inner.as_ref()
    }

    async fn create_blob(&self, id: &SessionId, key: &BlobKey) -> Result<Box<dyn BlobSink>, Error> {
        // The inner sink checks that the session exists now, and receives
        // the spool file when the blob is committed.
        let inner = self.inner.create_blob(id, key).await?;
        let path = self.spool_path(id, key);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .await
                .map_err(|error| Error::backend(format!("cannot create {}", parent.display()), error))?;
        }
        let file = match fs::OpenOptions::new().write(true).create_new(true).open(&path).await {
            Ok(file) => file,
            // The spool file of a write that stopped: repair's input, never
            // overwritten. Writing under its key (as repair does) goes
            // straight to the inner store.
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => return Ok(inner),
            Err(error) => return Err(Error::backend(format!("cannot create {}", path.display()), error)),
        };
        Ok(Box::new(SpooledBlobSink {
            session: id.clone(),
            key: key.to_string(),
            session_spool: self.session_spool(id),
            file: SinkFile::new(file.into_std().await, format!("the spool file {}", path.display())),
            path,
            inner: Some(inner),
        }))
    }

    /// Deletes the session from the inner store, and its spool files.
    async fn delete_session(&self, id: &SessionId) -> Result<(), Error> {
        let deleted = self.inner.delete_session(id).await;
        let spool = self.session_spool(id);
        match fs::remove_dir_all(&spool).await {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(Error::backend(format!("cannot delete {}", spool.display()), error)),
        }
        deleted
    }

    /// The session's spool files, and the inner store's partial blobs of
    /// other keys. (An inner partial blob of a spooled key is the start of
    /// an upload of the spool file, which holds all of it; it is removed
    /// with the spool file.)
    async fn list_partial_blobs(&self, id: &SessionId) -> Result<Vec<PartialBlob>, Error> {
        let mut partials = self.spooled_partials(id).await?;
        let spooled: BTreeSet<BlobKey> = partials.iter().map(|partial| partial.key.clone()).collect();
        partials.extend(
            self.inner.list_partial_blobs(id).await?.into_iter().filter(|partial| !spooled.contains(&partial.key)),
        );
        Ok(partials)
    }

    async fn read_partial_blob(&self, id: &SessionId, partial: &PartialBlob) -> Result<Bytes, Error> {
        if !self.is_spooled(id, partial) {
            return self.inner.read_partial_blob(id, partial).await;
        }
        crate::local::read_partial_file(id, partial, &self.spool_path(id, &partial.key)).await
    }

    async fn remove_partial_blob(&self, id: &SessionId, partial: &PartialBlob) -> Result<(), Error> {
        if !self.is_spooled(id, partial) {
            return self.inner.remove_partial_blob(id, partial).await;
        }
        let path = self.spool_path(id, &partial.key);
        match fs::remove_file(&path).await {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(Error::backend(format!("cannot delete {}", path.display()), error)),
        }
        if let Some(parent) = path.parent() {
            prune(&self.session_spool(id), parent).await;
        }
        for inner in self.inner.list_partial_blobs(id).await? {
            if inner.key == partial.key {
                self.inner.remove_partial_blob(id, &inner).await?;
            }
        }
        Ok(())
    }
}

/// A blob being written to its spool file, uploaded through the inner
/// store's sink when it is committed.
struct SpooledBlobSink {
    session: SessionId,
    key: String,
    /// The session's spool directory, `<spool dir>/<session id>`.
    session_spool: PathBuf,
    /// The spool file.
    path: PathBuf,
    file: SinkFile,
    inner: Option<Box<dyn BlobSink>>,
}

impl SpooledBlobSink {
    fn failed(&self, verb: &str, error: io::Error) -> Error {
        Error::backend(format!("cannot {verb} the spool file {}", self.path.display()), error)
    }

    /// Streams the spool file to the inner sink and commits it.
    async fn upload(&mut self, mut inner: Box<dyn BlobSink>) -> Result<(), Error> {
        let file = fs::File::open(&self.path).await.map_err(|error| self.failed("open", error))?;
        let mut chunks = ReaderStream::with_capacity(file, UPLOAD_CHUNK);
        while let Some(chunk) = chunks.next().await {
            match chunk {
                Ok(chunk) => inner.write(chunk).await?,
                Err(error) => {
                    let _ = inner.abort().await;
                    return Err(self.failed("read", error));
                }
            }
        }
        inner.commit().await
    }
}

/// Deletes a spool file and the directories it leaves empty, up to the
/// session's spool directory `top`. The session's writer is the only one
/// to create files in its spool, and it is busy with the file's sink:
/// nothing races the pruning.
async fn delete_spool_file(path: &Path, top: &Path) -> io::Result<()> {
    match fs::remove_file(path).await {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    if let Some(parent) = path.parent() {
        prune(top, parent).await;
    }
    Ok(())
}

#[async_trait::async_trait]
impl BlobSink for SpooledBlobSink {
    async fn write(&mut self, chunk: Bytes) -> Result<(), Error> {
        self.file.write(chunk).await
    }

    async fn flush(&mut self) -> Result<(), Error> {
        self.file.flush().await
    }

    async fn sync(&mut self) -> Result<(), Error> {
        self.file.sync().await
    }

    /// Syncs the spool file, uploads it and deletes it. When the upload
    /// fails the spool file stays, for `sessions repair`; when the key is
    /// taken in the inner store it is deleted, as it can never be committed.
    async fn commit(mut self: Box<Self>) -> Result<(), Error> {
        // Closed: from here on, dropping the sink leaves the spool file in place.
        self.file.close_synced().await?;
        let Some(inner) = self.inner.take() else {
            return Err(self.failed("commit", io::Error::other("closed")));
        };
        match self.upload(inner).await {
            Ok(()) => {}
            Err(error @ Error::BlobExists { .. }) => {
                let _ = delete_spool_file(&self.path, &self.session_spool).await;
                return Err(error);
            }
            Err(error) => return Err(error),
        }
        if let Err(error) = delete_spool_file(&self.path, &self.session_spool).await {
            // The blob is committed; repair removes the copy left behind.
            warn!(session = %self.session, blob = %self.key, %error, "Cannot delete a spool file after its upload.");
        }
        Ok(())
    }

    async fn abort(mut self: Box<Self>) -> Result<(), Error> {
        self.file.close();
        if let Some(inner) = self.inner.take() {
            inner.abort().await?;
        }
        delete_spool_file(&self.path, &self.session_spool).await.map_err(|error| self.failed("delete", error))
    }
}

impl Drop for SpooledBlobSink {
    fn drop(&mut self) {
        if self.file.close() {
            // Neither committed nor aborted: discard the spool file, as the
            // other stores discard what was written.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}
