//! OTLP attribute values made plain JSON, for the UI.

use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use serde_json::{Map, Number, Value};

/// The largest integer a JavaScript number holds exactly (2^53 - 1).
const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// Attributes as a JSON object, key to plain value; of repeated keys the
/// last wins.
pub(crate) fn attributes(attributes: &[KeyValue]) -> Map<String, Value> {
    attributes.iter().map(|attribute| (attribute.key.clone(), plain(attribute.value.as_ref()))).collect()
}

/// An `AnyValue` as plain JSON: a string, an integer as a number when a
/// JavaScript number holds it exactly (else as a decimal string), a double
/// (`NaN` and infinities as strings), a boolean, an array, a key-value list
/// as an object, bytes as lowercase hex; no value (or a profiles string
/// index, meaningless outside profiles) is `null`.
pub(crate) fn plain(value: Option<&AnyValue>) -> Value {
    match value.and_then(|value| value.value.as_ref()) {
        // An index into a profiles dictionary, which spans do not have.
        None | Some(Any::StringValueStrindex(_)) => Value::Null,
        Some(Any::StringValue(text)) => Value::String(text.clone()),
        Some(Any::BoolValue(flag)) => Value::Bool(*flag),
        Some(Any::IntValue(number)) if (-MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER).contains(number) => {
            Value::Number((*number).into())
        }
        Some(Any::IntValue(number)) => Value::String(number.to_string()),
        Some(Any::DoubleValue(number)) => {
            Number::from_f64(*number).map_or_else(|| Value::String(number.to_string()), Value::Number)
        }
        Some(Any::ArrayValue(array)) => Value::Array(array.values.iter().map(|value| plain(Some(value))).collect()),
        Some(Any::KvlistValue(list)) => Value::Object(attributes(&list.values)),
        Some(Any::BytesValue(bytes)) => Value::String(hex::encode(bytes)),
    }
}

/// The `service.name` string among a resource's attributes (the last, if
/// repeated), else `unknown_service` as the specification says.
pub(crate) fn service_name(attributes: &[KeyValue]) -> &str {
    attributes
        .iter()
        .rev()
        .find(|attribute| attribute.key == "service.name")
        .and_then(|attribute| match attribute.value.as_ref().and_then(|value| value.value.as_ref()) {
            Some(Any::StringValue(name)) => Some(name.as_str()),
            _ => None,
        })
        .unwrap_or("unknown_service")
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValueList};
    use serde_json::json;

    use super::*;

    fn any(value: Any) -> AnyValue {
        AnyValue { value: Some(value) }
    }

    fn pair(key: &str, value: Any) -> KeyValue {
        KeyValue { key: key.to_owned(), value: Some(any(value)), ..KeyValue::default() }
    }

    #[test]
    fn values_are_plain_json() {
        let list = vec![
            pair("s", Any::StringValue("x".to_owned())),
            pair("small", Any::IntValue(MAX_SAFE_INTEGER)),
            pair("negative", Any::IntValue(-MAX_SAFE_INTEGER)),
            pair("large", Any::IntValue(MAX_SAFE_INTEGER + 1)),
            pair("lowest", Any::IntValue(i64::MIN)),
            pair("d", Any::DoubleValue(1.5)),
            pair("nan", Any::DoubleValue(f64::NAN)),
            pair("b", Any::BoolValue(true)),
            pair("bytes", Any::BytesValue(vec![0, 0xab])),
            pair(
                "array",
                Any::ArrayValue(ArrayValue { values: vec![any(Any::IntValue(1)), AnyValue { value: None }] }),
            ),
            pair(
                "kv",
                Any::KvlistValue(KeyValueList { values: vec![pair("inner", Any::StringValue("y".to_owned()))] }),
            ),
            KeyValue { key: "none".to_owned(), value: None, ..KeyValue::default() },
            pair("s", Any::StringValue("last".to_owned())),
        ];
        assert_eq!(
            Value::Object(attributes(&list)),
            json!({
                "s": "last",
                "small": 9_007_199_254_740_991_i64,
                "negative": -9_007_199_254_740_991_i64,
                "large": "9007199254740992",
                "lowest": "-9223372036854775808",
                "d": 1.5,
                "nan": "NaN",
                "b": true,
                "bytes": "00ab",
                "array": [1, null],
                "kv": {"inner": "y"},
                "none": null,
            })
        );
    }

    #[test]
    fn a_resource_without_a_service_name_string_is_unknown_service() {
        assert_eq!(service_name(&[]), "unknown_service");
        assert_eq!(service_name(&[pair("service.name", Any::IntValue(1))]), "unknown_service");
        let named = [
            pair("service.name", Any::StringValue("a".to_owned())),
            pair("service.name", Any::StringValue("b".to_owned())),
        ];
        assert_eq!(service_name(&named), "b");
    }
}
