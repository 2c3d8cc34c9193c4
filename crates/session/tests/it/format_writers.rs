//! The example of `docs/FORMAT.md` section 11: the `metadata.json` two
//! joined writers seal, and a writer's manifest.

use serde_json::Value;
use tape_otlp::Signal;
use tape_session::{
    SealOutcome, SessionFile, SessionMetadata, SessionStatus, SessionStore, SessionType, SessionWriter, Timestamp,
    WriterId, WriterOptions,
};
use tape_store::LocalStore;

use crate::support::sample_inputs;

const START: u64 = 1_767_225_600_000_000_000;

/// The JSON block that follows `heading` in `docs/FORMAT.md`.
fn example_after(heading: &str) -> Value {
    let format = include_str!("../../../../docs/FORMAT.md");
    let section = &format[format.find(heading).unwrap_or_else(|| panic!("{heading} is not in FORMAT.md"))..];
    let block = section.split("```json\n").nth(1).unwrap().split("```").next().unwrap();
    serde_json::from_str(block).unwrap_or_else(|error| panic!("the example after {heading}: {error}"))
}

/// Two writers join one session, write a blob each and stop; the second
/// seals it.
async fn seal_two_writers(store: &dyn SessionStore) -> (SessionMetadata, Vec<u8>) {
    let mut template = SessionMetadata::new(
        "checkout-2026-01-01".parse().unwrap(),
        SessionType::Capture,
        Timestamp::from_unix_nanos(START),
        "otlp-tape 0.1.0 capture --join".to_owned(),
    );
    template.description = Some("checkout on two nodes".to_owned());
    let mut writers = Vec::new();
    for (name, host, signal, offset) in
        [("node-a-1f2e", "node-a", Signal::Traces, 1_234_567), ("node-b-9c3d", "node-b", Signal::Logs, 5_000_000)]
    {
        let writer = WriterId::new(name).unwrap();
        let mut session =
            SessionWriter::join(store, template.clone(), writer, Some(host.to_owned()), WriterOptions::default())
                .await
                .unwrap();
        for input in sample_inputs(signal, START + offset, 2) {
            let time = Timestamp::from_unix_nanos(input.receive_time);
            session.append(signal, time, input.item_count, &input.payload).await.unwrap();
        }
        writers.push(session);
    }
    let mut sealed = None;
    for (n, mut session) in writers.into_iter().enumerate() {
        let end = Timestamp::from_unix_nanos(START + 60_000_000_000 + n as u64);
        let metadata = session.try_finish(end, SessionStatus::Completed).await.unwrap();
        if let Some(SealOutcome::Sealed(_)) = session.seal() {
            sealed = Some(metadata);
        }
    }
    let id = "checkout-2026-01-01".parse().unwrap();
    let file = SessionFile::WriterManifest(WriterId::new("node-b-9c3d").unwrap());
    let manifest = store.read_file(&id, &file).await.unwrap().unwrap();
    (sealed.expect("the last writer to stop seals"), manifest.to_vec())
}

#[tokio::test]
async fn the_example_of_several_writers_is_what_two_joined_writers_seal() {
    let dir = tempfile::tempdir().unwrap();
    let (metadata, manifest) = seal_two_writers(&LocalStore::new(dir.path())).await;
    let written: Value = serde_json::from_slice(&metadata.to_json()).unwrap();
    let manifest: Value = serde_json::from_slice(&manifest).unwrap();
    assert_eq!(example_after("### 11.6 Example"), written, "the sealed metadata.json of section 11.6");
    assert_eq!(example_after("### 11.2 Writer manifests"), manifest, "the manifest of section 11.2");
    SessionMetadata::from_json(&metadata.to_json()).unwrap();
}
