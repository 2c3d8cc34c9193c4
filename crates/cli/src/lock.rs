//! The capture locks are `tape_store`'s ([`tape_store::try_lock`] and its
//! siblings); this wrapper gives the binary their errors as a chain.

use std::collections::HashSet;
use std::path::Path;

use tape_session::SessionId;

/// [`tape_store::locked_sessions`], its error as a chain.
pub fn locked_sessions(spool_dir: &Path) -> anyhow::Result<HashSet<SessionId>> {
    Ok(tape_store::locked_sessions(spool_dir)?)
}
