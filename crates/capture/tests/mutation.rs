//! Acknowledged means replayable: 24,000 mutated requests of every signal
//! (byte flips, truncations, field swaps, wrong-signal bodies, deep
//! nesting, invalid UTF-8, two kinds of data in a metric, bad OTLP/JSON
//! values), from a seeded RNG, go through both receivers of a running
//! capture over real sockets (one HTTP/2 connection for gRPC and
//! keep-alive HTTP/1.1 connections per sender). Every acknowledged request
//! must decode with the full decoder; every refusal must be a 400 with a
//! `google.rpc.Status` body in the request's encoding, or
//! `INVALID_ARGUMENT`; and the finished session must pass the checks of
//! `sessions verify` on every record, hold exactly the items acknowledged,
//! and rewrite as a replay rewrites it.

use std::collections::BTreeMap;

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tape_capture::grpc::RawCodec;
use tape_otlp::rpc::Status as RpcStatus;
use tape_otlp::{ExportRequest, IdRemap, Signal, wire};

mod common;
#[allow(clippy::duplicate_mod, reason = "the corpus is shared with tape-otlp's tests")]
#[path = "../../otlp/tests/it/corpus.rs"]
mod corpus;

/// Requests sent in all, split between the senders.
const REQUESTS: usize = 24_000;
const SENDERS: usize = 4;
const SEED: u64 = 13_024;

/// How one request was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Transport {
    Grpc,
    HttpProtobuf,
    HttpJson,
}

/// What one sender saw.
#[derive(Default)]
struct Tally {
    /// Items acknowledged per signal, counted by the test (the full decoder
    /// for protobuf, the JSON itself for OTLP/JSON).
    acknowledged_items: BTreeMap<Signal, u64>,
    acknowledged: u64,
    refused: u64,
    /// Acknowledged requests the full decoder refuses, by mutation.
    undecodable: BTreeMap<&'static str, u64>,
    /// Other failures of the contract, the first few.
    problems: Vec<String>,
    /// Requests per (transport, mutation, acknowledged).
    outcomes: BTreeMap<(Transport, &'static str, bool), u64>,
}

impl Tally {
    fn problem(&mut self, problem: String) {
        if self.problems.len() < 20 {
            self.problems.push(problem);
        }
    }
}

fn grpc_path(signal: Signal) -> http::uri::PathAndQuery {
    let service = match signal {
        Signal::Traces => "trace.v1.TraceService",
        Signal::Metrics => "metrics.v1.MetricsService",
        Signal::Logs => "logs.v1.LogsService",
    };
    format!("/opentelemetry.proto.collector.{service}/Export").parse().unwrap()
}

/// Sends `REQUESTS / SENDERS` mutated requests with the RNG of `sender`.
async fn send(sender: usize, grpc: tonic::transport::Channel, http: String) -> Tally {
    let mut rng = ChaCha8Rng::seed_from_u64(SEED + sender as u64);
    let seeds = corpus::seeds();
    let client = reqwest::Client::new();
    let mut grpc = tonic::client::Grpc::new(grpc);
    let mut tally = Tally::default();
    for round in 0..REQUESTS / SENDERS {
        let seed = &seeds[(round + sender) % seeds.len()];
        let signal = seed.signal;
        let transport = match rng.random_range(0..3) {
            0 => Transport::Grpc,
            1 => Transport::HttpProtobuf,
            _ => Transport::HttpJson,
        };
        let (mutation, body) = if transport == Transport::HttpJson {
            corpus::mutate_json(&mut rng, seed, &seeds)
        } else {
            corpus::mutate_protobuf(&mut rng, seed, &seeds)
        };
        let acknowledged = match transport {
            Transport::Grpc => {
                grpc.ready().await.unwrap();
                let request = tonic::Request::new(Bytes::from(body.clone()));
                match grpc.unary(request, grpc_path(signal), RawCodec).await {
                    Ok(_) => true,
                    Err(status) if status.code() == tonic::Code::InvalidArgument && !status.message().is_empty() => {
                        false
                    }
                    Err(status) => {
                        tally.problem(format!("gRPC {mutation}: {status:?}"));
                        false
                    }
                }
            }
            Transport::HttpProtobuf | Transport::HttpJson => {
                let json = transport == Transport::HttpJson;
                let content_type = if json { "application/json" } else { "application/x-protobuf" };
                let response = client
                    .post(format!("{http}{}", signal.http_path()))
                    .header("content-type", content_type)
                    .body(body.clone())
                    .send()
                    .await
                    .unwrap();
                let status = response.status().as_u16();
                let reply = response.bytes().await.unwrap();
                match status {
                    200 => true,
                    400 => {
                        // A google.rpc.Status in the request's encoding.
                        let code = if json {
                            serde_json::from_slice::<serde_json::Value>(&reply)
                                .ok()
                                .and_then(|status| status.get("code").and_then(serde_json::Value::as_i64))
                        } else {
                            <RpcStatus as prost::Message>::decode(&reply[..]).ok().map(|status| i64::from(status.code))
                        };
                        if code != Some(3) {
                            tally.problem(format!(
                                "HTTP {mutation}: 400 with body {:?}",
                                String::from_utf8_lossy(&reply)
                            ));
                        }
                        false
                    }
                    other => {
                        tally.problem(format!("HTTP {mutation}: status {other}: {}", String::from_utf8_lossy(&reply)));
                        false
                    }
                }
            }
        };
        *tally.outcomes.entry((transport, mutation, acknowledged)).or_default() += 1;
        if !acknowledged {
            tally.refused += 1;
            continue;
        }
        tally.acknowledged += 1;
        let items = if transport == Transport::HttpJson {
            corpus::json_items(signal, &body)
        } else if let Ok(request) = ExportRequest::decode_protobuf(signal, &body) {
            Some(request.item_count())
        } else {
            *tally.undecodable.entry(mutation).or_default() += 1;
            // What the receiver counted is unknown here; the stored records
            // say what it kept.
            wire::count_items(signal, &body).ok()
        };
        match items {
            Some(items) => *tally.acknowledged_items.entry(signal).or_default() += items,
            None => tally.problem(format!("{transport:?} {mutation}: acknowledged, but the test cannot count it")),
        }
    }
    tally
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_mutation_is_kept_whole_and_replayable() {
    let running = common::start(|_| {}).await;
    let channel =
        tonic::transport::Endpoint::from_shared(running.grpc()).unwrap().connect().await.expect("gRPC connects");
    let senders: Vec<_> =
        (0..SENDERS).map(|sender| tokio::spawn(send(sender, channel.clone(), running.http()))).collect();
    let mut tally = Tally::default();
    for sender in senders {
        let sent = sender.await.unwrap();
        for (signal, items) in sent.acknowledged_items {
            *tally.acknowledged_items.entry(signal).or_default() += items;
        }
        tally.acknowledged += sent.acknowledged;
        tally.refused += sent.refused;
        for (mutation, count) in sent.undecodable {
            *tally.undecodable.entry(mutation).or_default() += count;
        }
        for problem in sent.problems {
            tally.problem(problem);
        }
        for (key, count) in sent.outcomes {
            *tally.outcomes.entry(key).or_default() += count;
        }
    }
    let (outcome, records) = running.finish().await;

    // What `sessions verify` checks of every record: the receivers' check,
    // the full decoder, and the item count the record carries; and what a
    // replay does to it.
    let mut stored_items: BTreeMap<Signal, u64> = BTreeMap::new();
    let mut failing_records = 0;
    for (signal, record) in &records {
        *stored_items.entry(*signal).or_default() += record.item_count;
        let validated = wire::validate_request(*signal, &record.payload);
        let decoded = ExportRequest::decode_protobuf(*signal, &record.payload);
        let mut payload = record.payload.to_vec();
        let rewritten = wire::rewrite_in_place(*signal, &mut payload, 1_000, Some(&IdRemap::new(3, 1)));
        let ok = matches!((&validated, &decoded), (Ok(items), Ok(request))
            if *items == record.item_count && request.item_count() == record.item_count)
            && rewritten.is_ok();
        if !ok {
            failing_records += 1;
        }
    }
    let counts = outcome.recording.metadata.item_counts();

    let summary = tally
        .outcomes
        .iter()
        .map(|((transport, mutation, acknowledged), count)| {
            format!("{transport:?} {mutation} {}: {count}", if *acknowledged { "acknowledged" } else { "refused" })
        })
        .collect::<Vec<_>>()
        .join("\n  ");
    let undecodable: u64 = tally.undecodable.values().sum();
    assert!(
        undecodable == 0
            && failing_records == 0
            && tally.problems.is_empty()
            && stored_items == tally.acknowledged_items,
        "{} requests acknowledged, {} refused; {undecodable} acknowledged requests the full decoder refuses \
         ({:?}); {failing_records} of {} stored records fail verify's checks or a replay's rewrite; items \
         acknowledged {:?}, stored {stored_items:?}; problems: {:#?}\n  {summary}",
        tally.acknowledged,
        tally.refused,
        tally.undecodable,
        records.len(),
        tally.acknowledged_items,
        tally.problems,
    );
    assert_eq!(records.len() as u64, tally.acknowledged, "one record per acknowledged request");
    eprintln!("{} requests acknowledged, {} refused:\n  {summary}", tally.acknowledged, tally.refused);
    for signal in Signal::ALL {
        assert_eq!(counts.get(signal), stored_items.get(&signal).copied().unwrap_or(0), "{signal} in metadata.json");
    }
    // Both outcomes, on every transport, are exercised.
    for transport in [Transport::Grpc, Transport::HttpProtobuf, Transport::HttpJson] {
        for acknowledged in [true, false] {
            let count: u64 = tally
                .outcomes
                .iter()
                .filter(|((t, _, a), _)| *t == transport && *a == acknowledged)
                .map(|(_, count)| count)
                .sum();
            assert!(count > 500, "{transport:?} acknowledged={acknowledged}: {count}\n  {summary}");
        }
    }
}

/// The cases of the issue one by one, through both receivers: each is
/// refused with a message that says what is wrong, and nothing is recorded.
#[tokio::test]
async fn each_kind_of_request_the_decoder_refuses_is_refused_with_its_reason() {
    let running = common::start(|_| {}).await;
    let traces = ExportRequest::from(tape_otlp::sample::traces("checkout", 3, 0)).encode_protobuf();
    let cases: Vec<(&str, Signal, Vec<u8>, &str)> = vec![
        (
            "a trace request posted as logs",
            Signal::Logs,
            traces.clone(),
            "the bytes are a valid OTLP traces export request, not a logs one",
        ),
        (
            "invalid UTF-8",
            Signal::Traces,
            corpus::invalid_utf8(&traces, b"checkout").unwrap(),
            "is a string that is not valid UTF-8",
        ),
        (
            "AnyValue nested past the limit",
            Signal::Logs,
            corpus::nested(Signal::Logs, 48),
            "nests messages deeper than the protobuf decoder's limit of 100",
        ),
        (
            "a metric with two kinds of data",
            Signal::Metrics,
            corpus::two_data_fields(2),
            "Metric.sum (field 7) is a second kind of data in a metric that already has gauge",
        ),
    ];
    let client = reqwest::Client::new();
    for (label, signal, body, says) in cases {
        let status = common::grpc_export(&running.grpc(), signal, Bytes::from(body.clone()), false).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{label}: {status:?}");
        assert!(status.message().contains(says), "{label}: {}", status.message());
        let response = running.post(&client, signal.http_path(), "application/x-protobuf", body).await;
        assert_eq!(response.status(), 400, "{label}");
        let status = <RpcStatus as prost::Message>::decode(response.bytes().await.unwrap()).unwrap();
        assert_eq!(status.code, 3, "{label}");
        assert!(status.message.contains(says), "{label}: {}", status.message);
    }
    // One bad data point in OTLP/JSON metrics: 400 naming it, not 200 with
    // the metric's points dropped.
    for point in [
        r#"{"asDouble":1,"attributes":[{"key":"a","value":{"doubleValue":true}}]}"#,
        r#"{"asDouble":1,"startTimeUnixNano":-1}"#,
        r#"{"asDouble":1,"timeUnixNano":1.5}"#,
        r#"{"asDouble":1,"attributes":[{"key":[]}]}"#,
    ] {
        let body = format!(
            r#"{{"resourceMetrics":[{{"scopeMetrics":[{{"metrics":[{{"name":"m","sum":{{"dataPoints":[{{"asDouble":2}},{point}]}}}}]}}]}}]}}"#
        );
        let response = running.post(&client, "/v1/metrics", "application/json", body).await;
        assert_eq!(response.status(), 400, "{point}");
        let status: serde_json::Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        assert_eq!(status["code"], 3);
        let message = status["message"].as_str().unwrap();
        assert!(message.contains("metrics[0].sum.dataPoints[1]"), "{point}: {message}");
    }
    let (outcome, records) = running.finish().await;
    assert!(records.is_empty(), "nothing refused is recorded");
    assert_eq!(outcome.recording.metadata.item_counts().total(), 0);
}
