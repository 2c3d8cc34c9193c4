//! Damaged writer files in a session with several writers: a manifest that
//! cannot be read, a lost manifest, a manifest that lists a blob that is
//! not stored. Sealing refuses them with a message naming the session and
//! the file, gives the seal marker up again, and never seals a session
//! that drops a writer's blobs; `repair --writer` rebuilds the manifest
//! from the writer's blobs.

use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use tape_otlp::Signal;
use tape_session::{
    Error, Record, SealOptions, SealOutcome, SessionFile, SessionId, SessionStatus, SessionStore, Timestamp, WriteMode,
    WriterLiveness, read_manifests, read_session, repair_writer, seal_session,
};
use tape_store::LocalStore;
use tape_testkit::conformance::{START, unique_id};

use crate::writers::{joined_writer, records_of, writer};

const SEALER: SealOptions = SealOptions { wait: Duration::ZERO, by_writer: false };

/// A session of writers node-1 and node-2, node-2 stopped (so its manifest
/// is `completed`) and node-1 still writing: node-1's finish seals it.
async fn two_writers<'a>(store: &'a LocalStore, id: &SessionId) -> tape_session::SessionWriter<'a> {
    let first = joined_writer(store, id, &writer("node-1"), &records_of(1)).await;
    let mut second = joined_writer(store, id, &writer("node-2"), &records_of(2)).await;
    let end = records_of(2).last().map_or(START, |(_, record)| record.receive_time());
    let metadata = second.try_finish(end, SessionStatus::Completed).await.expect("node-2 finishes");
    assert_eq!(metadata.status, SessionStatus::Active, "sealed while node-1 writes");
    first
}

async fn seal_marker(store: &LocalStore, id: &SessionId) -> Option<Bytes> {
    store.read_file(id, &SessionFile::Seal).await.unwrap()
}

/// Every record of both writers reads back from the sealed session.
async fn all_records_read_back(store: &LocalStore, id: &SessionId) {
    let metadata = store.read_metadata(id).await.unwrap();
    assert_eq!(metadata.status, SessionStatus::Completed);
    let read: Vec<(Signal, Record)> = read_session(store, &metadata, |_| true).try_collect().await.unwrap();
    assert_eq!(read.len(), records_of(1).len() + records_of(2).len(), "records of both writers");
}

#[tokio::test(start_paused = true)]
async fn a_manifest_that_cannot_be_read_refuses_the_seal_and_the_marker_goes_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path());
    let id = unique_id("damaged-manifest");
    let mut first = two_writers(&store, &id).await;
    let file = SessionFile::WriterManifest(writer("node-2"));
    for garbage in [&b"garbage"[..], b"", b"{\"formatVersion\": 2, \"sessionId\"", b"[1, 2, 3]"] {
        store.write_file(&id, &file, Bytes::from_static(garbage), WriteMode::Replace).await.unwrap();
        match seal_session(&store, &id, None, SEALER, START).await {
            Err(Error::Manifest { session, file, .. }) => {
                assert_eq!((session, file.as_str()), (id.clone(), "writers/node-2.json"));
            }
            other => panic!("sealed past a damaged manifest {garbage:?}: {other:?}"),
        }
        assert_eq!(seal_marker(&store, &id).await, None, "the refused sealer left its marker");
    }

    // The writer that stops last is refused the same way, and leaves no
    // marker behind that would make joiners and `sessions seal` wait.
    let end = records_of(1).last().map_or(START, |(_, record)| record.receive_time());
    let error = first.try_finish(end, SessionStatus::Completed).await.expect_err("sealed past a damaged manifest");
    let text = error.to_string();
    assert!(text.contains(&id.to_string()) && text.contains("writers/node-2.json"), "{text}");
    assert_eq!(seal_marker(&store, &id).await, None, "the writer left its marker");
    assert_eq!(store.read_metadata(&id).await.unwrap().status, SessionStatus::Active);

    // `repair --writer` rebuilds the manifest from the writer's blobs and seals.
    let now = Timestamp::from_unix_nanos(START.unix_nanos() + 3_600_000_000_000);
    let report =
        repair_writer(&store, &id, &writer("node-2"), now, WriterLiveness::Stopped).await.expect("repair node-2");
    assert!(report.seal.as_ref().is_some_and(|seal| seal.sealed_now), "{report}");
    let manifest = read_manifests(&store, &id).await.unwrap().remove(1);
    assert!(manifest.repaired && manifest.status == SessionStatus::Completed);
    assert!(manifest.start_time < now, "the rebuilt manifest starts at its first record");
    all_records_read_back(&store, &id).await;
}

#[tokio::test(start_paused = true)]
async fn blobs_of_a_writer_without_a_manifest_are_not_dropped_by_a_seal() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path());
    let id = unique_id("lost-manifest");
    let mut first = two_writers(&store, &id).await;
    store.delete_file(&id, &SessionFile::WriterManifest(writer("node-2"))).await.unwrap();
    let end = records_of(1).last().map_or(START, |(_, record)| record.receive_time());
    let error = first.try_finish(end, SessionStatus::Completed).await.expect_err("sealed without node-2's blobs");
    let text = error.to_string();
    assert!(
        text.contains(&format!("session {id} cannot be sealed"))
            && text
                .contains("-node-2-000001.otlp.gz is stored but writer node-2 has no manifest (writers/node-2.json)")
            && text.contains(&format!("sessions repair {id} --writer node-2")),
        "{text}"
    );
    assert_eq!(seal_marker(&store, &id).await, None);
    assert_eq!(store.read_metadata(&id).await.unwrap().status, SessionStatus::Active);

    let report =
        repair_writer(&store, &id, &writer("node-2"), START, WriterLiveness::Stopped).await.expect("repair node-2");
    assert!(report.seal.as_ref().is_some_and(|seal| seal.sealed_now), "{report}");
    all_records_read_back(&store, &id).await;
}

#[tokio::test(start_paused = true)]
async fn a_manifest_listing_a_blob_that_is_not_stored_refuses_the_seal() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path());
    let id = unique_id("missing-blob");
    let mut first = two_writers(&store, &id).await;
    let file = SessionFile::WriterManifest(writer("node-2"));
    let mut manifest = read_manifests(&store, &id).await.unwrap().remove(1);
    let mut ghost = manifest.blobs[0].clone();
    ghost.key =
        tape_session::BlobKey::for_writer(ghost.signal, ghost.first_receive_time, &writer("node-2"), "999999").unwrap();
    manifest.blobs.push(ghost.clone());
    store.write_file(&id, &file, Bytes::from(manifest.to_json()), WriteMode::Replace).await.unwrap();

    let end = records_of(1).last().map_or(START, |(_, record)| record.receive_time());
    let text = first.try_finish(end, SessionStatus::Completed).await.expect_err("sealed a missing blob").to_string();
    assert!(text.contains(&format!("writers/node-2.json lists blob {}, which is not stored", ghost.key)), "{text}");
    assert_eq!(seal_marker(&store, &id).await, None);

    let report =
        repair_writer(&store, &id, &writer("node-2"), START, WriterLiveness::Stopped).await.expect("repair node-2");
    assert_eq!(report.missing, [ghost.key.clone()], "{report}");
    assert!(matches!(
        seal_session(&store, &id, None, SEALER, START).await.unwrap(),
        SealOutcome::AlreadySealed(metadata) if metadata.status == SessionStatus::Completed
    ));
    all_records_read_back(&store, &id).await;
}

#[tokio::test]
async fn a_session_of_a_single_writer_is_not_reported_sealed() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path());
    let id = unique_id("single");
    let metadata = tape_testkit::conformance::new_metadata(id.clone(), tape_session::SessionType::Capture);
    let writer = tape_session::SessionWriter::create(&store, metadata, tape_session::WriterOptions::default());
    writer.await.unwrap().finish(START, SessionStatus::Completed).await.unwrap();
    match seal_session(&store, &id, None, SEALER, START).await {
        Err(error @ Error::NotSealable { .. }) => {
            let text = error.to_string();
            assert!(text.contains("single writer") && text.contains("completed and has nothing to seal"), "{text}");
        }
        other => panic!("a session of one writer was sealed: {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_manifest_listing_a_blob_twice_refuses_the_seal_instead_of_writing_unreadable_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path());
    let id = unique_id("twice");
    let mut first = two_writers(&store, &id).await;
    let file = SessionFile::WriterManifest(writer("node-2"));
    let mut manifest = read_manifests(&store, &id).await.unwrap().remove(1);
    let again = manifest.blobs[0].clone();
    manifest.blobs.push(again.clone());
    store.write_file(&id, &file, Bytes::from(manifest.to_json()), WriteMode::Replace).await.unwrap();

    let end = records_of(1).last().map_or(START, |(_, record)| record.receive_time());
    let text = first.try_finish(end, SessionStatus::Completed).await.expect_err("sealed a blob twice").to_string();
    assert!(text.contains(&format!("cannot read writers/node-2.json: blob {} is listed twice", again.key)), "{text}");
    assert_eq!(seal_marker(&store, &id).await, None);
    assert_eq!(store.read_metadata(&id).await.unwrap().status, SessionStatus::Active, "the metadata still reads");

    let report =
        repair_writer(&store, &id, &writer("node-2"), START, WriterLiveness::Stopped).await.expect("repair node-2");
    assert!(report.seal.as_ref().is_some_and(|seal| seal.sealed_now), "{report}");
    all_records_read_back(&store, &id).await;
}
