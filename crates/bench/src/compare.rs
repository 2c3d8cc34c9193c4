//! `bench compare`: how fast `tape_compare` compares two sessions item by
//! item, in memory and partitioned on disk, and the peak memory of
//! comparing a large session.
//!
//! - **sessions:** a `high-load` seed session (EXPECTED) and, in the same
//!   store, two ACTUAL sessions holding its items in requests of
//!   `batchItems` items (as the Collector's batch processor delivers them:
//!   merged across requests and split inside resources), one as they are
//!   and one with a few spans dropped, renamed and given an attribute
//!   (one in [`ALTERATION_PERIOD`] each);
//! - **throughput:** EXPECTED compared with each ACTUAL
//!   (`CompareConfig` → `validate` → `run`, as `otlp-tape compare` runs
//!   it), in memory (`partitions: 1`) and partitioned on disk
//!   (`partitions`, default 16), the four interleaved and repeated `runs`
//!   times; items compared per second (both sides' items read, and the
//!   expected items) and the process's CPU time;
//! - **where the time goes:** both sessions read again outside the
//!   comparison, on one thread: a pass that reads and decompresses the
//!   records, and one that also decodes them (see [`ComparePass`]);
//! - **memory:** a session of at least `memoryGb` GB stored and its
//!   re-batched copy compared in a child process (`otlp-tape bench compare
//!   --compare-only DIR`), whose peak resident memory is then the
//!   comparison's own.
//!
//! Every comparison is checked: the identical copy must pass with every
//! item identical, the altered one must fail with exactly the items
//! dropped missing and the items changed changed.

mod measure;
mod passes;
mod rebatch;

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{check_memory_gb, check_rate, invalid_if};
use crate::replay::SessionFacts;
use crate::system::{cpus, temp_dir};
use crate::{Error, Host, Step, Valid};

pub use self::measure::{CompareCounts, CompareMemoryReport, CompareRun, CompareSummary, describe_partitions};
pub use self::passes::ComparePass;
pub use self::rebatch::{ADDED_ATTRIBUTE, ALTERATION_PERIOD, Alterations, Rebatched};

/// The pattern of the compared sessions.
pub const COMPARE_PATTERN: &str = "high-load";

/// The variant compared with its seed as it is.
pub const IDENTICAL: &str = "identical";
/// The variant with spans dropped and changed.
pub const DIFFERENCES: &str = "differences";

/// What `bench compare` measures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct CompareBenchConfig {
    /// Virtual duration of the high-load session compared for throughput,
    /// in nanoseconds; default 60 s.
    pub duration_nanos: u64,
    /// Traces per second of the high-load sessions; default: the pattern's.
    pub rate: Option<f64>,
    /// Seed of the generator; default 42.
    pub seed: u64,
    /// Rounds of the four comparisons (each ACTUAL, in memory and
    /// partitioned), interleaved; default 3.
    pub runs: u32,
    /// Partitions of the comparisons on disk, 2 or more; default 16.
    pub partitions: u32,
    /// Items in each request of the ACTUAL sessions; default 8192 (the
    /// Collector batch processor's `send_batch_size`).
    pub batch_items: u64,
    /// Stored (compressed) size of the EXPECTED session compared in a
    /// child process for peak memory, in GB of 10^9 bytes; 0 skips it;
    /// default 0.
    pub memory_gb: f64,
    /// Partitions of that comparison; default: what the comparison picks
    /// from the sessions' sizes.
    pub memory_partitions: Option<u32>,
}

impl Default for CompareBenchConfig {
    fn default() -> Self {
        CompareBenchConfig {
            duration_nanos: 60_000_000_000,
            rate: None,
            seed: 42,
            runs: 3,
            partitions: 16,
            batch_items: 8192,
            memory_gb: 0.0,
            memory_partitions: None,
        }
    }
}

/// What `bench compare` measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CompareBench {
    /// The EXPECTED session.
    pub session: SessionFacts,
    /// Items in each request of the ACTUAL sessions.
    pub batch_items: u64,
    /// The ACTUAL session with every item as it is.
    pub identical: Rebatched,
    /// The ACTUAL session with differences.
    pub differences: Rebatched,
    /// Seconds it took to write both ACTUAL sessions.
    pub rebatch_seconds: f64,
    /// Every comparison, in the order they ran.
    pub runs: Vec<CompareRun>,
    /// The runs summed up per variant and partitioning.
    pub summaries: Vec<CompareSummary>,
    /// The passes over both sessions, each doing one step more.
    pub passes: Vec<ComparePass>,
    /// The large session's comparison; `None` with `memoryGb` 0.
    pub memory: Option<CompareMemoryReport>,
    /// CPUs of this machine.
    pub cpus: usize,
}

impl CompareBench {
    /// The checks that fail the benchmark: each comparison must find what
    /// its ACTUAL session holds (see the module's documentation).
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for run in &self.runs {
            let alterations =
                if run.variant == IDENTICAL { Alterations::default() } else { self.differences.alterations };
            problems.extend(run.problem(self.session.items, &alterations));
        }
        if let Some(memory) = &self.memory {
            problems.extend(memory.comparison.problem(memory.session.items, &Alterations::default()));
        }
        let items = self.session.items + self.identical.items;
        for pass in self.passes.iter().filter(|pass| pass.items != items) {
            problems.push(format!("the {} pass saw {} of {items} items", pass.step, pass.items));
        }
        problems
    }
}

impl crate::Report for CompareBench {
    /// Fails with the [`problems`](CompareBench::problems), if any.
    fn check(&self) -> Result<(), Error> {
        let problems = self.problems();
        if problems.is_empty() {
            return Ok(());
        }
        Err(Error::Measurement(format!("a comparison did not find what it should: {}", problems.join("; "))))
    }
}

impl CompareBenchConfig {
    /// Checks the config; the messages name the flags.
    pub fn validate(self) -> Result<Valid<Self>, Error> {
        invalid_if(self.duration_nanos == 0, || "--duration must be more than zero".to_owned())?;
        invalid_if(self.runs == 0, || "--runs must be at least 1".to_owned())?;
        invalid_if(self.partitions < 2, || {
            format!("--partitions is {}; expected 2 or more partitions on disk, such as 16", self.partitions)
        })?;
        invalid_if(self.memory_partitions == Some(0), || {
            "--memory-partitions is 0; expected 1 (in memory) or more".to_owned()
        })?;
        invalid_if(self.batch_items == 0, || "--batch-items must be at least 1".to_owned())?;
        check_memory_gb(self.memory_gb)?;
        check_rate(self.rate)?;
        Ok(Valid(self))
    }
}

impl Valid<CompareBenchConfig> {
    /// Runs the measurements over sessions in a temporary directory,
    /// removed afterwards. The report is returned even when a comparison
    /// found something else than it should:
    /// [`Report::check`](crate::Report::check) says so.
    pub async fn run(&self, host: &impl Host) -> Result<CompareBench, Error> {
        let config = &self.0;
        let dir = temp_dir("sessions")?;
        let store = host.local_store(dir.path());

        host.step(Step::Generating { bench: "compare", pattern: COMPARE_PATTERN, measurement: "throughput" });
        let ids = measure::SessionIds::new("bench-compare")?;
        let session = measure::generate(host, store.as_ref(), &ids.expected, config.duration_nanos, config).await?;
        host.step(Step::Rebatching { items: session.items, batch_items: config.batch_items });
        let started = std::time::Instant::now();
        let (identical, differences) = measure::write_actual_sessions(store.as_ref(), &ids, config).await?;
        let rebatch_seconds = started.elapsed().as_secs_f64();

        let mut runs = Vec::new();
        for round in 1..=config.runs {
            for (variant, actual) in [(IDENTICAL, &ids.identical), (DIFFERENCES, &ids.differences)] {
                for partitions in [1, config.partitions] {
                    host.step(Step::Comparing { round, runs: config.runs, variant, partitions: Some(partitions) });
                    let pair = (&ids.expected, actual);
                    let run = measure::compare(store.as_ref(), dir.path(), pair, Some(partitions)).await?;
                    runs.push(CompareRun { round, variant: variant.to_owned(), ..run });
                }
            }
        }
        host.step(Step::ComparePasses { items: session.items + identical.items });
        let passes = passes::measure_passes(store.as_ref(), [&ids.expected, &ids.identical]).await?;
        for id in [&ids.expected, &ids.identical, &ids.differences] {
            store.delete_session(id).await.map_err(Error::session(format!("cannot delete session {id}")))?;
        }

        let memory = if config.memory_gb > 0.0 {
            Some(measure::measure_memory(host, dir.path(), &store, &session, config).await?)
        } else {
            None
        };
        let summaries = CompareSummary::of(&runs);
        Ok(CompareBench {
            session,
            batch_items: config.batch_items,
            identical,
            differences,
            rebatch_seconds,
            runs,
            summaries,
            passes,
            memory,
            cpus: cpus(),
        })
    }

    /// The memory measurement's child process (`--compare-only DIR`):
    /// compares the memory sessions of the local store in `dir` with
    /// `memoryPartitions`, and reports.
    pub async fn compare_only(&self, host: &impl Host, dir: &Path) -> Result<CompareRun, Error> {
        let store = host.local_store(dir);
        let ids = measure::SessionIds::new(measure::MEMORY_SESSIONS)?;
        let pair = (&ids.expected, &ids.identical);
        let run = measure::compare(store.as_ref(), dir, pair, self.memory_partitions).await?;
        Ok(CompareRun { variant: IDENTICAL.to_owned(), ..run })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_take_their_defaults_and_name_the_flag_out_of_range() {
        let config: CompareBenchConfig = serde_json::from_value(serde_json::json!({ "runs": 1 })).unwrap();
        assert_eq!(config, CompareBenchConfig { runs: 1, ..CompareBenchConfig::default() });
        let error = serde_json::from_value::<CompareBenchConfig>(serde_json::json!({ "rounds": 1 })).unwrap_err();
        assert!(error.to_string().contains("unknown field `rounds`"), "{error}");
        for (config, message) in [
            (CompareBenchConfig { runs: 0, ..Default::default() }, "--runs must be at least 1"),
            (
                CompareBenchConfig { partitions: 1, ..Default::default() },
                "--partitions is 1; expected 2 or more partitions on disk, such as 16",
            ),
            (CompareBenchConfig { batch_items: 0, ..Default::default() }, "--batch-items must be at least 1"),
            (
                CompareBenchConfig { memory_partitions: Some(0), ..Default::default() },
                "--memory-partitions is 0; expected 1 (in memory) or more",
            ),
            (CompareBenchConfig { duration_nanos: 0, ..Default::default() }, "--duration must be more than zero"),
        ] {
            assert_eq!(config.validate().unwrap_err().to_string(), message);
        }
    }
}
