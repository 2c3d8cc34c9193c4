//! Sessions with several writers on real stores (a local directory, the
//! in-process S3 server): joining, sealing exactly once when writers stop
//! together, and a stale seal marker.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tape_otlp::Signal;
use tape_session::{
    Error, FORMAT_VERSION_WRITERS, Record, SealOptions, SealOutcome, SessionFile, SessionId, SessionMetadata,
    SessionStatus, SessionStore, SessionType, SessionWriter, Timestamp, WriteMode, WriterId, WriterOptions,
    join_session, read_manifests, seal_session,
};
use tape_store::{LocalStore, S3Config, S3Store};
use tape_testkit::conformance::{START, new_metadata, sample_records, unique_id};
use tape_testkit::s3::S3TestServer;
use tokio::sync::Barrier;

pub fn writer(id: &str) -> WriterId {
    WriterId::new(id).unwrap()
}

/// A store on the in-process S3 server.
pub fn s3_store(server: &S3TestServer) -> S3Store {
    S3Store::new(S3Config {
        endpoint: Some(server.endpoint().to_owned()),
        bucket: server.bucket().to_owned(),
        prefix: "writers".to_owned(),
        region: "us-east-1".to_owned(),
        access_key_id: Some(server.access_key().to_owned()),
        secret_access_key: Some(server.secret_key().to_owned()),
        session_token: None,
    })
    .unwrap()
}

/// The records of writer number `n`: the sample records, shifted by `n`
/// milliseconds so that writers interleave in receive time.
pub fn records_of(n: u64) -> Vec<(Signal, Record)> {
    sample_records()
        .into_iter()
        .map(|(signal, record)| {
            (signal, Record { receive_time_unix_nano: record.receive_time_unix_nano + n * 1_000_000, ..record })
        })
        .collect()
}

/// Joins `id` as `writer` and writes `records`, committing blobs as it goes;
/// does not finish.
pub async fn joined_writer<'a>(
    store: &'a dyn SessionStore,
    id: &SessionId,
    writer: &WriterId,
    records: &[(Signal, Record)],
) -> SessionWriter<'a> {
    let options = WriterOptions { max_blob_bytes: 8 * 1024, chunk_bytes: 1024, ..WriterOptions::default() };
    let template = new_metadata(id.clone(), SessionType::Capture);
    let mut session = SessionWriter::join(store, template, writer.clone(), Some("host".to_owned()), options)
        .await
        .expect("join the session");
    for (signal, record) in records {
        session.append(*signal, record.receive_time(), record.item_count, &record.payload).await.expect("append");
    }
    session
}

fn end_of(records: &[(Signal, Record)]) -> Timestamp {
    records.iter().map(|(_, record)| record.receive_time()).max().unwrap_or(START)
}

#[tokio::test]
async fn writers_join_a_session_once_and_only_an_active_one_with_writers() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path());
    let id = unique_id("join");
    let template = new_metadata(id.clone(), SessionType::Capture);
    let first = join_session(&store, &template, &writer("node-1"), None, START).await.expect("the first join");
    assert!(first.created, "the first writer creates the session");
    assert_eq!(first.metadata.format_version, FORMAT_VERSION_WRITERS);
    assert_eq!(first.metadata.status, SessionStatus::Active);
    let second = join_session(&store, &template, &writer("node-2"), None, START).await.expect("the second join");
    assert!(!second.created, "the second writer finds the session");
    match join_session(&store, &template, &writer("node-1"), None, START).await {
        Err(Error::FileExists { session, file }) => {
            assert_eq!((session, file.as_str()), (id.clone(), "writers/node-1.json"));
        }
        other => panic!("a second writer with the same id joined: {other:?}"),
    }
    let manifests = read_manifests(&store, &id).await.unwrap();
    let ids: Vec<&str> = manifests.iter().map(|manifest| manifest.writer_id.as_str()).collect();
    assert_eq!(ids, ["node-1", "node-2"]);

    // Sealed (no writer active once both stopped): joining is refused, and
    // the refused writer leaves no manifest behind.
    for manifest in manifests {
        let stopped =
            tape_session::WriterManifest { status: SessionStatus::Completed, end_time: Some(START), ..manifest };
        let file = SessionFile::WriterManifest(stopped.writer_id.clone());
        store.write_file(&id, &file, Bytes::from(stopped.to_json()), WriteMode::Replace).await.unwrap();
    }
    let outcome = seal_session(&store, &id, None, SealOptions { wait: Duration::ZERO, by_writer: false }, START);
    assert!(matches!(outcome.await.unwrap(), SealOutcome::Sealed(_)));
    match join_session(&store, &template, &writer("node-3"), None, START).await {
        Err(Error::SessionNotJoinable { session, reason }) => {
            assert_eq!(session, id);
            assert!(reason.contains("completed"), "{reason}");
        }
        other => panic!("joined a completed session: {other:?}"),
    }
    assert_eq!(store.list_writers(&id).await.unwrap(), [writer("node-1"), writer("node-2")], "a refused manifest");

    // An active session written by a single writer cannot be joined.
    let single = unique_id("join-single");
    let options = WriterOptions { announce: true, ..WriterOptions::default() };
    let capture = SessionWriter::create(&store, new_metadata(single.clone(), SessionType::Capture), options).await;
    let _capture = capture.unwrap();
    let template = new_metadata(single.clone(), SessionType::Capture);
    match join_session(&store, &template, &writer("node-1"), None, START).await {
        Err(Error::SessionNotJoinable { reason, .. }) => assert!(reason.contains("single writer"), "{reason}"),
        other => panic!("joined a single-writer session: {other:?}"),
    }
    assert!(store.list_writers(&single).await.unwrap().is_empty(), "a refused manifest was left behind");
}

/// `writers` writers of one session each write records, then finish at
/// the same instant: exactly one seals, and the sealed metadata holds
/// every writer's blobs.
async fn writers_finish_together(store: Arc<dyn SessionStore>, writers: u64) {
    let id = unique_id("seal-race");
    let barrier = Arc::new(Barrier::new(usize::try_from(writers).unwrap()));
    let mut tasks = Vec::new();
    for n in 0..writers {
        let (store, id, barrier) = (Arc::clone(&store), id.clone(), Arc::clone(&barrier));
        tasks.push(tokio::spawn(async move {
            let records = records_of(n);
            let name = writer(&format!("node-{n}"));
            let mut session = joined_writer(store.as_ref(), &id, &name, &records).await;
            barrier.wait().await;
            let metadata = session.try_finish(end_of(&records), SessionStatus::Completed).await.expect("finish");
            (session.seal().cloned().expect("a joined writer seals"), metadata)
        }));
    }
    let mut sealed = 0;
    for task in tasks {
        let (outcome, metadata) = task.await.unwrap();
        match outcome {
            SealOutcome::Sealed(_) => sealed += 1,
            SealOutcome::AlreadySealed(_) => {}
            SealOutcome::WritersActive(active) => assert!(!active.is_empty(), "gave up on a stale marker"),
        }
        // A writer that stopped while another was active has its own blobs.
        assert!(metadata.request_counts.total() > 0, "the metadata a writer finished with");
    }
    assert_eq!(sealed, 1, "writers finishing together sealed the session {sealed} times");

    let metadata = store.read_metadata(&id).await.unwrap();
    assert_eq!(metadata.status, SessionStatus::Completed);
    assert_eq!(metadata.format_version, FORMAT_VERSION_WRITERS);
    assert_eq!(metadata.writers.len() as u64, writers, "writers in the sealed metadata");
    let manifests = read_manifests(store.as_ref(), &id).await.unwrap();
    assert_eq!(manifests.len() as u64, writers, "a manifest was lost");
    let mut listed: Vec<String> = metadata.blobs.iter().map(|blob| blob.key.to_string()).collect();
    let mut written: Vec<String> =
        manifests.iter().flat_map(|manifest| manifest.blobs.iter().map(|blob| blob.key.to_string())).collect();
    listed.sort();
    written.sort();
    assert_eq!(listed, written, "the sealed metadata and the manifests list different blobs");
    let mut stored: Vec<String> = store.list_blobs(&id).await.unwrap().iter().map(ToString::to_string).collect();
    stored.sort();
    assert_eq!(listed, stored, "the sealed metadata and the store hold different blobs");
    let records: u64 = metadata.request_counts.total();
    assert_eq!(records, writers * sample_records().len() as u64, "records in the sealed metadata");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_writers_stopping_together_seal_a_local_session_once() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn SessionStore> = Arc::new(LocalStore::new(dir.path()));
    for _ in 0..10 {
        writers_finish_together(Arc::clone(&store), 8).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_writers_stopping_together_seal_an_s3_session_once() {
    let server = S3TestServer::start().await;
    let store: Arc<dyn SessionStore> = Arc::new(s3_store(&server));
    for _ in 0..5 {
        writers_finish_together(Arc::clone(&store), 8).await;
    }
}

#[tokio::test(start_paused = true)]
async fn sessions_seal_merges_past_a_stale_marker_and_a_writer_waits_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path());
    let id = unique_id("stale");
    let records = records_of(0);
    let mut session = joined_writer(&store, &id, &writer("node-1"), &records).await;
    // A sealer that stopped after creating the marker.
    store.write_file(&id, &SessionFile::Seal, Bytes::from_static(b"{}\n"), WriteMode::CreateNew).await.unwrap();
    let finished = session.try_finish(end_of(&records), SessionStatus::Completed);
    // The writer waits (30 s by default) for the marker's sealer, then gives up.
    let finished = tokio::time::timeout(Duration::from_mins(2), finished).await.expect("a bounded wait").unwrap();
    assert_eq!(finished.status, SessionStatus::Active, "not sealed behind a stale marker");
    assert_eq!(session.seal(), Some(&SealOutcome::WritersActive(Vec::new())));

    let options = SealOptions { wait: Duration::ZERO, by_writer: false };
    let SealOutcome::Sealed(metadata) = seal_session(&store, &id, None, options, START).await.unwrap() else {
        panic!("sessions seal did not merge past a stale marker");
    };
    assert_eq!(metadata.request_counts.total(), records.len() as u64);
    assert_eq!(store.read_metadata(&id).await.unwrap(), metadata);
    let again = seal_session(&store, &id, None, options, START).await.unwrap();
    assert_eq!(again, SealOutcome::AlreadySealed(metadata), "a second seal");
}

/// Metadata of a session with writers, for tests of readers.
pub async fn sealed(store: &dyn SessionStore, id: &SessionId) -> SessionMetadata {
    let options = SealOptions { wait: Duration::ZERO, by_writer: false };
    match seal_session(store, id, None, options, START).await.unwrap() {
        SealOutcome::Sealed(metadata) | SealOutcome::AlreadySealed(metadata) => metadata,
        SealOutcome::WritersActive(active) => panic!("writers still active: {active:?}"),
    }
}
