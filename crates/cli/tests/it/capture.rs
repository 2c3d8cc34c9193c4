//! `otlp-tape capture` as a user runs it: a process that records until
//! SIGTERM or a limit, and that loses nothing it acknowledged when it is
//! killed and its session repaired.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use tape_otlp::{ExportRequest, Signal};
use tape_session::{SessionId, SessionStore, salvage_blob};
use tape_store::LocalStore;

/// A running `otlp-tape capture` and the addresses it printed.
struct Capturing {
    child: Child,
    grpc: Option<String>,
    http: Option<String>,
    /// What follows the first line, which says where it listens.
    stdout: BufReader<ChildStdout>,
}

fn spawn_capture(store: &Path, args: &[&str], env: &[(&str, &str)]) -> Capturing {
    spawn_capture_in(store.to_str().unwrap(), store, args, env)
}

/// `otlp-tape --store STORE capture ARGS` in the working directory `dir`.
fn spawn_capture_in(store: &str, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Capturing {
    let mut command = Command::new(assert_cmd::cargo::cargo_bin("otlp-tape"));
    command.arg("--store").arg(store).arg("capture").args(["--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0"]);
    command.args(args).current_dir(dir).stdout(Stdio::piped()).stderr(Stdio::piped());
    for name in ["OTLP_TAPE_STORE", "CAPTURE_MAX_SIZE_MB", "CAPTURE_MAX_DURATION_MINUTES", "OTLP_TAPE_SPOOL_DIR"] {
        command.env_remove(name);
    }
    command.envs(env.iter().copied());
    let mut child = command.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut capturing = Capturing { child, grpc: None, http: None, stdout };
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line.starts_with("Capturing into session") {
            let address = |label: &str| {
                line.split(label).nth(1).map(|rest| {
                    let addr: String =
                        rest.chars().take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':').collect();
                    format!("http://{}", addr.trim_end_matches('.'))
                })
            };
            capturing.grpc = address("OTLP/gRPC on ");
            capturing.http = address("OTLP/HTTP on ");
            break;
        }
    }
    assert!(capturing.http.is_some() || capturing.grpc.is_some(), "capture did not start");
    // Port 0: the first line on stdout says where it listens, as serve's.
    let mut first = String::new();
    capturing.stdout.read_line(&mut first).unwrap();
    let listening: serde_json::Value =
        serde_json::from_str(&first).unwrap_or_else(|_| panic!("not the listening line: {first:?}"));
    let url = |addr: &serde_json::Value| addr.as_str().map(|addr| format!("http://{addr}"));
    assert_eq!(url(&listening["grpc"]), capturing.grpc, "{first}");
    assert_eq!(url(&listening["http"]), capturing.http, "{first}");
    // Keep draining stderr so the process never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    capturing
}

impl Capturing {
    fn post(&self, signal: Signal, payload: Vec<u8>) -> reqwest::blocking::Response {
        let url = format!("{}{}", self.http.as_ref().unwrap(), signal.http_path());
        client().post(url).header("content-type", "application/x-protobuf").body(payload).send().unwrap()
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill").args([&format!("-{name}"), &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit and returns its stdout after the
    /// listening line.
    fn wait(mut self) -> (std::process::ExitStatus, String) {
        let mut stdout = String::new();
        self.stdout.read_to_string(&mut stdout).unwrap();
        (self.child.wait().unwrap(), stdout)
    }
}

/// An HTTP client that gives up rather than hang a test.
fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().timeout(Duration::from_secs(20)).build().unwrap()
}

fn traces(n: u64) -> Vec<u8> {
    ExportRequest::Traces(tape_otlp::sample::traces("checkout", 4, n)).encode_protobuf()
}

fn session_payloads(store: &Path, id: &str) -> Vec<Vec<u8>> {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        use futures::TryStreamExt;
        let store = LocalStore::new(store);
        let metadata = store.read_metadata(&SessionId::new(id).unwrap()).await.unwrap();
        let records: Vec<_> = tape_session::read_session(&store, &metadata, |_| true).try_collect().await.unwrap();
        records.into_iter().map(|(_, record)| record.payload.to_vec()).collect()
    })
}

/// Records in the session's partial (uncommitted) blobs, as a repair would
/// salvage them now.
fn salvageable_records(store: &Path, id: &str) -> u64 {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = LocalStore::new(store);
        let id = SessionId::new(id).unwrap();
        let mut records = 0;
        for partial in store.list_partial_blobs(&id).await.unwrap() {
            let bytes = store.read_partial_blob(&id, &partial).await.unwrap();
            records += salvage_blob(&bytes).summary.records;
        }
        records
    })
}

#[test]
fn capture_records_until_sigterm_and_prints_its_summary() {
    let dir = tempfile::tempdir().unwrap();
    let capturing = spawn_capture(
        dir.path(),
        &["--session-id", "checkout-1", "--flags", "payment_failure,slow_db", "--description", "checkout incident"],
        &[],
    );
    for n in 0..5 {
        assert_eq!(capturing.post(Signal::Traces, traces(n)).status(), 200);
    }
    capturing.signal("TERM");
    let (status, stdout) = capturing.wait();
    assert!(status.success());
    assert_eq!(stdout.trim(), "checkout-1");
    let show = crate::tape_json(dir.path(), &["sessions", "show", "checkout-1"]);
    assert_eq!(show["status"], "completed");
    assert_eq!(show["sessionType"], "capture");
    assert_eq!(show["capturedTraces"], 20);
    assert_eq!(show["enabledFlags"], serde_json::json!(["payment_failure", "slow_db"]));
    assert_eq!(show["description"], "checkout incident");
    assert_eq!(session_payloads(dir.path(), "checkout-1"), (0..5).map(traces).collect::<Vec<_>>());
}

#[test]
fn a_killed_capture_keeps_what_was_flushed_after_repair() {
    let dir = tempfile::tempdir().unwrap();
    let capturing = spawn_capture(dir.path(), &["--session-id", "killed", "--flush-interval", "100ms"], &[]);
    for n in 0..6 {
        assert_eq!(capturing.post(Signal::Traces, traces(n)).status(), 200);
    }
    // The recorder flushes on its own within the interval; wait until the
    // records are in the partial blob on disk, as a crash would leave them.
    let deadline = Instant::now() + Duration::from_secs(10);
    while salvageable_records(dir.path(), "killed") < 6 {
        assert!(Instant::now() < deadline, "the capture never flushed");
        std::thread::sleep(Duration::from_millis(20));
    }
    capturing.signal("KILL");
    let (status, _) = capturing.wait();
    assert!(!status.success());
    assert_eq!(crate::tape_json(dir.path(), &["sessions", "show", "killed"])["status"], "active");
    crate::tape_in(dir.path()).args(["sessions", "repair", "killed"]).assert().success();
    let show = crate::tape_json(dir.path(), &["sessions", "show", "killed"]);
    assert_eq!(show["status"], "completed");
    assert_eq!(show["capturedTraces"], 24);
    assert_eq!(session_payloads(dir.path(), "killed"), (0..6).map(traces).collect::<Vec<_>>());
}

#[test]
fn a_durable_capture_killed_right_after_acknowledging_keeps_every_request() {
    let dir = tempfile::tempdir().unwrap();
    // A flush interval far longer than the test: only --durable can save them.
    let capturing = spawn_capture(dir.path(), &["--session-id", "durable", "--durable", "--flush-interval", "1h"], &[]);
    for n in 0..6 {
        assert_eq!(capturing.post(Signal::Traces, traces(n)).status(), 200);
    }
    capturing.signal("KILL");
    capturing.wait();
    assert_eq!(salvageable_records(dir.path(), "durable"), 6, "every acknowledged request is on disk");
    crate::tape_in(dir.path()).args(["sessions", "repair", "durable"]).assert().success();
    assert_eq!(session_payloads(dir.path(), "durable"), (0..6).map(traces).collect::<Vec<_>>());
}

#[test]
fn the_duration_limit_from_the_earlier_systems_variable_stops_and_finishes_the_capture() {
    let dir = tempfile::tempdir().unwrap();
    // 0.01 minutes: 600 ms.
    let capturing = spawn_capture(
        dir.path(),
        &["--session-id", "limited", "--output", "json"],
        &[("CAPTURE_MAX_DURATION_MINUTES", "0.01")],
    );
    assert_eq!(capturing.post(Signal::Logs, logs()).status(), 200);
    let (status, stdout) = capturing.wait();
    assert!(status.success());
    let summary: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(summary["status"], "completed");
    assert_eq!(summary["reason"], "duration limit reached");
    assert_eq!(summary["items"]["logs"], 3);
    assert_eq!(summary["received"]["logs"]["requests"], 1);
}

fn logs() -> Vec<u8> {
    ExportRequest::Logs(tape_otlp::sample::logs("checkout", 3, 0)).encode_protobuf()
}

#[test]
fn the_size_limit_stops_and_finishes_the_capture() {
    let dir = tempfile::tempdir().unwrap();
    let capturing =
        spawn_capture(dir.path(), &["--session-id", "sized", "--output", "json"], &[("CAPTURE_MAX_SIZE_MB", "1")]);
    // Requests of about 100 KiB each until the capture stops taking them.
    let mut acknowledged = 0;
    for n in 0..100 {
        let payload = ExportRequest::Traces(tape_otlp::sample::traces("checkout", 400, n)).encode_protobuf();
        let url = format!("{}/v1/traces", capturing.http.as_ref().unwrap());
        let response = client().post(url).header("content-type", "application/x-protobuf").body(payload).send();
        match response {
            Ok(response) if response.status() == 200 => acknowledged += 400,
            _ => break,
        }
    }
    let (status, stdout) = capturing.wait();
    assert!(status.success());
    let summary: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(summary["reason"], "size limit reached");
    assert_eq!(summary["status"], "completed");
    assert_eq!(summary["items"]["traces"], acknowledged, "every acknowledged span is recorded");
}

#[test]
fn bad_capture_settings_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let busy = format!("cannot listen for OTLP/gRPC on {address}");
    let no_receiver = ["capture", "--grpc", "127.0.0.1:0", "--http", "off"];
    let cases = [
        (&[][..], &["capture", "--grpc", &address, "--http", "off"][..], busy.as_str()),
        (&[], &["capture", "--grpc", "off", "--http", "off"], "both receivers are off"),
        (&[], &["capture", "--grpc", "not-an-address"], "invalid address \"not-an-address\""),
        (&[("CAPTURE_MAX_DURATION_MINUTES", "soon")], &no_receiver, "CAPTURE_MAX_DURATION_MINUTES is \"soon\""),
        (&[("CAPTURE_COMPRESSION_ENABLED", "maybe")], &no_receiver, "CAPTURE_COMPRESSION_ENABLED is \"maybe\""),
        (&[], &[&no_receiver[..], &["--forward", "localhost:4318"]].concat(), "--forward"),
    ];
    for (env, args, message) in cases {
        crate::fails(crate::tape_in(dir.path()).envs(env.iter().copied()).args(args), &[message]);
    }
}

#[test]
fn a_second_capture_on_an_existing_session_id_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    crate::import_samples(dir.path(), "taken");
    let args = ["capture", "--session-id", "taken", "--grpc", "127.0.0.1:0", "--http", "off"];
    crate::fails(crate::tape_in(dir.path()).args(args), &["taken"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_s3_a_killed_captures_spool_is_recovered_by_the_next_capture() {
    let server = tape_testkit::s3::S3TestServer::start().await;
    let store = format!("s3://{}/team-a", server.bucket());
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("MINIO_ENDPOINT", server.endpoint()),
        ("MINIO_ACCESS_KEY", server.access_key()),
        ("MINIO_SECRET_KEY", server.secret_key()),
    ];
    let spool = dir.path().join(".otlp-tape/spool");
    tokio::task::block_in_place(|| {
        let capturing =
            spawn_capture_in(&store, dir.path(), &["--session-id", "on-s3", "--flush-interval", "100ms"], &env);
        for n in 0..5 {
            assert_eq!(capturing.post(Signal::Traces, traces(n)).status(), 200);
        }
        // Wait until the spool file holds the five records, then crash.
        let deadline = Instant::now() + Duration::from_secs(10);
        while spooled_records(&spool) < 5 {
            assert!(Instant::now() < deadline, "the capture never flushed to its spool file");
            std::thread::sleep(Duration::from_millis(20));
        }
        capturing.signal("KILL");
        capturing.wait();

        // The next capture finds the leftover spool file and finishes the session.
        let next = spawn_capture_in(&store, dir.path(), &["--session-id", "next"], &env);
        next.signal("TERM");
        assert!(next.wait().0.success());
        let show = crate::s3::tape_s3(&server, &store)
            .args(["--output", "json", "sessions", "show", "on-s3"])
            .output()
            .unwrap();
        let show: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
        assert_eq!(show["status"], "completed");
        assert_eq!(show["capturedTraces"], 20);
        assert_eq!(spooled_records(&spool), 0, "the spool file is gone once uploaded");
    });
}

/// Records in the spool files under `spool`.
fn spooled_records(spool: &Path) -> u64 {
    let mut records = 0;
    let mut pending = vec![spool.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.to_string_lossy().ends_with(".partial") {
                records += salvage_blob(&std::fs::read(&path).unwrap()).summary.records;
            }
        }
    }
    records
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_passes_every_accepted_request_to_the_collector_and_says_so() {
    let target =
        tape_testkit::otlp_target::OtlpTarget::start(tape_testkit::otlp_target::OtlpTargetOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let sent: Vec<Vec<u8>> = (0..3).map(traces).collect();
    let summary = tokio::task::block_in_place(|| {
        let capturing = spawn_capture(
            dir.path(),
            &[
                "--session-id",
                "forwarded",
                "--output",
                "json",
                "--forward",
                target.grpc_endpoint(),
                "--forward-protocol",
                "grpc",
                "--forward-header",
                "x-tenant=checkout",
            ],
            &[],
        );
        for payload in &sent {
            assert_eq!(capturing.post(Signal::Traces, payload.clone()).status(), 200);
        }
        capturing.signal("TERM");
        let (status, stdout) = capturing.wait();
        assert!(status.success());
        serde_json::from_str::<serde_json::Value>(&stdout).unwrap()
    });
    let received = target.received();
    let forwarded: Vec<Vec<u8>> = received.iter().map(|request| request.body.to_vec()).collect();
    assert_eq!(forwarded, sent, "the collector got what the session holds");
    assert!(received.iter().all(|request| request.header("x-tenant") == Some("checkout")));
    assert_eq!(summary["received"]["traces"]["forwarded"], 3);
    assert_eq!(summary["received"]["traces"]["forwardFailed"], 0);
    // The store is read with a runtime of its own, off this one.
    let stored = std::thread::scope(|scope| scope.spawn(|| session_payloads(dir.path(), "forwarded")).join().unwrap());
    assert_eq!(stored, sent);
}

#[test]
fn receive_limits_that_cannot_work_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    for (flag, message) in [
        (
            ["--receive-budget-mb", "8"],
            "--receive-budget-mb 8 is less than the largest request (--max-request-size-mb, 16 MiB)",
        ),
        (["--request-read-timeout", "0s"], "--request-read-timeout must be more than zero"),
    ] {
        let args = ["capture", "--grpc", "127.0.0.1:0", "--http", "off"];
        crate::fails(crate::tape_in(dir.path()).args(args).args(flag), &[message]);
    }
}
