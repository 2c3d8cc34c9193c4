//! A real re-batching pipeline for tests: an OTLP/gRPC server on a free
//! port of `127.0.0.1` that forwards what it receives to an upstream
//! OTLP/gRPC endpoint, as a collector with a batch processor does. It
//! buffers the items (spans, log records, data points) of incoming
//! requests and sends them on in requests of a fixed number of items,
//! which merge items of several incoming requests and split a resource's
//! items across outgoing ones. It can also lose and change things on
//! purpose (drop a share of spans, or of whole traces, add a resource
//! attribute, delete a span attribute), and counts exactly what it did.
//!
//! Incoming requests are answered once their items are buffered; the
//! buffered items go upstream one request at a time, in order.
//! [`Rebatcher::flush`] sends what is left and returns when the upstream
//! has acknowledged everything. An upstream failure (or partial success)
//! is an error that `flush` and [`Rebatcher::stop`] return, and every
//! incoming request after it is refused.
//!
//! ```no_run
//! # async fn example(capture: &str) -> Result<(), tape_testkit::rebatcher::RebatcherError> {
//! use tape_testkit::rebatcher::Rebatcher;
//!
//! let rebatcher = Rebatcher::builder(capture).batch_items(37).drop_spans(10).start().await?;
//! // ... replay into rebatcher.endpoint() ...
//! let counts = rebatcher.stop().await?;
//! println!("{} spans dropped", counts.spans_dropped_singly);
//! # Ok(())
//! # }
//! ```

mod batch;
mod changes;
mod server;

use std::sync::{Arc, Mutex, MutexGuard};

use tape_otlp::Signal;
use tape_otlp::proto::collector::logs::v1::ExportLogsServiceRequest;
use tape_otlp::proto::collector::logs::v1::logs_service_client::LogsServiceClient;
use tape_otlp::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use tape_otlp::proto::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use tape_otlp::proto::collector::trace::v1::ExportTraceServiceRequest;
use tape_otlp::proto::collector::trace::v1::trace_service_client::TraceServiceClient;
use tape_otlp::proto::logs::v1::ResourceLogs;
use tape_otlp::proto::metrics::v1::ResourceMetrics;
use tape_otlp::proto::trace::v1::ResourceSpans;
use tape_session::SignalCounts;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tonic::transport::{Channel, Endpoint};

use self::batch::{Batch, Buffer};
use self::changes::{Changes, TraceTally};
use self::server::{Service, serve};

/// Items per outgoing request unless [`RebatcherBuilder::batch_items`]
/// says otherwise: a prime, so that it divides no usual request size.
pub const DEFAULT_BATCH_ITEMS: usize = 61;

/// Outgoing requests waiting for the upstream at most; incoming requests
/// wait for room (back pressure).
const QUEUE: usize = 64;

/// What went wrong in a [`Rebatcher`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RebatcherError {
    /// The server could not listen on loopback.
    #[error("the rebatcher cannot listen on 127.0.0.1: {0}")]
    Listen(String),
    /// The upstream endpoint is not a URL, or does not answer.
    #[error("the rebatcher cannot connect to its upstream {endpoint}: {message}")]
    Connect {
        /// The upstream endpoint.
        endpoint: String,
        /// Why.
        message: String,
    },
    /// The upstream refused a request, or accepted only part of it.
    #[error("the upstream {endpoint} did not take a {signal} request of {items} items: {message}")]
    Upstream {
        /// The upstream endpoint.
        endpoint: String,
        /// The request's signal.
        signal: Signal,
        /// Its items.
        items: u64,
        /// The upstream's answer.
        message: String,
    },
    /// The rebatcher's forwarding task ended before its work did.
    #[error("the rebatcher stopped forwarding")]
    Stopped,
}

/// What a [`Rebatcher`] received, did and forwarded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RebatchCounts {
    /// Incoming requests, per signal.
    pub requests_received: SignalCounts,
    /// Items of incoming requests, per signal.
    pub items_received: SignalCounts,
    /// Requests the upstream acknowledged, per signal.
    pub requests_forwarded: SignalCounts,
    /// Items the upstream acknowledged, per signal.
    pub items_forwarded: SignalCounts,
    /// Forwarded requests that held items of more than one incoming
    /// request, per signal.
    pub requests_merged: SignalCounts,
    /// Incoming resources (resource entries of a request) whose items went
    /// upstream in more than one request, per signal.
    pub resources_split: SignalCounts,
    /// Incoming resources given the added attribute, per signal.
    pub resources_changed: SignalCounts,
    /// Spans dropped on their own (by their span id).
    pub spans_dropped_singly: u64,
    /// Spans dropped with their whole trace.
    pub spans_dropped_with_traces: u64,
    /// Forwarded spans whose deleted attribute they had.
    pub spans_changed: u64,
    /// Distinct trace ids of incoming spans.
    pub traces_received: u64,
    /// Traces dropped whole (by their trace id).
    pub traces_dropped_whole: u64,
    /// Traces none of whose spans were forwarded: those dropped whole, and
    /// those every span of which was dropped on its own.
    pub traces_dropped: u64,
    /// Traces some but not all of whose spans were forwarded.
    pub traces_incomplete: u64,
}

/// How a [`Rebatcher`] is set up: [`Rebatcher::builder`], then
/// [`start`](Self::start).
#[derive(Debug, Clone)]
pub struct RebatcherBuilder {
    upstream: String,
    batch_items: usize,
    changes: Changes,
}

impl RebatcherBuilder {
    /// Items per outgoing request (at least 1); default
    /// [`DEFAULT_BATCH_ITEMS`].
    #[must_use]
    pub fn batch_items(mut self, items: usize) -> Self {
        self.batch_items = items.max(1);
        self
    }

    /// Drops `percent` % of spans (at most 100), chosen by a hash of their
    /// span id, the same ones every time.
    #[must_use]
    pub fn drop_spans(mut self, percent: u8) -> Self {
        self.changes.drop_span_percent = percent.min(100);
        self
    }

    /// Drops `percent` % of traces whole (at most 100), chosen by a hash of
    /// their trace id, before spans are dropped singly.
    #[must_use]
    pub fn drop_traces(mut self, percent: u8) -> Self {
        self.changes.drop_trace_percent = percent.min(100);
        self
    }

    /// Sets the resource attribute `key` to the string `value` on every
    /// resource of every signal.
    #[must_use]
    pub fn add_resource_attribute(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.changes.resource_attribute = Some((key.into(), value.into()));
        self
    }

    /// Deletes the attribute `key` from every span that has it.
    #[must_use]
    pub fn delete_span_attribute(mut self, key: impl Into<String>) -> Self {
        self.changes.deleted_span_attribute = Some(key.into());
        self
    }

    /// Connects to the upstream and starts listening.
    pub async fn start(self) -> Result<Rebatcher, RebatcherError> {
        let connect_error = |error: &dyn std::fmt::Display| RebatcherError::Connect {
            endpoint: self.upstream.clone(),
            message: error.to_string(),
        };
        let channel = Endpoint::from_shared(self.upstream.clone())
            .map_err(|error| connect_error(&error))?
            .connect()
            .await
            .map_err(|error| {
                connect_error(&std::error::Error::source(&error).map_or(error.to_string(), ToString::to_string))
            })?;
        let listener =
            TcpListener::bind(("127.0.0.1", 0)).await.map_err(|error| RebatcherError::Listen(error.to_string()))?;
        let address = listener.local_addr().map_err(|error| RebatcherError::Listen(error.to_string()))?;

        let shared = Arc::new(Shared { state: Mutex::new(State::default()), upstream: self.upstream.clone() });
        let (queue, outgoing) = mpsc::channel(QUEUE);
        let forwarder = tokio::spawn(forward(outgoing, channel, Arc::clone(&shared)));
        let service = Service {
            shared: Arc::clone(&shared),
            queue: queue.clone(),
            batch_items: self.batch_items,
            changes: Arc::new(self.changes),
        };
        let (stop_server, server_stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, service, server_stopped));
        Ok(Rebatcher {
            endpoint: format!("http://{address}"),
            batch_items: self.batch_items,
            shared,
            queue: Some(queue),
            stop_server: Some(stop_server),
            server: Some(server),
            forwarder: Some(forwarder),
        })
    }
}

/// A running re-batching OTLP/gRPC pipeline (see the module's
/// documentation). Dropping it stops its server without flushing;
/// [`stop`](Self::stop) flushes.
pub struct Rebatcher {
    endpoint: String,
    batch_items: usize,
    shared: Arc<Shared>,
    queue: Option<mpsc::Sender<Outgoing>>,
    stop_server: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
    forwarder: Option<JoinHandle<()>>,
}

impl Rebatcher {
    /// A rebatcher that forwards to the OTLP/gRPC endpoint `upstream`
    /// (`http://host:port`), with the defaults: batches of
    /// [`DEFAULT_BATCH_ITEMS`], nothing dropped or changed.
    pub fn builder(upstream: impl Into<String>) -> RebatcherBuilder {
        RebatcherBuilder { upstream: upstream.into(), batch_items: DEFAULT_BATCH_ITEMS, changes: Changes::default() }
    }

    /// Where it listens: `http://127.0.0.1:<port>`, OTLP/gRPC.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// What it has received, done and forwarded so far.
    pub fn counts(&self) -> RebatchCounts {
        self.shared.lock().counts()
    }

    /// Sends every buffered item upstream and returns when the upstream
    /// has acknowledged them and everything sent before, or with the first
    /// upstream failure.
    pub async fn flush(&self) -> Result<(), RebatcherError> {
        let queue = self.queue.as_ref().ok_or(RebatcherError::Stopped)?;
        let batches = self.shared.lock().cut_all(self.batch_items);
        for batch in batches {
            queue.send(batch).await.map_err(|_| RebatcherError::Stopped)?;
        }
        let (done, acknowledged) = oneshot::channel();
        queue.send(Outgoing::Flush(done)).await.map_err(|_| RebatcherError::Stopped)?;
        acknowledged.await.map_err(|_| RebatcherError::Stopped)?
    }

    /// Stops listening (requests under way are answered first), flushes,
    /// stops forwarding and returns the counts, or the first upstream
    /// failure.
    pub async fn stop(mut self) -> Result<RebatchCounts, RebatcherError> {
        if let Some(stop) = self.stop_server.take() {
            // The server may have stopped already.
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            // A server task that panicked has stopped too.
            let _ = server.await;
        }
        let flushed = self.flush().await;
        drop(self.queue.take());
        if let Some(forwarder) = self.forwarder.take() {
            let _ = forwarder.await;
        }
        flushed.map(|()| self.counts())
    }
}

impl std::fmt::Debug for Rebatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rebatcher")
            .field("endpoint", &self.endpoint)
            .field("upstream", &self.shared.upstream)
            .finish_non_exhaustive()
    }
}

impl Drop for Rebatcher {
    fn drop(&mut self) {
        if let Some(stop) = self.stop_server.take() {
            let _ = stop.send(());
        }
    }
}

/// An outgoing request, or a flush's marker: the forwarder answers it
/// when everything queued before it is acknowledged.
enum Outgoing {
    Traces(Batch<ExportTraceServiceRequest>),
    Metrics(Batch<ExportMetricsServiceRequest>),
    Logs(Batch<ExportLogsServiceRequest>),
    Flush(oneshot::Sender<Result<(), RebatcherError>>),
}

/// What the server's handlers and the forwarder share.
struct Shared {
    state: Mutex<State>,
    upstream: String,
}

#[derive(Default)]
struct State {
    traces: Buffer<ResourceSpans>,
    metrics: Buffer<ResourceMetrics>,
    logs: Buffer<ResourceLogs>,
    /// Incoming requests numbered so far.
    requests: u64,
    counts: RebatchCounts,
    traces_seen: TraceTally,
    /// The first upstream failure.
    failure: Option<RebatcherError>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock left whole counts.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl State {
    fn counts(&self) -> RebatchCounts {
        let mut counts = self.counts.clone();
        counts.resources_split = SignalCounts {
            traces: self.traces.split_resources(),
            metrics: self.metrics.split_resources(),
            logs: self.logs.split_resources(),
        };
        self.traces_seen.count_into(&mut counts);
        counts
    }

    /// Every buffered item, cut into outgoing requests of `size` items
    /// and a last, smaller one.
    fn cut_all(&mut self, size: usize) -> Vec<Outgoing> {
        let mut outgoing: Vec<Outgoing> = self.traces.cut(size, true).into_iter().map(Outgoing::Traces).collect();
        outgoing.extend(self.metrics.cut(size, true).into_iter().map(Outgoing::Metrics));
        outgoing.extend(self.logs.cut(size, true).into_iter().map(Outgoing::Logs));
        outgoing
    }
}

// ----------------------------------------------------------- forwarder ---

/// Sends the queued requests upstream one at a time, in order, and
/// answers flushes. After a failure it sends nothing more: the failure is
/// what flushes answer.
async fn forward(mut outgoing: mpsc::Receiver<Outgoing>, channel: Channel, shared: Arc<Shared>) {
    let mut traces = TraceServiceClient::new(channel.clone());
    let mut metrics = MetricsServiceClient::new(channel.clone());
    let mut logs = LogsServiceClient::new(channel);
    while let Some(next) = outgoing.recv().await {
        let (signal, items, merged, answer) = match next {
            Outgoing::Flush(done) => {
                let _ = done.send(shared.lock().failure.clone().map_or(Ok(()), Err));
                continue;
            }
            _ if shared.lock().failure.is_some() => continue,
            Outgoing::Traces(batch) => {
                let answer = traces.export(batch.request).await.map(|response| {
                    response.into_inner().partial_success.map(|partial| (partial.rejected_spans, partial.error_message))
                });
                (Signal::Traces, batch.items, batch.merged, answer)
            }
            Outgoing::Metrics(batch) => {
                let answer = metrics.export(batch.request).await.map(|response| {
                    let partial = response.into_inner().partial_success;
                    partial.map(|partial| (partial.rejected_data_points, partial.error_message))
                });
                (Signal::Metrics, batch.items, batch.merged, answer)
            }
            Outgoing::Logs(batch) => {
                let answer = logs.export(batch.request).await.map(|response| {
                    let partial = response.into_inner().partial_success;
                    partial.map(|partial| (partial.rejected_log_records, partial.error_message))
                });
                (Signal::Logs, batch.items, batch.merged, answer)
            }
        };
        let failure =
            |message: String| RebatcherError::Upstream { endpoint: shared.upstream.clone(), signal, items, message };
        let mut state = shared.lock();
        match answer {
            Ok(None | Some((0, _))) => {
                state.counts.requests_forwarded.add(signal, 1);
                state.counts.items_forwarded.add(signal, items);
                state.counts.requests_merged.add(signal, u64::from(merged));
            }
            Ok(Some((rejected, message))) => {
                state.failure = Some(failure(format!("{rejected} items rejected: {message}")));
            }
            Err(status) => state.failure = Some(failure(format!("{:?}: {}", status.code(), status.message()))),
        }
    }
}
