//! Retention is `tape_session::retention`'s (the planner and its
//! execution); this keeps `serve`'s calls, which format the whole chain
//! with `{:#}`, until it moves to its own crate.

use std::collections::HashSet;

pub use tape_session::retention::{PruneReport, RetentionPolicy, parse_age, parse_size};
use tape_session::{SessionId, SessionStore, Timestamp};

/// [`tape_session::retention::prune`], its error as a chain.
pub async fn prune(
    store: &dyn SessionStore,
    policy: &RetentionPolicy,
    now: Timestamp,
    protected: &HashSet<SessionId>,
    dry_run: bool,
) -> anyhow::Result<PruneReport> {
    Ok(tape_session::retention::prune(store, policy, now, protected, dry_run).await?)
}
