//! The sessions, the timed comparisons and the memory measurement of
//! `bench compare`.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tape_compare::{CompareConfig, CompareProgress};
use tape_session::{SessionId, SessionStore};

use super::rebatch::{Alterations, Rebatched, write_rebatched};
use super::{COMPARE_PATTERN, CompareBenchConfig};
use crate::error::ensure;
use crate::replay::SessionFacts;
use crate::system::{child_report, cpu_seconds, peak_memory_bytes, session_id};
use crate::{BYTES_PER_GB, Error, Host, SeedRequest, Step};

/// The prefix of the sessions the memory measurement compares, in the
/// directory given to the child process.
pub(super) const MEMORY_SESSIONS: &str = "bench-compare-memory";

/// The sessions of one measurement: EXPECTED and its two ACTUAL copies.
pub(super) struct SessionIds {
    pub expected: SessionId,
    pub identical: SessionId,
    pub differences: SessionId,
}

impl SessionIds {
    pub(super) fn new(prefix: &str) -> Result<SessionIds, Error> {
        Ok(SessionIds {
            expected: session_id(&format!("{prefix}-expected"))?,
            identical: session_id(&format!("{prefix}-identical"))?,
            differences: session_id(&format!("{prefix}-differences"))?,
        })
    }
}

/// The counts of a comparison, over every signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompareCounts {
    /// Items EXPECTED says should arrive.
    pub expected: u64,
    /// Items ACTUAL holds.
    pub delivered: u64,
    /// Delivered exactly.
    pub identical: u64,
    /// Delivered with differences.
    pub changed: u64,
    /// Not delivered.
    pub missing: u64,
    /// Delivered and matching no expected item.
    pub unexpected: u64,
}

impl std::fmt::Display for CompareCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} expected, {} delivered, {} identical, {} changed, {} missing, {} unexpected",
            self.expected, self.delivered, self.identical, self.changed, self.missing, self.unexpected
        )
    }
}

/// One comparison, timed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompareRun {
    /// The round it ran in, from 1 (0: the memory measurement).
    pub round: u32,
    /// `identical` or `differences`: which ACTUAL session.
    pub variant: String,
    /// The partitions asked for: 1 is in memory; `None`, what the
    /// comparison picked from the sessions' sizes.
    pub partitions: Option<u32>,
    /// Partitions matched.
    pub partitions_matched: u32,
    /// From the start of the comparison to its result.
    pub seconds: f64,
    /// CPU time of the process over it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_seconds: Option<f64>,
    /// Items read of EXPECTED (every signal; every pass).
    pub expected_items: u64,
    /// Items read of ACTUAL.
    pub actual_items: u64,
    /// Both sides' items over the seconds.
    pub items_per_second: f64,
    /// EXPECTED's items over the seconds.
    pub expected_items_per_second: f64,
    /// What it found.
    pub counts: CompareCounts,
    /// Its verdict.
    pub passed: bool,
    /// Peak resident memory of the process when it ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_memory_bytes: Option<u64>,
}

impl CompareRun {
    /// What is wrong with what the comparison found, for a session of
    /// `items` items whose ACTUAL copy underwent `alterations`.
    pub(super) fn problem(&self, items: u64, alterations: &Alterations) -> Option<String> {
        let (dropped, changed) = (alterations.dropped_spans, alterations.changed());
        let expected = CompareCounts {
            expected: items,
            delivered: items - dropped,
            identical: items - dropped - changed,
            changed,
            missing: dropped,
            unexpected: 0,
        };
        let should_pass = *alterations == Alterations::default();
        if self.counts == expected && self.passed == should_pass {
            return None;
        }
        let verdict = |passed: bool| if passed { "passed" } else { "failed" };
        Some(format!(
            "round {} ({}, {}): {} and {}, where it should have found {expected} and {}",
            self.round,
            self.variant,
            describe_partitions(self.partitions),
            self.counts,
            verdict(self.passed),
            verdict(should_pass)
        ))
    }
}

/// `in memory`, `16 partitions` or `partitions picked by size`.
pub fn describe_partitions(partitions: Option<u32>) -> String {
    match partitions {
        Some(1) => "in memory".to_owned(),
        Some(partitions) => format!("{partitions} partitions"),
        None => "partitions picked by size".to_owned(),
    }
}

/// The runs of one variant and partitioning, summed up.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CompareSummary {
    /// `identical` or `differences`.
    pub variant: String,
    /// The partitions asked for (1: in memory).
    pub partitions: Option<u32>,
    /// Runs.
    pub runs: usize,
    /// The median run's seconds.
    pub median_seconds: f64,
    /// Both sides' items per second of the median run.
    pub median_items_per_second: f64,
    /// EXPECTED's items per second of the median run.
    pub median_expected_items_per_second: f64,
    /// Both sides' items per second of the fastest run.
    pub best_items_per_second: f64,
    /// CPU seconds of the median run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub median_cpu_seconds: Option<f64>,
}

impl CompareSummary {
    /// One summary per variant and partitioning, in the order they first ran.
    pub(super) fn of(runs: &[CompareRun]) -> Vec<CompareSummary> {
        let mut keys: Vec<(&str, Option<u32>)> = Vec::new();
        for run in runs {
            if !keys.contains(&(run.variant.as_str(), run.partitions)) {
                keys.push((run.variant.as_str(), run.partitions));
            }
        }
        keys.into_iter()
            .map(|(variant, partitions)| {
                let mut these: Vec<&CompareRun> =
                    runs.iter().filter(|run| run.variant == variant && run.partitions == partitions).collect();
                these.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
                let median = these[(these.len() - 1) / 2];
                CompareSummary {
                    variant: variant.to_owned(),
                    partitions,
                    runs: these.len(),
                    median_seconds: median.seconds,
                    median_items_per_second: median.items_per_second,
                    median_expected_items_per_second: median.expected_items_per_second,
                    best_items_per_second: these[0].items_per_second,
                    median_cpu_seconds: median.cpu_seconds,
                }
            })
            .collect()
    }
}

/// Generates a `high-load` seed session with id `id` into `store`, as
/// `otlp-tape seed` does.
pub(super) async fn generate(
    host: &impl Host,
    store: &dyn SessionStore,
    id: &SessionId,
    duration_nanos: u64,
    config: &CompareBenchConfig,
) -> Result<SessionFacts, Error> {
    let request = SeedRequest {
        pattern: COMPARE_PATTERN.to_owned(),
        duration_nanos,
        rate: config.rate,
        seed: config.seed,
        session_id: id.clone(),
        description: "otlp-tape bench compare".to_owned(),
    };
    let generated = host.generate(store, request).await.map_err(Error::Host)?;
    let metadata =
        store.read_metadata(id).await.map_err(Error::session(format!("cannot read the metadata of session {id}")))?;
    Ok(SessionFacts::new(generated, &metadata))
}

/// Writes both ACTUAL sessions of `ids` from its EXPECTED one.
pub(super) async fn write_actual_sessions(
    store: &dyn SessionStore,
    ids: &SessionIds,
    config: &CompareBenchConfig,
) -> Result<(Rebatched, Rebatched), Error> {
    let metadata = store
        .read_metadata(&ids.expected)
        .await
        .map_err(Error::session(format!("cannot read the metadata of session {}", ids.expected)))?;
    let identical = write_rebatched(store, &metadata, &ids.identical, config.batch_items, false).await?;
    let differences = write_rebatched(store, &metadata, &ids.differences, config.batch_items, true).await?;
    Ok((identical, differences))
}

/// Compares `expected` with `actual` as `otlp-tape compare` does, with
/// `partitions`, timing it; partition files go under `temp_dir`.
#[allow(clippy::cast_precision_loss)] // rates are for reading
pub(super) async fn compare(
    store: &dyn SessionStore,
    temp_dir: &Path,
    (expected, actual): (&SessionId, &SessionId),
    partitions: Option<u32>,
) -> Result<CompareRun, Error> {
    let config = CompareConfig { partitions, ..CompareConfig::new(expected.clone(), actual.clone()) };
    let context = || format!("the comparison of session {expected} with session {actual}");
    let config = config.validate().map_err(|source| Error::Compare { context: context(), source: Box::new(source) })?;
    let partitions_matched = AtomicU32::new(0);
    let progress = |progress: CompareProgress| {
        partitions_matched.fetch_max(progress.partitions_done, Ordering::Relaxed);
    };
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let comparison = config
        .run(store, temp_dir, &progress)
        .await
        .map_err(|source| Error::Compare { context: context(), source: Box::new(source) })?;
    let seconds = started.elapsed().as_secs_f64();
    let cpu_seconds = cpu_before.zip(cpu_seconds()).map(|(before, after)| after - before);
    let expected_items = comparison.expected.items.total();
    let actual_items = comparison.actual.items.total();
    let total = &comparison.total;
    Ok(CompareRun {
        round: 0,
        variant: String::new(),
        partitions,
        partitions_matched: partitions_matched.load(Ordering::Relaxed),
        seconds,
        cpu_seconds,
        expected_items,
        actual_items,
        items_per_second: (expected_items + actual_items) as f64 / seconds,
        expected_items_per_second: expected_items as f64 / seconds,
        counts: CompareCounts {
            expected: total.expected,
            delivered: total.delivered,
            identical: total.identical,
            changed: total.changed,
            missing: total.missing,
            unexpected: total.unexpected,
        },
        passed: comparison.verdict.passed,
        peak_memory_bytes: peak_memory_bytes(),
    })
}

/// The peak memory measurement: a large session and its re-batched copy
/// compared in a child process.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CompareMemoryReport {
    /// `memoryGb` in bytes: EXPECTED's stored size is at least this.
    pub target_bytes: u64,
    /// EXPECTED.
    pub session: SessionFacts,
    /// Its re-batched copy, ACTUAL.
    pub actual: Rebatched,
    /// Peak resident memory of this process after generating the sessions
    /// and the throughput comparisons (not the comparison below).
    pub generation_peak_memory_bytes: Option<u64>,
    /// The comparison, in a child process, with its peak memory.
    pub comparison: CompareRun,
}

/// The memory measurement: generates a session of at least `memoryGb`
/// stored (from the throughput session's stored bytes per second of
/// virtual time, with a margin, longer again if it falls short) and its
/// re-batched copy, then compares them in a child process
/// (`--compare-only`) so that the peak memory measured is the
/// comparison's.
#[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)] // sizes and durations are far from the limits
pub(super) async fn measure_memory(
    host: &impl Host,
    dir: &Path,
    store: &Arc<dyn SessionStore>,
    throughput_session: &SessionFacts,
    config: &CompareBenchConfig,
) -> Result<CompareMemoryReport, Error> {
    let target = (config.memory_gb * BYTES_PER_GB).ceil() as u64;
    let bytes_per_second =
        throughput_session.stored_bytes as f64 / Duration::from_nanos(config.duration_nanos).as_secs_f64();
    ensure(bytes_per_second > 0.0, || {
        "the throughput session is empty, so the memory session cannot be sized".to_owned()
    })?;
    let ids = SessionIds::new(MEMORY_SESSIONS)?;
    let mut seconds = (target as f64 / bytes_per_second * 1.03).ceil().max(1.0);
    let session = loop {
        host.step(Step::GeneratingMemory { bench: "compare", seconds, pattern: COMPARE_PATTERN, target_bytes: target });
        let duration = Duration::from_secs_f64(seconds).as_nanos() as u64;
        let session = generate(host, store.as_ref(), &ids.expected, duration, config).await?;
        if session.stored_bytes >= target {
            break session;
        }
        // Short of the target: longer, in proportion and a little more.
        seconds = (seconds * target as f64 / session.stored_bytes.max(1) as f64 * 1.03).ceil();
        store.delete_session(&ids.expected).await.map_err(Error::session("cannot delete the memory session"))?;
    };
    host.step(Step::Rebatching { items: session.items, batch_items: config.batch_items });
    let metadata = store
        .read_metadata(&ids.expected)
        .await
        .map_err(Error::session(format!("cannot read the metadata of session {}", ids.expected)))?;
    let actual = write_rebatched(store.as_ref(), &metadata, &ids.identical, config.batch_items, false).await?;
    let generation_peak_memory_bytes = peak_memory_bytes();
    host.step(Step::ComparingMemory { items: session.items + actual.items, partitions: config.memory_partitions });
    let mut args: Vec<std::ffi::OsString> =
        ["--quiet", "--output", "json", "bench", "compare", "--compare-only"].map(Into::into).into();
    args.push(dir.as_os_str().to_owned());
    if let Some(partitions) = config.memory_partitions {
        args.extend(["--memory-partitions".into(), partitions.to_string().into()]);
    }
    let comparison: CompareRun = child_report(args, "the comparison").await?;
    for id in [&ids.expected, &ids.identical] {
        store.delete_session(id).await.map_err(Error::session(format!("cannot delete session {id}")))?;
    }
    Ok(CompareMemoryReport { target_bytes: target, session, actual, generation_peak_memory_bytes, comparison })
}
