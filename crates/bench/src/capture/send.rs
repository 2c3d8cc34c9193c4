//! The senders of `bench capture`: the requests, the capture they load,
//! and the closed- and open-loop sending.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tape_capture::{Capture, CaptureConfig, DEFAULT_MAX_REQUEST_BYTES, RecorderConfig};
use tape_otlp::{Signal, SignalSet};
use tape_replay::{Compression, Exporter, ExporterConfig, Protocol};
use tape_seed_generator::{DEFAULT_START, Generator, Params};
use tape_session::{SessionMetadata, SessionStore, SessionType};
use tokio::time::{Instant, MissedTickBehavior};

use super::{CAPTURE_PATTERN, CaptureBenchConfig};
use crate::error::ensure;
use crate::system::session_id;
use crate::{Error, Host};

/// The seed of the requests.
const CAPTURE_SEED: u64 = 42;
/// How long a sender waits before it sends a refused request again. The
/// capture asks for a second (in its `RetryInfo`), which an OTLP SDK would
/// wait; a short pause keeps the recorder's queue full instead, so that the
/// throughput phase measures the recorder rather than the pause.
const THROTTLE_PAUSE: Duration = Duration::from_millis(50);
/// How long one request may keep being refused before the benchmark gives up.
const MAX_REFUSED_FOR: Duration = Duration::from_secs(30);

/// One trace request as it is sent: the generator's protobuf bytes, never
/// re-encoded.
pub(crate) struct TraceRequest {
    pub(crate) payload: Bytes,
    pub(crate) spans: u64,
}

/// What the senders of a phase sent and how it went.
#[derive(Debug, Default)]
pub(super) struct Tally {
    pub(super) requests: u64,
    pub(super) spans: u64,
    pub(super) bytes: u64,
    pub(super) throttled: u64,
    /// Acknowledgement latencies from when each request was due (paced
    /// sending only).
    pub(super) latencies: Vec<Duration>,
    /// The same from when each was sent.
    pub(super) from_send: Vec<Duration>,
}

impl Tally {
    pub(super) fn acknowledged(&mut self, request: &TraceRequest) {
        self.requests += 1;
        self.spans += request.spans;
        self.bytes += request.payload.len() as u64;
    }

    fn add(&mut self, other: Tally) {
        self.requests += other.requests;
        self.spans += other.spans;
        self.bytes += other.bytes;
        self.throttled += other.throttled;
        self.latencies.extend(other.latencies);
        self.from_send.extend(other.from_send);
    }
}

/// The first `count` trace requests of the benchmark's pattern, as the seed
/// generator encodes them (fewer if it makes fewer in an hour).
pub(crate) async fn trace_requests(host: &impl Host, count: usize) -> Result<Arc<[TraceRequest]>, Error> {
    let defaults = host.pattern(CAPTURE_PATTERN).map_err(Error::Host)?;
    tokio::task::spawn_blocking(move || {
        let pattern = defaults.pattern;
        let params = Params {
            seed: CAPTURE_SEED,
            start: DEFAULT_START,
            duration_nanos: 3_600_000_000_000,
            rate: defaults.rate,
            error_rate: defaults.error_rate,
            signals: SignalSet::NONE.with(Signal::Traces),
        };
        let generator = Generator::new(&pattern, params)
            .map_err(|error| Error::Measurement(format!("cannot generate pattern {}: {error}", pattern.name)))?;
        let requests: Arc<[TraceRequest]> = generator
            .filter(|batch| batch.signal == Signal::Traces && batch.items > 0)
            .take(count)
            .map(|batch| TraceRequest { payload: Bytes::from(batch.payload), spans: batch.items })
            .collect();
        ensure(!requests.is_empty(), || format!("pattern {} generated no trace requests", pattern.name))?;
        Ok(requests)
    })
    .await
    .map_err(|source| Error::Task { context: "the generator stopped unexpectedly".to_owned(), source })?
}

/// Starts a capture as `otlp-tape capture` runs one (default recorder
/// settings, HTTP off) on a free loopback port, recording into session `id`
/// of `store`, and one exporter per connection to it.
pub(super) async fn start_capture(
    store: Arc<dyn SessionStore>,
    id: &str,
    config: &CaptureBenchConfig,
) -> Result<(Capture, Vec<Exporter>), Error> {
    let mut recorder = RecorderConfig::default();
    recorder.writer.compression_level = config.compression_level;
    let capture_config = CaptureConfig {
        grpc: Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))),
        http: None,
        max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
        receive: tape_capture::ReceiveLimits::default(),
        recorder,
        forward: None,
    };
    let id = session_id(id)?;
    let created_by = format!("otlp-tape {} bench capture", env!("CARGO_PKG_VERSION"));
    let metadata = SessionMetadata::new(id, SessionType::Capture, tape_capture::now(), created_by);
    let capture = Capture::start(store, metadata, capture_config).await.map_err(|source| Error::Capture {
        context: "cannot start the capture to measure".to_owned(),
        source: Box::new(source),
    })?;
    let Some(addr) = capture.grpc_addr() else {
        let _ = finish_capture(capture).await;
        return Err(Error::Measurement("the capture to measure serves no OTLP/gRPC".to_owned()));
    };
    // An exporter of its own per connection: each has its own channel.
    let exporters = (0..config.connections)
        .map(|_| {
            let mut exporter = ExporterConfig::new(format!("http://{addr}"), Protocol::Grpc);
            exporter.compression = if config.gzip { Compression::Gzip } else { Compression::None };
            Exporter::new(exporter)
        })
        .collect::<Result<Vec<_>, _>>();
    match exporters {
        Ok(exporters) => Ok((capture, exporters)),
        Err(source) => {
            let _ = finish_capture(capture).await;
            Err(Error::Exporter { context: "cannot make an OTLP/gRPC exporter for the capture".to_owned(), source })
        }
    }
}

/// Stops `capture`, waits until its session is finished, and returns the
/// spans the session holds.
pub(super) async fn finish_capture(capture: Capture) -> Result<u64, Error> {
    capture.stop();
    let outcome = capture.wait().await.map_err(Error::session("the capture being measured failed"))?;
    if let tape_capture::StopReason::Failed(message) = &outcome.recording.reason {
        return Err(Error::Measurement(format!("the capture being measured failed: {message}")));
    }
    Ok(outcome.recording.metadata.captured_traces)
}

/// Starts one sender per exporter, each from its own place in `requests`,
/// waits for every one and adds up what they sent; the first failure, if
/// any.
pub(super) async fn spawn_senders<F>(
    exporters: Vec<Exporter>,
    requests: &Arc<[TraceRequest]>,
    sender: impl Fn(usize, Exporter, usize) -> F,
) -> Result<Tally, Error>
where
    F: Future<Output = Result<Tally, Error>> + Send + 'static,
{
    let connections = exporters.len();
    let senders: Vec<_> = exporters
        .into_iter()
        .enumerate()
        .map(|(number, exporter)| {
            let first = number * requests.len() / connections;
            tokio::spawn(sender(number, exporter, first))
        })
        .collect();
    let mut total = Tally::default();
    let mut failure = None;
    for sender in senders {
        match sender.await {
            Ok(Ok(tally)) => total.add(tally),
            Ok(Err(error)) => failure = failure.or(Some(error)),
            Err(error) => {
                failure = failure.or(Some(Error::Measurement(format!("a sender stopped unexpectedly: {error}"))));
            }
        }
    }
    failure.map_or(Ok(total), Err)
}

/// Sends requests one after another, each as soon as the last is
/// acknowledged, from `first` on, until `deadline`.
pub(super) async fn send_closed_loop(
    exporter: Exporter,
    requests: Arc<[TraceRequest]>,
    first: usize,
    deadline: Instant,
) -> Result<Tally, Error> {
    let mut tally = Tally::default();
    let mut index = first;
    while Instant::now() < deadline {
        let request = &requests[index % requests.len()];
        tally.throttled += deliver(&exporter, request).await?;
        tally.acknowledged(request);
        index += 1;
    }
    Ok(tally)
}

/// Sends one request every `period` from `start` until `deadline`, from
/// `first` on, each when it is due whether or not the earlier ones are
/// acknowledged (they share the connection, HTTP/2 multiplexing them), and
/// times each acknowledgement from when the request was due.
pub(super) async fn send_paced(
    exporter: Exporter,
    requests: Arc<[TraceRequest]>,
    first: usize,
    start: Instant,
    period: Duration,
    deadline: Instant,
) -> Result<Tally, Error> {
    let mut schedule = tokio::time::interval_at(start, period);
    schedule.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut in_flight = FuturesUnordered::new();
    let mut tally = Tally::default();
    let mut index = first;
    let record = |tally: &mut Tally, (request, throttled, latency, from_send): (usize, u64, Duration, Duration)| {
        tally.throttled += throttled;
        tally.latencies.push(latency);
        tally.from_send.push(from_send);
        tally.acknowledged(&requests[request]);
    };
    loop {
        tokio::select! {
            due = schedule.tick() => {
                if due >= deadline {
                    break;
                }
                let request = index % requests.len();
                index += 1;
                let (exporter, requests) = (exporter.clone(), Arc::clone(&requests));
                in_flight.push(async move {
                    let sent = Instant::now();
                    let throttled = deliver(&exporter, &requests[request]).await?;
                    Ok::<_, Error>((request, throttled, due.elapsed(), sent.elapsed()))
                });
            }
            Some(done) = in_flight.next() => record(&mut tally, done?),
        }
    }
    while let Some(done) = in_flight.next().await {
        record(&mut tally, done?);
    }
    Ok(tally)
}

/// Sends `request` until the capture acknowledges it. A refusal with a
/// retryable code (the recorder's backpressure) is sent again after a
/// pause; returns how many there were. Nothing is dropped: a permanent
/// refusal, or refusals for too long, end the benchmark.
pub(super) async fn deliver(exporter: &Exporter, request: &TraceRequest) -> Result<u64, Error> {
    let first_sent = Instant::now();
    let mut refused = 0;
    loop {
        match exporter.export(Signal::Traces, request.payload.clone()).await {
            Ok(outcome) if outcome.rejected_items == 0 => return Ok(refused),
            Ok(outcome) => {
                return Err(Error::Measurement(format!(
                    "the capture rejected {} of the {} spans of a request: {}",
                    outcome.rejected_items,
                    request.spans,
                    outcome.message.unwrap_or_default()
                )));
            }
            Err(error) if error.is_retryable() && first_sent.elapsed() < MAX_REFUSED_FOR => {
                refused += 1;
                tokio::time::sleep(THROTTLE_PAUSE).await;
            }
            Err(source) => {
                return Err(Error::Export { context: "the capture did not accept a request".to_owned(), source });
            }
        }
    }
}

/// `acknowledged - recorded`, signed.
pub(super) fn difference(acknowledged: u64, recorded: u64) -> i64 {
    i64::try_from(i128::from(acknowledged) - i128::from(recorded)).unwrap_or(i64::MAX)
}
