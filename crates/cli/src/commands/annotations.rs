//! `otlp-tape annotations list | add | push`: a session's annotations, in
//! its `annotations.jsonl` and in the ClickHouse `annotations` table.

use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};
use bytes::Bytes;
use serde::Serialize;
use tape_annotations::ClickHouseSink;
use tape_seed_generator::format_duration;
use tape_session::{
    Annotation, PHASE_ANNOTATION_TYPE, PHASE_KEY_PREFIX, SessionId, SessionMetadata, SessionStore, Timestamp,
    check_phase_name, to_jsonl,
};

use crate::cli::{AnnotationSource, ClickHouseArgs, OutputFormat};
use tape_annotations::{ClickHouseReport, push, session_annotations};

use crate::clickhouse::{push_or_warn, required};
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

/// What `annotations add` was asked to add.
pub struct AddRequest {
    pub key: String,
    pub from: TimeBound,
    pub until: TimeBound,
    pub value: Option<String>,
    pub annotation_type: Option<String>,
    pub description: Option<String>,
    pub created_by: String,
}

/// What `annotations add` did, for `--output json`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AddOutcome {
    session_id: SessionId,
    annotation: Annotation,
    /// False when the session held the same annotation already.
    added: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    clickhouse: Option<ClickHouseReport>,
}

/// The annotation `request` describes for the session of `metadata`, or
/// an error naming the flag that is wrong.
fn build(metadata: &SessionMetadata, request: AddRequest, now: Timestamp) -> anyhow::Result<Annotation> {
    let id = &metadata.session_id;
    let key = request.key.trim().to_owned();
    if key.is_empty() || key.len() > 256 || key.chars().any(|c| c.is_whitespace() || c.is_control()) {
        bail!("--key {key:?} must be 1 to 256 characters without spaces, such as test.phase.incident");
    }
    let phase = key.strip_prefix(PHASE_KEY_PREFIX);
    if let Some(name) = phase {
        check_phase_name(name).map_err(|message| anyhow!("--key {key}: {message}"))?;
    }
    let annotation_type = match request.annotation_type {
        Some(kind) if kind.trim().is_empty() => bail!("--type cannot be empty"),
        Some(kind) => kind,
        None if key.starts_with("test.") => PHASE_ANNOTATION_TYPE.to_owned(),
        None => key.split('.').next().unwrap_or_default().to_owned(),
    };
    if phase.is_some() && annotation_type != PHASE_ANNOTATION_TYPE {
        bail!("--key {key} is a phase, whose type is {PHASE_ANNOTATION_TYPE}, not {annotation_type}");
    }

    let start = Timestamp::from_unix_nanos(request.from.resolve(metadata.start_time));
    let end = Timestamp::from_unix_nanos(request.until.resolve(metadata.start_time));
    if end <= start {
        bail!("--until {} ({end}) must be after --from {} ({start})", request.until, request.from);
    }
    let session_end = metadata.end_time.unwrap_or(now).max(metadata.start_time);
    if start < metadata.start_time || end > session_end {
        let span = format_duration(session_end.unix_nanos() - metadata.start_time.unix_nanos());
        let ending = if metadata.end_time.is_some() { "" } else { " (it is still being recorded)" };
        bail!(
            "the range {start} .. {end} is outside session {id}, which spans {} .. {session_end} ({span}){ending}; \
             give --from and --until as offsets such as 10s, or as times within it",
            metadata.start_time
        );
    }

    let annotation_value = match (request.value, phase) {
        (Some(text), _) => {
            serde_json::from_str(&text).map_err(|error| anyhow!("--value is not JSON: {error}: {text}"))?
        }
        (None, Some(name)) => serde_json::json!({
            "sessionId": id,
            "phase": name,
            "flags": [],
            "description": request.description.unwrap_or_default(),
        }),
        (None, None) => match request.description {
            Some(description) => serde_json::json!({ "description": description }),
            None => serde_json::json!({}),
        },
    };
    let annotation = Annotation {
        session_id: id.clone(),
        annotation_type,
        annotation_key: key,
        annotation_value,
        time_range_start: start,
        time_range_end: end,
        created_at: now,
        created_by: request.created_by,
    };
    annotation.check(id).map_err(|message| anyhow!("the annotation is not valid: {message}"))?;
    Ok(annotation)
}

/// Adds the annotation `request` describes to session `id` (unless it has
/// it already) and pushes it to ClickHouse when configured; what `add`
/// does without printing, for `serve` too.
pub async fn add_annotation(
    store: &dyn SessionStore,
    id: &SessionId,
    request: AddRequest,
    clickhouse: &ClickHouseArgs,
) -> anyhow::Result<AddOutcome> {
    let metadata = store.read_metadata(id).await?;
    let now = Timestamp::from_datetime(chrono::Utc::now()).context("the system clock is out of range")?;
    let annotation = build(&metadata, request, now)?;
    let mut annotations = session_annotations(store, id).await?;
    let identity = annotation.identity();
    let added = !annotations.iter().any(|known| known.identity() == identity);
    if added {
        annotations.push(annotation.clone());
        store
            .write_annotations(id, Bytes::from(to_jsonl(&annotations)))
            .await
            .with_context(|| format!("cannot write the annotations of session {id} in {}", store.location()))?;
    }
    let clickhouse = match crate::clickhouse::config(clickhouse) {
        None => None,
        Some(config) => Some(push_or_warn(config, id, std::slice::from_ref(&annotation), "the annotation").await),
    };
    Ok(AddOutcome { session_id: id.clone(), annotation, added, clickhouse })
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
