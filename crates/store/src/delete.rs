//! The rules of deleting and repairing a session next to a running
//! capture: a session whose capture lock a running process holds is never
//! deleted nor repaired, and an `active` one is deleted only when forced.

use std::path::Path;

use tape_session::{Error, SessionId, SessionStatus, SessionStore};

use crate::lock::{LockError, is_locked};

/// Why a session was not deleted.
#[derive(Debug, thiserror::Error)]
pub enum DeleteError {
    /// A running capture holds the session's lock (forcing does not help).
    #[error(
        "session {0} is being captured by a running otlp-tape; stop that capture first (--force does not delete a session a capture holds)"
    )]
    Captured(SessionId),
    /// The session is `active` and the deletion was not forced.
    #[error("session {0} is active (still being written, or left so by a crash); pass --force to delete it anyway")]
    Active(SessionId),
    /// The session's lock could not be checked.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] Error),
}

/// Deletes session `id` from `store`, unless a running capture holds its
/// lock under `spool_dir`, or it is `active` and `force` is not given. A
/// session whose metadata is missing or damaged is deleted: that is how
/// incomplete or damaged sessions are cleaned up.
pub async fn delete_session(
    store: &dyn SessionStore,
    id: &SessionId,
    force: bool,
    spool_dir: &Path,
) -> Result<(), DeleteError> {
    if is_locked(spool_dir, id)? {
        return Err(DeleteError::Captured(id.clone()));
    }
    match store.read_metadata(id).await {
        Ok(metadata) if metadata.status == SessionStatus::Active && !force => {
            return Err(DeleteError::Active(id.clone()));
        }
        Ok(_) | Err(Error::NotFound(_) | Error::Metadata { .. }) => {}
        Err(error) => return Err(error.into()),
    }
    store.delete_session(id).await?;
    Ok(())
}

/// Why a session may not be repaired.
#[derive(Debug, thiserror::Error)]
pub enum RepairLockError {
    /// A running capture holds the session's lock.
    #[error(
        "session {0} is being captured by a running otlp-tape; stop that capture first (repair finishes sessions whose capture has ended)"
    )]
    Captured(SessionId),
    /// The session's lock could not be checked.
    #[error(transparent)]
    Lock(#[from] LockError),
}

/// Checks that no running capture holds the lock of session `id` under
/// `spool_dir`: repair finishes only sessions whose capture has ended.
pub fn check_repairable(spool_dir: &Path, id: &SessionId) -> Result<(), RepairLockError> {
    if is_locked(spool_dir, id)? {
        return Err(RepairLockError::Captured(id.clone()));
    }
    Ok(())
}
