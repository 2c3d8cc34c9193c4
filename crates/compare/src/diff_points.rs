//! The differences of two data points: their metric's name, description,
//! unit, type and aggregation, their values, attributes, start time,
//! flags and exemplars.

use opentelemetry_proto::tonic::metrics::v1::Exemplar;

use crate::diff::{Change, Differ, Text, counted, field, shifted};
use crate::diff_values::{
    diff_attributes, same_exemplar_value, same_exponential_histogram, same_histogram, same_number, same_summary,
};
use crate::{Location, Point, PointValue};

impl Differ<'_> {
    /// The differences of two data points, with the delivered one's
    /// timestamps expected `delta` later.
    pub(crate) fn points<'a>(&self, e: &'a Point, a: &'a Point, delta: i64, out: &mut Vec<Change<'a>>) {
        if e.name != a.name {
            out.push(counted("metric", Text::Str(&e.name), Text::Str(&a.name)));
        }
        if e.description != a.description {
            out.push(field("metric", Text::Str(&e.description), Text::Str(&a.description)));
        }
        if e.unit != a.unit {
            out.push(field("metric", Text::Str(&e.unit), Text::Str(&a.unit)));
        }
        let (x, y) = (point_parts(e), point_parts(a));
        if x.kind != y.kind {
            out.push(counted("metric", Text::Name(x.kind), Text::Name(y.kind)));
        } else if x.aggregation != y.aggregation {
            out.push(field("metric", Text::Name(aggregation(x.aggregation)), Text::Name(aggregation(y.aggregation))));
        } else if !same_point_value(&e.value, &a.value) {
            out.push(field("value", number(&e.value), number(&a.value)));
        }
        diff_attributes(Location::Point, x.attributes, y.attributes, self.ignore, out);
        if shifted(x.start, delta) != y.start {
            out.push(field("startTime", Text::Number(x.start.into()), Text::Number(y.start.into())));
        }
        if x.flags != y.flags {
            out.push(field("flags", Text::Number(x.flags.into()), Text::Number(y.flags.into())));
        }
        let same_exemplar = |p: &Exemplar, q: &Exemplar| {
            let mut changes = Vec::new();
            diff_attributes(Location::Point, &p.filtered_attributes, &q.filtered_attributes, self.ignore, &mut changes);
            changes.is_empty()
                && shifted(p.time_unix_nano, delta) == q.time_unix_nano
                && p.span_id == q.span_id
                && p.trace_id == q.trace_id
                && same_exemplar_value(p.value.as_ref(), q.value.as_ref())
        };
        if x.exemplars.len() != y.exemplars.len()
            || !x.exemplars.iter().zip(y.exemplars).all(|(p, q)| same_exemplar(p, q))
        {
            let (from, to) = (x.exemplars.len() as i128, y.exemplars.len() as i128);
            out.push(field("exemplars", Text::Number(from), Text::Number(to)));
        }
    }
}

/// The fields every type of data point has.
pub(crate) struct PointParts<'a> {
    /// The type's name.
    pub(crate) kind: &'static str,
    /// Temporality and monotonicity, where the type has them.
    aggregation: (i32, bool),
    /// The point's attributes.
    pub(crate) attributes: &'a [opentelemetry_proto::tonic::common::v1::KeyValue],
    /// Its start time.
    start: u64,
    /// Its time.
    pub(crate) time: u64,
    flags: u32,
    exemplars: &'a [Exemplar],
}

/// The fields every type of data point has.
pub(crate) fn point_parts(point: &Point) -> PointParts<'_> {
    let parts = |kind, aggregation, attributes, start, time, flags, exemplars| PointParts {
        kind,
        aggregation,
        attributes,
        start,
        time,
        flags,
        exemplars,
    };
    match &point.value {
        PointValue::Gauge(p) => {
            parts("gauge", (0, false), &p.attributes, p.start_time_unix_nano, p.time_unix_nano, p.flags, &p.exemplars)
        }
        PointValue::Sum { point: p, temporality, monotonic } => parts(
            "sum",
            (*temporality, *monotonic),
            &p.attributes,
            p.start_time_unix_nano,
            p.time_unix_nano,
            p.flags,
            &p.exemplars,
        ),
        PointValue::Histogram { point: p, temporality } => parts(
            "histogram",
            (*temporality, false),
            &p.attributes,
            p.start_time_unix_nano,
            p.time_unix_nano,
            p.flags,
            &p.exemplars,
        ),
        PointValue::ExponentialHistogram { point: p, temporality } => parts(
            "exponentialHistogram",
            (*temporality, false),
            &p.attributes,
            p.start_time_unix_nano,
            p.time_unix_nano,
            p.flags,
            &p.exemplars,
        ),
        PointValue::Summary(p) => {
            parts("summary", (0, false), &p.attributes, p.start_time_unix_nano, p.time_unix_nano, p.flags, &[])
        }
    }
}

fn same_point_value(a: &PointValue, b: &PointValue) -> bool {
    match (a, b) {
        (PointValue::Gauge(a), PointValue::Gauge(b))
        | (PointValue::Sum { point: a, .. }, PointValue::Sum { point: b, .. }) => {
            same_number(a.value.as_ref(), b.value.as_ref())
        }
        (PointValue::Histogram { point: a, .. }, PointValue::Histogram { point: b, .. }) => same_histogram(a, b),
        (PointValue::ExponentialHistogram { point: a, .. }, PointValue::ExponentialHistogram { point: b, .. }) => {
            same_exponential_histogram(a, b)
        }
        (PointValue::Summary(a), PointValue::Summary(b)) => same_summary(a, b),
        _ => false,
    }
}

/// A number point's value as details show it; other types' values are
/// not shown.
fn number(value: &PointValue) -> Text<'static> {
    use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value;
    let (PointValue::Gauge(point) | PointValue::Sum { point, .. }) = value else { return Text::None };
    match point.value {
        Some(Value::AsInt(number)) => Text::Number(number.into()),
        Some(Value::AsDouble(number)) => Text::Float(number),
        None => Text::Name("(none)"),
    }
}

fn aggregation((temporality, monotonic): (i32, bool)) -> &'static str {
    match (temporality, monotonic) {
        (1, false) => "delta",
        (1, true) => "monotonic delta",
        (2, false) => "cumulative",
        (2, true) => "monotonic cumulative",
        (_, false) => "unspecified",
        (_, true) => "monotonic unspecified",
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value;
    use tape_otlp::sample;

    use crate::diff::Differ;
    use crate::match_samples::items;
    use crate::{ItemBody, Origin, PointValue, Scope};

    #[test]
    fn a_point_pair_tells_its_value_attributes_and_metric() {
        let points = items(sample::metrics("checkout", 0), Origin::default());
        let expected = points[0].clone();
        let mut actual = expected.clone();
        let mut scope = Scope::clone(&actual.scope);
        scope.scope.version = "2.0.0".to_owned();
        actual.scope = Arc::new(scope);
        let ItemBody::Point(point) = &mut actual.body else { unreachable!() };
        point.unit = "%".to_owned();
        let PointValue::Gauge(number) = &mut point.value else { unreachable!() };
        number.value = Some(Value::AsDouble(0.5));
        number.attributes.push(sample::string_attribute("host.name", "a"));
        number.start_time_unix_nano += 1;
        let (differ, mut changes) = (Differ { ignore: &[] }, Vec::new());
        differ.scopes(&expected.scope, &actual.scope, &mut changes);
        differ.bodies(&expected, &actual, 0, &mut changes);
        let details: Vec<String> = changes.iter().map(ToString::to_string).collect();
        assert_eq!(
            details,
            [
                "scope \"1.0.0\" -> \"2.0.0\"",
                "metric \"1\" -> \"%\"",
                "value 0.42 -> 0.5",
                "data point attribute host.name added (\"a\")",
                format!("startTime {} -> {}", sample::BASE_TIME_UNIX_NANO, sample::BASE_TIME_UNIX_NANO + 1).as_str(),
            ]
        );
        // Another type of point of the same series is a metric change.
        let histogram = points
            .iter()
            .find(|item| matches!(&item.body, ItemBody::Point(p) if matches!(p.value, PointValue::Histogram { .. })));
        let mut changes = Vec::new();
        differ.bodies(&expected, histogram.unwrap(), 0, &mut changes);
        assert!(
            changes.iter().any(|change| change.to_string().starts_with("metric gauge -> histogram")),
            "{changes:?}"
        );
    }
}
