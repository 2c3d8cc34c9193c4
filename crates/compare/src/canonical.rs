//! The canonical SHA-256 of a side's items: independent of how the items
//! were batched into requests and of their order.
//!
//! # Definition
//!
//! Each item (a span, a log record, a metric data point) has a digest:
//!
//! ```text
//! digest = SHA-256( field(signal) ‖ field(R) ‖ field(resource schema URL)
//!                   ‖ field(S) ‖ field(scope schema URL) ‖ field(I) )
//! field(x) = length of x in bytes as a u64, big-endian ‖ x
//! ```
//!
//! - `signal` is `traces`, `metrics` or `logs` in ASCII;
//! - `R` is the protobuf encoding of the item's
//!   `opentelemetry.proto.resource.v1.Resource` (empty bytes for a request
//!   without one) and `S` that of its `InstrumentationScope` (likewise);
//!   the schema URLs are those of the `Resource*` and `Scope*` messages
//!   the item came in, in UTF-8;
//! - `I` is the protobuf encoding of the item: a `Span`, a `LogRecord`, or
//!   for a data point a `Metric` with its name, description and unit (no
//!   metadata) whose data (gauge, sum, histogram, exponential histogram or
//!   summary, with the aggregation temporality and monotonicity the point
//!   came with) holds that one point.
//!
//! Before encoding, every attribute list of the resource, the scope and
//! the item is sorted by key, bytewise and stably (keys that repeat keep
//! their order): a span's own, each of its events' and each of its links'
//! (events and links stay in their order), a log record's, a data
//! point's. Values are not touched (a key-value list inside a value keeps
//! its order). A span status that is present but empty (code unset, no
//! message) is left out, as an absent one is. The protobuf encoding is the
//! usual one: fields in field-number order, fields with default values
//! left out, no unknown fields (as the reference implementations encode).
//!
//! The side's canonical SHA-256 is
//!
//! ```text
//! SHA-256( n as a u64, big-endian ‖ (d1 + d2 + ... + dn) mod 2^256, 32 bytes big-endian )
//! ```
//!
//! where `d1 ... dn` are the digests of its `n` items read as big-endian
//! unsigned integers: the same for the same items however they were
//! batched and in whatever order, and different as soon as one item is
//! missing, added twice or changed. It is written in lower-case hex.
//!
//! The expected side's items are those the comparison sees: the records
//! the replay selected (signals, services, window), every pass, with the
//! ids the replay sent (remapped per pass) and the recorded timestamps;
//! the actual side's are as stored. Both cover only the compared signals,
//! and ignored attribute keys are part of the hash (it says what the
//! sessions hold, whatever the comparison's options).

use std::sync::Arc;

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::Status;
use prost::Message;
use sha2::{Digest, Sha256};

use crate::{Item, ItemBody, Point, PointValue, Scope};

/// Scopes whose prefixes are kept.
const RECENT_SCOPES: usize = 8;

/// The running canonical hash of one side.
#[derive(Debug, Clone)]
pub(crate) struct CanonicalHash {
    items: u64,
    /// The sum of the digests, most significant limb first.
    sum: [u64; 4],
    /// The hashers after the prefixes of the last scopes seen (a record's
    /// scopes come round again on each pass), with their scopes (held so
    /// that their addresses are not reused), the latest last.
    prefixes: Vec<(Arc<Scope>, &'static str, Sha256)>,
    buffer: Vec<u8>,
}

impl Default for CanonicalHash {
    fn default() -> Self {
        CanonicalHash { items: 0, sum: [0; 4], prefixes: Vec::new(), buffer: Vec::with_capacity(1024) }
    }
}

impl CanonicalHash {
    /// Adds an item. Its attribute lists are sorted while it is encoded
    /// and put back in their order after.
    pub(crate) fn add(&mut self, item: &mut Item) {
        let signal = item.signal().as_str();
        let known = self
            .prefixes
            .iter()
            .rev()
            .find(|(scope, prefix_signal, _)| Arc::ptr_eq(scope, &item.scope) && *prefix_signal == signal);
        let mut hasher = if let Some((_, _, hasher)) = known {
            hasher.clone()
        } else {
            let hasher = self.scope_prefix(signal, &item.scope);
            if self.prefixes.len() == RECENT_SCOPES {
                self.prefixes.remove(0);
            }
            self.prefixes.push((Arc::clone(&item.scope), signal, hasher.clone()));
            hasher
        };
        self.buffer.clear();
        encode_item(&mut item.body, &mut self.buffer);
        field(&mut hasher, &self.buffer);
        let digest: [u8; 32] = hasher.finalize().into();
        self.add_digest(&digest);
    }

    /// Adds another hash's items (of the same side, read elsewhere).
    #[cfg_attr(not(test), allow(dead_code, reason = "for a side read in parts"))]
    pub(crate) fn merge(&mut self, other: &CanonicalHash) {
        self.items += other.items;
        self.add_sum(other.sum);
    }

    /// Items added.
    #[cfg_attr(not(test), allow(dead_code, reason = "for tests and reports"))]
    pub(crate) fn items(&self) -> u64 {
        self.items
    }

    /// The canonical SHA-256, lower-case hex.
    pub(crate) fn finish(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.items.to_be_bytes());
        for limb in self.sum {
            hasher.update(limb.to_be_bytes());
        }
        hex::encode(hasher.finalize())
    }

    fn scope_prefix(&mut self, signal: &str, scope: &Scope) -> Sha256 {
        let mut hasher = Sha256::new();
        field(&mut hasher, signal.as_bytes());
        let mut resource = scope.resource.clone();
        sort_by_key(&mut resource.attributes);
        self.buffer.clear();
        resource.encode_raw(&mut self.buffer);
        field(&mut hasher, &self.buffer);
        field(&mut hasher, scope.resource_schema_url.as_bytes());
        let mut instrumentation = scope.scope.clone();
        sort_by_key(&mut instrumentation.attributes);
        self.buffer.clear();
        instrumentation.encode_raw(&mut self.buffer);
        field(&mut hasher, &self.buffer);
        field(&mut hasher, scope.scope_schema_url.as_bytes());
        hasher
    }

    fn add_digest(&mut self, digest: &[u8; 32]) {
        let mut limbs = [0_u64; 4];
        for (limb, bytes) in limbs.iter_mut().zip(digest.chunks_exact(8)) {
            *limb = u64::from_be_bytes(bytes.try_into().unwrap_or_default());
        }
        self.items += 1;
        self.add_sum(limbs);
    }

    /// `sum += other` modulo 2^256.
    fn add_sum(&mut self, other: [u64; 4]) {
        let mut carry = false;
        for (limb, add) in self.sum.iter_mut().zip(other).rev() {
            let (partial, first) = limb.overflowing_add(add);
            let (total, second) = partial.overflowing_add(u64::from(carry));
            *limb = total;
            carry = first || second;
        }
    }
}

/// Feeds `bytes` as a field: its length as a big-endian u64, then itself.
fn field(hasher: &mut Sha256, bytes: &[u8]) {
    hasher.update((bytes.len() as u64).to_be_bytes());
    hasher.update(bytes);
}

/// Encodes the item canonically into `buffer` (see the module's
/// definition), leaving it as it was.
fn encode_item(body: &mut ItemBody, buffer: &mut Vec<u8>) {
    match body {
        ItemBody::Span(span) => {
            let own = sort_by_key(&mut span.attributes);
            let events: Vec<_> = span.events.iter_mut().map(|event| sort_by_key(&mut event.attributes)).collect();
            let links: Vec<_> = span.links.iter_mut().map(|link| sort_by_key(&mut link.attributes)).collect();
            let status = span.status.take_if(|status| *status == Status::default());
            span.encode_raw(buffer);
            span.status = span.status.take().or(status);
            restore(&mut span.attributes, own);
            for (event, order) in span.events.iter_mut().zip(events) {
                restore(&mut event.attributes, order);
            }
            for (link, order) in span.links.iter_mut().zip(links) {
                restore(&mut link.attributes, order);
            }
        }
        ItemBody::Log(record) => {
            let order = sort_by_key(&mut record.attributes);
            record.encode_raw(buffer);
            restore(&mut record.attributes, order);
        }
        ItemBody::Point(point) => {
            let attributes = point_attributes_mut(&mut point.value);
            let order = sort_by_key(attributes);
            encode_point(point, buffer);
            restore(point_attributes_mut(&mut point.value), order);
        }
    }
}

fn point_attributes_mut(value: &mut PointValue) -> &mut Vec<KeyValue> {
    match value {
        PointValue::Gauge(point) | PointValue::Sum { point, .. } => &mut point.attributes,
        PointValue::Histogram { point, .. } => &mut point.attributes,
        PointValue::ExponentialHistogram { point, .. } => &mut point.attributes,
        PointValue::Summary(point) => &mut point.attributes,
    }
}

/// Sorts `list` by key, stably; returns the order to put it back in, or
/// `None` when it was sorted.
fn sort_by_key(list: &mut Vec<KeyValue>) -> Option<Vec<usize>> {
    if list.is_sorted_by(|a, b| a.key <= b.key) {
        return None;
    }
    let mut order: Vec<usize> = (0..list.len()).collect();
    order.sort_by(|&a, &b| list[a].key.cmp(&list[b].key));
    let mut slots: Vec<Option<KeyValue>> = std::mem::take(list).into_iter().map(Some).collect();
    *list = order.iter().filter_map(|&from| slots[from].take()).collect();
    Some(order)
}

/// Puts a list [`sort_by_key`] sorted back in its order.
fn restore(list: &mut Vec<KeyValue>, order: Option<Vec<usize>>) {
    let Some(order) = order else { return };
    let mut slots: Vec<Option<KeyValue>> = vec![None; list.len()];
    for (attribute, &to) in std::mem::take(list).into_iter().zip(&order) {
        slots[to] = Some(attribute);
    }
    *list = slots.into_iter().flatten().collect();
}

/// Encodes a data point as the `Metric` that holds only it (no metadata):
/// its name, description and unit, and its type's message with the one
/// point and the type's aggregation fields. Fields in field-number order,
/// defaults left out, as prost encodes the same `Metric`.
pub(crate) fn encode_point(point: &Point, buffer: &mut Vec<u8>) {
    string(1, &point.name, buffer);
    string(2, &point.description, buffer);
    string(3, &point.unit, buffer);
    match &point.value {
        PointValue::Gauge(data_point) => data(5, data_point, 0, false, buffer),
        PointValue::Sum { point, temporality, monotonic } => data(7, point, *temporality, *monotonic, buffer),
        PointValue::Histogram { point, temporality } => data(9, point, *temporality, false, buffer),
        PointValue::ExponentialHistogram { point, temporality } => data(10, point, *temporality, false, buffer),
        PointValue::Summary(data_point) => data(11, data_point, 0, false, buffer),
    }
}

/// A metric's data message (`field`) holding one point (field 1), its
/// aggregation temporality (2) and monotonicity (3).
fn data(field: u32, point: &impl Message, temporality: i32, monotonic: bool, buffer: &mut Vec<u8>) {
    let point_length = point.encoded_len();
    let mut length = 1 + varint_length(point_length as u64) + point_length;
    // An enum is an int32: a negative one takes ten bytes.
    let temporality_value = i64::from(temporality).cast_unsigned();
    if temporality != 0 {
        length += 1 + varint_length(temporality_value);
    }
    if monotonic {
        length += 2;
    }
    key(field, 2, buffer);
    varint(length as u64, buffer);
    key(1, 2, buffer);
    varint(point_length as u64, buffer);
    point.encode_raw(buffer);
    if temporality != 0 {
        key(2, 0, buffer);
        varint(temporality_value, buffer);
    }
    if monotonic {
        key(3, 0, buffer);
        varint(1, buffer);
    }
}

fn string(field: u32, text: &str, buffer: &mut Vec<u8>) {
    if !text.is_empty() {
        key(field, 2, buffer);
        varint(text.len() as u64, buffer);
        buffer.extend_from_slice(text.as_bytes());
    }
}

fn key(field: u32, wire_type: u32, buffer: &mut Vec<u8>) {
    varint(u64::from(field << 3 | wire_type), buffer);
}

fn varint(mut value: u64, buffer: &mut Vec<u8>) {
    while value >= 0x80 {
        buffer.push((value as u8) | 0x80);
        value >>= 7;
    }
    buffer.push(value as u8);
}

fn varint_length(value: u64) -> usize {
    // 1 byte per 7 bits, at least 1.
    (64 - (value | 1).leading_zeros() as usize).div_ceil(7)
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};
    use opentelemetry_proto::tonic::metrics::v1::{Metric, metric};
    use tape_otlp::{ExportRequest, sample};

    use super::*;
    use crate::Origin;
    use crate::extract::{extract, push_points};

    fn items(request: &ExportRequest) -> Vec<Item> {
        let mut items = Vec::new();
        extract(request.signal(), &request.encode_protobuf(), Origin::default(), &mut items).expect("valid");
        items
    }

    fn hash(items: &mut [Item]) -> String {
        let mut hash = CanonicalHash::default();
        for item in items.iter_mut() {
            hash.add(item);
        }
        hash.finish()
    }

    fn all() -> Vec<Item> {
        let mut all = items(&ExportRequest::Traces(sample::traces("checkout", 6, 1_000)));
        all.extend(items(&ExportRequest::Metrics(sample::metrics("payment", 1_000))));
        all.extend(items(&ExportRequest::Logs(sample::logs("checkout", 4, 1_000))));
        all
    }

    #[test]
    fn a_point_encodes_as_prost_encodes_its_metric() {
        for item in items(&ExportRequest::Metrics(sample::metrics("payment", 1_000))) {
            let ItemBody::Point(point) = &item.body else { panic!("a point") };
            let mut ours = Vec::new();
            encode_point(point, &mut ours);
            let decoded = Metric::decode(ours.as_slice()).expect("a metric");
            assert_eq!(decoded.encode_to_vec(), ours, "{}", point.name);
            let mut back = Vec::new();
            push_points(decoded, |point| back.push(point));
            assert_eq!(back, std::slice::from_ref(point));
        }
        let negative = Point {
            name: "n".to_owned(),
            description: String::new(),
            unit: String::new(),
            value: PointValue::Sum {
                point: opentelemetry_proto::tonic::metrics::v1::NumberDataPoint::default(),
                temporality: -1,
                monotonic: true,
            },
        };
        let mut ours = Vec::new();
        encode_point(&negative, &mut ours);
        let decoded = Metric::decode(ours.as_slice()).expect("a metric");
        assert!(matches!(decoded.data, Some(metric::Data::Sum(ref sum)) if sum.aggregation_temporality == -1));
        assert_eq!(decoded.encode_to_vec(), ours);
    }

    #[test]
    fn order_and_attribute_order_do_not_change_the_hash_and_items_are_left_as_they_were() {
        let mut items = all();
        let before = items.clone();
        let hash_of_all = hash(&mut items);
        assert_eq!(items, before, "attribute lists are put back in their order");
        items.reverse();
        for item in &mut items {
            if let ItemBody::Span(span) = &mut item.body {
                span.attributes.reverse();
            }
        }
        assert_eq!(hash(&mut items), hash_of_all);
        // Parts hashed apart and merged give the same.
        let (mut first, mut second) = (CanonicalHash::default(), CanonicalHash::default());
        let (left, right) = items.split_at_mut(5);
        for item in left.iter_mut() {
            first.add(item);
        }
        for item in right.iter_mut() {
            second.add(item);
        }
        first.merge(&second);
        assert_eq!((first.items(), first.finish()), (items.len() as u64, hash_of_all));
    }

    #[test]
    fn a_missing_a_doubled_or_a_changed_item_changes_the_hash() {
        let mut items = all();
        let hash_of_all = hash(&mut items);
        let mut fewer = items[1..].to_vec();
        assert_ne!(hash(&mut fewer), hash_of_all);
        let mut more = items.clone();
        more.push(items[0].clone());
        assert_ne!(hash(&mut more), hash_of_all);
        let mut changed = items.clone();
        if let ItemBody::Log(record) = &mut changed.last_mut().unwrap().body {
            record.body = Some(AnyValue { value: Some(any_value::Value::StringValue("other".to_owned())) });
        }
        assert_ne!(hash(&mut changed), hash_of_all);
        let mut other_resource = items.clone();
        let mut scope = (*other_resource[0].scope).clone();
        scope.resource_schema_url = "https://opentelemetry.io/schemas/1.0.0".to_owned();
        other_resource[0].scope = Arc::new(scope);
        assert_ne!(hash(&mut other_resource), hash_of_all);
    }

    #[test]
    fn an_empty_status_is_no_status() {
        let mut items = items(&ExportRequest::Traces(sample::traces("checkout", 1, 0)));
        let ItemBody::Span(span) = &mut items[0].body else { panic!("a span") };
        span.status = None;
        let without = hash(&mut items);
        let ItemBody::Span(span) = &mut items[0].body else { panic!("a span") };
        span.status = Some(Status::default());
        assert_eq!(hash(&mut items), without);
        let ItemBody::Span(span) = &items[0].body else { panic!("a span") };
        assert_eq!(span.status, Some(Status::default()), "put back");
    }

    #[test]
    fn the_definition_recomputed_by_hand_gives_the_same() {
        // An auditor's recomputation, with prost's own messages.
        let request = sample::logs("checkout", 2, 1_000);
        let mut items = items(&ExportRequest::Logs(request.clone()));
        let mut sum = [0_u8; 32];
        let resource_logs = &request.resource_logs[0];
        let scope_logs = &resource_logs.scope_logs[0];
        let mut resource = resource_logs.resource.clone().unwrap();
        resource.attributes.sort_by(|a, b| a.key.cmp(&b.key));
        let mut scope = scope_logs.scope.clone().unwrap();
        scope.attributes.sort_by(|a, b| a.key.cmp(&b.key));
        for record in &scope_logs.log_records {
            let mut record = record.clone();
            record.attributes.sort_by(|a, b| a.key.cmp(&b.key));
            let mut hasher = Sha256::new();
            for part in [
                b"logs".to_vec(),
                resource.encode_to_vec(),
                resource_logs.schema_url.clone().into_bytes(),
                scope.encode_to_vec(),
                scope_logs.schema_url.clone().into_bytes(),
                record.encode_to_vec(),
            ] {
                hasher.update((part.len() as u64).to_be_bytes());
                hasher.update(&part);
            }
            let digest = hasher.finalize();
            let mut carry = 0_u16;
            for index in (0..32).rev() {
                let total = u16::from(sum[index]) + u16::from(digest[index]) + carry;
                sum[index] = total as u8;
                carry = total >> 8;
            }
        }
        let mut hasher = Sha256::new();
        hasher.update(2_u64.to_be_bytes());
        hasher.update(sum);
        assert_eq!(hash(&mut items), hex::encode(hasher.finalize()));
    }
}
