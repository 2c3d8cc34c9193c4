//! Pattern values as OTLP protobuf messages, for the signals that are not
//! on the hot path (metrics and logs).

use tape_otlp::proto::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use tape_otlp::proto::resource::v1::Resource;

use crate::generator::SCOPE_NAME;
use crate::pattern::{Attributes, Value};

/// An `AnyValue`.
pub(crate) fn any_value(value: &Value) -> AnyValue {
    let value = match value {
        Value::String(text) => any_value::Value::StringValue(text.clone()),
        Value::Bool(flag) => any_value::Value::BoolValue(*flag),
        Value::Int(number) => any_value::Value::IntValue(*number),
        Value::Double(number) => any_value::Value::DoubleValue(*number),
    };
    AnyValue { value: Some(value) }
}

/// One `KeyValue`.
pub(crate) fn key_value(key: &str, value: &Value) -> KeyValue {
    KeyValue { key: key.to_owned(), value: Some(any_value(value)), ..KeyValue::default() }
}

/// Every attribute as `KeyValue`s.
pub(crate) fn key_values(attributes: &Attributes) -> Vec<KeyValue> {
    attributes.iter().map(|(key, value)| key_value(key, value)).collect()
}

/// A service's `Resource`.
pub(crate) fn resource(attributes: &Attributes) -> Resource {
    Resource { attributes: key_values(attributes), ..Resource::default() }
}

/// The generator's instrumentation scope.
pub(crate) fn scope() -> InstrumentationScope {
    InstrumentationScope { name: SCOPE_NAME.to_owned(), ..InstrumentationScope::default() }
}
