//! Which session a replay sends: the one named, or one the orchestrator
//! picks among the store's completed sessions.

use std::cmp::Ordering;

use anyhow::{Context, anyhow, bail};
use serde::Serialize;
use tape_session::{Error, SessionId, SessionMetadata, SessionStatus, SessionStore, SessionType, list_sessions};
use tracing::warn;

/// `--session`: a session id, or `auto`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionChoice {
    /// Picked by the orchestrator.
    Auto,
    /// This session.
    Id(SessionId),
}

/// `--session ID|auto`.
pub fn parse_session_choice(text: &str) -> Result<SessionChoice, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("auto") {
        return Ok(SessionChoice::Auto);
    }
    SessionId::new(text).map(SessionChoice::Id).map_err(|error| format!("{error}; or auto to pick one"))
}

/// How `--session auto` picks among the candidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// The newest creation time (`createdAt`, then the greatest id): the
    /// session made last, whatever clock its records are on.
    #[default]
    Latest,
    /// Any one, at random.
    Random,
    /// The most items (then the most bytes, then the greatest id).
    Largest,
    /// The fewest items (then the fewest bytes, then the least id).
    Smallest,
}

impl Strategy {
    fn as_str(self) -> &'static str {
        match self {
            Strategy::Latest => "latest",
            Strategy::Random => "random",
            Strategy::Largest => "largest",
            Strategy::Smallest => "smallest",
        }
    }
}

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
/// picked it.
pub async fn pick(
    store: &dyn SessionStore,
    choice: &SessionChoice,
    strategy: Option<Strategy>,
    filter_type: Option<SessionType>,
) -> anyhow::Result<(SessionMetadata, Option<Picked>)> {
    let location = store.location();
    let id = match choice {
        SessionChoice::Id(id) => id,
        SessionChoice::Auto => {
            let listing = list_sessions(store, filter_type)
                .await
                .with_context(|| format!("cannot list the sessions in {location}"))?;
            for (id, error) in &listing.unreadable {
                warn!(session = %id, "Skipped an unreadable session: {error}");
            }
            let candidates: Vec<SessionMetadata> =
                listing.sessions.into_iter().filter(|session| session.status == SessionStatus::Completed).collect();
            let strategy = strategy.unwrap_or_default();
            let Some(chosen) = choose(&candidates, strategy, |n| rand::random_range(0..n)) else {
                let kind = filter_type.map_or(String::new(), |kind| format!(" {kind}"));
                let filter = filter_type.map_or(String::new(), |kind| format!(" (--filter-type {kind})"));
                bail!(
                    "no completed{kind} sessions in {location}{filter} to replay: \
                     create one with otlp-tape seed, capture or import, or name one with --session"
                );
            };
            let picked = Picked { strategy, filter_type, candidates: candidates.len() };
            return Ok((chosen.clone(), Some(picked)));
        }
    };
    if strategy.is_some() {
        bail!("--strategy picks among sessions, so it goes with --session auto, not --session {id}");
    }
    let metadata = match store.read_metadata(id).await {
        Ok(metadata) => metadata,
        Err(Error::NotFound(_)) => bail!("session {id} not found in {location}"),
        Err(error) => return Err(anyhow!(error).context(format!("cannot read session {id} in {location}"))),
    };
    if let Some(kind) = filter_type
        && metadata.session_type != kind
    {
        bail!("session {id} is a {} session, not {kind} (--filter-type {kind})", metadata.session_type);
    }
    if metadata.status == SessionStatus::Active {
        bail!(
            "session {id} is still active: a capture is writing it, or one stopped without finishing it \
             (otlp-tape sessions repair {id} finishes it)"
        );
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
    fn session_choices_parse() {
        assert_eq!(parse_session_choice("auto"), Ok(SessionChoice::Auto));
        assert_eq!(parse_session_choice(" AUTO "), Ok(SessionChoice::Auto));
        assert_eq!(parse_session_choice("seed-1"), Ok(SessionChoice::Id("seed-1".parse().unwrap())));
        assert!(parse_session_choice("no/slashes").unwrap_err().ends_with("; or auto to pick one"));
    }

    #[test]
    fn picks_describe_themselves() {
        let picked = Picked { strategy: Strategy::Largest, filter_type: Some(SessionType::Seed), candidates: 3 };
        assert_eq!(picked.describe(), "largest of 3 completed seed sessions");
        let picked = Picked { strategy: Strategy::Latest, filter_type: None, candidates: 1 };
        assert_eq!(picked.describe(), "latest of 1 completed session");
    }
}
