//! Counters of a capture, per signal, shared by the receivers, the
//! recorder and the forwarder, and read for progress and the summary.
//!
//! Counters can be part of others: a capture attached to long-running
//! [`Receivers`](crate::Receivers) counts into its own [`Stats`], and every
//! count also goes to the receivers' totals.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use tape_otlp::Signal;

/// The counts of one signal.
#[derive(Debug, Default)]
struct Counts {
    requests: AtomicU64,
    items: AtomicU64,
    bytes: AtomicU64,
    ignored_requests: AtomicU64,
    ignored_items: AtomicU64,
    rejected: AtomicU64,
    throttled: AtomicU64,
    forwarded: AtomicU64,
    forward_failed: AtomicU64,
}

/// Counters of one signal.
#[derive(Debug)]
pub struct SignalStats {
    counts: Counts,
    signal: Signal,
    /// The counters these are part of: every count goes there too.
    total: Option<Arc<Stats>>,
}

impl SignalStats {
    /// Counts with `add` here and in the totals these are part of.
    fn count(&self, add: &dyn Fn(&Counts)) {
        add(&self.counts);
        if let Some(total) = &self.total {
            total.signal(self.signal).count(add);
        }
    }

    pub(crate) fn admitted(&self, items: u64, bytes: u64) {
        self.count(&|counts| {
            counts.requests.fetch_add(1, Ordering::Relaxed);
            counts.items.fetch_add(items, Ordering::Relaxed);
            counts.bytes.fetch_add(bytes, Ordering::Relaxed);
        });
    }

    pub(crate) fn ignored(&self, items: u64) {
        self.count(&|counts| {
            counts.ignored_requests.fetch_add(1, Ordering::Relaxed);
            counts.ignored_items.fetch_add(items, Ordering::Relaxed);
        });
    }

    /// Adds one to the counter `counter` picks.
    fn one_more(&self, counter: fn(&Counts) -> &AtomicU64) {
        self.count(&|counts| {
            counter(counts).fetch_add(1, Ordering::Relaxed);
        });
    }

    pub(crate) fn rejected(&self) {
        self.one_more(|counts| &counts.rejected);
    }

    pub(crate) fn throttled(&self) {
        self.one_more(|counts| &counts.throttled);
    }

    pub(crate) fn forwarded(&self) {
        self.one_more(|counts| &counts.forwarded);
    }

    pub(crate) fn forward_failed(&self) {
        self.one_more(|counts| &counts.forward_failed);
    }

    fn snapshot(&self) -> SignalSnapshot {
        let counts = &self.counts;
        SignalSnapshot {
            requests: counts.requests.load(Ordering::Relaxed),
            items: counts.items.load(Ordering::Relaxed),
            bytes: counts.bytes.load(Ordering::Relaxed),
            ignored_requests: counts.ignored_requests.load(Ordering::Relaxed),
            ignored_items: counts.ignored_items.load(Ordering::Relaxed),
            rejected: counts.rejected.load(Ordering::Relaxed),
            throttled: counts.throttled.load(Ordering::Relaxed),
            forwarded: counts.forwarded.load(Ordering::Relaxed),
            forward_failed: counts.forward_failed.load(Ordering::Relaxed),
        }
    }
}

/// Counters of a capture (or of long-running receivers).
#[derive(Debug)]
pub struct Stats {
    signals: [SignalStats; 3],
    /// Requests refused before their signal was known (unknown path, wrong method).
    unrouted: AtomicU64,
    /// The counters these are part of: every count goes there too.
    total: Option<Arc<Stats>>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats::new(None)
    }
}

impl Stats {
    fn new(total: Option<Arc<Stats>>) -> Stats {
        let signal = |signal| SignalStats { counts: Counts::default(), signal, total: total.clone() };
        Stats {
            signals: [signal(Signal::Traces), signal(Signal::Metrics), signal(Signal::Logs)],
            unrouted: AtomicU64::new(0),
            total,
        }
    }

    /// Counters of their own that also count everything into `total`.
    pub(crate) fn part_of(total: Arc<Stats>) -> Stats {
        Stats::new(Some(total))
    }

    /// The counters of `signal`.
    pub fn signal(&self, signal: Signal) -> &SignalStats {
        &self.signals[signal.index()]
    }

    pub(crate) fn unrouted(&self) {
        self.unrouted.fetch_add(1, Ordering::Relaxed);
        if let Some(total) = &self.total {
            total.unrouted();
        }
    }

    /// The counters as they are now.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            traces: self.signals[0].snapshot(),
            metrics: self.signals[1].snapshot(),
            logs: self.signals[2].snapshot(),
            unrouted: self.unrouted.load(Ordering::Relaxed),
        }
    }
}

/// The counters of one signal at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignalSnapshot {
    /// Requests accepted for recording.
    pub requests: u64,
    /// Items (spans, data points, log records) in them.
    pub items: u64,
    /// Protobuf bytes in them.
    pub bytes: u64,
    /// Requests acknowledged but not recorded (signal not selected).
    pub ignored_requests: u64,
    /// Items in them.
    pub ignored_items: u64,
    /// Requests refused as invalid (malformed, too large, wrong type), or
    /// whose body did not arrive within the read timeout.
    pub rejected: u64,
    /// Requests refused with a retryable code because the capture was
    /// overloaded: the store behind, or the receiver's budget of bodies
    /// being read full.
    pub throttled: u64,
    /// Requests the upstream accepted.
    pub forwarded: u64,
    /// Requests that could not be forwarded.
    pub forward_failed: u64,
}

/// The counters of a capture at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatsSnapshot {
    /// Traces.
    pub traces: SignalSnapshot,
    /// Metrics.
    pub metrics: SignalSnapshot,
    /// Logs.
    pub logs: SignalSnapshot,
    /// Requests to unknown paths or with the wrong method.
    pub unrouted: u64,
}

impl StatsSnapshot {
    /// The counters of `signal`.
    pub fn signal(&self, signal: Signal) -> &SignalSnapshot {
        signal.pick(&self.traces, &self.metrics, &self.logs)
    }

    /// The sum over signals.
    pub fn total(&self) -> SignalSnapshot {
        let mut total = SignalSnapshot::default();
        for signal in Signal::ALL {
            let one = self.signal(signal);
            total.requests += one.requests;
            total.items += one.items;
            total.bytes += one.bytes;
            total.ignored_requests += one.ignored_requests;
            total.ignored_items += one.ignored_items;
            total.rejected += one.rejected;
            total.throttled += one.throttled;
            total.forwarded += one.forwarded;
            total.forward_failed += one.forward_failed;
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_of_a_part_also_go_to_the_total_and_not_back() {
        let total = Arc::new(Stats::default());
        let part = Stats::part_of(Arc::clone(&total));
        part.signal(Signal::Traces).admitted(3, 100);
        part.signal(Signal::Logs).ignored(2);
        part.signal(Signal::Logs).rejected();
        part.unrouted();
        total.signal(Signal::Traces).admitted(1, 10);
        total.signal(Signal::Metrics).forwarded();

        let part = part.snapshot();
        assert_eq!((part.traces.requests, part.traces.items, part.traces.bytes), (1, 3, 100));
        assert_eq!((part.logs.ignored_requests, part.logs.ignored_items, part.logs.rejected), (1, 2, 1));
        assert_eq!((part.metrics.forwarded, part.unrouted), (0, 1));
        let total = total.snapshot();
        assert_eq!((total.traces.requests, total.traces.items, total.traces.bytes), (2, 4, 110));
        assert_eq!((total.logs.ignored_requests, total.logs.ignored_items, total.logs.rejected), (1, 2, 1));
        assert_eq!((total.metrics.forwarded, total.unrouted), (1, 1));
    }
}
