//! `otlp-tape compare` after a real pipeline: a seed replayed through a
//! re-batching OTLP/gRPC intermediary (tape-testkit's `Rebatcher`) into a
//! capture behind it, compared with the capture item by item; looped
//! replays with id remapping; and bad input.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use tape_otlp::Signal;
use tape_testkit::otlp_target::{OtlpTarget, OtlpTargetOptions};
use tape_testkit::rebatcher::{RebatchCounts, Rebatcher, RebatcherBuilder};

use crate::tape;

/// The resource attribute the lossy pipeline adds to every resource.
const ADDED: &str = "pipeline.stage";
/// The span attribute the lossy pipeline deletes (HTTP spans have it).
const DELETED: &str = "http.route";
/// Items per request the pipeline sends on: a prime, dividing no request
/// size of the seed.
const BATCH_ITEMS: usize = 23;
/// The longest a capture may take to stop after SIGTERM: a guard against a
/// hang, not a measure of time.
const STOP_LIMIT: Duration = Duration::from_mins(1);

/// A small seed session `id`: ten seconds of payment-failure at four
/// traces a second, seed 7 (or `seed`).
fn seed(store: &Path, id: &str, seed: &str) {
    let args = ["seed", "--pattern", "payment-failure", "--duration", "10s", "--rate", "4", "--seed", seed];
    let output = tape(store).args(args).args(["--session-id", id]).output().unwrap();
    assert!(output.status.success(), "seed failed: {}", stderr(&output));
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The items of session `id` per signal, from `sessions show`.
fn items_of(store: &Path, id: &str) -> [u64; 3] {
    let show = crate::tape_json(store, &["sessions", "show", id]);
    ["capturedTraces", "capturedMetrics", "capturedLogs"].map(|field| show[field].as_u64().unwrap())
}

/// A running `otlp-tape capture` with its OTLP/gRPC receiver on a free
/// port; [`stop`](Self::stop) ends it with SIGTERM, as a user does. A test
/// that fails before kills it.
struct Capture {
    /// The process, until it is stopped.
    child: Option<Child>,
    grpc: String,
    /// Its stdout after the listening line (its summary at the end).
    stdout: Option<BufReader<std::process::ChildStdout>>,
    /// Its stderr, read to the end so that it never blocks on a full pipe.
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Capture {
    fn start(store: &Path, id: &str) -> Capture {
        let mut command = Command::new(assert_cmd::cargo::cargo_bin("otlp-tape"));
        command.arg("--store").arg(store).arg("capture").args(["--grpc", "127.0.0.1:0", "--http", "off"]);
        command.args(["--session-id", id]);
        for name in ["OTLP_TAPE_STORE", "CAPTURE_MAX_SIZE_MB", "CAPTURE_MAX_DURATION_MINUTES", "OTLP_TAPE_SPOOL_DIR"] {
            command.env_remove(name);
        }
        let mut child = command.current_dir(store).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            BufReader::new(stderr).lines().map_while(Result::ok).collect::<Vec<_>>().join("\n")
        });
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut capture = Capture { child: Some(child), grpc: String::new(), stdout: None, stderr: Some(stderr) };
        // Port 0: the first line on stdout says where it listens.
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        let listening: Value =
            serde_json::from_str(&first).unwrap_or_else(|_| panic!("not the capture's listening line: {first:?}"));
        capture.grpc = format!("http://{}", listening["grpc"].as_str().unwrap());
        capture.stdout = Some(stdout);
        capture
    }

    /// SIGTERM, then the exit: the session is complete once this returns.
    fn stop(mut self) {
        let (mut child, mut stdout) = (self.child.take().unwrap(), self.stdout.take().unwrap());
        let pid = child.id();
        let status = Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
        assert!(status.success());
        let exited = crate::wait_within(pid, STOP_LIMIT, "the capture did not stop after SIGTERM", move || {
            std::io::Read::read_to_string(&mut stdout, &mut String::new()).unwrap();
            child.wait()
        });
        let exited = exited.unwrap();
        let stderr = self.stderr.take().unwrap().join().unwrap();
        assert!(exited.success(), "the capture failed ({exited}): {stderr}");
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // The test failed before stopping it: it must not outlive it.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `otlp-tape replay ARGS` of session `id` at full speed, one request at a
/// time, over gRPC to `endpoint`, writing its report to `report`; run off
/// the test's runtime, which keeps serving the pipeline meanwhile.
fn replay(store: &Path, id: &str, endpoint: &str, report: &Path, args: &[&str]) {
    let mut command = tape(store);
    command.args(["replay", "--session", id, "--speed", "max", "--endpoint", endpoint, "--protocol", "grpc"]);
    // One request at a time: the pipeline gets them in the session's order
    // and cuts the same batches every run.
    command.arg("--report").arg(report).args(["--concurrency", "1", "--no-progress"]).args(args);
    for name in ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL", "REPLAY_DEFAULT_SPEED"] {
        command.env_remove(name);
    }
    let output = tokio::task::block_in_place(|| command.output().unwrap());
    assert!(output.status.success(), "replay {args:?} failed: {}", stderr(&output));
}

/// What `otlp-tape --output json compare ARGS` said: its exit code, its
/// stdout as JSON (when it is), its stderr.
struct Compared {
    code: i32,
    comparison: Value,
    stderr: String,
}

fn compare(store: &Path, args: &[&str]) -> Compared {
    let mut command = tape(store);
    command.args(["--output", "json", "compare"]).args(args);
    let output = tokio::task::block_in_place(|| command.output().unwrap());
    Compared {
        code: output.status.code().expect("compare exited on its own"),
        comparison: serde_json::from_slice(&output.stdout).unwrap_or(Value::Null),
        stderr: stderr(&output),
    }
}

impl Compared {
    /// Asserts the exit code, showing what compare said when it differs.
    fn exits(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "{}\n{:#}", self.stderr, self.comparison);
        self
    }

    /// The counts of `signal`.
    fn counts(&self, signal: Signal) -> &Value {
        let signals = self.comparison["signals"].as_array().unwrap_or_else(|| panic!("{:#}", self.comparison));
        &signals.iter().find(|compared| compared["signal"] == signal.as_str()).unwrap()["counts"]
    }

    fn count(&self, signal: Signal, field: &str) -> u64 {
        self.counts(signal)[field].as_u64().unwrap_or_else(|| panic!("{signal} {field}: {:#}", self.comparison))
    }

    /// The attribute changes as (signal, location, key, change, items,
    /// allowed), sorted.
    fn attribute_changes(&self) -> Vec<(String, String, String, String, u64, bool)> {
        let mut changes: Vec<_> = (self.comparison["attributeChanges"].as_array().unwrap().iter())
            .map(|change| {
                let text = |field: &str| change[field].as_str().unwrap().to_owned();
                let items = change["items"].as_u64().unwrap();
                (text("signal"), text("location"), text("key"), text("change"), items, change["allowed"] == true)
            })
            .collect();
        changes.sort();
        changes
    }
}

/// Seeds `seed`, starts capture `delivered` behind a pipeline built by
/// `pipeline`, replays the seed through it with `replay_args` (report in
/// `replay.json`), flushes and stops both, and returns what the pipeline
/// counted and the report's path.
async fn through_pipeline(
    store: &Path,
    replay_args: &[&str],
    pipeline: impl FnOnce(RebatcherBuilder) -> RebatcherBuilder,
) -> (RebatchCounts, PathBuf) {
    seed(store, "seed", "7");
    let capture = Capture::start(store, "delivered");
    let rebatcher = pipeline(Rebatcher::builder(&capture.grpc).batch_items(BATCH_ITEMS)).start().await.unwrap();
    let report = store.join("replay.json");
    replay(store, "seed", rebatcher.endpoint(), &report, replay_args);
    rebatcher.flush().await.unwrap();
    let counts = rebatcher.stop().await.unwrap();
    tokio::task::block_in_place(|| capture.stop());

    // The pipeline did re-batch: the capture's requests are not the seed's.
    let expected = items_of(store, "seed");
    for (index, signal) in Signal::ALL.into_iter().enumerate() {
        assert_eq!(counts.items_received.get(signal), expected[index], "{signal}: the pipeline got the whole seed");
        assert_ne!(counts.requests_forwarded.get(signal), counts.requests_received.get(signal), "{signal}");
        assert!(counts.requests_merged.get(signal) > 0, "{signal}: {counts:?}");
        assert!(counts.resources_split.get(signal) > 0, "{signal}: {counts:?}");
    }
    assert_eq!(items_of(store, "delivered"), Signal::ALL.map(|signal| counts.items_forwarded.get(signal)));
    (counts, report)
}

/// Replays a seed with `replay_args` through a pipeline that loses and
/// changes nothing, and checks that compare finds every item of every
/// signal delivered identical, every trace complete.
async fn through_a_lossless_pipeline(store: &Path, replay_args: &[&str]) -> Compared {
    let (counts, report) = through_pipeline(store, replay_args, |pipeline| pipeline).await;
    let compared = compare(store, &["seed", "delivered", "--replay-report", report.to_str().unwrap()]);
    compared.exits(0);
    let comparison = &compared.comparison;
    assert_eq!(comparison["verdict"]["passed"], true);
    for signal in Signal::ALL {
        let expected = counts.items_received.get(signal);
        assert!(expected > 0, "{signal}");
        for (field, count) in [("expected", expected), ("delivered", expected), ("identical", expected)] {
            assert_eq!(compared.count(signal, field), count, "{signal} {field}");
        }
        for field in ["changed", "missing", "unexpected", "duplicates"] {
            assert_eq!(compared.count(signal, field), 0, "{signal} {field}");
        }
    }
    assert!(compared.attribute_changes().is_empty(), "{:#}", comparison["attributeChanges"]);
    assert_eq!(comparison["fieldChanges"], serde_json::json!([]));
    let traces = &comparison["traces"];
    assert_eq!(traces["expected"], counts.traces_received);
    assert_eq!(traces["complete"], counts.traces_received);
    for field in ["incomplete", "dropped", "unexpected"] {
        assert_eq!(traces[field], 0, "traces {field}");
    }
    assert_ne!(comparison["expected"]["records"], comparison["actual"]["records"]);
    assert_eq!(comparison["expected"]["sessionId"], "seed");
    assert_eq!(comparison["actual"]["sessionId"], "delivered");
    compared
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebatching_pipeline_that_loses_nothing_delivers_every_item_identical() {
    let dir = tempfile::tempdir().unwrap();
    let compared = through_a_lossless_pipeline(dir.path(), &["--timestamps", "none"]).await;
    let comparison = &compared.comparison;
    // Request boundaries and order are not part of the canonical hash.
    assert_eq!(comparison["expected"]["canonicalSha256"], comparison["actual"]["canonicalSha256"]);
    assert_eq!(comparison["shift"]["mode"], "none");
    assert_eq!(
        (comparison["shift"]["minNanos"].as_i64(), comparison["shift"]["maxNanos"].as_i64()),
        (Some(0), Some(0))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebatching_pipeline_keeps_every_records_shift_where_requests_merge() {
    let dir = tempfile::tempdir().unwrap();
    // Relative timestamps (the default): each record moves by its own
    // shift, and the pipeline puts items of records with different shifts
    // into one request.
    let compared = through_a_lossless_pipeline(dir.path(), &[]).await;
    let shift = &compared.comparison["shift"];
    assert_eq!(shift["mode"], "relative");
    assert!(shift["minNanos"].as_i64().unwrap() < shift["maxNanos"].as_i64().unwrap(), "{shift}");
    assert_eq!(shift["inconsistentItems"], 0);
    assert_eq!(shift["records"], compared.comparison["expected"]["records"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lossy_pipeline_is_reported_exactly_and_passes_once_its_changes_are_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    let (counts, report) = through_pipeline(store, &["--timestamps", "none"], |pipeline| {
        pipeline
            .drop_spans(10)
            .drop_traces(10)
            .add_resource_attribute(ADDED, "rebatcher")
            .delete_span_attribute(DELETED)
    })
    .await;
    assert!(counts.spans_dropped_singly > 0 && counts.traces_dropped_whole > 0, "{counts:?}");
    assert!(counts.traces_incomplete > 0 && counts.spans_changed > 0, "{counts:?}");
    let report = report.to_str().unwrap();

    let compared = compare(store, &["seed", "delivered", "--replay-report", report]);
    compared.exits(1);
    let comparison = &compared.comparison;
    assert_eq!(comparison["verdict"]["passed"], false);
    let missing_spans = counts.spans_dropped_singly + counts.spans_dropped_with_traces;
    for signal in Signal::ALL {
        let (expected, forwarded) = (counts.items_received.get(signal), counts.items_forwarded.get(signal));
        assert_eq!(compared.count(signal, "expected"), expected, "{signal}");
        assert_eq!(compared.count(signal, "delivered"), forwarded, "{signal}");
        // Every delivered item has the added resource attribute.
        assert_eq!(compared.count(signal, "changed"), forwarded, "{signal}");
        assert_eq!(compared.count(signal, "identical"), 0, "{signal}");
        assert_eq!(compared.count(signal, "missing"), if signal == Signal::Traces { missing_spans } else { 0 });
        assert_eq!(compared.count(signal, "unexpected"), 0, "{signal}");
    }
    let traces = &comparison["traces"];
    assert_eq!(traces["expected"], counts.traces_received);
    assert_eq!(traces["dropped"], counts.traces_dropped, "traces none of whose spans arrived");
    assert_eq!(traces["incomplete"], counts.traces_incomplete, "traces some of whose spans arrived");
    assert_eq!(traces["complete"], counts.traces_received - counts.traces_dropped - counts.traces_incomplete);
    assert_eq!(traces["unexpected"], 0);
    let added = |signal: Signal| {
        let items = counts.items_forwarded.get(signal);
        (signal.as_str().to_owned(), "resource".to_owned(), ADDED.to_owned(), "added".to_owned(), items, false)
    };
    let removed =
        ("traces".to_owned(), "span".to_owned(), DELETED.to_owned(), "removed".to_owned(), counts.spans_changed, false);
    let mut expected = vec![added(Signal::Traces), added(Signal::Metrics), added(Signal::Logs), removed];
    expected.sort();
    assert_eq!(compared.attribute_changes(), expected);
    assert_eq!(comparison["fieldChanges"], serde_json::json!([]));

    // The added key ignored, the deleted one allowed to change, and as many
    // spans allowed to be missing as the pipeline dropped: a pass.
    let share = f64::from(u32::try_from(missing_spans).unwrap())
        / f64::from(u32::try_from(counts.items_received.traces).unwrap());
    let max_missing = format!("{:.4}", share + 0.0001);
    let args = ["--ignore-attribute", ADDED, "--allow-change", DELETED, "--max-missing", &max_missing];
    let allowed = compare(store, &[&["seed", "delivered", "--replay-report", report][..], &args[..]].concat());
    allowed.exits(0);
    assert_eq!(allowed.comparison["verdict"]["passed"], true);
    assert_eq!(allowed.count(Signal::Traces, "missing"), missing_spans);
    assert_eq!(allowed.count(Signal::Traces, "changed"), counts.spans_changed);
    assert_eq!(allowed.count(Signal::Traces, "changedAllowed"), counts.spans_changed);
    for signal in [Signal::Metrics, Signal::Logs] {
        assert_eq!(allowed.count(signal, "identical"), counts.items_forwarded.get(signal), "{signal}");
    }
    let removed =
        ("traces".to_owned(), "span".to_owned(), DELETED.to_owned(), "removed".to_owned(), counts.spans_changed, true);
    assert_eq!(allowed.attribute_changes(), [removed]);

    // Less missing allowed than went missing: differences again.
    let too_strict = format!("{:.4}", share / 2.0);
    let args = ["--ignore-attribute", ADDED, "--allow-change", DELETED, "--max-missing", &too_strict];
    compare(store, &[&["seed", "delivered", "--replay-report", report][..], &args[..]].concat()).exits(1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn looped_replays_with_new_ids_compare_equal_only_with_their_report() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    seed(store, "seed", "7");
    let seed_items = items_of(store, "seed");
    let capture = Capture::start(store, "looped");
    let report = store.join("looped.json");
    let args = ["--loop", "--passes", "3", "--timestamps", "relative", "--id-seed", "7"];
    replay(store, "seed", &capture.grpc, &report, &args);
    tokio::task::block_in_place(|| capture.stop());
    assert_eq!(items_of(store, "looped"), seed_items.map(|items| 3 * items));
    let replayed: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(replayed["passes"], 3);
    assert_eq!(replayed["idSeed"], 7);

    let with_report = compare(store, &["seed", "looped", "--replay-report", report.to_str().unwrap()]);
    with_report.exits(0);
    for (index, signal) in Signal::ALL.into_iter().enumerate() {
        let expected = 3 * seed_items[index];
        assert_eq!(with_report.count(signal, "expected"), expected, "{signal}: every pass is expected");
        assert_eq!(with_report.count(signal, "identical"), expected, "{signal}");
        assert_eq!(with_report.count(signal, "unexpected") + with_report.count(signal, "missing"), 0, "{signal}");
    }
    // The page of `replay --report FILE.html` holds the same report.
    let page = store.join("looped.html");
    std::fs::write(&page, tape_web::replay_report_page(&replayed)).unwrap();
    let with_page = compare(store, &["seed", "looped", "--replay-report", page.to_str().unwrap()]);
    with_page.exits(0);
    assert_eq!(with_page.comparison["signals"], with_report.comparison["signals"]);
    assert_eq!(with_page.comparison["verdict"], with_report.comparison["verdict"]);
    let shift = &with_report.comparison["shift"];
    assert_eq!(shift["mode"], "relative");
    assert!(shift["minNanos"].as_i64().unwrap() <= shift["maxNanos"].as_i64().unwrap(), "{shift}");
    assert_eq!(with_report.comparison["expected"]["items"]["traces"], 3 * seed_items[0]);

    // Without the report nothing says that passes 2 and 3 are the seed's
    // spans under new ids: they match nothing.
    let without = compare(store, &["seed", "looped"]);
    without.exits(1);
    assert_eq!(without.count(Signal::Traces, "expected"), seed_items[0]);
    assert_eq!(without.count(Signal::Traces, "delivered"), 3 * seed_items[0]);
    assert_eq!(without.count(Signal::Traces, "unexpected"), 2 * seed_items[0], "passes 2 and 3: other ids");
    assert_eq!(without.count(Signal::Traces, "missing"), 0, "pass 1 kept the recorded ids");
    assert_eq!(
        without.comparison["traces"]["unexpected"],
        2 * without.comparison["traces"]["expected"].as_u64().unwrap()
    );
    assert_eq!(without.comparison["verdict"]["passed"], false);
    let unexpected = without.comparison["differences"].as_array().unwrap();
    assert!(unexpected.iter().any(|difference| difference["kind"] == "unexpected" && difference["signal"] == "traces"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_by_name_and_a_session_equals_itself() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    seed(store, "seed", "7");
    seed(store, "other", "8");

    // A session compared with itself: every item identical.
    let itself = compare(store, &["seed", "seed"]);
    itself.exits(0);
    let seed_items = items_of(store, "seed");
    for (index, signal) in Signal::ALL.into_iter().enumerate() {
        assert_eq!(itself.count(signal, "identical"), seed_items[index], "{signal}");
        assert_eq!(itself.count(signal, "expected"), seed_items[index], "{signal}");
    }

    // A session that is not there.
    let missing = compare(store, &["seed", "no-such-session"]);
    missing.exits(2);
    assert!(missing.stderr.contains("no-such-session"), "{}", missing.stderr);

    // The report of a replay of another session.
    let target = OtlpTarget::start(OtlpTargetOptions::default()).await;
    let report = store.join("other.json");
    replay(store, "other", target.grpc_endpoint(), &report, &[]);
    let report = report.to_str().unwrap();
    let foreign = compare(store, &["seed", "seed", "--replay-report", report]);
    foreign.exits(2);
    for name in ["other.json", "other", "seed"] {
        assert!(foreign.stderr.contains(name), "{name} in {}", foreign.stderr);
    }

    // Files that are no replay report: a session's metadata, not JSON, none.
    let metadata = store.join("sessions").join("seed").join("metadata.json");
    let text = store.join("notes.txt");
    std::fs::write(&text, "not a report").unwrap();
    let absent = store.join("absent.json");
    for file in [&metadata, &text, &absent] {
        let refused = compare(store, &["seed", "seed", "--replay-report", file.to_str().unwrap()]);
        refused.exits(2);
        let name = file.file_name().unwrap().to_str().unwrap();
        assert!(refused.stderr.contains(name), "{name} in {}", refused.stderr);
    }
}
