//! `otlp-tape sessions merge A B [C ...] --into NEW`: one session made of
//! several (`tape_session::merge_sessions`).

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use tape_session::{MergeConfig, MergeError, MergeReport, SessionId, SessionStore, Timestamp, merge_sessions};

use crate::cli::OutputFormat;
use crate::output::{note, print_json, session_contents};

/// `otlp-tape sessions merge`
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The sessions to merge (at least two, each once, all completed); each becomes a writer of the new session.
    #[arg(required = true, value_name = "SESSION")]
    pub sources: Vec<SessionId>,
    /// The id of the new session; it must not exist.
    #[arg(long, value_name = "SESSION")]
    pub into: SessionId,
    /// Description of the new session; default: "merged from A, B, ...".
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
    /// Merge failed sources too (what they hold); the new session is then failed.
    #[arg(long)]
    pub include_failed: bool,
}

/// `sessions merge`
pub async fn run(store: &dyn SessionStore, args: MergeArgs, format: OutputFormat) -> anyhow::Result<ExitCode> {
    let config = MergeConfig {
        sources: args.sources,
        into: args.into,
        description: args.description,
        include_failed: args.include_failed,
    }
    .validate();
    let config = match config {
        Ok(config) => config,
        Err(error) => return Ok(refused(error)),
    };
    let now = Timestamp::from_datetime(chrono::Utc::now()).context("the system clock is before 1970 or after 2554")?;
    let report = match merge_sessions(store, &config, now).await {
        Ok(report) => report,
        Err(
            error @ (MergeError::Invalid(_)
            | MergeError::SourceActive(_)
            | MergeError::SourceFailed(_)
            | MergeError::TargetExists(_)),
        ) => return Ok(refused(error)),
        Err(error) => return Err(error.into()),
    };
    if format == OutputFormat::Json {
        print_json(&report)?;
    } else {
        print_report(&report);
    }
    Ok(ExitCode::SUCCESS)
}

/// Exit code of a merge refused for what it was asked: a source given
/// twice or only one, `--into` a source or an existing session, a source
/// that is active or failed.
const EXIT_REFUSED: u8 = 2;

/// Prints `error` as `main` does and exits with [`EXIT_REFUSED`].
fn refused(error: MergeError) -> ExitCode {
    crate::output::print_error(&anyhow::Error::from(error));
    ExitCode::from(EXIT_REFUSED)
}

fn print_report(report: &MergeReport) {
    let width = report.sources.iter().map(|source| source.session_id.as_str().len()).max().unwrap_or(0).max(6);
    println!(
        "{:<width$} {:>6} {:>9} {:>11} {:>9} {:>7} {:>11}  WRITERS",
        "SOURCE", "BLOBS", "SPANS", "DATAPOINTS", "LOGS", "PHASES", "ANNOTATIONS"
    );
    for source in &report.sources {
        let writers: Vec<&str> = source.writers.iter().map(tape_session::WriterId::as_str).collect();
        println!(
            "{:<width$} {:>6} {:>9} {:>11} {:>9} {:>7} {:>11}  {}",
            source.session_id,
            source.blobs,
            source.items.traces,
            source.items.metrics,
            source.items.logs,
            source.phases,
            source.annotations,
            writers.join(", "),
        );
    }
    let metadata = &report.metadata;
    note(format!(
        "Merged {} sessions into {} ({}, {}): {}.",
        report.sources.len(),
        report.session_id,
        metadata.session_type,
        metadata.status,
        session_contents(&report.items, &report.requests, report.bytes, metadata.blobs.len()),
    ));
}
