//! Which sessions a running capture is writing: an exclusive lock on
//! `<spool dir>/.locks/<session id>.lock`, held for the whole capture and
//! released by the operating system when the process ends, however it
//! ends. Recovery, repair, deletion and retention leave a locked session
//! alone.
//!
//! The locks live here, next to the spool files, because they belong to
//! the spool directory: the command line and the control API take them
//! around a capture, and [`recover_spool`] takes them before it touches a
//! session's spool files.

use std::collections::HashSet;
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tape_session::{RepairReport, SessionId, SessionStore, Timestamp, repair_session};
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

/// Takes the lock of session `id`, or `None` when a running process holds it.
pub fn try_lock(spool_dir: &Path, id: &SessionId) -> Result<Option<CaptureLock>, LockError> {
    let path = lock_path(spool_dir, id);
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

/// Whether a running process holds the lock of session `id`.
pub fn is_locked(spool_dir: &Path, id: &SessionId) -> Result<bool, LockError> {
    if !lock_path(spool_dir, id).exists() {
        return Ok(false);
    }
    Ok(try_lock(spool_dir, id)?.is_none())
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
        let Some(id) = name.to_str().and_then(|name| name.strip_suffix(".lock")).and_then(|id| SessionId::new(id).ok())
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
    /// What the repair did.
    pub report: RepairReport,
}

/// Repairs every session with spool files left under `spool_dir` by a
/// capture that is no longer running (whose lock nobody holds), so that
/// what it flushed reaches `store`. A session that cannot be repaired yet
/// is logged as a warning and left for the next time. Returns the sessions
/// recovered, for the caller to report.
pub async fn recover_spool(
    store: &Arc<dyn SessionStore>,
    spool_dir: &Path,
    now: Timestamp,
) -> Result<Vec<RecoveredSpool>, RecoverError> {
    let leftovers = spooled_sessions(spool_dir)
        .await
        .map_err(|source| RecoverError::List { spool_dir: spool_dir.to_owned(), source })?;
    let mut recovered = Vec::new();
    for id in leftovers {
        let Some(_lock) = try_lock(spool_dir, &id)? else { continue };
        let spooled = SpooledStore::new(Arc::clone(store), spool_dir.to_owned());
        match repair_session(&spooled, &id, now).await {
            Ok(report) => recovered.push(RecoveredSpool { session_id: id, report }),
            Err(error) => warn!(session = %id, "Cannot recover the spool files of session {id} yet: {error}"),
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
}
