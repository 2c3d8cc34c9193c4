//! What the benchmarks take from the program that runs them.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tape_seed_generator::Pattern;
use tape_session::{OutputDir, SessionId, SessionStore, SignalCounts};

use crate::BoxError;

/// What the benchmarks take from the program that runs them: its patterns,
/// its seed run, the store it keeps local sessions in, and where progress
/// messages go. `otlp-tape`
/// implements it with `otlp-tape seed`'s own code, so that what is measured
/// is what that command does.
pub trait Host: Send + Sync {
    /// The pattern `name` names (a built-in pattern or a pattern file), with
    /// the rate and error rate a seed run uses with it when none is given.
    fn pattern(&self, name: &str) -> Result<PatternDefaults, BoxError>;

    /// Generates and stores a seed session into `store` as `otlp-tape seed`
    /// does, for every signal, from the default start; returns what it
    /// wrote and how long it took.
    fn generate(
        &self,
        store: &dyn SessionStore,
        request: SeedRequest,
    ) -> impl Future<Output = Result<GeneratedSession, BoxError>> + Send;

    /// A local store in `dir`.
    fn local_store(&self, dir: &Path) -> Arc<dyn SessionStore>;

    /// The local directory `dir` as an export's output, as `otlp-tape
    /// export --out DIR` opens it.
    fn local_output(&self, dir: &Path) -> Result<Box<dyn OutputDir>, BoxError>;

    /// A benchmark reached a step worth telling people about
    /// (`otlp-tape` prints a line on stderr unless `--quiet`).
    fn step(&self, step: Step<'_>);
}

/// A step of a benchmark, for progress messages.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Step<'a> {
    /// `bench capture` starts its two phases.
    CapturePhases {
        /// Length of the closed-loop phase.
        throughput: Duration,
        /// Senders.
        connections: usize,
        /// Length of the open-loop phase.
        latency: Duration,
    },
    /// `bench capture-memory` starts its uploads.
    Uploads {
        /// Uploads at once.
        uploads: usize,
        /// Bytes of each.
        upload_bytes: u64,
        /// Spans in each.
        spans_per_upload: u64,
        /// `grpc`, `http` or `both`.
        protocol: &'a str,
        /// The capture's program.
        binary: &'a Path,
        /// The capture's process.
        pid: u32,
    },
    /// `bench replay` or `bench export` generates the session of a measurement.
    Generating {
        /// The benchmark: `replay`, `export` or `compare`.
        bench: &'a str,
        /// The pattern.
        pattern: &'a str,
        /// `throughput`, `pacing` or `export`.
        measurement: &'a str,
    },
    /// `bench replay` replays the throughput session.
    ReplayingThroughput {
        /// Spans in the session.
        spans: u64,
        /// Requests in flight at most.
        concurrency: usize,
    },
    /// `bench replay`, `bench export` or `bench compare` generates the
    /// memory session.
    GeneratingMemory {
        /// The benchmark: `replay`, `export` or `compare`.
        bench: &'a str,
        /// Virtual seconds of the session.
        seconds: f64,
        /// The pattern.
        pattern: &'a str,
        /// Bytes it should hold at least: payload (`replay`) or stored
        /// (`export`, `compare`).
        target_bytes: u64,
    },
    /// `bench export` exports a session to Parquet.
    Exporting {
        /// Spans in the session.
        spans: u64,
        /// Whether in a child process (the memory measurement).
        child: bool,
    },
    /// `bench export` times its passes over the session.
    ExportPasses {
        /// Spans in the session.
        spans: u64,
    },
    /// `bench compare` writes the re-batched copies of a session.
    Rebatching {
        /// Items of the session.
        items: u64,
        /// Items of each request of the copies.
        batch_items: u64,
    },
    /// `bench compare` times a comparison.
    Comparing {
        /// The round, from 1.
        round: u32,
        /// Rounds in all.
        runs: u32,
        /// `identical` or `differences`.
        variant: &'a str,
        /// Partitions: 1 is in memory.
        partitions: Option<u32>,
    },
    /// `bench compare` times its passes over the sessions.
    ComparePasses {
        /// Items of both sessions.
        items: u64,
    },
    /// `bench compare` compares the memory sessions in a child process.
    ComparingMemory {
        /// Items of both sessions.
        items: u64,
        /// Partitions; `None`: picked by the sessions' sizes.
        partitions: Option<u32>,
    },
    /// `bench replay` replays the memory session in a child process.
    ReplayingMemory {
        /// Payload bytes of the session.
        payload_bytes: u64,
    },
    /// `bench replay` replays the pacing session at a speed.
    ReplayingPacing {
        /// Records of the session.
        requests: usize,
        /// The speed.
        speed: f64,
        /// How long the replay should take, in seconds.
        seconds: f64,
    },
}

/// A pattern and the defaults a seed run uses with it.
#[derive(Debug, Clone)]
pub struct PatternDefaults {
    /// The pattern.
    pub pattern: Pattern,
    /// Traces per second: the pattern's, else the seed run's default.
    pub rate: f64,
    /// Fraction of traces with an error: the pattern's, else the seed
    /// run's default.
    pub error_rate: f64,
}

/// A seed session to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct SeedRequest {
    /// The pattern: a built-in name or a file.
    pub pattern: String,
    /// Virtual duration, in nanoseconds.
    pub duration_nanos: u64,
    /// Traces per second; `None`: the pattern's.
    pub rate: Option<f64>,
    /// Seed of the generator.
    pub seed: u64,
    /// Id of the session.
    pub session_id: SessionId,
    /// Description of the session.
    pub description: String,
}

/// What a seed run wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratedSession {
    /// The pattern's name.
    pub pattern: String,
    /// The virtual duration, as the seed summary writes it (`60s`).
    pub duration: String,
    /// Traces per second.
    pub rate: f64,
    /// Traces generated.
    pub traces: u64,
    /// Items generated per signal: spans, data points, log records.
    pub items: SignalCounts,
    /// Requests (records) stored per signal.
    pub requests: SignalCounts,
    /// Bytes stored.
    pub size_bytes: u64,
    /// How long generating took.
    pub elapsed: Duration,
}
