//! The traces of a window.

use tape_browse::{Error, TracesQuery, traces};

use crate::{at, decode, expected_rows, id, is_error, make_active, seeded, store};

fn query(session: &str) -> TracesQuery {
    TracesQuery { session: id(session), from: None, until: None, limit: 1000, service: None, errors_only: false }
}

#[tokio::test]
async fn a_window_lists_exactly_the_traces_with_spans_received_in_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let metadata = seeded(&store, "s", 10).await;
    let spans = decode(&store, &metadata).await;
    let (from, until) = (at(&metadata, 2), at(&metadata, 5));
    let expected = expected_rows(&spans, from, until);
    assert!(expected.len() > 5, "the window holds traces: {}", expected.len());

    let list = traces(&store, &TracesQuery { from: Some(from), until: Some(until), ..query("s") }).await.unwrap();
    assert_eq!((list.from, list.until, list.truncated), (from, until, false));
    assert_eq!(list.traces, expected);
    // The generator's traces have a root with a service and an operation,
    // and more than one span; some of them failed.
    assert!(list.traces.iter().all(|row| row.root_service.is_some() && row.root_name.is_some()), "{list:?}");
    assert!(list.traces.iter().any(|row| row.spans > 1 && row.duration_nanos > 0), "{list:?}");
    assert!(list.traces.iter().any(|row| row.error_spans > 0), "{list:?}");

    // The whole session: its start and the end of its records by default.
    let whole = traces(&store, &query("s")).await.unwrap();
    assert_eq!(whole.from, metadata.start_time);
    assert!(whole.until >= metadata.end_time.unwrap());
    assert_eq!(whole.traces, expected_rows(&spans, whole.from, whole.until));
    assert_eq!(whole.traces.len(), 50, "10 s at 5 traces a second");
    let json = serde_json::to_value(&list).unwrap();
    assert!(json["traces"][0]["startTimeUnixNano"].is_string(), "{json}");
    assert!(json["traces"][0]["durationNanos"].is_u64(), "{json}");
}

#[tokio::test]
async fn the_limit_stops_admitting_traces_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let metadata = seeded(&store, "s", 4).await;
    let spans = decode(&store, &metadata).await;
    let all = traces(&store, &query("s")).await.unwrap();
    assert_eq!(all.traces.len(), 20);

    let first = traces(&store, &TracesQuery { limit: 3, ..query("s") }).await.unwrap();
    assert!(first.truncated);
    assert_eq!(first.traces, all.traces[..3]);
    // Admitted traces keep counting their spans until the window ends.
    let expected = expected_rows(&spans, all.from, all.until);
    assert_eq!(first.traces, expected[..3]);

    let exact = traces(&store, &TracesQuery { limit: 20, ..query("s") }).await.unwrap();
    assert!(!exact.truncated);
    assert_eq!(exact.traces, all.traces);
}

#[tokio::test]
async fn filters_keep_traces_with_a_matching_span() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let metadata = seeded(&store, "s", 6).await;
    let spans = decode(&store, &metadata).await;
    let all = traces(&store, &query("s")).await.unwrap();

    // A service that not every trace reaches, else the first span's.
    let services: Vec<&String> = spans.iter().map(|decoded| &decoded.service).collect();
    let service = services
        .iter()
        .find(|service| all.traces.iter().any(|row| !row.services.contains(service)))
        .copied()
        .unwrap_or(services[0])
        .clone();
    let with_service = traces(&store, &TracesQuery { service: Some(service.clone()), ..query("s") }).await.unwrap();
    let expected: Vec<_> = all.traces.iter().filter(|row| row.services.contains(&service)).cloned().collect();
    assert!(!expected.is_empty());
    assert_eq!(with_service.traces, expected);

    let errors = traces(&store, &TracesQuery { errors_only: true, ..query("s") }).await.unwrap();
    let expected: Vec<_> = all.traces.iter().filter(|row| row.error_spans > 0).cloned().collect();
    assert!(!expected.is_empty() && expected.len() < all.traces.len(), "{} of {}", expected.len(), all.traces.len());
    assert_eq!(errors.traces, expected);

    // Both: a span of the service with an error status.
    let both =
        traces(&store, &TracesQuery { service: Some(service.clone()), errors_only: true, ..query("s") }).await.unwrap();
    let matching: std::collections::HashSet<String> = spans
        .iter()
        .filter(|decoded| decoded.service == service && is_error(&decoded.span))
        .map(|decoded| hex::encode(&decoded.span.trace_id))
        .collect();
    let expected: Vec<_> = all.traces.iter().filter(|row| matching.contains(&row.trace_id)).cloned().collect();
    assert_eq!(both.traces, expected);

    // With a limit, the first matching traces, and truncated.
    let errors_first = traces(&store, &TracesQuery { errors_only: true, limit: 1, ..query("s") }).await.unwrap();
    assert!(errors_first.truncated);
    assert_eq!(errors_first.traces, errors.traces[..1]);
    let nobody = traces(&store, &TracesQuery { service: Some("nobody".to_owned()), ..query("s") }).await.unwrap();
    assert!(nobody.traces.is_empty() && !nobody.truncated);
}

#[tokio::test]
async fn bad_queries_and_sessions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let metadata = seeded(&store, "s", 2).await;

    for (bad, fragment) in [
        (TracesQuery { limit: 0, ..query("s") }, "limit 0 is not 1 to 1000"),
        (TracesQuery { limit: 1001, ..query("s") }, "limit 1001 is not 1 to 1000"),
        (TracesQuery { service: Some(String::new()), ..query("s") }, "service is empty"),
        (
            TracesQuery { from: Some(at(&metadata, 1)), until: Some(at(&metadata, 1)), ..query("s") },
            "from 2026-01-01T00:00:01Z is not before until 2026-01-01T00:00:01Z",
        ),
    ] {
        let error = traces(&store, &bad).await.unwrap_err();
        assert!(matches!(error, Error::Invalid(_)), "{error:?}");
        assert!(error.to_string().contains(fragment), "{error}");
    }
    let missing = traces(&store, &query("missing")).await.unwrap_err();
    assert!(matches!(missing, Error::Store(tape_session::Error::NotFound(_))), "{missing:?}");

    make_active(&store, &id("s")).await;
    let active = traces(&store, &query("s")).await.unwrap_err();
    assert!(matches!(&active, Error::Active(session) if session.as_str() == "s"), "{active:?}");
    assert_eq!(active.to_string(), "session s is still being recorded; open it once its capture has ended");
}

#[tokio::test]
async fn a_corrupt_blob_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let metadata = seeded(&store, "s", 3).await;
    let blob = metadata.blobs.iter().find(|blob| blob.signal == tape_otlp::Signal::Traces).unwrap();
    let path = dir.path().join("sessions/s").join(blob.key.to_string());
    let mut bytes = std::fs::read(&path).unwrap();
    let (middle, end) = (bytes.len() / 2, bytes.len().min(bytes.len() / 2 + 64));
    for byte in &mut bytes[middle..end] {
        *byte ^= 0x5a;
    }
    std::fs::write(&path, bytes).unwrap();

    let error = traces(&store, &query("s")).await.unwrap_err();
    assert!(matches!(error, Error::Store(tape_session::Error::CorruptBlob { .. })), "{error:?}");
    assert!(error.to_string().contains(&blob.key.to_string()), "{error}");
}
