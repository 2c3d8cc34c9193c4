//! `merge_sessions` on a real local store: a source with writers of its
//! own keeps one writer per writer, phases pair with their source's
//! records only, a merged session merges again, and a damaged source blob
//! leaves nothing of the new session.

use futures::TryStreamExt;
use tape_otlp::Signal;
use tape_session::{
    Annotation, MergeConfig, MergeError, PhaseEntry, SessionId, SessionMetadata, SessionStatus, SessionStore,
    SessionType, SessionWriter, Timestamp, WriterId, WriterOptions, merge_sessions, read_blobs_in_time_order_tagged,
    session_phases, to_jsonl,
};
use tape_store::LocalStore;

const START: u64 = 1_767_225_600_000_000_000;
const SECOND: u64 = 1_000_000_000;

fn at(seconds: u64) -> Timestamp {
    Timestamp::from_unix_nanos(START + seconds * SECOND)
}

fn id(text: &str) -> SessionId {
    text.parse().unwrap()
}

/// A single-writer session `name` with a record of each signal every
/// second for 10 s and a phase `p` over its first 5 s (in its metadata and
/// its annotations).
async fn single(store: &dyn SessionStore, name: &str) {
    let mut metadata = SessionMetadata::new(id(name), SessionType::Seed, at(0), "test".to_owned());
    metadata.phases =
        vec![PhaseEntry { name: "p".to_owned(), start: at(0), end: at(5), flags: vec![], source: None, writer: None }];
    let mut writer = SessionWriter::create(store, metadata.clone(), WriterOptions::default()).await.unwrap();
    for second in 0..10 {
        for signal in Signal::ALL {
            writer.append(signal, at(second), 1, format!("{name} {signal} {second}").as_bytes()).await.unwrap();
        }
    }
    writer.finish(at(10), SessionStatus::Completed).await.unwrap();
    let annotation = Annotation::phase(&id(name), &metadata.phases[0], "the first half", at(0), "test");
    store.write_annotations(&id(name), to_jsonl(&[annotation]).into()).await.unwrap();
}

/// A session `name` of two writers, `node-1` (even seconds) and `node-2`
/// (odd seconds), traces only.
async fn joined(store: &dyn SessionStore, name: &str) {
    let template = SessionMetadata::new(id(name), SessionType::Capture, at(0), "test".to_owned());
    let mut writers = Vec::new();
    for node in ["node-1", "node-2"] {
        let writer = WriterId::new(node).unwrap();
        writers
            .push(SessionWriter::join(store, template.clone(), writer, None, WriterOptions::default()).await.unwrap());
    }
    for second in 0..10 {
        let writer = &mut writers[usize::try_from(second % 2).unwrap()];
        writer.append(Signal::Traces, at(second), 2, format!("{name} {second}").as_bytes()).await.unwrap();
    }
    for mut writer in writers {
        writer.try_finish(at(10), SessionStatus::Completed).await.unwrap();
    }
    assert_eq!(store.read_metadata(&id(name)).await.unwrap().status, SessionStatus::Completed);
}

async fn merge(
    store: &dyn SessionStore,
    sources: &[&str],
    into: &str,
) -> Result<tape_session::MergeReport, MergeError> {
    let config = MergeConfig {
        sources: sources.iter().map(|source| id(source)).collect(),
        into: id(into),
        description: None,
        include_failed: false,
    };
    merge_sessions(store, &config.validate()?, at(100)).await
}

/// The merged session's records as (writer, second, labels).
async fn labelled(store: &dyn SessionStore, name: &str) -> Vec<(String, u64, Vec<String>)> {
    let metadata = store.read_metadata(&id(name)).await.unwrap();
    let phases = session_phases(store, &metadata).await.unwrap();
    let records: Vec<_> =
        read_blobs_in_time_order_tagged(store, &metadata.session_id, &metadata.blobs).try_collect().await.unwrap();
    records
        .into_iter()
        .map(|(_, writer, record)| {
            let labels = phases
                .iter()
                .filter(|phase| phase.labels(record.receive_time(), writer.as_ref()))
                .map(|phase| phase.name.clone())
                .collect();
            (writer.unwrap().to_string(), (record.receive_time_unix_nano - START) / SECOND, labels)
        })
        .collect()
}

#[tokio::test]
async fn a_source_with_writers_keeps_them_and_phases_label_their_own_source_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path());
    single(&store, "Seed.A").await;
    joined(&store, "joined").await;
    let report = merge(&store, &["Seed.A", "joined"], "m").await.unwrap();
    assert_eq!(report.sources[0].writers, [WriterId::new("seed-a").unwrap()]);
    assert_eq!(
        report.sources[1].writers,
        [WriterId::new("joined-node-1").unwrap(), WriterId::new("joined-node-2").unwrap()]
    );
    let metadata = store.read_metadata(&id("m")).await.unwrap();
    assert_eq!(metadata.session_type, SessionType::Capture, "the sources' types differ");
    assert_eq!((metadata.captured_traces, metadata.captured_metrics), (10 + 20, 10));
    let writers: Vec<(String, Option<String>)> = metadata
        .writers
        .iter()
        .map(|writer| (writer.writer_id.to_string(), writer.source.as_ref().map(ToString::to_string)))
        .collect();
    assert_eq!(
        writers,
        [
            ("joined-node-1".to_owned(), Some("joined".to_owned())),
            ("joined-node-2".to_owned(), Some("joined".to_owned())),
            ("seed-a".to_owned(), Some("Seed.A".to_owned())),
        ]
    );

    let records = labelled(&store, "m").await;
    assert_eq!(records.len(), 30 + 10);
    assert!(records.windows(2).all(|pair| pair[0].1 <= pair[1].1), "records come in receive-time order");
    for (writer, second, labels) in &records {
        let expected: &[&str] = if writer == "seed-a" && *second < 5 { &["Seed.A/p"] } else { &[] };
        assert_eq!(labels, expected, "{writer} at {second}s");
    }

    // A merged session merges again: its writers and phases keep their
    // pairing under new names.
    let report = merge(&store, &["m", "joined"], "n").await.unwrap();
    let names: Vec<String> =
        report.sources.iter().flat_map(|source| &source.writers).map(ToString::to_string).collect();
    assert_eq!(names, ["m-joined-node-1", "m-joined-node-2", "m-seed-a", "joined-node-1", "joined-node-2"]);
    for (writer, second, labels) in labelled(&store, "n").await {
        let expected: &[&str] = if writer == "m-seed-a" && second < 5 { &["m/Seed.A/p"] } else { &[] };
        assert_eq!(labels, expected, "{writer} at {second}s");
    }
}

#[tokio::test]
async fn a_damaged_source_blob_leaves_no_half_session() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path());
    single(&store, "a").await;
    single(&store, "b").await;
    let blob = store.read_metadata(&id("b")).await.unwrap().blobs[1].key.clone();
    let path = dir.path().join("sessions/b").join(blob.to_string());
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();

    let error = merge(&store, &["a", "b"], "m").await.unwrap_err();
    assert!(matches!(error, MergeError::DamagedBlob { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.starts_with(&format!("source session b: blob {blob} is damaged: ")), "{message}");
    assert!(!store.list_session_ids().await.unwrap().contains(&id("m")), "a half session is left");
    assert!(!dir.path().join("sessions/m").exists());

    let error = merge(&store, &["a", "b"], "a-too").await.map(|_| ()).unwrap_err();
    assert!(matches!(error, MergeError::DamagedBlob { .. }));
    let error = merge(&store, &["a", "b"], "a").await.map(|_| ()).unwrap_err();
    assert!(matches!(error, MergeError::Invalid(_)), "{error:?}");
}
