//! Long-running receivers: idle, they acknowledge (and forward) without
//! recording; a capture attached records what arrives until it ends, by a
//! stop or a limit, and the receivers go back to idle for the next one.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use tape_capture::{
    AttachError, AttachedCapture, CaptureOutcome, DEFAULT_MAX_REQUEST_BYTES, ForwardConfig, Receivers, ReceiversConfig,
    RecorderConfig, StopReason,
};
use tape_otlp::{Encoding, ExportRequest, Signal};
use tape_replay::Protocol;
use tape_session::{Record, SessionId, SessionMetadata, SessionStatus, SessionStore, SessionType, read_session};
use tape_store::LocalStore;
use tape_testkit::otlp_target::{OtlpTarget, OtlpTargetOptions};

use common::{grpc_export, upstream};

/// Receivers on free loopback ports, and a local store to attach captures to.
struct Serving {
    receivers: Receivers,
    store: Arc<dyn SessionStore>,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

fn config() -> ReceiversConfig {
    ReceiversConfig {
        grpc: Some("127.0.0.1:0".parse().unwrap()),
        http: Some("127.0.0.1:0".parse().unwrap()),
        max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
        receive: tape_capture::ReceiveLimits::default(),
        forward: None,
    }
}

async fn serve(config: ReceiversConfig) -> Serving {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn SessionStore> = Arc::new(LocalStore::new(dir.path()));
    let receivers = Receivers::start(config).await.unwrap();
    Serving { receivers, store, client: reqwest::Client::new(), _dir: dir }
}

fn metadata(id: &str) -> SessionMetadata {
    SessionMetadata::new(SessionId::new(id).unwrap(), SessionType::Capture, tape_capture::now(), "test".to_owned())
}

fn traces(service: &str, n: u64) -> Vec<u8> {
    ExportRequest::Traces(tape_otlp::sample::traces(service, 3, n)).encode_protobuf()
}

fn logs(service: &str, n: u64) -> Vec<u8> {
    ExportRequest::Logs(tape_otlp::sample::logs(service, 2, n)).encode_protobuf()
}

impl Serving {
    fn grpc(&self) -> String {
        format!("http://{}", self.receivers.grpc_addr().unwrap())
    }

    async fn attach(&self, id: &str, config: RecorderConfig) -> Result<AttachedCapture, AttachError> {
        self.receivers.attach(Arc::clone(&self.store), metadata(id), config).await
    }

    /// Posts an OTLP/HTTP protobuf request and returns the status code.
    async fn post(&self, signal: Signal, payload: Vec<u8>) -> u16 {
        let url = format!("http://{}{}", self.receivers.http_addr().unwrap(), signal.http_path());
        let response =
            self.client.post(url).header("content-type", "application/x-protobuf").body(payload).send().await.unwrap();
        response.status().as_u16()
    }

    /// Sends `payload` over OTLP/gRPC, which must acknowledge it.
    async fn export(&self, signal: Signal, payload: Vec<u8>) {
        grpc_export(&self.grpc(), signal, Bytes::from(payload), false).await.unwrap();
    }

    /// Attaches a capture of session `id`, sends it `payload` over OTLP/gRPC
    /// and finishes it.
    async fn record_one(&self, id: &str, signal: Signal, payload: Vec<u8>) -> CaptureOutcome {
        let capture = self.attach(id, RecorderConfig::default()).await.unwrap();
        self.export(signal, payload).await;
        finish(capture).await
    }

    /// Every record of `outcome`'s session, read back from the store, in
    /// receive order.
    async fn records(&self, outcome: &CaptureOutcome) -> Vec<(Signal, Vec<u8>)> {
        let stored = self.store.read_metadata(&outcome.recording.metadata.session_id).await.unwrap();
        assert_eq!(stored, outcome.recording.metadata, "the metadata in the store is the outcome's");
        let mut records: Vec<(Signal, Record)> =
            read_session(self.store.as_ref(), &stored, |_| true).try_collect().await.unwrap();
        records.sort_by_key(|(_, record)| record.receive_time());
        records.into_iter().map(|(signal, record)| (signal, record.payload.to_vec())).collect()
    }
}

/// Stops `capture` and waits for its session to be finished.
async fn finish(capture: AttachedCapture) -> CaptureOutcome {
    capture.stop();
    let outcome = capture.wait().await.unwrap();
    assert_eq!(outcome.recording.metadata.status, SessionStatus::Completed);
    outcome
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_receivers_acknowledge_and_record_nothing() {
    let serving = serve(config()).await;
    assert_eq!(serving.receivers.attached(), None);
    assert_eq!(serving.post(Signal::Traces, traces("idle", 0)).await, 200);
    let json = ExportRequest::Logs(tape_otlp::sample::logs("idle", 4, 0)).encode(Encoding::Json).unwrap();
    let response = serving
        .client
        .post(format!("http://{}/v1/logs", serving.receivers.http_addr().unwrap()))
        .header("content-type", "application/json")
        .body(json)
        .send()
        .await
        .unwrap();
    assert_eq!((response.status().as_u16(), response.text().await.unwrap()), (200, "{}".to_owned()));
    serving.export(Signal::Traces, traces("idle", 1)).await;
    serving.export(Signal::Logs, logs("idle", 2)).await;

    assert!(serving.store.list_session_ids().await.unwrap().is_empty(), "no session is created");
    let stats = serving.receivers.stats().snapshot();
    assert_eq!((stats.traces.ignored_requests, stats.traces.ignored_items), (2, 6));
    assert_eq!((stats.logs.ignored_requests, stats.logs.ignored_items), (2, 6));
    assert_eq!(stats.total().requests, 0, "nothing is recorded");
    serving.receivers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attached_capture_records_exactly_what_arrives_until_it_stops() {
    let serving = serve(config()).await;
    assert_eq!(serving.post(Signal::Traces, traces("before", 0)).await, 200);

    let capture = serving.attach("first", RecorderConfig::default()).await.unwrap();
    assert_eq!(capture.session_id().as_str(), "first");
    assert_eq!(serving.receivers.attached(), Some(SessionId::new("first").unwrap()));
    let mut sent = Vec::new();
    for n in 0..3 {
        let payload = traces("during", n);
        assert_eq!(serving.post(Signal::Traces, payload.clone()).await, 200);
        sent.push((Signal::Traces, payload));
        let payload = logs("during", n);
        serving.export(Signal::Logs, payload.clone()).await;
        sent.push((Signal::Logs, payload));
    }
    // Refused requests count for the capture too.
    assert_eq!(serving.post(Signal::Traces, vec![0x0a, 0xff]).await, 400);
    let live = capture.stats().snapshot();
    assert_eq!((live.traces.requests, live.logs.requests), (3, 3));

    let outcome = finish(capture).await;
    assert_eq!(outcome.recording.reason, StopReason::Requested);
    assert_eq!(serving.records(&outcome).await, sent, "the session holds exactly the requests sent while attached");
    let metadata = &outcome.recording.metadata;
    assert_eq!((metadata.captured_traces, metadata.captured_logs), (9, 6));
    let own = outcome.stats;
    assert_eq!((own.traces.requests, own.traces.items, own.logs.requests, own.logs.items), (3, 9, 3, 6));
    assert_eq!((own.total().ignored_requests, own.traces.rejected), (0, 1), "the idle request is not the capture's");

    // Idle again: acknowledged, not recorded, counted as ignored.
    assert_eq!(serving.receivers.attached(), None);
    assert_eq!(serving.post(Signal::Traces, traces("after", 0)).await, 200);
    let all = serving.receivers.stats().snapshot();
    assert_eq!((all.traces.requests, all.traces.items, all.logs.requests), (3, 9, 3), "the capture's counts");
    assert_eq!((all.traces.ignored_requests, all.traces.rejected), (2, 1), "and the idle ones");
    assert_eq!(serving.store.list_session_ids().await.unwrap().len(), 1);
    serving.receivers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_capture_records_only_its_own_requests() {
    let serving = serve(config()).await;
    let first = serving.record_one("first", Signal::Traces, traces("first", 0)).await;
    assert_eq!(serving.post(Signal::Traces, traces("between", 0)).await, 200);

    let second = serving.attach("second", RecorderConfig::default()).await.unwrap();
    assert_eq!(serving.post(Signal::Traces, traces("second", 0)).await, 200);
    serving.export(Signal::Logs, logs("second", 1)).await;
    let second = finish(second).await;

    assert_eq!(serving.records(&first).await, vec![(Signal::Traces, traces("first", 0))]);
    assert_eq!(
        serving.records(&second).await,
        vec![(Signal::Traces, traces("second", 0)), (Signal::Logs, logs("second", 1))]
    );
    assert_eq!((first.stats.total().requests, second.stats.total().requests), (1, 2));
    let all = serving.receivers.stats().snapshot().total();
    assert_eq!((all.requests, all.ignored_requests), (3, 1));
    serving.receivers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_capture_at_a_time_and_a_taken_session_id_leaves_the_receivers_idle() {
    let serving = serve(config()).await;
    let first = serving.attach("first", RecorderConfig::default()).await.unwrap();
    let busy = serving.attach("second", RecorderConfig::default()).await;
    let Err(AttachError::Busy { session }) = busy else { panic!("a second capture must be refused while one runs") };
    assert_eq!(session.as_str(), "first");
    let message = AttachError::Busy { session }.to_string();
    assert!(message.contains("first"), "{message}");
    serving.export(Signal::Traces, traces("first", 0)).await;
    let outcome = finish(first).await;
    assert_eq!(serving.records(&outcome).await.len(), 1, "the refused attach changed nothing");

    let taken = serving.attach("first", RecorderConfig::default()).await;
    let Err(AttachError::Session(tape_session::Error::AlreadyExists(id))) = taken else {
        panic!("a taken session id must be refused")
    };
    assert_eq!(id.as_str(), "first");
    assert_eq!(serving.receivers.attached(), None);
    assert_eq!(serving.post(Signal::Traces, traces("idle", 0)).await, 200);
    assert_eq!(serving.receivers.stats().snapshot().traces.ignored_requests, 1, "idle, not recording");
    let metadata = serving.store.read_metadata(&id).await.unwrap();
    assert_eq!(metadata, outcome.recording.metadata, "the existing session is untouched");

    let third = serving.record_one("third", Signal::Traces, traces("third", 0)).await;
    assert_eq!(serving.records(&third).await, vec![(Signal::Traces, traces("third", 0))]);
    serving.receivers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capture_that_reaches_a_limit_detaches_itself() {
    let serving = serve(config()).await;
    // The size limit is reached by the first request, exactly; the
    // duration limit with nothing sent, so that no request races it.
    let limit = traces("limited", 0).len() as u64;
    let limits = [
        (RecorderConfig { max_bytes: Some(limit), ..RecorderConfig::default() }, StopReason::SizeLimit, true),
        (
            RecorderConfig { max_duration: Some(Duration::from_millis(100)), ..RecorderConfig::default() },
            StopReason::DurationLimit,
            false,
        ),
    ];
    for (n, (config, reason, send)) in limits.into_iter().enumerate() {
        let capture = serving.attach(&format!("limited-{n}"), config).await.unwrap();
        let mut sent = Vec::new();
        if send {
            let payload = traces("limited", n as u64);
            assert_eq!(serving.post(Signal::Traces, payload.clone()).await, 200);
            sent.push((Signal::Traces, payload));
        }
        let outcome = capture.wait().await.unwrap();
        assert_eq!(outcome.recording.reason, reason);
        assert_eq!(outcome.recording.metadata.status, SessionStatus::Completed);
        assert_eq!(serving.records(&outcome).await, sent);
        // Idle again: acknowledged, where a stopped capture would refuse.
        assert_eq!(serving.receivers.attached(), None);
        assert_eq!(serving.post(Signal::Traces, traces("idle", 0)).await, 200);
    }
    assert_eq!(serving.receivers.stats().snapshot().traces.ignored_requests, 2);
    let next = serving.record_one("next", Signal::Logs, logs("next", 0)).await;
    assert_eq!(serving.records(&next).await, vec![(Signal::Logs, logs("next", 0))]);
    serving.receivers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_passes_on_everything_acknowledged_idle_or_recording() {
    let target = OtlpTarget::start(OtlpTargetOptions::default()).await;
    // One send at a time, so the upstream sees the order of arrival.
    let forward = ForwardConfig { concurrency: 1, ..ForwardConfig::default() };
    let serving = serve(ReceiversConfig {
        forward: Some((upstream(target.http_endpoint(), Protocol::HttpProtobuf), forward)),
        ..config()
    })
    .await;
    let mut sent = Vec::new();
    for n in 0..2 {
        serving.export(Signal::Traces, traces("idle", n)).await;
        sent.push((Signal::Traces, traces("idle", n)));
    }
    assert_eq!(serving.post(Signal::Logs, logs("idle", 2)).await, 200);
    sent.push((Signal::Logs, logs("idle", 2)));
    let received = target.wait_for(sent.len()).await;
    let forwarded: Vec<_> = received.iter().map(|request| (request.signal, request.body.to_vec())).collect();
    assert_eq!(forwarded, sent, "upstream got every idle request");
    assert!(serving.store.list_session_ids().await.unwrap().is_empty());

    let capture = serving.attach("forwarded", RecorderConfig::default()).await.unwrap();
    serving.export(Signal::Traces, traces("recorded", 0)).await;
    sent.push((Signal::Traces, traces("recorded", 0)));
    let outcome = finish(capture).await;
    assert_eq!(serving.records(&outcome).await, vec![(Signal::Traces, traces("recorded", 0))]);
    let received = target.wait_for(sent.len()).await;
    let forwarded: Vec<_> = received.iter().map(|request| (request.signal, request.body.to_vec())).collect();
    assert_eq!(forwarded, sent, "and the recorded one");

    serving.receivers.shutdown().await;
    let all = serving.receivers.stats().snapshot().total();
    assert_eq!((all.forwarded, all.forward_failed), (4, 0));
    assert_eq!((all.requests, all.ignored_requests), (1, 3));
    assert_eq!(outcome.stats.total().forwarded, 0, "forwarding is counted for the receivers only");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_the_attached_capture() {
    let serving = serve(config()).await;
    let capture = serving.attach("shut", RecorderConfig::default()).await.unwrap();
    serving.export(Signal::Traces, traces("shut", 0)).await;
    assert_eq!(serving.post(Signal::Logs, logs("shut", 1)).await, 200);
    serving.receivers.shutdown().await;
    assert!(capture.is_finished(), "shutdown returns once the session is finished");
    let outcome = capture.wait().await.unwrap();
    assert_eq!(outcome.recording.reason, StopReason::Requested);
    let stored = serving.store.read_metadata(&SessionId::new("shut").unwrap()).await.unwrap();
    assert_eq!(stored.status, SessionStatus::Completed);
    assert_eq!(
        serving.records(&outcome).await,
        vec![(Signal::Traces, traces("shut", 0)), (Signal::Logs, logs("shut", 1))]
    );

    let after = serving.attach("after", RecorderConfig::default()).await;
    assert!(matches!(after, Err(AttachError::ShutDown)), "no capture after shutdown");
    serving.receivers.shutdown().await;
    assert!(serving.store.read_metadata(&SessionId::new("after").unwrap()).await.is_err(), "no session created");
}

/// Senders keep sending while a capture stops: every request the capture
/// admitted is in its session, and what it holds from each sender is a
/// run of that sender's requests from the first, each acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_in_flight_when_a_capture_stops_are_recorded_or_refused_never_lost() {
    const SENDERS: usize = 4;
    let serving = Arc::new(serve(config()).await);
    let capture = serving.attach("in-flight", RecorderConfig::default()).await.unwrap();
    let (done, stopped) = tokio::sync::watch::channel(false);
    let (acknowledged, mut first_acks) = tokio::sync::mpsc::channel(SENDERS);
    let mut senders = Vec::new();
    for sender in 0..SENDERS {
        let (serving, stopped, acknowledged) = (Arc::clone(&serving), stopped.clone(), acknowledged.clone());
        senders.push(tokio::spawn(async move {
            let service = format!("sender-{sender}");
            let mut statuses = Vec::new();
            for n in 0.. {
                if *stopped.borrow() {
                    break;
                }
                let status = serving.post(Signal::Traces, traces(&service, n)).await;
                assert!(status == 200 || status == 503, "acknowledged or refused as retryable, not {status}");
                if n == 0 {
                    acknowledged.send(()).await.unwrap();
                }
                statuses.push(status);
            }
            statuses
        }));
    }
    for _ in 0..SENDERS {
        first_acks.recv().await.unwrap();
    }
    let outcome = finish(capture).await;
    done.send_replace(true);
    let mut statuses = Vec::new();
    for sender in senders {
        statuses.push(sender.await.unwrap());
    }

    let records = serving.records(&outcome).await;
    assert_eq!(records.len() as u64, outcome.stats.traces.requests, "every admitted request is in the session");
    let sent: HashMap<Vec<u8>, (usize, u64)> = (0..SENDERS)
        .flat_map(|sender| {
            (0..statuses[sender].len() as u64).map(move |n| (traces(&format!("sender-{sender}"), n), (sender, n)))
        })
        .collect();
    let mut recorded = vec![Vec::new(); SENDERS];
    for (_, payload) in &records {
        let (sender, n) = sent[payload];
        recorded[sender].push(n);
    }
    for (sender, recorded) in recorded.iter().enumerate() {
        assert!(!recorded.is_empty(), "sender {sender}: its first request was recorded");
        let expected: Vec<u64> = (0..recorded.len() as u64).collect();
        assert_eq!(recorded, &expected, "sender {sender}: a run of its requests from the first");
        assert!(statuses[sender][..recorded.len()].iter().all(|status| *status == 200));
    }
    serving.receivers.shutdown().await;
}
