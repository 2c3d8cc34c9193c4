//! The window of receive times a replay sends: `--from`, `--until` and
//! `--phase`, resolved against the session.

use tape_session::Phase as SessionPhase;
use tape_session::{SessionMetadata, SessionStore, TimeBound, Timestamp};

use super::error::Error;

/// A phase of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phase {
    /// Its name, such as `baseline`.
    pub name: String,
    /// Its first instant.
    pub start: Timestamp,
    /// The instant after it.
    pub end: Timestamp,
}

/// The session's phases: the `test.phase.<name>` annotations of its
/// `annotations.jsonl`, else the phases of its metadata (as the training
/// reader reads them).
///
/// # Errors
/// [`Error::Phases`]: the annotations cannot be read or are not valid.
pub async fn phases(store: &dyn SessionStore, metadata: &SessionMetadata) -> Result<Vec<SessionPhase>, Error> {
    tape_session::session_phases(store, metadata).await.map_err(|source| Error::Phases {
        id: metadata.session_id.clone(),
        location: store.location(),
        source: Box::new(source),
    })
}

/// The phase called `name` as one range, or an error that lists the
/// session's phases. A phase that several annotations give (two incidents
/// of one name) has several ranges, and `--phase` cannot pick one.
///
/// # Errors
/// [`Error::Window`]: no such phase, or one of several ranges.
pub fn find_phase(metadata: &SessionMetadata, phases: &[SessionPhase], name: &str) -> Result<Phase, Error> {
    let id = &metadata.session_id;
    if let Some(phase) = phases.iter().find(|phase| phase.name == name) {
        if let [(start, end)] = phase.ranges[..] {
            return Ok(Phase { name: phase.name.clone(), start, end });
        }
        let ranges: Vec<String> = phase.ranges.iter().map(|(start, end)| format!("{start} .. {end}")).collect();
        return Err(Error::Window(format!(
            "phase {name} of session {id} has {} ranges ({}); --phase replays one range: give the one you want with \
             --from and --until",
            ranges.len(),
            ranges.join(", ")
        )));
    }
    if phases.is_empty() {
        return Err(Error::Window(format!(
            "session {id} has no phases, so --phase {name} selects nothing (phases come from seed patterns)"
        )));
    }
    let names: Vec<&str> = phases.iter().map(|phase| phase.name.as_str()).collect();
    Err(Error::Window(format!("session {id} has no phase {name:?}; its phases are {}", names.join(", "))))
}

/// Receive times `[from, until)` in unix nanoseconds; `None` is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Window {
    /// Records received at or after this.
    pub from: Option<u64>,
    /// Records received before this.
    pub until: Option<u64>,
}

/// The window of `--from`, `--until` and `--phase` for a session that
/// starts at `start`: the phase's range within `--from` and `--until`.
///
/// # Errors
/// [`Error::Window`]: the window would be empty.
pub fn window(
    start: Timestamp,
    from: Option<TimeBound>,
    until: Option<TimeBound>,
    phase: Option<&Phase>,
) -> Result<Window, Error> {
    let mut window =
        Window { from: from.map(|bound| bound.resolve(start)), until: until.map(|bound| bound.resolve(start)) };
    if let (Some(from_nanos), Some(until_nanos), Some(from), Some(until)) = (window.from, window.until, from, until)
        && from_nanos >= until_nanos
    {
        return Err(Error::Window(format!(
            "--from {from} ({}) is not before --until {until} ({}): the window would be empty",
            Timestamp::from_unix_nanos(from_nanos),
            Timestamp::from_unix_nanos(until_nanos)
        )));
    }
    if let Some(phase) = phase {
        let (start, end) = (phase.start.unix_nanos(), phase.end.unix_nanos());
        window.from = Some(window.from.map_or(start, |from| from.max(start)));
        window.until = Some(window.until.map_or(end, |until| until.min(end)));
        if window.from >= window.until {
            return Err(Error::Window(format!(
                "phase {} ({} .. {}) is outside --from and --until: the window would be empty",
                phase.name, phase.start, phase.end
            )));
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

    fn parse_time_bound(text: &str) -> Result<TimeBound, String> {
        text.parse()
    }

    #[test]
    fn bounds_are_offsets_or_times() {
        assert_eq!(parse_time_bound("30s"), Ok(TimeBound::Offset(30 * SECOND)));
        assert_eq!(parse_time_bound("1m30s"), Ok(TimeBound::Offset(90 * SECOND)));
        assert_eq!(parse_time_bound(" 90 "), Ok(TimeBound::Offset(90 * SECOND)));
        assert_eq!(parse_time_bound("1.5"), Ok(TimeBound::Offset(1_500_000_000)));
        assert_eq!(
            parse_time_bound("2026-01-01T00:00:10+01:00"),
            Ok(TimeBound::At(Timestamp::parse_rfc3339("2025-12-31T23:00:10Z").unwrap()))
        );
        for bad in ["", "soon", "-5", "10 parsecs", "2026-13-01T00:00:00Z"] {
            let message = parse_time_bound(bad).unwrap_err();
            assert!(message.contains("expected an offset into the session"), "{bad}: {message}");
        }
        assert_eq!(TimeBound::Offset(90 * SECOND).to_string(), "1m30s");
    }

    #[test]
    fn offsets_count_from_the_session_start() {
        let window = window(start(), Some(TimeBound::Offset(5 * SECOND)), None, None).unwrap();
        assert_eq!(window, Window { from: Some(start().unix_nanos() + 5 * SECOND), until: None });
    }

    #[test]
    fn from_must_be_before_until() {
        let message = window(start(), Some(TimeBound::Offset(10 * SECOND)), Some(TimeBound::Offset(10 * SECOND)), None)
            .unwrap_err()
            .to_string();
        assert!(message.starts_with("--from 10s (2026-01-01T00:00:10Z) is not before --until 10s"), "{message}");
    }

    #[test]
    fn a_phase_is_intersected_with_from_and_until() {
        let phase = Phase {
            name: "failure".to_owned(),
            start: Timestamp::from_unix_nanos(start().unix_nanos() + 10 * SECOND),
            end: Timestamp::from_unix_nanos(start().unix_nanos() + 20 * SECOND),
        };
        let only = window(start(), None, None, Some(&phase)).unwrap();
        assert_eq!(only, Window { from: Some(phase.start.unix_nanos()), until: Some(phase.end.unix_nanos()) });
        let within =
            window(start(), Some(TimeBound::Offset(15 * SECOND)), Some(TimeBound::Offset(30 * SECOND)), Some(&phase))
                .unwrap();
        assert_eq!(
            within,
            Window { from: Some(start().unix_nanos() + 15 * SECOND), until: Some(phase.end.unix_nanos()) }
        );
        let message =
            window(start(), Some(TimeBound::Offset(25 * SECOND)), None, Some(&phase)).unwrap_err().to_string();
        assert!(
            message.starts_with("phase failure (2026-01-01T00:00:10Z .. 2026-01-01T00:00:20Z) is outside"),
            "{message}"
        );
    }

    #[test]
    fn an_unknown_phase_lists_the_known_ones() {
        let metadata = tape_session::SessionMetadata::new(
            "s".parse().unwrap(),
            tape_session::SessionType::Seed,
            start(),
            "test".to_owned(),
        );
        let at = |seconds: u64| Timestamp::from_unix_nanos(start().unix_nanos() + seconds * SECOND);
        let phase = |name: &str, ranges: Vec<(Timestamp, Timestamp)>| SessionPhase {
            name: name.to_owned(),
            ranges,
            flags: vec![],
            description: None,
        };
        let phases = vec![
            phase("baseline", vec![(at(0), at(10))]),
            phase("failure", vec![(at(10), at(20))]),
            phase("incident", vec![(at(2), at(3)), (at(12), at(13))]),
        ];
        let message = find_phase(&metadata, &phases, "recovery").unwrap_err().to_string();
        assert_eq!(message, "session s has no phase \"recovery\"; its phases are baseline, failure, incident");
        let message = find_phase(&metadata, &[], "recovery").unwrap_err().to_string();
        assert!(message.starts_with("session s has no phases"), "{message}");
        assert_eq!(
            find_phase(&metadata, &phases, "failure").unwrap(),
            Phase { name: "failure".to_owned(), start: at(10), end: at(20) }
        );
        let message = find_phase(&metadata, &phases, "incident").unwrap_err().to_string();
        assert!(message.starts_with("phase incident of session s has 2 ranges (2026-01-01T00:00:02Z .. "), "{message}");
        assert!(message.contains("--from and --until"), "{message}");
    }
}
