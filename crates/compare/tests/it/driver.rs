//! Sessions compared with themselves, with a re-batched copy, in memory
//! and in partition files; the errors that name their input.

use std::sync::Mutex;

use tape_compare::{CompareConfig, CompareProgress, Error, ReplayFacts};
use tape_session::SessionType;

use crate::rebatch::rebatched;
use crate::{Fixture, assert_identical, entries, id, records, seed, write_session};

#[tokio::test]
async fn a_session_compared_with_itself_is_identical_item_for_item() {
    let fixture = Fixture::default();
    let metadata = seed(fixture.store.as_ref(), "seed", "payment-failure", 3, 20.0).await;
    let progress = Mutex::new(Vec::<CompareProgress>::new());
    let config = CompareConfig::new(id("seed"), id("seed"));
    let comparison = config
        .validate()
        .expect("valid")
        .run(fixture.store.as_ref(), &fixture.temp(), &|now| progress.lock().unwrap().push(now))
        .await
        .expect("compares");

    assert_identical(&comparison);
    assert_eq!(comparison.expected.items, metadata.item_counts());
    assert_eq!(comparison.expected.canonical_sha256, comparison.actual.canonical_sha256);
    assert_eq!(comparison.expected.canonical_sha256.len(), 64);
    assert_eq!(comparison.expected.content_hash, metadata.content_hash);
    let requests = metadata.request_counts.total();
    assert_eq!((comparison.expected.records, comparison.actual.records), (requests, requests));
    let progress = progress.into_inner().unwrap();
    let last = progress.last().expect("progress was reported");
    assert_eq!((last.records_done, last.records_total), (2 * requests, 2 * requests));
    assert_eq!(last.items_done, 2 * metadata.item_counts().total());
    assert_eq!((last.partitions_done, last.partitions_total), (1, 1));
    assert!(progress.windows(2).all(|pair| pair[0].records_done <= pair[1].records_done));
    assert_eq!(entries(&fixture.temp()), 0, "one partition, in memory: no files");
}

#[tokio::test]
async fn a_copy_batched_differently_has_the_same_canonical_hash_and_passes() {
    let fixture = Fixture::default();
    let metadata = seed(fixture.store.as_ref(), "seed", "complex-topology", 3, 20.0).await;
    let original = records(fixture.store.as_ref(), &metadata).await;
    let copy = rebatched(&original, 7);
    assert_ne!(copy.len(), original.len(), "requests merged and split");
    let copy = write_session(fixture.store.as_ref(), "copy", SessionType::Capture, metadata.start_time, copy).await;
    assert_ne!(copy.content_hash, metadata.content_hash);

    let comparison = fixture.compare(CompareConfig::new(id("seed"), id("copy"))).await.expect("compares");
    assert_identical(&comparison);
    assert_eq!(comparison.expected.canonical_sha256, comparison.actual.canonical_sha256);
    assert_ne!(comparison.expected.records, comparison.actual.records);

    // One item fewer: another hash, and a missing item.
    let mut fewer = original.clone();
    let dropped = fewer.iter().position(|(_, record)| record.item_count == 1).expect("a one-item request");
    fewer.remove(dropped);
    write_session(fixture.store.as_ref(), "fewer", SessionType::Capture, metadata.start_time, fewer).await;
    let comparison = fixture.compare(CompareConfig::new(id("seed"), id("fewer"))).await.expect("compares");
    assert!(!comparison.verdict.passed);
    assert_eq!(comparison.total.missing, 1);
    assert_ne!(comparison.expected.canonical_sha256, comparison.actual.canonical_sha256);
}

#[tokio::test]
async fn partition_files_give_the_same_comparison_and_are_removed_after() {
    let fixture = Fixture::default();
    let metadata = seed(fixture.store.as_ref(), "seed", "payment-failure", 3, 20.0).await;
    let original = records(fixture.store.as_ref(), &metadata).await;
    // A copy with differences, so that the comparison has something to
    // say: every third request left out.
    let copy: Vec<_> =
        rebatched(&original, 5).into_iter().enumerate().filter(|(n, _)| n % 3 != 1).map(|(_, r)| r).collect();
    write_session(fixture.store.as_ref(), "copy", SessionType::Capture, metadata.start_time, copy).await;

    let in_memory = fixture.compare(CompareConfig::new(id("seed"), id("copy"))).await.expect("compares");
    assert!(in_memory.total.missing > 0 && !in_memory.verdict.passed);

    let seen = Mutex::new((0_usize, 0_u32));
    let config = CompareConfig { partitions: Some(7), ..CompareConfig::new(id("seed"), id("copy")) };
    let temp = fixture.temp();
    let mut on_disk = config
        .validate()
        .expect("valid")
        .run(fixture.store.as_ref(), &temp, &|now| {
            let mut seen = seen.lock().unwrap();
            seen.0 = seen.0.max(entries(&temp));
            seen.1 = now.partitions_total;
        })
        .await
        .expect("compares");
    assert_eq!(*seen.lock().unwrap(), (1, 7), "one directory of partition files while it ran");
    assert_eq!(entries(&temp), 0, "the partition files are removed");

    on_disk.compared_at.clone_from(&in_memory.compared_at);
    on_disk.options.partitions = None;
    // Examples of equal order (two log records of one span, in one
    // request) may come in either order: the matching only promises an
    // order by ids, pass and record.
    let key = |difference: &tape_compare::Difference| {
        (difference.signal, difference.kind, difference.trace_id.clone(), difference.span_id.clone(), difference.pass)
    };
    let keys = |comparison: &tape_compare::Comparison| comparison.differences.iter().map(key).collect::<Vec<_>>();
    assert_eq!(keys(&on_disk), keys(&in_memory));
    on_disk.differences.clone_from(&in_memory.differences);
    assert_eq!(on_disk, in_memory);
}

#[test]
fn a_comparison_dropped_midway_leaves_no_partition_files() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let fixture = Fixture::default();
    let temp = fixture.temp();
    let seen = Mutex::new(0);
    runtime.block_on(async {
        let metadata = seed(fixture.store.as_ref(), "seed", "high-load", 2, 50.0).await;
        let half = metadata.request_counts.total();
        let reading = tokio::sync::Notify::new();
        let config = CompareConfig { partitions: Some(16), ..CompareConfig::new(id("seed"), id("seed")) };
        let config = config.validate().expect("valid");
        let progress = |now: CompareProgress| {
            let mut seen = seen.lock().unwrap();
            *seen = (*seen).max(entries(&temp));
            if now.records_done >= half {
                reading.notify_one();
            }
        };
        let run = config.run(fixture.store.as_ref(), &temp, &progress);
        tokio::select! {
            biased;
            () = reading.notified() => {}
            outcome = run => panic!("the comparison ended before it was dropped: {outcome:?}"),
        }
    });
    assert_eq!(*seen.lock().unwrap(), 1, "partition files were being written");
    // Dropping the runtime waits for the threads reading the sessions,
    // the last of which removes the directory.
    drop(runtime);
    assert_eq!(entries(&temp), 0);
}

#[tokio::test]
async fn a_missing_session_is_named_with_the_store() {
    let fixture = Fixture::default();
    seed(fixture.store.as_ref(), "seed", "basic-topology", 1, 5.0).await;
    for config in [CompareConfig::new(id("seed"), id("nope")), CompareConfig::new(id("nope"), id("seed"))] {
        let error = fixture.compare(config).await.unwrap_err();
        assert!(matches!(&error, Error::SessionNotFound { session, .. } if session.as_str() == "nope"), "{error:?}");
        let message = error.to_string();
        assert!(message.starts_with("session nope not found in "), "{message}");
        assert!(message.ends_with("store"), "{message}");
    }
}

#[tokio::test]
async fn a_replay_report_of_another_session_is_refused() {
    let fixture = Fixture::default();
    let metadata = seed(fixture.store.as_ref(), "seed", "basic-topology", 1, 5.0).await;
    seed(fixture.store.as_ref(), "other", "payment-failure", 1, 5.0).await;
    let report = |session: &str, hash: &str| {
        let json = serde_json::json!({
            "session": {"id": session, "type": "seed", "contentHash": hash},
            "options": {"timestamps": "relative", "ids": "from-second-pass", "signals": ["traces", "metrics", "logs"],
                        "services": [], "from": null, "until": null},
            "passes": 1, "idSeed": 7, "reason": "finished",
            "counts": {"traces": {"sentItems": 1}, "metrics": {"sentItems": 1}, "logs": {"sentItems": 1}},
        });
        ReplayFacts::from_json("r.json", json.to_string().as_bytes()).expect("a report")
    };
    for facts in [report("other", &metadata.content_hash), report("seed", "0123")] {
        let (session, hash) = (facts.session.id.clone(), facts.session.content_hash.clone());
        let config = CompareConfig { replay_report: Some(facts), ..CompareConfig::new(id("seed"), id("seed")) };
        let error = fixture.compare(config).await.unwrap_err();
        assert!(matches!(error, Error::ReportOfAnotherSession { .. }), "{error:?}");
        assert_eq!(
            error.to_string(),
            format!(
                "replayReport is the report of a replay of session {session} (content hash {hash}), not of the expected session seed (content hash {})",
                metadata.content_hash
            )
        );
    }
}

#[tokio::test]
async fn a_corrupt_blob_is_named_with_its_session() {
    let fixture = Fixture::default();
    let metadata = seed(fixture.store.as_ref(), "seed", "basic-topology", 2, 10.0).await;
    let blob = &metadata.blobs[0];
    let path = fixture.dir.path().join("store/sessions/seed").join(blob.key.to_string());
    let bytes = std::fs::read(&path).expect("the blob is a file");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).expect("cut in half");
    let error = fixture.compare(CompareConfig::new(id("seed"), id("seed"))).await.unwrap_err();
    let message = tape_session::error_chain(&error);
    assert!(
        message.starts_with(&format!("cannot read session seed: session seed: blob {} is corrupt", blob.key)),
        "{message}"
    );
}

#[tokio::test]
async fn a_record_that_is_not_a_request_is_named_with_its_session_and_time() {
    let fixture = Fixture::default();
    let metadata = seed(fixture.store.as_ref(), "seed", "basic-topology", 1, 5.0).await;
    let mut copy = records(fixture.store.as_ref(), &metadata).await;
    let (signal, record) =
        copy.iter_mut().find(|(signal, _)| *signal == tape_otlp::Signal::Logs).expect("a log record");
    record.payload = bytes::Bytes::from_static(&[0x0a, 0x05, 0x01]);
    let (signal, received) = (*signal, record.receive_time());
    write_session(fixture.store.as_ref(), "damaged", SessionType::Capture, metadata.start_time, copy).await;
    let error = fixture.compare(CompareConfig::new(id("seed"), id("damaged"))).await.unwrap_err();
    assert!(matches!(error, Error::UndecodableRecord { .. }), "{error:?}");
    let message = error.to_string();
    let start = format!("session damaged: the {signal} record received at {received} is not a valid OTLP request: ");
    assert!(message.starts_with(&start), "{message}");
}

#[tokio::test]
async fn a_full_disk_is_named_and_leaves_no_partition_files() {
    let fixture = Fixture::default();
    seed(fixture.store.as_ref(), "seed", "high-load", 4, 50.0).await;
    let disk = tape_testkit::tmpfs::Tmpfs::mount("1m");
    let config = CompareConfig { partitions: Some(4), ..CompareConfig::new(id("seed"), id("seed")) };
    let error = config.validate().expect("valid").run(fixture.store.as_ref(), disk.path(), &|_| {}).await.unwrap_err();
    let Error::Partition { directory, source } = &error else { panic!("{error:?}") };
    assert!(directory.starts_with(&disk.path().display().to_string()), "{directory}");
    assert_eq!(source.kind(), std::io::ErrorKind::StorageFull, "{source}");
    assert!(error.to_string().starts_with("partition files in "), "{error}");
    assert_eq!(entries(disk.path()), 0, "the partition files are removed");
}
