//! The copies hold the seed's items, in other requests, with exactly the
//! alterations they report.

use futures::TryStreamExt;
use tape_otlp::proto::trace::v1::Span;
use tape_otlp::{ExportRequest, Signal, SignalSet};
use tape_seed_generator::{DEFAULT_START, Generator, Params, Pattern, builtin_pattern};
use tape_session::{
    SessionId, SessionMetadata, SessionStatus, SessionStore, SessionType, SessionWriter, WriterOptions,
    read_session_in_time_order,
};
use tape_store::LocalStore;

use super::*;

async fn seed(store: &dyn SessionStore, id: &str) -> SessionMetadata {
    let pattern = Pattern::parse("high-load", builtin_pattern("high-load").unwrap()).unwrap();
    let params = Params {
        seed: 3,
        start: DEFAULT_START,
        duration_nanos: 2_000_000_000,
        rate: 50.0,
        error_rate: 0.05,
        signals: SignalSet::ALL,
    };
    let metadata = SessionMetadata::new(id.parse().unwrap(), SessionType::Seed, params.start, "test".to_owned());
    let mut writer = SessionWriter::create(store, metadata, WriterOptions::default()).await.unwrap();
    let mut last = params.start;
    for batch in Generator::new(&pattern, params).unwrap() {
        writer.append(batch.signal, batch.receive_time, batch.items, &batch.payload).await.unwrap();
        last = last.max(batch.receive_time);
    }
    writer.finish(last, SessionStatus::Completed).await.unwrap()
}

/// Every item of a session with its resource and scope, each as the
/// protobuf of a one-item request, sorted; and the requests' item counts.
async fn items(store: &dyn SessionStore, id: &str) -> (Vec<Vec<u8>>, Vec<u64>) {
    let metadata = store.read_metadata(&SessionId::new(id).unwrap()).await.unwrap();
    let records: Vec<_> = read_session_in_time_order(store, &metadata, |_| true).try_collect().await.unwrap();
    let mut items = Vec::new();
    let mut sizes = Vec::new();
    for (signal, record) in records {
        let request = ExportRequest::decode_protobuf(signal, &record.payload).unwrap();
        assert_eq!(request.item_count(), record.item_count);
        sizes.push(record.item_count);
        items.extend(one_item_requests(request));
    }
    items.sort();
    (items, sizes)
}

fn one_item_requests(request: ExportRequest) -> Vec<Vec<u8>> {
    let mut batches = Batches { traces: Batch::default(), logs: Batch::default(), metrics: Batch::default() };
    let mut spans = SpanAlterer { alter: false, seen: 0, alterations: Alterations::default() };
    batches.take(request, &mut spans, 1).iter().map(ExportRequest::encode_protobuf).collect()
}

#[tokio::test]
async fn a_copy_holds_the_same_items_in_requests_of_the_batch_size() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path());
    let expected = seed(&store, "seed").await;
    let written = write_rebatched(&store, &expected, &"copy".parse().unwrap(), 100, false).await.unwrap();
    let (seed_items, seed_sizes) = items(&store, "seed").await;
    let (copy_items, copy_sizes) = items(&store, "copy").await;
    assert_eq!(written.alterations, Alterations::default());
    assert_eq!(written.items, expected.item_counts().total());
    assert_eq!(written.requests, copy_sizes.len() as u64);
    assert!(seed_items == copy_items, "the same items, with their resources and scopes");
    assert_ne!(seed_sizes, copy_sizes, "in other requests");
    // Spans and logs come 100 to a request but for each signal's last;
    // metrics a whole metric at a time.
    let metadata = store.read_metadata(&"copy".parse().unwrap()).await.unwrap();
    let requests = metadata.request_counts;
    let items = metadata.item_counts();
    assert_eq!(requests.traces, items.traces.div_ceil(100));
    assert_eq!(requests.logs, items.logs.div_ceil(100));
}

#[tokio::test]
async fn the_altered_copy_drops_renames_and_marks_one_span_in_a_period_each() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path());
    let expected = seed(&store, "seed").await;
    let spans = expected.item_counts().traces;
    assert!(spans > 2 * ALTERATION_PERIOD, "{spans} spans");
    let written = write_rebatched(&store, &expected, &"altered".parse().unwrap(), 8192, true).await.unwrap();
    let alterations = written.alterations;
    assert_eq!(alterations.dropped_spans, spans.div_ceil(ALTERATION_PERIOD));
    assert!(alterations.renamed_spans > 0 && alterations.attributed_spans > 0, "{alterations:?}");
    assert_eq!(written.items, expected.item_counts().total() - alterations.dropped_spans);

    let (seed_items, _) = items(&store, "seed").await;
    let (altered_items, _) = items(&store, "altered").await;
    let decoded = |items: &[Vec<u8>]| -> Vec<Span> {
        items
            .iter()
            .filter_map(|bytes| ExportRequest::decode_protobuf(Signal::Traces, bytes).ok())
            .filter_map(|request| match request {
                ExportRequest::Traces(request) => Some(request.resource_spans[0].scope_spans[0].spans[0].clone()),
                _ => None,
            })
            .filter(|span| !span.trace_id.is_empty())
            .collect()
    };
    let renamed = decoded(&altered_items).iter().filter(|span| span.name.ends_with(" (renamed)")).count();
    let marked = decoded(&altered_items)
        .iter()
        .filter(|span| span.attributes.iter().any(|attribute| attribute.key == ADDED_ATTRIBUTE))
        .count();
    assert_eq!((renamed as u64, marked as u64), (alterations.renamed_spans, alterations.attributed_spans));
    let unchanged = altered_items.iter().filter(|item| seed_items.binary_search(item).is_ok()).count() as u64;
    // Every other item (a whole metric counts as one here) is the seed's.
    assert_eq!(unchanged, altered_items.len() as u64 - alterations.changed());
    assert_eq!(altered_items.len() as u64, seed_items.len() as u64 - alterations.dropped_spans);
}
