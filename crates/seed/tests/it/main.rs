//! A seed run into a real local store, verified; and a run stopped by its
//! token, which leaves nothing.

use tape_seed::{SeedConfig, run, verify};
use tape_session::{SessionId, SessionStore};
use tape_store::LocalStore;
use tokio_util::sync::CancellationToken;

fn config(json: &str) -> SeedConfig {
    serde_json::from_str(json).unwrap()
}

#[tokio::test]
async fn a_seed_is_stored_and_regenerates_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path());
    let seed = config(r#"{"duration": "3s", "rate": 5, "seed": 7, "sessionId": "s-1", "description": "d"}"#)
        .validate()
        .unwrap();
    assert_eq!(seed.traces(), 15);
    let summary = run(&store, &seed, None, None, &CancellationToken::new()).await.unwrap();
    assert_eq!(summary.session_id.as_str(), "s-1");
    assert_eq!((summary.seed, summary.traces), (7, 15));
    assert!(summary.live.is_none() && summary.clickhouse.is_none() && summary.warnings.is_empty());
    let json = serde_json::to_value(&summary).unwrap();
    assert_eq!(json["sessionId"], "s-1");
    assert_eq!(json["duration"], "3s");
    assert!(json.get("params").is_none() && json.get("live").is_none());

    let report = verify(&store, &summary.session_id).await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let regeneration = report.regeneration.unwrap();
    assert_eq!(regeneration.outcome, "match");
    assert_eq!(
        regeneration.message,
        format!("regenerated from seed 7: bit-for-bit match ({} records)", report.records)
    );
    assert_eq!(report.content_hash, summary.content_hash);
}

#[tokio::test]
async fn a_stopped_seed_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path());
    let seed = config(r#"{"duration": "1h", "rate": 1000, "sessionId": "stopped"}"#).validate().unwrap();
    let stop = CancellationToken::new();
    stop.cancel();
    let error = run(&store, &seed, None, None, &stop).await.unwrap_err();
    assert!(error.is_stopped(), "{error}");
    assert_eq!(error.to_string(), "seeding session stopped failed; nothing was stored");
    let id = SessionId::new("stopped").unwrap();
    assert!(store.read_metadata(&id).await.is_err());
}

#[tokio::test]
async fn verifying_a_missing_session_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path());
    let id = SessionId::new("missing").unwrap();
    assert!(matches!(verify(&store, &id).await, Err(tape_session::Error::NotFound(_))));
}

#[tokio::test]
async fn a_live_seed_sends_what_it_writes_and_counts_the_failures() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use tape_replay::{ExporterConfig, Protocol, Targets};
    use tape_seed::{LiveOptions, Start};
    use tape_testkit::otlp_target::{Failure, OtlpTarget, OtlpTargetOptions};

    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path());
    let target = OtlpTarget::start(OtlpTargetOptions::default()).await;
    // Two permanent failures: counted, not retried, and the rest delivered.
    target.fail_next(2, Failure::Http(400, None));
    let targets = Targets::single(ExporterConfig::new(target.http_endpoint(), Protocol::HttpProtobuf)).unwrap();
    let mut config = config(r#"{"duration": "1s", "rate": 5, "seed": 3, "sessionId": "live"}"#);
    config.start = Some(Start::At(tape_seed_generator::DEFAULT_START));
    let seed = config.validate().unwrap();
    let started = Arc::new(AtomicBool::new(false));
    let announced = Arc::clone(&started);
    let live = LiveOptions {
        targets,
        concurrency: Some(1),
        stop: CancellationToken::new(),
        on_start: Some(Box::new(move |start| {
            assert_eq!(start.session_id.as_str(), "live");
            assert_eq!(start.duration, "1s");
            announced.store(true, Ordering::Relaxed);
        })),
    };
    let summary = run(&store, &seed, Some(live), None, &CancellationToken::new()).await.unwrap();
    assert!(started.load(Ordering::Relaxed));
    let live = summary.live.unwrap();
    assert!(!live.stopped_early);
    assert_eq!(live.failed.total(), 2);
    assert_eq!(live.sent.total() + 2, summary.requests.total());
    assert_eq!(target.received().len() as u64, live.sent.total());
    assert!(live.last_error.unwrap().contains("400"));
}
