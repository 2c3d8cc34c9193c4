//! `bench replay`: how fast, how lean and how punctual a replay is, sending
//! over OTLP/gRPC on loopback to a receiver in the same process that
//! acknowledges, counts and discards (the capture's receiver with no
//! recorder), so that the receiver's CPU is part of the measurement.
//!
//! - **throughput:** a `high-load` seed session replayed at full speed;
//! - **memory:** a session of at least `memoryGb` of payload replayed the
//!   same way in a child process (`otlp-tape bench replay --replay-only`),
//!   whose peak resident memory is then the replay's own and not the
//!   generation's;
//! - **pacing:** a `payment-failure` seed session replayed at 1x and 10x,
//!   each request's dispatch compared with its schedule.

mod measure;
mod receiver;

use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tape_replay::EndReason;
use tape_session::SessionMetadata;

use crate::error::{check_rate, invalid_if};
use crate::system::{cpus, session_id, temp_dir};
use crate::{Error, GeneratedSession, Host, Step, Valid};

/// The pattern of the throughput and memory sessions.
pub const THROUGHPUT_PATTERN: &str = "high-load";
/// The pattern of the pacing session.
pub const PACING_PATTERN: &str = "payment-failure";
/// `memoryGb` counts in GB of 10^9 bytes.
pub const BYTES_PER_GB: f64 = 1e9;

/// What `bench replay` measures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct ReplayBenchConfig {
    /// Virtual duration of the high-load session replayed for throughput,
    /// in nanoseconds; default 60 s.
    pub duration_nanos: u64,
    /// Traces per second of the high-load sessions; default: the pattern's.
    pub rate: Option<f64>,
    /// Requests in flight at most; default 32 (that of `otlp-tape replay`).
    pub concurrency: usize,
    /// Compress the requests with gzip; default false.
    pub gzip: bool,
    /// Payload (uncompressed) of the session replayed for peak memory, in
    /// GB of 10^9 bytes; 0 skips it; default 1.
    pub memory_gb: f64,
    /// Virtual duration of the payment-failure session replayed for pacing,
    /// in nanoseconds; 0 skips it; default 20 s.
    pub pacing_duration_nanos: u64,
    /// Seed of the generator; default 42.
    pub seed: u64,
}

impl Default for ReplayBenchConfig {
    fn default() -> Self {
        ReplayBenchConfig {
            duration_nanos: 60_000_000_000,
            rate: None,
            concurrency: 32,
            gzip: false,
            memory_gb: 1.0,
            pacing_duration_nanos: 20_000_000_000,
            seed: 42,
        }
    }
}

/// What `bench replay` measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplayBench {
    /// Requests in flight at most.
    pub concurrency: usize,
    /// Compression of the requests on the wire: `gzip` or `none`.
    pub request_compression: &'static str,
    /// Measurement 1.
    pub throughput: ThroughputReport,
    /// Measurement 2; `None` with `memoryGb` 0.
    pub memory: Option<MemoryReport>,
    /// Measurement 3; `None` with a pacing duration of 0.
    pub pacing: Option<PacingReport>,
    /// CPUs of this machine.
    pub cpus: usize,
}

/// A seed session generated for a measurement.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionFacts {
    /// The pattern.
    pub pattern: String,
    /// The virtual duration (`60s`).
    pub duration: String,
    /// Traces per second.
    pub rate: f64,
    /// Spans.
    pub spans: u64,
    /// Spans, data points and log records.
    pub items: u64,
    /// Records: one request each when replayed.
    pub requests: u64,
    /// Bytes of the records' frames before compression, as the metadata's
    /// blobs count them (the payload and a few bytes of framing a record).
    pub uncompressed_bytes: u64,
    /// Bytes stored (gzip).
    pub stored_bytes: u64,
    /// How long generating took.
    pub generation_seconds: f64,
}

impl SessionFacts {
    pub(crate) fn new(generated: GeneratedSession, metadata: &SessionMetadata) -> Self {
        SessionFacts {
            pattern: generated.pattern,
            duration: generated.duration,
            rate: generated.rate,
            spans: generated.items.traces,
            items: generated.items.total(),
            requests: generated.requests.total(),
            uncompressed_bytes: metadata.blobs.iter().map(|blob| blob.uncompressed_bytes).sum(),
            stored_bytes: generated.size_bytes,
            generation_seconds: generated.elapsed.as_secs_f64(),
        }
    }
}

/// Measurement 1: a session replayed at full speed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThroughputReport {
    /// The session.
    pub session: SessionFacts,
    /// Its replay.
    pub replay: ReplayRun,
}

/// Measurement 2: a large session replayed at full speed in a child
/// process, whose peak memory is the replay's.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemoryReport {
    /// `memoryGb` in bytes: the session holds at least this much.
    pub target_bytes: u64,
    /// The session.
    pub session: SessionFacts,
    /// Peak resident memory of this process after generating the sessions
    /// and replaying the throughput session (not the replay below).
    pub generation_peak_memory_bytes: Option<u64>,
    /// The replay, in a child process (receiver included), with its peak
    /// memory.
    pub replay: ReplayRun,
}

/// Measurement 3: how closely dispatches follow the recorded schedule.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PacingReport {
    /// The session.
    pub session: SessionFacts,
    /// One replay per speed.
    pub speeds: Vec<PacingRun>,
}

/// A session replayed at full speed into the discarding receiver, and what
/// the receiver counted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplayRun {
    /// `finished`, unless the replay stopped early.
    pub end: String,
    /// The replay's own elapsed time.
    pub seconds: f64,
    /// Requests the receiver acknowledged and counted.
    pub received_requests: u64,
    /// Spans the receiver acknowledged and counted.
    pub received_spans: u64,
    /// Items the receiver acknowledged and counted.
    pub received_items: u64,
    /// Requests the receiver refused.
    pub rejected_requests: u64,
    /// Requests the replay gave up on.
    pub failed_requests: u64,
    /// Protobuf bytes handed to the exporter (before any gzip).
    pub payload_bytes: u64,
    /// Spans a second.
    pub spans_per_second: f64,
    /// Items a second.
    pub items_per_second: f64,
    /// Requests a second.
    pub requests_per_second: f64,
    /// MiB of protobuf per second.
    pub mib_per_second: f64,
    /// CPU time of the process over the replay (receiver included).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_seconds: Option<f64>,
    /// CPUs of this machine that the hypervisor gave to others over the
    /// replay (`steal` in `/proc/stat`), on average: 0 on bare metal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steal_cpus: Option<f64>,
    /// Peak resident memory of the process when the replay ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_memory_bytes: Option<u64>,
}

/// The dispatches of one pacing replay against their schedule.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PacingRun {
    /// The speed.
    pub speed: f64,
    /// Requests dispatched.
    pub requests: u64,
    /// From the first dispatch to the last.
    pub seconds: f64,
    /// How late each request was dispatched against its schedule, measured
    /// from the first dispatch: (dispatch − first dispatch) − (receive −
    /// first receive) / speed. Negative is early. Median.
    pub p50_ms: f64,
    /// The same, 99th percentile.
    pub p99_ms: f64,
    /// The same, latest.
    pub max_ms: f64,
    /// The same, earliest.
    pub min_ms: f64,
    /// CPUs given to others by the hypervisor over the replay, on average.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steal_cpus: Option<f64>,
    /// Items the receiver counted.
    pub received_items: u64,
    /// Every request dispatched once and counted by the receiver.
    pub all_received: bool,
}

impl ReplayBench {
    /// The checks that fail the benchmark: every request, span and item of
    /// each session acknowledged and counted by the receiver.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut check = |what: &str, session: &SessionFacts, replay: &ReplayRun| {
            if replay.end != EndReason::Finished.as_str() {
                problems.push(format!("the {what} replay ended early ({})", replay.end));
            }
            if replay.received_spans != session.spans
                || replay.received_items != session.items
                || replay.received_requests != session.requests
            {
                problems.push(format!(
                    "{what}: the receiver counted {} of {} spans, {} of {} items, {} of {} requests",
                    replay.received_spans,
                    session.spans,
                    replay.received_items,
                    session.items,
                    replay.received_requests,
                    session.requests
                ));
            }
        };
        check("throughput", &self.throughput.session, &self.throughput.replay);
        if let Some(memory) = &self.memory {
            check("memory", &memory.session, &memory.replay);
        }
        if let Some(pacing) = &self.pacing {
            for run in pacing.speeds.iter().filter(|run| !run.all_received) {
                problems.push(format!(
                    "pacing at {}x: the receiver counted {} of {} items",
                    run.speed, run.received_items, pacing.session.items
                ));
            }
        }
        problems
    }
}

impl crate::Report for ReplayBench {
    /// Fails with the [`problems`](ReplayBench::problems), if any.
    fn check(&self) -> Result<(), Error> {
        let problems = self.problems();
        if problems.is_empty() {
            return Ok(());
        }
        Err(Error::Measurement(format!(
            "the receiver did not count everything that was replayed: {}",
            problems.join("; ")
        )))
    }
}

impl ReplayBenchConfig {
    /// Checks the config; the messages name the flags.
    pub fn validate(self) -> Result<Valid<Self>, Error> {
        invalid_if(self.concurrency == 0, || "--concurrency must be at least 1".to_owned())?;
        invalid_if(self.duration_nanos == 0, || "--duration must be more than zero".to_owned())?;
        invalid_if(!(self.memory_gb.is_finite() && self.memory_gb >= 0.0), || {
            format!(
                "--memory-gb is {}; expected a number of GB (10^9 bytes), or 0 to skip the memory measurement",
                self.memory_gb
            )
        })?;
        check_rate(self.rate)?;
        Ok(Valid(self))
    }
}

impl Valid<ReplayBenchConfig> {
    /// Runs the measurements over sessions in a temporary local store,
    /// removed afterwards. The report is returned even when the receiver
    /// missed something: [`Report::check`](crate::Report::check) says so.
    pub async fn run(&self, host: &impl Host) -> Result<ReplayBench, Error> {
        let config = &self.0;
        let dir = temp_dir("sessions")?;
        let store = host.local_store(dir.path());

        host.step(Step::Generating { bench: "replay", pattern: THROUGHPUT_PATTERN, measurement: "throughput" });
        let (session, metadata) =
            generate(host, store.as_ref(), THROUGHPUT_PATTERN, "bench-throughput", config.duration_nanos, config)
                .await?;
        host.step(Step::ReplayingThroughput { spans: session.spans, concurrency: config.concurrency });
        let replay = measure::measure_replay(Arc::clone(&store), metadata, config).await?;
        // Its blobs are not needed any more.
        store
            .delete_session(&session_id("bench-throughput")?)
            .await
            .map_err(Error::session("cannot delete the throughput session"))?;
        let throughput = ThroughputReport { session, replay };

        let memory = if config.memory_gb > 0.0 {
            Some(measure::measure_memory(host, dir.path(), &store, &throughput, config).await?)
        } else {
            None
        };
        let pacing = if config.pacing_duration_nanos > 0 {
            Some(measure::measure_pacing(host, &store, config).await?)
        } else {
            None
        };
        Ok(ReplayBench {
            concurrency: config.concurrency,
            request_compression: if config.gzip { "gzip" } else { "none" },
            throughput,
            memory,
            pacing,
            cpus: cpus(),
        })
    }

    /// The memory measurement's child process (`--replay-only DIR`):
    /// replays the memory session of the local store in `dir` as the
    /// throughput measurement does, and reports.
    pub async fn replay_only(&self, host: &impl Host, dir: &Path) -> Result<ReplayRun, Error> {
        let store = host.local_store(dir);
        let id = session_id(measure::MEMORY_SESSION)?;
        let metadata = store
            .read_metadata(&id)
            .await
            .map_err(Error::session(format!("cannot read session {id} in {}", dir.display())))?;
        measure::measure_replay(store, metadata, &self.0).await
    }
}

/// Generates a seed session of `pattern` with id `id` into `store`, as
/// `otlp-tape seed` does, and reads back its metadata.
async fn generate(
    host: &impl Host,
    store: &dyn tape_session::SessionStore,
    pattern: &str,
    id: &str,
    duration_nanos: u64,
    config: &ReplayBenchConfig,
) -> Result<(SessionFacts, SessionMetadata), Error> {
    let id = session_id(id)?;
    let request = crate::SeedRequest {
        pattern: pattern.to_owned(),
        duration_nanos,
        rate: if pattern == THROUGHPUT_PATTERN { config.rate } else { None },
        seed: config.seed,
        session_id: id.clone(),
        description: "otlp-tape bench replay".to_owned(),
    };
    let generated = host.generate(store, request).await.map_err(Error::Host)?;
    let metadata =
        store.read_metadata(&id).await.map_err(Error::session(format!("cannot read the metadata of session {id}")))?;
    Ok((SessionFacts::new(generated, &metadata), metadata))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Report;

    fn session(spans: u64) -> SessionFacts {
        SessionFacts {
            pattern: THROUGHPUT_PATTERN.to_owned(),
            duration: "2s".to_owned(),
            rate: 10.0,
            spans,
            items: spans + 5,
            requests: 3,
            uncompressed_bytes: 100,
            stored_bytes: 50,
            generation_seconds: 0.1,
        }
    }

    fn run(session: &SessionFacts) -> ReplayRun {
        ReplayRun {
            end: "finished".to_owned(),
            seconds: 1.0,
            received_requests: session.requests,
            received_spans: session.spans,
            received_items: session.items,
            rejected_requests: 0,
            failed_requests: 0,
            payload_bytes: 100,
            spans_per_second: 1.0,
            items_per_second: 1.0,
            requests_per_second: 1.0,
            mib_per_second: 1.0,
            cpu_seconds: None,
            steal_cpus: None,
            peak_memory_bytes: None,
        }
    }

    #[test]
    fn a_report_fails_for_each_count_the_receiver_missed() {
        let facts = session(10);
        let mut report = ReplayBench {
            concurrency: 4,
            request_compression: "none",
            throughput: ThroughputReport { replay: run(&facts), session: facts.clone() },
            memory: None,
            pacing: None,
            cpus: 1,
        };
        assert!(report.problems().is_empty());
        assert!(report.check().is_ok());

        report.throughput.replay.received_spans = 9;
        report.throughput.replay.end = "stopped".to_owned();
        report.pacing = Some(PacingReport {
            session: facts,
            speeds: vec![PacingRun {
                speed: 10.0,
                requests: 3,
                seconds: 0.1,
                p50_ms: 0.0,
                p99_ms: 0.0,
                max_ms: 0.0,
                min_ms: 0.0,
                steal_cpus: None,
                received_items: 14,
                all_received: false,
            }],
        });
        assert_eq!(
            report.check().unwrap_err().to_string(),
            "the receiver did not count everything that was replayed: the throughput replay ended early (stopped); \
             throughput: the receiver counted 9 of 10 spans, 15 of 15 items, 3 of 3 requests; \
             pacing at 10x: the receiver counted 14 of 15 items"
        );
    }

    #[test]
    fn configs_take_their_defaults_refuse_unknown_fields_and_name_the_flag_out_of_range() {
        let config: ReplayBenchConfig = serde_json::from_value(serde_json::json!({ "memoryGb": 0.5 })).unwrap();
        assert_eq!(config, ReplayBenchConfig { memory_gb: 0.5, ..ReplayBenchConfig::default() });
        let error = serde_json::from_value::<ReplayBenchConfig>(serde_json::json!({ "speed": 2 })).unwrap_err();
        assert!(error.to_string().contains("unknown field `speed`"), "{error}");

        let error = ReplayBenchConfig { memory_gb: -1.0, ..ReplayBenchConfig::default() }.validate().unwrap_err();
        assert_eq!(
            error.to_string(),
            "--memory-gb is -1; expected a number of GB (10^9 bytes), or 0 to skip the memory measurement"
        );
        let error = ReplayBenchConfig { concurrency: 0, ..ReplayBenchConfig::default() }.validate().unwrap_err();
        assert_eq!(error.to_string(), "--concurrency must be at least 1");
        let error = crate::CaptureBenchConfig { latency_rate: Some(0.0), ..Default::default() }.validate().unwrap_err();
        assert_eq!(error.to_string(), "--latency-rate is 0; expected a positive number of spans per second");
        let error = crate::CaptureMemoryBenchConfig { uploads: 0, ..Default::default() }.validate().unwrap_err();
        assert_eq!(error.to_string(), "--uploads must be at least 1");
    }
}
