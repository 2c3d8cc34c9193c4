//! `otlp-tape replay --report FILE.html`: one self-contained page holding
//! the report's JSON, uPlot and the chart code; other extensions stay JSON.

use serde_json::Value;
use tape_testkit::otlp_target::{OtlpTarget, OtlpTargetOptions};

use crate::replay::{replay, run_ok, seed};

/// The report JSON embedded in a report page.
fn embedded_report(page: &str) -> Value {
    let open = "<script type=\"application/json\" id=\"report-data\">";
    let start = page.find(open).expect("the page embeds the report") + open.len();
    let end = start + page[start..].find("</script>").unwrap();
    serde_json::from_str(&page[start..end]).expect("the embedded report is JSON")
}

/// `report` without what differs between two runs of the same replay:
/// times, rates and the series (seconds of wall time).
fn timeless(mut report: Value) -> Value {
    let object = report.as_object_mut().unwrap();
    for key in ["startedAt", "endedAt", "durationSeconds", "achievedItemsPerSecond", "series"] {
        assert!(object.remove(key).is_some(), "the report has {key}");
    }
    report
}

/// Asserts that the series adds up to the counts.
fn assert_series_matches_counts(report: &Value) {
    let rows = report["series"]["rows"].as_array().unwrap();
    let sum = |column: usize| rows.iter().map(|row| row[column].as_u64().unwrap()).sum::<u64>();
    for (column, signal) in [(1, "traces"), (2, "metrics"), (3, "logs")] {
        assert_eq!(sum(column), report["counts"][signal]["sentItems"].as_u64().unwrap(), "{signal}");
    }
    assert_eq!(sum(4), report["counts"]["total"]["failedRecords"].as_u64().unwrap());
    assert_eq!(sum(5), report["counts"]["total"]["retries"].as_u64().unwrap());
    let lag = &report["series"]["lag"];
    let requests: u64 = lag["counts"].as_array().unwrap().iter().map(|count| count.as_u64().unwrap()).sum();
    let total = &report["counts"]["total"];
    let ended = total["sentRecords"].as_u64().unwrap() + total["failedRecords"].as_u64().unwrap();
    assert_eq!(requests, ended, "one lag per request sent");
    assert_eq!(lag["counts"].as_array().unwrap().len(), lag["boundsMillis"].as_array().unwrap().len() + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_html_report_is_one_page_holding_the_json_report_and_its_charts() {
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path(), "S");
    let target = OtlpTarget::start(OtlpTargetOptions::default()).await;
    let args = [
        "--session",
        "S",
        "--speed",
        "max",
        "--timestamps",
        "none",
        "--id-seed",
        "3",
        "--endpoint",
        target.http_endpoint(),
    ];

    let output = run_ok(replay(dir.path(), &args).args(["--report", "r.html", "--output", "json"]));
    let printed: Value = serde_json::from_slice(&output.stdout).unwrap();
    let page = std::fs::read_to_string(dir.path().join("r.html")).unwrap();
    assert!(page.starts_with("<!doctype html>"), "{}", &page[..100]);
    // The same report as the one printed, whole.
    let embedded = embedded_report(&page);
    assert_eq!(embedded, printed);
    assert_series_matches_counts(&embedded);
    assert_eq!(
        embedded["series"]["lag"]["counts"].as_array().unwrap().iter().map(|c| c.as_u64().unwrap()).sum::<u64>(),
        target.received().len() as u64,
        "every request the target got has its lag"
    );
    // Self-contained: uPlot and the charts inlined, nothing to load.
    assert!(page.contains("https://github.com/leeoniya/uPlot (v1.6.32)"), "uPlot is inlined");
    assert!(page.contains(".uplot"), "uPlot's styles are inlined");
    assert!(page.contains("window.OtlpTapeReplayCharts"), "the chart code is inlined");
    for reference in ["src=", "href=", "@import", "fetch("] {
        assert!(!page.contains(reference), "the page loads something: {reference}");
    }
    for id in ["throughput-chart", "lag-chart", "lag-distribution", "failures-chart", "counts-table", "options-table"] {
        assert!(page.contains(&format!("\"{id}\"")), "the chart code draws #{id}");
    }

    // Another run of the same replay to a JSON file: the same report but
    // for its times.
    run_ok(replay(dir.path(), &args).args(["--report", "r.json"]));
    let json: Value = serde_json::from_slice(&std::fs::read(dir.path().join("r.json")).unwrap()).unwrap();
    assert_series_matches_counts(&json);
    assert_eq!(timeless(json), timeless(embedded));

    // `.htm` in any case is a page; any other extension is JSON.
    run_ok(replay(dir.path(), &args).args(["--report", "R.HTM"]));
    assert!(std::fs::read_to_string(dir.path().join("R.HTM")).unwrap().starts_with("<!doctype html>"));
    run_ok(replay(dir.path(), &args).args(["--report", "report.txt"]));
    let text: Value = serde_json::from_slice(&std::fs::read(dir.path().join("report.txt")).unwrap()).unwrap();
    assert_eq!(text["reason"], "finished");
    target.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_series_counts_the_failures_and_retries_of_a_target_that_fails_on_demand() {
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path(), "S");
    let target = OtlpTarget::start(OtlpTargetOptions::default()).await;
    // Three failures at two attempts a request, one request at a time:
    // the first request fails twice (one retry, then failed), the second
    // once (one retry, then sent).
    target.fail_next(3, tape_testkit::otlp_target::Failure::Http(503, None));
    let args = ["--session", "S", "--speed", "max", "--concurrency", "1", "--endpoint", target.http_endpoint()];
    let output = crate::replay::run_to_end(replay(dir.path(), &args).args([
        "--max-attempts",
        "2",
        "--max-failures",
        "unlimited",
        "--output",
        "json",
    ]));
    assert_eq!(output.status.code(), Some(1), "a request failed");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_series_matches_counts(&report);
    let total = &report["counts"]["total"];
    assert_eq!((&total["retries"], &total["failedRecords"]), (&Value::from(2), &Value::from(1)), "{total}");
    let rows = report["series"]["rows"].as_array().unwrap();
    assert_eq!(rows.iter().map(|row| row[4].as_u64().unwrap()).sum::<u64>(), 1, "the failure has its second");
    assert_eq!(rows.iter().map(|row| row[5].as_u64().unwrap()).sum::<u64>(), 2, "the retries have their seconds");
    target.shutdown().await;
}
