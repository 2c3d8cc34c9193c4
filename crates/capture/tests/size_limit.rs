//! `max_bytes` (`--max-size-mb`) is a bound, also under concurrent clients:
//! the request that would go over it is refused and the recording stops,
//! so the session never holds more request bytes than the limit.

mod common;

use std::sync::Arc;

use tape_capture::StopReason;
use tape_otlp::ExportRequest;

fn traces(n: u64) -> Vec<u8> {
    ExportRequest::Traces(tape_otlp::sample::traces("checkout", 400, n * 1_000_000)).encode_protobuf()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_never_take_the_session_past_the_size_limit() {
    let limit = 1024 * 1024;
    let running = common::start(|config| config.recorder.max_bytes = Some(limit)).await;
    let url = format!("{}/v1/traces", running.http());
    let client = reqwest::Client::new();
    let mut clients = Vec::new();
    for task in 0..16u64 {
        let (client, url) = (client.clone(), url.clone());
        clients.push(tokio::spawn(async move {
            let mut acknowledged = 0u64;
            for n in 0..100 {
                let payload = traces(task * 1000 + n);
                let len = payload.len() as u64;
                match client.post(&url).header("content-type", "application/x-protobuf").body(payload).send().await {
                    Ok(response) if response.status() == 200 => acknowledged += len,
                    Ok(response) => {
                        assert_eq!(response.status(), 503, "the request over the limit is refused, retryably");
                        break;
                    }
                    Err(_) => break,
                }
            }
            acknowledged
        }));
    }
    let mut acknowledged = 0;
    for client in clients {
        acknowledged += client.await.unwrap();
    }
    let store = Arc::clone(&running.store);
    let outcome = running.capture.wait().await.unwrap();
    assert_eq!(outcome.recording.reason, StopReason::SizeLimit);
    let records = common::stored_records(store.as_ref(), &outcome).await;
    let stored: u64 = records.iter().map(|(_, record)| record.payload.len() as u64).sum();
    eprintln!("size limit {limit}: {stored} bytes of requests recorded, {acknowledged} acknowledged");
    assert_eq!(stored, acknowledged, "every acknowledged request is stored");
    assert!(stored <= limit, "{stored} bytes of requests recorded, over the limit of {limit}");
    assert!(stored > limit - 2 * traces(0).len() as u64, "the capture stopped well before the limit: {stored}");
}
