//! Retention: which stored sessions to delete by age, count and total size,
//! and deleting them. `sessions prune` runs it once; a long-running process
//! can run it periodically with its own set of sessions in use.
//!
//! [`plan`] is pure: it takes the sessions' metadata, the policy, the time
//! and the protected ids, and returns the deletions. [`prune`] lists the
//! store, plans and deletes. [`RetentionConfig`] is a policy as people write
//! it (the control API's prune request), checked into a [`RetentionPolicy`]
//! by [`RetentionConfig::validate`].
//!
//! ```no_run
//! # async fn example(store: &dyn tape_session::SessionStore, now: tape_session::Timestamp) -> Result<(), Box<dyn std::error::Error>> {
//! use tape_session::retention::{RetentionConfig, prune};
//!
//! let config: RetentionConfig = serde_json::from_str(r#"{"olderThan": "30d", "types": "capture", "dryRun": true}"#)?;
//! let policy = config.validate()?;
//! let report = prune(store, &policy, now, &Default::default(), config.dry_run).await?;
//! for decision in &report.deleted {
//!     println!("would delete {} ({})", decision.session_id, decision.reason);
//! }
//! # Ok(()) }
//! ```
//!
//! Age and order are by creation time: a session's `createdAt` (the wall
//! clock when a seed was generated, a capture started, an import ran), or
//! for sessions written before it was recorded, the fallback of
//! [`SessionMetadata::created`]. Not the start time, which for a seed is
//! its virtual clock's (2026-01-01 by default).
//!
//! The rules, in order:
//!
//! 1. Only sessions of the policy's types (all types when none are given)
//!    are candidates. A session whose status is `active` (still being
//!    written, or left so by a crash) and a protected session (such as one
//!    whose capture lock a running process holds) are never candidates:
//!    they are always kept and do not count towards `keep_last`.
//! 2. `keep_last` keeps the N newest candidates (by creation time, then by id).
//!    When it is the only criterion, every other candidate is deleted;
//!    with `older_than` or `max_total_bytes` it only shields the N newest
//!    from them.
//! 3. `older_than` deletes the remaining candidates created longer than
//!    that before now.
//! 4. `max_total_bytes` then deletes the oldest remaining candidates until
//!    the `totalSizeBytes` of every session listed (all types, active and
//!    protected ones included) adds up to at most the limit, or no
//!    candidate is left.
//!
//! A policy without any criterion deletes nothing, and [`prune`] refuses it.

use std::cmp::Ordering;
use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::{
    Error, SessionId, SessionMetadata, SessionStatus, SessionStore, SessionType, Timestamp, error_chain, list_sessions,
};

/// Nanoseconds in a day.
const DAY_NANOS: u64 = 86_400_000_000_000;

/// What to delete. At least one of `older_than`, `keep_last` and
/// `max_total_bytes` must be set for anything to be deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Delete candidates created longer ago than this.
    pub older_than: Option<Duration>,
    /// Keep this many of the newest candidates whatever the other criteria
    /// say; alone, delete all other candidates.
    pub keep_last: Option<usize>,
    /// Delete the oldest candidates until all sessions of the store take at
    /// most this many bytes.
    pub max_total_bytes: Option<u64>,
    /// The session types that may be deleted; empty means all.
    pub types: Vec<SessionType>,
}

impl RetentionPolicy {
    /// Whether the policy has a criterion, so can delete anything.
    pub fn has_criterion(&self) -> bool {
        self.older_than.is_some() || self.keep_last.is_some() || self.max_total_bytes.is_some()
    }

    fn selects(&self, session_type: SessionType) -> bool {
        self.types.is_empty() || self.types.contains(&session_type)
    }
}

/// Why a session is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// It was created longer ago than the policy's `older_than`.
    OlderThan(Duration),
    /// It is not among the `keep_last` newest and `keep_last` is the only criterion.
    NotAmongNewest(usize),
    /// The store holds more than `max_total_bytes`, and it is among the oldest.
    OverTotalSize(u64),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::OlderThan(age) => write!(f, "older than {}", format_age(*age)),
            Reason::NotAmongNewest(count) => write!(f, "not among the {count} newest"),
            Reason::OverTotalSize(limit) => write!(f, "over total size {}", format_size(*limit)),
        }
    }
}

impl Serialize for Reason {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A session to delete, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    /// The session.
    pub session_id: SessionId,
    /// Its type.
    pub session_type: SessionType,
    /// When it started.
    pub start_time: Timestamp,
    /// When it was made (see [`SessionMetadata::created`]).
    pub created_at: Timestamp,
    /// Its `totalSizeBytes`.
    pub size_bytes: u64,
    /// Why it goes.
    pub reason: Reason,
}

impl Decision {
    fn new(session: &SessionMetadata, reason: Reason) -> Self {
        Decision {
            session_id: session.session_id.clone(),
            session_type: session.session_type,
            start_time: session.start_time,
            created_at: session.created(),
            size_bytes: session.total_size_bytes,
            reason,
        }
    }
}

/// The sessions `policy` deletes out of `sessions`, oldest first (by
/// creation time, then id). `sessions` is every session of the store: the size limit
/// counts all of them, whatever their type. Sessions with status `active`
/// and those in `protected` are never deleted. See the module docs for the
/// rules.
#[allow(clippy::implicit_hasher)] // ids from the lock files and the jobs, always std's hasher
pub fn plan(
    sessions: &[SessionMetadata],
    policy: &RetentionPolicy,
    now: Timestamp,
    protected: &HashSet<SessionId>,
) -> Vec<Decision> {
    let mut candidates: Vec<&SessionMetadata> = sessions
        .iter()
        .filter(|session| {
            policy.selects(session.session_type)
                && session.status != SessionStatus::Active
                && !protected.contains(&session.session_id)
        })
        .collect();
    // Newest first.
    candidates.sort_by(|a, b| oldest_first(b, a));
    let kept = policy.keep_last.unwrap_or(0).min(candidates.len());
    let deletable = &candidates[kept..];

    let mut doomed: Vec<Decision> = Vec::new();
    if let (Some(keep_last), None, None) = (policy.keep_last, policy.older_than, policy.max_total_bytes) {
        doomed.extend(deletable.iter().map(|session| Decision::new(session, Reason::NotAmongNewest(keep_last))));
    }
    if let Some(age) = policy.older_than {
        let age_nanos = u64::try_from(age.as_nanos()).unwrap_or(u64::MAX);
        if let Some(cutoff) = now.unix_nanos().checked_sub(age_nanos) {
            doomed.extend(
                deletable
                    .iter()
                    .filter(|session| session.created().unix_nanos() < cutoff)
                    .map(|session| Decision::new(session, Reason::OlderThan(age))),
            );
        }
    }
    if let Some(limit) = policy.max_total_bytes {
        let stored = sessions.iter().fold(0_u64, |total, session| total.saturating_add(session.total_size_bytes));
        let mut total = doomed.iter().fold(stored, |total, decision| total.saturating_sub(decision.size_bytes));
        for session in deletable.iter().rev() {
            if total <= limit {
                break;
            }
            if doomed.iter().any(|decision| decision.session_id == session.session_id) {
                continue;
            }
            doomed.push(Decision::new(session, Reason::OverTotalSize(limit)));
            total = total.saturating_sub(session.total_size_bytes);
        }
    }
    doomed.sort_by(|a, b| a.created_at.cmp(&b.created_at).then_with(|| a.session_id.cmp(&b.session_id)));
    doomed
}

fn oldest_first(a: &SessionMetadata, b: &SessionMetadata) -> Ordering {
    a.created().cmp(&b.created()).then_with(|| a.session_id.cmp(&b.session_id))
}

/// A session that was not considered because its metadata could not be read.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SkippedSession {
    /// The session.
    pub session_id: SessionId,
    /// Why its metadata could not be read.
    pub error: String,
}

/// A deletion that failed; the session may be partly deleted.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FailedDeletion {
    /// What was to be deleted.
    #[serde(flatten)]
    pub decision: Decision,
    /// Why it failed.
    pub error: String,
}

/// What [`prune`] did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PruneReport {
    /// Whether nothing was deleted on purpose: `deleted` is what would be.
    pub dry_run: bool,
    /// Sessions deleted (or, in a dry run, to delete), oldest first.
    pub deleted: Vec<Decision>,
    /// Deletions that failed.
    pub failed: Vec<FailedDeletion>,
    /// Sessions whose metadata was read and that the policy keeps.
    pub kept: usize,
    /// Bytes of the deleted sessions (in a dry run, of those to delete).
    pub freed_bytes: u64,
    /// Bytes of every session whose metadata was read, before pruning.
    pub stored_bytes: u64,
    /// Sessions left alone because their metadata could not be read.
    pub skipped: Vec<SkippedSession>,
}

impl PruneReport {
    /// Whether every planned deletion succeeded.
    pub fn is_success(&self) -> bool {
        self.failed.is_empty()
    }
}

/// Why [`prune`] did not run.
#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    /// The policy has no criterion, so would delete nothing.
    #[error("a retention policy needs at least one of older-than, keep-last and max-total-size")]
    NoCriterion,
    /// The store could not be listed.
    #[error("cannot list the sessions in {location}")]
    List {
        /// The store's location.
        location: String,
        /// What the store said.
        #[source]
        source: Error,
    },
}

/// Lists every session of `store`, plans with [`plan`] and, unless
/// `dry_run`, deletes the planned sessions one after the other, logging
/// each. A session whose metadata cannot be read is skipped (and never
/// deleted); a failed deletion is reported and the others go on. Fails
/// when the store cannot be listed or the policy has no criterion.
#[allow(clippy::implicit_hasher)] // ids from the lock files and the jobs, always std's hasher
pub async fn prune(
    store: &dyn SessionStore,
    policy: &RetentionPolicy,
    now: Timestamp,
    protected: &HashSet<SessionId>,
    dry_run: bool,
) -> Result<PruneReport, PruneError> {
    if !policy.has_criterion() {
        return Err(PruneError::NoCriterion);
    }
    let listing =
        list_sessions(store, None).await.map_err(|source| PruneError::List { location: store.location(), source })?;
    let skipped: Vec<SkippedSession> = listing
        .unreadable
        .iter()
        .map(|(id, error)| {
            warn!(session = %id, "Skipped a session whose metadata cannot be read: {}", error_chain(error));
            SkippedSession { session_id: id.clone(), error: error_chain(error) }
        })
        .collect();
    let planned = plan(&listing.sessions, policy, now, protected);
    let mut report = PruneReport {
        dry_run,
        deleted: Vec::new(),
        failed: Vec::new(),
        kept: listing.sessions.len() - planned.len(),
        freed_bytes: 0,
        stored_bytes: listing.sessions.iter().fold(0, |total, session| total.saturating_add(session.total_size_bytes)),
        skipped,
    };
    for decision in planned {
        if !dry_run {
            match store.delete_session(&decision.session_id).await {
                // Deleted meanwhile by someone else: gone all the same.
                Ok(()) | Err(Error::NotFound(_)) => {
                    info!(
                        session = %decision.session_id,
                        session_type = %decision.session_type,
                        size_bytes = decision.size_bytes,
                        reason = %decision.reason,
                        "Deleted a session."
                    );
                }
                Err(error) => {
                    warn!(session = %decision.session_id, "Could not delete the session: {}", error_chain(&error));
                    report.failed.push(FailedDeletion { decision, error: error_chain(&error) });
                    continue;
                }
            }
        }
        report.freed_bytes = report.freed_bytes.saturating_add(decision.size_bytes);
        report.deleted.push(decision);
    }
    Ok(report)
}

/// A retention policy as people write it: the control API's prune request
/// (`POST /api/v1/retention/prune`), or any JSON or YAML config. Ages and
/// sizes are texts as [`parse_age`] and [`parse_size`] read them; `types`
/// is a list (an array or a comma-separated string) of session types.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetentionConfig {
    /// Delete sessions created longer ago than this, such as `30d` or `1d12h`.
    #[serde(default, deserialize_with = "crate::config::parsed")]
    #[cfg_attr(feature = "clap", arg(
        long, value_name = "AGE", value_parser = checked(parse_age),
        help = "Delete sessions that ended longer ago than this, such as 30d, 12h or 1d12h",
    ))]
    pub older_than: Option<String>,
    /// Keep this many of the newest sessions; alone, delete all others.
    #[serde(default, deserialize_with = "crate::config::parsed")]
    #[cfg_attr(feature = "clap", arg(
        long, value_name = "N", value_parser = parse_keep_last,
        help = "Always keep the N newest sessions (of the --type); as the only criterion, delete all the others",
    ))]
    pub keep_last: Option<usize>,
    /// Delete the oldest sessions until the store takes at most this much,
    /// such as `50GB` or `1.5GiB`.
    #[serde(default, deserialize_with = "crate::config::parsed")]
    #[cfg_attr(feature = "clap", arg(
        long, value_name = "SIZE", value_parser = checked(parse_size),
        help = "Then delete the oldest sessions until all sessions of the store take at most this much, such as \
                50GB, 500MB or 1.5GiB (KB, MB, GB, TB are powers of 1000; KiB, MiB, GiB, TiB of 1024)",
    ))]
    pub max_total_size: Option<String>,
    /// Only sessions of these types: `seed`, `capture`, `training`; default all.
    #[serde(default, deserialize_with = "crate::config::list")]
    #[cfg_attr(feature = "clap", arg(
        long = "type", value_name = "TYPE", value_parser = checked(str::parse::<SessionType>), value_delimiter = ',',
        help = "Only delete sessions of these types (repeat or comma-separate: seed, capture, training); default: all",
    ))]
    pub types: Vec<String>,
    /// List what would be deleted and delete nothing (default false).
    #[serde(default, deserialize_with = "crate::config::switch")]
    #[cfg_attr(feature = "clap", arg(long, help = "List what would be deleted and delete nothing"))]
    pub dry_run: bool,
}

/// A flag's value parser that checks the text with `parse` and keeps it
/// as given (the config holds the texts; [`RetentionConfig::validate`]
/// reads them).
#[cfg(feature = "clap")]
fn checked<T: 'static>(
    parse: fn(&str) -> Result<T, String>,
) -> impl Fn(&str) -> Result<String, String> + Clone + Send + Sync + 'static {
    move |text| parse(text).map(|_| text.to_owned())
}

/// `--keep-last`: a whole number, at least 1.
#[cfg(feature = "clap")]
fn parse_keep_last(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(0) => Err("--keep-last 0 would keep nothing: give at least 1".to_owned()),
        Ok(count) => Ok(count),
        Err(_) => Err(format!("invalid count {text:?}: expected a whole number, at least 1")),
    }
}

/// A [`RetentionConfig`] that is not a valid policy; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetentionConfigError {
    /// `olderThan` is not an age.
    #[error("older-than {text:?}: {message}")]
    OlderThan {
        /// What was given.
        text: String,
        /// What is wrong with it.
        message: String,
    },
    /// `maxTotalSize` is not a size.
    #[error("max-total-size {text:?}: {message}")]
    MaxTotalSize {
        /// What was given.
        text: String,
        /// What is wrong with it.
        message: String,
    },
    /// A type is not a session type.
    #[error("type {0:?} is not one of seed, capture, training")]
    Type(String),
    /// None of `olderThan`, `keepLast` and `maxTotalSize` is given.
    #[error("a retention policy needs olderThan, keepLast or maxTotalSize")]
    NoCriterion,
}

impl RetentionConfig {
    /// The policy, or what is wrong: a type, an age or a size that does not
    /// parse (checked in that order), or no criterion at all.
    pub fn validate(&self) -> Result<RetentionPolicy, RetentionConfigError> {
        let mut types = Vec::new();
        for name in &self.types {
            types.push(name.parse::<SessionType>().map_err(|_| RetentionConfigError::Type(name.clone()))?);
        }
        let older_than = self
            .older_than
            .as_deref()
            .map(|text| {
                parse_age(text).map_err(|message| RetentionConfigError::OlderThan { text: text.to_owned(), message })
            })
            .transpose()?;
        let max_total_bytes = self
            .max_total_size
            .as_deref()
            .map(|text| {
                parse_size(text)
                    .map_err(|message| RetentionConfigError::MaxTotalSize { text: text.to_owned(), message })
            })
            .transpose()?;
        let policy = RetentionPolicy { older_than, keep_last: self.keep_last, max_total_bytes, types };
        if policy.has_criterion() { Ok(policy) } else { Err(RetentionConfigError::NoCriterion) }
    }
}

/// Parses an age such as `30d`, `12h`, `90m`, `1d12h` or `1.5d`: the units
/// of [`crate::parse_duration`] and `d` (24 hours).
pub fn parse_age(text: &str) -> Result<Duration, String> {
    let invalid =
        |why: &str| format!("invalid age {text:?}: {why} (write a number and a unit, like 30d, 12h or 1d12h)");
    let text = text.trim();
    if text.is_empty() {
        return Err(invalid("it is empty"));
    }
    if text.bytes().all(|byte| byte.is_ascii_digit() || byte == b'.') {
        return Err(invalid("a number without a unit"));
    }
    // Days first, then whatever the seed generator's parser reads.
    let (days, rest) = match text.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(end) if end > 0 && text[end..].starts_with('d') => (&text[..end], &text[end + 1..]),
        _ => ("", text),
    };
    let mut nanos = if days.is_empty() { 0 } else { scaled(days, DAY_NANOS).ok_or_else(|| invalid("not a number"))? };
    if !rest.is_empty() {
        let more = crate::parse_duration(rest).map_err(|_| invalid("unknown unit or not a number"))?;
        nanos = nanos.checked_add(more).ok_or_else(|| invalid("too long"))?;
    }
    Ok(Duration::from_nanos(nanos))
}

/// An age as it would be written: `30d`, `1d12h`, `90m`.
pub fn format_age(age: Duration) -> String {
    let nanos = u64::try_from(age.as_nanos()).unwrap_or(u64::MAX);
    let (days, rest) = (nanos / DAY_NANOS, nanos % DAY_NANOS);
    match (days, rest) {
        (0, _) => crate::format_duration(rest),
        (_, 0) => format!("{days}d"),
        _ => format!("{days}d{}", crate::format_duration(rest)),
    }
}

/// Byte units, case-insensitive: powers of 1000 and of 1024.
const SIZE_UNITS: [(&str, u64); 9] = [
    ("b", 1),
    ("kb", 1_000),
    ("mb", 1_000_000),
    ("gb", 1_000_000_000),
    ("tb", 1_000_000_000_000),
    ("kib", 1 << 10),
    ("mib", 1 << 20),
    ("gib", 1 << 30),
    ("tib", 1 << 40),
];

/// Parses a size such as `50GB`, `500MB`, `1.5GiB` or `1024` (bytes):
/// `KB`, `MB`, `GB` and `TB` are powers of 1000, `KiB`, `MiB`, `GiB` and
/// `TiB` powers of 1024, in any case. Fractions of a byte are dropped.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let invalid = |why: &str| {
        let units = "B, KB, MB, GB, TB, KiB, MiB, GiB, TiB";
        format!("invalid size {text:?}: {why} (write bytes, or a number and one of {units}, like 500MB or 1.5GiB)")
    };
    let text = text.trim();
    let number_len = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(number_len);
    if number.is_empty() {
        return Err(invalid("expected a number"));
    }
    let unit = unit.trim().to_ascii_lowercase();
    let scale = if unit.is_empty() {
        1
    } else {
        SIZE_UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|&(_, scale)| scale)
            .ok_or_else(|| invalid("unknown unit"))?
    };
    scaled(number, scale).ok_or_else(|| invalid("not a number, or too large"))
}

/// A size as it would be written: the largest unit that divides it
/// exactly (`50GB`, `1536MiB`), else bytes (`1234B`).
pub fn format_size(bytes: u64) -> String {
    let unit = [("TiB", 1_u64 << 40), ("TB", 1_000_000_000_000), ("GiB", 1 << 30), ("GB", 1_000_000_000)]
        .into_iter()
        .chain([("MiB", 1 << 20), ("MB", 1_000_000), ("KiB", 1 << 10), ("KB", 1_000)])
        .find(|&(_, scale)| bytes > 0 && bytes.is_multiple_of(scale));
    match unit {
        Some((name, scale)) => format!("{}{name}", bytes / scale),
        None => format!("{bytes}B"),
    }
}

/// `number` (digits, at most one `.`) times `scale`, exactly; what is left
/// below one is dropped.
fn scaled(number: &str, scale: u64) -> Option<u64> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') || fraction.len() > 18 {
        return None;
    }
    let whole: u64 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
    let mut value = whole.checked_mul(scale)?;
    if !fraction.is_empty() {
        let digits: u128 = fraction.parse().ok()?;
        let part = digits * u128::from(scale) / 10_u128.pow(fraction.len() as u32);
        value = value.checked_add(u64::try_from(part).ok()?)?;
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default start of seed sessions, 2026-01-01 on their virtual clock.
    const SEED_START: Timestamp = Timestamp::from_unix_nanos(1_767_225_600_000_000_000);

    const NOW: u64 = 1_800_000_000 * 1_000_000_000;

    fn days_ago(days: u64) -> Timestamp {
        Timestamp::from_unix_nanos(NOW - days * DAY_NANOS)
    }

    /// A completed session that started `days` ago, lasted an hour and takes `size` bytes.
    fn session(id: &str, session_type: SessionType, days: u64, size: u64) -> SessionMetadata {
        let start = days_ago(days);
        let mut metadata = SessionMetadata::new(SessionId::new(id).unwrap(), session_type, start, "test".to_owned());
        metadata.finish(Timestamp::from_unix_nanos(start.unix_nanos() + 3_600_000_000_000), SessionStatus::Completed);
        metadata.total_size_bytes = size;
        metadata
    }

    fn ids(decisions: &[Decision]) -> Vec<&str> {
        decisions.iter().map(|decision| decision.session_id.as_str()).collect()
    }

    fn run(sessions: &[SessionMetadata], policy: &RetentionPolicy) -> Vec<Decision> {
        plan(sessions, policy, Timestamp::from_unix_nanos(NOW), &HashSet::new())
    }

    fn days(count: u64) -> Duration {
        Duration::from_nanos(count * DAY_NANOS)
    }

    /// Ten capture sessions, `c1` (oldest, 100 days ago) to `c10` (10 days ago), of 100 bytes each.
    fn ten() -> Vec<SessionMetadata> {
        (1..=10).map(|n| session(&format!("c{n:02}"), SessionType::Capture, 110 - n * 10, 100)).collect()
    }

    #[test]
    fn no_criterion_deletes_nothing() {
        assert!(run(&ten(), &RetentionPolicy::default()).is_empty());
        assert!(!RetentionPolicy::default().has_criterion());
        let types_only = RetentionPolicy { types: vec![SessionType::Capture], ..RetentionPolicy::default() };
        assert!(!types_only.has_criterion());
        assert!(run(&ten(), &types_only).is_empty());
    }

    #[test]
    fn older_than_deletes_sessions_that_ended_before_the_cutoff() {
        let policy = RetentionPolicy { older_than: Some(days(45)), ..RetentionPolicy::default() };
        let decisions = run(&ten(), &policy);
        // c06 started 50 days ago and ended an hour later: older than 45 days. c07 started 40 days ago.
        assert_eq!(ids(&decisions), ["c01", "c02", "c03", "c04", "c05", "c06"]);
        assert!(decisions.iter().all(|decision| decision.reason == Reason::OlderThan(Duration::from_hours(45 * 24))));
        assert_eq!(decisions[0].reason.to_string(), "older than 45d");
        assert_eq!(decisions[0].size_bytes, 100);
        assert_eq!(decisions[0].start_time, days_ago(100));
        assert_eq!(decisions[0].session_type, SessionType::Capture);
    }

    /// A seed made `hours_ago` hours before now on its default virtual clock
    /// (2026-01-01, long before now), whatever it lasted.
    fn fresh_seed(id: &str, hours_ago: u64) -> SessionMetadata {
        let mut seed = session(id, SessionType::Seed, 0, 1);
        let virtual_start = SEED_START;
        seed.start_time = virtual_start;
        seed.end_time = Some(Timestamp::from_unix_nanos(virtual_start.unix_nanos() + 30_000_000_000));
        seed.created_at = Some(Timestamp::from_unix_nanos(NOW - hours_ago * 3_600_000_000_000));
        seed
    }

    #[test]
    fn older_than_uses_the_creation_time_not_the_start_or_end() {
        // A seed made a second ago on the virtual clock of 2026-01-01.
        let mut just_made = fresh_seed("just-made", 0);
        just_made.created_at = Some(Timestamp::from_unix_nanos(NOW - 1_000_000_000));
        let policy = RetentionPolicy { older_than: Some(Duration::from_hours(1)), ..RetentionPolicy::default() };
        assert!(run(std::slice::from_ref(&just_made), &policy).is_empty());
        // One made two hours ago goes.
        let decisions = run(&[just_made, fresh_seed("made-earlier", 2)], &policy);
        assert_eq!(ids(&decisions), ["made-earlier"]);
        assert_eq!(decisions[0].created_at, Timestamp::from_unix_nanos(NOW - 2 * 3_600_000_000_000));
        assert_eq!(decisions[0].start_time, SEED_START);
        // A capture created 31 days ago that ended 29 days ago is older than 30 days.
        let mut long = session("long", SessionType::Capture, 31, 1);
        long.end_time = Some(days_ago(29));
        let policy = RetentionPolicy { older_than: Some(days(30)), ..RetentionPolicy::default() };
        assert_eq!(ids(&run(&[long], &policy)), ["long"]);
    }

    #[test]
    fn sessions_without_created_at_fall_back_to_their_generated_id_else_their_start() {
        // NOW is 2027-01-15T08:00:00Z.
        let mut old_seed = fresh_seed("seed-basic-topology-20270115-073000-0123abcd", 0);
        old_seed.created_at = None;
        let mut old_capture = session("named-by-hand", SessionType::Capture, 2, 1);
        old_capture.created_at = None;
        let policy = RetentionPolicy { older_than: Some(days(1)), ..RetentionPolicy::default() };
        assert_eq!(ids(&run(&[old_seed.clone(), old_capture], &policy)), ["named-by-hand"]);
        let policy = RetentionPolicy { older_than: Some(Duration::from_mins(20)), ..RetentionPolicy::default() };
        assert_eq!(ids(&run(&[old_seed], &policy)), ["seed-basic-topology-20270115-073000-0123abcd"]);
    }

    #[test]
    fn keep_last_keeps_the_newest_by_creation_time() {
        // Ten captures of the last 100 days and a seed made an hour ago that
        // starts in 2026: the seed is the newest.
        let mut sessions = ten();
        sessions.push(fresh_seed("fresh", 1));
        let policy = RetentionPolicy { keep_last: Some(1), ..RetentionPolicy::default() };
        let decisions = run(&sessions, &policy);
        assert_eq!(decisions.len(), 10);
        assert!(decisions.iter().all(|decision| decision.session_id.as_str() != "fresh"));
    }

    #[test]
    fn an_age_beyond_the_epoch_deletes_nothing() {
        let policy = RetentionPolicy { older_than: Some(Duration::MAX), ..RetentionPolicy::default() };
        assert!(run(&ten(), &policy).is_empty());
    }

    #[test]
    fn keep_last_alone_deletes_all_but_the_newest() {
        let policy = RetentionPolicy { keep_last: Some(3), ..RetentionPolicy::default() };
        let decisions = run(&ten(), &policy);
        assert_eq!(ids(&decisions), ["c01", "c02", "c03", "c04", "c05", "c06", "c07"]);
        assert_eq!(decisions[0].reason.to_string(), "not among the 3 newest");
        let more_than_stored = RetentionPolicy { keep_last: Some(20), ..RetentionPolicy::default() };
        assert!(run(&ten(), &more_than_stored).is_empty());
    }

    #[test]
    fn keep_last_takes_precedence_over_age_and_size() {
        let policy = RetentionPolicy { older_than: Some(days(1)), keep_last: Some(4), ..RetentionPolicy::default() };
        assert_eq!(ids(&run(&ten(), &policy)), ["c01", "c02", "c03", "c04", "c05", "c06"]);
        let policy = RetentionPolicy { max_total_bytes: Some(0), keep_last: Some(4), ..RetentionPolicy::default() };
        assert_eq!(ids(&run(&ten(), &policy)), ["c01", "c02", "c03", "c04", "c05", "c06"]);
        // With another criterion, keep-last deletes nothing by itself.
        let policy = RetentionPolicy { older_than: Some(days(1000)), keep_last: Some(4), ..RetentionPolicy::default() };
        assert!(run(&ten(), &policy).is_empty());
    }

    #[test]
    fn keep_last_breaks_start_time_ties_by_id() {
        let sessions: Vec<SessionMetadata> =
            ["b", "a", "c"].iter().map(|id| session(id, SessionType::Seed, 5, 1)).collect();
        let policy = RetentionPolicy { keep_last: Some(1), ..RetentionPolicy::default() };
        assert_eq!(ids(&run(&sessions, &policy)), ["a", "b"]);
    }

    #[test]
    fn max_total_size_deletes_the_oldest_until_the_store_fits() {
        let policy = RetentionPolicy { max_total_bytes: Some(650), ..RetentionPolicy::default() };
        let decisions = run(&ten(), &policy);
        assert_eq!(ids(&decisions), ["c01", "c02", "c03", "c04"]);
        assert_eq!(decisions[0].reason.to_string(), "over total size 650B");
        let fits = RetentionPolicy { max_total_bytes: Some(1000), ..RetentionPolicy::default() };
        assert!(run(&ten(), &fits).is_empty());
    }

    #[test]
    fn max_total_size_counts_every_session_of_the_store() {
        let mut sessions = ten();
        // 500 bytes of seeds, not candidates, still fill the store.
        sessions.push(session("seed-a", SessionType::Seed, 200, 250));
        sessions.push(session("seed-b", SessionType::Seed, 1, 250));
        let policy = RetentionPolicy {
            max_total_bytes: Some(1000),
            types: vec![SessionType::Capture],
            ..RetentionPolicy::default()
        };
        assert_eq!(ids(&run(&sessions, &policy)), ["c01", "c02", "c03", "c04", "c05"]);
    }

    #[test]
    fn max_total_size_counts_what_age_already_deletes() {
        let policy =
            RetentionPolicy { older_than: Some(days(75)), max_total_bytes: Some(500), ..RetentionPolicy::default() };
        let decisions = run(&ten(), &policy);
        assert_eq!(ids(&decisions), ["c01", "c02", "c03", "c04", "c05"]);
        let reasons: Vec<String> = decisions.iter().map(|decision| decision.reason.to_string()).collect();
        assert_eq!(
            reasons,
            ["older than 75d", "older than 75d", "older than 75d", "over total size 500B", "over total size 500B"]
        );
    }

    #[test]
    fn active_and_protected_sessions_are_never_deleted() {
        let mut sessions = ten();
        sessions[0].status = SessionStatus::Active;
        sessions[0].end_time = None;
        let protected: HashSet<SessionId> = [SessionId::new("c02").unwrap()].into();
        let now = Timestamp::from_unix_nanos(NOW);
        let all_but_two = ["c03", "c04", "c05", "c06", "c07", "c08", "c09", "c10"];
        for (policy, expected) in [
            (RetentionPolicy { older_than: Some(days(0)), ..RetentionPolicy::default() }, &all_but_two[..]),
            (RetentionPolicy { keep_last: Some(1), ..RetentionPolicy::default() }, &all_but_two[..7]),
            (RetentionPolicy { max_total_bytes: Some(0), ..RetentionPolicy::default() }, &all_but_two[..]),
        ] {
            assert_eq!(ids(&plan(&sessions, &policy, now, &protected)), expected, "{policy:?}");
        }
        // They are not among the newest that keep-last counts either.
        sessions[9].status = SessionStatus::Active;
        let policy = RetentionPolicy { keep_last: Some(1), ..RetentionPolicy::default() };
        assert_eq!(ids(&plan(&sessions, &policy, now, &protected)), ["c03", "c04", "c05", "c06", "c07", "c08"]);
    }

    #[test]
    fn only_the_selected_types_are_deleted() {
        let sessions = vec![
            session("old-seed", SessionType::Seed, 100, 1),
            session("old-capture", SessionType::Capture, 100, 1),
            session("old-training", SessionType::Training, 100, 1),
        ];
        let policy = RetentionPolicy {
            older_than: Some(days(30)),
            types: vec![SessionType::Seed, SessionType::Training],
            ..RetentionPolicy::default()
        };
        assert_eq!(ids(&run(&sessions, &policy)), ["old-seed", "old-training"]);
        let all = RetentionPolicy { older_than: Some(days(30)), ..RetentionPolicy::default() };
        assert_eq!(run(&sessions, &all).len(), 3);
    }

    #[test]
    fn the_plan_does_not_depend_on_the_input_order() {
        let policy =
            RetentionPolicy { older_than: Some(days(45)), max_total_bytes: Some(300), ..RetentionPolicy::default() };
        let forward = run(&ten(), &policy);
        let mut reversed = ten();
        reversed.reverse();
        assert_eq!(forward, run(&reversed, &policy));
        assert_eq!(ids(&forward), ["c01", "c02", "c03", "c04", "c05", "c06", "c07"]);
    }

    #[test]
    fn ages_parse_with_days() {
        assert_eq!(parse_age("30d"), Ok(Duration::from_hours(720)));
        assert_eq!(parse_age("1d12h"), Ok(Duration::from_hours(36)));
        assert_eq!(parse_age("1.5d"), Ok(Duration::from_hours(36)));
        assert_eq!(parse_age("12h"), Ok(Duration::from_hours(12)));
        assert_eq!(parse_age("90m"), Ok(Duration::from_mins(90)));
        assert_eq!(parse_age(" 10s "), Ok(Duration::from_secs(10)));
        for bad in ["", "30", "30x", "d", "1d2d", "-1d", "thirty days"] {
            let error = parse_age(bad).unwrap_err();
            assert!(error.contains("invalid age") && error.contains("30d"), "{bad:?}: {error}");
        }
        assert_eq!(format_age(Duration::from_hours(720)), "30d");
        assert_eq!(format_age(Duration::from_hours(36)), "1d12h");
        assert_eq!(format_age(Duration::from_mins(90)), "1h30m");
    }

    #[test]
    fn sizes_parse_in_decimal_and_binary_units() {
        assert_eq!(parse_size("50GB"), Ok(50_000_000_000));
        assert_eq!(parse_size("500MB"), Ok(500_000_000));
        assert_eq!(parse_size("500mb"), Ok(500_000_000));
        assert_eq!(parse_size("1.5GiB"), Ok(1_610_612_736));
        assert_eq!(parse_size("2 tib"), Ok(2 << 40));
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("1024B"), Ok(1024));
        assert_eq!(parse_size("1KB"), Ok(1000));
        assert_eq!(parse_size("1KiB"), Ok(1024));
        assert_eq!(parse_size("0"), Ok(0));
        for bad in ["", "GB", "50G", "5 0GB", "1.2.3MB", "-5GB", "99999999999TB", "fifty"] {
            let error = parse_size(bad).unwrap_err();
            assert!(error.contains("invalid size") && error.contains("GiB"), "{bad:?}: {error}");
        }
        assert_eq!(format_size(50_000_000_000), "50GB");
        assert_eq!(format_size(1_610_612_736), "1536MiB");
        assert_eq!(format_size(1234), "1234B");
        assert_eq!(format_size(0), "0B");
    }

    #[test]
    fn configs_become_policies_with_the_api_messages() {
        let parse = |json: &str| serde_json::from_str::<RetentionConfig>(json).map_err(|error| error.to_string());
        let config =
            parse(r#"{"olderThan": "30d", "keepLast": 3, "maxTotalSize": "1GB", "types": ["seed"], "dryRun": true}"#)
                .unwrap();
        assert!(config.dry_run);
        let policy = config.validate().unwrap();
        assert_eq!(policy.older_than, Some(days(30)));
        assert_eq!((policy.keep_last, policy.max_total_bytes), (Some(3), Some(1_000_000_000)));
        assert_eq!(policy.types, [SessionType::Seed]);
        let policy = parse(r#"{"keepLast": "2", "types": "seed,capture"}"#).unwrap().validate().unwrap();
        assert_eq!(policy.types, [SessionType::Seed, SessionType::Capture]);
        for (json, expected) in [
            ("{}", "a retention policy needs olderThan, keepLast or maxTotalSize"),
            (r#"{"types": ["seed"]}"#, "a retention policy needs olderThan, keepLast or maxTotalSize"),
            (r#"{"olderThan": "30"}"#, "older-than \"30\": invalid age"),
            (r#"{"maxTotalSize": "50G"}"#, "max-total-size \"50G\": invalid size"),
            (r#"{"keepLast": 1, "types": ["old"]}"#, "type \"old\" is not one of seed, capture, training"),
        ] {
            let error = parse(json).unwrap().validate().unwrap_err().to_string();
            assert!(error.starts_with(expected), "{json}: {error}");
        }
        assert!(parse(r#"{"olderThan": "1d", "force": true}"#).unwrap_err().contains("unknown field `force`"));
    }
}
