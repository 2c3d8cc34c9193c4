//! The engine on paused time: pacing, rate limit, loops and ids, duration,
//! selection, and damaged blobs. The sink remembers when each request was
//! handed to it.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use common::{RecordingSink, local_store, records, replay_to, seed};
use tape_otlp::{ExportRequest, Signal, SignalSet};
use tape_replay::{
    EndReason, IdRegeneration, Position, Progress, ReplayError, ReplayOptions, Selection, Speed, TimestampMode, plan,
    replay,
};
use tape_session::SessionStore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

fn options(speed: Speed) -> ReplayOptions {
    ReplayOptions { speed, timestamps: TimestampMode::None, ..ReplayOptions::default() }
}

/// Offsets of the sent requests from the first, and the schedule they
/// should have kept: recorded offsets over the speed.
fn deviations(sent: &[common::Sent], receives: &[u64], factor: f64) -> Vec<f64> {
    let first_at = sent[0].at;
    sent.iter()
        .zip(receives)
        .map(|(sent, receive)| {
            let actual = (sent.at - first_at).as_secs_f64();
            #[allow(clippy::cast_precision_loss)]
            let scheduled = (receive - receives[0]) as f64 / 1e9 / factor;
            (actual - scheduled).abs()
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn records_are_sent_at_their_recorded_offsets_divided_by_the_speed() {
    let (_dir, store) = local_store();
    let metadata = seed(store.as_ref(), "pacing", "payment-failure", 6, 20.0, SignalSet::ALL).await;
    let expected = records(store.as_ref(), &metadata).await;
    let receives: Vec<u64> = expected.iter().map(|(_, record)| record.receive_time_unix_nano).collect();
    assert!(receives.last().unwrap() - receives[0] > 5_000_000_000, "the session spans its 6 s");

    for factor in [1.0, 10.0, 0.5] {
        let sink = RecordingSink::default();
        let started = Instant::now();
        let outcome = replay_to(&store, &metadata, &sink, &options(Speed::Factor(factor))).await;
        assert_eq!(outcome.reason, EndReason::Finished, "{:?}", outcome.error);
        let sent = sink.sent();
        assert_eq!(sent.len(), expected.len());
        // Sent in receive-time order, as recorded (timestamps none).
        for (sent, (signal, record)) in sent.iter().zip(&expected) {
            assert_eq!((sent.signal, &sent.payload), (*signal, &record.payload));
        }
        let worst = deviations(&sent, &receives, factor).into_iter().fold(0.0, f64::max);
        assert!(worst <= 0.001, "at {factor}x a request went {worst} s off its schedule");
        // The run lasts the session's span over the speed.
        #[allow(clippy::cast_precision_loss)]
        let span = (receives.last().unwrap() - receives[0]) as f64 / 1e9 / factor;
        assert!((started.elapsed().as_secs_f64() - span).abs() <= 0.001, "{factor}x: {:?}", started.elapsed());
    }
}

#[tokio::test(start_paused = true)]
async fn the_rate_limit_spaces_requests_by_their_items_and_is_exact_over_the_run() {
    let (_dir, store) = local_store();
    let metadata = seed(store.as_ref(), "rate", "basic-topology", 5, 10.0, SignalSet::ALL).await;
    let expected = records(store.as_ref(), &metadata).await;
    let sink = RecordingSink::default();
    let rate = 500.0;
    let options = ReplayOptions { rate_limit: Some(rate), ..options(Speed::Max) };
    let outcome = replay_to(&store, &metadata, &sink, &options).await;
    assert_eq!(outcome.reason, EndReason::Finished);
    let sent = sink.sent();
    assert_eq!(sent.len(), expected.len());
    // Each request goes once the items before it have had 1/rate s each.
    let mut items_before = 0_u64;
    for (sent, (_, record)) in sent.iter().zip(&expected) {
        #[allow(clippy::cast_precision_loss)]
        let scheduled = items_before as f64 / rate;
        let actual = (sent.at - sent_start(&sink)).as_secs_f64();
        assert!((actual - scheduled).abs() <= 0.001, "sent at {actual} s, due at {scheduled} s");
        items_before += record.item_count;
    }
}

fn sent_start(sink: &RecordingSink) -> Instant {
    sink.sent()[0].at
}

/// Trace and span ids of a traces request, with each span's parent.
fn spans(payload: &[u8]) -> Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> {
    let ExportRequest::Traces(request) = ExportRequest::decode_protobuf(Signal::Traces, payload).unwrap() else {
        unreachable!()
    };
    request
        .resource_spans
        .iter()
        .flat_map(|resource| &resource.scope_spans)
        .flat_map(|scope| &scope.spans)
        .map(|span| (span.trace_id.clone(), span.span_id.clone(), span.parent_span_id.clone()))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn loops_continue_the_timeline_with_new_ids_each_pass_and_whole_traces() {
    let (_dir, store) = local_store();
    let metadata = seed(store.as_ref(), "loops", "payment-failure", 3, 10.0, SignalSet::ALL).await;
    let expected = records(store.as_ref(), &metadata).await;
    let per_pass = expected.len();
    let receives: Vec<u64> = expected.iter().map(|(_, record)| record.receive_time_unix_nano).collect();
    let span = receives.last().unwrap() - receives[0];
    let period = span + span / (per_pass as u64 - 1);

    let sink = RecordingSink::default();
    let factor = 4.0;
    // Three whole passes and a part of the fourth.
    #[allow(clippy::cast_precision_loss)]
    let duration = Duration::from_secs_f64((3.5 * period as f64) / 1e9 / factor);
    let options =
        ReplayOptions { looping: true, duration: Some(duration), id_seed: 99, ..options(Speed::Factor(factor)) };
    let progress = Progress::new();
    let outcome = replay(Arc::clone(&store), &metadata, &sink, &options, &progress, &CancellationToken::new()).await;
    assert_eq!(outcome.reason, EndReason::Duration);
    let sent = sink.sent();
    assert!(sent.len() > 3 * per_pass && sent.len() < 4 * per_pass, "{} requests", sent.len());
    assert_eq!(outcome.progress.pass, 3);

    // Each pass continues the timeline: pass n is the recording shifted by n periods.
    let mut all_receives = Vec::new();
    for pass in 0..4_u64 {
        all_receives.extend(receives.iter().map(|receive| receive + pass * period));
    }
    let worst = deviations(&sent, &all_receives, factor).into_iter().fold(0.0, f64::max);
    assert!(worst <= 0.001, "a request went {worst} s off its schedule");

    let mut trace_ids_by_pass: Vec<HashSet<Vec<u8>>> = Vec::new();
    for (pass, chunk) in sent.chunks(per_pass).enumerate() {
        let mut trace_ids = HashSet::new();
        let mut span_ids = HashSet::new();
        let mut parents = Vec::new();
        for (sent, (_, original)) in chunk.iter().zip(&expected) {
            if sent.signal != Signal::Traces {
                continue;
            }
            if pass == 0 {
                assert_eq!(sent.payload, original.payload, "the first pass keeps the recorded ids");
            } else {
                assert_ne!(sent.payload, original.payload, "pass {pass} sends new ids");
            }
            for (trace, span, parent) in spans(&sent.payload) {
                trace_ids.insert(trace);
                span_ids.insert(span);
                if !parent.is_empty() {
                    parents.push(parent);
                }
            }
        }
        if chunk.len() == per_pass {
            // Every parent of a whole pass is a span of that pass.
            assert!(parents.iter().all(|parent| span_ids.contains(parent)), "pass {pass} has orphans");
        }
        // Logs name traces of their own pass.
        for sent in chunk.iter().filter(|sent| sent.signal == Signal::Logs) {
            let ExportRequest::Logs(logs) = ExportRequest::decode_protobuf(Signal::Logs, &sent.payload).unwrap() else {
                unreachable!()
            };
            for record in logs.resource_logs.iter().flat_map(|r| &r.scope_logs).flat_map(|s| &s.log_records) {
                if !record.trace_id.is_empty() && chunk.len() == per_pass {
                    assert!(trace_ids.contains(&record.trace_id), "a log of pass {pass} names a foreign trace");
                }
            }
        }
        trace_ids_by_pass.push(trace_ids);
    }
    for (a, first) in trace_ids_by_pass.iter().enumerate() {
        for second in &trace_ids_by_pass[a + 1..] {
            assert!(first.is_disjoint(second), "two passes share trace ids");
        }
    }

    // The same seed gives the same ids; another gives others.
    let again = RecordingSink::default();
    replay_to(&store, &metadata, &again, &options).await;
    assert_eq!(
        again.sent().iter().map(|s| &s.payload).collect::<Vec<_>>(),
        sent.iter().map(|s| &s.payload).collect::<Vec<_>>()
    );
    let always = RecordingSink::default();
    let options = ReplayOptions { ids: IdRegeneration::Always, looping: false, ..options };
    replay_to(&store, &metadata, &always, &options).await;
    let first_traces = expected.iter().position(|(signal, _)| *signal == Signal::Traces).unwrap();
    assert_ne!(always.sent()[first_traces].payload, expected[first_traces].1.payload);
}

#[tokio::test(start_paused = true)]
async fn a_stop_ends_the_replay_and_its_position_resumes_it_without_gaps_or_repeats() {
    let (_dir, store) = local_store();
    let metadata = seed(store.as_ref(), "stop", "basic-topology", 10, 5.0, SignalSet::ALL).await;
    let expected = records(store.as_ref(), &metadata).await;
    let sink = RecordingSink::default();
    let stop = CancellationToken::new();
    let progress = Progress::new();
    let stopper = {
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(4_500)).await;
            stop.cancel();
        })
    };
    let outcome = replay(Arc::clone(&store), &metadata, &sink, &options(Speed::Factor(1.0)), &progress, &stop).await;
    stopper.await.unwrap();
    assert_eq!(outcome.reason, EndReason::Stopped);
    let first = sink.sent();
    assert!(!first.is_empty() && first.len() < expected.len());
    assert_eq!(outcome.progress.done, Position { pass: 0, record: first.len() as u64, pending: Vec::new() });

    let resumed = RecordingSink::default();
    let options = ReplayOptions { resume: Some(outcome.progress.done), ..options(Speed::Max) };
    let outcome = replay_to(&store, &metadata, &resumed, &options).await;
    assert_eq!(outcome.reason, EndReason::Finished);
    let all: Vec<_> = first.iter().chain(&resumed.sent()).map(|sent| sent.payload.clone()).collect();
    let want: Vec<_> = expected.iter().map(|(_, record)| record.payload.clone()).collect();
    assert_eq!(all, want);
}

#[tokio::test(start_paused = true)]
async fn selection_keeps_signals_services_and_the_time_window() {
    let (_dir, store) = local_store();
    let metadata = seed(store.as_ref(), "select", "payment-failure", 6, 20.0, SignalSet::ALL).await;
    let expected = records(store.as_ref(), &metadata).await;
    let start = metadata.start_time.unix_nanos();
    let selection = Selection {
        signals: SignalSet::NONE.with(Signal::Traces).with(Signal::Logs),
        services: vec!["payment".to_owned()],
        from: Some(start + 2_000_000_000),
        until: Some(start + 4_000_000_000),
        shard: None,
    };
    let sink = RecordingSink::default();
    let options = ReplayOptions { selection: selection.clone(), ..options(Speed::Max) };
    let outcome = replay_to(&store, &metadata, &sink, &options).await;
    assert_eq!(outcome.reason, EndReason::Finished);
    let sent = sink.sent();
    assert!(!sent.is_empty());
    let mut services: HashMap<String, u64> = HashMap::new();
    for sent in &sent {
        assert_ne!(sent.signal, Signal::Metrics);
        let request = ExportRequest::decode_protobuf(sent.signal, &sent.payload).unwrap();
        for name in service_names(&request) {
            *services.entry(name).or_default() += 1;
        }
    }
    assert_eq!(services.keys().collect::<Vec<_>>(), ["payment"]);
    // Exactly the payment items of the window's traces and logs.
    let mut wanted = 0;
    for (signal, record) in &expected {
        let receive = record.receive_time_unix_nano;
        if *signal == Signal::Metrics || receive < start + 2_000_000_000 || receive >= start + 4_000_000_000 {
            continue;
        }
        wanted += payment_items(*signal, &record.payload);
    }
    let snapshot = outcome.progress;
    assert_eq!(snapshot.traces.sent_items + snapshot.logs.sent_items, wanted);
    // The dry run agrees.
    let plan = plan(store.as_ref(), &metadata, &selection, false).await.unwrap();
    assert_eq!(plan.records.iter().sum::<u64>(), sent.len() as u64);
    assert_eq!(plan.items.iter().sum::<u64>(), wanted);
}

fn service_names(request: &ExportRequest) -> Vec<String> {
    let resources: Vec<_> = match request {
        ExportRequest::Traces(r) => r.resource_spans.iter().map(|r| r.resource.clone()).collect(),
        ExportRequest::Metrics(r) => r.resource_metrics.iter().map(|r| r.resource.clone()).collect(),
        ExportRequest::Logs(r) => r.resource_logs.iter().map(|r| r.resource.clone()).collect(),
    };
    resources
        .into_iter()
        .flatten()
        .flat_map(|resource| resource.attributes)
        .filter(|attribute| attribute.key == "service.name")
        .filter_map(|attribute| match attribute.value?.value? {
            opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(name) => Some(name),
            _ => None,
        })
        .collect()
}

fn payment_items(signal: Signal, payload: &[u8]) -> u64 {
    let request = ExportRequest::decode_protobuf(signal, payload).unwrap();
    match request {
        ExportRequest::Traces(r) => r
            .resource_spans
            .iter()
            .filter(|r| is_payment(r.resource.as_ref()))
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len() as u64)
            .sum(),
        ExportRequest::Logs(r) => r
            .resource_logs
            .iter()
            .filter(|r| is_payment(r.resource.as_ref()))
            .flat_map(|r| &r.scope_logs)
            .map(|s| s.log_records.len() as u64)
            .sum(),
        ExportRequest::Metrics(_) => 0,
    }
}

fn is_payment(resource: Option<&opentelemetry_proto::tonic::resource::v1::Resource>) -> bool {
    resource.is_some_and(|resource| {
        service_names(&ExportRequest::Traces(
            opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest {
                resource_spans: vec![opentelemetry_proto::tonic::trace::v1::ResourceSpans {
                    resource: Some(resource.clone()),
                    ..Default::default()
                }],
            },
        )) == ["payment"]
    })
}

/// Overwrites bytes in the middle of the session's metrics blob.
fn corrupt_metrics_blob(dir: &std::path::Path, metadata: &tape_session::SessionMetadata) -> String {
    let blob = metadata.blobs.iter().find(|blob| blob.signal == Signal::Metrics).expect("a metrics blob");
    let path = dir.join("sessions").join(metadata.session_id.as_str()).join(blob.key.to_string());
    let mut bytes = std::fs::read(&path).expect("the blob file");
    let middle = bytes.len() / 2;
    for byte in &mut bytes[middle..middle + 64] {
        *byte ^= 0x5a;
    }
    std::fs::write(&path, bytes).unwrap();
    blob.key.to_string()
}

#[tokio::test(start_paused = true)]
async fn a_corrupt_blob_stops_the_replay_naming_it_unless_skipped() {
    let (dir, store) = local_store();
    let metadata = seed(store.as_ref(), "corrupt", "payment-failure", 6, 20.0, SignalSet::ALL).await;
    let expected = records(store.as_ref(), &metadata).await;
    let key = corrupt_metrics_blob(dir.path(), &metadata);

    let sink = RecordingSink::default();
    let outcome = replay_to(&store, &metadata, &sink, &options(Speed::Max)).await;
    assert_eq!(outcome.reason, EndReason::Failed);
    let error = outcome.error.expect("an error");
    assert!(matches!(error, ReplayError::Read { .. }));
    let message = error.to_string();
    assert!(message.contains(&key) && message.contains("byte") && message.contains("--skip-corrupt"), "{message}");

    let sink = RecordingSink::default();
    let options = ReplayOptions { skip_corrupt: true, ..options(Speed::Max) };
    let outcome = replay_to(&store, &metadata, &sink, &options).await;
    assert_eq!(outcome.reason, EndReason::Finished, "{:?}", outcome.error);
    assert_eq!(outcome.progress.corrupt_blobs, 1);
    let sent = sink.sent();
    // Every trace and log goes; metrics up to the damage.
    for signal in [Signal::Traces, Signal::Logs] {
        let want = expected.iter().filter(|(s, _)| *s == signal).count();
        assert_eq!(sent.iter().filter(|s| s.signal == signal).count(), want, "{signal}");
    }
    let metrics = sent.iter().filter(|s| s.signal == Signal::Metrics).count();
    assert!(metrics < expected.iter().filter(|(s, _)| *s == Signal::Metrics).count());
    // The dry run counts it too, and without skipping fails the same way.
    let plan_error = plan(store.as_ref(), &metadata, &Selection::default(), false).await.unwrap_err();
    assert!(plan_error.to_string().contains(&key));
    assert_eq!(plan(store.as_ref(), &metadata, &Selection::default(), true).await.unwrap().corrupt_blobs, 1);
}

#[tokio::test]
async fn an_empty_selection_sends_nothing_and_finishes() {
    let (_dir, store) = local_store();
    let metadata = seed(store.as_ref(), "empty", "basic-topology", 2, 5.0, SignalSet::ALL).await;
    let sink = RecordingSink::default();
    let start = metadata.start_time.unix_nanos();
    let selection = Selection { from: Some(start + 3_600_000_000_000), ..Selection::default() };
    let options = ReplayOptions { selection, ..options(Speed::Factor(1.0)) };
    let outcome = replay_to(&store, &metadata, &sink, &options).await;
    assert_eq!(outcome.reason, EndReason::Finished);
    assert!(sink.sent().is_empty());
    let _: &dyn SessionStore = store.as_ref();
}

/// A sink that refuses its `fail_at`-th request (from 0) for good.
#[derive(Debug, Default)]
struct RefusingSink {
    inner: RecordingSink,
    calls: std::sync::atomic::AtomicUsize,
    fail_at: usize,
}

impl tape_replay::Sink for RefusingSink {
    async fn export(
        &self,
        signal: Signal,
        payload: bytes::Bytes,
    ) -> Result<tape_replay::ExportOutcome, tape_replay::ExportError> {
        if self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == self.fail_at {
            return Err(tape_replay::ExportError::permanent("refused by the test"));
        }
        self.inner.export(signal, payload).await
    }
}

#[tokio::test(start_paused = true)]
async fn the_failure_that_stops_a_replay_is_sent_again_by_a_resume() {
    let (_dir, store) = local_store();
    let metadata = seed(store.as_ref(), "refused", "basic-topology", 4, 5.0, SignalSet::ALL).await;
    let expected = records(store.as_ref(), &metadata).await;
    let sink = RefusingSink { fail_at: 5, ..RefusingSink::default() };
    let options = ReplayOptions { concurrency: 1, ..options(Speed::Max) };
    let outcome = replay_to(&store, &metadata, &sink, &options).await;
    assert_eq!(outcome.reason, EndReason::Failed);
    assert_eq!(outcome.progress.done, Position { pass: 0, record: 5, pending: Vec::new() });
    assert_eq!(outcome.progress.total().failed_records, 1);

    let resumed = RecordingSink::default();
    let options = ReplayOptions { resume: Some(outcome.progress.done), ..options };
    let outcome = replay_to(&store, &metadata, &resumed, &options).await;
    assert_eq!(outcome.reason, EndReason::Finished);
    let all: Vec<_> = sink.inner.sent().iter().chain(&resumed.sent()).map(|sent| sent.payload.clone()).collect();
    let want: Vec<_> = expected.iter().map(|(_, record)| record.payload.clone()).collect();
    assert_eq!(all, want);
}

/// A target that is down: every request fails as retryable (after
/// `retry_after`, when given), or gets no answer at all (`stall`).
#[derive(Debug, Default)]
struct DeadSink {
    retry_after: Option<Duration>,
    stall: bool,
    calls: std::sync::atomic::AtomicUsize,
}

impl tape_replay::Sink for DeadSink {
    async fn export(&self, _: Signal, _: bytes::Bytes) -> Result<tape_replay::ExportOutcome, tape_replay::ExportError> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if self.stall {
            std::future::pending::<()>().await;
        }
        Err(tape_replay::ExportError::retryable("connection refused", self.retry_after))
    }
}

/// Replays to `sink` and cancels the stop at `stop_at`; returns the outcome
/// and how long the replay went on after the stop.
async fn replay_stopped_at(
    store: &Arc<dyn SessionStore>,
    metadata: &tape_session::SessionMetadata,
    sink: &DeadSink,
    options: &ReplayOptions,
    stop_at: Duration,
) -> (tape_replay::ReplayOutcome, Duration) {
    let stop = CancellationToken::new();
    let stopper = async {
        tokio::time::sleep(stop_at).await;
        stop.cancel();
        Instant::now()
    };
    let progress = Progress::new();
    let (outcome, stopped_at) =
        tokio::join!(replay(Arc::clone(store), metadata, sink, options, &progress, &stop), stopper);
    (outcome, stopped_at.elapsed())
}

#[tokio::test(start_paused = true)]
async fn a_stop_ends_a_replay_to_a_dead_target_at_once_whatever_the_attempts() {
    let (_dir, store) = local_store();
    let metadata = seed(store.as_ref(), "dead", "basic-topology", 4, 5.0, SignalSet::ALL).await;
    let sink = DeadSink::default();
    // Ten thousand attempts a minute apart: hours of retries per request.
    let retry = tape_replay::RetryPolicy {
        max_attempts: 10_000,
        initial_backoff: Duration::from_mins(1),
        max_backoff: Duration::from_mins(1),
        max_elapsed: Duration::from_hours(24),
    };
    let options = ReplayOptions { concurrency: 4, retry, ..options(Speed::Max) };
    let (outcome, after_stop) = replay_stopped_at(&store, &metadata, &sink, &options, Duration::from_secs(30)).await;
    assert_eq!(after_stop, Duration::ZERO, "the retry waits end with the stop");
    assert_eq!(outcome.reason, EndReason::Stopped, "{:?}", outcome.error);
    assert!(outcome.error.is_none());
    let total = outcome.progress.total();
    assert_eq!((total.sent_records, total.failed_records), (0, 0), "neither sent nor failed");
    assert_eq!(outcome.abandoned_records, 4, "the requests in flight are left for a resume");
    let calls = sink.calls.load(std::sync::atomic::Ordering::SeqCst) as u64;
    assert_eq!(total.retries, calls - 4, "attempts after the first of each request");
    assert_eq!(outcome.progress.done, Position { pass: 0, record: 0, pending: Vec::new() });
}

#[tokio::test(start_paused = true)]
async fn a_stop_with_the_default_attempts_ends_stopped_not_failed() {
    let (_dir, store) = local_store();
    let metadata = seed(store.as_ref(), "dead-default", "basic-topology", 4, 5.0, SignalSet::ALL).await;
    // The target asks for 1 s between attempts: the fifth and last would
    // fail at 4 s; the stop comes at 2.5 s.
    let sink = DeadSink { retry_after: Some(Duration::from_secs(1)), ..DeadSink::default() };
    let options = ReplayOptions { concurrency: 4, ..options(Speed::Max) };
    let (outcome, after_stop) =
        replay_stopped_at(&store, &metadata, &sink, &options, Duration::from_millis(2_500)).await;
    assert_eq!(after_stop, Duration::ZERO);
    assert_eq!(outcome.reason, EndReason::Stopped, "{:?}", outcome.error);
    assert_eq!(outcome.progress.total().failed_records, 0);
    assert_eq!(outcome.progress.total().retries, 4 * 2, "two retries each, at 1 s and 2 s");
}

#[tokio::test(start_paused = true)]
async fn a_stop_abandons_requests_that_get_no_answer_after_the_drain_timeout() {
    let (_dir, store) = local_store();
    let metadata = seed(store.as_ref(), "stalled", "basic-topology", 4, 5.0, SignalSet::ALL).await;
    let sink = DeadSink { stall: true, ..DeadSink::default() };
    let options = ReplayOptions { concurrency: 3, ..options(Speed::Max) };
    let (outcome, after_stop) = replay_stopped_at(&store, &metadata, &sink, &options, Duration::from_mins(1)).await;
    assert_eq!(after_stop, options.drain_timeout);
    assert!(options.drain_timeout < Duration::from_secs(10), "a stop is over within 10 s");
    assert_eq!(outcome.reason, EndReason::Stopped);
    assert_eq!(outcome.abandoned_records, 3);
    assert_eq!(outcome.progress.total().failed_records, 0);
}

/// A target that never answers its first request and refuses for good
/// every request from the `fail_from`-th on.
#[derive(Debug, Default)]
struct StallingThenRefusingSink {
    inner: RecordingSink,
    calls: std::sync::atomic::AtomicUsize,
    fail_from: usize,
}

impl tape_replay::Sink for StallingThenRefusingSink {
    async fn export(
        &self,
        signal: Signal,
        payload: bytes::Bytes,
    ) -> Result<tape_replay::ExportOutcome, tape_replay::ExportError> {
        let call = self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if call == 0 {
            std::future::pending::<()>().await;
        }
        if call >= self.fail_from {
            return Err(tape_replay::ExportError::permanent("refused by the test"));
        }
        self.inner.export(signal, payload).await
    }
}

#[tokio::test(start_paused = true)]
async fn a_resume_sends_only_what_was_not_done_though_a_slow_request_held_the_position() {
    let (_dir, store) = local_store();
    let metadata = seed(store.as_ref(), "exact", "payment-failure", 6, 10.0, SignalSet::ALL).await;
    let expected = records(store.as_ref(), &metadata).await;
    assert!(expected.len() > 60, "{}", expected.len());
    let concurrency = 4;
    let sink = StallingThenRefusingSink { fail_from: 40, ..StallingThenRefusingSink::default() };
    let options = ReplayOptions { concurrency, ..options(Speed::Max) };
    let outcome = replay_to(&store, &metadata, &sink, &options).await;
    assert_eq!(outcome.reason, EndReason::Failed);
    let position = outcome.progress.done.clone();
    assert!(position.record >= 38, "the records after the slow one count as done: {position:?}");
    assert!(position.pending.contains(&0), "the slow one is not done: {position:?}");
    assert!(position.pending.len() <= concurrency, "{position:?}");

    let resumed = RecordingSink::default();
    let options = ReplayOptions { resume: Some(position), ..options };
    let outcome = replay_to(&store, &metadata, &resumed, &options).await;
    assert_eq!(outcome.reason, EndReason::Finished, "{:?}", outcome.error);
    let first: Vec<_> = sink.inner.sent().iter().map(|sent| sent.payload.clone()).collect();
    let again: Vec<_> = resumed.sent().iter().map(|sent| sent.payload.clone()).collect();
    let duplicates = again.iter().filter(|payload| first.contains(payload)).count();
    assert_eq!(duplicates, 0, "nothing the target accepted is sent again");
    let mut all: Vec<_> = first.into_iter().chain(again).collect();
    let mut want: Vec<_> = expected.iter().map(|(_, record)| record.payload.clone()).collect();
    all.sort();
    want.sort();
    assert_eq!(all, want, "every record is delivered once");
}

/// The start times of the cumulative points of metrics requests, per
/// series (resource, scope, metric name, point attributes).
fn cumulative_starts(payloads: &[bytes::Bytes]) -> Vec<(String, u64)> {
    use tape_otlp::proto::metrics::v1::AggregationTemporality;
    use tape_otlp::proto::metrics::v1::metric::Data;
    let cumulative = AggregationTemporality::Cumulative as i32;
    let mut starts = Vec::new();
    for payload in payloads {
        let ExportRequest::Metrics(request) = ExportRequest::decode_protobuf(Signal::Metrics, payload).unwrap() else {
            unreachable!()
        };
        for resource in &request.resource_metrics {
            for scope in &resource.scope_metrics {
                for metric in &scope.metrics {
                    let series = |attributes: &dyn std::fmt::Debug| {
                        format!("{:?} {:?} {} {attributes:?}", resource.resource, scope.scope, metric.name)
                    };
                    match metric.data.as_ref().unwrap() {
                        Data::Sum(sum) if sum.aggregation_temporality == cumulative => starts
                            .extend(sum.data_points.iter().map(|p| (series(&p.attributes), p.start_time_unix_nano))),
                        Data::Histogram(histogram) if histogram.aggregation_temporality == cumulative => starts.extend(
                            histogram.data_points.iter().map(|p| (series(&p.attributes), p.start_time_unix_nano)),
                        ),
                        Data::ExponentialHistogram(histogram) if histogram.aggregation_temporality == cumulative => {
                            starts.extend(
                                histogram.data_points.iter().map(|p| (series(&p.attributes), p.start_time_unix_nano)),
                            );
                        }
                        Data::Summary(summary) => starts.extend(
                            summary.data_points.iter().map(|p| (series(&p.attributes), p.start_time_unix_nano)),
                        ),
                        _ => {}
                    }
                }
            }
        }
    }
    starts
}

#[tokio::test(start_paused = true)]
async fn cumulative_series_keep_one_start_time_per_pass_under_relative_and_current() {
    let (_dir, store) = local_store();
    let metrics = SignalSet::NONE.with(Signal::Metrics);
    let metadata = seed(store.as_ref(), "cumulative", "payment-failure", 6, 10.0, metrics).await;
    let expected = records(store.as_ref(), &metadata).await;
    let per_pass = expected.len();
    let recorded: Vec<_> = expected.iter().map(|(_, record)| record.payload.clone()).collect();
    let recorded_starts = cumulative_starts(&recorded);
    let series: HashSet<&String> = recorded_starts.iter().map(|(series, _)| series).collect();
    assert!(series.len() >= 3, "the seed has cumulative series: {}", series.len());

    let receives: Vec<u64> = expected.iter().map(|(_, record)| record.receive_time_unix_nano).collect();
    let span = receives.last().unwrap() - receives[0];
    let period = span + span / (per_pass as u64 - 1);
    let factor = 7.0;
    // Two whole passes and a part of the third.
    #[allow(clippy::cast_precision_loss)]
    let duration = Duration::from_secs_f64((2.5 * period as f64) / 1e9 / factor);
    for mode in [TimestampMode::Relative, TimestampMode::Current] {
        let sink = RecordingSink::default();
        let options = ReplayOptions {
            looping: true,
            duration: Some(duration),
            timestamps: mode,
            ..options(Speed::Factor(factor))
        };
        let outcome = replay_to(&store, &metadata, &sink, &options).await;
        assert_eq!(outcome.reason, EndReason::Duration);
        let sent: Vec<_> = sink.sent().into_iter().map(|sent| sent.payload).collect();
        assert!(sent.len() > 2 * per_pass, "{mode:?}: {} requests", sent.len());
        let mut per_series: HashMap<(String, usize), HashSet<u64>> = HashMap::new();
        for (index, payload) in sent.iter().enumerate() {
            for (series, start) in cumulative_starts(std::slice::from_ref(payload)) {
                per_series.entry((series, index / per_pass)).or_default().insert(start);
            }
        }
        for ((series, pass), starts) in &per_series {
            assert_eq!(starts.len(), 1, "{mode:?}: series {series} has {} start times in pass {pass}", starts.len());
        }
        // Each pass starts its series anew, later than the pass before.
        for name in &series {
            let start = |pass: usize| *per_series[&((*name).clone(), pass)].iter().next().unwrap();
            assert!(start(0) < start(1) && start(1) < start(2), "{mode:?}: {name}");
        }
    }
}
