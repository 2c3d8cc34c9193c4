//! The window of receive times a replay sends: `--from`, `--until` and
//! `--phase`, resolved against the session.

use tape_session::Phase as SessionPhase;
use tape_session::{SessionMetadata, SessionStore, TimeBound, Timestamp};

use super::error::Error;

/// A phase of a session as one range (`--phase`).
pub use tape_session::PhaseRange as Phase;
/// Receive times `[from, until)` in unix nanoseconds; `None` is open.
pub use tape_session::Window;

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
/// session's phases ([`tape_session::find_phase`], which export shares).
///
/// # Errors
/// [`Error::Window`]: no such phase, or one of several ranges.
pub fn find_phase(metadata: &SessionMetadata, phases: &[SessionPhase], name: &str) -> Result<Phase, Error> {
    tape_session::find_phase(metadata, phases, name, "replays").map_err(|error| Error::Window(error.to_string()))
}

/// The window of `--from`, `--until` and `--phase` for a session that
/// starts at `start`: the phase's range within `--from` and `--until`
/// ([`tape_session::window`]).
///
/// # Errors
/// [`Error::Window`]: the window would be empty.
pub fn window(
    start: Timestamp,
    from: Option<TimeBound>,
    until: Option<TimeBound>,
    phase: Option<&Phase>,
) -> Result<Window, Error> {
    tape_session::window(start, from, until, phase).map_err(|error| Error::Window(error.to_string()))
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
            writers: vec![],
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
            writers: vec![],
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
            Phase { name: "failure".to_owned(), start: at(10), end: at(20), writers: vec![] }
        );
        let message = find_phase(&metadata, &phases, "incident").unwrap_err().to_string();
        assert!(message.starts_with("phase incident of session s has 2 ranges (2026-01-01T00:00:02Z .. "), "{message}");
        assert!(message.contains("--from and --until"), "{message}");
    }
}
