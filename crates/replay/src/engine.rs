//! The replay engine: streams a session in receive-time order and sends
//! its records to a target, applying in this order the selection, id
//! remapping, timestamp adjustment, pacing, rate limit, and sending with
//! bounded concurrency.
//!
//! Memory does not grow with the session: a reader task decodes blobs a
//! few records ahead, each record is rewritten on the wire (no protobuf
//! decoding) and at most `concurrency` requests are in flight.

mod progress;
mod selection;
mod sender;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tape_otlp::{IdRemap, Signal, wire};
use tape_session::{BlobEntry, Record, SessionId, SessionMetadata, SessionStore, read_blobs_in_time_order};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use progress::{Position, Progress, ProgressSnapshot, SignalProgress};
pub use selection::{Selected, Selection};
pub use sender::{Completed, SendOutcome, Sender};

use crate::error::ExportError;
use crate::exporter::{ExportOutcome, Exporter};
use crate::pacing::{RateLimiter, Speed};
use crate::retry::RetryPolicy;
use crate::series::ReplaySeries;
use crate::timestamps::TimestampMode;

/// Where a replay sends: an [`Exporter`], or anything that accepts
/// `Export*ServiceRequest` protobuf bytes the same way.
pub trait Sink: Send + Sync {
    /// Sends one request once; see [`Exporter::export`].
    fn export(&self, signal: Signal, payload: Bytes)
    -> impl Future<Output = Result<ExportOutcome, ExportError>> + Send;
}

impl Sink for Exporter {
    fn export(
        &self,
        signal: Signal,
        payload: Bytes,
    ) -> impl Future<Output = Result<ExportOutcome, ExportError>> + Send {
        Exporter::export(self, signal, payload)
    }
}

impl Sink for crate::Targets {
    fn export(
        &self,
        signal: Signal,
        payload: Bytes,
    ) -> impl Future<Output = Result<ExportOutcome, ExportError>> + Send {
        crate::Targets::export(self, signal, payload)
    }
}

/// When trace and span ids are remapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IdRegeneration {
    /// From the second pass of a loop on, so that passes do not repeat
    /// ids; the first pass sends the recorded ids.
    #[default]
    FromSecondPass,
    /// On every pass, the first included.
    Always,
    /// Never: every pass sends the recorded ids.
    Never,
}

/// How a replay runs.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// What part of the session is sent.
    pub selection: Selection,
    /// How timestamps move.
    pub timestamps: TimestampMode,
    /// Pacing: recorded offsets divided by this, or as fast as possible.
    pub speed: Speed,
    /// Items per second at most, smoothly.
    pub rate_limit: Option<f64>,
    /// Requests in flight at most (at least 1); default 32. Records that
    /// come in bursts are sent on time only when a burst fits.
    pub concurrency: usize,
    /// When ids are remapped.
    pub ids: IdRegeneration,
    /// The seed of the id mapping: the same seed and pass give the same
    /// ids on any machine.
    pub id_seed: u64,
    /// Replay the session again and again, each pass continuing the
    /// timeline of the one before, until `duration` or a stop.
    pub looping: bool,
    /// Stop after this many whole passes (counting those of the run a
    /// resume goes on from), with [`EndReason::Finished`]; implies
    /// `looping`. `None`: a loop runs until `duration` or a stop.
    pub passes: Option<u64>,
    /// The longest the replay runs; nothing is sent after it.
    pub duration: Option<Duration>,
    /// Skip a corrupt blob (counting it) instead of stopping there.
    pub skip_corrupt: bool,
    /// How failed exports are retried.
    pub retry: RetryPolicy,
    /// Failed requests tolerated; one more stops the replay. `None`: no
    /// limit.
    pub max_failures: Option<u64>,
    /// How long requests in flight may take to finish after a stop (or a
    /// failure that stops the replay); then they are abandoned. Retry
    /// waits end at once. Default 5 s.
    pub drain_timeout: Duration,
    /// Start here instead of at the beginning (a checkpoint's position).
    pub resume: Option<Position>,
    /// Hash what is sent ([`ReplayOutcome::content_hash`]).
    pub hash_sent: bool,
    /// The schedule's time zero, in unix nanoseconds (`--start-at`): the
    /// selection's first receive time (of pass 0) is due then, each record
    /// at its offset from it over the speed (a pass `k` of a loop `k`
    /// periods later), and nothing goes before it. A record due in the past
    /// goes at once, as a late one does. Timestamps move as of the
    /// record's time on this schedule, not the moment it goes (at `max`
    /// speed: its recorded offset after the start), so replays on several
    /// machines with the same start give every item the same timestamps.
    /// `None`: the first record sent is due at once.
    pub start_at: Option<u64>,
    /// The wall-clock time at the start of the replay, in unix
    /// nanoseconds; `None` reads the system clock. Tests on paused Tokio
    /// time give it, so that the schedule of `start_at` is exact.
    pub started_at_unix_nanos: Option<u64>,
    /// The done position that is on disk (a checkpoint's last write):
    /// `Some` once written, `None` after a write failed. With it, a slot
    /// of the concurrency is freed only when the request sent in it is
    /// done on disk too, so that after a crash (even SIGKILL) at most
    /// `concurrency` delivered requests are not done in the checkpoint.
    /// `None` here: no checkpoint, no wait.
    pub durable: Option<watch::Receiver<Option<Position>>>,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            selection: Selection::default(),
            timestamps: TimestampMode::default(),
            speed: Speed::Factor(1.0),
            rate_limit: None,
            concurrency: 32,
            ids: IdRegeneration::default(),
            id_seed: 0,
            looping: false,
            passes: None,
            duration: None,
            skip_corrupt: false,
            retry: RetryPolicy::default(),
            max_failures: Some(0),
            drain_timeout: Duration::from_secs(5),
            resume: None,
            hash_sent: false,
            start_at: None,
            started_at_unix_nanos: None,
            durable: None,
        }
    }
}

/// Why a replay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// Every selected record was sent (once, or once per pass of
    /// [`ReplayOptions::passes`]).
    Finished,
    /// The duration ran out.
    Duration,
    /// It was stopped (Ctrl-C, SIGTERM, an API call).
    Stopped,
    /// An error stopped it: see [`ReplayOutcome::error`].
    Failed,
}

tape_otlp::named_enum! {
    /// `finished`, `duration`, `stopped` or `failed`.
    EndReason { Finished => "finished", Duration => "duration", Stopped => "stopped", Failed => "failed" }
}

tape_otlp::named_enum! {
    /// `from-second-pass`, `always` or `never`.
    IdRegeneration { FromSecondPass => "from-second-pass", Always => "always", Never => "never" }
}

/// What stopped a replay early.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The session cannot be read: a blob is missing or corrupt. The
    /// message names the blob and, for damage, the byte offset.
    #[error("{}{hint}", chain(source), hint = if matches!(source, tape_session::Error::CorruptBlob { .. }) {
        " (use --skip-corrupt to replay past it)"
    } else {
        ""
    })]
    Read {
        /// What the store said.
        #[source]
        source: tape_session::Error,
    },
    /// More requests failed than allowed.
    #[error("stopped after {failed} failed {}: {last}", if *failed == 1 { "request" } else { "requests" })]
    Failures {
        /// Requests that failed.
        failed: u64,
        /// The last failure.
        last: ExportError,
    },
}

/// An error and its causes, joined by `: `.
fn chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

/// How a replay went.
#[derive(Debug)]
pub struct ReplayOutcome {
    /// Why it ended.
    pub reason: EndReason,
    /// What stopped it, when [`EndReason::Failed`].
    pub error: Option<ReplayError>,
    /// The wall-clock time it started, unix nanoseconds.
    pub started_at_unix_nanos: u64,
    /// How long it ran.
    pub elapsed: Duration,
    /// The counts at the end.
    pub progress: ProgressSnapshot,
    /// This run over time (a resumed replay's earlier runs are not in it).
    pub series: ReplaySeries,
    /// Requests neither sent nor failed when the replay ended: still in
    /// flight when the drain timeout ran out, or waiting for a retry when
    /// it was stopped. A resume sends them again.
    pub abandoned_records: u64,
    /// SHA-256 over what was sent, in the order it was sent (each request
    /// as its signal's name, a NUL byte, its length as 8 bytes big-endian,
    /// and its bytes); with [`ReplayOptions::hash_sent`].
    pub content_hash: Option<String>,
}

/// What a replay would send: from a read of the session without
/// connecting anywhere.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Records that would be sent, per signal (traces, metrics, logs).
    pub records: [u64; 3],
    /// Items in them, per signal.
    pub items: [u64; 3],
    /// Receive time of the first selected record.
    pub first_receive_nanos: Option<u64>,
    /// Receive time of the last selected record.
    pub last_receive_nanos: Option<u64>,
    /// Records whose payload is not a valid request.
    pub invalid_records: u64,
    /// Corrupt blobs met (only with `skip_corrupt`; otherwise the first is
    /// an error).
    pub corrupt_blobs: u64,
}

/// Reads the session as a replay would and says what it would send.
pub async fn plan(
    store: &dyn SessionStore,
    metadata: &SessionMetadata,
    selection: &Selection,
    skip_corrupt: bool,
) -> Result<Plan, ReplayError> {
    let blobs: Vec<BlobEntry> = metadata.blobs.iter().filter(|blob| selection.may_hold(blob)).cloned().collect();
    let mut records = std::pin::pin!(read_blobs_in_time_order(store, &metadata.session_id, &blobs));
    let mut plan = Plan::default();
    while let Some(next) = records.next().await {
        let (signal, record) = match next {
            Ok(next) => next,
            Err(error) if skip_corrupt && is_blob_damage(&error) => {
                plan.corrupt_blobs += 1;
                continue;
            }
            Err(source) => return Err(ReplayError::Read { source }),
        };
        let receive = record.receive_time_unix_nano;
        match selection.apply(signal, receive, record.payload, record.item_count) {
            Selected::Send { items, .. } => {
                plan.records[signal.index()] += 1;
                plan.items[signal.index()] += items;
                plan.first_receive_nanos.get_or_insert(receive);
                plan.last_receive_nanos = Some(receive);
            }
            Selected::Skip => {}
            Selected::Invalid(_) => plan.invalid_records += 1,
        }
    }
    Ok(plan)
}

/// Replays `metadata`'s session from `store` to `sink`, updating
/// `progress` as it goes, until it is done, `options.duration` runs out,
/// `stop` is cancelled, or it fails. It always returns an outcome, with
/// the counts so far.
pub async fn replay<S: Sink>(
    store: Arc<dyn SessionStore>,
    metadata: &SessionMetadata,
    sink: &S,
    options: &ReplayOptions,
    progress: &Progress,
    stop: &CancellationToken,
) -> ReplayOutcome {
    let started = Instant::now();
    let started_at_unix_nanos = options.started_at_unix_nanos.unwrap_or_else(unix_nanos_now);
    let start_at = options.start_at.map(|unix| StartAt::new(unix, started, started_at_unix_nanos));
    progress.start_series(started);
    // Cancelled by a stop, or when a failure stops the replay: either way
    // no request waits to be retried.
    let halt = stop.child_token();
    let mut engine = Engine {
        sender: Sender::new(sink, &options.retry, &halt, progress, options.concurrency),
        options,
        progress,
        stop,
        halt: &halt,
        interrupted: 0,
        started,
        started_at_unix_nanos,
        // The duration runs from the start of the schedule.
        deadline: options.duration.map(|duration| start_at.map_or(started, |start| start.at.max(started)) + duration),
        start_at,
        done: DoneTracker::default(),
        durable: options.durable.clone(),
        undurable: BTreeSet::new(),
        series: wire::SeriesStarts::new(),
        failures: 0,
        error: None,
        hash: None,
    };
    let reason = engine.run(store, metadata).await;
    halt.cancel();
    let abandoned_records = engine.drain().await + engine.interrupted;
    let reason = if engine.error.is_some() { EndReason::Failed } else { reason };
    ReplayOutcome {
        reason,
        error: engine.error,
        started_at_unix_nanos,
        elapsed: started.elapsed(),
        progress: progress.snapshot(),
        series: progress.series(),
        abandoned_records,
        content_hash: engine.hash,
    }
}

/// Why the engine stopped sending before the end of a pass.
type Halt = EndReason;

struct Engine<'a, S: Sink> {
    /// Sends the requests, counting what became of each into `progress`.
    sender: Sender<'a, S>,
    options: &'a ReplayOptions,
    progress: &'a Progress,
    stop: &'a CancellationToken,
    halt: &'a CancellationToken,
    /// Requests whose retry a stop cut short.
    interrupted: u64,
    started: Instant,
    started_at_unix_nanos: u64,
    deadline: Option<Instant>,
    /// The schedule's time zero, with `start_at`.
    start_at: Option<StartAt>,
    done: DoneTracker,
    /// The done position on disk ([`ReplayOptions::durable`]).
    durable: Option<watch::Receiver<Option<Position>>>,
    /// Requests (pass, record) that went out and are done, but not yet in
    /// the position on disk: each holds a slot of the concurrency.
    undurable: BTreeSet<(u64, u64)>,
    /// The start times of the cumulative metric series of this pass.
    series: wire::SeriesStarts,
    failures: u64,
    error: Option<ReplayError>,
    hash: Option<String>,
}

/// Which records of the current pass are done, so that a checkpoint can
/// say exactly which are not: the records past the last one done, and the
/// few before it still open (in flight, or failed past the limit).
#[derive(Debug, Default)]
struct DoneTracker {
    pass: u64,
    /// One past the last record done.
    high: u64,
    /// Records sent and not done, and the ones a resume must still send.
    open: BTreeSet<u64>,
}

impl DoneTracker {
    fn start(&mut self, position: &Position) {
        self.pass = position.pass;
        self.high = position.record;
        self.open = position.pending.iter().copied().collect();
    }

    /// Record `index` is on its way.
    fn dispatch(&mut self, index: u64) {
        self.open.insert(index);
    }

    fn finish(&mut self, index: u64) -> Position {
        self.open.remove(&index);
        self.high = self.high.max(index + 1);
        self.position()
    }

    fn position(&self) -> Position {
        Position { pass: self.pass, record: self.high, pending: self.open.range(..self.high).copied().collect() }
    }
}

impl<S: Sink> Engine<'_, S> {
    async fn run(&mut self, store: Arc<dyn SessionStore>, metadata: &SessionMetadata) -> EndReason {
        let options = self.options;
        let blobs: Vec<BlobEntry> =
            metadata.blobs.iter().filter(|blob| options.selection.may_hold(blob)).cloned().collect();
        let records: u64 = blobs.iter().map(|blob| blob.records).sum();
        let items: u64 = blobs.iter().map(|blob| blob.items).sum();
        self.progress.set_totals(records, items);
        let Some(timeline) = Timeline::of(&blobs, &options.selection, records) else {
            return EndReason::Finished;
        };
        let mut hasher = options.hash_sent.then(Sha256::new);
        let mut limiter = options.rate_limit.map(RateLimiter::new);
        let resume = options.resume.clone().unwrap_or_default();
        // The schedule's origin: the first record sent is due at once.
        let mut origin: Option<(Instant, u128)> = None;
        let mut pass = resume.pass;
        if options.passes.is_some_and(|passes| pass >= passes) {
            // A resume of a replay whose last pass is done.
            return EndReason::Finished;
        }
        let looping = options.looping || options.passes.is_some();
        let reason = loop {
            let start = if pass == resume.pass { resume.clone() } else { Position::start_of(pass) };
            let skip = start.record;
            self.progress.start_pass(pass);
            self.done.start(&start);
            self.series.clear();
            self.progress.set_done(start.clone());
            let remap = match (options.ids, pass) {
                (IdRegeneration::Never, _) | (IdRegeneration::FromSecondPass, 0) => None,
                _ => Some(IdRemap::new(options.id_seed, pass)),
            };
            let mut reader = Reader::spawn(store.clone(), metadata.session_id.clone(), blobs.clone());
            let mut index = 0_u64;
            let mut dispatched = 0_u64;
            let halt = loop {
                let next = match self.next_record(&mut reader).await {
                    Ok(Some(next)) => next,
                    Ok(None) => break None,
                    Err(halt) => break Some(halt),
                };
                let (signal, record) = match next {
                    Ok(next) => next,
                    Err(error) if options.skip_corrupt && is_blob_damage(&error) => {
                        let message = chain(&error);
                        tracing::warn!("Skipping the rest of a damaged blob: {message}");
                        self.progress.corrupt(message);
                        continue;
                    }
                    Err(source) => {
                        self.error = Some(ReplayError::Read { source });
                        break Some(EndReason::Failed);
                    }
                };
                let this = index;
                index += 1;
                self.progress.read(record.item_count);
                if start.is_done(this) {
                    continue;
                }
                let receive = record.receive_time_unix_nano;
                let (payload, items, uncut) =
                    match options.selection.apply(signal, receive, record.payload, record.item_count) {
                        Selected::Send { payload, items, uncut } => (payload, items, uncut),
                        Selected::Skip => {
                            self.finish(this);
                            continue;
                        }
                        Selected::Invalid(error) => {
                            self.invalid(signal, receive, &error);
                            self.finish(this);
                            continue;
                        }
                    };
                // Pacing: the record's offset on the timeline, over the speed.
                let offset = timeline.offset(pass, receive);
                let mut due_at = None;
                // With a start, timestamps move as of the schedule.
                let scheduled = self.start_at.map(|start| start.unix_at(offset, options.speed));
                let due = match (options.speed, self.start_at) {
                    (Speed::Factor(factor), Some(start)) => Some(start.at + scale(offset, factor)),
                    (Speed::Factor(factor), None) => {
                        let (origin_at, origin_offset) = *origin.get_or_insert((Instant::now(), offset));
                        Some(origin_at + scale(offset.saturating_sub(origin_offset), factor))
                    }
                    // As fast as it goes, but not before the start.
                    (Speed::Max, Some(start)) => {
                        if let Err(halt) = self.wait_until(start.at).await {
                            break Some(halt);
                        }
                        None
                    }
                    (Speed::Max, None) => None,
                };
                if let Some(due) = due {
                    // Due after the deadline, or late (a start long past
                    // being caught up with) when the deadline has come.
                    if self.deadline.is_some_and(|deadline| due >= deadline || Instant::now() >= deadline) {
                        break Some(EndReason::Duration);
                    }
                    if let Err(halt) = self.wait_until(due).await {
                        break Some(halt);
                    }
                    due_at = Some(due);
                } else if self.deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                    break Some(EndReason::Duration);
                }
                if let Some(limiter) = &mut limiter
                    && let Err(halt) = self.acquire(limiter, items).await
                {
                    break Some(halt);
                }
                if let Err(halt) = self.wait_for_slot().await {
                    break Some(halt);
                }
                // Timestamps and ids, as of the moment it is sent (or its
                // time on the schedule of a start).
                let send = scheduled.unwrap_or_else(|| self.send_time_nanos());
                let payload = match rewrite(
                    signal,
                    (payload, uncut.as_ref()),
                    options.timestamps,
                    (receive, send),
                    remap.as_ref(),
                    &mut self.series,
                ) {
                    Ok(payload) => payload,
                    Err(error) => {
                        self.invalid(signal, receive, &error);
                        self.finish(this);
                        continue;
                    }
                };
                if let Some(hasher) = &mut hasher {
                    hasher.update(signal.as_str().as_bytes());
                    hasher.update([0]);
                    hasher.update((payload.len() as u64).to_be_bytes());
                    hasher.update(&payload);
                }
                // The lag as sent: after the rate limit and the wait for a slot.
                self.progress
                    .dispatched(due_at.map(|due| Instant::now().saturating_duration_since(due)).unwrap_or_default());
                dispatched += 1;
                self.done.dispatch(this);
                self.sender.send(this, signal, items, payload);
            };
            if let Some(reason) = halt {
                break reason;
            }
            // The pass is read: finish it before the next one starts.
            if let Err(halt) = self.wait_for_in_flight().await {
                break halt;
            }
            self.progress.set_done(Position::start_of(pass + 1));
            if options.passes.is_some_and(|passes| pass + 1 >= passes) {
                break EndReason::Finished;
            }
            // A pass that selected nothing would loop without end.
            if !looping || self.stop.is_cancelled() || (dispatched == 0 && skip == 0) {
                break if self.stop.is_cancelled() { EndReason::Stopped } else { EndReason::Finished };
            }
            pass += 1;
        };
        if let Some(hasher) = hasher {
            self.hash = Some(hex::encode(hasher.finalize()));
        }
        reason
    }
}

impl<S: Sink> Engine<'_, S> {
    /// The next record from the reader, handling completions meanwhile.
    async fn next_record(
        &mut self,
        reader: &mut Reader,
    ) -> Result<Option<Result<(Signal, Record), tape_session::Error>>, Halt> {
        loop {
            tokio::select! {
                biased;
                () = self.stop.cancelled() => return Err(EndReason::Stopped),
                Some(completed) = self.sender.next(), if !self.sender.is_idle() => {
                    self.complete(completed);
                    if self.error.is_some() {
                        return Err(EndReason::Failed);
                    }
                }
                next = reader.records.recv() => return Ok(next),
            }
        }
    }

    /// Waits until `due`, handling completions meanwhile.
    async fn wait_until(&mut self, due: Instant) -> Result<(), Halt> {
        let sleep = tokio::time::sleep_until(due);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                biased;
                () = self.stop.cancelled() => return Err(EndReason::Stopped),
                Some(completed) = self.sender.next(), if !self.sender.is_idle() => {
                    self.complete(completed);
                    if self.error.is_some() {
                        return Err(EndReason::Failed);
                    }
                }
                () = &mut sleep => return Ok(()),
            }
        }
    }

    /// Waits until the rate limit lets `items` more go, handling
    /// completions meanwhile.
    async fn acquire(&mut self, limiter: &mut RateLimiter, items: u64) -> Result<(), Halt> {
        // Booking happens only once the wait is over, so a completion that
        // interrupts the wait loses nothing.
        loop {
            let ready = limiter.ready_at(Instant::now());
            self.wait_until(ready).await?;
            if limiter.try_book(Instant::now(), items) {
                return Ok(());
            }
        }
    }

    /// Waits until fewer than `concurrency` requests are in flight or
    /// done but not yet done on disk ([`ReplayOptions::durable`]).
    async fn wait_for_slot(&mut self) -> Result<(), Halt> {
        let most = self.sender.concurrency() - 1;
        self.wait_until_in_flight_at_most(most).await?;
        let Some(mut durable) = self.durable.take() else { return Ok(()) };
        let waited = self.wait_until_durable(&mut durable, most).await;
        // A checkpoint writer that is gone writes no more: nothing to wait for.
        if !matches!(waited, Ok(false)) {
            self.durable = Some(durable);
        }
        waited.map(|_| ())
    }

    /// Completes requests and follows the position on disk until at most
    /// `most` requests are in flight or not yet done on disk; `false` when
    /// the checkpoint writer has gone.
    async fn wait_until_durable(
        &mut self,
        durable: &mut watch::Receiver<Option<Position>>,
        most: usize,
    ) -> Result<bool, Halt> {
        loop {
            match &*durable.borrow_and_update() {
                // The last write failed (it was warned about): no bound.
                None => self.undurable.clear(),
                Some(position) => self.undurable.retain(|&(pass, index)| {
                    !(pass < position.pass || (pass == position.pass && position.is_done(index)))
                }),
            }
            if self.sender.in_flight() + self.undurable.len() <= most {
                return Ok(true);
            }
            tokio::select! {
                biased;
                () = self.stop.cancelled() => return Err(EndReason::Stopped),
                Some(completed) = self.sender.next(), if !self.sender.is_idle() => {
                    self.complete(completed);
                    if self.error.is_some() {
                        return Err(EndReason::Failed);
                    }
                }
                changed = durable.changed() => if changed.is_err() {
                    self.undurable.clear();
                    return Ok(false);
                }
            }
        }
    }

    /// Waits until no request is in flight.
    async fn wait_for_in_flight(&mut self) -> Result<(), Halt> {
        self.wait_until_in_flight_at_most(0).await
    }

    /// Completes requests until at most `most` are in flight; ends early
    /// on a stop or on a failure that ends the replay.
    async fn wait_until_in_flight_at_most(&mut self, most: usize) -> Result<(), Halt> {
        while self.sender.in_flight() > most {
            tokio::select! {
                biased;
                () = self.stop.cancelled() => return Err(EndReason::Stopped),
                Some(completed) = self.sender.next() => {
                    self.complete(completed);
                    if self.error.is_some() {
                        return Err(EndReason::Failed);
                    }
                }
            }
        }
        Ok(())
    }

    /// The wall-clock time now, on the replay's clock: its start plus
    /// Tokio's elapsed time (so paused-time tests see exact send times).
    fn send_time_nanos(&self) -> u64 {
        let elapsed = u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.started_at_unix_nanos.saturating_add(elapsed)
    }

    /// What the engine makes of a finished request (the sender counted
    /// it): a partial success noted, a failure counted against the limit,
    /// and the record done, unless a failure past the limit stops the
    /// replay.
    fn complete(&mut self, completed: Completed) {
        let Completed { tag: index, signal, items, outcome, .. } = completed;
        match outcome {
            SendOutcome::Interrupted(_) => {
                // Neither sent nor failed: it stays open, for a resume.
                self.interrupted += 1;
                return;
            }
            SendOutcome::Sent(outcome) => {
                if outcome.rejected_items > 0 || outcome.message.is_some() {
                    let message = outcome.message.as_deref().unwrap_or("no message");
                    tracing::debug!(%signal, rejected = outcome.rejected_items, "Partial success: {message}");
                    if outcome.rejected_items > 0 {
                        self.progress.set_error(format!(
                            "the target rejected {} of {items} {} in a request: {message}",
                            outcome.rejected_items,
                            signal.item_noun()
                        ));
                    }
                }
            }
            SendOutcome::Failed(error) => {
                self.failures += 1;
                tracing::debug!("{error}");
                if self.options.max_failures.is_some_and(|allowed| self.failures > allowed) {
                    // A failure past the limit is not done: the done
                    // position stays before it, so a resume sends it again.
                    if self.error.is_none() {
                        self.error = Some(ReplayError::Failures { failed: self.failures, last: error });
                    }
                    self.halt.cancel();
                    return;
                }
            }
        }
        if self.durable.is_some() {
            self.undurable.insert((self.done.pass, index));
        }
        self.finish(index);
    }

    fn finish(&mut self, index: u64) {
        let position = self.done.finish(index);
        self.progress.set_done(position);
    }

    fn invalid(&self, signal: Signal, receive: u64, error: &wire::WireError) {
        let message = format!(
            "a {signal} record received at {} is not a valid request and is not sent: {error}",
            tape_session::Timestamp::from_unix_nanos(receive)
        );
        tracing::warn!("{message}");
        self.progress.invalid(signal, message);
    }

    /// Lets the requests in flight finish, for at most the drain timeout;
    /// returns how many did not.
    async fn drain(&mut self) -> u64 {
        let deadline = Instant::now() + self.options.drain_timeout;
        loop {
            if self.sender.is_idle() {
                return 0;
            }
            tokio::select! {
                Some(completed) = self.sender.next() => self.complete(completed),
                () = tokio::time::sleep_until(deadline) => {
                    let abandoned = self.sender.abandon();
                    tracing::warn!("{abandoned} requests were still in flight after the drain timeout; they are not counted as sent.");
                    return abandoned;
                }
            }
        }
    }
}

/// The session's records on one timeline that each pass of a loop
/// continues.
#[derive(Debug, Clone, Copy)]
struct Timeline {
    first: u64,
    /// How far apart passes start: the session's span plus the mean gap
    /// between its records (1 s for a single record).
    period: u128,
}

impl Timeline {
    fn of(blobs: &[BlobEntry], selection: &Selection, records: u64) -> Option<Timeline> {
        let first = blobs.iter().map(|blob| blob.first_receive_time.unix_nanos()).min()?;
        let last = blobs.iter().map(|blob| blob.last_receive_time.unix_nanos()).max()?;
        let first = selection.from.map_or(first, |from| first.max(from));
        let last = selection.until.map_or(last, |until| last.min(until.saturating_sub(1))).max(first);
        let span = u128::from(last - first);
        let gap = if records > 1 && span > 0 { span / u128::from(records - 1) } else { 1_000_000_000 };
        Some(Timeline { first, period: span + gap })
    }

    /// The offset of a record received at `receive` in pass `pass`.
    fn offset(&self, pass: u64, receive: u64) -> u128 {
        u128::from(receive.saturating_sub(self.first)) + u128::from(pass) * self.period
    }
}

/// The schedule's time zero of a replay with a start.
#[derive(Debug, Clone, Copy)]
struct StartAt {
    /// In unix nanoseconds.
    unix: u64,
    /// On Tokio's clock (the replay's start, when the time is past and
    /// cannot be represented).
    at: Instant,
}

impl StartAt {
    /// `unix` on Tokio's clock, given that the replay started at `started`,
    /// which was `started_unix` on the wall clock.
    fn new(unix: u64, started: Instant, started_unix: u64) -> StartAt {
        let at = if unix >= started_unix {
            started + Duration::from_nanos(unix - started_unix)
        } else {
            started.checked_sub(Duration::from_nanos(started_unix - unix)).unwrap_or(started)
        };
        StartAt { unix, at }
    }

    /// The wall-clock time, in unix nanoseconds, at which a record `offset`
    /// into the timeline is due at `speed` (at `max`: as recorded).
    // At exactly 1x the offset is kept to the nanosecond (a float would
    // round offsets past 104 days); any other factor scales it, the same
    // way in every shard.
    #[allow(clippy::float_cmp, clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    fn unix_at(self, offset: u128, speed: Speed) -> u64 {
        let offset = match speed {
            Speed::Factor(factor) if factor != 1.0 => (offset as f64 / factor) as u128,
            _ => offset,
        };
        u64::try_from(u128::from(self.unix).saturating_add(offset)).unwrap_or(u64::MAX)
    }
}

/// `nanos` of the recording at `factor` times its speed.
fn scale(nanos: u128, factor: f64) -> Duration {
    #[allow(clippy::cast_precision_loss)] // nanoseconds: exact up to 104 days
    Duration::from_secs_f64(nanos as f64 / 1e9 / factor)
}

/// Adjusts timestamps and ids on the wire; the payload is copied only when
/// something changes. `current` moves it as of the newest timestamp of
/// `uncut`, the request it was cut from, when it was. Cumulative metric series keep the start time they
/// were first sent with in this pass (`series`), when timestamps move.
fn rewrite(
    signal: Signal,
    (payload, uncut): (Bytes, Option<&Bytes>),
    mode: TimestampMode,
    (receive, send): (u64, u64),
    remap: Option<&IdRemap>,
    series: &mut wire::SeriesStarts,
) -> Result<Bytes, wire::WireError> {
    let from = match mode {
        TimestampMode::None => None,
        TimestampMode::Relative => Some(receive),
        TimestampMode::Current => wire::newest_timestamp(signal, uncut.unwrap_or(&payload))?,
    };
    let delta = from.map_or(0, |from| {
        let delta = i128::from(send) - i128::from(from);
        i64::try_from(delta).unwrap_or(if delta < 0 { i64::MIN } else { i64::MAX })
    });
    let series_starts = signal == Signal::Metrics && mode != TimestampMode::None;
    if delta == 0 && remap.is_none() && !series_starts {
        return Ok(payload);
    }
    let mut bytes = BytesMut::from(&payload[..]);
    if series_starts {
        wire::rewrite_metrics_in_place(&mut bytes, delta, remap, series)?;
    } else {
        wire::rewrite_in_place(signal, &mut bytes, delta, remap)?;
    }
    Ok(bytes.freeze())
}

/// A task reading the session a few records ahead of the sender, so that
/// decompression runs beside sending; stopped when dropped.
struct Reader {
    records: mpsc::Receiver<Result<(Signal, Record), tape_session::Error>>,
    task: tokio::task::JoinHandle<()>,
}

/// Records read ahead at most.
const READ_AHEAD: usize = 16;

impl Reader {
    fn spawn(store: Arc<dyn SessionStore>, session: SessionId, blobs: Vec<BlobEntry>) -> Reader {
        let (sender, records) = mpsc::channel(READ_AHEAD);
        let task = tokio::spawn(async move {
            let mut stream = std::pin::pin!(read_blobs_in_time_order(store.as_ref(), &session, &blobs));
            while let Some(next) = stream.next().await {
                if sender.send(next).await.is_err() {
                    return;
                }
            }
        });
        Reader { records, task }
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Whether an error is damage to one blob, which `skip_corrupt` skips
/// past (as opposed to a store that cannot be read at all).
fn is_blob_damage(error: &tape_session::Error) -> bool {
    matches!(error, tape_session::Error::CorruptBlob { .. } | tape_session::Error::BlobNotFound { .. })
}

fn unix_nanos_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX))
}
