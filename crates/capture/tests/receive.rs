//! A running capture receives from real OTLP clients (the OpenTelemetry SDK
//! exporters over gRPC and HTTP/protobuf, plain and gzip, and raw OTLP/JSON
//! bodies) and the session then holds exactly what was sent.

use std::time::{Duration, SystemTime};

use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanExporter as _, SpanLinks};
use prost::Message;
use tape_capture::{CaptureOutcome, StopReason};
use tape_otlp::proto::collector::trace::v1::ExportTraceServiceRequest;
use tape_otlp::{Encoding, ExportRequest, Signal, SignalSet};
use tape_session::{Record, SessionStatus};

mod common;

use common::start;

/// One attribute: the SDK keeps a resource's attributes in a hash map, so
/// with more the order of the encoded attributes could differ between two
/// encodings of the same resource.
fn resource() -> Resource {
    Resource::builder_empty().with_attributes([KeyValue::new("service.name", "checkout")]).build()
}

/// `count` spans of one trace, as the SDK hands them to an exporter.
fn spans(count: u64, batch: u64) -> Vec<SpanData> {
    let base = SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000);
    (0..count)
        .map(|n| {
            let trace_id = TraceId::from_bytes(((u128::from(batch) << 64) | 0xabc).to_be_bytes());
            let span_id = SpanId::from_bytes((n + 1 + batch * 1000).to_be_bytes());
            SpanData {
                span_context: SpanContext::new(trace_id, span_id, TraceFlags::SAMPLED, false, TraceState::default()),
                parent_span_id: if n == 0 {
                    SpanId::INVALID
                } else {
                    SpanId::from_bytes((1 + batch * 1000).to_be_bytes())
                },
                parent_span_is_remote: false,
                span_kind: if n == 0 { SpanKind::Server } else { SpanKind::Internal },
                name: format!("operation-{n}").into(),
                start_time: base + Duration::from_millis(n),
                end_time: base + Duration::from_millis(n + 7),
                attributes: vec![
                    KeyValue::new("http.route", "/pay"),
                    KeyValue::new("attempt", i64::try_from(n).unwrap()),
                ],
                dropped_attributes_count: 0,
                events: SpanEvents::default(),
                links: SpanLinks::default(),
                status: if n % 5 == 4 { Status::error("declined") } else { Status::Unset },
                instrumentation_scope: InstrumentationScope::builder("checkout-lib").with_version("1.2.3").build(),
            }
        })
        .collect()
}

/// The request the SDK's exporters build from `spans`: what must be stored.
fn expected_request(spans: Vec<SpanData>) -> ExportTraceServiceRequest {
    let resource = resource();
    let resource_spans =
        opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope(spans, &(&resource).into());
    ExportTraceServiceRequest { resource_spans }
}

fn payloads(records: &[(Signal, Record)], signal: Signal) -> Vec<Vec<u8>> {
    records.iter().filter(|(s, _)| *s == signal).map(|(_, record)| record.payload.to_vec()).collect()
}

async fn export_spans_over_grpc(endpoint: &str, compression: Option<opentelemetry_otlp::Compression>, batches: u64) {
    let mut builder = opentelemetry_otlp::SpanExporter::builder().with_tonic().with_endpoint(endpoint);
    if let Some(compression) = compression {
        builder = builder.with_compression(compression);
    }
    let mut exporter = builder.build().unwrap();
    exporter.set_resource(&resource());
    for batch in 0..batches {
        exporter.export(spans(10, batch)).await.unwrap();
    }
}

async fn export_spans_over_http(endpoint: &str, compression: Option<opentelemetry_otlp::Compression>, batches: u64) {
    let mut builder = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{endpoint}/v1/traces"));
    if let Some(compression) = compression {
        builder = builder.with_compression(compression);
    }
    let mut exporter = builder.build().unwrap();
    exporter.set_resource(&resource());
    for batch in 0..batches {
        exporter.export(spans(10, batch)).await.unwrap();
    }
}

fn assert_spans_recorded(outcome: &CaptureOutcome, records: &[(Signal, Record)], batches: u64) {
    let metadata = &outcome.recording.metadata;
    assert_eq!(metadata.status, SessionStatus::Completed);
    assert_eq!(outcome.recording.reason, StopReason::Requested);
    assert_eq!(metadata.captured_traces, 10 * batches);
    assert_eq!(metadata.request_counts.traces, batches);
    let expected: Vec<Vec<u8>> = (0..batches).map(|batch| expected_request(spans(10, batch)).encode_to_vec()).collect();
    let stored = payloads(records, Signal::Traces);
    assert_eq!(stored.len(), expected.len());
    for (n, (stored, expected)) in stored.iter().zip(&expected).enumerate() {
        assert!(stored == expected, "request {n}: the session holds the exporter's request, byte for byte");
    }
    assert!(records.iter().all(|(_, record)| record.item_count == 10));
    let times: Vec<_> = records.iter().map(|(_, record)| record.receive_time()).collect();
    assert!(times.windows(2).all(|pair| pair[0] <= pair[1]), "receive times follow arrival");
    assert!(times.iter().all(|time| *time >= metadata.start_time && Some(*time) <= metadata.end_time));
    assert_eq!(outcome.stats.traces.requests, batches);
    assert_eq!(outcome.stats.traces.rejected, 0);
}

/// Runs a capture, exports three batches of spans to it through the SDK's
/// exporter over HTTP/protobuf or gRPC, and checks they are recorded byte for byte.
async fn spans_are_recorded_byte_for_byte(http: bool, compression: Option<opentelemetry_otlp::Compression>) {
    let running = start(|_| {}).await;
    if http {
        export_spans_over_http(&running.http(), compression, 3).await;
    } else {
        export_spans_over_grpc(&running.grpc(), compression, 3).await;
    }
    let (outcome, records) = running.finish().await;
    assert_spans_recorded(&outcome, &records, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_span_exporter_over_grpc_plain_is_recorded_byte_for_byte() {
    spans_are_recorded_byte_for_byte(false, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_span_exporter_over_grpc_gzip_is_recorded_byte_for_byte() {
    spans_are_recorded_byte_for_byte(false, Some(opentelemetry_otlp::Compression::Gzip)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_span_exporter_over_http_protobuf_plain_is_recorded_byte_for_byte() {
    spans_are_recorded_byte_for_byte(true, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_span_exporter_over_http_protobuf_gzip_is_recorded_byte_for_byte() {
    spans_are_recorded_byte_for_byte(true, Some(opentelemetry_otlp::Compression::Gzip)).await;
}

/// Emits metrics and logs through SDK providers wired to exporters of the
/// given transport, and flushes them.
async fn emit_metrics_and_logs(grpc: Option<String>, http: Option<String>, gzip: bool) {
    use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _, Severity};
    use opentelemetry::metrics::MeterProvider as _;

    let compression = gzip.then_some(opentelemetry_otlp::Compression::Gzip);
    let (metric_exporter, log_exporter) = match (&grpc, &http) {
        (Some(endpoint), _) => {
            let mut metrics = opentelemetry_otlp::MetricExporter::builder().with_tonic().with_endpoint(endpoint);
            let mut logs = opentelemetry_otlp::LogExporter::builder().with_tonic().with_endpoint(endpoint);
            if let Some(compression) = compression {
                metrics = metrics.with_compression(compression);
                logs = logs.with_compression(compression);
            }
            (metrics.build().unwrap(), logs.build().unwrap())
        }
        (None, Some(endpoint)) => {
            // The SDK exports from threads of its own, outside the tokio
            // runtime: over HTTP that takes the blocking client, made (and
            // later dropped) off the runtime's threads.
            let client = tokio::task::spawn_blocking(reqwest::blocking::Client::new).await.unwrap();
            let mut metrics = opentelemetry_otlp::MetricExporter::builder()
                .with_http()
                .with_http_client(client.clone())
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(format!("{endpoint}/v1/metrics"));
            let mut logs = opentelemetry_otlp::LogExporter::builder()
                .with_http()
                .with_http_client(client)
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(format!("{endpoint}/v1/logs"));
            if let Some(compression) = compression {
                metrics = metrics.with_compression(compression);
                logs = logs.with_compression(compression);
            }
            (metrics.build().unwrap(), logs.build().unwrap())
        }
        (None, None) => unreachable!("one transport"),
    };
    let meters = opentelemetry_sdk::metrics::SdkMeterProvider::builder()
        .with_resource(resource())
        .with_periodic_exporter(metric_exporter)
        .build();
    let loggers = opentelemetry_sdk::logs::SdkLoggerProvider::builder()
        .with_resource(resource())
        .with_batch_exporter(log_exporter)
        .build();
    let meter = meters.meter("checkout-lib");
    let counter = meter.u64_counter("checkout.orders").build();
    let histogram = meter.f64_histogram("checkout.duration").with_unit("s").build();
    for n in 0..4u64 {
        let route = if n % 2 == 0 { "/pay" } else { "/cart" };
        counter.add(n + 1, &[KeyValue::new("http.route", route)]);
        histogram.record(0.01 * f64::from(u32::try_from(n + 1).unwrap()), &[KeyValue::new("http.route", route)]);
    }
    let logger = loggers.logger("checkout-lib");
    for n in 0..7 {
        let mut record = logger.create_log_record();
        record.set_severity_number(Severity::Warn);
        record.set_body(format!("payment retry {n}").into());
        logger.emit(record);
    }
    // The providers flush and shut down on a blocking thread: they block.
    tokio::task::spawn_blocking(move || {
        meters.force_flush().unwrap();
        loggers.force_flush().unwrap();
        meters.shutdown().unwrap();
        loggers.shutdown().unwrap();
    })
    .await
    .unwrap();
}

fn assert_metrics_and_logs_recorded(outcome: &CaptureOutcome, records: &[(Signal, Record)]) {
    let metadata = &outcome.recording.metadata;
    // Two routes for the counter and two for the histogram, once or more
    // (shutdown may collect again): every export is whole.
    let mut bodies = Vec::new();
    let mut points = 0;
    for (signal, record) in records {
        let request = ExportRequest::decode_protobuf(*signal, &record.payload).unwrap();
        assert_eq!(request.item_count(), record.item_count, "the item count of each record is its request's");
        match request {
            ExportRequest::Logs(logs) => {
                for record in logs.resource_logs.iter().flat_map(|r| &r.scope_logs).flat_map(|s| &s.log_records) {
                    let body = record.body.as_ref().and_then(|body| body.value.as_ref());
                    if let Some(tape_otlp::proto::common::v1::any_value::Value::StringValue(text)) = body {
                        bodies.push(text.clone());
                    }
                }
            }
            ExportRequest::Metrics(_) => points += record.item_count,
            ExportRequest::Traces(_) => panic!("no spans were sent"),
        }
    }
    bodies.sort();
    let expected: Vec<String> = (0..7).map(|n| format!("payment retry {n}")).collect();
    assert_eq!(bodies, expected, "every log record, once");
    assert_eq!(metadata.captured_logs, 7);
    assert!(points >= 4 && points % 4 == 0, "whole metric exports: {points} data points");
    assert_eq!(metadata.captured_metrics, points);
    assert_eq!(outcome.stats.metrics.items, points);
    assert_eq!(outcome.stats.logs.items, 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_metric_and_log_exporters_over_grpc_are_recorded() {
    for gzip in [false, true] {
        let running = start(|_| {}).await;
        emit_metrics_and_logs(Some(running.grpc()), None, gzip).await;
        let (outcome, records) = running.finish().await;
        assert_metrics_and_logs_recorded(&outcome, &records);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_metric_and_log_exporters_over_http_are_recorded() {
    for gzip in [false, true] {
        let running = start(|_| {}).await;
        emit_metrics_and_logs(None, Some(running.http()), gzip).await;
        let (outcome, records) = running.finish().await;
        assert_metrics_and_logs_recorded(&outcome, &records);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_json_bodies_are_stored_as_protobuf_and_answered_in_json() {
    let running = start(|_| {}).await;
    let client = reqwest::Client::new();
    let sent = [
        (Signal::Traces, ExportRequest::Traces(tape_otlp::sample::traces("checkout", 4, 0))),
        (Signal::Metrics, ExportRequest::Metrics(tape_otlp::sample::metrics("checkout", 0))),
        (Signal::Logs, ExportRequest::Logs(tape_otlp::sample::logs("checkout", 3, 0))),
    ];
    for (signal, request) in &sent {
        let response = running
            .post(&client, signal.http_path(), "application/json", request.encode(Encoding::Json).unwrap())
            .await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "application/json");
        assert_eq!(response.text().await.unwrap(), "{}");
    }
    let (outcome, records) = running.finish().await;
    assert_eq!(records.len(), 3);
    for ((signal, request), (stored_signal, record)) in sent.iter().zip(&records) {
        assert_eq!(signal, stored_signal);
        assert_eq!(record.payload.to_vec(), request.encode_protobuf(), "JSON is stored as its protobuf");
        assert_eq!(record.item_count, request.item_count());
    }
    assert_eq!(outcome.recording.metadata.captured_traces, 4);
    assert_eq!(outcome.recording.metadata.captured_logs, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signals_not_selected_are_acknowledged_and_not_recorded() {
    let running = start(|config| config.recorder.signals = SignalSet::NONE.with(Signal::Logs)).await;
    export_spans_over_grpc(&running.grpc(), None, 2).await;
    let (outcome, records) = running.finish().await;
    assert!(records.is_empty());
    assert_eq!(outcome.recording.metadata.captured_traces, 0);
    assert_eq!(outcome.stats.traces.ignored_requests, 2);
    assert_eq!(outcome.stats.traces.ignored_items, 20);
}
