//! `otlp-tape sessions merge` as a user runs it: two seed sessions of
//! different patterns merged, then verified, exported by phase and
//! replayed to a real OTLP target; bad input; a full disk midway.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;
use tape_otlp::Signal;
use tape_testkit::otlp_target::{OtlpTarget, OtlpTargetOptions};
use tape_testkit::tmpfs::Tmpfs;

use crate::replay::{replay, run_ok, stored};
use crate::{fails, fails_with, tape, tape_json};

/// Seeds the two sources: `pay` (payment-failure: baseline, failure,
/// rampdown) and `basic` (basic-topology: steady), both on the seeds'
/// virtual clock from 2026-01-01, so their records overlap in time.
fn seed_sources(store: &Path) {
    for (id, pattern, seed) in [("pay", "payment-failure", "1"), ("basic", "basic-topology", "2")] {
        tape(store)
            .args(["seed", "--pattern", pattern, "--duration", "30s", "--seed", seed, "--session-id", id])
            .assert()
            .success();
    }
}

fn metadata(store: &Path, id: &str) -> Value {
    serde_json::from_slice(&std::fs::read(store.join("sessions").join(id).join("metadata.json")).unwrap()).unwrap()
}

/// The records of sessions as a sorted multiset of (signal, payload).
fn records(store: &Path, ids: &[&str]) -> Vec<(Signal, Vec<u8>)> {
    let mut records: Vec<_> = ids.iter().flat_map(|id| stored(store, id)).collect();
    records.sort_by(|a, b| (a.0.as_str(), &a.1).cmp(&(b.0.as_str(), &b.1)));
    records
}

fn sha256s(metadata: &[&Value]) -> Vec<String> {
    let mut sums: Vec<String> = metadata
        .iter()
        .flat_map(|metadata| metadata["blobs"].as_array().unwrap())
        .map(|blob| blob["sha256"].as_str().unwrap().to_owned())
        .collect();
    sums.sort();
    sums
}

/// Every file of an export directory with its bytes.
fn export_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    crate::files_under(dir)
        .into_iter()
        .map(|file| (file.display().to_string(), std::fs::read(dir.join(&file)).unwrap()))
        .collect()
}

fn export(store: &Path, id: &str, out: &Path, extra: &[&str]) -> Value {
    let out = out.to_str().unwrap();
    tape_json(store, &[&["export", "--session", id, "--format", "otlp-json", "--out", out][..], extra].concat())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_seeds_merged_keep_every_record_with_their_phases_and_annotations() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    seed_sources(store);
    let report = tape_json(store, &["sessions", "merge", "pay", "basic", "--into", "both"]);
    tape(store).args(["sessions", "verify", "both"]).assert().success();

    let (pay, basic, both) = (metadata(store, "pay"), metadata(store, "basic"), metadata(store, "both"));
    assert_eq!(both["formatVersion"], 2);
    assert_eq!(both["status"], "completed");
    assert_eq!(both["sessionType"], "seed");
    assert_eq!(both["description"], "merged from pay, basic");
    assert_eq!(records(store, &["both"]), records(store, &["pay", "basic"]), "the sources' records, no more");
    assert_eq!(sha256s(&[&both]), sha256s(&[&pay, &basic]), "blobs are copied byte for byte");
    for field in ["capturedTraces", "capturedMetrics", "capturedLogs", "totalSizeBytes"] {
        assert_eq!(both[field].as_u64(), Some(pay[field].as_u64().unwrap() + basic[field].as_u64().unwrap()));
    }
    let writers: Vec<(&str, &str)> = both["writers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|writer| (writer["writerId"].as_str().unwrap(), writer["source"].as_str().unwrap()))
        .collect();
    assert_eq!(writers, [("basic", "basic"), ("pay", "pay")]);
    assert_eq!(report["sources"][0]["writers"], serde_json::json!(["pay"]));
    assert_eq!(report["sources"][0]["phases"], 3);
    assert_eq!(report["items"]["traces"], both["capturedTraces"]);

    let mut phases: Vec<(String, String, String)> = both["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|phase| {
            let text = |field: &str| phase[field].as_str().unwrap().to_owned();
            (text("name"), text("source"), text("writer"))
        })
        .collect();
    phases.sort();
    let expected: Vec<(String, String, String)> =
        [("basic/steady", "basic"), ("pay/baseline", "pay"), ("pay/failure", "pay"), ("pay/rampdown", "pay")]
            .iter()
            .map(|(name, source)| ((*name).to_owned(), (*source).to_owned(), (*source).to_owned()))
            .collect();
    assert_eq!(phases, expected);

    // Every annotation is kept, labelled with its source; phase
    // annotations are renamed like the phases.
    let annotations = std::fs::read_to_string(store.join("sessions/both/annotations.jsonl")).unwrap();
    let annotations: Vec<Value> = annotations.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    let mut keys: Vec<(&str, &str)> = annotations
        .iter()
        .map(|annotation| {
            assert_eq!(annotation["sessionId"], "both");
            (annotation["annotationKey"].as_str().unwrap(), annotation["annotationValue"]["source"].as_str().unwrap())
        })
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            ("test.phase.basic/steady", "basic"),
            ("test.phase.pay/baseline", "pay"),
            ("test.phase.pay/failure", "pay"),
            ("test.phase.pay/rampdown", "pay")
        ]
    );

    // A phase of one source selects that source's records only: basic's
    // records of the same seconds are not pay's failure.
    let exports = tempfile::tempdir().unwrap();
    let merged_failure = exports.path().join("merged-failure");
    let source_failure = exports.path().join("source-failure");
    export(store, "both", &merged_failure, &["--phase", "pay/failure"]);
    export(store, "pay", &source_failure, &["--phase", "failure"]);
    assert!(!export_files(&source_failure).is_empty());
    assert_eq!(export_files(&merged_failure), export_files(&source_failure));

    let by_phase = exports.path().join("by-phase");
    let source_by_phase = exports.path().join("source-by-phase");
    export(store, "both", &by_phase, &["--by-phase"]);
    export(store, "pay", &source_by_phase, &["--by-phase"]);
    let labels: Value = serde_json::from_slice(&std::fs::read(by_phase.join("labels.json")).unwrap()).unwrap();
    assert_eq!(labels["overlapping"], false, "phases of different sources never label one record");
    let directories: Vec<(&str, &str)> = labels["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|label| (label["phase"].as_str().unwrap(), label["directory"].as_str().unwrap()))
        .collect();
    assert_eq!(
        directories,
        [
            ("pay/baseline", "pay.baseline"),
            ("basic/steady", "basic.steady"),
            ("pay/failure", "pay.failure"),
            ("pay/rampdown", "pay.rampdown"),
            ("unlabelled", "unlabelled")
        ]
    );
    let (merged, source) = (export_files(&by_phase), export_files(&source_by_phase));
    for phase in ["baseline", "failure", "rampdown"] {
        for signal in ["traces", "metrics", "logs"] {
            let file = format!("{signal}.jsonl");
            assert_eq!(
                merged.get(&format!("pay.{phase}/{file}")),
                source.get(&format!("{phase}/{file}")),
                "pay/{phase} holds pay's {phase} records and nothing else"
            );
        }
    }
    let steady_items: u64 =
        ["traces", "metrics", "logs"].iter().map(|signal| labels["phases"][1]["items"][signal].as_u64().unwrap()).sum();
    let basic_by_phase = exports.path().join("basic-by-phase");
    export(store, "basic", &basic_by_phase, &["--by-phase"]);
    let basic_labels: Value =
        serde_json::from_slice(&std::fs::read(basic_by_phase.join("labels.json")).unwrap()).unwrap();
    let basic_items: u64 = ["traces", "metrics", "logs"]
        .iter()
        .map(|signal| basic_labels["phases"][0]["items"][signal].as_u64().unwrap())
        .sum();
    assert_eq!(steady_items, basic_items, "basic/steady holds basic's steady records only");

    // A replay of the merged session sends every item of both sources.
    let target = OtlpTarget::start(OtlpTargetOptions::default()).await;
    run_ok(
        replay(store, &["--session", "both", "--speed", "max", "--timestamps", "none", "--protocol", "grpc"])
            .args(["--endpoint", target.grpc_endpoint()]),
    );
    let mut received: Vec<(Signal, Vec<u8>)> =
        target.received().iter().map(|request| (request.signal, request.body.to_vec())).collect();
    received.sort_by(|a, b| (a.0.as_str(), &a.1).cmp(&(b.0.as_str(), &b.1)));
    assert_eq!(received, records(store, &["pay", "basic"]));

    // replay --phase of a source's phase sends that source's records only.
    let mut by_phase = Vec::new();
    for (session, phase) in [("both", "pay/failure"), ("pay", "failure")] {
        let target = OtlpTarget::start(OtlpTargetOptions::default()).await;
        let args = ["--session", session, "--phase", phase, "--speed", "max", "--timestamps", "none"];
        run_ok(replay(store, &args).args(["--protocol", "grpc", "--endpoint", target.grpc_endpoint()]));
        let mut received: Vec<(Signal, Vec<u8>)> =
            target.received().iter().map(|request| (request.signal, request.body.to_vec())).collect();
        received.sort_by(|a, b| (a.0.as_str(), &a.1).cmp(&(b.0.as_str(), &b.1)));
        by_phase.push(received);
    }
    assert!(!by_phase[1].is_empty());
    assert_eq!(by_phase[0], by_phase[1], "replay --phase pay/failure sends pay's failure and nothing of basic");
}

#[test]
fn bad_merges_are_refused_with_a_message_that_names_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    seed_sources(store);
    let merge = |args: &[&str]| {
        let mut command = tape(store);
        command.args(["sessions", "merge"]).args(args);
        command
    };
    // Refused for what was asked: exit code 2, naming the input.
    let refused = |args: &[&str], fragments: &[&str]| {
        fails_with(&mut merge(args), 2, fragments);
    };
    refused(&["pay", "--into", "c"], &["a merge needs at least two source sessions, got only pay"]);
    refused(&["pay", "basic", "pay", "--into", "c"], &["source session pay is given twice"]);
    fails(&mut merge(&["pay", "nowhere", "--into", "c"]), &["source session nowhere not found"]);
    refused(&["pay", "basic", "--into", "basic"], &["the new session basic is one of the sources"]);
    refused(&["pay", "basic", "--into", "../c"], &["invalid session id \"../c\""]);
    refused(&["pay", "b/../basic", "--into", "c"], &["invalid session id \"b/../basic\""]);
    crate::edit_metadata(store, "basic", |metadata| metadata["status"] = "active".into());
    refused(&["pay", "basic", "--into", "c"], &["source session basic is active"]);
    crate::edit_metadata(store, "basic", |metadata| metadata["status"] = "failed".into());
    refused(&["pay", "basic", "--into", "c"], &["source session basic failed", "--include-failed"]);
    crate::edit_metadata(store, "basic", |metadata| metadata["status"] = "completed".into());
    tape(store).args(["sessions", "merge", "pay", "basic", "--into", "c"]).assert().success();
    refused(&["pay", "basic", "--into", "c"], &["session c already exists"]);
    assert!(!store.join("sessions/nowhere").exists());
}

#[test]
fn a_full_disk_midway_leaves_no_half_session_and_the_sources_untouched() {
    let tmpfs = Tmpfs::mount("4m");
    let store = tmpfs.path();
    for (id, seed) in [("one", "1"), ("two", "2")] {
        tape(store)
            .args(["seed", "--pattern", "basic-topology", "--duration", "20s", "--seed", seed, "--session-id", id])
            .assert()
            .success();
    }
    let before = crate::files_under(store);
    let sources = records(store, &["one", "two"]);
    // Room for some of the copies, not all of them.
    let size = metadata(store, "one")["totalSizeBytes"].as_u64().unwrap();
    let filler = tmpfs.fill(size + size / 2);
    let output = tape(store).args(["sessions", "merge", "one", "two", "--into", "merged"]).output().unwrap();
    assert!(!output.status.success(), "a merge larger than the free space succeeded");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot copy blob") && stderr.contains("No space left on device"), "{stderr}");
    assert!(!store.join("sessions/merged").exists(), "a half session is left");
    let mut after = crate::files_under(store);
    after.retain(|file| file != Path::new("filler"));
    assert_eq!(after, before);
    assert_eq!(records(store, &["one", "two"]), sources);
    std::fs::remove_file(filler).unwrap();
    tape(store).args(["sessions", "merge", "one", "two", "--into", "merged"]).assert().success();
    tape(store).args(["sessions", "verify", "merged"]).assert().success();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merge_through_the_api_answers_201_with_its_report_and_bad_ones_with_their_status() {
    use reqwest::{Method, StatusCode};
    use serde_json::json;

    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    seed_sources(store);
    let served = crate::serve::Served::start(store, &[]);
    let merge = |body: Value| {
        let served = &served;
        async move { served.call(Method::POST, "/api/v1/sessions/merge", Some(body)).await }
    };
    let (status, report) = merge(json!({"sources": ["pay", "basic"], "into": "api", "description": "both"})).await;
    assert_eq!(status, StatusCode::CREATED, "{report}");
    assert_eq!(report["sessionId"], "api");
    assert_eq!(report["metadata"]["description"], "both");
    assert_eq!(report["sources"][1]["writers"], json!(["basic"]));
    let (status, shown) = served.call(Method::GET, "/api/v1/sessions/api", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown["contentHash"], report["metadata"]["contentHash"]);

    for (body, expected, fragment) in [
        (json!({"sources": ["pay", "basic"], "into": "api"}), StatusCode::CONFLICT, "session api already exists"),
        (json!({"sources": ["pay", "gone"], "into": "x"}), StatusCode::NOT_FOUND, "source session gone not found"),
        (json!({"sources": ["pay"], "into": "x"}), StatusCode::BAD_REQUEST, "at least two source sessions"),
        (json!({"sources": ["pay", "pay"], "into": "x"}), StatusCode::BAD_REQUEST, "source session pay is given twice"),
        (json!({"sources": ["pay", "basic"], "into": "../x"}), StatusCode::BAD_REQUEST, "invalid session id"),
        (json!({"sources": ["pay", "basic"], "into": "x", "to": 1}), StatusCode::BAD_REQUEST, "unknown field `to`"),
        (json!({"sources": ["pay", "basic"]}), StatusCode::BAD_REQUEST, "missing field `into`"),
    ] {
        let (status, answer) = merge(body.clone()).await;
        assert_eq!(status, expected, "{body}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(fragment), "{body}: {message}");
    }
    crate::edit_metadata(store, "basic", |metadata| metadata["status"] = "active".into());
    let (status, answer) = merge(json!({"sources": ["pay", "basic"], "into": "x"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("source session basic is active"), "{answer}");
    assert!(!store.join("sessions/x").exists());
}

#[test]
fn the_api_documents_exactly_the_fields_of_a_merge() {
    let doc: Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json")).unwrap(),
    )
    .unwrap();
    let documented: Vec<&String> =
        doc["components"]["schemas"]["MergeRequest"]["properties"].as_object().unwrap().keys().collect();
    let mut fields = tape_server::request::fields::<tape_session::MergeConfig>().to_vec();
    fields.sort_unstable();
    let mut documented: Vec<&str> = documented.iter().map(|name| name.as_str()).collect();
    documented.sort_unstable();
    assert_eq!(fields, documented);
}
