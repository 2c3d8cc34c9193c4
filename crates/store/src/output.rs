//! Where exports write their files: [`OutputDir`] on a local directory
//! ([`LocalOutputDir`]) and under an S3 prefix ([`S3OutputDir`]).
//!
//! A file appears under its name only when its sink is committed, whole:
//! a local file is written under a hidden temporary name beside its final
//! one, synced and renamed; an S3 object is uploaded so that only the
//! commit makes it visible (one PutObject, or a multipart upload that the
//! commit completes). A sink aborted or dropped leaves nothing.

use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use tape_session::{BlobSink, Error, OutputDir};
use tokio::fs;

use crate::sink_file::SinkFile;
use crate::{S3Config, S3Store, StoreLocation};

/// Checks a file name of an output directory: `/`-separated segments, none
/// empty, `.` or `..`, and not absolute, so that no name reaches outside
/// the directory.
fn check_name(location: &str, name: &str) -> Result<(), Error> {
    let reason = if name.is_empty() {
        Some("it is empty")
    } else if name.starts_with('/') {
        Some("it is absolute")
    } else if name.contains('\\') || name.contains('\0') {
        Some("it holds a backslash or a NUL byte")
    } else if name.split('/').any(|segment| segment.is_empty() || segment == "." || segment == "..") {
        Some("a segment is empty, '.' or '..'")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::backend(format!("refusing the file name {name:?} in {location}"), reason)),
        None => Ok(()),
    }
}

/// An export's files in a local directory, created when missing; a name
/// with `/` is a file in a subdirectory (`Phase=baseline/traces.parquet`).
#[derive(Debug, Clone)]
pub struct LocalOutputDir {
    dir: PathBuf,
}

impl LocalOutputDir {
    /// The directory `dir`; nothing is created until the first file.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        LocalOutputDir { dir: dir.into() }
    }

    /// The path of file `name`, once the name is checked.
    fn path(&self, name: &str) -> Result<PathBuf, Error> {
        check_name(&self.location(), name)?;
        Ok(self.dir.join(name))
    }
}

#[async_trait::async_trait]
impl OutputDir for LocalOutputDir {
    fn location(&self) -> String {
        self.dir.display().to_string()
    }

    fn describe(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    fn local_path(&self) -> Option<PathBuf> {
        Some(self.dir.clone())
    }

    async fn exists(&self, name: &str) -> Result<bool, Error> {
        let path = self.path(name)?;
        fs::try_exists(&path).await.map_err(|error| Error::backend(format!("cannot check {}", path.display()), error))
    }

    async fn create(&self, name: &str) -> Result<Box<dyn BlobSink>, Error> {
        let path = self.path(name)?;
        let parent = path.parent().unwrap_or(&self.dir).to_path_buf();
        let created = first_missing(&parent).await;
        fs::create_dir_all(&parent).await.map_err(|error| {
            Error::backend(format!("cannot create the directory {} for {}", parent.display(), path.display()), error)
        })?;
        let file_name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
        let temp = parent.join(format!(".{file_name}.{}-{:08x}.partial", std::process::id(), rand::random::<u32>()));
        let file = match fs::File::create(&temp).await {
            Ok(file) => file,
            Err(error) => {
                remove_empty_dirs(&parent, created.as_deref());
                return Err(Error::backend(format!("cannot create {}", path.display()), error));
            }
        };
        let file = SinkFile::new(file.into_std().await, path.display().to_string());
        Ok(Box::new(LocalOutputSink { path, temp, created, file }))
    }

    async fn remove(&self, name: &str) -> Result<(), Error> {
        let path = self.path(name)?;
        match fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(Error::backend(format!("cannot remove {}", path.display()), error)),
        }
    }
}

/// The outermost directory of `dir` and its ancestors that does not
/// exist yet: what creating `dir` makes, and what a sink that ends without
/// a file removes again (when empty).
async fn first_missing(dir: &Path) -> Option<PathBuf> {
    let mut missing = None;
    let mut current = Some(dir);
    while let Some(path) = current {
        if path.as_os_str().is_empty() || fs::try_exists(path).await.unwrap_or(true) {
            break;
        }
        missing = Some(path.to_path_buf());
        current = path.parent();
    }
    missing
}

/// Removes `dir` and its ancestors up to `created` while they are empty;
/// nothing when `created` is `None` (every directory existed before).
fn remove_empty_dirs(dir: &Path, created: Option<&Path>) {
    let Some(created) = created else { return };
    let mut current = Some(dir);
    while let Some(path) = current {
        // Fails, harmlessly, on a directory that holds anything.
        if std::fs::remove_dir(path).is_err() || path == created {
            break;
        }
        current = path.parent();
    }
}

/// A file being written under a hidden temporary name beside `path`.
struct LocalOutputSink {
    path: PathBuf,
    temp: PathBuf,
    /// The outermost directory this sink created, if it created any.
    created: Option<PathBuf>,
    file: SinkFile,
}

impl LocalOutputSink {
    /// Removes the temporary file, and the directories made for it when
    /// they are left empty.
    fn discard(&self) -> io::Result<()> {
        let removed = match std::fs::remove_file(&self.temp) {
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        };
        if let Some(parent) = self.path.parent() {
            remove_empty_dirs(parent, self.created.as_deref());
        }
        removed
    }

    /// Renames the synced temporary file to its name and syncs the
    /// directory, so that the name survives a power cut.
    async fn rename_into_place(&self) -> Result<(), Error> {
        let (temp, path) = (self.temp.clone(), self.path.clone());
        tokio::task::spawn_blocking(move || {
            std::fs::rename(&temp, &path)?;
            match path.parent() {
                Some(dir) if !dir.as_os_str().is_empty() => std::fs::File::open(dir)?.sync_all(),
                _ => Ok(()),
            }
        })
        .await
        .map_err(io::Error::other)
        .and_then(|result| result)
        .map_err(|error| Error::backend(format!("cannot commit {}", self.path.display()), error))
    }
}

#[async_trait::async_trait]
impl BlobSink for LocalOutputSink {
    async fn write(&mut self, chunk: Bytes) -> Result<(), Error> {
        self.file.write(chunk).await
    }

    async fn flush(&mut self) -> Result<(), Error> {
        self.file.flush().await
    }

    async fn sync(&mut self) -> Result<(), Error> {
        self.file.sync().await
    }

    async fn commit(mut self: Box<Self>) -> Result<(), Error> {
        let committed = match self.file.close_synced().await {
            Ok(()) => self.rename_into_place().await,
            Err(error) => Err(error),
        };
        if committed.is_err() {
            // An export's file is whole or absent: nothing to salvage.
            let _ = self.discard();
        }
        committed
    }

    async fn abort(mut self: Box<Self>) -> Result<(), Error> {
        self.file.close();
        self.discard().map_err(|error| Error::backend(format!("cannot discard {}", self.path.display()), error))
    }
}

impl Drop for LocalOutputSink {
    fn drop(&mut self) {
        if self.file.close() {
            // Neither committed nor aborted: remove the partial file.
            let _ = self.discard();
        }
    }
}

/// An export's files as objects `<prefix>/<name>` of an S3 bucket, written
/// with the S3 store's client, timeouts and retries.
#[derive(Debug, Clone)]
pub struct S3OutputDir {
    store: S3Store,
}

impl S3OutputDir {
    /// The objects under `config.prefix` in `config.bucket`. Nothing is sent
    /// until the first operation; the settings are checked here as
    /// [`S3Store::new`] checks them.
    pub fn new(config: S3Config) -> Result<S3OutputDir, Error> {
        Ok(S3OutputDir { store: S3Store::new(config)? })
    }

    /// The object key of file `name`, once the name is checked.
    fn object(&self, name: &str) -> Result<String, Error> {
        check_name(&self.location(), name)?;
        Ok(self.object_key(name))
    }

    fn object_key(&self, name: &str) -> String {
        match self.store.prefix() {
            "" => name.to_owned(),
            prefix => format!("{prefix}/{name}"),
        }
    }
}

/// The `Content-Type` of an export's file, by its extension.
fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, extension)| extension) {
        Some("parquet") => "application/vnd.apache.parquet",
        Some("json") => "application/json",
        Some("jsonl") => "application/x-ndjson",
        Some("gz") => "application/gzip",
        Some("zst") => "application/zstd",
        _ => "application/octet-stream",
    }
}

#[async_trait::async_trait]
impl OutputDir for S3OutputDir {
    fn location(&self) -> String {
        StoreLocation::S3 { bucket: self.store.bucket().to_owned(), prefix: self.store.prefix().to_owned() }.to_string()
    }

    fn describe(&self, name: &str) -> String {
        format!("s3://{}/{}", self.store.bucket(), self.object_key(name))
    }

    fn local_path(&self) -> Option<PathBuf> {
        None
    }

    async fn exists(&self, name: &str) -> Result<bool, Error> {
        self.store.object_exists(&self.object(name)?).await
    }

    async fn create(&self, name: &str) -> Result<Box<dyn BlobSink>, Error> {
        Ok(self.store.replacing_sink(self.object(name)?, content_type(name)))
    }

    async fn remove(&self, name: &str) -> Result<(), Error> {
        self.store.remove_object(&self.object(name)?).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_inside_the_directory() {
        for name in ["traces.parquet", "Phase=baseline/traces.parquet", "a/b/c.json", "..x/y"] {
            assert!(check_name("out", name).is_ok(), "{name} was refused");
        }
        for name in ["", "/etc/passwd", "../x", "a/../b", "a//b", "a/", "./a", "a\\b", "a\0b"] {
            let error = check_name("out", name).expect_err(name);
            assert!(error.to_string().contains(&format!("{name:?} in out")), "{error}");
        }
    }

    #[test]
    fn content_types_follow_the_extension() {
        assert_eq!(content_type("Phase=a/traces.parquet"), "application/vnd.apache.parquet");
        assert_eq!(content_type("labels.json"), "application/json");
        assert_eq!(content_type("traces.pb"), "application/octet-stream");
    }
}
