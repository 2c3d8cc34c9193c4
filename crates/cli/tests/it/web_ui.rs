//! The web UI of the real `serve` in a real headless browser: the sessions
//! list, a session's timeline with its phases and annotations, the traces of
//! a window and a trace's waterfall, a replay started from the form into a
//! real OTLP target and its finished page, the token prompt and two sessions
//! compared. Each test saves screenshots of what it saw and fails on any
//! console error.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tape_otlp::Signal;
use tape_testkit::browser::Browser;
use tape_testkit::otlp_target::{OtlpTarget, OtlpTargetOptions};

use crate::serve::Served;
use crate::web::{LIMIT, assert_no_console_errors, browser, fill, ink, open, seed, shown, text, until_view};

/// The ids of the sessions table's rows shown, in page order.
async fn session_rows(browser: &Browser) -> Vec<String> {
    shown(browser, "#sessions-table tbody tr[data-session-id]", "data-session-id").await
}

/// Waits until the sessions table shows exactly `ids`, in any order.
async fn until_rows(browser: &Browser, ids: &[&str]) {
    let expected = json!(ids.iter().copied().collect::<std::collections::BTreeSet<_>>()).to_string();
    let condition = format!(
        "JSON.stringify(Array.from(document.querySelectorAll('#sessions-table tbody tr[data-session-id]')) \
         .filter((row) => row.getClientRects().length > 0).map((row) => row.dataset.sessionId).sort()) === '{expected}'"
    );
    browser.wait_until(&condition, LIMIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sessions_list_filters_sorts_verifies_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    seed(store, "basic-topology", "2s", "1", "alpha-basic");
    seed(store, "payment-failure", "3s", "2", "beta-payment");
    seed(store, "basic-topology", "2s", "3", "gamma-basic");
    let served = Served::start(store, &[]);
    let browser = browser().await;
    // The default route is the sessions list.
    browser.goto(&format!("{}/", served.api)).await;
    until_view(&browser, "sessions").await;
    until_rows(&browser, &["alpha-basic", "beta-payment", "gamma-basic"]).await;
    let totals = browser.find("#sessions-totals").await.text().await;
    assert!(totals.contains('3'), "#sessions-totals: {totals}");
    browser.screenshot("ui-sessions").await;

    // Filtering by text narrows the rows, and emptying it shows them again.
    let filter = browser.find("#filter-text").await;
    filter.send_keys("beta").await;
    until_rows(&browser, &["beta-payment"]).await;
    filter.clear().await;
    filter.send_keys(" ").await;
    filter.clear().await;
    until_rows(&browser, &["alpha-basic", "beta-payment", "gamma-basic"]).await;

    // A header sorts by its column; clicking it again reverses the order.
    let headers = browser.find_all("#sessions-table th[data-sort]").await;
    assert!(!headers.is_empty(), "no sortable header");
    let mut by_id = None;
    for header in &headers {
        if header.attribute("data-sort").await.is_some_and(|key| key.to_lowercase().contains("id")) {
            by_id = Some(header.clone());
        }
    }
    let header = by_id.unwrap_or_else(|| panic!("no header sorts by the session id"));
    header.click().await;
    let sorted_by_id = "(() => { const ids = Array.from(document.querySelectorAll('#sessions-table tbody tr[data-session-id]')) \
                        .map((row) => row.dataset.sessionId); const sorted = [...ids].sort(); \
                        return [sorted, [...sorted].reverse()].some((order) => JSON.stringify(order) === JSON.stringify(ids)); })()";
    browser.wait_until(sorted_by_id, LIMIT).await;
    let first = session_rows(&browser).await;
    header.click().await;
    let condition = format!(
        "JSON.stringify(Array.from(document.querySelectorAll('#sessions-table tbody tr[data-session-id]')) \
         .map((row) => row.dataset.sessionId)) === '{}'",
        json!(first.iter().rev().collect::<Vec<_>>())
    );
    browser.wait_until(&condition, LIMIT).await;

    // Verify shows its result in the row.
    let row = "#sessions-table tr[data-session-id=alpha-basic]";
    browser.find(&format!("{row} [data-action=verify]")).await.click().await;
    let result = format!("{row} [data-verify-result]");
    // Its result, not the word that it is under way.
    let done = format!("!/^$|verifying/i.test(document.querySelector('{result}').textContent.trim())");
    browser.wait_until(&done, LIMIT).await;
    let verified = browser.find(&result).await.text().await.to_lowercase();
    assert!(!["fail", "error", "problem"].iter().any(|word| verified.contains(word)), "verify: {verified}");

    // Delete asks first: no keeps the session, yes deletes it.
    let delete = "#sessions-table tr[data-session-id=gamma-basic] [data-action=delete]";
    browser.find(delete).await.click().await;
    browser.wait_until("document.getElementById('confirm-dialog').open", LIMIT).await;
    browser.screenshot("ui-sessions-confirm").await;
    browser.find("#confirm-no").await.click().await;
    browser.wait_until("!document.getElementById('confirm-dialog').open", LIMIT).await;
    assert_eq!(served.call(Method::GET, "/api/v1/sessions/gamma-basic", None).await.0, StatusCode::OK);
    browser.find(delete).await.click().await;
    browser.wait_until("document.getElementById('confirm-dialog').open", LIMIT).await;
    browser.find("#confirm-yes").await.click().await;
    until_rows(&browser, &["alpha-basic", "beta-payment"]).await;
    let (status, answer) = served.call(Method::GET, "/api/v1/sessions/gamma-basic", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    assert_no_console_errors(&browser, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_shows_its_timeline_phases_annotations_and_the_traces_of_a_selection() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    seed(store, "payment-failure", "6s", "17", "P");
    let served = Served::start(store, &[]);
    let note = json!({"key": "incident.note", "from": "1s", "until": "2s", "value": {"text": "a look"}});
    let (status, added) = served.call(Method::POST, "/api/v1/sessions/P/annotations", Some(note)).await;
    assert_eq!(status, StatusCode::CREATED, "{added}");
    let metadata = served.get("/api/v1/sessions/P").await;
    let phases: Vec<&str> = metadata["phases"].as_array().unwrap().iter().map(|phase| text(phase, "name")).collect();
    assert_eq!(phases, ["baseline", "failure", "rampdown"], "{metadata}");

    let browser = browser().await;
    open(&browser, &served.api, "sessions/P", "session").await;
    assert!(browser.find("#session-meta").await.text().await.contains('P'));
    let listed = browser.find("#session-phases").await.text().await;
    assert!(phases.iter().all(|phase| listed.contains(phase)), "#session-phases: {listed}");
    let annotations = browser.find("#session-annotations").await.text().await;
    assert!(annotations.contains("incident.note"), "#session-annotations: {annotations}");
    assert!(ink(&browser, "#timeline canvas").await > 0, "the timeline is blank");
    let bands = shown(&browser, "#timeline .phase-band[data-phase]", "data-phase").await;
    assert_eq!(bands, phases, "the phase bands");
    // The note (1 s to 2 s) is marked over the second half of the baseline
    // band (0 s to 2 s).
    let placed = browser
        .execute(
            "const mark = document.querySelector('#timeline .annotation-mark[data-key=\"incident.note\"]'); \
             const band = document.querySelector('#timeline .phase-band[data-phase=baseline]'); \
             if (!mark || !band) return null; \
             const [m, b] = [mark.getBoundingClientRect(), band.getBoundingClientRect()]; \
             return [m.left - (b.left + b.width / 2), m.right - b.right, m.width];",
            vec![],
        )
        .await;
    let offsets = placed.as_array().unwrap_or_else(|| panic!("the annotation incident.note is not marked"));
    let [left, right, width] = [0, 1, 2].map(|at| offsets[at].as_f64().unwrap());
    assert!(left.abs() <= 3.0 && right.abs() <= 3.0 && width > 10.0, "the mark is off its range: {placed}");
    browser.screenshot("ui-session").await;

    // A range dragged on the chart offers its actions; its traces are listed.
    let over = browser.find("#timeline .u-over").await;
    let width = over.property("clientWidth").await.as_i64().unwrap();
    over.drag((-width / 4, 0), (width / 4, 0)).await;
    browser.wait_until("document.getElementById('selection-actions').getClientRects().length > 0", LIMIT).await;
    let range = browser.find("#selection-range").await.text().await;
    assert!(!range.trim().is_empty(), "#selection-range is empty");
    for action in ["#action-annotate", "#action-replay", "#action-export"] {
        browser.find(action).await;
    }
    browser.screenshot("ui-session-selection").await;
    browser.find("#action-traces").await.click().await;
    until_view(&browser, "traces").await;
    let url = browser.url().await;
    assert!(url.contains("#/sessions/P/traces?") && url.contains("from=") && url.contains("until="), "{url}");
    browser.wait_for("#traces-table tbody tr[data-trace-id]", LIMIT).await;
    assert_no_console_errors(&browser, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_traces_of_a_window_and_the_waterfall_of_a_trace_with_errors() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    seed(store, "payment-failure", "6s", "17", "P");
    let served = Served::start(store, &[]);
    let metadata = served.get("/api/v1/sessions/P").await;
    let (from, until) = (text(&metadata, "startTime"), text(&metadata, "endTime"));
    let window = format!("from={from}&until={until}");
    let listed = served.get(&format!("/api/v1/sessions/P/traces?{window}")).await;
    let traces = listed["traces"].as_array().unwrap();
    assert!(!traces.is_empty(), "{listed}");

    let browser = browser().await;
    open(&browser, &served.api, &format!("sessions/P/traces?{window}"), "traces").await;
    let rows = shown(&browser, "#traces-table tbody tr[data-trace-id]", "data-trace-id").await;
    let ids: Vec<&str> = traces.iter().map(|trace| text(trace, "traceId")).collect();
    assert_eq!(rows, ids, "the rows are not the API's traces");
    let failed: Vec<&str> = traces
        .iter()
        .filter(|trace| trace["errorSpans"].as_u64() > Some(0))
        .map(|trace| text(trace, "traceId"))
        .collect();
    let marked = shown(&browser, "#traces-table tbody tr[data-trace-id].error", "data-trace-id").await;
    assert_eq!(marked, failed, "the rows marked as errors");
    browser.screenshot("ui-traces").await;

    // A trace with an error, whole: one bar per span.
    let errors = served.get("/api/v1/sessions/P/traces?errorsOnly=true&limit=1").await;
    let trace_id = text(&errors["traces"][0], "traceId").to_owned();
    let trace = served.get(&format!("/api/v1/sessions/P/traces/{trace_id}")).await;
    let spans = trace["spans"].as_array().unwrap();
    open(&browser, &served.api, &format!("sessions/P/traces/{trace_id}"), "trace").await;
    let bars = shown(&browser, "#waterfall .span-bar[data-span-id]", "data-span-id").await;
    let mut expected: Vec<&str> = spans.iter().map(|span| text(span, "spanId")).collect();
    let mut drawn: Vec<&str> = bars.iter().map(String::as_str).collect();
    expected.sort_unstable();
    drawn.sort_unstable();
    assert_eq!(drawn, expected, "one bar per span of {trace}");
    let failing: Vec<&Value> = spans.iter().filter(|span| span["status"]["code"] == "error").collect();
    assert!(!failing.is_empty(), "{trace}");
    for span in &failing {
        let bar = format!("#waterfall .span-bar[data-span-id='{}']", text(span, "spanId"));
        assert!(browser.find(&bar).await.attribute("class").await.unwrap_or_default().contains("error"), "{bar}");
    }
    let services: std::collections::BTreeSet<&str> = spans.iter().map(|span| text(span, "service")).collect();
    let legend = browser.find("#service-legend").await.text().await;
    assert!(services.iter().all(|service| legend.contains(service)), "#service-legend: {legend}");

    // Clicking a bar shows the span's details.
    let span = failing[0];
    browser.find(&format!("#waterfall .span-bar[data-span-id='{}']", text(span, "spanId"))).await.click().await;
    let name = text(span, "name");
    browser
        .wait_until(&format!("document.getElementById('span-detail').textContent.includes({})", json!(name)), LIMIT)
        .await;
    let detail = browser.find("#span-detail").await.text().await;
    let attribute = span["attributes"].as_object().unwrap().keys().next().unwrap();
    assert!(detail.contains(attribute.as_str()), "#span-detail lacks {attribute}: {detail}");
    browser.screenshot("ui-trace").await;
    assert_no_console_errors(&browser, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_started_from_the_form_completes_into_a_real_target_and_shows_its_charts() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    seed(store, "payment-failure", "3s", "5", "R");
    let target = OtlpTarget::start(OtlpTargetOptions::default()).await;
    let exports = tempfile::tempdir().unwrap();
    let served = Served::start(store, &["--export-dir", exports.path().to_str().unwrap()]);
    let metadata = served.get("/api/v1/sessions/R").await;

    let browser = browser().await;
    open(&browser, &served.api, "live", "live").await;
    let form = browser.find("#replay-form").await;
    fill(&form, "session", "R").await;
    fill(&form, "endpoint", target.http_endpoint()).await;
    fill(&form, "speed", "max").await;
    browser.screenshot("ui-live-form").await;
    form.find("button[type=submit]").await.click().await;
    browser.wait_until("/replay-/.test(document.getElementById('form-result').textContent)", LIMIT).await;
    let started = browser.find("#form-result").await.text().await;
    let replays = served.get("/api/v1/replays").await;
    let id = text(&replays["replays"][0], "id").to_owned();
    assert!(started.contains(&id), "#form-result: {started}, the API: {replays}");
    let row = format!("#live-replays tbody tr[data-replay-id='{id}']");
    browser.wait_for(&format!("{row}[data-status=completed]"), LIMIT).await;
    browser.execute("document.getElementById('live-replays').scrollIntoView();", vec![]).await;
    browser.screenshot("ui-live").await;

    // An export started through the API is listed too, with its progress.
    let body = json!({"session": "R", "format": "otlp-json", "out": "r-window"});
    let (status, export) = served.call(reqwest::Method::POST, "/api/v1/exports", Some(body)).await;
    assert_eq!(status, 202, "{export}");
    let export_id = text(&export, "id").to_owned();
    let export_row = format!("#live-exports tbody tr[data-export-id='{export_id}']");
    browser.wait_for(&format!("{export_row}[data-status=completed]"), LIMIT).await;
    let done = served.until_done(&format!("/api/v1/exports/{export_id}")).await;
    let shown = browser.find(&export_row).await.text().await.replace(',', "");
    let records = done["progress"]["recordsDone"].as_u64().unwrap();
    assert!(records > 0 && shown.contains(&format!("{records} / {records} records read")), "{shown}, the API: {done}");

    // The seed form lists every built-in pattern with its description.
    let patterns = served.get("/api/v1/patterns").await;
    let mut names: Vec<&str> =
        patterns["patterns"].as_array().unwrap().iter().map(|pattern| text(pattern, "name")).collect();
    let options = browser
        .execute("return Array.from(document.querySelectorAll('#seed-form select[name=pattern] option')).map((option) => [option.value, option.textContent]);", vec![])
        .await;
    let mut listed: Vec<&str> = options
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|option| option[0].as_str())
        .filter(|name| !name.is_empty())
        .collect();
    names.sort_unstable();
    listed.sort_unstable();
    assert_eq!(listed, names, "the seed form's patterns");
    for pattern in patterns["patterns"].as_array().unwrap() {
        let description = text(pattern, "description");
        let shown = options.as_array().unwrap().iter().find(|option| option[0] == pattern["name"]).unwrap();
        let start: String = description.chars().take(20).collect();
        assert!(shown[1].as_str().unwrap().contains(&start), "{shown} lacks the description {description:?}");
    }

    // The target got every item of the session.
    let job = served.until_done(&format!("/api/v1/replays/{id}")).await;
    assert_eq!(job["state"], "completed", "{job}");
    let received = target.received();
    for (signal, key) in
        [(Signal::Traces, "capturedTraces"), (Signal::Metrics, "capturedMetrics"), (Signal::Logs, "capturedLogs")]
    {
        let items: u64 = received
            .iter()
            .filter(|request| request.signal == signal)
            .map(|request| request.request().item_count())
            .sum();
        assert_eq!(Some(items), metadata[key].as_u64(), "{signal:?} items received, the session holds {metadata}");
    }

    // The finished replay's page shows the report's charts.
    open(&browser, &served.api, &format!("replays/{id}"), "replay").await;
    for chart in ["#throughput-chart", "#lag-chart", "#lag-distribution", "#failures-chart"] {
        assert!(ink(&browser, &format!("{chart} canvas")).await > 0, "{chart} is blank");
    }
    let hash = browser.find("#evidence-hash").await.text().await;
    assert!(hash.contains(text(&job["report"], "contentHash")), "#evidence-hash: {hash}, the job: {job}");
    browser.find("#counts-table").await;
    browser.find("#options-table").await;
    browser.screenshot("ui-replay").await;
    assert_no_console_errors(&browser, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_is_asked_for_and_a_wrong_one_asked_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    seed(store, "basic-topology", "2s", "1", "guarded");
    let served = Served::start(store, &["--api-token", "s3cret-token"]);
    let browser = browser().await;
    browser.goto(&format!("{}/#/sessions", served.api)).await;
    let dialog_open = "document.getElementById('token-dialog').open";
    browser.wait_until(dialog_open, LIMIT).await;
    browser.screenshot("ui-token").await;

    // Whether the dialog closed since (or was drawn anew), as it does when
    // a token is submitted.
    let watch = "window.tokenDialog = document.getElementById('token-dialog'); window.tokenClosed = false; \
                 new MutationObserver(() => { if (!window.tokenDialog.open) window.tokenClosed = true; }) \
                 .observe(window.tokenDialog, {attributes: true, attributeFilter: ['open']});";
    browser.execute(watch, vec![]).await;
    browser.find("#token-input").await.send_keys("wrong-token").await;
    browser.find("#token-submit").await.click().await;
    // Refused: asked again, and nothing listed.
    let asked_again = format!(
        "(window.tokenClosed || document.getElementById('token-dialog') !== window.tokenDialog) && {dialog_open}"
    );
    browser.wait_until(&asked_again, LIMIT).await;
    assert!(session_rows(&browser).await.is_empty());

    let input = browser.find("#token-input").await;
    input.clear().await;
    input.send_keys("s3cret-token").await;
    browser.find("#token-submit").await.click().await;
    until_view(&browser, "sessions").await;
    until_rows(&browser, &["guarded"]).await;
    assert_eq!(browser.execute(&format!("return {dialog_open};"), vec![]).await, json!(false));
    // Kept for the tab: a reload asks no more.
    browser.goto(&format!("{}/#/sessions", served.api)).await;
    until_rows(&browser, &["guarded"]).await;
    assert_eq!(browser.execute(&format!("return {dialog_open};"), vec![]).await, json!(false));
    // The browser reports each refused request as a failed load.
    assert_no_console_errors(&browser, &["401 (Unauthorized)"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sessions_compared_side_by_side() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    seed(store, "basic-topology", "2s", "1", "A");
    seed(store, "basic-topology", "2s", "2", "B");
    let served = Served::start(store, &[]);
    let browser = browser().await;
    for (actual, verdict) in [("A", "pass"), ("B", "fail")] {
        open(&browser, &served.api, "compare", "compare").await;
        let form = browser.find("#compare-form").await;
        fill(&form, "expected", "A").await;
        fill(&form, "actual", actual).await;
        form.find("button[type=submit]").await.click().await;
        let shown = "document.getElementById('compare-verdict') && \
                     document.getElementById('compare-verdict').textContent.trim() !== ''";
        browser.wait_until(shown, LIMIT).await;
        let said = browser.find("#compare-verdict").await.text().await;
        assert!(said.to_lowercase().contains(verdict), "A against {actual}: #compare-verdict says {said}");
        for (column, session) in [("#compare-expected", "A"), ("#compare-actual", actual)] {
            let text = browser.find(&format!("#compare-result {column}")).await.text().await;
            assert!(text.contains(session), "{column}: {text}");
        }
        browser.screenshot(&format!("ui-compare-{actual}")).await;
    }
    assert_no_console_errors(&browser, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capture_started_from_the_form_records_and_stops_from_its_row() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(dir.path(), &[]);
    let browser = browser().await;
    open(&browser, &served.api, "live", "live").await;
    let form = browser.find("#capture-form").await;
    fill(&form, "sessionId", "ui-capture").await;
    form.find("button[type=submit]").await.click().await;
    browser.wait_until("document.getElementById('form-result').textContent.includes('ui-capture')", LIMIT).await;
    let row = "#live-captures tbody tr[data-capture-id=ui-capture]";
    browser.wait_for(&format!("{row}[data-status=running]"), LIMIT).await;

    // What the capture's receiver gets is recorded; the row's stop ends it.
    crate::serve::export_spans(&served.http, 3).await;
    let counted = "/api/v1/captures/ui-capture";
    let deadline = std::time::Instant::now() + LIMIT;
    while served.get(counted).await["counts"]["traces"]["items"] != 30 {
        assert!(
            std::time::Instant::now() < deadline,
            "the capture did not count 30 spans: {}",
            served.get(counted).await
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    browser.execute("document.getElementById('live-captures').scrollIntoView();", vec![]).await;
    browser.screenshot("ui-live-capture").await;
    browser.find(&format!("{row} [data-action=stop]")).await.click().await;
    browser.wait_for(&format!("{row}:not([data-status=running])"), LIMIT).await;
    let job = served.until_done(counted).await;
    let status = browser.find(row).await.attribute("data-status").await;
    assert_eq!(status.as_deref(), job["state"].as_str(), "{job}");
    assert_eq!(job["state"], "completed", "{job}");
    assert_eq!(served.get("/api/v1/sessions/ui-capture").await["capturedTraces"], 30);
    assert_no_console_errors(&browser, &[]).await;
}
