//! A store that fails writes on demand under a running capture: requests
//! are refused with retryable codes over both protocols while it fails,
//! taken again once it works, and nothing acknowledged is lost.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use tape_otlp::{ExportRequest, Signal};
use tape_session::{BlobKey, BlobSink, Error, SessionId, SessionMetadata, SessionStore};
use tape_store::LocalStore;

/// A local store whose writes (blob bytes, commits, metadata) fail while
/// `failing` is set, as a full disk fails them.
#[derive(Debug)]
struct FailingStore {
    inner: LocalStore,
    failing: Arc<AtomicBool>,
    /// Fails the next commit after its bytes are in the store, as a commit
    /// whose final link fails leaves them: a partial blob.
    fail_next_commit: Arc<AtomicBool>,
}

fn disk_full() -> Error {
    Error::backend("cannot write", std::io::Error::from_raw_os_error(28))
}

struct FailingSink {
    inner: Box<dyn BlobSink>,
    failing: Arc<AtomicBool>,
    fail_next_commit: Arc<AtomicBool>,
}

#[async_trait::async_trait]
impl BlobSink for FailingSink {
    async fn write(&mut self, chunk: Bytes) -> Result<(), Error> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(disk_full());
        }
        self.inner.write(chunk).await
    }

    async fn flush(&mut self) -> Result<(), Error> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(disk_full());
        }
        self.inner.flush().await
    }

    async fn sync(&mut self) -> Result<(), Error> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(disk_full());
        }
        self.inner.sync().await
    }

    async fn commit(mut self: Box<Self>) -> Result<(), Error> {
        if self.fail_next_commit.swap(false, Ordering::SeqCst) {
            self.inner.sync().await?;
            // Neither committed nor aborted, and never dropped: its
            // temporary file stays, as after a failed link.
            std::mem::forget(self.inner);
            return Err(Error::backend("cannot commit", std::io::Error::from_raw_os_error(28)));
        }
        self.inner.commit().await
    }

    async fn abort(self: Box<Self>) -> Result<(), Error> {
        self.inner.abort().await
    }
}

#[async_trait::async_trait]
impl tape_session::StoreLayer for FailingStore {
    fn inner(&self) -> &dyn SessionStore {
        &self.inner
    }

    async fn write_metadata(&self, metadata: &SessionMetadata) -> Result<(), Error> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(disk_full());
        }
        self.inner.write_metadata(metadata).await
    }

    async fn create_blob(&self, id: &SessionId, key: &BlobKey) -> Result<Box<dyn BlobSink>, Error> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(disk_full());
        }
        let inner = self.inner.create_blob(id, key).await?;
        Ok(Box::new(FailingSink {
            inner,
            failing: Arc::clone(&self.failing),
            fail_next_commit: Arc::clone(&self.fail_next_commit),
        }))
    }
}

fn traces(n: u64) -> Vec<u8> {
    ExportRequest::Traces(tape_otlp::sample::traces("checkout", 10, n * 1_000_000)).encode_protobuf()
}

async fn post(client: &reqwest::Client, base: &str, payload: Vec<u8>) -> reqwest::Response {
    client
        .post(format!("{base}/v1/traces"))
        .header("content-type", "application/x-protobuf")
        .body(payload)
        .send()
        .await
        .unwrap()
}

/// A capture on a `FailingStore` in a temporary directory, flushing every
/// 20 ms and configured further by `config`, with the store's `failing` and
/// `fail_next_commit` switches.
async fn start_failing(
    config: impl FnOnce(&mut tape_capture::CaptureConfig),
) -> (common::Running, Arc<AtomicBool>, Arc<AtomicBool>) {
    let dir = tempfile::tempdir().unwrap();
    let failing = Arc::new(AtomicBool::new(false));
    let fail_next_commit = Arc::new(AtomicBool::new(false));
    let store: Arc<dyn SessionStore> = Arc::new(FailingStore {
        inner: LocalStore::new(dir.path()),
        failing: Arc::clone(&failing),
        fail_next_commit: Arc::clone(&fail_next_commit),
    });
    let running = common::start_on(store, dir, |capture_config| {
        capture_config.recorder.flush_interval = std::time::Duration::from_millis(20);
        config(capture_config);
    })
    .await;
    (running, failing, fail_next_commit)
}

/// Posts the requests of 10 spans numbered `numbers`, each of which must be
/// acknowledged; returns how many spans that acknowledged.
async fn post_acknowledged(client: &reqwest::Client, http: &str, numbers: std::ops::RangeInclusive<u64>) -> u64 {
    let mut acknowledged = 0;
    for n in numbers {
        assert_eq!(post(client, http, traces(n)).await.status(), 200);
        acknowledged += 10;
    }
    acknowledged
}

/// How many items the records of a session hold.
fn stored(records: &[(Signal, tape_session::Record)]) -> u64 {
    records.iter().map(|(_, record)| record.item_count).sum()
}

async fn run(durable: bool) {
    let (running, failing, _) = start_failing(|config| config.recorder.durable = durable).await;
    let http = running.http();
    let grpc = running.grpc();
    let client = reqwest::Client::new();
    let mut acknowledged = post_acknowledged(&client, &http, 1..=5).await;
    let mut n = 5;

    // The store fails: requests are refused, retryably, once the writer has
    // found out (a non-durable request may be taken before it has).
    failing.store(true, Ordering::SeqCst);
    let mut refused = 0u64;
    let mut http_refusal = None;
    while http_refusal.is_none() {
        n += 1;
        let response = post(&client, &http, traces(n)).await;
        if response.status() == 200 {
            assert!(!durable, "a durable request was acknowledged while the store failed");
            acknowledged += 10;
        } else {
            refused += 10;
            http_refusal = Some((response.status().as_u16(), response.headers().get("retry-after").cloned()));
        }
    }
    let (status, retry_after) = http_refusal.unwrap();
    assert_eq!(status, 503);
    assert!(retry_after.is_some(), "a 503 says when to retry");
    n += 1;
    let status = common::grpc_export(&grpc, Signal::Traces, Bytes::from(traces(n)), false).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    refused += 10;
    assert!(!running.capture.is_finished(), "the capture stopped when the store failed");

    // The store works again: requests are taken again once the writer has
    // retried (clients retry as told).
    failing.store(false, Ordering::SeqCst);
    let mut taken_again = 0;
    while taken_again < 5 {
        n += 1;
        let response = post(&client, &http, traces(n)).await;
        if response.status() == 200 {
            acknowledged += 10;
            taken_again += 1;
        } else {
            refused += 10;
        }
    }
    n += 1;
    common::grpc_export(&grpc, Signal::Traces, Bytes::from(traces(n)), false).await.unwrap();
    acknowledged += 10;

    let (outcome, records) = running.finish().await;
    assert_eq!(outcome.recording.reason, tape_capture::StopReason::Requested);
    assert_eq!(outcome.recording.metadata.status, tape_session::SessionStatus::Completed);
    let stored = stored(&records);
    if durable {
        assert!(stored >= acknowledged && stored - acknowledged <= refused, "{stored} stored, {acknowledged} acked");
    } else {
        assert_eq!(stored, acknowledged, "every acknowledged span is stored, and nothing refused is");
    }
}

#[tokio::test]
async fn a_failing_store_refuses_retryably_resumes_and_loses_nothing() {
    run(false).await;
}

#[tokio::test]
async fn a_failing_store_under_durable_capture_refuses_retryably_and_loses_nothing() {
    run(true).await;
}

#[tokio::test]
async fn a_blob_whose_commit_failed_is_in_the_finished_session() {
    let (running, _, fail_next_commit) = start_failing(|config| {
        // Every record after a blob's first rolls it: one commit per request.
        config.recorder.writer.max_blob_age_nanos = Some(1);
    })
    .await;
    let http = running.http();
    let client = reqwest::Client::new();
    let mut acknowledged = post_acknowledged(&client, &http, 1..=3).await;
    let mut n = 3;
    fail_next_commit.store(true, Ordering::SeqCst);
    let mut taken = 0;
    while taken < 5 {
        n += 1;
        if post(&client, &http, traces(n)).await.status() == 200 {
            acknowledged += 10;
            taken += 1;
        }
    }
    let (outcome, records) = running.finish().await;
    assert!(!fail_next_commit.load(Ordering::SeqCst), "no commit was tried");
    assert_eq!(outcome.recording.metadata.status, tape_session::SessionStatus::Completed);
    assert_eq!(stored(&records), acknowledged, "the blob whose commit failed is listed and read");
    assert_eq!(outcome.recording.metadata.captured_traces, acknowledged);
}

/// A capture whose store fails, with `requests` acknowledged before the
/// failure, then asked to stop while it fails.
async fn stop_while_failing() -> (common::Running, Arc<AtomicBool>, u64) {
    let (running, failing, _) = start_failing(|_| {}).await;
    let http = running.http();
    let client = reqwest::Client::new();
    let acknowledged = post_acknowledged(&client, &http, 0..=4).await;
    failing.store(true, Ordering::SeqCst);
    running.capture.stop();
    (running, failing, acknowledged)
}

#[tokio::test]
async fn a_capture_stopped_while_the_store_fails_finishes_once_it_works() {
    let (running, failing, acknowledged) = stop_while_failing().await;
    failing.store(false, Ordering::SeqCst);
    let (outcome, records) = running.finish().await;
    assert_eq!(outcome.recording.reason, tape_capture::StopReason::Requested);
    assert_eq!(outcome.recording.metadata.status, tape_session::SessionStatus::Completed);
    assert_eq!(stored(&records), acknowledged);
}

#[tokio::test]
async fn a_second_stop_gives_up_and_leaves_the_session_for_repair() {
    let (running, failing, _) = stop_while_failing().await;
    // Once the capture has taken the first stop (it answers that it is not
    // recording), it is asked again while the store still fails: it gives up.
    let client = reqwest::Client::new();
    loop {
        let response = post(&client, &running.http(), traces(99)).await;
        if response.status() == 503 && response.text().await.unwrap().contains("not recording") {
            break;
        }
    }
    running.capture.stop();
    let store = Arc::clone(&running.store);
    let outcome = running.capture.wait().await.unwrap();
    assert!(matches!(outcome.recording.reason, tape_capture::StopReason::Failed(_)), "{:?}", outcome.recording.reason);
    let id = outcome.recording.metadata.session_id.clone();
    assert_eq!(store.read_metadata(&id).await.unwrap().status, tape_session::SessionStatus::Active);
    // Space comes back; repair finishes the session from what was written.
    failing.store(false, Ordering::SeqCst);
    let report = tape_session::repair_session(store.as_ref(), &id, tape_capture::now()).await.unwrap();
    assert_eq!(report.status_after, tape_session::SessionStatus::Completed);
}
