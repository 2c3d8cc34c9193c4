//! What the control API works with: the store, the receivers, the jobs it
//! started (captures, replays, seeds, exports, comparisons) and what bounds them.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;
use serde_json::{Map, Value, json};
use tape_capture::{QueueGauge, Receivers, Stats, StatsSnapshot, StopHandle};
use tape_replay::{Progress, ProgressSnapshot};
use tape_session::{SessionId, SessionStore, Timestamp};
use tokio_util::sync::CancellationToken;

use crate::Environment;
use crate::limits::Limits;
use crate::metrics::{self, StoreCounters};

/// How many finished replays, seeds and captures are kept for listing.
const HISTORY: usize = 100;

/// Where a long operation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum JobState {
    /// Still going.
    Running,
    /// Done.
    Completed,
    /// Stopped on request before its end.
    Stopped,
    /// Ended with an error.
    Failed,
}

/// What every job has: where it is, when it started and ended, and why it
/// failed.
pub(crate) struct JobStatus {
    pub state: JobState,
    pub started_at: Timestamp,
    pub ended_at: Option<Timestamp>,
    pub error: Option<String>,
}

impl JobStatus {
    /// A job that started at `now`.
    pub fn started(now: Timestamp) -> Self {
        JobStatus { state: JobState::Running, started_at: now, ended_at: None, error: None }
    }

    /// Ends the job now in `state`, failed with `error` if any.
    pub fn end(&mut self, state: JobState, error: Option<String>) {
        self.ended_at = Some(tape_capture::now());
        self.state = state;
        self.error = error;
    }

    pub fn is_running(&self) -> bool {
        self.state == JobState::Running
    }

    /// `fields` of a job's JSON followed by its state, times and error.
    pub fn json(&self, fields: Value) -> Value {
        let mut object = match fields {
            Value::Object(object) => object,
            _ => Map::new(),
        };
        for (key, value) in [
            ("state", json!(self.state)),
            ("startedAt", json!(self.started_at)),
            ("endedAt", json!(self.ended_at)),
            ("error", json!(self.error)),
        ] {
            object.insert(key.to_owned(), value);
        }
        Value::Object(object)
    }
}

/// A job of the API: something with a [`JobStatus`] that shows as JSON and
/// can be stopped.
pub(crate) trait Job {
    fn status(&self) -> &JobStatus;

    /// What the API shows of it.
    fn json(&self) -> Value;

    /// Asks it to stop; it ends on its own soon after.
    fn stop(&self);
}

/// A capture started through the API.
pub(crate) struct CaptureJob {
    pub session_id: SessionId,
    pub status: JobStatus,
    /// While it runs: its stop handle and live counters.
    pub live: Option<(StopHandle, Arc<Stats>)>,
    /// Its recorder's queue (all free once it ended).
    pub queue: QueueGauge,
    pub stats: Option<StatsSnapshot>,
    pub session: Option<Value>,
    /// When it joined a session of several writers: its writer id, and
    /// once it ended, what sealing the session did.
    pub writer: Option<tape_session::WriterId>,
    pub seal: Option<Value>,
}

/// A replay started through the API.
pub(crate) struct ReplayJob {
    pub id: String,
    pub session_id: SessionId,
    pub status: JobStatus,
    pub started: Instant,
    pub progress: Arc<Progress>,
    pub stop: CancellationToken,
    pub report: Option<Value>,
    pub report_file: Option<PathBuf>,
}

/// A seed started through the API.
pub(crate) struct SeedJob {
    pub id: String,
    pub status: JobStatus,
    /// Cancelled to stop it: generation stops between two records and the
    /// partial session is removed.
    pub stop: CancellationToken,
    pub summary: Option<Value>,
}

/// An export started through the API.
pub(crate) struct ExportJob {
    pub id: String,
    pub session_id: SessionId,
    /// Its options, as the export config has them (`out` as the client
    /// gave it).
    pub options: Value,
    pub status: JobStatus,
    /// The latest progress the run reported.
    pub progress: Arc<Mutex<tape_files::ExportProgress>>,
    /// Cancelled to stop it: the run is dropped with what it has not
    /// committed.
    pub stop: CancellationToken,
    pub outcome: Option<Value>,
}

/// A comparison started through the API.
pub(crate) struct CompareJob {
    pub id: String,
    pub expected: SessionId,
    pub actual: SessionId,
    /// Its options, as the comparison config has them.
    pub options: Value,
    pub status: JobStatus,
    /// The latest progress the run reported.
    pub progress: Arc<Mutex<tape_compare::CompareProgress>>,
    /// Cancelled to stop it: the run is dropped with its partition files.
    pub stop: CancellationToken,
    /// The comparison, once it completed.
    pub comparison: Option<Arc<tape_compare::Comparison>>,
}

/// The summed progress of the replays that ended.
#[derive(Debug, Default)]
pub(crate) struct ReplayTotals(pub ProgressSnapshot);

impl ReplayTotals {
    /// Adds a replay's final progress.
    pub fn push(&mut self, progress: &ProgressSnapshot) {
        self.0.traces += &progress.traces;
        self.0.metrics += &progress.metrics;
        self.0.logs += &progress.logs;
    }
}

/// Everything the API works with.
pub(crate) struct State {
    pub store: Arc<dyn SessionStore>,
    pub receivers: Receivers,
    pub store_counters: Arc<StoreCounters>,
    pub token: Option<String>,
    pub reports_dir: PathBuf,
    pub captures: Mutex<BTreeMap<SessionId, CaptureJob>>,
    pub replays: Mutex<BTreeMap<String, ReplayJob>>,
    /// The final progress of every replay that ended, summed as it ends, so
    /// that the metrics' counters never go down when old jobs are dropped.
    pub replay_totals: Mutex<ReplayTotals>,
    pub seeds: Mutex<BTreeMap<String, SeedJob>>,
    /// Replays and seeds still running, so that shutdown waits for them.
    pub tasks: tokio_util::task::TaskTracker,
    /// The tasks that wait for captures to end.
    pub capture_tasks: tokio_util::task::TaskTracker,
    /// Bumped whenever a job starts or ends: `?wait=` requests look again,
    /// the event stream sends the jobs.
    pub ended: tokio::sync::watch::Sender<u64>,
    pub shutting_down: CancellationToken,
    pub retention: Option<tape_session::retention::RetentionPolicy>,
    /// Where capture locks are kept (and S3 spool files).
    pub spool_dir: PathBuf,
    /// What the API lets a caller start.
    pub limits: Limits,
    /// serve's environment: target resolution, `CAPTURE_*`, `CLICKHOUSE_*`.
    pub env: Environment,
    /// Where warnings of jobs go.
    pub warn: Arc<dyn Fn(&str) + Send + Sync>,
    /// The directory local exports of the API are written under; none
    /// refuses them (`--export-dir`).
    pub export_dir: Option<PathBuf>,
    /// Opens an export's output directory.
    pub open_output: crate::OutputOpener,
    pub exports: Mutex<BTreeMap<String, ExportJob>>,
    pub compares: Mutex<BTreeMap<String, CompareJob>>,
    /// Where compare jobs put their partition files (a new directory
    /// each, removed when the job ends).
    pub temp_dir: PathBuf,
}

impl State {
    /// Says that a job ended, waking `?wait=` requests.
    pub fn job_ended(&self) {
        self.ended.send_modify(|count| *count += 1);
    }

    /// Says that a job started, for the event stream.
    pub fn job_started(&self) {
        self.ended.send_modify(|count| *count += 1);
    }

    /// Sessions that must not be deleted: the one being captured and those
    /// being replayed, exported or compared.
    pub fn busy_sessions(&self) -> HashSet<SessionId> {
        // Sessions another process is capturing, too.
        let locked = tape_store::locked_sessions(&self.spool_dir).unwrap_or_default();
        let mut busy: HashSet<SessionId> = lock(&self.captures)
            .values()
            .filter(|job| job.status.is_running())
            .map(|job| job.session_id.clone())
            .collect();
        busy.extend(locked);
        busy.extend(
            lock(&self.replays).values().filter(|job| job.status.is_running()).map(|job| job.session_id.clone()),
        );
        busy.extend(
            lock(&self.exports).values().filter(|job| job.status.is_running()).map(|job| job.session_id.clone()),
        );
        busy.extend(
            lock(&self.compares)
                .values()
                .filter(|job| job.status.is_running())
                .flat_map(|job| [job.expected.clone(), job.actual.clone()]),
        );
        busy
    }

    /// Stops every running replay, seed, export and comparison: a replay
    /// ends within its drain timeout and writes its report; a seed removes
    /// its partial session; an export removes what it has not committed; a
    /// comparison removes its partition files.
    pub fn stop_jobs(&self) {
        for job in lock(&self.replays).values() {
            job.stop();
        }
        for job in lock(&self.seeds).values() {
            job.stop();
        }
        for job in lock(&self.exports).values() {
            job.stop();
        }
        for job in lock(&self.compares).values() {
            job.stop();
        }
    }

    /// What `/metrics` shows now.
    pub fn metrics(&self) -> String {
        let replays = lock(&self.replays);
        // One snapshot per running replay: its counts, rate and lag.
        let running: Vec<(ProgressSnapshot, f64)> = replays
            .values()
            .filter(|job| job.status.is_running())
            .map(|job| (job.progress.snapshot(), job.started.elapsed().as_secs_f64()))
            .collect();
        #[allow(clippy::cast_precision_loss)] // a rate
        let rate: f64 = running
            .iter()
            .map(|(progress, seconds)| if *seconds > 0.0 { progress.total().sent_items as f64 / seconds } else { 0.0 })
            .sum();
        let lag = running.iter().map(|(progress, _)| progress.lag_millis).max().unwrap_or(0);
        let mut snapshots: Vec<ProgressSnapshot> = running.into_iter().map(|(progress, _)| progress).collect();
        let active_replays = snapshots.len() as u64;
        snapshots.push(lock(&self.replay_totals).0.clone());
        let active_captures = lock(&self.captures).values().filter(|job| job.status.is_running()).count();
        metrics::render(&metrics::Sample {
            received: self.receivers.stats().snapshot(),
            replays: &snapshots,
            replay_rate: rate,
            replay_lag_millis: lag,
            store: &self.store_counters,
            active_captures: active_captures as u64,
            active_replays,
        })
    }
}

/// Locks `mutex`, also when a panicking thread left it poisoned (the maps
/// it guards stay consistent: every update is one insert or field write).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// How many jobs of `jobs` are running.
pub(crate) fn running<K, V: Job>(jobs: &BTreeMap<K, V>) -> usize {
    jobs.values().filter(|job| job.status().is_running()).count()
}

/// Adds `job` to `jobs` and keeps the newest [`HISTORY`] finished ones.
pub(crate) fn insert<K: Ord + Clone, V: Job>(jobs: &mut BTreeMap<K, V>, key: K, job: V) {
    jobs.insert(key, job);
    let mut finished: Vec<(Timestamp, K)> = jobs
        .iter()
        .filter(|(_, job)| !job.status().is_running())
        .map(|(key, job)| (job.status().started_at, key.clone()))
        .collect();
    if finished.len() <= HISTORY {
        return;
    }
    finished.sort();
    for (_, key) in finished.into_iter().rev().skip(HISTORY) {
        jobs.remove(&key);
    }
}

impl State {
    /// Ends job `key` of `jobs` with `end`, and wakes `?wait=` requests.
    pub fn end_job<K: Ord, V>(&self, jobs: &Mutex<BTreeMap<K, V>>, key: &K, end: impl FnOnce(&mut V)) {
        if let Some(job) = lock(jobs).get_mut(key) {
            end(job);
        }
        self.job_ended();
    }
}
