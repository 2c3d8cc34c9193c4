//! `otlp-tape bench compare`: items compared per second, in memory and
//! partitioned on disk, of a high-load session and copies of it batched
//! differently, and the peak memory of comparing a large session (in a
//! child process, `--compare-only`) (`tape_bench::CompareBenchConfig`).

use std::process::ExitCode;

use tape_bench::{BYTES_PER_GB, CompareBench, CompareRun, Rebatched, SessionFacts, describe_partitions};

use super::{CliHost, print_report};
use crate::cli::{BenchCompareArgs, OutputFormat};
use crate::output::{human_bytes, print_json};

/// `bench compare`
pub async fn run(args: &BenchCompareArgs, format: OutputFormat) -> anyhow::Result<ExitCode> {
    let config = args.config().validate()?;
    if let Some(dir) = &args.compare_only {
        // The memory measurement's child process: its report, as JSON.
        print_json(&config.compare_only(&CliHost, dir).await?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let report = config.run(&CliHost).await?;
    print_report(&report, format, print_compare_bench)
}

#[allow(clippy::cast_precision_loss)] // sizes are for reading
fn print_compare_bench(report: &CompareBench) {
    println!("bench compare: tape_compare over a local store, on {} CPUs", report.cpus);
    println!("  expected: {}", describe_session(&report.session));
    println!(
        "  actual: requests of {} items: {}; with differences: {} (written in {:.2} s)",
        report.batch_items,
        describe_copy(&report.identical),
        describe_copy(&report.differences),
        report.rebatch_seconds
    );
    println!("  runs, in the order they ran (items/s: both sides' items read; expected: EXPECTED's alone):");
    for run in &report.runs {
        println!("    {}", describe_run(run));
    }
    println!("  medians:");
    for summary in &report.summaries {
        let cpu = summary.median_cpu_seconds.map_or_else(String::new, |seconds| format!(", CPU {seconds:.2} s"));
        println!(
            "    {:<11} {:<14} {} runs: {:.2} s, {:.0} items/s ({:.0} expected items/s), best {:.0} items/s{cpu}",
            summary.variant,
            describe_partitions(summary.partitions),
            summary.runs,
            summary.median_seconds,
            summary.median_items_per_second,
            summary.median_expected_items_per_second,
            summary.best_items_per_second
        );
    }
    println!("  where the time goes (both sessions again, one thread, each pass one step more):");
    let mut previous = 0.0;
    for pass in &report.passes {
        let cpu = pass.cpu_seconds.map_or_else(String::new, |seconds| format!(", CPU {seconds:.2} s"));
        println!(
            "    {:<8} {:>6.2} s ({:>+6.2} s), {:>10.0} items/s{cpu}: {}",
            pass.step,
            pass.seconds,
            pass.seconds - previous,
            pass.items_per_second,
            pass.does
        );
        previous = pass.seconds;
    }
    if let Some(memory) = &report.memory {
        println!(
            "  memory: at least {:.2} GB stored: {}; its copy: {}",
            memory.target_bytes as f64 / BYTES_PER_GB,
            describe_session(&memory.session),
            describe_copy(&memory.actual)
        );
        println!("    compared in a child process: {}", describe_run(&memory.comparison));
        match memory.comparison.peak_memory_bytes {
            Some(bytes) => println!("    peak memory of the comparison (resident): {}", human_bytes(bytes)),
            None => println!("    peak memory: not available on this system"),
        }
        if let Some(bytes) = memory.generation_peak_memory_bytes {
            println!("    (generation and the throughput runs peaked at {} in this process)", human_bytes(bytes));
        }
    }
}

fn describe_session(session: &SessionFacts) -> String {
    format!(
        "{} {} at {} traces/s: {} items ({} spans) in {} requests, {} of payload ({} stored)",
        session.pattern,
        session.duration,
        session.rate,
        session.items,
        session.spans,
        session.requests,
        human_bytes(session.uncompressed_bytes),
        human_bytes(session.stored_bytes)
    )
}

fn describe_copy(copy: &Rebatched) -> String {
    let alterations = &copy.alterations;
    let changes = if alterations.dropped_spans + alterations.changed() == 0 {
        String::new()
    } else {
        format!(
            " ({} spans dropped, {} renamed, {} given an attribute)",
            alterations.dropped_spans, alterations.renamed_spans, alterations.attributed_spans
        )
    };
    format!("{} items in {} requests{changes}", copy.items, copy.requests)
}

fn describe_run(run: &CompareRun) -> String {
    let cpu = run.cpu_seconds.map_or_else(String::new, |seconds| format!("; CPU {seconds:.2} s"));
    let memory =
        run.peak_memory_bytes.map_or_else(String::new, |bytes| format!("; peak memory {}", human_bytes(bytes)));
    let round = if run.round == 0 { String::new() } else { format!("{} ", run.round) };
    format!(
        "{round}{:<11} {:<14} {:.2} s, {:.0} items/s ({:.0} expected items/s){cpu}{memory}; {}: {}",
        run.variant,
        describe_partitions(run.partitions),
        run.seconds,
        run.items_per_second,
        run.expected_items_per_second,
        if run.passed { "passed" } else { "failed" },
        run.counts
    )
}
