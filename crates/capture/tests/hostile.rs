//! Hostile clients: uploads that stall or trickle, bodies that announce a
//! size over the limit, and floods on one protocol. None of them keeps a
//! real OTLP exporter out, and what is refused gets a retryable code.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use common::{Running, grpc_export, start};
use futures::StreamExt;
use http_body::Frame;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::trace::SpanExporter as _;
use tape_capture::ReceiveLimits;
use tape_otlp::{ExportRequest, Signal};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tonic::Code;
use tower::{Service, ServiceExt};

/// A valid trace request of `n` sample traces.
fn traces(n: u64) -> Vec<u8> {
    ExportRequest::Traces(tape_otlp::sample::traces("checkout", 3, n)).encode_protobuf()
}

/// A valid trace request of at least `bytes` bytes: sample requests one
/// after another (a protobuf message's repeated fields concatenate), and
/// its spans.
fn traces_of_size(bytes: usize) -> (Vec<u8>, u64) {
    let mut payload = Vec::new();
    let mut n = 0;
    while payload.len() < bytes {
        payload.extend(traces(n));
        n += 1;
    }
    let spans = tape_otlp::wire::count_items(Signal::Traces, &payload).unwrap();
    (payload, spans)
}

/// Reads an HTTP/1.1 response head (status line and headers).
async fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        let read = stream.read(&mut byte).await.unwrap();
        assert_eq!(read, 1, "the connection closed before a response head: {}", String::from_utf8_lossy(&head));
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

/// An HTTP upload of `/v1/traces` announcing `declared` bytes that sends
/// `sent` of them once the receiver reads its body (it asks for
/// `100 Continue` first, so the body is being read when this returns), and
/// then stalls. `Err` holds the response head when it was refused instead.
async fn stalled_http(addr: SocketAddr, declared: usize, sent: usize) -> Result<TcpStream, String> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/x-protobuf\r\n\
         content-length: {declared}\r\nexpect: 100-continue\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let response = read_head(&mut stream).await;
    if !response.starts_with("HTTP/1.1 100 ") {
        return Err(response);
    }
    // A receiver that has given up on the body already may have closed.
    let _ = stream.write_all(&vec![0x0a; sent]).await;
    Ok(stream)
}

/// A gRPC `Export` of traces over `channel` whose message announces
/// `declared` bytes, of which `sent` are sent before the body stalls for
/// good: the call ends only if the receiver answers.
fn stalled_grpc(
    channel: &tonic::transport::Channel,
    declared: u32,
    sent: usize,
) -> JoinHandle<http::Response<tonic::body::Body>> {
    let mut frame = BytesMut::with_capacity(5 + sent);
    frame.put_u8(0);
    frame.put_u32(declared);
    frame.put_bytes(0x0a, sent);
    let frames =
        futures::stream::iter([Ok::<_, Infallible>(Frame::data(frame.freeze()))]).chain(futures::stream::pending());
    let request = http::Request::post("/opentelemetry.proto.collector.trace.v1.TraceService/Export")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(tonic::body::Body::new(http_body_util::StreamBody::new(frames)))
        .unwrap();
    let mut channel = channel.clone();
    tokio::spawn(async move { channel.ready().await.unwrap().call(request).await.unwrap() })
}

/// The `grpc-status` of a response that ended in its headers, if any.
fn grpc_status(response: &http::Response<tonic::body::Body>) -> Option<Code> {
    let code = response.headers().get("grpc-status")?.to_str().ok()?.parse::<i32>().ok()?;
    Some(Code::from_i32(code))
}

async fn channel(running: &Running) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(running.grpc()).unwrap().connect().await.unwrap()
}

/// Spans exported over OTLP/gRPC by the SDK's exporter, default timeout.
async fn sdk_export_over_grpc(endpoint: &str) -> opentelemetry_sdk::error::OTelSdkResult {
    let exporter = opentelemetry_otlp::SpanExporter::builder().with_tonic().with_endpoint(endpoint).build().unwrap();
    exporter.export(sdk_spans()).await
}

/// Spans exported over OTLP/HTTP (protobuf) by the SDK's exporter, default timeout.
async fn sdk_export_over_http(endpoint: &str) -> opentelemetry_sdk::error::OTelSdkResult {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{endpoint}/v1/traces"))
        .build()
        .unwrap();
    exporter.export(sdk_spans()).await
}

fn sdk_spans() -> Vec<opentelemetry_sdk::trace::SpanData> {
    use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState};
    let start = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000);
    vec![opentelemetry_sdk::trace::SpanData {
        span_context: SpanContext::new(
            TraceId::from(7u128),
            SpanId::from(9u64),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ),
        parent_span_id: SpanId::INVALID,
        parent_span_is_remote: false,
        span_kind: SpanKind::Server,
        name: "checkout".into(),
        start_time: start,
        end_time: start + Duration::from_millis(5),
        attributes: Vec::new(),
        dropped_attributes_count: 0,
        events: opentelemetry_sdk::trace::SpanEvents::default(),
        links: opentelemetry_sdk::trace::SpanLinks::default(),
        status: Status::Unset,
        instrumentation_scope: opentelemetry::InstrumentationScope::builder("hostile").build(),
    }]
}

async fn post_traces(client: &reqwest::Client, running: &Running, body: Vec<u8>) -> reqwest::Response {
    client
        .post(format!("{}/v1/traces", running.http()))
        .header("content-type", "application/x-protobuf")
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_stalled_uploads_do_not_keep_a_real_exporter_out() {
    let running = start(|_| {}).await;
    let http_addr = running.capture.http_addr().unwrap();
    // 100 gRPC streams over 10 connections, each with its message's prefix
    // and a byte of 1 MiB, stalled.
    let mut grpc_stalled = Vec::new();
    for _ in 0..10 {
        let channel = channel(&running).await;
        for _ in 0..10 {
            grpc_stalled.push(stalled_grpc(&channel, 1024 * 1024, 1));
        }
    }
    // 100 HTTP uploads, each being read (the receiver asked for the body)
    // and stalled after a byte of 1 MB.
    let mut http_stalled = Vec::new();
    for n in 0..100 {
        match stalled_http(http_addr, 1_000_000, 1).await {
            Ok(stream) => http_stalled.push(stream),
            Err(head) => panic!("stalled upload {n} was refused before its body was read: {head}"),
        }
    }

    // The SDK's exporters, which do not retry, get through on both.
    sdk_export_over_grpc(&running.grpc()).await.expect("an OTLP/gRPC export while 200 uploads stall");
    sdk_export_over_http(&running.http()).await.expect("an OTLP/HTTP export while 200 uploads stall");
    assert!(grpc_stalled.iter().all(|call| !call.is_finished()), "the stalled gRPC uploads are still open");

    for call in &grpc_stalled {
        call.abort();
    }
    drop(http_stalled);
    let (outcome, records) = running.finish().await;
    assert_eq!(outcome.stats.traces.requests, 2);
    assert_eq!(records.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_content_length_over_the_limit_gets_413_before_any_body_is_sent() {
    let running = start(|_| {}).await;
    let addr = running.capture.http_addr().unwrap();
    for expect in ["expect: 100-continue\r\n", ""] {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "POST /v1/traces HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/x-protobuf\r\n\
             content-length: 1000000000000\r\n{expect}\r\n"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        // Not a byte of the body is sent: the answer comes from the headers.
        let response = read_head(&mut stream).await;
        assert!(response.starts_with("HTTP/1.1 413 "), "with {expect:?}: {response}");
        let length = response
            .lines()
            .find_map(|line| line.to_ascii_lowercase().strip_prefix("content-length:").map(|n| n.trim().to_owned()))
            .expect("the response has a Content-Length");
        let mut body = vec![0u8; length.parse().unwrap()];
        stream.read_exact(&mut body).await.unwrap();
        let status: tape_otlp::rpc::Status = prost::Message::decode(&body[..]).unwrap();
        assert!(
            status.message.contains("Content-Length 1000000000000 is more than the limit of 16777216 bytes"),
            "{}",
            status.message
        );
    }
    let (outcome, records) = running.finish().await;
    assert_eq!(outcome.stats.traces.rejected, 2);
    assert!(records.is_empty());
}

/// A capture whose requests are at most 1 MiB, with 2 MiB of budget per receiver.
async fn small_budget(read_timeout: Duration) -> Running {
    start(|config| {
        config.max_request_bytes = 1024 * 1024;
        config.receive = ReceiveLimits { budget_bytes: 2 * 1024 * 1024, read_timeout };
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_flood_cannot_starve_grpc() {
    let running = small_budget(Duration::from_mins(1)).await;
    let addr = running.capture.http_addr().unwrap();
    // 70 uploads of 32 KiB each, stalled before their last byte: more than
    // the budget holds, and more than the 64 requests the receivers once
    // read at most together.
    let mut stalled = Vec::new();
    for _ in 0..70 {
        if let Ok(stream) = stalled_http(addr, 32 * 1024 + 1, 32 * 1024).await {
            stalled.push(stream);
        }
    }
    // Once the receiver holds their bytes, an HTTP request that does not
    // fit is refused, with a retryable code.
    let client = reqwest::Client::new();
    let (probe, _) = traces_of_size(64 * 1024);
    let mut refused = None;
    for _ in 0..1000 {
        let response = post_traces(&client, &running, probe.clone()).await;
        if response.status() != 200 {
            refused = Some(response);
            break;
        }
    }
    let refused = refused.expect("the HTTP budget fills up");
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");

    // gRPC has its own budget: an SDK export gets through.
    sdk_export_over_grpc(&running.grpc()).await.expect("an OTLP/gRPC export during an HTTP flood");
    drop(stalled);
    running.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grpc_flood_cannot_starve_http() {
    let running = small_budget(Duration::from_mins(1)).await;
    let mut stalled = Vec::new();
    for _ in 0..7 {
        let channel = channel(&running).await;
        for _ in 0..10 {
            stalled.push(stalled_grpc(&channel, 32 * 1024 + 1, 32 * 1024));
        }
    }
    // Streams arriving together may be refused part way, giving their
    // bytes back: more stall until a request that does not fit is refused.
    let channel = channel(&running).await;
    let (probe, _) = traces_of_size(64 * 1024);
    let mut refused = None;
    for _ in 0..1000 {
        if let Err(status) = grpc_export(&running.grpc(), Signal::Traces, Bytes::from(probe.clone()), false).await {
            refused = Some(status);
            break;
        }
        stalled.push(stalled_grpc(&channel, 32 * 1024 + 1, 32 * 1024));
    }
    let refused = refused.expect("the gRPC budget fills up");
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");

    sdk_export_over_http(&running.http()).await.expect("an OTLP/HTTP export during a gRPC flood");
    for call in &stalled {
        call.abort();
    }
    running.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_beyond_the_budget_get_retryable_refusals_and_every_accepted_one_is_recorded() {
    let running = small_budget(Duration::from_mins(1)).await;
    let http_addr = running.capture.http_addr().unwrap();
    // Stalled uploads, each a byte short, hold 1.5 MiB of each receiver's 2 MiB.
    let mut http_stalled = Vec::new();
    let mut grpc_stalled = Vec::new();
    let grpc_channel = channel(&running).await;
    for _ in 0..3 {
        http_stalled.push(stalled_http(http_addr, 512 * 1024 + 1, 512 * 1024).await.unwrap());
        grpc_stalled.push(stalled_grpc(&grpc_channel, 512 * 1024 - 4, 512 * 1024 - 5));
    }
    // Eight uploads of 900 KB, four on each protocol: beyond the bound,
    // they are refused with retryable codes, never taken in part.
    let uploads: Vec<(Vec<u8>, u64)> = (0..8).map(|n| traces_of_size(900_000 + n * 1000)).collect();
    let client = reqwest::Client::new();
    let mut refusals = 0;
    // What was acknowledged: what the session must hold.
    let mut acknowledged: Vec<Vec<u8>> = Vec::new();
    let mut acknowledged_spans = 0;
    for (n, (payload, spans)) in uploads.iter().enumerate() {
        // Each is sent until refused: the stalled bytes may not all be read yet.
        for _ in 0..1000 {
            let refused = if n % 2 == 0 {
                let response = post_traces(&client, &running, payload.clone()).await;
                match response.status().as_u16() {
                    200 => false,
                    503 => {
                        assert_eq!(response.headers()["retry-after"], "1");
                        true
                    }
                    other => panic!("upload {n} got {other}: {}", response.text().await.unwrap()),
                }
            } else {
                match grpc_export(&running.grpc(), Signal::Traces, Bytes::from(payload.clone()), false).await {
                    Ok(_) => false,
                    Err(status) if status.code() == Code::Unavailable => true,
                    Err(status) => panic!("upload {n} got {status:?}"),
                }
            };
            if refused {
                refusals += 1;
                break;
            }
            acknowledged.push(payload.clone());
            acknowledged_spans += spans;
        }
    }
    assert_eq!(refusals, uploads.len(), "every upload past the budget is refused with a retryable code");

    // The stalled uploads go away; the refused ones, sent again as an
    // exporter would, are accepted and recorded, every one.
    for call in &grpc_stalled {
        call.abort();
    }
    drop(http_stalled);
    drop(grpc_channel);
    for (n, (payload, spans)) in uploads.iter().enumerate() {
        loop {
            let done = if n % 2 == 0 {
                let response = post_traces(&client, &running, payload.clone()).await;
                assert!(matches!(response.status().as_u16(), 200 | 503), "{}", response.status());
                response.status() == 200
            } else {
                match grpc_export(&running.grpc(), Signal::Traces, Bytes::from(payload.clone()), false).await {
                    Ok(_) => true,
                    Err(status) if status.code() == Code::Unavailable => false,
                    Err(status) => panic!("upload {n} got {status:?}"),
                }
            };
            if done {
                acknowledged.push(payload.clone());
                acknowledged_spans += spans;
                break;
            }
            tokio::task::yield_now().await;
        }
    }
    let (outcome, records) = running.finish().await;
    assert_eq!(outcome.stats.traces.requests, acknowledged.len() as u64);
    assert_eq!(outcome.recording.metadata.captured_traces, acknowledged_spans);
    assert!(outcome.stats.traces.throttled >= refusals as u64, "budget refusals are counted as throttled");
    let mut stored: Vec<Vec<u8>> = records.iter().map(|(_, record)| record.payload.to_vec()).collect();
    stored.sort();
    acknowledged.sort();
    assert!(stored == acknowledged, "the session holds exactly the acknowledged uploads");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_does_not_arrive_in_time_is_refused_and_gives_back_its_budget() {
    let running = small_budget(Duration::from_millis(200)).await;
    let addr = running.capture.http_addr().unwrap();
    // Guards only: without a read timeout these would never be answered.
    let guard = Duration::from_secs(30);

    // Stalled with 1.5 MiB of the 2 MiB held: refused at the timeout.
    let mut stream = stalled_http(addr, 1024 * 1024, 768 * 1024).await.unwrap();
    let mut other = stalled_http(addr, 1024 * 1024, 768 * 1024).await.unwrap();
    for stream in [&mut stream, &mut other] {
        let head = tokio::time::timeout(guard, read_head(stream)).await.expect("a stalled body is answered");
        assert!(head.starts_with("HTTP/1.1 408 "), "{head}");
        assert!(head.to_ascii_lowercase().contains("connection: close"), "{head}");
    }
    let channel = channel(&running).await;
    let call = stalled_grpc(&channel, 1024 * 1024, 768 * 1024);
    let response = tokio::time::timeout(guard, call).await.expect("a stalled message is answered").unwrap();
    assert_eq!(grpc_status(&response), Some(Code::DeadlineExceeded));

    // Their bytes are given back: two requests of 900 KB fit again.
    let client = reqwest::Client::new();
    let (payload, _) = traces_of_size(900_000);
    assert_eq!(post_traces(&client, &running, payload.clone()).await.status(), 200);
    grpc_export(&running.grpc(), Signal::Traces, Bytes::from(payload), false).await.unwrap();
    let (outcome, _) = running.finish().await;
    assert_eq!(outcome.stats.traces.rejected, 3, "timed-out bodies are counted as rejected");
    assert_eq!(outcome.stats.traces.requests, 2);
}
