//! `replay --report FILE.html`: one self-contained page with charts.

/// The page of a replay report: `report` is the report's JSON (as
/// `--report FILE.json` writes it), embedded in the page with uPlot and the
/// chart code, so the page needs nothing else.
pub fn replay_report_page(report: &serde_json::Value) -> String {
    let _ = report;
    todo!("web: the replay report page")
}
