//! `otlp-tape serve`: OTLP receivers that record while a capture runs, and
//! the HTTP control API (`docs/API.md`, `docs/openapi.json`).

mod api;
mod limits;
mod metrics;
pub mod options;

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;
use serde_json::Value;
use tape_capture::{Receivers, ReceiversConfig, Stats, StatsSnapshot, StopHandle};
use tape_replay::{Progress, ProgressSnapshot};
use tape_session::{SessionId, SessionStore, Timestamp};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::cli::ServeArgs;
use crate::output::note;

pub use limits::{AllowedTarget, Limits};
pub use metrics::{MeteredStore, StoreCounters};

const MIB: u64 = 1024 * 1024;

/// How many finished replays, seeds and captures are kept for listing.
const HISTORY: usize = 100;

/// How long the control API may take to close after SIGTERM before the
/// requests still open are cut; replays stop meanwhile (within their
/// drain timeout), so that serve exits within 10 s.
const API_CLOSE_TIMEOUT: Duration = Duration::from_secs(3);

/// Where a long operation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Still going.
    Running,
    /// Done.
    Completed,
    /// Stopped on request before its end.
    Stopped,
    /// Ended with an error.
    Failed,
}

/// A capture started through the API.
pub struct CaptureJob {
    pub session_id: SessionId,
    pub state: JobState,
    pub started_at: Timestamp,
    pub ended_at: Option<Timestamp>,
    /// While it runs: its stop handle and live counters.
    pub live: Option<(StopHandle, Arc<Stats>)>,
    pub stats: Option<StatsSnapshot>,
    pub session: Option<Value>,
    pub error: Option<String>,
}

/// A replay started through the API.
pub struct ReplayJob {
    pub id: String,
    pub session_id: SessionId,
    pub state: JobState,
    pub started_at: Timestamp,
    pub started: Instant,
    pub ended_at: Option<Timestamp>,
    pub progress: Arc<Progress>,
    pub stop: CancellationToken,
    pub report: Option<Value>,
    pub report_file: Option<PathBuf>,
    pub error: Option<String>,
}

/// A seed started through the API.
pub struct SeedJob {
    pub id: String,
    pub state: JobState,
    /// Cancelled to stop it: generation stops between two records and the
    /// partial session is removed.
    pub stop: CancellationToken,
    pub started_at: Timestamp,
    pub ended_at: Option<Timestamp>,
    pub summary: Option<Value>,
    pub error: Option<String>,
}

/// The summed progress of the replays that ended.
#[derive(Debug, Default)]
pub struct ReplayTotals(pub ProgressSnapshot);

impl ReplayTotals {
    /// Adds a replay's final progress.
    pub fn push(&mut self, progress: &ProgressSnapshot) {
        for signal in tape_otlp::Signal::ALL {
            let from = progress.signal(signal);
            let into = match signal {
                tape_otlp::Signal::Traces => &mut self.0.traces,
                tape_otlp::Signal::Metrics => &mut self.0.metrics,
                tape_otlp::Signal::Logs => &mut self.0.logs,
            };
            into.sent_records += from.sent_records;
            into.sent_items += from.sent_items;
            into.rejected_items += from.rejected_items;
            into.failed_records += from.failed_records;
            into.failed_items += from.failed_items;
            into.invalid_records += from.invalid_records;
        }
    }
}

/// Everything the API works with.
pub struct State {
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
    /// Bumped whenever a job ends, for `?wait=` requests.
    pub ended: tokio::sync::watch::Sender<u64>,
    pub shutting_down: CancellationToken,
    pub retention: Option<crate::retention::RetentionPolicy>,
    /// Where capture locks are kept (and S3 spool files).
    pub spool_dir: PathBuf,
    /// What the API lets a caller start.
    pub limits: Limits,
}

impl State {
    /// Says that a job ended, waking `?wait=` requests.
    pub fn job_ended(&self) {
        self.ended.send_modify(|count| *count += 1);
    }

    /// Sessions that must not be deleted: the one being captured and those
    /// being replayed.
    pub fn busy_sessions(&self) -> HashSet<SessionId> {
        // Sessions another process is capturing, too.
        let locked = crate::lock::locked_sessions(&self.spool_dir).unwrap_or_default();
        let mut busy: HashSet<SessionId> = lock(&self.captures)
            .values()
            .filter(|job| job.state == JobState::Running)
            .map(|job| job.session_id.clone())
            .collect();
        busy.extend(locked);
        busy.extend(
            lock(&self.replays).values().filter(|job| job.state == JobState::Running).map(|job| job.session_id.clone()),
        );
        busy
    }

    /// What `/metrics` shows now.
    pub fn metrics(&self) -> String {
        let replays = lock(&self.replays);
        // One snapshot per running replay: its counts, rate and lag.
        let running: Vec<(ProgressSnapshot, f64)> = replays
            .values()
            .filter(|job| job.state == JobState::Running)
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
        let active_captures = lock(&self.captures).values().filter(|job| job.state == JobState::Running).count();
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
pub fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Keeps the newest [`HISTORY`] finished entries of a job map.
pub fn trim<K: Ord + Clone, V>(
    jobs: &mut BTreeMap<K, V>,
    running: impl Fn(&V) -> bool,
    started: impl Fn(&V) -> Timestamp,
) {
    let mut finished: Vec<(Timestamp, K)> =
        jobs.iter().filter(|(_, job)| !running(job)).map(|(key, job)| (started(job), key.clone())).collect();
    if finished.len() <= HISTORY {
        return;
    }
    finished.sort();
    for (_, key) in finished.into_iter().rev().skip(HISTORY) {
        jobs.remove(&key);
    }
}

/// Whether `addr` is a loopback address.
fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().is_loopback()
}

/// `serve`
pub async fn run(
    location: &tape_store::StoreLocation,
    store: Arc<dyn SessionStore>,
    args: ServeArgs,
) -> anyhow::Result<std::process::ExitCode> {
    let token = args.api_token.clone().filter(|token| !token.trim().is_empty());
    if !is_loopback(&args.api) && token.is_none() && !args.insecure_api {
        bail!(
            "refusing to serve the control API on {} (not a loopback address) without a token: set --api-token or \
             OTLP_TAPE_API_TOKEN, or pass --insecure-api to accept anyone who can reach it",
            args.api
        );
    }
    if args.max_body_kb == 0 {
        bail!("--max-body-kb must be more than zero");
    }
    if args.max_request_size_mb == 0 {
        bail!("--max-request-size-mb must be more than zero");
    }
    let max_request_bytes = usize::try_from(args.max_request_size_mb.saturating_mul(MIB)).unwrap_or(usize::MAX);
    let receive = crate::commands::capture::receive_limits(&args.receive, max_request_bytes)?;
    let retention = policy_from_flags(
        args.retention_older_than.as_deref(),
        args.retention_keep_last,
        args.retention_max_total_size.as_deref(),
        &args.retention_types,
    )?;
    if args.retention_interval.is_some() && retention.is_none() {
        bail!(
            "--retention-interval needs a policy: --retention-older-than, --retention-keep-last or \
             --retention-max-total-size"
        );
    }
    // As `capture` does: on S3, blobs being written are spooled to local
    // files, and spool files a crashed capture left are recovered first.
    let spool_dir = crate::store::spool_dir(args.spool_dir.as_deref());
    let store: Arc<dyn SessionStore> = if matches!(location, tape_store::StoreLocation::S3 { .. }) {
        crate::commands::capture::recover_spool(&store, &spool_dir).await?;
        Arc::new(tape_store::SpooledStore::new(store, spool_dir.clone()))
    } else {
        store
    };
    let forward = crate::commands::capture::forward_config(&args.forward)?;
    let store_counters = Arc::new(StoreCounters::default());
    let store: Arc<dyn SessionStore> = Arc::new(MeteredStore::new(store, Arc::clone(&store_counters)));
    let receivers =
        Receivers::start(ReceiversConfig { grpc: args.grpc.0, http: args.http.0, max_request_bytes, receive, forward })
            .await
            .context("cannot start the OTLP receivers")?;
    let listener = tokio::net::TcpListener::bind(args.api)
        .await
        .with_context(|| format!("cannot listen for the control API on {}", args.api))?;
    let api_addr = listener.local_addr()?;

    let state = Arc::new(State {
        store,
        receivers,
        store_counters,
        token,
        reports_dir: args.reports_dir.clone(),
        captures: Mutex::default(),
        replays: Mutex::default(),
        replay_totals: Mutex::default(),
        seeds: Mutex::default(),
        tasks: tokio_util::task::TaskTracker::new(),
        capture_tasks: tokio_util::task::TaskTracker::new(),
        ended: tokio::sync::watch::channel(0).0,
        shutting_down: CancellationToken::new(),
        retention,
        spool_dir,
        limits: Limits {
            max_concurrent_replays: args.max_concurrent_replays as usize,
            max_concurrent_seeds: args.max_concurrent_seeds as usize,
            max_seed_traces: args.max_seed_traces,
            allowed_targets: args.allow_targets.clone(),
        },
    });

    // The policy applies at once, then every interval.
    let retention_task = match args.retention_interval {
        Some(nanos) => {
            apply_retention(&state).await;
            let state = Arc::clone(&state);
            Some(tokio::spawn(retention_loop(state, Duration::from_nanos(nanos))))
        }
        None => None,
    };

    let mut receiving = Vec::new();
    if let Some(addr) = state.receivers.grpc_addr() {
        receiving.push(format!("OTLP/gRPC on {addr}"));
    }
    if let Some(addr) = state.receivers.http_addr() {
        receiving.push(format!("OTLP/HTTP on {addr}"));
    }
    // One machine-readable line first, for scripts that start serve on
    // port 0: where everything listens.
    println!(
        "{}",
        serde_json::json!({
            "api": format!("http://{api_addr}"),
            "grpc": state.receivers.grpc_addr().map(|addr| addr.to_string()),
            "http": state.receivers.http_addr().map(|addr| addr.to_string()),
        })
    );
    note(crate::output::full_stop(format!(
        "Serving the control API on http://{api_addr}{} and {} (idle until a capture starts); store {}",
        if state.token.is_some() { " (bearer token required)" } else { "" },
        receiving.join(", "),
        location
    )));
    note("Stop with Ctrl-C or SIGTERM: captures are finished, replays stopped with their reports written.");

    let mut stop_signals = crate::signals::StopSignals::register()?;
    let signalled = Arc::clone(&state);
    tokio::spawn(async move {
        stop_signals.next().await;
        signalled.shutting_down.cancel();
        // Replays stop now, not once the API is closed: a client waiting
        // on one (`?wait=`) gets its answer, and the API closes sooner.
        stop_jobs(&signalled);
    });

    let router = api::router(Arc::clone(&state), args.max_body_kb.saturating_mul(1024));
    let shutting_down = state.shutting_down.clone();
    let graceful = axum::serve(listener, router).with_graceful_shutdown(async move { shutting_down.cancelled().await });
    // Requests still open some time after the stop (a long `?wait=`) are
    // cut, so that serve exits within 10 s of SIGTERM.
    let shutting_down = state.shutting_down.clone();
    let served = tokio::select! {
        served = graceful => served,
        () = async {
            shutting_down.cancelled().await;
            tokio::time::sleep(API_CLOSE_TIMEOUT).await;
        } => {
            warn!("Closing the control API with requests still open.");
            Ok(())
        }
    };
    if let Some(task) = retention_task {
        task.abort();
    }
    shutdown(&state).await;
    served.context("the control API failed")?;
    note("Stopped.");
    Ok(std::process::ExitCode::SUCCESS)
}

/// Stops everything still running: replays (their reports are written),
/// seeds (stopped, their partial sessions removed), the capture (its
/// session is finished), then the receivers.
async fn shutdown(state: &Arc<State>) {
    stop_jobs(state);
    state.tasks.close();
    state.tasks.wait().await;
    for job in lock(&state.captures).values() {
        if let Some((stop, _)) = &job.live {
            stop.stop();
        }
    }
    state.capture_tasks.close();
    state.capture_tasks.wait().await;
    state.receivers.shutdown().await;
}

/// Stops every running replay: each ends within the drain timeout and
/// writes its report.
fn stop_jobs(state: &State) {
    for job in lock(&state.replays).values() {
        job.stop.cancel();
    }
    for job in lock(&state.seeds).values() {
        job.stop.cancel();
    }
}

/// Applies the retention policy every `interval`, after the first time.
async fn retention_loop(state: Arc<State>, interval: Duration) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    loop {
        ticks.tick().await;
        apply_retention(&state).await;
    }
}

/// Applies the retention policy once; never to sessions being captured or
/// replayed. Each deletion is logged by the pruning itself.
async fn apply_retention(state: &State) {
    let Some(policy) = &state.retention else { return };
    let protected = state.busy_sessions();
    match crate::retention::prune(state.store.as_ref(), policy, tape_capture::now(), &protected, false).await {
        Ok(report) => info!(
            "Retention: deleted {} sessions ({} bytes), kept {}, {} failed.",
            report.deleted.len(),
            report.freed_bytes,
            report.kept,
            report.failed.len()
        ),
        Err(error) => warn!("Retention failed: {error:#}"),
    }
}

/// A retention policy from its criteria as text (`30d`, `50GB`), or `None`
/// when none is given.
pub fn policy_from_flags(
    older_than: Option<&str>,
    keep_last: Option<usize>,
    max_total_size: Option<&str>,
    types: &[tape_session::SessionType],
) -> anyhow::Result<Option<crate::retention::RetentionPolicy>> {
    let policy = crate::retention::RetentionPolicy {
        older_than: older_than
            .map(|text| {
                crate::retention::parse_age(text).map_err(|error| anyhow::anyhow!("older-than {text:?}: {error}"))
            })
            .transpose()?,
        keep_last,
        max_total_bytes: max_total_size
            .map(|text| {
                crate::retention::parse_size(text).map_err(|error| anyhow::anyhow!("max-total-size {text:?}: {error}"))
            })
            .transpose()?,
        types: types.to_vec(),
    };
    Ok(policy.has_criterion().then_some(policy))
}
