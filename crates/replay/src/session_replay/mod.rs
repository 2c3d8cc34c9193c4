//! The replay of a stored session, the use case behind `otlp-tape replay`
//! and the control API's replays: the options ([`ReplayConfig`]), the
//! orchestrator that picks a session, the window of `--from`, `--until`
//! and `--phase`, the target, the checkpoint, the engine run and the
//! report.
//!
//! A replay goes through three steps, so that a front can look at each:
//! [`prepare`] picks the session and resolves the selection and the
//! targets (nothing is sent; a front checks the targets or plans a dry run
//! here); [`Prepared::start`] reads the checkpoint of a resume and draws
//! the id seed; [`Ready::run`] runs the engine until it ends or is
//! stopped, keeping the checkpoint, and returns the [`Finished`] replay
//! with its [`Report`]. [`replay_session`] does all three.

mod checkpoint;
mod config;
mod error;
mod pick;
mod report;
mod window;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use tape_session::{SessionId, SessionMetadata, SessionStore, Timestamp};
use tokio_util::sync::CancellationToken;

pub use self::checkpoint::{CHECKPOINT_VERSION, Checkpoint, CheckpointWriter, Fingerprinted, write_atomically};
pub use self::config::{
    DEFAULT_CONCURRENCY, DEFAULT_DURATION, DEFAULT_MAX_ATTEMPTS, FailureLimit, MAX_CONCURRENCY, ReplayConfig,
    SessionChoice, Strategy, ValidReplayConfig, parse_rate_limit, parse_start_at,
};
pub use self::error::{Error, Failure};
pub use self::pick::{Picked, choose, pick};
pub use self::report::{
    Counts, DryRunPlan, OptionsRecord, Pacing, PlanCounts, Report, SessionRecord, SignalPlan, TargetRecord,
    TargetsRecord, describe_position,
};
pub use self::window::{Phase, Window, find_phase, phases, window};
use crate::engine::{EndReason, Position, Progress, ProgressSnapshot, ReplayError, ReplayOptions, ReplayOutcome};
use crate::engine::{Selection, SignalProgress};
use crate::pacing::Speed;
use crate::retry::RetryPolicy;
use crate::target::resolve_targets;
use crate::targets::Targets;

/// What a run takes besides its [`ReplayConfig`]: files on the host, which
/// the control API does not let a caller name.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Keep the replay's position in this JSON file (`--checkpoint`),
    /// replaced as records are done.
    pub checkpoint: Option<PathBuf>,
    /// Go on from the position in `checkpoint` (`--resume`), with its
    /// counts and id seed.
    pub resume: bool,
    /// PEM file of the certificate authorities an `https://` target is
    /// checked against (`--ca-file`).
    pub ca_file: Option<PathBuf>,
    /// Put the SHA-256 of what is sent in the report (`contentHash`): the
    /// command line does with `--report`, the control API always does.
    pub content_hash: bool,
}

/// A replay resolved from its options: the session picked, the selection
/// and the targets built, ready to start (or to plan dry).
#[derive(Debug)]
pub struct Prepared {
    config: ValidReplayConfig,
    run: RunOptions,
    metadata: SessionMetadata,
    picked: Option<Picked>,
    targets: Targets,
    selection: Selection,
    resumed: Option<Checkpoint>,
    fingerprinted: Fingerprinted,
    options_record: OptionsRecord,
}

/// Picks the session and resolves the selection and the targets, as a
/// replay does before it sends anything; a resume reads its checkpoint
/// (whose session `--session auto` then means). `env` looks up the OTLP
/// exporter variables; see [`resolve_targets`].
///
/// # Errors
/// A checkpoint that cannot be read, a session that cannot be picked
/// ([`Error::SessionNotFound`] among others), a window that selects
/// nothing, a target that is not valid.
pub async fn prepare(
    store: &dyn SessionStore,
    config: ValidReplayConfig,
    run: RunOptions,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Prepared, Error> {
    let resumed = match (&run.checkpoint, run.resume) {
        (Some(path), true) => Some(Checkpoint::read(path)?),
        _ => None,
    };
    let choice = match (&config.session, &resumed) {
        (SessionChoice::Auto, Some(checkpoint)) => SessionChoice::Id(checkpoint.session_id.clone()),
        (choice, _) => choice.clone(),
    };
    let (mut metadata, picked) = pick(store, &choice, config.strategy, config.filter_type).await?;
    let phase = match &config.phase {
        Some(name) => {
            let phases = phases(store, &metadata).await?;
            Some(find_phase(&metadata, &phases, name)?)
        }
        None => None,
    };
    let window = window(metadata.start_time, config.from, config.until, phase.as_ref())?;
    // A phase of one source of a merged session selects its writers' blobs.
    if let Some(phase) = &phase {
        metadata.blobs.retain(|blob| phase.selects_blob(blob));
    }
    let selection = Selection {
        signals: config.signals,
        services: config.services.clone(),
        from: window.from,
        until: window.until,
        shard: config.shard,
    };
    let targets = resolve_targets(&config.target, run.ca_file.as_deref(), env)?;
    let mut fingerprinted = Fingerprinted::new(&selection, config.timestamps, config.ids);
    fingerprinted.start_at = config.start_at;
    let options_record = OptionsRecord {
        speed: match config.speed {
            Speed::Max => "max".to_owned(),
            Speed::Factor(factor) => factor.to_string(),
        },
        timestamps: checkpoint::timestamp_mode_name(config.timestamps),
        looping: config.looping,
        passes: config.passes,
        duration_seconds: config.duration.as_secs_f64(),
        signals: config.signals.iter().collect(),
        services: selection.services.clone(),
        from: selection.from.map(Timestamp::from_unix_nanos),
        until: selection.until.map(Timestamp::from_unix_nanos),
        phase: config.phase.clone(),
        shard: config.shard,
        start_at: config.start_at,
        rate_limit: config.rate_limit,
        concurrency: usize::from(config.concurrency),
        ids: checkpoint::ids_name(config.ids),
        max_attempts: config.max_attempts,
        max_failures: config.max_failures,
        skip_corrupt: config.skip_corrupt,
        checkpoint: run.checkpoint.clone(),
        resumed_from: None,
    };
    Ok(Prepared { config, run, metadata, picked, targets, selection, resumed, fingerprinted, options_record })
}

impl Prepared {
    /// The options, checked.
    pub fn config(&self) -> &ValidReplayConfig {
        &self.config
    }

    /// The session.
    pub fn metadata(&self) -> &SessionMetadata {
        &self.metadata
    }

    /// The session's id.
    pub fn session_id(&self) -> &SessionId {
        &self.metadata.session_id
    }

    /// How the orchestrator picked the session, when it did.
    pub fn picked(&self) -> Option<&Picked> {
        self.picked.as_ref()
    }

    /// Where the requests go; each signal's endpoint is
    /// `targets().exporter(signal).endpoint()`.
    pub fn targets(&self) -> &Targets {
        &self.targets
    }

    /// What is sent.
    pub fn selection(&self) -> &Selection {
        &self.selection
    }

    /// What the replay would send, where and how long it would take, from
    /// a read of the session, without connecting anywhere (`--dry-run`).
    ///
    /// # Errors
    /// The session cannot be read ([`Error::ReadRecords`]).
    pub async fn dry_run(&self, store: &dyn SessionStore) -> Result<DryRunPlan, Error> {
        let plan = crate::engine::plan(store, &self.metadata, &self.selection, self.config.skip_corrupt)
            .await
            .map_err(|error| match error {
                ReplayError::Read { source } => {
                    Error::ReadRecords { message: read_message(&source, &self.metadata), source: Box::new(source) }
                }
                error @ ReplayError::Failures { .. } => Error::Replay(Box::new(error)),
            })?;
        Ok(DryRunPlan::new(
            SessionRecord::new(&self.metadata, self.picked.clone()),
            TargetsRecord::new(&self.targets),
            self.selection.to_string(),
            &plan,
            self.config.speed,
            self.options_record.clone(),
        ))
    }

    /// Checks the checkpoint of a resume against this replay and draws
    /// the id seed (the checkpoint's, the options', or a random one).
    ///
    /// # Errors
    /// [`Error::CheckpointMismatch`]: the checkpoint is of another replay.
    pub fn start(mut self) -> Result<Start, Error> {
        let resumed = self.resumed.take();
        let id_seed = match (&resumed, &self.run.checkpoint) {
            (Some(checkpoint), Some(path)) => {
                checkpoint.check(path, &self.metadata, &self.fingerprinted, self.config.id_seed)?;
                let passes = if self.config.looping { self.config.passes } else { Some(1) };
                if checkpoint.complete || passes.is_some_and(|passes| checkpoint.position.pass >= passes) {
                    return Ok(Start::AlreadyComplete(Box::new(AlreadyComplete::new(path, checkpoint))));
                }
                checkpoint.id_seed
            }
            _ => self.config.id_seed.unwrap_or_else(|| u64::from(rand::random::<u32>())),
        };
        let resume = resumed.as_ref().map(|checkpoint| checkpoint.position.clone());
        self.options_record.resumed_from.clone_from(&resume);
        let progress = Arc::new(Progress::new());
        if let Some(checkpoint) = &resumed {
            progress.restore(&checkpoint.counts);
        }
        let before = progress.snapshot().total();
        let options = ReplayOptions {
            selection: self.selection.clone(),
            timestamps: self.config.timestamps,
            speed: self.config.speed,
            rate_limit: self.config.rate_limit,
            concurrency: usize::from(self.config.concurrency),
            ids: self.config.ids,
            id_seed,
            looping: self.config.looping,
            passes: self.config.passes,
            duration: Some(self.config.duration),
            skip_corrupt: self.config.skip_corrupt,
            retry: RetryPolicy { max_attempts: self.config.max_attempts, ..RetryPolicy::default() },
            max_failures: self.config.max_failures,
            resume,
            hash_sent: self.run.content_hash,
            start_at: self.config.start_at.map(Timestamp::unix_nanos),
            ..ReplayOptions::default()
        };
        Ok(Start::Ready(Box::new(Ready { prepared: self, options, progress, before })))
    }
}

/// What [`Prepared::start`] found.
#[derive(Debug)]
pub enum Start {
    /// The checkpoint is of a replay that got to the end: nothing to
    /// resume.
    AlreadyComplete(Box<AlreadyComplete>),
    /// Ready to run.
    Ready(Box<Ready>),
}

/// A resume of a replay that got to the end; as JSON, what the command
/// line prints with `--output json`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AlreadyComplete {
    /// The checkpoint file.
    #[serde(skip)]
    pub path: PathBuf,
    /// The session it replayed.
    pub session_id: SessionId,
    /// Always `true`.
    pub already_complete: bool,
    /// Where it ended.
    pub position: Position,
    /// Its counts.
    pub counts: ProgressSnapshot,
}

impl AlreadyComplete {
    fn new(path: &Path, checkpoint: &Checkpoint) -> Self {
        AlreadyComplete {
            path: path.to_owned(),
            session_id: checkpoint.session_id.clone(),
            already_complete: true,
            position: checkpoint.position.clone(),
            counts: checkpoint.counts.clone(),
        }
    }
}

/// A replay about to run: its id seed drawn, its progress (restored from
/// the checkpoint of a resume) ready to be watched.
#[derive(Debug)]
pub struct Ready {
    prepared: Prepared,
    options: ReplayOptions,
    progress: Arc<Progress>,
    before: SignalProgress,
}

impl Ready {
    /// What was prepared.
    pub fn prepared(&self) -> &Prepared {
        &self.prepared
    }

    /// The seed of new ids.
    pub fn id_seed(&self) -> u64 {
        self.options.id_seed
    }

    /// Where a resume starts.
    pub fn resume(&self) -> Option<&Position> {
        self.options.resume.as_ref()
    }

    /// The progress the run updates, for a progress bar or an API.
    pub fn progress(&self) -> Arc<Progress> {
        Arc::clone(&self.progress)
    }

    /// Runs the replay until it ends, fails or `stop` is cancelled (then
    /// the requests in flight get up to 5 s), keeping the checkpoint file
    /// of [`RunOptions::checkpoint`] as records are done and once more at
    /// the end. Cancelling `stop` before the run starts stops it at once.
    pub async fn run(self, store: Arc<dyn SessionStore>, stop: &CancellationToken) -> Finished {
        let Ready { prepared, mut options, progress, before } = self;
        let metadata = &prepared.metadata;
        let writer = prepared.run.checkpoint.clone().map(|path| {
            let template = Checkpoint::new(metadata, prepared.fingerprinted.clone(), options.id_seed);
            Arc::new(CheckpointWriter::new(path, template))
        });
        let writer_stop = CancellationToken::new();
        // What the writer has on disk, so that the engine keeps at most
        // its concurrency of requests sent and not done on disk.
        let writer_task = writer.as_ref().map(|writer| {
            let (durable, on_disk) = tokio::sync::watch::channel(Some(options.resume.clone().unwrap_or_default()));
            options.durable = Some(on_disk);
            Arc::clone(writer).spawn(Arc::clone(&progress), durable, writer_stop.clone())
        });

        let outcome = crate::engine::replay(store, metadata, &prepared.targets, &options, &progress, stop).await;

        writer_stop.cancel();
        if let Some(task) = writer_task {
            // A writer that panicked has stopped as well.
            let _ = task.await;
        }
        let checkpoint_error = writer.as_ref().and_then(|writer| {
            let complete = outcome.reason == EndReason::Finished;
            writer.write(outcome.progress.done.clone(), outcome.progress.clone(), complete).err()
        });
        let target = prepared.targets.describe();
        let failure = outcome_failure(&outcome, metadata, &target, before.failed_records);
        let report = build_report(&prepared, &outcome, options.id_seed, before.sent_items, failure.as_ref());
        Finished { report, failure, checkpoint_error, checkpoint: prepared.run.checkpoint, outcome }
    }
}

/// A replay that ran: how it went and its report.
#[derive(Debug)]
pub struct Finished {
    /// The report (`--report`, `--output json`, the control API's
    /// `report`).
    pub report: Report,
    /// Why the replay counts as failed, if it does: it stopped on an
    /// error, or some request of this run failed. Its full text is the
    /// report's `error`.
    pub failure: Option<Failure>,
    /// The final write of the checkpoint, when it failed.
    pub checkpoint_error: Option<Error>,
    /// The checkpoint file, when one was kept.
    pub checkpoint: Option<PathBuf>,
    /// What the engine returned.
    pub outcome: ReplayOutcome,
}

impl Finished {
    /// Why it ended.
    pub fn reason(&self) -> EndReason {
        self.outcome.reason
    }

    /// The report as pretty JSON with a final newline, as report files are
    /// written.
    ///
    /// # Errors
    /// Never in practice: the report is plain data.
    pub fn report_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        report_json(&self.report)
    }
}

/// `report` as pretty JSON with a final newline.
///
/// # Errors
/// Never in practice: the report is plain data.
pub fn report_json(report: &Report) -> Result<Vec<u8>, serde_json::Error> {
    let mut json = serde_json::to_vec_pretty(report)?;
    json.push(b'\n');
    Ok(json)
}

/// Writes `report` to `path` atomically (see [`write_atomically`]): a
/// page with charts when the path ends in `.html` or `.htm` (any case),
/// see [`tape_web::replay_report_page`]; pretty JSON otherwise.
///
/// # Errors
/// The file cannot be written.
pub fn write_report(path: &Path, report: &Report) -> std::io::Result<()> {
    let bytes = if is_html(path) {
        let json = serde_json::to_value(report).map_err(std::io::Error::other)?;
        tape_web::replay_report_page(&json).into_bytes()
    } else {
        report_json(report).map_err(std::io::Error::other)?
    };
    write_atomically(path, &bytes)
}

/// Whether a report written to `path` is a page (`.html`, `.htm`).
fn is_html(path: &Path) -> bool {
    path.extension()
        .and_then(|extension| extension.to_str())
        .is_some_and(|extension| extension.eq_ignore_ascii_case("html") || extension.eq_ignore_ascii_case("htm"))
}

/// What [`replay_session`] did.
#[derive(Debug)]
pub enum RunOutcome {
    /// The resumed replay had got to the end: nothing was sent.
    AlreadyComplete(Box<AlreadyComplete>),
    /// The replay ran.
    Finished(Box<Finished>),
}

/// Replays a stored session: [`ReplayConfig::validate`], [`prepare`],
/// [`Prepared::start`] and [`Ready::run`] in one call, without a progress
/// display. `env` looks up variables (`REPLAY_DEFAULT_SPEED`, the OTLP
/// exporter variables).
///
/// # Errors
/// Options that are not valid, or a replay that cannot start; a replay
/// that ran and failed is a [`Finished`] with a [`Finished::failure`].
pub async fn replay_session(
    store: Arc<dyn SessionStore>,
    config: ReplayConfig,
    run: RunOptions,
    env: impl Fn(&str) -> Option<String>,
    stop: &CancellationToken,
) -> Result<RunOutcome, Error> {
    let config = config.validate(&env)?;
    let prepared = prepare(store.as_ref(), config, run, &env).await?;
    match prepared.start()? {
        Start::AlreadyComplete(complete) => Ok(RunOutcome::AlreadyComplete(complete)),
        Start::Ready(ready) => Ok(RunOutcome::Finished(Box::new(ready.run(store, stop).await))),
    }
}

/// Why the replay counts as failed, if it does: it stopped on an error, or
/// some request of this run failed.
fn outcome_failure(
    outcome: &ReplayOutcome,
    metadata: &SessionMetadata,
    target: &str,
    failed_before: u64,
) -> Option<Failure> {
    let id = &metadata.session_id;
    if outcome.reason == EndReason::Failed {
        return Some(match &outcome.error {
            Some(ReplayError::Read { source }) => Failure::of(source).context(read_message(source, metadata)),
            Some(error @ ReplayError::Failures { .. }) => {
                Failure::new(error.to_string()).context(format!("the replay of session {id} to {target} failed"))
            }
            None => Failure::new(format!("the replay of session {id} to {target} failed")),
        });
    }
    let failed = outcome.progress.total().failed_records.saturating_sub(failed_before);
    if failed == 0 {
        return None;
    }
    let plural = if failed == 1 { "request" } else { "requests" };
    let last = outcome.progress.last_error.as_deref().unwrap_or("no message");
    Some(Failure::new(last).context(format!("{failed} {plural} of the replay of session {id} to {target} failed")))
}

/// What a session that cannot be read says: a damaged blob points at
/// `--skip-corrupt`.
fn read_message(source: &tape_session::Error, metadata: &SessionMetadata) -> String {
    let id = &metadata.session_id;
    if matches!(source, tape_session::Error::CorruptBlob { .. }) {
        format!("the replay of session {id} stopped at a damaged blob; --skip-corrupt replays past it")
    } else {
        format!("cannot read session {id}")
    }
}

fn build_report(
    prepared: &Prepared,
    outcome: &ReplayOutcome,
    id_seed: u64,
    items_before: u64,
    failure: Option<&Failure>,
) -> Report {
    let progress = &outcome.progress;
    let total = progress.total();
    let elapsed_nanos = u64::try_from(outcome.elapsed.as_nanos()).unwrap_or(u64::MAX);
    let seconds = outcome.elapsed.as_secs_f64();
    #[allow(clippy::cast_precision_loss)] // a rate for people
    let rate = if seconds > 0.0 { total.sent_items.saturating_sub(items_before) as f64 / seconds } else { 0.0 };
    let error = failure.map(Failure::full);
    // A replay that did not fail may still have met problems worth keeping.
    let warning = (error.is_none()
        && (total.rejected_items > 0 || total.invalid_records > 0 || progress.corrupt_blobs > 0))
        .then(|| progress.last_error.clone())
        .flatten();
    Report {
        session: SessionRecord::new(&prepared.metadata, prepared.picked.clone()),
        targets: TargetsRecord::new(&prepared.targets),
        options: prepared.options_record.clone(),
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
        series: outcome.series.clone(),
    }
}
