//! The traces of a window and one trace, read from real sessions in a real
//! local store: seeded by the generator (fixed seeds), written with
//! `SessionWriter` where a span needs events and links, and damaged on
//! disk; every answer is checked against an independent decode of the
//! session's blobs.

mod trace;
mod traces;

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use futures::TryStreamExt;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use tape_browse::TraceSummary;
use tape_otlp::Signal;
use tape_session::{SessionId, SessionMetadata, SessionStatus, SessionStore, Timestamp, read_session};
use tape_store::LocalStore;

const SECOND: u64 = 1_000_000_000;

/// A session id.
pub fn id(text: &str) -> SessionId {
    SessionId::new(text).expect("a valid id")
}

/// A local store in `dir`.
pub fn store(dir: &Path) -> LocalStore {
    LocalStore::new(dir)
}

/// Seeds `seconds` of basic-topology at 5 traces a second with a fixed
/// seed and a high error rate as session `session`.
pub async fn seeded(store: &dyn SessionStore, session: &str, seconds: u64) -> SessionMetadata {
    let config: tape_seed::SeedConfig = serde_json::from_value(serde_json::json!({
        "pattern": "basic-topology",
        "duration": format!("{seconds}s"),
        "rate": 5,
        "errorRate": 0.2,
        "seed": 17,
        "sessionId": session,
    }))
    .expect("a seed config");
    let seed = config.validate().expect("a valid seed config");
    tape_seed::run(store, &seed, None, None, &tokio_util::sync::CancellationToken::new()).await.expect("seeded");
    store.read_metadata(&id(session)).await.expect("the seeded session")
}

/// The session's time at `seconds` after its start.
pub fn at(metadata: &SessionMetadata, seconds: u64) -> Timestamp {
    Timestamp::from_unix_nanos(metadata.start_time.unix_nanos() + seconds * SECOND)
}

/// One span as the test decodes it: its record's receive time, its
/// resource's service, the span.
pub struct Decoded {
    /// Unix nanoseconds.
    pub receive_time: u64,
    /// `service.name`, or `unknown_service`.
    pub service: String,
    /// The span.
    pub span: Span,
}

/// Every span of the session's trace records, decoded here (not by
/// tape-browse), in the order of the blobs.
pub async fn decode(store: &dyn SessionStore, metadata: &SessionMetadata) -> Vec<Decoded> {
    let records: Vec<_> = read_session(store, metadata, |signal| signal == Signal::Traces)
        .try_collect()
        .await
        .expect("the session reads");
    let mut spans = Vec::new();
    for (_, record) in records {
        let request = ExportTraceServiceRequest::decode(record.payload).expect("a traces request");
        for resource_spans in request.resource_spans {
            let service = resource_spans
                .resource
                .iter()
                .flat_map(|resource| &resource.attributes)
                .find(|attribute| attribute.key == "service.name")
                .and_then(|attribute| match attribute.value.as_ref()?.value.as_ref()? {
                    Any::StringValue(name) => Some(name.clone()),
                    _ => None,
                })
                .unwrap_or_else(|| "unknown_service".to_owned());
            for span in resource_spans.scope_spans.into_iter().flat_map(|scope| scope.spans) {
                spans.push(Decoded { receive_time: record.receive_time_unix_nano, service: service.clone(), span });
            }
        }
    }
    spans
}

/// Whether a span's status is an error (code 2).
pub fn is_error(span: &Span) -> bool {
    span.status.as_ref().is_some_and(|status| status.code == 2)
}

/// The rows the list of `[from, until)` must hold, from the decoded spans:
/// every trace with a span received in the window, first received first.
pub fn expected_rows(spans: &[Decoded], from: Timestamp, until: Timestamp) -> Vec<TraceSummary> {
    let mut order: Vec<Vec<u8>> = Vec::new();
    let mut rows: HashMap<Vec<u8>, TraceSummary> = HashMap::new();
    let mut ends: HashMap<Vec<u8>, u64> = HashMap::new();
    let window = from.unix_nanos()..until.unix_nanos();
    for decoded in spans.iter().filter(|decoded| window.contains(&decoded.receive_time)) {
        let span = &decoded.span;
        let row = rows.entry(span.trace_id.clone()).or_insert_with(|| {
            order.push(span.trace_id.clone());
            TraceSummary {
                trace_id: hex::encode(&span.trace_id),
                root_service: None,
                root_name: None,
                spans: 0,
                services: Vec::new(),
                start_time_unix_nano: u64::MAX.to_string(),
                duration_nanos: 0,
                error_spans: 0,
                first_receive: Timestamp::from_unix_nanos(decoded.receive_time),
            }
        });
        row.spans += 1;
        let mut services: BTreeSet<String> = row.services.drain(..).collect();
        services.insert(decoded.service.clone());
        row.services = services.into_iter().collect();
        if span.parent_span_id.is_empty() && row.root_name.is_none() {
            row.root_service = Some(decoded.service.clone());
            row.root_name = Some(span.name.clone());
        }
        let start = row.start_time_unix_nano.parse::<u64>().unwrap().min(span.start_time_unix_nano);
        row.start_time_unix_nano = start.to_string();
        let end = ends.entry(span.trace_id.clone()).or_default();
        *end = (*end).max(span.end_time_unix_nano);
        row.duration_nanos = end.saturating_sub(start);
        row.error_spans += u64::from(is_error(span));
    }
    let mut listed: Vec<TraceSummary> = order.iter().map(|key| rows[key].clone()).collect();
    listed.sort_by_key(|row| row.first_receive);
    listed
}

/// Marks a completed session as still being recorded.
pub async fn make_active(store: &dyn SessionStore, session: &SessionId) {
    let mut metadata = store.read_metadata(session).await.expect("the session");
    metadata.status = SessionStatus::Active;
    metadata.end_time = None;
    store.write_metadata(&metadata).await.expect("written");
}
