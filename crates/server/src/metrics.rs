//! `GET /metrics`: counters in the Prometheus text format (version 0.0.4),
//! and the store wrapper that measures writes.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use tape_capture::StatsSnapshot;
use tape_otlp::Signal;
use tape_replay::ProgressSnapshot;
use tape_session::{BlobKey, BlobSink, Error, SessionId, SessionMetadata, SessionStore, StoreLayer};

/// Store writes: how many, how long they took in all, and bytes written.
#[derive(Debug, Default)]
pub(crate) struct StoreCounters {
    writes: AtomicU64,
    write_nanos: AtomicU64,
    bytes: AtomicU64,
}

impl StoreCounters {
    fn record(&self, started: Instant, bytes: usize) {
        let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.write_nanos.fetch_add(nanos, Ordering::Relaxed);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }
}

/// A store that counts its writes (metadata, annotations, blob chunks and
/// commits) into [`StoreCounters`], and otherwise is the store it wraps.
#[derive(Debug)]
pub(crate) struct MeteredStore {
    inner: Arc<dyn SessionStore>,
    counters: Arc<StoreCounters>,
}

impl MeteredStore {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn SessionStore>, counters: Arc<StoreCounters>) -> Self {
        MeteredStore { inner, counters }
    }
}

#[async_trait::async_trait]
impl StoreLayer for MeteredStore {
    fn inner(&self) -> &dyn SessionStore {
        self.inner.as_ref()
    }

    async fn write_metadata(&self, metadata: &SessionMetadata) -> Result<(), Error> {
        let started = Instant::now();
        let result = self.inner.write_metadata(metadata).await;
        self.counters.record(started, 0);
        result
    }

    async fn create_blob(&self, id: &SessionId, key: &BlobKey) -> Result<Box<dyn BlobSink>, Error> {
        let sink = self.inner.create_blob(id, key).await?;
        Ok(Box::new(MeteredSink { inner: sink, counters: Arc::clone(&self.counters) }))
    }

    async fn write_annotations(&self, id: &SessionId, contents: Bytes) -> Result<(), Error> {
        let started = Instant::now();
        let len = contents.len();
        let result = self.inner.write_annotations(id, contents).await;
        self.counters.record(started, len);
        result
    }
}

struct MeteredSink {
    inner: Box<dyn BlobSink>,
    counters: Arc<StoreCounters>,
}

#[async_trait::async_trait]
impl BlobSink for MeteredSink {
    async fn write(&mut self, chunk: Bytes) -> Result<(), Error> {
        let started = Instant::now();
        let len = chunk.len();
        let result = self.inner.write(chunk).await;
        self.counters.record(started, len);
        result
    }

    async fn flush(&mut self) -> Result<(), Error> {
        self.inner.flush().await
    }

    async fn sync(&mut self) -> Result<(), Error> {
        self.inner.sync().await
    }

    async fn commit(self: Box<Self>) -> Result<(), Error> {
        let started = Instant::now();
        let MeteredSink { inner, counters } = *self;
        let result = inner.commit().await;
        counters.record(started, 0);
        result
    }

    async fn abort(self: Box<Self>) -> Result<(), Error> {
        self.inner.abort().await
    }
}

/// Everything `/metrics` shows at one moment.
pub(crate) struct Sample<'a> {
    /// The receivers' counters since `serve` started.
    pub received: StatsSnapshot,
    /// The progress of the running replays, and of the ended ones summed.
    pub replays: &'a [ProgressSnapshot],
    /// Items per second of the replays running now, summed.
    pub replay_rate: f64,
    /// The largest lag behind schedule of the replays running now, in ms.
    pub replay_lag_millis: i64,
    /// Store writes.
    pub store: &'a StoreCounters,
    /// Captures running now (0 or 1).
    pub active_captures: u64,
    /// Replays running now.
    pub active_replays: u64,
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn per_signal(out: &mut String, name: &str, help: &str, value: impl Fn(Signal) -> u64) {
    family(out, name, "counter", help);
    for signal in Signal::ALL {
        let _ = writeln!(out, "{name}{{signal=\"{signal}\"}} {}", value(signal));
    }
}

/// The metrics in the Prometheus text format.
#[allow(clippy::cast_precision_loss)] // seconds for Prometheus
pub(crate) fn render(sample: &Sample<'_>) -> String {
    let mut out = String::new();
    let received = &sample.received;
    let received_requests =
        |s: Signal| received.signal(s).requests + received.signal(s).ignored_requests + received.signal(s).throttled;
    per_signal(
        &mut out,
        "otlp_tape_received_requests_total",
        "Valid OTLP export requests received, recorded or not.",
        received_requests,
    );
    per_signal(&mut out, "otlp_tape_received_items_total", "Items (spans, data points, log records) received.", |s| {
        received.signal(s).items + received.signal(s).ignored_items
    });
    per_signal(&mut out, "otlp_tape_recorded_requests_total", "Requests recorded into a capture session.", |s| {
        received.signal(s).requests
    });
    per_signal(&mut out, "otlp_tape_recorded_items_total", "Items recorded into a capture session.", |s| {
        received.signal(s).items
    });
    per_signal(
        &mut out,
        "otlp_tape_rejected_requests_total",
        "Requests refused as invalid (malformed, too large, wrong content type).",
        |s| received.signal(s).rejected,
    );
    per_signal(
        &mut out,
        "otlp_tape_throttled_requests_total",
        "Requests refused with a retryable code because the store was behind.",
        |s| received.signal(s).throttled,
    );
    per_signal(&mut out, "otlp_tape_forwarded_requests_total", "Requests the forward upstream accepted.", |s| {
        received.signal(s).forwarded
    });
    per_signal(&mut out, "otlp_tape_forward_failed_requests_total", "Requests that could not be forwarded.", |s| {
        received.signal(s).forward_failed
    });

    let replayed = |pick: fn(&tape_replay::SignalProgress) -> u64, signal: Signal| -> u64 {
        sample.replays.iter().map(|progress| pick(progress.signal(signal))).sum()
    };
    per_signal(&mut out, "otlp_tape_replay_sent_items_total", "Items replays sent.", |s| replayed(|p| p.sent_items, s));
    per_signal(&mut out, "otlp_tape_replay_rejected_items_total", "Items targets rejected (partial success).", |s| {
        replayed(|p| p.rejected_items, s)
    });
    per_signal(&mut out, "otlp_tape_replay_failed_items_total", "Items of requests that failed to send.", |s| {
        replayed(|p| p.failed_items, s)
    });
    family(&mut out, "otlp_tape_replay_items_per_second", "gauge", "Items per second the running replays send.");
    let _ = writeln!(out, "otlp_tape_replay_items_per_second {}", sample.replay_rate);
    family(&mut out, "otlp_tape_replay_lag_seconds", "gauge", "How far the running replays are behind schedule.");
    let _ = writeln!(out, "otlp_tape_replay_lag_seconds {}", sample.replay_lag_millis as f64 / 1000.0);

    let store = sample.store;
    family(&mut out, "otlp_tape_store_writes_total", "counter", "Writes to the session store.");
    let _ = writeln!(out, "otlp_tape_store_writes_total {}", store.writes.load(Ordering::Relaxed));
    family(&mut out, "otlp_tape_store_write_seconds_total", "counter", "Time spent in store writes.");
    let _ =
        writeln!(out, "otlp_tape_store_write_seconds_total {}", store.write_nanos.load(Ordering::Relaxed) as f64 / 1e9);
    family(&mut out, "otlp_tape_store_written_bytes_total", "counter", "Bytes written to the session store.");
    let _ = writeln!(out, "otlp_tape_store_written_bytes_total {}", store.bytes.load(Ordering::Relaxed));

    family(&mut out, "otlp_tape_active_captures", "gauge", "Captures recording now.");
    let _ = writeln!(out, "otlp_tape_active_captures {}", sample.active_captures);
    family(&mut out, "otlp_tape_active_replays", "gauge", "Replays running now.");
    let _ = writeln!(out, "otlp_tape_active_replays {}", sample.active_replays);
    out
}
