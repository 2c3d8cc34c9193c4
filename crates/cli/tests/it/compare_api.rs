//! Comparisons through the control API of the real `serve`: a compare job
//! to completion with its report (JSON and HTML), bad requests answered
//! with their status at once, and a comparison stopped while it runs.

use std::path::Path;
use std::process::Command;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tape_testkit::otlp_target::{OtlpTarget, OtlpTargetOptions};

use crate::serve::Served;
use crate::tape;

/// Two seconds of basic-topology with a fixed seed as session `id`.
fn seed(store: &Path, id: &str, seed: &str) {
    let args = ["seed", "--pattern", "basic-topology", "--duration", "2s", "--seed", seed, "--session-id", id];
    tape(store).args(args).assert().success();
}

/// Starts a comparison with `body`: 202 and the job's id.
async fn start(served: &Served, body: Value) -> String {
    let (status, job) = served.call(Method::POST, "/api/v1/compares", Some(body.clone())).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}: {job}");
    assert_eq!(job["state"], "running", "{job}");
    assert_eq!(job["comparison"], Value::Null, "{job}");
    job["id"].as_str().unwrap_or_else(|| panic!("no id in {job}")).to_owned()
}

/// The error message of an answer with `status`.
async fn refused(served: &Served, method: Method, path: &str, body: Option<Value>, status: StatusCode) -> String {
    let (answered, answer) = served.call(method, path, body.clone()).await;
    assert_eq!(answered, status, "{path} {body:?}: {answer}");
    answer["error"]["message"].as_str().unwrap_or_else(|| panic!("{path}: {answer}")).to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_comparison_through_the_api_completes_with_its_report() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    seed(store, "S", "1");
    seed(store, "T", "2");
    let served = Served::start(store, &[]);

    let id = start(&served, json!({"expected": "S", "actual": "S", "ignoreAttributes": ["host.name"]})).await;
    let job = served.until_done(&format!("/api/v1/compares/{id}")).await;
    assert_eq!(job["state"], "completed", "{job}");
    assert_eq!((&job["expected"], &job["actual"], &job["error"]), (&json!("S"), &json!("S"), &Value::Null));
    assert_eq!(job["options"]["ignoreAttributes"], json!(["host.name"]), "{job}");
    let progress = &job["progress"];
    assert!(progress["recordsDone"].as_u64() > Some(0), "{job}");
    assert_eq!(progress["recordsDone"], progress["recordsTotal"], "{job}");
    let comparison = &job["comparison"];
    assert_eq!(comparison["verdict"], json!({"passed": true, "reasons": []}), "{job}");
    assert_eq!(comparison["expected"]["canonicalSha256"], comparison["actual"]["canonicalSha256"]);
    assert_eq!(comparison["total"]["identical"], comparison["total"]["expected"], "{job}");

    // The report alone: the JSON the job holds, or the page.
    let report = served.get(&format!("/api/v1/compares/{id}/report")).await;
    assert_eq!(&report, comparison);
    assert_eq!(served.get(&format!("/api/v1/compares/{id}/report?format=json")).await, report);
    let page = served.get(&format!("/api/v1/compares/{id}/report?format=html")).await;
    let page = page.as_str().unwrap_or_else(|| panic!("the page is not text: {page}"));
    assert!(page.starts_with("<!DOCTYPE html>") && page.contains("PASSED"), "{page:.300}");
    assert!(page.contains("<code>S</code>") && page.contains("host.name"), "{page:.300}");
    let message = refused(
        &served,
        Method::GET,
        &format!("/api/v1/compares/{id}/report?format=csv"),
        None,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(message.contains("\"csv\"") && message.contains("json or html"), "{message}");

    // Different sessions complete too, with a verdict that failed; the
    // share takes the flag's forms.
    let other = start(&served, json!({"expected": "S", "actual": "T", "maxMissing": "10%"})).await;
    let job = served.until_done(&format!("/api/v1/compares/{other}")).await;
    assert_eq!(job["state"], "completed", "{job}");
    assert_eq!(job["options"]["maxMissing"], 0.1, "{job}");
    assert_eq!(job["comparison"]["verdict"]["passed"], false, "{job}");
    let page = served.get(&format!("/api/v1/compares/{other}/report?format=html")).await;
    assert!(page.as_str().unwrap().contains("FAILED"));

    let listed = served.get("/api/v1/compares").await;
    let ids: Vec<&str> = listed["compares"].as_array().unwrap().iter().map(|job| job["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 2, "{listed}");
    assert!(ids.contains(&id.as_str()) && ids.contains(&other.as_str()), "{listed}");

    // Stopping a comparison that has ended changes nothing.
    let (status, stopped) = served.call(Method::POST, &format!("/api/v1/compares/{id}/stop"), None).await;
    assert_eq!((status, &stopped["state"]), (StatusCode::ACCEPTED, &json!("completed")), "{stopped}");
    assert!(served.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_compare_requests_are_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    seed(store, "S", "1");
    seed(store, "OTHER", "2");
    // A session still being recorded.
    seed(store, "LIVE", "3");
    let metadata = store.join("sessions/LIVE/metadata.json");
    let text = std::fs::read_to_string(&metadata).unwrap().replace("\"completed\"", "\"active\"");
    std::fs::write(&metadata, text).unwrap();
    // A real replay report, of OTHER.
    let target = OtlpTarget::start(OtlpTargetOptions::default()).await;
    let args = ["replay", "--session", "OTHER", "--speed", "max", "--endpoint", target.http_endpoint()];
    let output = tape(store).current_dir(store).args(args).args(["--report", "other.json"]).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: Value = serde_json::from_slice(&std::fs::read(store.join("other.json")).unwrap()).unwrap();
    target.shutdown().await;
    let served = Served::start(store, &[]);

    let valid = json!({"expected": "S", "actual": "S"});
    let with = |key: &str, value: Value| {
        let mut body = valid.clone();
        body[key] = value;
        body
    };
    for (body, status, fragment) in [
        (with("report", json!("x.html")), StatusCode::BAD_REQUEST, "unknown option \"report\""),
        (with("maxMissing", json!(1.5)), StatusCode::BAD_REQUEST, "maxMissing"),
        (with("maxMissing", json!("150%")), StatusCode::BAD_REQUEST, "(--max-missing)"),
        (with("signals", json!("colours")), StatusCode::BAD_REQUEST, "\"signals\""),
        (with("partitions", json!(0)), StatusCode::BAD_REQUEST, "partitions"),
        (with("expected", json!("no-such-session")), StatusCode::NOT_FOUND, "session no-such-session not found"),
        (with("actual", json!("no-such-session")), StatusCode::NOT_FOUND, "session no-such-session not found"),
        (with("actual", json!("LIVE")), StatusCode::CONFLICT, "session LIVE is active"),
        (json!({"expected": "S"}), StatusCode::BAD_REQUEST, "actual"),
        (with("replayReport", json!({"sessionId": "S"})), StatusCode::BAD_REQUEST, "replayReport"),
        (
            with("replayReport", report.clone()),
            StatusCode::BAD_REQUEST,
            "replayReport is the report of a replay of session OTHER",
        ),
        (json!([1]), StatusCode::BAD_REQUEST, "JSON object"),
    ] {
        let message = refused(&served, Method::POST, "/api/v1/compares", Some(body.clone()), status).await;
        assert!(message.contains(fragment), "{body}: {message}");
    }
    assert_eq!(served.get("/api/v1/compares").await, json!({"compares": []}), "a refused comparison became a job");
    for (method, path) in [
        (Method::GET, "/api/v1/compares/no-such-compare"),
        (Method::POST, "/api/v1/compares/no-such-compare/stop"),
        (Method::GET, "/api/v1/compares/no-such-compare/report"),
    ] {
        let message = refused(&served, method, path, None, StatusCode::NOT_FOUND).await;
        assert!(message.contains("no compare \"no-such-compare\""), "{path}: {message}");
    }

    // The report of a replay of EXPECTED is taken whole.
    let id = start(&served, json!({"expected": "OTHER", "actual": "OTHER", "replayReport": report})).await;
    let job = served.until_done(&format!("/api/v1/compares/{id}")).await;
    assert_eq!(job["state"], "completed", "{job}");
    assert_eq!(job["options"]["replayReport"]["session"]["id"], "OTHER", "{job}");
    assert!(served.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_comparison_stops_and_has_no_report() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    seed(store, "S", "1");
    seed(store, "HELD", "1");
    // HELD's first blob becomes a named pipe nobody writes: reading it
    // waits, so the comparison runs until it is stopped.
    let metadata: Value =
        serde_json::from_slice(&std::fs::read(store.join("sessions/HELD/metadata.json")).unwrap()).unwrap();
    let blob = store.join("sessions/HELD").join(metadata["blobs"][0]["key"].as_str().unwrap());
    std::fs::remove_file(&blob).unwrap();
    assert!(Command::new("mkfifo").arg(&blob).status().unwrap().success(), "mkfifo {}", blob.display());
    let served = Served::start(store, &["--max-concurrent-compares", "1"]);

    let id = start(&served, json!({"expected": "S", "actual": "HELD"})).await;
    let (status, job) = served.call(Method::GET, &format!("/api/v1/compares/{id}"), None).await;
    assert_eq!((status, &job["state"]), (StatusCode::OK, &json!("running")), "{job}");
    let path = format!("/api/v1/compares/{id}/report");
    let message = refused(&served, Method::GET, &path, None, StatusCode::CONFLICT).await;
    assert!(message.contains("still running"), "{message}");
    // One comparison at a time.
    let body = json!({"expected": "S", "actual": "S"});
    let message = refused(&served, Method::POST, "/api/v1/compares", Some(body), StatusCode::TOO_MANY_REQUESTS).await;
    assert!(message.contains("--max-concurrent-compares 1"), "{message}");
    // HELD is in use: a prune keeps it.
    let prune = json!({"keepLast": 1, "dryRun": true});
    let (status, pruned) = served.call(Method::POST, "/api/v1/retention/prune", Some(prune)).await;
    assert_eq!(status, StatusCode::OK, "{pruned}");
    let deleted: Vec<&str> =
        pruned["deleted"].as_array().unwrap().iter().map(|entry| entry["sessionId"].as_str().unwrap()).collect();
    assert!(!deleted.contains(&"HELD") && !deleted.contains(&"S"), "{pruned}");

    let (status, stopping) = served.call(Method::POST, &format!("/api/v1/compares/{id}/stop"), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{stopping}");
    let stopped = served.until_done(&format!("/api/v1/compares/{id}")).await;
    assert_eq!(stopped["state"], "stopped", "{stopped}");
    assert_eq!((&stopped["comparison"], &stopped["error"]), (&Value::Null, &Value::Null), "{stopped}");
    let message = refused(&served, Method::GET, &path, None, StatusCode::CONFLICT).await;
    assert!(message.contains("has no report: it stopped"), "{message}");
    // The thread still waiting on the pipe would hold up a graceful exit:
    // serve is killed when `served` is dropped.
}
