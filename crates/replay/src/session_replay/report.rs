//! What a replay says when it ends (the summary and `--report`) and what a
//! dry run says it would do.

use std::path::PathBuf;

use serde::Serialize;
use tape_otlp::Signal;
use tape_session::{SessionMetadata, SessionStatus, SessionType, Timestamp};

use super::pick::Picked;
use crate::engine::{Plan, Position, SignalProgress};
use crate::pacing::Speed;
use crate::series::ReplaySeries;
use crate::targets::Targets;

/// The session replayed.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionRecord {
    /// The session id.
    pub id: String,
    /// Its type.
    #[serde(rename = "type")]
    pub session_type: SessionType,
    /// Its status.
    pub status: SessionStatus,
    /// Its start time.
    pub start_time: Timestamp,
    /// Its end time, when it has one.
    pub end_time: Option<Timestamp>,
    /// Its content hash.
    pub content_hash: String,
    /// How the orchestrator picked it, when it did.
    pub picked: Option<Picked>,
}

impl SessionRecord {
    /// Built from what the replay resolved.
    pub fn new(metadata: &SessionMetadata, picked: Option<Picked>) -> Self {
        SessionRecord {
            id: metadata.session_id.to_string(),
            session_type: metadata.session_type,
            status: metadata.status,
            start_time: metadata.start_time,
            end_time: metadata.end_time,
            content_hash: metadata.content_hash.clone(),
            picked,
        }
    }
}

/// Where one signal goes.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetRecord {
    /// The endpoint.
    pub endpoint: String,
    /// The OTLP protocol.
    pub protocol: String,
}

/// Where each signal goes.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetsRecord {
    /// Traces.
    pub traces: TargetRecord,
    /// Metrics.
    pub metrics: TargetRecord,
    /// Logs.
    pub logs: TargetRecord,
    /// In words: one endpoint, or one per signal.
    pub description: String,
}

impl TargetsRecord {
    /// Built from what the replay resolved.
    pub fn new(targets: &Targets) -> Self {
        let [traces, metrics, logs] = Signal::ALL.map(|signal| {
            let exporter = targets.exporter(signal);
            TargetRecord { endpoint: exporter.endpoint().to_owned(), protocol: exporter.protocol().to_string() }
        });
        TargetsRecord { traces, metrics, logs, description: targets.describe() }
    }
}

/// The options of a replay, as given or defaulted.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OptionsRecord {
    /// A factor such as `1` or `0.5`, or `max`.
    pub speed: String,
    /// `none`, `relative` or `current`.
    pub timestamps: &'static str,
    /// Whether it loops.
    #[serde(rename = "loop")]
    pub looping: bool,
    /// The passes after which it stops; `None`: a loop runs until the
    /// duration or a stop.
    pub passes: Option<u64>,
    /// The longest it runs, in seconds.
    pub duration_seconds: f64,
    /// The signals sent.
    pub signals: Vec<Signal>,
    /// The services sent; empty for every service.
    pub services: Vec<String>,
    /// Records received at or after this.
    pub from: Option<Timestamp>,
    /// Records received before this.
    pub until: Option<Timestamp>,
    /// The phase, when one was given.
    pub phase: Option<String>,
    /// The shard sent (`I/N`), when one was given: the counts are of its
    /// items alone.
    pub shard: Option<tape_otlp::wire::Shard>,
    /// The schedule's time zero (`--start-at`), when one was given.
    pub start_at: Option<Timestamp>,
    /// Items per second at most.
    pub rate_limit: Option<f64>,
    /// Requests in flight at most.
    pub concurrency: usize,
    /// `from-second-pass`, `always` or `never`.
    pub ids: &'static str,
    /// Attempts per request.
    pub max_attempts: u32,
    /// `None`: unlimited.
    pub max_failures: Option<u64>,
    /// Whether damaged blobs are skipped.
    pub skip_corrupt: bool,
    /// The checkpoint file, when one is kept.
    pub checkpoint: Option<PathBuf>,
    /// Where a resumed replay started.
    pub resumed_from: Option<Position>,
}

/// Counts per signal and in all.
#[derive(Debug, Clone, Serialize)]
pub struct Counts {
    /// Traces.
    pub traces: SignalProgress,
    /// Metrics.
    pub metrics: SignalProgress,
    /// Logs.
    pub logs: SignalProgress,
    /// All signals together.
    pub total: SignalProgress,
}

/// The summary of a replay: printed with `--output json` and written to
/// `--report`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The session.
    pub session: SessionRecord,
    /// Where each signal goes.
    pub targets: TargetsRecord,
    /// The options.
    pub options: OptionsRecord,
    /// When it started.
    pub started_at: Timestamp,
    /// When it ended.
    pub ended_at: Timestamp,
    /// The longest it runs, in seconds.
    pub duration_seconds: f64,
    /// `finished`, `duration`, `stopped` or `failed`.
    pub reason: String,
    /// Passes started, the last one whole or not.
    pub passes: u64,
    /// Counts over the whole replay (with `--resume`, every earlier run included).
    pub counts: Counts,
    /// Blobs damaged (skipped with `--skip-corrupt`).
    pub corrupt_blobs: u64,
    /// Requests neither sent nor failed when the replay ended (in flight past the drain timeout, or waiting
    /// for a retry at a stop); a resume sends them.
    pub abandoned_records: u64,
    /// Items sent in this run over its duration.
    pub achieved_items_per_second: f64,
    /// The seed of new ids.
    pub id_seed: u64,
    /// SHA-256 of what was sent in this run, in order (with `--report`);
    /// README says which bytes.
    pub content_hash: Option<String>,
    /// Why the replay failed, when it did.
    pub error: Option<String>,
    /// The last problem met by a replay that did not fail: a partial
    /// success, a record that is not a valid request, a corrupt blob.
    pub warning: Option<String>,
    /// This run over time, for charts: items, failures and retries per
    /// second and the lag behind schedule (with `--resume`, this run only).
    pub series: ReplaySeries,
}

/// `record 120 of pass 1 (and 3 records before it)`.
pub fn describe_position(position: &Position) -> String {
    let pending = match position.pending.len() {
        0 => String::new(),
        1 => " (and 1 record before it that was not done)".to_owned(),
        count => format!(" (and {count} records before it that were not done)"),
    };
    format!("record {} of pass {}{pending}", position.record, position.pass + 1)
}

/// What a replay would send, from a dry run.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DryRunPlan {
    /// Always `true`: this is a plan.
    pub dry_run: bool,
    /// The session.
    pub session: SessionRecord,
    /// Where each signal goes.
    pub targets: TargetsRecord,
    /// The selection in words.
    pub selection: String,
    /// Requests (records) and items that would be sent.
    pub records: PlanCounts,
    /// Records that are not valid requests and would not be sent.
    pub invalid_records: u64,
    /// Blobs damaged (skipped with `--skip-corrupt`).
    pub corrupt_blobs: u64,
    /// The first selected record's receive time.
    pub first_receive: Option<Timestamp>,
    /// The last selected record's receive time.
    pub last_receive: Option<Timestamp>,
    /// The time between them, in seconds.
    pub span_seconds: f64,
    /// How long it would take.
    pub pacing: Pacing,
    /// The options.
    pub options: OptionsRecord,
}

/// Requests and items of one signal.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct SignalPlan {
    /// Requests (records) and items that would be sent.
    pub records: u64,
    /// Items in them.
    pub items: u64,
}

/// Requests and items per signal and in all.
#[derive(Debug, Clone, Serialize)]
pub struct PlanCounts {
    /// Traces.
    pub traces: SignalPlan,
    /// Metrics.
    pub metrics: SignalPlan,
    /// Logs.
    pub logs: SignalPlan,
    /// All signals together.
    pub total: SignalPlan,
}

impl PlanCounts {
    fn new(plan: &Plan) -> Self {
        let [traces, metrics, logs] =
            [0, 1, 2].map(|index| SignalPlan { records: plan.records[index], items: plan.items[index] });
        let total = SignalPlan { records: plan.records.iter().sum(), items: plan.items.iter().sum() };
        PlanCounts { traces, metrics, logs, total }
    }
}

/// How long a replay would take.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pacing {
    /// Seconds, when known: `None` at `max` speed without a rate limit.
    pub estimated_seconds: Option<f64>,
    /// In words.
    pub description: String,
}

impl DryRunPlan {
    /// Built from what the replay resolved.
    pub fn new(
        session: SessionRecord,
        targets: TargetsRecord,
        selection: String,
        plan: &Plan,
        speed: Speed,
        options: OptionsRecord,
    ) -> Self {
        let span_nanos = match (plan.first_receive_nanos, plan.last_receive_nanos) {
            (Some(first), Some(last)) => last.saturating_sub(first),
            _ => 0,
        };
        let records = PlanCounts::new(plan);
        let pacing = pacing(span_nanos, records.total.items, speed, &options);
        DryRunPlan {
            dry_run: true,
            session,
            targets,
            selection,
            records,
            invalid_records: plan.invalid_records,
            corrupt_blobs: plan.corrupt_blobs,
            first_receive: plan.first_receive_nanos.map(Timestamp::from_unix_nanos),
            last_receive: plan.last_receive_nanos.map(Timestamp::from_unix_nanos),
            span_seconds: seconds(span_nanos),
            pacing,
            options,
        }
    }
}

/// How long the replay of `span_nanos` of records holding `items` items
/// would take.
fn pacing(span_nanos: u64, items: u64, speed: Speed, options: &OptionsRecord) -> Pacing {
    #[allow(clippy::cast_precision_loss)] // an estimate for people
    let limited = options.rate_limit.map(|rate| items as f64 / rate);
    let (paced, mut description) = match speed {
        Speed::Max => (None, "as fast as the target accepts".to_owned()),
        Speed::Factor(factor) => {
            let seconds = seconds(span_nanos) / factor;
            (Some(seconds), format!("{factor}x the recorded pace: about {}", seconds_text(seconds)))
        }
    };
    let mut estimate = match (paced, limited) {
        (Some(paced), Some(limited)) => Some(paced.max(limited)),
        (paced, limited) => paced.or(limited),
    };
    if let (Some(limited), Some(rate)) = (limited, options.rate_limit)
        && paced.is_none_or(|paced| limited > paced)
    {
        description = format!("{description}; at most {rate} items/s: about {}", seconds_text(limited));
    }
    let limit = options.duration_seconds;
    if let Some(passes) = options.passes {
        let plural = if passes == 1 { "pass" } else { "passes" };
        description = format!("{description} a pass, {passes} {plural}");
        #[allow(clippy::cast_precision_loss)] // an estimate for people
        let whole = estimate.map(|estimate| estimate * passes as f64);
        if whole.is_some_and(|whole| whole > limit) {
            description = format!("{description}, but --duration stops it after {limit:.0}s");
        }
        estimate = whole.map(|whole| whole.min(limit));
    } else if options.looping {
        description = format!("{description} a pass, looping until --duration ({limit:.0}s) or Ctrl-C");
        estimate = Some(limit);
    } else if estimate.is_some_and(|estimate| estimate > limit) {
        description = format!("{description}, but --duration stops it after {limit:.0}s");
        estimate = Some(limit);
    }
    Pacing { estimated_seconds: estimate, description }
}

#[allow(clippy::cast_precision_loss)] // seconds for people
fn seconds(nanos: u64) -> f64 {
    nanos as f64 / 1e9
}

/// Seconds as the project writes durations, with two decimals and no
/// space: `3.77s`.
fn seconds_text(seconds: f64) -> String {
    format!("{seconds:.2}s")
}
