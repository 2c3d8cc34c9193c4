//! A directory that exports write files into: a local directory or a
//! prefix on S3. Like [`SessionStore`](crate::SessionStore), the trait is
//! here and the binary picks the implementation (`tape-store`).

use crate::{BlobSink, Error};

/// Where an export writes its files, each under a name relative to the
/// directory such as `traces.parquet` or `Phase=baseline/logs.parquet`.
///
/// A file appears under its name only when its sink is committed, whole
/// (a local file is written under a temporary name and renamed; an S3
/// object is put, or a multipart upload completed, only by the commit). A sink
/// dropped or aborted leaves nothing.
#[async_trait::async_trait]
pub trait OutputDir: Send + Sync {
    /// The directory, for messages: a path or `s3://bucket/prefix`.
    fn location(&self) -> String;

    /// One file of the directory, for messages: a path or an S3 URL.
    fn describe(&self, name: &str) -> String;

    /// The local directory, for writers that need files of their own (the
    /// OTLP file formats); `None` for a directory that is not local (S3).
    fn local_path(&self) -> Option<std::path::PathBuf>;

    /// Whether a file `name` exists.
    async fn exists(&self, name: &str) -> Result<bool, Error>;

    /// A new file `name`, replacing the file of that name when committed.
    async fn create(&self, name: &str) -> Result<Box<dyn BlobSink>, Error>;

    /// Removes the file `name`; removing a missing file is not an error.
    async fn remove(&self, name: &str) -> Result<(), Error>;
}
