//! One conformance suite for every [`SessionStore`] backend.
//!
//! Each check uses session ids of its own, so the suite can run against a
//! store that holds other sessions. A failed promise panics with a message
//! naming the check.

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use sha2::Digest;
use tape_otlp::{ExportRequest, Signal, sample};
use tape_session::{
    BlobKey, Error, Record, SessionId, SessionMetadata, SessionStatus, SessionStore, SessionType, SessionWriter,
    TIMELINE_VERSION, Timeline, TimelineBuilder, Timestamp, WriterOptions, list_sessions, read_blob, read_session,
    timeline,
};

mod writers;

pub use writers::{
    delete_removes_writer_files, files_are_created_once_and_replaced, writer_blobs_are_never_overwritten,
    writers_are_listed_sorted,
};

static NEXT: AtomicU64 = AtomicU64::new(0);

/// A session id unique within this process.
pub fn unique_id(what: &str) -> SessionId {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    SessionId::new(format!("conformance-{what}-{}-{n}", std::process::id())).unwrap()
}

/// 2026-11-22T09:59:58Z: two seconds before an hour boundary.
pub const START: Timestamp = Timestamp::from_unix_nanos(1_795_341_598_000_000_000);

/// Metadata of a new session of `session_type`.
pub fn new_metadata(id: SessionId, session_type: SessionType) -> SessionMetadata {
    SessionMetadata::new(id, session_type, START, "otlp-tape conformance".to_owned())
}

/// Records of every signal every 250 ms for four seconds from [`START`],
/// so that they cross an hour boundary.
pub fn sample_records() -> Vec<(Signal, Record)> {
    (0..16u64)
        .flat_map(|n| {
            let time = START.unix_nanos() + n * 250_000_000;
            let offset = n * 1_000;
            [
                ExportRequest::from(sample::traces("checkout", 3 + n % 5, offset)),
                ExportRequest::from(sample::metrics("checkout", offset)),
                ExportRequest::from(sample::logs("checkout", 1 + n % 3, offset)),
            ]
            .into_iter()
            .map(move |request| {
                let record = Record {
                    receive_time_unix_nano: time,
                    item_count: request.item_count(),
                    payload: Bytes::from(request.encode_protobuf()),
                };
                (request.signal(), record)
            })
        })
        .collect()
}

/// Writes `records` as a completed session.
pub async fn write_session(
    store: &dyn SessionStore,
    metadata: SessionMetadata,
    records: &[(Signal, Record)],
    options: WriterOptions,
) -> SessionMetadata {
    let mut writer = SessionWriter::create(store, metadata, options).await.expect("create the session");
    for (signal, record) in records {
        writer
            .append(*signal, record.receive_time(), record.item_count, &record.payload)
            .await
            .expect("append a record");
    }
    let end = records.last().map_or(START, |(_, record)| record.receive_time());
    writer.finish(end, SessionStatus::Completed).await.expect("finish the session")
}

/// Runs every check against `store`.
pub async fn run(store: &dyn SessionStore) {
    records_round_trip_byte_for_byte(store).await;
    listing_filters_by_type(store).await;
    incomplete_writes_are_invisible(store).await;
    missing_things_are_not_found(store).await;
    existing_things_are_not_overwritten(store).await;
    metadata_and_annotations_are_replaced_whole(store).await;
    timelines_are_kept_beside_the_metadata(store).await;
    delete_removes_everything(store).await;
    files_are_created_once_and_replaced(store).await;
    writers_are_listed_sorted(store).await;
    delete_removes_writer_files(store).await;
    writer_blobs_are_never_overwritten(store).await;
}

/// Every record comes back with the same bytes, in order per signal; blobs
/// are split at the hour boundary and by size; the metadata read back is
/// the metadata written, and every blob's hash matches its bytes.
pub async fn records_round_trip_byte_for_byte(store: &dyn SessionStore) {
    let records = sample_records();
    let id = unique_id("round-trip");
    // Small blobs, so that rolling by size happens as well.
    let options = WriterOptions { max_blob_bytes: 8 * 1024, chunk_bytes: 1024, ..WriterOptions::default() };
    let written = write_session(store, new_metadata(id.clone(), SessionType::Capture), &records, options).await;

    let read_back = store.read_metadata(&id).await.expect("read the metadata");
    assert_eq!(read_back, written, "metadata read back differs from metadata written");
    let partitions: std::collections::BTreeSet<String> =
        written.blobs.iter().map(|blob| blob.first_receive_time.hour_partition()).collect();
    assert_eq!(partitions.len(), 2, "records across an hour boundary must land in two hour partitions");
    assert!(written.blobs.len() > 6, "blobs must roll by size: {} blobs", written.blobs.len());
    for blob in &written.blobs {
        assert_eq!(
            blob.first_receive_time.hour_partition(),
            blob.last_receive_time.hour_partition(),
            "blob {} spans two hours",
            blob.key
        );
    }

    let mut listed = store.list_blobs(&id).await.expect("list blobs");
    let mut expected: Vec<BlobKey> = written.blobs.iter().map(|blob| blob.key.clone()).collect();
    listed.sort_by_key(ToString::to_string);
    expected.sort_by_key(ToString::to_string);
    assert_eq!(listed, expected, "list_blobs differs from the metadata's blob list");

    for signal in Signal::ALL {
        let want: Vec<&Record> = records.iter().filter(|(s, _)| *s == signal).map(|(_, record)| record).collect();
        let got: Vec<Record> = read_session(store, &written, |s| s == signal)
            .map_ok(|(_, record)| record)
            .try_collect()
            .await
            .expect("read the session back");
        assert_eq!(got.len(), want.len(), "{signal}: record count");
        for (got, want) in got.iter().zip(want) {
            assert_eq!(got, want, "{signal}: a record changed on its way through the store");
        }
    }

    for blob in &written.blobs {
        let bytes: Vec<Bytes> =
            store.open_blob(&id, &blob.key).await.expect("open blob").try_collect().await.expect("read blob");
        let all: Vec<u8> = bytes.concat();
        assert_eq!(all.len() as u64, blob.compressed_bytes, "size of {}", blob.key);
        assert_eq!(hex::encode(sha2::Sha256::digest(&all)), blob.sha256, "sha256 of {}", blob.key);
        let records = read_blob(store, &id, &blob.key).await.expect("open blob").count().await;
        assert_eq!(records as u64, blob.records, "records in {}", blob.key);
    }
}

/// Listing shows complete sessions, all of them or those of one type.
pub async fn listing_filters_by_type(store: &dyn SessionStore) {
    let records = &sample_records()[..6];
    let seed = unique_id("list-seed");
    let capture = unique_id("list-capture");
    write_session(store, new_metadata(seed.clone(), SessionType::Seed), records, WriterOptions::default()).await;
    write_session(store, new_metadata(capture.clone(), SessionType::Capture), records, WriterOptions::default()).await;

    let ids = |listing: tape_session::SessionListing| -> Vec<SessionId> {
        listing.sessions.into_iter().map(|metadata| metadata.session_id).collect()
    };
    let all = ids(list_sessions(store, None).await.expect("list"));
    assert!(all.contains(&seed) && all.contains(&capture), "unfiltered listing misses a session: {all:?}");
    let seeds = ids(list_sessions(store, Some(SessionType::Seed)).await.expect("list seeds"));
    assert!(seeds.contains(&seed), "seed listing misses the seed session");
    assert!(!seeds.contains(&capture), "seed listing shows a capture session");
    let training = ids(list_sessions(store, Some(SessionType::Training)).await.expect("list training"));
    assert!(!training.contains(&seed) && !training.contains(&capture), "training listing shows other types");
}

/// A blob is invisible until committed; a session is not listed until its
/// metadata is written; an aborted blob leaves nothing.
pub async fn incomplete_writes_are_invisible(store: &dyn SessionStore) {
    let id = unique_id("incomplete");
    store.create_session(&id).await.expect("create the session");
    let key = BlobKey::new(Signal::Traces, START, "1").unwrap();
    let mut sink = store.create_blob(&id, &key).await.expect("create a blob");
    sink.write(Bytes::from_static(b"partial bytes")).await.expect("write");

    assert!(store.list_blobs(&id).await.expect("list blobs").is_empty(), "an uncommitted blob is listed");
    match store.open_blob(&id, &key).await {
        Err(Error::BlobNotFound { .. }) => {}
        other => panic!("an uncommitted blob can be opened: {:?}", other.map(|_| ())),
    }
    let listed = list_sessions(store, None).await.expect("list");
    assert!(
        !listed.sessions.iter().any(|metadata| metadata.session_id == id),
        "a session without metadata.json is listed"
    );
    assert!(matches!(store.read_metadata(&id).await, Err(Error::NotFound(_))), "metadata of an incomplete session");

    sink.commit().await.expect("commit");
    assert_eq!(store.list_blobs(&id).await.expect("list blobs"), vec![key.clone()], "a committed blob is not listed");

    let aborted = BlobKey::new(Signal::Logs, START, "2").unwrap();
    let mut sink = store.create_blob(&id, &aborted).await.expect("create a blob");
    sink.write(Bytes::from_static(b"discarded")).await.expect("write");
    sink.abort().await.expect("abort");
    assert_eq!(store.list_blobs(&id).await.expect("list blobs"), vec![key], "an aborted blob is listed");
    store.delete_session(&id).await.expect("delete");
}

/// Reading what does not exist says so, precisely.
pub async fn missing_things_are_not_found(store: &dyn SessionStore) {
    let id = unique_id("missing");
    let key = BlobKey::new(Signal::Metrics, START, "1").unwrap();
    assert!(matches!(store.read_metadata(&id).await, Err(Error::NotFound(_))), "read_metadata of a missing session");
    assert!(matches!(store.delete_session(&id).await, Err(Error::NotFound(_))), "delete of a missing session");
    assert!(store.open_blob(&id, &key).await.is_err_and(|error| error.is_not_found()), "open_blob, missing session");
    assert!(matches!(store.list_blobs(&id).await, Err(Error::NotFound(_))), "list_blobs of a missing session");
    assert!(matches!(store.read_annotations(&id).await, Err(Error::NotFound(_))), "annotations of a missing session");
    assert!(
        matches!(store.write_annotations(&id, Bytes::from_static(b"{}\n")).await, Err(Error::NotFound(_))),
        "annotations written to a missing session"
    );
    assert!(matches!(store.read_timeline(&id).await, Err(Error::NotFound(_))), "timeline of a missing session");
    assert!(
        matches!(store.write_timeline(&id, Bytes::from_static(b"{}")).await, Err(Error::NotFound(_))),
        "timeline written to a missing session"
    );
    assert!(store.create_blob(&id, &key).await.is_err_and(|error| error.is_not_found()), "blob in a missing session");

    let records = &sample_records()[..3];
    write_session(store, new_metadata(id.clone(), SessionType::Seed), records, WriterOptions::default()).await;
    match store.open_blob(&id, &key).await {
        Err(Error::BlobNotFound { session, key: missing }) => {
            assert_eq!(session, id);
            assert_eq!(missing, key.to_string());
        }
        other => panic!("open_blob of a missing blob: {:?}", other.map(|_| ())),
    }
    assert_eq!(store.read_annotations(&id).await.expect("read annotations"), None, "annotations of a new session");
}

/// Session ids and blob keys are never reused or overwritten.
pub async fn existing_things_are_not_overwritten(store: &dyn SessionStore) {
    let id = unique_id("exists");
    let records = &sample_records()[..3];
    let written =
        write_session(store, new_metadata(id.clone(), SessionType::Seed), records, WriterOptions::default()).await;
    assert!(matches!(store.create_session(&id).await, Err(Error::AlreadyExists(_))), "create_session twice");
    match SessionWriter::create(store, new_metadata(id.clone(), SessionType::Seed), WriterOptions::default()).await {
        Err(Error::AlreadyExists(existing)) => assert_eq!(existing, id),
        other => panic!("a second writer on the same id: {:?}", other.map(|_| ())),
    }

    let key = &written.blobs[0].key;
    let mut sink = store.create_blob(&id, key).await.expect("create a blob");
    sink.write(Bytes::from_static(b"not the original")).await.expect("write");
    assert!(matches!(sink.commit().await, Err(Error::BlobExists { .. })), "a commit replaced an existing blob");
    let bytes: Vec<Bytes> = store.open_blob(&id, key).await.expect("open").try_collect().await.expect("read");
    assert_eq!(bytes.concat().len() as u64, written.blobs[0].compressed_bytes, "the original blob changed");
}

/// Metadata and annotations are replaced whole; the last write wins.
pub async fn metadata_and_annotations_are_replaced_whole(store: &dyn SessionStore) {
    let id = unique_id("replace");
    let records = &sample_records()[..3];
    let mut metadata =
        write_session(store, new_metadata(id.clone(), SessionType::Capture), records, WriterOptions::default()).await;
    metadata.description = Some("second version".to_owned());
    store.write_metadata(&metadata).await.expect("rewrite metadata");
    assert_eq!(store.read_metadata(&id).await.expect("read"), metadata);

    store.write_annotations(&id, Bytes::from_static(b"{\"a\":1}\n")).await.expect("write annotations");
    store.write_annotations(&id, Bytes::from_static(b"{\"b\":2}\n")).await.expect("rewrite annotations");
    assert_eq!(store.read_annotations(&id).await.expect("read"), Some(Bytes::from_static(b"{\"b\":2}\n")));

    let stranger = unique_id("replace-missing");
    let orphan = new_metadata(stranger, SessionType::Seed);
    assert!(store.write_metadata(&orphan).await.is_err_and(|error| error.is_not_found()), "metadata without a session");
}

/// Delete removes the metadata, blobs and annotations, and frees the id.
pub async fn delete_removes_everything(store: &dyn SessionStore) {
    let id = unique_id("delete");
    let records = &sample_records()[..6];
    write_session(store, new_metadata(id.clone(), SessionType::Capture), records, WriterOptions::default()).await;
    store.write_annotations(&id, Bytes::from_static(b"{}\n")).await.expect("write annotations");
    store.delete_session(&id).await.expect("delete");

    assert!(matches!(store.read_metadata(&id).await, Err(Error::NotFound(_))), "metadata after delete");
    assert!(!store.list_session_ids().await.expect("list").contains(&id), "id still listed after delete");
    assert!(matches!(store.delete_session(&id).await, Err(Error::NotFound(_))), "second delete");
    write_session(store, new_metadata(id.clone(), SessionType::Capture), records, WriterOptions::default()).await;
    assert!(store.read_metadata(&id).await.is_ok(), "the id cannot be reused after delete");
}

/// The writer keeps `timeline.json` with the session: every record counted
/// in its second, the metadata's content hash; it is replaced whole, a
/// broken one is built again from the blobs and kept, and delete removes
/// it.
pub async fn timelines_are_kept_beside_the_metadata(store: &dyn SessionStore) {
    let records = sample_records();
    let id = unique_id("timeline");
    let options = WriterOptions { max_blob_bytes: 8 * 1024, chunk_bytes: 1024, ..WriterOptions::default() };
    let metadata = write_session(store, new_metadata(id.clone(), SessionType::Capture), &records, options).await;

    let mut expected = TimelineBuilder::new();
    for (signal, record) in &records {
        expected.add_payload(*signal, record.receive_time(), &record.payload);
    }
    let expected = expected.build(id.clone(), metadata.content_hash.clone());
    let kept = store.read_timeline(&id).await.expect("read the timeline").expect("the writer kept a timeline");
    let kept: Timeline = serde_json::from_slice(&kept).expect("timeline.json parses");
    assert_eq!(kept, expected, "the kept timeline is not the records' timeline");
    assert_eq!(kept.version, TIMELINE_VERSION);
    let totals = kept.totals();
    let counts = metadata.item_counts();
    assert_eq!(
        (totals.traces, totals.metrics, totals.logs),
        (counts.get(Signal::Traces), counts.get(Signal::Metrics), counts.get(Signal::Logs)),
        "timeline totals differ from the metadata's item counts"
    );
    assert_eq!(timeline(store, &id).await.expect("timeline"), expected, "timeline() of a kept timeline");

    // Replaced whole; one that is not a timeline is built again and kept.
    store.write_timeline(&id, Bytes::from_static(b"{\"a\":1}")).await.expect("write the timeline");
    store.write_timeline(&id, Bytes::from_static(b"{\"b\":2}")).await.expect("rewrite the timeline");
    assert_eq!(store.read_timeline(&id).await.expect("read"), Some(Bytes::from_static(b"{\"b\":2}")));
    assert_eq!(timeline(store, &id).await.expect("timeline"), expected, "timeline() built from the blobs");
    let rebuilt = store.read_timeline(&id).await.expect("read").expect("the rebuilt timeline is kept");
    assert_eq!(serde_json::from_slice::<Timeline>(&rebuilt).expect("parses"), expected, "the rebuilt timeline kept");

    store.delete_session(&id).await.expect("delete");
    store.create_session(&id).await.expect("reuse the id");
    assert_eq!(store.read_timeline(&id).await.expect("read"), None, "a timeline survived delete");
    store.delete_session(&id).await.expect("delete again");
}
