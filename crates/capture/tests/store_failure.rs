//! A store that fails writes on demand under a running capture: requests
//! are refused with retryable codes over both protocols while it fails,
//! taken again once it works, and nothing acknowledged is lost.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use tape_otlp::{ExportRequest, Signal};
use tape_session::{BlobKey, BlobSink, ByteStream, Error, SessionId, SessionMetadata, SessionStore};
use tape_store::LocalStore;

/// A local store whose writes (blob bytes, commits, metadata) fail while
/// `failing` is set, as a full disk fails them.
#[derive(Debug)]
struct FailingStore {
    inner: LocalStore,
    failing: Arc<AtomicBool>,
}

fn disk_full() -> Error {
    Error::backend("cannot write", std::io::Error::from_raw_os_error(28))
}

struct FailingSink {
    inner: Box<dyn BlobSink>,
    failing: Arc<AtomicBool>,
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

    async fn commit(self: Box<Self>) -> Result<(), Error> {
        self.inner.commit().await
    }

    async fn abort(self: Box<Self>) -> Result<(), Error> {
        self.inner.abort().await
    }
}

#[async_trait::async_trait]
impl SessionStore for FailingStore {
    fn location(&self) -> String {
        self.inner.location()
    }

    async fn create_session(&self, id: &SessionId) -> Result<(), Error> {
        self.inner.create_session(id).await
    }

    async fn list_session_ids(&self) -> Result<Vec<SessionId>, Error> {
        self.inner.list_session_ids().await
    }

    async fn read_metadata(&self, id: &SessionId) -> Result<SessionMetadata, Error> {
        self.inner.read_metadata(id).await
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
        Ok(Box::new(FailingSink { inner, failing: Arc::clone(&self.failing) }))
    }

    async fn open_blob(&self, id: &SessionId, key: &BlobKey) -> Result<ByteStream, Error> {
        self.inner.open_blob(id, key).await
    }

    async fn list_blobs(&self, id: &SessionId) -> Result<Vec<BlobKey>, Error> {
        self.inner.list_blobs(id).await
    }

    async fn read_annotations(&self, id: &SessionId) -> Result<Option<Bytes>, Error> {
        self.inner.read_annotations(id).await
    }

    async fn write_annotations(&self, id: &SessionId, contents: Bytes) -> Result<(), Error> {
        self.inner.write_annotations(id, contents).await
    }

    async fn delete_session(&self, id: &SessionId) -> Result<(), Error> {
        self.inner.delete_session(id).await
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

async fn run(durable: bool) {
    let dir = tempfile::tempdir().unwrap();
    let failing = Arc::new(AtomicBool::new(false));
    let store: Arc<dyn SessionStore> =
        Arc::new(FailingStore { inner: LocalStore::new(dir.path()), failing: Arc::clone(&failing) });
    let running = common::start_on(store, dir, |config| {
        config.recorder.durable = durable;
        config.recorder.flush_interval = std::time::Duration::from_millis(20);
    })
    .await;
    let http = running.http();
    let grpc = running.grpc();
    let client = reqwest::Client::new();
    let mut acknowledged = 0u64;
    let mut n = 0;
    for _ in 0..5 {
        n += 1;
        assert_eq!(post(&client, &http, traces(n)).await.status(), 200);
        acknowledged += 10;
    }

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
    let stored: u64 = records.iter().map(|(_, record)| record.item_count).sum();
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
