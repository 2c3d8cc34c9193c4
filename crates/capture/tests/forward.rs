//! Pass-through: accepted requests go on to a real upstream receiver, and
//! an upstream that is down costs the recording nothing.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{grpc_export, start, upstream};
use tape_capture::ForwardConfig;
use tape_otlp::{ExportRequest, Signal};
use tape_replay::Protocol;
use tape_testkit::otlp_target::{OtlpTarget, OtlpTargetOptions};

fn requests() -> Vec<(Signal, Vec<u8>)> {
    vec![
        (Signal::Traces, ExportRequest::Traces(tape_otlp::sample::traces("checkout", 5, 0)).encode_protobuf()),
        (Signal::Metrics, ExportRequest::Metrics(tape_otlp::sample::metrics("checkout", 0)).encode_protobuf()),
        (Signal::Logs, ExportRequest::Logs(tape_otlp::sample::logs("checkout", 4, 0)).encode_protobuf()),
        (Signal::Traces, ExportRequest::Traces(tape_otlp::sample::traces("cart", 2, 9)).encode_protobuf()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_delivers_the_recorded_requests_to_a_real_receiver() {
    for protocol in [Protocol::Grpc, Protocol::HttpProtobuf] {
        let target = OtlpTarget::start(OtlpTargetOptions::default()).await;
        let endpoint = match protocol {
            Protocol::Grpc => target.grpc_endpoint().to_owned(),
            _ => target.http_endpoint().to_owned(),
        };
        // One send at a time, so the upstream sees the recorded order.
        let forward = ForwardConfig { concurrency: 1, ..ForwardConfig::default() };
        let running = start(|config| config.forward = Some((upstream(&endpoint, protocol), forward))).await;
        for (signal, payload) in requests() {
            grpc_export(&running.grpc(), signal, Bytes::from(payload), false).await.unwrap();
        }
        let received = target.wait_for(requests().len()).await;
        let (outcome, records) = running.finish().await;
        let forwarded: Vec<_> = received.iter().map(|request| (request.signal, request.body.to_vec())).collect();
        let recorded: Vec<_> = records.iter().map(|(signal, record)| (*signal, record.payload.to_vec())).collect();
        assert_eq!(forwarded, requests(), "{protocol}: upstream got every request");
        assert_eq!(recorded, requests(), "{protocol}: the session holds the same");
        let total = outcome.stats.total();
        assert_eq!((total.forwarded, total.forward_failed), (4, 0), "{protocol}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_upstream_loses_nothing_from_the_recording() {
    // A port that was free a moment ago and has no listener now.
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let forward = ForwardConfig { drain_timeout: Duration::from_secs(5), ..ForwardConfig::default() };
    let running = start(|config| config.forward = Some((upstream(&dead, Protocol::HttpProtobuf), forward))).await;
    for (signal, payload) in requests() {
        grpc_export(&running.grpc(), signal, Bytes::from(payload), false).await.unwrap();
    }
    let (outcome, records) = running.finish().await;
    let recorded: Vec<_> = records.iter().map(|(signal, record)| (*signal, record.payload.to_vec())).collect();
    assert_eq!(recorded, requests(), "every acknowledged request is recorded");
    let total = outcome.stats.total();
    assert_eq!((total.forwarded, total.forward_failed), (0, 4), "every failed forward is counted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_forward_queue_does_not_hold_up_recording() {
    let target = OtlpTarget::start(OtlpTargetOptions::default()).await;
    // The upstream never answers, one send at a time, and the queue holds one.
    target.fail_next(100, tape_testkit::otlp_target::Failure::Stall);
    let forward = ForwardConfig { queue_requests: 1, concurrency: 1, drain_timeout: Duration::from_millis(200) };
    let endpoint = target.http_endpoint().to_owned();
    let running = start(|config| config.forward = Some((upstream(&endpoint, Protocol::HttpProtobuf), forward))).await;
    for (signal, payload) in requests() {
        grpc_export(&running.grpc(), signal, Bytes::from(payload), false).await.unwrap();
    }
    let (outcome, records) = running.finish().await;
    assert_eq!(records.len(), 4, "recording went on while forwarding was stuck");
    let total = outcome.stats.total();
    assert_eq!(total.forwarded, 0);
    assert_eq!(total.forward_failed, 4, "queued, stuck and dropped requests are all counted as failed");
}
