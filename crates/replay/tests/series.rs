//! The replay's series: what was sent, failed and retried in each second
//! since the replay started, and the lag of every request, on paused time
//! (where the seconds are exact). The sinks answer in process: on paused
//! time a network target's answer would race the clock's jumps.

mod common;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::{local_store, records, replay_to, seed};
use tape_otlp::{Signal, SignalSet};
use tape_replay::{
    ExportError, ExportOutcome, LagDistribution, ReplayOptions, RetryPolicy, SeriesRow, Sink, Speed, TimestampMode,
};

const SECOND: u64 = 1_000_000_000;

fn at_speed_one() -> ReplayOptions {
    ReplayOptions {
        speed: Speed::Factor(1.0),
        timestamps: TimestampMode::None,
        max_failures: None,
        retry: RetryPolicy { max_attempts: 2, ..RetryPolicy::default() },
        ..ReplayOptions::default()
    }
}

/// A sink that answers its `permanent`-th request (from 0) with a
/// permanent error, the first attempt of its `retried`-th with a retryable
/// one asking for a wait of `retry_after`, and accepts the rest at once.
struct FailingSink {
    calls: AtomicUsize,
    permanent: usize,
    retried: usize,
    retry_after: Duration,
}

impl Sink for FailingSink {
    async fn export(&self, _: Signal, _: Bytes) -> Result<ExportOutcome, ExportError> {
        match self.calls.fetch_add(1, Ordering::SeqCst) {
            call if call == self.permanent => Err(ExportError::permanent("refused on purpose")),
            call if call == self.retried => {
                Err(ExportError::retryable("unavailable on purpose", Some(self.retry_after)))
            }
            _ => Ok(ExportOutcome::default()),
        }
    }
}

/// Adds `items` of `signal` to the row of `second`.
fn add(rows: &mut BTreeMap<u64, SeriesRow>, second: u64, update: impl FnOnce(&mut SeriesRow)) {
    update(rows.entry(second).or_insert(SeriesRow { second, ..SeriesRow::default() }));
}

#[tokio::test(start_paused = true)]
async fn each_second_holds_what_was_sent_failed_and_retried_in_it() {
    let (_dir, store) = local_store();
    let metadata = seed(store.as_ref(), "series", "payment-failure", 6, 20.0, SignalSet::ALL).await;
    let expected_records = records(store.as_ref(), &metadata).await;
    assert!(expected_records.len() > 12, "enough requests to fail two of them");
    let (permanent, retried) = (4, 9);
    let retry_after = Duration::from_millis(1_700);
    let sink = FailingSink { calls: AtomicUsize::new(0), permanent, retried, retry_after };

    let outcome = replay_to(&store, &metadata, &sink, &at_speed_one()).await;

    // At speed 1 request i is sent at its receive time's offset from the
    // first, and an in-process sink answers at once: its second is that
    // offset's. The retried request ends `retry_after` later.
    let first = expected_records[0].1.receive_time_unix_nano;
    let mut rows = BTreeMap::new();
    for (index, (signal, record)) in expected_records.iter().enumerate() {
        let offset = record.receive_time_unix_nano - first;
        let second = offset / SECOND;
        // Sent on time: its second has a row, with no lag.
        add(&mut rows, second, |_| {});
        if index == permanent {
            add(&mut rows, second, |row| row.failed_records += 1);
            continue;
        }
        let ended = if index == retried { (offset + retry_after.as_nanos() as u64) / SECOND } else { second };
        add(&mut rows, ended, |row| {
            *signal.pick(&mut row.traces, &mut row.metrics, &mut row.logs) += record.item_count;
            if index == retried {
                row.retries += 1;
            }
        });
    }
    let expected: Vec<SeriesRow> = rows.into_values().collect();
    assert_eq!(outcome.series.rows, expected);
    assert_eq!(outcome.series.bucket_seconds, 1);

    // Every request sent has its lag: none late here.
    let lag = &outcome.series.lag;
    assert_eq!(lag.counts.iter().sum::<u64>(), expected_records.len() as u64);
    assert_eq!(lag.counts[0], expected_records.len() as u64, "every request on time: {lag:?}");
    assert_eq!((lag.p50_millis, lag.p99_millis, lag.max_millis), (0, 0, 0));

    // The rows add up to the counts.
    let total = outcome.progress.total();
    let rows = &outcome.series.rows;
    assert_eq!(rows.iter().map(|row| row.traces + row.metrics + row.logs).sum::<u64>(), total.sent_items);
    assert_eq!(rows.iter().map(|row| row.failed_records).sum::<u64>(), total.failed_records);
    assert_eq!(rows.iter().map(|row| row.retries).sum::<u64>(), total.retries);
    assert_eq!((total.failed_records, total.retries), (1, 1));
}

/// A sink that takes `each` to answer, one request at a time.
struct SlowSink {
    each: Duration,
    sent: Mutex<Vec<tokio::time::Instant>>,
}

impl Sink for SlowSink {
    async fn export(&self, _: Signal, _: Bytes) -> Result<ExportOutcome, ExportError> {
        self.sent.lock().unwrap().push(tokio::time::Instant::now());
        tokio::time::sleep(self.each).await;
        Ok(ExportOutcome::default())
    }
}

#[tokio::test(start_paused = true)]
async fn requests_held_back_by_a_slow_target_count_their_lag() {
    let (_dir, store) = local_store();
    let metadata = seed(store.as_ref(), "lagging", "payment-failure", 4, 10.0, SignalSet::ALL).await;
    let expected_records = records(store.as_ref(), &metadata).await;
    let each = Duration::from_millis(700);
    let sink = SlowSink { each, sent: Mutex::new(Vec::new()) };
    let options = ReplayOptions { concurrency: 1, ..at_speed_one() };

    let outcome = replay_to(&store, &metadata, &sink, &options).await;

    // One at a time: request i goes when it is due or when the one before
    // has been answered, whichever is later.
    let first = expected_records[0].1.receive_time_unix_nano;
    let mut free_at = 0_u64;
    let mut lags = Vec::new();
    let mut rows: BTreeMap<u64, SeriesRow> = BTreeMap::new();
    for (signal, record) in &expected_records {
        let due = record.receive_time_unix_nano - first;
        let sent = due.max(free_at);
        free_at = sent + each.as_nanos() as u64;
        let lag_millis = (sent - due) / 1_000_000;
        lags.push(lag_millis);
        add(&mut rows, sent / SECOND, |row| row.lag_millis = row.lag_millis.max(lag_millis));
        add(&mut rows, free_at / SECOND, |row| {
            *signal.pick(&mut row.traces, &mut row.metrics, &mut row.logs) += record.item_count;
        });
    }
    let sent = sink.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), expected_records.len());
    assert!(lags.iter().any(|lag| *lag > 0), "the session is dense enough to fall behind: {lags:?}");
    assert_eq!(outcome.series.rows, rows.into_values().collect::<Vec<_>>());

    let lag: &LagDistribution = &outcome.series.lag;
    let bounds = &lag.bounds_millis;
    let mut counts = vec![0_u64; bounds.len() + 1];
    for millis in &lags {
        counts[bounds.partition_point(|bound| bound < millis)] += 1;
    }
    assert_eq!(lag.counts, counts);
    assert_eq!(lag.max_millis, *lags.iter().max().unwrap());
    assert_eq!(outcome.progress.lag_millis, i64::try_from(*lags.last().unwrap()).unwrap());
}
