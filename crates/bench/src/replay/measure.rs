//! The three measurements of `bench replay`.

use std::ffi::OsString;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tape_otlp::Signal;
use tape_replay::{
    EndReason, IdRegeneration, Progress, ReplayOptions, ReplayOutcome, Sink, Speed, TimestampMode, replay,
};
use tape_session::{SessionMetadata, SessionStore, read_session_in_time_order};
use tokio_util::sync::CancellationToken;

use super::receiver::{CountingSink, DiscardingReceiver, TimingSink};
use super::{
    BYTES_PER_GB, MemoryReport, PACING_PATTERN, PacingReport, PacingRun, ReplayBenchConfig, ReplayRun,
    THROUGHPUT_PATTERN, ThroughputReport, generate,
};
use crate::error::ensure;
use crate::system::{child_report, cpu_seconds, peak_memory_bytes, percentile, steal_seconds};
use crate::{Error, Host, Step};

/// The speeds at which pacing is measured.
const PACING_SPEEDS: [f64; 2] = [1.0, 10.0];
/// The session the memory measurement replays, in the directory given to
/// the child process.
pub(super) const MEMORY_SESSION: &str = "bench-memory";
/// The seed of the id mapping.
const ID_SEED: u64 = 42;

/// The options of the replays: relative timestamps and ids remapped on
/// every pass, as a load test would replay, at `speed`.
fn options(speed: Speed, config: &ReplayBenchConfig) -> ReplayOptions {
    ReplayOptions {
        speed,
        timestamps: TimestampMode::Relative,
        ids: IdRegeneration::Always,
        id_seed: ID_SEED,
        concurrency: config.concurrency,
        ..ReplayOptions::default()
    }
}

/// Measurements 1 and 2: replays `metadata`'s session at full speed into
/// a fresh discarding receiver and reports what the receiver counted.
#[allow(clippy::cast_precision_loss)] // rates are for reading
pub(super) async fn measure_replay(
    store: Arc<dyn SessionStore>,
    metadata: SessionMetadata,
    config: &ReplayBenchConfig,
) -> Result<ReplayRun, Error> {
    let receiver = DiscardingReceiver::start().await?;
    let sink = match receiver.exporter(config.gzip) {
        Ok(exporter) => Arc::new(CountingSink { exporter, payload_bytes: AtomicU64::new(0) }),
        Err(error) => {
            let _ = receiver.stop().await;
            return Err(error);
        }
    };
    let (cpu_before, steal_before) = (cpu_seconds(), steal_seconds());
    let outcome = spawn_replay(store, metadata, Arc::clone(&sink), options(Speed::Max, config)).await;
    let cpu_seconds = cpu_before.zip(cpu_seconds()).map(|(before, after)| after - before);
    let stolen = steal_before.zip(steal_seconds()).map(|(before, after)| after - before);
    let payload_bytes = sink.payload_bytes.load(Ordering::Relaxed);
    // The exporter's connection goes before the receiver stops.
    drop(sink);
    let counts = receiver.stop().await.map(|stats| stats.snapshot());
    let outcome = outcome?;
    let counts = counts?;
    if let Some(source) = outcome.error {
        return Err(Error::Replay { context: "the replay being measured failed".to_owned(), source });
    }
    let seconds = outcome.elapsed.as_secs_f64();
    let total = counts.total();
    let progress = &outcome.progress;
    Ok(ReplayRun {
        end: outcome.reason.as_str().to_owned(),
        seconds,
        received_requests: total.ignored_requests,
        received_spans: counts.traces.ignored_items,
        received_items: total.ignored_items,
        rejected_requests: total.rejected + counts.unrouted,
        failed_requests: progress.traces.failed_records
            + progress.metrics.failed_records
            + progress.logs.failed_records,
        payload_bytes,
        spans_per_second: counts.traces.ignored_items as f64 / seconds,
        items_per_second: total.ignored_items as f64 / seconds,
        requests_per_second: total.ignored_requests as f64 / seconds,
        mib_per_second: payload_bytes as f64 / seconds / (1024.0 * 1024.0),
        cpu_seconds,
        steal_cpus: stolen.map(|stolen| stolen / seconds),
        peak_memory_bytes: peak_memory_bytes(),
    })
}

/// Runs the replay on a task of its own, so that it runs on a worker
/// thread of the runtime like the receiver and the exporter.
async fn spawn_replay<S: Sink + 'static>(
    store: Arc<dyn SessionStore>,
    metadata: SessionMetadata,
    sink: Arc<S>,
    options: ReplayOptions,
) -> Result<ReplayOutcome, Error> {
    tokio::spawn(async move {
        let (progress, stop) = (Progress::default(), CancellationToken::new());
        replay(store, &metadata, sink.as_ref(), &options, &progress, &stop).await
    })
    .await
    .map_err(|source| Error::Task { context: "the replay being measured stopped unexpectedly".to_owned(), source })
}

/// Measurement 2: generates a session of at least `memoryGb` of payload
/// (from the throughput session's bytes per second of virtual time, with
/// a margin, longer again if it falls short), then replays it in a child
/// process (`--replay-only`) so that the peak memory measured is the
/// replay's and not the generation's.
#[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)] // sizes and durations are far from the limits
pub(super) async fn measure_memory(
    host: &impl Host,
    dir: &Path,
    store: &Arc<dyn SessionStore>,
    throughput: &ThroughputReport,
    config: &ReplayBenchConfig,
) -> Result<MemoryReport, Error> {
    let target = (config.memory_gb * BYTES_PER_GB).ceil() as u64;
    let bytes_per_second =
        throughput.session.uncompressed_bytes as f64 / Duration::from_nanos(config.duration_nanos).as_secs_f64();
    ensure(bytes_per_second > 0.0, || {
        "the throughput session holds no payload, so the memory session cannot be sized".to_owned()
    })?;
    let mut seconds = (target as f64 / bytes_per_second * 1.03).ceil().max(1.0);
    let session = loop {
        host.step(Step::GeneratingMemory {
            bench: "replay",
            seconds,
            pattern: THROUGHPUT_PATTERN,
            target_bytes: target,
        });
        let duration = Duration::from_secs_f64(seconds).as_nanos() as u64;
        let (session, metadata) =
            generate(host, store.as_ref(), THROUGHPUT_PATTERN, MEMORY_SESSION, duration, config).await?;
        if session.uncompressed_bytes >= target {
            break session;
        }
        // Short of the target: longer, in proportion and a little more.
        seconds = (seconds * target as f64 / session.uncompressed_bytes.max(1) as f64 * 1.03).ceil();
        store.delete_session(&metadata.session_id).await.map_err(Error::session("cannot delete the memory session"))?;
    };
    let generation_peak_memory_bytes = peak_memory_bytes();
    host.step(Step::ReplayingMemory { payload_bytes: session.uncompressed_bytes });
    let replay = replay_in_child(dir, config).await?;
    Ok(MemoryReport { target_bytes: target, session, generation_peak_memory_bytes, replay })
}

/// Runs `otlp-tape bench replay --replay-only DIR` (this process's own
/// program) and reads its report.
async fn replay_in_child(dir: &Path, config: &ReplayBenchConfig) -> Result<ReplayRun, Error> {
    let mut args: Vec<OsString> =
        ["--quiet", "--output", "json", "bench", "replay", "--replay-only"].map(Into::into).into();
    args.extend([dir.as_os_str().to_owned(), "--concurrency".into(), config.concurrency.to_string().into()]);
    if config.gzip {
        args.push("--gzip".into());
    }
    child_report(args, "the replay").await
}

/// A record of the pacing session, as read.
#[derive(Debug, Clone, Copy)]
struct Scheduled {
    signal: Signal,
    receive_nanos: u64,
    bytes: usize,
}

/// Measurement 3: a `payment-failure` session replayed at each of
/// [`PACING_SPEEDS`].
pub(super) async fn measure_pacing(
    host: &impl Host,
    store: &Arc<dyn SessionStore>,
    config: &ReplayBenchConfig,
) -> Result<PacingReport, Error> {
    host.step(Step::Generating { bench: "replay", pattern: PACING_PATTERN, measurement: "pacing" });
    let (session, metadata) =
        generate(host, store.as_ref(), PACING_PATTERN, "bench-pacing", config.pacing_duration_nanos, config).await?;
    // The schedule: what the engine reads, in the order it reads it.
    let schedule: Vec<Scheduled> = read_session_in_time_order(store.as_ref(), &metadata, |_| true)
        .map(|next| {
            next.map(|(signal, record)| Scheduled {
                signal,
                receive_nanos: record.receive_time_unix_nano,
                bytes: record.payload.len(),
            })
        })
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .map_err(Error::session("cannot read the pacing session"))?;
    let mut speeds = Vec::with_capacity(PACING_SPEEDS.len());
    for speed in PACING_SPEEDS {
        host.step(Step::ReplayingPacing {
            requests: schedule.len(),
            speed,
            seconds: Duration::from_nanos(config.pacing_duration_nanos).as_secs_f64() / speed,
        });
        speeds.push(measure_pacing_at(Arc::clone(store), &metadata, &schedule, session.items, speed, config).await?);
    }
    Ok(PacingReport { session, speeds })
}

/// Replays the pacing session at `speed` and compares each dispatch with
/// its schedule. The engine dispatches records in the order it reads them,
/// and rewriting timestamps and ids keeps a payload's length, so the n-th
/// dispatch is the n-th record: its signal and length are checked.
#[allow(clippy::cast_precision_loss)] // nanoseconds as milliseconds, for reading
async fn measure_pacing_at(
    store: Arc<dyn SessionStore>,
    metadata: &SessionMetadata,
    schedule: &[Scheduled],
    items: u64,
    speed: f64,
    config: &ReplayBenchConfig,
) -> Result<PacingRun, Error> {
    let receiver = DiscardingReceiver::start().await?;
    let sink = match receiver.exporter(config.gzip) {
        Ok(exporter) => Arc::new(TimingSink { exporter, dispatches: Mutex::new(Vec::with_capacity(schedule.len())) }),
        Err(error) => {
            let _ = receiver.stop().await;
            return Err(error);
        }
    };
    let steal_before = steal_seconds();
    let outcome = spawn_replay(store, metadata.clone(), Arc::clone(&sink), options(Speed::Factor(speed), config)).await;
    let stolen = steal_before.zip(steal_seconds()).map(|(before, after)| after - before);
    let dispatches = std::mem::take(
        &mut *sink.dispatches.lock().map_err(|_| Error::Measurement("a dispatch was not recorded".to_owned()))?,
    );
    drop(sink);
    let counts = receiver.stop().await.map(|stats| stats.snapshot());
    let outcome = outcome?;
    let counts = counts?;
    if let Some(source) = outcome.error {
        return Err(Error::Replay { context: format!("the replay at {speed}x failed"), source });
    }
    ensure(dispatches.len() == schedule.len(), || {
        format!(
            "the replay at {speed}x dispatched {} requests for {} records (retries?), so dispatches cannot be matched with the schedule",
            dispatches.len(),
            schedule.len()
        )
    })?;
    let (Some(first_dispatch), Some(first_scheduled)) = (dispatches.first(), schedule.first()) else {
        return Err(Error::Measurement("the pacing session holds no records".to_owned()));
    };
    let mut lateness = Vec::with_capacity(dispatches.len());
    for (number, (dispatch, scheduled)) in dispatches.iter().zip(schedule).enumerate() {
        ensure(dispatch.signal == scheduled.signal && dispatch.bytes == scheduled.bytes, || {
            format!(
                "dispatch {number} at {speed}x is a {} request of {} bytes, but record {number} is a {} request of {} bytes: the dispatches are not in the order of the records",
                dispatch.signal, dispatch.bytes, scheduled.signal, scheduled.bytes
            )
        })?;
        let actual = dispatch.at.duration_since(first_dispatch.at).as_nanos() as f64;
        let due = scheduled.receive_nanos.saturating_sub(first_scheduled.receive_nanos) as f64 / speed;
        lateness.push((actual - due) / 1e6);
    }
    lateness.sort_unstable_by(f64::total_cmp);
    let last = dispatches.last().map_or(first_dispatch.at, |dispatch| dispatch.at);
    let received_items = counts.total().ignored_items;
    Ok(PacingRun {
        speed,
        requests: dispatches.len() as u64,
        seconds: last.duration_since(first_dispatch.at).as_secs_f64(),
        p50_ms: percentile(&lateness, 0.50),
        p99_ms: percentile(&lateness, 0.99),
        max_ms: percentile(&lateness, 1.0),
        min_ms: lateness.first().copied().unwrap_or_default(),
        steal_cpus: stolen.map(|stolen| stolen / outcome.elapsed.as_secs_f64()),
        received_items,
        all_received: outcome.reason == EndReason::Finished
            && received_items == items
            && counts.total().ignored_requests == schedule.len() as u64,
    })
}
