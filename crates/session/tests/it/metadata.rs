//! `metadata.json`: field names, round trips and the checks of `from_json`.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tape_otlp::Signal;
use tape_session::{
    BlobEntry, BlobKey, FORMAT_VERSION, MetadataError, PhaseEntry, SessionMetadata, SessionStatus, SessionType,
    Timestamp, content_hash,
};

use crate::support::{sample_inputs, write_blob};

const START: u64 = 1_767_225_600_000_000_000;

/// The entry of a real blob of `count` sample records of `signal`.
fn entry(signal: Signal, start: u64, count: u64, blob_id: &str) -> BlobEntry {
    let inputs = sample_inputs(signal, start, count);
    let written = write_blob(&inputs, &[], 1);
    let key = BlobKey::new(signal, written.summary.first_receive_time, blob_id).unwrap();
    BlobEntry::new(key, written.summary)
}

/// A completed capture session with one blob of each signal and every
/// optional field set.
fn completed() -> SessionMetadata {
    let mut metadata = SessionMetadata::new(
        "checkout-2026-01-01".parse().unwrap(),
        SessionType::Capture,
        Timestamp::from_unix_nanos(START),
        "otlp-tape 0.1.0 capture".to_owned(),
    );
    metadata.description = Some("checkout under load".to_owned());
    metadata.diagnostic_session_id = Some("diag-7".to_owned());
    metadata.enabled_flags = vec!["payment-failure".to_owned()];
    metadata.add_blob(entry(Signal::Traces, START + 1_234_567, 5, "000001"));
    metadata.add_blob(entry(Signal::Metrics, START + 2_000_000_000, 3, "000002"));
    metadata.add_blob(entry(Signal::Logs, START + 3_600_000_000_000, 4, "000003"));
    metadata.finish(Timestamp::from_unix_nanos(START + 3_700_000_000_123), SessionStatus::Completed);
    metadata
}

fn json_of(metadata: &SessionMetadata) -> Value {
    serde_json::from_slice(&metadata.to_json()).unwrap()
}

fn keys(value: &Value) -> BTreeSet<&str> {
    value.as_object().unwrap().keys().map(String::as_str).collect()
}

fn parse(value: &Value) -> Result<SessionMetadata, MetadataError> {
    SessionMetadata::from_json(&serde_json::to_vec(value).unwrap())
}

fn malformed(value: &Value) -> String {
    match parse(value) {
        Err(MetadataError::Malformed(message)) => message,
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[test]
fn the_json_uses_the_camel_case_names_of_the_earlier_system() {
    let json = json_of(&completed());
    let earlier = [
        "sessionId",
        "sessionType",
        "startTime",
        "endTime",
        "status",
        "enabledFlags",
        "capturedTraces",
        "capturedMetrics",
        "capturedLogs",
        "totalSizeBytes",
        "s3Prefix",
        "createdBy",
        "description",
        "diagnosticSessionId",
    ];
    let added = ["formatVersion", "createdAt", "requestCounts", "blobs", "contentHash"];
    assert_eq!(keys(&json), earlier.iter().chain(&added).copied().collect());
    assert_eq!(
        keys(&json["blobs"][0]),
        BTreeSet::from([
            "key",
            "signal",
            "records",
            "items",
            "firstReceiveTime",
            "lastReceiveTime",
            "compressedBytes",
            "uncompressedBytes",
            "sha256",
        ])
    );
    assert_eq!(json["requestCounts"], json!({"traces": 5, "metrics": 3, "logs": 4}));
    assert_eq!(json["formatVersion"], json!(FORMAT_VERSION));
    assert_eq!(json["sessionId"], json!("checkout-2026-01-01"));
    assert_eq!(json["sessionType"], json!("capture"));
    assert_eq!(json["status"], json!("completed"));
    assert_eq!(json["startTime"], json!("2026-01-01T00:00:00Z"));
    assert_eq!(json["endTime"], json!("2026-01-01T01:01:40.000000123Z"));
    assert_eq!(json["s3Prefix"], json!("sessions/checkout-2026-01-01/"));
    assert_eq!(json["enabledFlags"], json!(["payment-failure"]));
    assert_eq!(json["blobs"][0]["key"], json!("raw/2026-01-01/00/traces-1767225600001-000001.otlp.gz"));
    assert_eq!(json["blobs"][0]["firstReceiveTime"], json!("2026-01-01T00:00:00.001234567Z"));
    assert_eq!(json["blobs"][2]["key"], json!("raw/2026-01-01/01/logs-1767229200000-000003.otlp.gz"));
    assert_eq!(json["blobs"][1]["signal"], json!("metrics"));
}

#[test]
fn an_active_session_leaves_out_what_it_does_not_have() {
    let metadata = SessionMetadata::new(
        "seed-1".parse().unwrap(),
        SessionType::Seed,
        Timestamp::from_unix_nanos(START),
        "otlp-tape seed".to_owned(),
    );
    let json = json_of(&metadata);
    for absent in ["endTime", "description", "diagnosticSessionId", "parameters"] {
        assert!(json.get(absent).is_none(), "{absent} is present");
    }
    assert_eq!(json["status"], json!("active"));
    assert_eq!(json["blobs"], json!([]));
    assert_eq!(json["contentHash"], json!(hex::encode(Sha256::digest(b""))));
    assert_eq!(SessionMetadata::from_json(&metadata.to_json()).unwrap(), metadata);
}

#[test]
fn created_at_is_recorded_and_kept_out_of_the_content_hash() {
    let mut metadata = completed();
    assert_eq!(metadata.created_at, Some(Timestamp::from_unix_nanos(START)), "new() records its start");
    assert_eq!(json_of(&metadata)["createdAt"], json!("2026-01-01T00:00:00Z"));
    let hash = metadata.content_hash.clone();
    metadata.created_at = Some(Timestamp::from_unix_nanos(START + 86_400_000_000_000));
    metadata.update_totals();
    assert_eq!(metadata.content_hash, hash);
    assert_eq!(metadata.created(), Timestamp::from_unix_nanos(START + 86_400_000_000_000));
    assert_eq!(SessionMetadata::from_json(&metadata.to_json()).unwrap(), metadata);
}

#[test]
fn sessions_without_created_at_read_and_fall_back_to_the_best_known_time() {
    // Written before createdAt was recorded.
    let mut json = json_of(&completed());
    json.as_object_mut().unwrap().remove("createdAt");
    let old = parse(&json).unwrap();
    assert_eq!(old.created_at, None);
    assert!(json_of(&old).get("createdAt").is_none(), "not invented on a rewrite");
    // Its start time, when the id says nothing.
    assert_eq!(old.created(), old.start_time);
    // The time of an id otlp-tape generated, which is the wall clock's.
    for (id, expected) in [
        ("seed-basic-topology-20261204-083900-1a2b3c4d", Some("2026-12-04T08:39:00Z")),
        ("capture-20250102-030405-00000000", Some("2025-01-02T03:04:05Z")),
        ("seed-20261204-083900-1A2B3C4D", None),
        ("seed-20261304-083900-1a2b3c4d", None),
        ("x20261204-083900-1a2b3c4d", None),
        ("20261204-083900-1a2b3c4d", None),
    ] {
        json["sessionId"] = json!(id);
        json["s3Prefix"] = json!(format!("sessions/{id}/"));
        let old = parse(&json).unwrap();
        let expected = expected.map_or(old.start_time, |time| Timestamp::parse_rfc3339(time).unwrap());
        assert_eq!(old.created(), expected, "{id}");
    }
}

#[test]
fn metadata_round_trips_through_json() {
    let mut metadata = completed();
    metadata.parameters.insert("seed".to_owned(), json!(42));
    metadata.parameters.insert("pattern".to_owned(), json!("payment-failure"));
    let bytes = metadata.to_json();
    assert!(bytes.ends_with(b"}\n"));
    assert_eq!(SessionMetadata::from_json(&bytes).unwrap(), metadata);
    assert_eq!(json_of(&metadata)["parameters"], json!({"pattern": "payment-failure", "seed": 42}));
}

#[test]
fn counts_are_items_and_requests_summed_over_the_blobs() {
    let metadata = completed();
    let traces: u64 = sample_inputs(Signal::Traces, START, 5).iter().map(|input| input.item_count).sum();
    assert_eq!(metadata.captured_traces, traces);
    assert_eq!(metadata.captured_metrics, 3 * 7);
    assert_eq!(metadata.request_counts.traces, 5);
    assert_eq!(metadata.total_size_bytes, metadata.blobs.iter().map(|blob| blob.compressed_bytes).sum::<u64>());
}

#[test]
fn the_content_hash_covers_keys_and_blob_hashes_in_order() {
    let metadata = completed();
    let mut hasher = Sha256::new();
    for blob in &metadata.blobs {
        hasher.update(blob.key.to_string());
        hasher.update("\n");
        hasher.update(&blob.sha256);
        hasher.update("\n");
    }
    let expected = hex::encode(hasher.finalize());
    assert_eq!(metadata.content_hash, expected);
    assert_eq!(content_hash(&metadata.blobs), expected);
    let mut reversed = metadata.blobs.clone();
    reversed.reverse();
    assert_ne!(content_hash(&reversed), expected);
}

#[test]
fn another_format_version_is_refused() {
    for version in [0, 3, 1000] {
        let mut json = json_of(&completed());
        json["formatVersion"] = json!(version);
        // Even when the rest would not parse: the version is checked first.
        json["blobs"] = json!("a future layout");
        let refused = parse(&json);
        assert_eq!(refused, Err(MetadataError::UnsupportedVersion { found: version }));
        let message = refused.unwrap_err().to_string();
        assert!(message.contains(&format!("format version {version}")), "{message}");
        assert!(message.contains("reads versions 1 and 2 only"), "{message}");
        assert_eq!(message.contains("written by a newer otlp-tape"), version > 2, "{message}");
    }
}

#[test]
fn a_missing_or_malformed_format_version_is_malformed() {
    let mut json = json_of(&completed());
    json.as_object_mut().unwrap().remove("formatVersion");
    assert!(malformed(&json).contains("formatVersion"));
    for version in [json!("1"), json!(1.5), json!(-1), json!(null)] {
        json["formatVersion"] = version;
        assert!(malformed(&json).contains("formatVersion"));
    }
}

#[test]
fn bytes_that_are_not_a_json_object_are_malformed() {
    for bytes in [&b""[..], b"not json", b"[1, 2]", b"{\"formatVersion\": 1", b"\xff\xfe"] {
        assert!(
            matches!(SessionMetadata::from_json(bytes), Err(MetadataError::Malformed(_))),
            "{:?}",
            String::from_utf8_lossy(bytes)
        );
    }
}

#[test]
fn missing_or_invalid_fields_are_malformed() {
    for field in ["sessionId", "sessionType", "startTime", "status", "capturedTraces", "blobs", "contentHash"] {
        let mut json = json_of(&completed());
        json.as_object_mut().unwrap().remove(field);
        assert!(malformed(&json).contains(field), "{field}");
    }
    for (field, value) in [
        ("sessionId", json!("../etc")),
        ("sessionType", json!("replay")),
        ("status", json!("done")),
        ("startTime", json!("yesterday")),
        ("startTime", json!("1969-12-31T00:00:00Z")),
        ("capturedLogs", json!(-1)),
    ] {
        let mut json = json_of(&completed());
        json[field] = value;
        malformed(&json);
    }
}

#[test]
fn unknown_fields_are_ignored_at_every_level() {
    let mut json = json_of(&completed());
    json["addedByALaterVersion"] = json!({"anything": [1, 2, 3]});
    json["blobs"][0]["memberOffsets"] = json!([0, 1024]);
    json["requestCounts"]["profiles"] = json!(0);
    assert_eq!(parse(&json).unwrap(), completed());
}

#[test]
fn a_blob_whose_key_names_another_signal_is_refused() {
    let mut json = json_of(&completed());
    json["blobs"][1]["signal"] = json!("logs");
    let message = malformed(&json);
    assert!(message.contains("raw/2026-01-01/00/metrics-"), "{message}");
}

#[test]
fn a_blob_key_that_could_escape_the_session_is_refused() {
    for key in [
        "raw/2026-01-01/00/../../../etc/traces-1767225600001-000001.otlp.gz",
        "raw/2026-01-01/00/traces-1767225600001-../000001.otlp.gz",
        "../raw/2026-01-01/00/traces-1767225600001-000001.otlp.gz",
        "/etc/passwd",
        "raw/2026-01-01/01/traces-1767225600001-000001.otlp.gz",
    ] {
        let mut json = json_of(&completed());
        json["blobs"][0]["key"] = json!(key);
        let message = malformed(&json);
        assert!(message.contains("invalid blob key"), "{key}: {message}");
    }
}

#[test]
fn counts_that_do_not_add_up_are_refused_once_the_session_is_finished() {
    type Change = fn(&mut Value);
    let changes: [(&str, Change); 4] = [
        ("capturedTraces", |json| json["capturedTraces"] = json!(1)),
        ("capturedLogs", |json| json["capturedLogs"] = json!(0)),
        ("requestCounts", |json| json["requestCounts"]["metrics"] = json!(4)),
        ("blob items", |json| json["blobs"][2]["items"] = json!(1_000_000)),
    ];
    for (what, change) in changes {
        for status in ["completed", "failed"] {
            let mut json = json_of(&completed());
            json["status"] = json!(status);
            change(&mut json);
            let message = malformed(&json);
            assert!(message.contains("disagree"), "{what}, {status}: {message}");
        }
        // While a session is active, its counts may lag its blob list.
        let mut json = json_of(&completed());
        json["status"] = json!("active");
        change(&mut json);
        assert!(parse(&json).is_ok(), "{what}, active");
    }
}

#[test]
fn phases_are_listed_in_camel_case_and_round_trip() {
    let mut metadata = completed();
    metadata.phases = vec![
        PhaseEntry {
            name: "baseline".to_owned(),
            start: Timestamp::from_unix_nanos(START),
            end: Timestamp::from_unix_nanos(START + 10_000_000_000),
            flags: vec![],
            source: None,
            writer: None,
        },
        PhaseEntry {
            name: "failure".to_owned(),
            start: Timestamp::from_unix_nanos(START + 10_000_000_000),
            end: Timestamp::from_unix_nanos(START + 20_000_000_000),
            flags: vec!["payment-failure".to_owned()],
            source: None,
            writer: None,
        },
    ];
    let json = json_of(&metadata);
    assert_eq!(
        json["phases"],
        json!([
            {"name": "baseline", "start": "2026-01-01T00:00:00Z", "end": "2026-01-01T00:00:10Z", "flags": []},
            {"name": "failure", "start": "2026-01-01T00:00:10Z", "end": "2026-01-01T00:00:20Z", "flags": ["payment-failure"]},
        ])
    );
    assert_eq!(SessionMetadata::from_json(&metadata.to_json()).unwrap(), metadata);

    // Absent when there are none; flags may be left out.
    assert!(json_of(&completed()).get("phases").is_none());
    let mut json = json_of(&completed());
    json["phases"] = json!([{"name": "only", "start": "2026-01-01T00:00:00Z", "end": "2026-01-01T00:00:01Z"}]);
    assert_eq!(parse(&json).unwrap().phases[0].flags, Vec::<String>::new());
    json["phases"] = json!([{"name": "only", "start": "yesterday", "end": "2026-01-01T00:00:01Z"}]);
    assert!(malformed(&json).contains("RFC 3339"));
}

#[test]
fn float_parameters_read_back_bit_for_bit() {
    // Floats whose shortest decimal form the default JSON float parser
    // misreads by one unit in the last place.
    let rates: [f64; 4] = [0.024_780_265_600_582_194, 0.020_327_311_784_902_654, 0.100_236_977_841_666_49, 1.0 / 3.0];
    let mut metadata = completed();
    for (index, rate) in rates.iter().enumerate() {
        metadata.parameters.insert(format!("rate{index}"), json!(rate));
    }
    let read = SessionMetadata::from_json(&metadata.to_json()).unwrap();
    for (index, rate) in rates.iter().enumerate() {
        assert_eq!(read.parameters[&format!("rate{index}")].as_f64().unwrap().to_bits(), rate.to_bits());
    }
}
