//! The local file behind a blob sink, for the local store's temporary
//! files and the spooled store's spool files alike.

use std::io;

use tape_session::Error;
use tokio::fs;
use tokio::io::AsyncWriteExt;

/// A file a blob sink writes; closed once committed or aborted.
pub(crate) struct SinkFile {
    file: Option<fs::File>,
    /// The file for messages: `<path>` or `the spool file <path>`.
    describe: String,
}

impl SinkFile {
    pub(crate) fn new(file: fs::File, describe: String) -> Self {
        SinkFile { file: Some(file), describe }
    }

    /// An error of `verb` on this file.
    pub(crate) fn failed(&self, verb: &str, error: io::Error) -> Error {
        Error::backend(format!("cannot {verb} {}", self.describe), error)
    }

    fn closed(&self, verb: &str) -> Error {
        self.failed(verb, io::Error::other("closed"))
    }

    pub(crate) async fn write(&mut self, chunk: &[u8]) -> Result<(), Error> {
        let result = match self.file.as_mut() {
            Some(file) => file.write_all(chunk).await,
            None => return Err(self.closed("write")),
        };
        result.map_err(|error| self.failed("write", error))
    }

    /// Hands what was written to the operating system.
    pub(crate) async fn flush(&mut self) -> Result<(), Error> {
        let result = match self.file.as_mut() {
            Some(file) => file.flush().await,
            None => return Err(self.closed("flush")),
        };
        result.map_err(|error| self.failed("flush", error))
    }

    /// Flushes and waits until the data is on stable storage.
    pub(crate) async fn sync(&mut self) -> Result<(), Error> {
        let result = match self.file.as_mut() {
            Some(file) => {
                async {
                    file.flush().await?;
                    file.sync_data().await
                }
                .await
            }
            None => return Err(self.closed("sync")),
        };
        result.map_err(|error| self.failed("sync", error))
    }

    /// Flushes, syncs data and metadata, and closes the file; it is closed
    /// even when that fails.
    pub(crate) async fn close_synced(&mut self) -> Result<(), Error> {
        let Some(mut file) = self.file.take() else { return Err(self.closed("commit")) };
        let result = async {
            file.flush().await?;
            file.sync_all().await
        }
        .await;
        result.map_err(|error| self.failed("sync", error))
    }

    /// Closes the file; whether it was still open (neither committed nor
    /// aborted).
    pub(crate) fn close(&mut self) -> bool {
        self.file.take().is_some()
    }
}
