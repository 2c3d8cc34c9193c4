//! Sharded replay: the cut of the seed generator's requests into N shards
//! (disjoint, whole), and shards that share a start on paused time: one
//! schedule, one timestamp shift, the same ids as one process.

mod common;

use common::{RecordingSink, local_store, records, seed};
use prost::Message;
use tape_otlp::wire::{Shard, ShardCut, cut_to_shard};
use tape_otlp::{ExportRequest, Signal, SignalSet};
use tape_replay::{EndReason, IdRegeneration, ReplayOptions, Selection, Speed, TimestampMode};
use tape_seed_generator::{BUILTIN_PATTERNS, Generator, Params, Pattern};
use tokio::time::Instant;

/// A message's bytes; none for an absent one.
fn encoded(message: Option<&impl Message>) -> Vec<u8> {
    message.map(Message::encode_to_vec).unwrap_or_default()
}

/// Every item of a request with where it is: the resource, the scope and
/// for a data point its metric's name, then the item's bytes.
fn items(signal: Signal, payload: &[u8]) -> Vec<Vec<u8>> {
    use tape_otlp::proto::metrics::v1::metric::Data;
    let mut items = Vec::new();
    match ExportRequest::decode_protobuf(signal, payload).expect("a valid request") {
        ExportRequest::Traces(request) => {
            for entry in &request.resource_spans {
                for scope in &entry.scope_spans {
                    let context = [encoded(entry.resource.as_ref()), encoded(scope.scope.as_ref())].concat();
                    items.extend(scope.spans.iter().map(|span| [&context[..], &span.encode_to_vec()].concat()));
                }
            }
        }
        ExportRequest::Logs(request) => {
            for entry in &request.resource_logs {
                for scope in &entry.scope_logs {
                    let context = [encoded(entry.resource.as_ref()), encoded(scope.scope.as_ref())].concat();
                    let records = scope.log_records.iter();
                    items.extend(records.map(|record| [&context[..], &record.encode_to_vec()].concat()));
                }
            }
        }
        ExportRequest::Metrics(request) => {
            for entry in &request.resource_metrics {
                for scope in &entry.scope_metrics {
                    for metric in &scope.metrics {
                        let context = [
                            encoded(entry.resource.as_ref()),
                            encoded(scope.scope.as_ref()),
                            metric.name.as_bytes().to_vec(),
                        ]
                        .concat();
                        let points: Vec<Vec<u8>> = match &metric.data {
                            Some(Data::Gauge(data)) => data.data_points.iter().map(Message::encode_to_vec).collect(),
                            Some(Data::Sum(data)) => data.data_points.iter().map(Message::encode_to_vec).collect(),
                            Some(Data::Histogram(data)) => {
                                data.data_points.iter().map(Message::encode_to_vec).collect()
                            }
                            Some(Data::ExponentialHistogram(data)) => {
                                data.data_points.iter().map(Message::encode_to_vec).collect()
                            }
                            Some(Data::Summary(data)) => data.data_points.iter().map(Message::encode_to_vec).collect(),
                            None => Vec::new(),
                        };
                        items.extend(points.into_iter().map(|point| [&context[..], &point].concat()));
                    }
                }
            }
        }
    }
    items
}

#[test]
fn the_cuts_of_generated_requests_are_disjoint_and_whole_for_one_to_five_shards() {
    for (name, source) in BUILTIN_PATTERNS {
        let pattern = Pattern::parse(name, source).expect("a built-in pattern parses");
        for seed in [1, 18] {
            let params = Params {
                seed,
                start: tape_seed_generator::DEFAULT_START,
                duration_nanos: 3_000_000_000,
                rate: 15.0,
                error_rate: 0.1,
                signals: SignalSet::ALL,
            };
            for batch in Generator::new(&pattern, params).expect("valid params") {
                let mut expected = items(batch.signal, &batch.payload);
                expected.sort();
                for count in 1..=5 {
                    let mut union = Vec::new();
                    for index in 0..count {
                        let shard = Shard::new(index, count).unwrap();
                        match cut_to_shard(batch.signal, &batch.payload, shard).expect("a valid request") {
                            ShardCut::Whole => union.extend(items(batch.signal, &batch.payload)),
                            ShardCut::Part { payload, items: count } => {
                                let part = items(batch.signal, &payload);
                                assert_eq!(part.len() as u64, count);
                                union.extend(part);
                            }
                            ShardCut::Empty => {}
                        }
                    }
                    union.sort();
                    assert!(union == expected, "{name}, seed {seed}, {}: the {count} cuts", batch.signal);
                }
            }
        }
    }
}

/// Unix nanoseconds of the wall clock the replays are told they start at.
const WALL: u64 = 1_800_000_000_000_000_000;
const SECOND: u64 = 1_000_000_000;

fn shard_options(shard: Option<&str>, start_at: u64, speed: Speed) -> ReplayOptions {
    ReplayOptions {
        selection: Selection { shard: shard.map(|shard| shard.parse().unwrap()), ..Selection::default() },
        speed,
        timestamps: TimestampMode::Relative,
        start_at: Some(start_at),
        started_at_unix_nanos: Some(WALL),
        ..ReplayOptions::default()
    }
}

/// Every item sent, sorted, from requests a sink took.
fn sent_items(sinks: &[&RecordingSink]) -> Vec<Vec<u8>> {
    let mut all: Vec<Vec<u8>> =
        sinks.iter().flat_map(|sink| sink.sent()).flat_map(|sent| items(sent.signal, &sent.payload)).collect();
    all.sort();
    all
}

#[tokio::test(start_paused = true)]
async fn shards_with_one_start_wait_for_it_keep_one_schedule_and_shift_timestamps_alike() {
    let (_dir, store) = local_store();
    let metadata = seed(store.as_ref(), "shards", "payment-failure", 6, 20.0, SignalSet::ALL).await;
    let recorded = records(store.as_ref(), &metadata).await;
    let first = recorded[0].1.receive_time_unix_nano;
    let start_at = WALL + 10 * SECOND;

    let (zero, one, whole) = (RecordingSink::default(), RecordingSink::default(), RecordingSink::default());
    let started = Instant::now();
    let mut options = [Some("0/2"), Some("1/2"), None].map(|shard| shard_options(shard, start_at, Speed::Factor(1.0)));
    // Shard 1 falls behind its schedule (a rate limit), which must not
    // change its timestamps: they move as of the schedule.
    options[1].rate_limit = Some(400.0);
    let (a, b, c) = tokio::join!(
        common::replay_to(&store, &metadata, &zero, &options[0]),
        common::replay_to(&store, &metadata, &one, &options[1]),
        common::replay_to(&store, &metadata, &whole, &options[2]),
    );
    for outcome in [&a, &b, &c] {
        assert_eq!(outcome.reason, EndReason::Finished, "{:?}", outcome.error);
    }
    // Nothing before the start; the first record at it, from both shards
    // (it holds traces of each), and every request of shard 0 at its
    // recorded offset from the session's first record.
    let start = started + std::time::Duration::from_secs(10);
    assert_eq!((zero.sent()[0].at, one.sent()[0].at), (start, start));
    let offsets =
        |sink: &RecordingSink| -> Vec<std::time::Duration> { sink.sent().iter().map(|sent| sent.at - start).collect() };
    let schedule: Vec<std::time::Duration> = recorded
        .iter()
        .map(|(_, record)| std::time::Duration::from_nanos(record.receive_time_unix_nano - first))
        .collect();
    let off_schedule = |offset: std::time::Duration| schedule.iter().map(|due| due.abs_diff(offset)).min().unwrap();
    for offset in offsets(&zero) {
        let nearest = off_schedule(offset);
        assert!(nearest <= std::time::Duration::from_millis(1), "a request went {nearest:?} off the schedule");
    }
    let late = offsets(&one).into_iter().map(off_schedule).max().unwrap();
    assert!(late > std::time::Duration::from_millis(100), "shard 1 fell behind ({late:?})");
    // The same items with the same timestamps as one process with that
    // start: every timestamp moved by the start minus the first receive.
    assert!(sent_items(&[&zero, &one]) == sent_items(&[&whole]), "the shards' timestamps differ from one process's");
    let ExportRequest::Traces(sent) = whole_first_traces(&whole) else { unreachable!() };
    let ExportRequest::Traces(stored) = stored_first_traces(&recorded) else { unreachable!() };
    let span = |request: &tape_otlp::proto::collector::trace::v1::ExportTraceServiceRequest| {
        request.resource_spans[0].scope_spans[0].spans[0].start_time_unix_nano
    };
    assert_eq!(span(&sent), span(&stored) + (start_at - first));
}

#[tokio::test(start_paused = true)]
async fn under_current_timestamps_a_shards_part_moves_as_the_whole_request_does() {
    let (_dir, store) = local_store();
    let metadata = seed(store.as_ref(), "current", "payment-failure", 4, 20.0, SignalSet::ALL).await;
    let sinks: Vec<RecordingSink> = (0..4).map(|_| RecordingSink::default()).collect();
    let options = [Some("0/3"), Some("1/3"), Some("2/3"), None].map(|shard| ReplayOptions {
        timestamps: TimestampMode::Current,
        ..shard_options(shard, WALL + SECOND, Speed::Factor(1.0))
    });
    let (a, b, c, d) = tokio::join!(
        common::replay_to(&store, &metadata, &sinks[0], &options[0]),
        common::replay_to(&store, &metadata, &sinks[1], &options[1]),
        common::replay_to(&store, &metadata, &sinks[2], &options[2]),
        common::replay_to(&store, &metadata, &sinks[3], &options[3]),
    );
    for outcome in [&a, &b, &c, &d] {
        assert_eq!(outcome.reason, EndReason::Finished, "{:?}", outcome.error);
    }
    let shards = sent_items(&[&sinks[0], &sinks[1], &sinks[2]]);
    assert!(shards == sent_items(&[&sinks[3]]), "the shards' timestamps differ from one process's");
    // Requests were cut indeed: the shards sent more requests than one process.
    let requests: usize = sinks[..3].iter().map(|sink| sink.sent().len()).sum();
    assert!(requests > sinks[3].sent().len());
}

fn whole_first_traces(sink: &RecordingSink) -> ExportRequest {
    let sent = sink.sent().into_iter().find(|sent| sent.signal == Signal::Traces).unwrap();
    ExportRequest::decode_protobuf(Signal::Traces, &sent.payload).unwrap()
}

fn stored_first_traces(recorded: &[(Signal, tape_session::Record)]) -> ExportRequest {
    let (_, record) = recorded.iter().find(|(signal, _)| *signal == Signal::Traces).unwrap();
    ExportRequest::decode_protobuf(Signal::Traces, &record.payload).unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_start_in_the_past_is_caught_up_with_and_max_speed_waits_for_a_future_one() {
    let (_dir, store) = local_store();
    let metadata = seed(store.as_ref(), "late", "payment-failure", 4, 10.0, SignalSet::ALL).await;
    let recorded = records(store.as_ref(), &metadata).await;
    let span = recorded.last().unwrap().1.receive_time_unix_nano - recorded[0].1.receive_time_unix_nano;

    // Started a whole session's span late: everything is due, and goes at once.
    let late = RecordingSink::default();
    let started = Instant::now();
    let options = shard_options(Some("0/1"), WALL - span - SECOND, Speed::Factor(1.0));
    let outcome = common::replay_to(&store, &metadata, &late, &options).await;
    assert_eq!(outcome.reason, EndReason::Finished);
    assert_eq!(late.sent().len(), recorded.len());
    assert!(late.sent().iter().all(|sent| sent.at == started), "every record was due already");

    // At max speed, nothing goes before the start; then all at once.
    let max = RecordingSink::default();
    let started = Instant::now();
    let options = shard_options(None, WALL + 3 * SECOND, Speed::Max);
    common::replay_to(&store, &metadata, &max, &options).await;
    let start = started + std::time::Duration::from_secs(3);
    assert!(max.sent().iter().all(|sent| sent.at == start), "max speed goes at the start");
}

#[tokio::test(start_paused = true)]
async fn shards_with_one_id_seed_send_the_ids_one_process_sends_on_every_pass() {
    let (_dir, store) = local_store();
    let metadata = seed(store.as_ref(), "ids", "payment-failure", 3, 10.0, SignalSet::ALL).await;
    let options = |shard: Option<&str>| ReplayOptions {
        selection: Selection { shard: shard.map(|shard| shard.parse().unwrap()), ..Selection::default() },
        speed: Speed::Max,
        timestamps: TimestampMode::None,
        ids: IdRegeneration::Always,
        id_seed: 7,
        passes: Some(2),
        looping: true,
        ..ReplayOptions::default()
    };
    let sinks: Vec<RecordingSink> = (0..4).map(|_| RecordingSink::default()).collect();
    for (index, sink) in sinks.iter().take(3).enumerate() {
        common::replay_to(&store, &metadata, sink, &options(Some(&format!("{index}/3")))).await;
    }
    common::replay_to(&store, &metadata, &sinks[3], &options(None)).await;
    let shards = sent_items(&[&sinks[0], &sinks[1], &sinks[2]]);
    assert_eq!(shards.len(), sent_items(&[&sinks[3]]).len());
    assert!(shards == sent_items(&[&sinks[3]]), "the shards' ids differ from one process's");
    // And the ids are new: no recorded span goes out as it was.
    let recorded = records(store.as_ref(), &metadata).await;
    let spans = |requests: Vec<(Signal, bytes::Bytes)>| -> Vec<Vec<u8>> {
        let mut spans: Vec<Vec<u8>> = requests
            .iter()
            .filter(|(signal, _)| *signal == Signal::Traces)
            .flat_map(|(signal, payload)| items(*signal, payload))
            .collect();
        spans.sort();
        spans
    };
    let stored = spans(recorded.into_iter().map(|(signal, record)| (signal, record.payload)).collect());
    let sent = spans(sinks[..3].iter().flat_map(RecordingSink::sent).map(|sent| (sent.signal, sent.payload)).collect());
    assert!(!sent.is_empty() && sent.iter().all(|span| stored.binary_search(span).is_err()));
}

#[tokio::test(start_paused = true)]
async fn the_shards_of_a_session_of_two_writers_send_what_one_process_sends() {
    use tape_session::{
        SessionId, SessionMetadata, SessionStatus, SessionType, SessionWriter, WriterId, WriterOptions,
    };
    let (_dir, store) = local_store();
    let pattern = Pattern::parse("payment-failure", tape_seed_generator::builtin_pattern("payment-failure").unwrap())
        .expect("a built-in pattern parses");
    let params = Params {
        seed: 7,
        start: tape_seed_generator::DEFAULT_START,
        duration_nanos: 4 * SECOND,
        rate: 20.0,
        error_rate: 0.05,
        signals: SignalSet::ALL,
    };
    let batches: Vec<_> = Generator::new(&pattern, params.clone()).expect("valid params").collect();
    // Two capture writers of one session, each given every other request,
    // in small blobs: their lanes overlap in time.
    let template = SessionMetadata::new(
        SessionId::new("two-writers").unwrap(),
        SessionType::Capture,
        params.start,
        "test".to_owned(),
    );
    let options = WriterOptions { max_blob_bytes: 16 * 1024, ..WriterOptions::default() };
    let mut writers = Vec::new();
    for name in ["node-a", "node-b"] {
        let writer = WriterId::new(name).unwrap();
        let joined = SessionWriter::join(store.as_ref(), template.clone(), writer, None, options).await;
        writers.push(joined.expect("join the session"));
    }
    for (n, batch) in batches.iter().enumerate() {
        let writer = &mut writers[n % 2];
        writer.append(batch.signal, batch.receive_time, batch.items, &batch.payload).await.expect("append");
    }
    let end = batches.iter().map(|batch| batch.receive_time).max().unwrap();
    let mut metadata = None;
    for mut writer in writers {
        metadata = Some(writer.try_finish(end, SessionStatus::Completed).await.expect("finish"));
    }
    let metadata = metadata.unwrap();
    assert_eq!((metadata.status, metadata.writers.len()), (SessionStatus::Completed, 2), "sealed by the last writer");

    let options = |shard: Option<String>| ReplayOptions {
        selection: Selection { shard: shard.map(|shard| shard.parse().unwrap()), ..Selection::default() },
        speed: Speed::Max,
        timestamps: TimestampMode::None,
        ..ReplayOptions::default()
    };
    let whole = RecordingSink::default();
    common::replay_to(&store, &metadata, &whole, &options(None)).await;
    let shards: Vec<RecordingSink> = (0..3).map(|_| RecordingSink::default()).collect();
    for (index, sink) in shards.iter().enumerate() {
        common::replay_to(&store, &metadata, sink, &options(Some(format!("{index}/3")))).await;
    }
    let expected: usize = batches.iter().map(|batch| usize::try_from(batch.items).unwrap()).sum();
    assert_eq!(sent_items(&[&whole]).len(), expected, "one process sends both writers' items");
    assert!(sent_items(&[&shards[0], &shards[1], &shards[2]]) == sent_items(&[&whole]));
}
