//! The recorder: the bounded path from the receivers to the session writer.
//!
//! Receivers [`submit`](Recorder::submit) every accepted request. A request
//! is admitted only when the bytes waiting for the writer stay under a
//! budget; otherwise the receiver answers with a retryable code. Admitted
//! requests get their receive time, in admission order, and wait in a
//! queue for the one task that writes the session. That task flushes at
//! least once per flush interval, and, for durable capture, syncs before
//! the requests it wrote are acknowledged.
//!
//! When the store fails (a full disk), nothing admitted is dropped: what
//! the writer could not hand to the store stays in memory, new requests
//! are refused with [`Refusal::StoreFailing`] (retryable), and the task
//! tries the store again every second until it works, then admits again.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use tape_otlp::{Signal, SignalSet};
use tape_session::{
    SealOutcome, SessionMetadata, SessionStatus, SessionStore, SessionWriter, Timestamp, WriterId, WriterOptions,
    error_chain,
};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};
use tracing::{debug, info, warn};

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
    /// Record at most this many bytes of requests (protobuf): the request
    /// that would go over is refused (retryable) and the recording stops.
    pub max_bytes: Option<u64>,
    /// Stop after this long.
    pub max_duration: Option<Duration>,
    /// How blobs are laid out.
    pub writer: WriterOptions,
    /// Join the session as one of several writers (`capture --join`)
    /// instead of creating it; `None` writes a session of its own.
    pub join: Option<JoinAs>,
}

/// Who a joining recorder is: its writer id, and its host as it knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinAs {
    /// The writer id, part of its blob keys and the name of its manifest.
    pub writer: WriterId,
    /// The host name, kept in the writer's manifest.
    pub host: Option<String>,
    /// How often the writer rewrites its manifest while it runs, so that
    /// `sessions repair --writer` elsewhere sees it alive
    /// ([`WRITER_HEARTBEAT`](tape_session::WRITER_HEARTBEAT) by default;
    /// more than a third of [`WRITER_STALE_AFTER`](tape_session::WRITER_STALE_AFTER)
    /// lets a repair take a running writer for a crashed one).
    pub heartbeat: Duration,
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
            join: None,
        }
    }
}

/// Why a request was not admitted. All are retryable for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The writer is behind: too many bytes are waiting.
    #[error("the recorder is behind; retry later")]
    Busy,
    /// The capture is stopping or has failed: nothing more is recorded.
    #[error("the capture is not recording")]
    Stopped,
    /// The store cannot be written (a full disk); the capture keeps what
    /// it acknowledged and takes requests again once the store works.
    #[error("the session store cannot be written; retry later")]
    StoreFailing,
}

/// How often a failing store is tried again, at most.
const STORE_RETRY_INTERVAL: Duration = Duration::from_secs(1);

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
    ack: Option<oneshot::Sender<Ack>>,
}

/// What a durable request hears from the writing task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ack {
    /// On stable storage.
    Stored,
    /// Not known to be on stable storage: the store failed. The request
    /// may still be written once it works, so a client that sends it
    /// again may record it twice, never lose it.
    StoreFailing,
    /// The recording ended before it was on stable storage.
    Stopped,
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
    /// Set while the store fails: requests are refused until it works.
    store_failing: AtomicBool,
    /// `max_bytes`, and the bytes admitted towards it.
    max_bytes: Option<u64>,
    admitted_bytes: AtomicU64,
    /// Told when a request would go over `max_bytes`.
    limit_reached: Notify,
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

/// How full a recorder's queue is, read at any time (cheap to clone).
#[derive(Clone)]
pub struct QueueGauge {
    budget: Arc<Semaphore>,
    capacity: usize,
}

impl std::fmt::Debug for QueueGauge {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.fill().fmt(formatter)
    }
}

/// A recorder's queue at a moment: requests admitted and not yet written
/// hold bytes of it (a request larger than the queue holds all of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueFill {
    /// Bytes of requests waiting for the writer.
    pub used_bytes: u64,
    /// The queue's size (`queue_bytes`, `--queue-size-mb`).
    pub capacity_bytes: u64,
}

impl QueueGauge {
    /// The queue now.
    pub fn fill(&self) -> QueueFill {
        let free = self.budget.available_permits().min(self.capacity);
        QueueFill { used_bytes: (self.capacity - free) as u64, capacity_bytes: self.capacity as u64 }
    }
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
    /// The writer it was, when it joined a session of several writers.
    pub writer: Option<WriterId>,
    /// When it joined: what sealing the session did as it stopped (`None`
    /// when it could not finish). The session's metadata is the merged
    /// one when it is sealed, else the active session's with this writer's
    /// blobs.
    pub seal: Option<SealOutcome>,
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
        store_failing: AtomicBool::new(false),
        max_bytes: config.max_bytes,
        admitted_bytes: AtomicU64::new(0),
        limit_reached: Notify::new(),
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
        if shared.store_failing.load(Ordering::Acquire) {
            shared.stats.signal(signal).throttled();
            return Err(Refusal::StoreFailing);
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
        if let Some(max) = shared.max_bytes {
            // The request that would go over the limit is not recorded:
            // the session stays within it, and the recording stops.
            let admitted = shared.admitted_bytes.fetch_add(bytes, Ordering::AcqRel);
            if admitted.saturating_add(bytes) > max {
                shared.admitted_bytes.fetch_sub(bytes, Ordering::AcqRel);
                shared.limit_reached.notify_one();
                return Err(Refusal::Stopped);
            }
            if admitted + bytes == max {
                // Exactly at the limit: this one is recorded, then it stops.
                shared.limit_reached.notify_one();
            }
        }
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
                Ok(Ack::Stored) => Ok(Admitted::Recorded),
                // The store failed before the request was on stable
                // storage: the client sends it again later.
                Ok(Ack::StoreFailing) => Err(Refusal::StoreFailing),
                Ok(Ack::Stopped) | Err(_) => Err(Refusal::Stopped),
            },
        }
    }

    /// A gauge of its queue: bytes waiting for the writer against the
    /// queue's size.
    pub fn queue(&self) -> QueueGauge {
        QueueGauge { budget: Arc::clone(&self.inner.budget), capacity: self.inner.queue_bytes }
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
        let RecordingTask { store, metadata, config, queue, shared, mut stop } = self;
        let created = match config.join.clone() {
            Some(JoinAs { writer, host, .. }) => {
                Box::pin(SessionWriter::join(store.as_ref(), metadata, writer, host, config.writer)).await
            }
            None => SessionWriter::create(store.as_ref(), metadata, config.writer).await,
        };
        let writer = match created {
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
        let mut task = Writing {
            writer,
            queue,
            shared,
            held: VecDeque::new(),
            pending_acks: Vec::new(),
            failing: None,
            durable: config.durable,
            dirty: false,
        };
        // One receiver for both: a stop that ended the recording is seen,
        // and only a later one gives up finishing.
        let reason = task.record(&config, &mut stop).await;
        // Finishing a joined writer seals the session: a large future.
        Box::pin(task.finish(store.as_ref(), reason, stop)).await
    }
}

/// The writing task's state while it records.
struct Writing<'a> {
    writer: SessionWriter<'a>,
    queue: mpsc::UnboundedReceiver<Entry>,
    shared: Arc<Shared>,
    /// Admitted requests the writer has not taken yet, oldest first: they
    /// wait here while the store fails.
    held: VecDeque<Entry>,
    /// Durable requests taken by the writer, acknowledged at the next sync.
    pending_acks: Vec<oneshot::Sender<Ack>>,
    /// The store's error while it fails.
    failing: Option<String>,
    durable: bool,
    /// Whether bytes were written since the last flush.
    dirty: bool,
}

impl Writing<'_> {
    /// Records until stopped or a limit is reached; returns why it stopped.
    async fn record(&mut self, config: &RecorderConfig, stop: &mut watch::Receiver<bool>) -> StopReason {
        let started = tokio::time::Instant::now();
        let deadline = config.max_duration.map(|limit| started + limit);
        let mut flush = tokio::time::interval(config.flush_interval);
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut retry = tokio::time::interval(config.flush_interval.min(STORE_RETRY_INTERVAL));
        retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // A joined writer's heartbeat; the join wrote its manifest just now.
        let beat = config.join.as_ref().map_or(Duration::MAX, |join| join.heartbeat);
        let mut heartbeat = tokio::time::interval_at(started.checked_add(beat).unwrap_or(started), beat);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let joined = config.join.is_some();
        let shared = Arc::clone(&self.shared);
        let mut batch = Vec::with_capacity(64);
        loop {
            tokio::select! {
                biased;
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() {
                        return StopReason::Requested;
                    }
                }
                () = sleep_until(deadline) => return StopReason::DurationLimit,
                () = shared.limit_reached.notified() => return StopReason::SizeLimit,
                _ = retry.tick(), if self.failing.is_some() => {
                    // Admitted while the store failed: held for the retry.
                    while let Ok(entry) = self.queue.try_recv() {
                        self.hold(entry);
                    }
                    if self.write_held().await.is_ok() && self.settle().await.is_ok() {
                        self.recovered();
                    }
                }
                received = self.queue.recv_many(&mut batch, 256), if self.failing.is_none() => {
                    if received == 0 {
                        return StopReason::Requested;
                    }
                    self.held.extend(batch.drain(..));
                    if self.write_held().await.is_ok() && !self.pending_acks.is_empty() {
                        let _ = self.settle().await;
                    }
                }
                _ = flush.tick(), if self.failing.is_none() => {
                    if self.dirty {
                        let _ = self.settle().await;
                    }
                }
                _ = heartbeat.tick(), if joined && self.failing.is_none() => self.heartbeat().await,
            }
        }
    }

    /// A joined writer's heartbeat: its manifest rewritten, stamped now.
    /// A manifest another process finished under it (`sessions repair
    /// --writer --force` while it runs) is said loudly: the writer goes on,
    /// and its finish seals the session again with everything it committed.
    /// A store that fails here is tried at the next beat (or commit).
    async fn heartbeat(&mut self) {
        let session = self.writer.metadata().session_id.clone();
        let writer = self.writer.writer_id().cloned();
        match self.writer.heartbeat(now()).await {
            Ok(false) => {}
            Ok(true) => warn!(
                %session,
                writer = ?writer,
                "Another process repaired this writer (or sealed the session) while it runs: it keeps recording, \
                 and as it stops it seals the session again with every blob it committed"
            ),
            Err(error) => {
                warn!(%session, writer = ?writer, "Cannot write the writer's heartbeat (its manifest): {}", error_chain(&error));
            }
        }
    }

    /// Keeps `entry` for the writer, or refuses it when it is durable and
    /// the store fails: its client has not been answered and sends it again.
    fn hold(&mut self, mut entry: Entry) {
        if self.failing.is_some()
            && let Some(ack) = entry.ack.take()
        {
            let _ = ack.send(Ack::StoreFailing);
            return;
        }
        self.held.push_back(entry);
    }

    /// Hands the held requests to the writer, oldest first. On a store
    /// error the ones not taken stay held, and the store is failing.
    async fn write_held(&mut self) -> Result<(), ()> {
        while let Some(entry) = self.held.front() {
            let taken = self.writer.add(entry.signal, entry.receive_time, entry.items, &entry.payload).await;
            if let Err(error) = taken {
                self.failed(&error);
                return Err(());
            }
            let Some(mut entry) = self.held.pop_front() else { break };
            self.dirty = true;
            if let Some(ack) = entry.ack.take() {
                self.pending_acks.push(ack);
            }
            if let Err(error) = self.writer.write_out().await {
                self.failed(&error);
                return Err(());
            }
        }
        Ok(())
    }

    /// Flushes what was written (syncs it, and acknowledges it, when
    /// durable requests wait).
    async fn settle(&mut self) -> Result<(), ()> {
        let durable = !self.pending_acks.is_empty();
        let settled = if durable { self.writer.sync().await } else { self.writer.flush().await };
        if let Err(error) = settled {
            self.failed(&error);
            return Err(());
        }
        self.dirty = false;
        for ack in self.pending_acks.drain(..) {
            let _ = ack.send(Ack::Stored);
        }
        Ok(())
    }

    /// The store failed: refuse requests until it works again.
    fn failed(&mut self, error: &tape_session::Error) {
        let message = error_chain(error);
        if self.failing.is_none() {
            warn!(
                session = %self.writer.metadata().session_id,
                "The store cannot be written; refusing requests (retryable) until it can: {message}"
            );
            self.shared.store_failing.store(true, Ordering::Release);
        }
        self.failing = Some(message);
        // Durable requests not on stable storage are answered now.
        for ack in self.pending_acks.drain(..) {
            let _ = ack.send(Ack::StoreFailing);
        }
        if self.durable {
            for entry in &mut self.held {
                if let Some(ack) = entry.ack.take() {
                    let _ = ack.send(Ack::StoreFailing);
                }
            }
            // Refused durable requests are not written: their clients send them again.
            self.held.clear();
        }
    }

    fn recovered(&mut self) {
        if self.failing.take().is_some() {
            info!(session = %self.writer.metadata().session_id, "The store can be written again; taking requests.");
            self.shared.store_failing.store(false, Ordering::Release);
        }
    }

    /// Stops admitting, writes everything admitted, finishes the session.
    /// While the store fails it is tried again every second, until it
    /// works or the recording is asked to stop once more: then the session
    /// is left `active` for `sessions repair`, with what reached the store.
    async fn finish(
        mut self,
        store: &dyn SessionStore,
        reason: StopReason,
        mut stop: watch::Receiver<bool>,
    ) -> Result<RecordingOutcome, tape_session::Error> {
        self.shared.stopping.store(true, Ordering::Release);
        self.shared.store_failing.store(false, Ordering::Release);
        debug!(%reason, "Recording stops; draining admitted requests.");
        // Everything admitted is written: nothing acknowledged is lost.
        self.queue.close();
        let failed_before = self.failing.take();
        let mut retry = tokio::time::interval(STORE_RETRY_INTERVAL);
        retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        retry.tick().await;
        let mut stop_open = true;
        let mut warned = false;
        let finished = loop {
            while let Ok(entry) = self.queue.try_recv() {
                self.held.push_back(entry);
            }
            if self.write_held().await.is_ok() {
                let end_time = now().max(self.writer.metadata().start_time);
                match self.writer.try_finish(end_time, SessionStatus::Completed).await {
                    Ok(metadata) => break Ok(metadata),
                    Err(error) => self.failed(&error),
                }
            }
            let message = self.failing.take().unwrap_or_default();
            if !warned {
                warn!(
                    session = %self.writer.metadata().session_id,
                    "Cannot finish the session while the store fails; trying every second (stop again to give up \
                     and leave it for `sessions repair`): {message}"
                );
                warned = true;
            }
            let give_up = tokio::select! {
                biased;
                changed = stop.changed(), if stop_open => {
                    stop_open = changed.is_ok();
                    stop_open
                }
                _ = retry.tick() => false,
            };
            if give_up {
                break Err(message);
            }
        };
        for ack in self.pending_acks.drain(..) {
            let _ = ack.send(if finished.is_ok() { Ack::Stored } else { Ack::Stopped });
        }
        for mut entry in self.held.drain(..) {
            if let Some(ack) = entry.ack.take() {
                let _ = ack.send(Ack::Stopped);
            }
        }
        let session = self.writer.metadata().session_id.clone();
        let mut metadata = match finished {
            Ok(metadata) => metadata,
            Err(message) => {
                let message = format!("the store cannot be written, and the session is left active: {message}");
                // A joined writer is repaired by itself: the other writers'
                // manifests and blobs are theirs.
                let repair = match self.writer.writer_id() {
                    Some(writer) => format!("otlp-tape sessions repair {session} --writer {writer}"),
                    None => format!("otlp-tape sessions repair {session}"),
                };
                warn!(%session, "The capture gave up: {message}; run `{repair}`.");
                return Ok(RecordingOutcome {
                    metadata: self.writer.metadata().clone(),
                    reason: StopReason::Failed(message),
                    writer: self.writer.writer_id().cloned(),
                    seal: None,
                });
            }
        };
        let writer = self.writer.writer_id().cloned();
        let seal = self.writer.seal().cloned();
        if let Some(writer) = &writer {
            if !self.writer.uncommitted().is_empty() {
                // Another writer may be writing this session: only this
                // writer's repair may touch its blobs.
                warn!(%session, %writer, "Blobs whose commit failed are left as partial blobs; run `otlp-tape sessions repair {session} --writer {writer}`.");
            }
        } else if !self.writer.uncommitted().is_empty() {
            // Blobs whose commit failed are partial blobs in the store:
            // repair lists them, so that the session shows everything.
            match tape_session::repair_session(store, &session, now()).await {
                Ok(_) => metadata = store.read_metadata(&session).await?,
                Err(error) => {
                    warn!(%session, "Cannot list the blobs whose commit failed; run `otlp-tape sessions repair {session}`: {error}");
                }
            }
        }
        if let Some(message) = failed_before {
            debug!(%session, "The store failed while recording, and recovered: {message}");
        }
        Ok(RecordingOutcome { metadata, reason, writer, seal })
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
