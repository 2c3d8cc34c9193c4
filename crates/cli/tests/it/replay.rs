//! `otlp-tape replay` as a user runs it: the real binary sending seed
//! sessions to a real OTLP target (gRPC and HTTP) on loopback.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use assert_cmd::cargo::cargo_bin;
use futures::TryStreamExt;
use serde_json::Value;
use tape_otlp::Signal;
use tape_session::{SessionId, SessionStore};
use tape_store::LocalStore;
use tape_testkit::otlp_target::{Failure, OtlpTarget, OtlpTargetOptions, ReceivedRequest, Transport};

/// Requests in the seed every test replays, per signal.
const SEED_REQUESTS: [u64; 3] = [124, 30, 61];
/// Their items: spans, data points, log records.
pub(crate) const SEED_ITEMS: [u64; 3] = [5248, 132, 1275];
/// The seed's requests in all.
pub(crate) const SEED_TOTAL: usize = 215;

/// Every variable that could point a replay somewhere else than the test
/// says, from the environment of whoever runs the tests.
const TARGET_VARIABLES: &[&str] = &[
    "OTLP_TAPE_STORE",
    "RUST_LOG",
    "REPLAY_DEFAULT_ENDPOINT",
    "REPLAY_DEFAULT_SPEED",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
    "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
    "OTEL_EXPORTER_OTLP_LOGS_HEADERS",
    "OTEL_EXPORTER_OTLP_COMPRESSION",
    "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
    "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION",
    "OTEL_EXPORTER_OTLP_LOGS_COMPRESSION",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
    "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
    "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT",
    "OTEL_EXPORTER_OTLP_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_INSECURE",
    "OTEL_EXPORTER_OTLP_TRACES_INSECURE",
    "OTEL_EXPORTER_OTLP_METRICS_INSECURE",
    "OTEL_EXPORTER_OTLP_LOGS_INSECURE",
];

/// `otlp-tape --store DIR replay ARGS` in `DIR`, with no target settings
/// from the environment.
pub(crate) fn replay(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(cargo_bin("otlp-tape"));
    command.arg("--store").arg(dir).arg("replay").args(args).current_dir(dir);
    for name in TARGET_VARIABLES {
        command.env_remove(name);
    }
    command
}

/// Runs a command to its end off the test's runtime, which keeps serving
/// the target meanwhile.
pub(crate) fn run_to_end(command: &mut Command) -> Output {
    tokio::task::block_in_place(|| command.output().unwrap())
}

/// Runs `command` to its end, asserting that it succeeds.
pub(crate) fn run_ok(command: &mut Command) -> Output {
    let output = run_to_end(command);
    assert!(output.status.success(), "{}", stderr(&output));
    output
}

/// Runs `command` to its end, asserting that it exits with 1 and that its
/// stderr holds each of `fragments`.
fn run_failing(command: &mut Command, fragments: &[&str]) {
    let output = run_to_end(command);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    for fragment in fragments {
        assert!(message.contains(fragment), "{message}");
    }
}

pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs a replay that must succeed and returns its JSON summary.
fn replay_json(dir: &Path, args: &[&str]) -> Value {
    let output = run_to_end(replay(dir, args).args(["--output", "json"]));
    assert!(output.status.success(), "replay {args:?} failed: {}", stderr(&output));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Runs a replay that must fail with exit code 1 or 2 and returns its stderr.
fn replay_error(dir: &Path, args: &[&str]) -> String {
    let output = run_to_end(&mut replay(dir, args));
    assert!(!output.status.success(), "replay {args:?} succeeded: {}", stderr(&output));
    assert!(matches!(output.status.code(), Some(1 | 2)), "{:?}: {}", output.status, stderr(&output));
    stderr(&output)
}

/// A 20-second payment-failure seed session (seed 7) with id `id`.
pub(crate) fn seed(dir: &Path, id: &str) {
    seed_with(dir, id, &["--pattern", "payment-failure", "--duration", "20s", "--seed", "7"]);
}

fn seed_with(dir: &Path, id: &str, args: &[&str]) {
    let output = crate::tape(dir).args(["seed", "--session-id", id]).args(args).output().unwrap();
    assert!(output.status.success(), "seed failed: {}", stderr(&output));
}

async fn target() -> OtlpTarget {
    OtlpTarget::start(OtlpTargetOptions::default()).await
}

/// A loopback URL where nothing listens.
fn closed_endpoint() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{address}")
}

/// The session's records as (signal, payload), read with the store API on
/// a runtime of its own.
pub(crate) fn stored(dir: &Path, id: &str) -> Vec<(Signal, Vec<u8>)> {
    let dir = dir.to_owned();
    let id = SessionId::new(id).unwrap();
    std::thread::spawn(move || {
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            let store = LocalStore::new(&dir);
            let metadata = store.read_metadata(&id).await.unwrap();
            let records: Vec<_> = tape_session::read_session(&store, &metadata, |_| true).try_collect().await.unwrap();
            records.into_iter().map(|(signal, record)| (signal, record.payload.to_vec())).collect()
        })
    })
    .join()
    .unwrap()
}

/// Requests as sorted (signal, body) pairs, to compare regardless of the
/// order concurrent requests arrived in.
fn sorted(requests: impl IntoIterator<Item = (Signal, Vec<u8>)>) -> Vec<(Signal, Vec<u8>)> {
    let mut requests: Vec<_> = requests.into_iter().collect();
    requests.sort_by(|a, b| (a.0.as_str(), &a.1).cmp(&(b.0.as_str(), &b.1)));
    requests
}

fn bodies(received: &[ReceivedRequest]) -> Vec<(Signal, Vec<u8>)> {
    sorted(received.iter().map(|request| (request.signal, request.body.to_vec())))
}

fn per_signal(received: &[ReceivedRequest]) -> BTreeMap<&'static str, usize> {
    let mut counts = BTreeMap::new();
    for request in received {
        *counts.entry(request.signal.as_str()).or_default() += 1;
    }
    counts
}

fn seed_counts() -> BTreeMap<&'static str, usize> {
    Signal::ALL.iter().zip(SEED_REQUESTS).map(|(signal, requests)| (signal.as_str(), requests as usize)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_replayed_at_max_speed_reaches_the_target_whole_over_every_protocol() {
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path(), "S");
    let expected = sorted(stored(dir.path(), "S"));
    assert_eq!(expected.len(), SEED_TOTAL);
    for (protocol, transport) in
        [("grpc", Transport::Grpc), ("http/protobuf", Transport::HttpProtobuf), ("http/json", Transport::HttpJson)]
    {
        let target = target().await;
        let endpoint = if protocol == "grpc" { target.grpc_endpoint() } else { target.http_endpoint() };
        let summary = replay_json(
            dir.path(),
            &[
                "--session",
                "S",
                "--speed",
                "max",
                "--timestamps",
                "none",
                "--endpoint",
                endpoint,
                "--protocol",
                protocol,
            ],
        );
        let received = target.received();
        assert_eq!(received.len(), SEED_TOTAL, "{protocol}");
        assert!(received.iter().all(|request| request.transport == transport), "{protocol}");
        assert_eq!(per_signal(&received), seed_counts(), "{protocol}");
        // Over gRPC and OTLP/JSON the target decodes each request and
        // encodes it again, which gives back the stored canonical protobuf.
        assert_eq!(bodies(&received), expected, "{protocol}: the target got the stored payloads");
        assert_eq!(summary["reason"], "finished");
        assert_eq!(summary["counts"]["total"]["sentRecords"], SEED_TOTAL);
        assert_eq!(summary["counts"]["total"]["failedRecords"], 0);
        assert_eq!(summary["targets"]["traces"]["protocol"], protocol);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_otel_variables_configure_the_target_and_flags_override_them() {
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path(), "S");
    let target = target().await;
    let variables = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", target.http_endpoint()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=blue%20team"),
    ];
    let status = run_to_end(replay(dir.path(), &["--speed", "max", "--metrics"]).envs(variables)).status;
    assert!(status.success());
    let received = target.received();
    assert_eq!(received.len(), SEED_REQUESTS[1] as usize);
    for request in &received {
        assert_eq!((request.signal, request.transport), (Signal::Metrics, Transport::HttpJson));
        assert_eq!(request.header("x-tenant"), Some("blue team"));
    }

    let target = target_with_flags_over(dir.path(), &variables).await;
    let received = target.received();
    assert_eq!(received.len(), SEED_REQUESTS[1] as usize);
    for request in &received {
        assert_eq!(request.transport, Transport::Grpc);
        assert_eq!(request.header("x-tenant"), Some("red"));
    }

    // REPLAY_DEFAULT_ENDPOINT is the earlier system's fallback.
    let fallback = self::target().await;
    let mut command = replay(dir.path(), &["--speed", "max", "--logs"]);
    command.env("REPLAY_DEFAULT_ENDPOINT", fallback.http_endpoint());
    assert!(run_to_end(&mut command).status.success());
    assert_eq!(fallback.received().len(), SEED_REQUESTS[2] as usize);
}

/// Replays metrics with flags that name another target, protocol and
/// header than `variables`; returns the target the flags name.
async fn target_with_flags_over(dir: &Path, variables: &[(&str, &str)]) -> OtlpTarget {
    let target = target().await;
    let flags = ["--endpoint", target.grpc_endpoint(), "--protocol", "grpc", "--header", "x-tenant=red"];
    let mut command = replay(dir, &["--speed", "max", "--metrics"]);
    command.args(flags).envs(variables.iter().copied());
    run_ok(&mut command);
    target
}

/// The session a dry run with `args` picks.
fn picked(dir: &Path, args: &[&str]) -> String {
    let endpoint = closed_endpoint();
    let mut all = vec!["--dry-run", "--endpoint", endpoint.as_str()];
    all.extend_from_slice(args);
    replay_json(dir, &all)["session"]["id"].as_str().unwrap().to_owned()
}

#[test]
fn the_orchestrator_picks_by_strategy_and_session_type() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    seed_with(dir, "small", &["--pattern", "basic-topology", "--duration", "3s", "--seed", "1"]);
    seed_with(dir, "large", &["--pattern", "basic-topology", "--duration", "20s", "--seed", "1"]);
    seed_with(dir, "training", &["--pattern", "training-phases", "--duration", "2s", "--seed", "1"]);
    // Made last (latest goes by createdAt), though its clock starts earliest.
    seed_with(
        dir,
        "newest",
        &["--pattern", "basic-topology", "--duration", "5s", "--seed", "1", "--start", "2025-06-01T00:00:00Z"],
    );

    assert_eq!(picked(dir, &[]), "newest", "latest is the default");
    assert_eq!(picked(dir, &["--strategy", "latest"]), "newest");
    assert_eq!(picked(dir, &["--strategy", "largest", "--filter-type", "seed"]), "large");
    assert_eq!(picked(dir, &["--strategy", "smallest", "--filter-type", "seed"]), "small");
    for _ in 0..3 {
        assert_eq!(picked(dir, &["--strategy", "random", "--filter-type", "training"]), "training");
    }
    let summary = replay_json(
        dir,
        &["--dry-run", "--endpoint", &closed_endpoint(), "--strategy", "largest", "--filter-type", "seed"],
    );
    assert_eq!(summary["session"]["picked"]["strategy"], "largest");
    assert_eq!(summary["session"]["picked"]["candidates"], 3);

    let message = replay_error(dir, &["--dry-run", "--filter-type", "capture"]);
    assert!(message.contains(&format!("no completed capture sessions in {}", dir.display())), "{message}");
    assert!(message.contains("--filter-type capture"), "{message}");
    let message = replay_error(dir, &["--dry-run", "--session", "small", "--filter-type", "training"]);
    assert!(message.contains("session small is a seed session, not training"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_connects_nowhere_and_says_what_it_would_send() {
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path(), "S");
    let endpoint = closed_endpoint();
    let plan = replay_json(dir.path(), &["--dry-run", "--endpoint", &endpoint, "--protocol", "grpc", "--speed", "2"]);
    assert_eq!(plan["dryRun"], true);
    assert_eq!(plan["session"]["id"], "S");
    assert_eq!(plan["targets"]["logs"]["endpoint"], endpoint);
    assert_eq!(plan["targets"]["logs"]["protocol"], "grpc");
    for (index, signal) in ["traces", "metrics", "logs"].into_iter().enumerate() {
        assert_eq!(plan["records"][signal]["records"], SEED_REQUESTS[index], "{signal}");
        assert_eq!(plan["records"][signal]["items"], SEED_ITEMS[index], "{signal}");
    }
    assert_eq!(plan["records"]["total"]["records"], SEED_TOTAL);
    assert!(plan["pacing"]["estimatedSeconds"].as_f64().unwrap() > 0.0);
    assert!(plan["pacing"]["description"].as_str().unwrap().starts_with("2x the recorded pace"));

    let max = replay_json(dir.path(), &["--dry-run", "--endpoint", &endpoint, "--speed", "max"]);
    assert_eq!(max["pacing"]["description"], "as fast as the target accepts");
    assert_eq!(max["pacing"]["estimatedSeconds"], Value::Null);

    // A phase: its window from the annotations, within --until.
    let failure = replay_json(dir.path(), &["--dry-run", "--endpoint", &endpoint, "--phase", "failure", "--traces"]);
    assert_eq!(failure["options"]["from"], "2026-01-01T00:00:06.666666666Z");
    assert_eq!(failure["options"]["until"], "2026-01-01T00:00:13.333333333Z");
    assert_eq!(failure["records"]["metrics"]["records"], 0);
    let spans = failure["records"]["traces"]["records"].as_u64().unwrap();
    assert!(spans > 0 && spans < SEED_REQUESTS[0], "{spans}");
    let within = replay_json(
        dir.path(),
        &["--dry-run", "--endpoint", &endpoint, "--phase", "failure", "--until", "10s", "--traces"],
    );
    assert_eq!(within["options"]["until"], "2026-01-01T00:00:10Z");
    assert!(within["records"]["traces"]["records"].as_u64().unwrap() < spans);

    let text = run_ok(&mut replay(dir.path(), &["--dry-run", "--endpoint", &endpoint]));
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("Session    S (seed, completed)"), "{text}");
    assert!(text.contains(&format!("Target     {endpoint} (http/protobuf)")), "{text}");
    assert!(text.contains("1x the recorded pace"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_counts_what_was_sent_and_its_content_hash_is_stable() {
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path(), "S");
    let seed_hash = crate::tape_json(dir.path(), &["sessions", "show", "S"])["contentHash"].clone();
    let mut reports = Vec::new();
    for name in ["first.json", "second.json"] {
        let target = target().await;
        let args =
            ["--speed", "max", "--timestamps", "none", "--endpoint", target.grpc_endpoint(), "--protocol", "grpc"];
        run_ok(replay(dir.path(), &args).args(["--report", name, "--id-seed", "99"]));
        let report: Value = serde_json::from_slice(&std::fs::read(dir.path().join(name)).unwrap()).unwrap();
        assert_eq!(report["session"]["id"], "S");
        assert_eq!(report["session"]["type"], "seed");
        assert_eq!(report["session"]["contentHash"], seed_hash);
        assert_eq!(report["targets"]["metrics"]["endpoint"], target.grpc_endpoint());
        assert_eq!(report["reason"], "finished");
        assert_eq!(report["passes"], 1);
        assert_eq!(report["idSeed"], 99);
        assert_eq!(report["options"]["timestamps"], "none");
        assert_eq!(report["options"]["speed"], "max");
        for (index, signal) in ["traces", "metrics", "logs"].into_iter().enumerate() {
            assert_eq!(report["counts"][signal]["sentRecords"], SEED_REQUESTS[index], "{signal}");
            assert_eq!(report["counts"][signal]["sentItems"], SEED_ITEMS[index], "{signal}");
            assert_eq!(report["counts"][signal]["failedRecords"], 0, "{signal}");
        }
        assert_eq!(report["counts"]["total"]["sentRecords"], SEED_TOTAL);
        assert!(report["startedAt"].as_str().unwrap() <= report["endedAt"].as_str().unwrap());
        assert!(report["contentHash"].as_str().is_some_and(|hash| hash.len() == 64));
        assert_eq!(report["error"], Value::Null);
        reports.push(report);
    }
    assert_eq!(reports[0]["contentHash"], reports[1]["contentHash"], "the same records went in the same order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_replay_resumes_from_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path(), "S");
    let target = target().await;
    let common = ["--timestamps", "none", "--endpoint", target.http_endpoint(), "--checkpoint", "replay.json"];

    // A slow replay (about 40 s), stopped once some requests are through.
    let mut slow = replay(dir.path(), &common);
    slow.args(["--speed", "0.5", "--report", "stopped.json"]).stdout(Stdio::null()).stderr(Stdio::piped());
    let child = slow.spawn().unwrap();
    target.wait_for(20).await;
    interrupt(&child);
    let stopped = tokio::task::block_in_place(|| child.wait_with_output().unwrap());
    assert!(stopped.status.success(), "a stop exits 0: {}", stderr(&stopped));
    let report: Value = serde_json::from_slice(&std::fs::read(dir.path().join("stopped.json")).unwrap()).unwrap();
    assert_eq!(report["reason"], "stopped");
    let checkpoint: Value = serde_json::from_slice(&std::fs::read(dir.path().join("replay.json")).unwrap()).unwrap();
    assert_eq!(checkpoint["sessionId"], "S");
    assert_eq!(checkpoint["complete"], false);
    let done = checkpoint["position"]["record"].as_u64().unwrap();
    assert!(done >= 20 && done < SEED_TOTAL as u64, "{checkpoint}");
    let before = target.received().len();
    assert!(before < SEED_TOTAL, "the stop came before the end");

    // Another selection is refused.
    let message = replay_error(dir.path(), &[&common[..], &["--resume", "--traces"]].concat());
    assert!(message.contains("another selection: signals traces,metrics,logs (now traces)"), "{message}");

    let summary = replay_json(dir.path(), &[&common[..], &["--resume", "--speed", "max"]].concat());
    assert_eq!(summary["reason"], "finished");
    assert_eq!(summary["idSeed"], checkpoint["idSeed"]);
    assert_eq!(summary["options"]["resumedFrom"]["record"], done);
    assert!(summary["counts"]["total"]["sentRecords"].as_u64().unwrap() >= SEED_TOTAL as u64);

    let received = target.received();
    let expected = sorted(stored(dir.path(), "S"));
    for record in &expected {
        assert!(bodies(&received).contains(record), "a record was never delivered");
    }
    let repeats = received.len() - SEED_TOTAL;
    assert!(repeats <= 4, "{repeats} records were sent twice; at most the concurrency may be");

    // Resuming a replay that got to the end does nothing and says so.
    let output = run_ok(&mut replay(dir.path(), &[&common[..], &["--resume"]].concat()));
    assert!(stderr(&output).contains("nothing to resume"), "{}", stderr(&output));
    assert_eq!(target.received().len(), received.len());
}

fn interrupt(child: &std::process::Child) {
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_with_a_clear_message() {
    let empty = tempfile::tempdir().unwrap();
    let message = replay_error(empty.path(), &["--dry-run"]);
    assert!(message.contains(&format!("no completed sessions in {}", empty.path().display())), "{message}");

    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    seed(dir, "S");
    let message = replay_error(dir, &["--session", "nope"]);
    assert!(message.contains(&format!("session nope not found in {}", dir.display())), "{message}");

    for speed in ["0", "-1", "NaN"] {
        let message = replay_error(dir, &["--speed", speed, "--dry-run"]);
        assert!(message.contains("expected a factor above 0 such as 0.5, 1 or 10, or max"), "{speed}: {message}");
    }
    let refused = run_to_end(replay(dir, &["--dry-run"]).env("REPLAY_DEFAULT_SPEED", "0"));
    assert_eq!(refused.status.code(), Some(1));
    assert!(stderr(&refused).contains("invalid REPLAY_DEFAULT_SPEED \"0\""), "{}", stderr(&refused));

    let message = replay_error(dir, &["--dry-run", "--from", "10s", "--until", "5s"]);
    assert!(message.contains("--from 10s (2026-01-01T00:00:10Z) is not before --until 5s"), "{message}");
    let message = replay_error(dir, &["--dry-run", "--from", "soon"]);
    assert!(message.contains("expected an offset into the session"), "{message}");
    let message = replay_error(dir, &["--dry-run", "--phase", "nope"]);
    assert!(
        message.contains("session S has no phase \"nope\"; its phases are baseline, failure, rampdown"),
        "{message}"
    );
    let message = replay_error(dir, &["--resume", "--checkpoint", "missing.json"]);
    assert!(message.contains("the checkpoint file missing.json does not exist"), "{message}");
    let message = replay_error(dir, &["--resume"]);
    assert!(message.contains("--checkpoint"), "{message}");
    let message = replay_error(dir, &["--concurrency", "0"]);
    assert!(message.contains("--concurrency"), "{message}");
    let message = replay_error(dir, &["--regenerate-ids", "--keep-ids"]);
    assert!(message.contains("cannot be used with"), "{message}");

    // Unreachable: the message names the endpoint.
    let endpoint = closed_endpoint();
    let failed = format!("the replay of session S to {endpoint} (http/protobuf) failed");
    run_failing(
        &mut replay(dir, &["--speed", "max", "--endpoint", &endpoint, "--max-attempts", "1"]),
        &[&failed, "stopped after 1 failed request"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_the_target_refuses_fails_the_replay() {
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path(), "S");
    let target = target().await;
    target.fail_next(1, Failure::Http(400, None));
    let args = ["--speed", "max", "--endpoint", target.http_endpoint(), "--report", "r.json"];
    run_failing(&mut replay(dir.path(), &args), &["HTTP 400", "stopped after 1 failed request"]);
    assert!(target.received().len() < SEED_TOTAL, "it stopped");
    let report: Value = serde_json::from_slice(&std::fs::read(dir.path().join("r.json")).unwrap()).unwrap();
    assert_eq!(report["reason"], "failed");
    assert_eq!(report["counts"]["total"]["failedRecords"], 1);
    assert!(report["error"].as_str().unwrap().contains("HTTP 400"), "{report}");

    // With failures tolerated, the rest goes, and the exit code still says one failed.
    let target = self::target().await;
    target.fail_next(1, Failure::Http(400, None));
    let args = ["--speed", "max", "--endpoint", target.http_endpoint(), "--max-failures", "unlimited"];
    run_failing(&mut replay(dir.path(), &args), &["1 request of the replay of session S"]);
    assert_eq!(target.received().len(), SEED_TOTAL - 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retryable_failures_are_retried_and_partial_successes_counted() {
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path(), "S");
    let target = target().await;
    target.fail_next(1, Failure::Http(503, Some(std::time::Duration::from_secs(1))));
    let summary = replay_json(dir.path(), &["--speed", "max", "--endpoint", target.http_endpoint()]);
    assert_eq!(summary["reason"], "finished");
    assert_eq!(summary["counts"]["total"]["failedRecords"], 0);
    assert_eq!(summary["counts"]["total"]["retries"], 1, "{summary}");
    assert_eq!(target.received().len(), SEED_TOTAL);
    assert_eq!(target.attempts(), SEED_TOTAL + 1);
    // The text summary says so too.
    target.fail_next(1, Failure::Http(503, None));
    let output = run_ok(&mut replay(dir.path(), &["--speed", "max", "--endpoint", target.http_endpoint()]));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains(", 1 retry\n"),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );

    let target = self::target().await;
    target.partial_success(1);
    let summary =
        replay_json(dir.path(), &["--speed", "max", "--endpoint", target.grpc_endpoint(), "--protocol", "grpc"]);
    assert_eq!(summary["reason"], "finished");
    assert_eq!(summary["counts"]["total"]["rejectedItems"], SEED_TOTAL);
    assert_eq!(summary["counts"]["traces"]["rejectedItems"], SEED_REQUESTS[0]);
    // The replay finished: a partial success is no error, but is kept.
    assert_eq!(summary["error"], Value::Null, "{summary}");
    assert!(summary["warning"].as_str().unwrap().contains("rejected"), "{summary}");
}

/// The traces blob of session `id`.
fn traces_blob(dir: &Path, id: &str) -> PathBuf {
    let mut pending = vec![dir.join("sessions").join(id).join("raw")];
    while let Some(directory) = pending.pop() {
        for entry in std::fs::read_dir(&directory).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.file_name().unwrap().to_string_lossy().starts_with("traces-") {
                return path;
            }
        }
    }
    panic!("session {id} has no traces blob");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_blob_stops_the_replay_unless_skipped() {
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path(), "S");
    let blob = traces_blob(dir.path(), "S");
    let mut bytes = std::fs::read(&blob).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle..middle + 64].fill(0xa5);
    std::fs::write(&blob, bytes).unwrap();
    let key = blob.strip_prefix(dir.path().join("sessions/S")).unwrap().display().to_string();

    let target = target().await;
    let args = ["--speed", "max", "--endpoint", target.http_endpoint()];
    let corrupt = format!("blob {key} is corrupt");
    let damaged = "stopped at a damaged blob; --skip-corrupt replays past it";
    run_failing(&mut replay(dir.path(), &args), &[damaged, &corrupt, "byte"]);

    let target = self::target().await;
    let args = ["--speed", "max", "--endpoint", target.http_endpoint(), "--skip-corrupt"];
    let summary = replay_json(dir.path(), &args);
    assert_eq!(summary["reason"], "finished");
    assert_eq!(summary["corruptBlobs"], 1);
    let received = per_signal(&target.received());
    assert_eq!(received["metrics"], SEED_REQUESTS[1] as usize);
    assert_eq!(received["logs"], SEED_REQUESTS[2] as usize);
    assert!(received.get("traces").copied().unwrap_or(0) < SEED_REQUESTS[0] as usize);
}

/// Sends SIGTERM to a child.
fn terminate(child: &std::process::Child) {
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
}

/// Waits for a child to exit, failing the test if it has not after
/// `limit`: a guard against a hang, not a measure of time.
fn exit_within(child: std::process::Child, limit: std::time::Duration) -> Output {
    let id = child.id();
    crate::wait_within(id, limit, &format!("the process did not exit within {limit:?}"), move || {
        child.wait_with_output()
    })
    .unwrap()
}

/// Starts a replay and waits until it says that a signal stops it.
fn spawn_until_stoppable(mut command: Command) -> (std::process::Child, std::thread::JoinHandle<String>) {
    use std::io::BufRead as _;
    let mut child = command.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.starts_with("Stop with Ctrl-C") {
            break;
        }
    }
    assert!(seen.contains("Stop with Ctrl-C"), "the replay did not start: {seen}");
    // The rest of stderr, read so that the replay never blocks on it.
    let rest = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>().join("\n"));
    (child, rest)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_a_replay_to_a_failing_target_stopped_whatever_the_attempts() {
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path(), "S");
    for attempts in ["1000", "5"] {
        // Every request is answered 503: retried again and again.
        let target = target().await;
        target.fail_after(0, Failure::Http(503, None));
        let report = format!("stopped-{attempts}.json");
        let mut command =
            replay(dir.path(), &["--speed", "max", "--endpoint", target.http_endpoint(), "--report", &report]);
        command.args(["--max-attempts", attempts, "--checkpoint", "failing.json"]);
        let (child, rest) = spawn_until_stoppable(command);
        // Retries are under way: more attempts than requests in flight.
        target.wait_for_attempts(40).await;
        let started = std::time::Instant::now();
        terminate(&child);
        let output = exit_within(child, std::time::Duration::from_secs(30));
        let stderr = rest.join().unwrap();
        eprintln!("--max-attempts {attempts}: exited {:?} after SIGTERM", started.elapsed());
        assert!(output.status.success(), "a stopped replay exits 0: {stderr}");
        let report: Value = serde_json::from_slice(&std::fs::read(dir.path().join(&report)).unwrap()).unwrap();
        assert_eq!(report["reason"], "stopped", "{report}");
        assert_eq!(report["error"], Value::Null, "{report}");
        assert_eq!(report["counts"]["total"]["failedRecords"], 0, "{report}");
        assert!(report["counts"]["total"]["retries"].as_u64().unwrap() >= 8, "{report}");
        let checkpoint: Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("failing.json")).unwrap()).unwrap();
        assert_eq!(checkpoint["position"]["record"], 0, "nothing was done: {checkpoint}");
        // A dead endpoint ends the same way.
        let mut command =
            replay(dir.path(), &["--speed", "max", "--endpoint", &closed_endpoint(), "--max-attempts", attempts]);
        command.args(["--output", "json"]);
        let (child, rest) = spawn_until_stoppable(command);
        terminate(&child);
        let output = exit_within(child, std::time::Duration::from_secs(30));
        assert!(output.status.success(), "{}", rest.join().unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_after_a_stalled_request_and_a_failure_sends_again_at_most_the_concurrency() {
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path(), "S");
    let concurrency = 8;
    for (protocol, refusal) in [
        ("grpc", Failure::Grpc(tonic::Code::InvalidArgument, None)),
        ("http/protobuf", Failure::Http(400, None)),
        ("http/json", Failure::Http(400, None)),
    ] {
        let target = target().await;
        let endpoint = if protocol == "grpc" { target.grpc_endpoint() } else { target.http_endpoint() };
        let checkpoint = format!("{}.json", protocol.replace('/', "-"));
        let common = [
            "--speed",
            "max",
            "--timestamps",
            "none",
            "--concurrency",
            "8",
            "--protocol",
            protocol,
            "--endpoint",
            endpoint,
            "--checkpoint",
            &checkpoint,
        ];
        // The first request gets no answer; 100 others go through, then
        // the target refuses everything.
        target.fail_next(1, Failure::Stall);
        target.fail_after(100, refusal);
        let mut first = replay(dir.path(), &common);
        first.stdout(Stdio::null()).stderr(Stdio::piped());
        let child = first.spawn().unwrap();
        // The stalled request, 100 accepted and a refused one.
        target.wait_for_attempts(102).await;
        target.release_stalled();
        let output = exit_within(child, std::time::Duration::from_secs(30));
        assert_eq!(output.status.code(), Some(1), "{protocol}: the refusal fails the replay: {}", stderr(&output));
        let accepted = target.received().len();
        assert!((100..SEED_TOTAL).contains(&accepted), "{protocol}: {accepted}");
        let saved: Value = serde_json::from_slice(&std::fs::read(dir.path().join(&checkpoint)).unwrap()).unwrap();
        assert!(saved["position"]["record"].as_u64().unwrap() >= 100, "{protocol}: {saved}");

        target.recover();
        let summary = replay_json(dir.path(), &[&common[..], &["--resume"]].concat());
        assert_eq!(summary["reason"], "finished", "{protocol}: {summary}");
        let received = target.received();
        let distinct: std::collections::HashSet<_> = bodies(&received).into_iter().collect();
        assert_eq!(distinct.len(), SEED_TOTAL, "{protocol}: every record is delivered");
        let duplicates = received.len() - distinct.len();
        eprintln!("{protocol}: {duplicates} requests sent twice after a resume");
        assert!(duplicates <= concurrency, "{protocol}: {duplicates} requests were sent twice");
        target.shutdown().await;
    }
}

/// Distinct start times of each cumulative series (resource, scope,
/// metric name, point attributes) in metrics requests.
fn start_times_per_series(received: &[ReceivedRequest]) -> BTreeMap<String, std::collections::BTreeSet<u64>> {
    use tape_otlp::ExportRequest;
    use tape_otlp::proto::metrics::v1::AggregationTemporality;
    use tape_otlp::proto::metrics::v1::metric::Data;
    let cumulative = AggregationTemporality::Cumulative as i32;
    let mut starts: BTreeMap<String, std::collections::BTreeSet<u64>> = BTreeMap::new();
    for request in received.iter().filter(|request| request.signal == Signal::Metrics) {
        let ExportRequest::Metrics(request) = request.request() else { unreachable!() };
        for resource in &request.resource_metrics {
            for scope in &resource.scope_metrics {
                for metric in &scope.metrics {
                    let mut add = |attributes: &dyn std::fmt::Debug, start: u64| {
                        let series =
                            format!("{:?} {:?} {} {attributes:?}", resource.resource, scope.scope, metric.name);
                        starts.entry(series).or_default().insert(start);
                    };
                    match metric.data.as_ref().unwrap() {
                        Data::Sum(sum) if sum.aggregation_temporality == cumulative => {
                            sum.data_points.iter().for_each(|p| add(&p.attributes, p.start_time_unix_nano));
                        }
                        Data::Histogram(histogram) if histogram.aggregation_temporality == cumulative => {
                            histogram.data_points.iter().for_each(|p| add(&p.attributes, p.start_time_unix_nano));
                        }
                        Data::ExponentialHistogram(histogram) if histogram.aggregation_temporality == cumulative => {
                            histogram.data_points.iter().for_each(|p| add(&p.attributes, p.start_time_unix_nano));
                        }
                        Data::Summary(summary) => {
                            summary.data_points.iter().for_each(|p| add(&p.attributes, p.start_time_unix_nano));
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    starts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relative_replay_keeps_one_start_time_per_cumulative_series_and_pass() {
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path(), "S");
    for speed in ["max", "4"] {
        let target = target().await;
        let summary = replay_json(
            dir.path(),
            &["--metrics", "--timestamps", "relative", "--speed", speed, "--endpoint", target.http_endpoint()],
        );
        assert_eq!(summary["reason"], "finished");
        let starts = start_times_per_series(&target.received());
        assert!(starts.len() >= 3, "the seed has cumulative series: {starts:?}");
        let most = starts.values().map(std::collections::BTreeSet::len).max().unwrap();
        eprintln!("--speed {speed}: {} cumulative series, at most {most} start times each", starts.len());
        assert_eq!(most, 1, "--speed {speed}: {starts:?}");
        target.shutdown().await;
    }
    // A loop: one start time per series and pass, a new one each pass.
    let target = target().await;
    let summary = replay_json(
        dir.path(),
        &["--metrics", "--speed", "20", "--loop", "--duration", "2500ms", "--endpoint", target.http_endpoint()],
    );
    let passes = summary["passes"].as_u64().unwrap();
    assert!(passes >= 2, "{summary}");
    for (series, starts) in start_times_per_series(&target.received()) {
        assert!(starts.len() as u64 <= passes && starts.len() >= 2, "{series}: {starts:?} in {passes} passes");
    }
}
