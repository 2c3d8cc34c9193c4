//! `otlp-tape bench ...`: measurements of this machine, run by `tape_bench`
//! with this binary's seed run as its [`Host`]; this module prints their
//! reports.

mod compare;
mod export;
mod replay;
mod timeline;

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use tape_bench::{
    BoxError, CaptureBench, CaptureMemoryBench, GeneratedSession, Host, PatternDefaults, Report, SeedBench,
    SeedRequest, Step,
};
use tape_session::{OutputDir, SessionStore};
use tape_store::{LocalOutputDir, LocalStore};

use tape_seed::{DEFAULT_ERROR_RATE, DEFAULT_RATE, SeedConfig};

use crate::cli::{BenchCommand, OutputFormat};
use crate::output::{human_bytes, note, print_json};

/// The benchmarks' host: `otlp-tape seed`'s patterns and seed run, local
/// stores, and progress as notes on stderr.
struct CliHost;

impl Host for CliHost {
    fn pattern(&self, name: &str) -> Result<PatternDefaults, BoxError> {
        let pattern = tape_seed::patterns::load(name)?;
        let rate = pattern.default_rate.unwrap_or(DEFAULT_RATE);
        let error_rate = pattern.default_error_rate.unwrap_or(DEFAULT_ERROR_RATE);
        Ok(PatternDefaults { pattern, rate, error_rate })
    }

    async fn generate(&self, store: &dyn SessionStore, request: SeedRequest) -> Result<GeneratedSession, BoxError> {
        let config = SeedConfig {
            duration: Some(request.duration_nanos),
            rate: request.rate,
            seed: Some(request.seed),
            session_id: Some(request.session_id),
            description: Some(request.description),
            pattern: request.pattern,
            ..SeedConfig::default()
        };
        let summary = tape_seed::generate_session(store, &config).await?;
        let elapsed = summary.elapsed;
        Ok(GeneratedSession {
            pattern: summary.pattern,
            duration: summary.duration,
            rate: summary.rate,
            traces: summary.traces,
            items: summary.items,
            requests: summary.requests,
            size_bytes: summary.size_bytes,
            elapsed,
        })
    }

    fn local_store(&self, dir: &Path) -> Arc<dyn SessionStore> {
        Arc::new(LocalStore::new(dir))
    }

    fn local_output(&self, dir: &Path) -> Result<Box<dyn OutputDir>, BoxError> {
        Ok(Box::new(LocalOutputDir::new(dir)))
    }

    fn step(&self, step: Step<'_>) {
        note(describe_step(&step));
    }
}

/// The progress line of a step.
fn describe_step(step: &Step<'_>) -> String {
    match step {
        Step::CapturePhases { throughput, connections, latency } => format!(
            "bench capture: {} s closed loop over {connections} connections, then {} s at a fixed rate...",
            throughput.as_secs_f64(),
            latency.as_secs_f64()
        ),
        Step::Uploads { uploads, upload_bytes, spans_per_upload, protocol, binary, pid } => format!(
            "bench capture-memory: {uploads} concurrent uploads of {} ({spans_per_upload} spans each) over {protocol} to {} (pid {pid})...",
            human_bytes(*upload_bytes),
            binary.display()
        ),
        Step::Generating { bench, pattern, measurement } => {
            format!("bench {bench}: generating {pattern} for the {measurement} measurement...")
        }
        Step::ReplayingThroughput { spans, concurrency } => {
            format!("bench replay: replaying {spans} spans at full speed, {concurrency} requests in flight...")
        }
        Step::GeneratingMemory { bench, seconds, pattern, target_bytes } => format!(
            "bench {bench}: generating {seconds} s of {pattern} for at least {} {}...",
            human_bytes(*target_bytes),
            if *bench == "replay" { "of payload" } else { "stored" }
        ),
        Step::ReplayingMemory { payload_bytes } => format!(
            "bench replay: replaying {} of payload in a child process to measure its peak memory...",
            human_bytes(*payload_bytes)
        ),
        Step::ReplayingPacing { requests, speed, seconds } => {
            format!("bench replay: replaying {requests} requests at {speed}x ({seconds:.1} s)...")
        }
        Step::Exporting { spans, child: false } => {
            format!("bench export: exporting {spans} spans to Parquet...")
        }
        Step::Exporting { spans, child: true } => {
            format!("bench export: exporting {spans} spans to Parquet in a child process to measure its peak memory...")
        }
        Step::ExportPasses { spans } => {
            format!("bench export: timing the read, decode, convert and encode passes over {spans} spans...")
        }
        Step::Rebatching { items, batch_items } => {
            format!("bench compare: writing copies of {items} items in requests of {batch_items} items...")
        }
        Step::Comparing { round, runs, variant, partitions } => format!(
            "bench compare: round {round} of {runs}: the {variant} copy, {}...",
            tape_bench::describe_partitions(*partitions)
        ),
        Step::ComparePasses { items } => {
            format!("bench compare: timing the read and decode passes over {items} items...")
        }
        Step::ComparingMemory { items, partitions } => format!(
            "bench compare: comparing {items} items ({}) in a child process to measure its peak memory...",
            tape_bench::describe_partitions(*partitions)
        ),
        _ => format!("{step:?}"),
    }
}

/// `bench ...`
pub async fn run(command: &BenchCommand, format: OutputFormat) -> anyhow::Result<ExitCode> {
    match command {
        BenchCommand::Seed(args) => {
            print_report(&args.config().validate()?.run(&CliHost).await?, format, print_seed_bench)
        }
        BenchCommand::Capture(args) => {
            print_report(&args.config().validate()?.run(&CliHost).await?, format, print_capture_bench)
        }
        BenchCommand::CaptureMemory(args) => {
            print_report(&args.config().validate()?.run(&CliHost).await?, format, print_capture_memory_bench)
        }
        BenchCommand::Replay(args) => replay::run(args, format).await,
        BenchCommand::Export(args) => export::run(args, format).await,
        BenchCommand::Compare(args) => compare::run(args, format).await,
        BenchCommand::Timeline(args) => timeline::run(args, format).await,
    }
}

/// Prints `report` as JSON, or as text with `print_text`; then fails if
/// the benchmark found a problem.
fn print_report<R: Report>(report: &R, format: OutputFormat, print_text: fn(&R)) -> anyhow::Result<ExitCode> {
    if format == OutputFormat::Json {
        print_json(report)?;
    } else {
        print_text(report);
    }
    report.check()?;
    Ok(ExitCode::SUCCESS)
}

/// The peak memory line of a report.
fn print_peak_memory(what: &str, bytes: Option<u64>) {
    match bytes {
        Some(bytes) => println!("  peak memory ({what}): {}", human_bytes(bytes)),
        None => println!("  peak memory: not available on this system"),
    }
}

fn print_seed_bench(report: &SeedBench) {
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
    print_peak_memory("resident", report.peak_memory_bytes);
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
    print_peak_memory("resident, senders included", report.peak_memory_bytes);
}

fn print_capture_memory_bench(report: &CaptureMemoryBench) {
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

/// A generated session in one line, for the benchmarks that generate one
/// (export, replay).
fn describe_session(session: &tape_bench::SessionFacts) -> String {
    format!(
        "{} {} at {} traces/s: {} spans, {} items in {} requests, {} of payload ({} stored), generated in {:.2} s",
        session.pattern,
        session.duration,
        session.rate,
        session.spans,
        session.items,
        session.requests,
        crate::output::human_bytes(session.uncompressed_bytes),
        crate::output::human_bytes(session.stored_bytes),
        session.generation_seconds
    )
}
