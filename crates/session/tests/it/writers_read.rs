//! Readers of a session with several writers merge every writer's records
//! in receive-time order, one lane per signal and writer.

use futures::TryStreamExt;
use tape_otlp::Signal;
use tape_session::{Record, SessionStatus, WriterId, read_blobs_in_time_order_tagged, read_session_in_time_order};
use tape_store::LocalStore;
use tape_testkit::conformance::{START, unique_id};

use crate::writers::{joined_writer, records_of, sealed, writer};

#[tokio::test]
async fn three_writers_are_merged_in_time_order_every_record_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path());
    let id = unique_id("read-writers");
    let mut expected: Vec<(u64, usize, WriterId, Signal, Record)> = Vec::new();
    let mut sessions = Vec::new();
    for n in 0..3 {
        let name = writer(&format!("node-{n}"));
        let records = records_of(n);
        let end = records.last().map_or(START, |(_, record)| record.receive_time());
        sessions.push((joined_writer(&store, &id, &name, &records).await, end));
        expected.extend(
            records
                .into_iter()
                .map(|(signal, record)| (record.receive_time_unix_nano, signal.index(), name.clone(), signal, record)),
        );
    }
    for (mut session, end) in sessions {
        session.try_finish(end, SessionStatus::Completed).await.expect("finish");
    }
    let metadata = sealed(&store, &id).await;
    // Small blobs: each writer's lanes hold several blobs, which overlap
    // the other writers' in time.
    assert!(metadata.blobs.len() > 9, "{} blobs", metadata.blobs.len());
    // Ties in receive time go by signal, then writer.
    expected.sort_by(|a, b| (a.0, a.1, &a.2).cmp(&(b.0, b.1, &b.2)));

    let tagged: Vec<(Signal, Option<WriterId>, Record)> =
        read_blobs_in_time_order_tagged(&store, &id, &metadata.blobs).try_collect().await.unwrap();
    assert_eq!(tagged.len(), expected.len(), "records read");
    for (n, (got, want)) in tagged.iter().zip(&expected).enumerate() {
        assert_eq!((got.0, got.1.as_ref(), &got.2), (want.3, Some(&want.2), &want.4), "record {n}");
    }
    assert!(tagged.windows(2).all(|pair| pair[0].2.receive_time_unix_nano <= pair[1].2.receive_time_unix_nano));

    let untagged: Vec<(Signal, Record)> =
        read_session_in_time_order(&store, &metadata, |_| true).try_collect().await.unwrap();
    let stripped: Vec<(Signal, Record)> = tagged.into_iter().map(|(signal, _, record)| (signal, record)).collect();
    assert_eq!(untagged, stripped, "the untagged reader");

    // A window of blobs of one signal keeps the order.
    let logs: Vec<_> = metadata.blobs.iter().filter(|blob| blob.signal == Signal::Logs).cloned().collect();
    let read: Vec<(Signal, Option<WriterId>, Record)> =
        read_blobs_in_time_order_tagged(&store, &id, &logs).try_collect().await.unwrap();
    let want: Vec<&Record> = expected.iter().filter(|row| row.3 == Signal::Logs).map(|row| &row.4).collect();
    let got: Vec<&Record> = read.iter().map(|row| &row.2).collect();
    assert_eq!(got, want, "logs of every writer");
}
