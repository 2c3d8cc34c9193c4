//! OTLP/HTTP bodies: what is accepted, and the status of every refusal.

use std::io::Write;

use bytes::Bytes;
use prost::Message;
use tape_capture::{DEFAULT_MAX_REQUEST_BYTES, Rejection, decode_body, error_response, success_response};
use tape_otlp::rpc::Status as RpcStatus;
use tape_otlp::{Encoding, ExportRequest, Signal, sample};

const PROTOBUF: Option<&str> = Some("application/x-protobuf");
const JSON: Option<&str> = Some("application/json");

fn traces() -> ExportRequest {
    ExportRequest::Traces(sample::traces("checkout", 8, 0))
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn refused(result: Result<tape_capture::ReceivedBody, Rejection>) -> Rejection {
    result.expect_err("the body must be refused")
}

/// The rejection of `body`, under the default size limit.
fn refused_body(signal: Signal, content_type: Option<&str>, encoding: Option<&str>, body: Bytes) -> Rejection {
    refused(decode_body(signal, content_type, encoding, body, DEFAULT_MAX_REQUEST_BYTES))
}

#[test]
fn protobuf_and_json_bodies_decode_to_the_request_sent() {
    let request = traces();
    let protobuf = request.encode(Encoding::Protobuf).unwrap();
    let received =
        decode_body(Signal::Traces, PROTOBUF, None, Bytes::copy_from_slice(&protobuf), DEFAULT_MAX_REQUEST_BYTES)
            .unwrap();
    assert_eq!(
        (received.payload.to_vec(), received.items, received.encoding, received.decoded_bytes),
        (protobuf.clone(), request.item_count(), Encoding::Protobuf, protobuf.len())
    );

    let json = request.encode(Encoding::Json).unwrap();
    let received = decode_body(
        Signal::Traces,
        Some("application/json; charset=utf-8"),
        None,
        Bytes::copy_from_slice(&json),
        DEFAULT_MAX_REQUEST_BYTES,
    )
    .unwrap();
    assert_eq!((received.payload.to_vec(), received.encoding), (protobuf, Encoding::Json), "JSON is kept as protobuf");
}

#[test]
fn gzip_bodies_are_decompressed() {
    let request = ExportRequest::Logs(sample::logs("checkout", 12, 0));
    let json = request.encode(Encoding::Json).unwrap();
    let received =
        decode_body(Signal::Logs, JSON, Some("gzip"), Bytes::copy_from_slice(&gzip(&json)), DEFAULT_MAX_REQUEST_BYTES)
            .unwrap();
    assert_eq!(received.payload.to_vec(), request.encode_protobuf());
    assert_eq!(received.items, 12);
    assert_eq!(received.decoded_bytes, json.len());
}

#[test]
fn a_compression_bomb_is_refused_with_413_at_the_limit() {
    // 16 MiB of zeros compress to about 70 KiB; the limit is 1 MiB.
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let zeros = vec![0u8; 1024 * 1024];
    for _ in 0..16 {
        encoder.write_all(&zeros).unwrap();
    }
    let bomb = encoder.finish().unwrap();
    assert!(bomb.len() < 1024 * 1024);
    let rejection =
        refused(decode_body(Signal::Traces, PROTOBUF, Some("gzip"), Bytes::copy_from_slice(&bomb), 1024 * 1024));
    assert_eq!((rejection.status, rejection.code), (413, 8));
    assert!(rejection.message.contains("decompresses to more than the limit of 1048576 bytes"), "{rejection}");
}

#[test]
fn a_body_over_the_limit_is_refused_with_413() {
    let protobuf = traces().encode(Encoding::Protobuf).unwrap();
    let rejection =
        refused(decode_body(Signal::Traces, PROTOBUF, None, Bytes::copy_from_slice(&protobuf), protobuf.len() - 1));
    assert_eq!(rejection.status, 413);
    // Exactly at the limit is fine.
    assert!(decode_body(Signal::Traces, PROTOBUF, None, Bytes::copy_from_slice(&protobuf), protobuf.len()).is_ok());
}

#[test]
fn unsupported_content_types_and_encodings_are_refused_with_415() {
    let protobuf = traces().encode(Encoding::Protobuf).unwrap();
    for content_type in [None, Some("text/plain"), Some("application/grpc"), Some("")] {
        let rejection = refused_body(Signal::Traces, content_type, None, Bytes::copy_from_slice(&protobuf));
        assert_eq!(rejection.status, 415, "{content_type:?}");
        assert!(rejection.message.contains("application/x-protobuf or application/json"), "{rejection}");
    }
    let rejection = refused_body(Signal::Traces, PROTOBUF, Some("br"), Bytes::copy_from_slice(&protobuf));
    assert_eq!(rejection.status, 415);
    assert!(rejection.message.contains("\"br\""), "{rejection}");
}

#[test]
fn malformed_bodies_are_refused_with_400_naming_the_problem() {
    let garbage = [0xff, 0xff, 0xff, 0xff, 0x0f];
    let rejection = refused_body(Signal::Metrics, PROTOBUF, None, Bytes::copy_from_slice(&garbage));
    assert_eq!((rejection.status, rejection.code, rejection.encoding), (400, 3, Encoding::Protobuf));
    assert!(rejection.message.contains("not a valid OTLP protobuf metrics export request"), "{rejection}");

    let rejection = refused_body(Signal::Logs, JSON, None, Bytes::from_static(b"{\"resourceLogs\": ["));
    assert_eq!((rejection.status, rejection.encoding), (400, Encoding::Json));
    assert!(rejection.message.contains("JSON logs"), "{rejection}");

    let rejection = refused_body(Signal::Logs, JSON, Some("gzip"), Bytes::from_static(b"not gzip"));
    assert_eq!(rejection.status, 400);
    assert!(rejection.message.contains("gzip"), "{rejection}");
}

#[test]
fn responses_are_encoded_like_the_request() {
    assert_eq!(success_response(Encoding::Protobuf), ("application/x-protobuf", Vec::new()));
    assert_eq!(success_response(Encoding::Json), ("application/json", b"{}".to_vec()));

    let rejection = refused_body(Signal::Traces, PROTOBUF, None, Bytes::copy_from_slice(&[0xff]));
    let (content_type, body) = error_response(&rejection);
    assert_eq!(content_type, "application/x-protobuf");
    let status = RpcStatus::decode(body.as_slice()).unwrap();
    assert_eq!((status.code, status.message), (3, rejection.message.clone()));

    let rejection = refused_body(Signal::Traces, JSON, None, Bytes::from_static(b"[]"));
    let (content_type, body) = error_response(&rejection);
    assert_eq!(content_type, "application/json");
    let status: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status["code"], 3);
    assert_eq!(status["message"], rejection.message);
}
