//! `otlp-tape import`: OTLP files in the Collector's file exporter formats
//! become a new session (`tape_files`).

use std::process::ExitCode;

use anyhow::Context;
use tape_session::{SessionStore, Timestamp};

use crate::cli::{ImportArgs, OutputFormat};
use crate::output::{count, note, print_json};

/// `import`
pub async fn run(store: &dyn SessionStore, args: ImportArgs, format: OutputFormat) -> anyhow::Result<ExitCode> {
    let now = Timestamp::from_datetime(chrono::Utc::now()).context("the system clock is before 1970")?;
    let summary = args.config().validate()?.run(store, now).await?;
    if format == OutputFormat::Json {
        print_json(&summary)?;
    } else {
        println!("{}", summary.session_id);
        note(format!(
            "Imported {} into session {} in {}: {} spans, {} data points, {} log records in {} requests.",
            count(summary.files, "file", "files"),
            summary.session_id,
            summary.store,
            summary.items.traces,
            summary.items.metrics,
            summary.items.logs,
            summary.requests.total(),
        ));
    }
    Ok(ExitCode::SUCCESS)
}
