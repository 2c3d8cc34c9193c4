//! `otlp-tape replay --shard I/N`: three real replay processes, run at
//! once, into one OTLP target send exactly what one process sends, each
//! item once, every trace from one shard, logs with their trace.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Output;

use prost::Message;
use serde_json::Value;
use tape_otlp::{ExportRequest, Signal};
use tape_testkit::otlp_target::{OtlpTarget, OtlpTargetOptions, ReceivedRequest};

use crate::replay::{SEED_ITEMS, replay, run_to_end, seed, stderr};

/// One item as received: its signal, where it was (resource, scope, and
/// for a data point its metric's name), its bytes, and its trace id (for
/// spans and log records with one).
pub(crate) type Item = (Signal, Vec<u8>, Vec<u8>, Option<Vec<u8>>);

/// A message's bytes; none for an absent one.
fn encoded(message: Option<&impl Message>) -> Vec<u8> {
    message.map(Message::encode_to_vec).unwrap_or_default()
}

/// Every item of `request`.
pub(crate) fn items(request: &ExportRequest) -> Vec<Item> {
    use tape_otlp::proto::metrics::v1::metric::Data;
    let trace = |id: &[u8]| id.iter().any(|&byte| byte != 0).then(|| id.to_vec());
    let mut items = Vec::new();
    match request {
        ExportRequest::Traces(request) => {
            for entry in &request.resource_spans {
                for scope in &entry.scope_spans {
                    let context = [encoded(entry.resource.as_ref()), encoded(scope.scope.as_ref())].concat();
                    for span in &scope.spans {
                        items.push((Signal::Traces, context.clone(), span.encode_to_vec(), trace(&span.trace_id)));
                    }
                }
            }
        }
        ExportRequest::Logs(request) => {
            for entry in &request.resource_logs {
                for scope in &entry.scope_logs {
                    let context = [encoded(entry.resource.as_ref()), encoded(scope.scope.as_ref())].concat();
                    for record in &scope.log_records {
                        items.push((Signal::Logs, context.clone(), record.encode_to_vec(), trace(&record.trace_id)));
                    }
                }
            }
        }
        ExportRequest::Metrics(request) => {
            for entry in &request.resource_metrics {
                for scope in &entry.scope_metrics {
                    for metric in &scope.metrics {
                        let context = [
                            encoded(entry.resource.as_ref()),
                            encoded(scope.scope.as_ref()),
                            metric.name.clone().into_bytes(),
                        ]
                        .concat();
                        let points: Vec<Vec<u8>> = match &metric.data {
                            Some(Data::Gauge(data)) => data.data_points.iter().map(Message::encode_to_vec).collect(),
                            Some(Data::Sum(data)) => data.data_points.iter().map(Message::encode_to_vec).collect(),
                            Some(Data::Histogram(data)) => {
                                data.data_points.iter().map(Message::encode_to_vec).collect()
                            }
                            Some(Data::ExponentialHistogram(data)) => {
                                data.data_points.iter().map(Message::encode_to_vec).collect()
                            }
                            Some(Data::Summary(data)) => data.data_points.iter().map(Message::encode_to_vec).collect(),
                            None => Vec::new(),
                        };
                        for point in points {
                            items.push((Signal::Metrics, context.clone(), point, None));
                        }
                    }
                }
            }
        }
    }
    items
}

/// The items a target received, sorted (a multiset), each with the shard
/// that sent it (its `x-shard` header).
pub(crate) fn received_items(received: &[ReceivedRequest]) -> Vec<(Item, Option<String>)> {
    let mut all: Vec<(Item, Option<String>)> = received
        .iter()
        .flat_map(|request| {
            let shard = request.header("x-shard").map(str::to_owned);
            items(&request.request()).into_iter().map(move |item| (item, shard.clone()))
        })
        .collect();
    all.sort();
    all
}

pub(crate) fn without_shards(items: &[(Item, Option<String>)]) -> Vec<Item> {
    items.iter().map(|(item, _)| item.clone()).collect()
}

/// The three shards of `args`, run at once as three processes, each with
/// its `x-shard` header; their JSON summaries, in shard order.
fn replay_shards(dir: &Path, args: &[&str]) -> Vec<Value> {
    let children: Vec<_> = (0..3)
        .map(|index| {
            let shard = format!("{index}/3");
            let header = format!("x-shard={index}");
            replay(dir, args)
                .args(["--shard", &shard, "--header", &header, "--output", "json", "--no-progress"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<Output> =
        tokio::task::block_in_place(|| children.into_iter().map(|child| child.wait_with_output().unwrap()).collect());
    outputs
        .iter()
        .map(|output| {
            assert!(output.status.success(), "a shard failed: {}", stderr(output));
            serde_json::from_slice(&output.stdout).unwrap()
        })
        .collect()
}

/// One process replaying `args` to `target`; its JSON summary.
fn replay_whole(dir: &Path, args: &[&str]) -> Value {
    let output = run_to_end(replay(dir, args).args(["--output", "json", "--no-progress"]));
    assert!(output.status.success(), "{}", stderr(&output));
    serde_json::from_slice(&output.stdout).unwrap()
}

fn sent_items(summary: &Value, signal: &str) -> u64 {
    summary["counts"][signal]["sentItems"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_shards_into_one_target_send_what_one_process_sends_each_trace_from_one_shard() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    seed(dir, "S");
    let shards_target = OtlpTarget::start(OtlpTargetOptions::default()).await;
    let whole_target = OtlpTarget::start(OtlpTargetOptions::default()).await;
    let common = ["--session", "S", "--speed", "max", "--timestamps", "none"];

    let whole = replay_whole(dir, &[&common[..], &["--endpoint", whole_target.http_endpoint()]].concat());
    let summaries = replay_shards(dir, &[&common[..], &["--endpoint", shards_target.http_endpoint()]].concat());

    let expected = without_shards(&received_items(&whole_target.received()));
    let received = received_items(&shards_target.received());
    assert_eq!(expected.len() as u64, SEED_ITEMS.iter().sum::<u64>(), "the single replay sent the whole seed");
    // The same multiset: no item twice, none missing.
    assert_eq!(without_shards(&received).len(), expected.len());
    assert!(without_shards(&received) == expected, "the shards' union differs from the single replay");

    // Every trace from one shard, its logs with it.
    let mut shard_of_trace: BTreeMap<Vec<u8>, BTreeSet<String>> = BTreeMap::new();
    let mut per_shard = BTreeMap::<String, u64>::new();
    for ((signal, _, _, trace), shard) in &received {
        let shard = shard.clone().expect("every request carries its shard's header");
        *per_shard.entry(shard.clone()).or_default() += 1;
        if let Some(trace) = trace
            && *signal == Signal::Traces
        {
            shard_of_trace.entry(trace.clone()).or_default().insert(shard);
        }
    }
    assert!(shard_of_trace.len() > 10, "the seed has traces");
    for (trace, shards) in &shard_of_trace {
        assert_eq!(shards.len(), 1, "trace {} went out from shards {shards:?}", hex::encode(trace));
    }
    let mut correlated = 0;
    for ((signal, _, _, trace), shard) in &received {
        if *signal == Signal::Logs
            && let Some(trace) = trace
            && let Some(shards) = shard_of_trace.get(trace)
        {
            correlated += 1;
            assert!(shards.contains(shard.as_ref().unwrap()), "a log record went out apart from its trace");
        }
    }
    assert!(correlated > 0, "the seed has logs with trace ids");
    assert_eq!(per_shard.len(), 3, "every shard sent something: {per_shard:?}");

    // The reports name their shard and count its items alone.
    for (index, summary) in summaries.iter().enumerate() {
        assert_eq!(summary["options"]["shard"], format!("{index}/3"));
        assert_eq!(summary["reason"], "finished");
    }
    for signal in ["traces", "metrics", "logs"] {
        let shards: u64 = summaries.iter().map(|summary| sent_items(summary, signal)).sum();
        assert_eq!(shards, sent_items(&whole, signal), "{signal}");
    }
    shards_target.shutdown().await;
    whole_target.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_with_one_id_seed_give_the_ids_of_one_process_over_two_passes() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    seed(dir, "S");
    let shards_target = OtlpTarget::start(OtlpTargetOptions::default()).await;
    let whole_target = OtlpTarget::start(OtlpTargetOptions::default()).await;
    let common = [
        "--session",
        "S",
        "--speed",
        "max",
        "--timestamps",
        "none",
        "--id-seed",
        "7",
        "--regenerate-ids",
        "--passes",
        "2",
    ];

    replay_whole(dir, &[&common[..], &["--endpoint", whole_target.http_endpoint()]].concat());
    replay_shards(dir, &[&common[..], &["--endpoint", shards_target.http_endpoint()]].concat());

    let expected = without_shards(&received_items(&whole_target.received()));
    let received = without_shards(&received_items(&shards_target.received()));
    assert_eq!(expected.len() as u64, 2 * SEED_ITEMS.iter().sum::<u64>());
    assert!(received == expected, "the shards' ids differ from one process's");
    // New ids indeed: none of the recorded trace ids went out.
    let recorded: BTreeSet<Vec<u8>> = crate::replay::stored(dir, "S")
        .iter()
        .filter(|(signal, _)| *signal == Signal::Traces)
        .flat_map(|(signal, body)| items(&ExportRequest::decode_protobuf(*signal, body).unwrap()))
        .filter_map(|(_, _, _, trace)| trace)
        .collect();
    assert!(received.iter().filter_map(|(_, _, _, trace)| trace.as_ref()).all(|trace| !recorded.contains(trace)));
    shards_target.shutdown().await;
    whole_target.shutdown().await;
}

#[test]
fn dry_runs_of_the_shards_add_up_to_the_whole_plan() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    seed(dir, "S");
    let plan = |extra: &[&str]| -> Value {
        let output = replay(dir, &["--session", "S", "--dry-run", "--output", "json"]).args(extra).output().unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
        serde_json::from_slice(&output.stdout).unwrap()
    };
    let whole = plan(&[]);
    let shards: Vec<Value> = (0..3).map(|index| plan(&["--shard", &format!("{index}/3")])).collect();
    for signal in ["traces", "metrics", "logs"] {
        let items: u64 = shards.iter().map(|plan| plan["records"][signal]["items"].as_u64().unwrap()).sum();
        assert_eq!(items, whole["records"][signal]["items"].as_u64().unwrap(), "{signal}");
    }
    assert!(shards[1]["selection"].as_str().unwrap().ends_with("; shard 1/3"), "{}", shards[1]["selection"]);
    assert_eq!(shards[2]["options"]["shard"], "2/3");
}

#[test]
fn bad_shards_and_start_times_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    for (args, fragment) in [
        (
            &["--shard", "3/3"][..],
            "invalid value '3/3' for '--shard <I/N>': the index must be below the count (0 to 2)",
        ),
        (&["--shard", "0/0"][..], "invalid value '0/0' for '--shard <I/N>': the count must be 1 to 1024, not 0"),
        (&["--shard", "x"][..], "invalid value 'x' for '--shard <I/N>': expected I/N"),
        (&["--shard", "-1/2"][..], "expected I/N"),
        (
            &["--start-at", "yesterday"][..],
            "invalid value 'yesterday' for '--start-at <RFC3339>': expected an RFC 3339",
        ),
        (
            &["--shard", "18446744073709551616/2"][..],
            "the index must be below the count (0 to 1), not 18446744073709551616",
        ),
        (&["--shard", "1/-3"][..], "invalid value '1/-3' for '--shard <I/N>': expected I/N"),
        (&["--shard", "1/3/4"][..], "expected I/N"),
        (&["--shard", ""][..], "invalid value '' for '--shard <I/N>': expected I/N"),
        (
            &["--start-at", "2026-12-04T22:00:00"][..],
            "invalid value '2026-12-04T22:00:00' for '--start-at <RFC3339>': 2026-12-04T22:00:00 has no time zone",
        ),
        (&["--start-at", "9999-12-31T23:59:59Z"][..], "9999-12-31T23:59:59Z is out of range"),
        (&["--start-at", "1969-12-31T23:59:59Z"][..], "1969-12-31T23:59:59Z is out of range"),
        (
            &["--shard", "0/2", "--strategy", "random"][..],
            "--shard 0/2 cannot be used with --strategy random: every shard must replay the same session",
        ),
    ] {
        let output = replay(dir, args).arg("--dry-run").output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", stderr(&output));
        assert!(stderr(&output).contains(fragment), "{args:?}: {}", stderr(&output));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_refuses_a_bad_shard_with_400_and_reports_a_good_one() {
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path(), "S");
    let served = crate::serve::Served::start(dir.path(), &[]);
    let post = reqwest::Method::POST;
    for (body, fragment) in [
        (serde_json::json!({"session": "S", "shard": "3/3"}), "the index must be below the count (0 to 2), not 3"),
        (serde_json::json!({"session": "S", "shard": "0/0"}), "the count must be 1 to 1024, not 0"),
        (serde_json::json!({"session": "S", "startAt": "yesterday"}), "expected an RFC 3339 time"),
        (
            serde_json::json!({"session": "auto", "strategy": "random", "shard": "1/2"}),
            "--shard 1/2 cannot be used with --strategy random",
        ),
    ] {
        let (status, answer) = served.call(post.clone(), "/api/v1/replays", Some(body.clone())).await;
        assert_eq!(status, reqwest::StatusCode::BAD_REQUEST, "{body}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(fragment), "{body}: {message}");
    }
    let target = OtlpTarget::start(OtlpTargetOptions::default()).await;
    let body = serde_json::json!({"session": "S", "speed": "max", "shard": "1/2", "endpoint": target.http_endpoint()});
    let (status, started) = served.call(post, "/api/v1/replays", Some(body)).await;
    assert_eq!(status, reqwest::StatusCode::ACCEPTED, "{started}");
    let job = served.until_done(&format!("/api/v1/replays/{}", started["id"].as_str().unwrap())).await;
    assert_eq!(job["report"]["options"]["shard"], "1/2", "{job}");
    let sent = job["report"]["counts"]["total"]["sentItems"].as_u64().unwrap();
    assert!(sent > 0 && sent < SEED_ITEMS.iter().sum::<u64>(), "half of the seed or so: {sent}");
    target.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_with_a_shards_report_expects_that_shards_items_alone() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    seed(dir, "S");
    let served = crate::serve::Served::start(dir, &[]);
    let post = reqwest::Method::POST;
    let (status, capture) =
        served.call(post.clone(), "/api/v1/captures", Some(serde_json::json!({"sessionId": "delivered"}))).await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{capture}");
    let report = dir.join("shard.json");
    let args =
        ["--session", "S", "--shard", "1/3", "--speed", "max", "--timestamps", "none", "--endpoint", &served.http];
    let output = run_to_end(replay(dir, &args).arg("--report").arg(&report).arg("--no-progress"));
    assert!(output.status.success(), "{}", stderr(&output));
    let (status, _) = served.call(post, "/api/v1/captures/delivered/stop", None).await;
    assert_eq!(status, reqwest::StatusCode::ACCEPTED);
    assert_eq!(served.until_done("/api/v1/captures/delivered").await["state"], "completed");

    let compare = |extra: &[&str]| {
        let mut command = crate::tape(dir);
        command.args(["--output", "json", "compare", "S", "delivered"]).args(extra);
        let output = tokio::task::block_in_place(|| command.output().unwrap());
        (output.status.code(), serde_json::from_slice::<Value>(&output.stdout).unwrap_or(Value::Null), stderr(&output))
    };
    let (code, comparison, message) = compare(&["--replay-report", report.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{message}\n{comparison:#}");
    let sent: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    for signal in comparison["signals"].as_array().unwrap() {
        let name = signal["signal"].as_str().unwrap();
        let expected = signal["counts"]["expected"].as_u64().unwrap();
        assert_eq!(expected, sent_items(&sent, name), "{name}: the expected side is the shard's items");
        assert!(expected < SEED_ITEMS[Signal::ALL.iter().position(|s| s.as_str() == name).unwrap()]);
        assert_eq!(signal["counts"]["missing"], 0, "{name}");
    }
    // Without the report, the other shards' items are missing.
    let (code, _, _) = compare(&[]);
    assert_eq!(code, Some(1));
}
