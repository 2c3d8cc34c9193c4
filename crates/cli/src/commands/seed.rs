//! `otlp-tape seed`: a deterministic session generated from a scenario
//! pattern; and its regeneration for `sessions verify`.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use bytes::Bytes;
use futures::{Stream, TryStreamExt};
use serde::Serialize;
use tape_otlp::{Signal, SignalSet};
use tape_seed_generator::{
    Batch, DEFAULT_START, GENERATOR_VERSION, Generator, Params, ParamsError, Pattern, PhaseWindow, format_duration,
    from_parameters, parameters,
};
use tape_session::{
    Annotation, Error, PhaseEntry, Record, SessionId, SessionMetadata, SessionStatus, SessionStore, SessionType,
    SessionWriter, SignalCounts, Timestamp, WriterOptions, read_session, to_jsonl,
};

use crate::cli::{OutputFormat, Preset, SeedArgs, Start};
use crate::commands::patterns::{self, DEFAULT_ERROR_RATE, DEFAULT_RATE};
use crate::output::{human_bytes, note, print_json};

/// The `generator` parameter of sessions this command writes.
pub const GENERATOR: &str = "otlp-tape seed";
/// Batches generated ahead of the writer: enough to keep both busy, few
/// enough to bound memory.
const CHANNEL_BATCHES: usize = 16;

/// What a seed run wrote.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SeedSummary {
    /// The parameters, for a reproduce command.
    #[serde(skip)]
    pub params: Params,
    pub session_id: SessionId,
    pub session_type: SessionType,
    pub store: String,
    pub location: String,
    pub pattern: String,
    pub seed: u64,
    pub start: Timestamp,
    pub end: Timestamp,
    pub duration: String,
    pub rate: f64,
    pub error_rate: f64,
    pub signals: String,
    pub traces: u64,
    pub items: SignalCounts,
    pub requests: SignalCounts,
    pub size_bytes: u64,
    pub blobs: usize,
    pub content_hash: String,
    pub phases: Vec<PhaseEntry>,
}

/// `seed`
pub async fn run(store: &dyn SessionStore, args: SeedArgs, format: OutputFormat) -> anyhow::Result<ExitCode> {
    let (summary, elapsed) = generate(store, &args).await?;
    if format == OutputFormat::Json {
        print_json(&summary)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!("{}", summary.session_id);
    note(format!(
        "Generated {} session {} from pattern {} with seed {} in {:.2} s: {} at {} traces/s from {}, error rate {}.",
        summary.session_type,
        summary.session_id,
        summary.pattern,
        summary.seed,
        elapsed.as_secs_f64(),
        summary.duration,
        summary.rate,
        summary.start,
        summary.error_rate,
    ));
    note(format!(
        "  {} traces: {} spans, {} data points, {} log records in {} requests; {} in {} blobs",
        summary.traces,
        summary.items.traces,
        summary.items.metrics,
        summary.items.logs,
        summary.requests.total(),
        human_bytes(summary.size_bytes),
        summary.blobs,
    ));
    note(format!("  Stored in {}", summary.location));
    note("  Phases:");
    let width = summary.phases.iter().map(|phase| phase.name.len()).max().unwrap_or(0);
    for phase in &summary.phases {
        let length = human_duration(phase.end.unix_nanos() - phase.start.unix_nanos());
        let flags = if phase.flags.is_empty() { String::new() } else { format!("  flags: {}", phase.flags.join(", ")) };
        note(format!("    {:<width$}  {} .. {}  {length}{flags}", phase.name, phase.start, phase.end));
    }
    note(format!("  Reproduce with: {}", reproduce_command(&args.pattern, &summary.params)));
    Ok(ExitCode::SUCCESS)
}

/// Generates and stores the session `args` describe; returns its summary
/// and how long it took.
pub async fn generate(store: &dyn SessionStore, args: &SeedArgs) -> anyhow::Result<(SeedSummary, Duration)> {
    // Everything is checked before anything is written.
    let pattern = patterns::load(&args.pattern)?;
    let now = Timestamp::from_datetime(chrono::Utc::now()).context("the system clock is before 1970")?;
    let params = Params {
        seed: args.seed.unwrap_or_else(|| u64::from(rand::random::<u32>())),
        start: match args.start {
            None => DEFAULT_START,
            // Whole milliseconds: enough, and easier to read and retype.
            Some(Start::Now) => Timestamp::from_unix_nanos(now.unix_millis() * 1_000_000),
            Some(Start::At(time)) => time,
        },
        duration_nanos: args
            .preset
            .map(Preset::duration_nanos)
            .or(args.duration)
            .unwrap_or(pattern.default_duration_nanos),
        rate: args.rate.or(pattern.default_rate).unwrap_or(DEFAULT_RATE),
        error_rate: args.error_rate.or(pattern.default_error_rate).unwrap_or(DEFAULT_ERROR_RATE),
        signals: args.signals,
    };
    let invalid =
        |error: ParamsError| anyhow!("cannot generate pattern {}: {error}; nothing was written", pattern.name);
    let traces = params.check().map_err(invalid)?;
    let phases: Vec<PhaseWindow> = Generator::new(&pattern, params.clone()).map_err(invalid)?.phases();
    let id = args
        .session_id
        .clone()
        .unwrap_or_else(|| SessionId::generate(&format!("seed-{}", pattern.name), now, rand::random()));

    let entries: Vec<PhaseEntry> = phases
        .iter()
        .map(|phase| PhaseEntry {
            name: phase.name.clone(),
            start: phase.start,
            end: phase.end,
            flags: phase.flags.clone(),
        })
        .collect();
    // Created "at" the session's start, so that the file is the same every time.
    let annotations: Vec<Annotation> = entries
        .iter()
        .zip(&phases)
        .map(|(entry, phase)| Annotation::phase(&id, entry, &phase.description, params.start, GENERATOR))
        .collect();
    let mut metadata = SessionMetadata::new(id.clone(), pattern.session_type, params.start, created_by());
    metadata.description.clone_from(&args.description);
    metadata.enabled_flags = pattern.flags();
    metadata.parameters = parameters(&pattern, &params);
    metadata.phases = entries;

    let pattern = Arc::new(pattern);
    let started = Instant::now();
    let mut writer = SessionWriter::create(store, metadata, WriterOptions::default())
        .await
        .with_context(|| format!("cannot create session {id} in {}", store.location()))?;
    let written = async {
        let last = write_generated(&mut writer, Arc::clone(&pattern), params.clone()).await?;
        store
            .write_annotations(&id, Bytes::from(to_jsonl(&annotations)))
            .await
            .context("cannot write annotations.jsonl")?;
        anyhow::Ok(last)
    }
    .await;
    let last = match written {
        Ok(last) => last,
        Err(error) => {
            // Nothing is left half-written: the partial session goes.
            if let Err(cleanup) = writer.discard().await {
                tracing::warn!(session = %id, "Could not remove the partial session: {cleanup}");
            }
            return Err(error.context(format!("seeding session {id} failed; nothing was stored")));
        }
    };
    let end =
        Timestamp::from_unix_nanos(params.start.unix_nanos() + params.duration_nanos).max(last.unwrap_or_default());
    let metadata = match writer.finish(end, SessionStatus::Completed).await {
        Ok(metadata) => metadata,
        Err(error) => {
            if let Err(cleanup) = store.delete_session(&id).await {
                tracing::warn!(session = %id, "Could not remove the partial session: {cleanup}");
            }
            return Err(anyhow::Error::new(error).context(format!("seeding session {id} failed; nothing was stored")));
        }
    };
    let elapsed = started.elapsed();

    let summary = SeedSummary {
        params: params.clone(),
        session_id: id,
        session_type: metadata.session_type,
        store: store.location(),
        location: format!("{}/{}", store.location(), metadata.s3_prefix),
        pattern: pattern.name.clone(),
        seed: params.seed,
        start: params.start,
        end,
        duration: format_duration(params.duration_nanos),
        rate: params.rate,
        error_rate: params.error_rate,
        signals: params.signals.to_string(),
        traces,
        items: metadata.item_counts(),
        requests: metadata.request_counts,
        size_bytes: metadata.total_size_bytes,
        blobs: metadata.blobs.len(),
        content_hash: metadata.content_hash.clone(),
        phases: metadata.phases.clone(),
    };
    Ok((summary, elapsed))
}

/// A duration for people: exact when in whole milliseconds, else seconds
/// with three decimals.
#[allow(clippy::cast_precision_loss)] // three decimals are all that is shown
fn human_duration(nanos: u64) -> String {
    if nanos.is_multiple_of(1_000_000) { format_duration(nanos) } else { format!("{:.3}s", nanos as f64 / 1e9) }
}

fn created_by() -> String {
    format!("otlp-tape {} seed", env!("CARGO_PKG_VERSION"))
}

/// The command line that makes the same session again.
fn reproduce_command(pattern: &str, params: &Params) -> String {
    let quote = |text: &str| {
        if text.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"-_./:,".contains(&byte)) {
            text.to_owned()
        } else {
            format!("'{}'", text.replace('\'', r"'\''"))
        }
    };
    let mut command = format!(
        "otlp-tape seed --pattern {} --seed {} --duration {} --rate {} --error-rate {}",
        quote(pattern),
        params.seed,
        format_duration(params.duration_nanos),
        params.rate,
        params.error_rate
    );
    if params.start != DEFAULT_START {
        let _ = write!(command, " --start {}", params.start);
    }
    if params.signals != SignalSet::ALL {
        let _ = write!(command, " --signals {}", params.signals);
    }
    command
}

/// Runs the generator on a blocking thread, feeding a bounded channel, and
/// returns the channel and the thread. Generation stops early when the
/// receiver is dropped.
fn spawn_generator(
    pattern: Arc<Pattern>,
    params: Params,
) -> (tokio::sync::mpsc::Receiver<Batch>, tokio::task::JoinHandle<Result<(), ParamsError>>) {
    let (sender, receiver) = tokio::sync::mpsc::channel(CHANNEL_BATCHES);
    let producer = tokio::task::spawn_blocking(move || {
        for batch in Generator::new(&pattern, params)? {
            if sender.blocking_send(batch).is_err() {
                break;
            }
        }
        Ok(())
    });
    (receiver, producer)
}

/// Generates and appends every batch; returns the last receive time.
async fn write_generated(
    writer: &mut SessionWriter<'_>,
    pattern: Arc<Pattern>,
    params: Params,
) -> anyhow::Result<Option<Timestamp>> {
    let (mut receiver, producer) = spawn_generator(pattern, params);
    let mut last: Option<Timestamp> = None;
    let appended = async {
        while let Some(batch) = receiver.recv().await {
            writer
                .append(batch.signal, batch.receive_time, batch.items, &batch.payload)
                .await
                .with_context(|| format!("cannot store the {} request at {}", batch.signal, batch.receive_time))?;
            last = Some(last.map_or(batch.receive_time, |last| last.max(batch.receive_time)));
        }
        anyhow::Ok(())
    }
    .await;
    // A failed write drops the receiver, which stops the generator.
    drop(receiver);
    let generated = producer.await.context("the generator stopped unexpectedly")?;
    appended?;
    generated?;
    Ok(last)
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
    let version = parameters.get("generatorVersion");
    if version.and_then(serde_json::Value::as_u64) != Some(GENERATOR_VERSION) {
        let found = version.map_or_else(|| "no version".to_owned(), |version| format!("version {version}"));
        return Some(Regeneration {
            outcome: "skipped",
            seed,
            records: 0,
            difference: None,
            message: format!(
                "not regenerated: the session was made by seed generator {found}, and this build has version {GENERATOR_VERSION}, which need not give the same bytes"
            ),
        });
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

fn slot(signal: Signal) -> usize {
    Signal::ALL.iter().position(|known| *known == signal).unwrap_or(0)
}

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
    let (mut receiver, producer) = spawn_generator(pattern, params);
    while let Some(batch) = receiver.recv().await {
        let index = slot(batch.signal);
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
                failure = Some(format!(
                    "cannot read stored {} record {record}: {}",
                    batch.signal,
                    crate::commands::sessions::error_chain(&error)
                ));
                break;
            }
        }
        compared[index] += 1;
    }
    drop(receiver);
    match producer.await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => failure = failure.or(Some(format!("cannot regenerate: {error}"))),
        Err(error) => failure = failure.or(Some(format!("the generator stopped unexpectedly: {error}"))),
    }
    if difference.is_none() && failure.is_none() {
        for signal in Signal::ALL {
            let index = slot(signal);
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
                        crate::commands::sessions::error_chain(&error)
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
