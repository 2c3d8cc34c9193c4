//! `otlp-tape export`: a session's records as OTLP files in the Collector's
//! file exporter formats, one file per signal; with `--by-phase`, one
//! directory per phase plus `unlabelled` and a `labels.json` manifest
//! (`tape_files`).

use std::path::Path;
use std::process::ExitCode;

use tape_files::{ExportOutcome, ExportedFiles, LABELS_FILE, Labels};
use tape_session::SessionStore;

use crate::cli::{ExportArgs, OutputFormat};
use crate::output::{note, print_json};

/// `export`
pub async fn run(store: &dyn SessionStore, args: ExportArgs, format: OutputFormat) -> anyhow::Result<ExitCode> {
    let config = args.config().validate()?;
    match config.run(store).await? {
        ExportOutcome::Files(files) => print_files(&files, format)?,
        ExportOutcome::ByPhase(labels) => print_labels(&labels, &config.config().out, format)?,
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
        note(format!("Session {} holds no records; no file was written.", exported.session_id));
    }
    Ok(())
}

fn print_labels(labels: &Labels, out: &Path, format: OutputFormat) -> anyhow::Result<()> {
    if format == OutputFormat::Json {
        return print_json(labels);
    }
    println!("{}", out.join(LABELS_FILE).display());
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
