//! `replay --report FILE.html`: one self-contained page with charts.

/// uPlot, inlined into the page.
const UPLOT_JS: &str = include_str!("../assets/vendor/uPlot.iife.min.js");
/// uPlot's styles.
const UPLOT_CSS: &str = include_str!("../assets/vendor/uPlot.min.css");
/// The charts and tables of a replay report (also served to the UI).
const REPLAY_CHARTS_JS: &str = include_str!("../assets/replay-charts.js");

/// The page's own styles.
const PAGE_CSS: &str = "\
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1f2937;background:#f9fafb}\
header{padding:16px 24px;background:#111827;color:#f9fafb}\
header h1{margin:0;font-size:20px}\
header p{margin:4px 0 0;color:#d1d5db}\
main{padding:8px 24px 32px;max-width:1140px}\
.replay-section{background:#fff;border:1px solid #e5e7eb;border-radius:6px;padding:12px 16px;margin:16px 0}\
.replay-section h2{font-size:16px;margin:0 0 8px}\
.replay-table{border-collapse:collapse;font-variant-numeric:tabular-nums}\
.replay-table th,.replay-table td{border-bottom:1px solid #e5e7eb;padding:4px 10px;text-align:left;vertical-align:top}\
.replay-table td{text-align:right}\
#options-table td,#summary-table td{text-align:left;word-break:break-all}\
#summary-table thead{display:none}\
.replay-note{color:#6b7280}\
code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace;word-break:break-all}\
";

/// Starts the charts once everything is loaded, then marks the page ready.
const START_JS: &str = "\
(function () {\
  var report = JSON.parse(document.getElementById('report-data').textContent);\
  window.OtlpTapeReplayCharts.render(document.getElementById('report'), report);\
  document.body.dataset.ready = 'true';\
})();";

/// The page of a replay report: `report` is the report's JSON (as
/// `--report FILE.json` writes it), embedded in the page with uPlot and the
/// chart code, so the page needs nothing else: no request leaves it, and
/// it opens from a file.
///
/// The JSON is in `<script type="application/json" id="report-data">`,
/// every `<` in it written `\u003c` so that no text of the report can end
/// the script; `document.body.dataset.ready` is `"true"` once drawn.
pub fn replay_report_page(report: &serde_json::Value) -> String {
    let data = embedded_json(report);
    let session = report.pointer("/session/id").and_then(serde_json::Value::as_str).unwrap_or("unknown");
    let session = escape_html(session);
    let started = escape_html(report.get("startedAt").and_then(serde_json::Value::as_str).unwrap_or(""));
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Replay of session {session}: otlp-tape</title>\n\
         <style>{UPLOT_CSS}</style>\n<style>{PAGE_CSS}</style>\n</head>\n<body>\n\
         <header><h1>Replay of session {session}</h1><p>otlp-tape replay report, started {started}</p></header>\n\
         <main id=\"report\"></main>\n\
         <script type=\"application/json\" id=\"report-data\">{data}</script>\n\
         <script>{UPLOT_JS}</script>\n<script>{REPLAY_CHARTS_JS}</script>\n<script>{START_JS}</script>\n\
         </body>\n</html>\n"
    )
}

/// The report's JSON in a page that [`replay_report_page`] wrote, or `None`
/// when `page` is not such a page. The `\u003c` escapes are JSON's own, so
/// the text parses back to the report as it was.
pub fn report_in_page(page: &str) -> Option<&str> {
    let open = "<script type=\"application/json\" id=\"report-data\">";
    let start = page.find(open)? + open.len();
    let end = start + page[start..].find("</script>")?;
    Some(&page[start..end])
}

/// `value` as JSON that can sit in a `<script>` element: `<` only occurs
/// in JSON strings, where `\u003c` means the same.
fn embedded_json(value: &serde_json::Value) -> String {
    value.to_string().replace('<', "\\u003c")
}

/// `text` for HTML text and attribute values.
fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            _ => escaped.push(character),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn report_data(page: &str) -> &str {
        report_in_page(page).expect("a report page holds its report")
    }

    #[test]
    fn no_text_of_the_report_ends_its_script() {
        let report = json!({
            "session": {"id": "</script><script>alert(1)</script>"},
            "warning": "<!-- <script> </SCRIPT",
            "series": {"bucketSeconds": 1, "rows": [[0, 1, 2, 3, 0, 0, 5]]},
        });
        let page = replay_report_page(&report);
        let data = report_data(&page);
        assert!(!data.contains('<'), "{data}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(data).unwrap(), report);
        assert!(page.contains("<title>Replay of session &lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;"));
    }

    #[test]
    fn the_page_is_self_contained() {
        let page = replay_report_page(&json!({"session": {"id": "x"}}));
        for reference in ["src=", "href=", "@import", "url(http", "fetch("] {
            assert!(!page.contains(reference), "the page holds {reference}");
        }
        // The inlined scripts and styles cannot end their elements early.
        for asset in [UPLOT_JS, UPLOT_CSS, REPLAY_CHARTS_JS] {
            let lower = asset.to_ascii_lowercase();
            assert!(!lower.contains("</script") && !lower.contains("</style") && !lower.contains("<!--"));
        }
        assert!(page.contains("OtlpTapeReplayCharts"));
        assert!(page.contains("uPlot"));
    }
}
