//! The OTLP/gRPC receiver: the `Export` method of the trace, metrics and
//! logs services, gzip accepted.
//!
//! The request message is taken as raw bytes, checked and counted by
//! walking its wire format ([`tape_otlp::wire::count_items`]), and kept as
//! it is, so the session holds exactly the bytes the client sent. Status codes follow the OTLP specification: `INVALID_ARGUMENT` for
//! a request that does not decode, `RESOURCE_EXHAUSTED` with a
//! `google.rpc.RetryInfo` when the recorder is behind (retryable),
//! `UNAVAILABLE` when the capture is stopping (retryable). Oversized and
//! undecompressable messages are refused by tonic before the handler runs
//! (`OUT_OF_RANGE`, `RESOURCE_EXHAUSTED` without `RetryInfo`); they are
//! counted as rejected all the same.

use std::convert::Infallible;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes};
use futures::future::BoxFuture;
use tape_otlp::Signal;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EnabledCompressionEncodings, EncodeBuf, Encoder};
use tonic::{Code, Status};

use crate::intake::Intake;
use crate::recorder::Refusal;

/// How long a throttled client is told to wait before it retries.
pub const RETRY_DELAY: Duration = Duration::from_secs(1);

/// Passes message bytes through untouched in both directions: the
/// receivers' codec, and a client's that sends any bytes as a request.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

/// [`RawCodec`]'s encoder.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawEncoder;

/// [`RawCodec`]'s decoder.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawDecoder;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

impl Encoder for RawEncoder {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// One OTLP service, named for tonic's router.
pub trait OtlpService: Send + Sync + 'static {
    /// The fully qualified gRPC service name.
    const NAME: &'static str;
    /// Its signal.
    const SIGNAL: Signal;
}

/// `opentelemetry.proto.collector.trace.v1.TraceService`.
#[derive(Debug, Clone, Copy)]
pub struct TraceService;
/// `opentelemetry.proto.collector.metrics.v1.MetricsService`.
#[derive(Debug, Clone, Copy)]
pub struct MetricsService;
/// `opentelemetry.proto.collector.logs.v1.LogsService`.
#[derive(Debug, Clone, Copy)]
pub struct LogsService;

impl OtlpService for TraceService {
    const NAME: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
    const SIGNAL: Signal = Signal::Traces;
}

impl OtlpService for MetricsService {
    const NAME: &'static str = "opentelemetry.proto.collector.metrics.v1.MetricsService";
    const SIGNAL: Signal = Signal::Metrics;
}

impl OtlpService for LogsService {
    const NAME: &'static str = "opentelemetry.proto.collector.logs.v1.LogsService";
    const SIGNAL: Signal = Signal::Logs;
}

/// The tower service of one OTLP gRPC service.
pub struct ExportService<S> {
    intake: Intake,
    service: PhantomData<fn() -> S>,
}

impl<S> Clone for ExportService<S> {
    fn clone(&self) -> Self {
        ExportService { intake: self.intake.clone(), service: PhantomData }
    }
}

impl<S: OtlpService> tonic::server::NamedService for ExportService<S> {
    const NAME: &'static str = S::NAME;
}

/// Set by the handler, so that refusals made by tonic before the handler
/// ran can be counted.
#[derive(Clone, Default)]
struct Handled(Arc<AtomicBool>);

impl<S: OtlpService> tower::Service<http::Request<tonic::body::Body>> for ExportService<S> {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: http::Request<tonic::body::Body>) -> Self::Future {
        let intake = self.intake.clone();
        Box::pin(async move {
            if request.uri().path().rsplit('/').next() != Some("Export") {
                return Ok(Status::unimplemented("OTLP services have one method, Export").into_http());
            }
            let Some(_slot) = intake.begin_request() else {
                return Ok(Status::unavailable("too many requests in flight; retry later").into_http());
            };
            let handled = Handled::default();
            request.extensions_mut().insert(handled.clone());
            let mut accept = EnabledCompressionEncodings::default();
            accept.enable(CompressionEncoding::Gzip);
            let mut grpc = tonic::server::Grpc::new(RawCodec)
                .apply_compression_config(accept, EnabledCompressionEncodings::default())
                .apply_max_message_size_config(Some(intake.max_request_bytes()), None);
            let handler_intake = intake.clone();
            let method = tower::service_fn(move |request: tonic::Request<Bytes>| {
                let intake = handler_intake.clone();
                async move {
                    if let Some(handled) = request.extensions().get::<Handled>() {
                        handled.0.store(true, Ordering::Relaxed);
                    }
                    export(&intake, S::SIGNAL, request.into_inner()).await.map(tonic::Response::new)
                }
            });
            let response = grpc.unary(method, request).await;
            let refused = response.headers().get(Status::GRPC_STATUS).is_some_and(|status| status.as_bytes() != b"0");
            if refused && !handled.0.load(Ordering::Relaxed) {
                intake.stats().signal(S::SIGNAL).rejected();
            }
            Ok(response)
        })
    }
}

/// Checks, counts and hands on one request.
async fn export(intake: &Intake, signal: Signal, payload: Bytes) -> Result<Bytes, Status> {
    if payload.is_empty() {
        intake.stats().signal(signal).rejected();
        return Err(Status::invalid_argument(format!(
            "the request is empty; send an OTLP {signal} export request with data"
        )));
    }
    let items = match tape_otlp::wire::validate_request(signal, &payload) {
        Ok(items) => items,
        Err(error) => {
            intake.stats().signal(signal).rejected();
            return Err(Status::invalid_argument(format!(
                "the request is not a valid OTLP protobuf {signal} export request: {error}"
            )));
        }
    };
    match intake.accept(signal, items, payload).await {
        // Every field of an empty Export*ServiceResponse is at its default.
        Ok(()) => Ok(Bytes::new()),
        Err(Refusal::Busy) => Err(throttled()),
        Err(Refusal::Stopped) => {
            Err(Status::unavailable("the capture is not recording (stopping or stopped); send again later"))
        }
    }
}

/// `RESOURCE_EXHAUSTED` with a `RetryInfo`, which the OTLP specification
/// makes retryable: the recorder is behind and will catch up.
fn throttled() -> Status {
    let message = "the recorder is behind; retry after the delay in RetryInfo";
    let details = tape_otlp::rpc::status_with_retry_delay(Code::ResourceExhausted as i32, message, RETRY_DELAY);
    Status::with_details(Code::ResourceExhausted, message, Bytes::from(details))
}

/// Serves OTLP/gRPC on `listener` until `shutdown` completes, then lets
/// requests in flight finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    intake: Intake,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    tonic::transport::Server::builder()
        .add_service(ExportService::<TraceService> { intake: intake.clone(), service: PhantomData })
        .add_service(ExportService::<MetricsService> { intake: intake.clone(), service: PhantomData })
        .add_service(ExportService::<LogsService> { intake, service: PhantomData })
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
}
