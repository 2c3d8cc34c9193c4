//! Attribute lists compared as maps, attribute values compared and shown,
//! and the values of data points compared.

use std::fmt;

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{exemplar, number_data_point};

use crate::diff::Change;
use crate::{ChangeKind, Location};

/// Adds the differences between two attribute lists (as maps: order does
/// not matter; `ignore`'s keys left out) to `out`.
pub(crate) fn diff_attributes<'a>(
    location: Location,
    expected: &'a [KeyValue],
    actual: &'a [KeyValue],
    ignore: &[String],
    out: &mut Vec<Change<'a>>,
) {
    if expected == actual {
        return;
    }
    let kept = |attribute: &&'a KeyValue| !ignore.contains(&attribute.key);
    let mut expected: Vec<&KeyValue> = expected.iter().filter(kept).collect();
    let mut actual: Vec<&KeyValue> = actual.iter().filter(kept).collect();
    // Stable sorts, then the last of a repeated key wins, as in a map.
    expected.sort_by(|a, b| a.key.cmp(&b.key));
    actual.sort_by(|a, b| a.key.cmp(&b.key));
    let (mut e, mut a) = (expected.as_slice(), actual.as_slice());
    loop {
        let next_e = e.first().map(|attribute| attribute.key.as_str());
        let next_a = a.first().map(|attribute| attribute.key.as_str());
        let (take_e, take_a) = match (next_e, next_a) {
            (None, None) => break,
            (Some(_), None) => (true, false),
            (None, Some(_)) => (false, true),
            (Some(x), Some(y)) => (x <= y, y <= x),
        };
        let (from, rest_e) = if take_e { last_of_key(e) } else { (None, e) };
        let (to, rest_a) = if take_a { last_of_key(a) } else { (None, a) };
        (e, a) = (rest_e, rest_a);
        let kind = match (from, to) {
            (Some(from), Some(to)) if same_value(from.value.as_ref(), to.value.as_ref()) => continue,
            (Some(_), Some(_)) => ChangeKind::Changed,
            (Some(_), None) => ChangeKind::Removed,
            (None, _) => ChangeKind::Added,
        };
        let key = from.or(to).map_or("", |attribute| attribute.key.as_str());
        out.push(Change::Attribute {
            location,
            key,
            kind,
            from: from.and_then(|attribute| attribute.value.as_ref()),
            to: to.and_then(|attribute| attribute.value.as_ref()),
        });
    }
}

/// The last attribute of the run of `sorted`'s first key, and what
/// follows the run.
fn last_of_key<'a, 's>(sorted: &'s [&'a KeyValue]) -> (Option<&'a KeyValue>, &'s [&'a KeyValue]) {
    let Some(first) = sorted.first() else { return (None, sorted) };
    let run = sorted.iter().take_while(|attribute| attribute.key == first.key).count();
    (Some(sorted[run - 1]), &sorted[run..])
}

/// Whether two attribute values are the same (floats by bits too, so that
/// NaN equals itself; key-value lists as maps).
pub(crate) fn same_value(a: Option<&AnyValue>, b: Option<&AnyValue>) -> bool {
    match (a.and_then(|value| value.value.as_ref()), b.and_then(|value| value.value.as_ref())) {
        (None, None) => true,
        (Some(Value::DoubleValue(x)), Some(Value::DoubleValue(y))) => same_float(*x, *y),
        (Some(Value::ArrayValue(x)), Some(Value::ArrayValue(y))) => {
            x.values.len() == y.values.len()
                && x.values.iter().zip(&y.values).all(|(x, y)| same_value(Some(x), Some(y)))
        }
        (Some(Value::KvlistValue(x)), Some(Value::KvlistValue(y))) => {
            let mut changes = Vec::new();
            diff_attributes(Location::Span, &x.values, &y.values, &[], &mut changes);
            changes.is_empty()
        }
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// Whether two floats are the same: equal, or the same bits (NaN).
#[allow(clippy::float_cmp)] // Exactly the same value is what a comparison of sessions asks.
pub(crate) fn same_float(a: f64, b: f64) -> bool {
    a == b || a.to_bits() == b.to_bits()
}

fn same_optional_float(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => same_float(a, b),
        _ => false,
    }
}

fn same_floats(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(a, b)| same_float(*a, *b))
}

/// Whether two number points have the same value.
pub(crate) fn same_number(a: Option<&number_data_point::Value>, b: Option<&number_data_point::Value>) -> bool {
    match (a, b) {
        (Some(number_data_point::Value::AsDouble(a)), Some(number_data_point::Value::AsDouble(b))) => {
            same_float(*a, *b)
        }
        _ => a == b,
    }
}

/// Whether two exemplar values are the same.
pub(crate) fn same_exemplar_value(a: Option<&exemplar::Value>, b: Option<&exemplar::Value>) -> bool {
    match (a, b) {
        (Some(exemplar::Value::AsDouble(a)), Some(exemplar::Value::AsDouble(b))) => same_float(*a, *b),
        _ => a == b,
    }
}

/// Whether two histogram points have the same count, sum, buckets and
/// extremes.
pub(crate) fn same_histogram(
    a: &opentelemetry_proto::tonic::metrics::v1::HistogramDataPoint,
    b: &opentelemetry_proto::tonic::metrics::v1::HistogramDataPoint,
) -> bool {
    a.count == b.count
        && same_optional_float(a.sum, b.sum)
        && a.bucket_counts == b.bucket_counts
        && same_floats(&a.explicit_bounds, &b.explicit_bounds)
        && same_optional_float(a.min, b.min)
        && same_optional_float(a.max, b.max)
}

/// Whether two exponential histogram points have the same count, sum,
/// scale, buckets and extremes.
pub(crate) fn same_exponential_histogram(
    a: &opentelemetry_proto::tonic::metrics::v1::ExponentialHistogramDataPoint,
    b: &opentelemetry_proto::tonic::metrics::v1::ExponentialHistogramDataPoint,
) -> bool {
    a.count == b.count
        && same_optional_float(a.sum, b.sum)
        && a.scale == b.scale
        && a.zero_count == b.zero_count
        && a.positive == b.positive
        && a.negative == b.negative
        && same_optional_float(a.min, b.min)
        && same_optional_float(a.max, b.max)
        && same_float(a.zero_threshold, b.zero_threshold)
}

/// Whether two summary points have the same count, sum and quantiles.
pub(crate) fn same_summary(
    a: &opentelemetry_proto::tonic::metrics::v1::SummaryDataPoint,
    b: &opentelemetry_proto::tonic::metrics::v1::SummaryDataPoint,
) -> bool {
    a.count == b.count
        && same_float(a.sum, b.sum)
        && a.quantile_values.len() == b.quantile_values.len()
        && a.quantile_values
            .iter()
            .zip(&b.quantile_values)
            .all(|(a, b)| same_float(a.quantile, b.quantile) && same_float(a.value, b.value))
}

/// The most characters of a value shown in a difference's details.
const SHOWN_CHARS: usize = 80;

/// An attribute value or log body as details show it: strings quoted,
/// long ones cut.
pub(crate) struct ShownValue<'a>(pub(crate) Option<&'a AnyValue>);

impl fmt::Display for ShownValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.and_then(|value| value.value.as_ref()) {
            None => f.write_str("(empty)"),
            Some(Value::StringValue(text)) => write!(f, "{:?}", shortened(text)),
            Some(Value::BoolValue(flag)) => write!(f, "{flag}"),
            Some(Value::IntValue(number)) => write!(f, "{number}"),
            Some(Value::DoubleValue(number)) => write!(f, "{number}"),
            Some(Value::BytesValue(bytes)) => {
                write!(f, "0x{}", hex::encode(&bytes[..bytes.len().min(SHOWN_CHARS / 2)]))
            }
            Some(Value::ArrayValue(array)) => write!(f, "[{} values]", array.values.len()),
            Some(Value::KvlistValue(list)) => write!(f, "{{{} entries}}", list.values.len()),
            Some(Value::StringValueStrindex(index)) => write!(f, "(string #{index})"),
        }
    }
}

/// `text` cut to at most [`SHOWN_CHARS`] characters.
pub(crate) fn shortened(text: &str) -> &str {
    match text.char_indices().nth(SHOWN_CHARS) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use tape_otlp::sample::{int_attribute, string_attribute};

    use super::*;

    fn changes(expected: &[KeyValue], actual: &[KeyValue], ignore: &[String]) -> Vec<(String, ChangeKind)> {
        let mut out = Vec::new();
        diff_attributes(Location::Span, expected, actual, ignore, &mut out);
        out.iter()
            .map(|change| match change {
                Change::Attribute { key, kind, .. } => ((*key).to_owned(), *kind),
                Change::Field { .. } => unreachable!("attributes give attribute changes"),
            })
            .collect()
    }

    #[test]
    fn attributes_compare_as_maps() {
        let a = [string_attribute("a", "1"), int_attribute("b", 2), string_attribute("c", "x")];
        let b = [int_attribute("b", 2), string_attribute("a", "1"), string_attribute("c", "x")];
        assert!(changes(&a, &b, &[]).is_empty());
        let c = [string_attribute("a", "2"), string_attribute("d", "new"), string_attribute("c", "x")];
        assert_eq!(
            changes(&a, &c, &[]),
            [
                ("a".to_owned(), ChangeKind::Changed),
                ("b".to_owned(), ChangeKind::Removed),
                ("d".to_owned(), ChangeKind::Added)
            ]
        );
        assert_eq!(changes(&a, &c, &["a".to_owned(), "b".to_owned(), "d".to_owned()]), []);
    }

    #[test]
    fn nan_equals_itself_and_values_show_shortly() {
        let nan = AnyValue { value: Some(Value::DoubleValue(f64::NAN)) };
        assert!(same_value(Some(&nan), Some(&nan)));
        assert!(!same_value(Some(&nan), None));
        let long = AnyValue { value: Some(Value::StringValue("x".repeat(200))) };
        assert_eq!(ShownValue(Some(&long)).to_string().len(), SHOWN_CHARS + 2);
        assert_eq!(ShownValue(None).to_string(), "(empty)");
    }
}
