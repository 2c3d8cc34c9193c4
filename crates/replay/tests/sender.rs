//! The sender against a real OTLP/HTTP target: it keeps to its
//! concurrency, retries, and counts what became of each request.

use std::time::Duration;

use bytes::Bytes;
use tape_otlp::{ExportRequest, Signal, sample};
use tape_replay::{Exporter, ExporterConfig, Progress, Protocol, RetryPolicy, SendOutcome, Sender};
use tape_testkit::otlp_target::{Failure, OtlpTarget, OtlpTargetOptions};
use tokio_util::sync::CancellationToken;

fn spans(count: u64) -> Bytes {
    Bytes::from(ExportRequest::from(sample::traces("checkout", count, 0)).encode_protobuf())
}

#[tokio::test]
async fn the_sender_keeps_to_its_concurrency_and_counts_what_became_of_each_request() {
    let target = OtlpTarget::start(OtlpTargetOptions::default()).await;
    let exporter = Exporter::new(ExporterConfig::new(target.http_endpoint(), Protocol::HttpProtobuf)).unwrap();
    let retry = RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(1),
        max_elapsed: Duration::from_secs(10),
    };
    let halt = CancellationToken::new();
    let progress = Progress::new();
    let mut sender = Sender::new(&exporter, &retry, &halt, &progress, 2);
    assert!(sender.is_idle() && sender.next().await.is_none());

    // One retryable failure: retried, then sent.
    target.fail_next(1, Failure::Http(503, None));
    sender.send(0, Signal::Traces, 3, spans(3));
    sender.send(1, Signal::Traces, 4, spans(4));
    assert!(!sender.has_room());
    assert_eq!(sender.in_flight(), 2);
    let mut tags = Vec::new();
    let first = sender.next().await.unwrap();
    tags.push(first.tag);
    assert!(sender.has_room());
    sender.send(2, Signal::Traces, 5, spans(5));
    while let Some(completed) = sender.next().await {
        assert!(matches!(completed.outcome, SendOutcome::Sent(_)), "{completed:?}");
        tags.push(completed.tag);
    }
    tags.sort_unstable();
    assert_eq!(tags, [0, 1, 2]);
    let counts = progress.snapshot();
    assert_eq!((counts.traces.sent_records, counts.traces.sent_items, counts.traces.retries), (3, 12, 1));
    assert_eq!(counts.traces.failed_records, 0);
    assert_eq!(target.received().len(), 3);

    // A permanent failure: counted as failed, with its error.
    target.fail_next(1, Failure::Http(400, None));
    sender.send(3, Signal::Traces, 2, spans(2));
    let completed = sender.next().await.unwrap();
    assert!(matches!(completed.outcome, SendOutcome::Failed(_)), "{completed:?}");
    assert_eq!(completed.attempts, 1);
    let counts = progress.snapshot();
    assert_eq!((counts.traces.failed_records, counts.traces.failed_items), (1, 2));
    assert!(counts.last_error.unwrap().contains("400"));

    // Requests that never reached the sender are counted too.
    progress.failed_unsent(Signal::Logs, 2, 7, "not sent: the queue was full".to_owned());
    let counts = progress.snapshot();
    assert_eq!((counts.logs.failed_records, counts.logs.failed_items), (2, 7));
    assert_eq!(counts.last_error.as_deref(), Some("not sent: the queue was full"));
}
