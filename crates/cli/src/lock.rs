//! Which sessions a running capture is writing: an exclusive lock on
//! `<spool dir>/.locks/<session id>.lock`, held for the whole capture and
//! released by the operating system when the process ends, however it
//! ends. Recovery and repair leave a locked session alone.

use std::collections::HashSet;
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use anyhow::Context;
use tape_session::SessionId;

/// A held capture lock; dropping it releases the lock.
#[derive(Debug)]
pub struct CaptureLock {
    _file: File,
}

fn lock_path(spool_dir: &Path, id: &SessionId) -> PathBuf {
    spool_dir.join(".locks").join(format!("{id}.lock"))
}

/// Takes the lock of session `id`, or `None` when a running process holds it.
pub fn try_lock(spool_dir: &Path, id: &SessionId) -> anyhow::Result<Option<CaptureLock>> {
    let path = lock_path(spool_dir, id);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open the lock file {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(CaptureLock { _file: file })),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(error)) => Err(error).with_context(|| format!("cannot lock {}", path.display())),
    }
}

/// Whether a running process holds the lock of session `id`.
pub fn is_locked(spool_dir: &Path, id: &SessionId) -> anyhow::Result<bool> {
    if !lock_path(spool_dir, id).exists() {
        return Ok(false);
    }
    Ok(try_lock(spool_dir, id)?.is_none())
}

/// The sessions whose lock a running process holds, from the lock files
/// under `spool_dir` (none when it has no `.locks` directory).
pub fn locked_sessions(spool_dir: &Path) -> anyhow::Result<HashSet<SessionId>> {
    let directory = spool_dir.join(".locks");
    let entries = match std::fs::read_dir(&directory) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(HashSet::new()),
        entries => entries.with_context(|| format!("cannot list the lock files in {}", directory.display()))?,
    };
    let mut locked = HashSet::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list the lock files in {}", directory.display()))?;
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
