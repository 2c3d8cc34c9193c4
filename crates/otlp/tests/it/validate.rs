//! `wire::validate_request` against the full decoder
//! (`ExportRequest::decode_protobuf`): what the receivers accept, the
//! decoder accepts, with the same items.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tape_otlp::wire::{self, Problem, RECURSION_LIMIT, validate_request};
use tape_otlp::{ExportRequest, Signal, sample};

use crate::corpus;

const GROUP: Problem = Problem::Malformed("a group (OTLP has none) in an unknown field");

/// Validates `bytes` and decodes them, and checks that the two agree:
/// accepted by the validator means decoded, with the same items; refused
/// means refused by the decoder too, but for the two things the validator
/// refuses on purpose (a group in an unknown field, a metric with two
/// kinds of data). Returns whether the validator accepted them.
fn agrees(signal: Signal, bytes: &[u8], label: &str) -> bool {
    let validated = validate_request(signal, bytes);
    let decoded = ExportRequest::decode_protobuf(signal, bytes);
    match (&validated, &decoded) {
        (Ok(items), Ok(request)) => {
            assert_eq!(*items, request.item_count(), "{label}: {signal} counted differently from the decoder");
            true
        }
        (Ok(_), Err(error)) => panic!("{label}: {signal} accepted, but the decoder refuses it: {error}"),
        (Err(error), Ok(_)) => {
            assert!(
                matches!(error.problem, Problem::SecondMetricData { .. }) || error.problem == GROUP,
                "{label}: {signal} refused ({error}), but the decoder accepts it"
            );
            false
        }
        (Err(_), Err(_)) => false,
    }
}

#[test]
fn requests_that_set_every_field_are_accepted_with_their_items() {
    for seed in corpus::seeds() {
        assert_eq!(validate_request(seed.signal, &seed.protobuf), Ok(seed.request.item_count()), "{}", seed.signal);
    }
}

#[test]
fn a_request_sent_as_another_signal_is_refused_and_named() {
    for request in corpus::rich_requests().into_iter().chain([
        sample::traces("a", 1, 0).into(),
        sample::metrics("a", 0).into(),
        sample::logs("a", 1, 0).into(),
    ]) {
        let bytes = request.encode_protobuf();
        for signal in Signal::ALL.into_iter().filter(|signal| *signal != request.signal()) {
            let error = validate_request(signal, &bytes).unwrap_err();
            assert!(ExportRequest::decode_protobuf(signal, &bytes).is_err(), "{signal}");
            assert_eq!(error.decodes_as, Some(request.signal()));
            let message = error.to_string();
            assert!(
                message.contains(&format!("valid OTLP {} export request, not a {signal} one", request.signal())),
                "{message}"
            );
        }
    }
    // The wire-level counter of the replay accepts some of them: it checks
    // only the path down to the items.
    let logs = ExportRequest::from(sample::logs("a", 3, 0)).encode_protobuf();
    assert_eq!(wire::count_items(Signal::Traces, &logs), Ok(3));
}

#[test]
fn a_string_that_is_not_utf8_is_refused_with_its_field() {
    let bytes = ExportRequest::from(sample::traces("checkout", 2, 0)).encode_protobuf();
    let name = b"GET /api/orders";
    let broken = corpus::invalid_utf8(&bytes, &name[..3]).unwrap();
    assert!(ExportRequest::decode_protobuf(Signal::Traces, &broken).is_err());
    let error = validate_request(Signal::Traces, &broken).unwrap_err();
    assert_eq!(error.problem, Problem::NotUtf8);
    assert!(
        error.to_string().starts_with("Span.name (field 5) is a string that is not valid UTF-8 at byte"),
        "{error}"
    );
    for signal in Signal::ALL {
        let bytes = corpus::nested(signal, 0);
        let broken = corpus::invalid_utf8(&bytes, b"deep").unwrap();
        assert!(!agrees(signal, &broken, "invalid UTF-8"));
    }
}

#[test]
fn nesting_is_refused_exactly_where_the_decoder_stops() {
    // The innermost AnyValue of `nested(signal, steps)` is 5 + 2 * steps
    // messages below a trace or logs request, 7 + 2 * steps below a
    // metrics request.
    for (signal, base) in [(Signal::Traces, 5), (Signal::Logs, 5), (Signal::Metrics, 7)] {
        for steps in 40..=52 {
            let bytes = corpus::nested(signal, steps);
            let accepted = agrees(signal, &bytes, "nesting");
            assert_eq!(accepted, base + 2 * steps <= RECURSION_LIMIT as usize, "{signal} at {steps} arrays");
            if !accepted {
                let error = validate_request(signal, &bytes).unwrap_err();
                assert_eq!(error.problem, Problem::TooDeep, "{error}");
                assert!(error.to_string().contains("deeper than the protobuf decoder's limit of 100"), "{error}");
            }
        }
    }
}

#[test]
fn a_metric_with_two_kinds_of_data_is_refused() {
    // The decoder keeps the last kind (the sum's 1 point) and drops the
    // gauge's 2 points: a receiver that counted on the wire would have
    // acknowledged 3.
    let bytes = corpus::two_data_fields(2);
    assert_eq!(ExportRequest::decode_protobuf(Signal::Metrics, &bytes).unwrap().item_count(), 1);
    let error = validate_request(Signal::Metrics, &bytes).unwrap_err();
    assert_eq!(error.problem, Problem::SecondMetricData { first: "gauge" });
    assert!(
        error
            .to_string()
            .starts_with("Metric.sum (field 7) is a second kind of data in a metric that already has gauge"),
        "{error}"
    );
    // The same kind twice is merged by the decoder: one gauge, all points.
    let request = sample::metrics("twice", 0);
    let metric = prost::Message::encode_to_vec(&request.resource_metrics[0].scope_metrics[0].metrics[0]);
    let mut doubled = metric.clone();
    doubled.extend(&metric[metric.iter().position(|byte| *byte == 0x2a).unwrap()..]);
    let mut scope = vec![0x12];
    put_length(&mut scope, &doubled);
    let mut resource = vec![0x12];
    put_length(&mut resource, &scope);
    let mut bytes = vec![0x0a];
    put_length(&mut bytes, &resource);
    assert!(agrees(Signal::Metrics, &bytes, "the same kind twice"));
    assert_eq!(validate_request(Signal::Metrics, &bytes), Ok(4));
}

fn put_length(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut len = bytes.len();
    while len >= 0x80 {
        out.push((len as u8) | 0x80);
        len >>= 7;
    }
    out.push(len as u8);
    out.extend_from_slice(bytes);
}

#[test]
fn varints_past_64_bits_and_groups_are_refused() {
    // A trace request whose first field key is a varint of 10 bytes whose
    // last byte carries more than the 64th bit.
    let overflow = [0x8a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02];
    assert!(!agrees(Signal::Traces, &overflow, "overflow"));
    assert!(
        validate_request(Signal::Traces, &overflow).unwrap_err().to_string().starts_with("varint overflows 64 bits")
    );
    // An unknown field 9 as a group the decoder would skip.
    let group = [0x4b, 0x08, 0x01, 0x4c];
    assert!(ExportRequest::decode_protobuf(Signal::Logs, &group).is_ok());
    assert_eq!(validate_request(Signal::Logs, &group).unwrap_err().problem, GROUP);
}

#[test]
fn thirty_thousand_mutations_agree_with_the_decoder() {
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    let seeds = corpus::seeds();
    let mut accepted = 0;
    let mut refused = 0;
    for round in 0..30_000 {
        let seed = &seeds[round % seeds.len()];
        let signal = seed.signal;
        let (label, bytes) = corpus::mutate_protobuf(&mut rng, seed, &seeds);
        if agrees(signal, &bytes, label) {
            accepted += 1;
        } else {
            refused += 1;
        }
    }
    // Both outcomes are exercised.
    assert!(accepted > 3_000 && refused > 3_000, "{accepted} accepted, {refused} refused");
}
