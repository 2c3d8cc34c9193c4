//! Integration tests of the OTLP codecs and item counting.

mod corpus;
mod json;
mod validate;

use tape_otlp::proto::collector::trace::v1::ExportTraceServiceRequest;
use tape_otlp::proto::common::v1::any_value::Value;
use tape_otlp::{Encoding, ExportRequest, Signal, sample};

/// The trace example of the OTLP specification's repository (examples/trace.json).
const SPEC_TRACE_EXAMPLE: &str = r#"{
  "resourceSpans": [
    {
      "resource": {
        "attributes": [
          { "key": "service.name", "value": { "stringValue": "my.service" } }
        ]
      },
      "scopeSpans": [
        {
          "scope": {
            "name": "my.library",
            "version": "1.0.0",
            "attributes": [
              { "key": "my.scope.attribute", "value": { "stringValue": "some scope attribute" } }
            ]
          },
          "spans": [
            {
              "traceId": "5B8EFFF798038103D269B633813FC60C",
              "spanId": "EEE19B7EC3C1B174",
              "parentSpanId": "EEE19B7EC3C1B173",
              "name": "I'm a server span",
              "startTimeUnixNano": "1544712660000000000",
              "endTimeUnixNano": "1544712661000000000",
              "kind": 2,
              "attributes": [
                { "key": "my.span.attr", "value": { "stringValue": "some value" } },
                { "key": "my.int", "value": { "intValue": "9007199254740993" } }
              ],
              "unknownFieldFromTheFuture": { "ignored": true }
            }
          ]
        }
      ]
    }
  ]
}"#;

#[test]
fn decodes_the_specification_example() {
    let request = ExportRequest::decode(Signal::Traces, Encoding::Json, SPEC_TRACE_EXAMPLE.as_bytes()).unwrap();
    let ExportRequest::Traces(traces) = &request else { panic!("expected traces") };
    let span = &traces.resource_spans[0].scope_spans[0].spans[0];
    assert_eq!(hex::encode(&span.trace_id), "5b8efff798038103d269b633813fc60c");
    assert_eq!(hex::encode(&span.span_id), "eee19b7ec3c1b174");
    assert_eq!(span.start_time_unix_nano, 1_544_712_660_000_000_000);
    assert_eq!(span.kind, 2);
    let int_value = span.attributes[1].value.as_ref().unwrap().value.as_ref().unwrap();
    assert_eq!(int_value, &Value::IntValue(9_007_199_254_740_993));
    assert_eq!(request.item_count(), 1);
}

#[test]
fn json_encoding_follows_the_specification_mapping() {
    let request = ExportRequest::from(sample::traces("checkout", 10, 0));
    let json: serde_json::Value = serde_json::from_slice(&request.encode(Encoding::Json).unwrap()).unwrap();
    let span = &json["resourceSpans"][0]["scopeSpans"][0]["spans"][1];
    // Ids are lowercase hex strings, not base64.
    let trace_id = span["traceId"].as_str().unwrap();
    assert_eq!(trace_id.len(), 32);
    assert!(trace_id.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    assert_eq!(span["parentSpanId"].as_str().unwrap().len(), 16);
    // 64-bit integers are strings; enums are integers; names are lowerCamelCase.
    assert!(span["startTimeUnixNano"].is_string());
    assert_eq!(span["kind"], serde_json::json!(3));
    assert_eq!(span["attributes"][2]["value"]["intValue"], serde_json::json!("200"));
    assert!(span["status"]["code"].is_number());
}

#[test]
fn json_accepts_integers_as_numbers_too() {
    let body = br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":1700000000000000000,"severityNumber":9,"body":{"intValue":42}}]}]}]}"#;
    let request = ExportRequest::decode(Signal::Logs, Encoding::Json, body).unwrap();
    let ExportRequest::Logs(logs) = request else { panic!("expected logs") };
    let record = &logs.resource_logs[0].scope_logs[0].log_records[0];
    assert_eq!(record.time_unix_nano, 1_700_000_000_000_000_000);
    assert_eq!(record.body.as_ref().unwrap().value, Some(Value::IntValue(42)));
}

#[test]
fn every_signal_round_trips_through_json_and_protobuf() {
    let requests = [
        ExportRequest::from(sample::traces("frontend", 25, 7)),
        ExportRequest::from(sample::metrics("frontend", 7)),
        ExportRequest::from(sample::logs("frontend", 12, 7)),
    ];
    for request in requests {
        let signal = request.signal();
        let protobuf = request.encode(Encoding::Protobuf).unwrap();
        let json = request.encode(Encoding::Json).unwrap();
        let from_json = ExportRequest::decode(signal, Encoding::Json, &json).unwrap();
        assert_eq!(from_json, request, "{signal} changed through OTLP/JSON");
        assert_eq!(from_json.encode(Encoding::Protobuf).unwrap(), protobuf, "{signal} protobuf bytes changed");
        let from_protobuf = ExportRequest::decode(signal, Encoding::Protobuf, &protobuf).unwrap();
        assert_eq!(from_protobuf, request);
    }
}

#[test]
fn counts_items_of_every_kind() {
    assert_eq!(ExportRequest::from(sample::traces("a", 25, 0)).item_count(), 25);
    // A gauge of 2 points, a sum of 1, a histogram of 2, an exponential
    // histogram of 1 and a summary of 1.
    assert_eq!(ExportRequest::from(sample::metrics("a", 0)).item_count(), 7);
    assert_eq!(ExportRequest::from(sample::logs("a", 12, 0)).item_count(), 12);
    assert_eq!(ExportRequest::from(ExportTraceServiceRequest::default()).item_count(), 0);
}

#[test]
fn malformed_input_names_what_is_wrong() {
    let error = ExportRequest::decode(Signal::Traces, Encoding::Json, b"{\"resourceSpans\": [ {\"scopeSpans\": 5} ]}")
        .unwrap_err();
    let message = error.to_string();
    assert!(message.contains("traces") && message.contains("OTLP/JSON") && message.contains("column"), "{message}");

    let error = ExportRequest::decode(Signal::Metrics, Encoding::Protobuf, &[0x0a, 0xff, 0xff]).unwrap_err();
    assert!(error.to_string().contains("not a valid OTLP metrics request in protobuf"), "{error}");

    let bad_id = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz"}]}]}]}"#;
    assert!(ExportRequest::decode(Signal::Traces, Encoding::Json, bad_id).is_err());
}
