//! The window of receive times a command selects from a session with
//! `--from`, `--until` and `--phase` (replay, export), resolved against the
//! session.

use crate::{BlobEntry, Phase, SessionId, SessionMetadata, TimeBound, Timestamp, WriterId};

/// One phase of a session as one range of receive times, as `--phase`
/// selects it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhaseRange {
    /// Its name, such as `baseline`.
    pub name: String,
    /// Its first instant.
    pub start: Timestamp,
    /// The instant after it.
    pub end: Timestamp,
    /// The writers whose records it selects, sorted; empty: every
    /// writer's (see [`Phase::writers`]).
    pub writers: Vec<WriterId>,
}

impl PhaseRange {
    /// Whether it selects the records of `writer`.
    pub fn pairs_with(&self, writer: Option<&WriterId>) -> bool {
        self.writers.is_empty() || writer.is_some_and(|writer| self.writers.binary_search(writer).is_ok())
    }

    /// Whether it selects records of `blob`: a phase of one source of a
    /// merged session selects that source's writers' blobs only.
    pub fn selects_blob(&self, blob: &BlobEntry) -> bool {
        self.pairs_with(blob.key.writer())
    }
}

/// Why `--from`, `--until` and `--phase` select nothing; the message says
/// why and names the session or the bounds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WindowError {
    /// The phase is given by several annotations (two incidents of one
    /// name), so it is not one range.
    #[error(
        "phase {name} of session {session} has {} ranges ({}); --phase {action} one range: give the one you want \
         with --from and --until",
        ranges.len(),
        ranges.iter().map(|(start, end)| format!("{start} .. {end}")).collect::<Vec<_>>().join(", ")
    )]
    SeveralRanges {
        /// The session.
        session: SessionId,
        /// The phase.
        name: String,
        /// Its ranges.
        ranges: Vec<(Timestamp, Timestamp)>,
        /// What the command does with the range: `replays`, `exports`.
        action: &'static str,
    },
    /// The session has no phases at all.
    #[error("session {session} has no phases, so --phase {name} selects nothing (phases come from seed patterns)")]
    NoPhases {
        /// The session.
        session: SessionId,
        /// The phase asked for.
        name: String,
    },
    /// The session has phases, but not this one.
    #[error("session {session} has no phase {name:?}; its phases are {}", known.join(", "))]
    UnknownPhase {
        /// The session.
        session: SessionId,
        /// The phase asked for.
        name: String,
        /// The session's phases.
        known: Vec<String>,
    },
    /// `--from` is not before `--until`.
    #[error(
        "--from {from} ({}) is not before --until {until} ({}): the window would be empty",
        Timestamp::from_unix_nanos(*from_nanos),
        Timestamp::from_unix_nanos(*until_nanos)
    )]
    Empty {
        /// `--from` as given.
        from: TimeBound,
        /// `--until` as given.
        until: TimeBound,
        /// `--from` resolved.
        from_nanos: u64,
        /// `--until` resolved.
        until_nanos: u64,
    },
    /// The phase does not meet `--from` and `--until`.
    #[error("phase {} ({} .. {}) is outside --from and --until: the window would be empty", phase.name, phase.start, phase.end)]
    PhaseOutside {
        /// The phase.
        phase: PhaseRange,
    },
}

/// The phase called `name` as one range, or an error that lists the
/// session's phases. A phase that several annotations give (two incidents
/// of one name) has several ranges, and `--phase` cannot pick one;
/// `action` says in that message what the command does with the range
/// (`replays`, `exports`).
///
/// # Errors
/// No such phase, or one of several ranges.
pub fn find_phase(
    metadata: &SessionMetadata,
    phases: &[Phase],
    name: &str,
    action: &'static str,
) -> Result<PhaseRange, WindowError> {
    let session = metadata.session_id.clone();
    if let Some(phase) = phases.iter().find(|phase| phase.name == name) {
        if let [(start, end)] = phase.ranges[..] {
            return Ok(PhaseRange { name: phase.name.clone(), start, end, writers: phase.writers.clone() });
        }
        return Err(WindowError::SeveralRanges {
            session,
            name: name.to_owned(),
            ranges: phase.ranges.clone(),
            action,
        });
    }
    if phases.is_empty() {
        return Err(WindowError::NoPhases { session, name: name.to_owned() });
    }
    let known = phases.iter().map(|phase| phase.name.clone()).collect();
    Err(WindowError::UnknownPhase { session, name: name.to_owned(), known })
}

/// Receive times `[from, until)` in unix nanoseconds; `None` is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Window {
    /// Records received at or after this.
    pub from: Option<u64>,
    /// Records received before this.
    pub until: Option<u64>,
}

impl Window {
    /// Whether a record received at `receive_time` (unix nanoseconds) is in
    /// the window.
    pub fn contains(&self, receive_time: u64) -> bool {
        self.from.is_none_or(|from| receive_time >= from) && self.until.is_none_or(|until| receive_time < until)
    }

    /// Whether records received from `first` to `last` (both inclusive)
    /// may be in the window.
    pub fn overlaps(&self, first: u64, last: u64) -> bool {
        self.from.is_none_or(|from| last >= from) && self.until.is_none_or(|until| first < until)
    }
}

/// The window of `--from`, `--until` and `--phase` for a session that
/// starts at `start`: the phase's range within `--from` and `--until`.
///
/// # Errors
/// The window would be empty.
pub fn window(
    start: Timestamp,
    from: Option<TimeBound>,
    until: Option<TimeBound>,
    phase: Option<&PhaseRange>,
) -> Result<Window, WindowError> {
    let mut window =
        Window { from: from.map(|bound| bound.resolve(start)), until: until.map(|bound| bound.resolve(start)) };
    if let (Some(from_nanos), Some(until_nanos), Some(from), Some(until)) = (window.from, window.until, from, until)
        && from_nanos >= until_nanos
    {
        return Err(WindowError::Empty { from, until, from_nanos, until_nanos });
    }
    if let Some(phase) = phase {
        let (start, end) = (phase.start.unix_nanos(), phase.end.unix_nanos());
        window.from = Some(window.from.map_or(start, |from| from.max(start)));
        window.until = Some(window.until.map_or(end, |until| until.min(end)));
        if window.from >= window.until {
            return Err(WindowError::PhaseOutside { phase: phase.clone() });
        }
    }
    Ok(window)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;

    fn start() -> Timestamp {
        Timestamp::parse_rfc3339("2026-01-01T00:00:00Z").unwrap()
    }

    #[test]
    fn a_window_holds_from_and_not_until() {
        let window = Window { from: Some(10), until: Some(20) };
        assert!(!window.contains(9));
        assert!(window.contains(10));
        assert!(window.contains(19));
        assert!(!window.contains(20));
        assert!(Window::default().contains(0));
        assert!(window.overlaps(0, 10));
        assert!(!window.overlaps(0, 9));
        assert!(window.overlaps(19, 30));
        assert!(!window.overlaps(20, 30));
    }

    #[test]
    fn a_phase_of_several_ranges_says_what_the_command_does() {
        let metadata = SessionMetadata::new("s".parse().unwrap(), crate::SessionType::Seed, start(), "test".to_owned());
        let at = |seconds: u64| Timestamp::from_unix_nanos(start().unix_nanos() + seconds * SECOND);
        let phases = vec![Phase {
            name: "incident".to_owned(),
            ranges: vec![(at(2), at(3)), (at(12), at(13))],
            flags: vec![],
            description: None,
            writers: vec![],
        }];
        let message = find_phase(&metadata, &phases, "incident", "exports").unwrap_err().to_string();
        assert!(message.contains("; --phase exports one range: give the one"), "{message}");
        let message = window(start(), Some(TimeBound::Offset(5 * SECOND)), Some(TimeBound::Offset(SECOND)), None)
            .unwrap_err()
            .to_string();
        assert!(message.starts_with("--from 5s (2026-01-01T00:00:05Z) is not before --until 1s"), "{message}");
    }
}
