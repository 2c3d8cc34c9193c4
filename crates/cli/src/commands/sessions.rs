//! `otlp-tape sessions list | show | delete | verify | repair`.

use std::path::Path;
use std::process::ExitCode;
pub use tape_session::error_chain;

use anyhow::{Context, bail};
use futures::StreamExt;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tape_otlp::ExportRequest;
use tape_session::{
    BlobDecoder, BlobEntry, Error, SessionId, SessionMetadata, SessionStatus, SessionStore, SessionType, SignalCounts,
    Timestamp, content_hash, list_sessions, repair_session,
};
use tape_store::StoreLocation;
use tracing::warn;

use crate::cli::{OutputFormat, PruneArgs};
use crate::output::{human_bytes, note, print_json};
use tape_session::retention::{self, PruneReport, RetentionPolicy};

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
            session.description.as_deref().unwrap_or(""),
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `sessions show ID`
pub async fn show(store: &dyn SessionStore, id: &SessionId, format: OutputFormat) -> anyhow::Result<ExitCode> {
    let metadata = store.read_metadata(id).await?;
    if format == OutputFormat::Json {
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
    if tape_store::is_locked(&spool_dir, id)? {
        bail!(
            "session {id} is being captured by a running otlp-tape; stop that capture first (--force does not delete a session a capture holds)"
        );
    }
    match store.read_metadata(id).await {
        Ok(metadata) if metadata.status == SessionStatus::Active && !force => {
            bail!(
                "session {id} is active (still being written, or left so by a crash); pass --force to delete it anyway"
            )
        }
        // Incomplete or damaged sessions can be deleted: that is how they are cleaned up.
        Ok(_) | Err(Error::NotFound(_) | Error::Metadata { .. }) => {}
        Err(error) => return Err(error.into()),
    }
    store.delete_session(id).await?;
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
    let policy = RetentionPolicy {
        older_than: args.older_than,
        keep_last: args.keep_last,
        max_total_bytes: args.max_total_size,
        types: args.types.clone(),
    };
    let spool_dir = crate::store::spool_dir(args.spool_dir.as_deref());
    let protected = crate::lock::locked_sessions(&spool_dir)?;
    let now = Timestamp::from_datetime(chrono::Utc::now()).context("the system clock is before 1970 or after 2554")?;
    let report = retention::prune(store, &policy, now, &protected, args.dry_run).await?;
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

/// What `sessions verify` found.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyReport {
    session_id: Option<SessionId>,
    blobs_checked: usize,
    records: u64,
    items: u64,
    problems: Vec<String>,
    /// Whether the session is `active`: not checked, as its metadata is not final.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    active: bool,
    /// For seed sessions: the outcome of regenerating and comparing.
    #[serde(skip_serializing_if = "Option::is_none")]
    regeneration: Option<crate::commands::seed::Regeneration>,
}

/// What one blob holds, as read.
#[derive(Debug, Default)]
struct BlobFacts {
    records: u64,
    items: u64,
    first: Option<Timestamp>,
    last: Option<Timestamp>,
    compressed_bytes: u64,
    uncompressed_bytes: u64,
    sha256: String,
}

/// `sessions verify ID`
pub async fn verify(store: &dyn SessionStore, id: &SessionId, format: OutputFormat) -> anyhow::Result<ExitCode> {
    let (report, metadata) = check_session(store, id).await?;
    print_verify(&report, &metadata, id, format)
}

/// What `sessions verify` finds, for `serve`: every blob checked, and a
/// seed session regenerated and compared.
pub async fn verify_report(store: &dyn SessionStore, id: &SessionId) -> anyhow::Result<VerifyReport> {
    Ok(check_session(store, id).await?.0)
}

async fn check_session(store: &dyn SessionStore, id: &SessionId) -> anyhow::Result<(VerifyReport, SessionMetadata)> {
    let metadata = store.read_metadata(id).await?;
    let mut report = VerifyReport { session_id: Some(id.clone()), ..VerifyReport::default() };
    if metadata.status == SessionStatus::Active {
        // Its metadata lags behind its blobs while it is written, and after
        // a crash until it is repaired: nothing to compare yet.
        report.problems.push(format!(
            "session {id} is active: it is being recorded, or its writer stopped without finishing it (run \
             `otlp-tape sessions repair {id}` once no capture holds it)"
        ));
        report.active = true;
        return Ok((report, metadata));
    }
    for blob in &metadata.blobs {
        report.blobs_checked += 1;
        match read_blob_facts(store, &metadata, blob, &mut report.problems).await {
            Ok(facts) => {
                report.records += facts.records;
                report.items += facts.items;
                compare(blob, &facts, &mut report.problems);
            }
            Err(error) => report.problems.push(error_chain(&error)),
        }
    }
    check_totals(&metadata, &mut report.problems);
    match store.list_blobs(id).await {
        Ok(stored) => {
            for key in stored {
                if !metadata.blobs.iter().any(|blob| blob.key == key) {
                    report.problems.push(format!("blob {key} is stored but not listed in metadata.json"));
                }
            }
        }
        Err(error) => report.problems.push(format!("cannot list the stored blobs: {}", error_chain(&error))),
    }
    check_annotations(store, id, &mut report.problems).await;
    // A seed session is regenerated from its parameters and compared.
    report.regeneration = crate::commands::seed::regenerate(store, &metadata).await;
    if let Some(regeneration) = report.regeneration.as_ref().filter(|regeneration| regeneration.is_problem()) {
        report.problems.push(regeneration.message.clone());
    }
    Ok((report, metadata))
}

fn print_verify(
    report: &VerifyReport,
    metadata: &SessionMetadata,
    id: &SessionId,
    format: OutputFormat,
) -> anyhow::Result<ExitCode> {
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
                report.blobs_checked, report.records, report.items, metadata.content_hash
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
    if tape_store::is_locked(&spool_dir, id)? {
        return Err(anyhow::anyhow!(
            "session {id} is being captured by a running otlp-tape; stop that capture first (repair finishes sessions whose capture has ended)"
        ));
    }
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

/// Streams one blob, hashing its bytes, decoding every record and every
/// payload, and counting items for itself.
async fn read_blob_facts(
    store: &dyn SessionStore,
    metadata: &SessionMetadata,
    blob: &BlobEntry,
    problems: &mut Vec<String>,
) -> Result<BlobFacts, Error> {
    let id = &metadata.session_id;
    let mut bytes = store.open_blob(id, &blob.key).await?;
    let mut decoder = BlobDecoder::new();
    let mut hasher = Sha256::new();
    let mut facts = BlobFacts::default();
    let corrupt = |source| Error::CorruptBlob { session: id.clone(), key: blob.key.to_string(), source };
    let mut check_records = |decoder: &mut BlobDecoder, facts: &mut BlobFacts| {
        while let Some(record) = decoder.next_record() {
            let time = record.receive_time();
            if facts.last.is_some_and(|last| time < last) {
                problems.push(format!("blob {}: record {} goes back in time to {time}", blob.key, facts.records));
            }
            facts.first.get_or_insert(time);
            facts.last = Some(time);
            // The receivers' check (what capture accepts), then the full decoder.
            let checked = tape_otlp::wire::validate_request(blob.signal, &record.payload)
                .map_err(|error| format!("not a request capture would accept: {error}"))
                .and_then(|_| ExportRequest::decode_protobuf(blob.signal, &record.payload).map_err(|e| e.to_string()));
            match checked {
                Ok(request) if request.item_count() != record.item_count => problems.push(format!(
                    "blob {}: record {} says {} items but its payload holds {}",
                    blob.key,
                    facts.records,
                    record.item_count,
                    request.item_count()
                )),
                Ok(_) => {}
                Err(error) => problems.push(format!("blob {}: record {}: {error}", blob.key, facts.records)),
            }
            facts.records += 1;
            facts.items += record.item_count;
        }
    };
    while let Some(chunk) = bytes.next().await {
        let chunk = chunk?;
        hasher.update(&chunk);
        facts.compressed_bytes += chunk.len() as u64;
        let fed = decoder.feed(&chunk);
        check_records(&mut decoder, &mut facts);
        fed.map_err(corrupt)?;
    }
    let finished = decoder.finish();
    check_records(&mut decoder, &mut facts);
    finished.map_err(corrupt)?;
    facts.uncompressed_bytes = decoder.uncompressed_offset();
    facts.sha256 = hex::encode(hasher.finalize());
    Ok(facts)
}

fn compare(blob: &BlobEntry, facts: &BlobFacts, problems: &mut Vec<String>) {
    let mut differ = |what: &str, listed: String, found: String| {
        if listed != found {
            problems.push(format!("blob {}: {what} is {listed} in metadata.json but {found} in the blob", blob.key));
        }
    };
    differ("sha256", blob.sha256.clone(), facts.sha256.clone());
    differ("the size", blob.compressed_bytes.to_string(), facts.compressed_bytes.to_string());
    differ("the uncompressed size", blob.uncompressed_bytes.to_string(), facts.uncompressed_bytes.to_string());
    differ("the record count", blob.records.to_string(), facts.records.to_string());
    differ("the item count", blob.items.to_string(), facts.items.to_string());
    let time = |time: Option<Timestamp>| time.map_or_else(|| "none".to_owned(), |time| time.to_string());
    if blob.records > 0 || facts.records > 0 {
        differ("the first receive time", blob.first_receive_time.to_string(), time(facts.first));
        differ("the last receive time", blob.last_receive_time.to_string(), time(facts.last));
    }
}

/// Checks that every line of the session's `annotations.jsonl` is an
/// annotation of the session, naming the line of each one that is not.
async fn check_annotations(store: &dyn SessionStore, id: &SessionId, problems: &mut Vec<String>) {
    let bytes = match store.read_annotations(id).await {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return,
        Err(error) => {
            problems.push(format!("cannot read annotations.jsonl: {}", error_chain(&error)));
            return;
        }
    };
    for (index, line) in bytes.split(|&byte| byte == b'\n').enumerate() {
        if let Err(error) = tape_session::parse_jsonl(id, line) {
            problems.push(format!("annotations.jsonl line {}: {}", index + 1, error.message));
        }
    }
}

fn check_totals(metadata: &SessionMetadata, problems: &mut Vec<String>) {
    let mut items = SignalCounts::default();
    let mut requests = SignalCounts::default();
    for blob in &metadata.blobs {
        items.add(blob.signal, blob.items);
        requests.add(blob.signal, blob.records);
    }
    if items != metadata.item_counts() {
        problems
            .push(format!("the captured counts {:?} disagree with the blob list {items:?}", metadata.item_counts()));
    }
    if requests != metadata.request_counts {
        problems
            .push(format!("the request counts {:?} disagree with the blob list {requests:?}", metadata.request_counts));
    }
    let size: u64 = metadata.blobs.iter().map(|blob| blob.compressed_bytes).sum();
    if size != metadata.total_size_bytes {
        problems.push(format!("totalSizeBytes is {} but the blobs add up to {size}", metadata.total_size_bytes));
    }
    let hash = content_hash(&metadata.blobs);
    if hash != metadata.content_hash {
        problems.push(format!("contentHash is {} but the blob list hashes to {hash}", metadata.content_hash));
    }
}
