//! What the web UI reads of a session through the control API of the real
//! `serve`: its timeline, the traces of a window and one trace; bad ids,
//! windows and parameters answered 400, unknown sessions and traces 404, a
//! session still being recorded 409, and the token required when set.

use std::path::Path;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::serve::Served;
use crate::{edit_metadata, tape};

/// Two seconds of basic-topology at 5 traces a second with a fixed seed
/// and many errors, as session `id`.
fn seed(store: &Path, id: &str) {
    let args = ["seed", "--pattern", "basic-topology", "--duration", "2s", "--rate", "5", "--seed", "5"];
    tape(store).args(args).args(["--error-rate", "0.3", "--session-id", id]).assert().success();
}

/// The error message of a GET answered with `status`.
async fn refused(served: &Served, path: &str, status: StatusCode) -> String {
    let (answered, answer) = served.call(Method::GET, path, None).await;
    assert_eq!(answered, status, "{path}: {answer}");
    assert_eq!(answer["error"]["status"], status.as_u16(), "{path}: {answer}");
    answer["error"]["message"].as_str().unwrap_or_else(|| panic!("{path}: {answer}")).to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_traces_of_a_window_and_one_trace() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    seed(store, "S");
    let served = Served::start(store, &[]);

    let all = served.get("/api/v1/sessions/S/traces").await;
    assert_eq!((&all["sessionId"], &all["truncated"]), (&Value::from("S"), &Value::from(false)), "{all}");
    assert_eq!(all["from"], "2026-01-01T00:00:00Z", "{all}");
    let rows = all["traces"].as_array().unwrap();
    assert_eq!(rows.len(), 10, "2 s at 5 traces a second: {all}");
    for row in rows {
        assert!(row["traceId"].as_str().is_some_and(|id| id.len() == 32), "{row}");
        assert!(row["startTimeUnixNano"].as_str().is_some_and(|time| time.parse::<u64>().is_ok()), "{row}");
        assert!(row["spans"].as_u64() > Some(0) && row["rootService"].is_string(), "{row}");
    }

    // A window of the first second, a limit, the filters.
    let window = "from=2026-01-01T00:00:00Z&until=2026-01-01T00:00:01Z";
    let first = served.get(&format!("/api/v1/sessions/S/traces?{window}")).await;
    let first_rows = first["traces"].as_array().unwrap();
    assert!(!first_rows.is_empty() && first_rows.len() < rows.len(), "{first}");
    assert!(first_rows.iter().all(|row| row["firstReceive"].as_str().unwrap() < "2026-01-01T00:00:01Z"), "{first}");
    let two = served.get("/api/v1/sessions/S/traces?limit=2").await;
    assert_eq!(two["traces"].as_array().unwrap()[..], rows[..2], "{two}");
    assert_eq!(two["truncated"], true, "{two}");
    let errors = served.get("/api/v1/sessions/S/traces?errorsOnly=true").await;
    let expected: Vec<&Value> = rows.iter().filter(|row| row["errorSpans"].as_u64() > Some(0)).collect();
    assert!(!expected.is_empty(), "{all}");
    assert_eq!(errors["traces"].as_array().unwrap().iter().collect::<Vec<_>>(), expected);
    let service = rows[0]["rootService"].as_str().unwrap();
    let of_service = served.get(&format!("/api/v1/sessions/S/traces?service={service}&errorsOnly=false")).await;
    let expected: Vec<&Value> =
        rows.iter().filter(|row| row["services"].as_array().unwrap().contains(&Value::from(service))).collect();
    assert_eq!(of_service["traces"].as_array().unwrap().iter().collect::<Vec<_>>(), expected);

    // One trace: its spans by start, as many as the list counted.
    let row = &rows[0];
    let trace_id = row["traceId"].as_str().unwrap();
    let trace = served.get(&format!("/api/v1/sessions/S/traces/{trace_id}")).await;
    assert_eq!(trace["traceId"], trace_id);
    let spans = trace["spans"].as_array().unwrap();
    assert_eq!(Some(spans.len() as u64), row["spans"].as_u64(), "{trace}");
    let starts: Vec<u64> =
        spans.iter().map(|span| span["startTimeUnixNano"].as_str().unwrap().parse().unwrap()).collect();
    assert!(starts.is_sorted(), "{trace}");
    assert_eq!(spans[0]["name"], row["rootName"], "{trace}");
    assert!(spans.iter().all(|span| span["status"]["code"].is_string() && span["kind"].is_string()), "{trace}");
    let windowed = served.get(&format!("/api/v1/sessions/S/traces/{trace_id}?{window}")).await;
    assert_eq!(windowed["spans"], trace["spans"], "the first trace's records are in the first second");
    assert!(served.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeline_counts_the_items_of_every_second() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    seed(store, "S");
    let served = Served::start(store, &[]);
    let metadata = served.get("/api/v1/sessions/S").await;
    let timeline = served.get("/api/v1/sessions/S/timeline").await;
    assert_eq!(
        (&timeline["version"], &timeline["sessionId"], &timeline["bucketSeconds"]),
        (&1.into(), &"S".into(), &1.into())
    );
    let rows = timeline["rows"].as_array().unwrap();
    let start = 1_767_225_600; // 2026-01-01T00:00:00Z
    let seconds: Vec<u64> = rows.iter().map(|row| row[0].as_u64().unwrap()).collect();
    assert!(
        seconds.is_sorted() && seconds.first() >= Some(&start) && seconds.last() <= Some(&(start + 2)),
        "{timeline}"
    );
    let total = |column: usize| rows.iter().map(|row| row[column].as_u64().unwrap()).sum::<u64>();
    assert_eq!(
        (total(1), total(2), total(3)),
        (
            metadata["capturedTraces"].as_u64().unwrap(),
            metadata["capturedMetrics"].as_u64().unwrap(),
            metadata["capturedLogs"].as_u64().unwrap()
        ),
        "{timeline}"
    );
    // The error spans per second add up to those of the traces.
    let traces = served.get("/api/v1/sessions/S/traces").await;
    let errors: u64 = traces["traces"].as_array().unwrap().iter().map(|row| row["errorSpans"].as_u64().unwrap()).sum();
    assert!(errors > 0, "{traces}");
    assert_eq!(total(4), errors, "{timeline}");
    // A session without timeline.json gets the same one, built from its blobs.
    std::fs::remove_file(store.join("sessions/S/timeline.json")).unwrap();
    assert_eq!(served.get("/api/v1/sessions/S/timeline").await, timeline);
    assert!(store.join("sessions/S/timeline.json").exists());
    assert!(served.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_with_their_status() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    seed(store, "S");
    // A session still being recorded.
    seed(store, "LIVE");
    edit_metadata(store, "LIVE", |metadata| {
        metadata["status"] = "active".into();
        metadata.as_object_mut().unwrap().remove("endTime");
    });
    let served = Served::start(store, &[]);
    let trace_id = "0123456789abcdef0123456789abcdef";

    for (path, status, fragment) in [
        ("/api/v1/sessions/bad%20id/traces", StatusCode::BAD_REQUEST, "\"bad id\""),
        ("/api/v1/sessions/bad%20id/timeline", StatusCode::BAD_REQUEST, "\"bad id\""),
        (&format!("/api/v1/sessions/bad%20id/traces/{trace_id}"), StatusCode::BAD_REQUEST, "\"bad id\""),
        ("/api/v1/sessions/missing/traces", StatusCode::NOT_FOUND, "session missing not found"),
        ("/api/v1/sessions/missing/timeline", StatusCode::NOT_FOUND, "session missing not found"),
        (&format!("/api/v1/sessions/missing/traces/{trace_id}"), StatusCode::NOT_FOUND, "session missing not found"),
        ("/api/v1/sessions/LIVE/traces", StatusCode::CONFLICT, "session LIVE is still being recorded"),
        ("/api/v1/sessions/LIVE/timeline", StatusCode::CONFLICT, "session LIVE is still being recorded"),
        (
            &format!("/api/v1/sessions/LIVE/traces/{trace_id}"),
            StatusCode::CONFLICT,
            "session LIVE is still being recorded",
        ),
        (
            "/api/v1/sessions/S/traces?from=2026-01-01T00:00:01Z&until=2026-01-01T00:00:01Z",
            StatusCode::BAD_REQUEST,
            "from 2026-01-01T00:00:01Z is not before until 2026-01-01T00:00:01Z",
        ),
        (
            "/api/v1/sessions/S/traces?from=yesterday",
            StatusCode::BAD_REQUEST,
            "from \"yesterday\" is not an RFC 3339 time",
        ),
        (
            "/api/v1/sessions/S/traces?until=2026-01-01",
            StatusCode::BAD_REQUEST,
            "until \"2026-01-01\" is not an RFC 3339",
        ),
        ("/api/v1/sessions/S/traces?limit=0", StatusCode::BAD_REQUEST, "limit 0 is not 1 to 1000"),
        ("/api/v1/sessions/S/traces?limit=1001", StatusCode::BAD_REQUEST, "limit 1001 is not 1 to 1000"),
        (
            "/api/v1/sessions/S/traces?limit=many",
            StatusCode::BAD_REQUEST,
            "limit \"many\" is not a number from 1 to 1000",
        ),
        (
            "/api/v1/sessions/S/traces?errorsOnly=yes",
            StatusCode::BAD_REQUEST,
            "errorsOnly \"yes\" is not true or false",
        ),
        ("/api/v1/sessions/S/traces?service=", StatusCode::BAD_REQUEST, "service is empty"),
        ("/api/v1/sessions/S/traces?limit=1&limit=2", StatusCode::BAD_REQUEST, "limit is given more than once"),
        ("/api/v1/sessions/S/traces?colour=red", StatusCode::BAD_REQUEST, "unknown query parameter \"colour\""),
        (
            &format!("/api/v1/sessions/S/traces/{trace_id}?limit=1"),
            StatusCode::BAD_REQUEST,
            "unknown query parameter \"limit\"; this endpoint takes from, until",
        ),
        (
            &format!("/api/v1/sessions/S/traces/{trace_id}?until=2026-01-01T00:00:00Z&from=2026-01-01T00:00:01Z"),
            StatusCode::BAD_REQUEST,
            "from 2026-01-01T00:00:01Z is not before until",
        ),
        ("/api/v1/sessions/S/traces/abc", StatusCode::BAD_REQUEST, "trace id \"abc\" is not 32 hex digits"),
        ("/api/v1/sessions/S/traces/0123456789abcdef0123456789abcdeX", StatusCode::BAD_REQUEST, "is not 32 hex digits"),
        (
            "/api/v1/sessions/S/traces/00000000000000000000000000000000",
            StatusCode::BAD_REQUEST,
            "is not 32 hex digits (16 bytes, not all zero)",
        ),
        (&format!("/api/v1/sessions/S/traces/{trace_id}"), StatusCode::NOT_FOUND, "no span of trace 0123456789abcdef"),
        (
            &format!("/api/v1/sessions/S/traces/{trace_id}?from=2026-01-01T00:00:01Z"),
            StatusCode::NOT_FOUND,
            "in session S between 2026-01-01T00:00:01Z and",
        ),
    ] {
        let message = refused(&served, path, status).await;
        assert!(message.contains(fragment), "{path}: {message}");
    }
    assert!(served.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_the_endpoints_need_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    seed(store, "S");
    let served = Served::start(store, &["--api-token", "browse-token"]);
    let client = reqwest::Client::new();
    for path in ["/api/v1/sessions/S/timeline", "/api/v1/sessions/S/traces"] {
        let response = client.get(format!("{}{path}", served.api)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
        let wrong = client.get(format!("{}{path}", served.api)).bearer_auth("wrong").send().await.unwrap();
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
    let rows = served.get("/api/v1/sessions/S/traces").await;
    let trace_id = rows["traces"][0]["traceId"].as_str().unwrap();
    let path = format!("/api/v1/sessions/S/traces/{trace_id}");
    let response = client.get(format!("{}{path}", served.api)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(served.get(&path).await["spans"].as_array().is_some_and(|spans| !spans.is_empty()));
    assert!(served.terminate().success());
}
