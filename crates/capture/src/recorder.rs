//! The recorder: the bounded path from the receivers to the session writer.
//!
//! Receivers [`submit`](Recorder::submit) every accepted request. A request
//! is admitted only when the bytes waiting for the writer stay under a
//! budget; otherwise the receiver answers with a retryable code. Admitted
//! requests get their receive time, in admission order, and wait in a
//! queue for the one task that writes the session. That task flushes at
//! least once per flush interval, and, for durable capture, syncs before
//! the requests it wrote are acknowledged.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tape_otlp::{Signal, SignalSet};
use tape_session::{SessionMetadata, SessionStatus, SessionStore, SessionWriter, Timestamp, WriterOptions};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};
use tracing::{debug, warn};

use crate::stats::Stats;

/// How the recorder writes and what it admits.
#[derive(Debug, Clone)]
pub struct RecorderConfig {
    /// Signals recorded; requests of the others are acknowledged and counted
    /// as ignored.
    pub signals: SignalSet,
    /// Bytes of requests admitted but not yet written, at most. Requests
    /// over it are refused with a retryable code.
    pub queue_bytes: usize,
    /// The longest time written data stays in memory before it is flushed.
    pub flush_interval: Duration,
    /// Acknowledge a request only once it is on stable storage.
    pub durable: bool,
    /// Stop once this many bytes of requests (protobuf) are recorded.
    pub max_bytes: Option<u64>,
    /// Stop after this long.
    pub max_duration: Option<Duration>,
    /// How blobs are laid out.
    pub writer: WriterOptions,
}

impl Default for RecorderConfig {
    fn default() -> Self {
        RecorderConfig {
            signals: SignalSet::ALL,
            queue_bytes: 32 * 1024 * 1024,
            flush_interval: Duration::from_secs(1),
            durable: false,
            max_bytes: None,
            max_duration: None,
            writer: WriterOptions {
                announce: true,
                max_blob_age_nanos: Some(5 * 60 * 1_000_000_000),
                ..WriterOptions::default()
            },
        }
    }
}

/// Why a request was not admitted. Both are retryable for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The writer is behind: too many bytes are waiting.
    #[error("the recorder is behind; retry later")]
    Busy,
    /// The capture is stopping or has failed: nothing more is recorded.
    #[error("the capture is not recording")]
    Stopped,
}

/// What became of an admitted request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admitted {
    /// Queued for the writer (and, for durable capture, on stable storage).
    Recorded,
    /// Its signal is not recorded; acknowledged all the same.
    Ignored,
}

/// Why the recording ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// Asked to stop (Ctrl-C, SIGTERM, an API call).
    Requested,
    /// `max_bytes` was reached.
    SizeLimit,
    /// `max_duration` passed.
    DurationLimit,
    /// The store failed; the message says how.
    Failed(String),
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StopReason::Requested => f.write_str("stopped on request"),
            StopReason::SizeLimit => f.write_str("size limit reached"),
            StopReason::DurationLimit => f.write_str("duration limit reached"),
            StopReason::Failed(message) => write!(f, "failed: {message}"),
        }
    }
}

struct Entry {
    signal: Signal,
    receive_time: Timestamp,
    items: u64,
    payload: Bytes,
    _permit: OwnedSemaphorePermit,
    ack: Option<oneshot::Sender<bool>>,
}

/// The receivers' handle on the recording. Cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    inner: Arc<Shared>,
}

struct Shared {
    queue: mpsc::UnboundedSender<Entry>,
    budget: Arc<Semaphore>,
    queue_bytes: usize,
    signals: SignalSet,
    durable: bool,
    /// The last receive time handed out, so that times follow admission order.
    last_time: Mutex<Timestamp>,
    stopping: AtomicBool,
    stats: Arc<Stats>,
}

/// The writing task's side: run it to record, and stop it through its
/// [`StopHandle`].
pub struct RecordingTask {
    store: Arc<dyn SessionStore>,
    metadata: SessionMetadata,
    config: RecorderConfig,
    queue: mpsc::UnboundedReceiver<Entry>,
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
}

/// Asks a recording to stop; it drains what was admitted first.
#[derive(Clone)]
pub struct StopHandle {
    stop: Arc<watch::Sender<bool>>,
}

impl StopHandle {
    /// Stops the recording. Requests admitted before are still written.
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }
}

/// The end of a recording.
#[derive(Debug, Clone)]
pub struct RecordingOutcome {
    /// The final metadata (status `completed`, or `failed`).
    pub metadata: SessionMetadata,
    /// Why it ended.
    pub reason: StopReason,
}

/// The current time as a [`Timestamp`].
pub fn now() -> Timestamp {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |since| since.as_nanos());
    Timestamp::from_unix_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// Creates a recorder and its writing task for the session described by
/// `metadata`. Nothing is written until the task runs.
pub fn recorder(
    store: Arc<dyn SessionStore>,
    metadata: SessionMetadata,
    config: RecorderConfig,
    stats: Arc<Stats>,
) -> (Recorder, RecordingTask, StopHandle) {
    let (sender, queue) = mpsc::unbounded_channel();
    let (stop_sender, stop) = watch::channel(false);
    let shared = Arc::new(Shared {
        queue: sender,
        budget: Arc::new(Semaphore::new(config.queue_bytes)),
        queue_bytes: config.queue_bytes,
        signals: config.signals,
        durable: config.durable,
        last_time: Mutex::new(Timestamp::default()),
        stopping: AtomicBool::new(false),
        stats,
    });
    let task = RecordingTask { store, metadata, config, queue, shared: Arc::clone(&shared), stop };
    (Recorder { inner: shared }, task, StopHandle { stop: Arc::new(stop_sender) })
}

impl Recorder {
    /// Admits one request of `signal` holding `items` items, encoded as
    /// protobuf in `payload`. Returns once it is queued for the writer (or,
    /// for durable capture, once it is on stable storage).
    pub async fn submit(&self, signal: Signal, items: u64, payload: Bytes) -> Result<Admitted, Refusal> {
        let shared = &self.inner;
        if !shared.signals.contains(signal) {
            shared.stats.signal(signal).ignored(items);
            return Ok(Admitted::Ignored);
        }
        if shared.stopping.load(Ordering::Acquire) {
            return Err(Refusal::Stopped);
        }
        // A request larger than the whole budget could never be admitted;
        // it takes the whole budget instead.
        let cost = payload.len().clamp(1, shared.queue_bytes);
        let Ok(permit) = Arc::clone(&shared.budget).try_acquire_many_owned(cost as u32) else {
            shared.stats.signal(signal).throttled();
            return Err(Refusal::Busy);
        };
        let (ack, acked) = if shared.durable {
            let (sender, receiver) = oneshot::channel();
            (Some(sender), Some(receiver))
        } else {
            (None, None)
        };
        let bytes = payload.len() as u64;
        {
            // Stamping and queueing under one lock keeps receive times in
            // queue order, even when the wall clock steps back.
            let mut last = shared.last_time.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let receive_time = now().max(*last);
            *last = receive_time;
            let entry = Entry { signal, receive_time, items, payload, _permit: permit, ack };
            if shared.queue.send(entry).is_err() {
                return Err(Refusal::Stopped);
            }
        }
        shared.stats.signal(signal).admitted(items, bytes);
        match acked {
            None => Ok(Admitted::Recorded),
            Some(acked) => match acked.await {
                Ok(true) => Ok(Admitted::Recorded),
                // The write failed: the capture is over, and the client
                // should send the request again elsewhere or later.
                Ok(false) | Err(_) => Err(Refusal::Stopped),
            },
        }
    }

    /// Whether the recording has stopped admitting requests.
    pub fn is_stopping(&self) -> bool {
        self.inner.stopping.load(Ordering::Acquire)
    }

    /// The counters the recorder counts into.
    pub(crate) fn stats(&self) -> &Arc<Stats> {
        &self.inner.stats
    }

    /// Whether `other` is a handle on the same recording.
    pub(crate) fn is_same(&self, other: &Recorder) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl RecordingTask {
    /// Creates the session, then records until stopped or a limit is
    /// reached, drains the queue, finishes the session and returns its
    /// final metadata. `started` hears whether the session could be
    /// created (its id may be taken).
    pub async fn run(
        self,
        started: Option<oneshot::Sender<Result<(), tape_session::Error>>>,
    ) -> Result<RecordingOutcome, tape_session::Error> {
        let RecordingTask { store, metadata, config, mut queue, shared, mut stop } = self;
        let mut written = 0u64;
        let mut writer = match SessionWriter::create(store.as_ref(), metadata, config.writer).await {
            Ok(writer) => {
                if let Some(started) = started {
                    let _ = started.send(Ok(()));
                }
                writer
            }
            Err(error) => {
                shared.stopping.store(true, Ordering::Release);
                let message = error.to_string();
                if let Some(started) = started {
                    let _ = started.send(Err(error));
                }
                return Err(tape_session::Error::backend("the session could not be created", message));
            }
        };
        let started = tokio::time::Instant::now();
        let deadline = config.max_duration.map(|limit| started + limit);
        let mut flush = tokio::time::interval(config.flush_interval);
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut dirty = false;
        let mut pending_acks: Vec<oneshot::Sender<bool>> = Vec::new();
        let mut batch = Vec::with_capacity(64);
        let reason = loop {
            tokio::select! {
                biased;
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() {
                        break StopReason::Requested;
                    }
                }
                () = sleep_until(deadline) => break StopReason::DurationLimit,
                received = queue.recv_many(&mut batch, 256) => {
                    if received == 0 {
                        break StopReason::Requested;
                    }
                    if let Err(error) = write_batch(&mut writer, &mut batch, &mut pending_acks, &mut written).await {
                        break StopReason::Failed(error.to_string());
                    }
                    dirty = true;
                    if !pending_acks.is_empty() {
                        if let Err(error) = writer.sync().await {
                            break StopReason::Failed(error.to_string());
                        }
                        dirty = false;
                        for ack in pending_acks.drain(..) {
                            let _ = ack.send(true);
                        }
                    }
                    if config.max_bytes.is_some_and(|max| written >= max) {
                        break StopReason::SizeLimit;
                    }
                }
                _ = flush.tick() => {
                    if dirty {
                        if let Err(error) = writer.flush().await {
                            break StopReason::Failed(error.to_string());
                        }
                        dirty = false;
                    }
                }
            }
        };
        shared.stopping.store(true, Ordering::Release);
        debug!(%reason, "Recording stops; draining admitted requests.");
        let mut status = SessionStatus::Completed;
        let mut reason = reason;
        if matches!(reason, StopReason::Failed(_)) {
            status = SessionStatus::Failed;
        } else {
            // Everything admitted is written: nothing acknowledged is lost.
            queue.close();
            while queue.recv_many(&mut batch, 256).await > 0 {
                if let Err(error) = write_batch(&mut writer, &mut batch, &mut pending_acks, &mut written).await {
                    reason = StopReason::Failed(error.to_string());
                    status = SessionStatus::Failed;
                    break;
                }
            }
        }
        let end_time = now().max(writer.metadata().start_time);
        let finished = writer.finish(end_time, status).await;
        let succeeded = finished.is_ok() && status == SessionStatus::Completed;
        for ack in pending_acks.drain(..) {
            let _ = ack.send(succeeded);
        }
        // Durable requests still queued after a failure are refused.
        queue.close();
        while let Ok(entry) = queue.try_recv() {
            if let Some(ack) = entry.ack {
                let _ = ack.send(false);
            }
        }
        let metadata = finished?;
        if let StopReason::Failed(message) = &reason {
            warn!(session = %metadata.session_id, "The capture failed: {message}");
        }
        Ok(RecordingOutcome { metadata, reason })
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

async fn write_batch(
    writer: &mut SessionWriter<'_>,
    batch: &mut Vec<Entry>,
    acks: &mut Vec<oneshot::Sender<bool>>,
    written: &mut u64,
) -> Result<(), tape_session::Error> {
    for entry in batch.drain(..) {
        writer.append(entry.signal, entry.receive_time, entry.items, &entry.payload).await?;
        *written += entry.payload.len() as u64;
        if let Some(ack) = entry.ack {
            acks.push(ack);
        }
    }
    Ok(())
}
