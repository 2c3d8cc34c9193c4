//! Reading a session in receive-time order across signals, as replay does.

use futures::TryStreamExt;
use tape_otlp::Signal;
use tape_session::{
    SessionId, SessionStatus, SessionType, SessionWriter, Timestamp, WriterOptions, read_session_in_time_order,
};
use tape_store::LocalStore;

#[tokio::test]
async fn records_of_every_signal_come_merged_by_receive_time() {
    let root = tempfile::tempdir().unwrap();
    let store = LocalStore::new(root.path());
    let metadata = tape_testkit::conformance::new_metadata(SessionId::new("merged").unwrap(), SessionType::Capture);
    // Small blobs, so each signal spans several of them.
    let options = WriterOptions { max_blob_bytes: 256, ..WriterOptions::default() };
    let mut writer = SessionWriter::create(&store, metadata, options).await.unwrap();
    let mut written = Vec::new();
    for n in 0..300_u64 {
        let signal = Signal::ALL[(n % 3) as usize];
        // Some records share the time of the one before (another signal).
        let tick = if n % 5 == 1 { n - 1 } else { n };
        let time = Timestamp::from_unix_nanos(1_790_000_000_000_000_000 + tick * 1_000);
        let payload = format!("{signal}-{n}").into_bytes();
        writer.append(signal, time, 1, &payload).await.unwrap();
        written.push((signal, time, payload));
    }
    let metadata =
        writer.finish(Timestamp::from_unix_nanos(1_790_000_001_000_000_000), SessionStatus::Completed).await.unwrap();
    assert!(metadata.blobs.len() > 6, "several blobs per signal");

    let merged: Vec<_> = read_session_in_time_order(&store, &metadata, |_| true).try_collect().await.unwrap();
    assert_eq!(merged.len(), written.len(), "every record, once");
    for pair in merged.windows(2) {
        let (first, second) = (&pair[0], &pair[1]);
        assert!(first.1.receive_time() <= second.1.receive_time(), "in receive-time order");
        if first.1.receive_time() == second.1.receive_time() {
            assert!(first.0 <= second.0, "ties in signal order");
        }
    }
    let mut expected: Vec<_> = written.iter().map(|(signal, _, payload)| (*signal, payload.clone())).collect();
    let mut got: Vec<_> = merged.iter().map(|(signal, record)| (*signal, record.payload.to_vec())).collect();
    expected.sort();
    got.sort();
    assert_eq!(got, expected);

    let logs: Vec<_> =
        read_session_in_time_order(&store, &metadata, |signal| signal == Signal::Logs).try_collect().await.unwrap();
    assert_eq!(logs.len(), written.iter().filter(|(signal, _, _)| *signal == Signal::Logs).count());
    assert!(logs.iter().all(|(signal, _)| *signal == Signal::Logs));
}
