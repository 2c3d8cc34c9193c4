//! `otlp-tape export`: a session's records as OTLP files in the Collector's
//! file exporter formats, one file per signal, or as Parquet tables in the
//! schema of its ClickHouse exporter, one file per table; with
//! `--by-phase`, one directory per phase plus `unlabelled` and a
//! `labels.json` manifest (`tape_files`).

use std::io::IsTerminal;
use std::process::ExitCode;

use tape_files::{ExportOutcome, ExportProgress, ExportedFiles, ExportedTables, LABELS_FILE, Labels};
use tape_session::{OutputDir, SessionStore};

use crate::cli::{ExportArgs, OutputFormat};
use crate::output::{human_bytes, note, print_json};
use crate::store::open_output;

/// Exit code of an export refused: a session of several writers that is
/// not sealed yet.
const EXIT_REFUSED: u8 = 2;

/// `export`
pub async fn run(store: &dyn SessionStore, args: ExportArgs, format: OutputFormat) -> anyhow::Result<ExitCode> {
    let config = args.config().validate()?;
    let output = open_output(&config.config().out)?;
    let bar = (std::io::stderr().is_terminal() && format == OutputFormat::Text).then(crate::output::records_bar);
    let show = |progress: ExportProgress| {
        if let Some(bar) = &bar {
            bar.set_length(progress.records_total);
            bar.set_position(progress.records_done);
            bar.set_message(format!("{} items, {} written", progress.items_done, human_bytes(progress.bytes_written)));
        }
    };
    let outcome = config.run(store, output.as_ref(), &show).await;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let outcome = match outcome {
        // A session of several writers is exported once it is sealed.
        Err(error @ tape_files::Error::Unsealed { .. }) => {
            crate::output::print_error(&anyhow::Error::new(error));
            return Ok(ExitCode::from(EXIT_REFUSED));
        }
        outcome => outcome?,
    };
    match outcome {
        ExportOutcome::Files(files) => print_files(&files, format)?,
        ExportOutcome::ByPhase(labels) => print_labels(&labels, output.as_ref(), format)?,
        ExportOutcome::Tables(tables) => print_tables(&tables, output.as_ref(), format)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn print_files(exported: &ExportedFiles, format: OutputFormat) -> anyhow::Result<()> {
    if format == OutputFormat::Json {
        return print_json(&serde_json::json!({ "sessionId": exported.session_id, "files": exported.files }));
    }
    for file in &exported.files {
        println!("{}", file.path.display());
        note(format!("  {} requests, {} {}", file.requests, file.items, file.signal.item_noun()));
    }
    if exported.files.is_empty() {
        note(format!("Nothing of session {} was selected; no file was written.", exported.session_id));
    }
    Ok(())
}

fn print_tables(exported: &ExportedTables, output: &dyn OutputDir, format: OutputFormat) -> anyhow::Result<()> {
    if format == OutputFormat::Json {
        return print_json(exported);
    }
    if let Some(labels) = &exported.labels {
        print_labels(labels, output, format)?;
        for file in &exported.files {
            note(format!("  {}: {} rows, {}", file.file, file.rows, human_bytes(file.bytes)));
        }
        return Ok(());
    }
    for file in &exported.files {
        println!("{}", output.describe(&file.file));
        note(format!("  {} rows, {}", file.rows, human_bytes(file.bytes)));
    }
    if exported.files.is_empty() {
        note(format!("Nothing of session {} was selected; no file was written.", exported.session_id));
    }
    Ok(())
}

fn print_labels(labels: &Labels, output: &dyn OutputDir, format: OutputFormat) -> anyhow::Result<()> {
    if format == OutputFormat::Json {
        return print_json(labels);
    }
    println!("{}", output.describe(LABELS_FILE));
    let width = labels.phases.iter().map(|entry| entry.phase.len()).max().unwrap_or(0);
    for entry in &labels.phases {
        let range = match (entry.time_range_start, entry.time_range_end) {
            (Some(start), Some(end)) => format!("{start} .. {end}"),
            _ => "outside every phase".to_owned(),
        };
        note(format!(
            "  {:<width$}  {range}  {} requests: {} spans, {} data points, {} log records",
            entry.phase,
            entry.requests.total(),
            entry.items.traces,
            entry.items.metrics,
            entry.items.logs,
        ));
    }
    if labels.overlapping {
        note("  Phases overlap: a record in several phases is in each of their directories.");
    }
    Ok(())
}
