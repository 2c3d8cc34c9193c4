//! The training reader on a merged session: a source's phases label that
//! source's records only, though the other source's records fall in the
//! same seconds.

use futures::TryStreamExt;
use tape_annotations::{by_phase, session_phases};
use tape_otlp::Signal;
use tape_session::{
    Annotation, MergeConfig, PhaseEntry, SessionId, SessionMetadata, SessionStatus, SessionStore, SessionType,
    SessionWriter, Timestamp, WriterOptions, merge_sessions, to_jsonl,
};
use tape_store::LocalStore;

const SECOND: u64 = 1_000_000_000;
const START: u64 = 1_767_225_600 * SECOND;

fn at(seconds: u64) -> Timestamp {
    Timestamp::from_unix_nanos(START + seconds * SECOND)
}

/// Session `id`: a trace record every second from 0 s to 9 s, whose item
/// count is `base` plus its second; phase `failure` over 3 s to 6 s in its
/// annotations.
async fn source(store: &dyn SessionStore, id: &str, base: u64) {
    let id: SessionId = id.parse().unwrap();
    let metadata = SessionMetadata::new(id.clone(), SessionType::Seed, at(0), "test".to_owned());
    let mut writer = SessionWriter::create(store, metadata, WriterOptions::default()).await.unwrap();
    for second in 0..10 {
        writer.append(Signal::Traces, at(second), base + second, &[]).await.unwrap();
    }
    writer.finish(at(10), SessionStatus::Completed).await.unwrap();
    let phase =
        PhaseEntry { name: "failure".to_owned(), start: at(3), end: at(6), flags: vec![], source: None, writer: None };
    let annotation = Annotation::phase(&id, &phase, "", at(0), "test");
    store.write_annotations(&id, to_jsonl(&[annotation]).into()).await.unwrap();
}

#[tokio::test]
async fn a_sources_phase_labels_that_sources_records_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path());
    source(&store, "a", 100).await;
    source(&store, "b", 200).await;
    let config = MergeConfig {
        sources: vec!["a".parse().unwrap(), "b".parse().unwrap()],
        into: "m".parse().unwrap(),
        description: None,
        include_failed: false,
    };
    let report = merge_sessions(&store, &config.validate().unwrap(), at(100)).await.unwrap();
    let metadata = report.metadata;
    let phases = session_phases(&store, &metadata).await.unwrap();
    let names: Vec<&str> = phases.iter().map(|phase| phase.name.as_str()).collect();
    assert_eq!(names, ["a/failure", "b/failure"]);
    let labelled: Vec<(String, u64)> = by_phase(&store, &metadata, &phases)
        .map_ok(|pair| (pair.label.name().to_owned(), pair.record.item_count))
        .try_collect()
        .await
        .unwrap();
    let mut expected = Vec::new();
    for second in 0..10 {
        for (source, base) in [("a", 100), ("b", 200)] {
            let label = if (3..6).contains(&second) { format!("{source}/failure") } else { "unlabelled".to_owned() };
            expected.push((label, base + second));
        }
    }
    assert_eq!(labelled, expected, "records in time order, each with its own source's phase");
}
