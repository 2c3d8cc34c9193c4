//! Counters of a capture, per signal, shared by the receivers, the
//! recorder and the forwarder, and read for progress and the summary.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use tape_otlp::Signal;

/// Counters of one signal.
#[derive(Debug, Default)]
pub struct SignalStats {
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

impl SignalStats {
    pub(crate) fn admitted(&self, items: u64, bytes: u64) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.items.fetch_add(items, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn ignored(&self, items: u64) {
        self.ignored_requests.fetch_add(1, Ordering::Relaxed);
        self.ignored_items.fetch_add(items, Ordering::Relaxed);
    }

    pub(crate) fn rejected(&self) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn throttled(&self) {
        self.throttled.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn forwarded(&self) {
        self.forwarded.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn forward_failed(&self) {
        self.forward_failed.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> SignalSnapshot {
        SignalSnapshot {
            requests: self.requests.load(Ordering::Relaxed),
            items: self.items.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            ignored_requests: self.ignored_requests.load(Ordering::Relaxed),
            ignored_items: self.ignored_items.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            throttled: self.throttled.load(Ordering::Relaxed),
            forwarded: self.forwarded.load(Ordering::Relaxed),
            forward_failed: self.forward_failed.load(Ordering::Relaxed),
        }
    }
}

/// Counters of a capture.
#[derive(Debug, Default)]
pub struct Stats {
    signals: [SignalStats; 3],
    /// Requests refused before their signal was known (unknown path, wrong method).
    unrouted: AtomicU64,
}

impl Stats {
    /// The counters of `signal`.
    pub fn signal(&self, signal: Signal) -> &SignalStats {
        match signal {
            Signal::Traces => &self.signals[0],
            Signal::Metrics => &self.signals[1],
            Signal::Logs => &self.signals[2],
        }
    }

    pub(crate) fn unrouted(&self) {
        self.unrouted.fetch_add(1, Ordering::Relaxed);
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
    /// Requests refused as invalid (malformed, too large, wrong type).
    pub rejected: u64,
    /// Requests refused with a retryable code because the store was behind.
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
        match signal {
            Signal::Traces => &self.traces,
            Signal::Metrics => &self.metrics,
            Signal::Logs => &self.logs,
        }
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
