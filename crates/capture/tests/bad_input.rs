//! Bad input gets the status code of the OTLP specification and a message,
//! is counted as rejected, and neither stops the receivers nor touches what
//! is already recorded.

mod common;

use std::io::Write as _;

use bytes::Bytes;
use common::{grpc_export, start};
use prost::Message;
use tape_capture::StatsSnapshot;
use tape_otlp::rpc::Status as RpcStatus;
use tape_otlp::{Encoding, ExportRequest, Signal};
use tonic::Code;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn good_traces(n: u64) -> Vec<u8> {
    ExportRequest::Traces(tape_otlp::sample::traces("checkout", 3, n)).encode_protobuf()
}

struct Case {
    name: &'static str,
    method: reqwest::Method,
    path: &'static str,
    content_type: Option<&'static str>,
    content_encoding: Option<&'static str>,
    body: Vec<u8>,
    status: u16,
    message: &'static str,
}

fn http_cases(limit: usize) -> Vec<Case> {
    let case = |name, content_type, content_encoding, body, status, message| Case {
        name,
        method: reqwest::Method::POST,
        path: "/v1/traces",
        content_type,
        content_encoding,
        body,
        status,
        message,
    };
    let protobuf = Some("application/x-protobuf");
    let json = Some("application/json");
    vec![
        case("malformed protobuf", protobuf, None, vec![0x0a, 0xff, 0xff, 0x01], 400, "not a valid OTLP protobuf"),
        case("malformed JSON", json, None, b"{\"resourceSpans\": [".to_vec(), 400, "not a valid OTLP JSON"),
        case(
            "invalid UTF-8 in JSON",
            json,
            None,
            b"{\"resourceSpans\": \"\xff\xfe\"}".to_vec(),
            400,
            "not a valid OTLP JSON",
        ),
        case("wrong content type", Some("text/plain"), None, good_traces(0), 415, "is not supported"),
        case("no content type", None, None, good_traces(0), 415, "no Content-Type"),
        case("unsupported encoding", protobuf, Some("br"), good_traces(0), 415, "Content-Encoding \"br\""),
        case("empty body", protobuf, None, Vec::new(), 400, "body is empty"),
        case("body over the limit", protobuf, None, vec![0x0a; limit + 1], 413, "limit"),
        case("gzip bomb", protobuf, Some("gzip"), gzip(&vec![0u8; limit * 64]), 413, "decompresses to more than"),
        case("broken gzip", protobuf, Some("gzip"), b"\x1f\x8b\x08\x00garbage".to_vec(), 400, "gzip body is not valid"),
        Case {
            name: "unknown path",
            path: "/v1/profiles",
            ..case("", protobuf, None, good_traces(0), 404, "no OTLP endpoint")
        },
        Case {
            name: "wrong method",
            method: reqwest::Method::GET,
            ..case("", protobuf, None, Vec::new(), 405, "is not allowed")
        },
    ]
}

fn status_message(content_type: &str, body: &[u8]) -> String {
    if content_type.starts_with("application/json") {
        let value: serde_json::Value = serde_json::from_slice(body).unwrap();
        value["message"].as_str().unwrap().to_owned()
    } else {
        RpcStatus::decode(body).unwrap().message
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_http_requests_get_their_status_and_leave_recording_intact() {
    let limit = 64 * 1024;
    let running = start(|config| config.max_request_bytes = limit).await;
    let client = reqwest::Client::new();
    let send_good = |n: u64| {
        client
            .post(format!("{}/v1/traces", running.http()))
            .header("content-type", "application/x-protobuf")
            .body(good_traces(n))
            .send()
    };
    assert_eq!(send_good(0).await.unwrap().status(), 200);
    let cases = http_cases(limit);
    for (n, case) in cases.iter().enumerate() {
        let mut request = client.request(case.method.clone(), format!("{}{}", running.http(), case.path));
        if let Some(content_type) = case.content_type {
            request = request.header("content-type", content_type);
        }
        if let Some(encoding) = case.content_encoding {
            request = request.header("content-encoding", encoding);
        }
        let response = request.body(case.body.clone()).send().await.unwrap();
        assert_eq!(response.status().as_u16(), case.status, "{}", case.name);
        let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
        let body = response.bytes().await.unwrap();
        let message = status_message(&content_type, &body);
        assert!(message.contains(case.message), "{}: {message:?} should say {:?}", case.name, case.message);
        // The receiver keeps serving after every bad request.
        assert_eq!(send_good(n as u64 + 1).await.unwrap().status(), 200, "after {}", case.name);
    }
    let (outcome, records) = running.finish().await;
    let good = cases.len() as u64 + 1;
    assert_eq!(records.len() as u64, good, "only the good requests are recorded");
    for (n, (_, record)) in records.iter().enumerate() {
        assert_eq!(record.payload.to_vec(), good_traces(n as u64));
    }
    assert_eq!(outcome.recording.metadata.captured_traces, 3 * good);
    let StatsSnapshot { traces, unrouted, .. } = outcome.stats;
    assert_eq!(traces.rejected, cases.len() as u64 - 2, "every bad trace request is counted as rejected");
    assert_eq!(unrouted, 2, "the unknown path and the wrong method");
    assert_eq!(traces.requests, good);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_errors_are_answered_in_json_and_protobuf_errors_in_protobuf() {
    let running = start(|_| {}).await;
    let client = reqwest::Client::new();
    for (content_type, expected) in
        [("application/json", "application/json"), ("application/x-protobuf", "application/x-protobuf")]
    {
        let response = running.post(&client, "/v1/logs", content_type, "not telemetry").await;
        assert_eq!(response.status(), 400);
        assert_eq!(response.headers()["content-type"], expected);
    }
    let (outcome, records) = running.finish().await;
    assert!(records.is_empty());
    assert_eq!(outcome.stats.logs.rejected, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_grpc_requests_get_their_status_and_leave_recording_intact() {
    let limit = 64 * 1024;
    let running = start(|config| config.max_request_bytes = limit).await;
    let endpoint = running.grpc();
    let good = |n| Bytes::from(good_traces(n));
    grpc_export(&endpoint, Signal::Traces, good(0), false).await.unwrap();
    let cases: Vec<(&str, Bytes, bool, Code, &str)> = vec![
        (
            "malformed protobuf",
            Bytes::from_static(&[0x0a, 0xff, 0xff, 0x01]),
            false,
            Code::InvalidArgument,
            "not a valid",
        ),
        ("empty request", Bytes::new(), false, Code::InvalidArgument, "empty"),
        ("over the limit", Bytes::from(vec![0x0a; limit + 1]), false, Code::OutOfRange, "too large"),
        ("gzip bomb", Bytes::from(vec![0u8; limit * 64]), true, Code::ResourceExhausted, "size limit"),
    ];
    for (n, (name, payload, gzip, code, message)) in cases.iter().enumerate() {
        let status = grpc_export(&endpoint, Signal::Traces, payload.clone(), *gzip).await.unwrap_err();
        assert_eq!(status.code(), *code, "{name}: {status:?}");
        assert!(status.message().contains(message), "{name}: {:?} should say {message:?}", status.message());
        // A bomb is not worth retrying: no RetryInfo, unlike throttling.
        assert!(status.details().is_empty(), "{name}");
        grpc_export(&endpoint, Signal::Traces, good(n as u64 + 1), false).await.unwrap();
    }
    let (outcome, records) = running.finish().await;
    assert_eq!(records.len(), cases.len() + 1, "only the good requests are recorded");
    for (n, (_, record)) in records.iter().enumerate() {
        assert_eq!(record.payload, good(n as u64));
    }
    assert_eq!(outcome.stats.traces.rejected, cases.len() as u64, "refusals by tonic are counted too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_body_of_the_wrong_signal_is_never_recorded_as_that_signal() {
    let running = start(|_| {}).await;
    let logs = ExportRequest::Logs(tape_otlp::sample::logs("checkout", 2, 0)).encode(Encoding::Json).unwrap();
    let response = running.post(&reqwest::Client::new(), "/v1/traces", "application/json", logs).await;
    // OTLP/JSON ignores unknown fields, so a logs body on /v1/traces is an
    // empty trace request: accepted with no items, never recorded as logs.
    let status = response.status().as_u16();
    let (outcome, records) = running.finish().await;
    assert_eq!(status, 200);
    assert!(records.iter().all(|(signal, record)| *signal == Signal::Traces && record.item_count == 0));
    assert_eq!(outcome.recording.metadata.captured_logs, 0);
}

/// A client that sends a body over the limit without waiting for
/// `100 Continue` (most do) reads the 413 every time, not a reset
/// connection: the receiver reads and drops the rest of a body within a
/// few times the limit before it answers. Over that bound it answers with
/// `Connection: close` and does not read the body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_is_answered_413_not_reset() {
    let limit = 64 * 1024;
    let running = start(|config| config.max_request_bytes = limit).await;
    let client = reqwest::Client::new();
    for round in 0..40 {
        for (name, length, chunked) in
            [("announced", limit + 1, false), ("chunked", limit * 2, true), ("far over", limit * 3, false)]
        {
            let body = vec![0x0a; length];
            let request =
                client.post(format!("{}/v1/traces", running.http())).header("content-type", "application/x-protobuf");
            let request = if chunked {
                let frames: Vec<Result<_, std::io::Error>> = body
                    .chunks(8 * 1024)
                    .map(|chunk| Ok(http_body::Frame::data(Bytes::copy_from_slice(chunk))))
                    .collect();
                request.body(reqwest::Body::wrap(http_body_util::StreamBody::new(futures::stream::iter(frames))))
            } else {
                request.body(body)
            };
            let response = request.send().await.unwrap_or_else(|error| panic!("round {round}, {name}: {error:?}"));
            assert_eq!(response.status().as_u16(), 413, "round {round}, {name}");
            let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
            let message = status_message(&content_type, &response.bytes().await.unwrap());
            assert!(message.contains("limit"), "round {round}, {name}: {message}");
        }
    }
    let (outcome, records) = running.finish().await;
    assert!(records.is_empty(), "nothing over the limit is recorded");
    assert_eq!(outcome.stats.traces.rejected, 120);
}
