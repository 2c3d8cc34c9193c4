//! `otlp-tape demo`: seed, replay into a capture on loopback, verify.

use serde_json::Value;

use crate::{fails_with, succeeds, tape, tape_json};

/// The sessions in the store, by type.
fn sessions_by_type(store: &std::path::Path) -> (Value, Value) {
    let sessions = tape_json(store, &["sessions", "list"]);
    let sessions = sessions.as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{sessions:#?}");
    let of_type = |kind: &str| sessions.iter().find(|session| session["sessionType"] == kind).unwrap().clone();
    (of_type("seed"), of_type("capture"))
}

#[test]
fn demo_seeds_replays_into_a_capture_and_verifies_every_item() {
    let dir = tempfile::tempdir().unwrap();
    let output = crate::tape_in(dir.path()).args(["demo", "--duration", "6s"]).output().unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));

    let (seed, capture) = sessions_by_type(dir.path());
    for session in [&seed, &capture] {
        assert_eq!(session["status"], "completed");
    }
    for counts in ["capturedTraces", "capturedMetrics", "capturedLogs", "requestCounts"] {
        assert_eq!(seed[counts], capture[counts], "{counts}");
    }
    assert!(seed["capturedTraces"].as_u64().unwrap() > 0);
    assert_eq!(seed["parameters"]["seed"], 42);
    assert_eq!(seed["parameters"]["pattern"], "payment-failure");
    assert_eq!(capture["parameters"]["replayOf"], seed["sessionId"]);

    let (seed_id, capture_id) = (seed["sessionId"].as_str().unwrap(), capture["sessionId"].as_str().unwrap());
    assert!(stdout.contains(seed_id) && stdout.contains(capture_id), "{stdout}");
    assert!(stdout.contains("Verified  the capture holds every item of the seed"), "{stdout}");
    assert!(stdout.contains("Shift     +"), "{stdout}");
    let store = dir.path().display();
    for command in [
        format!("otlp-tape --store {store} sessions show {capture_id}"),
        format!("otlp-tape --store {store} sessions verify {seed_id}"),
        format!("otlp-tape --store {store} export --session {capture_id} --format otlp-json --out demo-export"),
        format!("otlp-tape --store {store} replay --session {seed_id} --dry-run"),
    ] {
        assert!(stdout.contains(&command), "{command} in {stdout}");
    }
    // The seed is an ordinary seed session: it regenerates bit for bit.
    succeeds(tape(dir.path()).args(["sessions", "verify", seed_id]), &["bit-for-bit match"]);
    tape(dir.path()).args(["sessions", "verify", capture_id]).assert().success();
}

#[test]
fn demo_reports_json_over_every_http_protocol() {
    for protocol in ["http/protobuf", "http/json"] {
        let dir = tempfile::tempdir().unwrap();
        let report = tape_json(
            dir.path(),
            &["demo", "--duration", "6s", "--seed", "7", "--protocol", protocol, "--speed", "max"],
        );
        assert_eq!(report["protocol"], protocol);
        assert_eq!(report["verification"]["ok"], true, "{report:#}");
        assert!(report["verification"].get("firstDifference").is_none());
        let signals = report["signals"].as_array().unwrap();
        assert_eq!(signals.len(), 3);
        let mut records = 0;
        for signal in signals {
            assert_eq!(signal["seedItems"], signal["capturedItems"], "{signal}");
            assert_eq!(signal["seedRequests"], signal["capturedRequests"], "{signal}");
            records += signal["seedRequests"].as_u64().unwrap();
        }
        assert_eq!(report["verification"]["recordsCompared"], records);
        let shift = &report["shift"];
        assert!(shift["minNanos"].as_i64().unwrap() <= shift["maxNanos"].as_i64().unwrap());

        let (seed, capture) = sessions_by_type(dir.path());
        assert_eq!(report["seedSession"], seed["sessionId"]);
        assert_eq!(report["captureSession"], capture["sessionId"]);
        assert_eq!(seed["parameters"]["seed"], 7);
        assert_eq!(report["explore"].as_array().unwrap().len(), 4);
    }
}

#[test]
fn demo_flags_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    for (flag, value, expected) in [
        ("--protocol", "thrift", "expected grpc, http/protobuf or http/json"),
        ("--speed", "0", "expected a factor above 0"),
        ("--duration", "soon", "soon"),
    ] {
        fails_with(tape(dir.path()).args(["demo", flag, value]), 2, &[expected]);
    }
    assert!(!dir.path().join("sessions").exists());
}
