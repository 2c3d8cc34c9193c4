//! `otlp-tape serve` driven through its control API only, with a real HTTP
//! client, real OTLP exporters and a real second receiver.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanExporter as _, SpanLinks};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tape_testkit::otlp_target::{OtlpTarget, OtlpTargetOptions};

/// A running `otlp-tape serve` on free loopback ports.
pub struct Served {
    child: Child,
    pub api: String,
    pub http: String,
    token: Option<String>,
    client: reqwest::Client,
}

impl Served {
    pub fn start(store: &Path, extra: &[&str]) -> Served {
        Served::start_with(store.to_str().unwrap(), store, extra, &[])
    }

    /// `serve` on the store `url`, with its reports and spool files in
    /// `dir` and the environment `env`.
    pub fn start_with(url: &str, dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Served {
        let mut command = Command::new(env!("CARGO_BIN_EXE_otlp-tape"));
        command
            .current_dir(dir)
            .env("OTLP_TAPE_SPOOL_DIR", dir.join("spool"))
            .envs(env.iter().copied())
            .args(["--store", url])
            .args(["serve", "--api", "127.0.0.1:0", "--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0", "--reports-dir"])
            .arg(dir.join("reports"))
            .args(extra)
            .env_remove("OTLP_TAPE_API_TOKEN")
            .env_remove("CLICKHOUSE_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command.spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let started: Value = serde_json::from_str(&line).unwrap_or_else(|_| panic!("not the startup line: {line:?}"));
        let token = extra.iter().position(|arg| *arg == "--api-token").map(|at| extra[at + 1].to_owned());
        Served {
            child,
            api: started["api"].as_str().unwrap().to_owned(),
            http: format!("http://{}", started["http"].as_str().unwrap()),
            token,
            client: reqwest::Client::new(),
        }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.client.request(method, format!("{}{path}", self.api));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self.request(method, path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    pub async fn get(&self, path: &str) -> Value {
        let (status, body) = self.call(reqwest::Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        body
    }

    /// The job at `path` once it has ended: `?wait=` makes the server
    /// answer when the job ends.
    pub async fn until_done(&self, path: &str) -> Value {
        let job = self.get(&format!("{path}?wait=60")).await;
        assert_ne!(job["state"], "running", "{path} did not end: {job}");
        job
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        self.child.wait().unwrap()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spans(count: u64, batch: u64) -> Vec<SpanData> {
    spans_with_status(count, batch, |_| Status::Unset)
}

/// `count` server spans of one trace of batch `batch`, span `n` with
/// `status(n)`.
pub(crate) fn spans_with_status(count: u64, batch: u64, status: impl Fn(u64) -> Status) -> Vec<SpanData> {
    let base = SystemTime::now();
    (0..count)
        .map(|n| SpanData {
            span_context: SpanContext::new(
                TraceId::from_bytes(((u128::from(batch) << 64) | 0xabc).to_be_bytes()),
                SpanId::from_bytes((n + 1 + batch * 1000).to_be_bytes()),
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            ),
            parent_span_id: SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: SpanKind::Server,
            name: format!("operation-{n}").into(),
            start_time: base,
            end_time: base + Duration::from_millis(5),
            attributes: vec![KeyValue::new("http.route", "/pay")],
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: status(n),
            instrumentation_scope: InstrumentationScope::builder("checkout").build(),
        })
        .collect()
}

/// Exports `batches` batches of 10 spans with the SDK's OTLP/HTTP exporter.
pub async fn export_spans(endpoint: &str, batches: u64) {
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{endpoint}/v1/traces"))
        .build()
        .unwrap();
    exporter
        .set_resource(&Resource::builder_empty().with_attributes([KeyValue::new("service.name", "checkout")]).build());
    for batch in 0..batches {
        exporter.export(spans(10, batch)).await.unwrap();
    }
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("{name} not in\n{text}"))
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_cycle_through_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(dir.path(), &[]);
    assert_eq!(served.get("/healthz").await["status"], "ok");
    assert_eq!(served.get("/readyz").await["status"], "ready");

    // Idle receivers acknowledge and record nothing.
    export_spans(&served.http, 1).await;

    let (status, capture) = served
        .call(reqwest::Method::POST, "/api/v1/captures", Some(json!({"sessionId": "cap-1", "description": "api"})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{capture}");
    assert_eq!(capture["state"], "running");
    export_spans(&served.http, 3).await;
    let live = served.get("/api/v1/captures/cap-1").await;
    assert_eq!(live["counts"]["traces"]["items"], 30, "{live}");

    let (status, _) = served.call(reqwest::Method::POST, "/api/v1/captures/cap-1/stop", None).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let capture = served.until_done("/api/v1/captures/cap-1").await;
    assert_eq!(capture["state"], "completed", "{capture}");
    let session = served.get("/api/v1/sessions/cap-1").await;
    assert_eq!(session["status"], "completed");
    assert_eq!(session["capturedTraces"], 30);

    // Replay it into a second receiver and read the report.
    let target = OtlpTarget::start(OtlpTargetOptions::default()).await;
    let (status, replay) = served
        .call(
            reqwest::Method::POST,
            "/api/v1/replays",
            Some(json!({"session": "auto", "filterType": "capture", "strategy": "latest", "endpoint": target.http_endpoint(), "speed": "max"})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{replay}");
    let id = replay["id"].as_str().unwrap().to_owned();
    let replay = served.until_done(&format!("/api/v1/replays/{id}")).await;
    assert_eq!(replay["state"], "completed", "{replay}");
    assert_eq!(replay["sessionId"], "cap-1");
    assert_eq!(replay["report"]["counts"]["traces"]["sentItems"], 30, "{replay}");
    assert_eq!(target.received().len(), 3);
    let file: Value = serde_json::from_slice(&std::fs::read(replay["reportFile"].as_str().unwrap()).unwrap()).unwrap();
    assert_eq!(file, replay["report"]);
    let listed = served.get("/api/v1/replays").await;
    assert_eq!(listed["replays"][0]["id"], id.as_str());

    // The metrics reflect the traffic.
    let metrics = served.request(reqwest::Method::GET, "/metrics").send().await.unwrap().text().await.unwrap();
    assert_eq!(metric(&metrics, "otlp_tape_received_items_total{signal=\"traces\"}"), 40);
    assert_eq!(metric(&metrics, "otlp_tape_recorded_items_total{signal=\"traces\"}"), 30);
    assert_eq!(metric(&metrics, "otlp_tape_replay_sent_items_total{signal=\"traces\"}"), 30);
    assert_eq!(metric(&metrics, "otlp_tape_active_captures"), 0);
    assert!(metric(&metrics, "otlp_tape_store_written_bytes_total") > 0);

    // A seed through the API, then a prune that removes only it: not by age
    // (it was made now, though its virtual clock starts on 2026-01-01), by size.
    let (status, seed) = served
        .call(
            reqwest::Method::POST,
            "/api/v1/seeds",
            Some(json!({"pattern": "payment-failure", "sessionId": "seed-1", "duration": "5s"})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{seed}");
    let seed = served.until_done(&format!("/api/v1/seeds/{}", seed["id"].as_str().unwrap())).await;
    assert_eq!(seed["state"], "completed", "{seed}");
    let listed = served.get("/api/v1/sessions?type=seed").await;
    assert_eq!(listed["total"], 1);
    assert_eq!(listed["sessions"][0]["startTime"], "2026-01-01T00:00:00Z");
    let created = listed["sessions"][0]["createdAt"].as_str().unwrap();
    assert!(created > "2026-01-02", "{created}");
    let (status, pruned) = served
        .call(reqwest::Method::POST, "/api/v1/retention/prune", Some(json!({"olderThan": "1d", "types": ["seed"]})))
        .await;
    assert_eq!(status, StatusCode::OK, "{pruned}");
    assert_eq!(pruned["deleted"], json!([]), "{pruned}");
    let (status, pruned) = served
        .call(reqwest::Method::POST, "/api/v1/retention/prune", Some(json!({"maxTotalSize": "0", "types": ["seed"]})))
        .await;
    assert_eq!(status, StatusCode::OK, "{pruned}");
    let ids: Vec<String> = served.get("/api/v1/sessions").await["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|session| session["sessionId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, ["cap-1"], "{pruned}");

    assert!(served.terminate().success());
    target.shutdown().await;
}

#[tokio::test]
async fn the_token_is_required_when_set() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(dir.path(), &["--api-token", "s3cret-token"]);
    for path in ["/api/v1/sessions", "/healthz", "/metrics"] {
        let response = reqwest::get(format!("{}{path}", served.api)).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["status"], 401);
        let wrong = reqwest::Client::new().get(format!("{}{path}", served.api)).bearer_auth("s3cret-tokem").send();
        assert_eq!(wrong.await.unwrap().status(), StatusCode::UNAUTHORIZED, "{path}");
    }
    assert_eq!(served.get("/api/v1/sessions").await["total"], 0);
    assert!(served.terminate().success());
}

#[test]
fn a_non_loopback_api_needs_a_token_or_insecure_api() {
    let dir = tempfile::tempdir().unwrap();
    crate::tape(dir.path())
        .args(["serve", "--api", "0.0.0.0:0", "--grpc", "off", "--http", "127.0.0.1:0"])
        .env_remove("OTLP_TAPE_API_TOKEN")
        .assert()
        .code(1)
        .stderr(predicates::str::contains("without a token"))
        .stderr(predicates::str::contains("--insecure-api"));
}

#[tokio::test]
async fn sigterm_during_a_capture_leaves_a_completed_session() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(dir.path(), &[]);
    let (status, _) =
        served.call(reqwest::Method::POST, "/api/v1/captures", Some(json!({"sessionId": "cap-term"}))).await;
    assert_eq!(status, StatusCode::CREATED);
    export_spans(&served.http, 2).await;
    assert!(served.terminate().success());
    let metadata: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("sessions/cap-term/metadata.json")).unwrap()).unwrap();
    assert_eq!(metadata["status"], "completed");
    assert_eq!(metadata["capturedTraces"], 20);
}

#[tokio::test]
async fn bad_requests_get_json_errors_with_their_status() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(dir.path(), &["--max-body-kb", "1"]);
    let post = reqwest::Method::POST;
    let cases: Vec<(reqwest::Method, &str, Option<Value>, StatusCode, &str)> = vec![
        (reqwest::Method::GET, "/api/v1/sessions/nope", None, StatusCode::NOT_FOUND, "session nope not found"),
        (reqwest::Method::GET, "/api/v1/sessions/bad'id", None, StatusCode::BAD_REQUEST, "invalid session id"),
        (reqwest::Method::GET, "/api/v1/replays/nope", None, StatusCode::NOT_FOUND, "no replay"),
        (reqwest::Method::GET, "/api/v1/captures/nope", None, StatusCode::NOT_FOUND, "no capture"),
        (reqwest::Method::GET, "/api/v1/patterns/nope", None, StatusCode::NOT_FOUND, "no built-in pattern"),
        (reqwest::Method::GET, "/api/v1/nothing", None, StatusCode::NOT_FOUND, "no such endpoint"),
        (reqwest::Method::PUT, "/api/v1/sessions", None, StatusCode::METHOD_NOT_ALLOWED, "does not take that method"),
        (
            post.clone(),
            "/api/v1/replays",
            Some(json!({"session": "auto", "speed": "0"})),
            StatusCode::BAD_REQUEST,
            "--speed",
        ),
        (post.clone(), "/api/v1/replays", Some(json!({"session": "nope"})), StatusCode::NOT_FOUND, "nope"),
        (
            post.clone(),
            "/api/v1/replays",
            Some(json!({"session": "auto", "report": "/etc/x"})),
            StatusCode::BAD_REQUEST,
            "unknown option \"report\"",
        ),
        (
            post.clone(),
            "/api/v1/captures",
            Some(json!({"maxSizeMb": 0})),
            StatusCode::BAD_REQUEST,
            "--max-size-mb must be more than zero",
        ),
        (post.clone(), "/api/v1/seeds", Some(json!({"pattern": "nope"})), StatusCode::BAD_REQUEST, "unknown pattern"),
        (
            post.clone(),
            "/api/v1/seeds",
            Some(json!({"pattern": "/etc/hostname"})),
            StatusCode::BAD_REQUEST,
            "not a file",
        ),
        (post.clone(), "/api/v1/seeds", Some(json!({"rate": -1})), StatusCode::BAD_REQUEST, "rate"),
        (post.clone(), "/api/v1/retention/prune", Some(json!({})), StatusCode::BAD_REQUEST, "needs olderThan"),
        (reqwest::Method::DELETE, "/api/v1/sessions/nope", None, StatusCode::NOT_FOUND, "not found"),
    ];
    for (method, path, body, expected, message) in cases {
        let (status, answer) = served.call(method.clone(), path, body).await;
        assert_eq!(status, expected, "{method} {path}: {answer}");
        assert_eq!(answer["error"]["status"], expected.as_u16(), "{answer}");
        assert!(answer["error"]["message"].as_str().unwrap().contains(message), "{method} {path}: {answer}");
    }

    // Malformed JSON, and a body over the limit.
    let response = served.request(post.clone(), "/api/v1/captures").body("{not json").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let answer: Value = response.json().await.unwrap();
    assert!(answer["error"]["message"].as_str().unwrap().contains("not JSON"), "{answer}");
    let big = json!({ "description": "x".repeat(4096) });
    let response = served.request(post.clone(), "/api/v1/captures").json(&big).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["error"]["status"], 413);

    // A second capture while one runs, and deleting the active session.
    let (status, _) = served.call(post.clone(), "/api/v1/captures", Some(json!({"sessionId": "cap-a"}))).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, answer) = served.call(post.clone(), "/api/v1/captures", Some(json!({"sessionId": "cap-a"}))).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    let (status, answer) = served.call(post.clone(), "/api/v1/captures", Some(json!({"sessionId": "cap-b"}))).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("cap-a"), "{answer}");
    let (status, answer) = served.call(reqwest::Method::DELETE, "/api/v1/sessions/cap-a", None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    served.call(post.clone(), "/api/v1/captures/cap-a/stop", None).await;
    assert_eq!(served.until_done("/api/v1/captures/cap-a").await["state"], "completed");
    // Once finished, the same id is still refused (the session exists).
    let (status, _) = served.call(post, "/api/v1/captures", Some(json!({"sessionId": "cap-a"}))).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = served.call(reqwest::Method::DELETE, "/api/v1/sessions/cap-a", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(served.terminate().success());
}

#[tokio::test]
async fn the_retention_policy_applies_at_start_and_spares_other_types() {
    let dir = tempfile::tempdir().unwrap();
    for (pattern, id) in [("payment-failure", "old-seed"), ("basic-topology", "old-seed-2")] {
        crate::tape(dir.path())
            .args([
                "seed",
                "--pattern",
                pattern,
                "--duration",
                "2s",
                "--session-id",
                id,
                "--start",
                "2025-01-01T00:00:00Z",
            ])
            .assert()
            .success();
        // Made then, too: age goes by createdAt.
        let path = dir.path().join("sessions").join(id).join("metadata.json");
        let mut metadata: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        metadata["createdAt"] = json!("2025-01-01T00:00:00Z");
        std::fs::write(&path, serde_json::to_vec_pretty(&metadata).unwrap()).unwrap();
    }
    crate::import_samples(dir.path(), "old-capture");
    let served = Served::start(
        dir.path(),
        &["--retention-interval", "1h", "--retention-older-than", "30d", "--retention-type", "seed"],
    );
    let ids: Vec<String> = served.get("/api/v1/sessions").await["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|session| session["sessionId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, ["old-capture"]);
    assert!(served.terminate().success());
}

// Several threads: the target must go on answering while this one waits
// for serve to exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_a_replay_and_writes_its_report() {
    let dir = tempfile::tempdir().unwrap();
    // A minute of data replayed at its recorded pace: still running when
    // SIGTERM comes.
    crate::seed_session(dir.path(), "payment-failure", "60s", "long");
    let target = OtlpTarget::start(OtlpTargetOptions::default()).await;
    let served = Served::start(dir.path(), &[]);
    let (status, replay) = served
        .call(
            reqwest::Method::POST,
            "/api/v1/replays",
            Some(json!({"session": "long", "endpoint": target.http_endpoint(), "speed": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{replay}");
    let id = replay["id"].as_str().unwrap().to_owned();
    // Something has been sent: the replay is under way.
    target.wait_for(1).await;
    assert!(served.terminate().success());
    let report: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("reports").join(format!("{id}.json"))).unwrap()).unwrap();
    assert_eq!(report["reason"], "stopped", "{report}");
    assert!(report["counts"]["total"]["sentRecords"].as_u64().unwrap() >= 1, "{report}");
    target.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn captures_through_the_api_on_an_s3_store() {
    let s3 = tape_testkit::s3::S3TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = format!("s3://{}/team", s3.bucket());
    let env = [
        ("MINIO_ENDPOINT", s3.endpoint()),
        ("MINIO_ACCESS_KEY", s3.access_key()),
        ("MINIO_SECRET_KEY", s3.secret_key()),
    ];
    let served = Served::start_with(&store, dir.path(), &[], &env);
    let (status, capture) =
        served.call(reqwest::Method::POST, "/api/v1/captures", Some(json!({"sessionId": "s3-cap"}))).await;
    assert_eq!(status, StatusCode::CREATED, "{capture}");
    export_spans(&served.http, 2).await;
    served.call(reqwest::Method::POST, "/api/v1/captures/s3-cap/stop", None).await;
    assert_eq!(served.until_done("/api/v1/captures/s3-cap").await["state"], "completed");
    let session = served.get("/api/v1/sessions/s3-cap").await;
    assert_eq!((session["status"].as_str(), session["capturedTraces"].as_u64()), (Some("completed"), Some(20)));
    let verified = served.call(reqwest::Method::POST, "/api/v1/sessions/s3-cap/verify", None).await;
    assert_eq!(verified.0, StatusCode::OK, "{}", verified.1);
    assert_eq!(verified.1["problems"], json!([]));
    assert!(s3.bucket_dir().join("team/sessions/s3-cap/metadata.json").is_file());
    assert!(tokio::task::block_in_place(|| served.terminate()).success());
}

// Several threads: the target must go on answering while this one waits
// for serve to exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_stop_ends_a_retrying_replay_stopped_and_sigterm_ends_serve_promptly() {
    let dir = tempfile::tempdir().unwrap();
    crate::seed_session(dir.path(), "payment-failure", "20s", "S");
    // Every export is answered 503: retried again and again.
    let target = OtlpTarget::start(OtlpTargetOptions::default()).await;
    target.fail_after(0, tape_testkit::otlp_target::Failure::Http(503, None));
    let served = Served::start(dir.path(), &[]);
    let start = |attempts: u32| {
        let body = json!({"session": "S", "endpoint": target.http_endpoint(), "speed": "max", "maxAttempts": attempts});
        let served = &served;
        async move {
            let (status, replay) = served.call(reqwest::Method::POST, "/api/v1/replays", Some(body)).await;
            assert_eq!(status, StatusCode::ACCEPTED, "{replay}");
            replay["id"].as_str().unwrap().to_owned()
        }
    };

    // The default attempts: the stop comes while requests wait to be retried.
    let id = start(5).await;
    target.wait_for_attempts(40).await;
    let (status, _) = served.call(reqwest::Method::POST, &format!("/api/v1/replays/{id}/stop"), None).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let job = served.until_done(&format!("/api/v1/replays/{id}")).await;
    assert_eq!(job["state"], "stopped", "{job}");
    assert_eq!(job["error"], Value::Null, "{job}");
    assert_eq!(job["report"]["reason"], "stopped", "{job}");

    // SIGTERM with a replay retrying for ever and a client waiting on it.
    let attempts = target.attempts();
    let id = start(1_000_000).await;
    target.wait_for_attempts(attempts + 40).await;
    // The waiting request must be in flight before SIGTERM, or shutting
    // down closes its connection before it is read. On one HTTP/2
    // connection the server reads streams in the order they were opened:
    // once a later request on it is answered, the waiting one has been
    // received too (and graceful shutdown lets received streams finish).
    let client = reqwest::Client::builder().http2_prior_knowledge().build().unwrap();
    let job = format!("{}/api/v1/replays/{id}", served.api);
    assert_eq!(client.get(&job).send().await.unwrap().status(), StatusCode::OK, "the connection is open");
    let mut waiting = Box::pin(client.get(format!("{job}?wait=60")).send());
    assert!(futures::poll!(&mut waiting).is_pending(), "the replay retries for ever: the wait cannot be over yet");
    assert_eq!(client.get(&job).send().await.unwrap().status(), StatusCode::OK, "a stream opened after the wait");
    let waiting = tokio::spawn(waiting);
    let started = std::time::Instant::now();
    let status = exit_within(served, std::time::Duration::from_secs(30));
    eprintln!("serve exited {:?} after SIGTERM", started.elapsed());
    assert!(status.success());
    let waited = waiting.await.unwrap().unwrap().json::<Value>().await.unwrap();
    assert_eq!(waited["state"], "stopped", "{waited}");
    let report: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("reports").join(format!("{id}.json"))).unwrap()).unwrap();
    assert_eq!(report["reason"], "stopped", "{report}");
    target.shutdown().await;
}

/// Sends SIGTERM to serve and waits for it to exit, failing the test if it
/// has not after `limit`: a guard against a hang, not a measure of time.
pub fn exit_within(mut served: Served, limit: std::time::Duration) -> std::process::ExitStatus {
    Command::new("kill").args(["-TERM", &served.child.id().to_string()]).status().unwrap();
    let id = served.child.id();
    let mut child = std::mem::replace(&mut served.child, Command::new("true").spawn().unwrap());
    crate::wait_within(id, limit, &format!("serve did not exit within {limit:?} of SIGTERM"), move || child.wait())
        .unwrap()
}

#[tokio::test]
async fn annotations_added_through_the_api_name_a_missing_session_and_a_bad_range() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(dir.path(), &[]);
    let post = reqwest::Method::POST;
    let phase = json!({"key": "test.phase.warmup", "from": "0s", "until": "1s"});
    let (status, answer) = served.call(post.clone(), "/api/v1/sessions/nope/annotations", Some(phase)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("session nope not found"), "{answer}");

    let (status, _) = served.call(post.clone(), "/api/v1/captures", Some(json!({"sessionId": "cap-n"}))).await;
    assert_eq!(status, StatusCode::CREATED);
    export_spans(&served.http, 1).await;
    served.call(post.clone(), "/api/v1/captures/cap-n/stop", None).await;
    let done = served.until_done("/api/v1/captures/cap-n").await;
    assert_eq!(done["state"], "completed", "{done}");

    let bad = json!({"key": "test.phase.warmup", "from": "soon", "until": "1s"});
    let (status, answer) = served.call(post.clone(), "/api/v1/sessions/cap-n/annotations", Some(bad)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(answer["error"]["message"].as_str().unwrap().starts_with("from: "), "{answer}");
    let (status, answer) =
        served.call(post.clone(), "/api/v1/sessions/cap-n/annotations", Some(json!({"key": "k"}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(answer["error"]["message"].as_str().unwrap().starts_with("invalid annotation: "), "{answer}");
    // The whole session, whose end is a time.
    let phase = json!({"key": "test.phase.warmup", "from": "0s", "until": done["session"]["endTime"]});
    let (status, added) = served.call(post, "/api/v1/sessions/cap-n/annotations", Some(phase)).await;
    assert_eq!(status, StatusCode::CREATED, "{added}");
    assert_eq!(added["annotation"]["createdBy"], "otlp-tape serve", "{added}");
    assert!(served.terminate().success());
}
