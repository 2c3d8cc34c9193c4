//! The training reader on a real local store: which records each phase
//! gets, overlapping phases, and phases from metadata when the session has
//! no annotations.

use bytes::Bytes;
use futures::TryStreamExt;
use tape_annotations::{Label, by_phase, session_phases};
use tape_otlp::Signal;
use tape_session::{
    Annotation, PhaseEntry, SessionId, SessionMetadata, SessionStatus, SessionStore, SessionType, SessionWriter,
    Timestamp, WriterOptions, to_jsonl,
};
use tape_store::LocalStore;

const SECOND: u64 = 1_000_000_000;
const START: u64 = 1_767_225_600 * SECOND;

fn at(seconds: u64) -> Timestamp {
    Timestamp::from_unix_nanos(START + seconds * SECOND)
}

fn entry(name: &str, from: u64, to: u64) -> PhaseEntry {
    PhaseEntry { name: name.to_owned(), start: at(from), end: at(to), flags: vec![], source: None, writer: None }
}

/// A session with one record a second from 0 s to 9 s, alternating traces
/// and logs; each record's item count is its second, so records can be
/// told apart.
async fn session(store: &dyn SessionStore, phases: Vec<PhaseEntry>) -> SessionMetadata {
    let id: SessionId = "reader-test".parse().unwrap();
    let mut metadata = SessionMetadata::new(id, SessionType::Seed, at(0), "test".to_owned());
    metadata.phases = phases;
    let mut writer = SessionWriter::create(store, metadata, WriterOptions::default()).await.unwrap();
    for second in 0..10 {
        let signal = if second % 2 == 0 { Signal::Traces } else { Signal::Logs };
        writer.append(signal, at(second), second + 100, &[]).await.unwrap();
    }
    writer.finish(at(10), SessionStatus::Completed).await.unwrap()
}

/// (label, signal, item count) of every pair the reader yields.
async fn labelled(store: &dyn SessionStore, metadata: &SessionMetadata) -> Vec<(String, Signal, u64)> {
    let phases = session_phases(store, metadata).await.unwrap();
    by_phase(store, metadata, &phases)
        .map_ok(|pair| (pair.label.name().to_owned(), pair.signal, pair.record.item_count))
        .try_collect()
        .await
        .unwrap()
}

#[tokio::test]
async fn each_record_goes_to_the_phase_its_receive_time_falls_in() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path());
    // Phases from the metadata, leaving 8 s and 9 s outside every phase.
    let metadata = session(&store, vec![entry("baseline", 0, 3), entry("failure", 3, 8)]).await;
    let pairs = labelled(&store, &metadata).await;
    let expected: Vec<(String, Signal, u64)> = (0..10)
        .map(|second| {
            let label = match second {
                0..3 => "baseline",
                3..8 => "failure",
                _ => "unlabelled",
            };
            let signal = if second % 2 == 0 { Signal::Traces } else { Signal::Logs };
            (label.to_owned(), signal, second + 100)
        })
        .collect();
    assert_eq!(pairs, expected);
}

#[tokio::test]
async fn annotations_win_over_metadata_and_overlaps_give_a_record_to_each_phase() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path());
    let metadata = session(&store, vec![entry("baseline", 0, 10)]).await;
    let id = metadata.session_id.clone();
    let annotation =
        |name: &str, from: u64, to: u64| Annotation::phase(&id, &entry(name, from, to), "", at(0), "operator");
    let mut deploy = annotation("x", 0, 10);
    deploy.annotation_type = "ops".to_owned();
    deploy.annotation_key = "ops.deploy".to_owned();
    let annotations = [annotation("warmup", 0, 2), annotation("incident", 1, 3), annotation("incident", 6, 7), deploy];
    store.write_annotations(&id, Bytes::from(to_jsonl(&annotations))).await.unwrap();

    let pairs = labelled(&store, &metadata).await;
    let labels_of = |items: u64| -> Vec<&str> {
        pairs.iter().filter(|(_, _, n)| *n == items).map(|(label, _, _)| label.as_str()).collect()
    };
    assert_eq!(labels_of(100), ["warmup"]);
    assert_eq!(labels_of(101), ["warmup", "incident"]);
    assert_eq!(labels_of(102), ["incident"]);
    assert_eq!(labels_of(105), ["unlabelled"]);
    assert_eq!(labels_of(106), ["incident"]);
    assert_eq!(labels_of(107), ["unlabelled"]);
    // The metadata's baseline is not used once annotations give phases, and
    // a non-phase annotation labels nothing.
    assert!(pairs.iter().all(|(label, _, _)| label != "baseline" && label != "x"));
    assert_eq!(pairs.len(), 11);
    assert_eq!(Label::Unlabelled.name(), "unlabelled");
}
