//! OTLP/HTTP request bodies and responses, as the OTLP specification says:
//! `application/x-protobuf` or `application/json`, optionally gzip-encoded;
//! 400 for a body that is not a valid request, 413 for one that is too
//! large, 415 for a content type or encoding that is not supported; and
//! responses (`Export*ServiceResponse`, or a `google.rpc.Status` for an
//! error) in the request's encoding.

use std::io::Read;

use bytes::Bytes;
use tape_otlp::rpc::Status as RpcStatus;
use tape_otlp::{Encoding, ExportRequest, Signal};

/// The default largest request accepted, after decompression: 16 MiB.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;

/// `google.rpc.Code` values used in error responses.
const CODE_INVALID_ARGUMENT: i32 = 3;
const CODE_RESOURCE_EXHAUSTED: i32 = 8;
const CODE_UNAVAILABLE: i32 = 14;

/// A request body that was accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedBody {
    /// The request in protobuf: the body itself (decompressed) when it was
    /// protobuf, the request encoded when it was JSON.
    pub payload: Bytes,
    /// Items (spans, data points, log records) in the request.
    pub items: u64,
    /// How it was encoded; the response uses the same.
    pub encoding: Encoding,
    /// Bytes of the body after decompression.
    pub decoded_bytes: usize,
}

/// Why a body was refused: the HTTP status, the `google.rpc.Code` and the
/// message of the error response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {message}")]
pub struct Rejection {
    /// HTTP status code.
    pub status: u16,
    /// `google.rpc.Code` of the `Status` body.
    pub code: i32,
    /// What was wrong, for the client.
    pub message: String,
    /// Encoding of the response body: the request's when it is known.
    pub encoding: Encoding,
}

impl Rejection {
    fn bad_request(message: String, encoding: Encoding) -> Self {
        Rejection { status: 400, code: CODE_INVALID_ARGUMENT, message, encoding }
    }

    /// Refused because the recorder is behind: 429, retryable after `Retry-After`.
    pub fn throttled(message: String, encoding: Encoding) -> Self {
        Rejection { status: 429, code: CODE_RESOURCE_EXHAUSTED, message, encoding }
    }

    /// Refused because the capture is not recording: 503, retryable.
    pub fn unavailable(message: String, encoding: Encoding) -> Self {
        Rejection { status: 503, code: CODE_UNAVAILABLE, message, encoding }
    }

    /// Whether the client may send the request again (429, 503).
    pub fn is_retryable(&self) -> bool {
        matches!(self.status, 429 | 503)
    }

    fn too_large(message: String, encoding: Encoding) -> Self {
        Rejection { status: 413, code: CODE_RESOURCE_EXHAUSTED, message, encoding }
    }

    fn unsupported(message: String, encoding: Encoding) -> Self {
        Rejection { status: 415, code: CODE_INVALID_ARGUMENT, message, encoding }
    }
}

/// Decodes the body of a `POST /v1/<signal>` with the given `Content-Type`
/// and `Content-Encoding` headers. `max_bytes` bounds the body after
/// decompression and is enforced while decompressing, so a small body that
/// inflates without end is refused after `max_bytes` bytes. An empty body
/// (no bytes at all, before or after decompression) is refused: it carries
/// no telemetry and is most often a client bug.
pub fn decode_body(
    signal: Signal,
    content_type: Option<&str>,
    content_encoding: Option<&str>,
    body: Bytes,
    max_bytes: usize,
) -> Result<ReceivedBody, Rejection> {
    let encoding = media_type(content_type)?;
    let gzip = match content_encoding.map(|value| value.trim().to_ascii_lowercase()).as_deref() {
        None | Some("" | "identity") => false,
        Some("gzip" | "x-gzip") => true,
        Some(other) => {
            return Err(Rejection::unsupported(
                format!("Content-Encoding {other:?} is not supported; send gzip or no encoding"),
                encoding,
            ));
        }
    };
    let limit = |what: &str| format!("the request body {what} more than the limit of {max_bytes} bytes");
    if body.len() > max_bytes {
        return Err(Rejection::too_large(limit("has"), encoding));
    }
    let bytes = if gzip {
        let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(max_bytes));
        let read = flate2::read::MultiGzDecoder::new(&body[..]).take(max_bytes as u64 + 1).read_to_end(&mut out);
        if let Err(error) = read {
            return Err(Rejection::bad_request(format!("the gzip body is not valid: {error}"), encoding));
        }
        if out.len() > max_bytes {
            return Err(Rejection::too_large(limit("decompresses to"), encoding));
        }
        Bytes::from(out)
    } else {
        body
    };
    if bytes.is_empty() {
        return Err(Rejection::bad_request(
            format!("the request body is empty; send an OTLP {signal} export request"),
            encoding,
        ));
    }
    let decoded_bytes = bytes.len();
    // Protobuf is checked and counted on the wire, as the full decoder would
    // read it, and kept as it came; JSON is decoded and stored as its
    // protobuf, which gets the same check (the decoder's nesting limit is
    // not JSON's).
    let received = match encoding {
        Encoding::Protobuf => tape_otlp::wire::validate_request(signal, &bytes)
            .map(|items| (bytes, items))
            .map_err(|error| error.to_string()),
        Encoding::Json => {
            ExportRequest::decode(signal, encoding, &bytes).map_err(|error| error.to_string()).and_then(|request| {
                let payload = Bytes::from(request.encode_protobuf());
                tape_otlp::wire::validate_request(signal, &payload)
                    .map(|items| (payload, items))
                    .map_err(|error| format!("as protobuf, {error}"))
            })
        }
    };
    match received {
        Ok((payload, items)) => Ok(ReceivedBody { payload, items, encoding, decoded_bytes }),
        Err(error) => Err(Rejection::bad_request(
            format!("the body is not a valid OTLP {} {signal} export request: {error}", encoding_name(encoding)),
            encoding,
        )),
    }
}

/// The encoding a `Content-Type` names; parameters such as `charset` are
/// ignored.
fn media_type(content_type: Option<&str>) -> Result<Encoding, Rejection> {
    let Some(value) = content_type else {
        return Err(Rejection::unsupported(
            "the request has no Content-Type; send application/x-protobuf or application/json".to_owned(),
            Encoding::Protobuf,
        ));
    };
    let essence = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    match essence.as_str() {
        "application/x-protobuf" | "application/protobuf" => Ok(Encoding::Protobuf),
        "application/json" => Ok(Encoding::Json),
        _ => Err(Rejection::unsupported(
            format!("Content-Type {value:?} is not supported; send application/x-protobuf or application/json"),
            Encoding::Protobuf,
        )),
    }
}

fn encoding_name(encoding: Encoding) -> &'static str {
    match encoding {
        Encoding::Protobuf => "protobuf",
        Encoding::Json => "JSON",
    }
}

/// The `Content-Type` of a response in `encoding`.
fn content_type(encoding: Encoding) -> &'static str {
    match encoding {
        Encoding::Protobuf => "application/x-protobuf",
        Encoding::Json => "application/json",
    }
}

/// The body and `Content-Type` of a successful export response: an empty
/// `Export*ServiceResponse` (no partial success).
pub fn success_response(encoding: Encoding) -> (&'static str, Vec<u8>) {
    let body = match encoding {
        // Every field of an empty response is at its default: no bytes.
        Encoding::Protobuf => Vec::new(),
        Encoding::Json => b"{}".to_vec(),
    };
    (content_type(encoding), body)
}

/// The body and `Content-Type` of the error response for `rejection`: a
/// `google.rpc.Status` in the request's encoding.
pub fn error_response(rejection: &Rejection) -> (&'static str, Vec<u8>) {
    let body = match rejection.encoding {
        Encoding::Protobuf => {
            let status = RpcStatus { code: rejection.code, message: rejection.message.clone(), details: Vec::new() };
            prost::Message::encode_to_vec(&status)
        }
        Encoding::Json => {
            serde_json::json!({ "code": rejection.code, "message": rejection.message }).to_string().into_bytes()
        }
    };
    (content_type(rejection.encoding), body)
}
