//! A replay's live counts, shared with whoever shows or records them.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use tape_otlp::Signal;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::series::{ReplaySeries, SeriesRecorder};

/// Where a replay is: records of pass `pass` before `record` (counted in
/// the order the session is read, over the selected signals) are done,
/// except those listed in `pending`. Resuming from a position sends the
/// pending records and those from `record` on, nothing else.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Position {
    /// The pass, from 0.
    pub pass: u64,
    /// One past the last record of the pass that is done (sent, failed or
    /// not selected): every record from here on is not done.
    pub record: u64,
    /// Records before `record` that are not done: requests that were in
    /// flight (at most the concurrency) or whose failure stopped the
    /// replay. In ascending order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<u64>,
}

impl Position {
    /// The start of `pass`: nothing of it is done.
    pub fn start_of(pass: u64) -> Self {
        Position { pass, record: 0, pending: Vec::new() }
    }

    /// Whether record `index` of this position's pass is done.
    pub fn is_done(&self, index: u64) -> bool {
        index < self.record && self.pending.binary_search(&index).is_err()
    }
}

/// Counts of one signal.
#[derive(Debug, Default)]
struct SignalCounters {
    sent_records: AtomicU64,
    sent_items: AtomicU64,
    rejected_items: AtomicU64,
    failed_records: AtomicU64,
    failed_items: AtomicU64,
    invalid_records: AtomicU64,
    retries: AtomicU64,
}

/// Counts of one signal at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignalProgress {
    /// Requests the target accepted (wholly or in part).
    pub sent_records: u64,
    /// Items in those requests, the rejected ones included.
    pub sent_items: u64,
    /// Items the target rejected in a `partial_success`.
    pub rejected_items: u64,
    /// Requests that failed: a permanent error, or retries exhausted.
    pub failed_records: u64,
    /// Items in those requests.
    pub failed_items: u64,
    /// Records whose payload is not a valid request and were not sent.
    pub invalid_records: u64,
    /// Attempts after the first: requests sent again after a retryable
    /// failure.
    #[serde(default)]
    pub retries: u64,
}

/// Adds counts, such as those of another signal or another replay.
impl std::ops::AddAssign<&SignalProgress> for SignalProgress {
    fn add_assign(&mut self, other: &SignalProgress) {
        self.sent_records += other.sent_records;
        self.sent_items += other.sent_items;
        self.rejected_items += other.rejected_items;
        self.failed_records += other.failed_records;
        self.failed_items += other.failed_items;
        self.invalid_records += other.invalid_records;
        self.retries += other.retries;
    }
}

impl SignalProgress {
    /// Items delivered: sent and not rejected.
    pub fn delivered_items(&self) -> u64 {
        self.sent_items.saturating_sub(self.rejected_items)
    }
}

/// The live state of a replay. The engine updates it; a progress bar,
/// status line, checkpoint writer or API reads it.
#[derive(Debug)]
pub struct Progress {
    signals: [SignalCounters; 3],
    records_read: AtomicU64,
    items_read: AtomicU64,
    pass: AtomicU64,
    total_records: AtomicU64,
    total_items: AtomicU64,
    corrupt_blobs: AtomicU64,
    lag_nanos: AtomicI64,
    last_error: Mutex<Option<String>>,
    done: watch::Sender<Position>,
    series: SeriesRecorder,
}

impl Default for Progress {
    fn default() -> Self {
        Progress {
            signals: Default::default(),
            records_read: AtomicU64::new(0),
            items_read: AtomicU64::new(0),
            pass: AtomicU64::new(0),
            total_records: AtomicU64::new(0),
            total_items: AtomicU64::new(0),
            corrupt_blobs: AtomicU64::new(0),
            lag_nanos: AtomicI64::new(0),
            last_error: Mutex::new(None),
            done: watch::channel(Position::default()).0,
            series: SeriesRecorder::default(),
        }
    }
}

/// A [`Progress`] at a moment.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProgressSnapshot {
    /// The current pass, from 0.
    pub pass: u64,
    /// Records read in this pass, selected or not.
    pub records_read: u64,
    /// Records of the selected signals in one pass, per the metadata.
    pub total_records: u64,
    /// Items read in this pass, selected or not.
    pub items_read: u64,
    /// Items of the selected signals in one pass, per the metadata.
    pub total_items: u64,
    /// Counts per signal over every pass: traces, metrics, logs.
    pub traces: SignalProgress,
    /// Metric counts.
    pub metrics: SignalProgress,
    /// Log counts.
    pub logs: SignalProgress,
    /// Blobs skipped because they are corrupt (`skip_corrupt`).
    pub corrupt_blobs: u64,
    /// How far the last record sent was behind its schedule, in
    /// milliseconds (0 at full speed or on time).
    pub lag_millis: i64,
    /// The last error, if any.
    pub last_error: Option<String>,
    /// Everything before this position is done.
    pub done: Position,
}

impl ProgressSnapshot {
    /// The counts of `signal`.
    pub fn signal(&self, signal: Signal) -> &SignalProgress {
        signal.pick(&self.traces, &self.metrics, &self.logs)
    }

    /// Counts summed over the signals.
    pub fn total(&self) -> SignalProgress {
        let mut sum = SignalProgress::default();
        for counts in [&self.traces, &self.metrics, &self.logs] {
            sum += counts;
        }
        sum
    }
}

impl Progress {
    /// A progress with nothing done.
    pub fn new() -> Self {
        Progress::default()
    }

    /// The counts now.
    pub fn snapshot(&self) -> ProgressSnapshot {
        let signal = |signal: Signal| {
            let counters = &self.signals[signal.index()];
            SignalProgress {
                sent_records: counters.sent_records.load(Ordering::Relaxed),
                sent_items: counters.sent_items.load(Ordering::Relaxed),
                rejected_items: counters.rejected_items.load(Ordering::Relaxed),
                failed_records: counters.failed_records.load(Ordering::Relaxed),
                failed_items: counters.failed_items.load(Ordering::Relaxed),
                invalid_records: counters.invalid_records.load(Ordering::Relaxed),
                retries: counters.retries.load(Ordering::Relaxed),
            }
        };
        ProgressSnapshot {
            pass: self.pass.load(Ordering::Relaxed),
            records_read: self.records_read.load(Ordering::Relaxed),
            total_records: self.total_records.load(Ordering::Relaxed),
            items_read: self.items_read.load(Ordering::Relaxed),
            total_items: self.total_items.load(Ordering::Relaxed),
            traces: signal(Signal::Traces),
            metrics: signal(Signal::Metrics),
            logs: signal(Signal::Logs),
            corrupt_blobs: self.corrupt_blobs.load(Ordering::Relaxed),
            lag_millis: self.lag_nanos.load(Ordering::Relaxed) / 1_000_000,
            last_error: self.last_error.lock().map(|error| error.clone()).unwrap_or_default(),
            done: self.done.borrow().clone(),
        }
    }

    /// What was sent, failed and retried per second, and the lag of every
    /// request sent, since [`Progress::start_series`] (the counts before a
    /// [`Progress::restore`] are not in it).
    pub fn series(&self) -> ReplaySeries {
        self.series.series()
    }

    /// The series' seconds count from `at`; without a call, from the first
    /// request sent or finished. A later call changes nothing.
    pub fn start_series(&self, at: Instant) {
        self.series.start(at);
    }

    /// A receiver that sees every advance of the done position, for
    /// writing checkpoints.
    pub fn watch_done(&self) -> watch::Receiver<Position> {
        self.done.subscribe()
    }

    /// Starts counting from a checkpoint's counts.
    pub fn restore(&self, counts: &ProgressSnapshot) {
        for signal in Signal::ALL {
            let from = counts.signal(signal);
            let to = &self.signals[signal.index()];
            to.sent_records.store(from.sent_records, Ordering::Relaxed);
            to.sent_items.store(from.sent_items, Ordering::Relaxed);
            to.rejected_items.store(from.rejected_items, Ordering::Relaxed);
            to.failed_records.store(from.failed_records, Ordering::Relaxed);
            to.failed_items.store(from.failed_items, Ordering::Relaxed);
            to.invalid_records.store(from.invalid_records, Ordering::Relaxed);
            to.retries.store(from.retries, Ordering::Relaxed);
        }
        self.corrupt_blobs.store(counts.corrupt_blobs, Ordering::Relaxed);
    }

    pub(super) fn set_totals(&self, records: u64, items: u64) {
        self.total_records.store(records, Ordering::Relaxed);
        self.total_items.store(items, Ordering::Relaxed);
    }

    pub(super) fn start_pass(&self, pass: u64) {
        self.pass.store(pass, Ordering::Relaxed);
        self.records_read.store(0, Ordering::Relaxed);
        self.items_read.store(0, Ordering::Relaxed);
    }

    pub(super) fn read(&self, items: u64) {
        self.records_read.fetch_add(1, Ordering::Relaxed);
        self.items_read.fetch_add(items, Ordering::Relaxed);
    }

    pub(super) fn sent(&self, signal: Signal, items: u64, rejected: u64) {
        let counters = &self.signals[signal.index()];
        counters.sent_records.fetch_add(1, Ordering::Relaxed);
        counters.sent_items.fetch_add(items, Ordering::Relaxed);
        counters.rejected_items.fetch_add(rejected, Ordering::Relaxed);
    }

    /// A request is sent `lag` behind its schedule (zero at full speed).
    pub(super) fn dispatched(&self, lag: std::time::Duration) {
        self.lag_nanos.store(i64::try_from(lag.as_nanos()).unwrap_or(i64::MAX), Ordering::Relaxed);
        self.series.dispatched(lag);
    }

    /// A request ended: `sent` items accepted, `failed` requests, after
    /// `retries` retries, in the series.
    pub(super) fn ended(&self, signal: Signal, sent: u64, failed: u64, retries: u64) {
        self.series.finished(signal, sent, failed, retries);
    }

    pub(super) fn retried(&self, signal: Signal, retries: u64) {
        if retries > 0 {
            self.signals[signal.index()].retries.fetch_add(retries, Ordering::Relaxed);
        }
    }

    pub(super) fn failed(&self, signal: Signal, items: u64, error: String) {
        let counters = &self.signals[signal.index()];
        counters.failed_records.fetch_add(1, Ordering::Relaxed);
        counters.failed_items.fetch_add(items, Ordering::Relaxed);
        self.set_error(error);
    }

    /// Counts `records` requests of `signal`, holding `items` items, that
    /// failed without being sent (a full queue, a drain that ran out);
    /// `error` says why and becomes the last error.
    pub fn failed_unsent(&self, signal: Signal, records: u64, items: u64, error: String) {
        let counters = &self.signals[signal.index()];
        counters.failed_records.fetch_add(records, Ordering::Relaxed);
        counters.failed_items.fetch_add(items, Ordering::Relaxed);
        self.series.finished(signal, 0, records, 0);
        self.set_error(error);
    }

    pub(super) fn invalid(&self, signal: Signal, error: String) {
        self.signals[signal.index()].invalid_records.fetch_add(1, Ordering::Relaxed);
        self.set_error(error);
    }

    pub(super) fn corrupt(&self, error: String) {
        self.corrupt_blobs.fetch_add(1, Ordering::Relaxed);
        self.set_error(error);
    }

    pub(super) fn set_error(&self, error: String) {
        if let Ok(mut last) = self.last_error.lock() {
            *last = Some(error);
        }
    }

    pub(super) fn set_done(&self, position: Position) {
        self.done.send_if_modified(|done| {
            let advanced = *done != position;
            *done = position;
            advanced
        });
    }
}
