//! The OTLP/HTTP receiver: `POST /v1/traces`, `/v1/metrics` and `/v1/logs`
//! in protobuf or JSON, optionally gzip-encoded, answered as the OTLP
//! specification says (see [`decode_body`] for the body rules). A throttled
//! request gets 429 and an unavailable capture 503, both with
//! `Retry-After`; an unknown path gets 404 and a wrong method 405.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use tape_otlp::{Encoding, Signal};

use crate::grpc::RETRY_DELAY;
use crate::http_body::{Rejection, decode_body, error_response, success_response};
use crate::intake::Intake;
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
    let Some(_slot) = intake.begin_request() else {
        return rejected(&Rejection::unavailable(
            "too many requests in flight; retry after the delay in Retry-After".to_owned(),
            encoding_of(headers),
        ));
    };
    let text = |name| headers.get(name).and_then(|value: &HeaderValue| value.to_str().ok());
    let max = intake.max_request_bytes();
    let received = match read_body(body, max).await {
        Ok(bytes) => decode_body(signal, text(header::CONTENT_TYPE), text(header::CONTENT_ENCODING), bytes, max),
        Err(message) => Err(Rejection { status: 413, code: 8, message, encoding: encoding_of(headers) }),
    };
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

/// Reads the body, refusing it as soon as it passes `max` bytes.
async fn read_body(body: Body, max: usize) -> Result<Bytes, String> {
    axum::body::to_bytes(body, max).await.map_err(|error| {
        format!("the request body is more than the limit of {max} bytes, or could not be read: {error}")
    })
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
