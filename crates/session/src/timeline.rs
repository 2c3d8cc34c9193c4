//! A session's timeline: items per second of receive time per signal, and
//! error spans per second. It is made once, while the session is written
//! (every record goes through [`TimelineBuilder::add`]), and kept beside
//! `metadata.json` as `timeline.json`, so that showing a session does not
//! read its blobs. A session written before timelines existed, or whose
//! `timeline.json` was lost or belongs to other contents (its content hash
//! differs), gets one built from its blobs on first use ([`timeline`]).

use serde::{Deserialize, Serialize};
use tape_otlp::Signal;

use crate::{Error, SessionId, SessionStore, Timestamp};

/// The version of `timeline.json` written now.
pub const TIMELINE_VERSION: u32 = 1;

/// One second with anything in it: `[second, traces, metrics, logs,
/// errorSpans]` in JSON, the second in Unix seconds of receive time and
/// the counts in items (spans, data points, log records).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(from = "(i64, u64, u64, u64, u64)", into = "(i64, u64, u64, u64, u64)")]
pub struct TimelineRow {
    /// Unix seconds of receive time.
    pub second: i64,
    /// Spans received in this second.
    pub traces: u64,
    /// Data points received in this second.
    pub metrics: u64,
    /// Log records received in this second.
    pub logs: u64,
    /// Spans among them whose status is `STATUS_CODE_ERROR`.
    pub error_spans: u64,
}

impl From<(i64, u64, u64, u64, u64)> for TimelineRow {
    fn from((second, traces, metrics, logs, error_spans): (i64, u64, u64, u64, u64)) -> Self {
        TimelineRow { second, traces, metrics, logs, error_spans }
    }
}

impl From<TimelineRow> for (i64, u64, u64, u64, u64) {
    fn from(row: TimelineRow) -> Self {
        (row.second, row.traces, row.metrics, row.logs, row.error_spans)
    }
}

/// `timeline.json`: the seconds of a session that hold anything, ascending.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Timeline {
    /// [`TIMELINE_VERSION`].
    pub version: u32,
    /// The session.
    pub session_id: SessionId,
    /// The content hash of the metadata it was made with: a timeline whose
    /// hash differs from the session's is stale and is built again.
    pub content_hash: String,
    /// Always 1: rows are seconds.
    pub bucket_seconds: u32,
    /// The seconds with anything in them, ascending; seconds not listed
    /// hold nothing.
    pub rows: Vec<TimelineRow>,
}

/// Counts records into a [`Timeline`] as they are written or read, in any
/// order of receive time.
#[derive(Debug, Clone, Default)]
pub struct TimelineBuilder {
    seconds: std::collections::BTreeMap<i64, TimelineRow>,
}

impl TimelineBuilder {
    /// A builder with nothing counted.
    pub fn new() -> Self {
        TimelineBuilder::default()
    }

    /// Counts one record of `signal` received at `receive_time` holding
    /// `items` items, `error_spans` of them spans with an error status.
    pub fn add(&mut self, signal: Signal, receive_time: Timestamp, items: u64, error_spans: u64) {
        let _ = (signal, receive_time, items, error_spans);
        todo!("timeline: count a record")
    }

    /// Counts one record from its payload: items and error spans are read
    /// on the wire. A payload that is not a valid request counts nothing.
    pub fn add_payload(&mut self, signal: Signal, receive_time: Timestamp, payload: &[u8]) {
        let _ = (signal, receive_time, payload);
        todo!("timeline: count a payload")
    }

    /// The timeline of `session_id` with `content_hash`.
    pub fn build(&self, session_id: SessionId, content_hash: String) -> Timeline {
        let _ = (&self.seconds, session_id, content_hash);
        todo!("timeline: build")
    }
}

/// The timeline of a session: its `timeline.json` when that is current,
/// otherwise one built from its blobs, which is then kept (a failure to keep
/// it is logged; the timeline is still returned).
///
/// # Errors
/// The session is missing, or its metadata or blobs cannot be read.
pub async fn timeline(store: &dyn SessionStore, id: &SessionId) -> Result<Timeline, Error> {
    let _ = (store, id);
    todo!("timeline: read or build")
}
