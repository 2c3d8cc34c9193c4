//! A seed replayed in a loop to a real OTLP target, with new ids from the
//! second pass and relative timestamps, the target's requests kept as a
//! session: the replay's report undoes the remapping.

use std::sync::Arc;

use tape_compare::{CompareConfig, ReplayFacts};
use tape_otlp::Signal;
use tape_replay::{ReplayConfig, RunOptions, RunOutcome, replay_session};
use tape_session::{Record, SessionType};
use tape_testkit::otlp_target::{OtlpTarget, OtlpTargetOptions};
use tokio_util::sync::CancellationToken;

use crate::{Fixture, assert_identical, id, seed, write_session};

/// Replays `session` with `options` (JSON) to a real target and keeps
/// what the target received as the session `captured`; returns the
/// replay's report as JSON.
async fn replay_and_capture(fixture: &Fixture, session: &str, options: serde_json::Value) -> Vec<u8> {
    let target = OtlpTarget::start(OtlpTargetOptions::default()).await;
    let mut config = options;
    config["session"] = session.into();
    config["endpoint"] = target.http_endpoint().into();
    config["speed"] = "max".into();
    let config: ReplayConfig = serde_json::from_value(config).expect("valid replay options");
    let run = RunOptions::default();
    let outcome = replay_session(Arc::clone(&fixture.store), config, run, |_| None, &CancellationToken::new())
        .await
        .expect("the replay runs");
    let RunOutcome::Finished(finished) = outcome else { panic!("not a resume") };
    assert!(finished.failure.is_none(), "{:?}", finished.failure);
    let received = target.received();
    let start = tape_seed_generator::DEFAULT_START;
    let records = received.iter().enumerate().map(|(n, request)| {
        let items = request.request().item_count();
        let record = Record {
            receive_time_unix_nano: start.unix_nanos() + n as u64,
            item_count: items,
            payload: request.body.clone(),
        };
        (request.signal, record)
    });
    write_session(fixture.store.as_ref(), "captured", SessionType::Capture, start, records.collect::<Vec<_>>()).await;
    target.shutdown().await;
    finished.report_json().expect("the report")
}

#[tokio::test]
async fn a_looped_replay_with_new_ids_and_moved_timestamps_compares_equal_with_its_report() {
    let fixture = Fixture::default();
    let metadata = seed(fixture.store.as_ref(), "seed", "payment-failure", 2, 10.0).await;
    let options = serde_json::json!({"passes": 3, "timestamps": "relative", "idSeed": 1234});
    let report = replay_and_capture(&fixture, "seed", options).await;
    let facts = ReplayFacts::from_json("report.json", &report).expect("a real report reads");
    assert_eq!((facts.passes, facts.id_seed, facts.options.ids.as_str()), (3, 1234, "from-second-pass"));
    assert_eq!(facts.session.content_hash, metadata.content_hash);
    assert_eq!(serde_json::to_value(&facts).unwrap()["options"]["timestamps"], "relative");

    let config = CompareConfig { replay_report: Some(facts), ..CompareConfig::new(id("seed"), id("captured")) };
    let comparison = fixture.compare(config).await.expect("compares");
    assert_identical(&comparison);
    assert_eq!(comparison.expected.items.total(), 3 * metadata.item_counts().total());
    assert_eq!(comparison.expected.records, 3 * metadata.request_counts.total());
    assert_eq!(comparison.expected.canonical_sha256.len(), 64);
    let shift = comparison.shift.expect("items were matched");
    assert_eq!(shift.mode, "relative");
    assert!(shift.min_nanos > 0, "{shift:?}");

    // Without the report, the passes' new ids match nothing.
    let comparison = fixture.compare(CompareConfig::new(id("seed"), id("captured"))).await.expect("compares");
    assert!(!comparison.verdict.passed);
    let traces = comparison.signal(Signal::Traces).expect("traces compared").counts;
    assert!(traces.unexpected >= 2 * traces.expected, "{traces:?}");
}

#[tokio::test]
async fn a_replay_of_some_services_in_a_window_is_expected_as_it_was_sent() {
    let fixture = Fixture::default();
    let metadata = seed(fixture.store.as_ref(), "seed", "payment-failure", 4, 10.0).await;
    let options = serde_json::json!({"traces": true, "logs": true, "services": ["checkout"], "from": "1s", "until": "3s",
                                     "timestamps": "none"});
    let report = replay_and_capture(&fixture, "seed", options).await;
    let facts = ReplayFacts::from_json("report.json", &report).expect("a real report reads");
    assert!(facts.options.from.is_some() && facts.options.until.is_some());

    let config = CompareConfig { replay_report: Some(facts), ..CompareConfig::new(id("seed"), id("captured")) };
    let comparison = fixture.compare(config).await.expect("compares");
    assert!(comparison.verdict.passed, "{:?}", comparison.verdict);
    assert!(comparison.expected.items.traces > 0 && comparison.expected.items.logs > 0);
    assert!(comparison.expected.items.traces < metadata.item_counts().traces);
    assert_eq!(comparison.expected.items.metrics, 0, "metrics were not replayed");
    assert_eq!(comparison.expected.items, comparison.actual.items);
    assert_eq!(comparison.expected.canonical_sha256, comparison.actual.canonical_sha256);
    for signal in &comparison.signals {
        assert!(signal.services.iter().all(|service| service.service == "checkout"), "{signal:?}");
    }
}
