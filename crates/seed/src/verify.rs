//! Verifying a stored session (`sessions verify`, `POST
//! /api/v1/sessions/{id}/verify`): every blob read back and checked against
//! the metadata, the annotations parsed, and a seed session regenerated
//! from its parameters and compared record by record.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures::{Stream, StreamExt, TryStreamExt};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tape_otlp::{ExportRequest, Signal};
use tape_seed_generator::{Batch, GENERATOR_VERSION, Generator, Params, Pattern, from_parameters};
use tape_session::{
    BlobDecoder, BlobEntry, Error, Record, SessionId, SessionMetadata, SessionStatus, SessionStore, SignalCounts,
    Timestamp, content_hash, error_chain, read_session,
};

use crate::run::{GENERATOR, LIVE_STOPPED_EARLY_PARAMETER, Producer, spawn_generator};

/// What verifying a session found: the JSON of `sessions verify --output
/// json` and of the API's verify.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyReport {
    /// The session.
    pub session_id: Option<SessionId>,
    /// Blobs read back.
    pub blobs_checked: usize,
    /// Records in them.
    pub records: u64,
    /// Items in them.
    pub items: u64,
    /// Every problem found, in a sentence each; none when the session is
    /// intact.
    pub problems: Vec<String>,
    /// Whether the session is `active`: not checked, as its metadata is not final.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub active: bool,
    /// For seed sessions: the outcome of regenerating and comparing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regeneration: Option<Regeneration>,
    /// The content hash in the session's metadata.
    #[serde(skip)]
    pub content_hash: String,
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

/// Verifies session `id`: every blob read back, decoded and compared with
/// its entry in the metadata, the totals, the stored blobs and the
/// annotations checked, and a seed session regenerated and compared. An
/// active session is not checked (its metadata lags behind its blobs): the
/// report says so. Only a session whose metadata cannot be read is an
/// error; everything else found is a problem in the report.
pub async fn verify(store: &dyn SessionStore, id: &SessionId) -> Result<VerifyReport, Error> {
    let metadata = store.read_metadata(id).await?;
    let mut report = VerifyReport {
        session_id: Some(id.clone()),
        content_hash: metadata.content_hash.clone(),
        ..VerifyReport::default()
    };
    if metadata.status == SessionStatus::Active {
        // Its metadata lags behind its blobs while it is written, and after
        // a crash until it is repaired: nothing to compare yet.
        report.problems.push(format!(
            "session {id} is active: it is being recorded, or its writer stopped without finishing it ({})",
            metadata.how_to_finish()
        ));
        report.active = true;
        return Ok(report);
    }
    for blob in &metadata.blobs {
        report.blobs_checked += 1;
        match read_blob_facts(store, &metadata, blob, &mut report.problems).await {
            Ok(facts) => {
                report.records += facts.records;
                report.items += facts.items;
                compare(blob, &facts, &mut report.problems);
            }
            // A blob of a session of several writers names its writer:
            // the one whose host, spool or manifest to look at.
            Err(error) => report.problems.push(match blob.key.writer() {
                Some(writer) => format!("writer {writer}: {}", error_chain(&error)),
                None => error_chain(&error),
            }),
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
    report.regeneration = regenerate(store, &metadata).await;
    if let Some(regeneration) = report.regeneration.as_ref().filter(|regeneration| regeneration.is_problem()) {
        report.problems.push(regeneration.message.clone());
    }
    Ok(report)
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

/// What regenerating a seed session found.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Regeneration {
    /// `match`, `difference`, `skipped` (made by another generator
    /// version) or `failed` (could not regenerate).
    pub outcome: &'static str,
    /// The seed, when the parameters name one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Records compared and found equal.
    pub records: u64,
    /// The first difference, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub difference: Option<Difference>,
    /// The outcome in a sentence.
    pub message: String,
}

impl Regeneration {
    /// Whether it found a problem (a difference, or a failure to regenerate).
    pub fn is_problem(&self) -> bool {
        matches!(self.outcome, "difference" | "failed")
    }

    fn failed(seed: Option<u64>, message: String) -> Self {
        Regeneration { outcome: "failed", seed, records: 0, difference: None, message }
    }

    fn skipped(seed: Option<u64>, message: String) -> Self {
        Regeneration { outcome: "skipped", seed, records: 0, difference: None, message }
    }
}

/// The first record where a session and its regeneration differ.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Difference {
    /// The signal of the record.
    pub signal: Signal,
    /// The record's index among the records of its signal, from 0.
    pub record: u64,
    /// The stored record's receive time (the regenerated one's when the
    /// session has no such record).
    pub receive_time: Timestamp,
    /// What differs.
    pub what: String,
}

/// Regenerates a session written by `otlp-tape seed` from the parameters in
/// its metadata and compares it record by record with what is stored.
/// `None` when the session was not written by the seed generator.
pub async fn regenerate(store: &dyn SessionStore, metadata: &SessionMetadata) -> Option<Regeneration> {
    let parameters = &metadata.parameters;
    if parameters.get("generator").and_then(serde_json::Value::as_str) != Some(GENERATOR) {
        return None;
    }
    let seed = parameters.get("seed").and_then(serde_json::Value::as_u64);
    if parameters.get(LIVE_STOPPED_EARLY_PARAMETER).and_then(serde_json::Value::as_bool) == Some(true) {
        let from = seed.map_or_else(String::new, |seed| format!(" with seed {seed}"));
        return Some(Regeneration::skipped(
            seed,
            format!(
                "cannot be regenerated: a live run (seed --live) that was stopped early wrote it, so it holds only the start of what its parameters{from} generate ({LIVE_STOPPED_EARLY_PARAMETER} in metadata.json)"
            ),
        ));
    }
    let version = parameters.get("generatorVersion");
    if version.and_then(serde_json::Value::as_u64) != Some(GENERATOR_VERSION) {
        let found = version.map_or_else(|| "no version".to_owned(), |version| format!("version {version}"));
        return Some(Regeneration::skipped(
            seed,
            format!(
                "not regenerated: the session was made by seed generator {found}, and this build has version {GENERATOR_VERSION}, which need not give the same bytes"
            ),
        ));
    }
    let (pattern, params) = match rebuild(metadata) {
        Ok(rebuilt) => rebuilt,
        Err(message) => return Some(Regeneration::failed(seed, format!("cannot regenerate: {message}"))),
    };
    let phases = match Generator::new(&pattern, params.clone()) {
        Ok(generator) => generator.phases(),
        Err(error) => return Some(Regeneration::failed(seed, format!("cannot regenerate: {error}"))),
    };
    let mut regeneration = compare_records(store, metadata, pattern, params.clone()).await;
    if regeneration.outcome == "match" {
        let listed: Vec<(&str, Timestamp, Timestamp, &[String])> = metadata
            .phases
            .iter()
            .map(|phase| (phase.name.as_str(), phase.start, phase.end, phase.flags.as_slice()))
            .collect();
        let expected: Vec<(&str, Timestamp, Timestamp, &[String])> =
            phases.iter().map(|phase| (phase.name.as_str(), phase.start, phase.end, phase.flags.as_slice())).collect();
        if listed != expected {
            regeneration.outcome = "difference";
            regeneration.message = format!(
                "regenerated from seed {}: the records match, but the phases in metadata.json are not the pattern's",
                params.seed
            );
        }
    }
    Some(regeneration)
}

/// The pattern and parameters recorded in a seed session's metadata.
fn rebuild(metadata: &SessionMetadata) -> Result<(Arc<Pattern>, Params), String> {
    from_parameters(&metadata.parameters).map(|(pattern, params)| (Arc::new(pattern), params))
}

type StoredRecords<'a> = std::pin::Pin<Box<dyn Stream<Item = Result<(Signal, Record), Error>> + Send + 'a>>;

/// What differs between a stored record and a regenerated batch, if anything.
fn record_difference(record: &Record, batch: &Batch) -> Option<String> {
    if record.receive_time() != batch.receive_time {
        return Some(format!("the receive time: stored {}, regenerated {}", record.receive_time(), batch.receive_time));
    }
    if record.item_count != batch.items {
        return Some(format!("the item count: stored {}, regenerated {}", record.item_count, batch.items));
    }
    let (stored, generated) = (&record.payload[..], &batch.payload[..]);
    if stored != generated {
        let offset =
            stored.iter().zip(generated).position(|(a, b)| a != b).unwrap_or_else(|| stored.len().min(generated.len()));
        return Some(format!(
            "the payload bytes at offset {offset} (stored {} bytes, regenerated {} bytes)",
            stored.len(),
            generated.len()
        ));
    }
    None
}

/// Compares the generator's batches, signal by signal, with the stored
/// records of that signal in blob order.
async fn compare_records(
    store: &dyn SessionStore,
    metadata: &SessionMetadata,
    pattern: Arc<Pattern>,
    params: Params,
) -> Regeneration {
    let seed = params.seed;
    let mut stored: Vec<StoredRecords<'_>> = Signal::ALL
        .iter()
        .map(|&signal| {
            Box::pin(read_session(store, metadata, move |candidate| candidate == signal)) as StoredRecords<'_>
        })
        .collect();
    let mut compared = [0u64; 3];
    let mut difference: Option<Difference> = None;
    let mut failure: Option<String> = None;
    let Producer { batches: mut receiver, thread: producer, halt } = spawn_generator(pattern, params);
    while let Some(batch) = receiver.recv().await {
        let index = batch.signal.index();
        let record = compared[index];
        let differs = |receive_time, what: String| Difference { signal: batch.signal, record, receive_time, what };
        match stored[index].try_next().await {
            Ok(Some((_, stored_record))) => {
                if let Some(what) = record_difference(&stored_record, &batch) {
                    difference = Some(differs(stored_record.receive_time(), what));
                    break;
                }
            }
            Ok(None) => {
                difference = Some(differs(
                    batch.receive_time,
                    format!("the session ends after {record} {} records, but regeneration gives more", batch.signal),
                ));
                break;
            }
            Err(error) => {
                failure = Some(format!("cannot read stored {} record {record}: {}", batch.signal, error_chain(&error)));
                break;
            }
        }
        compared[index] += 1;
    }
    // Stopped at the first difference, before its next trace.
    halt.store(true, Ordering::Relaxed);
    drop(receiver);
    match producer.await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => failure = failure.or(Some(format!("cannot regenerate: {error}"))),
        Err(error) => failure = failure.or(Some(format!("the generator stopped unexpectedly: {error}"))),
    }
    if difference.is_none() && failure.is_none() {
        for signal in Signal::ALL {
            let index = signal.index();
            match stored[index].try_next().await {
                Ok(Some((_, extra))) => {
                    difference = Some(Difference {
                        signal,
                        record: compared[index],
                        receive_time: extra.receive_time(),
                        what: format!(
                            "the session has more {signal} records than the {} regeneration gives",
                            compared[index]
                        ),
                    });
                    break;
                }
                Ok(None) => {}
                Err(error) => {
                    failure = Some(format!(
                        "cannot read stored {signal} record {}: {}",
                        compared[index],
                        error_chain(&error)
                    ));
                    break;
                }
            }
        }
    }
    let records = compared.iter().sum();
    if let Some(message) = failure {
        return Regeneration { outcome: "failed", seed: Some(seed), records, difference: None, message };
    }
    match difference {
        Some(difference) => Regeneration {
            outcome: "difference",
            seed: Some(seed),
            records,
            message: format!(
                "regenerated from seed {seed}: first difference in {} record {} (received {}): {}",
                difference.signal, difference.record, difference.receive_time, difference.what
            ),
            difference: Some(difference),
        },
        None => Regeneration {
            outcome: "match",
            seed: Some(seed),
            records,
            difference: None,
            message: format!("regenerated from seed {seed}: bit-for-bit match ({records} records)"),
        },
    }
}
