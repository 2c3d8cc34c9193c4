//! `otlp-tape compare` as a command: its output (text and JSON), its
//! `--report` files (JSON and HTML), its exit codes (0 passed, 1
//! different, 2 cannot compare) and its messages on bad input.

use std::path::Path;

use serde_json::Value;
use tape_testkit::otlp_target::{OtlpTarget, OtlpTargetOptions};

use crate::{fails_with, seed_session, tape};

/// Two seconds of basic-topology with a fixed seed as session `id`.
fn seed(store: &Path, id: &str, seed: &str) {
    let args = ["seed", "--pattern", "basic-topology", "--duration", "2s", "--seed", seed, "--session-id", id];
    tape(store).args(args).assert().success();
}

fn compare(store: &Path, args: &[&str]) -> assert_cmd::Command {
    let mut command = tape(store);
    command.current_dir(store).arg("compare").args(args);
    command
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn a_session_compared_with_itself_passes_in_text_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    seed(store, "S", "1");

    let output = compare(store, &["S", "S"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let text = stdout(&output);
    let first = text.lines().next().unwrap();
    assert!(first.starts_with("Passed: S holds what S says it should: "), "{text}");
    for fragment in ["traces", "metrics", "logs", "frontend", "backend", "canonical SHA-256", "0 dropped"] {
        assert!(text.contains(fragment), "{fragment} is not in:\n{text}");
    }

    let output = compare(store, &["S", "S", "--output", "json"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let comparison: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(comparison["verdict"], serde_json::json!({"passed": true, "reasons": []}));
    assert_eq!(comparison["tool"], "otlp-tape");
    let total = &comparison["total"];
    assert!(total["expected"].as_u64().unwrap() > 0, "{total}");
    assert_eq!(total["identical"], total["expected"]);
    assert_eq!((&total["missing"], &total["unexpected"], &total["changed"]), (&0.into(), &0.into(), &0.into()));
    let signals: Vec<&str> =
        comparison["signals"].as_array().unwrap().iter().map(|s| s["signal"].as_str().unwrap()).collect();
    assert_eq!(signals, ["traces", "metrics", "logs"]);

    // --signals narrows what is compared.
    let only = crate::tape_json(store, &["compare", "S", "S", "--signals", "logs"]);
    assert_eq!(only["signals"].as_array().unwrap().len(), 1);
    assert_eq!(only["signals"][0]["signal"], "logs");
}

#[test]
fn the_report_is_json_or_html_by_its_extension() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    seed(store, "S", "1");

    let output = compare(store, &["S", "S", "--report", "evidence.json"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&output.stderr).contains("Wrote the comparison to evidence.json."));
    let evidence: Value = serde_json::from_slice(&std::fs::read(store.join("evidence.json")).unwrap()).unwrap();
    let (expected, actual) = (&evidence["expected"], &evidence["actual"]);
    let hash = expected["canonicalSha256"].as_str().unwrap();
    assert_eq!(hash.len(), 64, "{hash}");
    assert_eq!(actual["canonicalSha256"], hash);
    assert_eq!((&expected["sessionId"], &actual["sessionId"]), (&"S".into(), &"S".into()));
    assert_eq!(evidence["options"]["expected"], "S");
    assert_eq!(evidence["verdict"]["passed"], true);

    seed(store, "T", "2");
    let output = compare(store, &["S", "T", "--report", "page.html"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "different seeds differ");
    let page = std::fs::read_to_string(store.join("page.html")).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>"), "{page:.200}");
    assert!(page.contains("FAILED"), "the verdict is on the page");
    for id in ["<code>S</code>", "<code>T</code>"] {
        assert!(page.contains(id), "{id} is not on the page");
    }
    assert!(!page.contains("<script"), "the page runs nothing");

    // Another extension is refused before anything is compared.
    fails_with(&mut compare(store, &["S", "S", "--report", "x.txt"]), 2, &["x.txt", ".json", ".html"]);
    assert!(!store.join("x.txt").exists());
    fails_with(&mut compare(store, &["S", "S", "--report", "no/such/dir/x.json"]), 2, &["no/such/dir"]);
}

#[test]
fn different_sessions_exit_1_with_the_differences() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    seed(store, "S", "1");
    seed(store, "T", "2");

    let output = compare(store, &["S", "T"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(text.starts_with("Failed: T differs from S:\n  - "), "{text}");
    assert!(text.contains("Examples ("), "{text}");

    let output = compare(store, &["S", "T", "--output", "json"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let comparison: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(comparison["verdict"]["passed"], false);
    assert!(!comparison["verdict"]["reasons"].as_array().unwrap().is_empty());
    assert!(comparison["total"]["missing"].as_u64().unwrap() > 0, "{}", comparison["total"]);
    assert_ne!(comparison["expected"]["canonicalSha256"], comparison["actual"]["canonicalSha256"]);
    // Every span is missing, so --max-missing 100% lets the spans pass; the
    // other differences still fail it.
    let output = compare(store, &["S", "T", "--max-missing", "100%", "--signals", "traces"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "the unexpected spans still fail it");
}

#[test]
fn bad_input_exits_2_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    seed(store, "S", "1");

    fails_with(&mut compare(store, &["S", "missing-one"]), 2, &["missing-one", "not found"]);
    fails_with(&mut compare(store, &["missing-one", "S"]), 2, &["missing-one", "not found"]);
    fails_with(&mut compare(store, &["S", "S", "--max-missing", "2"]), 2, &["--max-missing", "\"2\" is not a share"]);
    fails_with(&mut compare(store, &["S", "S", "--partitions", "0"]), 2, &["--partitions"]);
    fails_with(&mut compare(store, &["S"]), 2, &["<ACTUAL>"]);
    fails_with(
        &mut compare(store, &["S", "S", "--temp-dir", "nowhere"]),
        2,
        &["--temp-dir nowhere", "not a directory"],
    );

    // A replay report that is not a file, not JSON, or not a report.
    fails_with(&mut compare(store, &["S", "S", "--replay-report", "none.json"]), 2, &["none.json"]);
    std::fs::write(store.join("text.json"), "not json").unwrap();
    fails_with(&mut compare(store, &["S", "S", "--replay-report", "text.json"]), 2, &["replay report text.json"]);
    std::fs::write(store.join("other.json"), r#"{"sessionId": "S"}"#).unwrap();
    fails_with(&mut compare(store, &["S", "S", "--replay-report", "other.json"]), 2, &["other.json", "session"]);

    // A session still being recorded: its metadata lags behind its blobs,
    // so everything not listed yet would count as missing.
    seed(store, "LIVE", "1");
    let metadata = store.join("sessions/LIVE/metadata.json");
    let text = std::fs::read_to_string(&metadata).unwrap().replace("\"completed\"", "\"active\"");
    std::fs::write(&metadata, text).unwrap();
    fails_with(&mut compare(store, &["S", "LIVE"]), 2, &["session LIVE is active", "once its capture has stopped"]);
    fails_with(&mut compare(store, &["LIVE", "S"]), 2, &["session LIVE is active"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_report_of_another_session_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    seed_session(store, "basic-topology", "2s", "S");
    seed_session(store, "basic-topology", "2s", "OTHER");
    let target = OtlpTarget::start(OtlpTargetOptions::default()).await;
    let args = ["replay", "--session", "OTHER", "--speed", "max", "--endpoint", target.http_endpoint()];
    let output = tape(store).current_dir(store).args(args).args(["--report", "other.json"]).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));

    fails_with(
        &mut compare(store, &["S", "S", "--replay-report", "other.json"]),
        2,
        &["other.json is the report of a replay of session OTHER", "not of the expected session S"],
    );
    // The report of a replay of EXPECTED itself is taken.
    let output = compare(store, &["OTHER", "OTHER", "--replay-report", "other.json", "--output", "json"]).output();
    let output = output.unwrap();
    let comparison: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("{error}: {}", String::from_utf8_lossy(&output.stderr)));
    assert_eq!(comparison["options"]["replayReport"]["session"]["id"], "OTHER");
    target.shutdown().await;
}
