//! Crash and repair: a writer killed mid-session (simulated by forgetting
//! it, so that nothing is cleaned up, as after SIGKILL) leaves a session
//! that `repair_session` finishes with every record flushed before the
//! crash, on a local store, and spooled over a local store and over S3.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use tape_otlp::Signal;
use tape_session::{
    BlobEntry, Error, PartialOutcome, Record, RepairReport, SessionId, SessionStatus, SessionStore, SessionType,
    SessionWriter, Timestamp, WriterOptions, content_hash, read_session, repair_session, salvage_blob,
};
use tape_store::{LocalStore, S3Store, SpooledStore, spooled_sessions};
use tape_testkit::conformance::{START, new_metadata, sample_records, unique_id, write_session};
use tape_testkit::s3::S3TestServer;

use crate::common::s3_config;

/// When the repairs run.
const NOW: Timestamp = Timestamp::from_unix_nanos(START.unix_nanos() + 3_600_000_000_000);

/// Records appended and flushed before the crash; the rest are appended
/// after the last flush.
const FLUSHED: usize = 30;

/// Small blobs and chunks, so that the crash leaves committed blobs that
/// no metadata lists, partial blobs with flushed members, and bytes after
/// the last flush.
fn options() -> WriterOptions {
    WriterOptions { announce: true, max_blob_bytes: 8 * 1024, chunk_bytes: 1024, ..WriterOptions::default() }
}

/// Writes the sample records into a new session of `store` and stops
/// without finishing: everything before the last flush must survive.
async fn crash(store: &dyn SessionStore, id: &SessionId) -> Vec<(Signal, Record)> {
    let records = sample_records();
    let mut writer = SessionWriter::create(store, new_metadata(id.clone(), SessionType::Capture), options())
        .await
        .expect("create the session");
    for (n, (signal, record)) in records.iter().enumerate() {
        writer.append(*signal, record.receive_time(), record.item_count, &record.payload).await.expect("append");
        if n + 1 == FLUSHED {
            writer.flush().await.expect("flush");
        }
    }
    // As after SIGKILL: no drop, so open blobs are neither committed nor removed.
    std::mem::forget(writer);
    let metadata = store.read_metadata(id).await.expect("the announced metadata");
    assert_eq!(metadata.status, SessionStatus::Active);
    assert!(!store.list_partial_blobs(id).await.expect("list partial blobs").is_empty(), "no partial blob left");
    records
}

/// Repairs the crashed session and checks it against what was appended,
/// then checks that a second repair changes nothing.
async fn repair_and_check(store: &dyn SessionStore, id: &SessionId, appended: &[(Signal, Record)]) -> RepairReport {
    let report = repair_session(store, id, NOW).await.expect("repair");
    assert!(report.changed, "{report}");
    assert_eq!((report.status_before, report.status_after), (SessionStatus::Active, SessionStatus::Completed));
    assert!(
        report.partial_blobs.iter().any(|partial| partial.outcome == PartialOutcome::Committed && partial.records > 0),
        "no partial blob was salvaged: {report}"
    );
    assert!(report.damaged.is_empty() && report.missing.is_empty(), "{report}");
    let text = report.to_string();
    assert!(text.contains(&format!("Repaired session {id}: active -> completed")), "{text}");
    assert!(text.contains("recovered raw/"), "{text}");

    let metadata = store.read_metadata(id).await.expect("read the repaired metadata");
    assert_eq!(metadata.status, SessionStatus::Completed);
    assert_eq!(report.after.records, metadata.request_counts.total());

    // Every record flushed before the crash is there, in order; whatever
    // else is there is what followed it.
    let flushed = &appended[..FLUSHED];
    let mut last_time = START;
    for signal in Signal::ALL {
        let want: Vec<&Record> = appended.iter().filter(|(s, _)| *s == signal).map(|(_, record)| record).collect();
        let want_flushed = flushed.iter().filter(|(s, _)| *s == signal).count();
        let got: Vec<Record> = read_session(store, &metadata, |s| s == signal)
            .map_ok(|(_, record)| record)
            .try_collect()
            .await
            .expect("read the repaired session");
        assert!(got.len() >= want_flushed, "{signal}: {} records, {want_flushed} were flushed", got.len());
        assert_eq!(got.iter().collect::<Vec<_>>(), want[..got.len()], "{signal}: records differ");
        let payload_bytes =
            |records: &mut dyn Iterator<Item = &Record>| -> usize { records.map(|record| record.payload.len()).sum() };
        assert_eq!(payload_bytes(&mut got.iter()), payload_bytes(&mut want[..got.len()].iter().copied()));
        assert_eq!(metadata.request_counts.get(signal), got.len() as u64, "{signal}: request count");
        let items: u64 = got.iter().map(|record| record.item_count).sum();
        assert_eq!(metadata.item_counts().get(signal), items, "{signal}: item count");
        last_time = last_time.max(got.last().map_or(START, Record::receive_time));
    }
    assert_eq!(metadata.end_time, Some(last_time));

    // The metadata describes the stored blobs exactly, as a fresh read sees them.
    let stored: BTreeSet<String> = store.list_blobs(id).await.unwrap().iter().map(ToString::to_string).collect();
    let listed: BTreeSet<String> = metadata.blobs.iter().map(|blob| blob.key.to_string()).collect();
    assert_eq!(stored, listed, "stored and listed blobs differ");
    for blob in &metadata.blobs {
        let chunks: Vec<Bytes> = store.open_blob(id, &blob.key).await.unwrap().try_collect().await.unwrap();
        let salvaged = salvage_blob(&chunks.concat());
        assert!(salvaged.is_whole(), "{}: {salvaged:?}", blob.key);
        assert_eq!(&BlobEntry::new(blob.key.clone(), salvaged.summary), blob, "entry of {}", blob.key);
    }
    assert_eq!(metadata.content_hash, content_hash(&metadata.blobs));
    assert_eq!(metadata.total_size_bytes, metadata.blobs.iter().map(|blob| blob.compressed_bytes).sum::<u64>());
    assert!(store.list_partial_blobs(id).await.unwrap().is_empty(), "partial blobs left after repair");

    let again = repair_session(store, id, NOW).await.expect("repair again");
    assert!(!again.changed, "{again}");
    assert!(again.to_string().contains("nothing to repair"), "{again}");
    assert_eq!(store.read_metadata(id).await.unwrap(), metadata, "a second repair changed the metadata");
    report
}

/// Files under `dir` whose path contains `part`.
fn files_containing(dir: &Path, part: &str) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return found };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(files_containing(&path, part));
        } else if path.to_string_lossy().contains(part) {
            found.push(path.display().to_string());
        }
    }
    found
}

#[tokio::test]
async fn a_crashed_session_on_a_local_store_is_repaired() {
    let root = tempfile::tempdir().unwrap();
    let store = LocalStore::new(root.path());
    let id = unique_id("crash-local");
    let appended = crash(&store, &id).await;
    // A member cut short, as a crash in the middle of writing one leaves.
    let partial = store.list_partial_blobs(&id).await.unwrap().remove(0);
    let path = root.path().join("sessions").join(id.as_str()).join(&partial.name);
    let length = std::fs::metadata(&path).unwrap().len();
    let mut file = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
    std::io::Write::write_all(&mut file, &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 0xff, 0x02, 0x8c]).unwrap();
    drop(file);

    let report = repair_and_check(&store, &id, &appended).await;
    let recovered = report.partial_blobs.iter().find(|recovered| recovered.key == partial.key).unwrap();
    assert_eq!(recovered.dropped_bytes, 12);
    let problem = format!("the last gzip member, from byte {length}, is truncated at byte {}", length + 12);
    assert_eq!(recovered.problem.as_deref(), Some(problem.as_str()));
    assert!(report.to_string().contains(&format!("12 bytes dropped: {problem}")), "{report}");
    assert_eq!(files_containing(root.path(), ".tmp-"), Vec::<String>::new(), "temporary files left");
}

#[tokio::test]
async fn a_crashed_session_spooled_over_a_local_store_is_repaired() {
    let root = tempfile::tempdir().unwrap();
    let spool = tempfile::tempdir().unwrap();
    let store = SpooledStore::new(Arc::new(LocalStore::new(root.path())), spool.path().to_owned());
    let id = unique_id("crash-spooled-local");
    let appended = crash(&store, &id).await;
    assert_eq!(spooled_sessions(spool.path()).await.unwrap(), vec![id.clone()]);
    repair_and_check(&store, &id, &appended).await;
    assert_eq!(spooled_sessions(spool.path()).await.unwrap(), Vec::<SessionId>::new());
    assert_eq!(std::fs::read_dir(spool.path()).unwrap().count(), 0, "spool files or directories left");
    assert_eq!(files_containing(root.path(), ".tmp-"), Vec::<String>::new(), "temporary files left");
}

/// A test server, a spool directory and a store spooled in it over an S3
/// store on the server under `prefix`.
async fn spooled_over_s3(prefix: &str) -> (S3TestServer, tempfile::TempDir, SpooledStore) {
    let server = S3TestServer::start().await;
    let spool = tempfile::tempdir().unwrap();
    let inner = S3Store::new(s3_config(&server, prefix)).unwrap();
    let store = SpooledStore::new(Arc::new(inner), spool.path().to_owned());
    (server, spool, store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_session_spooled_over_s3_is_repaired() {
    let (_server, spool, store) = spooled_over_s3("team-a").await;
    let id = unique_id("crash-spooled-s3");
    let appended = crash(&store, &id).await;
    assert_eq!(spooled_sessions(spool.path()).await.unwrap(), vec![id.clone()]);
    repair_and_check(&store, &id, &appended).await;
    assert_eq!(spooled_sessions(spool.path()).await.unwrap(), Vec::<SessionId>::new());
}

#[tokio::test]
async fn the_spooled_store_conforms_over_a_local_store() {
    let root = tempfile::tempdir().unwrap();
    let spool = tempfile::tempdir().unwrap();
    let store = SpooledStore::new(Arc::new(LocalStore::new(root.path())), spool.path().to_owned());
    tape_testkit::conformance::run(&store).await;
    assert_eq!(std::fs::read_dir(spool.path()).unwrap().count(), 0, "spool files or directories left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spooled_store_conforms_over_s3() {
    let (_server, spool, store) = spooled_over_s3("").await;
    tape_testkit::conformance::run(&store).await;
    assert_eq!(files_containing(spool.path(), ".partial"), Vec::<String>::new(), "spool files left");
}

#[tokio::test]
async fn a_completed_session_is_left_as_it_is() {
    let root = tempfile::tempdir().unwrap();
    let store = LocalStore::new(root.path());
    let id = unique_id("completed");
    let written =
        write_session(&store, new_metadata(id.clone(), SessionType::Seed), &sample_records(), options()).await;
    let report = repair_session(&store, &id, NOW).await.unwrap();
    assert!(!report.changed);
    assert_eq!(
        report.to_string(),
        format!("Session {id} is completed, with no partial or unlisted blobs: nothing to repair.\n")
    );
    assert_eq!(report.before, report.after);
    assert_eq!(store.read_metadata(&id).await.unwrap(), written);

    // A copy left by a commit interrupted after it took effect is removed,
    // and nothing else changes.
    let key = &written.blobs[0].key;
    let committed = root.path().join("sessions").join(id.as_str()).join(key.to_string());
    let leftover =
        committed.with_file_name(format!(".{}.tmp-0123456789abcdef", committed.file_name().unwrap().to_string_lossy()));
    std::fs::copy(&committed, &leftover).unwrap();
    let report = repair_session(&store, &id, NOW).await.unwrap();
    assert!(report.changed);
    assert_eq!(report.partial_blobs.len(), 1);
    assert_eq!(report.partial_blobs[0].outcome, PartialOutcome::AlreadyCommitted);
    assert!(!leftover.exists());
    assert_eq!(store.read_metadata(&id).await.unwrap(), written);
}

#[tokio::test]
async fn local_partial_blobs_are_only_the_temporary_files_of_blobs() {
    let root = tempfile::tempdir().unwrap();
    let store = LocalStore::new(root.path());
    let id = unique_id("strangers");
    let written =
        write_session(&store, new_metadata(id.clone(), SessionType::Capture), &sample_records()[..3], options()).await;
    let session = root.path().join("sessions").join(id.as_str());
    let partition = session.join(written.blobs[0].key.to_string()).parent().unwrap().to_owned();
    for stranger in [
        session.join(".metadata.json.tmp-0123456789abcdef"),
        partition.join(".notes.txt.tmp-0123456789abcdef"),
        partition.join(".traces-1-000009.otlp.gz.tmp-0123456789abcdef"),
        partition.join(format!(".{}.tmp-xyz", written.blobs[0].key.to_string().rsplit('/').next().unwrap())),
    ] {
        std::fs::write(stranger, b"x").unwrap();
    }
    assert_eq!(store.list_partial_blobs(&id).await.unwrap(), Vec::new());
    assert!(matches!(store.list_partial_blobs(&unique_id("absent")).await, Err(Error::NotFound(_))));
}

#[tokio::test]
async fn a_damaged_committed_blob_is_kept_counted_and_reported() {
    let root = tempfile::tempdir().unwrap();
    let store = LocalStore::new(root.path());
    let id = unique_id("damaged");
    crash(&store, &id).await;
    let key = store.list_blobs(&id).await.unwrap().remove(0);
    let path = root.path().join("sessions").join(id.as_str()).join(key.to_string());
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();

    let report = repair_session(&store, &id, NOW).await.unwrap();
    assert_eq!(report.damaged.len(), 1, "{report}");
    assert_eq!(report.damaged[0].key, key);
    assert!(report.to_string().contains(&format!("blob {key} is damaged")), "{report}");
    let metadata = store.read_metadata(&id).await.unwrap();
    let entry = metadata.blobs.iter().find(|blob| blob.key == key).expect("the damaged blob is listed");
    assert_eq!(entry.records, report.damaged[0].readable_records);
    assert_eq!(entry.compressed_bytes, bytes.len() as u64 - 3);
    assert!(path.exists(), "the damaged blob was deleted");
}

#[tokio::test]
async fn repair_needs_the_session_and_its_metadata() {
    let root = tempfile::tempdir().unwrap();
    let store = LocalStore::new(root.path());
    let missing = unique_id("repair-missing");
    match repair_session(&store, &missing, NOW).await {
        Err(Error::NotFound(id)) => assert_eq!(id, missing),
        other => panic!("repair of a missing session: {other:?}"),
    }
    let unannounced = unique_id("repair-unannounced");
    store.create_session(&unannounced).await.unwrap();
    let error = repair_session(&store, &unannounced, NOW).await.unwrap_err();
    let text = format!("{error}: {}", std::error::Error::source(&error).unwrap());
    assert!(text.contains(unannounced.as_str()) && text.contains("metadata.json"), "{text}");
}
