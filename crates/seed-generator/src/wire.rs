//! Protobuf wire encoding of spans, written directly: the generator's hot
//! path. Each node's constant parts (name, kind, attributes) are encoded
//! once; a span adds only its ids, times and outcome. The result decodes to
//! the same `Span` that prost would encode (a test checks this).

use crate::pattern::{Attributes, Value};

const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const LEN: u32 = 2;
const FIXED32: u32 = 5;

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_tag(out: &mut Vec<u8>, field: u32, wire_type: u32) {
    put_varint(out, u64::from(field << 3 | wire_type));
}

/// A length-delimited field.
pub(crate) fn put_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_tag(out, field, LEN);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn put_fixed64(out: &mut Vec<u8>, field: u32, value: u64) {
    put_tag(out, field, FIXED64);
    out.extend_from_slice(&value.to_le_bytes());
}

fn put_fixed32(out: &mut Vec<u8>, field: u32, value: u32) {
    put_tag(out, field, FIXED32);
    out.extend_from_slice(&value.to_le_bytes());
}

fn put_uint(out: &mut Vec<u8>, field: u32, value: u64) {
    put_tag(out, field, VARINT);
    put_varint(out, value);
}

/// `AnyValue`.
fn any_value(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    match value {
        Value::String(text) => put_bytes(&mut out, 1, text.as_bytes()),
        Value::Bool(flag) => put_uint(&mut out, 2, u64::from(*flag)),
        #[allow(clippy::cast_sign_loss)] // int64 is encoded as its two's complement
        Value::Int(number) => put_uint(&mut out, 3, *number as u64),
        Value::Double(number) => put_fixed64(&mut out, 4, number.to_bits()),
    }
    out
}

/// One `KeyValue` as field `field` of its parent.
pub(crate) fn put_attribute(out: &mut Vec<u8>, field: u32, key: &str, value: &Value) {
    let mut pair = Vec::with_capacity(key.len() + 16);
    put_bytes(&mut pair, 1, key.as_bytes());
    put_bytes(&mut pair, 2, &any_value(value));
    put_bytes(out, field, &pair);
}

/// Every attribute as repeated field `field`.
pub(crate) fn attributes(field: u32, attributes: &Attributes) -> Vec<u8> {
    let mut out = Vec::new();
    for (key, value) in attributes {
        put_attribute(&mut out, field, key, value);
    }
    out
}

/// `Resource` with these attributes.
pub(crate) fn resource(resource: &Attributes) -> Vec<u8> {
    attributes(1, resource)
}

/// `InstrumentationScope` with this name.
pub(crate) fn scope(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    put_bytes(&mut out, 1, name.as_bytes());
    out
}

/// The constant fields of a node's spans, encoded once.
#[derive(Debug, Clone)]
pub(crate) struct SpanTemplate {
    /// `name` and `kind`.
    pub head: Vec<u8>,
    /// The attributes.
    pub attributes: Vec<u8>,
    /// The key of the status attribute, if the node has one.
    pub status_key: Option<&'static str>,
}

impl SpanTemplate {
    pub fn new(name: &str, kind: u64, attributes_: &Attributes, status_key: Option<&'static str>) -> Self {
        let mut head = Vec::new();
        put_bytes(&mut head, 5, name.as_bytes());
        put_uint(&mut head, 6, kind);
        SpanTemplate { head, attributes: attributes(9, attributes_), status_key }
    }
}

/// What varies from span to span.
#[derive(Debug, Clone)]
pub(crate) struct SpanFields<'a> {
    pub trace_id: &'a [u8; 16],
    pub span_id: &'a [u8; 8],
    pub parent_span_id: Option<&'a [u8; 8]>,
    pub flags: u32,
    pub start: u64,
    pub end: u64,
    pub status_code: Option<i64>,
    /// `Some(message)` for a failed span.
    pub error: Option<&'a str>,
    /// An exception event: its type, at the span's end.
    pub exception: Option<&'a str>,
    /// A link to another span (trace id, span id).
    pub link: Option<(&'a [u8; 16], &'a [u8; 8])>,
}

/// Appends one `Span` as field 2 of a `ScopeSpans` to `out`; `scratch` is
/// reused between calls.
pub(crate) fn put_span(out: &mut Vec<u8>, scratch: &mut Vec<u8>, template: &SpanTemplate, span: &SpanFields<'_>) {
    scratch.clear();
    put_bytes(scratch, 1, span.trace_id);
    put_bytes(scratch, 2, span.span_id);
    if let Some(parent) = span.parent_span_id {
        put_bytes(scratch, 4, parent);
    }
    scratch.extend_from_slice(&template.head);
    put_fixed64(scratch, 7, span.start);
    put_fixed64(scratch, 8, span.end);
    scratch.extend_from_slice(&template.attributes);
    if let (Some(key), Some(code)) = (template.status_key, span.status_code) {
        put_attribute(scratch, 9, key, &Value::Int(code));
    }
    if let Some(exception) = span.exception {
        let mut event = Vec::with_capacity(96 + exception.len());
        put_fixed64(&mut event, 1, span.end);
        put_bytes(&mut event, 2, b"exception");
        put_attribute(&mut event, 3, "exception.type", &Value::String(exception.to_owned()));
        put_attribute(&mut event, 3, "exception.message", &Value::String(span.error.unwrap_or_default().to_owned()));
        put_bytes(scratch, 11, &event);
    }
    if let Some((trace_id, span_id)) = span.link {
        let mut link = Vec::with_capacity(40);
        put_bytes(&mut link, 1, trace_id);
        put_bytes(&mut link, 2, span_id);
        put_fixed32(&mut link, 6, 0x101);
        put_bytes(scratch, 13, &link);
    }
    let mut status = Vec::new();
    if let Some(message) = span.error {
        put_bytes(&mut status, 2, message.as_bytes());
        put_uint(&mut status, 3, 2);
    }
    put_bytes(scratch, 15, &status);
    put_fixed32(scratch, 16, span.flags);
    put_bytes(out, 2, scratch);
}

/// Bytes of a varint.
fn varint_len(value: u64) -> usize {
    // 1 + floor(log128(value)), with 0 taking one byte.
    (64 - (value | 1).leading_zeros() as usize).div_ceil(7)
}

/// Bytes of a length-delimited field with a one-byte tag.
fn field_len(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

/// Wraps encoded spans into `ResourceSpans` (field 1 of the request) with
/// the given encoded resource and scope, copying the spans once.
pub(crate) fn put_resource_spans(out: &mut Vec<u8>, resource: &[u8], scope: &[u8], spans: &[u8]) {
    let scope_spans_len = field_len(scope.len()) + spans.len();
    let resource_spans_len = field_len(resource.len()) + field_len(scope_spans_len);
    out.reserve(field_len(resource_spans_len));
    put_tag(out, 1, LEN);
    put_varint(out, resource_spans_len as u64);
    put_bytes(out, 1, resource);
    put_tag(out, 2, LEN);
    put_varint(out, scope_spans_len as u64);
    put_bytes(out, 1, scope);
    out.extend_from_slice(spans);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_lengths_match_the_encoding() {
        for value in [0, 1, 127, 128, 16_383, 16_384, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            assert_eq!(varint_len(value), out.len(), "{value}");
        }
    }
}
