//! `metadata.json` of format version 2, of a session with several writers:
//! writer keys only in version 2, and `writers` figures that add up.

use serde_json::{Value, json};
use tape_otlp::Signal;
use tape_session::{
    BlobEntry, BlobKey, FORMAT_VERSION, FORMAT_VERSION_WRITERS, MetadataError, SessionMetadata, SessionStatus,
    SessionType, Timestamp, WriterId, WriterManifest,
};

use crate::support::{sample_inputs, write_blob};

const START: u64 = 1_767_225_600_000_000_000;

fn entry(signal: Signal, start: u64, count: u64, writer: &str) -> BlobEntry {
    let inputs = sample_inputs(signal, start, count);
    let written = write_blob(&inputs, &[], 1);
    let writer = WriterId::new(writer).unwrap();
    let key = BlobKey::for_writer(signal, written.summary.first_receive_time, &writer, "000001").unwrap();
    BlobEntry::new(key, written.summary)
}

fn manifest(writer: &str, blobs: Vec<BlobEntry>) -> WriterManifest {
    WriterManifest {
        format_version: FORMAT_VERSION_WRITERS,
        session_id: "checkout-2026-01-01".parse().unwrap(),
        writer_id: WriterId::new(writer).unwrap(),
        host: Some(format!("{writer}.example")),
        status: SessionStatus::Completed,
        start_time: Timestamp::from_unix_nanos(START),
        end_time: Some(Timestamp::from_unix_nanos(START + 60_000_000_000)),
        updated_at: Timestamp::from_unix_nanos(START + 60_000_000_000),
        blobs,
        repaired: false,
        source: None,
    }
}

/// A sealed session of two writers, as `seal_session` writes it.
fn sealed() -> SessionMetadata {
    let manifests = [
        manifest("node-1", vec![entry(Signal::Traces, START + 1_000, 5, "node-1")]),
        manifest(
            "node-2",
            vec![entry(Signal::Traces, START + 2_000, 3, "node-2"), entry(Signal::Logs, START, 2, "node-2")],
        ),
    ];
    let mut metadata = SessionMetadata::new(
        "checkout-2026-01-01".parse().unwrap(),
        SessionType::Capture,
        Timestamp::from_unix_nanos(START),
        "otlp-tape 0.1.0 capture --join".to_owned(),
    );
    metadata.format_version = FORMAT_VERSION_WRITERS;
    metadata.blobs = manifests.iter().flat_map(|manifest| manifest.blobs.clone()).collect();
    metadata.writers = manifests.iter().map(WriterManifest::entry).collect();
    metadata.finish(Timestamp::from_unix_nanos(START + 60_000_000_000), SessionStatus::Completed);
    metadata
}

fn json_of(metadata: &SessionMetadata) -> Value {
    serde_json::from_slice(&metadata.to_json()).unwrap()
}

fn malformed(value: &Value) -> String {
    match SessionMetadata::from_json(&serde_json::to_vec(value).unwrap()) {
        Err(MetadataError::Malformed(message)) => message,
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[test]
fn version_2_reads_back_with_writer_keys_and_writers() {
    let metadata = sealed();
    let read = SessionMetadata::from_json(&metadata.to_json()).expect("version 2 reads");
    assert_eq!(read, metadata);
    assert!(read.has_writers());
    let json = json_of(&metadata);
    assert_eq!(json["formatVersion"], json!(2));
    assert_eq!(json["writers"][1]["writerId"], json!("node-2"));
    assert_eq!(json["writers"][1]["capturedTraces"], json!(metadata.blobs[1].items));
    assert_eq!(json["writers"][1]["capturedLogs"], json!(metadata.blobs[2].items));
    assert_eq!(json["writers"][1]["requests"], json!(5));
    assert!(json["blobs"][0]["key"].as_str().unwrap().contains("-node-1-000001.otlp.gz"));
}

#[test]
fn writer_keys_and_writers_belong_to_version_2_only() {
    let mut json = json_of(&sealed());
    json["formatVersion"] = json!(FORMAT_VERSION);
    let message = malformed(&json);
    assert!(message.contains("names writer node-1") && message.contains("format version 1"), "{message}");

    let mut json = json_of(&sealed());
    json["formatVersion"] = json!(FORMAT_VERSION);
    json["blobs"] = json!([]);
    for counts in ["capturedTraces", "capturedMetrics", "capturedLogs", "totalSizeBytes"] {
        json[counts] = json!(0);
    }
    json["requestCounts"] = json!({"traces": 0, "metrics": 0, "logs": 0});
    let message = malformed(&json);
    assert!(message.contains("lists writers"), "{message}");
}

#[test]
fn writers_figures_must_add_up_to_the_totals() {
    for (field, value) in [("blobs", 7), ("capturedTraces", 1), ("requests", 99), ("totalSizeBytes", 1)] {
        let mut json = json_of(&sealed());
        json["writers"][0][field] = json!(value);
        let message = malformed(&json);
        assert!(message.contains(&format!("the writers' {field} add up to")), "{field}: {message}");
    }
    let mut json = json_of(&sealed());
    json["writers"][1]["writerId"] = json!("node-1");
    assert!(malformed(&json).contains("writer node-1 is listed twice"));
    let mut json = json_of(&sealed());
    json["writers"][0]["writerId"] = json!("node-9");
    let message = malformed(&json);
    assert!(message.contains("-node-1-000001.otlp.gz belongs to no writer listed"), "{message}");
}

#[test]
fn a_blob_listed_twice_is_refused() {
    let mut json = json_of(&sealed());
    let blobs = json["blobs"].as_array_mut().unwrap();
    let again = blobs[0].clone();
    blobs.push(again);
    let message = malformed(&json);
    assert!(message.contains("-node-1-000001.otlp.gz is listed twice"), "{message}");
}

#[test]
fn each_writers_figures_are_those_of_its_own_blobs() {
    // The sums add up, but a blob's figures are moved to another writer.
    let metadata = sealed();
    let moved = metadata.writers[0].clone();
    let mut json = json_of(&metadata);
    for field in ["blobs", "capturedTraces", "requests", "totalSizeBytes"] {
        let from = json["writers"][0][field].as_u64().unwrap();
        let to = json["writers"][1][field].as_u64().unwrap();
        json["writers"][0][field] = json!(0);
        json["writers"][1][field] = json!(from + to);
    }
    json["writers"][0].as_object_mut().unwrap().remove("firstReceiveTime");
    let message = malformed(&json);
    assert!(
        message.contains(&format!(
            "writer node-1 has blobs 0 in writers, but its blobs in the blob list have {}",
            moved.blobs
        )),
        "{message}"
    );

    // A writer listed whose blobs are not in the blob list.
    let mut json = json_of(&metadata);
    let mut ghost = json["writers"][0].clone();
    ghost["writerId"] = json!("node-9");
    for field in ["blobs", "capturedTraces", "capturedMetrics", "capturedLogs", "requests", "totalSizeBytes"] {
        json["writers"][0][field] = json!(0);
    }
    json["writers"].as_array_mut().unwrap().push(ghost);
    let message = malformed(&json);
    assert!(message.contains("writer node-1 has blobs 0 in writers"), "{message}");
}
