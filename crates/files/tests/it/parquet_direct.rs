//! The traces table read straight from a request's protobuf bytes
//! (`SignalTables::append_encoded`) holds exactly the rows of the decoded
//! request (`SignalTables::append`), for valid requests of every shape and
//! for damaged bytes alike.

use arrow_array::RecordBatch;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use proptest::prelude::*;
use tape_files::parquet::{RowContext, SignalTables, Table};
use tape_otlp::{ExportRequest, Signal};

use crate::parquet_tables::Record;

const CONTEXT: RowContext<'static> = RowContext { session: "direct", receive_time: 7, phase: Some("p") };

/// The traces batch of `requests` appended decoded.
fn decoded_rows(requests: &[&ExportRequest], context: &RowContext<'_>, with_phase: bool) -> Option<RecordBatch> {
    let mut tables = SignalTables::new(Signal::Traces, with_phase);
    for request in requests {
        tables.append(request, context);
    }
    tables.take(Table::Traces)
}

/// Checks that every trace request of `records` gives the same rows read
/// from its bytes as decoded.
pub fn assert_direct_equals_prost(records: &[Record], with_phase: bool) {
    for (request, context) in records.iter().filter(|(request, _)| request.signal() == Signal::Traces) {
        let mut direct = SignalTables::new(Signal::Traces, with_phase);
        let appended =
            direct.append_encoded(Signal::Traces, &request.encode_protobuf(), context).expect("a valid request");
        assert_eq!(appended, request.item_count());
        assert_eq!(direct.take(Table::Traces), decoded_rows(&[request], context, with_phase));
    }
}

/// Checks that `payload` gives the rows prost gives, or, when prost
/// rejects it, an error and no rows.
fn assert_same_as_prost(payload: &[u8]) -> Result<(), TestCaseError> {
    let mut direct = SignalTables::new(Signal::Traces, true);
    let result = direct.append_encoded(Signal::Traces, payload, &CONTEXT);
    match ExportRequest::decode_protobuf(Signal::Traces, payload) {
        Ok(request) => {
            prop_assert_eq!(result.ok(), Some(request.item_count()));
            prop_assert_eq!(direct.take(Table::Traces), decoded_rows(&[&request], &CONTEXT, true));
        }
        Err(error) => {
            prop_assert_eq!(result.map_err(|error| error.to_string()), Err(error.to_string()));
            prop_assert_eq!(direct.buffered(Table::Traces), 0);
        }
    }
    Ok(())
}

fn span(name: &str, status: Option<Status>) -> Span {
    Span {
        trace_id: vec![1; 16],
        span_id: vec![2; 8],
        name: name.to_owned(),
        status,
        attributes: vec![KeyValue {
            key: "k".into(),
            value: Some(AnyValue { value: Some(Value::IntValue(3)) }),
            ..KeyValue::default()
        }],
        ..Span::default()
    }
}

fn request(spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans { spans, ..ScopeSpans::default() }],
            ..ResourceSpans::default()
        }],
    }
}

#[test]
fn a_status_that_comes_twice_is_merged_as_prost_merges_it() {
    use prost::Message as _;
    let first = Status { message: "first".into(), code: 2 };
    let second = Status { message: String::new(), code: 1 };
    let mut payload = request(vec![span("merged", Some(first))]).encode_to_vec();
    // The span is the last field of the payload, and its length prefixes
    // are rewritten by encoding the pieces again: a span whose status
    // field appears twice.
    let mut span_bytes = span("merged", Some(Status { message: "first".into(), code: 2 })).encode_to_vec();
    prost::encoding::message::encode(15, &second, &mut span_bytes);
    let mut scope = Vec::new();
    prost::encoding::bytes::encode(2, &span_bytes, &mut scope);
    let mut resource = Vec::new();
    prost::encoding::bytes::encode(2, &scope, &mut resource);
    payload.clear();
    prost::encoding::bytes::encode(1, &resource, &mut payload);
    let decoded = ExportTraceServiceRequest::decode(payload.as_slice()).expect("valid");
    let status = decoded.resource_spans[0].scope_spans[0].spans[0].status.clone().expect("a status");
    // Merged: the second's code, the first's message (an empty string is
    // not encoded).
    assert_eq!(status, Status { message: "first".into(), code: 1 });
    assert_same_as_prost(&payload).expect("the same rows");
}

#[test]
fn an_undecodable_payload_gives_prosts_error_and_no_rows() {
    let mut tables = SignalTables::new(Signal::Traces, true);
    let valid = ExportRequest::Traces(request(vec![span("a", None), span("b", None)])).encode_protobuf();
    let cut = &valid[..valid.len() - 3];
    let error = tables.append_encoded(Signal::Traces, cut, &CONTEXT).unwrap_err();
    assert!(error.to_string().starts_with("not a valid OTLP traces request in protobuf"), "{error}");
    assert_eq!(tables.buffered(Table::Traces), 0);
    assert_eq!(tables.append_encoded(Signal::Traces, &valid, &CONTEXT).expect("valid"), 2);
}

fn leaf() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        Just(None),
        "[a-z\u{e9}\"]{0,6}".prop_map(|text| Some(Value::StringValue(text))),
        any::<bool>().prop_map(|flag| Some(Value::BoolValue(flag))),
        any::<i64>().prop_map(|number| Some(Value::IntValue(number))),
        any::<f64>().prop_map(|number| Some(Value::DoubleValue(number))),
        prop::collection::vec(any::<u8>(), 0..5).prop_map(|bytes| Some(Value::BytesValue(bytes))),
    ]
}

fn value() -> impl Strategy<Value = Option<AnyValue>> {
    let nested = prop_oneof![
        leaf(),
        prop::collection::vec(leaf(), 0..3).prop_map(|values| Some(Value::ArrayValue(ArrayValue {
            values: values.into_iter().map(|value| AnyValue { value }).collect()
        }))),
        prop::collection::vec(("[ab]", leaf()), 0..3).prop_map(|pairs| Some(Value::KvlistValue(KeyValueList {
            values: pairs
                .into_iter()
                .map(|(key, value)| KeyValue { key, value: Some(AnyValue { value }), ..KeyValue::default() })
                .collect()
        }))),
    ];
    prop_oneof![Just(None), nested.prop_map(|value| Some(AnyValue { value }))]
}

fn attributes() -> impl Strategy<Value = Vec<KeyValue>> {
    let pair = || {
        (prop_oneof![Just("service.name".to_owned()), "[a-d]{1,2}"], value()).prop_map(|(key, value)| KeyValue {
            key,
            value,
            ..KeyValue::default()
        })
    };
    prop_oneof![prop::collection::vec(pair(), 0..4), prop::collection::vec(pair(), 0..24)]
}

fn id() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![Just(Vec::new()), Just(vec![0; 8]), prop::collection::vec(any::<u8>(), 0..20)]
}

fn random_span() -> impl Strategy<Value = Span> {
    let event = (any::<u64>(), "[a-z]{0,3}", attributes()).prop_map(|(time_unix_nano, name, attributes)| Event {
        time_unix_nano,
        name,
        attributes,
        ..Event::default()
    });
    let link = (id(), id(), "[a-z=,]{0,4}", attributes()).prop_map(|(trace_id, span_id, trace_state, attributes)| {
        Link { trace_id, span_id, trace_state, attributes, ..Link::default() }
    });
    let status = prop::option::of((-1..4i32, "[a-z]{0,3}").prop_map(|(code, message)| Status { message, code }));
    (
        (id(), id(), id(), "[a-z]{0,3}", "[a-z]{0,4}", -1..8i32, any::<u64>(), any::<u64>()),
        (attributes(), prop::collection::vec(event, 0..3), prop::collection::vec(link, 0..3), status),
    )
        .prop_map(
            |((trace_id, span_id, parent, state, name, kind, start, end), (attributes, events, links, status))| Span {
                trace_id,
                span_id,
                parent_span_id: parent,
                trace_state: state,
                name,
                kind,
                start_time_unix_nano: start,
                end_time_unix_nano: end,
                attributes,
                events,
                links,
                status,
                ..Span::default()
            },
        )
}

fn random_request() -> impl Strategy<Value = ExportTraceServiceRequest> {
    let scope =
        prop::option::of(("[a-z]{0,3}", "[0-9.]{0,3}", attributes()).prop_map(|(name, version, attributes)| {
            InstrumentationScope { name, version, attributes, ..InstrumentationScope::default() }
        }));
    let scope_spans = (scope, prop::collection::vec(random_span(), 0..4)).prop_map(|(scope, spans)| ScopeSpans {
        scope,
        spans,
        ..ScopeSpans::default()
    });
    let resource = prop::option::of(attributes().prop_map(|attributes| Resource { attributes, ..Resource::default() }));
    let resource_spans = (resource, prop::collection::vec(scope_spans, 0..3))
        .prop_map(|(resource, scope_spans)| ResourceSpans { resource, scope_spans, ..ResourceSpans::default() });
    prop::collection::vec(resource_spans, 0..3).prop_map(|resource_spans| ExportTraceServiceRequest { resource_spans })
}

proptest! {
    #[test]
    fn random_requests_give_the_rows_of_the_decoded_request(request in random_request()) {
        let payload = ExportRequest::Traces(request).encode_protobuf();
        assert_same_as_prost(&payload)?;
    }

    #[test]
    fn damaged_bytes_give_the_rows_prost_gives_or_its_error(
        request in random_request(),
        changes in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in prop::option::of(any::<prop::sample::Index>()),
    ) {
        let mut payload = ExportRequest::Traces(request).encode_protobuf();
        if payload.is_empty() {
            payload.push(0x0a);
        }
        for (index, byte) in changes {
            let at = index.index(payload.len());
            payload[at] = byte;
        }
        if let Some(cut) = cut {
            payload.truncate(cut.index(payload.len() + 1));
        }
        assert_same_as_prost(&payload)?;
    }
}
