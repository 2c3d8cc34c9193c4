//! `otlp-tape bench replay`: replay throughput into a discarding receiver
//! in the process, peak memory of a large replay (in a child process,
//! `--replay-only`), and pacing accuracy (`tape_bench::ReplayBenchConfig`).

use std::process::ExitCode;

use tape_bench::{BYTES_PER_GB, ReplayBench, ReplayRun, SessionFacts};

use super::{CliHost, print_report};
use crate::cli::{BenchReplayArgs, OutputFormat};
use crate::output::{human_bytes, print_json};

/// `bench replay`
pub async fn run(args: &BenchReplayArgs, format: OutputFormat) -> anyhow::Result<ExitCode> {
    let config = args.config().validate()?;
    if let Some(dir) = &args.replay_only {
        // The memory measurement's child process: its report, as JSON.
        print_json(&config.replay_only(&CliHost, dir).await?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let report = config.run(&CliHost).await?;
    print_report(&report, format, print_replay_bench)
}

#[allow(clippy::cast_precision_loss)] // sizes are for reading
fn print_replay_bench(report: &ReplayBench) {
    println!(
        "bench replay: OTLP/gRPC on 127.0.0.1 into a discarding receiver in the process, {} requests in flight, requests {}, on {} CPUs",
        report.concurrency,
        if report.request_compression == "none" { "not compressed" } else { "gzip" },
        report.cpus
    );
    let throughput = &report.throughput;
    println!("  throughput: {}", super::describe_session(&throughput.session));
    println!("    replayed at full speed, relative timestamps, ids remapped: {}", describe_run(&throughput.replay));
    println!("    {}", describe_counts(&throughput.session, &throughput.replay));
    if let Some(memory) = &report.memory {
        println!(
            "  memory: at least {:.2} GB of payload: {}",
            memory.target_bytes as f64 / BYTES_PER_GB,
            super::describe_session(&memory.session)
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
        println!("  pacing: {}", super::describe_session(&pacing.session));
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
