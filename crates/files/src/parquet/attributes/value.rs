//! Attribute values rendered as pdata's `Value.AsString`, the text the
//! Collector's ClickHouse exporter stores: Go's number and JSON formats.

use std::fmt::{self, Write};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use opentelemetry_proto::tonic::common::v1::AnyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;

use super::for_each_unique;

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
fn write_double<W: Write>(out: &mut W, number: f64) -> fmt::Result {
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
            for_each_unique(&list.values, |pair| pair.key.as_str(), |pair| pairs.push(pair));
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
        if let Some(escape) = escape {
            out.write_str(escape)?;
        } else {
            let byte = character as usize;
            out.write_str("\\u00")?;
            out.write_char(char::from(HEX[byte >> 4]))?;
            out.write_char(char::from(HEX[byte & 0xf]))?;
        }
    }
    out.write_str(&text[start..])?;
    out.write_char('"')
}

#[cfg(test)]
mod tests {
    use arrow_array::Array;
    use arrow_array::builder::StringBuilder;
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValue, KeyValueList};

    use super::super::append_value;
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
}
