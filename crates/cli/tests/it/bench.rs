//! `otlp-tape bench capture`, `bench replay`, `bench export` and `bench compare`: the reports, not the timings.

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

#[test]
fn bench_export_reports_the_tables_and_passes_that_saw_every_span() {
    // 200 kB stored: under a second of high-load, exported in a child process.
    let report = bench_report(&["export", "--duration", "2s", "--memory-gb", "0.0002"]);
    assert!(report["cpus"].as_u64().unwrap() > 0);
    let session = &report["session"];
    assert_eq!(session["pattern"], "high-load");
    assert_eq!(session["duration"], "2s");
    for field in ["spans", "items", "requests", "uncompressedBytes", "storedBytes"] {
        assert!(session[field].as_u64().unwrap() > 0, "{field}: {report}");
    }

    // Every span and item is a row, once; the files' sizes add up.
    let export = &report["export"];
    assert_eq!(export["spans"], session["spans"], "{report}");
    assert_eq!(export["rows"], session["items"], "{report}");
    let tables = export["tables"].as_array().unwrap();
    let names: Vec<&str> = tables.iter().map(|file| file["file"].as_str().unwrap()).collect();
    assert!(names.contains(&"traces.parquet") && names.contains(&"logs.parquet"), "{report}");
    assert!(names.iter().all(|name| name.ends_with(".parquet")), "{report}");
    let sum = |field: &str| tables.iter().map(|file| file[field].as_u64().unwrap()).sum::<u64>();
    assert_eq!(sum("rows"), export["rows"].as_u64().unwrap());
    assert_eq!(sum("bytes"), export["bytes"].as_u64().unwrap());
    assert!(tables.iter().all(|file| file["rowGroups"].as_u64().unwrap() >= 1), "{report}");
    let traces = tables.iter().find(|file| file["file"] == "traces.parquet").unwrap();
    let bytes_per_span = traces["bytes"].as_f64().unwrap() / traces["rows"].as_f64().unwrap();
    assert!((export["bytesPerSpan"].as_f64().unwrap() - bytes_per_span).abs() < 1e-9, "{report}");
    for field in ["seconds", "spansPerSecond", "rowsPerSecond"] {
        assert!(export[field].as_f64().unwrap() > 0.0, "{field}: {report}");
    }
    if cfg!(target_os = "linux") {
        assert!(export["peakMemoryBytes"].as_u64().unwrap() > 0);
    }

    // Four passes, each one step more, each seeing every span; the steps'
    // own times add up to the last pass's.
    let passes = report["passes"].as_array().unwrap();
    let steps: Vec<&str> = passes.iter().map(|pass| pass["step"].as_str().unwrap()).collect();
    assert_eq!(steps, ["read", "decode", "convert", "encode"]);
    for pass in passes {
        assert_eq!(pass["spans"], session["spans"], "{report}");
        assert!(pass["seconds"].as_f64().unwrap() > 0.0 && !pass["does"].as_str().unwrap().is_empty(), "{report}");
    }
    let steps_total: f64 = passes.iter().map(|pass| pass["stepSeconds"].as_f64().unwrap()).sum();
    assert!((steps_total - passes[3]["seconds"].as_f64().unwrap()).abs() < 1e-9, "{report}");

    let memory = &report["memory"];
    assert_eq!(memory["targetBytes"], 200_000);
    assert!(memory["session"]["storedBytes"].as_u64().unwrap() >= 200_000, "{report}");
    assert_eq!(memory["export"]["spans"], memory["session"]["spans"], "{report}");
    assert_eq!(memory["export"]["rows"], memory["session"]["items"], "{report}");
    if cfg!(target_os = "linux") {
        assert!(memory["export"]["peakMemoryBytes"].as_u64().unwrap() > 0);
    }
}

#[test]
fn bench_export_names_the_flag_out_of_range() {
    let store = tempfile::tempdir().unwrap();
    crate::fails(crate::tape(store.path()).args(["bench", "export", "--memory-gb=-1"]), &["--memory-gb is -1"]);
}

#[test]
fn bench_compare_reports_every_run_and_the_memory_comparison_in_a_child_process() {
    // 200 kB stored: under a second of high-load, compared in a child process on 2 partitions.
    let report = bench_report(&[
        "compare",
        "--duration",
        "1s",
        "--runs",
        "1",
        "--partitions",
        "4",
        "--memory-gb",
        "0.0002",
        "--memory-partitions",
        "2",
    ]);
    let items = report["session"]["items"].as_u64().unwrap();
    assert!(items > 0, "{report}");
    assert_eq!(report["identical"]["items"], items);
    let dropped = report["differences"]["alterations"]["droppedSpans"].as_u64().unwrap();
    assert!(dropped > 0, "{report}");
    let runs = report["runs"].as_array().unwrap();
    let order: Vec<(&str, u64)> =
        runs.iter().map(|run| (run["variant"].as_str().unwrap(), run["partitions"].as_u64().unwrap())).collect();
    assert_eq!(order, [("identical", 1), ("identical", 4), ("differences", 1), ("differences", 4)]);
    for run in runs {
        assert_eq!(run["expectedItems"], items, "{report}");
        assert_eq!(run["passed"], run["variant"] == "identical", "{report}");
        assert_eq!(run["counts"]["missing"], if run["variant"] == "identical" { 0 } else { dropped }, "{report}");
        for field in ["seconds", "itemsPerSecond", "expectedItemsPerSecond"] {
            assert!(run[field].as_f64().unwrap() > 0.0, "{field}: {report}");
        }
    }
    assert_eq!(report["summaries"].as_array().unwrap().len(), 4, "{report}");
    assert_eq!(report["passes"].as_array().unwrap().len(), 2, "{report}");

    let memory = &report["memory"];
    assert_eq!(memory["targetBytes"], 200_000);
    assert!(memory["session"]["storedBytes"].as_u64().unwrap() >= 200_000, "{report}");
    let comparison = &memory["comparison"];
    assert_eq!((&comparison["partitions"], &comparison["partitionsMatched"]), (&2.into(), &2.into()), "{report}");
    assert_eq!(comparison["passed"], true, "{report}");
    assert_eq!(comparison["counts"]["identical"], memory["session"]["items"], "{report}");
    if cfg!(target_os = "linux") {
        assert!(comparison["peakMemoryBytes"].as_u64().unwrap() > 0);
    }
}

#[test]
fn bench_compare_names_the_flag_out_of_range() {
    let store = tempfile::tempdir().unwrap();
    crate::fails(crate::tape(store.path()).args(["bench", "compare", "--partitions", "1"]), &["--partitions is 1"]);
}
