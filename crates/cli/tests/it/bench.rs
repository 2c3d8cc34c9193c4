//! `otlp-tape bench capture`: the report, not the timings.

use crate::tape_json;

#[test]
fn bench_capture_reports_both_phases_and_loses_nothing() {
    let store = tempfile::tempdir().unwrap();
    let report = tape_json(
        store.path(),
        &["bench", "capture", "--duration", "1s", "--latency-duration", "1s", "--connections", "2", "--requests", "20"],
    );
    assert_eq!(report["pattern"], "high-load");
    assert_eq!(report["connections"], 2);
    assert_eq!(report["requestCompression"], "none");
    assert!(report["distinctRequests"].as_u64().unwrap() > 0, "{report}");

    let throughput = &report["throughput"];
    assert!(throughput["spans"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(throughput["recordedSpans"], throughput["spans"]);
    assert_eq!(throughput["lost"], 0);
    for field in ["spansPerSecond", "requestsPerSecond", "mibPerSecond", "sustainedSpansPerSecond"] {
        assert!(throughput[field].as_f64().unwrap() > 0.0, "{field}: {report}");
    }
    assert!(throughput["drainSeconds"].is_f64() && throughput["throttled"].is_u64(), "{report}");

    let latency = &report["latency"];
    assert!(latency["spans"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(latency["lost"], 0);
    for field in ["targetSpansPerSecond", "p50Ms", "p99Ms", "maxMs", "fromSendP50Ms", "fromSendP99Ms"] {
        assert!(latency[field].as_f64().unwrap() > 0.0, "{field}: {report}");
    }
    assert!(latency["p50Ms"].as_f64() <= latency["p99Ms"].as_f64(), "{report}");

    if cfg!(target_os = "linux") {
        assert!(report["peakMemoryBytes"].as_u64().unwrap() > 0);
    }
    assert!(report["cpus"].as_u64().unwrap() > 0);
    // The benchmark's sessions live in a temporary directory of their own.
    assert!(!store.path().join("sessions").exists());
}
