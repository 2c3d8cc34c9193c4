//! A writer of a session with several writers that stops without finishing
//! (as after SIGKILL) is repaired by itself: its flushed records come back,
//! the other writers' manifests are untouched, and the session is sealed.

use futures::TryStreamExt;
use tape_otlp::Signal;
use tape_session::{
    Error, PartialOutcome, Record, SessionFile, SessionStatus, SessionStore, Timestamp, WriterLiveness, read_session,
    repair_session, repair_writer,
};
use tape_store::LocalStore;
use tape_testkit::conformance::{START, unique_id};

use crate::writers::{joined_writer, records_of, writer};

/// Records the crashed writer flushed before it stopped.
const FLUSHED: usize = 30;

/// The writer (its number in [`records_of`]) of a record.
fn writer_number(record: &Record) -> u64 {
    (record.receive_time_unix_nano - START.unix_nanos()) % 250_000_000 / 1_000_000
}

#[tokio::test(start_paused = true)]
async fn a_crashed_writer_is_repaired_alone_and_the_session_sealed() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path());
    let id = unique_id("repair-writer");
    let crashed = writer("node-0");

    let appended = records_of(0);
    let mut session = joined_writer(&store, &id, &crashed, &appended[..FLUSHED]).await;
    session.flush().await.expect("flush");
    for (signal, record) in &appended[FLUSHED..] {
        session.add(*signal, record.receive_time(), record.item_count, &record.payload).await.expect("add");
    }
    // As after SIGKILL: no drop, so open blobs are neither committed nor removed.
    std::mem::forget(session);

    for n in 1..3 {
        let records = records_of(n);
        let mut session = joined_writer(&store, &id, &writer(&format!("node-{n}")), &records).await;
        let end = records.last().map_or(START, |(_, record)| record.receive_time());
        let metadata = session.try_finish(end, SessionStatus::Completed).await.expect("finish");
        assert_eq!(metadata.status, SessionStatus::Active, "sealed while node-0 is active");
    }
    let others = [SessionFile::WriterManifest(writer("node-1")), SessionFile::WriterManifest(writer("node-2"))];
    let mut before = Vec::new();
    for file in &others {
        before.push(store.read_file(&id, file).await.unwrap().expect("a manifest"));
    }

    match repair_session(&store, &id, START).await {
        Err(error @ Error::NotRepairable { .. }) => {
            let text = error.to_string();
            assert!(text.contains(&format!("sessions repair {id} --writer node-0")), "{text}");
        }
        other => panic!("repair_session repaired a session with several writers: {other:?}"),
    }

    let now = Timestamp::from_unix_nanos(START.unix_nanos() + 3_600_000_000_000);
    let report = repair_writer(&store, &id, &crashed, now, WriterLiveness::Stopped).await.expect("repair the writer");
    assert!(report.changed, "{report}");
    assert_eq!((report.status_before, report.status_after), (SessionStatus::Active, SessionStatus::Completed));
    assert!(
        report.partial_blobs.iter().any(|partial| partial.outcome == PartialOutcome::Committed && partial.records > 0),
        "no partial blob of the writer was salvaged: {report}"
    );
    let seal = report.seal.as_ref().expect("sealing was tried");
    assert!(seal.sealed_now && seal.session_status == SessionStatus::Completed, "{report}");
    let text = report.to_string();
    assert!(text.contains(&format!("Repaired writer node-0 of session {id}: active -> completed")), "{text}");
    assert!(text.contains(&format!("Sealed session {id}: completed.")), "{text}");

    for (file, before) in others.iter().zip(before) {
        assert_eq!(store.read_file(&id, file).await.unwrap(), Some(before), "{file} changed");
    }
    let manifest = tape_session::read_manifests(&store, &id).await.unwrap().remove(0);
    assert!(manifest.repaired && manifest.status == SessionStatus::Completed, "the repaired manifest");

    let metadata = store.read_metadata(&id).await.unwrap();
    assert_eq!(metadata.status, SessionStatus::Completed);
    assert!(metadata.writers.iter().any(|entry| entry.writer_id == crashed && entry.repaired));
    let read: Vec<(Signal, Record)> = read_session(&store, &metadata, |_| true).try_collect().await.unwrap();
    for n in 1..3 {
        let count = read.iter().filter(|(_, record)| writer_number(record) == n).count();
        assert_eq!(count, records_of(n).len(), "records of node-{n}");
    }
    // Per signal, the crashed writer's flushed records come back in order.
    for signal in Signal::ALL {
        let flushed: Vec<&Record> =
            appended[..FLUSHED].iter().filter(|(s, _)| *s == signal).map(|(_, record)| record).collect();
        let recovered: Vec<&Record> = read
            .iter()
            .filter(|(s, record)| *s == signal && writer_number(record) == 0)
            .map(|(_, record)| record)
            .collect();
        assert!(recovered.len() >= flushed.len(), "{signal}: {} of {} flushed records", recovered.len(), flushed.len());
        assert_eq!(&recovered[..flushed.len()], &flushed[..], "{signal}: flushed records");
    }

    let again = repair_writer(&store, &id, &crashed, now, WriterLiveness::Stopped).await.expect("repair again");
    assert!(!again.changed, "{again}");
    assert!(store.list_partial_blobs(&id).await.unwrap().is_empty());
}
