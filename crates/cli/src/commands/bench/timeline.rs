//! `otlp-tape bench timeline`: what opening a large session's page reads,
//! its timeline built from the blobs, and the writer's cost of counting it
//! (`tape_bench::TimelineBenchConfig`).

use std::process::ExitCode;

use tape_bench::{BYTES_PER_GB, OPEN_GOAL_SECONDS, TimelineBench};

use super::{CliHost, print_report};
use crate::cli::{BenchTimelineArgs, OutputFormat};
use crate::output::human_bytes;

/// `bench timeline`
pub async fn run(args: &BenchTimelineArgs, format: OutputFormat) -> anyhow::Result<ExitCode> {
    let report = args.config().validate()?.run(&CliHost).await?;
    print_report(&report, format, print_timeline_bench)
}

#[allow(clippy::cast_precision_loss)] // sizes are for reading
fn print_timeline_bench(report: &TimelineBench) {
    println!(
        "bench timeline: a session of at least {} ({:.3} GB) stored in a local directory, on {} CPUs",
        human_bytes(report.target_bytes),
        report.target_bytes as f64 / BYTES_PER_GB,
        report.cpus
    );
    println!("  session: {}", super::describe_session(&report.session));
    println!("  timeline.json: {} rows (seconds), {}", report.timeline_rows, human_bytes(report.timeline_bytes));
    let open = &report.open;
    println!(
        "  open the session's page ({} runs): median {:.1} ms, max {:.1} ms ({} the goal of {OPEN_GOAL_SECONDS} s)",
        open.runs,
        open.median_seconds * 1e3,
        open.max_seconds * 1e3,
        if open.within_goal { "within" } else { "NOT within" }
    );
    println!(
        "    metadata {:.1} ms, annotations {:.1} ms, timeline (kept) {:.1} ms",
        open.metadata_seconds * 1e3,
        open.annotations_seconds * 1e3,
        open.timeline_seconds * 1e3
    );
    let rebuild = &report.rebuild;
    let cpu = rebuild.cpu_seconds.map_or_else(String::new, |seconds| format!("; CPU {seconds:.2} s"));
    println!(
        "  build from the blobs (timeline.json deleted): {:.2} s, {:.1} MB/s stored, {:.1} MB/s uncompressed, {:.0} records/s{cpu}",
        rebuild.seconds, rebuild.stored_mb_per_second, rebuild.uncompressed_mb_per_second, rebuild.records_per_second
    );
    let builder = &report.builder;
    println!(
        "  the writer's counting: {} records ({} of traces, {} of payload) in {:.3} s: {:.0} ns per record, {:.0} MB/s of payload, {:.2}% of the generation's time",
        builder.records,
        builder.trace_records,
        human_bytes(builder.payload_bytes),
        builder.seconds,
        builder.nanos_per_record,
        builder.payload_mb_per_second,
        builder.share_of_generation * 100.0
    );
    for problem in &report.problems {
        println!("  problem: {problem}");
    }
}
