//! The column builders the tables share: attributes as `map<string,
//! string>` with values rendered as the Collector's ClickHouse exporter
//! renders them (pdata's `Value.AsString`), ids as lower-case hex, and the
//! columns every table ends with (`SessionId`, `ReceiveTime`, `Phase`).
//!
//! Rendering writes straight into the Arrow builders: no string is
//! allocated per row except for the rare values that need one (a double in
//! exponent notation, a nested key-value list's sorted keys).

use std::collections::HashMap;
use std::fmt::{self, Write};
use std::sync::Arc;

use arrow_array::ArrayRef;
use arrow_array::builder::{
    ArrayBuilder, ListBuilder, MapBuilder, MapFieldNames, StringBuilder, TimestampNanosecondBuilder,
};
use arrow_schema::{DataType, Field};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};

use super::RowContext;

/// Attribute lists up to this long are searched for repeated keys pair by
/// pair; longer ones through a hash map.
const SHORT_LIST: usize = 16;

/// A builder of an attributes column, `map<string, string>` with the
/// entry, key and value names and nullability of `schema::attributes`.
pub(super) type AttributesBuilder = MapBuilder<StringBuilder, StringBuilder>;

/// A new builder of an attributes column.
pub(super) fn attributes_builder() -> AttributesBuilder {
    let names = MapFieldNames { entry: "key_value".into(), key: "key".into(), value: "value".into() };
    MapBuilder::new(Some(names), StringBuilder::new(), StringBuilder::new()).with_values_field(Field::new(
        "value",
        DataType::Utf8,
        false,
    ))
}

/// A builder of a list column whose elements are not null (`element`).
pub(super) fn list_builder<T: ArrayBuilder>(values: T, item: DataType) -> ListBuilder<T> {
    ListBuilder::new(values).with_field(Field::new("element", item, false))
}

/// A builder of a nanosecond UTC timestamp column.
pub(super) fn timestamp_builder() -> TimestampNanosecondBuilder {
    TimestampNanosecondBuilder::new().with_timezone("UTC")
}

/// Unix nanoseconds as Arrow's timestamp value; past `i64::MAX` (the year
/// 2262) saturates.
pub(super) fn nanos(unix_nanos: u64) -> i64 {
    i64::try_from(unix_nanos).unwrap_or(i64::MAX)
}

/// Closes a map value whose entries were appended in pairs.
fn close_map(builder: &mut AttributesBuilder) {
    builder.append(true).expect("keys and values are appended in pairs");
}

/// Appends one map value holding `attributes`, the last of repeated keys
/// winning.
pub(super) fn append_attributes(builder: &mut AttributesBuilder, attributes: &[KeyValue]) {
    for_each_unique(attributes, |pair| {
        let (keys, values) = builder.entries();
        keys.append_value(&pair.key);
        append_value(values, pair.value.as_ref());
    });
    close_map(builder);
}

/// Appends `value` rendered as pdata's `AsString` as one string.
pub(super) fn append_value(builder: &mut StringBuilder, value: Option<&AnyValue>) {
    if let Some(Value::StringValue(text)) = value.and_then(|value| value.value.as_ref()) {
        builder.append_value(text);
    } else {
        // Writing into a string builder cannot fail.
        let _ = write_value(builder, value);
        builder.append_value("");
    }
}

/// Attributes rendered once and appended to many rows: a resource's or a
/// scope's.
#[derive(Debug, Default)]
pub(super) struct RenderedAttributes {
    entries: Vec<(String, String)>,
}

impl RenderedAttributes {
    /// `attributes` rendered, the last of repeated keys winning.
    pub(super) fn new(attributes: &[KeyValue]) -> Self {
        let mut entries = Vec::with_capacity(attributes.len());
        for_each_unique(attributes, |pair| {
            let mut value = String::new();
            let _ = write_value(&mut value, pair.value.as_ref());
            entries.push((pair.key.clone(), value));
        });
        RenderedAttributes { entries }
    }

    /// Appends one map value holding the attributes.
    pub(super) fn append_to(&self, builder: &mut AttributesBuilder) {
        let (keys, values) = builder.entries();
        for (key, value) in &self.entries {
            keys.append_value(key);
            values.append_value(value);
        }
        close_map(builder);
    }
}

/// The `ServiceName` of a resource: its `service.name` when that is a
/// string, else empty (the last of repeated keys winning).
pub(super) fn service_name(attributes: &[KeyValue]) -> &str {
    match attributes.iter().rev().find(|pair| pair.key == "service.name") {
        Some(KeyValue { value: Some(AnyValue { value: Some(Value::StringValue(name)) }), .. }) => name,
        _ => "",
    }
}

/// Calls `f` with each attribute whose key does not come again later in
/// the list, in order.
fn for_each_unique<'a>(attributes: &'a [KeyValue], mut f: impl FnMut(&'a KeyValue)) {
    if attributes.len() <= SHORT_LIST {
        for (index, pair) in attributes.iter().enumerate() {
            if !attributes[index + 1..].iter().any(|later| later.key == pair.key) {
                f(pair);
            }
        }
    } else {
        let mut last = HashMap::with_capacity(attributes.len());
        for (index, pair) in attributes.iter().enumerate() {
            last.insert(pair.key.as_str(), index);
        }
        for (index, pair) in attributes.iter().enumerate() {
            if last.get(pair.key.as_str()) == Some(&index) {
                f(pair);
            }
        }
    }
}

/// Appends `id` as lower-case hex, or an empty string when the id is
/// empty or all zeros (pdata's `TraceIDToHexOrEmptyString`).
pub(super) fn append_id(builder: &mut StringBuilder, id: &[u8]) {
    if id.iter().all(|byte| *byte == 0) {
        builder.append_value("");
        return;
    }
    if id.len() <= 16 {
        let mut buffer = [0u8; 32];
        let hex = &mut buffer[..id.len() * 2];
        if hex::encode_to_slice(id, hex).is_ok() {
            builder.append_value(std::str::from_utf8(hex).unwrap_or_default());
            return;
        }
    }
    // Longer than a trace id: not valid OTLP, written as it is anyway.
    builder.append_value(hex::encode(id));
}

/// Writes `value` as pdata's `Value.AsString` renders it: strings as they
/// are, booleans and integers as text, doubles in ECMAScript's number
/// format, bytes in standard base64, key-value lists and arrays as JSON
/// (`json.Marshal` of `AsRaw`, keys sorted), nothing for an empty value.
pub(super) fn write_value<W: Write>(out: &mut W, value: Option<&AnyValue>) -> fmt::Result {
    let Some(value) = value.and_then(|value| value.value.as_ref()) else {
        return Ok(());
    };
    match value {
        Value::StringValue(text) => out.write_str(text),
        Value::BoolValue(flag) => out.write_str(if *flag { "true" } else { "false" }),
        Value::IntValue(number) => write!(out, "{number}"),
        Value::DoubleValue(number) if number.is_nan() => out.write_str("json: unsupported value: NaN"),
        Value::DoubleValue(number) if number.is_infinite() => {
            out.write_str(if *number > 0.0 { "json: unsupported value: +Inf" } else { "json: unsupported value: -Inf" })
        }
        Value::DoubleValue(number) => write_double(out, *number),
        Value::BytesValue(bytes) => write_base64(out, bytes),
        // Go's json.Marshal fails on a NaN or an infinity, and AsString
        // then gives the empty string.
        Value::KvlistValue(_) | Value::ArrayValue(_) if !json_encodable(value) => Ok(()),
        Value::KvlistValue(_) | Value::ArrayValue(_) => write_json(out, Some(value)),
        // A reference into a profile's string table: outside profiles,
        // OTLP says to treat it as absent.
        Value::StringValueStrindex(_) => Ok(()),
    }
}

/// Writes a finite double as ECMAScript's Number::toString (Go's
/// `float64AsString`, `encoding/json`'s float format): the shortest digits
/// that read back the same, in plain notation for 1e-6 <= |x| < 1e21 and
/// zero, else in exponent notation with a signed exponent (`1e+21`,
/// `1.5e-7`).
pub(super) fn write_double<W: Write>(out: &mut W, number: f64) -> fmt::Result {
    let magnitude = number.abs();
    if magnitude == 0.0 || (1e-6..1e21).contains(&magnitude) {
        return write!(out, "{number}");
    }
    let text = format!("{number:e}");
    match text.split_once('e') {
        Some((mantissa, exponent)) if !exponent.starts_with('-') => write!(out, "{mantissa}e+{exponent}"),
        _ => out.write_str(&text),
    }
}

fn write_base64<W: Write>(out: &mut W, bytes: &[u8]) -> fmt::Result {
    let mut buffer = [0u8; 1024];
    // Whole groups of three bytes encode without padding in between.
    for chunk in bytes.chunks(768) {
        let written = STANDARD.encode_slice(chunk, &mut buffer).map_err(|_| fmt::Error)?;
        out.write_str(std::str::from_utf8(&buffer[..written]).map_err(|_| fmt::Error)?)?;
    }
    Ok(())
}

/// Whether Go's `json.Marshal` encodes the value: no NaN or infinity in it.
fn json_encodable(value: &Value) -> bool {
    match value {
        Value::DoubleValue(number) => number.is_finite(),
        Value::KvlistValue(list) => {
            list.values.iter().all(|pair| pair.value.as_ref().and_then(|v| v.value.as_ref()).is_none_or(json_encodable))
        }
        Value::ArrayValue(array) => array.values.iter().all(|item| item.value.as_ref().is_none_or(json_encodable)),
        _ => true,
    }
}

/// Writes a value as Go's `json.Marshal` writes its `AsRaw` form.
fn write_json<W: Write>(out: &mut W, value: Option<&Value>) -> fmt::Result {
    match value {
        None | Some(Value::StringValueStrindex(_)) => out.write_str("null"),
        Some(Value::StringValue(text)) => write_json_string(out, text),
        Some(Value::BoolValue(flag)) => out.write_str(if *flag { "true" } else { "false" }),
        Some(Value::IntValue(number)) => write!(out, "{number}"),
        Some(Value::DoubleValue(number)) => write_double(out, *number),
        Some(Value::BytesValue(bytes)) => {
            out.write_char('"')?;
            write_base64(out, bytes)?;
            out.write_char('"')
        }
        Some(Value::ArrayValue(array)) => {
            out.write_char('[')?;
            for (index, item) in array.values.iter().enumerate() {
                if index > 0 {
                    out.write_char(',')?;
                }
                write_json(out, item.value.as_ref())?;
            }
            out.write_char(']')
        }
        Some(Value::KvlistValue(list)) => {
            // A Go map: one entry per key, the last winning, keys sorted.
            let mut pairs = Vec::with_capacity(list.values.len());
            for_each_unique(&list.values, |pair| pairs.push(pair));
            pairs.sort_unstable_by(|a, b| a.key.cmp(&b.key));
            out.write_char('{')?;
            for (index, pair) in pairs.into_iter().enumerate() {
                if index > 0 {
                    out.write_char(',')?;
                }
                write_json_string(out, &pair.key)?;
                out.write_char(':')?;
                write_json(out, pair.value.as_ref().and_then(|value| value.value.as_ref()))?;
            }
            out.write_char('}')
        }
    }
}

/// Writes a JSON string as Go's `encoding/json` does: HTML characters
/// and the line and paragraph separators escaped too.
fn write_json_string<W: Write>(out: &mut W, text: &str) -> fmt::Result {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.write_char('"')?;
    let mut start = 0;
    for (index, character) in text.char_indices() {
        let escape: Option<&str> = match character {
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            '\u{8}' => Some("\\b"),
            '\u{c}' => Some("\\f"),
            '\n' => Some("\\n"),
            '\r' => Some("\\r"),
            '\t' => Some("\\t"),
            '\u{2028}' => Some("\\u2028"),
            '\u{2029}' => Some("\\u2029"),
            '<' | '>' | '&' | '\u{0}'..='\u{1f}' => None,
            _ => continue,
        };
        out.write_str(&text[start..index])?;
        start = index + character.len_utf8();
        match escape {
            Some(escape) => out.write_str(escape)?,
            None => {
                let byte = character as u32 as usize;
                out.write_str("\\u00")?;
                out.write_char(char::from(HEX[byte >> 4]))?;
                out.write_char(char::from(HEX[byte & 0xf]))?;
            }
        }
    }
    out.write_str(&text[start..])?;
    out.write_char('"')
}

/// The columns every table ends with: `SessionId`, `ReceiveTime` and,
/// unless the export is Hive-partitioned, `Phase`.
pub(super) struct ContextColumns {
    session: StringBuilder,
    receive_time: TimestampNanosecondBuilder,
    phase: Option<StringBuilder>,
}

impl ContextColumns {
    /// Empty columns, with or without `Phase`.
    pub(super) fn new(with_phase: bool) -> Self {
        ContextColumns {
            session: StringBuilder::new(),
            receive_time: timestamp_builder(),
            phase: with_phase.then(StringBuilder::new),
        }
    }

    /// Appends the context of one row.
    pub(super) fn append(&mut self, context: &RowContext<'_>) {
        self.session.append_value(context.session);
        self.receive_time.append_value(nanos(context.receive_time));
        if let Some(phase) = &mut self.phase {
            phase.append_value(context.phase.unwrap_or_default());
        }
    }

    /// Appends the context of `rows` rows.
    pub(super) fn append_n(&mut self, context: &RowContext<'_>, rows: usize) {
        for _ in 0..rows {
            self.append(context);
        }
    }

    /// The columns, leaving them empty.
    pub(super) fn finish_into(&mut self, columns: &mut Vec<ArrayRef>) {
        columns.push(Arc::new(self.session.finish()));
        columns.push(Arc::new(self.receive_time.finish()));
        if let Some(phase) = &mut self.phase {
            columns.push(Arc::new(phase.finish()));
        }
    }
}

/// The record batch of `columns` in `schema`.
pub(super) fn record_batch(schema: arrow_schema::SchemaRef, columns: Vec<ArrayRef>) -> arrow_array::RecordBatch {
    arrow_array::RecordBatch::try_new(schema, columns).expect("the builders make the columns of the table's schema")
}

#[cfg(test)]
mod tests {
    use arrow_array::{Array, StringArray};
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValueList};

    use super::*;

    fn any(value: Value) -> AnyValue {
        AnyValue { value: Some(value) }
    }

    fn pair(key: &str, value: Value) -> KeyValue {
        KeyValue { key: key.to_owned(), value: Some(any(value)), ..KeyValue::default() }
    }

    fn rendered(value: Value) -> String {
        let mut builder = StringBuilder::new();
        append_value(&mut builder, Some(&any(value)));
        builder.finish().value(0).to_owned()
    }

    fn double(number: f64) -> String {
        rendered(Value::DoubleValue(number))
    }

    #[test]
    fn scalars_render_as_pdata_as_string() {
        assert_eq!(rendered(Value::StringValue("a \"b\" <c>".into())), "a \"b\" <c>");
        assert_eq!(rendered(Value::BoolValue(true)), "true");
        assert_eq!(rendered(Value::BoolValue(false)), "false");
        assert_eq!(rendered(Value::IntValue(-9_007_199_254_740_993)), "-9007199254740993");
        assert_eq!(rendered(Value::BytesValue(vec![0, 1, 2, 255])), "AAEC/w==");
        assert_eq!(rendered(Value::BytesValue(Vec::new())), "");
        let long: Vec<u8> = (0..2000u32).map(|n| n as u8).collect();
        assert_eq!(rendered(Value::BytesValue(long.clone())), STANDARD.encode(&long));
        let mut builder = StringBuilder::new();
        append_value(&mut builder, None);
        append_value(&mut builder, Some(&AnyValue { value: None }));
        let array = builder.finish();
        assert_eq!((array.value(0), array.value(1), array.null_count()), ("", "", 0));
    }

    #[test]
    fn doubles_render_in_ecmascript_number_format() {
        let cases = [
            (1.0, "1"),
            (-2.5, "-2.5"),
            (0.1, "0.1"),
            (0.1 + 0.2, "0.30000000000000004"),
            (0.0, "0"),
            (-0.0, "-0"),
            (123_456_789.125, "123456789.125"),
            (1e-6, "0.000001"),
            (9.99e-7, "9.99e-7"),
            (1.5e-7, "1.5e-7"),
            (1e20, "100000000000000000000"),
            (1e21, "1e+21"),
            (-1.25e22, "-1.25e+22"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (1e-100, "1e-100"),
        ];
        for (number, text) in cases {
            assert_eq!(double(number), text, "{number:?}");
        }
        assert_eq!(double(f64::NAN), "json: unsupported value: NaN");
        assert_eq!(double(f64::INFINITY), "json: unsupported value: +Inf");
        assert_eq!(double(f64::NEG_INFINITY), "json: unsupported value: -Inf");
    }

    #[test]
    fn lists_and_arrays_render_as_go_json_with_sorted_unique_keys() {
        let nested = Value::KvlistValue(KeyValueList {
            values: vec![
                pair("b", Value::IntValue(1)),
                pair("a", Value::StringValue("first".into())),
                pair(
                    "c",
                    Value::ArrayValue(ArrayValue {
                        values: vec![
                            any(Value::BoolValue(true)),
                            AnyValue { value: None },
                            any(Value::DoubleValue(1e21)),
                            any(Value::BytesValue(vec![1])),
                            any(Value::KvlistValue(KeyValueList::default())),
                            any(Value::ArrayValue(ArrayValue::default())),
                        ],
                    }),
                ),
                pair("a", Value::StringValue("x<y>&\"\\\n\t\u{1}\u{8}\u{c}\r\u{2028}é".into())),
                KeyValue { key: "\u{7f}z".into(), value: None, ..KeyValue::default() },
            ],
        });
        assert_eq!(
            rendered(nested),
            "{\"a\":\"x\\u003cy\\u003e\\u0026\\\"\\\\\\n\\t\\u0001\\b\\f\\r\\u2028é\",\"b\":1,\
             \"c\":[true,null,1e+21,\"AQ==\",{},[]],\"\u{7f}z\":null}"
        );
        assert_eq!(rendered(Value::ArrayValue(ArrayValue::default())), "[]");
        assert_eq!(rendered(Value::KvlistValue(KeyValueList::default())), "{}");
        // json.Marshal fails on a NaN, and AsString gives "".
        let not_json = Value::ArrayValue(ArrayValue { values: vec![any(Value::DoubleValue(f64::NAN))] });
        assert_eq!(rendered(not_json), "");
    }

    fn entries(maps: &arrow_array::MapArray, row: usize) -> Vec<(String, String)> {
        let entries = maps.value(row);
        let keys = entries.column(0).as_any().downcast_ref::<StringArray>().unwrap();
        let values = entries.column(1).as_any().downcast_ref::<StringArray>().unwrap();
        let mut entries: Vec<(String, String)> =
            keys.iter().zip(values.iter()).map(|(k, v)| (k.unwrap().to_owned(), v.unwrap().to_owned())).collect();
        entries.sort();
        entries
    }

    #[test]
    fn the_last_of_repeated_keys_wins_in_maps_and_service_names() {
        let attributes = vec![
            pair("service.name", Value::StringValue("first".into())),
            pair("k", Value::IntValue(1)),
            pair("service.name", Value::StringValue("last".into())),
        ];
        assert_eq!(service_name(&attributes), "last");
        assert_eq!(service_name(&attributes[1..2]), "");
        assert_eq!(service_name(&[pair("service.name", Value::IntValue(7))]), "");
        // Long lists go through the hash map.
        let long: Vec<KeyValue> = (0..40).map(|n| pair(&format!("k{}", n % 20), Value::IntValue(n))).collect();
        let expected_long: Vec<(String, String)> = (0..20)
            .map(|n| (format!("k{n}"), (n + 20).to_string()))
            .collect::<std::collections::BTreeMap<_, _>>()
            .into_iter()
            .collect();
        let expected_short = vec![("k".to_owned(), "1".to_owned()), ("service.name".to_owned(), "last".to_owned())];
        for (list, expected) in [(&attributes, expected_short), (&long, expected_long)] {
            let mut builder = attributes_builder();
            append_attributes(&mut builder, list);
            RenderedAttributes::new(list).append_to(&mut builder);
            let maps = builder.finish();
            assert_eq!(entries(&maps, 0), expected);
            assert_eq!(entries(&maps, 1), expected);
        }
    }

    #[test]
    fn ids_are_lower_case_hex_and_empty_when_zero() {
        let mut builder = StringBuilder::new();
        append_id(&mut builder, &[0xAB; 16]);
        append_id(&mut builder, &[0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef]);
        append_id(&mut builder, &[]);
        append_id(&mut builder, &[0; 8]);
        append_id(&mut builder, &[1; 20]);
        let ids = builder.finish();
        let ids: Vec<&str> = ids.iter().map(Option::unwrap).collect();
        assert_eq!(ids, ["ab".repeat(16).as_str(), "0123456789abcdef", "", "", "01".repeat(20).as_str()]);
    }
}
