//! `passes`: a loop that stops after a number of whole passes, each with
//! the ids of its pass, and a resume that makes up exactly the passes that
//! are left.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{RecordingSink, Sent, local_store, records, replay_to, seed};
use tape_otlp::{ExportRequest, IdRemap, Signal, SignalSet};
use tape_replay::{EndReason, Position, Progress, ReplayOptions, Speed, TimestampMode, replay};
use tape_session::Record;
use tokio_util::sync::CancellationToken;

const ID_SEED: u64 = 1234;

fn passes(passes: u64, speed: Speed) -> ReplayOptions {
    ReplayOptions {
        speed,
        timestamps: TimestampMode::None,
        passes: Some(passes),
        id_seed: ID_SEED,
        ..ReplayOptions::default()
    }
}

/// What pass `pass` sends of `record`: the recorded request with the ids
/// of that pass (the first keeps the recorded ones).
fn expected_request(signal: Signal, record: &Record, pass: u64) -> ExportRequest {
    let mut request = ExportRequest::decode_protobuf(signal, &record.payload).unwrap();
    if pass > 0 {
        request.remap_ids(&IdRemap::new(ID_SEED, pass));
    }
    request
}

/// Asserts that `sent` is `passes` whole passes of `expected`, in order,
/// each pass with its ids; returns the items sent.
fn assert_whole_passes(sent: &[Sent], expected: &[(Signal, Record)], passes: u64) -> u64 {
    let per_pass = expected.len();
    assert_eq!(sent.len() as u64, passes * per_pass as u64, "{passes} passes of {per_pass} requests");
    let mut items = 0;
    for (index, sent) in sent.iter().enumerate() {
        let pass = (index / per_pass) as u64;
        let (signal, record) = &expected[index % per_pass];
        assert_eq!(sent.signal, *signal);
        let request = ExportRequest::decode_protobuf(sent.signal, &sent.payload).unwrap();
        assert_eq!(request, expected_request(*signal, record, pass), "request {index} (pass {pass})");
        items += request.item_count();
    }
    items
}

#[tokio::test(start_paused = true)]
async fn a_loop_of_n_passes_sends_exactly_n_whole_passes_and_finishes() {
    let (_dir, store) = local_store();
    let metadata = seed(store.as_ref(), "passes", "payment-failure", 3, 10.0, SignalSet::ALL).await;
    let expected = records(store.as_ref(), &metadata).await;
    let items_per_pass: u64 = expected.iter().map(|(_, record)| record.item_count).sum();

    for (count, speed) in [(1, Speed::Max), (3, Speed::Max), (2, Speed::Factor(5.0))] {
        let sink = RecordingSink::default();
        // `passes` implies the loop: `looping` stays false here.
        let outcome = replay_to(&store, &metadata, &sink, &passes(count, speed)).await;
        assert_eq!(outcome.reason, EndReason::Finished, "{count} passes: {:?}", outcome.error);
        assert_eq!(outcome.progress.pass, count - 1);
        assert_eq!(outcome.progress.done, Position { pass: count, record: 0, pending: Vec::new() });
        let items = assert_whole_passes(&sink.sent(), &expected, count);
        assert_eq!(items, count * items_per_pass);
        assert_eq!(outcome.progress.total().sent_items, count * items_per_pass);
    }
}

#[tokio::test(start_paused = true)]
async fn the_duration_still_ends_a_loop_of_passes_that_would_run_longer() {
    let (_dir, store) = local_store();
    let metadata = seed(store.as_ref(), "long-passes", "basic-topology", 4, 5.0, SignalSet::ALL).await;
    let expected = records(store.as_ref(), &metadata).await;
    let sink = RecordingSink::default();
    // Ten passes of about 4 s at the recorded pace do not fit in 6 s.
    let options = ReplayOptions { duration: Some(Duration::from_secs(6)), ..passes(10, Speed::Factor(1.0)) };
    let outcome = replay_to(&store, &metadata, &sink, &options).await;
    assert_eq!(outcome.reason, EndReason::Duration);
    let sent = sink.sent().len();
    assert!(sent > expected.len() && sent < 2 * expected.len(), "{sent} requests");
}

#[tokio::test(start_paused = true)]
async fn a_resume_of_a_loop_of_passes_sends_the_rest_of_the_passes_and_no_more() {
    let (_dir, store) = local_store();
    let metadata = seed(store.as_ref(), "resume-passes", "basic-topology", 4, 5.0, SignalSet::ALL).await;
    let expected = records(store.as_ref(), &metadata).await;

    // Stopped in the second of three passes, at the recorded pace.
    let sink = RecordingSink::default();
    let stop = CancellationToken::new();
    let stopper = {
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(6)).await;
            stop.cancel();
        })
    };
    let options = passes(3, Speed::Factor(1.0));
    let outcome = replay(Arc::clone(&store), &metadata, &sink, &options, &Progress::new(), &stop).await;
    stopper.await.unwrap();
    assert_eq!(outcome.reason, EndReason::Stopped);
    assert_eq!(outcome.progress.done.pass, 1, "stopped in the second pass");
    let first = sink.sent();

    let resumed = RecordingSink::default();
    let options = ReplayOptions { resume: Some(outcome.progress.done), ..passes(3, Speed::Max) };
    let outcome = replay_to(&store, &metadata, &resumed, &options).await;
    assert_eq!(outcome.reason, EndReason::Finished);
    let all: Vec<Sent> = first.into_iter().chain(resumed.sent()).collect();
    assert_whole_passes(&all, &expected, 3);

    // A resume from the end of the last pass sends nothing.
    let nothing = RecordingSink::default();
    let options = ReplayOptions { resume: Some(Position { pass: 3, record: 0, pending: Vec::new() }), ..options };
    let outcome = replay_to(&store, &metadata, &nothing, &options).await;
    assert_eq!(outcome.reason, EndReason::Finished);
    assert!(nothing.sent().is_empty());
}
