//! The re-batching pipeline: real OTLP/gRPC in front, a real OTLP target
//! behind; what arrives is what was sent, in other requests, less and
//! changed exactly as asked and as counted.

use std::collections::{BTreeMap, HashMap};

use tape_otlp::proto::collector::logs::v1::logs_service_client::LogsServiceClient;
use tape_otlp::proto::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use tape_otlp::proto::collector::trace::v1::trace_service_client::TraceServiceClient;
use tape_otlp::proto::trace::v1::Span;
use tape_otlp::{ExportRequest, Signal, sample};
use tape_testkit::otlp_target::{Failure, OtlpTarget, OtlpTargetOptions, ReceivedRequest};
use tape_testkit::rebatcher::{Rebatcher, RebatcherError};

/// Sends trace requests of these sizes (each of its own service and
/// traces), two metrics requests and two logs requests, one at a time.
async fn send(endpoint: &str, spans: &[u64]) -> Vec<Span> {
    let mut traces = TraceServiceClient::connect(endpoint.to_owned()).await.unwrap();
    let mut sent = Vec::new();
    for (n, count) in spans.iter().enumerate() {
        let request = sample::traces(&format!("service-{}", n % 2), *count, n as u64 * 1_000_000);
        sent.extend(spans_of(&ExportRequest::Traces(request.clone())));
        traces.export(request).await.unwrap();
    }
    let mut metrics = MetricsServiceClient::connect(endpoint.to_owned()).await.unwrap();
    let mut logs = LogsServiceClient::connect(endpoint.to_owned()).await.unwrap();
    for n in 0..2 {
        metrics.export(sample::metrics("service-0", n * 1_000)).await.unwrap();
        logs.export(sample::logs("service-1", 5 + n, n * 1_000)).await.unwrap();
    }
    sent
}

fn spans_of(request: &ExportRequest) -> Vec<Span> {
    let ExportRequest::Traces(request) = request else { return Vec::new() };
    request
        .resource_spans
        .iter()
        .flat_map(|resource| &resource.scope_spans)
        .flat_map(|scope| scope.spans.clone())
        .collect()
}

fn received_spans(received: &[ReceivedRequest]) -> Vec<Span> {
    received.iter().flat_map(|request| spans_of(&request.request())).collect()
}

fn items(received: &[ReceivedRequest], signal: Signal) -> u64 {
    received.iter().filter(|request| request.signal == signal).map(|request| request.request().item_count()).sum()
}

async fn target() -> OtlpTarget {
    OtlpTarget::start(OtlpTargetOptions::default()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_item_arrives_in_order_in_batches_that_merge_and_split_requests() {
    let target = target().await;
    let rebatcher = Rebatcher::builder(target.grpc_endpoint()).batch_items(6).start().await.unwrap();
    let sent = send(rebatcher.endpoint(), &[10, 10, 3]).await;
    rebatcher.flush().await.unwrap();

    let received = target.received();
    assert_eq!(received_spans(&received), sent, "the same spans, in the order sent");
    let counts = rebatcher.stop().await.unwrap();
    for signal in Signal::ALL {
        let per_signal: Vec<_> = received.iter().filter(|request| request.signal == signal).collect();
        assert_eq!(counts.requests_forwarded.get(signal), per_signal.len() as u64, "{signal}");
        assert_eq!(counts.items_forwarded.get(signal), items(&received, signal), "{signal}");
        assert_eq!(counts.items_forwarded.get(signal), counts.items_received.get(signal), "{signal}");
        assert_eq!(counts.requests_received.get(signal), if signal == Signal::Traces { 3 } else { 2 });
        // Every request but the last (flushed) has six items.
        let sizes: Vec<u64> = per_signal.iter().map(|request| request.request().item_count()).collect();
        assert!(sizes[..sizes.len() - 1].iter().all(|size| *size == 6), "{signal}: {sizes:?}");
        assert!(counts.requests_merged.get(signal) > 0 && counts.resources_split.get(signal) > 0, "{signal}");
    }
    assert_eq!(counts.items_received.traces, 23);
    assert_eq!(counts.requests_forwarded.traces, 4);
    // Spans 1-6 of the first request | 7-10 of the first, 1-2 of the
    // second | 3-8 of the second | 9-10 of the second, 1-3 of the third
    // (flushed): two requests merged, two split.
    assert_eq!(counts.requests_merged.traces, 2);
    assert_eq!(counts.resources_split.traces, 2);
    assert_eq!(counts.spans_dropped_singly + counts.spans_dropped_with_traces + counts.spans_changed, 0);
    assert_eq!((counts.traces_dropped, counts.traces_incomplete), (0, 0));
    assert_eq!(counts.traces_received, 2 + 2 + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_it_drops_and_changes_is_what_it_counts() {
    let target = target().await;
    let rebatcher = Rebatcher::builder(target.grpc_endpoint())
        .batch_items(13)
        .drop_spans(10)
        .drop_traces(20)
        .add_resource_attribute("pipeline", "rebatcher")
        .delete_span_attribute("url.path")
        .start()
        .await
        .unwrap();
    let sent = send(rebatcher.endpoint(), &[400, 240, 160]).await;
    let counts = rebatcher.stop().await.unwrap();
    let received = target.received();
    let delivered = received_spans(&received);

    // Spans: the ones delivered are the ones sent less those dropped.
    assert_eq!(counts.items_received.traces, sent.len() as u64);
    let dropped = counts.spans_dropped_singly + counts.spans_dropped_with_traces;
    assert!(counts.spans_dropped_singly > 0 && counts.spans_dropped_with_traces > 0, "{counts:?}");
    assert_eq!(delivered.len() as u64, sent.len() as u64 - dropped);
    assert_eq!(counts.items_forwarded.traces, delivered.len() as u64);

    // Traces: dropped (nothing delivered) and incomplete, as delivered.
    let mut per_trace: HashMap<&[u8], (u64, u64)> = HashMap::new();
    for span in &sent {
        per_trace.entry(&span.trace_id).or_default().0 += 1;
    }
    for span in &delivered {
        per_trace.get_mut(span.trace_id.as_slice()).unwrap().1 += 1;
    }
    let traces_dropped = per_trace.values().filter(|(_, delivered)| *delivered == 0).count() as u64;
    let incomplete = per_trace.values().filter(|(sent, delivered)| (1..*sent).contains(delivered)).count() as u64;
    assert_eq!(counts.traces_received, per_trace.len() as u64);
    assert_eq!((counts.traces_dropped, counts.traces_incomplete), (traces_dropped, incomplete));
    assert!(counts.traces_dropped_whole > 0 && counts.traces_dropped_whole <= traces_dropped, "{counts:?}");
    assert!(incomplete > 0);

    // Attributes: every delivered span lost url.path (every sample span
    // has it), every resource of every signal got pipeline=rebatcher.
    assert!(delivered.iter().all(|span| span.attributes.iter().all(|attribute| attribute.key != "url.path")));
    assert_eq!(counts.spans_changed, delivered.len() as u64);
    let mut resources = BTreeMap::new();
    for request in &received {
        let json: serde_json::Value = serde_json::from_slice(&request.request().encode_json().unwrap()).unwrap();
        let list = json.as_object().unwrap().values().next().unwrap().as_array().unwrap();
        for resource in list {
            let attributes = resource["resource"]["attributes"].as_array().unwrap();
            let has = attributes
                .iter()
                .any(|attribute| attribute["key"] == "pipeline" && attribute["value"]["stringValue"] == "rebatcher");
            assert!(has, "{resource}");
            *resources.entry(request.signal.as_str()).or_insert(0) += 1;
        }
    }
    assert_eq!(resources.len(), 3);
    assert_eq!(counts.resources_changed.traces, 3);
    assert_eq!((counts.resources_changed.metrics, counts.resources_changed.logs), (2, 2));
    for signal in [Signal::Metrics, Signal::Logs] {
        assert_eq!(counts.items_forwarded.get(signal), counts.items_received.get(signal), "{signal}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_failure_is_an_error_and_refuses_what_follows() {
    let target = target().await;
    let rebatcher = Rebatcher::builder(target.grpc_endpoint()).batch_items(5).start().await.unwrap();
    target.fail_next(1, Failure::Grpc(tonic::Code::InvalidArgument, None));
    let mut traces = TraceServiceClient::connect(rebatcher.endpoint().to_owned()).await.unwrap();
    traces.export(sample::traces("a", 3, 0)).await.unwrap();
    let error = rebatcher.flush().await.unwrap_err();
    let RebatcherError::Upstream { signal, items, ref message, .. } = error else { panic!("{error:?}") };
    assert_eq!((signal, items), (Signal::Traces, 3));
    assert!(message.contains("InvalidArgument"), "{message}");
    assert!(error.to_string().contains(target.grpc_endpoint()), "{error}");

    let refused = traces.export(sample::traces("a", 3, 0)).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Internal);
    assert!(refused.message().contains("did not take a traces request of 3 items"), "{}", refused.message());
    assert_eq!(rebatcher.stop().await.unwrap_err(), error);
    assert_eq!(target.received().len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_success_upstream_is_an_error_too() {
    let target = target().await;
    target.partial_success(2);
    let rebatcher = Rebatcher::builder(target.grpc_endpoint()).start().await.unwrap();
    let mut logs = LogsServiceClient::connect(rebatcher.endpoint().to_owned()).await.unwrap();
    logs.export(sample::logs("a", 4, 0)).await.unwrap();
    let error = rebatcher.stop().await.unwrap_err();
    assert!(error.to_string().contains("2 items rejected"), "{error}");
}

#[tokio::test]
async fn an_upstream_that_does_not_answer_is_refused_at_start() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let error = Rebatcher::builder(closed.clone()).start().await.unwrap_err();
    assert!(matches!(&error, RebatcherError::Connect { endpoint, .. } if *endpoint == closed), "{error:?}");
    let error = Rebatcher::builder("not a url").start().await.unwrap_err();
    assert!(error.to_string().contains("not a url"), "{error}");
}
