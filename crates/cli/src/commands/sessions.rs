//! `otlp-tape sessions list | show | delete | verify | repair`.

use std::path::Path;
use std::process::ExitCode;
pub use tape_session::error_chain;

use anyhow::{Context, bail};
use tape_seed::VerifyReport;
use tape_session::{SessionId, SessionStore, SessionType, Timestamp, list_sessions, repair_session};
use tape_store::StoreLocation;
use tracing::warn;

use crate::cli::{OutputFormat, PruneArgs};
use crate::output::{human_bytes, note, print_json};
use tape_session::retention::{self, PruneReport};

/// `sessions list`
pub async fn list(
    store: &dyn SessionStore,
    session_type: Option<SessionType>,
    format: OutputFormat,
) -> anyhow::Result<ExitCode> {
    let listing = list_sessions(store, session_type)
        .await
        .with_context(|| format!("cannot list the sessions in {}", store.location()))?;
    for (id, error) in &listing.unreadable {
        warn!(session = %id, "Skipped an unreadable session: {}", error_chain(error));
    }
    if format == OutputFormat::Json {
        print_json(&listing.sessions)?;
        return Ok(ExitCode::SUCCESS);
    }
    if listing.sessions.is_empty() {
        note(crate::output::full_stop(format!("No sessions in {}", store.location())));
        return Ok(ExitCode::SUCCESS);
    }
    // Ids longer than 40 characters (generated seed ids can be) widen the column.
    let width = listing.sessions.iter().map(|session| session.session_id.as_str().len()).max().unwrap_or(0).max(40);
    println!(
        "{:<width$} {:<8} {:<9} {:<24} {:>9} {:>11} {:>9} {:>10}  DESCRIPTION",
        "SESSION", "TYPE", "STATUS", "START", "SPANS", "DATAPOINTS", "LOGS", "SIZE"
    );
    for session in &listing.sessions {
        println!(
            "{:<width$} {:<8} {:<9} {:<24} {:>9} {:>11} {:>9} {:>10}  {}",
            session.session_id,
            session.session_type,
            session.status,
            session.start_time.to_datetime().format("%Y-%m-%dT%H:%M:%SZ"),
            session.captured_traces,
            session.captured_metrics,
            session.captured_logs,
            human_bytes(session.total_size_bytes),
            match session.writers.len() {
                0 => session.description.clone().unwrap_or_default(),
                writers => format!("[{writers} writers] {}", session.description.as_deref().unwrap_or("")),
            },
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `sessions show ID`
pub async fn show(store: &dyn SessionStore, id: &SessionId, format: OutputFormat) -> anyhow::Result<ExitCode> {
    let mut metadata = store.read_metadata(id).await?;
    // A session of several writers lists them (from their manifests while it is active).
    let writers = crate::commands::writers::writers_of(store, &metadata).await?;
    if format == OutputFormat::Json {
        metadata.writers = writers;
        print_json(&metadata)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!("Session      {}", metadata.session_id);
    println!("Type         {}", metadata.session_type);
    println!("Status       {}", metadata.status);
    println!("Start        {}", metadata.start_time);
    if let Some(end) = metadata.end_time {
        println!("End          {end}");
    }
    if let Some(description) = &metadata.description {
        println!("Description  {description}");
    }
    if let Some(diagnostic) = &metadata.diagnostic_session_id {
        println!("Diagnostic   {diagnostic}");
    }
    if !metadata.enabled_flags.is_empty() {
        println!("Flags        {}", metadata.enabled_flags.join(", "));
    }
    println!("Created by   {}", metadata.created_by);
    println!("Stored at    {}/{}", store.location(), metadata.s3_prefix);
    println!(
        "Items        {} spans, {} data points, {} log records",
        metadata.captured_traces, metadata.captured_metrics, metadata.captured_logs
    );
    let requests = metadata.request_counts;
    println!("Requests     {} traces, {} metrics, {} logs", requests.traces, requests.metrics, requests.logs);
    println!("Size         {} in {} blobs", human_bytes(metadata.total_size_bytes), metadata.blobs.len());
    println!("Content hash {}", metadata.content_hash);
    for (name, value) in &metadata.parameters {
        println!("Parameter    {name} = {value}");
    }
    if !metadata.blobs.is_empty() {
        println!();
        println!("{:<60} {:>8} {:>9} {:>10}", "BLOB", "RECORDS", "ITEMS", "SIZE");
        for blob in &metadata.blobs {
            println!(
                "{:<60} {:>8} {:>9} {:>10}",
                blob.key.to_string(),
                blob.records,
                blob.items,
                human_bytes(blob.compressed_bytes)
            );
        }
    }
    crate::commands::writers::print_writers(&writers, metadata.status != tape_session::SessionStatus::Active);
    Ok(ExitCode::SUCCESS)
}

/// `sessions delete ID`: refused for a session a running capture holds
/// (its lock under `spool_dir`), even with `force`.
pub async fn delete(
    store: &dyn SessionStore,
    id: &SessionId,
    force: bool,
    spool_dir: Option<&Path>,
    format: OutputFormat,
) -> anyhow::Result<ExitCode> {
    let spool_dir = crate::store::spool_dir(spool_dir);
    tape_store::delete_session(store, id, force, &spool_dir).await?;
    if format == OutputFormat::Json {
        print_json(&serde_json::json!({ "deleted": id }))?;
    } else {
        note(crate::output::full_stop(format!("Deleted session {id} from {}", store.location())));
    }
    Ok(ExitCode::SUCCESS)
}

/// `sessions prune`: deletes what the retention policy of `args` says,
/// keeping the sessions whose capture lock a running process holds.
pub async fn prune(store: &dyn SessionStore, args: &PruneArgs, format: OutputFormat) -> anyhow::Result<ExitCode> {
    let policy = args.policy.validate()?;
    let spool_dir = crate::store::spool_dir(args.spool_dir.as_deref());
    let protected = crate::lock::locked_sessions(&spool_dir)?;
    let now = Timestamp::from_datetime(chrono::Utc::now()).context("the system clock is before 1970 or after 2554")?;
    let report = retention::prune(store, &policy, now, &protected, args.policy.dry_run).await?;
    if format == OutputFormat::Json {
        print_json(&report)?;
    } else {
        print_prune_report(&report);
    }
    if !report.is_success() {
        bail!("{} of {} deletions failed", report.failed.len(), report.failed.len() + report.deleted.len());
    }
    Ok(ExitCode::SUCCESS)
}

fn print_prune_report(report: &PruneReport) {
    let verb = if report.dry_run { "would delete" } else { "deleted" };
    let lines = report
        .deleted
        .iter()
        .map(|decision| (verb, decision, None))
        .chain(report.failed.iter().map(|failed| ("FAILED", &failed.decision, Some(failed.error.as_str()))));
    let width = report.deleted.iter().chain(report.failed.iter().map(|failed| &failed.decision));
    let width = width.map(|decision| decision.session_id.as_str().len()).max().unwrap_or(0);
    for (verb, decision, error) in lines {
        println!(
            "{verb:<12} {:<width$} {:<8} {} {:>10}  {}{}",
            decision.session_id,
            decision.session_type,
            decision.start_time.to_datetime().format("%Y-%m-%dT%H:%M:%SZ"),
            human_bytes(decision.size_bytes),
            decision.reason,
            error.map_or(String::new(), |error| format!(": {error}")),
        );
    }
    let count = |count: usize| if count == 1 { "1 session".to_owned() } else { format!("{count} sessions") };
    let skipped = if report.skipped.is_empty() {
        String::new()
    } else {
        format!("; skipped {} whose metadata cannot be read", count(report.skipped.len()))
    };
    if report.dry_run {
        println!(
            "Would delete {} ({}) and keep {}{skipped}; nothing was deleted (--dry-run).",
            count(report.deleted.len()),
            human_bytes(report.freed_bytes),
            count(report.kept),
        );
    } else {
        let failed = if report.failed.is_empty() { String::new() } else { format!("; {} failed", report.failed.len()) };
        println!(
            "Deleted {} ({}), kept {}{failed}{skipped}.",
            count(report.deleted.len()),
            human_bytes(report.freed_bytes),
            count(report.kept),
        );
    }
}

/// `sessions verify ID`
pub async fn verify(store: &dyn SessionStore, id: &SessionId, format: OutputFormat) -> anyhow::Result<ExitCode> {
    let report = tape_seed::verify(store, id).await?;
    print_verify(&report, id, format)
}

fn print_verify(report: &VerifyReport, id: &SessionId, format: OutputFormat) -> anyhow::Result<ExitCode> {
    if format == OutputFormat::Json {
        print_json(&report)?;
    } else {
        for problem in &report.problems {
            if report.active {
                println!("{}{}.", problem[..1].to_uppercase(), &problem[1..]);
            } else {
                println!("MISMATCH {problem}");
            }
        }
        if report.problems.is_empty() {
            println!(
                "Session {id} is intact: {} blobs, {} records, {} items, content hash {}.",
                report.blobs_checked, report.records, report.items, report.content_hash
            );
        }
        if let Some(regeneration) = report.regeneration.as_ref().filter(|regeneration| !regeneration.is_problem()) {
            println!("{}{}.", regeneration.message[..1].to_uppercase(), &regeneration.message[1..]);
        }
    }
    if report.problems.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        if report.active {
            bail!("session {id} is active, so it cannot be verified yet");
        }
        bail!(
            "session {id} failed verification: {}",
            crate::output::count(report.problems.len(), "problem", "problems")
        )
    }
}

/// `sessions repair ID`: the store at `location`, with the spool files under
/// `spool_dir` (or the default spool directory) as partial blobs when it exists.
pub async fn repair(
    location: &StoreLocation,
    id: &SessionId,
    spool_dir: Option<&Path>,
    format: OutputFormat,
) -> anyhow::Result<ExitCode> {
    let spool_dir = crate::store::spool_dir(spool_dir);
    tape_store::check_repairable(&spool_dir, id)?;
    let store = crate::store::open_spooled(location, &spool_dir)?;
    let now = Timestamp::from_datetime(chrono::Utc::now()).context("the system clock is before 1970 or after 2554")?;
    let report = repair_session(store.as_ref(), id, now).await?;
    for damaged in &report.damaged {
        warn!(session = %id, blob = %damaged.key, "Kept a damaged blob: {}", damaged.problem);
    }
    if format == OutputFormat::Json {
        print_json(&report)?;
    } else {
        print!("{report}");
    }
    Ok(ExitCode::SUCCESS)
}
