//! Which session a replay sends: the one named, or one the orchestrator
//! picks among the store's completed sessions.

use std::cmp::Ordering;

use serde::Serialize;
use tape_session::{SessionMetadata, SessionStatus, SessionStore, SessionType, list_sessions};
use tracing::warn;

use super::config::{SessionChoice, Strategy};
use super::error::Error;

/// How the orchestrator picked a session, for the summary and dry runs.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Picked {
    /// The strategy.
    pub strategy: Strategy,
    /// The type the candidates had to be, if any.
    pub filter_type: Option<SessionType>,
    /// How many completed sessions were candidates.
    pub candidates: usize,
}

impl Picked {
    /// `latest of 3 completed seed sessions`.
    pub fn describe(&self) -> String {
        let kind = self.filter_type.map_or(String::new(), |kind| format!(" {kind}"));
        let plural = if self.candidates == 1 { "" } else { "s" };
        format!("{} of {} completed{kind} session{plural}", self.strategy.as_str(), self.candidates)
    }
}

/// The session of `choice`, and how it was picked when the orchestrator
/// picked it. A session the orchestrator skips because its metadata
/// cannot be read is a warning (a `tracing` event).
///
/// # Errors
/// No session to pick, a session named that does not exist
/// ([`Error::SessionNotFound`]), cannot be read, is of another type than
/// `filter_type` or is still active, or `strategy` with a named session.
pub async fn pick(
    store: &dyn SessionStore,
    choice: &SessionChoice,
    strategy: Option<Strategy>,
    filter_type: Option<SessionType>,
) -> Result<(SessionMetadata, Option<Picked>), Error> {
    let location = store.location();
    let id = match choice {
        SessionChoice::Id(id) => id,
        SessionChoice::Auto => {
            let listing = list_sessions(store, filter_type)
                .await
                .map_err(|source| Error::ListSessions { location: location.clone(), source: Box::new(source) })?;
            for (id, error) in &listing.unreadable {
                warn!(session = %id, "Skipped an unreadable session: {error}");
            }
            let candidates: Vec<SessionMetadata> =
                listing.sessions.into_iter().filter(|session| session.status == SessionStatus::Completed).collect();
            let strategy = strategy.unwrap_or_default();
            let Some(chosen) = choose(&candidates, strategy, |n| rand::random_range(0..n)) else {
                return Err(Error::NoSessions { location, filter_type });
            };
            let picked = Picked { strategy, filter_type, candidates: candidates.len() };
            return Ok((chosen.clone(), Some(picked)));
        }
    };
    if strategy.is_some() {
        return Err(Error::StrategyWithSession { id: id.clone() });
    }
    let metadata = match store.read_metadata(id).await {
        Ok(metadata) => metadata,
        Err(store @ tape_session::Error::NotFound(_)) => {
            return Err(Error::SessionNotFound { id: id.clone(), location, store: Box::new(store) });
        }
        Err(source) => return Err(Error::ReadSession { id: id.clone(), location, source: Box::new(source) }),
    };
    if let Some(kind) = filter_type
        && metadata.session_type != kind
    {
        return Err(Error::WrongType { id: id.clone(), actual: metadata.session_type, wanted: kind });
    }
    if tape_session::is_unsealed(&metadata) {
        let advice = tape_session::unsealed_advice(store, id).await;
        return Err(Error::UnsealedSession { id: id.clone(), advice });
    }
    if metadata.status == SessionStatus::Active {
        return Err(Error::ActiveSession { id: id.clone(), finish: metadata.how_to_finish() });
    }
    Ok((metadata, None))
}

/// The session `strategy` picks; `random(n)` draws an index below `n`.
pub fn choose(
    sessions: &[SessionMetadata],
    strategy: Strategy,
    random: impl FnOnce(usize) -> usize,
) -> Option<&SessionMetadata> {
    let items = |session: &SessionMetadata| session.item_counts().total();
    let by_size = |a: &&SessionMetadata, b: &&SessionMetadata| -> Ordering {
        items(a)
            .cmp(&items(b))
            .then_with(|| a.total_size_bytes.cmp(&b.total_size_bytes))
            .then_with(|| a.session_id.cmp(&b.session_id))
    };
    match strategy {
        Strategy::Latest => {
            sessions.iter().max_by(|a, b| a.created().cmp(&b.created()).then_with(|| a.session_id.cmp(&b.session_id)))
        }
        Strategy::Random if sessions.is_empty() => None,
        Strategy::Random => sessions.get(random(sessions.len())),
        Strategy::Largest => sessions.iter().max_by(by_size),
        Strategy::Smallest => sessions.iter().min_by(by_size),
    }
}

#[cfg(test)]
mod tests {
    use tape_session::Timestamp;

    use super::*;

    fn session(id: &str, start_seconds: u64, spans: u64, size: u64) -> SessionMetadata {
        let start = Timestamp::from_unix_nanos(start_seconds * 1_000_000_000);
        let mut metadata = SessionMetadata::new(id.parse().unwrap(), SessionType::Seed, start, "test".to_owned());
        metadata.captured_traces = spans;
        metadata.total_size_bytes = size;
        metadata
    }

    fn chosen(sessions: &[SessionMetadata], strategy: Strategy) -> &str {
        choose(sessions, strategy, |_| 1).unwrap().session_id.as_str()
    }

    #[test]
    fn strategies_pick_by_start_time_and_size_with_ties_broken() {
        let sessions = [
            session("a", 30, 100, 10),
            session("b", 10, 500, 20),
            session("c", 30, 50, 30),
            session("d", 20, 500, 5),
            session("e", 5, 50, 30),
        ];
        assert_eq!(chosen(&sessions, Strategy::Latest), "c", "newest creation, then the greatest id");
        assert_eq!(chosen(&sessions, Strategy::Largest), "b", "most items, then the most bytes");
        assert_eq!(chosen(&sessions, Strategy::Smallest), "c", "fewest items, fewest bytes, then the least id");
        assert_eq!(chosen(&sessions, Strategy::Random), "b", "the index drawn");
        assert!(choose(&[], Strategy::Random, |_| unreachable!()).is_none());
        assert!(choose(&[], Strategy::Latest, |_| 0).is_none());
    }

    #[test]
    fn latest_is_the_session_made_last_not_the_latest_start() {
        // A capture made (and started) at second 1000, and a seed made after
        // it whose virtual clock starts at second 10.
        let capture = session("capture", 1000, 1, 1);
        let mut seed = session("seed", 10, 1, 1);
        seed.created_at = Some(Timestamp::from_unix_nanos(2000 * 1_000_000_000));
        assert_eq!(chosen(&[capture.clone(), seed.clone()], Strategy::Latest), "seed");
        // Without createdAt (written before it was recorded), the start time.
        seed.created_at = None;
        assert_eq!(chosen(&[capture, seed], Strategy::Latest), "capture");
    }

    #[test]
    fn picks_describe_themselves() {
        let picked = Picked { strategy: Strategy::Largest, filter_type: Some(SessionType::Seed), candidates: 3 };
        assert_eq!(picked.describe(), "largest of 3 completed seed sessions");
        let picked = Picked { strategy: Strategy::Latest, filter_type: None, candidates: 1 };
        assert_eq!(picked.describe(), "latest of 1 completed session");
    }
}
