//! Requests that set every field of the OTLP schema, and mutations of them
//! that a careless or hostile client could send: shared by the tests of the
//! validator here and the mutation test of the receivers
//! (`crates/capture/tests/mutation.rs` includes this file).

#![allow(dead_code, reason = "each including test uses a part")]

use rand::Rng;
use rand::seq::IndexedRandom;
use serde_json::Value as Json;
use tape_otlp::proto::collector::logs::v1::ExportLogsServiceRequest;
use tape_otlp::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use tape_otlp::proto::collector::trace::v1::ExportTraceServiceRequest;
use tape_otlp::proto::common::v1::any_value::Value;
use tape_otlp::proto::common::v1::{AnyValue, ArrayValue, EntityRef, KeyValue, KeyValueList};
use tape_otlp::proto::metrics::v1::metric::Data;
use tape_otlp::proto::metrics::v1::{Exemplar, exemplar, exponential_histogram_data_point};
use tape_otlp::{ExportRequest, Signal, sample};

/// An attribute of every kind of value, one of them nested.
fn every_value() -> Vec<KeyValue> {
    let value = |value| Some(AnyValue { value: Some(value) });
    let attribute = |key: &str, value| KeyValue { key: key.to_owned(), value, key_strindex: 0 };
    vec![
        attribute("string", value(Value::StringValue("héllo".to_owned()))),
        attribute("bool", value(Value::BoolValue(true))),
        attribute("int", value(Value::IntValue(-7))),
        attribute("double", value(Value::DoubleValue(2.5))),
        attribute("bytes", value(Value::BytesValue(vec![0, 1, 0xff]))),
        attribute("strindex", value(Value::StringValueStrindex(3))),
        attribute(
            "array",
            value(Value::ArrayValue(ArrayValue {
                values: vec![AnyValue { value: Some(Value::IntValue(1)) }, AnyValue { value: None }],
            })),
        ),
        attribute(
            "kvlist",
            value(Value::KvlistValue(KeyValueList {
                values: vec![attribute("inner", value(Value::StringValue("x".to_owned())))],
            })),
        ),
        KeyValue { key: String::new(), value: None, key_strindex: 5 },
    ]
}

fn entity_ref() -> EntityRef {
    EntityRef {
        schema_url: "https://opentelemetry.io/schemas/1.30.0".to_owned(),
        r#type: "service".to_owned(),
        id_keys: vec!["service.name".to_owned()],
        description_keys: vec!["service.version".to_owned()],
    }
}

/// Requests of every signal that set every field of the schema.
pub fn rich_requests() -> Vec<ExportRequest> {
    let mut traces = sample::traces("checkout", 12, 0);
    for resource in &mut traces.resource_spans {
        resource.schema_url = String::from("https://opentelemetry.io/schemas/1.30.0");
        if let Some(resource) = &mut resource.resource {
            resource.dropped_attributes_count = 1;
            resource.entity_refs.push(entity_ref());
        }
        for scope in &mut resource.scope_spans {
            scope.schema_url = String::from("s");
            if let Some(scope) = &mut scope.scope {
                scope.attributes = every_value();
                scope.dropped_attributes_count = 2;
            }
            for span in &mut scope.spans {
                span.trace_state = String::from("a=b");
                span.flags = 0x101;
                span.attributes.extend(every_value());
                span.dropped_attributes_count = 1;
                span.dropped_events_count = 2;
                span.dropped_links_count = 3;
                for event in &mut span.events {
                    event.attributes = every_value();
                    event.dropped_attributes_count = 4;
                }
                for link in &mut span.links {
                    link.trace_state = String::from("c=d");
                    link.attributes = every_value();
                    link.dropped_attributes_count = 5;
                    link.flags = 0x300;
                }
                if let Some(status) = &mut span.status {
                    status.message = String::from("failed");
                }
            }
        }
    }
    let mut metrics = sample::metrics("checkout", 0);
    for resource in &mut metrics.resource_metrics {
        resource.schema_url = String::from("m");
        if let Some(resource) = &mut resource.resource {
            resource.entity_refs.push(entity_ref());
        }
        for scope in &mut resource.scope_metrics {
            scope.schema_url = String::from("s");
            for metric in &mut scope.metrics {
                metric.description = String::from("described");
                metric.metadata = every_value();
                let exemplar = |value| Exemplar {
                    filtered_attributes: every_value(),
                    time_unix_nano: 5,
                    span_id: sample::span_id(1),
                    trace_id: sample::trace_id(1),
                    value: Some(value),
                };
                match &mut metric.data {
                    Some(Data::Gauge(gauge)) => {
                        for point in &mut gauge.data_points {
                            point.flags = 1;
                            point.exemplars.push(exemplar(exemplar::Value::AsInt(3)));
                        }
                    }
                    Some(Data::Sum(sum)) => {
                        for point in &mut sum.data_points {
                            point.attributes = every_value();
                            point.exemplars.push(exemplar(exemplar::Value::AsDouble(3.5)));
                        }
                    }
                    Some(Data::Histogram(histogram)) => {
                        for point in &mut histogram.data_points {
                            point.flags = 1;
                        }
                    }
                    Some(Data::ExponentialHistogram(histogram)) => {
                        for point in &mut histogram.data_points {
                            point.attributes = every_value();
                            point.flags = 1;
                            point.negative = Some(exponential_histogram_data_point::Buckets {
                                offset: -3,
                                bucket_counts: vec![300, 1],
                            });
                            point.exemplars.push(exemplar(exemplar::Value::AsDouble(0.5)));
                            point.min = Some(0.1);
                            point.max = Some(9.0);
                            point.zero_threshold = 0.001;
                        }
                    }
                    Some(Data::Summary(summary)) => {
                        for point in &mut summary.data_points {
                            point.attributes = every_value();
                            point.flags = 1;
                        }
                    }
                    None => {}
                }
            }
        }
    }
    let mut logs = sample::logs("checkout", 10, 0);
    for resource in &mut logs.resource_logs {
        resource.schema_url = String::from("l");
        if let Some(resource) = &mut resource.resource {
            resource.entity_refs.push(entity_ref());
        }
        for scope in &mut resource.scope_logs {
            scope.schema_url = String::from("s");
            for record in &mut scope.log_records {
                record.attributes.extend(every_value());
                record.dropped_attributes_count = 1;
                record.event_name = String::from("order.processed");
                record.body = every_value().swap_remove(7).value;
            }
        }
    }
    vec![traces.into(), metrics.into(), logs.into()]
}

/// A request of `signal` with an attribute whose value is `steps` arrays
/// deep: each array adds two messages (`ArrayValue`, `AnyValue`) to the
/// depth of the attribute's `AnyValue` (5 below the request for spans and
/// log records, 7 for metric data points).
pub fn nested(signal: Signal, steps: usize) -> Vec<u8> {
    let mut value = AnyValue { value: Some(Value::StringValue("deep".to_owned())) };
    for _ in 0..steps {
        value = AnyValue { value: Some(Value::ArrayValue(ArrayValue { values: vec![value] })) };
    }
    let attribute = KeyValue { key: "deep".to_owned(), value: Some(value), key_strindex: 0 };
    let request: ExportRequest = match signal {
        Signal::Traces => {
            let mut request = sample::traces("deep", 1, 0);
            request.resource_spans[0].scope_spans[0].spans[0].attributes.push(attribute);
            request.into()
        }
        Signal::Metrics => {
            let mut request: ExportMetricsServiceRequest = sample::metrics("deep", 0);
            if let Some(Data::Gauge(gauge)) = &mut request.resource_metrics[0].scope_metrics[0].metrics[0].data {
                gauge.data_points[0].attributes.push(attribute);
            }
            request.into()
        }
        Signal::Logs => {
            let mut request = sample::logs("deep", 1, 0);
            request.resource_logs[0].scope_logs[0].log_records[0].attributes.push(attribute);
            request.into()
        }
    };
    request.encode_protobuf()
}

fn put_len(out: &mut Vec<u8>, number: u8, bytes: &[u8]) {
    out.push(number << 3 | 2);
    let mut len = bytes.len() as u64;
    while len >= 0x80 {
        out.push((len as u8) | 0x80);
        len >>= 7;
    }
    out.push(len as u8);
    out.extend_from_slice(bytes);
}

/// A metrics request with one `Metric` that holds a gauge of `gauge_points`
/// and a sum of one point: two kinds of data.
pub fn two_data_fields(gauge_points: usize) -> Vec<u8> {
    let request = sample::metrics("twice", 0);
    let metrics = &request.resource_metrics[0].scope_metrics[0].metrics;
    let mut gauge = metrics[0].clone();
    if let Some(Data::Gauge(data)) = &mut gauge.data {
        data.data_points.truncate(gauge_points);
    }
    let sum = tape_otlp::proto::metrics::v1::Metric { data: metrics[1].data.clone(), ..Default::default() };
    let mut metric = prost::Message::encode_to_vec(&gauge);
    metric.extend(prost::Message::encode_to_vec(&sum));
    let mut scope = Vec::new();
    put_len(&mut scope, 2, &metric);
    let mut resource = Vec::new();
    put_len(&mut resource, 2, &scope);
    let mut out = Vec::new();
    put_len(&mut out, 1, &resource);
    out
}

/// `bytes` with its first string `marker` replaced by as many bytes that are
/// not UTF-8.
pub fn invalid_utf8(bytes: &[u8], marker: &[u8]) -> Option<Vec<u8>> {
    let at = bytes.windows(marker.len()).position(|window| window == marker)?;
    let mut out = bytes.to_vec();
    for (i, byte) in out[at..at + marker.len()].iter_mut().enumerate() {
        *byte = if i % 2 == 0 { 0xff } else { 0xc3 };
    }
    Some(out)
}

/// One mutation of a protobuf request: what was done, and the bytes.
pub fn mutate_protobuf(rng: &mut impl Rng, seed: &Seed, others: &[Seed]) -> (&'static str, Vec<u8>) {
    let (signal, bytes) = (seed.signal, seed.protobuf.as_slice());
    let mut out = bytes.to_vec();
    let len = out.len().max(1);
    match rng.random_range(0..12) {
        0 => {
            let at = rng.random_range(0..len).min(out.len().saturating_sub(1));
            if let Some(byte) = out.get_mut(at) {
                *byte ^= 1 << rng.random_range(0..8);
            }
            ("bit flip", out)
        }
        1 => {
            for _ in 0..rng.random_range(1..4) {
                let at = rng.random_range(0..len).min(out.len().saturating_sub(1));
                if let Some(byte) = out.get_mut(at) {
                    *byte = rng.random();
                }
            }
            ("random bytes", out)
        }
        2 => {
            out.truncate(rng.random_range(0..len));
            ("truncation", out)
        }
        3 => {
            let start = rng.random_range(0..len);
            let end = (start + rng.random_range(1..16)).min(out.len());
            if start < end {
                out.drain(start..end);
            }
            ("deletion", out)
        }
        4 => {
            let start = rng.random_range(0..len).min(out.len());
            let end = (start + rng.random_range(1..64)).min(out.len());
            let copy = out[start..end].to_vec();
            let at = rng.random_range(0..=out.len());
            out.splice(at..at, copy);
            ("duplicated range", out)
        }
        5 => {
            // A field key with another number or wire type.
            let at = rng.random_range(0..len).min(out.len().saturating_sub(1));
            if let Some(byte) = out.get_mut(at) {
                *byte = (rng.random_range(1..17u8) << 3) | rng.random_range(0..6u8);
            }
            ("field key swap", out)
        }
        6 => {
            let other = others.iter().filter(|other| other.signal != signal).collect::<Vec<_>>();
            let other = other.choose(rng).expect("requests of other signals");
            ("wrong-signal body", other.protobuf.clone())
        }
        7 => ("deep nesting", nested(signal, rng.random_range(42..52))),
        8 => {
            let marker: &[u8] = [b"checkout".as_slice(), b"order", b"http.route", b"service.name", b"1.0.0"]
                .choose(rng)
                .copied()
                .unwrap_or(b"checkout");
            match invalid_utf8(bytes, marker) {
                Some(out) => ("invalid UTF-8", out),
                None => ("invalid UTF-8 (no marker)", out),
            }
        }
        9 => ("two metric data fields", two_data_fields(rng.random_range(0..3))),
        10 => {
            // A stray field, of any type, at the top or after the end.
            let mut field = vec![(rng.random_range(1..40u8) << 3) | rng.random_range(0..6u8)];
            field.extend((0..rng.random_range(0..10)).map(|_| rng.random::<u8>()));
            let at = rng.random_range(0..=out.len());
            out.splice(at..at, field);
            ("stray field", out)
        }
        _ => ("unchanged", out),
    }
}

/// Values that OTLP/JSON does not allow where a number, string, id or
/// message is expected.
const BAD_JSON: &[&str] = &[
    "true",
    "-1",
    "1.5",
    "[]",
    "{}",
    "\"zz\"",
    "null",
    "\"NaN\"",
    "1e400",
    "\"-5\"",
    "[1,2]",
    "\"\"",
    "{\"doubleValue\":true}",
    "{\"intValue\":1.5}",
    "18446744073709551616",
];

fn paths(value: &Json, path: &mut Vec<PathStep>, out: &mut Vec<Vec<PathStep>>) {
    match value {
        Json::Object(map) => {
            for (key, child) in map {
                path.push(PathStep::Key(key.clone()));
                out.push(path.clone());
                paths(child, path, out);
                path.pop();
            }
        }
        Json::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                path.push(PathStep::Index(index));
                out.push(path.clone());
                paths(child, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

#[derive(Clone)]
enum PathStep {
    Key(String),
    Index(usize),
}

fn at_path<'a>(value: &'a mut Json, path: &[PathStep]) -> Option<&'a mut Json> {
    let mut value = value;
    for step in path {
        value = match step {
            PathStep::Key(key) => value.get_mut(key.as_str())?,
            PathStep::Index(index) => value.get_mut(*index)?,
        };
    }
    Some(value)
}

/// One mutation of an OTLP/JSON request: what was done, and the body.
pub fn mutate_json(rng: &mut impl Rng, seed: &Seed, others: &[Seed]) -> (&'static str, Vec<u8>) {
    let text = &seed.json_text;
    let mut json = seed.json.clone();
    let all = &seed.paths;
    match rng.random_range(0..8) {
        0..=2 => {
            let path = all.choose(rng).expect("paths").clone();
            let bad: Json = serde_json::from_str(BAD_JSON.choose(rng).expect("values")).unwrap_or(Json::Null);
            if let Some(slot) = at_path(&mut json, &path) {
                *slot = bad;
            }
            ("bad JSON value", serde_json::to_vec(&json).expect("JSON"))
        }
        3 => {
            // A second kind of data in a metric, or a second value in a point.
            let path = all.choose(rng).expect("paths").clone();
            if let Some(Json::Object(map)) = at_path(&mut json, &path) {
                let (key, value) = [
                    ("sum", serde_json::json!({"dataPoints":[{"asDouble":1.0}]})),
                    ("gauge", serde_json::json!({"dataPoints":[]})),
                    ("asInt", serde_json::json!("5")),
                    ("asDouble", serde_json::json!(2.5)),
                ]
                .choose(rng)
                .cloned()
                .expect("fields");
                map.insert(key.to_owned(), value);
            }
            ("second oneof field", serde_json::to_vec(&json).expect("JSON"))
        }
        4 => {
            let mut bytes = text.clone();
            bytes.truncate(rng.random_range(0..bytes.len()));
            ("JSON truncation", bytes)
        }
        5 => {
            let mut bytes = text.clone();
            let at = rng.random_range(0..bytes.len());
            bytes[at] = *b"{}[]\",:0a\\ \xff".choose(rng).expect("bytes");
            ("JSON byte change", bytes)
        }
        6 => {
            let other = others.iter().filter(|other| other.signal != seed.signal).collect::<Vec<_>>();
            ("wrong-signal JSON body", other.choose(rng).expect("others").json_text.clone())
        }
        _ => ("unchanged JSON", text.clone()),
    }
}

/// The items of an OTLP/JSON request of `signal`, counted on the JSON
/// itself (not with the decoder under test): every element of every
/// `spans`, `logRecords` or metric's `dataPoints` list.
pub fn json_items(signal: Signal, body: &[u8]) -> Option<u64> {
    let json: Json = serde_json::from_slice(body).ok()?;
    let (resources, scopes, items) = match signal {
        Signal::Traces => ("resourceSpans", "scopeSpans", "spans"),
        Signal::Metrics => ("resourceMetrics", "scopeMetrics", "metrics"),
        Signal::Logs => ("resourceLogs", "scopeLogs", "logRecords"),
    };
    let list = |value: &Json, key: &str| value.get(key).and_then(Json::as_array).cloned().unwrap_or_default();
    let mut count = 0;
    for resource in list(&json, resources) {
        for scope in list(&resource, scopes) {
            for item in list(&scope, items) {
                count += match signal {
                    Signal::Metrics => ["gauge", "sum", "histogram", "exponentialHistogram", "summary"]
                        .iter()
                        .filter_map(|kind| item.get(*kind))
                        .map(|data| list(data, "dataPoints").len() as u64)
                        .sum(),
                    _ => 1,
                };
            }
        }
    }
    Some(count)
}

/// A request the mutations start from, in both encodings.
pub struct Seed {
    pub request: ExportRequest,
    pub signal: Signal,
    pub protobuf: Vec<u8>,
    pub json_text: Vec<u8>,
    json: Json,
    paths: Vec<Vec<PathStep>>,
}

/// Requests of every signal in every shape the mutations start from.
pub fn seeds() -> Vec<Seed> {
    let mut requests = rich_requests();
    requests.push(sample::traces("checkout", 3, 7).into());
    requests.push(sample::metrics("checkout", 7).into());
    requests.push(sample::logs("checkout", 3, 7).into());
    requests.push(ExportTraceServiceRequest::default().into());
    requests.push(ExportLogsServiceRequest::default().into());
    requests
        .into_iter()
        .map(|request| {
            let json_text = request.encode_json().expect("samples encode");
            let json: Json = serde_json::from_slice(&json_text).expect("samples are JSON");
            let mut all = Vec::new();
            paths(&json, &mut Vec::new(), &mut all);
            Seed { signal: request.signal(), protobuf: request.encode_protobuf(), request, json_text, json, paths: all }
        })
        .collect()
}
