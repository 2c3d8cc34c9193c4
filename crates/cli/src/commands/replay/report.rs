//! What a replay says when it ends (the summary and `--report`) and what a
//! dry run says it would do.

use std::path::PathBuf;

use serde::Serialize;
use tape_otlp::Signal;
use tape_replay::{Plan, Position, SignalProgress, Speed, Targets};
use tape_session::{SessionMetadata, SessionStatus, SessionType, Timestamp};

use super::pick::Picked;

/// The session replayed.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionRecord {
    pub id: String,
    #[serde(rename = "type")]
    pub session_type: SessionType,
    pub status: SessionStatus,
    pub start_time: Timestamp,
    pub end_time: Option<Timestamp>,
    pub content_hash: String,
    /// How the orchestrator picked it, when it did.
    pub picked: Option<Picked>,
}

impl SessionRecord {
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
    pub endpoint: String,
    pub protocol: String,
}

/// Where each signal goes.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetsRecord {
    pub traces: TargetRecord,
    pub metrics: TargetRecord,
    pub logs: TargetRecord,
    /// In words: one endpoint, or one per signal.
    pub description: String,
}

impl TargetsRecord {
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
    pub timestamps: &'static str,
    #[serde(rename = "loop")]
    pub looping: bool,
    pub duration_seconds: f64,
    pub signals: Vec<Signal>,
    pub services: Vec<String>,
    pub from: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub phase: Option<String>,
    pub rate_limit: Option<f64>,
    pub concurrency: usize,
    pub ids: &'static str,
    pub max_attempts: u32,
    /// `None`: unlimited.
    pub max_failures: Option<u64>,
    pub skip_corrupt: bool,
    pub checkpoint: Option<PathBuf>,
    /// Where a resumed replay started.
    pub resumed_from: Option<Position>,
}

/// Counts per signal and in all.
#[derive(Debug, Clone, Serialize)]
pub struct Counts {
    pub traces: SignalProgress,
    pub metrics: SignalProgress,
    pub logs: SignalProgress,
    pub total: SignalProgress,
}

/// The summary of a replay: printed with `--output json` and written to
/// `--report`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub session: SessionRecord,
    pub targets: TargetsRecord,
    pub options: OptionsRecord,
    pub started_at: Timestamp,
    pub ended_at: Timestamp,
    pub duration_seconds: f64,
    /// `finished`, `duration`, `stopped` or `failed`.
    pub reason: String,
    /// Passes started, the last one whole or not.
    pub passes: u64,
    /// Counts over the whole replay (with `--resume`, every earlier run included).
    pub counts: Counts,
    pub corrupt_blobs: u64,
    /// Requests neither sent nor failed when the replay ended (in flight past the drain timeout, or waiting
    /// for a retry at a stop); a resume sends them.
    pub abandoned_records: u64,
    /// Items sent in this run over its duration.
    pub achieved_items_per_second: f64,
    pub id_seed: u64,
    /// SHA-256 of what was sent in this run, in order (with `--report`);
    /// README says which bytes.
    pub content_hash: Option<String>,
    /// Why the replay failed, when it did.
    pub error: Option<String>,
    /// The last problem met by a replay that did not fail: a partial
    /// success, a record that is not a valid request, a corrupt blob.
    pub warning: Option<String>,
}

impl Report {
    /// The summary for people, on stdout.
    pub fn print(&self) {
        let plural = if self.passes == 1 { "pass" } else { "passes" };
        println!(
            "Replayed session {} ({}) to {}: {} after {} {plural} in {}, {:.0} items/s.",
            self.session.id,
            self.session.session_type,
            self.targets.description,
            self.reason,
            self.passes,
            crate::output::seconds(self.duration_seconds),
            self.achieved_items_per_second,
        );
        for (signal, counts) in [
            (Signal::Traces, &self.counts.traces),
            (Signal::Metrics, &self.counts.metrics),
            (Signal::Logs, &self.counts.logs),
        ] {
            if self.options.signals.contains(&signal) {
                println!("  {:<8} {}", signal.as_str(), signal_line(signal, counts));
            }
        }
        if self.corrupt_blobs > 0 {
            let blobs = if self.corrupt_blobs == 1 { "blob" } else { "blobs" };
            println!("  Skipped the damaged part of {} corrupt {blobs} (--skip-corrupt).", self.corrupt_blobs);
        }
        if self.abandoned_records > 0 {
            println!(
                "  {} requests were in flight or waiting for a retry when the replay stopped: neither sent nor \
                 failed; a resume sends them.",
                self.abandoned_records
            );
        }
        if let Some(position) = &self.options.resumed_from {
            println!("  Resumed at {}; the counts include the earlier runs.", describe_position(position));
        }
        println!("  Id seed {}.", self.id_seed);
    }
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

/// `124 requests (5248 spans) sent, 3 spans rejected, 1 request (40 spans) failed`: the parts that are
/// not zero, but always what was sent.
fn signal_line(signal: Signal, counts: &SignalProgress) -> String {
    let requests = |count: u64| if count == 1 { "1 request".to_owned() } else { format!("{count} requests") };
    let noun = signal.item_noun();
    let mut parts = vec![format!("{} ({} {noun}) sent", requests(counts.sent_records), counts.sent_items)];
    if counts.rejected_items > 0 {
        parts.push(format!("{} {noun} rejected by the target", counts.rejected_items));
    }
    if counts.failed_records > 0 {
        parts.push(format!("{} ({} {noun}) failed", requests(counts.failed_records), counts.failed_items));
    }
    if counts.invalid_records > 0 {
        parts.push(format!("{} invalid records not sent", counts.invalid_records));
    }
    if counts.retries > 0 {
        let retries = if counts.retries == 1 { "1 retry".to_owned() } else { format!("{} retries", counts.retries) };
        parts.push(retries);
    }
    parts.join(", ")
}

/// What a replay would send, from a dry run.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DryRunPlan {
    pub dry_run: bool,
    pub session: SessionRecord,
    pub targets: TargetsRecord,
    /// The selection in words.
    pub selection: String,
    pub records: PlanCounts,
    pub invalid_records: u64,
    pub corrupt_blobs: u64,
    pub first_receive: Option<Timestamp>,
    pub last_receive: Option<Timestamp>,
    pub span_seconds: f64,
    pub pacing: Pacing,
    pub options: OptionsRecord,
}

/// Requests and items of one signal.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct SignalPlan {
    pub records: u64,
    pub items: u64,
}

/// Requests and items per signal and in all.
#[derive(Debug, Clone, Serialize)]
pub struct PlanCounts {
    pub traces: SignalPlan,
    pub metrics: SignalPlan,
    pub logs: SignalPlan,
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

    /// The plan for people, on stdout.
    pub fn print(&self) {
        let session = &self.session;
        let end = session.end_time.map_or_else(|| "?".to_owned(), |end| end.to_string());
        println!(
            "Session    {} ({}, {}): {} .. {end}",
            session.id, session.session_type, session.status, session.start_time
        );
        if let Some(picked) = &session.picked {
            println!("Picked     {}", picked.describe());
        }
        println!("Target     {}", self.targets.description);
        println!("Selection  {}", self.selection);
        for (index, (name, counts)) in [
            ("traces", self.records.traces),
            ("metrics", self.records.metrics),
            ("logs", self.records.logs),
            ("total", self.records.total),
        ]
        .into_iter()
        .enumerate()
        {
            let label = if index == 0 { "Records" } else { "" };
            println!("{label:<10} {name:<8} {:>8} requests {:>10} items", counts.records, counts.items);
        }
        if self.invalid_records > 0 {
            println!("Invalid    {} records are not valid requests and would not be sent", self.invalid_records);
        }
        if self.corrupt_blobs > 0 {
            let blobs = if self.corrupt_blobs == 1 { "blob is" } else { "blobs are" };
            println!("Corrupt    {} {blobs} damaged; what follows the damage would be skipped", self.corrupt_blobs);
        }
        match (self.first_receive, self.last_receive) {
            (Some(first), Some(last)) => {
                println!("Time span  {first} .. {last} ({})", crate::output::seconds(self.span_seconds));
            }
            _ => println!("Time span  none: nothing is selected"),
        }
        println!("Pacing     {}", self.pacing.description);
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
            (Some(seconds), format!("{factor}x the recorded pace: about {}", crate::output::seconds(seconds)))
        }
    };
    let mut estimate = match (paced, limited) {
        (Some(paced), Some(limited)) => Some(paced.max(limited)),
        (paced, limited) => paced.or(limited),
    };
    if let (Some(limited), Some(rate)) = (limited, options.rate_limit)
        && paced.is_none_or(|paced| limited > paced)
    {
        description = format!("{description}; at most {rate} items/s: about {}", crate::output::seconds(limited));
    }
    let limit = options.duration_seconds;
    if options.looping {
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
