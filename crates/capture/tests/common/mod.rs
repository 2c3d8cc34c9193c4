//! Shared by the capture tests: a capture on free loopback ports recording
//! into a local store, and a raw OTLP/gRPC client that sends any bytes.

#![allow(dead_code)] // each test file uses its own part

use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use tape_capture::grpc::RawCodec;
use tape_capture::{Capture, CaptureConfig, CaptureOutcome, DEFAULT_MAX_REQUEST_BYTES, RecorderConfig};
use tape_otlp::Signal;
use tape_session::{Record, SessionId, SessionMetadata, SessionStore, SessionType, read_session};
use tape_store::LocalStore;
use tonic::codec::CompressionEncoding;

/// A capture on free loopback ports, recording into a local store.
pub struct Running {
    pub capture: Capture,
    pub store: Arc<dyn SessionStore>,
    pub dir: tempfile::TempDir,
}

pub fn default_config() -> CaptureConfig {
    CaptureConfig {
        grpc: Some("127.0.0.1:0".parse().unwrap()),
        http: Some("127.0.0.1:0".parse().unwrap()),
        max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
        receive: tape_capture::ReceiveLimits::default(),
        recorder: RecorderConfig::default(),
        forward: None,
    }
}

pub async fn start(config: impl FnOnce(&mut CaptureConfig)) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn SessionStore> = Arc::new(LocalStore::new(dir.path()));
    start_on(store, dir, config).await
}

pub async fn start_on(
    store: Arc<dyn SessionStore>,
    dir: tempfile::TempDir,
    config: impl FnOnce(&mut CaptureConfig),
) -> Running {
    let id = SessionId::new("capture-test").unwrap();
    let metadata = SessionMetadata::new(id, SessionType::Capture, tape_capture::now(), "test".to_owned());
    let mut capture_config = default_config();
    config(&mut capture_config);
    let capture = Capture::start(Arc::clone(&store), metadata, capture_config).await.unwrap();
    Running { capture, store, dir }
}

impl Running {
    pub fn grpc(&self) -> String {
        format!("http://{}", self.capture.grpc_addr().unwrap())
    }

    pub fn http(&self) -> String {
        format!("http://{}", self.capture.http_addr().unwrap())
    }

    /// Posts `body`, of `content_type`, to `path` on the HTTP receiver.
    pub async fn post(
        &self,
        client: &reqwest::Client,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        client
            .post(format!("{}{path}", self.http()))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// Stops the capture and returns its outcome and every record.
    pub async fn finish(self) -> (CaptureOutcome, Vec<(Signal, Record)>) {
        self.capture.stop();
        let outcome = self.capture.wait().await.unwrap();
        let records = stored_records(self.store.as_ref(), &outcome).await;
        (outcome, records)
    }
}

/// Every record of the outcome's session, read back from the store, in
/// receive-time order across signals (the store keeps one blob per signal).
pub async fn stored_records(store: &dyn SessionStore, outcome: &CaptureOutcome) -> Vec<(Signal, Record)> {
    let stored = store.read_metadata(&outcome.recording.metadata.session_id).await.unwrap();
    assert_eq!(stored, outcome.recording.metadata, "the metadata in the store is the outcome's");
    let mut records: Vec<(Signal, Record)> = read_session(store, &stored, |_| true).try_collect().await.unwrap();
    records.sort_by_key(|(_, record)| record.receive_time());
    records
}

/// Calls `Export` of `signal`'s service at `endpoint` with `payload`.
pub async fn grpc_export(endpoint: &str, signal: Signal, payload: Bytes, gzip: bool) -> Result<Bytes, tonic::Status> {
    let channel = tonic::transport::Endpoint::from_shared(endpoint.to_owned()).unwrap().connect().await.unwrap();
    let mut client = tonic::client::Grpc::new(channel).max_encoding_message_size(usize::MAX);
    if gzip {
        client = client.send_compressed(CompressionEncoding::Gzip);
    }
    client.ready().await.unwrap();
    let service = match signal {
        Signal::Traces => "trace.v1.TraceService",
        Signal::Metrics => "metrics.v1.MetricsService",
        Signal::Logs => "logs.v1.LogsService",
    };
    let path = format!("/opentelemetry.proto.collector.{service}/Export").parse().unwrap();
    client.unary(tonic::Request::new(payload), path, RawCodec).await.map(tonic::Response::into_inner)
}

/// The replay crate's exporter as an upstream, as the command line wires it.
pub struct ExporterUpstream(tape_replay::Exporter);

#[async_trait::async_trait]
impl tape_capture::Upstream for ExporterUpstream {
    fn describe(&self) -> String {
        self.0.endpoint().to_owned()
    }

    async fn send(&self, signal: Signal, payload: Bytes) -> Result<(), String> {
        let policy = tape_replay::RetryPolicy { max_attempts: 1, ..tape_replay::RetryPolicy::default() };
        tape_replay::export_with_retry(&self.0, &policy, signal, payload).await.map(|_| ()).map_err(|e| e.to_string())
    }
}

/// An upstream exporting to `endpoint` over `protocol`.
pub fn upstream(endpoint: &str, protocol: tape_replay::Protocol) -> Arc<dyn tape_capture::Upstream> {
    let mut config = tape_replay::ExporterConfig::new(endpoint, protocol);
    config.timeout = std::time::Duration::from_secs(5);
    Arc::new(ExporterUpstream(tape_replay::Exporter::new(config).unwrap()))
}

/// A local store whose blob creation waits at a gate: a store that has
/// fallen behind, for as long as the test keeps the gate shut.
#[derive(Debug)]
pub struct GatedStore {
    inner: LocalStore,
    gate: Arc<tokio::sync::Semaphore>,
}

impl GatedStore {
    /// A shut gate in front of a local store at `root`.
    pub fn new(root: &std::path::Path) -> (Arc<Self>, Arc<tokio::sync::Semaphore>) {
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        (Arc::new(GatedStore { inner: LocalStore::new(root), gate: Arc::clone(&gate) }), gate)
    }
}

#[async_trait::async_trait]
impl tape_session::StoreLayer for GatedStore {
    fn inner(&self) -> &dyn SessionStore {
        &self.inner
    }

    async fn create_blob(
        &self,
        id: &SessionId,
        key: &tape_session::BlobKey,
    ) -> Result<Box<dyn tape_session::BlobSink>, tape_session::Error> {
        // Opened once, the gate stays open.
        let _ = self.gate.acquire().await;
        self.inner.create_blob(id, key).await
    }
}
