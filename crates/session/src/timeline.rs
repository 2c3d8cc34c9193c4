//! A session's timeline: items per second of receive time per signal, and
//! error spans per second. It is made once, while the session is written
//! (every record goes through [`TimelineBuilder::add`]), and kept beside
//! `metadata.json` as `timeline.json`, so that showing a session does not
//! read its blobs. A session written before timelines existed, or whose
//! `timeline.json` was lost or belongs to other contents (its content hash
//! differs), gets one built from its blobs on first use ([`timeline`]).
//!
//! Items are the record's item count (what `metadata.json` adds up); error
//! spans are counted on the wire ([`tape_otlp::wire::count_spans`]), so
//! only trace records are walked.
//!
//! ```no_run
//! use tape_otlp::Signal;
//! use tape_session::{SessionId, Timestamp, TimelineBuilder};
//!
//! let mut builder = TimelineBuilder::new();
//! builder.add(Signal::Traces, Timestamp::from_unix_nanos(1_767_225_600_500_000_000), 12, 1);
//! builder.add(Signal::Logs, Timestamp::from_unix_nanos(1_767_225_601_000_000_000), 3, 0);
//! let timeline = builder.build(SessionId::new("demo")?, "0".repeat(64));
//! assert_eq!(timeline.rows.len(), 2);
//! # Ok::<(), tape_session::InvalidSessionId>(())
//! ```

use std::collections::BTreeMap;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt, stream};
use serde::{Deserialize, Serialize};
use tape_otlp::{Signal, wire};
use tracing::{debug, warn};

use crate::{BlobEntry, Error, SessionId, SessionMetadata, SessionStatus, SessionStore, Timestamp, read_blob};

/// Blobs read at once while a timeline is built from them.
const BLOBS_AT_ONCE: usize = 4;

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

impl Timeline {
    /// The timeline as `timeline.json`.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Items and error spans over every row: `(traces, metrics, logs,
    /// errorSpans)` in a [`TimelineRow`] whose `second` is 0.
    pub fn totals(&self) -> TimelineRow {
        self.rows.iter().fold(TimelineRow::default(), |mut total, row| {
            total.traces += row.traces;
            total.metrics += row.metrics;
            total.logs += row.logs;
            total.error_spans += row.error_spans;
            total
        })
    }
}

/// Counts records into a [`Timeline`] as they are written or read, in any
/// order of receive time.
#[derive(Debug, Clone, Default)]
pub struct TimelineBuilder {
    seconds: BTreeMap<i64, TimelineRow>,
    /// The second counted last, kept out of the map: records mostly come
    /// in receive-time order, so most of them touch only this row.
    current: Option<TimelineRow>,
}

impl TimelineBuilder {
    /// A builder with nothing counted.
    pub fn new() -> Self {
        TimelineBuilder::default()
    }

    /// Counts one record of `signal` received at `receive_time` holding
    /// `items` items, `error_spans` of them spans with an error status.
    pub fn add(&mut self, signal: Signal, receive_time: Timestamp, items: u64, error_spans: u64) {
        let second = i64::try_from(receive_time.unix_nanos() / 1_000_000_000).unwrap_or(i64::MAX);
        let row = self.row(second);
        match signal {
            Signal::Traces => row.traces += items,
            Signal::Metrics => row.metrics += items,
            Signal::Logs => row.logs += items,
        }
        row.error_spans += error_spans;
    }

    /// Counts one record from its payload: items and error spans are read
    /// on the wire. A payload that is not a valid request counts nothing.
    pub fn add_payload(&mut self, signal: Signal, receive_time: Timestamp, payload: &[u8]) {
        let counted = match signal {
            Signal::Traces => wire::count_spans(payload).map(|count| (count.spans, count.error_spans)),
            Signal::Metrics | Signal::Logs => wire::count_items(signal, payload).map(|items| (items, 0)),
        };
        if let Ok((items, error_spans)) = counted {
            self.add(signal, receive_time, items, error_spans);
        }
    }

    /// Counts one stored record: `items` as the record says (what
    /// `metadata.json` adds up) and its error spans read on the wire (trace
    /// records only; a payload that is not a valid request has none).
    pub fn add_record(&mut self, signal: Signal, receive_time: Timestamp, items: u64, payload: &[u8]) {
        let error_spans = match signal {
            Signal::Traces => wire::count_spans(payload).map_or(0, |count| count.error_spans),
            Signal::Metrics | Signal::Logs => 0,
        };
        self.add(signal, receive_time, items, error_spans);
    }

    /// Adds what `other` counted.
    pub fn merge(&mut self, other: TimelineBuilder) {
        for other_row in other.seconds.into_values().chain(other.current) {
            let row = self.row(other_row.second);
            row.traces += other_row.traces;
            row.metrics += other_row.metrics;
            row.logs += other_row.logs;
            row.error_spans += other_row.error_spans;
        }
    }

    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.seconds.is_empty() && self.current.is_none()
    }

    /// The timeline of `session_id` with `content_hash`.
    pub fn build(&self, session_id: SessionId, content_hash: String) -> Timeline {
        let mut seconds = self.seconds.clone();
        if let Some(current) = self.current {
            seconds.insert(current.second, current);
        }
        let rows = seconds
            .into_values()
            .filter(|row| row.traces > 0 || row.metrics > 0 || row.logs > 0 || row.error_spans > 0)
            .collect();
        Timeline { version: TIMELINE_VERSION, session_id, content_hash, bucket_seconds: 1, rows }
    }

    /// The row of `second`, made current.
    fn row(&mut self, second: i64) -> &mut TimelineRow {
        if self.current.is_some_and(|row| row.second != second)
            && let Some(previous) = self.current.take()
        {
            self.seconds.insert(previous.second, previous);
        }
        self.current.get_or_insert_with(|| {
            self.seconds.remove(&second).unwrap_or(TimelineRow { second, ..TimelineRow::default() })
        })
    }
}

/// The timeline of a session: its `timeline.json` when that is current,
/// otherwise one built from its blobs, which is then kept (a failure to keep
/// it is logged; the timeline is still returned).
///
/// `timeline.json` is current when it parses, is of [`TIMELINE_VERSION`],
/// names the session and carries the content hash of its `metadata.json`.
/// A session still being recorded (status `active`) gets one built from the
/// blobs its metadata lists so far, and it is not kept.
///
/// A blob that is missing or corrupt does not fail the timeline: what is
/// readable of it is counted, a warning names the blob, and the timeline is
/// kept all the same (its content hash changes once `sessions repair`
/// mends the blob, and it is built again then).
///
/// # Errors
/// The session is missing, or its metadata cannot be read, or the store
/// fails while its blobs are read.
pub async fn timeline(store: &dyn SessionStore, id: &SessionId) -> Result<Timeline, Error> {
    let metadata = store.read_metadata(id).await?;
    timeline_of(store, &metadata).await
}

/// [`timeline`] of a session whose metadata the caller has read already.
///
/// # Errors
/// As [`timeline`], but for reading the metadata.
pub async fn timeline_of(store: &dyn SessionStore, metadata: &SessionMetadata) -> Result<Timeline, Error> {
    let id = &metadata.session_id;
    let active = metadata.status == SessionStatus::Active;
    if !active {
        match store.read_timeline(id).await {
            Ok(Some(bytes)) => match current(metadata, &bytes) {
                Ok(timeline) => return Ok(timeline),
                Err(why) => debug!(session = %id, why, "Timeline to build again."),
            },
            Ok(None) => debug!(session = %id, "No timeline kept; building it from the blobs."),
            Err(error) => {
                warn!(
                    session = %id,
                    error = %crate::error_chain(&error),
                    "Cannot read the kept timeline; building it from the blobs."
                );
            }
        }
    }
    let timeline = build_from_blobs(store, metadata).await?;
    if !active && let Err(error) = store.write_timeline(id, Bytes::from(timeline.to_json())).await {
        warn!(
            session = %id,
            error = %crate::error_chain(&error),
            "Cannot keep the timeline; it is built again when next asked for."
        );
    }
    Ok(timeline)
}

/// The kept timeline when it is current for `metadata`, or why not.
fn current(metadata: &SessionMetadata, bytes: &[u8]) -> Result<Timeline, &'static str> {
    let timeline: Timeline = serde_json::from_slice(bytes).map_err(|_| "timeline.json is not a timeline")?;
    if timeline.version != TIMELINE_VERSION {
        Err("timeline.json is of another version")
    } else if timeline.session_id != metadata.session_id {
        Err("timeline.json names another session")
    } else if timeline.content_hash != metadata.content_hash {
        Err("timeline.json is stale (another content hash)")
    } else {
        Ok(timeline)
    }
}

/// Counts every record of the blobs `metadata` lists.
async fn build_from_blobs(store: &dyn SessionStore, metadata: &SessionMetadata) -> Result<Timeline, Error> {
    let id = &metadata.session_id;
    // The futures made first, not by a closure inside the stream: a
    // stream mapping borrowed blobs through a closure is a future the
    // compiler cannot prove `Send` for every lifetime (so the server's
    // handler could not await it).
    let counts: Vec<_> = metadata.blobs.iter().map(|blob| count_blob(store, id, blob)).collect();
    let builders: Vec<TimelineBuilder> = stream::iter(counts).buffer_unordered(BLOBS_AT_ONCE).try_collect().await?;
    let mut builder = TimelineBuilder::new();
    for blob in builders {
        builder.merge(blob);
    }
    Ok(builder.build(id.clone(), metadata.content_hash.clone()))
}

/// Counts the records of one blob; a missing or corrupt blob counts what
/// is readable of it, with a warning.
async fn count_blob(store: &dyn SessionStore, id: &SessionId, blob: &BlobEntry) -> Result<TimelineBuilder, Error> {
    let mut builder = TimelineBuilder::new();
    let records = match read_blob(store, id, &blob.key).await {
        Ok(records) => records,
        Err(error @ Error::BlobNotFound { .. }) => {
            warn!(
                session = %id,
                blob = %blob.key,
                error = %crate::error_chain(&error),
                "A blob is missing; the timeline leaves it out."
            );
            return Ok(builder);
        }
        Err(error) => return Err(error),
    };
    let mut records = std::pin::pin!(records);
    while let Some(record) = records.next().await {
        match record {
            Ok(record) => builder.add_record(
                blob.signal,
                Timestamp::from_unix_nanos(record.receive_time_unix_nano),
                record.item_count,
                &record.payload,
            ),
            Err(error @ Error::CorruptBlob { .. }) => {
                warn!(
                    session = %id,
                    blob = %blob.key,
                    error = %crate::error_chain(&error),
                    "A blob is corrupt; the timeline counts the records before the damage."
                );
                break;
            }
            Err(error) => return Err(error),
        }
    }
    Ok(builder)
}

#[cfg(test)]
mod tests {
    use tape_otlp::{ExportRequest, sample};

    use super::*;

    const SECOND: u64 = 1_000_000_000;
    const START: u64 = 1_767_225_600 * SECOND;

    fn at(nanos: u64) -> Timestamp {
        Timestamp::from_unix_nanos(START + nanos)
    }

    fn build(builder: &TimelineBuilder) -> Timeline {
        builder.build(SessionId::new("timeline-test").unwrap(), "0".repeat(64))
    }

    fn row(offset: i64, traces: u64, metrics: u64, logs: u64, error_spans: u64) -> TimelineRow {
        TimelineRow { second: 1_767_225_600 + offset, traces, metrics, logs, error_spans }
    }

    #[test]
    fn rows_are_seconds_of_receive_time_ascending_whatever_the_order_of_records() {
        let mut builder = TimelineBuilder::new();
        builder.add(Signal::Logs, at(3 * SECOND + 5), 4, 0);
        builder.add(Signal::Traces, at(0), 10, 2);
        builder.add(Signal::Traces, at(SECOND - 1), 5, 1);
        builder.add(Signal::Metrics, at(3 * SECOND), 7, 0);
        builder.add(Signal::Traces, at(SECOND), 1, 0);
        builder.add(Signal::Logs, at(3 * SECOND + SECOND - 1), 1, 0);
        // A record without items adds no row.
        builder.add(Signal::Metrics, at(9 * SECOND), 0, 0);
        let timeline = build(&builder);
        assert_eq!(timeline.rows, vec![row(0, 15, 0, 0, 3), row(1, 1, 0, 0, 0), row(3, 0, 7, 5, 0)]);
        assert_eq!(timeline.totals(), TimelineRow { second: 0, traces: 16, metrics: 7, logs: 5, error_spans: 3 });
        assert_eq!((timeline.version, timeline.bucket_seconds), (TIMELINE_VERSION, 1));
    }

    #[test]
    fn payloads_are_counted_on_the_wire_with_their_error_spans() {
        let mut builder = TimelineBuilder::new();
        let traces = ExportRequest::Traces(sample::traces("checkout", 30, 0)).encode_protobuf();
        let metrics = ExportRequest::Metrics(sample::metrics("checkout", 0));
        let logs = ExportRequest::Logs(sample::logs("checkout", 6, 0)).encode_protobuf();
        builder.add_payload(Signal::Traces, at(0), &traces);
        builder.add_payload(Signal::Metrics, at(0), &metrics.encode_protobuf());
        builder.add_payload(Signal::Logs, at(SECOND), &logs);
        // The record's own count for items, the wire for error spans.
        builder.add_record(Signal::Traces, at(SECOND), 30, &traces);
        let timeline = build(&builder);
        assert_eq!(timeline.rows, vec![row(0, 30, metrics.item_count(), 0, 3), row(1, 30, 0, 6, 3)]);
    }

    #[test]
    fn payloads_that_are_not_requests_count_nothing() {
        let mut builder = TimelineBuilder::new();
        let traces = ExportRequest::Traces(sample::traces("checkout", 30, 0)).encode_protobuf();
        for signal in Signal::ALL {
            builder.add_payload(signal, at(0), &traces[..traces.len() / 2]);
            builder.add_payload(signal, at(0), &[0x0a, 0xff, 0xff, 0x01]);
            builder.add_payload(signal, at(0), b"{\"resourceSpans\":[]}");
        }
        builder.add_record(Signal::Traces, at(0), 4, &[0x0b]);
        assert_eq!(build(&builder).rows, vec![row(0, 4, 0, 0, 0)]);
    }

    #[test]
    fn merged_builders_add_up() {
        let mut first = TimelineBuilder::new();
        let mut second = TimelineBuilder::new();
        first.add(Signal::Traces, at(0), 2, 1);
        first.add(Signal::Traces, at(2 * SECOND), 2, 0);
        second.add(Signal::Logs, at(2 * SECOND), 3, 0);
        second.add(Signal::Logs, at(0), 3, 0);
        assert!(!first.is_empty());
        first.merge(second);
        first.merge(TimelineBuilder::new());
        assert_eq!(build(&first).rows, vec![row(0, 2, 0, 3, 1), row(2, 2, 0, 3, 0)]);
    }

    #[test]
    fn timeline_json_rows_are_arrays() {
        let mut builder = TimelineBuilder::new();
        builder.add(Signal::Traces, at(0), 2, 1);
        let timeline = build(&builder);
        let json: serde_json::Value = serde_json::from_slice(&timeline.to_json()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "version": 1,
                "sessionId": "timeline-test",
                "contentHash": "0".repeat(64),
                "bucketSeconds": 1,
                "rows": [[1_767_225_600, 2, 0, 0, 1]],
            })
        );
        assert_eq!(serde_json::from_value::<Timeline>(json).unwrap(), timeline);
    }
}
