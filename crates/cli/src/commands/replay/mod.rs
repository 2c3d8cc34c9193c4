//! `otlp-tape replay`: send a stored session to an OTLP target.
//!
//! The command picks the session (named, or by the orchestrator), resolves
//! the selection and the target, and hands both to the engine of
//! `tape_replay`; around it, it shows progress, keeps a checkpoint, turns
//! Ctrl-C and SIGTERM into a drained stop, and reports.

mod checkpoint;
mod pick;
mod report;
mod status;
mod window;

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use tape_otlp::{Signal, SignalSet};
use tape_replay::{
    EndReason, IdRegeneration, Progress, ReplayError, ReplayOptions, ReplayOutcome, RetryPolicy, Selection, Speed,
    Targets,
};
use tape_session::{SessionMetadata, SessionStore, Timestamp};
use tokio_util::sync::CancellationToken;

pub use checkpoint::write_atomically as write_report;
pub use pick::{SessionChoice, Strategy, parse_session_choice};
pub use tape_session::TimeBound;
pub use window::parse_time_bound;

use self::checkpoint::{Checkpoint, CheckpointWriter, Fingerprinted, ids_name, timestamp_mode_name, write_atomically};
use self::report::{Counts, DryRunPlan, OptionsRecord, Report, SessionRecord, TargetsRecord};
use crate::cli::{OutputFormat, ReplayArgs};
use crate::env;
use crate::output::{note, print_json};
use crate::signals::StopSignals;

/// Exit code of a process stopped by a second Ctrl-C (128 + SIGINT).
const EXIT_INTERRUPTED: i32 = 130;

/// `--max-failures N|unlimited`: failed requests tolerated; `None` is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureLimit(pub Option<u64>);

/// `--max-failures`.
pub fn parse_failure_limit(text: &str) -> Result<FailureLimit, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("unlimited") {
        return Ok(FailureLimit(None));
    }
    text.parse()
        .map(|limit| FailureLimit(Some(limit)))
        .map_err(|_| "expected a number such as 0 or 10, or unlimited".to_owned())
}

/// `--speed`, and `REPLAY_DEFAULT_SPEED`.
pub fn parse_speed(text: &str) -> Result<Speed, String> {
    text.parse::<Speed>().map_err(|_| "expected a factor above 0 such as 0.5, 1 or 10, or max".to_owned())
}

/// A replay resolved from its options: the session picked, the selection
/// and the targets built, ready to run (or to plan dry).
pub struct Prepared {
    /// The session.
    pub metadata: SessionMetadata,
    /// Where the requests go.
    pub targets: Targets,
    /// What is sent.
    pub selection: Selection,
    /// How fast.
    pub speed: Speed,
    /// Id regeneration.
    pub ids: IdRegeneration,
    /// The checkpoint `--resume` continues, with its path.
    resumed: Option<(std::path::PathBuf, Checkpoint)>,
    fingerprinted: Fingerprinted,
    session_record: SessionRecord,
    options_record: OptionsRecord,
}

impl Prepared {
    /// The engine's options for a run with `id_seed`, from `resume` on.
    pub fn options(&self, args: &ReplayArgs, id_seed: u64, resume: Option<tape_replay::Position>) -> ReplayOptions {
        ReplayOptions {
            selection: self.selection.clone(),
            timestamps: args.timestamps,
            speed: self.speed,
            rate_limit: args.rate_limit,
            concurrency: usize::from(args.concurrency),
            ids: self.ids,
            id_seed,
            looping: args.looping,
            duration: Some(Duration::from_nanos(args.duration)),
            skip_corrupt: args.skip_corrupt,
            retry: RetryPolicy { max_attempts: args.max_attempts, ..RetryPolicy::default() },
            max_failures: args.max_failures.0,
            resume,
            hash_sent: true,
            ..ReplayOptions::default()
        }
    }

    /// The report of a run that ended with `outcome`, and the error that
    /// makes it count as failed, if any. `before` is the progress a resumed
    /// run started from.
    pub fn report(
        &self,
        outcome: &ReplayOutcome,
        id_seed: u64,
        before: &tape_replay::SignalProgress,
    ) -> (Report, Option<anyhow::Error>) {
        let failure = outcome_error(outcome, &self.metadata, &self.targets.describe(), before.failed_records);
        let report = build_report(
            self.session_record.clone(),
            &self.targets,
            self.options_record.clone(),
            outcome,
            id_seed,
            before.sent_items,
            failure.as_ref(),
        );
        (report, failure)
    }
}

/// Checks the options, picks the session and resolves the selection and
/// the targets, as `replay` does before it sends anything; `--checkpoint`
/// with `--resume` reads the checkpoint.
pub async fn prepare(store: &dyn SessionStore, args: &ReplayArgs) -> anyhow::Result<Prepared> {
    let speed = speed(args)?;
    let signals = signals(args);
    let services = services(args)?;
    if args.duration == 0 {
        bail!("--duration must be more than zero");
    }
    if args.log_interval == 0 {
        bail!("--log-interval must be more than zero");
    }
    for (flag, path) in [("--report", &args.report), ("--checkpoint", &args.checkpoint)] {
        if let Some(path) = path {
            check_directory(flag, path)?;
        }
    }
    let ids = match (args.regenerate_ids, args.keep_ids) {
        (true, _) => IdRegeneration::Always,
        (_, true) => IdRegeneration::Never,
        _ => IdRegeneration::FromSecondPass,
    };

    let resumed = match (&args.checkpoint, args.resume) {
        (Some(path), true) => Some((path.clone(), Checkpoint::read(path)?)),
        _ => None,
    };
    let choice = match (&args.session, &resumed) {
        (SessionChoice::Auto, Some((_, checkpoint))) => SessionChoice::Id(checkpoint.session_id.clone()),
        (choice, _) => choice.clone(),
    };
    let (metadata, picked) = pick::pick(store, &choice, args.strategy, args.filter_type).await?;
    let phase = match &args.phase {
        Some(name) => {
            let phases = window::phases(store, &metadata).await?;
            Some(window::find_phase(&metadata, &phases, name)?)
        }
        None => None,
    };
    let window = window::window(metadata.start_time, args.from, args.until, phase.as_ref())?;
    let selection = Selection { signals, services, from: window.from, until: window.until };
    let targets = crate::target::targets(&args.target)?;
    let fingerprinted = Fingerprinted::new(&selection, args.timestamps, ids);

    let options_record = OptionsRecord {
        speed: match speed {
            Speed::Max => "max".to_owned(),
            Speed::Factor(factor) => factor.to_string(),
        },
        timestamps: timestamp_mode_name(args.timestamps),
        looping: args.looping,
        duration_seconds: Duration::from_nanos(args.duration).as_secs_f64(),
        signals: signals.iter().collect(),
        services: selection.services.clone(),
        from: selection.from.map(Timestamp::from_unix_nanos),
        until: selection.until.map(Timestamp::from_unix_nanos),
        phase: args.phase.clone(),
        rate_limit: args.rate_limit,
        concurrency: usize::from(args.concurrency),
        ids: ids_name(ids),
        max_attempts: args.max_attempts,
        max_failures: args.max_failures.0,
        skip_corrupt: args.skip_corrupt,
        checkpoint: args.checkpoint.clone(),
        resumed_from: None,
    };
    let session_record = SessionRecord::new(&metadata, picked);
    Ok(Prepared { metadata, targets, selection, speed, ids, resumed, fingerprinted, session_record, options_record })
}

/// `replay`
pub async fn run(
    store: Arc<dyn SessionStore>,
    args: ReplayArgs,
    format: OutputFormat,
    quiet: bool,
) -> anyhow::Result<ExitCode> {
    let mut prepared = prepare(store.as_ref(), &args).await?;
    if let Some(picked) = &prepared.session_record.picked {
        note(format!("Picked session {} ({}).", prepared.metadata.session_id, picked.describe()));
    }
    let metadata = prepared.metadata.clone();
    let selection = prepared.selection.clone();
    let speed = prepared.speed;
    let resumed = prepared.resumed.take();
    let fingerprinted = prepared.fingerprinted.clone();

    if args.dry_run {
        return dry_run(
            store.as_ref(),
            &metadata,
            prepared.session_record.clone(),
            &prepared.targets,
            &selection,
            speed,
            prepared.options_record.clone(),
            &args,
            format,
        )
        .await;
    }

    let id_seed = match &resumed {
        Some((path, checkpoint)) => {
            checkpoint.check(path, &metadata, &fingerprinted, args.id_seed)?;
            if checkpoint.complete || (!args.looping && checkpoint.position.pass > 0) {
                return already_complete(path, checkpoint, format);
            }
            checkpoint.id_seed
        }
        None => args.id_seed.unwrap_or_else(|| u64::from(rand::random::<u32>())),
    };
    let resume = resumed.as_ref().map(|(_, checkpoint)| checkpoint.position.clone());
    prepared.options_record.resumed_from.clone_from(&resume);

    let mut options = prepared.options(&args, id_seed, resume.clone());
    options.hash_sent = args.report.is_some();
    let progress = Arc::new(Progress::new());
    if let Some((_, checkpoint)) = &resumed {
        progress.restore(&checkpoint.counts);
    }
    let before = progress.snapshot().total();

    let targets = &prepared.targets;
    let target = targets.describe();
    let pace = match speed {
        Speed::Max => "as fast as it accepts".to_owned(),
        Speed::Factor(factor) => format!("at {factor}x the recorded pace"),
    };
    let looping = if args.looping { ", looping" } else { "" };
    note(format!(
        "Replaying session {} ({}) to {target} {pace}{looping}: {selection}; id seed {id_seed}.",
        metadata.session_id, metadata.session_type
    ));
    if let Some(position) = &resume {
        note(format!("Resuming at {}.", report::describe_position(position)));
    }
    // Until now Ctrl-C ends the process as usual: there is nothing to
    // finish. From here on it stops the replay cleanly.
    let stop_signals = StopSignals::register()?;
    note("Stop with Ctrl-C (or SIGTERM): the requests in flight get up to 5 s, then the replay is summarised.");

    let stop = CancellationToken::new();
    let signal_task = tokio::spawn(watch_signals(stop_signals, stop.clone(), args.checkpoint.is_some()));
    let display = if args.no_progress || quiet {
        status::Display::Off
    } else if std::io::stderr().is_terminal() {
        status::Display::Bar
    } else {
        status::Display::Lines(Duration::from_nanos(args.log_interval))
    };
    let helpers_stop = CancellationToken::new();
    let display = status::spawn(display, Arc::clone(&progress), helpers_stop.clone());
    let writer = args
        .checkpoint
        .clone()
        .map(|path| Arc::new(CheckpointWriter::new(path, Checkpoint::new(&metadata, fingerprinted.clone(), id_seed))));
    let writer_task =
        writer.as_ref().map(|writer| Arc::clone(writer).spawn(Arc::clone(&progress), helpers_stop.clone()));

    let outcome = tape_replay::replay(Arc::clone(&store), &metadata, targets, &options, &progress, &stop).await;

    helpers_stop.cancel();
    for task in [display, writer_task].into_iter().flatten() {
        // A helper that panicked has stopped as well.
        let _ = task.await;
    }
    signal_task.abort();

    let mut problems = Vec::new();
    if let Some(writer) = &writer {
        let complete = outcome.reason == EndReason::Finished;
        if let Err(error) = writer.write(outcome.progress.done.clone(), outcome.progress.clone(), complete) {
            problems.push(error);
        }
    }
    let (report, failure) = prepared.report(&outcome, id_seed, &before);
    if let Some(path) = &args.report {
        let written = serde_json::to_vec_pretty(&report)
            .map_err(anyhow::Error::from)
            .and_then(|mut json| {
                json.push(b'\n');
                write_atomically(path, &json).map_err(anyhow::Error::from)
            })
            .with_context(|| format!("cannot write the report {}", path.display()));
        if let Err(error) = written {
            problems.push(error);
        }
    }
    if format == OutputFormat::Json {
        print_json(&report)?;
    } else {
        report.print();
        if let Some(path) = &args.report {
            note(format!("Report written to {}.", path.display()));
        }
        if let Some(writer) = &writer
            && outcome.reason != EndReason::Finished
        {
            note(format!("Checkpoint in {}: resume with the same options and --resume.", writer.path().display()));
        }
    }
    // The replay's own failure comes first; files that could not be
    // written are said too.
    let mut errors = failure.into_iter().chain(problems);
    let Some(first) = errors.next() else { return Ok(ExitCode::SUCCESS) };
    for error in errors {
        tracing::error!("{error:#}");
    }
    Err(first)
}

/// `--dry-run`: reads the session as the replay would, connects nowhere.
#[allow(clippy::too_many_arguments)] // the pieces run has resolved
async fn dry_run(
    store: &dyn SessionStore,
    metadata: &SessionMetadata,
    session: SessionRecord,
    targets: &Targets,
    selection: &Selection,
    speed: Speed,
    options: OptionsRecord,
    args: &ReplayArgs,
    format: OutputFormat,
) -> anyhow::Result<ExitCode> {
    let plan = tape_replay::plan(store, metadata, selection, args.skip_corrupt)
        .await
        .map_err(|error| replay_error(error, metadata))?;
    let dry_run = DryRunPlan::new(session, TargetsRecord::new(targets), selection.to_string(), &plan, speed, options);
    if format == OutputFormat::Json {
        print_json(&dry_run)?;
    } else {
        dry_run.print();
        note("Nothing was sent: this was a dry run.");
    }
    Ok(ExitCode::SUCCESS)
}

/// `--resume` of a replay that got to the end.
fn already_complete(path: &Path, checkpoint: &Checkpoint, format: OutputFormat) -> anyhow::Result<ExitCode> {
    let total = checkpoint.counts.total();
    note(format!(
        "The checkpoint {} is of a replay of session {} that got to the end ({} requests sent, {} failed): \
         nothing to resume. Start again without --resume to replay it once more.",
        path.display(),
        checkpoint.session_id,
        total.sent_records,
        total.failed_records
    ));
    if format == OutputFormat::Json {
        print_json(&serde_json::json!({
            "sessionId": checkpoint.session_id,
            "alreadyComplete": true,
            "position": checkpoint.position,
            "counts": checkpoint.counts,
        }))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Why the replay counts as failed, if it does: it stopped on an error, or
/// some request of this run failed.
fn outcome_error(
    outcome: &ReplayOutcome,
    metadata: &SessionMetadata,
    target: &str,
    failed_before: u64,
) -> Option<anyhow::Error> {
    let id = &metadata.session_id;
    if outcome.reason == EndReason::Failed {
        return Some(match &outcome.error {
            Some(ReplayError::Read { source }) => session_read_error(source, metadata),
            Some(error @ ReplayError::Failures { .. }) => {
                anyhow!("{error}").context(format!("the replay of session {id} to {target} failed"))
            }
            None => anyhow!("the replay of session {id} to {target} failed"),
        });
    }
    let failed = outcome.progress.total().failed_records.saturating_sub(failed_before);
    if failed == 0 {
        return None;
    }
    let plural = if failed == 1 { "request" } else { "requests" };
    let last = outcome.progress.last_error.as_deref().unwrap_or("no message");
    Some(anyhow!("{last}").context(format!("{failed} {plural} of the replay of session {id} to {target} failed")))
}

/// A [`ReplayError`] of a dry run.
fn replay_error(error: ReplayError, metadata: &SessionMetadata) -> anyhow::Error {
    match error {
        ReplayError::Read { source } => session_read_error(&source, metadata),
        error @ ReplayError::Failures { .. } => anyhow!(error),
    }
}

/// A session that cannot be read: a damaged blob names its key and byte
/// offset and points at `--skip-corrupt`.
fn session_read_error(source: &tape_session::Error, metadata: &SessionMetadata) -> anyhow::Error {
    let id = &metadata.session_id;
    let message = if matches!(source, tape_session::Error::CorruptBlob { .. }) {
        format!("the replay of session {id} stopped at a damaged blob; --skip-corrupt replays past it")
    } else {
        format!("cannot read session {id}")
    };
    chain_of(source).context(message)
}

/// `error` and its sources as an anyhow chain, each message once.
fn chain_of(error: &(dyn std::error::Error + 'static)) -> anyhow::Error {
    let mut messages = vec![error.to_string()];
    let mut cause = error.source();
    while let Some(next) = cause {
        messages.push(next.to_string());
        cause = next.source();
    }
    let mut messages = messages.into_iter().rev();
    let innermost = messages.next().unwrap_or_default();
    messages.fold(anyhow!(innermost), anyhow::Error::context)
}

fn build_report(
    session: SessionRecord,
    targets: &Targets,
    options: OptionsRecord,
    outcome: &ReplayOutcome,
    id_seed: u64,
    items_before: u64,
    failure: Option<&anyhow::Error>,
) -> Report {
    let progress = &outcome.progress;
    let total = progress.total();
    let elapsed_nanos = u64::try_from(outcome.elapsed.as_nanos()).unwrap_or(u64::MAX);
    let seconds = outcome.elapsed.as_secs_f64();
    #[allow(clippy::cast_precision_loss)] // a rate for people
    let rate = if seconds > 0.0 { total.sent_items.saturating_sub(items_before) as f64 / seconds } else { 0.0 };
    let error = failure.map(|error| format!("{error:#}"));
    // A replay that did not fail may still have met problems worth keeping.
    let warning = (error.is_none()
        && (total.rejected_items > 0 || total.invalid_records > 0 || progress.corrupt_blobs > 0))
        .then(|| progress.last_error.clone())
        .flatten();
    Report {
        session,
        targets: TargetsRecord::new(targets),
        options,
        started_at: Timestamp::from_unix_nanos(outcome.started_at_unix_nanos),
        ended_at: Timestamp::from_unix_nanos(outcome.started_at_unix_nanos.saturating_add(elapsed_nanos)),
        duration_seconds: seconds,
        reason: outcome.reason.to_string(),
        passes: progress.pass + 1,
        counts: Counts { traces: progress.traces, metrics: progress.metrics, logs: progress.logs, total },
        corrupt_blobs: progress.corrupt_blobs,
        abandoned_records: outcome.abandoned_records,
        achieved_items_per_second: rate,
        id_seed,
        content_hash: outcome.content_hash.clone(),
        error,
        warning,
    }
}

/// `--speed`, else `REPLAY_DEFAULT_SPEED`, else 1.
fn speed(args: &ReplayArgs) -> anyhow::Result<Speed> {
    if let Some(speed) = args.speed {
        return Ok(speed);
    }
    match env::first_set(&[env::REPLAY_DEFAULT_SPEED]) {
        Some(text) => {
            parse_speed(&text).map_err(|expected| anyhow!("invalid {} {text:?}: {expected}", env::REPLAY_DEFAULT_SPEED))
        }
        None => Ok(Speed::Factor(1.0)),
    }
}

/// `--traces`, `--metrics`, `--logs`: the ones named, or all.
fn signals(args: &ReplayArgs) -> SignalSet {
    let named: SignalSet = [(args.traces, Signal::Traces), (args.metrics, Signal::Metrics), (args.logs, Signal::Logs)]
        .into_iter()
        .filter_map(|(named, signal)| named.then_some(signal))
        .collect();
    if named.is_empty() { SignalSet::ALL } else { named }
}

/// `--services`, trimmed, without blanks and repeats.
fn services(args: &ReplayArgs) -> anyhow::Result<Vec<String>> {
    let mut services: Vec<String> = Vec::new();
    for service in args.services.iter().map(|service| service.trim()).filter(|service| !service.is_empty()) {
        if !services.iter().any(|known| known == service) {
            services.push(service.to_owned());
        }
    }
    if services.is_empty() && !args.services.is_empty() {
        bail!("--services names no service; give service.name values such as checkout,payment");
    }
    Ok(services)
}

/// Fails early when the directory a file goes in does not exist.
fn check_directory(flag: &str, path: &Path) -> anyhow::Result<()> {
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => return Ok(()),
    };
    if directory.is_dir() {
        Ok(())
    } else {
        bail!("{flag} {}: the directory {} does not exist", path.display(), directory.display())
    }
}

/// Cancels `stop` at the first Ctrl-C or SIGTERM and exits at the second.
async fn watch_signals(mut signals: StopSignals, stop: CancellationToken, checkpointing: bool) {
    signals.next().await;
    note(
        "Stopping: no more retries; the requests in flight get up to 5 s, a resume sends the rest (Ctrl-C again \
         to quit at once).",
    );
    stop.cancel();
    signals.next().await;
    let checkpoint = if checkpointing {
        " The checkpoint holds the position of the last record done; requests in flight are sent again on --resume."
    } else {
        ""
    };
    note(format!("Quitting at once.{checkpoint}"));
    std::process::exit(EXIT_INTERRUPTED);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_limits_and_speeds_parse() {
        assert_eq!(parse_failure_limit("0"), Ok(FailureLimit(Some(0))));
        assert_eq!(parse_failure_limit("Unlimited"), Ok(FailureLimit(None)));
        assert!(parse_failure_limit("-1").is_err());
        assert_eq!(parse_speed("max"), Ok(Speed::Max));
        assert_eq!(parse_speed("0.5"), Ok(Speed::Factor(0.5)));
        for bad in ["0", "-1", "NaN", "inf", "fast"] {
            assert_eq!(parse_speed(bad), Err("expected a factor above 0 such as 0.5, 1 or 10, or max".to_owned()));
        }
    }

    #[test]
    fn an_error_chain_keeps_each_message_once() {
        let source = tape_session::Error::CorruptBlob {
            session: "s".parse().unwrap(),
            key: "raw/k".to_owned(),
            source: tape_session::BlobError::Gzip { compressed_offset: 120, message: "bad".to_owned() },
        };
        let chain: Vec<String> = chain_of(&source).chain().map(ToString::to_string).collect();
        assert_eq!(
            chain,
            ["session s: blob raw/k is corrupt", "gzip data is corrupt at or after compressed byte 120: bad"]
        );
    }
}
