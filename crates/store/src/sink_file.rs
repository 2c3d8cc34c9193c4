//! The local file behind a blob sink, for the local store's temporary
//! files and the spooled store's spool files alike.
//!
//! Writes go straight to the operating system (a blocking write on tokio's
//! blocking pool), each at the offset where the bytes written in full end.
//! A write that fails (a full disk) is cut back to that offset, so the file
//! never holds a torn chunk and the same chunk can be written again once
//! there is space: the sink stays usable. (tokio's own `File` acknowledges
//! a write before it happens and reports its failure on a later call, which
//! is how a short file used to be committed as complete.)

use std::io::{self, Seek, SeekFrom, Write};
use std::sync::Arc;

use bytes::Bytes;
use tape_session::Error;

/// A file a blob sink writes; closed once committed or aborted.
pub(crate) struct SinkFile {
    file: Option<Arc<std::fs::File>>,
    /// Bytes written in full.
    len: u64,
    /// Whether a failed write may have left bytes past `len` that could not
    /// be cut off; they are cut before the file is committed.
    ragged: bool,
    /// The file for messages: `<path>` or `the spool file <path>`.
    describe: String,
}

/// Runs blocking file work on tokio's blocking pool.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> io::Result<T> + Send + 'static) -> io::Result<T> {
    tokio::task::spawn_blocking(work).await.map_err(io::Error::other)?
}

impl SinkFile {
    pub(crate) fn new(file: std::fs::File, describe: String) -> Self {
        SinkFile { file: Some(Arc::new(file)), len: 0, ragged: false, describe }
    }

    /// An error of `verb` on this file.
    pub(crate) fn failed(&self, verb: &str, error: io::Error) -> Error {
        Error::backend(format!("cannot {verb} {}", self.describe), error)
    }

    fn closed(&self, verb: &str) -> Error {
        self.failed(verb, io::Error::other("closed"))
    }

    fn open(&self, verb: &str) -> Result<Arc<std::fs::File>, Error> {
        self.file.clone().ok_or_else(|| self.closed(verb))
    }

    /// Appends `chunk` whole, or not at all: a failed write leaves the file
    /// as it was, and may be tried again.
    pub(crate) async fn write(&mut self, chunk: Bytes) -> Result<(), Error> {
        let file = self.open("write")?;
        let start = self.len;
        let written = blocking(move || {
            let mut file = &*file;
            let result = file.seek(SeekFrom::Start(start)).and_then(|_| file.write_all(&chunk));
            // Cutting a failed write off frees what it took, too.
            let cut = result.is_err() && file.set_len(start).is_ok();
            Ok((result.map(|()| chunk.len() as u64), cut))
        })
        .await;
        match written {
            Ok((Ok(len), _)) => {
                self.len += len;
                Ok(())
            }
            Ok((Err(error), cut)) => {
                self.ragged |= !cut;
                Err(self.failed("write", error))
            }
            Err(error) => {
                self.ragged = true;
                Err(self.failed("write", error))
            }
        }
    }

    /// Hands what was written to the operating system: every write already
    /// has, so there is nothing left to do.
    #[allow(clippy::unused_async)] // the sinks' flush is async
    pub(crate) async fn flush(&mut self) -> Result<(), Error> {
        self.open("flush").map(|_| ())
    }

    /// Waits until the data is on stable storage.
    pub(crate) async fn sync(&mut self) -> Result<(), Error> {
        let file = self.open("sync")?;
        blocking(move || file.sync_data()).await.map_err(|error| self.failed("sync", error))
    }

    /// Cuts off what failed writes left, syncs data and metadata, and
    /// closes the file; it is closed even when that fails (and then stays
    /// where it is, complete up to the last write that succeeded).
    pub(crate) async fn close_synced(&mut self) -> Result<(), Error> {
        let Some(file) = self.file.take() else { return Err(self.closed("commit")) };
        let (len, ragged) = (self.len, self.ragged);
        blocking(move || {
            if ragged {
                file.set_len(len)?;
            }
            file.sync_all()
        })
        .await
        .map_err(|error| self.failed("sync", error))
    }

    /// Closes the file; whether it was still open (neither committed nor
    /// aborted).
    pub(crate) fn close(&mut self) -> bool {
        self.file.take().is_some()
    }
}
