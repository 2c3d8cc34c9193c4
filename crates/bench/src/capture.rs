//! `bench capture`: how many spans per second a capture records over
//! OTLP/gRPC on loopback with nothing lost (closed loop), how fast it
//! acknowledges at half that load (open loop), and the peak memory, senders
//! included.

mod send;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tape_session::SessionStore;
use tokio::time::Instant;

pub(crate) use self::send::trace_requests;
use self::send::{
    Tally, deliver, difference, finish_capture, send_closed_loop, send_paced, spawn_senders, start_capture,
};
use crate::error::{ensure, invalid_if};
use crate::system::{cpu_seconds, cpus, milliseconds, peak_memory_bytes, percentile, temp_dir};
use crate::{Error, Host, Step, Valid};

/// The pattern whose trace requests `bench capture` sends.
pub const CAPTURE_PATTERN: &str = "high-load";

/// How `bench capture` loads the capture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct CaptureBenchConfig {
    /// Senders, each with an OTLP/gRPC connection of its own; default 4.
    pub connections: usize,
    /// Length of the throughput phase, in nanoseconds; default 20 s.
    pub duration_nanos: u64,
    /// Length of the latency phase, in nanoseconds; default 10 s.
    pub latency_duration_nanos: u64,
    /// Spans per second of the latency phase; default: half the throughput phase's.
    pub latency_rate: Option<f64>,
    /// Compress the requests with gzip; default false.
    pub gzip: bool,
    /// gzip level of the capture's blobs, 0 to 9; default 1.
    pub compression_level: u32,
    /// Distinct trace requests generated before sending and sent in turn; default 200.
    pub requests: usize,
}

impl Default for CaptureBenchConfig {
    fn default() -> Self {
        CaptureBenchConfig {
            connections: 4,
            duration_nanos: 20_000_000_000,
            latency_duration_nanos: 10_000_000_000,
            latency_rate: None,
            gzip: false,
            compression_level: 1,
            requests: 200,
        }
    }
}

/// What `bench capture` measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CaptureBench {
    /// The pattern of the requests.
    pub pattern: String,
    /// Distinct requests, sent in turn.
    pub distinct_requests: usize,
    /// Spans in a request, on average.
    pub spans_per_request: f64,
    /// Senders.
    pub connections: usize,
    /// Compression of the requests on the wire: `gzip` or `none`.
    pub request_compression: &'static str,
    /// gzip level of the capture's blobs.
    pub compression_level: u32,
    /// The closed-loop phase.
    pub throughput: ThroughputPhase,
    /// The open-loop phase.
    pub latency: LatencyPhase,
    /// Peak resident memory of the whole process, senders included (Linux
    /// `VmHWM`), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_memory_bytes: Option<u64>,
    /// CPUs of this machine.
    pub cpus: usize,
}

/// Closed-loop sending: as fast as the capture acknowledges.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThroughputPhase {
    /// From the first request sent to the last acknowledgement.
    pub seconds: f64,
    /// Requests acknowledged.
    pub requests: u64,
    /// Spans acknowledged.
    pub spans: u64,
    /// Protobuf bytes of the requests acknowledged.
    pub bytes: u64,
    /// Spans acknowledged a second.
    pub spans_per_second: f64,
    /// Requests acknowledged a second.
    pub requests_per_second: f64,
    /// MiB acknowledged a second.
    pub mib_per_second: f64,
    /// Refusals with a retryable code (the recorder's backpressure), each
    /// sent again.
    pub throttled: u64,
    /// From the stop to the finished session: writing what was still queued.
    pub drain_seconds: f64,
    /// Spans recorded per second of the phase and the drain together.
    pub sustained_spans_per_second: f64,
    /// Spans the session holds.
    pub recorded_spans: u64,
    /// Spans acknowledged less spans recorded.
    pub lost: i64,
    /// CPU time of the process over the phase and the drain, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_seconds: Option<f64>,
}

/// Open-loop sending at a fixed rate, each acknowledgement timed from when
/// its request was due.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LatencyPhase {
    /// The rate sent at.
    pub target_spans_per_second: f64,
    /// How long the phase took.
    pub seconds: f64,
    /// Requests acknowledged.
    pub requests: u64,
    /// Spans acknowledged.
    pub spans: u64,
    /// Spans acknowledged a second.
    pub spans_per_second: f64,
    /// Retryable refusals.
    pub throttled: u64,
    /// Spans the session holds.
    pub recorded_spans: u64,
    /// Spans acknowledged less spans recorded.
    pub lost: i64,
    /// Acknowledgement latency from when the request was due: median.
    pub p50_ms: f64,
    /// The same, 99th percentile.
    pub p99_ms: f64,
    /// The same, largest.
    pub max_ms: f64,
    /// Acknowledgement latency from when the request was sent: without the
    /// sender's own lateness (its timer's resolution is 1 ms). Median.
    pub from_send_p50_ms: f64,
    /// The same, 99th percentile.
    pub from_send_p99_ms: f64,
}

impl crate::Report for CaptureBench {
    /// Fails unless the capture recorded exactly what it acknowledged in
    /// both phases.
    fn check(&self) -> Result<(), Error> {
        let (lost, lost_paced) = (self.throughput.lost, self.latency.lost);
        ensure(lost == 0 && lost_paced == 0, || {
            format!(
                "the capture did not record exactly what it acknowledged: {lost} spans lost in the throughput phase, {lost_paced} in the latency phase (negative: recorded more than acknowledged)"
            )
        })
    }
}

impl CaptureBenchConfig {
    /// Checks the config; the messages name the flags.
    pub fn validate(self) -> Result<Valid<Self>, Error> {
        invalid_if(self.connections == 0, || "--connections must be at least 1".to_owned())?;
        invalid_if(self.requests == 0, || "--requests must be at least 1".to_owned())?;
        invalid_if(self.duration_nanos == 0 || self.latency_duration_nanos == 0, || {
            "--duration and --latency-duration must be more than zero".to_owned()
        })?;
        if let Some(rate) = self.latency_rate {
            invalid_if(!(rate.is_finite() && rate > 0.0), || {
                format!("--latency-rate is {rate}; expected a positive number of spans per second")
            })?;
        }
        invalid_if(self.compression_level > 9, || {
            format!("--compression-level is {}; expected 0 (stored) to 9", self.compression_level)
        })?;
        Ok(Valid(self))
    }
}

impl Valid<CaptureBenchConfig> {
    /// Runs both phases against captures into a temporary local store,
    /// removed afterwards. The report is returned even when spans were lost:
    /// [`Report::check`](crate::Report::check) says so.
    #[allow(clippy::cast_precision_loss)] // rates are for reading
    pub async fn run(&self, host: &impl Host) -> Result<CaptureBench, Error> {
        let config = &self.0;
        let requests = trace_requests(host, config.requests).await?;
        let spans_per_request =
            requests.iter().map(|request| request.spans).sum::<u64>() as f64 / requests.len() as f64;
        let dir = temp_dir("sessions")?;
        let store = host.local_store(dir.path());

        host.step(Step::CapturePhases {
            throughput: Duration::from_nanos(config.duration_nanos),
            connections: config.connections,
            latency: Duration::from_nanos(config.latency_duration_nanos),
        });
        let throughput = measure_throughput(config, Arc::clone(&store), &requests).await?;
        let target = config.latency_rate.unwrap_or(throughput.spans_per_second / 2.0);
        ensure(target > 0.0, || {
            "the throughput phase acknowledged nothing, so there is no rate for the latency phase".to_owned()
        })?;
        let latency = measure_latency(config, store, &requests, spans_per_request, target).await?;
        Ok(CaptureBench {
            pattern: CAPTURE_PATTERN.to_owned(),
            distinct_requests: requests.len(),
            spans_per_request,
            connections: config.connections,
            request_compression: if config.gzip { "gzip" } else { "none" },
            compression_level: config.compression_level,
            throughput,
            latency,
            peak_memory_bytes: peak_memory_bytes(),
            cpus: cpus(),
        })
    }
}

/// Phase 1: every connection sends its next request as soon as the last is
/// acknowledged, for the duration; then the capture is stopped and its
/// session checked against what was acknowledged.
#[allow(clippy::cast_precision_loss)] // rates are for reading
async fn measure_throughput(
    config: &CaptureBenchConfig,
    store: Arc<dyn SessionStore>,
    requests: &Arc<[send::TraceRequest]>,
) -> Result<ThroughputPhase, Error> {
    let (capture, exporters) = start_capture(store, "bench-throughput", config).await?;
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let deadline = started + Duration::from_nanos(config.duration_nanos);
    let tally = spawn_senders(exporters, requests, |_, exporter, first| {
        send_closed_loop(exporter, Arc::clone(requests), first, deadline)
    })
    .await;
    let seconds = started.elapsed().as_secs_f64();
    let stopping = Instant::now();
    let recorded = finish_capture(capture).await;
    let drain_seconds = stopping.elapsed().as_secs_f64();
    let cpu_seconds = cpu_before.zip(cpu_seconds()).map(|(before, after)| after - before);
    let (tally, recorded) = (tally?, recorded?);
    Ok(ThroughputPhase {
        seconds,
        requests: tally.requests,
        spans: tally.spans,
        bytes: tally.bytes,
        spans_per_second: tally.spans as f64 / seconds,
        requests_per_second: tally.requests as f64 / seconds,
        mib_per_second: tally.bytes as f64 / seconds / (1024.0 * 1024.0),
        throttled: tally.throttled,
        drain_seconds,
        sustained_spans_per_second: recorded as f64 / (seconds + drain_seconds),
        recorded_spans: recorded,
        lost: difference(tally.spans, recorded),
        cpu_seconds,
    })
}

/// Phase 2: a fresh capture; each connection sends one request per period,
/// staggered, so that together they send `target` spans per second for
/// the latency duration, open loop: a request is sent when it is due, not
/// when the one before it is acknowledged. Latency is timed from when a
/// request was due, so that the sender's own delays count against it too.
#[allow(clippy::cast_precision_loss)] // rates are for reading
async fn measure_latency(
    config: &CaptureBenchConfig,
    store: Arc<dyn SessionStore>,
    requests: &Arc<[send::TraceRequest]>,
    spans_per_request: f64,
    target: f64,
) -> Result<LatencyPhase, Error> {
    let (capture, exporters) = start_capture(store, "bench-latency", config).await?;
    // One acknowledged request per connection first, so that connecting is
    // not timed.
    let mut warm_up = Tally::default();
    for exporter in &exporters {
        let request = &requests[0];
        match deliver(exporter, request).await {
            Ok(throttled) => {
                warm_up.acknowledged(request);
                warm_up.throttled += throttled;
            }
            Err(error) => {
                let _ = finish_capture(capture).await;
                return Err(error);
            }
        }
    }
    let connections = config.connections as f64;
    let period = Duration::from_secs_f64(connections * spans_per_request / target).max(Duration::from_micros(1));
    let start = Instant::now() + Duration::from_millis(10);
    let deadline = start + Duration::from_nanos(config.latency_duration_nanos);
    let tally = spawn_senders(exporters, requests, |sender, exporter, first| {
        let offset = period.mul_f64(sender as f64 / connections);
        send_paced(exporter, Arc::clone(requests), first, start + offset, period, deadline)
    })
    .await;
    let seconds = start.elapsed().as_secs_f64();
    let recorded = finish_capture(capture).await;
    let (mut tally, recorded) = (tally?, recorded?);
    tally.latencies.sort_unstable();
    tally.from_send.sort_unstable();
    let ms = |latencies: &[Duration], fraction: f64| milliseconds(percentile(latencies, fraction));
    Ok(LatencyPhase {
        target_spans_per_second: target,
        seconds,
        requests: tally.requests,
        spans: tally.spans,
        spans_per_second: tally.spans as f64 / seconds,
        throttled: tally.throttled + warm_up.throttled,
        recorded_spans: recorded,
        lost: difference(tally.spans + warm_up.spans, recorded),
        p50_ms: ms(&tally.latencies, 0.50),
        p99_ms: ms(&tally.latencies, 0.99),
        max_ms: ms(&tally.latencies, 1.0),
        from_send_p50_ms: ms(&tally.from_send, 0.50),
        from_send_p99_ms: ms(&tally.from_send, 0.99),
    })
}
