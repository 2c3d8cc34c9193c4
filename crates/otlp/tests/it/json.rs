//! OTLP/JSON is checked as strictly as protobuf: a bad value anywhere
//! refuses the request, and what is accepted keeps every item.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tape_otlp::proto::metrics::v1::metric::Data;
use tape_otlp::proto::metrics::v1::number_data_point;
use tape_otlp::{Encoding, ExportRequest, Signal, sample, wire};

use crate::corpus;

/// A gauge of three points; the second point's JSON is `point`.
fn gauge_with(point: &str) -> String {
    format!(
        r#"{{"resourceMetrics":[{{"scopeMetrics":[{{"metrics":[{{"name":"m","gauge":{{"dataPoints":[
            {{"timeUnixNano":"1","asDouble":1.5}},
            {point},
            {{"timeUnixNano":"3","asInt":"7"}}]}}}}]}}]}}]}}"#
    )
}

#[test]
fn one_bad_metric_data_point_refuses_the_request_with_its_path() {
    for (point, says) in [
        (r#"{"timeUnixNano":"2","attributes":[{"key":"a","value":{"doubleValue":true}}]}"#, "boolean"),
        (r#"{"startTimeUnixNano":-1,"timeUnixNano":"2"}"#, "out of range"),
        (r#"{"timeUnixNano":2.5}"#, "floating point"),
        (r#"{"timeUnixNano":"2","attributes":[{"key":[]}]}"#, "sequence"),
        (r#"{"timeUnixNano":"2","asDouble":true}"#, "asDouble: true is not a number"),
        (r#"{"timeUnixNano":"2","asInt":1.5}"#, "asInt: 1.5 is not a 64-bit integer"),
        (r#"{"timeUnixNano":"2","asInt":"5","asDouble":5}"#, "has both asDouble and asInt"),
        (r#"{"timeUnixNano":"2","asDouble":1,"exemplars":[{"asInt":"x"}]}"#, "exemplars[0].asInt"),
    ] {
        let body = gauge_with(point);
        let error = ExportRequest::decode(Signal::Metrics, Encoding::Json, body.as_bytes()).unwrap_err().to_string();
        assert!(
            error.contains("resourceMetrics[0].scopeMetrics[0].metrics[0].gauge.dataPoints[1]"),
            "{point}: {error}"
        );
        assert!(error.contains(says), "{point}: {error}");
    }
    // The same mistakes in traces and logs were refused already.
    for body in [
        r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"attributes":[{"key":"a","value":{"doubleValue":true}}]}]}]}]}"#,
        r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":2.5}]}]}]}"#,
    ] {
        let signal = if body.contains("Spans") { Signal::Traces } else { Signal::Logs };
        assert!(ExportRequest::decode(signal, Encoding::Json, body.as_bytes()).is_err(), "{body}");
    }
}

#[test]
fn a_metric_with_two_kinds_of_data_in_json_is_refused() {
    let body = r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"m",
        "gauge":{"dataPoints":[{"asDouble":1}]},"sum":{"dataPoints":[{"asDouble":2}]}}]}]}]}"#;
    let error = ExportRequest::decode(Signal::Metrics, Encoding::Json, body.as_bytes()).unwrap_err().to_string();
    assert!(error.contains("metrics[0]: has both gauge and sum"), "{error}");
}

#[test]
fn special_doubles_and_integer_strings_are_read_as_the_mapping_says() {
    let body = gauge_with(r#"{"timeUnixNano":"2","asDouble":"-Infinity"}"#);
    let ExportRequest::Metrics(request) =
        ExportRequest::decode(Signal::Metrics, Encoding::Json, body.as_bytes()).unwrap()
    else {
        unreachable!()
    };
    let Some(Data::Gauge(gauge)) = &request.resource_metrics[0].scope_metrics[0].metrics[0].data else {
        panic!("a gauge")
    };
    let values: Vec<_> = gauge.data_points.iter().map(|point| point.value).collect();
    assert_eq!(
        values,
        [
            Some(number_data_point::Value::AsDouble(1.5)),
            Some(number_data_point::Value::AsDouble(f64::NEG_INFINITY)),
            Some(number_data_point::Value::AsInt(7)),
        ]
    );
    // Every sample still round-trips.
    let metrics = ExportRequest::from(sample::metrics("a", 0));
    let json = metrics.encode_json().unwrap();
    assert_eq!(ExportRequest::decode(Signal::Metrics, Encoding::Json, &json).unwrap(), metrics);
}

#[test]
fn mutated_json_is_refused_or_kept_whole() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let seeds = corpus::seeds();
    let (mut accepted, mut refused) = (0, 0);
    for round in 0..4_000 {
        let seed = &seeds[round % seeds.len()];
        let signal = seed.signal;
        let (label, body) = corpus::mutate_json(&mut rng, seed, &seeds);
        let Ok(decoded) = ExportRequest::decode(signal, Encoding::Json, &body) else {
            refused += 1;
            continue;
        };
        accepted += 1;
        let text = String::from_utf8_lossy(&body);
        assert_eq!(
            Some(decoded.item_count()),
            corpus::json_items(signal, &body),
            "{label}: {signal} lost items: {text}"
        );
        let protobuf = decoded.encode_protobuf();
        assert_eq!(wire::validate_request(signal, &protobuf), Ok(decoded.item_count()), "{label}: {text}");
    }
    assert!(accepted > 500 && refused > 500, "{accepted} accepted, {refused} refused");
}
