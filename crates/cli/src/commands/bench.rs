//! `otlp-tape bench seed`: how fast this machine generates a seed session
//! into a compressed local store, and the peak memory it takes. The session
//! goes to a temporary directory that is removed afterwards.

use std::process::ExitCode;

use anyhow::Context;
use serde::Serialize;
use tape_otlp::SignalSet;
use tape_store::LocalStore;

use crate::cli::{BenchSeedArgs, OutputFormat, SeedArgs};
use crate::commands::seed;
use crate::output::{human_bytes, print_json};

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

/// The process's peak resident memory, from `/proc/self/status` (Linux).
fn peak_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: u64 = line.trim_start_matches("VmHWM:").trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}
