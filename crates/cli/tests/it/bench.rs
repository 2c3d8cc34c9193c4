//! `otlp-tape bench capture` and `bench replay`: the reports, not the timings.

use crate::tape_json;

/// Runs `otlp-tape --output json bench ARGS` on an empty store, asserts that
/// it left nothing there (a benchmark's sessions live in a temporary directory
/// of their own) and returns its report.
pub fn bench_report(args: &[&str]) -> serde_json::Value {
    let store = tempfile::tempdir().unwrap();
    let report = tape_json(store.path(), &[&["bench"][..], args].concat());
    assert!(!store.path().join("sessions").exists());
    report
}

#[test]
fn bench_capture_reports_both_phases_and_loses_nothing() {
    let args = ["capture", "--duration", "1s", "--latency-duration", "1s", "--connections", "2", "--requests", "20"];
    let report = bench_report(&args);
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
}

#[test]
fn bench_replay_reports_every_measurement_and_counts_every_span() {
    let report = bench_report(&[
        "replay",
        "--duration",
        "2s",
        "--memory-gb",
        "0",
        "--pacing-duration",
        "2s",
        "--concurrency",
        "4",
    ]);
    assert_eq!(report["concurrency"], 4);
    assert_eq!(report["requestCompression"], "none");
    assert!(report["cpus"].as_u64().unwrap() > 0);

    let throughput = &report["throughput"];
    let session = &throughput["session"];
    assert_eq!(session["pattern"], "high-load");
    assert_eq!(session["duration"], "2s");
    for field in ["spans", "items", "requests", "uncompressedBytes", "storedBytes"] {
        assert!(session[field].as_u64().unwrap() > 0, "{field}: {report}");
    }
    let replay = &throughput["replay"];
    assert_eq!(replay["end"], "finished");
    // Every span, item and request acknowledged and counted by the receiver.
    assert_eq!(replay["receivedSpans"], session["spans"], "{report}");
    assert_eq!(replay["receivedItems"], session["items"], "{report}");
    assert_eq!(replay["receivedRequests"], session["requests"], "{report}");
    assert_eq!(replay["rejectedRequests"], 0);
    assert_eq!(replay["failedRequests"], 0);
    for field in ["seconds", "spansPerSecond", "itemsPerSecond", "requestsPerSecond", "mibPerSecond"] {
        assert!(replay[field].as_f64().unwrap() > 0.0, "{field}: {report}");
    }
    assert!(replay["payloadBytes"].as_u64().unwrap() > 0, "{report}");

    assert!(report["memory"].is_null(), "--memory-gb 0 skips it: {report}");

    let pacing = &report["pacing"];
    assert_eq!(pacing["session"]["pattern"], "payment-failure");
    let speeds = pacing["speeds"].as_array().unwrap();
    assert_eq!(speeds.iter().map(|run| run["speed"].as_f64().unwrap()).collect::<Vec<_>>(), [1.0, 10.0]);
    for run in speeds {
        assert_eq!(run["requests"], pacing["session"]["requests"], "{report}");
        assert_eq!(run["receivedItems"], pacing["session"]["items"], "{report}");
        assert_eq!(run["allReceived"], true);
        for field in ["p50Ms", "p99Ms", "maxMs", "minMs", "seconds"] {
            assert!(run[field].is_f64(), "{field}: {report}");
        }
    }
}
