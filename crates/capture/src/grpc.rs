//! The OTLP/gRPC receiver: the `Export` method of the trace, metrics and
//! logs services, gzip accepted.
//!
//! The request message is taken as raw bytes, checked against the OTLP
//! schema as the full decoder would and counted by walking its wire format
//! ([`tape_otlp::wire::validate_request`]), and kept as it is, so the
//! session holds exactly the bytes the client sent. Status codes follow the
//! OTLP specification: `INVALID_ARGUMENT` for a request that the full
//! decoder would refuse, `RESOURCE_EXHAUSTED` with a
//! `google.rpc.RetryInfo` when the recorder is behind (retryable),
//! `UNAVAILABLE` when the capture is stopping (retryable). Oversized and
//! undecompressable messages are refused by tonic before the handler runs
//! (`OUT_OF_RANGE`, `RESOURCE_EXHAUSTED` without `RetryInfo`); they are
//! counted as rejected all the same.
//!
//! The message is read within the intake's limits: its bytes are taken
//! from the gRPC receiver's budget as they arrive (`UNAVAILABLE` when it is
//! full, or, for a request whose first bytes arrive, when the budget has no
//! room for the message it announces), it must arrive within the read
//! timeout (`DEADLINE_EXCEEDED`), and a `Content-Length`, when the client sends one, over the limit is refused
//! before the body is read (`RESOURCE_EXHAUSTED` without `RetryInfo`).

use std::convert::Infallible;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes};
use futures::future::BoxFuture;
use http_body::Frame;
use tape_otlp::Signal;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EnabledCompressionEncodings, EncodeBuf, Encoder};
use tonic::{Code, Status};

use crate::intake::{Held, Intake};
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

/// What the receiver knows of one request while tonic decodes it: whether
/// the handler ran (refusals made by tonic before it are counted as
/// rejected), and the bytes of the receive budget its body holds (given
/// back when the handler starts: the message is decoded by then).
#[derive(Default)]
struct Reading {
    handled: AtomicBool,
    held: Mutex<Option<Held>>,
}

impl Reading {
    fn release(&self) {
        if let Some(mut held) = self.held.lock().unwrap_or_else(PoisonError::into_inner).take() {
            held.release();
        }
    }
}

/// Why the receiver stopped reading a body.
enum BodyError {
    /// The receive budget could not hold it.
    Overloaded,
    /// It did not arrive in time.
    TimedOut,
    /// The stream failed (the client reset it, the connection broke).
    Failed(Status),
}

/// Reads a request body by `deadline`, taking its bytes from `held`'s
/// budget as they arrive, and stops once it has more than `limit` bytes
/// (tonic then refuses the message by its length prefix). A request is
/// taken on only if the budget has room for its message (as its length
/// prefix announces, or `limit` until it is known) when its first bytes
/// come, so that the requests being read can finish rather than all share
/// a budget too small for them; after that it is refused only when the
/// budget is full.
async fn read_body(
    mut body: tonic::body::Body,
    limit: usize,
    held: &mut Held,
    deadline: tokio::time::Instant,
) -> Result<Vec<Bytes>, BodyError> {
    use http_body_util::BodyExt;
    let mut chunks = Vec::new();
    let mut length = 0usize;
    while length <= limit {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => return Err(BodyError::TimedOut),
            Ok(None) => break,
            Ok(Some(Err(status))) => return Err(BodyError::Failed(status)),
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if length == 0 && !data.is_empty() {
            // The 5-byte prefix: a compression flag, then the length.
            let announced = data.get(1..5).map_or(limit, |prefix| {
                let announced = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
                usize::try_from(announced).map_or(usize::MAX, |announced| announced.saturating_add(5))
            });
            if announced > limit {
                // Over the limit: tonic refuses it by its prefix.
                chunks.push(data);
                break;
            }
            if !held.admit(announced) {
                return Err(BodyError::Overloaded);
            }
        }
        if !held.take(data.len()) {
            return Err(BodyError::Overloaded);
        }
        length += data.len();
        chunks.push(data);
    }
    Ok(chunks)
}

impl<S: OtlpService> tower::Service<http::Request<tonic::body::Body>> for ExportService<S> {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let intake = self.intake.clone();
        Box::pin(async move {
            if request.uri().path().rsplit('/').next() != Some("Export") {
                return Ok(Status::unimplemented("OTLP services have one method, Export").into_http());
            }
            let deadline = tokio::time::Instant::now() + intake.read_timeout();
            let max = intake.max_request_bytes();
            // The message and its 5-byte prefix: a declared length over the
            // limit is refused before a byte of the body is read.
            if let Some(length) = content_length(request.headers())
                && length > max as u64 + 5
            {
                intake.stats().signal(S::SIGNAL).rejected();
                return Ok(Status::resource_exhausted(format!(
                    "Content-Length {length} is more than the limit of {max} bytes; send smaller requests"
                ))
                .into_http());
            }
            // The body is read here, within the budget and the deadline, and
            // handed to tonic whole: tonic would set aside the length its
            // prefix announces as soon as it arrives.
            let (parts, body) = request.into_parts();
            let mut held = intake.grpc_budget().hold();
            let chunks = match read_body(body, max.saturating_add(5), &mut held, deadline).await {
                Ok(chunks) => chunks,
                Err(error) => {
                    let counters = intake.stats();
                    let refusal = match error {
                        BodyError::Overloaded => {
                            counters.signal(S::SIGNAL).throttled();
                            return Ok(Status::unavailable(format!(
                                "the capture is reading {} bytes of request bodies already; retry later",
                                intake.grpc_budget().total()
                            ))
                            .into_http());
                        }
                        BodyError::TimedOut => Status::deadline_exceeded(format!(
                            "the request message did not arrive within {:?}; send it again",
                            intake.read_timeout()
                        )),
                        BodyError::Failed(failure) => failure,
                    };
                    counters.signal(S::SIGNAL).rejected();
                    return Ok(refusal.into_http());
                }
            };
            let frames = futures::stream::iter(chunks.into_iter().map(|chunk| Ok::<_, Infallible>(Frame::data(chunk))));
            let body = tonic::body::Body::new(http_body_util::StreamBody::new(frames));
            let mut request = http::Request::from_parts(parts, body);
            let reading = Arc::new(Reading { held: Mutex::new(Some(held)), ..Reading::default() });
            request.extensions_mut().insert(Arc::clone(&reading));
            let mut accept = EnabledCompressionEncodings::default();
            accept.enable(CompressionEncoding::Gzip);
            let mut grpc = tonic::server::Grpc::new(RawCodec)
                .apply_compression_config(accept, EnabledCompressionEncodings::default())
                .apply_max_message_size_config(Some(max), None);
            let handler_intake = intake.clone();
            let method = tower::service_fn(move |request: tonic::Request<Bytes>| {
                let intake = handler_intake.clone();
                async move {
                    if let Some(reading) = request.extensions().get::<Arc<Reading>>() {
                        reading.handled.store(true, Ordering::Relaxed);
                        // The message is read and decoded; the recorder's
                        // queue budget counts what it keeps.
                        reading.release();
                    }
                    export(&intake, S::SIGNAL, request.into_inner()).await.map(tonic::Response::new)
                }
            });
            let response = grpc.unary(method, request).await;
            reading.release();
            let refused = response.headers().get(Status::GRPC_STATUS).is_some_and(|status| status.as_bytes() != b"0");
            if refused && !reading.handled.load(Ordering::Relaxed) {
                intake.stats().signal(S::SIGNAL).rejected();
            }
            Ok(response)
        })
    }
}

/// The request's `Content-Length`, if it has a valid one.
fn content_length(headers: &http::HeaderMap) -> Option<u64> {
    headers.get(http::header::CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
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
        Err(Refusal::StoreFailing) => {
            Err(Status::unavailable("the session store cannot be written (full disk?); send again later"))
        }
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
