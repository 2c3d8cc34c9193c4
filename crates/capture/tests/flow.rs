//! The path from receivers to the store: backpressure instead of loss when
//! the store falls behind, and limits that stop and finish the capture.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{GatedStore, grpc_export, start, start_on, stored_records};
use tape_capture::StopReason;
use tape_otlp::{ExportRequest, Signal};
use tape_session::{SessionStatus, SessionStore};
use tonic::Code;

fn traces(n: u64) -> Vec<u8> {
    ExportRequest::Traces(tape_otlp::sample::traces("checkout", 3, n)).encode_protobuf()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_falls_behind_gets_retryable_refusals_not_loss() {
    let dir = tempfile::tempdir().unwrap();
    let (store, gate) = GatedStore::new(dir.path());
    let request = traces(0);
    let running = start_on(store as Arc<dyn SessionStore>, dir, |config| {
        // Room for two requests waiting for the writer.
        config.recorder.queue_bytes = 2 * request.len() + request.len() / 2;
    })
    .await;
    let client = reqwest::Client::new();
    let post = |body: Vec<u8>| {
        client
            .post(format!("{}/v1/traces", running.http()))
            .header("content-type", "application/x-protobuf")
            .body(body)
            .send()
    };
    assert_eq!(post(traces(0)).await.unwrap().status(), 200);
    assert_eq!(post(traces(1)).await.unwrap().status(), 200);

    // The store is stuck: the third waits for no one and is refused.
    let refused = post(traces(2)).await.unwrap();
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "1");
    let status = grpc_export(&running.grpc(), Signal::Traces, Bytes::from(traces(2)), false).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    let delay = tape_otlp::rpc::retry_delay(status.details());
    assert_eq!(delay, Some(Duration::from_secs(1)), "RetryInfo makes RESOURCE_EXHAUSTED retryable");

    // The store catches up: everything acknowledged is recorded.
    gate.add_permits(1);
    let (outcome, records) = running.finish().await;
    let payloads: Vec<_> = records.iter().map(|(_, record)| record.payload.to_vec()).collect();
    assert_eq!(payloads, vec![traces(0), traces(1)]);
    assert_eq!(outcome.stats.traces.throttled, 2);
    assert_eq!(outcome.stats.traces.requests, 2);
    assert_eq!(outcome.recording.metadata.status, SessionStatus::Completed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_size_limit_stops_and_finishes_the_capture_with_every_acknowledged_request() {
    let request = traces(0);
    let running = start(|config| config.recorder.max_bytes = Some(3 * request.len() as u64)).await;
    let client = reqwest::Client::new();
    let url = format!("{}/v1/traces", running.http());
    let mut acknowledged = Vec::new();
    for n in 0..1000 {
        let response = client.post(&url).header("content-type", "application/x-protobuf").body(traces(n)).send().await;
        match response {
            Ok(response) if response.status() == 200 => acknowledged.push(traces(n)),
            Ok(response) => {
                assert_eq!(response.status(), 503, "a stopped capture answers with a retryable code");
                assert_eq!(response.headers()["retry-after"], "1");
                break;
            }
            // The receivers have shut down after the limit.
            Err(_) => break,
        }
    }
    assert!(acknowledged.len() >= 3, "the limit is reached after three requests");
    let store = Arc::clone(&running.store);
    let outcome = running.capture.wait().await.unwrap();
    assert_eq!(outcome.recording.reason, StopReason::SizeLimit);
    assert_eq!(outcome.recording.metadata.status, SessionStatus::Completed);
    let records = stored_records(store.as_ref(), &outcome).await;
    let payloads: Vec<_> = records.iter().map(|(_, record)| record.payload.to_vec()).collect();
    assert_eq!(payloads, acknowledged, "every acknowledged request, and nothing else");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_duration_limit_stops_and_finishes_the_capture() {
    let running = start(|config| config.recorder.max_duration = Some(Duration::from_millis(300))).await;
    grpc_export(&running.grpc(), Signal::Traces, Bytes::from(traces(0)), true).await.unwrap();
    let store = Arc::clone(&running.store);
    let outcome = running.capture.wait().await.unwrap();
    assert_eq!(outcome.recording.reason, StopReason::DurationLimit);
    let metadata = &outcome.recording.metadata;
    assert_eq!(metadata.status, SessionStatus::Completed);
    assert!(metadata.end_time.unwrap().unix_nanos() - metadata.start_time.unix_nanos() >= 300_000_000);
    let records = stored_records(store.as_ref(), &outcome).await;
    assert_eq!(records.len(), 1);
    assert_eq!(metadata.captured_traces, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_capture_on_the_same_session_id_is_refused() {
    let running = start(|_| {}).await;
    let metadata = tape_session::SessionMetadata::new(
        "capture-test".parse().unwrap(),
        tape_session::SessionType::Capture,
        tape_capture::now(),
        "test".to_owned(),
    );
    let second = tape_capture::Capture::start(Arc::clone(&running.store), metadata, common::default_config()).await;
    let Err(error) = second else { panic!("a second capture on the same id must not start") };
    assert!(error.to_string().contains("capture-test"), "{error}");
    let (outcome, _) = running.finish().await;
    assert_eq!(outcome.recording.metadata.status, SessionStatus::Completed);
}
