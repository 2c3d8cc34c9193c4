//! The replay of a stored session as a component, without the command
//! line: options as JSON, a local store, a real OTLP target, the report,
//! the checkpoint and a resume.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use common::{local_store, seed};
use tape_otlp::SignalSet;
use tape_replay::{
    EndReason, Error, ReplayConfig, RunOptions, RunOutcome, SessionChoice, Start, env, prepare, replay_session,
};
use tape_testkit::otlp_target::{Failure, OtlpTarget, OtlpTargetOptions};
use tokio_util::sync::CancellationToken;

fn config(json: &str) -> ReplayConfig {
    serde_json::from_str(json).expect("valid options")
}

/// A variable lookup over `pairs`, in place of the process environment.
fn env_of(pairs: &[(&str, String)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: HashMap<String, String> = pairs.iter().map(|(name, value)| ((*name).to_owned(), value.clone())).collect();
    move |name| map.get(name).cloned()
}

/// Requests in a session.
fn requests(metadata: &tape_session::SessionMetadata) -> u64 {
    let counts = metadata.request_counts;
    counts.traces + counts.metrics + counts.logs
}

fn finished(outcome: RunOutcome) -> Box<tape_replay::Finished> {
    match outcome {
        RunOutcome::Finished(finished) => finished,
        RunOutcome::AlreadyComplete(complete) => panic!("already complete: {complete:?}"),
    }
}

#[tokio::test]
async fn the_orchestrator_picks_a_session_and_the_environment_names_the_target() {
    let (_dir, store) = local_store();
    seed(store.as_ref(), "small", "payment-failure", 2, 5.0, SignalSet::ALL).await;
    let large = seed(store.as_ref(), "large", "payment-failure", 4, 20.0, SignalSet::ALL).await;
    let target = OtlpTarget::start(OtlpTargetOptions::default()).await;
    let env = env_of(&[
        (env::OTEL_EXPORTER_OTLP_ENDPOINT, target.http_endpoint().to_owned()),
        (env::REPLAY_DEFAULT_SPEED, "max".to_owned()),
    ]);

    let run = RunOptions { content_hash: true, ..RunOptions::default() };
    let stop = CancellationToken::new();
    let outcome = replay_session(Arc::clone(&store), config(r#"{"strategy": "largest"}"#), run, env, &stop);
    let finished = finished(outcome.await.expect("the replay starts"));

    assert_eq!(finished.reason(), EndReason::Finished);
    assert!(finished.failure.is_none(), "{:?}", finished.failure);
    let report = &finished.report;
    assert_eq!(report.session.id, "large");
    assert_eq!(
        report.session.picked.as_ref().map(tape_replay::Picked::describe).as_deref(),
        Some("largest of 2 completed sessions")
    );
    assert_eq!(report.options.speed, "max");
    assert_eq!(report.counts.total.sent_records, requests(&large));
    assert_eq!(target.received().len() as u64, requests(&large));
    assert!(report.content_hash.is_some());
    let json: serde_json::Value = serde_json::from_slice(&finished.report_json().unwrap()).unwrap();
    assert_eq!(json["reason"], "finished");
    assert_eq!(json["targets"]["traces"]["endpoint"], target.http_endpoint());
    target.shutdown().await;
}

#[tokio::test]
async fn a_missing_session_is_not_found_before_anything_is_sent() {
    let (_dir, store) = local_store();
    let config = config(r#"{"session": "nope"}"#).validate(|_| None).unwrap();
    assert_eq!(config.session, SessionChoice::Id("nope".parse().unwrap()));
    let error = prepare(store.as_ref(), config, RunOptions::default(), |_| None).await.unwrap_err();
    assert!(error.is_not_found(), "{error}");
    assert!(matches!(error.store_error(), Some(tape_session::Error::NotFound(_))), "{error:?}");
    assert!(error.to_string().starts_with("session nope not found in "), "{error}");
}

#[tokio::test]
async fn a_failed_replay_keeps_a_checkpoint_that_a_resume_continues() {
    let (dir, store) = local_store();
    let metadata = seed(store.as_ref(), "resumable", "payment-failure", 3, 10.0, SignalSet::ALL).await;
    let target = OtlpTarget::start(OtlpTargetOptions::default()).await;
    let checkpoint = dir.path().join("replay.checkpoint.json");
    let options = format!(
        r#"{{"session": "resumable", "endpoint": "{}", "speed": "max", "concurrency": 1, "maxAttempts": 1}}"#,
        target.http_endpoint()
    );
    let run = RunOptions { checkpoint: Some(checkpoint.clone()), ..RunOptions::default() };

    target.fail_after(5, Failure::Http(400, None));
    let stop = CancellationToken::new();
    let outcome = replay_session(Arc::clone(&store), config(&options), run.clone(), |_| None, &stop);
    let first = finished(outcome.await.expect("the replay starts"));
    assert_eq!(first.reason(), EndReason::Failed);
    let failure = first.failure.as_ref().expect("a failure");
    assert!(failure.full().starts_with("the replay of session resumable to "), "{}", failure.full());
    assert_eq!(first.report.error.as_deref(), Some(failure.full().as_str()));
    assert!(first.checkpoint_error.is_none());
    assert_eq!(first.report.counts.total.sent_records, 5);

    target.recover();
    let resume = RunOptions { resume: true, ..run };
    let prepared = prepare(store.as_ref(), config(&options).validate(|_| None).unwrap(), resume, |_| None)
        .await
        .expect("the checkpoint reads");
    let Start::Ready(ready) = prepared.start().expect("the checkpoint matches") else { panic!("not complete yet") };
    assert_eq!(ready.id_seed(), first.report.id_seed, "the checkpoint's id seed");
    assert!(ready.resume().is_some());
    let second = ready.run(Arc::clone(&store), &CancellationToken::new()).await;
    assert_eq!(second.reason(), EndReason::Finished, "{:?}", second.failure);
    let total = second.report.counts.total;
    // The request that failed is not done: the resume sends it again.
    assert_eq!(total.sent_records, requests(&metadata), "the counts include the first run");
    assert_eq!(total.failed_records, 1, "the first run's failure is counted");

    // Resumed once more: the checkpoint says it is complete.
    let again = RunOptions { checkpoint: Some(checkpoint), resume: true, ..RunOptions::default() };
    let outcome = replay_session(store, config(&options), again, |_| None, &CancellationToken::new()).await.unwrap();
    assert!(matches!(outcome, RunOutcome::AlreadyComplete(_)));
    target.shutdown().await;
}

#[tokio::test]
async fn a_checkpoint_of_another_selection_is_refused() {
    let (dir, store) = local_store();
    seed(store.as_ref(), "s", "payment-failure", 1, 5.0, SignalSet::ALL).await;
    let checkpoint = dir.path().join("c.json");
    let run = RunOptions { checkpoint: Some(checkpoint.clone()), ..RunOptions::default() };
    let target = OtlpTarget::start(OtlpTargetOptions::default()).await;
    let options = format!(r#"{{"session": "s", "endpoint": "{}", "speed": "max"}}"#, target.http_endpoint());
    finished(
        replay_session(Arc::clone(&store), config(&options), run, |_| None, &CancellationToken::new()).await.unwrap(),
    );

    let traces_only = format!(r#"{{"session": "s", "endpoint": "{}", "traces": true}}"#, target.http_endpoint());
    let resume = RunOptions { checkpoint: Some(checkpoint), resume: true, ..RunOptions::default() };
    let error =
        replay_session(store, config(&traces_only), resume, |_| None, &CancellationToken::new()).await.unwrap_err();
    assert!(matches!(error, Error::CheckpointMismatch(_)), "{error:?}");
    assert!(error.to_string().contains("another selection: signals traces,metrics,logs (now traces)"), "{error}");
    target.shutdown().await;
}
