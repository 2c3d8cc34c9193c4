//! The replay's HTML report (`replay --report FILE.html`) opened from its
//! file in a real browser: its charts are drawn, its tables hold the
//! report's counts and evidence hash, and it loads nothing from elsewhere.

use serde_json::{Value, json};
use tape_testkit::otlp_target::{OtlpTarget, OtlpTargetOptions};

use crate::tape;
use crate::web::{LIMIT, assert_no_console_errors, browser, ink, seed, text};

/// The cells of `#counts-table`'s row for `signal`, commas (thousands)
/// taken out.
async fn counts_row(browser: &tape_testkit::browser::Browser, signal: &str) -> Vec<String> {
    let script = "const row = Array.from(document.querySelectorAll('#counts-table tbody tr')) \
                  .find((row) => row.cells[0].textContent.trim() === arguments[0]); \
                  return row ? Array.from(row.cells).map((cell) => cell.textContent.trim().replaceAll(',', '')) : null;";
    let cells = browser.execute(script, vec![json!(signal)]).await;
    let cells = cells.as_array().unwrap_or_else(|| panic!("no row {signal} in #counts-table"));
    cells.iter().map(|cell| cell.as_str().unwrap().to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_html_report_shows_its_charts_counts_and_hash_from_the_file_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    seed(store, "payment-failure", "6s", "17", "S");
    let target = OtlpTarget::start(OtlpTargetOptions::default()).await;
    let args = ["--output", "json", "replay", "--session", "S", "--speed", "max", "--endpoint", target.http_endpoint()];
    let output = tape(store).current_dir(store).args(args).args(["--report", "r.html"]).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    target.shutdown().await;
    let page = store.join("r.html");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.to_lowercase().starts_with("<!doctype html>"), "{html:.200}");

    let browser = browser().await;
    let url = format!("file://{}", page.display());
    browser.goto(&url).await;
    browser.wait_until("document.body.dataset.ready === 'true'", LIMIT).await;
    for chart in ["#throughput-chart", "#lag-chart", "#lag-distribution", "#failures-chart"] {
        assert!(ink(&browser, &format!("{chart} canvas")).await > 0, "{chart} is blank");
    }

    let counts = &report["counts"];
    for signal in ["traces", "metrics", "logs", "total"] {
        let row = counts_row(&browser, signal).await;
        let expected = [&counts[signal]["sentRecords"], &counts[signal]["sentItems"]].map(ToString::to_string);
        assert_eq!(row[1..3], expected, "{signal}: {row:?} in #counts-table, the report says {}", counts[signal]);
    }
    assert!(counts["total"]["sentItems"].as_u64() > Some(0), "{report}");
    let hash = browser.find("#evidence-hash").await.text().await;
    assert_eq!(hash, text(&report, "contentHash"));
    assert!(browser.find_all("#options-table tbody tr").await.len() > 1, "the options are not listed");

    // Nothing but the file itself: the script, styles and charts are in it.
    let loaded =
        browser.execute("return performance.getEntriesByType('resource').map((entry) => entry.name);", vec![]).await;
    assert_eq!(loaded, json!([]), "the report loads other files");
    browser.screenshot("report").await;
    assert_no_console_errors(&browser, &[]).await;
}
