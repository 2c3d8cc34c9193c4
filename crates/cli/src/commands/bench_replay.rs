//! `otlp-tape bench replay`: how fast, how lean and how punctual a replay
//! is, sending over OTLP/gRPC on loopback to a receiver in the same process
//! that acknowledges, counts and discards (the capture's receiver with no
//! recorder), so that the receiver's CPU is part of the measurement.
//!
//! - **throughput:** a `high-load` seed session replayed at full speed;
//! - **memory:** a session of at least `--memory-gb` of payload replayed
//!   the same way in a child process, whose peak resident memory is then
//!   the replay's own and not the generation's;
//! - **pacing:** a `payment-failure` seed session replayed at 1x and 10x,
//!   each request's dispatch compared with its schedule.
//!
//! Sessions go to a temporary directory that is removed afterwards.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, anyhow, bail, ensure};
use bytes::Bytes;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tape_capture::{DEFAULT_MAX_REQUEST_BYTES, Intake, Stats};
use tape_otlp::{Signal, SignalSet};
use tape_replay::{
    Compression, EndReason, ExportError, ExportOutcome, Exporter, ExporterConfig, IdRegeneration, Progress, Protocol,
    ReplayOptions, ReplayOutcome, Sink, Speed, TimestampMode, replay,
};
use tape_session::{SessionId, SessionMetadata, SessionStore, read_session_in_time_order};
use tape_store::LocalStore;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::cli::{BenchReplayArgs, LiveArgs, OutputFormat, SeedArgs};
use crate::commands::bench::{cpu_seconds, peak_memory_bytes};
use crate::commands::seed::{self, SeedSummary};
use crate::output::{human_bytes, note, print_json};

/// The pattern of the throughput and memory sessions.
const THROUGHPUT_PATTERN: &str = "high-load";
/// The pattern of the pacing session.
const PACING_PATTERN: &str = "payment-failure";
/// The speeds at which pacing is measured.
const PACING_SPEEDS: [f64; 2] = [1.0, 10.0];
/// The session the memory measurement replays, in the directory given to
/// the child process.
const MEMORY_SESSION: &str = "bench-memory";
/// `--memory-gb` counts in GB of 10^9 bytes.
const BYTES_PER_GB: f64 = 1e9;
/// The seed of the id mapping.
const ID_SEED: u64 = 42;
/// How long the receiver may take to stop once the replay is over.
const RECEIVER_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// What `bench replay` measured.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ReplayBench {
    /// Requests in flight at most.
    concurrency: usize,
    /// Compression of the requests on the wire: `gzip` or `none`.
    request_compression: &'static str,
    throughput: ThroughputReport,
    /// `None` with `--memory-gb 0`.
    memory: Option<MemoryReport>,
    /// `None` with `--pacing-duration 0`.
    pacing: Option<PacingReport>,
    cpus: usize,
}

/// A seed session generated for a measurement.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SessionFacts {
    pattern: String,
    duration: String,
    rate: f64,
    spans: u64,
    /// Spans, data points and log records.
    items: u64,
    /// Records: one request each when replayed.
    requests: u64,
    /// Bytes of the records' frames before compression, as the metadata's
    /// blobs count them (the payload and a few bytes of framing a record).
    uncompressed_bytes: u64,
    /// Bytes stored (gzip).
    stored_bytes: u64,
    generation_seconds: f64,
}

impl SessionFacts {
    #[allow(clippy::needless_pass_by_value)] // the summary is consumed
    fn new(summary: SeedSummary, metadata: &SessionMetadata, generation: Duration) -> Self {
        SessionFacts {
            pattern: summary.pattern,
            duration: summary.duration,
            rate: summary.rate,
            spans: summary.items.traces,
            items: summary.items.total(),
            requests: summary.requests.total(),
            uncompressed_bytes: uncompressed_bytes(metadata),
            stored_bytes: summary.size_bytes,
            generation_seconds: generation.as_secs_f64(),
        }
    }
}

/// Measurement 1: a session replayed at full speed.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ThroughputReport {
    session: SessionFacts,
    replay: ReplayRun,
}

/// Measurement 2: a large session replayed at full speed in a child
/// process, whose peak memory is the replay's.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct MemoryReport {
    /// `--memory-gb` in bytes: the session holds at least this much.
    target_bytes: u64,
    session: SessionFacts,
    /// Peak resident memory of this process after generating the sessions
    /// and replaying the throughput session (not the replay below).
    generation_peak_memory_bytes: Option<u64>,
    /// The replay, in a child process (receiver included), with its peak
    /// memory.
    replay: ReplayRun,
}

/// Measurement 3: how closely dispatches follow the recorded schedule.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PacingReport {
    session: SessionFacts,
    speeds: Vec<PacingRun>,
}

/// A session replayed at full speed into the discarding receiver, and what
/// the receiver counted.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReplayRun {
    /// `finished`, unless the replay stopped early.
    end: String,
    /// The replay's own elapsed time.
    seconds: f64,
    /// Requests, spans and items the receiver acknowledged and counted.
    received_requests: u64,
    received_spans: u64,
    received_items: u64,
    /// Requests the receiver refused.
    rejected_requests: u64,
    /// Requests the replay gave up on.
    failed_requests: u64,
    /// Protobuf bytes handed to the exporter (before any gzip).
    payload_bytes: u64,
    spans_per_second: f64,
    items_per_second: f64,
    requests_per_second: f64,
    /// MiB of protobuf per second.
    mib_per_second: f64,
    /// CPU time of the process over the replay (receiver included).
    #[serde(skip_serializing_if = "Option::is_none")]
    cpu_seconds: Option<f64>,
    /// CPUs of this machine that the hypervisor gave to others over the
    /// replay (`steal` in `/proc/stat`), on average: 0 on bare metal.
    #[serde(skip_serializing_if = "Option::is_none")]
    steal_cpus: Option<f64>,
    /// Peak resident memory of the process when the replay ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    peak_memory_bytes: Option<u64>,
}

/// The dispatches of one pacing replay against their schedule.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PacingRun {
    speed: f64,
    requests: u64,
    /// From the first dispatch to the last.
    seconds: f64,
    /// How late each request was dispatched against its schedule, measured
    /// from the first dispatch: (dispatch − first dispatch) − (receive −
    /// first receive) / speed. Negative is early.
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    min_ms: f64,
    /// CPUs given to others by the hypervisor over the replay, on average.
    #[serde(skip_serializing_if = "Option::is_none")]
    steal_cpus: Option<f64>,
    received_items: u64,
    /// Every request dispatched once and counted by the receiver.
    all_received: bool,
}

/// `bench replay`
pub async fn run(args: &BenchReplayArgs, format: OutputFormat) -> anyhow::Result<ExitCode> {
    ensure!(args.concurrency > 0, "--concurrency must be at least 1");
    ensure!(args.duration > 0, "--duration must be more than zero");
    ensure!(
        args.memory_gb.is_finite() && args.memory_gb >= 0.0,
        "--memory-gb is {}; expected a number of GB (10^9 bytes), or 0 to skip the memory measurement",
        args.memory_gb
    );
    if let Some(rate) = args.rate {
        ensure!(rate.is_finite() && rate > 0.0, "--rate is {rate}; expected a positive number of traces per second");
    }
    if let Some(dir) = &args.replay_only {
        return replay_only(dir, args).await;
    }
    let dir = tempfile::Builder::new()
        .prefix("otlp-tape-bench-")
        .tempdir()
        .context("cannot create a temporary directory for the benchmark sessions")?;
    let store: Arc<dyn SessionStore> = Arc::new(LocalStore::new(dir.path()));

    note(format!("bench replay: generating {THROUGHPUT_PATTERN} for the throughput measurement..."));
    let (session, metadata) =
        generate(store.as_ref(), THROUGHPUT_PATTERN, "bench-throughput", args.duration, args).await?;
    note(format!(
        "bench replay: replaying {} spans at full speed, {} requests in flight...",
        session.spans, args.concurrency
    ));
    let replay = measure_replay(Arc::clone(&store), metadata, args).await?;
    // Its blobs are not needed any more.
    store.delete_session(&session_id("bench-throughput")?).await.context("cannot delete the throughput session")?;
    let throughput = ThroughputReport { session, replay };

    let memory =
        if args.memory_gb > 0.0 { Some(measure_memory(dir.path(), &store, &throughput, args).await?) } else { None };
    let pacing = if args.pacing_duration > 0 { Some(measure_pacing(&store, args).await?) } else { None };

    let report = ReplayBench {
        concurrency: args.concurrency,
        request_compression: if args.gzip { "gzip" } else { "none" },
        throughput,
        memory,
        pacing,
        cpus: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
    };
    if format == OutputFormat::Json {
        print_json(&report)?;
    } else {
        print_report(&report);
    }
    let problems = problems(&report);
    if !problems.is_empty() {
        bail!("the receiver did not count everything that was replayed: {}", problems.join("; "));
    }
    Ok(ExitCode::SUCCESS)
}

/// The checks that fail the benchmark: every request, span and item of
/// each session acknowledged and counted by the receiver.
fn problems(report: &ReplayBench) -> Vec<String> {
    let mut problems = Vec::new();
    let mut check = |what: &str, session: &SessionFacts, replay: &ReplayRun| {
        if replay.end != EndReason::Finished.as_str() {
            problems.push(format!("the {what} replay ended early ({})", replay.end));
        }
        if replay.received_spans != session.spans
            || replay.received_items != session.items
            || replay.received_requests != session.requests
        {
            problems.push(format!(
                "{what}: the receiver counted {} of {} spans, {} of {} items, {} of {} requests",
                replay.received_spans,
                session.spans,
                replay.received_items,
                session.items,
                replay.received_requests,
                session.requests
            ));
        }
    };
    check("throughput", &report.throughput.session, &report.throughput.replay);
    if let Some(memory) = &report.memory {
        check("memory", &memory.session, &memory.replay);
    }
    if let Some(pacing) = &report.pacing {
        for run in pacing.speeds.iter().filter(|run| !run.all_received) {
            problems.push(format!(
                "pacing at {}x: the receiver counted {} of {} items",
                run.speed, run.received_items, pacing.session.items
            ));
        }
    }
    problems
}

#[allow(clippy::cast_precision_loss)] // sizes are for reading
fn print_report(report: &ReplayBench) {
    println!(
        "bench replay: OTLP/gRPC on 127.0.0.1 into a discarding receiver in the process, {} requests in flight, requests {}, on {} CPUs",
        report.concurrency,
        if report.request_compression == "none" { "not compressed" } else { "gzip" },
        report.cpus
    );
    let throughput = &report.throughput;
    println!("  throughput: {}", describe_session(&throughput.session));
    println!("    replayed at full speed, relative timestamps, ids remapped: {}", describe_run(&throughput.replay));
    println!("    {}", describe_counts(&throughput.session, &throughput.replay));
    if let Some(memory) = &report.memory {
        println!(
            "  memory: at least {:.2} GB of payload: {}",
            memory.target_bytes as f64 / BYTES_PER_GB,
            describe_session(&memory.session)
        );
        println!("    replayed in a child process, as above: {}", describe_run(&memory.replay));
        println!("    {}", describe_counts(&memory.session, &memory.replay));
        match memory.replay.peak_memory_bytes {
            Some(bytes) => {
                println!("    peak memory of the replay (resident, receiver included): {}", human_bytes(bytes));
            }
            None => println!("    peak memory: not available on this system"),
        }
        if let Some(bytes) = memory.generation_peak_memory_bytes {
            println!("    (generation and the throughput replay peaked at {} in this process)", human_bytes(bytes));
        }
    }
    if let Some(pacing) = &report.pacing {
        println!("  pacing: {}", describe_session(&pacing.session));
        for run in &pacing.speeds {
            let steal = run.steal_cpus.map_or_else(String::new, |cpus| format!(", {cpus:.2} CPUs stolen by the host"));
            println!(
                "    {}x: {} requests over {:.1} s, dispatch against schedule: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (earliest {:.2} ms); {}{steal}",
                run.speed,
                run.requests,
                run.seconds,
                run.p50_ms,
                run.p99_ms,
                run.max_ms,
                run.min_ms,
                if run.all_received { "all received" } else { "NOT all received" }
            );
        }
    }
}

fn describe_session(session: &SessionFacts) -> String {
    format!(
        "{} {} at {} traces/s: {} spans, {} items in {} requests, {} of payload ({} stored), generated in {:.2} s",
        session.pattern,
        session.duration,
        session.rate,
        session.spans,
        session.items,
        session.requests,
        human_bytes(session.uncompressed_bytes),
        human_bytes(session.stored_bytes),
        session.generation_seconds
    )
}

fn describe_run(run: &ReplayRun) -> String {
    let cpu = run.cpu_seconds.map_or_else(String::new, |seconds| format!("; CPU {seconds:.2} s"));
    let steal = run.steal_cpus.map_or_else(String::new, |cpus| format!(", {cpus:.2} CPUs stolen by the host"));
    format!(
        "{:.2} s, {:.0} spans/s, {:.0} items/s, {:.0} requests/s, {:.1} MiB/s{cpu}{steal}",
        run.seconds, run.spans_per_second, run.items_per_second, run.requests_per_second, run.mib_per_second
    )
}

fn describe_counts(session: &SessionFacts, run: &ReplayRun) -> String {
    format!(
        "the receiver counted {} of {} spans, {} of {} items, {} of {} requests; {} refused, {} failed",
        run.received_spans,
        session.spans,
        run.received_items,
        session.items,
        run.received_requests,
        session.requests,
        run.rejected_requests,
        run.failed_requests
    )
}

/// Generates a seed session of `pattern` with id `id` into `store`, as
/// `otlp-tape seed` does, and reads back its metadata.
async fn generate(
    store: &dyn SessionStore,
    pattern: &str,
    id: &str,
    duration_nanos: u64,
    args: &BenchReplayArgs,
) -> anyhow::Result<(SessionFacts, SessionMetadata)> {
    let id = session_id(id)?;
    let seed_args = SeedArgs {
        pattern: pattern.to_owned(),
        duration: Some(duration_nanos),
        preset: None,
        rate: if pattern == THROUGHPUT_PATTERN { args.rate } else { None },
        error_rate: None,
        seed: Some(args.seed),
        start: None,
        signals: SignalSet::ALL,
        session_id: Some(id.clone()),
        description: Some("otlp-tape bench replay".to_owned()),
        live: LiveArgs::default(),
        clickhouse: crate::cli::ClickHouseArgs::default(),
    };
    let (summary, elapsed) = seed::generate(store, &seed_args).await?;
    let metadata =
        store.read_metadata(&id).await.with_context(|| format!("cannot read the metadata of session {id}"))?;
    Ok((SessionFacts::new(summary, &metadata, elapsed), metadata))
}

fn session_id(id: &str) -> anyhow::Result<SessionId> {
    id.parse().map_err(|error| anyhow!("{error}"))
}

fn uncompressed_bytes(metadata: &SessionMetadata) -> u64 {
    metadata.blobs.iter().map(|blob| blob.uncompressed_bytes).sum()
}

/// Measurement 2: generates a session of at least `--memory-gb` of
/// payload (from the throughput session's bytes per second of virtual
/// time, with a margin, longer again if it falls short), then replays it
/// in a child process (`--replay-only`) so that the peak memory measured
/// is the replay's and not the generation's.
#[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)] // sizes and durations are far from the limits
async fn measure_memory(
    dir: &Path,
    store: &Arc<dyn SessionStore>,
    throughput: &ThroughputReport,
    args: &BenchReplayArgs,
) -> anyhow::Result<MemoryReport> {
    let target = (args.memory_gb * BYTES_PER_GB).ceil() as u64;
    let bytes_per_second =
        throughput.session.uncompressed_bytes as f64 / Duration::from_nanos(args.duration).as_secs_f64();
    ensure!(bytes_per_second > 0.0, "the throughput session holds no payload, so the memory session cannot be sized");
    let mut seconds = (target as f64 / bytes_per_second * 1.03).ceil().max(1.0);
    let session = loop {
        note(format!(
            "bench replay: generating {} s of {THROUGHPUT_PATTERN} for at least {} of payload...",
            seconds,
            human_bytes(target)
        ));
        let duration = Duration::from_secs_f64(seconds).as_nanos() as u64;
        let (session, metadata) = generate(store.as_ref(), THROUGHPUT_PATTERN, MEMORY_SESSION, duration, args).await?;
        if session.uncompressed_bytes >= target {
            break session;
        }
        // Short of the target: longer, in proportion and a little more.
        seconds = (seconds * target as f64 / session.uncompressed_bytes.max(1) as f64 * 1.03).ceil();
        store.delete_session(&metadata.session_id).await.context("cannot delete the memory session")?;
    };
    let generation_peak_memory_bytes = peak_memory_bytes();
    note(format!(
        "bench replay: replaying {} of payload in a child process to measure its peak memory...",
        human_bytes(session.uncompressed_bytes)
    ));
    let replay = replay_in_child(dir, args).await?;
    Ok(MemoryReport { target_bytes: target, session, generation_peak_memory_bytes, replay })
}

/// Runs `otlp-tape bench replay --replay-only DIR` and reads its report.
async fn replay_in_child(dir: &Path, args: &BenchReplayArgs) -> anyhow::Result<ReplayRun> {
    let program = std::env::current_exe().context("cannot find this program to run the replay in a child process")?;
    let mut command = std::process::Command::new(program);
    command
        .args(["--quiet", "--output", "json", "bench", "replay", "--replay-only"])
        .arg(dir)
        .args(["--concurrency", &args.concurrency.to_string()])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit());
    if args.gzip {
        command.arg("--gzip");
    }
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .context("the child process's waiter stopped unexpectedly")?
        .context("cannot run the replay in a child process")?;
    ensure!(output.status.success(), "the replay in a child process failed ({}); its error is above", output.status);
    serde_json::from_slice(&output.stdout).context("cannot read the report of the replay in a child process")
}

/// `bench replay --replay-only DIR`: the child process of the memory
/// measurement. Replays session `bench-memory` of the local store in `DIR`
/// as the throughput measurement does and prints its report as JSON.
async fn replay_only(dir: &Path, args: &BenchReplayArgs) -> anyhow::Result<ExitCode> {
    let store: Arc<dyn SessionStore> = Arc::new(LocalStore::new(dir));
    let id = session_id(MEMORY_SESSION)?;
    let metadata =
        store.read_metadata(&id).await.with_context(|| format!("cannot read session {id} in {}", dir.display()))?;
    let run = measure_replay(store, metadata, args).await?;
    print_json(&run)?;
    Ok(ExitCode::SUCCESS)
}

/// The options of the full-speed replays: relative timestamps and ids
/// remapped on every pass, as a load test would replay.
fn full_speed_options(args: &BenchReplayArgs) -> ReplayOptions {
    ReplayOptions {
        speed: Speed::Max,
        timestamps: TimestampMode::Relative,
        ids: IdRegeneration::Always,
        id_seed: ID_SEED,
        concurrency: args.concurrency,
        ..ReplayOptions::default()
    }
}

/// Measurements 1 and 2: replays `metadata`'s session at full speed into
/// a fresh discarding receiver and reports what the receiver counted.
#[allow(clippy::cast_precision_loss)] // rates are for reading
async fn measure_replay(
    store: Arc<dyn SessionStore>,
    metadata: SessionMetadata,
    args: &BenchReplayArgs,
) -> anyhow::Result<ReplayRun> {
    let receiver = DiscardingReceiver::start().await?;
    let sink = match receiver.exporter(args.gzip) {
        Ok(exporter) => Arc::new(CountingSink { exporter, payload_bytes: AtomicU64::new(0) }),
        Err(error) => {
            let _ = receiver.stop().await;
            return Err(error);
        }
    };
    let (cpu_before, steal_before) = (cpu_seconds(), steal_seconds());
    let outcome = spawn_replay(store, metadata, Arc::clone(&sink), full_speed_options(args)).await;
    let cpu_seconds = cpu_before.zip(cpu_seconds()).map(|(before, after)| after - before);
    let stolen = steal_before.zip(steal_seconds()).map(|(before, after)| after - before);
    let payload_bytes = sink.payload_bytes.load(Ordering::Relaxed);
    // The exporter's connection goes before the receiver stops.
    drop(sink);
    let counts = receiver.stop().await.map(|stats| stats.snapshot());
    let outcome = outcome?;
    let counts = counts?;
    if let Some(error) = outcome.error {
        return Err(anyhow::Error::new(error).context("the replay being measured failed"));
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
) -> anyhow::Result<ReplayOutcome> {
    tokio::spawn(async move {
        let (progress, stop) = (Progress::default(), CancellationToken::new());
        replay(store, &metadata, sink.as_ref(), &options, &progress, &stop).await
    })
    .await
    .context("the replay being measured stopped unexpectedly")
}

/// Measurement 3: a `payment-failure` session replayed at each of
/// [`PACING_SPEEDS`].
async fn measure_pacing(store: &Arc<dyn SessionStore>, args: &BenchReplayArgs) -> anyhow::Result<PacingReport> {
    note(format!("bench replay: generating {PACING_PATTERN} for the pacing measurement..."));
    let (session, metadata) =
        generate(store.as_ref(), PACING_PATTERN, "bench-pacing", args.pacing_duration, args).await?;
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
        .context("cannot read the pacing session")?;
    let mut speeds = Vec::with_capacity(PACING_SPEEDS.len());
    for speed in PACING_SPEEDS {
        note(format!(
            "bench replay: replaying {} requests at {speed}x ({:.1} s)...",
            schedule.len(),
            Duration::from_nanos(args.pacing_duration).as_secs_f64() / speed
        ));
        speeds.push(measure_pacing_at(Arc::clone(store), &metadata, &schedule, session.items, speed, args).await?);
    }
    Ok(PacingReport { session, speeds })
}

/// A record of the pacing session, as read.
#[derive(Debug, Clone, Copy)]
struct Scheduled {
    signal: Signal,
    receive_nanos: u64,
    bytes: usize,
}

/// A request as the replay handed it to the exporter.
#[derive(Debug, Clone, Copy)]
struct Dispatch {
    at: Instant,
    signal: Signal,
    bytes: usize,
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
    args: &BenchReplayArgs,
) -> anyhow::Result<PacingRun> {
    let receiver = DiscardingReceiver::start().await?;
    let sink = match receiver.exporter(args.gzip) {
        Ok(exporter) => Arc::new(TimingSink { exporter, dispatches: Mutex::new(Vec::with_capacity(schedule.len())) }),
        Err(error) => {
            let _ = receiver.stop().await;
            return Err(error);
        }
    };
    let options = ReplayOptions {
        speed: Speed::Factor(speed),
        timestamps: TimestampMode::Relative,
        ids: IdRegeneration::Always,
        id_seed: ID_SEED,
        concurrency: args.concurrency,
        ..ReplayOptions::default()
    };
    let steal_before = steal_seconds();
    let outcome = spawn_replay(store, metadata.clone(), Arc::clone(&sink), options).await;
    let stolen = steal_before.zip(steal_seconds()).map(|(before, after)| after - before);
    let dispatches = std::mem::take(&mut *sink.dispatches.lock().map_err(|_| anyhow!("a dispatch was not recorded"))?);
    drop(sink);
    let counts = receiver.stop().await.map(|stats| stats.snapshot());
    let outcome = outcome?;
    let counts = counts?;
    if let Some(error) = outcome.error {
        return Err(anyhow::Error::new(error).context(format!("the replay at {speed}x failed")));
    }
    ensure!(
        dispatches.len() == schedule.len(),
        "the replay at {speed}x dispatched {} requests for {} records (retries?), so dispatches cannot be matched with the schedule",
        dispatches.len(),
        schedule.len()
    );
    let (Some(first_dispatch), Some(first_scheduled)) = (dispatches.first(), schedule.first()) else {
        bail!("the pacing session holds no records");
    };
    let mut lateness = Vec::with_capacity(dispatches.len());
    for (number, (dispatch, scheduled)) in dispatches.iter().zip(schedule).enumerate() {
        ensure!(
            dispatch.signal == scheduled.signal && dispatch.bytes == scheduled.bytes,
            "dispatch {number} at {speed}x is a {} request of {} bytes, but record {number} is a {} request of {} bytes: the dispatches are not in the order of the records",
            dispatch.signal,
            dispatch.bytes,
            scheduled.signal,
            scheduled.bytes
        );
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

/// CPU time that the hypervisor gave to other guests while this machine's
/// CPUs wanted to run (`steal`, over every CPU), in seconds, from
/// `/proc/stat` (Linux).
#[allow(clippy::cast_precision_loss)] // hundredths of a second
fn steal_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    // `cpu  user nice system idle iowait irq softirq steal ...`
    let ticks: u64 = stat.lines().next()?.split_whitespace().nth(8)?.parse().ok()?;
    // Clock ticks of USER_HZ, which Linux fixes at 100 a second for user space.
    Some(ticks as f64 / 100.0)
}

/// The nearest-rank percentile of `sorted`; zero when empty.
#[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)] // ranks are small
fn percentile(sorted: &[f64], fraction: f64) -> f64 {
    let rank = (fraction * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len().max(1)) - 1).copied().unwrap_or_default()
}

/// An OTLP/gRPC receiver on a free loopback port that acknowledges every
/// valid request, counts it and discards it: the capture's receiver
/// without a recorder.
struct DiscardingReceiver {
    addr: SocketAddr,
    stats: Arc<Stats>,
    stop: CancellationToken,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl DiscardingReceiver {
    async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .context("cannot listen on 127.0.0.1 for the discarding receiver")?;
        let addr = listener.local_addr().context("cannot read the discarding receiver's address")?;
        let stats = Arc::new(Stats::default());
        let intake = Intake::new(
            None,
            None,
            Arc::clone(&stats),
            DEFAULT_MAX_REQUEST_BYTES,
            tape_capture::ReceiveLimits::default(),
        );
        let stop = CancellationToken::new();
        let shutdown = stop.clone().cancelled_owned();
        let server = tokio::spawn(async move {
            tape_capture::grpc::serve(listener, intake, shutdown).await.context("the discarding receiver failed")
        });
        Ok(DiscardingReceiver { addr, stats, stop, server })
    }

    /// An exporter to this receiver, with a connection of its own.
    fn exporter(&self, gzip: bool) -> anyhow::Result<Exporter> {
        let mut config = ExporterConfig::new(format!("http://{}", self.addr), Protocol::Grpc);
        config.compression = if gzip { Compression::Gzip } else { Compression::None };
        Exporter::new(config).context("cannot make an OTLP/gRPC exporter for the discarding receiver")
    }

    /// Stops the receiver once its connections are closed (at most
    /// [`RECEIVER_STOP_TIMEOUT`]) and returns its counters.
    async fn stop(self) -> anyhow::Result<Arc<Stats>> {
        self.stop.cancel();
        let mut server = self.server;
        match tokio::time::timeout(RECEIVER_STOP_TIMEOUT, &mut server).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(error))) => return Err(error),
            Ok(Err(error)) => bail!("the discarding receiver stopped unexpectedly: {error}"),
            // A connection still open: what was counted stands.
            Err(_) => server.abort(),
        }
        Ok(self.stats)
    }
}

/// The exporter, counting the protobuf bytes handed to it.
struct CountingSink {
    exporter: Exporter,
    payload_bytes: AtomicU64,
}

impl Sink for CountingSink {
    fn export(
        &self,
        signal: Signal,
        payload: Bytes,
    ) -> impl Future<Output = Result<ExportOutcome, ExportError>> + Send {
        self.payload_bytes.fetch_add(payload.len() as u64, Ordering::Relaxed);
        self.exporter.export(signal, payload)
    }
}

/// The exporter, noting when each request is dispatched: when the replay
/// first polls its export.
struct TimingSink {
    exporter: Exporter,
    dispatches: Mutex<Vec<Dispatch>>,
}

impl Sink for TimingSink {
    async fn export(&self, signal: Signal, payload: Bytes) -> Result<ExportOutcome, ExportError> {
        let dispatch = Dispatch { at: Instant::now(), signal, bytes: payload.len() };
        if let Ok(mut dispatches) = self.dispatches.lock() {
            dispatches.push(dispatch);
        }
        self.exporter.export(signal, payload).await
    }
}
