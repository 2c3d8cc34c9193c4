//! One trace whole.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};
use prost::Message;
use serde_json::json;
use tape_browse::{Error, TraceQuery, TracesQuery, trace, traces};
use tape_otlp::Signal;
use tape_session::{SessionMetadata, SessionStatus, SessionType, SessionWriter, Timestamp, WriterOptions};

use crate::{SECOND, at, decode, id, make_active, seeded, store};

fn query(session: &str, trace_id: &str) -> TraceQuery {
    TraceQuery { session: id(session), trace_id: trace_id.to_owned(), from: None, until: None }
}

#[tokio::test]
async fn a_trace_holds_every_span_of_it_by_start_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let metadata = seeded(&store, "s", 6).await;
    let spans = decode(&store, &metadata).await;
    let list = traces(
        &store,
        &TracesQuery { session: id("s"), from: None, until: None, limit: 1000, service: None, errors_only: false },
    )
    .await
    .unwrap();
    // The trace with the most spans, one with an error if any has.
    let row = list.traces.iter().max_by_key(|row| (row.error_spans > 0, row.spans)).unwrap();
    let found = trace(&store, &query("s", &row.trace_id.to_uppercase())).await.unwrap();
    assert_eq!((found.session_id.as_str(), found.trace_id.as_str()), ("s", row.trace_id.as_str()));

    let mut expected: Vec<_> =
        spans.iter().filter(|decoded| hex::encode(&decoded.span.trace_id) == row.trace_id).collect();
    expected.sort_by_key(|decoded| (decoded.span.start_time_unix_nano, decoded.span.span_id.clone()));
    assert_eq!(found.spans.len(), expected.len());
    assert_eq!(u64::try_from(found.spans.len()).unwrap(), row.spans);
    for (view, decoded) in found.spans.iter().zip(&expected) {
        let span = &decoded.span;
        assert_eq!(view.span_id, hex::encode(&span.span_id));
        let parent = (!span.parent_span_id.is_empty()).then(|| hex::encode(&span.parent_span_id));
        assert_eq!(view.parent_span_id, parent);
        assert_eq!((view.name.as_str(), view.service.as_str()), (span.name.as_str(), decoded.service.as_str()));
        assert_eq!(view.start_time_unix_nano, span.start_time_unix_nano.to_string());
        assert_eq!(view.duration_nanos, span.end_time_unix_nano - span.start_time_unix_nano);
        assert_eq!(view.status.code == "error", crate::is_error(span));
        assert_eq!(view.attributes.len(), span.attributes.len());
        assert_eq!(view.receive_time.unix_nanos(), decoded.receive_time);
        assert!(view.resource.contains_key("service.name"));
    }
    // Every parent is a span of the trace; the root has none.
    assert!(found.spans.iter().any(|view| view.parent_span_id.is_none()));
    for view in &found.spans {
        if let Some(parent) = &view.parent_span_id {
            assert!(found.spans.iter().any(|other| &other.span_id == parent), "{parent}");
        }
    }

    // Outside the window of its records it is not found, and the message
    // says which window.
    let first = found.spans.iter().map(|view| view.receive_time).min().unwrap();
    let before = TraceQuery { until: Some(first), ..query("s", &row.trace_id) };
    let error = trace(&store, &before).await.unwrap_err();
    assert!(matches!(error, Error::TraceNotFound { .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        format!("no span of trace {} in session s between {} and {first}", row.trace_id, metadata.start_time)
    );
    let within = TraceQuery {
        from: Some(first),
        until: Some(Timestamp::from_unix_nanos(first.unix_nanos() + 1)),
        ..query("s", &row.trace_id)
    };
    let part = trace(&store, &within).await.unwrap();
    assert!(!part.spans.is_empty() && part.spans.iter().all(|view| view.receive_time == first), "{part:?}");
}

#[tokio::test]
async fn unknown_and_invalid_trace_ids_and_active_sessions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let metadata = seeded(&store, "s", 2).await;
    let unknown = "0123456789abcdef0123456789abcdef";
    let error = trace(&store, &query("s", unknown)).await.unwrap_err();
    assert_eq!(error.to_string(), format!("no span of trace {unknown} in session s"));

    for bad in
        ["", "0123", "0123456789abcdef0123456789abcdeg", "00000000000000000000000000000000", &format!("{unknown}00")]
    {
        let error = trace(&store, &query("s", bad)).await.unwrap_err();
        assert!(matches!(error, Error::Invalid(_)), "{bad}: {error:?}");
        assert!(error.to_string().contains(&format!("trace id {bad:?} is not 32 hex digits")), "{error}");
    }
    let empty = TraceQuery { from: Some(at(&metadata, 1)), until: Some(at(&metadata, 0)), ..query("s", unknown) };
    assert!(trace(&store, &empty).await.unwrap_err().to_string().contains("is not before until"));

    make_active(&store, &id("s")).await;
    assert!(matches!(trace(&store, &query("s", unknown)).await.unwrap_err(), Error::Active(_)));
}

fn text(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(Any::StringValue(value.to_owned())) }),
        ..KeyValue::default()
    }
}

fn int(key: &str, value: i64) -> KeyValue {
    KeyValue { key: key.to_owned(), value: Some(AnyValue { value: Some(Any::IntValue(value)) }), ..KeyValue::default() }
}

/// A request of one span of `service`.
fn request(service: &str, span: Span) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource { attributes: vec![text("service.name", service)], ..Resource::default() }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope { name: "test-scope".to_owned(), ..InstrumentationScope::default() }),
                spans: vec![span],
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
}

#[tokio::test]
async fn events_links_kinds_and_attribute_values_are_shown() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let start = Timestamp::parse_rfc3339("2026-03-01T00:00:00Z").unwrap();
    let base = start.unix_nanos();
    let trace_id = vec![0xab; 16];
    let root = Span {
        trace_id: trace_id.clone(),
        span_id: vec![1; 8],
        name: "GET /checkout".to_owned(),
        kind: span::SpanKind::Server as i32,
        start_time_unix_nano: base + 100,
        end_time_unix_nano: base + 900,
        attributes: vec![text("http.method", "GET"), int("big", i64::MAX)],
        events: vec![span::Event {
            time_unix_nano: base + 500,
            name: "exception".to_owned(),
            attributes: vec![text("exception.type", "Timeout")],
            ..span::Event::default()
        }],
        links: vec![span::Link {
            trace_id: vec![0xcd; 16],
            span_id: vec![2; 8],
            attributes: vec![int("link.index", 7)],
            ..span::Link::default()
        }],
        status: Some(Status { code: 2, message: "timed out".to_owned() }),
        ..Span::default()
    };
    let child = Span {
        trace_id: trace_id.clone(),
        span_id: vec![3; 8],
        parent_span_id: vec![1; 8],
        name: "SELECT".to_owned(),
        kind: span::SpanKind::Client as i32,
        start_time_unix_nano: base + 100,
        end_time_unix_nano: base + 50,
        status: Some(Status { code: 1, message: String::new() }),
        ..Span::default()
    };
    let metadata = SessionMetadata::new(id("w"), SessionType::Capture, start, "test".to_owned());
    let mut writer = SessionWriter::create(&store, metadata, WriterOptions::default()).await.unwrap();
    // The child arrives first, in its own request, from another service.
    for (offset, request) in [(SECOND, request("db", child)), (2 * SECOND, request("shop", root))] {
        let received = Timestamp::from_unix_nanos(base + offset);
        writer.append(Signal::Traces, received, 1, &request.encode_to_vec()).await.unwrap();
    }
    writer.finish(Timestamp::from_unix_nanos(base + 3 * SECOND), SessionStatus::Completed).await.unwrap();

    let found = trace(&store, &query("w", &"ab".repeat(16))).await.unwrap();
    let json = serde_json::to_value(&found).unwrap();
    // Equal starts: by span id, so the root (01..) comes first.
    assert_eq!(
        json["spans"][0],
        json!({
            "spanId": "0101010101010101",
            "parentSpanId": null,
            "name": "GET /checkout",
            "kind": "server",
            "service": "shop",
            "scope": "test-scope",
            "startTimeUnixNano": (base + 100).to_string(),
            "endTimeUnixNano": (base + 900).to_string(),
            "durationNanos": 800,
            "status": {"code": "error", "message": "timed out"},
            "attributes": {"http.method": "GET", "big": i64::MAX.to_string()},
            "resource": {"service.name": "shop"},
            "events": [{
                "timeUnixNano": (base + 500).to_string(),
                "name": "exception",
                "attributes": {"exception.type": "Timeout"},
            }],
            "links": [{"traceId": "cd".repeat(16), "spanId": "0202020202020202", "attributes": {"link.index": 7}}],
            "receiveTime": "2026-03-01T00:00:02Z",
        })
    );
    let child = &json["spans"][1];
    assert_eq!(child["parentSpanId"], "0101010101010101");
    assert_eq!(
        (&child["kind"], &child["status"]["code"], &child["service"]),
        (&json!("client"), &json!("ok"), &json!("db"))
    );
    assert_eq!(child["durationNanos"], 0, "an end before the start is no duration");

    // The list: the root's service and operation though it came later,
    // both services, the error, the span from first start to last end.
    let list = traces(
        &store,
        &TracesQuery { session: id("w"), from: None, until: None, limit: 10, service: None, errors_only: false },
    )
    .await
    .unwrap();
    let row = serde_json::to_value(&list.traces).unwrap();
    assert_eq!(
        row,
        json!([{
            "traceId": "ab".repeat(16),
            "rootService": "shop",
            "rootName": "GET /checkout",
            "spans": 2,
            "services": ["db", "shop"],
            "startTimeUnixNano": (base + 100).to_string(),
            "durationNanos": 800,
            "errorSpans": 1,
            "firstReceive": "2026-03-01T00:00:01Z",
        }])
    );
    // A window without the root's record: no root.
    let early = traces(
        &store,
        &TracesQuery {
            session: id("w"),
            from: None,
            until: Some(Timestamp::from_unix_nanos(base + 2 * SECOND)),
            limit: 10,
            service: None,
            errors_only: false,
        },
    )
    .await
    .unwrap();
    assert_eq!((early.traces[0].root_name.as_deref(), early.traces[0].spans), (None, 1));
}
