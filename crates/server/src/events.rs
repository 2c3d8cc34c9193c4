//! `GET /api/v1/events`: the live event stream (server-sent events). At
//! once, every second, and when a job starts or ends, one `jobs` event whose
//! data is every job as its own list endpoint shows it:
//! `{"time": ..., "captures": [...], "replays": [...], "seeds": [...],
//! "exports": [...], "compares": [...]}`. A comment line keeps the
//! connection alive through proxies; the stream ends when serve shuts down,
//! so that its graceful shutdown does not wait on open streams.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State as Extract;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::time::{Interval, MissedTickBehavior};

use crate::api::list_jobs;
use crate::captures::capture_list;
use crate::state::State;

/// How often the jobs are sent when nothing starts or ends.
const EVERY: Duration = Duration::from_secs(1);

/// How often a keep-alive comment is sent when no event is (never, while
/// the jobs go every second; a safeguard should that change).
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// `GET /api/v1/events`.
pub(crate) async fn events(Extract(state): Extract<Arc<State>>) -> Response {
    let changes = state.ended.subscribe();
    Sse::new(jobs_events(state, changes)).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)).into_response()
}

/// Where a stream of events is.
struct Cursor {
    state: Arc<State>,
    /// Bumped when a job starts or ends.
    changes: watch::Receiver<u64>,
    ticks: Interval,
    first: bool,
}

/// The `jobs` events: the first at once, then at each tick or change, until
/// serve shuts down.
fn jobs_events(state: Arc<State>, changes: watch::Receiver<u64>) -> impl Stream<Item = Result<Event, Infallible>> {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + EVERY, EVERY);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let cursor = Cursor { state, changes, ticks, first: true };
    futures::stream::unfold(cursor, |mut cursor| async move {
        if cursor.first {
            cursor.first = false;
        } else {
            let shutting_down = cursor.state.shutting_down.clone();
            tokio::select! {
                biased;
                () = shutting_down.cancelled() => return None,
                seen = cursor.changes.changed() => {
                    seen.ok()?;
                    // The next periodic event a whole second after this one.
                    cursor.ticks.reset();
                }
                _ = cursor.ticks.tick() => {}
            }
        }
        if cursor.state.shutting_down.is_cancelled() {
            return None;
        }
        cursor.changes.mark_unchanged();
        let event = Event::default().event("jobs").data(jobs(&cursor.state).to_string());
        Some((Ok(event), cursor))
    })
}

/// Every job, as the list endpoints show them.
fn jobs(state: &State) -> Value {
    json!({
        "time": tape_capture::now(),
        "captures": capture_list(state),
        "replays": list_jobs(&state.replays),
        "seeds": list_jobs(&state.seeds),
        "exports": list_jobs(&state.exports),
        "compares": list_jobs(&state.compares),
    })
}
