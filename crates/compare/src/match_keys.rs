//! The keys the matching groups items by: fixed byte arrays for ids, and
//! 64-bit hashes of content (attribute lists hashed as maps, so their
//! order does not matter, and without the ignored keys).

use std::hash::{BuildHasherDefault, Hasher};

use std::sync::Arc;

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};

use crate::{Item, ItemBody, Scope};

/// A fast, deterministic hasher for the comparison's own maps (keys are
/// ids, integers and short strings; no key comes from an adversary that
/// could gain from collisions).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FastHasher(u64);

const SEED: u64 = 0x9E37_79B9_7F4A_7C15;
const MULTIPLIER: u64 = 0xD6E8_FEB8_6659_FD93;

impl FastHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0 ^ word).wrapping_mul(MULTIPLIER).rotate_left(29);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn finish(&self) -> u64 {
        mix(self.0 ^ SEED)
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        let mut word = [0; 8];
        word[..rest.len()].copy_from_slice(rest);
        self.add(u64::from_le_bytes(word) ^ ((bytes.len() as u64) << 56));
    }

    #[inline]
    fn write_u8(&mut self, value: u8) {
        self.add(u64::from(value));
    }

    #[inline]
    fn write_u32(&mut self, value: u32) {
        self.add(u64::from(value));
    }

    #[inline]
    fn write_u64(&mut self, value: u64) {
        self.add(value);
    }

    #[inline]
    fn write_usize(&mut self, value: usize) {
        self.add(value as u64);
    }
}

/// The finaliser of MurmurHash3: spreads every input bit over the output.
#[inline]
pub(crate) const fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    x ^= x >> 33;
    x = x.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
    x ^ (x >> 33)
}

/// Hash maps of the comparison, with [`FastHasher`].
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<FastHasher>>;

/// Hash sets of the comparison, with [`FastHasher`].
pub(crate) type FastSet<K> = std::collections::HashSet<K, BuildHasherDefault<FastHasher>>;

/// A hash of content, built from parts.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ContentHash(FastHasher);

impl ContentHash {
    /// Adds a string (its length too, so that parts cannot run into each
    /// other).
    pub(crate) fn text(mut self, text: &str) -> Self {
        self.0.write(text.as_bytes());
        self
    }

    /// Adds a number.
    pub(crate) fn number(mut self, number: u64) -> Self {
        self.0.write_u64(number);
        self
    }

    /// The hash.
    pub(crate) fn finish(self) -> u64 {
        self.0.finish()
    }
}

/// A hash of `attributes` as a map (order does not matter), `ignore`'s
/// keys left out.
pub(crate) fn attributes_hash(attributes: &[KeyValue], ignore: &[String]) -> u64 {
    let mut sum = 0u64;
    let mut count = 0u64;
    for attribute in attributes {
        if ignore.contains(&attribute.key) {
            continue;
        }
        count += 1;
        let mut hasher = FastHasher::default();
        hasher.write(attribute.key.as_bytes());
        hash_value(attribute.value.as_ref(), &mut hasher);
        sum = sum.wrapping_add(hasher.finish());
    }
    mix(sum ^ count)
}

/// A hash of an attribute value (floats by their bits).
pub(crate) fn value_hash(value: Option<&AnyValue>) -> u64 {
    let mut hasher = FastHasher::default();
    hash_value(value, &mut hasher);
    hasher.finish()
}

fn hash_value(value: Option<&AnyValue>, hasher: &mut FastHasher) {
    match value.and_then(|value| value.value.as_ref()) {
        None => hasher.write_u8(0),
        Some(Value::StringValue(text)) => {
            hasher.write_u8(1);
            hasher.write(text.as_bytes());
        }
        Some(Value::BoolValue(flag)) => {
            hasher.write_u8(2);
            hasher.write_u8(u8::from(*flag));
        }
        Some(Value::IntValue(number)) => {
            hasher.write_u8(3);
            hasher.write_u64(number.cast_unsigned());
        }
        Some(Value::DoubleValue(number)) => {
            hasher.write_u8(4);
            hasher.write_u64(number.to_bits());
        }
        Some(Value::ArrayValue(array)) => {
            hasher.write_u8(5);
            hasher.write_usize(array.values.len());
            for value in &array.values {
                hash_value(Some(value), hasher);
            }
        }
        Some(Value::KvlistValue(list)) => {
            hasher.write_u8(6);
            hasher.write_u64(attributes_hash(&list.values, &[]));
        }
        Some(Value::BytesValue(bytes)) => {
            hasher.write_u8(7);
            hasher.write(bytes);
        }
        Some(Value::StringValueStrindex(index)) => {
            hasher.write_u8(8);
            hasher.write_u32(index.cast_unsigned());
        }
    }
}

/// A trace id and a span id as numbers (big-endian, so that they sort as
/// the bytes do).
pub(crate) type Ids = (u128, u64);

/// No ids.
pub(crate) const NO_IDS: Ids = (0, 0);

/// A key to pair items by: ids (or none) and a content hash (or zero).
pub(crate) type Key = (Ids, u64);

/// A trace id and a span id as one key (zero-padded or cut to 16 and 8
/// bytes).
pub(crate) fn span_key(trace_id: &[u8], span_id: &[u8]) -> Ids {
    let mut trace = [0; 16];
    let length = trace_id.len().min(16);
    trace[..length].copy_from_slice(&trace_id[..length]);
    let mut span = [0; 8];
    let length = span_id.len().min(8);
    span[..length].copy_from_slice(&span_id[..length]);
    (u128::from_be_bytes(trace), u64::from_be_bytes(span))
}

/// The content keys of log records and data points, with what their
/// resources and scopes contribute computed once per resource and scope.
#[derive(Debug)]
pub(crate) struct ContentKeys<'i> {
    ignore: &'i [String],
    scopes: FastMap<usize, ScopeKeys>,
}

#[derive(Debug, Clone, Copy)]
struct ScopeKeys {
    resource: u64,
    service: u64,
    name: u64,
    name_and_version: u64,
}

impl<'i> ContentKeys<'i> {
    /// Keys leaving out `ignore`'s attribute keys.
    pub(crate) fn new(ignore: &'i [String]) -> Self {
        ContentKeys { ignore, scopes: FastMap::default() }
    }

    fn scope(&mut self, scope: &Arc<Scope>) -> ScopeKeys {
        let ignore = self.ignore;
        *self.scopes.entry(Arc::as_ptr(scope) as usize).or_insert_with(|| ScopeKeys {
            resource: attributes_hash(&scope.resource.attributes, ignore),
            service: ContentHash::default().text(&scope.service).finish(),
            name: ContentHash::default().text(&scope.scope.name).finish(),
            name_and_version: ContentHash::default().text(&scope.scope.name).text(&scope.scope.version).finish(),
        })
    }

    /// The exact and the loose key of a log record or data point; `None`
    /// for a span.
    ///
    /// A log record with a trace id: (trace and span id, content), then
    /// (trace and span id). Without: content (resource, scope name,
    /// severity, body, attributes), then (service, body). A data point:
    /// its series (resource, scope name and version, metric name, point
    /// attributes), then (service, scope name, metric name, point
    /// attributes).
    pub(crate) fn keys(&mut self, item: &Item) -> Option<(Key, Key)> {
        let scope = self.scope(&item.scope);
        match &item.body {
            ItemBody::Span(_) => None,
            ItemBody::Log(record) => {
                let body = value_hash(record.body.as_ref());
                let content = ContentHash::default()
                    .number(scope.resource)
                    .number(scope.name)
                    .number(u64::from(record.severity_number.cast_unsigned()))
                    .number(body)
                    .number(attributes_hash(&record.attributes, self.ignore))
                    .finish();
                if item.trace_id().is_some() {
                    let ids = span_key(&record.trace_id, &record.span_id);
                    Some(((ids, content), (ids, 0)))
                } else {
                    Some((
                        (NO_IDS, content),
                        (NO_IDS, ContentHash::default().number(scope.service).number(body).finish()),
                    ))
                }
            }
            ItemBody::Point(point) => {
                let attributes = attributes_hash(crate::diff_points::point_parts(point).attributes, self.ignore);
                let name = ContentHash::default().text(&point.name).number(attributes).finish();
                let exact = ContentHash::default().number(scope.resource).number(scope.name_and_version).number(name);
                let loose = ContentHash::default().number(scope.service).number(scope.name).number(name);
                Some(((NO_IDS, exact.finish()), (NO_IDS, loose.finish())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tape_otlp::sample::{int_attribute, string_attribute};

    use super::*;

    #[test]
    fn attribute_hashes_ignore_order_and_ignored_keys() {
        let a = [string_attribute("a", "1"), int_attribute("b", 2)];
        let b = [int_attribute("b", 2), string_attribute("a", "1"), string_attribute("host.name", "x")];
        let ignore = ["host.name".to_owned()];
        assert_eq!(attributes_hash(&a, &ignore), attributes_hash(&b, &ignore));
        assert_ne!(attributes_hash(&a, &[]), attributes_hash(&b, &[]));
        assert_ne!(
            attributes_hash(&a, &[]),
            attributes_hash(&[string_attribute("a", "2"), int_attribute("b", 2)], &[])
        );
        assert_ne!(value_hash(a[0].value.as_ref()), value_hash(a[1].value.as_ref()));
    }

    #[test]
    fn span_keys_hold_both_ids() {
        assert_eq!(span_key(&[1; 16], &[2; 8]), (u128::from_be_bytes([1; 16]), u64::from_be_bytes([2; 8])));
        assert_eq!(span_key(&[], &[]), NO_IDS);
        assert!(span_key(&[1], &[]) > span_key(&[0, 0xFF], &[0xFF]));
    }
}
