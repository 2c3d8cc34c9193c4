//! `otlp-tape bench export`: Parquet export throughput end to end, bytes
//! per span, where the time goes (passes that each do one step more), and
//! the peak memory of exporting a large session (in a child process,
//! `--export-only`) (`tape_bench::ExportBenchConfig`).

use std::process::ExitCode;

use tape_bench::{BYTES_PER_GB, ExportBench, ExportRun};

use super::{CliHost, print_report};
use crate::cli::{BenchExportArgs, OutputFormat};
use crate::output::{human_bytes, print_json};

/// `bench export`
pub async fn run(args: &BenchExportArgs, format: OutputFormat) -> anyhow::Result<ExitCode> {
    let config = args.config().validate()?;
    if let Some(dir) = &args.export_only {
        // The memory measurement's child process: its report, as JSON.
        print_json(&config.export_only(&CliHost, dir).await?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let report = config.run(&CliHost).await?;
    print_report(&report, format, print_export_bench)
}

#[allow(clippy::cast_precision_loss)] // sizes are for reading
fn print_export_bench(report: &ExportBench) {
    println!("bench export: Parquet (zstd) into a local directory, on {} CPUs", report.cpus);
    println!("  session: {}", super::describe_session(&report.session));
    println!("  export: {}", describe_run(&report.export));
    for file in &report.export.tables {
        println!(
            "    {:<40} {:>10} rows {:>10} in {} row groups",
            file.file,
            file.rows,
            human_bytes(file.bytes),
            file.row_groups
        );
    }
    println!("  where the time goes (one thread, each pass one step more):");
    for pass in &report.passes {
        let cpu = pass.cpu_seconds.map_or_else(String::new, |seconds| format!(", CPU {seconds:.2} s"));
        println!(
            "    {:<8} {:>6.2} s ({:>+6.2} s), {:>10.0} spans/s{cpu}: {}",
            pass.step, pass.seconds, pass.step_seconds, pass.spans_per_second, pass.does
        );
    }
    if let Some(memory) = &report.memory {
        println!(
            "  memory: at least {:.2} GB stored: {}",
            memory.target_bytes as f64 / BYTES_PER_GB,
            super::describe_session(&memory.session)
        );
        println!("    exported in a child process: {}", describe_run(&memory.export));
        match memory.export.peak_memory_bytes {
            Some(bytes) => println!("    peak memory of the export (resident): {}", human_bytes(bytes)),
            None => println!("    peak memory: not available on this system"),
        }
        if let Some(bytes) = memory.generation_peak_memory_bytes {
            println!("    (generation and the first export peaked at {} in this process)", human_bytes(bytes));
        }
    }
}

fn describe_run(run: &ExportRun) -> String {
    let cpu = run.cpu_seconds.map_or_else(String::new, |seconds| format!("; CPU {seconds:.2} s"));
    let memory =
        run.peak_memory_bytes.map_or_else(String::new, |bytes| format!("; peak memory {}", human_bytes(bytes)));
    format!(
        "{:.2} s, {:.0} spans/s, {:.0} rows/s; {} rows, {} written, {:.1} bytes per span in traces.parquet{cpu}{memory}",
        run.seconds,
        run.spans_per_second,
        run.rows_per_second,
        run.rows,
        human_bytes(run.bytes),
        run.bytes_per_span
    )
}
