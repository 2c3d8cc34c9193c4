//! Several `otlp-tape capture --join` processes recording into one session
//! on the in-process S3 server, fed by real OTLP exporters: the merged
//! session holds what every writer acknowledged, a killed writer is
//! repaired on its own, writers that stop together seal it once, and bad
//! input is refused with its message and exit code.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::TryStreamExt;
use opentelemetry::KeyValue;
use opentelemetry::trace::Status;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SpanExporter as _;
use serde_json::{Value, json};
use tape_otlp::{ExportRequest, Signal};
use tape_session::{SessionId, SessionStore, read_session};
use tape_store::LocalStore;
use tape_testkit::otlp_target::{OtlpTarget, OtlpTargetOptions};
use tape_testkit::s3::S3TestServer;

use crate::serve::{Served, spans_with_status};

/// The key prefix of the sessions on the S3 server.
const PREFIX: &str = "team";

/// A span as the tests tell them apart: (trace id, span id).
type SpanKey = (Vec<u8>, Vec<u8>);

/// A running `otlp-tape capture --join`.
struct Writer {
    child: Child,
    http: String,
    stdout: BufReader<ChildStdout>,
    stderr: Arc<Mutex<String>>,
}

/// Where the writers record: the S3 server and the store URL on it.
struct Shared<'a> {
    s3: &'a S3TestServer,
    store: String,
    /// The working directory, with the spool directory under it.
    dir: PathBuf,
}

impl Shared<'_> {
    /// `otlp-tape --store s3://... ARGS` with the server's credentials.
    fn tape(&self) -> Command {
        let mut command = Command::new(assert_cmd::cargo::cargo_bin("otlp-tape"));
        command
            .arg("--store")
            .arg(&self.store)
            .current_dir(&self.dir)
            .env("MINIO_ENDPOINT", self.s3.endpoint())
            .env("MINIO_ACCESS_KEY", self.s3.access_key())
            .env("MINIO_SECRET_KEY", self.s3.secret_key());
        for name in ["MINIO_BUCKET", "OTLP_TAPE_STORE", "OTLP_TAPE_SPOOL_DIR", "CAPTURE_MAX_SIZE_MB", "RUST_LOG"] {
            command.env_remove(name);
        }
        command
    }

    fn spool(&self) -> PathBuf {
        self.dir.join("spool")
    }

    /// Starts writer `writer` of session `session`, with `extra` flags.
    fn spawn(&self, session: &str, writer: &str, extra: &[&str]) -> Writer {
        start_writer(self.tape(), &self.spool(), session, writer, extra)
    }

    /// The session's metadata as stored.
    fn metadata(&self, session: &str) -> Value {
        let path = self.s3.bucket_dir().join(PREFIX).join("sessions").join(session).join("metadata.json");
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    /// The writers' manifests stored under the session.
    fn manifests(&self, session: &str) -> BTreeSet<String> {
        let dir = self.s3.bucket_dir().join(PREFIX).join("sessions").join(session).join("writers");
        std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| Path::new(name).extension().is_some_and(|extension| extension == "json"))
            .collect()
    }

    /// Every span stored in the session, read through the store API from
    /// the server's files, with how often each is stored.
    async fn stored_spans(&self, session: &str) -> Vec<SpanKey> {
        let store = LocalStore::new(self.s3.bucket_dir().join(PREFIX));
        let id = SessionId::new(session).unwrap();
        let metadata = store.read_metadata(&id).await.unwrap();
        let records: Vec<_> = read_session(&store, &metadata, |_| true).try_collect().await.unwrap();
        records.iter().flat_map(|(signal, record)| span_keys(*signal, &record.payload)).collect()
    }

    /// Runs `otlp-tape ARGS` to its end off the test's runtime.
    fn run(&self, args: &[&str]) -> std::process::Output {
        tokio::task::block_in_place(|| self.tape().args(args).output().unwrap())
    }
}

/// Starts `command` (`otlp-tape --store ...`) as `capture --join` writer
/// `writer` of `session`, and waits until it listens.
fn start_writer(mut command: Command, spool: &Path, session: &str, writer: &str, extra: &[&str]) -> Writer {
    command
        .args(["--output", "json", "capture", "--grpc", "off", "--http", "127.0.0.1:0", "--join"])
        .args(["--session-id", session, "--writer-id", writer, "--spool-dir"])
        .arg(spool)
        .args(["--flush-interval", "100ms"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let stderr = Arc::new(Mutex::new(String::new()));
    for line in lines.by_ref() {
        let line = line.unwrap();
        let _ = writeln!(stderr.lock().unwrap(), "{line}");
        if line.starts_with("Capturing into session") {
            assert!(line.contains(&format!("as writer {writer} (joined)")), "{line}");
            break;
        }
    }
    let collected = Arc::clone(&stderr);
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            let _ = writeln!(collected.lock().unwrap(), "{line}");
        }
    });
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let listening: Value = serde_json::from_str(&first)
        .unwrap_or_else(|_| panic!("writer {writer} did not start: {}", stderr.lock().unwrap()));
    let http = format!("http://{}", listening["http"].as_str().unwrap());
    Writer { child, http, stdout, stderr }
}

/// Exports `batches` batches of 10 spans to the OTLP/HTTP receiver at
/// `http`, trace ids made from `writer` so that every writer's spans
/// differ; returns the spans acknowledged.
async fn feed(http: &str, writer: u64, batches: u64) -> Vec<SpanKey> {
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{http}/v1/traces"))
        .with_timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let service = format!("writer-{writer}");
    exporter.set_resource(&Resource::builder_empty().with_attributes([KeyValue::new("service.name", service)]).build());
    let mut acknowledged = Vec::new();
    for batch in 0..batches {
        let spans = spans_with_status(10, writer * 100 + batch, |_| Status::Ok);
        let keys: Vec<SpanKey> = spans
            .iter()
            .map(|span| {
                (span.span_context.trace_id().to_bytes().to_vec(), span.span_context.span_id().to_bytes().to_vec())
            })
            .collect();
        exporter.export(spans).await.expect("a writer refused a batch");
        acknowledged.extend(keys);
    }
    acknowledged
}

impl Writer {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    async fn feed(&self, writer: u64, batches: u64) -> Vec<SpanKey> {
        feed(&self.http, writer, batches).await
    }

    /// Waits (off the runtime, with a guard against a hang) for the
    /// process to exit; returns its status and its JSON summary, if any.
    fn wait(self) -> (std::process::ExitStatus, Option<Value>, String) {
        let Writer { mut child, mut stdout, stderr, .. } = self;
        let pid = child.id();
        let (status, text) = crate::wait_within(pid, Duration::from_mins(2), "a writer did not stop", move || {
            let mut text = String::new();
            stdout.read_to_string(&mut text).unwrap();
            (child.wait().unwrap(), text)
        });
        let summary = serde_json::from_str(&text).ok();
        let stderr = stderr.lock().unwrap().clone();
        (status, summary, stderr)
    }
}

fn signal(name: &str, pids: &[u32]) {
    let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
    let status = Command::new("kill").arg(format!("-{name}")).args(&pids).status().unwrap();
    assert!(status.success());
}

/// The (trace id, span id) of every span of a traces request.
fn span_keys(signal: Signal, payload: &[u8]) -> Vec<SpanKey> {
    let Ok(ExportRequest::Traces(request)) = ExportRequest::decode_protobuf(signal, payload) else { return Vec::new() };
    request
        .resource_spans
        .iter()
        .flat_map(|resource| &resource.scope_spans)
        .flat_map(|scope| &scope.spans)
        .map(|span| (span.trace_id.clone(), span.span_id.clone()))
        .collect()
}

fn sorted(mut spans: Vec<SpanKey>) -> Vec<SpanKey> {
    spans.sort();
    spans
}

async fn s3_and_dir() -> (S3TestServer, tempfile::TempDir) {
    (S3TestServer::start().await, tempfile::tempdir().unwrap())
}

fn shared<'a>(s3: &'a S3TestServer, dir: &Path) -> Shared<'a> {
    Shared { s3, store: format!("s3://{}/{PREFIX}", s3.bucket()), dir: dir.to_owned() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_writers_on_s3_seal_one_session_with_everything_they_acknowledged() {
    let (s3, dir) = s3_and_dir().await;
    let shared = shared(&s3, dir.path());
    let names = ["edge-0", "edge-1", "edge-2", "edge-3"];
    // All four share one spool directory: each locks (session, writer).
    let writers: Vec<Writer> = names.iter().map(|name| shared.spawn("four", name, &[])).collect();
    let fed = futures::future::join_all(writers.iter().zip(0u64..).map(|(writer, n)| writer.feed(n, 5 + n))).await;
    let mut acknowledged = Vec::new();
    let mut expected_per_writer = Vec::new();
    for (writer, (name, spans)) in writers.into_iter().zip(names.iter().zip(fed)) {
        expected_per_writer.push((name, spans.len() as u64));
        acknowledged.extend(spans);
        // One at a time: the first three leave the session active.
        signal("TERM", &[writer.pid()]);
        let (status, summary, stderr) = writer.wait();
        assert!(status.success(), "{name}: {stderr}");
        let summary = summary.unwrap();
        assert_eq!(summary["writerId"], *name, "{summary}");
        if *name == "edge-3" {
            assert_eq!(summary["seal"]["outcome"], "sealed", "{summary}");
            assert_eq!(summary["seal"]["writers"], 4);
        } else {
            assert_eq!(summary["seal"]["outcome"], "writersActive", "{summary}");
            assert_eq!(shared.metadata("four")["status"], "active");
        }
    }
    let metadata = shared.metadata("four");
    assert_eq!(metadata["status"], "completed");
    assert_eq!(metadata["formatVersion"], 2);
    assert_eq!(metadata["capturedTraces"], acknowledged.len() as u64);
    let stored = shared.stored_spans("four").await;
    assert_eq!(sorted(stored), sorted(acknowledged.clone()), "the session holds exactly what was acknowledged");
    assert_eq!(shared.manifests("four").len(), 4);

    let verify = shared.run(&["sessions", "verify", "four"]);
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stderr));
    let show = shared.run(&["--output", "json", "sessions", "show", "four"]);
    let show: Value = serde_json::from_slice(&show.stdout).unwrap();
    let writers = show["writers"].as_array().unwrap();
    let listed: Vec<(&str, u64)> = writers
        .iter()
        .map(|writer| (writer["writerId"].as_str().unwrap(), writer["capturedTraces"].as_u64().unwrap()))
        .collect();
    let expected: Vec<(&str, u64)> = expected_per_writer.iter().map(|(name, spans)| (**name, *spans)).collect();
    assert_eq!(listed, expected);
    let table = String::from_utf8(shared.run(&["sessions", "show", "four"]).stdout).unwrap();
    assert!(table.contains("Writers      4") && table.contains("edge-2"), "{table}");

    let target = OtlpTarget::start(OtlpTargetOptions::default()).await;
    let replay = shared.run(&[
        "replay",
        "--session",
        "four",
        "--speed",
        "max",
        "--timestamps",
        "none",
        "--endpoint",
        target.http_endpoint(),
        "--protocol",
        "http/protobuf",
    ]);
    assert!(replay.status.success(), "{}", String::from_utf8_lossy(&replay.stderr));
    let sent: Vec<SpanKey> =
        target.received().iter().flat_map(|request| span_keys(request.signal, &request.body)).collect();
    assert_eq!(sorted(sent), sorted(acknowledged), "the replay sent every span once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_writer_is_repaired_on_its_own_and_the_session_sealed() {
    let (s3, dir) = s3_and_dir().await;
    let shared = shared(&s3, dir.path());
    // The promise tested: with --durable a request is acknowledged only
    // once it is on disk (here, the spool file), so SIGKILL loses none.
    let writers: Vec<Writer> =
        ["calm-1", "calm-2", "doomed"].iter().map(|name| shared.spawn("crash", name, &["--durable"])).collect();
    let fed = futures::future::join_all(writers.iter().zip(0u64..).map(|(writer, n)| writer.feed(n, 4))).await;
    let acknowledged: Vec<SpanKey> = fed.into_iter().flatten().collect();
    let mut writers = writers.into_iter();
    let (calm_1, calm_2, doomed) = (writers.next().unwrap(), writers.next().unwrap(), writers.next().unwrap());
    signal("KILL", &[doomed.pid()]);
    let (status, _, _) = doomed.wait();
    assert!(!status.success());
    signal("TERM", &[calm_1.pid(), calm_2.pid()]);
    for writer in [calm_1, calm_2] {
        let (status, summary, stderr) = writer.wait();
        assert!(status.success(), "{stderr}");
        let seal = &summary.unwrap()["seal"];
        assert_eq!(seal["outcome"], "writersActive", "{seal}");
        assert!(seal["activeWriters"].as_array().unwrap().contains(&json!("doomed")), "{seal}");
    }
    assert_eq!(shared.metadata("crash")["status"], "active");
    let seal = shared.run(&["sessions", "seal", "crash"]);
    assert_eq!(seal.status.code(), Some(1));
    let message = String::from_utf8_lossy(&seal.stderr);
    assert!(message.contains("(doomed)") && message.contains("sessions repair crash --writer doomed"), "{message}");

    let spool = shared.spool();
    let repair =
        shared.run(&["sessions", "repair", "crash", "--writer", "doomed", "--spool-dir", spool.to_str().unwrap()]);
    assert!(repair.status.success(), "{}", String::from_utf8_lossy(&repair.stderr));
    let metadata = shared.metadata("crash");
    assert_eq!(metadata["status"], "completed", "{metadata}");
    let doomed = metadata["writers"].as_array().unwrap().iter().find(|writer| writer["writerId"] == "doomed").unwrap();
    assert_eq!(doomed["repaired"], true);
    assert_eq!(sorted(shared.stored_spans("crash").await), sorted(acknowledged));
    let verify = shared.run(&["sessions", "verify", "crash"]);
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stderr));
    let sealed = shared.run(&["sessions", "seal", "crash"]);
    assert!(sealed.status.success());
    assert!(
        String::from_utf8_lossy(&sealed.stdout).starts_with("Already sealed: session crash (completed) with 3 writers")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_writers_stopping_at_once_seal_the_session_once_and_lose_nothing() {
    let (s3, dir) = s3_and_dir().await;
    let shared = shared(&s3, dir.path());
    let (one, two) = (shared.spawn("together", "twin-a", &[]), shared.spawn("together", "twin-b", &[]));
    let (a, b) = futures::future::join(one.feed(1, 3), two.feed(2, 3)).await;
    signal("TERM", &[one.pid(), two.pid()]);
    let outcomes: Vec<String> = [one, two]
        .into_iter()
        .map(|writer| {
            let (status, summary, stderr) = writer.wait();
            assert!(status.success(), "{stderr}");
            summary.unwrap()["seal"]["outcome"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(outcomes.iter().filter(|outcome| *outcome == "sealed").count(), 1, "{outcomes:?}");
    let metadata = shared.metadata("together");
    assert_eq!(metadata["status"], "completed");
    assert_eq!(metadata["writers"].as_array().unwrap().len(), 2);
    assert_eq!(shared.manifests("together"), ["twin-a.json".to_owned(), "twin-b.json".to_owned()].into());
    let blobs: Vec<&str> =
        metadata["blobs"].as_array().unwrap().iter().map(|blob| blob["key"].as_str().unwrap()).collect();
    assert!(
        blobs.iter().any(|key| key.contains("twin-a")) && blobs.iter().any(|key| key.contains("twin-b")),
        "{blobs:?}"
    );
    let acknowledged: Vec<SpanKey> = a.into_iter().chain(b).collect();
    assert_eq!(sorted(shared.stored_spans("together").await), sorted(acknowledged));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_joins_are_refused_with_their_message_and_exit_code() {
    let (s3, dir) = s3_and_dir().await;
    let shared = shared(&s3, dir.path());
    let refused = |args: &[&str], code: i32, fragments: &[&str]| {
        let output = shared.run(&[&["capture", "--grpc", "off", "--http", "127.0.0.1:0"], args].concat());
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(output.status.code(), Some(code), "{args:?}: {stderr}");
        for fragment in fragments {
            assert!(stderr.contains(fragment), "{args:?}: {stderr}");
        }
    };
    refused(&["--join"], 2, &["--session-id"]);
    refused(&["--join", "--session-id", "s", "--writer-id", "Bad_ID"], 2, &["invalid writer id \"Bad_ID\""]);
    refused(&["--session-id", "s", "--writer-id", "w-1"], 2, &["--join"]);

    // A second writer with the id of a running one is refused; the first
    // keeps recording.
    let first = shared.spawn("dup", "same", &[]);
    let early = first.feed(0, 2).await;
    // The same spool directory: the writer lock says so at once.
    let spool = shared.spool();
    let spool = spool.to_str().unwrap();
    let same_host = ["--join", "--session-id", "dup", "--writer-id", "same", "--spool-dir", spool];
    refused(&same_host, 2, &["writer same of session dup is being captured by another running otlp-tape"]);
    // Another host (another spool directory): the store's create-only manifest.
    let other = dir.path().join("other-spool");
    let other_host = ["--join", "--session-id", "dup", "--writer-id", "same", "--spool-dir", other.to_str().unwrap()];
    refused(&other_host, 2, &["writer same has joined session dup already", "two writers with the same writer id"]);
    let late = first.feed(1, 2).await;
    signal("TERM", &[first.pid()]);
    let (status, summary, stderr) = first.wait();
    assert!(status.success(), "{stderr}");
    assert_eq!(summary.unwrap()["seal"]["outcome"], "sealed");
    let acknowledged: Vec<SpanKey> = early.into_iter().chain(late).collect();
    assert_eq!(sorted(shared.stored_spans("dup").await), sorted(acknowledged));

    // Now completed: no writer joins it any more.
    let again = ["--join", "--session-id", "dup", "--writer-id", "late", "--spool-dir", spool];
    refused(&again, 2, &["writer late cannot join session dup", "cannot be joined"]);
    // Nor a session of one writer.
    let alone = shared.run(&[
        "import",
        "--format",
        "otlp-json",
        "--session-id",
        "alone",
        crate::data("traces.jsonl").to_str().unwrap(),
    ]);
    assert!(alone.status.success(), "{}", String::from_utf8_lossy(&alone.stderr));
    refused(&["--join", "--session-id", "alone", "--spool-dir", spool], 2, &["cannot join session alone"]);
    let seal = shared.run(&["sessions", "seal", "nowhere"]);
    assert_eq!(seal.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&seal.stderr).contains("session nowhere not found"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_capture_joins_through_the_api_and_the_seal_route_answers() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(dir.path(), &[]);
    let body = json!({"sessionId": "api-join", "join": true, "writerId": "api-1"});
    let (status, job) = served.call(reqwest::Method::POST, "/api/v1/captures", Some(body)).await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{job}");
    assert_eq!(job["writerId"], "api-1");
    // A second writer on this store, from the command line.
    let mut command = Command::new(assert_cmd::cargo::cargo_bin("otlp-tape"));
    command.arg("--store").arg(dir.path()).current_dir(dir.path()).env_remove("OTLP_TAPE_STORE");
    let writer = start_writer(command, &dir.path().join("cli-spool"), "api-join", "cli-1", &[]);
    let through_api = feed(&served.http, 0, 2).await;
    let through_cli = writer.feed(1, 2).await;
    let (status, active) = served.call(reqwest::Method::POST, "/api/v1/sessions/api-join/seal", None).await;
    assert_eq!(status, reqwest::StatusCode::CONFLICT, "{active}");
    assert!(active["error"]["message"].as_str().unwrap().contains("api-1, cli-1"), "{active}");
    served.call(reqwest::Method::POST, "/api/v1/captures/api-join/stop", None).await;
    let job = served.until_done("/api/v1/captures/api-join").await;
    assert_eq!(job["seal"]["outcome"], "writersActive", "{job}");
    signal("TERM", &[writer.pid()]);
    let (status, summary, stderr) = writer.wait();
    assert!(status.success(), "{stderr}");
    assert_eq!(summary.unwrap()["seal"]["outcome"], "sealed");
    let (status, sealed) = served.call(reqwest::Method::POST, "/api/v1/sessions/api-join/seal", None).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{sealed}");
    assert_eq!(sealed["outcome"], "alreadySealed");
    let session = served.get("/api/v1/sessions/api-join").await;
    let writers: Vec<&str> =
        session["writers"].as_array().unwrap().iter().map(|w| w["writerId"].as_str().unwrap()).collect();
    assert_eq!(writers, ["api-1", "cli-1"]);
    assert_eq!(session["capturedTraces"], (through_api.len() + through_cli.len()) as u64);
    let (status, _) = served.call(reqwest::Method::POST, "/api/v1/sessions/nowhere/seal", None).await;
    assert_eq!(status, reqwest::StatusCode::NOT_FOUND);
    let (status, duplicate) = served
        .call(
            reqwest::Method::POST,
            "/api/v1/captures",
            Some(json!({"sessionId": "api-join", "join": true, "writerId": "api-2"})),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::CONFLICT, "{duplicate}");
    let (status, bad) = served
        .call(
            reqwest::Method::POST,
            "/api/v1/captures",
            Some(json!({"sessionId": "x", "join": true, "writerId": "Bad_ID"})),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::BAD_REQUEST, "{bad}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_writer_starting_on_the_host_recovers_a_stopped_writers_spool_files_only() {
    let (s3, dir) = s3_and_dir().await;
    let shared = shared(&s3, dir.path());
    // Both share the spool directory; --durable: what is acknowledged is
    // in the spool files.
    let (running, doomed) =
        (shared.spawn("spooled", "running", &["--durable"]), shared.spawn("spooled", "doomed", &["--durable"]));
    let (kept, lost) = futures::future::join(running.feed(0, 3), doomed.feed(1, 3)).await;
    signal("KILL", &[doomed.pid()]);
    assert!(!doomed.wait().0.success());
    // A new writer on this host recovers the killed writer's spool files
    // as it starts, and leaves the running writer's open blobs alone.
    let late = shared.spawn("spooled", "late", &["--durable"]);
    let recovered = late.stderr.lock().unwrap().clone();
    assert!(recovered.contains("Recovered spool files of writer doomed of session spooled"), "{recovered}");
    assert!(!recovered.contains("writer running"), "{recovered}");
    let more = late.feed(2, 2).await;
    let more_kept = running.feed(3, 2).await;
    signal("TERM", &[running.pid()]);
    let (status, summary, stderr) = running.wait();
    assert!(status.success(), "{stderr}");
    assert_eq!(summary.unwrap()["seal"]["activeWriters"], json!(["late"]));
    signal("TERM", &[late.pid()]);
    let (status, summary, stderr) = late.wait();
    assert!(status.success(), "{stderr}");
    assert_eq!(summary.unwrap()["seal"]["outcome"], "sealed");
    let metadata = shared.metadata("spooled");
    let repaired: Vec<(&str, bool)> = metadata["writers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|writer| (writer["writerId"].as_str().unwrap(), writer["repaired"].as_bool().unwrap_or(false)))
        .collect();
    assert_eq!(repaired, [("doomed", true), ("late", false), ("running", false)]);
    let acknowledged: Vec<SpanKey> = [kept, lost, more, more_kept].into_iter().flatten().collect();
    assert_eq!(sorted(shared.stored_spans("spooled").await), sorted(acknowledged));
}

mod live;
