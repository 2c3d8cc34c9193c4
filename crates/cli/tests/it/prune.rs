//! `sessions prune`: sessions are seeded with fixed start times in 2025, long
//! before the real clock's now, and their `createdAt` set to that start as
//! if they had been made then, or with `--start now`, so their ages are
//! known whatever day the tests run.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::{fails_with, tape, tape_json};

/// Seeds a small session `id` that starts at `start` (RFC 3339 or `now`)
/// and, unless `now`, records it as made then.
fn seed_at(store: &Path, id: &str, start: &str) {
    tape_json(store, &["seed", "--duration", "2s", "--rate", "2", "--seed", "7", "--start", start, "--session-id", id]);
    if start != "now" {
        set_field(store, id, "createdAt", start);
    }
}

/// Sets one field of a session's `metadata.json`.
fn set_field(store: &Path, id: &str, field: &str, value: &str) {
    crate::edit_metadata(store, id, |metadata| metadata[field] = Value::String(value.to_owned()));
}

/// The ids `sessions list` shows, in its order (oldest first).
fn listed(store: &Path) -> Vec<String> {
    let sessions = tape_json(store, &["sessions", "list"]);
    sessions.as_array().unwrap().iter().map(|session| session["sessionId"].as_str().unwrap().to_owned()).collect()
}

/// A session's `totalSizeBytes`.
fn size(store: &Path, id: &str) -> u64 {
    tape_json(store, &["sessions", "show", id])["totalSizeBytes"].as_u64().unwrap()
}

/// Runs `sessions prune ARGS` with the spool directory inside the store.
fn prune(store: &Path, args: &[&str]) -> Output {
    let spool = store.join("spool");
    tape(store).args(["sessions", "prune", "--spool-dir"]).arg(spool).args(args).output().unwrap()
}

/// Runs `sessions prune ARGS --output json`, which must succeed, and returns the report.
fn prune_json(store: &Path, args: &[&str]) -> Value {
    let output = prune(store, &[&["--output", "json"], args].concat());
    assert!(output.status.success(), "prune {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Runs `sessions prune ARGS --output json`, asserting that it deleted the
/// sessions `gone` and left `left` listed, and returns the report.
fn prunes(store: &Path, args: &[&str], gone: &[&str], left: &[&str]) -> Value {
    let report = prune_json(store, args);
    assert_eq!(deleted(&report), gone);
    assert_eq!(listed(store), left);
    report
}

/// The ids of a report's `deleted` list.
fn deleted(report: &Value) -> Vec<&str> {
    report["deleted"].as_array().unwrap().iter().map(|decision| decision["sessionId"].as_str().unwrap()).collect()
}

#[test]
fn dry_run_lists_the_old_sessions_and_the_real_run_deletes_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    for (id, start) in
        [("old-a", "2025-01-01T00:00:00Z"), ("old-b", "2025-02-01T00:00:00Z"), ("new-a", "now"), ("new-b", "now")]
    {
        seed_at(store, id, start);
    }
    let old_bytes = size(store, "old-a") + size(store, "old-b");

    let report = prune_json(store, &["--older-than", "30d", "--dry-run"]);
    assert_eq!(deleted(&report), ["old-a", "old-b"]);
    assert_eq!(report["dryRun"], true);
    assert_eq!(report["kept"], 2);
    assert_eq!(report["freedBytes"], old_bytes);
    assert_eq!(report["failed"], serde_json::json!([]));
    assert_eq!(report["deleted"][0]["reason"], "older than 30d");
    assert_eq!(report["deleted"][0]["sessionType"], "seed");
    assert_eq!(report["deleted"][0]["startTime"], "2025-01-01T00:00:00Z");
    assert_eq!(report["deleted"][0]["sizeBytes"], size(store, "old-a"));
    assert_eq!(listed(store).len(), 4, "a dry run deletes nothing");

    let text = prune(store, &["--older-than", "30d", "--dry-run"]);
    assert!(text.status.success());
    let text = String::from_utf8(text.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("would delete old-a seed     2025-01-01T00:00:00Z"), "{text}");
    assert!(lines[0].ends_with("older than 30d"), "{text}");
    assert!(lines[1].starts_with("would delete old-b"), "{text}");
    assert!(lines[2].starts_with("Would delete 2 sessions") && lines[2].contains("keep 2 sessions"), "{text}");
    assert_eq!(listed(store).len(), 4);

    let text = prune(store, &["--older-than", "30d"]);
    assert!(text.status.success());
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.lines().next().unwrap().starts_with("deleted      old-a"), "{text}");
    assert!(text.lines().last().unwrap().starts_with("Deleted 2 sessions"), "{text}");
    assert_eq!(listed(store), ["new-a", "new-b"]);
    assert!(!store.join("sessions/old-a").exists());

    // Nothing is left to prune.
    let report = prune_json(store, &["--older-than", "30d"]);
    assert_eq!(deleted(&report), Vec::<&str>::new());
    assert_eq!(report["kept"], 2);
}

/// Finding 11: a seed starts on its virtual clock (2026-01-01 by default),
/// but its age is counted from when it was made.
#[test]
fn a_seed_made_now_is_not_older_than_an_hour_whatever_its_virtual_start() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    // A capture made a day ago (an import standing in for it).
    crate::import_samples(store, "yesterdays-capture");
    let yesterday = (chrono::Utc::now() - chrono::Duration::days(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    set_field(store, "yesterdays-capture", "startTime", &yesterday);
    set_field(store, "yesterdays-capture", "createdAt", &yesterday);
    let before = chrono::Utc::now();
    tape_json(store, &["seed", "--duration", "2s", "--rate", "2", "--seed", "7", "--session-id", "fresh-seed"]);
    let metadata = tape_json(store, &["sessions", "show", "fresh-seed"]);
    assert_eq!(metadata["startTime"], "2026-01-01T00:00:00Z", "the virtual start is kept");
    let created = chrono::DateTime::parse_from_rfc3339(metadata["createdAt"].as_str().unwrap()).unwrap();
    assert!(created >= before && created <= chrono::Utc::now(), "{created}");

    let report = prune_json(store, &["--older-than", "1h", "--dry-run"]);
    assert_eq!(deleted(&report), ["yesterdays-capture"]);
    assert_eq!(report["deleted"][0]["createdAt"], yesterday.as_str());
    let report = prune_json(store, &["--keep-last", "1", "--dry-run"]);
    assert_eq!(deleted(&report), ["yesterdays-capture"]);
    // The seed is also the one replay's --strategy latest picks.
    let summary = tape_json(
        store,
        &["replay", "--session", "auto", "--strategy", "latest", "--dry-run", "--endpoint", "http://127.0.0.1:9"],
    );
    assert_eq!(summary["session"]["id"], "fresh-seed");

    prunes(store, &["--older-than", "1h"], &["yesterdays-capture"], &["fresh-seed"]);
}

#[test]
fn keep_last_keeps_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    for month in 1..=4 {
        seed_at(store, &format!("m{month}"), &format!("2025-0{month}-01T00:00:00Z"));
    }
    let report = prune_json(store, &["--keep-last", "2", "--dry-run"]);
    assert_eq!(deleted(&report), ["m1", "m2"]);
    assert_eq!(report["deleted"][0]["reason"], "not among the 2 newest");

    // With an age, keep-last shields the newest from it.
    prunes(store, &["--keep-last", "3", "--older-than", "30d"], &["m1"], &["m2", "m3", "m4"]);

    prunes(store, &["--keep-last", "1"], &["m2", "m3"], &["m4"]);
}

#[test]
fn max_total_size_deletes_the_oldest_until_every_session_fits() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    let ids = ["first", "second", "third", "a-capture"];
    for (id, start) in ids.iter().zip(["2025-01-01", "2025-02-01", "2025-03-01", "2024-01-01"]) {
        seed_at(store, id, &format!("{start}T00:00:00Z"));
    }
    set_field(store, "a-capture", "sessionType", "capture");
    let sizes: Vec<u64> = ids.iter().map(|id| size(store, id)).collect();

    // The capture is not pruned (--type seed) but its bytes count.
    let limit = (sizes[2] + sizes[3]).to_string();
    let report = prune_json(store, &["--max-total-size", &limit, "--type", "seed", "--dry-run"]);
    assert_eq!(deleted(&report), ["first", "second"]);
    assert_eq!(report["deleted"][0]["reason"], format!("over total size {limit}B"));
    assert_eq!(report["storedBytes"], sizes.iter().sum::<u64>());

    // Exactly at the limit is within it.
    let limit = (sizes[1] + sizes[2] + sizes[3]).to_string();
    prunes(store, &["--max-total-size", &limit, "--type", "seed"], &["first"], &["a-capture", "second", "third"]);

    // Large enough: nothing goes.
    let report = prune_json(store, &["--max-total-size", "1GB"]);
    assert_eq!(deleted(&report), Vec::<&str>::new());
}

#[test]
fn only_the_given_types_are_pruned() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    for (id, session_type) in [("old-seed", "seed"), ("old-capture", "capture"), ("old-training", "training")] {
        seed_at(store, id, "2025-01-01T00:00:00Z");
        set_field(store, id, "sessionType", session_type);
    }
    let report = prune_json(store, &["--older-than", "30d", "--type", "capture,training", "--dry-run"]);
    assert_eq!(deleted(&report), ["old-capture", "old-training"]);
    prunes(
        store,
        &["--older-than", "30d", "--type", "training", "--type", "seed"],
        &["old-seed", "old-training"],
        &["old-capture"],
    );
    let output = prune(store, &["--older-than", "30d", "--type", "bogus"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown session type"));
}

#[test]
fn active_locked_and_unreadable_sessions_are_never_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    seed_at(store, "plain-old", "2025-01-01T00:00:00Z");
    seed_at(store, "plain", "2025-01-02T00:00:00Z");
    seed_at(store, "broken", "2025-01-03T00:00:00Z");
    std::fs::write(store.join("sessions/broken/metadata.json"), "{ not json").unwrap();
    seed_at(store, "active", "2025-01-04T00:00:00Z");
    set_field(store, "active", "status", "active");
    seed_at(store, "locked", "2025-01-05T00:00:00Z");

    // Held as a running capture holds it: an exclusive lock on <spool>/.locks/<id>.lock.
    let locks = store.join("spool/.locks");
    std::fs::create_dir_all(&locks).unwrap();
    let lock = std::fs::File::create(locks.join("locked.lock")).unwrap();
    lock.try_lock().unwrap();
    std::fs::File::create(locks.join("released.lock")).unwrap();

    // Active and locked sessions are not among the newest that --keep-last counts either.
    for (args, expected) in [
        (&["--older-than", "1d"][..], &["plain-old", "plain"][..]),
        (&["--keep-last", "1"], &["plain-old"]),
        (&["--max-total-size", "0"], &["plain-old", "plain"]),
    ] {
        let report = prune_json(store, &[args, &["--dry-run"]].concat());
        assert_eq!(deleted(&report), expected, "{args:?}");
        assert_eq!(report["skipped"][0]["sessionId"], "broken", "{args:?}");
    }
    let report = prunes(store, &["--max-total-size", "0"], &["plain-old", "plain"], &["active", "locked"]);
    assert_eq!(report["kept"], 2);
    assert!(store.join("sessions/broken").exists());

    // Once the capture is over, its session can go.
    drop(lock);
    prunes(store, &["--max-total-size", "0"], &["locked"], &["active"]);
}

#[test]
fn a_policy_needs_a_criterion() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    seed_at(store, "old", "2025-01-01T00:00:00Z");
    for args in [&[][..], &["--dry-run"], &["--type", "seed"]] {
        let output = prune(store, args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        for flag in ["--older-than", "--keep-last", "--max-total-size"] {
            assert!(stderr.contains(flag), "{args:?}: {stderr}");
        }
    }
    assert_eq!(listed(store), ["old"]);
}

#[test]
fn bad_sizes_ages_and_counts_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    seed_at(store, "old", "2025-01-01T00:00:00Z");
    for (args, message) in [
        (&["--max-total-size", "50G"][..], "invalid size \"50G\""),
        (&["--max-total-size", "lots"], "invalid size \"lots\""),
        (&["--older-than", "30"], "invalid age \"30\": a number without a unit"),
        (&["--older-than", "30 days"], "invalid age \"30 days\""),
        (&["--keep-last", "0"], "--keep-last 0 would keep nothing"),
        (&["--keep-last", "two"], "invalid count \"two\""),
    ] {
        fails_with(tape(store).args(["sessions", "prune"]).args(args), 2, &[message]);
    }
    assert_eq!(listed(store), ["old"]);
}
