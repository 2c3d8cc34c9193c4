//! The scaling benchmark: aggregate capture and replay throughput with 1, 2
//! and 4 `otlp-tape` processes on this machine, against the in-process S3
//! server of `tape-testkit` (`docs/PERFORMANCE.md`, "Scaling").
//!
//! - **Capture:** N `otlp-tape capture --join` processes record into one
//!   session on S3, each fed at full speed over OTLP/gRPC (uncompressed) by
//!   an `otlp-tape replay --speed max` of a `high-load` seed session (seed
//!   42) from a local store. Then all are stopped at once (SIGTERM): each
//!   uploads its open blobs and writes its manifest, and one seals the
//!   session, which must then be `completed` with N writers and exactly N
//!   times the seed session's items.
//! - **Replay:** N `otlp-tape replay --shard I/N --speed max` processes read
//!   the session of the largest capture run (its writers' records merged in
//!   receive-time order) from S3 and send it over OTLP/gRPC (uncompressed)
//!   to one receiver in this process, the capture's OTLP/gRPC receiver with
//!   no recorder (as `otlp-tape bench replay` uses), which checks and counts
//!   each request on the wire and drops it; it must count exactly the
//!   session's items.
//!
//! Every process shares this machine's CPUs with the others, with the S3
//! server and with the receiver (both in this process), so the figures show
//! what one machine gives and what each process costs, not what N machines
//! would give; `docs/PERFORMANCE.md` works that out.
//!
//! ```sh
//! cargo bench -p otlp-tape --bench scale
//! cargo bench -p otlp-tape --bench scale -- --duration 30 --processes 1,2,4,8
//! ```

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use std::sync::Arc;

use tape_capture::{DEFAULT_MAX_REQUEST_BYTES, Intake, ReceiveLimits, Stats};
use tape_otlp::Signal;
use tape_testkit::s3::S3TestServer;
use tokio_util::sync::CancellationToken;

/// Variables of whoever runs the benchmark that would change what the
/// processes do.
const CLEARED: &[&str] = &[
    "OTLP_TAPE_STORE",
    "OTLP_TAPE_SPOOL_DIR",
    "MINIO_ENDPOINT",
    "MINIO_ACCESS_KEY",
    "MINIO_SECRET_KEY",
    "MINIO_BUCKET",
    "MINIO_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "CAPTURE_MAX_SIZE_MB",
    "CAPTURE_MAX_DURATION_MINUTES",
    "CAPTURE_COMPRESSION_ENABLED",
    "REPLAY_DEFAULT_SPEED",
    "REPLAY_DEFAULT_ENDPOINT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_COMPRESSION",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "RUST_LOG",
];

/// The prefix of the sessions in the S3 server's bucket.
const PREFIX: &str = "scale";

/// How long a process may take before the benchmark gives up on it.
const PROCESS_LIMIT: Duration = Duration::from_mins(10);

/// What to run: `--duration SECONDS` of virtual time of the seed session
/// (default 60), `--processes 1,2,4`, `--binary PATH` (default: this
/// build's `otlp-tape`).
struct Options {
    duration_seconds: u64,
    processes: Vec<usize>,
    binary: PathBuf,
}

impl Options {
    fn parse() -> Options {
        let mut options = Options {
            duration_seconds: 60,
            processes: vec![1, 2, 4],
            binary: PathBuf::from(env!("CARGO_BIN_EXE_otlp-tape")),
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let mut value = |name: &str| args.next().unwrap_or_else(|| panic!("{name} needs a value"));
            match arg.as_str() {
                // `cargo bench` passes `--bench` to every bench target.
                "--bench" => {}
                "--duration" => {
                    let text = value("--duration");
                    options.duration_seconds = text
                        .trim_end_matches('s')
                        .parse()
                        .unwrap_or_else(|_| panic!("--duration {text}: expected whole seconds, such as 60"));
                }
                "--processes" => {
                    let text = value("--processes");
                    options.processes = text
                        .split(',')
                        .map(|count| count.trim().parse().ok().filter(|count| *count > 0))
                        .collect::<Option<Vec<usize>>>()
                        .unwrap_or_else(|| panic!("--processes {text}: expected counts such as 1,2,4"));
                }
                "--binary" => options.binary = PathBuf::from(value("--binary")),
                other => panic!("unknown argument {other}; expected --duration, --processes or --binary"),
            }
        }
        options
    }
}

/// Where the processes run: the binary, the S3 server, a local store and a
/// directory for spools and logs.
struct Bench {
    binary: PathBuf,
    s3: S3TestServer,
    work: tempfile::TempDir,
}

impl Bench {
    fn s3_store(&self) -> String {
        format!("s3://{}/{PREFIX}", self.s3.bucket())
    }

    fn local_store(&self) -> PathBuf {
        self.work.path().join("local")
    }

    /// `otlp-tape --store STORE -q --output json`, with the S3 server's
    /// settings and stderr into `log` under the work directory.
    fn tape(&self, store: &str, log: &str) -> Command {
        let mut command = Command::new(&self.binary);
        for name in CLEARED {
            command.env_remove(name);
        }
        command
            .env("MINIO_ENDPOINT", self.s3.endpoint())
            .env("MINIO_ACCESS_KEY", self.s3.access_key())
            .env("MINIO_SECRET_KEY", self.s3.secret_key())
            .args(["--store", store, "-q", "--output", "json"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(self.log(log)).unwrap());
        command
    }

    fn log(&self, name: &str) -> PathBuf {
        self.work.path().join(format!("{name}.log"))
    }

    /// Runs `command` to its end and parses its stdout, failing with its log.
    fn json(&self, mut command: Command, log: &str) -> serde_json::Value {
        let output = command.output().unwrap();
        let stderr = std::fs::read_to_string(self.log(log)).unwrap_or_default();
        assert!(output.status.success(), "{log} failed ({}): {stderr}", output.status);
        serde_json::from_slice(&output.stdout).unwrap_or_else(|error| panic!("{log}: output is not JSON: {error}"))
    }

    /// The directory of session `id` in the S3 server's bucket.
    fn session_dir(&self, id: &str) -> PathBuf {
        self.s3.bucket_dir().join(PREFIX).join("sessions").join(id)
    }
}

/// A running process whose JSON report comes on stdout when it ends.
struct Running {
    name: String,
    child: Child,
    stdout: BufReader<ChildStdout>,
}

impl Running {
    fn start(mut command: Command, name: &str) -> Running {
        let mut child = command.spawn().unwrap_or_else(|error| panic!("cannot start {name}: {error}"));
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Running { name: name.to_owned(), child, stdout }
    }

    /// Sends SIGTERM, as Kubernetes does to stop a pod.
    fn terminate(&self) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success(), "cannot signal {}", self.name);
    }

    /// Waits for the process to end and parses the rest of its stdout.
    fn finish(mut self, bench: &Bench) -> serde_json::Value {
        let mut rest = String::new();
        self.stdout.read_to_string(&mut rest).unwrap();
        let status = wait_within(&mut self.child, &self.name);
        let stderr = std::fs::read_to_string(bench.log(&self.name)).unwrap_or_default();
        assert!(status.success(), "{} failed ({status}): {stderr}", self.name);
        serde_json::from_str(&rest).unwrap_or_else(|error| panic!("{}: report is not JSON: {error}\n{rest}", self.name))
    }
}

fn wait_within(child: &mut Child, name: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + PROCESS_LIMIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{name} did not end within {PROCESS_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// CPU seconds (user and system) of this process and of its children that
/// have been waited for, from `/proc/self/stat` (Linux, 100 ticks a second).
#[allow(clippy::cast_precision_loss)] // hundredths of a second
fn cpu_seconds() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<u64> =
        stat.rsplit_once(')').unwrap().1.split_whitespace().skip(11).take(4).map(|f| f.parse().unwrap()).collect();
    ((fields[0] + fields[1]) as f64 / 100.0, (fields[2] + fields[3]) as f64 / 100.0)
}

/// Items per signal of a report's or metadata's counts.
fn items(value: &serde_json::Value, signal: &str) -> u64 {
    value.get(signal).and_then(serde_json::Value::as_u64).unwrap_or(0)
}

/// Files and bytes under `dir`.
fn files_and_bytes(dir: &Path) -> (u64, u64) {
    let mut totals = (0, 0);
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&current) else { continue };
        for entry in entries {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                pending.push(entry.path());
            } else {
                totals.0 += 1;
                totals.1 += entry.metadata().unwrap().len();
            }
        }
    }
    totals
}

/// What one capture run measured.
struct CaptureRun {
    processes: usize,
    session: String,
    spans: u64,
    items: u64,
    send: Duration,
    stop: Duration,
    blobs: u64,
    stored_bytes: u64,
    payload_bytes: u64,
    children_cpu: f64,
    own_cpu: f64,
    /// CPUs the hypervisor gave to other guests, on average over the run.
    steal: f64,
}

/// What one replay run measured.
struct ReplayRun {
    processes: usize,
    spans: u64,
    items: u64,
    elapsed: Duration,
    slowest_shard: Duration,
    children_cpu: f64,
    own_cpu: f64,
    /// CPUs the hypervisor gave to other guests, on average over the run.
    steal: f64,
}

/// Steal seconds over every CPU so far (0 where unknown).
fn steal_seconds() -> f64 {
    tape_bench::steal_seconds().unwrap_or(0.0)
}

fn seed_source(bench: &Bench, duration_seconds: u64) -> serde_json::Value {
    let store = bench.local_store();
    let mut seed = bench.tape(store.to_str().unwrap(), "seed");
    seed.args(["seed", "--pattern", "high-load", "--seed", "42", "--session-id", "source"]);
    seed.args(["--duration", &format!("{duration_seconds}s")]);
    bench.json(seed, "seed")
}

fn capture_run(bench: &Bench, processes: usize, source: &serde_json::Value) -> CaptureRun {
    let session = format!("capture-{processes}");
    let store = bench.s3_store();
    let writers: Vec<Running> = (0..processes)
        .map(|index| {
            let name = format!("{session}-writer-{index}");
            let spool = bench.work.path().join(format!("spool-{session}-{index}"));
            let mut capture = bench.tape(&store, &name);
            capture.args(["capture", "--session-id", &session, "--join", "--writer-id", &format!("writer-{index}")]);
            capture.args(["--grpc", "127.0.0.1:0", "--http", "off", "--no-progress", "--spool-dir"]).arg(&spool);
            Running::start(capture, &name)
        })
        .collect();
    // Each writer's first line says where it listens: it has joined.
    let mut writers: Vec<(Running, String)> = writers
        .into_iter()
        .map(|mut writer| {
            let mut line = String::new();
            writer.stdout.read_line(&mut line).unwrap();
            let listening: serde_json::Value = serde_json::from_str(&line)
                .unwrap_or_else(|_| panic!("{}: expected its addresses, got {line:?}", writer.name));
            let grpc = listening["grpc"].as_str().unwrap().to_owned();
            (writer, grpc)
        })
        .collect();

    let (own_before, children_before) = cpu_seconds();
    let steal_before = steal_seconds();
    let started = Instant::now();
    let senders: Vec<Running> = writers
        .iter()
        .enumerate()
        .map(|(index, (_, grpc))| {
            let name = format!("{session}-sender-{index}");
            let mut replay = bench.tape(bench.local_store().to_str().unwrap(), &name);
            replay.args(["replay", "--session", "source", "--speed", "max", "--protocol", "grpc"]);
            replay.args(["--compression", "none", "--no-progress", "--endpoint", &format!("http://{grpc}")]);
            Running::start(replay, &name)
        })
        .collect();
    for sender in senders {
        let report = sender.finish(bench);
        assert_eq!(report["reason"], "finished", "a sender did not finish: {report}");
    }
    let send = started.elapsed();
    let stopping = Instant::now();
    for (writer, _) in &writers {
        writer.terminate();
    }
    for (writer, _) in writers.drain(..) {
        writer.finish(bench);
    }
    let stop = stopping.elapsed();
    let (own_after, children_after) = cpu_seconds();
    let steal = (steal_seconds() - steal_before) / started.elapsed().as_secs_f64();

    let mut show = bench.tape(&store, "show");
    show.args(["sessions", "show", &session]);
    let metadata = bench.json(show, "show");
    assert_eq!(metadata["status"], "completed", "{session} is not sealed: {metadata}");
    let writers = metadata["writers"].as_array().map_or(0, Vec::len);
    assert_eq!(writers, processes, "{session} should have {processes} writers: {}", metadata["writers"]);
    let per_sender = &source["items"];
    let n = processes as u64;
    for (signal, field) in [("traces", "capturedTraces"), ("metrics", "capturedMetrics"), ("logs", "capturedLogs")] {
        let expected = n * items(per_sender, signal);
        assert_eq!(metadata[field].as_u64(), Some(expected), "{session}: {field}");
    }
    let payload_bytes =
        metadata["blobs"].as_array().unwrap().iter().map(|blob| blob["uncompressedBytes"].as_u64().unwrap()).sum();
    let (blobs, stored_bytes) = files_and_bytes(&bench.session_dir(&session).join("raw"));
    CaptureRun {
        processes,
        session,
        spans: n * items(per_sender, "traces"),
        items: n * ["traces", "metrics", "logs"].iter().map(|signal| items(per_sender, signal)).sum::<u64>(),
        send,
        stop,
        blobs,
        stored_bytes,
        payload_bytes,
        children_cpu: children_after - children_before,
        own_cpu: own_after - own_before,
        steal,
    }
}

fn replay_run(bench: &Bench, runtime: &tokio::runtime::Runtime, processes: usize, session: &str) -> ReplayRun {
    let mut show = bench.tape(&bench.s3_store(), "show");
    show.args(["sessions", "show", session]);
    let metadata = bench.json(show, "show");
    let (endpoint, stats, stop, server) = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let stats = Arc::new(Stats::default());
        let intake = Intake::new(None, None, Arc::clone(&stats), DEFAULT_MAX_REQUEST_BYTES, ReceiveLimits::default());
        let stop = CancellationToken::new();
        let shutdown = stop.clone().cancelled_owned();
        let server = tokio::spawn(async move { tape_capture::grpc::serve(listener, intake, shutdown).await });
        (endpoint, stats, stop, server)
    });

    let (own_before, children_before) = cpu_seconds();
    let steal_before = steal_seconds();
    let started = Instant::now();
    let shards: Vec<Running> = (0..processes)
        .map(|index| {
            let name = format!("replay-{processes}-shard-{index}");
            let mut replay = bench.tape(&bench.s3_store(), &name);
            replay.args(["replay", "--session", session, "--shard", &format!("{index}/{processes}")]);
            replay.args(["--speed", "max", "--protocol", "grpc", "--compression", "none", "--no-progress"]);
            replay.args(["--id-seed", "42", "--endpoint", &endpoint]);
            Running::start(replay, &name)
        })
        .collect();
    let mut slowest_shard = Duration::ZERO;
    for shard in shards {
        let report = shard.finish(bench);
        assert_eq!(report["reason"], "finished", "a shard did not finish: {report}");
        let seconds = report["durationSeconds"].as_f64().unwrap();
        slowest_shard = slowest_shard.max(Duration::from_secs_f64(seconds));
    }
    let elapsed = started.elapsed();
    let (own_after, children_after) = cpu_seconds();
    let steal = (steal_seconds() - steal_before) / elapsed.as_secs_f64();

    stop.cancel();
    runtime.block_on(server).unwrap().unwrap();
    let counted = stats.snapshot();
    let received: BTreeMap<Signal, u64> =
        // With no recorder, what it acknowledges counts as ignored (not recorded).
        Signal::ALL.into_iter().map(|signal| (signal, counted.signal(signal).ignored_items)).collect();
    assert_eq!(counted.total().rejected, 0, "the receiver refused requests: {counted:?}");
    for (signal, field) in
        [(Signal::Traces, "capturedTraces"), (Signal::Metrics, "capturedMetrics"), (Signal::Logs, "capturedLogs")]
    {
        let expected = metadata[field].as_u64().unwrap();
        assert_eq!(received.get(&signal).copied().unwrap_or(0), expected, "{session}: {signal:?} received");
    }
    ReplayRun {
        processes,
        spans: received.get(&Signal::Traces).copied().unwrap_or(0),
        items: received.values().sum(),
        elapsed,
        slowest_shard,
        children_cpu: children_after - children_before,
        own_cpu: own_after - own_before,
        steal,
    }
}

#[allow(clippy::cast_precision_loss)] // counts far below 2^52
fn per_second(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

#[allow(clippy::cast_precision_loss)] // counts far below 2^52
fn print_capture(runs: &[CaptureRun]) {
    println!(
        "\ncapture: N `capture --join` writers into one S3 session, each fed by its own `replay --speed max` (gRPC)"
    );
    println!(
        "{:>9} {:>10} {:>7} {:>11} {:>6} {:>8} {:>15} {:>6} {:>11} {:>12} {:>14} {:>15} {:>6}",
        "processes",
        "spans",
        "send s",
        "spans/s",
        "ratio",
        "stop s",
        "spans/s w/ stop",
        "blobs",
        "stored MB",
        "MB/s to S3",
        "CPU s children",
        "CPU s S3 server",
        "steal"
    );
    let base = runs.first().map(|run| per_second(run.spans, run.send));
    for run in runs {
        let rate = per_second(run.spans, run.send);
        let stored_mb = run.stored_bytes as f64 / 1e6;
        println!(
            "{:>9} {:>10} {:>7.2} {:>11.0} {:>6.2} {:>8.2} {:>15.0} {:>6} {:>11.1} {:>12.1} {:>14.2} {:>15.2} {:>6.2}",
            run.processes,
            run.spans,
            run.send.as_secs_f64(),
            rate,
            base.map_or(1.0, |base| rate / base),
            run.stop.as_secs_f64(),
            per_second(run.spans, run.send + run.stop),
            run.blobs,
            stored_mb,
            stored_mb / (run.send + run.stop).as_secs_f64(),
            run.children_cpu,
            run.own_cpu,
            run.steal,
        );
    }
    for run in runs {
        println!(
            "  {}: {} items, {:.1} MB of payload stored as {:.1} MB ({:.2}x) in {} blobs",
            run.session,
            run.items,
            run.payload_bytes as f64 / 1e6,
            run.stored_bytes as f64 / 1e6,
            run.payload_bytes as f64 / run.stored_bytes.max(1) as f64,
            run.blobs,
        );
    }
}

fn print_replay(runs: &[ReplayRun], session: &str) {
    println!("\nreplay: N `replay --shard I/N --speed max` of {session} from S3 into one OTLP/gRPC receiver");
    println!(
        "{:>9} {:>10} {:>10} {:>9} {:>11} {:>6} {:>15} {:>14} {:>24} {:>6}",
        "processes",
        "spans",
        "items",
        "wall s",
        "spans/s",
        "ratio",
        "slowest shard s",
        "CPU s children",
        "CPU s S3 server+receiver",
        "steal"
    );
    let base = runs.first().map(|run| per_second(run.spans, run.elapsed));
    for run in runs {
        let rate = per_second(run.spans, run.elapsed);
        println!(
            "{:>9} {:>10} {:>10} {:>9.2} {:>11.0} {:>6.2} {:>15.2} {:>14.2} {:>24.2} {:>6.2}",
            run.processes,
            run.spans,
            run.items,
            run.elapsed.as_secs_f64(),
            rate,
            base.map_or(1.0, |base| rate / base),
            run.slowest_shard.as_secs_f64(),
            run.children_cpu,
            run.own_cpu,
            run.steal,
        );
    }
}

fn main() {
    let options = Options::parse();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let s3 = runtime.block_on(S3TestServer::start());
    let bench = Bench { binary: options.binary.clone(), s3, work: tempfile::tempdir().unwrap() };
    println!(
        "otlp-tape {} on {} CPUs; S3 test server at {}; high-load seed session of {} s per sender",
        bench.binary.display(),
        std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
        bench.s3.endpoint(),
        options.duration_seconds,
    );

    let source = seed_source(&bench, options.duration_seconds);
    let captures: Vec<CaptureRun> =
        options.processes.iter().map(|processes| capture_run(&bench, *processes, &source)).collect();
    print_capture(&captures);

    let largest = captures.iter().max_by_key(|run| run.processes).unwrap().session.clone();
    let replays: Vec<ReplayRun> =
        options.processes.iter().map(|processes| replay_run(&bench, &runtime, *processes, &largest)).collect();
    print_replay(&replays, &largest);
}
