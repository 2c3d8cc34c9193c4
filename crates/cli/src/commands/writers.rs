//! The `sessions` commands of sessions with several writers (`capture
//! --join`): `sessions seal S`, `sessions repair S --writer W`, and the
//! writers' table of `sessions show`.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::json;
use tape_session::{
    SealOptions, SealOutcome, SessionId, SessionMetadata, SessionStatus, SessionStore, Timestamp, WRITER_STALE_AFTER,
    WriterEntry, WriterId, WriterLiveness, WriterManifest, read_manifests, repair_writer, seal_session,
};
use tape_store::{StoreLocation, WriterLockState};
use tracing::warn;

use crate::cli::OutputFormat;
use crate::output::{human_bytes, note, print_json};

/// How long `sessions seal` waits for another process that is sealing the
/// session (a writer stopping) before it merges the manifests itself.
const SEAL_WAIT: Duration = Duration::from_secs(10);

fn now() -> anyhow::Result<Timestamp> {
    Timestamp::from_datetime(chrono::Utc::now()).context("the system clock is before 1970 or after 2554")
}

/// `sessions seal ID`: merges the writers' manifests into `metadata.json`
/// once every writer has stopped. Exit 1, naming the active writers, when
/// one has not.
pub async fn seal(store: &dyn SessionStore, id: &SessionId, format: OutputFormat) -> anyhow::Result<ExitCode> {
    let options = SealOptions { wait: SEAL_WAIT, by_writer: false };
    let outcome = seal_session(store, id, None, options, now()?)
        .await
        .with_context(|| format!("cannot seal session {id} in {}", store.location()))?;
    if format == OutputFormat::Json {
        print_json(&seal_json(id, &outcome))?;
    }
    match &outcome {
        SealOutcome::Sealed(metadata) | SealOutcome::AlreadySealed(metadata) if format == OutputFormat::Text => {
            let verb = if matches!(outcome, SealOutcome::Sealed(_)) { "Sealed" } else { "Already sealed:" };
            println!(
                "{verb} session {id} ({}) with {}: {}.",
                metadata.status,
                crate::output::count(metadata.writers.len(), "writer", "writers"),
                crate::output::session_contents(
                    &metadata.item_counts(),
                    &metadata.request_counts,
                    metadata.total_size_bytes,
                    metadata.blobs.len()
                ),
            );
        }
        SealOutcome::Sealed(_) | SealOutcome::AlreadySealed(_) => {}
        SealOutcome::WritersActive(active) => bail!("{}", active_message(id, active)),
    }
    Ok(ExitCode::SUCCESS)
}

/// Why a session cannot be sealed yet, and what to do about a writer that
/// crashed.
pub fn active_message(id: &SessionId, active: &[WriterId]) -> String {
    let names = active.iter().map(WriterId::as_str).collect::<Vec<_>>().join(", ");
    let example = active.first().map_or("W", WriterId::as_str);
    format!(
        "session {id} is not sealed: {} still active ({names}); the last writer to stop seals it, and a writer that \
         crashed is finished with `otlp-tape sessions repair {id} --writer {example}`",
        crate::output::count(active.len(), "writer is", "writers are"),
    )
}

/// The JSON of a seal's outcome, as `--output json` prints it.
fn seal_json(id: &SessionId, outcome: &SealOutcome) -> serde_json::Value {
    match outcome {
        SealOutcome::Sealed(metadata) => json!({ "sessionId": id, "outcome": "sealed", "session": metadata }),
        SealOutcome::AlreadySealed(metadata) => {
            json!({ "sessionId": id, "outcome": "alreadySealed", "session": metadata })
        }
        SealOutcome::WritersActive(active) => {
            json!({ "sessionId": id, "outcome": "writersActive", "activeWriters": active })
        }
    }
}

/// Exit code of a repair refused because the writer looks alive.
const EXIT_REFUSED: u8 = 2;

/// `sessions repair ID --writer W`: finishes one writer that stopped without
/// finishing (its spool files under `spool_dir` included), leaving the other
/// writers alone, and seals the session when no writer is active any more.
///
/// A writer whose capture lock is held on this host runs: refused. One whose
/// lock is there and free stopped here: repaired, holding its lock. One this
/// host knows nothing of (it ran elsewhere) is refused with exit 2 while its
/// manifest was written within [`WRITER_STALE_AFTER`] (it heartbeats),
/// unless `force`.
pub async fn repair(
    location: &StoreLocation,
    id: &SessionId,
    writer: &WriterId,
    force: bool,
    spool_dir: Option<&Path>,
    format: OutputFormat,
) -> anyhow::Result<ExitCode> {
    let spool_dir = crate::store::spool_dir(spool_dir);
    let (_lock, liveness) = match tape_store::writer_lock_state(&spool_dir, id, writer)? {
        WriterLockState::Held => {
            bail!("writer {writer} of session {id} is being captured by a running otlp-tape; stop it first")
        }
        WriterLockState::Stopped(lock) => (Some(lock), WriterLiveness::Stopped),
        WriterLockState::Unknown if force => (None, WriterLiveness::Stopped),
        WriterLockState::Unknown => (None, WriterLiveness::Unknown { stale_after: WRITER_STALE_AFTER }),
    };
    let store = crate::store::open_spooled(location, &spool_dir)?;
    let report = match repair_writer(store.as_ref(), id, writer, now()?, liveness).await {
        Ok(report) => report,
        Err(error @ tape_session::Error::WriterLive { .. }) => {
            crate::output::print_error(&anyhow::Error::new(error));
            return Ok(ExitCode::from(EXIT_REFUSED));
        }
        Err(error) => {
            return Err(anyhow::Error::new(error).context(format!("cannot repair writer {writer} of session {id}")));
        }
    };
    for damaged in &report.damaged {
        warn!(session = %id, %writer, blob = %damaged.key, "Kept a damaged blob: {}", damaged.problem);
    }
    let metadata = store.read_metadata(id).await?;
    if format == OutputFormat::Json {
        print_json(&json!({ "writerId": writer, "report": report, "sessionStatus": metadata.status }))?;
        return Ok(ExitCode::SUCCESS);
    }
    print!("{report}");
    if metadata.status == SessionStatus::Active {
        let manifests = read_manifests(store.as_ref(), id).await?;
        let active: Vec<WriterId> = manifests
            .iter()
            .filter(|manifest| manifest.status == SessionStatus::Active)
            .map(|manifest| manifest.writer_id.clone())
            .collect();
        note(format!("Repaired writer {writer}; {}.", active_message(id, &active)));
    } else {
        note(format!(
            "Repaired writer {writer}; session {id} is sealed ({}, {}).",
            metadata.status,
            crate::output::count(metadata.writers.len(), "writer", "writers")
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// The writers of a session as `sessions show` lists them: those of
/// `metadata.json` once it is sealed, else from the writers' manifests
/// (none for a session of one writer).
pub async fn writers_of(store: &dyn SessionStore, metadata: &SessionMetadata) -> anyhow::Result<Vec<WriterEntry>> {
    if !metadata.writers.is_empty() || metadata.status != SessionStatus::Active {
        return Ok(metadata.writers.clone());
    }
    let manifests = read_manifests(store, &metadata.session_id)
        .await
        .with_context(|| format!("cannot read the writers' manifests of session {}", metadata.session_id))?;
    Ok(manifests.iter().map(WriterManifest::entry).collect())
}

/// Prints the writers' table of `sessions show`.
pub fn print_writers(writers: &[WriterEntry], sealed: bool) {
    if writers.is_empty() {
        return;
    }
    println!();
    let from = if sealed { "" } else { " (from their manifests; the session is not sealed)" };
    println!("Writers      {}{from}", writers.len());
    let width = writers.iter().map(|writer| writer.writer_id.as_str().len()).max().unwrap_or(0).max(6);
    println!(
        "{:<width$} {:<20} {:<9} {:<20} {:<20} {:>9} {:>11} {:>9} {:>6} {:>10}  REPAIRED",
        "WRITER", "HOST", "STATUS", "START", "END", "SPANS", "DATAPOINTS", "LOGS", "BLOBS", "SIZE"
    );
    let time = |time: Option<Timestamp>| {
        time.map_or_else(|| "-".to_owned(), |time| time.to_datetime().format("%Y-%m-%dT%H:%M:%SZ").to_string())
    };
    for writer in writers {
        println!(
            "{:<width$} {:<20} {:<9} {:<20} {:<20} {:>9} {:>11} {:>9} {:>6} {:>10}  {}",
            writer.writer_id,
            writer.host.as_deref().unwrap_or("-"),
            writer.status,
            time(Some(writer.start_time)),
            time(writer.end_time),
            writer.captured_traces,
            writer.captured_metrics,
            writer.captured_logs,
            writer.blobs,
            human_bytes(writer.total_size_bytes),
            if writer.repaired { "yes" } else { "no" },
        );
    }
}
