//! Seed → replay → capture over real OTLP/gRPC and OTLP/HTTP, and replay
//! against a real scripted target: retries, partial success, failures.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::{local_store, records, replay_to, seed};
use tape_capture::{Capture, CaptureConfig, RecorderConfig};
use tape_otlp::{ExportRequest, Signal, SignalSet};
use tape_replay::{
    EndReason, Exporter, ExporterConfig, Protocol, ReplayError, ReplayOptions, RetryPolicy, Speed, TimestampMode,
};
use tape_session::{Record, SessionId, SessionMetadata, SessionStore, SessionType, Timestamp};
use tape_testkit::otlp_target::{Failure, OtlpTarget, OtlpTargetOptions};

const LOOPBACK: &str = "127.0.0.1:0";

/// Starts a capture into `store` on free loopback ports.
async fn capture(store: &Arc<dyn SessionStore>, id: &str) -> Capture {
    let metadata = SessionMetadata::new(
        SessionId::new(id).unwrap(),
        SessionType::Capture,
        Timestamp::from_unix_nanos(1),
        "test".into(),
    );
    let config = CaptureConfig {
        grpc: Some(LOOPBACK.parse::<SocketAddr>().unwrap()),
        http: Some(LOOPBACK.parse::<SocketAddr>().unwrap()),
        max_request_bytes: 64 * 1024 * 1024,
        receive: tape_capture::ReceiveLimits::default(),
        recorder: RecorderConfig::default(),
        forward: None,
    };
    Capture::start(Arc::clone(store), metadata, config).await.expect("the capture starts")
}

fn endpoint(capture: &Capture, protocol: Protocol) -> String {
    let addr = if protocol == Protocol::Grpc { capture.grpc_addr() } else { capture.http_addr() };
    format!("http://{}", addr.unwrap())
}

/// Replays `metadata` into a fresh capture over `protocol` and returns the
/// captured records in receive order, with the replay's start time.
async fn round_trip(
    store: &Arc<dyn SessionStore>,
    metadata: &SessionMetadata,
    protocol: Protocol,
    timestamps: TimestampMode,
    capture_id: &str,
) -> (Vec<(Signal, Record)>, u64) {
    let running = capture(store, capture_id).await;
    let mut config = ExporterConfig::new(endpoint(&running, protocol), protocol);
    config.compression = tape_replay::Compression::Gzip;
    let exporter = Exporter::new(config).unwrap();
    // One request at a time, so the capture records them in the order sent.
    let options = ReplayOptions { speed: Speed::Max, timestamps, concurrency: 1, ..ReplayOptions::default() };
    let outcome = replay_to(store, metadata, &exporter, &options).await;
    assert_eq!(outcome.reason, EndReason::Finished, "{:?}", outcome.error);
    assert_eq!(outcome.progress.total().sent_items, metadata.item_counts().total());
    running.stop();
    let captured = running.wait().await.expect("the capture finishes").recording.metadata;
    (records(store.as_ref(), &captured).await, outcome.started_at_unix_nanos)
}

#[tokio::test]
async fn with_timestamps_none_every_captured_payload_is_the_seeds_byte_for_byte() {
    let (_dir, store) = local_store();
    let metadata = seed(store.as_ref(), "seed-bytes", "payment-failure", 4, 10.0, SignalSet::ALL).await;
    let expected = records(store.as_ref(), &metadata).await;
    for (n, protocol) in [Protocol::Grpc, Protocol::HttpProtobuf, Protocol::HttpJson].into_iter().enumerate() {
        let (captured, _) = round_trip(&store, &metadata, protocol, TimestampMode::None, &format!("capture-{n}")).await;
        assert_eq!(captured.len(), expected.len(), "{protocol}");
        for ((signal, got), (want_signal, want)) in captured.iter().zip(&expected) {
            assert_eq!(signal, want_signal, "{protocol}");
            assert_eq!(got.item_count, want.item_count, "{protocol}");
            assert!(got.payload == want.payload, "{protocol}: a captured {signal} payload differs from the seed's");
        }
    }
}

/// Every timestamp of a request, in a fixed order.
fn timestamps(signal: Signal, payload: &[u8]) -> Vec<u64> {
    let mut request = ExportRequest::decode_protobuf(signal, payload).unwrap();
    let mut all = Vec::new();
    request.for_each_timestamp_mut(|time| all.push(*time));
    all
}

#[tokio::test]
async fn relative_and_current_move_each_record_whole_keeping_every_duration() {
    let (_dir, store) = local_store();
    let metadata = seed(store.as_ref(), "seed-shift", "payment-failure", 4, 10.0, SignalSet::ALL).await;
    let expected = records(store.as_ref(), &metadata).await;
    for (n, mode) in [TimestampMode::Relative, TimestampMode::Current].into_iter().enumerate() {
        for protocol in [Protocol::Grpc, Protocol::HttpJson] {
            let id = format!("capture-{n}-{}", protocol.as_str().replace('/', "-"));
            let (captured, started) = round_trip(&store, &metadata, protocol, mode, &id).await;
            assert_eq!(captured.len(), expected.len());
            let mut signals_seen = SignalSet::NONE;
            for ((signal, got), (_, want)) in captured.iter().zip(&expected) {
                signals_seen = signals_seen.with(*signal);
                let before = timestamps(*signal, &want.payload);
                let after = timestamps(*signal, &got.payload);
                assert_eq!(before.len(), after.len());
                // One shift for the whole record; zeros stay zero.
                let shifts: Vec<i128> = before
                    .iter()
                    .zip(&after)
                    .filter(|(b, _)| **b != 0)
                    .map(|(b, a)| i128::from(*a) - i128::from(*b))
                    .collect();
                assert!(before.iter().zip(&after).all(|(b, a)| (*b == 0) == (*a == 0)), "a zero moved");
                assert!(shifts.windows(2).all(|w| w[0] == w[1]), "{mode:?}: a duration or offset changed");
                let shift = shifts[0];
                // It was sent after the replay started and before the capture received it.
                let (earliest, latest) = (i128::from(started), i128::from(got.receive_time_unix_nano));
                let receive = i128::from(want.receive_time_unix_nano);
                match mode {
                    TimestampMode::Relative => {
                        assert!((earliest - receive..=latest - receive).contains(&shift), "relative shift {shift}");
                    }
                    TimestampMode::Current => {
                        let newest = i128::from(*after.iter().max().unwrap());
                        assert!((earliest..=latest).contains(&newest), "current: newest {newest} not the send time");
                    }
                    TimestampMode::None => unreachable!(),
                }
            }
            assert_eq!(signals_seen, SignalSet::ALL);
        }
    }
}

fn exporter(target: &OtlpTarget, protocol: Protocol) -> Exporter {
    let endpoint = if protocol == Protocol::Grpc { target.grpc_endpoint() } else { target.http_endpoint() };
    Exporter::new(ExporterConfig::new(endpoint, protocol)).unwrap()
}

fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        max_elapsed: Duration::from_secs(30),
    }
}

#[tokio::test]
async fn retryable_answers_are_retried_and_partial_success_is_counted() {
    let (_dir, store) = local_store();
    let metadata = seed(store.as_ref(), "seed-retry", "basic-topology", 3, 5.0, SignalSet::ALL).await;
    let expected = records(store.as_ref(), &metadata).await;
    for (protocol, failure) in [
        (Protocol::HttpProtobuf, Failure::Http(503, Some(Duration::from_secs(1)))),
        (Protocol::HttpJson, Failure::Http(429, Some(Duration::from_secs(1)))),
        (Protocol::Grpc, Failure::Grpc(tonic::Code::Unavailable, Some(Duration::from_millis(200)))),
        (Protocol::Grpc, Failure::Grpc(tonic::Code::Unavailable, None)),
    ] {
        let target = OtlpTarget::start(OtlpTargetOptions::default()).await;
        target.fail_next(2, failure);
        let options =
            ReplayOptions { speed: Speed::Max, concurrency: 1, retry: quick_retries(), ..ReplayOptions::default() };
        let started = std::time::Instant::now();
        let outcome = replay_to(&store, &metadata, &exporter(&target, protocol), &options).await;
        assert_eq!(outcome.reason, EndReason::Finished, "{protocol}: {:?}", outcome.error);
        assert_eq!(target.received().len(), expected.len(), "{protocol}: everything arrives once");
        assert_eq!(target.attempts(), expected.len() + 2, "{protocol}: two retries");
        if let Failure::Http(_, Some(delay)) = failure {
            // Retry-After is honoured (twice), not the 10 ms backoff.
            assert!(started.elapsed() >= 2 * delay, "{protocol}: {:?}", started.elapsed());
        }
        assert_eq!(outcome.progress.total().failed_records, 0);
    }

    let target = OtlpTarget::start(OtlpTargetOptions::default()).await;
    target.partial_success(1);
    let options = ReplayOptions { speed: Speed::Max, ..ReplayOptions::default() };
    let outcome = replay_to(&store, &metadata, &exporter(&target, Protocol::HttpProtobuf), &options).await;
    assert_eq!(outcome.reason, EndReason::Finished);
    let counts = outcome.progress;
    for signal in Signal::ALL {
        let records = expected.iter().filter(|(s, _)| *s == signal).count() as u64;
        assert_eq!(counts.signal(signal).rejected_items, records, "{signal}: one rejected per request");
        assert_eq!(counts.signal(signal).delivered_items(), counts.signal(signal).sent_items - records);
    }
    assert!(counts.last_error.unwrap().contains("rejected"));
}

#[tokio::test]
async fn permanent_errors_and_an_unreachable_target_stop_the_replay_with_the_reason() {
    let (_dir, store) = local_store();
    let metadata = seed(store.as_ref(), "seed-fail", "basic-topology", 3, 5.0, SignalSet::ALL).await;
    let target = OtlpTarget::start(OtlpTargetOptions::default()).await;
    target.fail_next(1000, Failure::Http(400, None));
    let options = ReplayOptions { speed: Speed::Max, retry: quick_retries(), ..ReplayOptions::default() };
    let outcome = replay_to(&store, &metadata, &exporter(&target, Protocol::HttpProtobuf), &options).await;
    assert_eq!(outcome.reason, EndReason::Failed);
    let error = outcome.error.unwrap();
    assert!(matches!(error, ReplayError::Failures { failed: 1, .. }), "{error}");
    assert!(error.to_string().contains("400"), "{error}");
    // Not retried: a 400 is permanent. The requests in flight finish.
    assert!(target.attempts() <= options.concurrency, "{} attempts", target.attempts());

    // Nothing listens on a port that was just freed.
    let port = std::net::TcpListener::bind(LOOPBACK).unwrap().local_addr().unwrap().port();
    let dead = Exporter::new(ExporterConfig::new(format!("http://127.0.0.1:{port}"), Protocol::Grpc)).unwrap();
    let options = ReplayOptions { speed: Speed::Max, retry: quick_retries(), max_failures: Some(2), ..options };
    let outcome = replay_to(&store, &metadata, &dead, &options).await;
    assert_eq!(outcome.reason, EndReason::Failed);
    let message = outcome.error.unwrap().to_string();
    assert!(message.contains("stopped after 3 failed requests") && message.contains(&port.to_string()), "{message}");
}
