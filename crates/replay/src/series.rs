//! What a replay did over time, for the charts of its report: items sent
//! per second per signal, failures and retries per second, the lag behind
//! schedule per second and its distribution over every request sent.

use serde::{Deserialize, Serialize};

/// One second of a replay (seconds since it started): `[second, traces,
/// metrics, logs, failedRecords, retries, lagMillis]` in JSON. Items are
/// those sent (accepted by the target, wholly or in part) in that second;
/// `lagMillis` is the largest lag behind schedule of a request sent in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(from = "(u64, u64, u64, u64, u64, u64, u64)", into = "(u64, u64, u64, u64, u64, u64, u64)")]
pub struct SeriesRow {
    /// Seconds since the replay started.
    pub second: u64,
    /// Spans sent in this second.
    pub traces: u64,
    /// Data points sent in this second.
    pub metrics: u64,
    /// Log records sent in this second.
    pub logs: u64,
    /// Requests that failed in this second.
    pub failed_records: u64,
    /// Attempts after the first made in this second.
    pub retries: u64,
    /// The largest lag behind schedule of a request sent in this second,
    /// in milliseconds.
    pub lag_millis: u64,
}

impl From<(u64, u64, u64, u64, u64, u64, u64)> for SeriesRow {
    fn from(
        (second, traces, metrics, logs, failed_records, retries, lag_millis): (u64, u64, u64, u64, u64, u64, u64),
    ) -> Self {
        SeriesRow { second, traces, metrics, logs, failed_records, retries, lag_millis }
    }
}

impl From<SeriesRow> for (u64, u64, u64, u64, u64, u64, u64) {
    fn from(row: SeriesRow) -> Self {
        (row.second, row.traces, row.metrics, row.logs, row.failed_records, row.retries, row.lag_millis)
    }
}

/// How far behind schedule requests were sent: a histogram over every
/// request sent.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LagDistribution {
    /// Upper bounds of the buckets, in milliseconds, ascending; the last
    /// bucket (one more than the bounds) holds everything above.
    pub bounds_millis: Vec<u64>,
    /// Requests per bucket: `boundsMillis.len() + 1` counts.
    pub counts: Vec<u64>,
    /// The median lag, in milliseconds (the bucket bound it falls under).
    pub p50_millis: u64,
    /// The 99th percentile, in milliseconds (the bucket bound).
    pub p99_millis: u64,
    /// The largest lag, in milliseconds.
    pub max_millis: u64,
}

/// A replay over time.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplaySeries {
    /// Always 1: rows are seconds.
    pub bucket_seconds: u32,
    /// The seconds with anything in them, ascending.
    pub rows: Vec<SeriesRow>,
    /// The lag of every request sent.
    pub lag: LagDistribution,
}
