//! `seed`, `patterns` and the regeneration in `sessions verify`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use predicates::prelude::PredicateBooleanExt as _;
use predicates::str::contains;
use serde_json::{Value, json};

use crate::{fails_with, succeeds, tape, tape_json};

const BUILTIN: [&str; 5] = ["basic-topology", "payment-failure", "high-load", "complex-topology", "training-phases"];

/// A pattern file shipped in `patterns/`.
fn pattern_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../patterns").join(format!("{name}.yaml"))
}

/// Runs `seed` with `args` (short by default) and returns its JSON summary.
fn seed(store: &Path, args: &[&str]) -> Value {
    let mut all = vec!["seed"];
    if !args.contains(&"--duration") && !args.contains(&"--preset") {
        all.extend(["--duration", "5s"]);
    }
    if !args.contains(&"--rate") {
        all.extend(["--rate", "10"]);
    }
    all.extend(args);
    tape_json(store, &all)
}

fn metadata(store: &Path, id: &str) -> Value {
    tape_json(store, &["sessions", "show", id])
}

/// Seeds session `id` with `seed ARGS --session-id ID` and returns its metadata.
fn seeded(store: &Path, args: &[&str], id: &str) -> Value {
    seed(store, &[args, &["--session-id", id]].concat());
    metadata(store, id)
}

/// Every file under a session's `raw/`, by path relative to the session.
fn blob_files(store: &Path, id: &str) -> BTreeMap<String, Vec<u8>> {
    fn walk(dir: &Path, base: &Path, files: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, base, files);
            } else {
                let name = path.strip_prefix(base).unwrap().display().to_string();
                files.insert(name, std::fs::read(&path).unwrap());
            }
        }
    }
    let base = store.join("sessions").join(id);
    let mut files = BTreeMap::new();
    walk(&base.join("raw"), &base, &mut files);
    files
}

/// Asserts that the store holds no session, not even a partial one.
fn no_sessions(store: &Path) {
    let leftovers = store.join("sessions");
    if leftovers.exists() {
        let names: Vec<_> = std::fs::read_dir(leftovers).unwrap().map(|entry| entry.unwrap().file_name()).collect();
        assert!(names.is_empty(), "something was stored: {names:?}");
    }
}

fn verify(store: &Path, id: &str) -> (bool, Value) {
    let output = tape(store).args(["--output", "json", "sessions", "verify", id]).output().unwrap();
    (output.status.success(), serde_json::from_slice(&output.stdout).unwrap())
}

/// The `name` of each item of a JSON array.
fn names(items: &Value) -> Vec<&str> {
    items.as_array().unwrap().iter().map(|item| item["name"].as_str().unwrap()).collect()
}

/// Verifies session `id`, asserting that it passes and regenerates bit for bit.
fn verify_regenerates(store: &Path, id: &str) -> Value {
    let (ok, report) = verify(store, id);
    assert!(ok, "{report:#}");
    assert_eq!(report["regeneration"]["outcome"], "match");
    report
}

#[test]
fn the_same_seed_and_start_give_the_same_bytes_and_another_seed_does_not() {
    let one = tempfile::tempdir().unwrap();
    let two = tempfile::tempdir().unwrap();
    let args = ["--pattern", "payment-failure", "--seed", "42", "--start", "2026-03-01T12:00:00Z", "--session-id"];
    let first = seed(one.path(), &[&args[..], &["twin"]].concat());
    let second = seed(two.path(), &[&args[..], &["twin"]].concat());
    assert_eq!(first["contentHash"], second["contentHash"]);
    let blobs = blob_files(one.path(), "twin");
    assert!(blobs.len() >= 3, "{:?}", blobs.keys());
    assert!(blobs.keys().all(|key| key.starts_with("raw/2026-03-01/12/")), "{:?}", blobs.keys());
    assert_eq!(blobs, blob_files(two.path(), "twin"));
    let annotations = |store: &Path| std::fs::read(store.join("sessions/twin/annotations.jsonl")).unwrap();
    assert_eq!(annotations(one.path()), annotations(two.path()));
    let (one_metadata, two_metadata) = (metadata(one.path(), "twin"), metadata(two.path(), "twin"));
    for field in ["blobs", "parameters", "phases", "startTime", "endTime", "enabledFlags"] {
        assert_eq!(one_metadata[field], two_metadata[field], "{field}");
    }

    // The session id is not part of the blobs; the seed is.
    let renamed = seed(two.path(), &[&args[..], &["renamed"]].concat());
    assert_eq!(renamed["contentHash"], first["contentHash"]);
    let other = seed(two.path(), &["--pattern", "payment-failure", "--seed", "43", "--start", "2026-03-01T12:00:00Z"]);
    assert_ne!(other["contentHash"], first["contentHash"]);
    let later = seed(two.path(), &["--pattern", "payment-failure", "--seed", "42", "--start", "2026-03-01T12:00:01Z"]);
    assert_ne!(later["contentHash"], first["contentHash"]);
}

#[test]
fn counts_agree_with_the_blobs_and_verify_regenerates_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let summary = seed(dir.path(), &["--seed", "7", "--session-id", "counted"]);
    assert_eq!(summary["sessionId"], "counted");
    assert_eq!(summary["seed"], 7);
    assert_eq!(summary["traces"], 50);
    let metadata = metadata(dir.path(), "counted");
    assert_eq!(metadata["sessionType"], "seed");
    assert_eq!(metadata["status"], "completed");
    assert_eq!(metadata["startTime"], "2026-01-01T00:00:00Z");
    assert_eq!(metadata["parameters"]["generator"], "otlp-tape seed");
    assert_eq!(metadata["parameters"]["seed"], 7);
    assert_eq!(metadata["parameters"]["pattern"], "basic-topology");
    assert_eq!(metadata["parameters"]["duration"], "5s");
    assert_eq!(metadata["createdBy"].as_str().unwrap().split(' ').next_back(), Some("seed"));
    let items = ["capturedTraces", "capturedMetrics", "capturedLogs"].map(|field| metadata[field].as_u64().unwrap());
    assert!(items.iter().all(|count| *count > 0), "{items:?}");
    assert_eq!(summary["items"], json!({"traces": items[0], "metrics": items[1], "logs": items[2]}));

    // verify decodes every request and recounts its items, then regenerates.
    let report = verify_regenerates(dir.path(), "counted");
    assert_eq!(report["problems"], json!([]));
    assert_eq!(report["items"], items.iter().sum::<u64>());
    let requests = metadata["requestCounts"].as_object().unwrap().values().map(|n| n.as_u64().unwrap()).sum::<u64>();
    assert_eq!(report["regeneration"]["records"], requests);
    succeeds(
        tape(dir.path()).args(["sessions", "verify", "counted"]),
        &[&format!("Regenerated from seed 7: bit-for-bit match ({requests} records).")],
    );
}

#[test]
fn a_random_seed_is_recorded_and_reproduces_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let output = tape(dir.path()).args(["seed", "--duration", "3s", "--session-id", "lucky"]).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "lucky");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let seed = metadata(dir.path(), "lucky")["parameters"]["seed"].as_u64().unwrap();
    assert!(stderr.contains(&format!("with seed {seed}")), "{stderr}");
    assert!(stderr.contains("Stored in") && stderr.contains("Phases:"), "{stderr}");
    assert!(stderr.contains(&format!("Reproduce with: otlp-tape seed --pattern basic-topology --seed {seed}")));
    let again = seed_again(dir.path(), seed);
    assert_eq!(again["contentHash"], metadata(dir.path(), "lucky")["contentHash"]);
    assert!(verify(dir.path(), "lucky").0);
}

fn seed_again(store: &Path, seed: u64) -> Value {
    let seed = seed.to_string();
    tape_json(store, &["seed", "--duration", "3s", "--seed", &seed])
}

#[test]
fn start_now_uses_the_wall_clock_and_still_regenerates() {
    let dir = tempfile::tempdir().unwrap();
    let before = chrono::Utc::now() - chrono::Duration::seconds(1);
    let summary = seed(dir.path(), &["--start", "now", "--session-id", "live-ish", "--duration", "2s"]);
    let start = chrono::DateTime::parse_from_rfc3339(summary["start"].as_str().unwrap()).unwrap();
    assert!(start >= before && start <= chrono::Utc::now(), "{start}");
    assert_eq!(metadata(dir.path(), "live-ish")["parameters"]["start"], summary["start"]);
    verify_regenerates(dir.path(), "live-ish");
}

#[test]
fn payment_failure_has_three_phases_in_metadata_and_annotations() {
    let dir = tempfile::tempdir().unwrap();
    let metadata = seeded(dir.path(), &["--pattern", "payment-failure", "--duration", "6s"], "checkout");
    assert_eq!(metadata["sessionType"], "seed");
    let phases = metadata["phases"].as_array().unwrap();
    assert_eq!(names(&metadata["phases"]), ["baseline", "failure", "rampdown"]);
    assert_eq!(phases[0]["start"], "2026-01-01T00:00:00Z");
    assert_eq!(phases[0]["end"], "2026-01-01T00:00:02Z");
    assert_eq!(phases[1]["end"], "2026-01-01T00:00:04Z");
    assert_eq!(phases[2]["end"], "2026-01-01T00:00:06Z");
    assert_eq!(phases[0]["flags"], json!([]));
    assert!(!phases[1]["flags"].as_array().unwrap().is_empty());
    let mut flags: Vec<&Value> = phases.iter().flat_map(|phase| phase["flags"].as_array().unwrap()).collect();
    flags.sort_by_key(|flag| flag.as_str());
    flags.dedup();
    assert_eq!(metadata["enabledFlags"].as_array().unwrap().iter().collect::<Vec<_>>(), flags);

    let text = std::fs::read_to_string(dir.path().join("sessions/checkout/annotations.jsonl")).unwrap();
    let annotations: Vec<Value> = text.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!(annotations.len(), 3);
    for (annotation, phase) in annotations.iter().zip(phases) {
        let name = phase["name"].as_str().unwrap();
        assert_eq!(annotation["sessionId"], "checkout");
        assert_eq!(annotation["annotationType"], "test");
        assert_eq!(annotation["annotationKey"], format!("test.phase.{name}"));
        assert_eq!(annotation["timeRangeStart"], phase["start"]);
        assert_eq!(annotation["timeRangeEnd"], phase["end"]);
        assert_eq!(annotation["createdAt"], "2026-01-01T00:00:00Z");
        assert_eq!(annotation["createdBy"], "otlp-tape seed");
        let value = &annotation["annotationValue"];
        assert_eq!(
            (&value["sessionId"], &value["phase"], &value["flags"]),
            (&json!("checkout"), &json!(name), &phase["flags"])
        );
        assert!(value["description"].is_string());
    }
}

#[test]
fn training_phases_writes_a_training_session() {
    let dir = tempfile::tempdir().unwrap();
    let metadata = seeded(dir.path(), &["--pattern", "training-phases", "--preset", "quick"], "labelled");
    assert_eq!(metadata["sessionType"], "training");
    assert_eq!(metadata["parameters"]["duration"], "10s");
    assert_eq!(names(&metadata["phases"]), ["baseline", "degraded", "failure"]);
    let listed = tape_json(dir.path(), &["sessions", "list", "--type", "training"]);
    assert_eq!(listed[0]["sessionId"], "labelled");
}

#[test]
fn defaults_come_from_the_pattern_and_presets_set_the_duration() {
    let dir = tempfile::tempdir().unwrap();
    let summary = tape_json(dir.path(), &["seed", "--pattern", "payment-failure", "--rate", "5"]);
    assert_eq!(summary["duration"], "30s");
    let basic = tape_json(dir.path(), &["seed", "--preset", "basic", "--rate", "2"]);
    assert_eq!((&basic["duration"], &basic["rate"], &basic["errorRate"]), (&json!("30s"), &json!(2.0), &json!(0.05)));
    // A bare number is seconds, as in the earlier system.
    let bare = tape_json(dir.path(), &["seed", "--duration", "4", "--rate", "2", "--error-rate", "0"]);
    assert_eq!((&bare["duration"], &bare["errorRate"]), (&json!("4s"), &json!(0.0)));
}

#[test]
fn signals_selects_what_is_written() {
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path(), &["--signals", "traces", "--session-id", "spans-only"]);
    let blobs = blob_files(dir.path(), "spans-only");
    assert!(!blobs.is_empty());
    assert!(blobs.keys().all(|key| key.rsplit('/').next().unwrap().starts_with("traces-")), "{:?}", blobs.keys());
    let metadata = metadata(dir.path(), "spans-only");
    assert_eq!((&metadata["capturedMetrics"], &metadata["capturedLogs"]), (&json!(0), &json!(0)));
    assert_eq!(metadata["parameters"]["signals"], "traces");
    let (ok, report) = verify(dir.path(), "spans-only");
    assert!(ok, "{report:#}");
}

#[test]
fn a_pattern_file_works_and_is_regenerated_from_the_recorded_source() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mine.yaml");
    let text =
        std::fs::read_to_string(pattern_file("basic-topology")).unwrap().replace("name: basic-topology", "name: mine");
    std::fs::write(&file, &text).unwrap();
    let metadata = seeded(dir.path(), &["--pattern", file.to_str().unwrap()], "from-file");
    assert_eq!(metadata["parameters"]["pattern"], "mine");
    assert_eq!(metadata["parameters"]["patternSource"], text);
    std::fs::remove_file(&file).unwrap();
    verify_regenerates(dir.path(), "from-file");
}

#[test]
fn quiet_prints_only_the_session_id() {
    let dir = tempfile::tempdir().unwrap();
    let output = tape(dir.path()).args(["-q", "seed", "--duration", "2s", "--session-id", "hush"]).output().unwrap();
    assert!(output.status.success());
    assert_eq!(String::from_utf8_lossy(&output.stdout), "hush\n");
    assert!(output.stderr.is_empty(), "{}", String::from_utf8_lossy(&output.stderr));
}

#[test]
fn an_existing_session_is_neither_replaced_nor_removed() {
    let dir = tempfile::tempdir().unwrap();
    let first = seed(dir.path(), &["--seed", "1", "--session-id", "taken"]);
    fails_with(
        tape(dir.path()).args(["seed", "--duration", "2s", "--seed", "2", "--session-id", "taken"]),
        1,
        &["already exists"],
    );
    assert_eq!(metadata(dir.path(), "taken")["contentHash"], first["contentHash"]);
    assert!(verify(dir.path(), "taken").0);
}

#[test]
fn bad_input_is_refused_clearly_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let malformed = dir.path().join("broken-pattern.yaml");
    let text = std::fs::read_to_string(pattern_file("basic-topology")).unwrap();
    let line = text.lines().position(|line| line.trim() == "service: frontend").unwrap() + 1;
    std::fs::write(&malformed, text.replacen("service: frontend", "service: nowhere", 1)).unwrap();
    let malformed = malformed.to_str().unwrap();
    let location = format!("broken-pattern.yaml:{line}:");
    let cases: [(&[&str], i32, &str); 11] = [
        (&["--pattern", "no-such-pattern"], 1, "unknown pattern \"no-such-pattern\""),
        (&["--pattern", "no-such-pattern"], 1, &BUILTIN.join(", ")),
        (&["--pattern", malformed], 1, &location),
        (&["--pattern", malformed], 1, "unknown service \"nowhere\""),
        (&["--rate", "0"], 1, "the rate must be a number of traces per second above 0, not 0"),
        (&["--rate", "-1"], 1, "above 0, not -1"),
        (&["--duration", "0s"], 1, "the duration must be above zero"),
        (&["--error-rate", "1.5"], 1, "the error rate must be between 0 and 1"),
        (&["--signals", "traces,bogus"], 2, "unknown signal \"bogus\""),
        (&["--preset", "quick", "--duration", "5s"], 2, "cannot be used with"),
        (&["--start", "yesterday"], 2, "invalid start \"yesterday\""),
    ];
    for (args, code, message) in cases {
        tape(dir.path()).arg("seed").args(args).assert().code(code).stderr(contains(message));
        no_sessions(dir.path());
    }
    fails_with(tape(dir.path()).args(["seed", "--duration", "-5s"]), 2, &["invalid duration"]);
    no_sessions(dir.path());
}

#[test]
fn patterns_list_names_every_builtin_pattern() {
    let dir = tempfile::tempdir().unwrap();
    let listed = tape_json(dir.path(), &["patterns", "list"]);
    assert_eq!(names(&listed), BUILTIN);
    let payment = &listed[1];
    assert_eq!(payment["sessionType"], "seed");
    assert_eq!(payment["phases"], json!(["baseline", "failure", "rampdown"]));
    assert_eq!(payment["defaultDuration"], "30s");
    assert_eq!(listed[0]["defaultDuration"], "1m");
    assert_eq!(listed[4]["sessionType"], "training");
    let text = tape(dir.path()).args(["patterns", "list"]).output().unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.starts_with("PATTERN"), "{text}");
    assert!(
        text.lines().any(|line| line.starts_with("payment-failure") && line.contains("baseline, failure, rampdown"))
    );
}

#[test]
fn patterns_show_prints_the_yaml_or_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = std::fs::read_to_string(pattern_file("payment-failure")).unwrap();
    let shown = tape(dir.path()).args(["patterns", "show", "payment-failure"]).output().unwrap();
    assert!(shown.status.success());
    assert_eq!(String::from_utf8(shown.stdout).unwrap().trim_end(), yaml.trim_end());

    let summary = tape_json(dir.path(), &["patterns", "show", "payment-failure"]);
    assert_eq!(summary["name"], "payment-failure");
    assert_eq!(summary["source"], "built-in");
    let phases = summary["phases"].as_array().unwrap();
    let phases: Vec<(&str, &str)> =
        phases.iter().map(|p| (p["name"].as_str().unwrap(), p["duration"].as_str().unwrap())).collect();
    assert_eq!(phases, [("baseline", "10s"), ("failure", "10s"), ("rampdown", "10s")]);
    assert!(!summary["flags"].as_array().unwrap().is_empty());
    let services = names(&summary["services"]);
    assert!(services.contains(&"payment") && services.contains(&"frontend"), "{services:?}");
    assert!(summary["entrypoints"].as_array().unwrap().iter().all(|entry| entry["maxSpans"].as_u64().unwrap() >= 1));

    let file = pattern_file("basic-topology");
    let from_file = tape_json(dir.path(), &["patterns", "show", file.to_str().unwrap()]);
    assert_eq!(from_file["name"], "basic-topology");
    fails_with(
        tape(dir.path()).args(["patterns", "show", "nope"]),
        1,
        &["unknown pattern \"nope\"", "training-phases"],
    );
}

#[test]
fn patterns_validate_accepts_good_files_and_points_at_errors() {
    let dir = tempfile::tempdir().unwrap();
    for name in BUILTIN {
        let file = pattern_file(name);
        tape(dir.path())
            .args(["patterns", "validate"])
            .arg(&file)
            .assert()
            .success()
            .stdout(contains("valid").and(contains(format!("\"{name}\""))));
    }
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "name: bad\ndescription: x\nsession_type: sideways\n").unwrap();
    fails_with(
        tape(dir.path()).args(["patterns", "validate"]).arg(&bad),
        1,
        &["bad.yaml:3:15: session_type:", "expected `seed` or `training`"],
    );
    let report = tape(dir.path()).args(["--output", "json", "patterns", "validate"]).arg(&bad).output().unwrap();
    assert_eq!(report.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&report.stdout).unwrap();
    assert_eq!(report["valid"], false);
    assert!(report["error"].as_str().unwrap().contains("bad.yaml:3:15"), "{report}");
    let good = tape_json(dir.path(), &["patterns", "validate", pattern_file("payment-failure").to_str().unwrap()]);
    assert_eq!((&good["valid"], &good["name"]), (&json!(true), &json!("payment-failure")));
    fails_with(
        tape(dir.path()).args(["patterns", "validate"]).arg(dir.path().join("missing.yaml")),
        1,
        &["cannot read the pattern file"],
    );
}

#[test]
fn verify_reports_the_first_difference_from_the_regeneration() {
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path(), &["--seed", "5", "--session-id", "tampered"]);
    crate::edit_metadata(dir.path(), "tampered", |metadata| metadata["parameters"]["seed"] = json!(6));
    let (ok, report) = verify(dir.path(), "tampered");
    assert!(!ok);
    let regeneration = &report["regeneration"];
    assert_eq!(regeneration["outcome"], "difference");
    assert_eq!(regeneration["seed"], 6);
    let difference = &regeneration["difference"];
    assert_eq!((&difference["signal"], &difference["record"]), (&json!("traces"), &json!(0)));
    assert!(difference["receiveTime"].as_str().unwrap().starts_with("2026-01-01T00:00:0"), "{difference}");
    let problems = report["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "only the regeneration differs: {problems:?}");
    tape(dir.path())
        .args(["sessions", "verify", "tampered"])
        .assert()
        .code(1)
        .stdout(contains("MISMATCH regenerated from seed 6: first difference in traces record 0 (received 2026-01-01T"))
        .stderr(contains("failed verification"));

    // A different rate moves the receive times.
    crate::edit_metadata(dir.path(), "tampered", |metadata| {
        metadata["parameters"]["seed"] = json!(5);
        metadata["parameters"]["rate"] = json!(11.0);
    });
    let (ok, report) = verify(dir.path(), "tampered");
    assert!(!ok);
    assert_eq!(report["regeneration"]["outcome"], "difference");

    // An edited pattern source no longer matches its recorded hash.
    crate::edit_metadata(dir.path(), "tampered", |metadata| {
        metadata["parameters"]["rate"] = json!(10.0);
        let source = format!("{}\n# edited\n", metadata["parameters"]["patternSource"].as_str().unwrap());
        metadata["parameters"]["patternSource"] = json!(source);
    });
    let (ok, report) = verify(dir.path(), "tampered");
    assert!(!ok);
    assert_eq!(report["regeneration"]["outcome"], "failed");
    assert!(report["regeneration"]["message"].as_str().unwrap().contains("patternSha256"), "{report:#}");
}

#[test]
fn verify_finds_a_blob_swapped_for_another_seeds() {
    let dir = tempfile::tempdir().unwrap();
    // Same pattern, length and times, other seed: a blob of the same key
    // (the first metrics export is at the first 10 s interval for both).
    let args = ["--signals", "metrics", "--duration", "20s"];
    seed(dir.path(), &[&["--seed", "1", "--session-id", "original"][..], &args].concat());
    seed(dir.path(), &[&["--seed", "2", "--session-id", "donor"][..], &args].concat());
    let original = metadata(dir.path(), "original");
    let donor = metadata(dir.path(), "donor");
    assert_eq!(original["blobs"][0]["key"], donor["blobs"][0]["key"]);
    let key = original["blobs"][0]["key"].as_str().unwrap();
    let session = |id: &str| dir.path().join("sessions").join(id).join(key);
    std::fs::copy(session("donor"), session("original")).unwrap();
    // Make the metadata agree with the swapped blob, as a careful forger would.
    crate::edit_metadata(dir.path(), "original", |metadata| {
        metadata["blobs"] = donor["blobs"].clone();
        for field in
            ["capturedTraces", "capturedMetrics", "capturedLogs", "totalSizeBytes", "requestCounts", "contentHash"]
        {
            metadata[field] = donor[field].clone();
        }
    });
    let (ok, report) = verify(dir.path(), "original");
    assert!(!ok);
    assert_eq!(report["problems"].as_array().unwrap().len(), 1, "{report:#}");
    assert_eq!(report["regeneration"]["outcome"], "difference");
    assert_eq!(report["regeneration"]["difference"]["signal"], "metrics");
}

#[test]
fn verify_does_not_regenerate_another_generator_versions_session() {
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path(), &["--session-id", "old", "--duration", "2s"]);
    crate::edit_metadata(dir.path(), "old", |metadata| metadata["parameters"]["generatorVersion"] = json!(999));
    let (ok, report) = verify(dir.path(), "old");
    assert!(ok, "{report:#}");
    assert_eq!(report["regeneration"]["outcome"], "skipped");
    tape(dir.path()).args(["sessions", "verify", "old"]).assert().success().stdout(
        contains("intact").and(contains("Not regenerated: the session was made by seed generator version 999")),
    );
    // Sessions not made by the generator are not regenerated at all.
    crate::import_samples(dir.path(), "imported");
    let (ok, report) = verify(dir.path(), "imported");
    assert!(ok);
    assert!(report.get("regeneration").is_none(), "{report:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeds_on_s3_are_the_same_bytes_and_verify() {
    let server = tape_testkit::s3::S3TestServer::start().await;
    let store = format!("s3://{}/seeds", server.bucket());
    let local = tempfile::tempdir().unwrap();
    let (server, store) = (&server, store.as_str());
    tokio::task::block_in_place(|| {
        let args = ["seed", "--pattern", "payment-failure", "--duration", "3s", "--rate", "10", "--seed", "9"];
        let args = [&args[..], &["--session-id", "remote"]].concat();
        crate::s3::tape_s3(server, store).args(&args).assert().success();
        let local_summary = seed(local.path(), &["--pattern", "payment-failure", "--duration", "3s", "--seed", "9"]);
        let session = server.bucket_dir().join("seeds/sessions/remote");
        let metadata: Value = serde_json::from_slice(&std::fs::read(session.join("metadata.json")).unwrap()).unwrap();
        assert_eq!(metadata["contentHash"], local_summary["contentHash"]);
        let annotations = std::fs::read_to_string(session.join("annotations.jsonl")).unwrap();
        assert_eq!(annotations.lines().count(), 3);
        succeeds(crate::s3::tape_s3(server, store).args(["sessions", "verify", "remote"]), &["bit-for-bit match"]);
    });
}

#[test]
fn bench_seed_reports_what_it_generated_and_leaves_nothing_in_the_store() {
    let report =
        crate::bench::bench_report(&["seed", "--pattern", "basic-topology", "--duration", "3s", "--rate", "20"]);
    assert_eq!(report["pattern"], "basic-topology");
    assert_eq!(report["traces"], 60);
    // basic-topology traces have four spans each.
    assert_eq!(report["spans"], 240);
    assert!(report["items"].as_u64().unwrap() > 240, "metrics and logs too: {report}");
    assert!(report["storedBytes"].as_u64().unwrap() > 0);
    assert!(report["spansPerSecond"].as_f64().unwrap() > 0.0);
    if cfg!(target_os = "linux") {
        assert!(report["peakMemoryBytes"].as_u64().unwrap() > 0);
    }
}

/// `otlp-tape --store STORE --output json seed --live ARGS`, with nothing
/// from the environment of whoever runs the tests (no OTEL_EXPORTER_OTLP_*).
fn live_seed(store: &Path, args: &[&str]) -> std::process::Command {
    let mut command = std::process::Command::new(assert_cmd::cargo::cargo_bin("otlp-tape"));
    command.env_clear().arg("--store").arg(store).args(["--output", "json", "seed", "--live"]).args(args);
    command.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    command
}

/// Runs a command to its end off the async runtime.
async fn finish(mut command: std::process::Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap()
}

/// The session's records of each signal, in the order they were written.
async fn stored_records(store: &Path, id: &str) -> Vec<(tape_otlp::Signal, tape_session::Record)> {
    use futures::TryStreamExt;
    use tape_session::SessionStore;
    let store = tape_store::LocalStore::new(store);
    let metadata = store.read_metadata(&id.parse().unwrap()).await.unwrap();
    assert_eq!(metadata.status, tape_session::SessionStatus::Completed);
    tape_session::read_session(&store, &metadata, |_| true).try_collect().await.unwrap()
}

fn output_text(output: &std::process::Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_seed_sends_every_record_it_writes_byte_for_byte_and_in_order() {
    use tape_testkit::otlp_target::{OtlpTarget, OtlpTargetOptions};
    for protocol in ["grpc", "http/protobuf"] {
        let dir = tempfile::tempdir().unwrap();
        let target = OtlpTarget::start(OtlpTargetOptions::default()).await;
        let endpoint = if protocol == "grpc" { target.grpc_endpoint() } else { target.http_endpoint() };
        let before = chrono::Utc::now().timestamp_millis();
        let args = ["--endpoint", endpoint, "--protocol", protocol, "--pattern", "payment-failure", "--seed", "7"];
        let args =
            [&args[..], &["--duration", "3s", "--rate", "5", "--concurrency", "1", "--session-id", "live"]].concat();
        let output = finish(live_seed(dir.path(), &args)).await;
        assert!(output.status.success(), "{protocol}: {}", output_text(&output));
        let summary: Value = serde_json::from_slice(&output.stdout).unwrap();

        let written = stored_records(dir.path(), "live").await;
        let received = target.received();
        assert_eq!(received.len(), written.len(), "{protocol}: every written record arrives once");
        let live = &summary["live"];
        assert_eq!(live["target"], format!("{endpoint} ({protocol})"));
        assert_eq!(live["stoppedEarly"], false);
        for signal in tape_otlp::Signal::ALL {
            let name = signal.as_str();
            let sent: Vec<&[u8]> =
                received.iter().filter(|request| request.signal == signal).map(|request| &request.body[..]).collect();
            let stored: Vec<&[u8]> =
                written.iter().filter(|(s, _)| *s == signal).map(|(_, record)| &record.payload[..]).collect();
            assert!(!stored.is_empty(), "{protocol}: no {name}");
            assert!(sent == stored, "{protocol}: the {name} the target received are not the session's, in its order");
            assert_eq!(live["sent"][name], stored.len(), "{protocol}: {name}");
            assert_eq!(live["failed"][name], 0, "{protocol}: {name}");
            assert_eq!(summary["requests"][name], stored.len(), "{protocol}: {name}");
        }
        // One at a time, the target received them in the order they were
        // written: receive time never goes back.
        let mut next = [0_usize; 3];
        let times: Vec<u64> = received
            .iter()
            .map(|request| {
                let slot = tape_otlp::Signal::ALL.iter().position(|s| *s == request.signal).unwrap();
                let of_signal: Vec<_> = written.iter().filter(|(s, _)| *s == request.signal).collect();
                next[slot] += 1;
                of_signal[next[slot] - 1].1.receive_time_unix_nano
            })
            .collect();
        assert!(times.windows(2).all(|pair| pair[0] <= pair[1]), "{protocol}: sent out of order");

        // Live, the session starts now, so the target sees current times.
        let start = chrono::DateTime::parse_from_rfc3339(summary["start"].as_str().unwrap()).unwrap();
        let after = chrono::Utc::now().timestamp_millis();
        assert!((before..=after).contains(&start.timestamp_millis()), "{protocol}: start {start}");
        // A live session that ran to its end regenerates like any other.
        let metadata = metadata(dir.path(), "live");
        assert_eq!(metadata["parameters"]["live"], true);
        assert!(metadata["parameters"].get("liveStoppedEarly").is_none());
        let (ok, report) = verify(dir.path(), "live");
        assert!(ok && report["regeneration"]["outcome"] == "match", "{protocol}: {report:#}");
    }
}

#[test]
fn a_live_seed_to_an_unreachable_target_fails_clearly_and_still_writes_the_whole_session() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on a port that was just freed.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let args = ["--endpoint", endpoint.as_str(), "--duration", "2s", "--rate", "5", "--session-id", "unreachable"];
    let output = live_seed(dir.path(), &args).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", output_text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    let requests: u64 = ["traces", "metrics", "logs"].iter().map(|s| summary["requests"][s].as_u64().unwrap()).sum();
    assert!(
        stderr.contains(&format!(
            "error: {requests} of {requests} requests could not be sent to {endpoint} (http/protobuf): "
        )),
        "{stderr}"
    );
    assert!(stderr.contains("session unreachable is complete all the same"), "{stderr}");
    assert!(stderr.contains(&port.to_string()), "{stderr}");
    for signal in ["traces", "metrics", "logs"] {
        assert_eq!(summary["live"]["sent"][signal], 0);
        assert_eq!(summary["live"]["failed"][signal], summary["requests"][signal]);
    }
    // The session is whole: it regenerates bit for bit.
    let (ok, report) = verify(dir.path(), "unreachable");
    assert!(ok && report["regeneration"]["outcome"] == "match", "{report:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_stops_a_live_seed_and_leaves_a_completed_session_that_says_so() {
    use tape_testkit::otlp_target::{OtlpTarget, OtlpTargetOptions};
    let dir = tempfile::tempdir().unwrap();
    let target = OtlpTarget::start(OtlpTargetOptions::default()).await;
    let args = ["--endpoint", target.http_endpoint(), "--duration", "10m", "--rate", "10", "--session-id", "stopped"];
    let child = live_seed(dir.path(), &args).spawn().unwrap();
    target.wait_for(3).await;
    let status = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let output = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap();
    assert!(output.status.success(), "{}", output_text(&output));

    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["live"]["stoppedEarly"], true);
    let written = stored_records(dir.path(), "stopped").await;
    assert!(written.len() >= 3);
    // Everything written was sent before it finished.
    assert_eq!(target.received().len(), written.len());
    let metadata = metadata(dir.path(), "stopped");
    assert_eq!(metadata["status"], "completed");
    assert_eq!(metadata["parameters"]["liveStoppedEarly"], true);
    assert_eq!(metadata["endTime"], summary["end"]);

    // Verify checks the blobs, and says why it does not regenerate.
    let (ok, report) = verify(dir.path(), "stopped");
    assert!(ok, "{report:#}");
    assert_eq!(report["regeneration"]["outcome"], "skipped");
    tape(dir.path()).args(["sessions", "verify", "stopped"]).assert().success().stdout(
        contains("intact").and(contains("Cannot be regenerated: a live run (seed --live) that was stopped early")),
    );
}

#[test]
fn target_flags_need_live() {
    let dir = tempfile::tempdir().unwrap();
    fails_with(
        tape(dir.path()).args(["seed", "--endpoint", "http://localhost:4318"]),
        2,
        &["--endpoint only applies with --live"],
    );
    fails_with(tape(dir.path()).args(["seed", "--concurrency", "2"]), 2, &["--live"]);
    no_sessions(dir.path());
}
