//! `otlp-tape bench ...`: measurements of this machine.
//!
//! - `bench seed`: how fast a seed session is generated into a compressed
//!   local store, and the peak memory it takes;
//! - `bench capture`: how many spans per second a capture records over
//!   OTLP/gRPC on loopback with nothing lost, how fast it acknowledges at
//!   half that load, and the peak memory, sender included;
//! - `bench capture-memory`: the resident memory of a capture process
//!   (peak, and after the load) under many concurrent large uploads;
//! - `bench replay` (in `bench_replay`): replay throughput, peak memory and
//!   pacing accuracy.
//!
//! Sessions go to a temporary directory that is removed afterwards.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail, ensure};
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde::Serialize;
use tape_capture::{Capture, CaptureConfig, DEFAULT_MAX_REQUEST_BYTES, RecorderConfig};
use tape_otlp::{Signal, SignalSet};
use tape_replay::{Compression, Exporter, ExporterConfig, Protocol};
use tape_seed_generator::{DEFAULT_START, Generator, Params};
use tape_session::{SessionId, SessionMetadata, SessionStore, SessionType};
use tape_store::LocalStore;
use tokio::time::{Instant, MissedTickBehavior};

use crate::cli::{BenchCaptureArgs, BenchCaptureMemoryArgs, BenchSeedArgs, OutputFormat, SeedArgs};
use crate::commands::patterns::{self, DEFAULT_ERROR_RATE, DEFAULT_RATE};
use crate::commands::seed;
use crate::output::{human_bytes, note, print_json};

/// What `bench seed` measured.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SeedBench {
    pattern: String,
    duration: String,
    rate: f64,
    traces: u64,
    spans: u64,
    items: u64,
    stored_bytes: u64,
    seconds: f64,
    spans_per_second: f64,
    items_per_second: f64,
    /// Peak resident memory of the whole process (Linux `VmHWM`), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    peak_memory_bytes: Option<u64>,
    cpus: usize,
}

/// `bench seed`
#[allow(clippy::cast_precision_loss)] // rates are for reading
pub async fn seed(args: &BenchSeedArgs, format: OutputFormat) -> anyhow::Result<ExitCode> {
    let dir = tempfile::Builder::new()
        .prefix("otlp-tape-bench-")
        .tempdir()
        .context("cannot create a temporary directory for the benchmark session")?;
    let store = LocalStore::new(dir.path());
    let seed_args = SeedArgs {
        pattern: args.pattern.clone(),
        duration: Some(args.duration),
        preset: None,
        rate: args.rate,
        error_rate: None,
        seed: Some(args.seed),
        start: None,
        signals: SignalSet::ALL,
        session_id: Some("bench".parse().expect("a valid session id")),
        description: Some("otlp-tape bench seed".to_owned()),
        live: crate::cli::LiveArgs::default(),
        clickhouse: crate::cli::ClickHouseArgs::default(),
    };
    let (summary, elapsed) = seed::generate(&store, &seed_args).await?;
    let seconds = elapsed.as_secs_f64();
    let report = SeedBench {
        pattern: summary.pattern,
        duration: summary.duration,
        rate: summary.rate,
        traces: summary.traces,
        spans: summary.items.traces,
        items: summary.items.total(),
        stored_bytes: summary.size_bytes,
        seconds,
        spans_per_second: summary.items.traces as f64 / seconds,
        items_per_second: summary.items.total() as f64 / seconds,
        peak_memory_bytes: peak_memory_bytes(),
        cpus: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
    };
    if format == OutputFormat::Json {
        print_json(&report)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "bench seed: pattern {}, {} at {} traces/s on {} CPUs",
        report.pattern, report.duration, report.rate, report.cpus
    );
    println!(
        "  {} traces, {} spans, {} items in {:.2} s; {} stored (gzip)",
        report.traces,
        report.spans,
        report.items,
        report.seconds,
        human_bytes(report.stored_bytes)
    );
    println!("  {:.0} spans/s, {:.0} items/s", report.spans_per_second, report.items_per_second);
    match report.peak_memory_bytes {
        Some(bytes) => println!("  peak memory (resident): {}", human_bytes(bytes)),
        None => println!("  peak memory: not available on this system"),
    }
    Ok(ExitCode::SUCCESS)
}

/// The pattern whose trace requests `bench capture` sends.
const CAPTURE_PATTERN: &str = "high-load";
/// The seed of those requests.
const CAPTURE_SEED: u64 = 42;
/// How long a sender waits before it sends a refused request again. The
/// capture asks for a second (in its `RetryInfo`), which an OTLP SDK would
/// wait; a short pause keeps the recorder's queue full instead, so that the
/// throughput phase measures the recorder rather than the pause.
const THROTTLE_PAUSE: Duration = Duration::from_millis(50);
/// How long one request may keep being refused before the benchmark gives up.
const MAX_REFUSED_FOR: Duration = Duration::from_secs(30);

/// One trace request as it is sent: the generator's protobuf bytes, never
/// re-encoded.
struct TraceRequest {
    payload: Bytes,
    spans: u64,
}

/// What `bench capture` measured.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct CaptureBench {
    pattern: String,
    /// Distinct requests, sent in turn.
    distinct_requests: usize,
    spans_per_request: f64,
    connections: usize,
    /// Compression of the requests on the wire: `gzip` or `none`.
    request_compression: &'static str,
    /// gzip level of the capture's blobs.
    compression_level: u32,
    throughput: ThroughputPhase,
    latency: LatencyPhase,
    /// Peak resident memory of the whole process, senders included (Linux
    /// `VmHWM`), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    peak_memory_bytes: Option<u64>,
    cpus: usize,
}

/// Closed-loop sending: as fast as the capture acknowledges.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ThroughputPhase {
    /// From the first request sent to the last acknowledgement.
    seconds: f64,
    requests: u64,
    spans: u64,
    /// Protobuf bytes of the requests acknowledged.
    bytes: u64,
    spans_per_second: f64,
    requests_per_second: f64,
    mib_per_second: f64,
    /// Refusals with a retryable code (the recorder's backpressure), each
    /// sent again.
    throttled: u64,
    /// From the stop to the finished session: writing what was still queued.
    drain_seconds: f64,
    /// Spans recorded per second of the phase and the drain together.
    sustained_spans_per_second: f64,
    recorded_spans: u64,
    /// Spans acknowledged less spans recorded.
    lost: i64,
    /// CPU time of the process over the phase and the drain, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    cpu_seconds: Option<f64>,
}

/// Open-loop sending at a fixed rate, each acknowledgement timed from when
/// its request was due.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct LatencyPhase {
    target_spans_per_second: f64,
    seconds: f64,
    requests: u64,
    spans: u64,
    spans_per_second: f64,
    throttled: u64,
    recorded_spans: u64,
    lost: i64,
    /// Acknowledgement latency from when the request was due.
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    /// Acknowledgement latency from when the request was sent: without the
    /// sender's own lateness (its timer's resolution is 1 ms).
    from_send_p50_ms: f64,
    from_send_p99_ms: f64,
}

/// What the senders of a phase sent and how it went.
#[derive(Debug, Default)]
struct Tally {
    requests: u64,
    spans: u64,
    bytes: u64,
    throttled: u64,
    /// Acknowledgement latencies from when each request was due (paced
    /// sending only).
    latencies: Vec<Duration>,
    /// The same from when each was sent.
    from_send: Vec<Duration>,
}

impl Tally {
    fn acknowledged(&mut self, request: &TraceRequest) {
        self.requests += 1;
        self.spans += request.spans;
        self.bytes += request.payload.len() as u64;
    }

    fn add(&mut self, other: Tally) {
        self.requests += other.requests;
        self.spans += other.spans;
        self.bytes += other.bytes;
        self.throttled += other.throttled;
        self.latencies.extend(other.latencies);
        self.from_send.extend(other.from_send);
    }
}

/// `bench capture`
#[allow(clippy::cast_precision_loss)] // rates are for reading
pub async fn capture(args: &BenchCaptureArgs, format: OutputFormat) -> anyhow::Result<ExitCode> {
    ensure!(args.connections > 0, "--connections must be at least 1");
    ensure!(args.requests > 0, "--requests must be at least 1");
    ensure!(args.duration > 0 && args.latency_duration > 0, "--duration and --latency-duration must be more than zero");
    if let Some(rate) = args.latency_rate {
        ensure!(
            rate.is_finite() && rate > 0.0,
            "--latency-rate is {rate}; expected a positive number of spans per second"
        );
    }
    let requests = trace_requests(args.requests).await?;
    let spans_per_request = requests.iter().map(|request| request.spans).sum::<u64>() as f64 / requests.len() as f64;
    let dir = tempfile::Builder::new()
        .prefix("otlp-tape-bench-")
        .tempdir()
        .context("cannot create a temporary directory for the benchmark sessions")?;
    let store: Arc<dyn SessionStore> = Arc::new(LocalStore::new(dir.path()));

    note(format!(
        "bench capture: {} s closed loop over {} connections, then {} s at a fixed rate...",
        Duration::from_nanos(args.duration).as_secs_f64(),
        args.connections,
        Duration::from_nanos(args.latency_duration).as_secs_f64()
    ));
    let throughput = measure_throughput(args, Arc::clone(&store), &requests).await?;
    let target = args.latency_rate.unwrap_or(throughput.spans_per_second / 2.0);
    ensure!(target > 0.0, "the throughput phase acknowledged nothing, so there is no rate for the latency phase");
    let latency = measure_latency(args, store, &requests, spans_per_request, target).await?;

    let report = CaptureBench {
        pattern: CAPTURE_PATTERN.to_owned(),
        distinct_requests: requests.len(),
        spans_per_request,
        connections: args.connections,
        request_compression: if args.gzip { "gzip" } else { "none" },
        compression_level: args.compression_level,
        throughput,
        latency,
        peak_memory_bytes: peak_memory_bytes(),
        cpus: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
    };
    if format == OutputFormat::Json {
        print_json(&report)?;
    } else {
        print_capture_bench(&report);
    }
    let (lost, lost_paced) = (report.throughput.lost, report.latency.lost);
    if lost != 0 || lost_paced != 0 {
        bail!(
            "the capture did not record exactly what it acknowledged: {lost} spans lost in the throughput phase, {lost_paced} in the latency phase (negative: recorded more than acknowledged)"
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn print_capture_bench(report: &CaptureBench) {
    let throughput = &report.throughput;
    let latency = &report.latency;
    println!(
        "bench capture: OTLP/gRPC on loopback, {} connections, requests {}, blobs gzip level {}, on {} CPUs",
        report.connections,
        if report.request_compression == "none" { "not compressed" } else { "gzip" },
        report.compression_level,
        report.cpus
    );
    println!(
        "  {} distinct {} trace requests, {:.1} spans each on average",
        report.distinct_requests, report.pattern, report.spans_per_request
    );
    println!(
        "  throughput, closed loop for {:.1} s: {:.0} spans/s, {:.0} requests/s, {:.1} MiB/s received; {} throttled",
        throughput.seconds,
        throughput.spans_per_second,
        throughput.requests_per_second,
        throughput.mib_per_second,
        throughput.throttled
    );
    let cpu = throughput.cpu_seconds.map_or_else(String::new, |seconds| {
        format!("; CPU {:.2} of {} cores", seconds / (throughput.seconds + throughput.drain_seconds), report.cpus)
    });
    println!(
        "    {:.2} s from stop to finished session: {:.0} spans/s sustained; {} spans acknowledged, {} recorded, {} lost{cpu}",
        throughput.drain_seconds,
        throughput.sustained_spans_per_second,
        throughput.spans,
        throughput.recorded_spans,
        throughput.lost
    );
    println!(
        "  latency, open loop at {:.0} spans/s for {:.1} s: {} requests ({:.0} spans/s); {} throttled, {} lost",
        latency.target_spans_per_second,
        latency.seconds,
        latency.requests,
        latency.spans_per_second,
        latency.throttled,
        latency.lost
    );
    println!(
        "    acknowledged, from when due: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; from when sent: p50 {:.2} ms, p99 {:.2} ms",
        latency.p50_ms, latency.p99_ms, latency.max_ms, latency.from_send_p50_ms, latency.from_send_p99_ms
    );
    match report.peak_memory_bytes {
        Some(bytes) => println!("  peak memory (resident, senders included): {}", human_bytes(bytes)),
        None => println!("  peak memory: not available on this system"),
    }
}

/// Phase 1: every connection sends its next request as soon as the last is
/// acknowledged, for `--duration`; then the capture is stopped and its
/// session checked against what was acknowledged.
#[allow(clippy::cast_precision_loss)] // rates are for reading
async fn measure_throughput(
    args: &BenchCaptureArgs,
    store: Arc<dyn SessionStore>,
    requests: &Arc<[TraceRequest]>,
) -> anyhow::Result<ThroughputPhase> {
    let (capture, exporters) = start_capture(store, "bench-throughput", args).await?;
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let deadline = started + Duration::from_nanos(args.duration);
    let senders = exporters
        .into_iter()
        .enumerate()
        .map(|(sender, exporter)| {
            let first = sender * requests.len() / args.connections;
            tokio::spawn(send_closed_loop(exporter, Arc::clone(requests), first, deadline))
        })
        .collect();
    let tally = join_senders(senders).await;
    let seconds = started.elapsed().as_secs_f64();
    let stopping = Instant::now();
    let recorded = finish_capture(capture).await;
    let drain_seconds = stopping.elapsed().as_secs_f64();
    let cpu_seconds = cpu_before.zip(cpu_seconds()).map(|(before, after)| after - before);
    let (tally, recorded) = (tally?, recorded?);
    Ok(ThroughputPhase {
        seconds,
        requests: tally.requests,
        spans: tally.spans,
        bytes: tally.bytes,
        spans_per_second: tally.spans as f64 / seconds,
        requests_per_second: tally.requests as f64 / seconds,
        mib_per_second: tally.bytes as f64 / seconds / (1024.0 * 1024.0),
        throttled: tally.throttled,
        drain_seconds,
        sustained_spans_per_second: recorded as f64 / (seconds + drain_seconds),
        recorded_spans: recorded,
        lost: difference(tally.spans, recorded),
        cpu_seconds,
    })
}

/// Phase 2: a fresh capture; each connection sends one request per period,
/// staggered, so that together they send `target` spans per second for
/// `--latency-duration`, open loop: a request is sent when it is due, not
/// when the one before it is acknowledged. Latency is timed from when a
/// request was due, so that the sender's own delays count against it too.
#[allow(clippy::cast_precision_loss)] // rates are for reading
async fn measure_latency(
    args: &BenchCaptureArgs,
    store: Arc<dyn SessionStore>,
    requests: &Arc<[TraceRequest]>,
    spans_per_request: f64,
    target: f64,
) -> anyhow::Result<LatencyPhase> {
    let (capture, exporters) = start_capture(store, "bench-latency", args).await?;
    // One acknowledged request per connection first, so that connecting is
    // not timed.
    let mut warm_up = Tally::default();
    for exporter in &exporters {
        let request = &requests[0];
        match deliver(exporter, request).await {
            Ok(throttled) => {
                warm_up.acknowledged(request);
                warm_up.throttled += throttled;
            }
            Err(error) => {
                let _ = finish_capture(capture).await;
                return Err(error);
            }
        }
    }
    let connections = args.connections as f64;
    let period = Duration::from_secs_f64(connections * spans_per_request / target).max(Duration::from_micros(1));
    let start = Instant::now() + Duration::from_millis(10);
    let deadline = start + Duration::from_nanos(args.latency_duration);
    let senders = exporters
        .into_iter()
        .enumerate()
        .map(|(sender, exporter)| {
            let first = sender * requests.len() / args.connections;
            let offset = period.mul_f64(sender as f64 / connections);
            tokio::spawn(send_paced(exporter, Arc::clone(requests), first, start + offset, period, deadline))
        })
        .collect();
    let tally = join_senders(senders).await;
    let seconds = start.elapsed().as_secs_f64();
    let recorded = finish_capture(capture).await;
    let (mut tally, recorded) = (tally?, recorded?);
    tally.latencies.sort_unstable();
    tally.from_send.sort_unstable();
    let milliseconds = |latencies: &[Duration], fraction: f64| percentile(latencies, fraction).as_secs_f64() * 1000.0;
    Ok(LatencyPhase {
        target_spans_per_second: target,
        seconds,
        requests: tally.requests,
        spans: tally.spans,
        spans_per_second: tally.spans as f64 / seconds,
        throttled: tally.throttled + warm_up.throttled,
        recorded_spans: recorded,
        lost: difference(tally.spans + warm_up.spans, recorded),
        p50_ms: milliseconds(&tally.latencies, 0.50),
        p99_ms: milliseconds(&tally.latencies, 0.99),
        max_ms: milliseconds(&tally.latencies, 1.0),
        from_send_p50_ms: milliseconds(&tally.from_send, 0.50),
        from_send_p99_ms: milliseconds(&tally.from_send, 0.99),
    })
}

/// The first `count` trace requests of the benchmark's pattern, as the seed
/// generator encodes them (fewer if it makes fewer in an hour).
async fn trace_requests(count: usize) -> anyhow::Result<Arc<[TraceRequest]>> {
    let pattern = patterns::load(CAPTURE_PATTERN)?;
    tokio::task::spawn_blocking(move || {
        let params = Params {
            seed: CAPTURE_SEED,
            start: DEFAULT_START,
            duration_nanos: 3_600_000_000_000,
            rate: pattern.default_rate.unwrap_or(DEFAULT_RATE),
            error_rate: pattern.default_error_rate.unwrap_or(DEFAULT_ERROR_RATE),
            signals: SignalSet::NONE.with(Signal::Traces),
        };
        let generator = Generator::new(&pattern, params)
            .map_err(|error| anyhow!("cannot generate pattern {}: {error}", pattern.name))?;
        let requests: Arc<[TraceRequest]> = generator
            .filter(|batch| batch.signal == Signal::Traces && batch.items > 0)
            .take(count)
            .map(|batch| TraceRequest { payload: Bytes::from(batch.payload), spans: batch.items })
            .collect();
        ensure!(!requests.is_empty(), "pattern {} generated no trace requests", pattern.name);
        Ok(requests)
    })
    .await
    .context("the generator stopped unexpectedly")?
}

/// Starts a capture as `otlp-tape capture` runs one (default recorder
/// settings, HTTP off) on a free loopback port, recording into session `id`
/// of `store`, and one exporter per connection to it.
async fn start_capture(
    store: Arc<dyn SessionStore>,
    id: &str,
    args: &BenchCaptureArgs,
) -> anyhow::Result<(Capture, Vec<Exporter>)> {
    let mut recorder = RecorderConfig::default();
    recorder.writer.compression_level = args.compression_level;
    let config = CaptureConfig {
        grpc: Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))),
        http: None,
        max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
        receive: tape_capture::ReceiveLimits::default(),
        recorder,
        forward: None,
    };
    let id: SessionId = id.parse().map_err(|error| anyhow!("{error}"))?;
    let created_by = format!("otlp-tape {} bench capture", env!("CARGO_PKG_VERSION"));
    let metadata = SessionMetadata::new(id, SessionType::Capture, tape_capture::now(), created_by);
    let capture = Capture::start(store, metadata, config).await.context("cannot start the capture to measure")?;
    let Some(addr) = capture.grpc_addr() else {
        let _ = finish_capture(capture).await;
        bail!("the capture to measure serves no OTLP/gRPC");
    };
    // An exporter of its own per connection: each has its own channel.
    let exporters = (0..args.connections)
        .map(|_| {
            let mut config = ExporterConfig::new(format!("http://{addr}"), Protocol::Grpc);
            config.compression = if args.gzip { Compression::Gzip } else { Compression::None };
            Exporter::new(config)
        })
        .collect::<Result<Vec<_>, _>>();
    match exporters {
        Ok(exporters) => Ok((capture, exporters)),
        Err(error) => {
            let _ = finish_capture(capture).await;
            Err(anyhow::Error::new(error).context("cannot make an OTLP/gRPC exporter for the capture"))
        }
    }
}

/// Stops `capture`, waits until its session is finished, and returns the
/// spans the session holds.
async fn finish_capture(capture: Capture) -> anyhow::Result<u64> {
    capture.stop();
    let outcome = capture.wait().await.context("the capture being measured failed")?;
    if let tape_capture::StopReason::Failed(message) = &outcome.recording.reason {
        bail!("the capture being measured failed: {message}");
    }
    Ok(outcome.recording.metadata.captured_traces)
}

/// Sends requests one after another, each as soon as the last is
/// acknowledged, from `first` on, until `deadline`.
async fn send_closed_loop(
    exporter: Exporter,
    requests: Arc<[TraceRequest]>,
    first: usize,
    deadline: Instant,
) -> anyhow::Result<Tally> {
    let mut tally = Tally::default();
    let mut index = first;
    while Instant::now() < deadline {
        let request = &requests[index % requests.len()];
        tally.throttled += deliver(&exporter, request).await?;
        tally.acknowledged(request);
        index += 1;
    }
    Ok(tally)
}

/// Sends one request every `period` from `start` until `deadline`, from
/// `first` on, each when it is due whether or not the earlier ones are
/// acknowledged (they share the connection, HTTP/2 multiplexing them), and
/// times each acknowledgement from when the request was due.
async fn send_paced(
    exporter: Exporter,
    requests: Arc<[TraceRequest]>,
    first: usize,
    start: Instant,
    period: Duration,
    deadline: Instant,
) -> anyhow::Result<Tally> {
    let mut schedule = tokio::time::interval_at(start, period);
    schedule.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut in_flight = FuturesUnordered::new();
    let mut tally = Tally::default();
    let mut index = first;
    let record = |tally: &mut Tally, (request, throttled, latency, from_send): (usize, u64, Duration, Duration)| {
        tally.throttled += throttled;
        tally.latencies.push(latency);
        tally.from_send.push(from_send);
        tally.acknowledged(&requests[request]);
    };
    loop {
        tokio::select! {
            due = schedule.tick() => {
                if due >= deadline {
                    break;
                }
                let request = index % requests.len();
                index += 1;
                let (exporter, requests) = (exporter.clone(), Arc::clone(&requests));
                in_flight.push(async move {
                    let sent = Instant::now();
                    let throttled = deliver(&exporter, &requests[request]).await?;
                    anyhow::Ok((request, throttled, due.elapsed(), sent.elapsed()))
                });
            }
            Some(done) = in_flight.next() => record(&mut tally, done?),
        }
    }
    while let Some(done) = in_flight.next().await {
        record(&mut tally, done?);
    }
    Ok(tally)
}

/// Sends `request` until the capture acknowledges it. A refusal with a
/// retryable code (the recorder's backpressure) is sent again after a
/// pause; returns how many there were. Nothing is dropped: a permanent
/// refusal, or refusals for too long, end the benchmark.
async fn deliver(exporter: &Exporter, request: &TraceRequest) -> anyhow::Result<u64> {
    let first_sent = Instant::now();
    let mut refused = 0;
    loop {
        match exporter.export(Signal::Traces, request.payload.clone()).await {
            Ok(outcome) if outcome.rejected_items == 0 => return Ok(refused),
            Ok(outcome) => bail!(
                "the capture rejected {} of the {} spans of a request: {}",
                outcome.rejected_items,
                request.spans,
                outcome.message.unwrap_or_default()
            ),
            Err(error) if error.is_retryable() && first_sent.elapsed() < MAX_REFUSED_FOR => {
                refused += 1;
                tokio::time::sleep(THROTTLE_PAUSE).await;
            }
            Err(error) => return Err(anyhow::Error::new(error).context("the capture did not accept a request")),
        }
    }
}

/// Waits for every sender and adds up what they sent; the first failure, if any.
async fn join_senders(senders: Vec<tokio::task::JoinHandle<anyhow::Result<Tally>>>) -> anyhow::Result<Tally> {
    let mut total = Tally::default();
    let mut failure = None;
    for sender in senders {
        match sender.await {
            Ok(Ok(tally)) => total.add(tally),
            Ok(Err(error)) => failure = failure.or(Some(error)),
            Err(error) => failure = failure.or(Some(anyhow!("a sender stopped unexpectedly: {error}"))),
        }
    }
    failure.map_or(Ok(total), Err)
}

/// `acknowledged - recorded`, signed.
fn difference(acknowledged: u64, recorded: u64) -> i64 {
    i64::try_from(i128::from(acknowledged) - i128::from(recorded)).unwrap_or(i64::MAX)
}

/// The nearest-rank percentile of `sorted`: the smallest value with at
/// least `fraction` of the values at or below it; zero when empty.
#[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)] // ranks are small
fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    let rank = (fraction * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len().max(1)) - 1).copied().unwrap_or_default()
}

/// CPU time the process has used, user and system, in seconds, from
/// `/proc/self/stat` (Linux).
#[allow(clippy::cast_precision_loss)] // hundredths of a second
pub(crate) fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name, in parentheses, may hold spaces; after it come
    // field 3 (state) on, so utime (14) and stime (15) are the 12th and 13th.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // Clock ticks of USER_HZ, which Linux fixes at 100 a second for user space.
    Some(ticks as f64 / 100.0)
}

/// The process's peak resident memory, from `/proc/self/status` (Linux).
pub(crate) fn peak_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: u64 = line.trim_start_matches("VmHWM:").trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}

/// What `bench capture-memory` measured.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct CaptureMemoryBench {
    /// The binary whose `capture` was measured.
    binary: String,
    /// `grpc`, `http` or `both` (half of the uploads each, gRPC first).
    protocol: String,
    uploads: usize,
    upload_bytes: usize,
    spans_per_upload: u64,
    /// Resident memory of the capture process once it listens, before the load.
    idle_rss_bytes: u64,
    /// Peak resident memory of the capture process (Linux `VmHWM`).
    peak_rss_bytes: u64,
    /// Resident memory of the capture process `settle` after the last upload was acknowledged.
    after_load_rss_bytes: u64,
    settle_seconds: f64,
    /// From the first upload sent to the last acknowledged.
    seconds: f64,
    /// Refusals with a retryable code, each upload sent again after a pause.
    retryable_refusals: u64,
    /// Requests the finished session holds: every upload, once.
    recorded_requests: u64,
    cpus: usize,
}

/// How long an upload waits before it is sent again after a retryable
/// refusal: shorter than the capture's `Retry-After` of 1 s, so that the
/// load stays on.
const UPLOAD_RETRY_PAUSE: Duration = Duration::from_millis(200);

/// `bench capture-memory`
#[allow(clippy::cast_precision_loss)] // sizes are for reading
pub async fn capture_memory(args: &BenchCaptureMemoryArgs, format: OutputFormat) -> anyhow::Result<ExitCode> {
    ensure!(args.uploads > 0, "--uploads must be at least 1");
    ensure!(args.upload_size_mb > 0, "--upload-size-mb must be more than zero");
    let binary = match &args.binary {
        Some(path) => path.clone(),
        None => std::env::current_exe().context("cannot find this otlp-tape binary to run a capture with")?,
    };
    let upload_bytes = usize::try_from(args.upload_size_mb.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX);
    let (payload, spans_per_upload) = upload_of_size(upload_bytes).await?;
    let dir = tempfile::Builder::new()
        .prefix("otlp-tape-bench-")
        .tempdir()
        .context("cannot create a temporary directory for the benchmark session")?;
    let (grpc_port, http_port) = (free_port()?, free_port()?);
    let mut child = tokio::process::Command::new(&binary)
        .arg("--store")
        .arg(dir.path())
        .args(["--output", "json", "capture", "--session-id", "bench-memory", "--no-progress"])
        .args(["--grpc", &format!("127.0.0.1:{grpc_port}"), "--http", &format!("127.0.0.1:{http_port}")])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot run {}", binary.display()))?;
    let pid = child.id().context("the capture process ended at once")?;
    wait_until_listening(&[grpc_port, http_port]).await?;
    let idle_rss_bytes = process_memory(pid, "VmRSS:").context("cannot read the capture process's memory")?;
    note(format!(
        "bench capture-memory: {} concurrent uploads of {} ({} spans each) over {} to {} (pid {pid})...",
        args.uploads,
        human_bytes(payload.len() as u64),
        spans_per_upload,
        args.protocol,
        binary.display()
    ));

    let started = Instant::now();
    let mut senders = Vec::new();
    for upload in 0..args.uploads {
        let grpc = match args.protocol.as_str() {
            "grpc" => true,
            "http" => false,
            _ => upload < args.uploads / 2,
        };
        let (endpoint, protocol) = if grpc {
            (format!("http://127.0.0.1:{grpc_port}"), Protocol::Grpc)
        } else {
            (format!("http://127.0.0.1:{http_port}"), Protocol::HttpProtobuf)
        };
        let mut config = ExporterConfig::new(endpoint, protocol);
        config.timeout = Duration::from_mins(2);
        let exporter = Exporter::new(config).context("cannot make an exporter for the uploads")?;
        let payload = payload.clone();
        senders.push(tokio::spawn(async move { upload_until_accepted(&exporter, payload).await }));
    }
    let mut retryable_refusals = 0;
    let mut failure = None;
    for sender in senders {
        match sender.await {
            Ok(Ok(refusals)) => retryable_refusals += refusals,
            Ok(Err(error)) => failure = failure.or(Some(error)),
            Err(error) => failure = failure.or(Some(anyhow!("an upload stopped unexpectedly: {error}"))),
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let settle = Duration::from_nanos(args.settle);
    tokio::time::sleep(settle).await;
    let after_load_rss_bytes = process_memory(pid, "VmRSS:");
    let peak_rss_bytes = process_memory(pid, "VmHWM:");
    // SIGTERM: the capture finishes its session and prints its summary.
    let _ = tokio::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().await;
    let output = tokio::time::timeout(Duration::from_mins(2), async {
        let mut stdout = Vec::new();
        if let Some(mut out) = child.stdout.take() {
            tokio::io::AsyncReadExt::read_to_end(&mut out, &mut stdout).await?;
        }
        child.wait().await?;
        std::io::Result::Ok(stdout)
    })
    .await
    .context("the capture did not finish within 2 minutes of SIGTERM")?
    .context("cannot read the capture's summary")?;
    if let Some(error) = failure {
        return Err(error);
    }
    let summary: serde_json::Value =
        serde_json::from_slice(&output).context("the capture's summary is not the JSON it should be")?;
    let recorded_requests = summary["requests"]["traces"].as_u64().unwrap_or_default();
    let report = CaptureMemoryBench {
        binary: binary.display().to_string(),
        protocol: args.protocol.clone(),
        uploads: args.uploads,
        upload_bytes: payload.len(),
        spans_per_upload,
        idle_rss_bytes,
        peak_rss_bytes: peak_rss_bytes.context("cannot read the capture process's peak memory")?,
        after_load_rss_bytes: after_load_rss_bytes.context("cannot read the capture process's memory")?,
        settle_seconds: settle.as_secs_f64(),
        seconds,
        retryable_refusals,
        recorded_requests,
        cpus: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
    };
    if format == OutputFormat::Json {
        print_json(&report)?;
    } else {
        println!(
            "bench capture-memory: {} concurrent uploads of {} over {} into {}, on {} CPUs",
            report.uploads,
            human_bytes(report.upload_bytes as u64),
            report.protocol,
            report.binary,
            report.cpus
        );
        println!(
            "  all acknowledged in {:.1} s after {} retryable refusals; {} requests recorded",
            report.seconds, report.retryable_refusals, report.recorded_requests
        );
        println!(
            "  capture process resident memory: {} idle, {} peak, {} {:.0} s after the load",
            human_bytes(report.idle_rss_bytes),
            human_bytes(report.peak_rss_bytes),
            human_bytes(report.after_load_rss_bytes),
            report.settle_seconds
        );
    }
    ensure!(
        report.recorded_requests == report.uploads as u64,
        "the capture recorded {} requests of the {} uploads it acknowledged",
        report.recorded_requests,
        report.uploads
    );
    Ok(ExitCode::SUCCESS)
}

/// One trace request of at least `bytes` bytes: the benchmark pattern's
/// requests one after another (a protobuf message's repeated fields
/// concatenate), and its spans.
async fn upload_of_size(bytes: usize) -> anyhow::Result<(Bytes, u64)> {
    let requests = trace_requests(2000).await?;
    let mut payload = Vec::with_capacity(bytes + 64 * 1024);
    let mut spans = 0;
    for request in requests.iter().cycle() {
        if payload.len() >= bytes {
            break;
        }
        payload.extend_from_slice(&request.payload);
        spans += request.spans;
    }
    Ok((Bytes::from(payload), spans))
}

/// Sends `payload` until it is accepted, pausing after each retryable
/// refusal; returns how many there were.
async fn upload_until_accepted(exporter: &Exporter, payload: Bytes) -> anyhow::Result<u64> {
    let started = Instant::now();
    let mut refusals = 0;
    loop {
        match exporter.export(Signal::Traces, payload.clone()).await {
            Ok(_) => return Ok(refusals),
            Err(error) if error.is_retryable() && started.elapsed() < Duration::from_mins(5) => {
                refusals += 1;
                tokio::time::sleep(UPLOAD_RETRY_PAUSE).await;
            }
            Err(error) => return Err(anyhow::Error::new(error).context("the capture did not accept an upload")),
        }
    }
}

/// A loopback port free now.
fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("cannot find a free port")?;
    Ok(listener.local_addr()?.port())
}

/// Waits until something listens on each of `ports` on loopback.
async fn wait_until_listening(ports: &[u16]) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    for &port in ports {
        while tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await.is_err() {
            ensure!(Instant::now() < deadline, "the capture did not listen on port {port} within 30 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Ok(())
}

/// A memory figure of process `pid` (`VmRSS:`, `VmHWM:`) from
/// `/proc/<pid>/status` (Linux), in bytes.
fn process_memory(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with(field))?;
    let kib: u64 = line.trim_start_matches(field).trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}
