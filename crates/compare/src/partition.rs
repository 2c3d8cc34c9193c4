//! Splitting both sides into partitions so that every pair the matching
//! may make lies in one partition: in memory when the sessions fit, else
//! in files under a temporary directory, written as the sessions are read
//! and read back one partition at a time.
//!
//! The key of an item is hashed with a fixed function (FNV-1a over the
//! key's bytes, finished by SplitMix64's mixer), never a per-process
//! random one, so that a comparison splits the same way on every run and
//! every machine.

mod files;

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};

pub(crate) use files::{PartitionWriter, read_partition};

use crate::{Item, ItemBody, PointValue};

/// The partition of `item` among `partitions`: spans and log records with
/// a trace id by their trace id; other log records by service and body;
/// data points by service, scope name, metric name and point attributes
/// (keys in `ignore` left out). Every item the matching may pair with
/// `item` is in the same partition.
pub(crate) fn partition_of(item: &Item, partitions: u32, ignore: &[String]) -> u32 {
    if partitions <= 1 {
        return 0;
    }
    let key = partition_key(item, ignore);
    // The high bits of key × partitions: uniform, and no division.
    u32::try_from((u128::from(key) * u128::from(partitions)) >> 64).unwrap_or(partitions - 1)
}

/// The 64-bit key [`partition_of`] spreads over the partitions.
pub(crate) fn partition_key(item: &Item, ignore: &[String]) -> u64 {
    if let Some(trace_id) = item.trace_id() {
        let high = u64::from_be_bytes(trace_id[..8].try_into().unwrap_or_default());
        let low = u64::from_be_bytes(trace_id[8..].try_into().unwrap_or_default());
        return mix(high ^ mix(low ^ 0x7472_6163_6520_6964));
    }
    let mut hash = Fnv::new();
    hash.write(item.scope.service.as_bytes());
    hash.separator();
    match &item.body {
        ItemBody::Span(span) => {
            // A span without a valid trace id: by whatever its id bytes are.
            hash.byte(1);
            hash.write(&span.trace_id);
        }
        ItemBody::Log(record) => {
            hash.byte(2);
            if let Some(body) = &record.body {
                hash_value(&mut hash, body);
            }
        }
        ItemBody::Point(point) => {
            hash.byte(3);
            hash.write(item.scope.scope.name.as_bytes());
            hash.separator();
            hash.write(point.name.as_bytes());
            hash.separator();
            // Attributes in any order give the same key: their hashes are
            // added up.
            let attributes = point_attributes(&point.value);
            let sum = attributes
                .iter()
                .filter(|attribute| !ignore.contains(&attribute.key))
                .map(|attribute| {
                    let mut one = Fnv::new();
                    one.write(attribute.key.as_bytes());
                    one.separator();
                    if let Some(value) = &attribute.value {
                        hash_value(&mut one, value);
                    }
                    mix(one.0)
                })
                .fold(0_u64, u64::wrapping_add);
            hash.write(&sum.to_be_bytes());
        }
    }
    mix(hash.0)
}

/// The attributes of a data point.
pub(crate) fn point_attributes(value: &PointValue) -> &[KeyValue] {
    match value {
        PointValue::Gauge(point) | PointValue::Sum { point, .. } => &point.attributes,
        PointValue::Histogram { point, .. } => &point.attributes,
        PointValue::ExponentialHistogram { point, .. } => &point.attributes,
        PointValue::Summary(point) => &point.attributes,
    }
}

/// Feeds a value's type and contents to `hash`.
fn hash_value(hash: &mut Fnv, value: &AnyValue) {
    match &value.value {
        None => hash.byte(0),
        Some(any_value::Value::StringValue(text)) => {
            hash.byte(1);
            hash.write(text.as_bytes());
        }
        Some(any_value::Value::BoolValue(flag)) => {
            hash.byte(2);
            hash.byte(u8::from(*flag));
        }
        Some(any_value::Value::IntValue(number)) => {
            hash.byte(3);
            hash.write(&number.to_be_bytes());
        }
        Some(any_value::Value::DoubleValue(number)) => {
            hash.byte(4);
            hash.write(&number.to_bits().to_be_bytes());
        }
        Some(any_value::Value::BytesValue(bytes)) => {
            hash.byte(5);
            hash.write(bytes);
        }
        Some(any_value::Value::ArrayValue(array)) => {
            hash.byte(6);
            for value in &array.values {
                hash_value(hash, value);
            }
            hash.separator();
        }
        Some(any_value::Value::KvlistValue(list)) => {
            hash.byte(7);
            for pair in &list.values {
                hash.write(pair.key.as_bytes());
                hash.separator();
                if let Some(value) = &pair.value {
                    hash_value(hash, value);
                }
            }
            hash.separator();
        }
        Some(any_value::Value::StringValueStrindex(index)) => {
            hash.byte(8);
            hash.write(&index.to_be_bytes());
        }
    }
}

/// FNV-1a, 64 bits.
struct Fnv(u64);

impl Fnv {
    const fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    fn byte(&mut self, byte: u8) {
        self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.byte(byte);
        }
        // The length ends the field, so that ("ab", "c") and ("a", "bc")
        // differ.
        for byte in (bytes.len() as u64).to_le_bytes() {
            self.byte(byte);
        }
    }

    fn separator(&mut self) {
        self.byte(0xff);
    }
}

/// The finaliser of SplitMix64: a bijection on `u64` that mixes every bit.
const fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
    use opentelemetry_proto::tonic::logs::v1::LogRecord;
    use opentelemetry_proto::tonic::metrics::v1::NumberDataPoint;
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::Span;

    use super::*;
    use crate::{Origin, Point, Scope};

    fn text(key: &str, value: &str) -> KeyValue {
        KeyValue {
            key: key.to_owned(),
            value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.to_owned())) }),
            ..KeyValue::default()
        }
    }

    fn scope(service: &str, extra: &[KeyValue]) -> Arc<Scope> {
        let mut attributes = vec![text("service.name", service)];
        attributes.extend_from_slice(extra);
        Arc::new(Scope {
            resource: Resource { attributes, ..Resource::default() },
            scope: InstrumentationScope { name: "lib".to_owned(), ..InstrumentationScope::default() },
            service: service.to_owned(),
            ..Scope::default()
        })
    }

    fn item(scope: &Arc<Scope>, body: ItemBody) -> Item {
        Item { origin: Origin::default(), scope: Arc::clone(scope), body }
    }

    fn span(trace: u8, span: u8) -> ItemBody {
        ItemBody::Span(Span { trace_id: vec![trace; 16], span_id: vec![span; 8], ..Span::default() })
    }

    fn point(attributes: Vec<KeyValue>) -> ItemBody {
        ItemBody::Point(Point {
            name: "requests".to_owned(),
            description: String::new(),
            unit: "1".to_owned(),
            value: PointValue::Gauge(NumberDataPoint { attributes, ..NumberDataPoint::default() }),
        })
    }

    #[test]
    fn spans_of_a_trace_share_a_partition_whatever_their_resource() {
        let (checkout, changed) = (scope("checkout", &[]), scope("checkout", &[text("added", "yes")]));
        let ignore = [];
        for trace in 1..=50 {
            let first = partition_of(&item(&checkout, span(trace, 1)), 7, &ignore);
            assert_eq!(first, partition_of(&item(&changed, span(trace, 2)), 7, &ignore));
            assert!(first < 7);
        }
        let used: std::collections::BTreeSet<u32> =
            (1..=50).map(|trace| partition_of(&item(&checkout, span(trace, 1)), 7, &ignore)).collect();
        assert_eq!(used.len(), 7, "50 traces spread over every partition: {used:?}");
        assert_eq!(partition_of(&item(&checkout, span(9, 1)), 1, &ignore), 0);
    }

    #[test]
    fn logs_with_a_trace_id_go_by_it_and_others_by_service_and_body() {
        let checkout = scope("checkout", &[]);
        let traced = |trace: u8| {
            ItemBody::Log(LogRecord { trace_id: vec![trace; 16], span_id: vec![1; 8], ..LogRecord::default() })
        };
        let key = partition_key(&item(&checkout, span(3, 1)), &[]);
        assert_eq!(partition_key(&item(&checkout, traced(3)), &[]), key);
        let body = |text: &str| {
            ItemBody::Log(LogRecord {
                body: Some(AnyValue { value: Some(any_value::Value::StringValue(text.to_owned())) }),
                severity_number: 9,
                ..LogRecord::default()
            })
        };
        let other = scope("checkout", &[text("host.name", "b")]);
        let key = partition_key(&item(&checkout, body("disk full")), &[]);
        assert_eq!(partition_key(&item(&other, body("disk full")), &[]), key);
        assert_ne!(partition_key(&item(&checkout, body("disk fine")), &[]), key);
        assert_ne!(partition_key(&item(&scope("payment", &[]), body("disk full")), &[]), key);
    }

    #[test]
    fn points_go_by_series_whatever_the_attribute_order_and_ignored_keys() {
        let checkout = scope("checkout", &[]);
        let ignore = ["host.name".to_owned()];
        let key = partition_key(&item(&checkout, point(vec![text("a", "1"), text("b", "2")])), &ignore);
        let same = [
            point(vec![text("b", "2"), text("a", "1")]),
            point(vec![text("a", "1"), text("host.name", "x"), text("b", "2")]),
        ];
        for body in same {
            assert_eq!(partition_key(&item(&checkout, body), &ignore), key);
        }
        assert_eq!(partition_key(&item(&scope("checkout", &[text("x", "y")]), point(vec![])), &ignore), {
            partition_key(&item(&checkout, point(vec![])), &ignore)
        });
        assert_ne!(partition_key(&item(&checkout, point(vec![text("a", "1")])), &ignore), key);
        assert_ne!(partition_key(&item(&checkout, point(vec![text("a", "1"), text("b", "3")])), &ignore), key);
    }
}
