//! What a replay did over time, for the charts of its report: items sent
//! per second per signal, failures and retries per second, the lag behind
//! schedule per second and its distribution over every request sent.

use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tape_otlp::Signal;
use tokio::time::Instant;

/// One second of a replay (seconds since it started): `[second, traces,
/// metrics, logs, failedRecords, retries, lagMillis]` in JSON. Items are
/// those of requests the target accepted (wholly or in part) in that
/// second; failures and retries are those of requests that ended in it;
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
    /// Requests that failed in this second (a permanent error, retries
    /// exhausted, or not sent at all).
    pub failed_records: u64,
    /// Attempts after the first, of the requests that ended in this second.
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

/// A replay over time. With `--resume` it covers the resumed run only,
/// counted from when it started.
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

/// The upper bounds of the lag histogram's buckets, in milliseconds.
pub const LAG_BOUNDS_MILLIS: [u64; 16] =
    [0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 30_000, 60_000];

/// Counts a replay's series as it runs: one lock per request sent and per
/// request finished, the rows kept in order (time only goes forward).
#[derive(Debug, Default)]
pub(crate) struct SeriesRecorder {
    state: Mutex<SeriesState>,
}

#[derive(Debug, Default)]
struct SeriesState {
    start: Option<Instant>,
    rows: Vec<SeriesRow>,
    lag_counts: [u64; LAG_BOUNDS_MILLIS.len() + 1],
    lag_max_nanos: u64,
}

impl SeriesState {
    /// The row of the second now is in, added when it is new.
    fn row_now(&mut self) -> &mut SeriesRow {
        let now = Instant::now();
        let start = *self.start.get_or_insert(now);
        let second = now.saturating_duration_since(start).as_secs();
        let index = match self.rows.last() {
            Some(last) if last.second == second => self.rows.len() - 1,
            Some(last) if last.second > second => {
                // Not expected (the clock is read under the lock), but a row
                // out of order must not be lost.
                match self.rows.binary_search_by_key(&second, |row| row.second) {
                    Ok(index) => index,
                    Err(index) => {
                        self.rows.insert(index, SeriesRow { second, ..SeriesRow::default() });
                        index
                    }
                }
            }
            _ => {
                self.rows.push(SeriesRow { second, ..SeriesRow::default() });
                self.rows.len() - 1
            }
        };
        &mut self.rows[index]
    }
}

impl SeriesRecorder {
    fn with<T>(&self, update: impl FnOnce(&mut SeriesState) -> T) -> Option<T> {
        self.state.lock().ok().map(|mut state| update(&mut state))
    }

    /// Seconds count from `at` (the first thing counted when it is never
    /// called). A later call changes nothing.
    pub(crate) fn start(&self, at: Instant) {
        self.with(|state| {
            state.start.get_or_insert(at);
        });
    }

    /// A request is sent `lag` behind its schedule.
    pub(crate) fn dispatched(&self, lag: Duration) {
        let millis = u64::try_from(lag.as_millis()).unwrap_or(u64::MAX);
        let nanos = u64::try_from(lag.as_nanos()).unwrap_or(u64::MAX);
        self.with(|state| {
            let bucket = LAG_BOUNDS_MILLIS.partition_point(|&bound| bound < millis);
            state.lag_counts[bucket] += 1;
            state.lag_max_nanos = state.lag_max_nanos.max(nanos);
            let row = state.row_now();
            row.lag_millis = row.lag_millis.max(millis);
        });
    }

    /// A request of `signal` finished: `sent` items accepted (0 when it
    /// failed), `failed` requests, after `retries` retries.
    pub(crate) fn finished(&self, signal: Signal, sent: u64, failed: u64, retries: u64) {
        self.with(|state| {
            let row = state.row_now();
            *signal.pick(&mut row.traces, &mut row.metrics, &mut row.logs) += sent;
            row.failed_records += failed;
            row.retries += retries;
        });
    }

    /// The series so far.
    pub(crate) fn series(&self) -> ReplaySeries {
        self.with(|state| ReplaySeries {
            bucket_seconds: 1,
            rows: state.rows.clone(),
            lag: LagDistribution::new(&state.lag_counts, state.lag_max_nanos / 1_000_000),
        })
        .unwrap_or_default()
    }
}

impl LagDistribution {
    /// The distribution of these counts per bucket of
    /// [`LAG_BOUNDS_MILLIS`], the largest lag being `max_millis`.
    fn new(counts: &[u64], max_millis: u64) -> Self {
        let total: u64 = counts.iter().sum();
        let percentile = |per_mille: u64| {
            if total == 0 {
                return 0;
            }
            let rank = (total * per_mille).div_ceil(1000).max(1);
            let mut seen = 0;
            for (index, count) in counts.iter().enumerate() {
                seen += count;
                if seen >= rank {
                    return LAG_BOUNDS_MILLIS.get(index).map_or(max_millis, |&bound| bound.min(max_millis));
                }
            }
            max_millis
        };
        LagDistribution {
            bounds_millis: LAG_BOUNDS_MILLIS.to_vec(),
            counts: counts.to_vec(),
            p50_millis: percentile(500),
            p99_millis: percentile(990),
            max_millis,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_bucket_bounds_capped_by_the_max() {
        let mut counts = [0; LAG_BOUNDS_MILLIS.len() + 1];
        counts[0] = 98; // 0 ms
        counts[7] = 1; // <= 100 ms
        counts[16] = 1; // > 60 s
        let lag = LagDistribution::new(&counts, 75_000);
        assert_eq!((lag.p50_millis, lag.p99_millis, lag.max_millis), (0, 100, 75_000));
        let lag = LagDistribution::new(&[0; 17], 0);
        assert_eq!((lag.p50_millis, lag.p99_millis), (0, 0));
        let mut counts = [0; LAG_BOUNDS_MILLIS.len() + 1];
        counts[9] = 4; // <= 500 ms, the largest 130 ms
        assert_eq!(LagDistribution::new(&counts, 130).p99_millis, 130);
    }

    #[tokio::test(start_paused = true)]
    async fn rows_are_the_seconds_with_anything_in_them() {
        let recorder = SeriesRecorder::default();
        recorder.start(Instant::now());
        recorder.dispatched(Duration::from_millis(3));
        recorder.finished(Signal::Traces, 10, 0, 0);
        tokio::time::advance(Duration::from_millis(2_500)).await;
        recorder.dispatched(Duration::from_millis(40));
        recorder.dispatched(Duration::from_millis(7));
        recorder.finished(Signal::Logs, 0, 1, 2);
        recorder.finished(Signal::Metrics, 4, 0, 1);
        let series = recorder.series();
        assert_eq!(
            series.rows,
            [
                SeriesRow { second: 0, traces: 10, lag_millis: 3, ..SeriesRow::default() },
                SeriesRow {
                    second: 2,
                    metrics: 4,
                    failed_records: 1,
                    retries: 3,
                    lag_millis: 40,
                    ..SeriesRow::default()
                },
            ]
        );
        assert_eq!(series.lag.counts.iter().sum::<u64>(), 3);
        assert_eq!(series.lag.counts[3], 1); // 3 ms: <= 5
        assert_eq!(series.lag.counts[4], 1); // 7 ms: <= 10
        assert_eq!(series.lag.counts[6], 1); // 40 ms: <= 50
        assert_eq!((series.lag.p50_millis, series.lag.max_millis), (10, 40));
    }
}
