//! A writer repaired while it still runs: `repair_writer` refuses a writer
//! whose manifest was written (its heartbeat) within the staleness window,
//! and a writer repaired (and its session sealed) under it all the same
//! sees it at its next heartbeat, and its finish seals the session again
//! with every blob it committed.

use std::time::Duration;

use futures::TryStreamExt;
use tape_otlp::Signal;
use tape_session::{
    Error, Record, SealOutcome, SessionStatus, SessionStore, Timestamp, WRITER_STALE_AFTER, WriterLiveness,
    read_manifests, read_session, repair_writer,
};
use tape_store::LocalStore;
use tape_testkit::conformance::{START, unique_id};

use crate::writers::{joined_writer, records_of, writer};

fn after(time: Timestamp, by: Duration) -> Timestamp {
    Timestamp::from_unix_nanos(time.unix_nanos() + u64::try_from(by.as_nanos()).unwrap())
}

#[tokio::test]
async fn a_writer_seen_within_the_window_is_refused_and_one_sealed_under_it_is_sealed_again_with_everything() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path());
    let id = unique_id("live-writer");
    let live = writer("live-1");
    let records = records_of(0);
    let half = records.len() / 2;
    let mut session = joined_writer(&store, &id, &live, &records[..half]).await;
    session.roll().await.expect("commit the first blobs");
    let beat = after(START, Duration::from_hours(1));
    assert!(!session.heartbeat(beat).await.expect("heartbeat"), "nobody finished the manifest yet");
    let manifest = read_manifests(&store, &id).await.unwrap().remove(0);
    assert_eq!((manifest.status, manifest.updated_at), (SessionStatus::Active, beat));

    let unknown = WriterLiveness::Unknown { stale_after: WRITER_STALE_AFTER };
    let soon = after(beat, Duration::from_millis(29_500));
    match repair_writer(&store, &id, &live, soon, unknown).await {
        Err(error @ Error::WriterLive { .. }) => {
            let text = error.to_string();
            assert!(
                text.contains(&format!("cannot repair writer live-1 of session {id}: it looks alive"))
                    && text.contains("(host host) was written 29.5 s ago, within the 30 s"),
                "{text}"
            );
        }
        other => panic!("a writer seen 29.5 s ago was repaired: {other:?}"),
    }
    assert_eq!(read_manifests(&store, &id).await.unwrap().remove(0), manifest, "a refused repair changes nothing");
    assert_eq!(store.read_metadata(&id).await.unwrap().status, SessionStatus::Active);

    // Past the window (the writer stalled, or the operator forced it): the
    // writer is repaired and the session sealed, while it still runs.
    let late = after(beat, WRITER_STALE_AFTER);
    let report = repair_writer(&store, &id, &live, late, unknown).await.expect("a stale writer is repaired");
    assert!(report.seal.as_ref().is_some_and(|seal| seal.sealed_now), "{report}");
    let sealed = store.read_metadata(&id).await.unwrap();
    assert_eq!(sealed.status, SessionStatus::Completed);

    // Its next heartbeat sees that, and writes its manifest active again.
    assert!(session.heartbeat(after(late, Duration::from_secs(1))).await.expect("heartbeat"), "not noticed");
    assert_eq!(read_manifests(&store, &id).await.unwrap().remove(0).status, SessionStatus::Active);
    for (signal, record) in &records[half..] {
        session.append(*signal, record.receive_time(), record.item_count, &record.payload).await.expect("append");
    }
    let end = after(late, Duration::from_secs(2));
    let metadata = session.try_finish(end, SessionStatus::Completed).await.expect("finish");
    assert!(matches!(session.seal(), Some(SealOutcome::Sealed(_))), "{:?}", session.seal());
    assert_eq!(metadata, store.read_metadata(&id).await.unwrap());
    assert_eq!(metadata.status, SessionStatus::Completed);
    assert!(metadata.blobs.len() > sealed.blobs.len(), "{} blobs", metadata.blobs.len());
    let entry = &metadata.writers[0];
    assert!(!entry.repaired && entry.end_time == Some(end), "{entry:?}");
    let read: Vec<(Signal, Record)> = read_session(&store, &metadata, |_| true).try_collect().await.unwrap();
    assert_eq!(read.len(), records.len(), "every record the writer took is in the sealed session");
}

#[tokio::test]
async fn two_writers_sealed_under_them_that_stop_together_leave_nothing_out() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path());
    let id = unique_id("live-writers");
    let (one, two) = (writer("live-1"), writer("live-2"));
    let (records_one, records_two) = (records_of(1), records_of(2));
    let (half_one, half_two) = (records_one.len() / 2, records_two.len() / 2);
    let mut first = joined_writer(&store, &id, &one, &records_one[..half_one]).await;
    let mut second = joined_writer(&store, &id, &two, &records_two[..half_two]).await;
    first.roll().await.expect("commit");
    second.roll().await.expect("commit");
    let now = after(START, Duration::from_hours(1));
    for writer in [&one, &two] {
        repair_writer(&store, &id, writer, now, WriterLiveness::Stopped).await.expect("forced repair");
    }
    assert_eq!(store.read_metadata(&id).await.unwrap().status, SessionStatus::Completed, "sealed under both");
    for (session, records) in [(&mut first, &records_one[half_one..]), (&mut second, &records_two[half_two..])] {
        for (signal, record) in records {
            session.append(*signal, record.receive_time(), record.item_count, &record.payload).await.expect("append");
        }
    }
    let end = after(now, Duration::from_secs(1));
    let (a, b) =
        tokio::join!(first.try_finish(end, SessionStatus::Completed), second.try_finish(end, SessionStatus::Completed));
    a.expect("finish one");
    b.expect("finish two");
    let metadata = store.read_metadata(&id).await.unwrap();
    assert_eq!(metadata.status, SessionStatus::Completed);
    let read: Vec<(Signal, Record)> = read_session(&store, &metadata, |_| true).try_collect().await.unwrap();
    assert_eq!(read.len(), records_one.len() + records_two.len(), "every record of both writers");
    assert!(metadata.writers.iter().all(|entry| !entry.repaired && entry.status == SessionStatus::Completed));
}
