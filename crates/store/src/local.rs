//! The session store on a local directory.

use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::StreamExt;
use tape_session::{
    BlobKey, BlobSink, ByteStream, Error, PartialBlob, SessionFile, SessionId, SessionMetadata, SessionStore,
    WriteMode, WriterId,
};
use tokio::fs;
use tokio_util::io::ReaderStream;

use crate::sink_file::SinkFile;

/// Chunk size of blob reads.
const READ_CHUNK: usize = 64 * 1024;

/// Sessions under `<root>/sessions/<id>/`. Every file is written under a
/// hidden temporary name in its final directory, synced, and then linked to
/// its final name, so a reader never sees a partial file.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    /// A store rooted at `root`; nothing is created until the first write.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalStore { root: root.into() }
    }

    fn sessions_dir(&self) -> PathBuf {
        self.root.join("sessions")
    }

    fn session_dir(&self, id: &SessionId) -> PathBuf {
        self.sessions_dir().join(id.as_str())
    }

    fn blob_path(&self, id: &SessionId, key: &BlobKey) -> PathBuf {
        // Keys are validated: `raw/<date>/<hour>/<file>`, no `..`.
        self.session_dir(id).join(key.to_string())
    }

    /// The session's directory, when it is one: a symbolic link in its
    /// place (or in place of `sessions/`) is refused, never followed.
    async fn require_session(&self, id: &SessionId) -> Result<PathBuf, Error> {
        let dir = self.session_dir(id);
        refuse_symlink(&self.sessions_dir()).await?;
        match fs::symlink_metadata(&dir).await {
            Ok(meta) if meta.file_type().is_symlink() => Err(Error::Symlink { path: dir.display().to_string() }),
            Ok(meta) if meta.is_dir() => Ok(dir),
            Ok(_) => Err(Error::NotFound(id.clone())),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Err(Error::NotFound(id.clone())),
            Err(error) => Err(Error::backend(format!("cannot read {}", dir.display()), error)),
        }
    }

    /// The file of a partial blob, when `partial` names one of this
    /// session's temporary blob files.
    fn partial_path(&self, id: &SessionId, partial: &PartialBlob) -> Result<PathBuf, Error> {
        // Names are checked like keys, so that none reaches outside the session.
        match partial_key(&partial.name) {
            Some(key) if key == partial.key => Ok(self.session_dir(id).join(&partial.name)),
            _ => Err(Error::BlobNotFound { session: id.clone(), key: partial.name.clone() }),
        }
    }
}

/// The key of a partial blob named `raw/<date>/<hour>/.<file>.tmp-<16 hex>`
/// (relative to its session): the temporary file of a blob not committed.
fn partial_key(name: &str) -> Option<BlobKey> {
    let (dir, file) = name.rsplit_once('/')?;
    let (file, suffix) = file.strip_prefix('.')?.rsplit_once(".tmp-")?;
    if suffix.len() != 16 || !suffix.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return None;
    }
    format!("{dir}/{file}").parse().ok()
}

/// The writer whose manifest is named `name` (`<writer-id>.json`), if it is one.
pub(crate) fn writer_of_manifest(name: &str) -> Option<WriterId> {
    WriterId::new(name.strip_suffix(".json")?).ok()
}

/// Every file under `dir`, at any depth; none when it does not exist.
pub(crate) async fn files_under(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let mut entries = match fs::read_dir(&dir).await {
            Ok(entries) => entries,
            Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
            Err(error) => return Err(Error::backend(format!("cannot list {}", dir.display()), error)),
        };
        while let Some(entry) = entries
            .next_entry()
            .await
            .map_err(|error| Error::backend(format!("cannot list {}", dir.display()), error))?
        {
            if entry.file_type().await.is_ok_and(|kind| kind.is_dir()) {
                pending.push(entry.path());
            } else {
                files.push(entry.path());
            }
        }
    }
    Ok(files)
}

/// `path` relative to `base` with `/` separators, when it is under `base`
/// and valid UTF-8.
pub(crate) fn relative_name(base: &Path, path: &Path) -> Option<String> {
    let parts: Option<Vec<&str>> =
        path.strip_prefix(base).ok()?.components().map(|component| component.as_os_str().to_str()).collect();
    Some(parts?.join("/"))
}

fn temp_name(path: &Path) -> PathBuf {
    let name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{:016x}", rand::random::<u64>()))
}

/// Writes `contents` to `path` atomically: a temporary file beside it,
/// written in full and synced, then renamed over it. Every step's result is
/// checked (a full disk fails the write, not the sync after it), and on any
/// failure the temporary file is removed and `path` is left as it was: a
/// short file never replaces a complete one.
async fn write_atomically(path: &Path, contents: Bytes) -> io::Result<()> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || write_atomically_blocking(&path, &contents)).await.map_err(io::Error::other)?
}

fn write_atomically_blocking(path: &Path, contents: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let temp = temp_name(path);
    let result = (|| {
        // A std file writes through: nothing is left in a buffer to fail later.
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(contents)?;
        file.flush()?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
        return result;
    }
    // The rename itself survives a power cut once the directory is synced;
    // the file is complete either way.
    if let Some(dir) = path.parent()
        && let Ok(dir) = std::fs::File::open(dir)
    {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Writes `contents` to `path` only when nothing is there: a temporary
/// file beside it, written in full and synced, then hard-linked to `path`,
/// which fails (atomically, like `O_EXCL`) when the name is taken. The
/// temporary file is removed either way. `Ok(false)` when `path` exists.
async fn write_create_only(path: &Path, contents: Bytes) -> io::Result<bool> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || write_create_only_blocking(&path, &contents)).await.map_err(io::Error::other)?
}

fn write_create_only_blocking(path: &Path, contents: &[u8]) -> io::Result<bool> {
    use std::io::Write;
    let temp = temp_name(path);
    let written = (|| {
        let mut file = std::fs::File::create_new(&temp)?;
        file.write_all(contents)?;
        file.flush()?;
        file.sync_all()
    })();
    let linked = written.and_then(|()| std::fs::hard_link(&temp, path));
    let _ = std::fs::remove_file(&temp);
    match linked {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
        Err(error) => return Err(error),
    }
    if let Some(dir) = path.parent()
        && let Ok(dir) = std::fs::File::open(dir)
    {
        let _ = dir.sync_all();
    }
    Ok(true)
}

/// Refuses `path` when it is a symbolic link: the store never follows one,
/// so that nothing it reads, writes or deletes is outside it. A path that
/// does not exist passes.
async fn refuse_symlink(path: &Path) -> Result<(), Error> {
    match fs::symlink_metadata(path).await {
        Ok(meta) if meta.file_type().is_symlink() => Err(Error::Symlink { path: path.display().to_string() }),
        Ok(_) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(Error::backend(format!("cannot read {}", path.display()), error)),
    }
}

/// Refuses a symbolic link anywhere from `dir` down to `path` (which is
/// under it), `dir` included.
async fn refuse_symlinks_down_to(dir: &Path, path: &Path) -> Result<(), Error> {
    refuse_symlink(dir).await?;
    let Ok(relative) = path.strip_prefix(dir) else { return refuse_symlink(path).await };
    let mut current = dir.to_path_buf();
    for component in relative.components() {
        current.push(component);
        refuse_symlink(&current).await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl SessionStore for LocalStore {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    async fn create_session(&self, id: &SessionId) -> Result<(), Error> {
        let parent = self.sessions_dir();
        fs::create_dir_all(&parent).await.map_err(|error| {
            Error::backend(format!("cannot create the store directory {}", parent.display()), error)
        })?;
        let dir = self.session_dir(id);
        match fs::create_dir(&dir).await {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Err(Error::AlreadyExists(id.clone())),
            Err(error) => Err(Error::backend(format!("cannot create {}", dir.display()), error)),
        }
    }

    async fn list_session_ids(&self) -> Result<Vec<SessionId>, Error> {
        let dir = self.sessions_dir();
        let mut entries = match fs::read_dir(&dir).await {
            Ok(entries) => entries,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(Error::backend(format!("cannot list {}", dir.display()), error)),
        };
        let mut ids = Vec::new();
        while let Some(entry) = entries
            .next_entry()
            .await
            .map_err(|error| Error::backend(format!("cannot list {}", dir.display()), error))?
        {
            let is_dir = entry.file_type().await.is_ok_and(|kind| kind.is_dir());
            // Names that are not valid ids are not sessions (editor files, hidden files).
            if let (true, Ok(id)) = (is_dir, SessionId::new(entry.file_name().to_string_lossy())) {
                ids.push(id);
            }
        }
        ids.sort();
        Ok(ids)
    }

    async fn read_metadata(&self, id: &SessionId) -> Result<SessionMetadata, Error> {
        let dir = self.session_dir(id);
        let path = dir.join("metadata.json");
        refuse_symlink(&self.sessions_dir()).await?;
        refuse_symlinks_down_to(&dir, &path).await?;
        let bytes = match fs::read(&path).await {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Err(Error::NotFound(id.clone())),
            Err(error) => return Err(Error::backend(format!("cannot read {}", path.display()), error)),
        };
        SessionMetadata::from_stored_json(id, &bytes)
    }

    async fn write_metadata(&self, metadata: &SessionMetadata) -> Result<(), Error> {
        let dir = self.require_session(&metadata.session_id).await?;
        let path = dir.join("metadata.json");
        write_atomically(&path, Bytes::from(metadata.to_json()))
            .await
            .map_err(|error| Error::backend(format!("cannot write {}", path.display()), error))
    }

    async fn create_blob(&self, id: &SessionId, key: &BlobKey) -> Result<Box<dyn BlobSink>, Error> {
        let dir = self.require_session(id).await?;
        let path = self.blob_path(id, key);
        let context = |verb: &str| format!("cannot {verb} {}", path.display());
        if let Some(parent) = path.parent() {
            refuse_symlinks_down_to(&dir, parent).await?;
            fs::create_dir_all(parent)
                .await
                .map_err(|error| Error::backend(context("create the directory of"), error))?;
        }
        let temp = temp_name(&path);
        let file = fs::File::create(&temp).await.map_err(|error| Error::backend(context("create"), error))?;
        let file = SinkFile::new(file.into_std().await, path.display().to_string());
        Ok(Box::new(LocalBlobSink { session: id.clone(), key: key.to_string(), path, temp, file }))
    }

    async fn open_blob(&self, id: &SessionId, key: &BlobKey) -> Result<ByteStream, Error> {
        let path = self.blob_path(id, key);
        refuse_symlink(&self.sessions_dir()).await?;
        refuse_symlinks_down_to(&self.session_dir(id), &path).await?;
        let file = match fs::File::open(&path).await {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                self.require_session(id).await?;
                return Err(Error::BlobNotFound { session: id.clone(), key: key.to_string() });
            }
            Err(error) => return Err(Error::backend(format!("cannot open {}", path.display()), error)),
        };
        let context = format!("cannot read {}", path.display());
        Ok(ReaderStream::with_capacity(file, READ_CHUNK)
            .map(move |chunk| chunk.map_err(|error| Error::backend(context.clone(), error)))
            .boxed())
    }

    async fn list_blobs(&self, id: &SessionId) -> Result<Vec<BlobKey>, Error> {
        let dir = self.require_session(id).await?;
        let mut keys: Vec<BlobKey> = files_under(&dir.join("raw"))
            .await?
            .iter()
            // Temporary files and strangers do not parse as keys.
            .filter_map(|path| relative_name(&dir, path)?.parse().ok())
            .collect();
        keys.sort_by_key(ToString::to_string);
        Ok(keys)
    }

    async fn read_annotations(&self, id: &SessionId) -> Result<Option<Bytes>, Error> {
        let dir = self.require_session(id).await?;
        let path = dir.join("annotations.jsonl");
        refuse_symlink(&path).await?;
        match fs::read(&path).await {
            Ok(bytes) => Ok(Some(Bytes::from(bytes))),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(Error::backend(format!("cannot read {}", path.display()), error)),
        }
    }

    async fn write_annotations(&self, id: &SessionId, contents: Bytes) -> Result<(), Error> {
        let dir = self.require_session(id).await?;
        let path = dir.join("annotations.jsonl");
        write_atomically(&path, contents)
            .await
            .map_err(|error| Error::backend(format!("cannot write {}", path.display()), error))
    }

    async fn read_timeline(&self, id: &SessionId) -> Result<Option<Bytes>, Error> {
        let dir = self.require_session(id).await?;
        let path = dir.join("timeline.json");
        refuse_symlink(&path).await?;
        match fs::read(&path).await {
            Ok(bytes) => Ok(Some(Bytes::from(bytes))),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(Error::backend(format!("cannot read {}", path.display()), error)),
        }
    }

    async fn write_timeline(&self, id: &SessionId, contents: Bytes) -> Result<(), Error> {
        let dir = self.require_session(id).await?;
        let path = dir.join("timeline.json");
        write_atomically(&path, contents)
            .await
            .map_err(|error| Error::backend(format!("cannot write {}", path.display()), error))
    }

    async fn read_file(&self, id: &SessionId, file: &SessionFile) -> Result<Option<Bytes>, Error> {
        let dir = self.require_session(id).await?;
        let path = dir.join(file.path());
        refuse_symlinks_down_to(&dir, &path).await?;
        match fs::read(&path).await {
            Ok(bytes) => Ok(Some(Bytes::from(bytes))),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(Error::backend(format!("cannot read {}", path.display()), error)),
        }
    }

    async fn write_file(
        &self,
        id: &SessionId,
        file: &SessionFile,
        contents: Bytes,
        mode: WriteMode,
    ) -> Result<(), Error> {
        let dir = self.require_session(id).await?;
        let path = dir.join(file.path());
        let failed = |error| Error::backend(format!("cannot write {}", path.display()), error);
        if let Some(parent) = path.parent() {
            refuse_symlinks_down_to(&dir, parent).await?;
            fs::create_dir_all(parent).await.map_err(failed)?;
        }
        refuse_symlink(&path).await?;
        match mode {
            WriteMode::Replace => write_atomically(&path, contents).await.map_err(failed),
            WriteMode::CreateNew => match write_create_only(&path, contents).await {
                Ok(true) => Ok(()),
                Ok(false) => Err(Error::FileExists { session: id.clone(), file: file.path() }),
                Err(error) => Err(failed(error)),
            },
        }
    }

    async fn delete_file(&self, id: &SessionId, file: &SessionFile) -> Result<(), Error> {
        let dir = self.require_session(id).await?;
        let path = dir.join(file.path());
        refuse_symlinks_down_to(&dir, &path).await?;
        match fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(Error::backend(format!("cannot delete {}", path.display()), error)),
        }
    }

    async fn list_writers(&self, id: &SessionId) -> Result<Vec<WriterId>, Error> {
        let dir = self.require_session(id).await?.join("writers");
        refuse_symlink(&dir).await?;
        let mut entries = match fs::read_dir(&dir).await {
            Ok(entries) => entries,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(Error::backend(format!("cannot list {}", dir.display()), error)),
        };
        let mut writers = Vec::new();
        while let Some(entry) = entries
            .next_entry()
            .await
            .map_err(|error| Error::backend(format!("cannot list {}", dir.display()), error))?
        {
            let is_file = entry.file_type().await.is_ok_and(|kind| kind.is_file());
            // Temporary files, the seal marker and strangers are not manifests.
            if let (true, Some(writer)) = (is_file, writer_of_manifest(&entry.file_name().to_string_lossy())) {
                writers.push(writer);
            }
        }
        writers.sort();
        Ok(writers)
    }

    async fn delete_session(&self, id: &SessionId) -> Result<(), Error> {
        let dir = self.require_session(id).await?;
        // Metadata goes first, so an interrupted delete leaves an incomplete
        // session that is no longer listed rather than one with missing blobs.
        match fs::remove_file(dir.join("metadata.json")).await {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(Error::backend(format!("cannot delete {}", dir.display()), error)),
        }
        fs::remove_dir_all(&dir)
            .await
            .map_err(|error| Error::backend(format!("cannot delete {}", dir.display()), error))
    }

    async fn list_partial_blobs(&self, id: &SessionId) -> Result<Vec<PartialBlob>, Error> {
        let dir = self.require_session(id).await?;
        let mut partials: Vec<PartialBlob> = files_under(&dir.join("raw"))
            .await?
            .iter()
            .filter_map(|path| {
                let name = relative_name(&dir, path)?;
                Some(PartialBlob { key: partial_key(&name)?, name })
            })
            .collect();
        partials.sort_by(|a, b| (a.key.to_string(), &a.name).cmp(&(b.key.to_string(), &b.name)));
        Ok(partials)
    }

    async fn read_partial_blob(&self, id: &SessionId, partial: &PartialBlob) -> Result<Bytes, Error> {
        let dir = self.require_session(id).await?;
        let path = self.partial_path(id, partial)?;
        refuse_symlinks_down_to(&dir, &path).await?;
        read_partial_file(id, partial, &path).await
    }

    async fn remove_partial_blob(&self, id: &SessionId, partial: &PartialBlob) -> Result<(), Error> {
        let path = self.partial_path(id, partial)?;
        match fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(Error::backend(format!("cannot delete {}", path.display()), error)),
        }
    }
}

/// The bytes of a partial blob's file at `path`.
pub(crate) async fn read_partial_file(id: &SessionId, partial: &PartialBlob, path: &Path) -> Result<Bytes, Error> {
    match fs::read(path).await {
        Ok(bytes) => Ok(Bytes::from(bytes)),
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            Err(Error::BlobNotFound { session: id.clone(), key: partial.name.clone() })
        }
        Err(error) => Err(Error::backend(format!("cannot read {}", path.display()), error)),
    }
}

/// A blob being written to a hidden temporary file beside its final path.
struct LocalBlobSink {
    session: SessionId,
    key: String,
    path: PathBuf,
    temp: PathBuf,
    file: SinkFile,
}

impl LocalBlobSink {
    fn failed(&self, verb: &str, error: io::Error) -> Error {
        Error::backend(format!("cannot {verb} {}", self.path.display()), error)
    }
}

#[async_trait::async_trait]
impl BlobSink for LocalBlobSink {
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
        // Complete and synced before it gets its final name, so that no
        // partial blob is ever under one. When this fails the temporary
        // file stays: a partial blob that `sessions repair` salvages.
        self.file.close_synced().await?;
        // A hard link fails if the final name exists, so a commit never
        // replaces a blob.
        match fs::hard_link(&self.temp, &self.path).await {
            Ok(()) => {
                let _ = fs::remove_file(&self.temp).await;
                Ok(())
            }
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                let _ = fs::remove_file(&self.temp).await;
                Err(Error::BlobExists { session: self.session.clone(), key: self.key.clone() })
            }
            // The temporary file keeps every byte, for repair.
            Err(error) => Err(self.failed("commit", error)),
        }
    }

    async fn abort(mut self: Box<Self>) -> Result<(), Error> {
        self.file.close();
        match fs::remove_file(&self.temp).await {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(self.failed("discard", error)),
        }
    }
}

impl Drop for LocalBlobSink {
    fn drop(&mut self) {
        if self.file.close() {
            // Neither committed nor aborted: remove the partial file.
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}
