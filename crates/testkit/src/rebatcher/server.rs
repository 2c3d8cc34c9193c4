//! The rebatcher's OTLP/gRPC server: each request's items are changed as
//! asked, counted and buffered, and the full batches queued for the
//! upstream before the request is answered.

use std::sync::Arc;

use tape_otlp::proto::collector::logs::v1::logs_service_server::LogsService;
use tape_otlp::proto::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use tape_otlp::proto::collector::metrics::v1::metrics_service_server::MetricsService;
use tape_otlp::proto::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use tape_otlp::proto::collector::trace::v1::trace_service_server::TraceService;
use tape_otlp::proto::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use tape_otlp::{ExportRequest, Signal};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

use super::changes::Changes;
use super::{Outgoing, RebatcherError, Shared, State};

/// The largest incoming request accepted, after decompression.
const MAX_REQUEST_BYTES: usize = 64 * 1024 * 1024;

/// The three OTLP services, over the state the forwarder shares.
#[derive(Clone)]
pub(super) struct Service {
    pub shared: Arc<Shared>,
    pub queue: mpsc::Sender<Outgoing>,
    pub batch_items: usize,
    pub changes: Arc<Changes>,
}

/// Serves `service` on `listener` until `stop`, then answers the requests
/// under way and returns.
pub(super) async fn serve(listener: TcpListener, service: Service, stop: oneshot::Receiver<()>) {
    crate::otlp_target::serve_otlp_grpc(listener, service, MAX_REQUEST_BYTES, stop, "the rebatcher's OTLP/gRPC server")
        .await;
}

impl Service {
    /// Counts an incoming request of `signal` with `items` items, lets
    /// `buffer` change and buffer it (given its number) and cut the full
    /// batches, and queues them. Once the upstream has failed, every
    /// request is refused: a pipeline that cannot deliver says so rather
    /// than lose what it takes.
    async fn accept(
        &self,
        signal: Signal,
        items: u64,
        buffer: impl FnOnce(&mut State, u64) -> Vec<Outgoing>,
    ) -> Result<(), tonic::Status> {
        let batches = {
            let mut state = self.shared.lock();
            if let Some(failure) = &state.failure {
                return Err(tonic::Status::internal(failure.to_string()));
            }
            state.counts.requests_received.add(signal, 1);
            state.counts.items_received.add(signal, items);
            state.requests += 1;
            let number = state.requests;
            buffer(&mut state, number)
        };
        for batch in batches {
            self.queue
                .send(batch)
                .await
                .map_err(|_| tonic::Status::unavailable(RebatcherError::Stopped.to_string()))?;
        }
        Ok(())
    }
}

#[tonic::async_trait]
impl TraceService for Service {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut request = request.into_inner();
        let items = ExportRequest::Traces(request.clone()).item_count();
        self.accept(Signal::Traces, items, |state, number| {
            self.changes.apply_to_traces(&mut request, &mut state.counts, &mut state.traces_seen);
            state.traces.push(number, request);
            state.traces.cut(self.batch_items, false).into_iter().map(Outgoing::Traces).collect()
        })
        .await?;
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

#[tonic::async_trait]
impl MetricsService for Service {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        let mut request = request.into_inner();
        let items = ExportRequest::Metrics(request.clone()).item_count();
        self.accept(Signal::Metrics, items, |state, number| {
            self.changes.apply_to_metrics(&mut request, &mut state.counts);
            state.metrics.push(number, request);
            state.metrics.cut(self.batch_items, false).into_iter().map(Outgoing::Metrics).collect()
        })
        .await?;
        Ok(tonic::Response::new(ExportMetricsServiceResponse { partial_success: None }))
    }
}

#[tonic::async_trait]
impl LogsService for Service {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        let mut request = request.into_inner();
        let items = ExportRequest::Logs(request.clone()).item_count();
        self.accept(Signal::Logs, items, |state, number| {
            self.changes.apply_to_logs(&mut request, &mut state.counts);
            state.logs.push(number, request);
            state.logs.cut(self.batch_items, false).into_iter().map(Outgoing::Logs).collect()
        })
        .await?;
        Ok(tonic::Response::new(ExportLogsServiceResponse { partial_success: None }))
    }
}
