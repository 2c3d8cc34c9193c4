//! [`run`]: generating a checked seed into a store, as fast as the machine
//! can or, live, in real time while each request is also sent to an OTLP
//! target; then its phases to ClickHouse.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;
use tape_annotations::{ClickHouseConfig, ClickHouseReport};
use tape_otlp::Signal;
use tape_replay::{Pacer, Progress, ProgressSnapshot, RetryPolicy, SendOutcome, Sender, Speed, Targets};
use tape_seed_generator::{
    Batch, DEFAULT_START, Generator, Params, ParamsError, Pattern, PhaseWindow, format_duration, parameters,
};
use tape_session::{
    Annotation, PhaseEntry, SessionId, SessionMetadata, SessionStatus, SessionStore, SessionType, SessionWriter,
    SignalCounts, Timestamp, WriterOptions, to_jsonl,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::{CheckedSeed, SeedConfig, Start};
use crate::error::SeedError;

/// The `generator` parameter of sessions a seed writes.
pub const GENERATOR: &str = "otlp-tape seed";
/// The parameter set to `true` on sessions written by a live run.
pub const LIVE_PARAMETER: &str = "live";
/// The parameter set to `true` when a live run was stopped before the end:
/// the session holds only the start of what its parameters generate, so it
/// cannot be regenerated.
pub const LIVE_STOPPED_EARLY_PARAMETER: &str = "liveStoppedEarly";
/// Requests in flight to the target in a live run unless
/// [`LiveOptions::concurrency`] says otherwise.
pub const LIVE_CONCURRENCY: u16 = 4;
/// Batches generated ahead of the writer: enough to keep both busy, few
/// enough to bound memory.
const CHANNEL_BATCHES: usize = 16;
/// Requests written but not yet sent, at most, in a live run. One that
/// does not fit is not sent and counts as failed: sending never holds up
/// writing.
const LIVE_QUEUE_REQUESTS: usize = 1024;
/// How long a live run waits, once everything is written, for the requests
/// still queued or in flight; those left count as failed.
const LIVE_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Retries in a live run: a few quick ones, since a request that waits
/// long is no longer live.
const LIVE_RETRY: RetryPolicy = RetryPolicy {
    max_attempts: 3,
    initial_backoff: Duration::from_millis(100),
    max_backoff: Duration::from_secs(1),
    max_elapsed: Duration::from_secs(5),
};

/// A live run (`seed --live`): the session is paced in real time and each
/// request is sent to `targets` as it is written.
pub struct LiveOptions {
    /// Where the requests go.
    pub targets: Targets,
    /// Requests in flight at most (at least 1); default
    /// [`LIVE_CONCURRENCY`].
    pub concurrency: Option<u16>,
    /// Stops the run early; what was written is kept, and the session is
    /// marked as stopped early.
    pub stop: CancellationToken,
    /// Called once the session is created and the run is about to start.
    pub on_start: Option<OnLiveStart>,
}

/// A callback of [`LiveOptions::on_start`].
pub type OnLiveStart = Box<dyn FnOnce(&LiveStart) + Send + Sync>;

/// What a live run is about to do, for a message.
#[derive(Debug, Clone)]
pub struct LiveStart {
    /// The session being written.
    pub session_id: SessionId,
    /// Where the requests go ([`Targets::describe`]).
    pub target: String,
    /// The session's length, such as `30s`.
    pub duration: String,
    /// The pattern's name.
    pub pattern: String,
    /// The session's start on the virtual clock.
    pub start: Timestamp,
}

/// What a seed run wrote: the JSON of `seed --output json` and of a
/// finished seed job of the control API.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SeedSummary {
    /// The generator's parameters, for a reproduce command.
    #[serde(skip)]
    pub params: Params,
    /// How long generating and storing took.
    #[serde(skip)]
    pub elapsed: Duration,
    /// Warnings to show (such as phases not written to ClickHouse); the
    /// session is stored all the same.
    #[serde(skip)]
    pub warnings: Vec<String>,
    /// The new session.
    pub session_id: SessionId,
    /// Its type.
    pub session_type: SessionType,
    /// The store.
    pub store: String,
    /// Where the session is in the store.
    pub location: String,
    /// The pattern's name.
    pub pattern: String,
    /// The seed.
    pub seed: u64,
    /// The session's start.
    pub start: Timestamp,
    /// The session's end.
    pub end: Timestamp,
    /// Its length, such as `30s`.
    pub duration: String,
    /// Traces per second.
    pub rate: f64,
    /// Error rate.
    pub error_rate: f64,
    /// The signals written.
    pub signals: String,
    /// Traces generated; for a live run stopped early, those planned.
    pub traces: u64,
    /// Items written, per signal.
    pub items: SignalCounts,
    /// Requests written, per signal.
    pub requests: SignalCounts,
    /// Bytes stored.
    pub size_bytes: u64,
    /// Blobs stored.
    pub blobs: usize,
    /// The session's content hash.
    pub content_hash: String,
    /// Its phases.
    pub phases: Vec<PhaseEntry>,
    /// What a live run sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live: Option<LiveSummary>,
    /// What was written to ClickHouse, when it is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clickhouse: Option<ClickHouseReport>,
}

/// What a live run sent, per signal.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveSummary {
    /// Where the requests went.
    pub target: String,
    /// Whether the run was stopped before the end.
    pub stopped_early: bool,
    /// Requests the target accepted (wholly or in part).
    pub sent: SignalCounts,
    /// Items in them.
    pub sent_items: SignalCounts,
    /// Items the target rejected in a partial success.
    pub rejected_items: SignalCounts,
    /// Requests that were not delivered: failed after their retries, did
    /// not fit the queue, or were left when the drain timeout ran out.
    pub failed: SignalCounts,
    /// Items in them.
    pub failed_items: SignalCounts,
    /// The last failure, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

impl LiveSummary {
    /// The counts of a live run's sender.
    fn of(target: String, progress: &ProgressSnapshot) -> Self {
        let mut summary = LiveSummary { target, last_error: progress.last_error.clone(), ..LiveSummary::default() };
        for signal in Signal::ALL {
            let counts = progress.signal(signal);
            summary.sent.add(signal, counts.sent_records);
            summary.sent_items.add(signal, counts.sent_items);
            summary.rejected_items.add(signal, counts.rejected_items);
            summary.failed.add(signal, counts.failed_records);
            summary.failed_items.add(signal, counts.failed_items);
        }
        summary
    }
}

/// Generates and stores the session `seed` describes, live when `live` is
/// given (a live run stops on its own token, keeping what it wrote), else
/// until `stop` is cancelled (nothing is kept; the error is then
/// [`SeedError::is_stopped`]); then writes its phases to `clickhouse` when
/// given (a failure there is a warning in the summary, not an error).
pub async fn run(
    store: &dyn SessionStore,
    seed: &CheckedSeed,
    live: Option<LiveOptions>,
    clickhouse: Option<ClickHouseConfig>,
    stop: &CancellationToken,
) -> Result<SeedSummary, SeedError> {
    let mut summary = generate(store, seed, live, stop).await?;
    if let Some(config) = clickhouse {
        let report = push_phases(store, config, &summary.session_id, &mut summary.warnings).await;
        summary.clickhouse = Some(report);
    }
    Ok(summary)
}

/// Generates and stores the session `config` describes, at once (not live,
/// nothing to ClickHouse), as the demo and the benchmarks do.
pub async fn generate_session(store: &dyn SessionStore, config: &SeedConfig) -> Result<SeedSummary, SeedError> {
    let seed = config.validate_for_writing()?;
    run(store, &seed, None, None, &CancellationToken::new()).await
}

/// Pushes the session's phase annotations to ClickHouse; a failure is a
/// warning.
async fn push_phases(
    store: &dyn SessionStore,
    config: ClickHouseConfig,
    id: &SessionId,
    warnings: &mut Vec<String>,
) -> ClickHouseReport {
    let annotations = match tape_annotations::session_annotations(store, id).await {
        Ok(annotations) => annotations,
        Err(error) => {
            warnings.push(format!("warning: the phases of session {id} were not written to ClickHouse: {error:#}"));
            return ClickHouseReport::failed(config.url, format!("{error:#}"));
        }
    };
    let report = tape_annotations::push_and_report(config, id, &annotations).await;
    warnings.extend(report.warning("the phases", id));
    report
}

async fn generate(
    store: &dyn SessionStore,
    seed: &CheckedSeed,
    mut live: Option<LiveOptions>,
    stop: &CancellationToken,
) -> Result<SeedSummary, SeedError> {
    let config = &seed.config;
    let pattern = &seed.pattern;
    let wall_clock = chrono::Utc::now();
    let clock = tokio::time::Instant::now();
    let now = Timestamp::from_datetime(wall_clock).ok_or(SeedError::Clock)?;
    // Whole milliseconds: enough, and easier to read and retype.
    let now_millis = Timestamp::from_unix_nanos(now.unix_millis() * 1_000_000);
    let start = match config.start {
        // Live, the timestamps the target sees are current.
        None if live.is_some() => now_millis,
        None => DEFAULT_START,
        Some(Start::Now) => now_millis,
        Some(Start::At(time)) => time,
    };
    let params = seed.params(config.seed.unwrap_or_else(|| u64::from(rand::random::<u32>())), start);
    let invalid = |problem: ParamsError| SeedError::NotGenerated { pattern: pattern.name.clone(), problem };
    let traces = params.check().map_err(invalid)?;
    let phases: Vec<PhaseWindow> = Generator::new(pattern, params.clone()).map_err(invalid)?.phases();
    let id = config
        .session_id
        .clone()
        .unwrap_or_else(|| SessionId::generate(&format!("seed-{}", pattern.name), now, rand::random()));

    let entries: Vec<PhaseEntry> = phases
        .iter()
        .map(|phase| PhaseEntry {
            name: phase.name.clone(),
            start: phase.start,
            end: phase.end,
            flags: phase.flags.clone(),
            source: None,
            writer: None,
        })
        .collect();
    // Created "at" the session's start, so that the file is the same every time.
    let annotations: Vec<Annotation> = entries
        .iter()
        .zip(&phases)
        .map(|(entry, phase)| Annotation::phase(&id, entry, &phase.description, params.start, GENERATOR))
        .collect();
    let mut metadata = SessionMetadata::new(id.clone(), pattern.session_type, params.start, created_by());
    // Made now, whatever the virtual clock says; not in the content hash,
    // so regeneration still matches.
    metadata.created_at = Some(now);
    metadata.description.clone_from(&config.description);
    metadata.enabled_flags = pattern.flags();
    metadata.parameters = parameters(pattern, &params);
    if live.is_some() {
        metadata.parameters.insert(LIVE_PARAMETER.to_owned(), serde_json::Value::Bool(true));
    }
    metadata.phases = entries;

    let started = Instant::now();
    let mut writer = SessionWriter::create(store, metadata, WriterOptions::default())
        .await
        .map_err(|source| SeedError::Create { id: id.clone(), location: store.location(), source: Box::new(source) })?;
    let mut live_summary = None;
    let written = async {
        let last = match &mut live {
            None => write_generated(&mut writer, Arc::clone(pattern), params.clone(), stop).await?,
            Some(live) => {
                // The session's start is due now when it is now; otherwise
                // when writing starts.
                let origin = match config.start {
                    None | Some(Start::Now) => {
                        let behind = now.unix_nanos().saturating_sub(params.start.unix_nanos());
                        clock.checked_sub(Duration::from_nanos(behind)).unwrap_or(clock)
                    }
                    Some(Start::At(_)) => tokio::time::Instant::now(),
                };
                if let Some(on_start) = live.on_start.take() {
                    on_start(&LiveStart {
                        session_id: id.clone(),
                        target: live.targets.describe(),
                        duration: format_duration(params.duration_nanos),
                        pattern: pattern.name.clone(),
                        start: params.start,
                    });
                }
                let pacer = Pacer::new(params.start.unix_nanos(), origin, Speed::Factor(1.0));
                let (last, summary) = write_live(&mut writer, Arc::clone(pattern), params.clone(), live, pacer).await?;
                if summary.stopped_early {
                    writer
                        .metadata_mut()
                        .parameters
                        .insert(LIVE_STOPPED_EARLY_PARAMETER.to_owned(), serde_json::Value::Bool(true));
                }
                live_summary = Some(summary);
                last
            }
        };
        store
            .write_annotations(&id, Bytes::from(to_jsonl(&annotations)))
            .await
            .map_err(|source| SeedError::Annotations { source: Box::new(source) })?;
        Ok::<_, SeedError>(last)
    }
    .await;
    let last = match written {
        Ok(last) => last,
        Err(error) => {
            // Nothing is left half-written: the partial session goes.
            if let Err(cleanup) = writer.discard().await {
                tracing::warn!(session = %id, "Could not remove the partial session: {cleanup}");
            }
            return Err(SeedError::Failed { id, source: Box::new(error) });
        }
    };
    let stopped_early = live_summary.as_ref().is_some_and(|live| live.stopped_early);
    let end = if stopped_early {
        // What was written ends here.
        last.unwrap_or(params.start).max(params.start)
    } else {
        Timestamp::from_unix_nanos(params.start.unix_nanos() + params.duration_nanos).max(last.unwrap_or_default())
    };
    let metadata = match writer.finish(end, SessionStatus::Completed).await {
        Ok(metadata) => metadata,
        Err(error) => {
            if let Err(cleanup) = store.delete_session(&id).await {
                tracing::warn!(session = %id, "Could not remove the partial session: {cleanup}");
            }
            return Err(SeedError::Failed { id, source: Box::new(SeedError::Finish(Box::new(error))) });
        }
    };
    let elapsed = started.elapsed();
    tracing::debug!(session = %id, seed = params.seed, "Seed session written.");
    Ok(SeedSummary {
        params: params.clone(),
        elapsed,
        warnings: Vec::new(),
        session_id: id,
        session_type: metadata.session_type,
        store: store.location(),
        location: format!("{}/{}", store.location(), metadata.s3_prefix),
        pattern: pattern.name.clone(),
        seed: params.seed,
        start: params.start,
        end,
        duration: format_duration(params.duration_nanos),
        rate: params.rate,
        error_rate: params.error_rate,
        signals: params.signals.to_string(),
        traces,
        items: metadata.item_counts(),
        requests: metadata.request_counts,
        size_bytes: metadata.total_size_bytes,
        blobs: metadata.blobs.len(),
        content_hash: metadata.content_hash.clone(),
        phases: metadata.phases.clone(),
        live: live_summary,
        clickhouse: None,
    })
}

fn created_by() -> String {
    format!("otlp-tape {} seed", env!("CARGO_PKG_VERSION"))
}

/// A generator running on a blocking thread.
pub(crate) struct Producer {
    /// Its batches; generation stops early when this is dropped.
    pub(crate) batches: mpsc::Receiver<Batch>,
    /// The thread.
    pub(crate) thread: tokio::task::JoinHandle<Result<(), ParamsError>>,
    /// Set to stop it before its next trace, however long its current
    /// second of traces is.
    pub(crate) halt: Arc<AtomicBool>,
}

impl Producer {
    /// Stops the generator and waits for its thread.
    async fn stop(self) -> Result<(), SeedError> {
        self.halt.store(true, Ordering::Relaxed);
        drop(self.batches);
        self.thread.await.map_err(|source| SeedError::GeneratorStopped { source })?.map_err(SeedError::Generator)
    }
}

/// Runs the generator on a blocking thread, feeding a bounded channel.
pub(crate) fn spawn_generator(pattern: Arc<Pattern>, params: Params) -> Producer {
    let (sender, batches) = mpsc::channel(CHANNEL_BATCHES);
    let halt = Arc::new(AtomicBool::new(false));
    let stop = Arc::clone(&halt);
    let thread = tokio::task::spawn_blocking(move || {
        for batch in Generator::new(&pattern, params)?.stop_when(stop) {
            if sender.blocking_send(batch).is_err() {
                break;
            }
        }
        Ok(())
    });
    Producer { batches, thread, halt }
}

fn append_error(batch: &Batch) -> impl FnOnce(tape_session::Error) -> SeedError {
    let (signal, receive_time) = (batch.signal, batch.receive_time);
    move |source| SeedError::Append { signal, receive_time, source: Box::new(source) }
}

/// Generates and appends every batch; returns the last receive time.
async fn write_generated(
    writer: &mut SessionWriter<'_>,
    pattern: Arc<Pattern>,
    params: Params,
    stop: &CancellationToken,
) -> Result<Option<Timestamp>, SeedError> {
    let mut producer = spawn_generator(pattern, params);
    let mut last: Option<Timestamp> = None;
    let appended = async {
        loop {
            let batch = tokio::select! {
                biased;
                () = stop.cancelled() => return Err(SeedError::Stopped),
                batch = producer.batches.recv() => match batch {
                    Some(batch) => batch,
                    None => return Ok(()),
                },
            };
            writer
                .append(batch.signal, batch.receive_time, batch.items, &batch.payload)
                .await
                .map_err(append_error(&batch))?;
            last = Some(last.map_or(batch.receive_time, |last| last.max(batch.receive_time)));
        }
    }
    .await;
    // A stop or a failed write stops the generator before its next trace.
    let generated = producer.stop().await;
    appended?;
    generated?;
    Ok(last)
}

/// Generates the session in real time: each batch is due at the pacer's
/// origin plus its offset from the session's start, on Tokio's clock; once
/// due it is written and handed to the sender, which sends it with
/// bounded concurrency while the next one is generated and waits. A stop
/// ends the run between two batches, so what is written is the start of
/// the whole session. Returns the last receive time written and what was
/// sent.
async fn write_live(
    writer: &mut SessionWriter<'_>,
    pattern: Arc<Pattern>,
    params: Params,
    live: &LiveOptions,
    pacer: Pacer,
) -> Result<(Option<Timestamp>, LiveSummary), SeedError> {
    let mut producer = spawn_generator(pattern, params);
    // What the sender did, and the requests that never reached it.
    let progress = Arc::new(Progress::new());
    let (queue, queued) = mpsc::channel(LIVE_QUEUE_REQUESTS);
    let concurrency = usize::from(live.concurrency.unwrap_or(LIVE_CONCURRENCY).max(1));
    let sender = tokio::spawn(send_live(live.targets.clone(), concurrency, queued, Arc::clone(&progress)));
    let mut enqueued = [(0_u64, 0_u64); 3];
    let mut last: Option<Timestamp> = None;
    let mut stopped_early = false;
    let appended = async {
        loop {
            let batch = tokio::select! {
                biased;
                () = live.stop.cancelled() => {
                    stopped_early = true;
                    break;
                }
                batch = producer.batches.recv() => match batch {
                    Some(batch) => batch,
                    None => break,
                },
            };
            tokio::select! {
                biased;
                () = live.stop.cancelled() => {
                    stopped_early = true;
                    break;
                }
                () = pacer.wait(batch.receive_time.unix_nanos()) => {}
            }
            writer
                .append(batch.signal, batch.receive_time, batch.items, &batch.payload)
                .await
                .map_err(append_error(&batch))?;
            last = Some(last.map_or(batch.receive_time, |last| last.max(batch.receive_time)));
            let request = LiveRequest { signal: batch.signal, items: batch.items, payload: Bytes::from(batch.payload) };
            let (records, items) = &mut enqueued[request.signal.index()];
            *records += 1;
            *items += request.items;
            match queue.try_send(request) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(request)) => {
                    let message = format!(
                        "not sent: the send queue was full ({LIVE_QUEUE_REQUESTS} requests), the target is slower than the session"
                    );
                    progress.failed_unsent(request.signal, 1, request.items, message);
                }
                Err(mpsc::error::TrySendError::Closed(request)) => {
                    let message = "not sent: the sender stopped unexpectedly".to_owned();
                    progress.failed_unsent(request.signal, 1, request.items, message);
                }
            }
        }
        Ok::<_, SeedError>(())
    }
    .await;
    // A stop or a failed write stops the generator before its next trace.
    drop(queue);
    let generated = producer.stop().await;
    let abort = sender.abort_handle();
    let drained = tokio::time::timeout(LIVE_DRAIN_TIMEOUT, sender).await.is_ok();
    if !drained {
        abort.abort();
    }
    if !drained {
        // What the sender had not sent when it was stopped.
        let counts = progress.snapshot();
        for signal in Signal::ALL {
            let (records, items) = enqueued[signal.index()];
            let counts = counts.signal(signal);
            let done = counts.sent_records + counts.failed_records;
            let done_items = counts.sent_items + counts.failed_items;
            if records > done {
                progress.failed_unsent(
                    signal,
                    records - done,
                    items.saturating_sub(done_items),
                    format!(
                        "requests were still queued or in flight {}s after the last one was written",
                        LIVE_DRAIN_TIMEOUT.as_secs()
                    ),
                );
            }
        }
    }
    appended?;
    generated?;
    let mut summary = LiveSummary::of(live.targets.describe(), &progress.snapshot());
    summary.stopped_early = stopped_early;
    Ok((last, summary))
}

/// A request of a live run on its way to the target.
struct LiveRequest {
    signal: Signal,
    items: u64,
    payload: Bytes,
}

/// Sends the queued requests through the replay's [`Sender`], at most
/// `concurrency` at a time, each with a few quick retries, counting what
/// became of each into `progress`, until the queue is closed and empty.
async fn send_live(
    targets: Targets,
    concurrency: usize,
    mut queued: mpsc::Receiver<LiveRequest>,
    progress: Arc<Progress>,
) {
    // Never cancelled: a request written is sent, or waited for until the
    // drain timeout.
    let halt = CancellationToken::new();
    let mut sender = Sender::new(&targets, &LIVE_RETRY, &halt, &progress, concurrency);
    let mut open = true;
    // The first failure is a warning; the rest are counted in the summary.
    let mut warned = false;
    while open || !sender.is_idle() {
        tokio::select! {
            Some(completed) = sender.next(), if !sender.is_idle() => {
                if let SendOutcome::Failed(error) = &completed.outcome {
                    if warned {
                        tracing::debug!("{error}");
                    } else {
                        tracing::warn!("{error} (further failures are counted in the summary)");
                        warned = true;
                    }
                }
            }
            next = queued.recv(), if open && sender.has_room() => match next {
                Some(LiveRequest { signal, items, payload }) => sender.send(0, signal, items, payload),
                None => open = false,
            },
        }
    }
}
