//! The generator's output: deterministic, structurally valid, and with
//! signals that agree with each other.

use std::collections::{BTreeMap, HashMap, HashSet};

use prost::Message;
use tape_otlp::proto::collector::logs::v1::ExportLogsServiceRequest;
use tape_otlp::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use tape_otlp::proto::collector::trace::v1::ExportTraceServiceRequest;
use tape_otlp::proto::common::v1::{KeyValue, any_value};
use tape_otlp::proto::metrics::v1::metric;
use tape_otlp::proto::trace::v1::{Span, status};
use tape_otlp::{Signal, SignalSet};
use tape_seed_generator::{
    BUILTIN_PATTERNS, Batch, DEFAULT_START, DURATION_BUCKETS, Generator, Params, Pattern, builtin_pattern,
};
use tape_session::Timestamp;

const SECOND: u64 = 1_000_000_000;

fn pattern(name: &str) -> Pattern {
    Pattern::parse(name, builtin_pattern(name).expect("a built-in pattern")).expect("built-in patterns are valid")
}

fn params(seed: u64, seconds: u64, rate: f64) -> Params {
    Params {
        seed,
        start: DEFAULT_START,
        duration_nanos: seconds * SECOND,
        rate,
        error_rate: 0.05,
        signals: SignalSet::ALL,
    }
}

fn generate(pattern: &Pattern, params: Params) -> Vec<Batch> {
    Generator::new(pattern, params).expect("valid parameters").collect()
}

/// Every span of the batches with its service.name.
fn spans(batches: &[Batch]) -> Vec<(String, Span)> {
    let mut spans = Vec::new();
    for batch in batches.iter().filter(|batch| batch.signal == Signal::Traces) {
        let request = ExportTraceServiceRequest::decode(batch.payload.as_slice()).expect("trace payloads decode");
        for resource_spans in request.resource_spans {
            let service = service_name(&resource_spans.resource.expect("a resource").attributes);
            for scope_spans in resource_spans.scope_spans {
                spans.extend(scope_spans.spans.into_iter().map(|span| (service.clone(), span)));
            }
        }
    }
    spans
}

fn service_name(attributes: &[KeyValue]) -> String {
    string_attribute(attributes, "service.name").expect("service.name is set")
}

fn string_attribute(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes.iter().find(|pair| pair.key == key).and_then(|pair| match pair.value.as_ref()?.value.as_ref()? {
        any_value::Value::StringValue(text) => Some(text.clone()),
        _ => None,
    })
}

fn int_attribute(attributes: &[KeyValue], key: &str) -> Option<i64> {
    attributes.iter().find(|pair| pair.key == key).and_then(|pair| match pair.value.as_ref()?.value.as_ref()? {
        any_value::Value::IntValue(number) => Some(*number),
        _ => None,
    })
}

fn failed(span: &Span) -> bool {
    span.status.as_ref().is_some_and(|status| status.code == status::StatusCode::Error as i32)
}

#[test]
fn same_inputs_give_the_same_bytes_and_another_seed_does_not() {
    for (name, _) in BUILTIN_PATTERNS {
        let pattern = pattern(name);
        let first = generate(&pattern, params(7, 5, 20.0));
        let second = generate(&pattern, params(7, 5, 20.0));
        assert!(!first.is_empty(), "{name}");
        assert_eq!(first, second, "{name}: same seed, same batches");
        let other = generate(&pattern, params(8, 5, 20.0));
        assert_ne!(first, other, "{name}: another seed, other batches");
    }
}

#[test]
fn the_start_moves_every_timestamp_and_nothing_else_random() {
    let pattern = pattern("basic-topology");
    let mut later = params(3, 3, 10.0);
    later.start = Timestamp::from_unix_nanos(DEFAULT_START.unix_nanos() + 3_600 * SECOND);
    let base = generate(&pattern, params(3, 3, 10.0));
    let moved = generate(&pattern, later);
    assert_eq!(base.len(), moved.len());
    for (a, b) in base.iter().zip(&moved) {
        assert_eq!(a.receive_time.unix_nanos() + 3_600 * SECOND, b.receive_time.unix_nanos());
        assert_eq!(a.items, b.items);
    }
    let (a, b) = (spans(&base), spans(&moved));
    for ((_, a), (_, b)) in a.iter().zip(&b) {
        assert_eq!(a.trace_id, b.trace_id);
        assert_eq!(a.start_time_unix_nano + 3_600 * SECOND, b.start_time_unix_nano);
    }
}

#[test]
fn batches_come_in_receive_time_order_after_their_contents_end() {
    for (name, _) in BUILTIN_PATTERNS {
        let batches = generate(&pattern(name), params(11, 4, 25.0));
        for pair in batches.windows(2) {
            assert!(pair[0].receive_time <= pair[1].receive_time, "{name}: out of order");
        }
        for batch in batches.iter().filter(|batch| batch.signal == Signal::Traces) {
            for (_, span) in spans(std::slice::from_ref(batch)) {
                assert!(span.end_time_unix_nano <= batch.receive_time.unix_nanos(), "{name}: sent before it ended");
            }
        }
    }
}

#[test]
fn trace_payloads_are_canonical_protobuf() {
    // The spans are encoded by hand for speed; prost must read them and
    // write back exactly the same bytes.
    for (name, _) in BUILTIN_PATTERNS {
        for batch in generate(&pattern(name), params(5, 3, 20.0)) {
            let bytes = match batch.signal {
                Signal::Traces => ExportTraceServiceRequest::decode(batch.payload.as_slice()).unwrap().encode_to_vec(),
                Signal::Metrics => {
                    ExportMetricsServiceRequest::decode(batch.payload.as_slice()).unwrap().encode_to_vec()
                }
                Signal::Logs => ExportLogsServiceRequest::decode(batch.payload.as_slice()).unwrap().encode_to_vec(),
            };
            assert_eq!(bytes, batch.payload, "{name}: {} payload", batch.signal);
        }
    }
}

#[test]
fn every_trace_is_a_valid_tree() {
    for (name, _) in BUILTIN_PATTERNS {
        let pattern = pattern(name);
        let params = params(21, 10, 30.0);
        let expected_traces = params.check().unwrap();
        let batches = generate(&pattern, params);
        let spans = spans(&batches);
        let mut span_ids = HashSet::new();
        let mut traces: HashMap<Vec<u8>, Vec<&Span>> = HashMap::new();
        for (_, span) in &spans {
            assert_eq!(span.trace_id.len(), 16, "{name}");
            assert_eq!(span.span_id.len(), 8, "{name}");
            assert_ne!(span.trace_id, [0; 16], "{name}: zero trace id");
            assert_ne!(span.span_id, [0; 8], "{name}: zero span id");
            assert!(span_ids.insert(span.span_id.clone()), "{name}: span id used twice");
            assert!(span.start_time_unix_nano < span.end_time_unix_nano, "{name}: span without duration");
            assert!(span.kind >= 1 && span.kind <= 5, "{name}: span kind {}", span.kind);
            assert!(!span.name.is_empty());
            traces.entry(span.trace_id.clone()).or_default().push(span);
        }
        let mut roots = 0;
        for trace in traces.values() {
            let by_id: HashMap<&[u8], &Span> = trace.iter().map(|span| (span.span_id.as_slice(), *span)).collect();
            let trace_roots: Vec<&&Span> = trace.iter().filter(|span| span.parent_span_id.is_empty()).collect();
            assert_eq!(trace_roots.len(), 1, "{name}: a trace has one root");
            roots += 1;
            for span in trace.iter().filter(|span| !span.parent_span_id.is_empty()) {
                let parent =
                    by_id.get(span.parent_span_id.as_slice()).unwrap_or_else(|| panic!("{name}: parent missing"));
                assert!(parent.start_time_unix_nano <= span.start_time_unix_nano, "{name}: child starts before parent");
                assert!(span.end_time_unix_nano <= parent.end_time_unix_nano, "{name}: child ends after parent");
            }
            // Links point at a span of another trace that exists.
            for span in trace {
                for link in &span.links {
                    assert_ne!(link.trace_id, span.trace_id, "{name}: a link to its own trace");
                    let linked = traces.get(&link.trace_id).unwrap_or_else(|| panic!("{name}: linked trace missing"));
                    assert!(linked.iter().any(|other| other.span_id == link.span_id), "{name}: linked span missing");
                }
            }
        }
        // Each trace of an entry point is one root; consumers of queues
        // start traces of their own.
        let linked_roots =
            spans.iter().filter(|(_, span)| span.parent_span_id.is_empty() && !span.links.is_empty()).count();
        assert_eq!(roots - linked_roots, usize::try_from(expected_traces).unwrap(), "{name}: trace count");
    }
}

#[test]
fn complex_topology_has_producers_consumers_and_links() {
    let spans = spans(&generate(&pattern("complex-topology"), params(2, 10, 20.0)));
    let producers = spans.iter().filter(|(_, span)| span.kind == 4).count();
    let consumers: Vec<&Span> = spans.iter().map(|(_, span)| span).filter(|span| span.kind == 5).collect();
    assert!(producers > 0 && !consumers.is_empty());
    assert!(consumers.iter().any(|span| !span.links.is_empty()), "consumer spans link to their producer");
}

#[test]
fn payment_fails_only_in_the_failure_phase_and_at_the_configured_share() {
    let pattern = pattern("payment-failure");
    let params = params(42, 30, 20.0);
    let generator = Generator::new(&pattern, params).unwrap();
    let phases = generator.phases();
    assert_eq!(phases.iter().map(|phase| phase.name.as_str()).collect::<Vec<_>>(), ["baseline", "failure", "rampdown"]);
    let batches: Vec<Batch> = generator.collect();
    // By the phase in which each span is received: how training data is
    // labelled. Spans received after the last phase are the last phase's.
    let mut per_phase: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for batch in &batches {
        let phase =
            phases.iter().find(|phase| batch.receive_time < phase.end).unwrap_or_else(|| phases.last().unwrap());
        for (service, span) in spans(std::slice::from_ref(batch)) {
            if service == "payment" && span.kind == 2 {
                let entry = per_phase.entry(phase.name.as_str()).or_default();
                entry.0 += 1;
                entry.1 += u64::from(failed(&span));
            }
        }
    }
    let (total, failures) = per_phase["baseline"];
    assert!(total > 20, "baseline payment spans: {total}");
    assert_eq!(failures, 0, "no payment failures in baseline");
    assert_eq!(per_phase["rampdown"].1, 0, "no payment failures in rampdown");
    let (total, failures) = per_phase["failure"];
    #[allow(clippy::cast_precision_loss)]
    let (share, sigma) = (failures as f64 / total as f64, (0.75 * 0.25 / total as f64).sqrt());
    assert!((share - 0.75).abs() < 4.0 * sigma, "failure share {share} of {total}, expected 0.75 ± {}", 4.0 * sigma);
}

#[test]
fn failures_carry_status_exception_and_an_error_log_and_reach_the_caller() {
    let pattern = pattern("payment-failure");
    let batches = generate(&pattern, params(42, 30, 20.0));
    let spans = spans(&batches);
    let by_id: HashMap<&[u8], &(String, Span)> = spans.iter().map(|pair| (pair.1.span_id.as_slice(), pair)).collect();
    let mut error_logs = HashSet::new();
    for batch in batches.iter().filter(|batch| batch.signal == Signal::Logs) {
        let request = ExportLogsServiceRequest::decode(batch.payload.as_slice()).unwrap();
        for record in request.resource_logs.iter().flat_map(|r| &r.scope_logs).flat_map(|s| &s.log_records) {
            let (_, span) = by_id.get(record.span_id.as_slice()).expect("every log record belongs to a span");
            assert_eq!(record.trace_id, span.trace_id, "log trace id is its span's");
            assert!(record.severity_number > 0 && !record.severity_text.is_empty());
            assert!(
                record.time_unix_nano >= span.start_time_unix_nano && record.time_unix_nano <= span.end_time_unix_nano
            );
            if record.severity_number >= 17 {
                error_logs.insert(record.span_id.clone());
            }
        }
    }
    let payment_failures: Vec<&Span> = spans
        .iter()
        .filter(|(service, span)| service == "payment" && span.kind == 2 && failed(span))
        .map(|(_, span)| span)
        .collect();
    assert!(!payment_failures.is_empty());
    for span in &payment_failures {
        assert!(
            span.events
                .iter()
                .any(|event| event.name == "exception"
                    && string_attribute(&event.attributes, "exception.type").is_some()),
            "exception event"
        );
        assert!(error_logs.contains(&span.span_id), "an ERROR log for the failed span");
        // The caller fails too.
        let (_, parent) = by_id[span.parent_span_id.as_slice()];
        assert!(failed(parent), "the failure propagates to the caller");
    }
    // HTTP server spans report 5xx exactly when they fail.
    for (_, span) in &spans {
        if let (2, Some(code)) = (span.kind, int_attribute(&span.attributes, "http.response.status_code")) {
            assert_eq!(code >= 500, failed(span), "{}: status {code}", span.name);
        }
    }
}

#[test]
fn metrics_are_cumulative_and_count_the_server_spans() {
    for (name, _) in BUILTIN_PATTERNS {
        let pattern = pattern(name);
        let params = params(9, 25, 10.0);
        let start = params.start.unix_nanos();
        let batches = generate(&pattern, params);
        let spans = spans(&batches);
        let mut final_counts: BTreeMap<(String, String, String, i64), u64> = BTreeMap::new();
        let mut previous: HashMap<(String, String, String, i64), u64> = HashMap::new();
        let mut gauges = 0;
        for batch in batches.iter().filter(|batch| batch.signal == Signal::Metrics) {
            let request = ExportMetricsServiceRequest::decode(batch.payload.as_slice()).unwrap();
            for resource in &request.resource_metrics {
                let service = service_name(&resource.resource.as_ref().unwrap().attributes);
                for metric in resource.scope_metrics.iter().flat_map(|scope| &scope.metrics) {
                    match &metric.data {
                        Some(metric::Data::Histogram(histogram)) if metric.name == "http.server.request.duration" => {
                            assert_eq!(metric.unit, "s");
                            assert_eq!(histogram.aggregation_temporality, 2, "cumulative");
                            for point in &histogram.data_points {
                                assert_eq!(point.start_time_unix_nano, start, "cumulative from the session start");
                                let receive = batch.receive_time.unix_nanos();
                                assert!(point.time_unix_nano <= receive && receive - point.time_unix_nano < 1_000_000);
                                assert_eq!(point.explicit_bounds, DURATION_BUCKETS);
                                assert_eq!(point.bucket_counts.iter().sum::<u64>(), point.count);
                                let route = string_attribute(&point.attributes, "http.route").unwrap();
                                let status = int_attribute(&point.attributes, "http.response.status_code").unwrap();
                                let method = string_attribute(&point.attributes, "http.request.method").unwrap();
                                let key = (service.clone(), method, route, status);
                                let before = previous.insert(key.clone(), point.count).unwrap_or(0);
                                assert!(point.count >= before, "cumulative counts never fall");
                                final_counts.insert(key, point.count);
                            }
                        }
                        Some(metric::Data::Gauge(gauge)) => gauges += gauge.data_points.len(),
                        _ => {}
                    }
                }
            }
        }
        assert!(gauges > 0, "{name}: at least one gauge");
        let mut from_spans: BTreeMap<(String, String, String, i64), u64> = BTreeMap::new();
        for (service, span) in &spans {
            if let (2, Some(route)) = (span.kind, string_attribute(&span.attributes, "http.route")) {
                let status = int_attribute(&span.attributes, "http.response.status_code").unwrap();
                let method = string_attribute(&span.attributes, "http.request.method").unwrap();
                *from_spans.entry((service.clone(), method, route, status)).or_default() += 1;
            }
        }
        assert!(!from_spans.is_empty(), "{name}: has HTTP server spans");
        assert_eq!(final_counts, from_spans, "{name}: the last histograms count every HTTP server span");
    }
}

#[test]
fn signals_select_what_is_written_without_changing_it() {
    let pattern = pattern("basic-topology");
    let all = generate(&pattern, params(4, 5, 10.0));
    for only in [Signal::Traces, Signal::Metrics, Signal::Logs] {
        let mut selected = params(4, 5, 10.0);
        selected.signals = SignalSet::NONE.with(only);
        let batches = generate(&pattern, selected);
        let expected: Vec<&Batch> = all.iter().filter(|batch| batch.signal == only).collect();
        assert_eq!(batches.iter().collect::<Vec<_>>(), expected, "{only}");
    }
}

#[test]
fn bad_parameters_are_refused() {
    let pattern = pattern("basic-topology");
    for (bad, expected) in [
        (Params { rate: 0.0, ..params(1, 5, 10.0) }, "rate"),
        (Params { rate: -3.0, ..params(1, 5, 10.0) }, "rate"),
        (Params { rate: f64::NAN, ..params(1, 5, 10.0) }, "rate"),
        (Params { duration_nanos: 0, ..params(1, 5, 10.0) }, "duration"),
        (Params { error_rate: 1.5, ..params(1, 5, 10.0) }, "error rate"),
        (Params { error_rate: -0.1, ..params(1, 5, 10.0) }, "error rate"),
        (Params { signals: SignalSet::NONE, ..params(1, 5, 10.0) }, "signal"),
        (Params { rate: 1e12, ..params(1, 3600, 10.0) }, "traces"),
    ] {
        let error = Generator::new(&pattern, bad).unwrap_err().to_string();
        assert!(error.contains(expected), "{error}");
    }
}

#[test]
fn a_low_rate_still_gives_metrics_and_exactly_its_traces() {
    let pattern = pattern("basic-topology");
    let batches = generate(&pattern, params(1, 20, 0.25));
    let roots = spans(&batches).iter().filter(|(_, span)| span.parent_span_id.is_empty()).count();
    assert_eq!(roots, 5);
    assert!(batches.iter().any(|batch| batch.signal == Signal::Metrics));
}

/// SHA-256 over every batch's signal, receive time, item count and payload.
fn digest(batches: &[Batch]) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for batch in batches {
        hasher.update(batch.signal.as_str());
        hasher.update(batch.receive_time.unix_nanos().to_be_bytes());
        hasher.update(batch.items.to_be_bytes());
        hasher.update(&batch.payload);
    }
    hex::encode(hasher.finalize())
}

#[test]
fn the_output_of_a_seed_is_pinned() {
    // The same pattern, parameters and seed give these bytes on every
    // machine and with every build. A change here changes every seed
    // session users have recorded: it needs a new GENERATOR_VERSION.
    let pattern = pattern("payment-failure");
    let batches = generate(&pattern, params(42, 30, 50.0));
    assert_eq!(batches.len(), 316);
    assert_eq!(digest(&batches), "e8db9dfe2f5bc4b32d659919da3f025f6e678687765760986f5071c3a94f9c9b");
}
