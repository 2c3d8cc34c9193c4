//! With a checkpoint, a slot of the concurrency is freed only once the
//! position on disk has its request done: a crash then leaves at most
//! `concurrency` delivered requests that a resume sends again.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{RecordingSink, local_store, seed};
use tape_otlp::SignalSet;
use tape_replay::{EndReason, Position, Progress, ReplayOptions, Speed, replay};
use tokio_util::sync::CancellationToken;

/// Lets every task run until all wait: on paused time the clock moves
/// only when nothing else can.
async fn until_idle() {
    tokio::time::sleep(Duration::from_hours(1)).await;
}

#[tokio::test(start_paused = true)]
async fn requests_done_but_not_on_disk_hold_their_slots() {
    let (_dir, store) = local_store();
    let metadata = seed(store.as_ref(), "durable", "payment-failure", 4, 10.0, SignalSet::ALL).await;
    let (on_disk, durable) = tokio::sync::watch::channel(Some(Position::default()));
    let options =
        ReplayOptions { speed: Speed::Max, concurrency: 3, durable: Some(durable), ..ReplayOptions::default() };
    let sink = RecordingSink::default();
    let running = {
        let (store, metadata, sink, options) = (Arc::clone(&store), metadata.clone(), sink.clone(), options.clone());
        tokio::spawn(async move {
            replay(store, &metadata, &sink, &options, &Progress::new(), &CancellationToken::new()).await
        })
    };

    // Nothing on disk yet: three requests, then the replay waits.
    until_idle().await;
    assert!(sink.sent().len() <= 3, "{} requests went out with none done on disk", sink.sent().len());
    // Their position on disk frees their slots: three more at most.
    on_disk.send_replace(Some(Position { pass: 0, record: 3, pending: Vec::new() }));
    until_idle().await;
    let sent = sink.sent().len();
    assert!((4..=6).contains(&sent), "{sent} requests after three were done on disk");
    // A write that failed lifts the bound (it was warned about).
    on_disk.send_replace(None);
    let outcome = running.await.unwrap();
    assert_eq!(outcome.reason, EndReason::Finished);
    assert_eq!(outcome.progress.total().sent_items, metadata.item_counts().total());
}
