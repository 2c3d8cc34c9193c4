//! A shard of a sharded replay under faults: killed with SIGKILL and
//! resumed from its checkpoint, resumed with another shard's options.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;

use serde_json::Value;
use tape_testkit::otlp_target::{OtlpTarget, OtlpTargetOptions, ReceivedRequest};

use crate::replay::{SEED_ITEMS, replay, run_to_end, seed, stderr};
use crate::shard::{received_items, without_shards};

/// Requests a target received from shard `shard` (its `x-shard` header),
/// and how many of them it received more than once.
fn repeats_of(received: &[ReceivedRequest], shard: &str) -> (usize, usize) {
    let mut bodies: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
    for request in received.iter().filter(|request| request.header("x-shard") == Some(shard)) {
        *bodies.entry(request.body.to_vec()).or_default() += 1;
    }
    let total: usize = bodies.values().sum();
    (total, total - bodies.len())
}

fn kill(child: &std::process::Child) {
    let status = std::process::Command::new("kill").args(["-KILL", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
}

/// One shard `index` of 3 with `args`, run to its end; its JSON summary.
fn run_shard(dir: &Path, args: &[&str], index: usize) -> Value {
    let shard = format!("{index}/3");
    let header = format!("x-shard={index}");
    let output = run_to_end(replay(dir, args).args([
        "--shard",
        &shard,
        "--header",
        &header,
        "--output",
        "json",
        "--no-progress",
    ]));
    assert!(output.status.success(), "shard {shard}: {}", stderr(&output));
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_killed_and_resumed_delivers_its_part_with_at_most_the_concurrency_twice() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    seed(dir, "S");
    let target = OtlpTarget::start(OtlpTargetOptions::default()).await;
    // One request in flight at most: a resume may send one request twice.
    let common = [
        "--session",
        "S",
        "--speed",
        "max",
        "--timestamps",
        "none",
        "--concurrency",
        "1",
        "--endpoint",
        target.http_endpoint(),
    ];
    let checkpointed = [&common[..], &["--checkpoint", "shard-1.json"]].concat();

    let mut command = replay(dir, &checkpointed);
    command.args(["--shard", "1/3", "--header", "x-shard=1", "--no-progress"]);
    let child = command.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    target.wait_for(30).await;
    kill(&child);
    let killed = tokio::task::block_in_place(|| child.wait_with_output().unwrap());
    assert_eq!(killed.status.code(), None, "SIGKILL ended it");
    let before = target.received().len();

    // Another shard, or the same index of another count, is refused as a
    // wrong command line, naming what differs.
    for (shard, fragment) in [("0/3", "shard 1/3 (now 0/3)"), ("1/2", "shard 1/3 (now 1/2)")] {
        let output = run_to_end(replay(dir, &checkpointed).args(["--resume", "--shard", shard]));
        assert_eq!(output.status.code(), Some(2), "{shard}: {}", stderr(&output));
        assert!(stderr(&output).contains(fragment), "{shard}: {}", stderr(&output));
    }

    let resumed = run_shard(dir, &[&checkpointed[..], &["--resume"]].concat(), 1);
    assert_eq!(resumed["reason"], "finished", "{resumed}");
    run_shard(dir, &common, 0);
    run_shard(dir, &common, 2);

    let received = target.received();
    let (sent, repeats) = repeats_of(&received, "1");
    eprintln!("shard 1/3: {sent} requests, {repeats} of them twice, after SIGKILL at {before} requests");
    assert!(repeats <= 1, "{repeats} requests of the killed shard went twice; at most the one in flight may");

    // Every item of the session went out, from one of the shards.
    let mut items = without_shards(&received_items(&received));
    items.dedup();
    assert_eq!(items.len() as u64, SEED_ITEMS.iter().sum::<u64>(), "the shards' union is the session");
    target.shutdown().await;
}

/// A loopback URL where nothing listens.
fn closed_endpoint() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{address}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_whose_target_fails_retries_or_fails_loudly_and_resumes_while_the_others_deliver() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    seed(dir, "S");
    let target = OtlpTarget::start(OtlpTargetOptions::default()).await;
    let common = ["--session", "S", "--speed", "max", "--timestamps", "none", "--endpoint", target.http_endpoint()];

    // Shard 0: its target answers 503 to its first 6 requests, then
    // recovers: the retries deliver everything and the report counts them.
    target.fail_next(6, tape_testkit::otlp_target::Failure::Http(503, None));
    let first = run_shard(dir, &common, 0);
    assert_eq!(first["reason"], "finished", "{first}");
    assert!(first["counts"]["total"]["retries"].as_u64().unwrap() >= 6, "{first}");
    assert_eq!(first["counts"]["total"]["failedRecords"], 0, "{first}");

    // Shard 1: nothing listens (connection refused): it fails, says so
    // with exit code 1, and keeps its checkpoint.
    let dead = closed_endpoint();
    let shard = ["--shard", "1/3", "--header", "x-shard=1", "--no-progress", "--checkpoint", "shard-1.json"];
    let failed = run_to_end(
        replay(dir, &["--session", "S", "--speed", "max", "--timestamps", "none", "--max-attempts", "2"])
            .args(["--endpoint", &dead, "--report", "failed.json"])
            .args(shard),
    );
    assert_eq!(failed.status.code(), Some(1), "{}", stderr(&failed));
    assert!(stderr(&failed).contains(&dead), "the message names the target: {}", stderr(&failed));
    let report: Value = serde_json::from_slice(&std::fs::read(dir.join("failed.json")).unwrap()).unwrap();
    assert_eq!(report["reason"], "failed", "{report}");
    assert_eq!(report["options"]["shard"], "1/3", "{report}");
    assert!(report["error"].as_str().is_some_and(|error| error.contains(&dead)), "{report}");
    assert!(report["counts"]["total"]["failedRecords"].as_u64().unwrap() >= 1, "{report}");

    // The target is back: the resume delivers the shard's part.
    let resumed =
        run_to_end(replay(dir, &[&common[..], &["--resume"]].concat()).args(shard).args(["--output", "json"]));
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    // Shard 2 over OTLP/gRPC: UNAVAILABLE is retried the same way.
    target.fail_next(6, tape_testkit::otlp_target::Failure::Grpc(tonic::Code::Unavailable, None));
    let grpc = ["--session", "S", "--speed", "max", "--timestamps", "none", "--protocol", "grpc"];
    let last = run_shard(dir, &[&grpc[..], &["--endpoint", target.grpc_endpoint()]].concat(), 2);
    assert_eq!(last["reason"], "finished", "{last}");
    assert!(last["counts"]["total"]["retries"].as_u64().unwrap() >= 6, "{last}");

    let mut items = without_shards(&received_items(&target.received()));
    items.dedup();
    assert_eq!(items.len() as u64, SEED_ITEMS.iter().sum::<u64>(), "the shards' union is the session");
    target.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loop_whose_start_is_long_past_still_ends_when_its_duration_runs_out() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    seed(dir, "S");
    let target = OtlpTarget::start(OtlpTargetOptions::default()).await;
    // Thirty days of 20-second passes are due: far more than 2 s can send.
    let start = (chrono::Utc::now() - chrono::Duration::days(30)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut command =
        replay(dir, &["--session", "S", "--speed", "1", "--loop", "--duration", "2s", "--start-at", &start]);
    command.args(["--shard", "0/3", "--endpoint", target.http_endpoint(), "--output", "json", "--no-progress"]);
    let child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let pid = child.id();
    let output = crate::wait_within(
        pid,
        std::time::Duration::from_mins(1),
        "the replay ran on past its --duration",
        move || child.wait_with_output().unwrap(),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["reason"], "duration", "{summary}");
    assert!(stderr(&output).contains("records already due go at once"), "{}", stderr(&output));
    target.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_of_a_shard_with_another_start_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    seed(dir, "S");
    let start = "2026-01-01T00:00:00Z";
    let common = ["--session", "S", "--speed", "max", "--shard", "1/3", "--checkpoint", "shard-1.json"];
    // Nothing listens: the first request fails and the checkpoint stays.
    let failed = run_to_end(replay(dir, &common).args([
        "--start-at",
        start,
        "--max-attempts",
        "1",
        "--endpoint",
        &closed_endpoint(),
    ]));
    assert_eq!(failed.status.code(), Some(1), "{}", stderr(&failed));
    let target = OtlpTarget::start(OtlpTargetOptions::default()).await;
    // Its timestamps are those of the schedule of that start: a resume on
    // another schedule, or on none, would give the rest other ones.
    for (other, fragment) in [
        (&["--start-at", "2026-01-02T00:00:00Z"][..], "start-at 2026-01-01T00:00:00Z (now 2026-01-02T00:00:00Z)"),
        (&[][..], "start-at 2026-01-01T00:00:00Z (now none)"),
    ] {
        let output =
            run_to_end(replay(dir, &common).args(["--resume", "--endpoint", target.http_endpoint()]).args(other));
        assert_eq!(output.status.code(), Some(2), "{other:?}: {}", stderr(&output));
        assert!(stderr(&output).contains(fragment), "{other:?}: {}", stderr(&output));
    }
    assert!(target.received().is_empty(), "a refused resume sends nothing");
    let resumed =
        run_to_end(replay(dir, &common).args(["--resume", "--start-at", start, "--endpoint", target.http_endpoint()]));
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    target.shutdown().await;
}
