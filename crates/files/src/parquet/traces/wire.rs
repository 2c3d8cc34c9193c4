//! The rows of an `ExportTraceServiceRequest` read straight from its
//! protobuf bytes: the wire format walked with borrowed slices, strings
//! checked as UTF-8 as prost checks them, no message decoded into owned
//! structs (but for the rare array and key-value list attribute values,
//! and a resource's attributes, once per resource).
//!
//! The walker reads exactly what prost reads or gives up with
//! [`Invalid`]: on a wire error, invalid UTF-8, a known field of an
//! unexpected wire type, a group, a singular message field that comes
//! twice (prost merges those), a resource's entity references, or
//! attribute values nested deeper than [`MAX_NESTING`]. The caller then
//! decodes the request with prost, which gives the rows or the error.

use arrow_array::builder::StringBuilder;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use prost::Message as _;

use super::super::attributes::{AttributesBuilder, RenderedAttributes, append_id, append_value, nanos, service_name};
use super::{Shared, SpanRow, TracesRows};

/// Array and key-value list values nested deeper than this are left to
/// prost, whose recursion limit counts from the request, not the value.
const MAX_NESTING: usize = 32;

/// Bytes the walker does not read exactly as prost does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::parquet) struct Invalid;

/// One field's value as the wire carries it.
#[derive(Clone, Copy)]
enum Field<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32,
}

impl<'a> Field<'a> {
    fn bytes(self) -> Result<&'a [u8], Invalid> {
        if let Field::Bytes(bytes) = self { Ok(bytes) } else { Err(Invalid) }
    }

    fn string(self) -> Result<&'a str, Invalid> {
        std::str::from_utf8(self.bytes()?).map_err(|_| Invalid)
    }

    fn varint(self) -> Result<u64, Invalid> {
        if let Field::Varint(value) = self { Ok(value) } else { Err(Invalid) }
    }

    /// An `int32` or enum field: prost truncates the varint.
    fn int32(self) -> Result<i32, Invalid> {
        Ok(self.varint()? as i32)
    }

    fn fixed64(self) -> Result<u64, Invalid> {
        if let Field::Fixed64(value) = self { Ok(value) } else { Err(Invalid) }
    }

    fn fixed32(self) -> Result<(), Invalid> {
        if let Field::Fixed32 = self { Ok(()) } else { Err(Invalid) }
    }
}

/// The fields of one message, in order.
struct Fields<'a> {
    buf: &'a [u8],
}

impl<'a> Fields<'a> {
    fn of(buf: &'a [u8]) -> Self {
        Fields { buf }
    }

    fn varint(&mut self) -> Result<u64, Invalid> {
        let mut value = 0u64;
        for index in 0..10 {
            let byte = *self.buf.get(index).ok_or(Invalid)?;
            if index == 9 && byte > 1 {
                return Err(Invalid);
            }
            value |= u64::from(byte & 0x7f) << (7 * index);
            if byte < 0x80 {
                self.buf = &self.buf[index + 1..];
                return Ok(value);
            }
        }
        Err(Invalid)
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], Invalid> {
        if len > self.buf.len() {
            return Err(Invalid);
        }
        let (head, rest) = self.buf.split_at(len);
        self.buf = rest;
        Ok(head)
    }

    /// The next field's number and value; `None` at the end.
    fn next(&mut self) -> Result<Option<(u32, Field<'a>)>, Invalid> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let key = u32::try_from(key).map_err(|_| Invalid)?;
        let tag = key >> 3;
        if tag == 0 {
            return Err(Invalid);
        }
        let field = match key & 7 {
            0 => Field::Varint(self.varint()?),
            1 => Field::Fixed64(u64::from_le_bytes(self.take(8)?.try_into().map_err(|_| Invalid)?)),
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| Invalid)?;
                Field::Bytes(self.take(len)?)
            }
            5 => {
                self.take(4)?;
                Field::Fixed32
            }
            // Groups (deprecated, skipped by prost) and wire types that do
            // not exist.
            _ => return Err(Invalid),
        };
        Ok(Some((tag, field)))
    }
}

/// An attribute's value.
enum Val<'a> {
    /// No value, or one that renders as nothing.
    Empty,
    /// A string, borrowed.
    Str(&'a str),
    /// Any other value, decoded by prost.
    Other(AnyValue),
}

/// An attribute.
struct Kv<'a> {
    key: &'a str,
    value: Val<'a>,
}

/// Reads a `KeyValue`.
fn key_value(buf: &[u8]) -> Result<Kv<'_>, Invalid> {
    let mut key = "";
    let mut value = None;
    let mut fields = Fields::of(buf);
    while let Some((tag, field)) = fields.next()? {
        match tag {
            1 => key = field.string()?,
            2 if value.is_some() => return Err(Invalid),
            2 => value = Some(any_value(field.bytes()?)?),
            3 => {
                field.int32()?;
            }
            _ => {}
        }
    }
    Ok(Kv { key, value: value.unwrap_or(Val::Empty) })
}

/// Reads an `AnyValue`: a lone string borrowed, a lone boolean, integer
/// or double read as prost reads it, anything else through prost.
fn any_value(buf: &[u8]) -> Result<Val<'_>, Invalid> {
    let mut last = None;
    let mut values = 0;
    let mut fields = Fields::of(buf);
    while let Some((tag, field)) = fields.next()? {
        if (1..=8).contains(&tag) {
            last = Some((tag, field));
            values += 1;
        }
    }
    let scalar = |value| Ok(Val::Other(AnyValue { value: Some(value) }));
    match (values, last) {
        (0, _) => Ok(Val::Empty),
        (1, Some((1, field))) => Ok(Val::Str(field.string()?)),
        (1, Some((2, field))) => scalar(Value::BoolValue(field.varint()? != 0)),
        (1, Some((3, field))) => scalar(Value::IntValue(field.varint()?.cast_signed())),
        (1, Some((4, field))) => scalar(Value::DoubleValue(f64::from_bits(field.fixed64()?))),
        _ => {
            let value = AnyValue::decode(buf).map_err(|_| Invalid)?;
            if nesting(&value) > MAX_NESTING {
                return Err(Invalid);
            }
            Ok(Val::Other(value))
        }
    }
}

/// How deep arrays and key-value lists nest in `value`.
fn nesting(value: &AnyValue) -> usize {
    match &value.value {
        Some(Value::ArrayValue(array)) => 1 + array.values.iter().map(nesting).max().unwrap_or(0),
        Some(Value::KvlistValue(list)) => {
            1 + list.values.iter().filter_map(|pair| pair.value.as_ref()).map(nesting).max().unwrap_or(0)
        }
        _ => 0,
    }
}

/// Appends one map value holding `attributes`, as
/// `attributes::append_attributes` does.
fn append_attributes(builder: &mut AttributesBuilder, attributes: &[Kv<'_>]) {
    super::super::attributes::for_each_unique(
        attributes,
        |pair| pair.key,
        |pair| {
            let (keys, values) = builder.entries();
            keys.append_value(pair.key);
            append_val(values, &pair.value);
        },
    );
    builder.append(true).expect("keys and values are appended in pairs");
}

fn append_val(values: &mut StringBuilder, value: &Val<'_>) {
    match value {
        Val::Empty => values.append_value(""),
        Val::Str(text) => values.append_value(text),
        Val::Other(value) => append_value(values, Some(value)),
    }
}

/// The attribute as prost decodes it.
fn owned(pair: &Kv<'_>) -> KeyValue {
    let value = match &pair.value {
        Val::Empty => None,
        Val::Str(text) => Some(AnyValue { value: Some(Value::StringValue((*text).to_owned())) }),
        Val::Other(value) => Some(value.clone()),
    };
    KeyValue { key: pair.key.to_owned(), value, ..KeyValue::default() }
}

/// Attribute lists being read, reused from span to span.
#[derive(Default)]
struct Scratch<'a> {
    span: Vec<Kv<'a>>,
    item: Vec<Kv<'a>>,
}

/// Walks a request's bytes, appending its spans to `rows` when given;
/// without rows, only checks that the walk succeeds. The walk fails at the
/// same place whether it appends or not, so a request that walks once
/// without rows appends all its rows the second time.
pub(super) fn walk(payload: &[u8], mut rows: Option<&mut TracesRows>) -> Result<(), Invalid> {
    let mut scratch = Scratch::default();
    let mut fields = Fields::of(payload);
    while let Some((tag, field)) = fields.next()? {
        if tag == 1 {
            resource_spans(field.bytes()?, rows.as_deref_mut(), &mut scratch)?;
        }
    }
    Ok(())
}

fn resource_spans<'a>(
    buf: &'a [u8],
    mut rows: Option<&mut TracesRows>,
    scratch: &mut Scratch<'a>,
) -> Result<(), Invalid> {
    let mut resource = None;
    let mut fields = Fields::of(buf);
    while let Some((tag, field)) = fields.next()? {
        match tag {
            1 if resource.is_some() => return Err(Invalid),
            1 => resource = Some(field.bytes()?),
            2 => {
                field.bytes()?;
            }
            3 => {
                field.string()?;
            }
            _ => {}
        }
    }
    let mut attributes = Vec::new();
    let mut fields = Fields::of(resource.unwrap_or_default());
    while let Some((tag, field)) = fields.next()? {
        match tag {
            1 => attributes.push(key_value(field.bytes()?)?),
            2 => {
                field.varint()?;
            }
            // Entity references: left to prost.
            3 => return Err(Invalid),
            _ => {}
        }
    }
    let rendered = rows.is_some().then(|| {
        let attributes: Vec<KeyValue> = attributes.iter().map(owned).collect();
        (RenderedAttributes::new(&attributes), service_name(&attributes).to_owned())
    });
    let mut fields = Fields::of(buf);
    while let Some((tag, field)) = fields.next()? {
        if tag == 2 {
            scope_spans(field.bytes()?, rendered.as_ref(), rows.as_deref_mut(), scratch)?;
        }
    }
    Ok(())
}

fn scope_spans<'a>(
    buf: &'a [u8],
    resource: Option<&(RenderedAttributes, String)>,
    mut rows: Option<&mut TracesRows>,
    scratch: &mut Scratch<'a>,
) -> Result<(), Invalid> {
    let mut scope = None;
    let mut fields = Fields::of(buf);
    while let Some((tag, field)) = fields.next()? {
        match tag {
            1 if scope.is_some() => return Err(Invalid),
            1 => scope = Some(field.bytes()?),
            2 => {
                field.bytes()?;
            }
            3 => {
                field.string()?;
            }
            _ => {}
        }
    }
    let (mut name, mut version) = ("", "");
    let mut fields = Fields::of(scope.unwrap_or_default());
    while let Some((tag, field)) = fields.next()? {
        match tag {
            1 => name = field.string()?,
            2 => version = field.string()?,
            3 => {
                key_value(field.bytes()?)?;
            }
            4 => {
                field.varint()?;
            }
            _ => {}
        }
    }
    let shared =
        resource.map(|(resource, service)| Shared { service, resource, scope_name: name, scope_version: version });
    let mut fields = Fields::of(buf);
    while let Some((tag, field)) = fields.next()? {
        if tag == 2 {
            let rows = rows.as_deref_mut().zip(shared.as_ref());
            span(field.bytes()?, rows, scratch)?;
        }
    }
    Ok(())
}

fn span<'a>(
    buf: &'a [u8],
    mut rows: Option<(&mut TracesRows, &Shared<'_>)>,
    scratch: &mut Scratch<'a>,
) -> Result<(), Invalid> {
    let mut row = SpanRow {
        trace_id: &[],
        span_id: &[],
        parent_span_id: &[],
        trace_state: "",
        name: "",
        kind: 0,
        start: 0,
        end: 0,
        status_code: 0,
        status_message: "",
    };
    let mut status = None;
    scratch.span.clear();
    let mut fields = Fields::of(buf);
    while let Some((tag, field)) = fields.next()? {
        match tag {
            1 => row.trace_id = field.bytes()?,
            2 => row.span_id = field.bytes()?,
            3 => row.trace_state = field.string()?,
            4 => row.parent_span_id = field.bytes()?,
            5 => row.name = field.string()?,
            6 => row.kind = field.int32()?,
            7 => row.start = field.fixed64()?,
            8 => row.end = field.fixed64()?,
            9 => scratch.span.push(key_value(field.bytes()?)?),
            10 | 12 | 14 => {
                field.varint()?;
            }
            11 => event(field.bytes()?, rows.as_mut().map(|(rows, _)| &mut **rows), &mut scratch.item)?,
            13 => link(field.bytes()?, rows.as_mut().map(|(rows, _)| &mut **rows), &mut scratch.item)?,
            15 if status.is_some() => return Err(Invalid),
            15 => status = Some(field.bytes()?),
            16 => field.fixed32()?,
            _ => {}
        }
    }
    let mut fields = Fields::of(status.unwrap_or_default());
    while let Some((tag, field)) = fields.next()? {
        match tag {
            2 => row.status_message = field.string()?,
            3 => row.status_code = field.int32()?,
            _ => {}
        }
    }
    if let Some((rows, shared)) = rows {
        append_attributes(&mut rows.columns.span_attributes, &scratch.span);
        rows.close_span(&row, shared);
    }
    Ok(())
}

fn event<'a>(buf: &'a [u8], rows: Option<&mut TracesRows>, attributes: &mut Vec<Kv<'a>>) -> Result<(), Invalid> {
    let (mut time, mut name) = (0, "");
    attributes.clear();
    let mut fields = Fields::of(buf);
    while let Some((tag, field)) = fields.next()? {
        match tag {
            1 => time = field.fixed64()?,
            2 => name = field.string()?,
            3 => attributes.push(key_value(field.bytes()?)?),
            4 => {
                field.varint()?;
            }
            _ => {}
        }
    }
    if let Some(rows) = rows {
        let columns = &mut rows.columns;
        columns.events_timestamp.values().append_value(nanos(time));
        columns.events_name.values().append_value(name);
        append_attributes(columns.events_attributes.values(), attributes);
    }
    Ok(())
}

fn link<'a>(buf: &'a [u8], rows: Option<&mut TracesRows>, attributes: &mut Vec<Kv<'a>>) -> Result<(), Invalid> {
    let (mut trace_id, mut span_id, mut trace_state): (&[u8], &[u8], &str) = (&[], &[], "");
    attributes.clear();
    let mut fields = Fields::of(buf);
    while let Some((tag, field)) = fields.next()? {
        match tag {
            1 => trace_id = field.bytes()?,
            2 => span_id = field.bytes()?,
            3 => trace_state = field.string()?,
            4 => attributes.push(key_value(field.bytes()?)?),
            5 => {
                field.varint()?;
            }
            6 => field.fixed32()?,
            _ => {}
        }
    }
    if let Some(rows) = rows {
        let columns = &mut rows.columns;
        append_id(columns.links_trace_id.values(), trace_id);
        append_id(columns.links_span_id.values(), span_id);
        columns.links_trace_state.values().append_value(trace_state);
        append_attributes(columns.links_attributes.values(), attributes);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;

    #[test]
    fn valid_requests_are_read_directly_and_a_repeated_status_is_left_to_prost() {
        let request = tape_otlp::sample::traces("checkout", 3, 1_000);
        assert_eq!(walk(&request.encode_to_vec(), None), Ok(()));
        let mut rows = TracesRows::new(true);
        let context = super::super::RowContext { session: "s", receive_time: 1, phase: None };
        assert_eq!(rows.append_encoded(&request.encode_to_vec(), &context), Ok(3));

        let status = opentelemetry_proto::tonic::trace::v1::Status { message: "m".into(), code: 2 };
        let mut span = opentelemetry_proto::tonic::trace::v1::Span::default().encode_to_vec();
        prost::encoding::message::encode(15, &status, &mut span);
        prost::encoding::message::encode(15, &status, &mut span);
        let mut scope = Vec::new();
        prost::encoding::bytes::encode(2, &span, &mut scope);
        let mut resource = Vec::new();
        prost::encoding::bytes::encode(2, &scope, &mut resource);
        let mut payload = Vec::new();
        prost::encoding::bytes::encode(1, &resource, &mut payload);
        assert_eq!(walk(&payload, None), Err(Invalid));
        assert_eq!(rows.append_encoded(&payload, &context), Err(Invalid));
        assert_eq!(rows.buffered(super::super::Table::Traces), 3);
    }

    #[test]
    fn the_fixtures_with_every_field_and_the_collectors_samples_are_read_directly() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let every_field = std::fs::read_to_string(root.join("tests/it/parquet_every_field.jsonl")).expect("a fixture");
        let samples = std::fs::read_to_string(root.join("../../tests/data/traces.jsonl")).expect("a fixture");
        let lines: Vec<&str> = every_field.lines().take(1).chain(samples.lines()).collect();
        assert!(lines.len() > 1);
        for line in lines {
            let request =
                tape_otlp::ExportRequest::decode_json(tape_otlp::Signal::Traces, line.as_bytes()).expect("OTLP/JSON");
            assert_eq!(walk(&request.encode_protobuf(), None), Ok(()), "{line}");
        }
    }
}
