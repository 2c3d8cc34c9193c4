//! Exports through the control API of the real `serve`: Parquet tables of
//! a seeded session written under `--export-dir`, followed by polling the
//! job; bad requests answered with their status; local outputs refused
//! without `--export-dir`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use parquet::file::reader::{FileReader, SerializedFileReader};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::files_under;
use crate::seed_session;
use crate::serve::{Served, exit_within};

/// Rows of the Parquet file at `path`, read with the `parquet` crate.
fn rows(path: &Path) -> i64 {
    let reader = SerializedFileReader::new(std::fs::File::open(path).unwrap())
        .unwrap_or_else(|error| panic!("{} is not Parquet: {error}", path.display()));
    reader.metadata().file_metadata().num_rows()
}

/// Starts an export with `body`: 202 and the job's id.
async fn start(served: &Served, body: Value) -> String {
    let (status, job) = served.call(Method::POST, "/api/v1/exports", Some(body.clone())).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}: {job}");
    assert_eq!(job["progress"]["recordsDone"], 0, "{job}");
    job["id"].as_str().unwrap_or_else(|| panic!("no id in {job}")).to_owned()
}

/// The spans of session `id` of `store`, from its metadata.
fn spans(store: &Path, id: &str) -> i64 {
    let metadata: Value =
        serde_json::from_slice(&std::fs::read(store.join("sessions").join(id).join("metadata.json")).unwrap()).unwrap();
    metadata["capturedTraces"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_through_the_api_writes_parquet_under_the_export_dir() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    seed_session(store, "payment-failure", "10s", "api-export");
    let exports = store.join("exports");
    let served = Served::start(store, &["--export-dir", exports.to_str().unwrap()]);

    let id = start(&served, json!({"session": "api-export", "format": "parquet", "out": "run-1"})).await;
    let job = served.until_done(&format!("/api/v1/exports/{id}")).await;
    assert_eq!(job["state"], "completed", "{job}");
    assert_eq!(job["sessionId"], "api-export");
    assert_eq!(job["options"]["out"], "run-1", "the job shows the out the client gave: {job}");
    let progress = &job["progress"];
    assert!(progress["recordsDone"].as_u64() > Some(0), "{job}");
    assert_eq!(progress["recordsDone"], progress["recordsTotal"], "{job}");
    assert!(progress["bytesWritten"].as_u64() > Some(0), "{job}");

    // The files the outcome lists are there, with the rows it reports.
    let out = exports.join("run-1");
    let reported: BTreeMap<PathBuf, i64> = job["outcome"]["files"]
        .as_array()
        .unwrap_or_else(|| panic!("no files in {job}"))
        .iter()
        .map(|file| (PathBuf::from(file["file"].as_str().unwrap()), file["rows"].as_i64().unwrap()))
        .collect();
    let written: BTreeMap<PathBuf, i64> =
        files_under(&out).into_iter().map(|file| (file.clone(), rows(&out.join(&file)))).collect();
    assert_eq!(written, reported, "{job}");
    assert_eq!(written.get(Path::new("traces.parquet")), Some(&spans(store, "api-export")), "{written:?}");

    // By phase, into another directory: Hive partitions and labels.json.
    let id =
        start(&served, json!({"session": "api-export", "format": "parquet", "out": "run-2", "byPhase": true})).await;
    let job = served.until_done(&format!("/api/v1/exports/{id}")).await;
    assert_eq!(job["state"], "completed", "{job}");
    let files = files_under(&exports.join("run-2"));
    assert!(files.contains(&PathBuf::from("labels.json")), "{files:?}");
    assert!(files.contains(&PathBuf::from("Phase=baseline/traces.parquet")), "{files:?}");

    // The list holds both (ids order by the second they started in).
    let listed = served.get("/api/v1/exports").await;
    let ids: Vec<&str> = listed["exports"].as_array().unwrap().iter().map(|job| job["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 2, "{listed}");
    assert!(ids.contains(&id.as_str()), "{listed}");

    // The same output again without force: the job fails naming the file
    // and the files stay as they were.
    let before = written;
    let id = start(&served, json!({"session": "api-export", "format": "parquet", "out": "run-1"})).await;
    let job = served.until_done(&format!("/api/v1/exports/{id}")).await;
    assert_eq!(job["state"], "failed", "{job}");
    let error = job["error"].as_str().unwrap_or_default();
    assert!(error.contains("--force") && error.contains("run-1"), "{job}");
    let after: BTreeMap<PathBuf, i64> =
        files_under(&out).into_iter().map(|file| (file.clone(), rows(&out.join(&file)))).collect();
    assert_eq!(after, before);

    // Stopping an ended export changes nothing.
    let (status, stopped) = served.call(Method::POST, &format!("/api/v1/exports/{id}/stop"), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{stopped}");
    assert_eq!(stopped["state"], "failed", "{stopped}");
    assert!(served.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_export_requests_are_refused_with_their_status() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    seed_session(store, "basic-topology", "2s", "known");
    let exports = store.join("exports");
    let served = Served::start(store, &["--export-dir", exports.to_str().unwrap()]);
    let valid = json!({"session": "known", "format": "parquet", "out": "x"});
    let with = |key: &str, value: Value| {
        let mut body = valid.clone();
        body[key] = value;
        body
    };
    for (body, status, fragment) in [
        (with("store", json!("/tmp")), StatusCode::BAD_REQUEST, "unknown option \"store\""),
        (with("format", json!("csv")), StatusCode::BAD_REQUEST, "\"format\""),
        (with("out", json!("../outside")), StatusCode::BAD_REQUEST, "'..'"),
        (with("out", json!("a/../../outside")), StatusCode::BAD_REQUEST, "'..'"),
        (with("out", json!("/etc/outside")), StatusCode::BAD_REQUEST, "absolute"),
        (with("out", json!("file:///tmp/outside")), StatusCode::BAD_REQUEST, "not s3://"),
        (with("session", json!("no-such-session")), StatusCode::NOT_FOUND, "session no-such-session not found"),
        (json!({"format": "parquet", "out": "x"}), StatusCode::BAD_REQUEST, "session"),
        (json!([1]), StatusCode::BAD_REQUEST, "JSON object"),
    ] {
        let (answered, answer) = served.call(Method::POST, "/api/v1/exports", Some(body.clone())).await;
        assert_eq!(answered, status, "{body}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_else(|| panic!("{body}: {answer}"));
        assert!(message.contains(fragment), "{body}: {message}");
    }
    assert_eq!(served.get("/api/v1/exports").await, json!({"exports": []}), "a refused export became a job");
    assert!(!exports.join("x").exists() && !store.join("outside").exists(), "a refused export wrote something");
    for (method, path) in [(Method::GET, "/api/v1/exports/no-such-export"), (Method::POST, "/api/v1/exports/no/stop")] {
        let (status, answer) = served.call(method, path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {answer}");
    }
    drop(served);

    // Without --export-dir, local outputs are refused, naming the flag.
    let served = Served::start(store, &[]);
    let (status, answer) = served.call(Method::POST, "/api/v1/exports", Some(valid)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("--export-dir") && message.contains("s3://"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_export_ends_stopped_and_sigterm_stops_a_running_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    seed_session(store, "basic-topology", "2s", "held");
    // An S3 endpoint that takes connections and never answers: an export
    // to it runs until it is stopped.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", silent.local_addr().unwrap());
    let env = [("MINIO_ENDPOINT", endpoint.as_str()), ("MINIO_ACCESS_KEY", "key"), ("MINIO_SECRET_KEY", "secret")];
    // No --export-dir: s3:// outputs need none.
    let served = Served::start_with(store.to_str().unwrap(), store, &[], &env);
    let body = json!({"session": "held", "format": "parquet", "out": "s3://otel-data/held"});

    let id = start(&served, body.clone()).await;
    let (status, job) = served.call(Method::GET, &format!("/api/v1/exports/{id}"), None).await;
    assert_eq!((status, &job["state"]), (StatusCode::OK, &json!("running")), "{job}");
    let (status, stopping) = served.call(Method::POST, &format!("/api/v1/exports/{id}/stop"), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{stopping}");
    let stopped = served.until_done(&format!("/api/v1/exports/{id}")).await;
    assert_eq!(stopped["state"], "stopped", "{stopped}");
    assert_eq!(stopped["outcome"], Value::Null, "{stopped}");
    assert_eq!(stopped["error"], Value::Null, "{stopped}");

    // SIGTERM stops the export that still runs, and serve exits.
    let id = start(&served, body).await;
    let (_, job) = served.call(Method::GET, &format!("/api/v1/exports/{id}"), None).await;
    assert_eq!(job["state"], "running", "{job}");
    let exit = exit_within(served, std::time::Duration::from_secs(30));
    assert!(exit.success(), "{exit}");
    drop(silent);
}
