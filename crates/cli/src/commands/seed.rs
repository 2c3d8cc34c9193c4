//! `otlp-tape seed`: a deterministic session generated from a scenario
//! pattern, written as fast as the machine can or, with `--live`, in real
//! time while each request is also sent to an OTLP target; and its
//! regeneration for `sessions verify`.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use bytes::Bytes;
use futures::stream::FuturesUnordered;
use futures::{Stream, StreamExt, TryStreamExt};
use serde::Serialize;
use tape_otlp::{Signal, SignalSet};
use tape_replay::{Pacer, RetryPolicy, Speed, Targets, export_with_retry};
use tape_seed_generator::{
    Batch, DEFAULT_START, GENERATOR_VERSION, Generator, Params, ParamsError, Pattern, PhaseWindow, format_duration,
    from_parameters, parameters,
};
use tape_session::{
    Annotation, Error, PhaseEntry, Record, SessionId, SessionMetadata, SessionStatus, SessionStore, SessionType,
    SessionWriter, SignalCounts, Timestamp, WriterOptions, read_session, to_jsonl,
};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::cli::{LiveArgs, OutputFormat, Preset, SeedArgs, Start};
use crate::commands::patterns::{self, DEFAULT_ERROR_RATE, DEFAULT_RATE};
use crate::output::{human_bytes, note, print_json};
use tape_annotations::ClickHouseReport;

/// The `generator` parameter of sessions this command writes.
pub const GENERATOR: &str = "otlp-tape seed";
/// The parameter set to `true` on sessions written by `seed --live`.
pub const LIVE_PARAMETER: &str = "live";
/// The parameter set to `true` when a live run was stopped (Ctrl-C,
/// SIGTERM) before the end: the session holds only the start of what its
/// parameters generate, so it cannot be regenerated.
pub const LIVE_STOPPED_EARLY_PARAMETER: &str = "liveStoppedEarly";
/// Batches generated ahead of the writer: enough to keep both busy, few
/// enough to bound memory.
const CHANNEL_BATCHES: usize = 16;
/// Requests written but not yet sent, at most, in a live run. One that
/// does not fit is not sent and counts as failed: sending never holds up
/// writing.
const LIVE_QUEUE_REQUESTS: usize = 1024;
/// Requests in flight to the target in a live run, unless --concurrency.
const LIVE_CONCURRENCY: u16 = 4;
/// How long a live run waits, once everything is written, for the requests
/// still queued or in flight; those left count as failed.
const LIVE_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Retries in a live run: a few quick ones, since a request that waits
/// long is no longer live.
const LIVE_RETRY: RetryPolicy = RetryPolicy {
    max_attempts: 3,
    initial_backoff: Duration::from_millis(100),
    max_backoff: Duration::from_secs(1),
    max_elapsed: Duration::from_secs(5),
};

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
    /// Traces generated; for a live run stopped early, those planned.
    pub traces: u64,
    pub items: SignalCounts,
    pub requests: SignalCounts,
    pub size_bytes: u64,
    pub blobs: usize,
    pub content_hash: String,
    pub phases: Vec<PhaseEntry>,
    /// What a live run sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live: Option<LiveSummary>,
    /// What was written to ClickHouse, when it is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clickhouse: Option<ClickHouseReport>,
}

/// Pushes the session's phase annotations to the configured ClickHouse. A
/// failure is a warning: the session is stored either way.
pub async fn push_phases(store: &dyn SessionStore, args: &SeedArgs, id: &SessionId) -> Option<ClickHouseReport> {
    let config = crate::clickhouse::config(&args.clickhouse)?;
    let annotations = match tape_annotations::session_annotations(store, id).await {
        Ok(annotations) => annotations,
        Err(error) => {
            note(format!("warning: the phases of session {id} were not written to ClickHouse: {error:#}"));
            return Some(ClickHouseReport {
                table: config.url,
                inserted: 0,
                already_present: 0,
                error: Some(format!("{error:#}")),
            });
        }
    };
    Some(crate::clickhouse::push_or_warn(config, id, &annotations, "the phases").await)
}

/// What `seed --live` sent, per signal.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveSummary {
    /// Where the requests went.
    pub target: String,
    /// Whether Ctrl-C or SIGTERM stopped the run before the end.
    pub stopped_early: bool,
    /// Requests the target accepted (wholly or in part).
    pub sent: SignalCounts,
    /// Items in them.
    pub sent_items: SignalCounts,
    /// Items the target rejected in a partial success.
    pub rejected_items: SignalCounts,
    /// Requests that were not delivered: failed after their retries, did
    /// not fit the queue, or were left when the drain timeout ran out.
    pub failed: SignalCounts,
    /// Items in them.
    pub failed_items: SignalCounts,
    /// The last failure, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

impl LiveSummary {
    fn sent_record(&mut self, signal: Signal, items: u64, rejected: u64) {
        self.sent.add(signal, 1);
        self.sent_items.add(signal, items);
        self.rejected_items.add(signal, rejected);
    }

    fn failed_records(&mut self, signal: Signal, records: u64, items: u64, error: String) {
        self.failed.add(signal, records);
        self.failed_items.add(signal, items);
        self.last_error = Some(error);
    }
}

/// `seed`
pub async fn run(store: &dyn SessionStore, args: SeedArgs, format: OutputFormat) -> anyhow::Result<ExitCode> {
    let live = if args.live.enabled {
        // Registered first, so that Ctrl-C at any moment finishes the session.
        let stop = crate::signals::stop_on_signals()?;
        let targets = crate::target::targets(&args.live.target)?;
        let concurrency = usize::from(args.live.concurrency.unwrap_or(LIVE_CONCURRENCY).max(1));
        Some(Live { targets, concurrency, stop })
    } else {
        refuse_target_flags_without_live(&args.live);
        None
    };
    let (mut summary, elapsed) = generate_session(store, &args, live, &CancellationToken::new()).await?;
    summary.clickhouse = push_phases(store, &args, &summary.session_id).await;
    if format == OutputFormat::Json {
        print_json(&summary)?;
        return live_outcome(&summary);
    }
    println!("{}", summary.session_id);
    let verb = if summary.live.is_some() { "Seeded live" } else { "Generated" };
    note(format!(
        "{verb} {} session {} from pattern {} with seed {} in {}: {} at {} traces/s from {}, error rate {}.",
        summary.session_type,
        summary.session_id,
        summary.pattern,
        summary.seed,
        crate::output::seconds(elapsed.as_secs_f64()),
        summary.duration,
        summary.rate,
        summary.start,
        summary.error_rate,
    ));
    // A live run stopped early wrote fewer traces than planned, and they
    // are not counted.
    let traces = if summary.live.as_ref().is_some_and(|live| live.stopped_early) {
        String::from("  Written:")
    } else {
        format!("  {} traces:", summary.traces)
    };
    note(format!(
        "{traces} {} spans, {} data points, {} log records in {} requests; {} in {} blobs",
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
    if let Some(ClickHouseReport { table, inserted, already_present, error: None }) = &summary.clickhouse {
        note(format!("  Phases written to ClickHouse {table}: {inserted} new, {already_present} already there."));
    }
    match &summary.live {
        Some(live) => {
            print_live(live, &summary);
            note(format!("  Reproduce without sending: {}", reproduce_command(&args.pattern, &summary.params)));
        }
        None => note(format!("  Reproduce with: {}", reproduce_command(&args.pattern, &summary.params))),
    }
    live_outcome(&summary)
}

/// The live run's sent and failed counts, on stderr.
fn print_live(live: &LiveSummary, summary: &SeedSummary) {
    let per_signal = |counts: &SignalCounts| {
        Signal::ALL.iter().map(|&signal| format!("{} {}", signal, counts.get(signal))).collect::<Vec<_>>().join(", ")
    };
    let failed = match live.failed.total() {
        0 => "none failed".to_owned(),
        failed => format!("{failed} failed ({})", per_signal(&live.failed)),
    };
    note(format!(
        "  Sent live to {}: {} requests delivered ({}), {failed}.",
        live.target,
        live.sent.total(),
        per_signal(&live.sent),
    ));
    if live.rejected_items.total() > 0 {
        note(format!(
            "  The target rejected {} items in partial successes ({}).",
            live.rejected_items.total(),
            per_signal(&live.rejected_items)
        ));
    }
    if live.stopped_early {
        note(format!(
            "  Stopped early: the session holds the {} requests written until {}, and is finished; sessions verify checks its blobs but cannot regenerate it.",
            summary.requests.total(),
            summary.end
        ));
    }
}

/// Exit 0, or the error of a live run whose sends failed.
fn live_outcome(summary: &SeedSummary) -> anyhow::Result<ExitCode> {
    match &summary.live {
        Some(live) if live.failed.total() > 0 => Err(anyhow!(
            "{} of {} requests could not be sent to {}: {}; session {} is complete all the same",
            live.failed.total(),
            live.failed.total() + live.sent.total(),
            live.target,
            live.last_error.as_deref().unwrap_or("no error message"),
            summary.session_id,
        )),
        _ => Ok(ExitCode::SUCCESS),
    }
}

/// The target's flags mean nothing without --live: a command-line error
/// (exit code 2) rather than flags silently ignored.
fn refuse_target_flags_without_live(live: &LiveArgs) {
    let target = &live.target;
    let given = [
        ("--endpoint", target.endpoint.is_some()),
        ("--protocol", target.protocol.is_some()),
        ("--header", !target.headers.is_empty()),
        ("--compression", target.compression.is_some()),
        ("--timeout", target.timeout.is_some()),
        ("--ca-file", target.ca_file.is_some()),
        ("--insecure", target.insecure),
    ];
    if let Some((flag, _)) = given.iter().find(|(_, given)| *given) {
        let mut command = <crate::cli::Cli as clap::CommandFactory>::command();
        let message = format!("{flag} only applies with --live (seed sends nothing otherwise)");
        command.error(clap::error::ErrorKind::MissingRequiredArgument, message).exit();
    }
}

/// A live run: where to send, how many at once, and the stop signal.
struct Live {
    targets: Targets,
    concurrency: usize,
    stop: CancellationToken,
}

/// A seed stopped on request before its end; its partial session was
/// removed.
#[derive(Debug, thiserror::Error)]
#[error("stopped on request before the end; the partial session was removed")]
pub struct SeedStopped;

/// Generates the session `args` describe and, when ClickHouse is
/// configured, writes its phases there (a failure there is in the summary,
/// not an error): what `seed` does, for `serve`. Cancelling `stop` ends
/// generation between two records and removes the partial session; the
/// error's chain then holds [`SeedStopped`].
pub async fn generate_and_push(
    store: &dyn SessionStore,
    args: &SeedArgs,
    stop: &CancellationToken,
) -> anyhow::Result<SeedSummary> {
    let (mut summary, _) = generate_session(store, args, None, stop).await?;
    summary.clickhouse = push_phases(store, args, &summary.session_id).await;
    Ok(summary)
}

/// Checks the pattern and the parameters of `args` as `seed` does, without
/// generating anything; returns the number of traces they give.
pub fn check(args: &SeedArgs) -> anyhow::Result<u64> {
    let pattern = patterns::load(&args.pattern)?;
    let params = Params {
        seed: args.seed.unwrap_or(0),
        start: match args.start {
            None => DEFAULT_START,
            Some(Start::Now) => Timestamp::from_datetime(chrono::Utc::now()).unwrap_or(DEFAULT_START),
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
    let invalid = |error: ParamsError| anyhow!("cannot generate pattern {}: {error}", pattern.name);
    let traces = params.check().map_err(invalid)?;
    Generator::new(&pattern, params).map_err(invalid)?;
    Ok(traces)
}

/// Generates the session `args` describe; returns its summary and how long
/// it took.
pub async fn generate(store: &dyn SessionStore, args: &SeedArgs) -> anyhow::Result<(SeedSummary, Duration)> {
    generate_session(store, args, None, &CancellationToken::new()).await
}

/// Generates and stores the session `args` describe, live when `live` is
/// given (a live run stops on its own signal, keeping what it wrote), else
/// until `stop` is cancelled (nothing is kept); returns its summary and how
/// long it took.
async fn generate_session(
    store: &dyn SessionStore,
    args: &SeedArgs,
    live: Option<Live>,
    stop: &CancellationToken,
) -> anyhow::Result<(SeedSummary, Duration)> {
    // Everything is checked before anything is written.
    let pattern = patterns::load(&args.pattern)?;
    let wall_clock = chrono::Utc::now();
    let clock = tokio::time::Instant::now();
    let now = Timestamp::from_datetime(wall_clock).context("the system clock is before 1970")?;
    // Whole milliseconds: enough, and easier to read and retype.
    let now_millis = Timestamp::from_unix_nanos(now.unix_millis() * 1_000_000);
    let params = Params {
        seed: args.seed.unwrap_or_else(|| u64::from(rand::random::<u32>())),
        start: match args.start {
            // Live, the timestamps the target sees are current.
            None if live.is_some() => now_millis,
            None => DEFAULT_START,
            Some(Start::Now) => now_millis,
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
    // Made now, whatever the virtual clock says; not in the content hash,
    // so regeneration still matches.
    metadata.created_at = Some(now);
    metadata.description.clone_from(&args.description);
    metadata.enabled_flags = pattern.flags();
    metadata.parameters = parameters(&pattern, &params);
    if live.is_some() {
        metadata.parameters.insert(LIVE_PARAMETER.to_owned(), serde_json::Value::Bool(true));
    }
    metadata.phases = entries;

    let pattern = Arc::new(pattern);
    let started = Instant::now();
    let mut writer = SessionWriter::create(store, metadata, WriterOptions::default())
        .await
        .with_context(|| format!("cannot create session {id} in {}", store.location()))?;
    let mut live_summary = None;
    let written = async {
        let last = match &live {
            None => write_generated(&mut writer, Arc::clone(&pattern), params.clone(), stop).await?,
            Some(live) => {
                // The session's start is due now when it is now; otherwise
                // when writing starts.
                let origin = match args.start {
                    None | Some(Start::Now) => {
                        let behind = now.unix_nanos().saturating_sub(params.start.unix_nanos());
                        clock.checked_sub(Duration::from_nanos(behind)).unwrap_or(clock)
                    }
                    Some(Start::At(_)) => tokio::time::Instant::now(),
                };
                note(format!(
                    "Seeding session {id} live to {}: {} of pattern {} from {}, in real time; Ctrl-C stops early and keeps what was written.",
                    live.targets.describe(),
                    format_duration(params.duration_nanos),
                    pattern.name,
                    params.start,
                ));
                let pacer = Pacer::new(params.start.unix_nanos(), origin, Speed::Factor(1.0));
                let (last, summary) =
                    write_live(&mut writer, Arc::clone(&pattern), params.clone(), live, pacer).await?;
                if summary.stopped_early {
                    writer
                        .metadata_mut()
                        .parameters
                        .insert(LIVE_STOPPED_EARLY_PARAMETER.to_owned(), serde_json::Value::Bool(true));
                }
                live_summary = Some(summary);
                last
            }
        };
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
    let stopped_early = live_summary.as_ref().is_some_and(|live| live.stopped_early);
    let end = if stopped_early {
        // What was written ends here.
        last.unwrap_or(params.start).max(params.start)
    } else {
        Timestamp::from_unix_nanos(params.start.unix_nanos() + params.duration_nanos).max(last.unwrap_or_default())
    };
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
        live: live_summary,
        clickhouse: None,
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

/// A generator running on a blocking thread.
struct Producer {
    /// Its batches; generation stops early when this is dropped.
    batches: tokio::sync::mpsc::Receiver<Batch>,
    /// The thread.
    thread: tokio::task::JoinHandle<Result<(), ParamsError>>,
    /// Set to stop it before its next trace, however long its current
    /// second of traces is.
    halt: Arc<AtomicBool>,
}

impl Producer {
    /// Stops the generator and waits for its thread.
    async fn stop(self) -> anyhow::Result<()> {
        self.halt.store(true, Ordering::Relaxed);
        drop(self.batches);
        self.thread.await.context("the generator stopped unexpectedly")??;
        Ok(())
    }
}

/// Runs the generator on a blocking thread, feeding a bounded channel.
fn spawn_generator(pattern: Arc<Pattern>, params: Params) -> Producer {
    let (sender, batches) = tokio::sync::mpsc::channel(CHANNEL_BATCHES);
    let halt = Arc::new(AtomicBool::new(false));
    let stop = Arc::clone(&halt);
    let thread = tokio::task::spawn_blocking(move || {
        for batch in Generator::new(&pattern, params)?.stop_when(stop) {
            if sender.blocking_send(batch).is_err() {
                break;
            }
        }
        Ok(())
    });
    Producer { batches, thread, halt }
}

/// Generates and appends every batch; returns the last receive time.
async fn write_generated(
    writer: &mut SessionWriter<'_>,
    pattern: Arc<Pattern>,
    params: Params,
    stop: &CancellationToken,
) -> anyhow::Result<Option<Timestamp>> {
    let mut producer = spawn_generator(pattern, params);
    let mut last: Option<Timestamp> = None;
    let appended = async {
        loop {
            let batch = tokio::select! {
                biased;
                () = stop.cancelled() => return Err(anyhow::Error::new(SeedStopped)),
                batch = producer.batches.recv() => match batch {
                    Some(batch) => batch,
                    None => return anyhow::Ok(()),
                },
            };
            writer
                .append(batch.signal, batch.receive_time, batch.items, &batch.payload)
                .await
                .with_context(|| format!("cannot store the {} request at {}", batch.signal, batch.receive_time))?;
            last = Some(last.map_or(batch.receive_time, |last| last.max(batch.receive_time)));
        }
    }
    .await;
    // A stop or a failed write stops the generator before its next trace.
    let generated = producer.stop().await;
    appended?;
    generated?;
    Ok(last)
}

/// Generates the session in real time: each batch is due at the pacer's
/// origin plus its offset from the session's start, on Tokio's clock; once
/// due it is written and handed to the sender, which sends it with
/// bounded concurrency while the next one is generated and waits. A stop
/// ends the run between two batches, so what is written is the start of
/// the whole session. Returns the last receive time written and what was
/// sent.
async fn write_live(
    writer: &mut SessionWriter<'_>,
    pattern: Arc<Pattern>,
    params: Params,
    live: &Live,
    pacer: Pacer,
) -> anyhow::Result<(Option<Timestamp>, LiveSummary)> {
    let mut producer = spawn_generator(pattern, params);
    let summary = Arc::new(Mutex::new(LiveSummary { target: live.targets.describe(), ..LiveSummary::default() }));
    let (queue, queued) = mpsc::channel(LIVE_QUEUE_REQUESTS);
    let sender = tokio::spawn(send_live(live.targets.clone(), live.concurrency, queued, Arc::clone(&summary)));
    let mut enqueued = [(0_u64, 0_u64); 3];
    let mut last: Option<Timestamp> = None;
    let mut stopped_early = false;
    let appended = async {
        loop {
            let batch = tokio::select! {
                biased;
                () = live.stop.cancelled() => {
                    stopped_early = true;
                    break;
                }
                batch = producer.batches.recv() => match batch {
                    Some(batch) => batch,
                    None => break,
                },
            };
            tokio::select! {
                biased;
                () = live.stop.cancelled() => {
                    stopped_early = true;
                    break;
                }
                () = pacer.wait(batch.receive_time.unix_nanos()) => {}
            }
            writer
                .append(batch.signal, batch.receive_time, batch.items, &batch.payload)
                .await
                .with_context(|| format!("cannot store the {} request at {}", batch.signal, batch.receive_time))?;
            last = Some(last.map_or(batch.receive_time, |last| last.max(batch.receive_time)));
            let request = LiveRequest { signal: batch.signal, items: batch.items, payload: Bytes::from(batch.payload) };
            let (records, items) = &mut enqueued[slot(request.signal)];
            *records += 1;
            *items += request.items;
            match queue.try_send(request) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(request)) => {
                    let message = format!(
                        "not sent: the send queue was full ({LIVE_QUEUE_REQUESTS} requests), the target is slower than the session"
                    );
                    lock(&summary).failed_records(request.signal, 1, request.items, message);
                }
                Err(mpsc::error::TrySendError::Closed(request)) => {
                    let message = "not sent: the sender stopped unexpectedly".to_owned();
                    lock(&summary).failed_records(request.signal, 1, request.items, message);
                }
            }
        }
        anyhow::Ok(())
    }
    .await;
    // A stop or a failed write stops the generator before its next trace.
    drop(queue);
    let generated = producer.stop().await;
    let abort = sender.abort_handle();
    let drained = tokio::time::timeout(LIVE_DRAIN_TIMEOUT, sender).await.is_ok();
    if !drained {
        abort.abort();
    }
    let mut summary = lock(&summary).clone();
    if !drained {
        // What the sender had not sent when it was stopped.
        for signal in Signal::ALL {
            let (records, items) = enqueued[slot(signal)];
            let done = summary.sent.get(signal) + summary.failed.get(signal);
            let done_items = summary.sent_items.get(signal) + summary.failed_items.get(signal);
            if records > done {
                summary.failed_records(
                    signal,
                    records - done,
                    items.saturating_sub(done_items),
                    format!(
                        "requests were still queued or in flight {}s after the last one was written",
                        LIVE_DRAIN_TIMEOUT.as_secs()
                    ),
                );
            }
        }
    }
    appended?;
    generated?;
    summary.stopped_early = stopped_early;
    Ok((last, summary))
}

/// A request of a live run on its way to the target.
struct LiveRequest {
    signal: Signal,
    items: u64,
    payload: Bytes,
}

/// Sends the queued requests, at most `concurrency` at a time, counting
/// what became of each, until the queue is closed and empty.
async fn send_live(
    targets: Targets,
    concurrency: usize,
    mut queued: mpsc::Receiver<LiveRequest>,
    summary: Arc<Mutex<LiveSummary>>,
) {
    let targets = &targets;
    let mut in_flight = FuturesUnordered::new();
    let mut open = true;
    // The first failure is a warning; the rest are counted in the summary.
    let mut warned = false;
    while open || !in_flight.is_empty() {
        tokio::select! {
            Some((signal, items, result)) = in_flight.next(), if !in_flight.is_empty() => {
                let result: Result<tape_replay::ExportOutcome, tape_replay::ExportError> = result;
                match result {
                    Ok(outcome) => lock(&summary).sent_record(signal, items, outcome.rejected_items),
                    Err(error) => {
                        if warned {
                            tracing::debug!("{error}");
                        } else {
                            tracing::warn!("{error} (further failures are counted in the summary)");
                            warned = true;
                        }
                        lock(&summary).failed_records(signal, 1, items, error.to_string());
                    }
                }
            }
            next = queued.recv(), if open && in_flight.len() < concurrency => match next {
                Some(LiveRequest { signal, items, payload }) => in_flight.push(async move {
                    (signal, items, export_with_retry(targets, &LIVE_RETRY, signal, payload).await)
                }),
                None => open = false,
            },
        }
    }
}

/// The live summary, whatever a panicking holder left in it.
fn lock(summary: &Mutex<LiveSummary>) -> std::sync::MutexGuard<'_, LiveSummary> {
    summary.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
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
    if parameters.get(LIVE_STOPPED_EARLY_PARAMETER).and_then(serde_json::Value::as_bool) == Some(true) {
        let from = seed.map_or_else(String::new, |seed| format!(" with seed {seed}"));
        return Some(Regeneration {
            outcome: "skipped",
            seed,
            records: 0,
            difference: None,
            message: format!(
                "cannot be regenerated: a live run (seed --live) that was stopped early wrote it, so it holds only the start of what its parameters{from} generate ({LIVE_STOPPED_EARLY_PARAMETER} in metadata.json)"
            ),
        });
    }
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
    let Producer { batches: mut receiver, thread: producer, halt } = spawn_generator(pattern, params);
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
