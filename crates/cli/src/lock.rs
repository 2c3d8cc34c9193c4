//! The capture locks are `tape_store`'s ([`tape_store::try_lock`] and its
//! siblings); these wrappers keep `serve`'s calls (which format the whole
//! chain with `{:#}`) until it moves to its own crate.

use std::collections::HashSet;
use std::path::Path;

use tape_session::SessionId;
use tape_store::CaptureLock;

/// [`tape_store::try_lock`], its error as a chain.
pub fn try_lock(spool_dir: &Path, id: &SessionId) -> anyhow::Result<Option<CaptureLock>> {
    Ok(tape_store::try_lock(spool_dir, id)?)
}

/// [`tape_store::locked_sessions`], its error as a chain.
pub fn locked_sessions(spool_dir: &Path) -> anyhow::Result<HashSet<SessionId>> {
    Ok(tape_store::locked_sessions(spool_dir)?)
}
