//! The column builders the tables share: attributes as `map<string,
//! string>` with values rendered as the Collector's ClickHouse exporter
//! renders them (pdata's `Value.AsString`), ids as lower-case hex, and the
//! columns every table ends with (`SessionId`, `ReceiveTime`, `Phase`).
//!
//! Rendering writes straight into the Arrow builders: no string is
//! allocated per row except for the rare values that need one (a double in
//! exponent notation, a nested key-value list's sorted keys).

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::builder::{
    ArrayBuilder, BooleanBuilder, ListBuilder, MapBuilder, MapFieldNames, PrimitiveBuilder, StringBuilder,
    TimestampNanosecondBuilder,
};
use arrow_array::cast::AsArray;
use arrow_array::types::ArrowPrimitiveType;
use arrow_array::{Array, ArrayRef};
use arrow_schema::{DataType, Field};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};

use super::RowContext;

mod value;

use self::value::write_value;

/// Attribute lists up to this long are searched for repeated keys pair by
/// pair; longer ones through a hash map.
const SHORT_LIST: usize = 16;

/// A builder of an attributes column, `map<string, string>` with the
/// entry, key and value names and nullability of `schema::attributes`.
pub(super) type AttributesBuilder = MapBuilder<StringBuilder, StringBuilder>;

/// A new builder of an attributes column.
pub(super) fn attributes_builder() -> AttributesBuilder {
    attributes_builder_with_capacity(StringBuilder::new(), StringBuilder::new(), 0)
}

fn attributes_builder_with_capacity(keys: StringBuilder, values: StringBuilder, rows: usize) -> AttributesBuilder {
    let names = MapFieldNames { entry: "key_value".into(), key: "key".into(), value: "value".into() };
    MapBuilder::with_capacity(Some(names), keys, values, rows).with_values_field(Field::new(
        "value",
        DataType::Utf8,
        false,
    ))
}

/// A column builder that can start again with the room a finished array
/// took.
pub(super) trait Refill: ArrayBuilder + Sized {
    /// An empty builder like this one with room for `array`'s contents.
    fn with_room_for(&self, array: &dyn Array) -> Self;
}

/// Finishes a column of a batch, leaving in its place a builder with the
/// same room, so that the next batch does not grow the buffers from
/// nothing again (the copies and page faults of growing took a third of
/// the build time on `high-load`).
pub(super) fn finish<B: Refill>(builder: &mut B) -> ArrayRef {
    let array = builder.finish();
    *builder = builder.with_room_for(array.as_ref());
    array
}

impl Refill for StringBuilder {
    fn with_room_for(&self, array: &dyn Array) -> Self {
        let strings = array.as_string::<i32>();
        StringBuilder::with_capacity(strings.len(), strings.value_data().len())
    }
}

impl<T: ArrowPrimitiveType> Refill for PrimitiveBuilder<T> {
    fn with_room_for(&self, array: &dyn Array) -> Self {
        PrimitiveBuilder::with_capacity(array.len()).with_data_type(array.data_type().clone())
    }
}

impl Refill for BooleanBuilder {
    fn with_room_for(&self, array: &dyn Array) -> Self {
        BooleanBuilder::with_capacity(array.len())
    }
}

impl Refill for AttributesBuilder {
    fn with_room_for(&self, array: &dyn Array) -> Self {
        let entries = array.as_map().entries();
        let keys = StringBuilder::new().with_room_for(entries.column(0).as_ref());
        let values = StringBuilder::new().with_room_for(entries.column(1).as_ref());
        attributes_builder_with_capacity(keys, values, array.len())
    }
}

impl<T: Refill> Refill for ListBuilder<T> {
    fn with_room_for(&self, array: &dyn Array) -> Self {
        let list = array.as_list::<i32>();
        let values = self.values_ref().with_room_for(list.values().as_ref());
        let builder = ListBuilder::with_capacity(values, list.len());
        match array.data_type() {
            DataType::List(field) => builder.with_field(Arc::clone(field)),
            _ => builder,
        }
    }
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
    for_each_unique(
        attributes,
        |pair| pair.key.as_str(),
        |pair| {
            let (keys, values) = builder.entries();
            keys.append_value(&pair.key);
            append_value(values, pair.value.as_ref());
        },
    );
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
        for_each_unique(
            attributes,
            |pair| pair.key.as_str(),
            |pair| {
                let mut value = String::new();
                let _ = write_value(&mut value, pair.value.as_ref());
                entries.push((pair.key.clone(), value));
            },
        );
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

/// Calls `f` with each item whose key (`key`) does not come again later in
/// the list, in order: the last of repeated keys wins. Short lists are
/// searched pair by pair, longer ones through a hash map.
pub(super) fn for_each_unique<'a, T>(items: &'a [T], key: impl Fn(&'a T) -> &'a str, mut f: impl FnMut(&'a T)) {
    if items.len() <= SHORT_LIST {
        for (index, item) in items.iter().enumerate() {
            if !items[index + 1..].iter().any(|later| key(later) == key(item)) {
                f(item);
            }
        }
    } else {
        let mut last = HashMap::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            last.insert(key(item), index);
        }
        for (index, item) in items.iter().enumerate() {
            if last.get(key(item)) == Some(&index) {
                f(item);
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
        columns.push(finish(&mut self.session));
        columns.push(finish(&mut self.receive_time));
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

    use super::*;

    fn any(value: Value) -> AnyValue {
        AnyValue { value: Some(value) }
    }

    fn pair(key: &str, value: Value) -> KeyValue {
        KeyValue { key: key.to_owned(), value: Some(any(value)), ..KeyValue::default() }
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
