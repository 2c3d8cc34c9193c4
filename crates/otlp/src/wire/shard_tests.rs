use std::collections::BTreeMap;

use prost::Message as _;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::proto::collector::logs::v1::ExportLogsServiceRequest;
use crate::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use crate::proto::collector::trace::v1::ExportTraceServiceRequest;
use crate::proto::common::v1::KeyValue;
use crate::{ExportRequest, sample};

#[test]
fn shards_parse_and_print_as_i_of_n() {
    let shard: Shard = "1/3".parse().unwrap();
    assert_eq!((shard.index(), shard.count(), shard.to_string()), (1, 3, "1/3".to_owned()));
    assert_eq!(" 0/1 ".parse::<Shard>().unwrap(), Shard::new(0, 1).unwrap());
    assert!(Shard::new(0, 1).unwrap().is_whole());
    assert_eq!("1023/1024".parse::<Shard>().unwrap().index(), 1023);
    for (text, message) in [
        ("3/3", "the index must be below the count (0 to 2), not 3"),
        ("0/0", "the count must be 1 to 1024, not 0"),
        ("1/0", "the count must be 1 to 1024, not 0"),
        ("0/1025", "the count must be 1 to 1024, not 1025"),
        ("0/99999999999", "the count must be 1 to 1024, not 99999999999"),
        ("18446744073709551616/2", "the index must be below the count (0 to 1), not 18446744073709551616"),
        ("4294967296/4294967296", "the count must be 1 to 1024, not 4294967296"),
    ] {
        assert_eq!(text.parse::<Shard>().unwrap_err().to_string(), message, "{text}");
    }
    for text in ["-1/2", "a/b", "x", "", "1/", "/2", "1/2/3", "+1/2", "1.0/2"] {
        let message = text.parse::<Shard>().unwrap_err().to_string();
        assert!(message.starts_with("expected I/N: the index I (from 0) of N shards"), "{text}: {message}");
    }
    assert_eq!(serde_json::to_string(&shard).unwrap(), "\"1/3\"");
    assert_eq!(serde_json::from_str::<Shard>("\"2/3\"").unwrap(), Shard::new(2, 3).unwrap());
    assert!(serde_json::from_str::<Shard>("\"3/3\"").is_err());
}

#[test]
fn the_hash_is_fnv_1a_64() {
    // The published test vectors of FNV-1a 64.
    let fnv = |bytes: &[u8]| {
        let mut hash = Fnv::new();
        hash.write(bytes);
        hash.0
    };
    assert_eq!(fnv(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv(b"a"), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(fnv(b"foobar"), 0x8594_4171_f739_67e8);
    let trace = sample::trace_id(5);
    assert_eq!(u64::from(Shard::of_trace(&trace, 7)), fnv(&trace) % 7);
}

/// A request of `signal` with a few resources of random services, their
/// attributes in a random order, and random items.
fn random_request(signal: Signal, rng: &mut ChaCha8Rng) -> ExportRequest {
    let resources = rng.random_range(1..4);
    let attributes = |service: &str, rng: &mut ChaCha8Rng| {
        let mut attributes = vec![
            sample::string_attribute("service.name", service),
            sample::string_attribute("host.name", &format!("host-{}", rng.random_range(0..2))),
            sample::int_attribute("pid", 7),
        ];
        // The same resource in another order is the same resource.
        let at = rng.random_range(0..attributes.len());
        attributes.rotate_left(at);
        attributes
    };
    match signal {
        Signal::Traces => {
            let mut request = ExportTraceServiceRequest::default();
            for _ in 0..resources {
                let service = format!("svc-{}", rng.random_range(0..3));
                let mut part = sample::traces(&service, rng.random_range(1..40), rng.random_range(0..6) * 8);
                for entry in &mut part.resource_spans {
                    if let Some(resource) = &mut entry.resource {
                        resource.attributes = attributes(&service, rng);
                    }
                }
                request.resource_spans.extend(part.resource_spans);
            }
            ExportRequest::Traces(request)
        }
        Signal::Metrics => {
            let mut request = ExportMetricsServiceRequest::default();
            for _ in 0..resources {
                let service = format!("svc-{}", rng.random_range(0..3));
                let mut part = sample::metrics(&service, rng.random_range(0..1000));
                for entry in &mut part.resource_metrics {
                    if let Some(resource) = &mut entry.resource {
                        resource.attributes = attributes(&service, rng);
                    }
                }
                request.resource_metrics.extend(part.resource_metrics);
            }
            ExportRequest::Metrics(request)
        }
        Signal::Logs => {
            let mut request = ExportLogsServiceRequest::default();
            for _ in 0..resources {
                let service = format!("svc-{}", rng.random_range(0..3));
                let mut part = sample::logs(&service, rng.random_range(1..30), rng.random_range(0..6) * 8);
                for entry in &mut part.resource_logs {
                    if let Some(resource) = &mut entry.resource {
                        resource.attributes = attributes(&service, rng);
                    }
                    for record in entry.scope_logs.iter_mut().flat_map(|scope| &mut scope.log_records) {
                        match rng.random_range(0..3) {
                            0 => record.trace_id.clear(),
                            1 => record.trace_id = vec![0; 16],
                            _ => {}
                        }
                    }
                }
                request.resource_logs.extend(part.resource_logs);
            }
            ExportRequest::Logs(request)
        }
    }
}

/// Every item of a request as its bytes, with what decides its shard: the
/// trace id, the resource attributes (sorted) or the series.
fn items(request: &ExportRequest) -> Vec<(Vec<u8>, Vec<Vec<u8>>)> {
    let sorted = |attributes: &[KeyValue]| {
        let mut encoded: Vec<Vec<u8>> = attributes.iter().map(prost::Message::encode_to_vec).collect();
        encoded.sort();
        encoded
    };
    let mut items = Vec::new();
    match request {
        ExportRequest::Traces(request) => {
            for entry in &request.resource_spans {
                for span in entry.scope_spans.iter().flat_map(|scope| &scope.spans) {
                    items.push((span.encode_to_vec(), vec![span.trace_id.clone()]));
                }
            }
        }
        ExportRequest::Logs(request) => {
            for entry in &request.resource_logs {
                let resource = sorted(entry.resource.as_ref().map_or(&[][..], |resource| &resource.attributes));
                for record in entry.scope_logs.iter().flat_map(|scope| &scope.log_records) {
                    let key = if record.trace_id.iter().any(|&byte| byte != 0) {
                        vec![record.trace_id.clone()]
                    } else {
                        resource.clone()
                    };
                    items.push((record.encode_to_vec(), key));
                }
            }
        }
        ExportRequest::Metrics(request) => {
            use crate::proto::metrics::v1::metric::Data;
            for entry in &request.resource_metrics {
                let resource = sorted(entry.resource.as_ref().map_or(&[][..], |resource| &resource.attributes));
                for scope in &entry.scope_metrics {
                    let scope_name = scope.scope.as_ref().map(|scope| scope.name.clone()).unwrap_or_default();
                    for metric in &scope.metrics {
                        let mut key = resource.clone();
                        key.push(scope_name.clone().into_bytes());
                        key.push(metric.name.clone().into_bytes());
                        let points: Vec<(Vec<u8>, Vec<Vec<u8>>)> = match &metric.data {
                            Some(Data::Gauge(data)) => {
                                data.data_points.iter().map(|p| (p.encode_to_vec(), sorted(&p.attributes))).collect()
                            }
                            Some(Data::Sum(data)) => {
                                data.data_points.iter().map(|p| (p.encode_to_vec(), sorted(&p.attributes))).collect()
                            }
                            Some(Data::Histogram(data)) => {
                                data.data_points.iter().map(|p| (p.encode_to_vec(), sorted(&p.attributes))).collect()
                            }
                            Some(Data::ExponentialHistogram(data)) => {
                                data.data_points.iter().map(|p| (p.encode_to_vec(), sorted(&p.attributes))).collect()
                            }
                            Some(Data::Summary(data)) => {
                                data.data_points.iter().map(|p| (p.encode_to_vec(), sorted(&p.attributes))).collect()
                            }
                            None => Vec::new(),
                        };
                        for (point, attributes) in points {
                            let mut key = key.clone();
                            key.push(b"|".to_vec());
                            key.extend(attributes);
                            items.push((point, key));
                        }
                    }
                }
            }
        }
    }
    items
}

/// The request of shard `shard`, decoded (`None` when nothing is left).
fn cut(signal: Signal, bytes: &[u8], shard: Shard) -> Option<ExportRequest> {
    match cut_to_shard(signal, bytes, shard).unwrap() {
        ShardCut::Whole => Some(ExportRequest::decode_protobuf(signal, bytes).unwrap()),
        ShardCut::Part { payload, items } => {
            assert_eq!(super::super::count_items(signal, &payload), Ok(items));
            let request = ExportRequest::decode_protobuf(signal, &payload).unwrap();
            assert!(items > 0);
            Some(request)
        }
        ShardCut::Empty => None,
    }
}

#[test]
fn the_cuts_are_disjoint_and_their_union_is_the_request() {
    let mut rng = ChaCha8Rng::seed_from_u64(18);
    for signal in Signal::ALL {
        for _ in 0..40 {
            let request = random_request(signal, &mut rng);
            let bytes = request.encode_protobuf();
            let mut expected: Vec<Vec<u8>> = items(&request).into_iter().map(|(item, _)| item).collect();
            expected.sort();
            for count in 1..=5 {
                let mut union = Vec::new();
                // Where each trace, resource or series went.
                let mut owners: BTreeMap<Vec<Vec<u8>>, u32> = BTreeMap::new();
                for index in 0..count {
                    let shard = Shard::new(index, count).unwrap();
                    let Some(part) = cut(signal, &bytes, shard) else { continue };
                    for (item, key) in items(&part) {
                        let owner = *owners.entry(key).or_insert(index);
                        assert_eq!(owner, index, "{signal}: one trace, resource or series in two shards of {count}");
                        union.push(item);
                    }
                    // No resource, scope or metric is left empty.
                    assert_no_empty_containers(&part);
                }
                union.sort();
                assert_eq!(union, expected, "{signal}: the {count} cuts");
            }
        }
    }
}

fn assert_no_empty_containers(request: &ExportRequest) {
    match request {
        ExportRequest::Traces(request) => {
            assert!(request.resource_spans.iter().all(|entry| !entry.scope_spans.is_empty()));
            assert!(request.resource_spans.iter().flat_map(|entry| &entry.scope_spans).all(|s| !s.spans.is_empty()));
        }
        ExportRequest::Logs(request) => {
            assert!(request.resource_logs.iter().all(|entry| !entry.scope_logs.is_empty()));
            let mut scopes = request.resource_logs.iter().flat_map(|entry| &entry.scope_logs);
            assert!(scopes.all(|scope| !scope.log_records.is_empty()));
        }
        ExportRequest::Metrics(request) => {
            assert!(request.resource_metrics.iter().all(|entry| !entry.scope_metrics.is_empty()));
            let mut scopes = request.resource_metrics.iter().flat_map(|entry| &entry.scope_metrics);
            assert!(scopes.all(|scope| !scope.metrics.is_empty()));
        }
    }
}

#[test]
fn logs_with_a_trace_follow_their_trace() {
    let traces = sample::traces("checkout", 64, 0);
    let logs = sample::logs("checkout", 64, 0);
    let traces = ExportRequest::Traces(traces).encode_protobuf();
    let logs = ExportRequest::Logs(logs).encode_protobuf();
    for index in 0..3 {
        let shard = Shard::new(index, 3).unwrap();
        let spans = cut(Signal::Traces, &traces, shard);
        let records = cut(Signal::Logs, &logs, shard);
        let trace_ids = |request: Option<ExportRequest>| {
            let mut ids: Vec<Vec<u8>> = request
                .map(|request| items(&request))
                .unwrap_or_default()
                .into_iter()
                .map(|(_, key)| key[0].clone())
                .collect();
            ids.dedup();
            ids
        };
        assert_eq!(trace_ids(spans), trace_ids(records), "shard {shard}");
    }
}

#[test]
fn the_other_fields_are_kept_and_a_whole_request_is_not_copied() {
    let mut request = sample::traces("checkout", 16, 0);
    request.resource_spans[0].scope_spans[0].schema_url = "scope-schema".to_owned();
    let bytes = ExportRequest::Traces(request.clone()).encode_protobuf();
    assert_eq!(cut_to_shard(Signal::Traces, &bytes, Shard::new(0, 1).unwrap()), Ok(ShardCut::Whole));
    let mut parts = 0;
    for index in 0..2 {
        let Some(ExportRequest::Traces(part)) = cut(Signal::Traces, &bytes, Shard::new(index, 2).unwrap()) else {
            continue;
        };
        parts += 1;
        let entry = &part.resource_spans[0];
        assert_eq!(entry.resource, request.resource_spans[0].resource);
        assert_eq!(entry.schema_url, request.resource_spans[0].schema_url);
        assert_eq!(entry.scope_spans[0].scope, request.resource_spans[0].scope_spans[0].scope);
        assert_eq!(entry.scope_spans[0].schema_url, "scope-schema");
    }
    assert!(parts > 0);
    // A request whose only trace is in the shard goes whole.
    let one = ExportRequest::Traces(sample::traces("checkout", 8, 0)).encode_protobuf();
    let owner = Shard::of_trace(&sample::trace_id(0), 4);
    assert_eq!(cut_to_shard(Signal::Traces, &one, Shard::new(owner, 4).unwrap()), Ok(ShardCut::Whole));
    assert_eq!(cut_to_shard(Signal::Traces, &one, Shard::new((owner + 1) % 4, 4).unwrap()), Ok(ShardCut::Empty));
    for signal in Signal::ALL {
        assert_eq!(cut_to_shard(signal, &[], Shard::new(1, 2).unwrap()), Ok(ShardCut::Whole));
    }
}

#[test]
fn malformed_requests_are_refused_as_a_decode_refuses_them() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let shard = Shard::new(1, 3).unwrap();
    for signal in Signal::ALL {
        let bytes = random_request(signal, &mut rng).encode_protobuf();
        for end in 0..bytes.len() {
            let cut = cut_to_shard(signal, &bytes[..end], shard);
            let decoded = ExportRequest::decode_protobuf(signal, &bytes[..end]);
            if decoded.is_err() {
                assert!(cut.is_err(), "{signal}, cut at {end}");
            }
        }
    }
    assert_eq!(
        cut_to_shard(Signal::Traces, &[0x08, 0x01], shard).unwrap_err().message,
        "a message field has the wrong wire type"
    );
}
