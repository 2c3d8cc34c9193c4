//! `annotations list | add | push`, `seed` writing its phases to ClickHouse,
//! and `export --by-phase`, against a real ClickHouse server.

use std::collections::BTreeMap;
use std::path::Path;

use assert_cmd::Command;
use futures::TryStreamExt;
use predicates::prelude::*;
use serde_json::Value;
use tape_session::{SessionStore, Timestamp};
use tape_store::LocalStore;
use tape_testkit::clickhouse::ClickHouseServer;

use crate::{import_samples, tape, tape_json};

/// `otlp-tape` configured for `server` through the CLICKHOUSE_* variables.
fn tape_with(store: &Path, server: &ClickHouseServer) -> Command {
    let mut command = tape(store);
    command
        .env("CLICKHOUSE_URL", server.http_url())
        .env("CLICKHOUSE_USER", server.user())
        .env("CLICKHOUSE_PASSWORD", server.password())
        .env("CLICKHOUSE_DATABASE", "training");
    command
}

fn json_of(command: &mut Command, args: &[&str]) -> Value {
    let output = command.args(["--output", "json"]).args(args).output().unwrap();
    assert!(output.status.success(), "otlp-tape {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The rows of `training.annotations` for `session`, as (key, start ns,
/// end ns), read with SQL of the test's own.
async fn rows(server: &ClickHouseServer, session: &str) -> Vec<(String, u64, u64)> {
    let text = server
        .query(&format!(
            "SELECT annotation_key, time_range_start_ns, time_range_end_ns FROM training.annotations \
             WHERE session_id = '{session}' ORDER BY time_range_start_ns"
        ))
        .await;
    text.lines()
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            (fields[0].to_owned(), fields[1].parse().unwrap(), fields[2].parse().unwrap())
        })
        .collect()
}

/// The phases of a session's metadata as (key, start ns, end ns).
fn metadata_phases(store: &Path, session: &str) -> Vec<(String, u64, u64)> {
    let shown = tape_json(store, &["sessions", "show", session]);
    let metadata = shown.get("metadata").unwrap_or(&shown);
    let nanos = |value: &Value| Timestamp::parse_rfc3339(value.as_str().unwrap()).unwrap().unix_nanos();
    metadata["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|phase| {
            (format!("test.phase.{}", phase["name"].as_str().unwrap()), nanos(&phase["start"]), nanos(&phase["end"]))
        })
        .collect()
}

#[tokio::test]
async fn seed_writes_exactly_its_phases_and_push_is_idempotent() {
    let server = ClickHouseServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();

    for (pattern, id, phases) in [("payment-failure", "pf-1", 3), ("training-phases", "tp-1", 0)] {
        let seeded =
            json_of(&mut tape_with(store, &server), &["seed", "--pattern", pattern, "--seed", "7", "--session-id", id]);
        let expected = metadata_phases(store, id);
        assert!(expected.len() >= phases.max(2), "{pattern} has phases: {expected:?}");
        assert_eq!(seeded["clickhouse"]["inserted"], expected.len(), "{seeded}");
        assert_eq!(seeded["clickhouse"]["table"], format!("training.annotations at {}", server.http_url()));
        assert_eq!(rows(&server, id).await, expected, "{pattern}");
    }

    // Pushing again adds nothing.
    let pushed = json_of(&mut tape_with(store, &server), &["annotations", "push", "--session", "pf-1"]);
    assert_eq!((pushed["inserted"].as_u64(), pushed["alreadyPresent"].as_u64()), (Some(0), Some(3)), "{pushed}");
    tape_with(store, &server).args(["annotations", "push", "--session", "pf-1"]).assert().success();
    assert_eq!(rows(&server, "pf-1").await, metadata_phases(store, "pf-1"));

    // ClickHouse gives back exactly what the session holds.
    let from_session = tape_json(store, &["annotations", "list", "--session", "tp-1"]);
    let from_clickhouse = json_of(
        &mut tape_with(store, &server),
        &["annotations", "list", "--session", "tp-1", "--source", "clickhouse"],
    );
    assert_eq!(from_clickhouse, from_session);
    assert_eq!(from_session.as_array().unwrap().len(), metadata_phases(store, "tp-1").len());
    server.stop().await;
}

#[tokio::test]
async fn a_session_id_with_quotes_or_sql_never_reaches_clickhouse() {
    let server = ClickHouseServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    tape_with(dir.path(), &server)
        .args(["seed", "--pattern", "payment-failure", "--session-id", "pf-1"])
        .assert()
        .success();
    for hostile in ["pf-1' OR '1'='1", "x'; DROP TABLE training.annotations; --", "pf-1\" OR 1=1"] {
        tape_with(dir.path(), &server)
            .args(["annotations", "list", "--session", hostile, "--source", "clickhouse"])
            .assert()
            .code(2)
            .stderr(predicate::str::contains("invalid session id"));
        tape_with(dir.path(), &server)
            .args(["annotations", "push", "--session", hostile])
            .assert()
            .code(2)
            .stderr(predicate::str::contains("invalid session id"));
    }
    assert_eq!(rows(&server, "pf-1").await.len(), 3);
    server.stop().await;
}

#[tokio::test]
async fn an_operator_marks_an_incident_in_a_capture_session() {
    let server = ClickHouseServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    import_samples(store, "cap-1");
    // The operator's incident: 2 s to 4 s into the session.
    let incident: &[&str] = &[
        "annotations",
        "add",
        "--session",
        "cap-1",
        "--key",
        "test.phase.incident",
        "--from",
        "2s",
        "--until",
        "4s",
        "--description",
        "checkout errors reported",
    ];

    let added = json_of(&mut tape_with(store, &server), incident);
    assert_eq!(added["added"], true);
    assert_eq!(added["clickhouse"]["inserted"], 1, "{added}");
    let annotation = &added["annotation"];
    assert_eq!(annotation["annotationType"], "test");
    assert_eq!(annotation["annotationValue"]["phase"], "incident");
    assert_eq!(annotation["annotationValue"]["description"], "checkout errors reported");

    // The range counts from the session's start.
    let shown = tape_json(store, &["sessions", "show", "cap-1"]);
    let metadata = shown.get("metadata").unwrap_or(&shown);
    let start = Timestamp::parse_rfc3339(metadata["startTime"].as_str().unwrap()).unwrap().unix_nanos();
    let (from, until) = (start + 2_000_000_000, start + 4_000_000_000);
    assert_eq!(rows(&server, "cap-1").await, [("test.phase.incident".to_owned(), from, until)]);

    // Adding it again changes nothing, here or in ClickHouse.
    let again = json_of(&mut tape_with(store, &server), incident);
    assert_eq!(again["added"], false);
    assert_eq!(tape_json(store, &["annotations", "list", "--session", "cap-1"]).as_array().unwrap().len(), 1);
    assert_eq!(rows(&server, "cap-1").await.len(), 1);

    // The by-phase export puts exactly the records received in the range
    // into incident/, the rest into unlabelled/.
    let local = LocalStore::new(store);
    let id = "cap-1".parse().unwrap();
    let session = local.read_metadata(&id).await.unwrap();
    let records: Vec<_> = tape_session::read_session(&local, &session, |_| true).try_collect().await.unwrap();
    let inside = |time: u64| (from..until).contains(&time);
    let mut expected: BTreeMap<(&str, String), u64> = BTreeMap::new();
    for (signal, record) in &records {
        let label = if inside(record.receive_time_unix_nano) { "incident" } else { "unlabelled" };
        *expected.entry((label, signal.to_string())).or_default() += 1;
    }
    assert!(expected.keys().any(|(label, _)| *label == "incident"), "the range holds records");
    assert!(expected.keys().any(|(label, _)| *label == "unlabelled"), "records lie outside it");

    let out = dir.path().join("training");
    let labels = tape_json(
        store,
        &["export", "--session", "cap-1", "--by-phase", "--format", "otlp-proto", "--out", out.to_str().unwrap()],
    );
    let mut exported: BTreeMap<(&str, String), u64> = BTreeMap::new();
    for phase in labels["phases"].as_array().unwrap() {
        let label = if phase["phase"] == "incident" { "incident" } else { "unlabelled" };
        for file in phase["files"].as_array().unwrap() {
            let bytes = std::fs::read(out.join(file["file"].as_str().unwrap())).unwrap();
            assert_eq!(frames(&bytes), file["requests"].as_u64().unwrap(), "{file}");
            exported.insert((label, file["signal"].as_str().unwrap().to_owned()), file["requests"].as_u64().unwrap());
        }
    }
    assert_eq!(exported, expected);
    server.stop().await;
}

/// The number of length-prefixed protobuf messages in an otlp-proto file.
fn frames(mut bytes: &[u8]) -> u64 {
    let mut count = 0;
    while bytes.len() >= 4 {
        let len = u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
        bytes = &bytes[4 + len..];
        count += 1;
    }
    assert!(bytes.is_empty(), "trailing bytes");
    count
}

#[test]
fn by_phase_export_of_payment_failure_puts_the_failures_in_the_failure_directory() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    tape(store).args(["seed", "--pattern", "payment-failure", "--seed", "42", "--session-id", "pf"]).assert().success();
    let out = dir.path().join("by-phase");
    let labels = tape_json(
        store,
        &["export", "--session", "pf", "--by-phase", "--format", "otlp-json", "--out", out.to_str().unwrap()],
    );

    let names: Vec<&str> =
        labels["phases"].as_array().unwrap().iter().map(|phase| phase["phase"].as_str().unwrap()).collect();
    assert_eq!(names, ["baseline", "failure", "rampdown", "unlabelled"]);
    assert_eq!(labels["overlapping"], false);
    // labels.json on disk is what was printed.
    let on_disk: Value = serde_json::from_slice(&std::fs::read(out.join("labels.json")).unwrap()).unwrap();
    assert_eq!(on_disk, labels);

    // The phases' counts add up to the session's, signal by signal.
    for counts in ["requests", "items"] {
        for signal in ["traces", "metrics", "logs"] {
            let sum: u64 =
                labels["phases"].as_array().unwrap().iter().map(|phase| phase[counts][signal].as_u64().unwrap()).sum();
            assert_eq!(sum, labels[counts][signal].as_u64().unwrap(), "{counts} of {signal}");
        }
    }

    // Every failing payment span that started in the failure phase is in
    // failure/, and none of them anywhere else.
    let failure = &labels["phases"][1];
    let nanos = |value: &Value| Timestamp::parse_rfc3339(value.as_str().unwrap()).unwrap().unix_nanos();
    let (start, end) = (nanos(&failure["timeRangeStart"]), nanos(&failure["timeRangeEnd"]));
    let mut failing_in_phase: BTreeMap<&str, usize> = BTreeMap::new();
    for name in &names {
        let path = out.join(name).join("traces.jsonl");
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let count = failing_payment_spans(&text).into_iter().filter(|started| (start..end).contains(started)).count();
        failing_in_phase.insert(name, count);
    }
    assert!(failing_in_phase["failure"] > 20, "{failing_in_phase:?}");
    assert_eq!(failing_in_phase.values().sum::<usize>(), failing_in_phase["failure"], "{failing_in_phase:?}");
    // And the failure phase is where payments fail.
    let baseline = std::fs::read_to_string(out.join("baseline/traces.jsonl")).unwrap();
    assert!(failing_payment_spans(&baseline).len() * 5 < failing_in_phase["failure"]);
}

/// Start times of the spans of a payment service with an error status in
/// OTLP/JSON lines.
fn failing_payment_spans(text: &str) -> Vec<u64> {
    let mut starts = Vec::new();
    for line in text.lines() {
        let request: Value = serde_json::from_str(line).unwrap();
        for resource in request["resourceSpans"].as_array().unwrap() {
            let attributes = resource["resource"]["attributes"].as_array().unwrap();
            let service = attributes.iter().find(|a| a["key"] == "service.name").unwrap()["value"]["stringValue"]
                .as_str()
                .unwrap();
            if !service.contains("payment") {
                continue;
            }
            for scope in resource["scopeSpans"].as_array().unwrap() {
                for span in scope["spans"].as_array().unwrap() {
                    if span["status"]["code"] == 2 {
                        starts.push(span["startTimeUnixNano"].as_str().unwrap().parse().unwrap());
                    }
                }
            }
        }
    }
    starts
}

#[tokio::test]
async fn clickhouse_failures_are_warnings_for_seed_and_errors_for_push() {
    let server = ClickHouseServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let unreachable = format!("http://127.0.0.1:{closed}");

    // Seeding with ClickHouse down stores the whole session and says so.
    let output = tape(store)
        .env("CLICKHOUSE_URL", &unreachable)
        .args(["--output", "json", "seed", "--pattern", "payment-failure", "--session-id", "pf"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("warning: the phases of session pf were not written to ClickHouse"), "{stderr}");
    assert!(stderr.contains(&format!("cannot reach ClickHouse at {unreachable}")), "{stderr}");
    assert!(stderr.contains("otlp-tape annotations push --session pf"), "{stderr}");
    let seeded: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(seeded["clickhouse"]["error"].as_str().unwrap().contains("cannot reach"), "{seeded}");
    tape(store).args(["sessions", "verify", "pf"]).assert().success();

    // Push to an unreachable server fails naming it.
    tape(store)
        .env("CLICKHOUSE_URL", &unreachable)
        .args(["annotations", "push", "--session", "pf"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!("cannot reach ClickHouse at {unreachable}")));
    // Without any ClickHouse configured, push says how to configure it.
    tape(store)
        .env_remove("CLICKHOUSE_URL")
        .args(["annotations", "push", "--session", "pf"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("pass --clickhouse-url or set CLICKHOUSE_URL"));

    // Wrong credentials are named, and nothing is written.
    tape_with(store, &server)
        .env("CLICKHOUSE_PASSWORD", "not-the-password-42")
        .args(["annotations", "push", "--session", "pf"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!("refused user \"{}\"", server.user())))
        .stderr(predicate::str::contains("not-the-password-42").not());
    assert_eq!(server.query("SELECT count() FROM system.databases WHERE name = 'training'").await.trim(), "0");

    // A table of another shape is refused and left as it was.
    server.query("CREATE DATABASE training").await;
    server.query("CREATE TABLE training.annotations (session_id String) ENGINE = MergeTree ORDER BY session_id").await;
    tape_with(store, &server)
        .args(["annotations", "push", "--session", "pf"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("is not otlp-tape's annotations table"))
        .stderr(predicate::str::contains("column annotation_id is missing"));
    assert_eq!(server.query("SELECT count() FROM training.annotations").await.trim(), "0");

    // Once the table is right, the push writes everything exactly once.
    server.query("DROP TABLE training.annotations").await;
    let pushed = json_of(&mut tape_with(store, &server), &["annotations", "push", "--session", "pf"]);
    assert_eq!(pushed["inserted"], 3);
    assert_eq!(rows(&server, "pf").await, metadata_phases(store, "pf"));
    server.stop().await;
}

#[test]
fn bad_annotations_are_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    tape(store)
        .args(["seed", "--pattern", "payment-failure", "--duration", "30s", "--session-id", "pf"])
        .assert()
        .success();
    let before = std::fs::read(store.join("sessions/pf/annotations.jsonl")).unwrap();
    let add = |extra: &[&str]| {
        let mut command = tape(store);
        command.args(["annotations", "add", "--session", "pf"]).args(extra);
        command
    };
    let cases: [(&[&str], &str); 8] = [
        (&["--key", "test.phase.x", "--from", "20s", "--until", "10s"], "--until 10s"),
        (&["--key", "test.phase.x", "--from", "10s", "--until", "10s"], "must be after --from"),
        (&["--key", "test.phase.x", "--from", "10s", "--until", "40s"], "is outside session pf"),
        (&["--key", "test.phase.x", "--from", "2025-12-31T23:59:00Z", "--until", "5s"], "is outside session pf"),
        (&["--key", "test.phase.../../etc", "--from", "0s", "--until", "5s"], "may only hold letters, digits"),
        (&["--key", "test.phase.unlabelled", "--from", "0s", "--until", "5s"], "reserved"),
        (&["--key", "ops.deploy", "--from", "0s", "--until", "5s", "--value", "{not json"], "--value is not JSON"),
        (&["--key", "has space", "--from", "0s", "--until", "5s"], "without spaces"),
    ];
    for (args, expected) in cases {
        add(args).assert().code(1).stderr(predicate::str::contains(expected));
    }
    add(&["--key", "x", "--from", "0s", "--until", "5s"]).env("CLICKHOUSE_URL", "x").assert().success();
    // Only the last, valid one was added; and ClickHouse was skipped with a warning.
    let after = std::fs::read(store.join("sessions/pf/annotations.jsonl")).unwrap();
    assert!(after.starts_with(&before) && after.len() > before.len());
    assert_eq!(String::from_utf8_lossy(&after[before.len()..]).lines().count(), 1);
    tape(store)
        .args(["annotations", "list", "--session", "nope"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("session nope not found"));
}

#[test]
fn a_phase_name_with_path_characters_stops_the_export_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    tape(store).args(["seed", "--pattern", "payment-failure", "--session-id", "pf"]).assert().success();
    let path = store.join("sessions/pf/annotations.jsonl");
    let text = std::fs::read_to_string(&path).unwrap().replace("test.phase.failure", "test.phase.../../escaped");
    std::fs::write(&path, text).unwrap();
    let out = dir.path().join("out");
    tape(store)
        .args(["export", "--session", "pf", "--by-phase", "--format", "otlp-json", "--out", out.to_str().unwrap()])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("annotations.jsonl line 2: phase name \"../../escaped\" may only hold"));
    assert!(!dir.path().join("escaped").exists());
    assert!(!out.exists() || std::fs::read_dir(&out).unwrap().next().is_none());
}

#[test]
fn a_by_phase_export_does_not_replace_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    tape(store).args(["seed", "--pattern", "payment-failure", "--session-id", "pf"]).assert().success();
    let out = dir.path().join("out");
    let args = ["export", "--session", "pf", "--by-phase", "--format", "otlp-proto", "--out", out.to_str().unwrap()];
    tape(store).args(args).assert().success();
    let labels = std::fs::read(out.join("labels.json")).unwrap();
    tape(store).args(args).assert().code(1).stderr(predicate::str::contains("pass --force to replace it"));
    tape(store).args(args).arg("--force").assert().success();
    assert_eq!(std::fs::read(out.join("labels.json")).unwrap(), labels);
    // No staging directory is left behind.
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|name| !name.starts_with('.')), "{names:?}");
}
