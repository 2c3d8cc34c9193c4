//! The OTLP/HTTP receiver: `POST /v1/traces`, `/v1/metrics` and `/v1/logs`
//! in protobuf or JSON, optionally gzip-encoded, answered as the OTLP
//! specification says (see [`decode_body`] for the body rules). A throttled
//! request gets 429 and an unavailable capture 503, both with
//! `Retry-After`; an unknown path gets 404 and a wrong method 405.
//!
//! Bodies are read within the intake's limits: a `Content-Length` over the
//! request size limit gets 413 before the body is kept (a client that
//! waits for `100 Continue` never sends it; from one that sends on, up to
//! four times the limit is read and dropped, so that it reads the 413 and
//! not a reset connection; past that the connection is closed); the bytes of a body
//! are taken from the receiver's budget as they arrive (503 with
//! `Retry-After` when it is full, or, for a new request, when it has no room
//! for the body its `Content-Length` announces); a body that takes longer than the read
//! timeout gets 408 and the connection is closed.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use tape_otlp::{Encoding, Signal};

use crate::grpc::RETRY_DELAY;
use crate::http_body::{Rejection, decode_body, error_response, success_response};
use crate::intake::{Held, Intake};
use crate::recorder::Refusal;

/// The router of the OTLP/HTTP receiver.
pub fn router(intake: Intake) -> Router {
    let intake = Arc::new(intake);
    let mut router = Router::new();
    for signal in Signal::ALL {
        router = router.route(
            signal.http_path(),
            post(move |State(intake): State<Arc<Intake>>, headers: HeaderMap, body: Body| async move {
                export(&intake, signal, &headers, body).await
            })
            .fallback(method_not_allowed),
        );
    }
    router.fallback(not_found).with_state(intake)
}

async fn not_found(State(intake): State<Arc<Intake>>, uri: axum::http::Uri) -> Response {
    intake.stats().unrouted();
    let message = format!("no OTLP endpoint at {}; use /v1/traces, /v1/metrics or /v1/logs", uri.path());
    plain_error(StatusCode::NOT_FOUND, CODE_NOT_FOUND, message)
}

async fn method_not_allowed(State(intake): State<Arc<Intake>>, method: axum::http::Method) -> Response {
    intake.stats().unrouted();
    let mut response = plain_error(
        StatusCode::METHOD_NOT_ALLOWED,
        CODE_UNIMPLEMENTED,
        format!("{method} is not allowed; OTLP/HTTP export requests are POST"),
    );
    response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
    response
}

/// `google.rpc.Code` of an unknown path.
const CODE_NOT_FOUND: i32 = 5;
/// `google.rpc.Code` of a method other than POST.
const CODE_UNIMPLEMENTED: i32 = 12;

/// An error before the request's encoding is known: answered in JSON.
fn plain_error(status: StatusCode, code: i32, message: String) -> Response {
    let rejection = Rejection { status: status.as_u16(), code, message, encoding: Encoding::Json };
    let (content_type, body) = error_response(&rejection);
    (status, [(header::CONTENT_TYPE, content_type)], body).into_response()
}

async fn export(intake: &Intake, signal: Signal, headers: &HeaderMap, body: Body) -> Response {
    let deadline = tokio::time::Instant::now() + intake.read_timeout();
    let text = |name| headers.get(name).and_then(|value: &HeaderValue| value.to_str().ok());
    let max = intake.max_request_bytes();
    let encoding = encoding_of(headers);
    // Refused before a byte of the body is read (and before any
    // `100 Continue`): the client is not made to send what is refused.
    if let Some(length) = content_length(headers)
        && length > max as u64
    {
        intake.stats().signal(signal).rejected();
        let response = rejected(&Rejection {
            status: 413,
            code: CODE_RESOURCE_EXHAUSTED,
            message: format!("Content-Length {length} is more than the limit of {max} bytes; send smaller requests"),
            encoding,
        });
        // A client that waits for `100 Continue` reads the answer at once;
        // one that sends on is drained, within bounds, so that it reads the
        // answer rather than a reset connection.
        let drained = !expects_continue(headers)
            && usize::try_from(length).is_ok_and(|length| length <= drain_limit(max))
            && discard_body(body, drain_limit(max), deadline).await;
        return closing_unless(drained, response);
    }
    // Taken on only if the budget has room for the body now, so that the
    // bodies being read can finish (its bytes are taken as they arrive).
    let held = intake.http_budget().hold();
    let announced = content_length(headers).map_or(max, |length| usize::try_from(length).unwrap_or(max));
    if !held.admit(announced) {
        intake.stats().signal(signal).throttled();
        let drained = discard_body(body, max, deadline).await;
        return closing_unless(drained, overloaded(intake, encoding));
    }
    let (bytes, mut held) = match read_body(body, max, held, deadline).await {
        Ok(read) => read,
        Err(error) => {
            let stats = intake.stats();
            let rejection = match error {
                BodyError::TooLarge(rest) => {
                    stats.signal(signal).rejected();
                    let response = rejected(&Rejection {
                        status: 413,
                        code: CODE_RESOURCE_EXHAUSTED,
                        message: format!("the request body is more than the limit of {max} bytes"),
                        encoding,
                    });
                    let drained = discard_body(rest, drain_limit(max), deadline).await;
                    return closing_unless(drained, response);
                }
                BodyError::Overloaded(rest) => {
                    stats.signal(signal).throttled();
                    let drained = discard_body(rest, max, deadline).await;
                    return closing_unless(drained, overloaded(intake, encoding));
                }
                BodyError::TimedOut => Rejection {
                    status: 408,
                    code: CODE_DEADLINE_EXCEEDED,
                    message: format!(
                        "the request body did not arrive within {:?}; send it again",
                        intake.read_timeout()
                    ),
                    encoding,
                },
                BodyError::Failed(error) => Rejection {
                    status: 400,
                    code: CODE_INVALID_ARGUMENT,
                    message: format!("the request body could not be read: {error}"),
                    encoding,
                },
            };
            stats.signal(signal).rejected();
            let mut response = rejected(&rejection);
            if rejection.status == 408 {
                response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            return response;
        }
    };
    let received = decode_body(signal, text(header::CONTENT_TYPE), text(header::CONTENT_ENCODING), bytes, max);
    // Decoded: the body's bytes are the payload's now, or gone; the
    // recorder's queue budget counts what it keeps.
    held.release();
    let received = match received {
        Ok(received) => received,
        Err(rejection) => {
            intake.stats().signal(signal).rejected();
            return rejected(&rejection);
        }
    };
    match intake.accept(signal, received.items, received.payload).await {
        Ok(()) => {
            let (content_type, body) = success_response(received.encoding);
            (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body).into_response()
        }
        Err(Refusal::Busy) => rejected(&Rejection::throttled(
            "the recorder is behind; retry after the delay in Retry-After".to_owned(),
            received.encoding,
        )),
        Err(Refusal::StoreFailing) => rejected(&Rejection::unavailable(
            "the session store cannot be written (full disk?); retry after the delay in Retry-After".to_owned(),
            received.encoding,
        )),
        Err(Refusal::Stopped) => rejected(&Rejection::unavailable(
            "the capture is not recording (stopping or stopped); send again later".to_owned(),
            received.encoding,
        )),
    }
}

/// Reads the rest of a refused body (up to `max` bytes, by `deadline`)
/// without keeping it, so that an HTTP/1.1 client still sending it reads
/// the answer rather than a reset connection, and can reuse the
/// connection. Returns whether the body ended.
async fn discard_body(mut body: Body, max: usize, deadline: tokio::time::Instant) -> bool {
    let mut length = 0usize;
    while length <= max {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => length += frame.data_ref().map_or(0, Bytes::len),
            Ok(None) => return true,
            Ok(Some(Err(_))) | Err(_) => return false,
        }
    }
    false
}

/// How much of a body over the request size limit is read and dropped
/// before the 413, so that the client reads it: four times the limit.
/// Past that the connection is closed unread.
fn drain_limit(max: usize) -> usize {
    max.saturating_mul(4)
}

/// Whether the client waits for `100 Continue` before it sends the body.
fn expects_continue(headers: &HeaderMap) -> bool {
    headers.get(header::EXPECT).is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"100-continue"))
}

/// `response`, with `Connection: close` unless the request's body was read
/// to its end (the connection cannot carry another request otherwise).
fn closing_unless(drained: bool, mut response: Response) -> Response {
    if !drained {
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// The answer to a request the receive budget has no room for.
fn overloaded(intake: &Intake, encoding: Encoding) -> Response {
    let budget = intake.http_budget().total();
    rejected(&Rejection::unavailable(
        format!(
            "the capture is reading {budget} bytes of request bodies already; retry after the delay in Retry-After"
        ),
        encoding,
    ))
}

/// `google.rpc.Code` of a body over the limit.
const CODE_RESOURCE_EXHAUSTED: i32 = 8;
/// `google.rpc.Code` of a body that could not be read.
const CODE_INVALID_ARGUMENT: i32 = 3;
/// `google.rpc.Code` of a body that did not arrive in time.
const CODE_DEADLINE_EXCEEDED: i32 = 4;

/// The request's `Content-Length`, if it has a valid one.
fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}

/// Why a body was not read to its end.
enum BodyError {
    /// It passed the request size limit; the rest of the body.
    TooLarge(Body),
    /// The receiver's budget could not hold it; the rest of the body.
    Overloaded(Body),
    /// It did not arrive by the deadline.
    TimedOut,
    /// The connection failed.
    Failed(String),
}

/// Reads the body by `deadline`, refusing it as soon as it passes `max`
/// bytes or `held`'s budget runs out; the bytes are taken from the budget
/// as they arrive and stay held by the returned [`Held`].
async fn read_body(
    mut body: Body,
    max: usize,
    mut held: Held,
    deadline: tokio::time::Instant,
) -> Result<(Bytes, Held), BodyError> {
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut length = 0usize;
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => return Err(BodyError::TimedOut),
            Ok(None) => break,
            Ok(Some(Err(error))) => return Err(BodyError::Failed(error.to_string())),
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if length.saturating_add(data.len()) > max {
            return Err(BodyError::TooLarge(body));
        }
        if !held.take(data.len()) {
            return Err(BodyError::Overloaded(body));
        }
        length += data.len();
        chunks.push(data);
    }
    let bytes = if chunks.len() == 1 {
        chunks.pop().unwrap_or_default()
    } else {
        let mut joined = BytesMut::with_capacity(length);
        for chunk in chunks {
            joined.extend_from_slice(&chunk);
        }
        joined.freeze()
    };
    Ok((bytes, held))
}

/// The encoding a response to a request with these headers should use.
fn encoding_of(headers: &HeaderMap) -> Encoding {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.trim_start().to_ascii_lowercase().starts_with("application/json"));
    if json { Encoding::Json } else { Encoding::Protobuf }
}

fn rejected(rejection: &Rejection) -> Response {
    let (content_type, body) = error_response(rejection);
    let status = StatusCode::from_u16(rejection.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = (status, [(header::CONTENT_TYPE, content_type)], body).into_response();
    if rejection.is_retryable() {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(RETRY_DELAY.as_secs()));
    }
    response
}

/// Serves OTLP/HTTP on `listener` until `shutdown` completes, then lets
/// requests in flight finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    intake: Intake,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(intake)).with_graceful_shutdown(shutdown).await
}
