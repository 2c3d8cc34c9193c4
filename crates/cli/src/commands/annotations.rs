//! `otlp-tape annotations list | add | push`: a session's annotations, in
//! its `annotations.jsonl` and in the ClickHouse `annotations` table.

use std::process::ExitCode;

use anyhow::Context;
use serde::Serialize;
use tape_annotations::{AddAnnotationConfig, AddOutcome, ClickHouseSink, parse_value_text};
use tape_seed_generator::format_duration;
use tape_session::{SessionId, SessionStore, Timestamp};

use crate::cli::{AnnotationSource, ClickHouseArgs, OutputFormat};
use tape_annotations::{ClickHouseReport, push, session_annotations};

use crate::clickhouse::required;
use crate::output::{note, print_json};
use tape_session::TimeBound;

/// `annotations list`
pub async fn list(
    store: &dyn SessionStore,
    id: &SessionId,
    source: AnnotationSource,
    clickhouse: &ClickHouseArgs,
    format: OutputFormat,
) -> anyhow::Result<ExitCode> {
    let metadata = store.read_metadata(id).await?;
    let (annotations, from) = match source {
        AnnotationSource::Session => (session_annotations(store, id).await?, "annotations.jsonl".to_owned()),
        AnnotationSource::Clickhouse => {
            let sink = ClickHouseSink::connect(required(clickhouse)?).await?;
            (sink.list(id).await?, format!("ClickHouse {}", sink.location()))
        }
    };
    if format == OutputFormat::Json {
        print_json(&annotations)?;
        return Ok(ExitCode::SUCCESS);
    }
    if annotations.is_empty() {
        note(format!("No annotations for session {id} in {from}."));
        return Ok(ExitCode::SUCCESS);
    }
    let width = annotations.iter().map(|annotation| annotation.annotation_key.len()).max().unwrap_or(0);
    let offset = |time: Timestamp| {
        let start = metadata.start_time.unix_nanos();
        match time.unix_nanos().checked_sub(start) {
            Some(after) => format!("+{}", format_duration(after)),
            None => format!("-{}", format_duration(start - time.unix_nanos())),
        }
    };
    for annotation in &annotations {
        println!(
            "{:<width$}  {} .. {}  ({} .. {})  by {}  {}",
            annotation.annotation_key,
            annotation.time_range_start,
            annotation.time_range_end,
            offset(annotation.time_range_start),
            offset(annotation.time_range_end),
            annotation.created_by,
            annotation.value_text(),
        );
    }
    note(format!(
        "{} of session {id} in {}",
        crate::output::count(annotations.len(), "annotation", "annotations"),
        crate::output::full_stop(from)
    ));
    Ok(ExitCode::SUCCESS)
}

/// What `annotations add` was asked to add (and the control API, until
/// it moves to its own crate): the flags, `--value` as JSON text.
pub struct AddRequest {
    pub key: String,
    pub from: TimeBound,
    pub until: TimeBound,
    pub value: Option<String>,
    pub annotation_type: Option<String>,
    pub description: Option<String>,
    pub created_by: String,
}

/// Adds the annotation `request` describes to session `id` (unless it has
/// it already) and pushes it to ClickHouse when configured, warning when
/// that fails; what `add` does without printing the outcome.
pub async fn add_annotation(
    store: &dyn SessionStore,
    id: &SessionId,
    request: AddRequest,
    clickhouse: &ClickHouseArgs,
) -> anyhow::Result<AddOutcome> {
    let config = AddAnnotationConfig {
        key: request.key,
        from: request.from,
        until: request.until,
        value: request.value.as_deref().map(parse_value_text).transpose()?,
        annotation_type: request.annotation_type,
        description: request.description,
        created_by: Some(request.created_by),
    };
    let now = Timestamp::from_datetime(chrono::Utc::now()).context("the system clock is out of range")?;
    let outcome =
        tape_annotations::add_annotation(store, id, config, crate::clickhouse::config(clickhouse), now).await?;
    if let Some(warning) = outcome.clickhouse.as_ref().and_then(|report| report.warning("the annotation", id)) {
        note(warning);
    }
    Ok(outcome)
}

/// `annotations add`
pub async fn add(
    store: &dyn SessionStore,
    id: &SessionId,
    request: AddRequest,
    clickhouse: &ClickHouseArgs,
    format: OutputFormat,
) -> anyhow::Result<ExitCode> {
    let outcome = add_annotation(store, id, request, clickhouse).await?;
    if format == OutputFormat::Json {
        print_json(&outcome)?;
        return Ok(ExitCode::SUCCESS);
    }
    let AddOutcome { annotation, added, clickhouse, .. } = outcome;
    let range = format!("{} .. {}", annotation.time_range_start, annotation.time_range_end);
    if added {
        note(format!("Added {} ({range}) to session {id}.", annotation.annotation_key));
    } else {
        note(format!("Session {id} already has {} ({range}); nothing was added.", annotation.annotation_key));
    }
    if let Some(ClickHouseReport { table, inserted, error: None, .. }) = &clickhouse {
        let what = if *inserted == 0 { "was there already" } else { "written" };
        note(format!("  ClickHouse {table}: {what}."));
    }
    Ok(ExitCode::SUCCESS)
}

/// What `annotations push` did, for `--output json`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Pushed {
    session_id: SessionId,
    table: String,
    inserted: usize,
    already_present: usize,
}

/// `annotations push`
pub async fn push_session(
    store: &dyn SessionStore,
    id: &SessionId,
    clickhouse: &ClickHouseArgs,
    format: OutputFormat,
) -> anyhow::Result<ExitCode> {
    let config = required(clickhouse)?;
    store.read_metadata(id).await?;
    let annotations = session_annotations(store, id).await?;
    let (table, outcome) = push(config, id, &annotations).await?;
    if format == OutputFormat::Json {
        print_json(&Pushed {
            session_id: id.clone(),
            table,
            inserted: outcome.inserted,
            already_present: outcome.already_present,
        })?;
    } else if annotations.is_empty() {
        note(format!("Session {id} has no annotations; nothing was written to ClickHouse {table}."));
    } else {
        note(format!(
            "Pushed the annotations of session {id} to ClickHouse {table}: {} new, {} already there.",
            outcome.inserted, outcome.already_present
        ));
    }
    Ok(ExitCode::SUCCESS)
}
