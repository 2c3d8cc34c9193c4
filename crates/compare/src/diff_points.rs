//! The differences of two data points: their metric's name, description,
//! unit, type and aggregation, their values, attributes, start time,
//! flags and exemplars.

use opentelemetry_proto::tonic::metrics::v1::Exemplar;

use crate::diff::{Change, Differ, Text, counted, field, shifted};
use crate::diff_values::{
    diff_attributes, same_exemplar_value, same_exponential_histogram, same_histogram, same_number, same_summary,
};
use crate::match_keys::FastMap;
use crate::{Item, ItemBody, Location, Point, PointValue};

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
        // A replay that shifts gives a cumulative series one start time
        // per pass (`SeriesStarts` checks those).
        let series_start = self.series_starts && is_cumulative(&e.value);
        if !series_start && shifted(x.start, delta) != y.start {
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

/// Whether a point is of a cumulative series (a sum, histogram or
/// exponential histogram of cumulative temporality, or a summary): a
/// replay keeps one start time per such series and pass.
pub(crate) fn is_cumulative(value: &PointValue) -> bool {
    const CUMULATIVE: i32 = 2;
    match value {
        PointValue::Sum { temporality, .. }
        | PointValue::Histogram { temporality, .. }
        | PointValue::ExponentialHistogram { temporality, .. } => *temporality == CUMULATIVE,
        PointValue::Summary(_) => true,
        PointValue::Gauge(_) => false,
    }
}

/// The start times a shifting replay gave the cumulative series of one
/// partition: each series, pass and recorded start time keeps the start
/// time it was first delivered with (the replay moves it by the shift of
/// the series' first record, not of each record), except that a start is
/// never after its point's time.
#[derive(Debug, Default)]
pub(crate) struct SeriesStarts {
    first: FastMap<(u64, u64, u64), u64>,
}

impl SeriesStarts {
    /// Adds a `startTime` change to `out` when the delivered point of a
    /// cumulative `series` has another start time than the series' first
    /// delivered point, or set where expected unset (or unset where set).
    pub(crate) fn check<'a>(&mut self, series: u64, expected: &'a Item, actual: &'a Item, out: &mut Vec<Change<'a>>) {
        let (ItemBody::Point(e), ItemBody::Point(a)) = (&expected.body, &actual.body) else { return };
        if !is_cumulative(&e.value) {
            return;
        }
        let (x, y) = (point_parts(e), point_parts(a));
        let same = if x.start == 0 || y.start == 0 {
            x.start == y.start
        } else {
            let first = *self.first.entry((series, expected.origin.pass, x.start)).or_insert(y.start);
            y.start == first || (first > y.time && y.start == y.time)
        };
        if !same {
            out.push(field("startTime", Text::Number(x.start.into()), Text::Number(y.start.into())));
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

    use super::is_cumulative;
    use crate::diff::Differ;
    use crate::match_samples::{compare, config, items, records, report, shift_all};
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
        let (differ, mut changes) = (Differ { ignore: &[], series_starts: false }, Vec::new());
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

    fn start_mut(value: &mut PointValue) -> &mut u64 {
        match value {
            PointValue::Gauge(point) | PointValue::Sum { point, .. } => &mut point.start_time_unix_nano,
            PointValue::Histogram { point, .. } => &mut point.start_time_unix_nano,
            PointValue::ExponentialHistogram { point, .. } => &mut point.start_time_unix_nano,
            PointValue::Summary(point) => &mut point.start_time_unix_nano,
        }
    }

    #[test]
    fn a_cumulative_series_keeps_its_first_start_time_through_a_shifting_replay() {
        const HOUR: i64 = 3_600_000_000_000;
        let requests = vec![sample::metrics("checkout", 0).into(), sample::metrics("checkout", 60_000_000_000).into()];
        let expected = records(0, requests);
        let mut actual = expected.clone();
        let (first, second) = actual.split_at_mut(7);
        shift_all(first, HOUR);
        shift_all(second, HOUR + 5_000_000);
        let series_start = sample::BASE_TIME_UNIX_NANO + HOUR.cast_unsigned();
        for item in second.iter_mut() {
            let ItemBody::Point(point) = &mut item.body else { unreachable!() };
            if is_cumulative(&point.value) {
                *start_mut(&mut point.value) = series_start;
            }
        }
        let mut options = config();
        options.replay_report = Some(report("relative", 1, [0, 14, 0]));
        let comparison = compare(expected.clone(), actual.clone(), &options);
        assert_eq!(comparison.total.identical, 14, "{:?}", comparison.differences);

        // A start time of its own for one point of the second record.
        let ItemBody::Point(point) = &mut actual[9].body else { unreachable!() };
        assert!(is_cumulative(&point.value));
        *start_mut(&mut point.value) += 5_000_000;
        let comparison = compare(expected, actual, &options);
        assert_eq!((comparison.total.identical, comparison.total.changed), (13, 1));
        assert_eq!(comparison.field_changes[0].field, "startTime");
    }

    #[test]
    fn a_point_lost_from_a_shifted_series_is_missing_and_the_next_ones_pair_by_their_records_shift() {
        const HOUR: i64 = 3_600_000_000_000;
        let requests = (0..3).map(|n| sample::metrics("checkout", n * 60_000_000_000).into()).collect();
        let expected = records(0, requests);
        let mut actual = expected.clone();
        for (record, delta) in actual.chunks_mut(7).zip([HOUR, HOUR + 7_000_000, HOUR + 3_000_000]) {
            shift_all(record, delta);
        }
        let series_start = sample::BASE_TIME_UNIX_NANO + HOUR.cast_unsigned();
        for item in &mut actual[7..] {
            let ItemBody::Point(point) = &mut item.body else { unreachable!() };
            if is_cumulative(&point.value) {
                *start_mut(&mut point.value) = series_start;
            }
        }
        // The sum's point of the second record is lost.
        let ItemBody::Point(point) = &actual[9].body else { unreachable!() };
        assert!(matches!(point.value, PointValue::Sum { .. }));
        actual.remove(9);
        let mut options = config();
        options.replay_report = Some(report("relative", 1, [0, 21, 0]));
        let comparison = compare(expected, actual, &options);
        let total = comparison.total;
        assert_eq!((total.identical, total.changed, total.missing, total.unexpected), (20, 0, 1, 0));
        let missing = &comparison.differences[0];
        assert_eq!((missing.kind, missing.name.as_str()), ("missing", "http.server.requests"));
    }
}
