//! The benchmark harnesses behind `otlp-tape bench`: measurements of this
//! machine, each a config, a checked config and a `run` that returns a
//! serializable report.
//!
//! - [`SeedBenchConfig`] (`bench seed`): how fast a seed session is
//!   generated into a compressed local store, and the peak memory it takes;
//! - [`CaptureBenchConfig`] (`bench capture`): how many spans per second a
//!   capture records over OTLP/gRPC on loopback with nothing lost, how fast
//!   it acknowledges at half that load, and the peak memory, senders
//!   included;
//! - [`CaptureMemoryBenchConfig`] (`bench capture-memory`): the resident
//!   memory of a capture process (peak, and after the load) under many
//!   concurrent large uploads;
//! - [`ReplayBenchConfig`] (`bench replay`): replay throughput, peak memory
//!   and pacing accuracy;
//! - [`ExportBenchConfig`] (`bench export`): Parquet export throughput end
//!   to end, bytes per span, where the time goes, and the peak memory of
//!   exporting a large session;
//! - [`CompareBenchConfig`] (`bench compare`): items compared per second
//!   by `tape_compare`, in memory and partitioned on disk, of a session
//!   and a re-batched copy (as it is, and with differences), and the peak
//!   memory of comparing a large session;
//! - [`TimelineBenchConfig`] (`bench timeline`): what opening a large
//!   session's page reads (metadata, annotations, the kept timeline), the
//!   timeline built from the blobs, and the writer's cost of counting.
//!
//! Sessions go to a temporary directory that is removed afterwards. What
//! the harnesses need from the program that runs them (its patterns, its
//! seed run, a local store, where progress goes) is the [`Host`]. Nothing
//! is printed; reports that find a problem say so in their `check`.
//!
//! Only the `otlp-tape` binary depends on this crate: the harnesses pull in
//! the capture, the replay engine, the exports and the seed generator together, and no
//! other crate's tests should wait for that.
//!
//! ```no_run
//! # async fn example(host: &impl tape_bench::Host) -> Result<(), tape_bench::Error> {
//! let config = tape_bench::CaptureBenchConfig { connections: 2, ..Default::default() };
//! let report = config.validate()?.run(host).await?;
//! println!("{:.0} spans/s with nothing lost", report.throughput.spans_per_second);
//! tape_bench::Report::check(&report)
//! # }
//! ```

mod capture;
mod capture_memory;
mod compare;
mod error;
mod export;
mod host;
mod replay;
mod seed;
mod system;
mod timeline;

pub use capture::{CAPTURE_PATTERN, CaptureBench, CaptureBenchConfig, LatencyPhase, ThroughputPhase};
pub use capture_memory::{CaptureMemoryBench, CaptureMemoryBenchConfig, UploadProtocol};
pub use compare::{
    ADDED_ATTRIBUTE, ALTERATION_PERIOD, Alterations, COMPARE_PATTERN, CompareBench, CompareBenchConfig, CompareCounts,
    CompareMemoryReport, ComparePass, CompareRun, CompareSummary, DIFFERENCES, IDENTICAL, Rebatched,
    describe_partitions,
};
pub use error::{BoxError, Error};
pub use export::{EXPORT_PATTERN, ExportBench, ExportBenchConfig, ExportMemoryReport, ExportRun, Pass, TableFile};
pub use host::{GeneratedSession, Host, PatternDefaults, SeedRequest, Step};
pub use replay::{
    BYTES_PER_GB, MemoryReport, PACING_PATTERN, PacingReport, PacingRun, ReplayBench, ReplayBenchConfig, ReplayRun,
    SessionFacts, THROUGHPUT_PATTERN, ThroughputReport,
};
pub use seed::{SeedBench, SeedBenchConfig};
pub use system::{cpu_seconds, cpus, peak_memory_bytes, percentile, process_memory, steal_seconds};
pub use timeline::{
    BuilderRun, OPEN_GOAL_SECONDS, OpenRun, RebuildRun, TIMELINE_PATTERN, TimelineBench, TimelineBenchConfig,
};

/// What every benchmark's report is: serializable (the `--output json`
/// document), with a check of what the benchmark found.
pub trait Report: serde::Serialize {
    /// Fails when the benchmark found a problem (something lost, or not
    /// counted); the report stands all the same.
    fn check(&self) -> Result<(), Error>;
}

impl Report for SeedBench {
    fn check(&self) -> Result<(), Error> {
        Ok(())
    }
}

/// A config that its `validate` accepted; its `run` runs the benchmark.
#[derive(Debug, Clone)]
pub struct Valid<C>(C);

impl<C> Valid<C> {
    /// The config.
    pub fn config(&self) -> &C {
        &self.0
    }
}

impl<C> std::ops::Deref for Valid<C> {
    type Target = C;

    fn deref(&self) -> &C {
        &self.0
    }
}
