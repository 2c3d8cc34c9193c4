//! Which sessions a running capture is writing: an exclusive lock on
//! `<spool dir>/.locks/<session id>.lock`, held for the whole capture and
//! released by the operating system when the process ends, however it
//! ends. Recovery, repair, deletion and retention leave a locked session
//! alone. A writer of a session with several writers (`capture --join`)
//! locks `<spool dir>/.locks/<session id>/<writer id>.lock` instead, so
//! that writers of one session can share a host and a spool directory; a
//! session counts as locked while any of its writers' locks is held, and
//! a writer's spool files are recovered only when its own lock is free.
//!
//! The locks live here, next to the spool files, because they belong to
//! the spool directory: the command line and the control API take them
//! around a capture, and [`recover_spool`] takes them before it touches a
//! session's spool files.

use std::collections::{BTreeSet, HashSet};
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tape_session::{
    RepairReport, SessionId, SessionStore, Timestamp, WriterId, WriterLiveness, repair_session, repair_writer,
};
use tracing::warn;

use crate::{SpooledStore, spooled_sessions};

/// A capture lock could not be taken or checked (not: another process holds it).
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// The `.locks` directory could not be created.
    #[error("cannot create {}", path.display())]
    CreateDirectory {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A lock file could not be opened.
    #[error("cannot open the lock file {}", path.display())]
    Open {
        /// The lock file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A lock file could not be locked.
    #[error("cannot lock {}", path.display())]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The `.locks` directory could not be listed.
    #[error("cannot list the lock files in {}", path.display())]
    List {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A held capture lock; dropping it releases the lock.
#[derive(Debug)]
pub struct CaptureLock {
    _file: File,
}

fn lock_path(spool_dir: &Path, id: &SessionId) -> PathBuf {
    spool_dir.join(".locks").join(format!("{id}.lock"))
}

fn writer_lock_path(spool_dir: &Path, id: &SessionId, writer: &WriterId) -> PathBuf {
    spool_dir.join(".locks").join(id.as_str()).join(format!("{writer}.lock"))
}

/// Takes the lock of session `id`, or `None` when a running process holds it.
pub fn try_lock(spool_dir: &Path, id: &SessionId) -> Result<Option<CaptureLock>, LockError> {
    take(lock_path(spool_dir, id))
}

/// Takes the lock of writer `writer` of session `id` (a capture that
/// joins), or `None` when a running process holds it.
pub fn try_lock_writer(spool_dir: &Path, id: &SessionId, writer: &WriterId) -> Result<Option<CaptureLock>, LockError> {
    take(writer_lock_path(spool_dir, id, writer))
}

/// Whether a running process holds the lock of writer `writer` of session `id`.
pub fn is_writer_locked(spool_dir: &Path, id: &SessionId, writer: &WriterId) -> Result<bool, LockError> {
    let path = writer_lock_path(spool_dir, id, writer);
    if !path.exists() {
        return Ok(false);
    }
    Ok(take(path)?.is_none())
}

/// What a host's spool directory knows of whether writer `writer` of a
/// session runs, from its capture lock.
#[derive(Debug)]
pub enum WriterLockState {
    /// A running process on this host holds the lock: the writer runs.
    Held,
    /// The writer ran on this host and has stopped: its lock file is there
    /// and free, and is now held by the caller until dropped.
    Stopped(CaptureLock),
    /// No lock file: the writer did not run here (another host, or another
    /// spool directory), so its lock says nothing.
    Unknown,
}

/// Whether writer `writer` of session `id` runs on this host, stopped on
/// it, or is unknown to it, taking its lock when it stopped.
pub fn writer_lock_state(spool_dir: &Path, id: &SessionId, writer: &WriterId) -> Result<WriterLockState, LockError> {
    let path = writer_lock_path(spool_dir, id, writer);
    if !path.exists() {
        return Ok(WriterLockState::Unknown);
    }
    Ok(match take(path)? {
        Some(lock) => WriterLockState::Stopped(lock),
        None => WriterLockState::Held,
    })
}

fn take(path: PathBuf) -> Result<Option<CaptureLock>, LockError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|source| LockError::CreateDirectory { path: parent.to_owned(), source })?;
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| LockError::Open { path: path.clone(), source })?;
    match file.try_lock() {
        Ok(()) => Ok(Some(CaptureLock { _file: file })),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(source)) => Err(LockError::Lock { path, source }),
    }
}

/// Whether a running process holds the lock of session `id`, or of one
/// of its writers.
pub fn is_locked(spool_dir: &Path, id: &SessionId) -> Result<bool, LockError> {
    if lock_path(spool_dir, id).exists() && try_lock(spool_dir, id)?.is_none() {
        return Ok(true);
    }
    for writer in writer_locks(spool_dir, id)? {
        if is_writer_locked(spool_dir, id, &writer)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The writers of session `id` with a lock file (held or not).
fn writer_locks(spool_dir: &Path, id: &SessionId) -> Result<Vec<WriterId>, LockError> {
    let directory = spool_dir.join(".locks").join(id.as_str());
    let list_error = |source| LockError::List { path: directory.clone(), source };
    let entries = match std::fs::read_dir(&directory) {
        Err(error) if matches!(error.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory) => {
            return Ok(Vec::new());
        }
        entries => entries.map_err(list_error)?,
    };
    let mut writers = Vec::new();
    for entry in entries {
        let name = entry.map_err(list_error)?.file_name();
        if let Some(writer) =
            name.to_str().and_then(|name| name.strip_suffix(".lock")).and_then(|id| WriterId::new(id).ok())
        {
            writers.push(writer);
        }
    }
    writers.sort();
    Ok(writers)
}

/// The sessions whose lock a running process holds, from the lock files
/// under `spool_dir` (none when it has no `.locks` directory).
pub fn locked_sessions(spool_dir: &Path) -> Result<HashSet<SessionId>, LockError> {
    let directory = spool_dir.join(".locks");
    let list_error = |source| LockError::List { path: directory.clone(), source };
    let entries = match std::fs::read_dir(&directory) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(HashSet::new()),
        entries => entries.map_err(list_error)?,
    };
    let mut locked = HashSet::new();
    for entry in entries {
        let entry = entry.map_err(list_error)?;
        let name = entry.file_name();
        // `<id>.lock`, or the directory `<id>` of its writers' locks.
        let Some(id) =
            name.to_str().map(|name| name.strip_suffix(".lock").unwrap_or(name)).and_then(|id| SessionId::new(id).ok())
        else {
            continue;
        };
        if is_locked(spool_dir, &id)? {
            locked.insert(id);
        }
    }
    Ok(locked)
}

/// Leftover spool files could not be looked for.
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    /// The spool directory could not be listed.
    #[error("cannot look for leftover spool files in {}", spool_dir.display())]
    List {
        /// The spool directory.
        spool_dir: PathBuf,
        /// Why.
        #[source]
        source: tape_session::Error,
    },
    /// A session's lock could not be taken.
    #[error(transparent)]
    Lock(#[from] LockError),
}

/// A session whose spool files [`recover_spool`] brought into the store.
#[derive(Debug)]
pub struct RecoveredSpool {
    /// The session.
    pub session_id: SessionId,
    /// The writer whose spool files they were, for a session with several
    /// writers (only that writer was repaired).
    pub writer: Option<WriterId>,
    /// What the repair did.
    pub report: RepairReport,
}

/// Repairs every session with spool files left under `spool_dir` by a
/// capture that is no longer running (whose lock nobody holds), so that
/// what it flushed reaches `store`. Spool files of a writer of a session
/// with several writers (their blob keys carry its id) are recovered by
/// repairing that writer alone, when its own lock is free: the session's
/// other writers may be running, here or on other hosts. A session that
/// cannot be repaired yet is logged as a warning and left for the next
/// time. Returns what was recovered, for the caller to report.
pub async fn recover_spool(
    store: &Arc<dyn SessionStore>,
    spool_dir: &Path,
    now: Timestamp,
) -> Result<Vec<RecoveredSpool>, RecoverError> {
    let leftovers = spooled_sessions(spool_dir)
        .await
        .map_err(|source| RecoverError::List { spool_dir: spool_dir.to_owned(), source })?;
    let mut recovered = Vec::new();
    let spooled = SpooledStore::new(Arc::clone(store), spool_dir.to_owned());
    for id in leftovers {
        let partials = match spooled.list_partial_blobs(&id).await {
            Ok(partials) => partials,
            Err(error) => {
                warn!(session = %id, "Cannot list the spool files of session {id} yet: {error}");
                continue;
            }
        };
        let writers: BTreeSet<Option<WriterId>> =
            partials.iter().map(|partial| partial.key.writer().cloned()).collect();
        for writer in writers {
            let (_lock, repaired) = match &writer {
                None => {
                    let Some(lock) = try_lock(spool_dir, &id)? else { continue };
                    (lock, repair_session(&spooled, &id, now).await)
                }
                Some(writer) => {
                    let Some(lock) = try_lock_writer(spool_dir, &id, writer)? else { continue };
                    // Its lock is free: it stopped.
                    (lock, repair_writer(&spooled, &id, writer, now, WriterLiveness::Stopped).await)
                }
            };
            match repaired {
                Ok(report) => recovered.push(RecoveredSpool { session_id: id.clone(), writer, report }),
                Err(error) => match &writer {
                    None => warn!(session = %id, "Cannot recover the spool files of session {id} yet: {error}"),
                    Some(writer) => warn!(
                        session = %id, %writer,
                        "Cannot recover the spool files of writer {writer} of session {id} yet: {error}"
                    ),
                },
            }
        }
    }
    Ok(recovered)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_is_seen_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let id = SessionId::new("c-1").unwrap();
        assert!(locked_sessions(dir.path()).unwrap().is_empty());
        assert!(!is_locked(dir.path(), &id).unwrap());
        let held = try_lock(dir.path(), &id).unwrap().unwrap();
        assert!(try_lock(dir.path(), &id).unwrap().is_none());
        assert!(is_locked(dir.path(), &id).unwrap());
        assert_eq!(locked_sessions(dir.path()).unwrap(), [id.clone()].into());
        drop(held);
        assert!(!is_locked(dir.path(), &id).unwrap());
        assert!(locked_sessions(dir.path()).unwrap().is_empty());
    }

    #[test]
    fn writers_of_one_session_lock_apart_and_lock_the_session() {
        let dir = tempfile::tempdir().unwrap();
        let id = SessionId::new("s-1").unwrap();
        let (one, two) = (WriterId::new("w-1").unwrap(), WriterId::new("w-2").unwrap());
        let first = try_lock_writer(dir.path(), &id, &one).unwrap().unwrap();
        let second = try_lock_writer(dir.path(), &id, &two).unwrap().unwrap();
        assert!(try_lock_writer(dir.path(), &id, &one).unwrap().is_none());
        assert!(is_locked(dir.path(), &id).unwrap());
        assert_eq!(locked_sessions(dir.path()).unwrap(), [id.clone()].into());
        drop(first);
        assert!(!is_writer_locked(dir.path(), &id, &one).unwrap());
        assert!(is_writer_locked(dir.path(), &id, &two).unwrap());
        assert!(is_locked(dir.path(), &id).unwrap());
        drop(second);
        assert!(!is_locked(dir.path(), &id).unwrap());
        assert!(locked_sessions(dir.path()).unwrap().is_empty());
    }
}
