//! Pairing the items of one partition: spans by (trace id, span id); log
//! records by (trace id, span id) and then by content where they have ids,
//! else by content as a multiset; data points by series (resource, scope,
//! metric name, point attributes) and order in time. Exact keys first,
//! then looser ones (by service instead of the whole resource) for what is
//! left, so that an added resource attribute shows as a change rather than
//! as missing and unexpected items.
//!
//! Items with one key pair in order: expected ones by origin (spans) or by
//! pass, time and record (log records, data points), delivered ones by
//! time and record; a key with more items on one side pairs by time first
//! ([`match_pairs`](crate::match_pairs)). A delivered item left over whose
//! key an expected item had is a duplicate.

use std::sync::Arc;

use crate::diff::{Change, Differ, moved};
use crate::diff_points::{SeriesStarts, is_cumulative};
use crate::match_keys::{ContentKeys, FastMap, FastSet, Key, NO_IDS, span_key};
use crate::match_pairs::{Entry, Leftovers, Pairing};
use crate::tally::Tally;
use crate::{Item, ItemBody, TraceSummary};

/// Matches `expected` with `actual` and adds the pairs, the missing and
/// the unexpected items to `tally`.
pub(crate) fn compare_partition(expected: &[Item], actual: &[Item], tally: &mut Tally) {
    let ignore = std::mem::take(&mut tally.ignore);
    for item in actual {
        tally.delivered(item);
    }
    let mut keys = ContentKeys::new(&ignore);
    let mut left = Leftovers::default();
    let mut pairing = Pairing::new(actual.len(), tally.fixed_shift(), tally.shifts());

    // Spans: one key, (trace id, span id).
    let (mut e, mut a) = (Vec::new(), Vec::new());
    for (index, item) in expected.iter().enumerate() {
        if let ItemBody::Span(span) = &item.body {
            e.push(Entry::new((span_key(&span.trace_id, &span.span_id), 0), item, index, true));
        }
    }
    for (index, item) in actual.iter().enumerate() {
        if let ItemBody::Span(span) = &item.body {
            a.push(Entry::new((span_key(&span.trace_id, &span.span_id), 0), item, index, false));
        }
    }
    pairing.pair(&mut e, &mut a, &mut left);
    let traces = count_traces(expected.len(), &e, &a, &pairing.pairs);

    // Log records and data points: exact keys, then loose ones.
    let (mut loose_e, mut loose_a) = (vec![(NO_IDS, 0); expected.len()], vec![(NO_IDS, 0); actual.len()]);
    let (mut e, mut a) = (Vec::new(), Vec::new());
    for (side, items, loose, expected_side) in
        [(&mut e, expected, &mut loose_e, true), (&mut a, actual, &mut loose_a, false)]
    {
        for (index, item) in items.iter().enumerate() {
            let Some((exact, looser)) = keys.keys(item) else { continue };
            loose[index] = looser;
            side.push(Entry::new(exact, item, index, expected_side));
        }
    }
    let mut first = Leftovers::default();
    pairing.pair(&mut e, &mut a, &mut first);
    let mut e: Vec<Entry> = (first.expected.iter())
        .map(|&index| Entry::new(loose_e[index as usize], &expected[index as usize], index as usize, true))
        .collect();
    let mut a: Vec<Entry> = (first.actual.iter())
        .map(|&index| Entry::new(loose_a[index as usize], &actual[index as usize], index as usize, false))
        .collect();
    let leftovers = left.actual.len();
    pairing.pair(&mut e, &mut a, &mut left);
    // A delivered item left over whose loose key an expected item had
    // (matched by its exact key) is a duplicate too.
    let Pairing { mut pairs, mut seen, .. } = pairing;
    if left.actual.len() > leftovers {
        let known: FastSet<Key> = (expected.iter().zip(&loose_e))
            .filter(|(item, _)| !matches!(item.body, ItemBody::Span(_)))
            .map(|(_, key)| *key)
            .collect();
        for &index in &left.actual[leftovers..] {
            seen[index as usize] |= known.contains(&loose_a[index as usize]);
        }
    }

    // The pairs in the order of the expected items: their records in
    // order (the first matched item of a record fixes its shift, and the
    // first point of a series its start), and memory read in order.
    pairs.sort_unstable();
    tally.traces = add(tally.traces, traces);
    let differ = Differ { ignore: &ignore, series_starts: !tally.fixed_shift() };
    let mut starts = SeriesStarts::default();
    let mut scope_changes: FastMap<(usize, usize), (usize, usize)> = FastMap::default();
    let mut arena: Vec<Change<'_>> = Vec::new();
    let mut changes: Vec<Change<'_>> = Vec::new();
    for &(e, a) in &pairs {
        let (e, a) = (&expected[e as usize], &actual[a as usize]);
        changes.clear();
        if !Arc::ptr_eq(&e.scope, &a.scope) {
            let key = (Arc::as_ptr(&e.scope) as usize, Arc::as_ptr(&a.scope) as usize);
            let (start, end) = *scope_changes.entry(key).or_insert_with(|| {
                let start = arena.len();
                differ.scopes(&e.scope, &a.scope, &mut arena);
                (start, arena.len())
            });
            changes.extend_from_slice(&arena[start..end]);
        }
        let delta = tally.shift(e.origin, moved(e, a), &mut changes);
        differ.bodies(e, a, delta, &mut changes);
        if differ.series_starts
            && matches!(&e.body, ItemBody::Point(point) if is_cumulative(&point.value))
            && let Some(((_, series), _)) = keys.keys(e)
        {
            starts.check(series, e, a, &mut changes);
        }
        tally.pair(e, a, &changes);
    }
    left.expected.sort_unstable();
    for &index in &left.expected {
        tally.missing(&expected[index as usize]);
    }
    left.actual.sort_unstable();
    for &index in &left.actual {
        tally.unexpected(&actual[index as usize], seen[index as usize]);
    }
    tally.end_partition();
    tally.ignore = ignore;
}

/// This partition's traces: every expected trace (per pass) by
/// how many of its spans were delivered, and the delivered traces no
/// expected span has. `expected_spans` and `actual_spans` are sorted by
/// key (trace id first); `pairs` are the spans' pairs.
fn count_traces(
    expected_items: usize,
    expected_spans: &[Entry],
    actual_spans: &[Entry],
    pairs: &[(u32, u32)],
) -> TraceSummary {
    let mut traces = TraceSummary::default();
    let mut delivered = vec![false; expected_items];
    for &(index, _) in pairs {
        delivered[index as usize] = true;
    }
    let trace = |entry: &Entry| entry.key.0.0;
    // Per pass of one trace: spans expected and delivered.
    let mut passes: Vec<(u64, u32, u32)> = Vec::new();
    for run in expected_spans.chunk_by(|x, y| trace(x) == trace(y)) {
        if trace(&run[0]) == 0 {
            continue;
        }
        passes.clear();
        for entry in run {
            let pass = entry.order.0;
            let at = passes.iter().position(|(known, ..)| *known == pass).unwrap_or_else(|| {
                passes.push((pass, 0, 0));
                passes.len() - 1
            });
            passes[at].1 += 1;
            passes[at].2 += u32::from(delivered[entry.index as usize]);
        }
        for &(_, expected, delivered) in &passes {
            traces.expected += 1;
            match delivered {
                0 => traces.dropped += 1,
                delivered if delivered >= expected => traces.complete += 1,
                _ => traces.incomplete += 1,
            }
        }
    }
    let mut known = expected_spans.iter().map(trace).peekable();
    for run in actual_spans.chunk_by(|x, y| trace(x) == trace(y)) {
        let id = trace(&run[0]);
        while known.next_if(|&expected| expected < id).is_some() {}
        if id != 0 && known.peek() != Some(&id) {
            traces.unexpected += 1;
        }
    }
    traces
}

/// The sum of two trace summaries.
fn add(a: TraceSummary, b: TraceSummary) -> TraceSummary {
    TraceSummary {
        expected: a.expected + b.expected,
        complete: a.complete + b.complete,
        incomplete: a.incomplete + b.incomplete,
        dropped: a.dropped + b.dropped,
        unexpected: a.unexpected + b.unexpected,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tape_otlp::sample::{self, string_attribute};
    use tape_otlp::{ExportRequest, Signal};

    use crate::match_samples::{compare, config, records, report};
    use crate::{ChangeKind, Item, ItemBody, Location, Scope};

    fn with_resource_attribute(item: &mut Item, key: &str, value: &str) {
        let mut scope = Scope::clone(&item.scope);
        scope.resource.attributes.push(string_attribute(key, value));
        item.scope = Arc::new(scope);
    }

    fn span_mut(item: &mut Item) -> &mut opentelemetry_proto::tonic::trace::v1::Span {
        match &mut item.body {
            ItemBody::Span(span) => span,
            _ => panic!("not a span"),
        }
    }

    #[test]
    fn the_same_items_batched_and_ordered_otherwise_are_identical() {
        let expected = records(
            0,
            vec![
                sample::traces("checkout", 16, 0).into(),
                sample::logs("checkout", 10, 0).into(),
                sample::metrics("checkout", 0).into(),
                sample::logs("cart", 5, 7).into(),
            ],
        );
        let mut actual = expected.clone();
        actual.reverse();
        for (n, item) in actual.iter_mut().enumerate() {
            // Every item in a request of its own, as another batching would.
            item.scope = Arc::new(Scope::clone(&item.scope));
            item.origin.record = n as u64;
        }
        let comparison = compare(expected.clone(), actual, &config());
        let total = comparison.total;
        assert_eq!(
            (total.expected, total.delivered, total.identical),
            (expected.len() as u64, total.expected, total.expected)
        );
        assert_eq!((total.changed, total.missing, total.unexpected), (0, 0, 0));
        assert!(comparison.verdict.passed, "{:?}", comparison.verdict);
        assert_eq!((comparison.traces.expected, comparison.traces.complete), (2, 2));
        let shift = comparison.shift.unwrap();
        assert_eq!((shift.mode, shift.min_nanos, shift.max_nanos, shift.inconsistent_items), ("none", 0, 0, 0));
        let logs = comparison.signal(Signal::Logs).unwrap();
        let services: Vec<(&str, u64)> =
            logs.services.iter().map(|service| (service.service.as_str(), service.counts.identical)).collect();
        assert_eq!(services, [("cart", 5), ("checkout", 10)]);
        assert!(comparison.differences.is_empty() && comparison.attribute_changes.is_empty());
    }

    #[test]
    fn dropped_spans_traces_and_attributes_are_counted_by_key() {
        // Ten traces of eight spans.
        let expected = records(0, vec![sample::traces("checkout", 80, 0).into()]);
        let first_trace = expected[0].trace_id();
        let second_trace = expected[8].trace_id();
        let mut actual: Vec<Item> = expected.iter().filter(|item| item.trace_id() != first_trace).cloned().collect();
        actual
            .retain(|item| !(item.trace_id() == second_trace && span_mut(&mut item.clone()).parent_span_id.is_empty()));
        for item in &mut actual {
            with_resource_attribute(item, "k8s.pod.name", "checkout-1");
            span_mut(item).attributes.retain(|attribute| attribute.key != "server.address");
        }
        let comparison = compare(expected, actual, &config());
        let spans = comparison.signal(Signal::Traces).unwrap().counts;
        assert_eq!(
            (spans.expected, spans.delivered, spans.missing, spans.changed, spans.identical),
            (80, 71, 9, 71, 0)
        );
        let traces = comparison.traces;
        assert_eq!(
            (traces.expected, traces.complete, traces.incomplete, traces.dropped, traces.unexpected),
            (10, 8, 1, 1, 0)
        );
        let changes: Vec<(Location, &str, ChangeKind, u64)> = comparison
            .attribute_changes
            .iter()
            .map(|change| (change.location, change.key.as_str(), change.change, change.items))
            .collect();
        assert_eq!(
            changes,
            [
                (Location::Resource, "k8s.pod.name", ChangeKind::Added, 71),
                (Location::Span, "server.address", ChangeKind::Removed, 71)
            ]
        );
        assert!(!comparison.verdict.passed);
        assert_eq!(
            comparison.verdict.reasons[0],
            "9 of 80 expected spans are missing (11.25 %; --max-missing allows 0 %)"
        );
    }

    #[test]
    fn a_span_sent_every_pass_pairs_in_order_and_an_extra_copy_is_a_duplicate() {
        let request: ExportRequest = sample::traces("checkout", 8, 0).into();
        let mut expected = records(0, vec![request.clone()]);
        expected.extend(records(1, vec![request.clone()]));
        let mut second = request.clone();
        second.shift_timestamps(1_000_000_000);
        let mut actual = records(0, vec![request.clone(), second]);
        actual.push(actual[11].clone());

        let mut looped = config();
        looped.replay_report = Some(report("relative", 2, [16, 0, 0]));
        let comparison = compare(expected.clone(), actual.clone(), &looped);
        let spans = comparison.signal(Signal::Traces).unwrap().counts;
        assert_eq!((spans.expected, spans.identical, spans.unexpected, spans.duplicates), (16, 16, 1, 1));
        let shift = comparison.shift.unwrap();
        assert_eq!((shift.mode, shift.min_nanos, shift.max_nanos, shift.records), ("relative", 0, 1_000_000_000, 2));
        assert_eq!((comparison.traces.expected, comparison.traces.complete), (2, 2));
        let duplicate = comparison.differences.iter().find(|difference| difference.kind == "duplicate").unwrap();
        assert_eq!(duplicate.span_id.as_deref(), Some(hex::encode(sample::span_id(3)).as_str()));

        // Without the replay report, the second pass's shift is a change.
        let comparison = compare(expected, actual, &config());
        let spans = comparison.signal(Signal::Traces).unwrap().counts;
        assert_eq!((spans.identical, spans.changed, spans.duplicates), (8, 8, 1));
        let timestamps = comparison.field_changes.iter().find(|change| change.field == "timestamps").unwrap();
        assert_eq!(timestamps.items, 8);
        assert_eq!(
            comparison.verdict.reasons,
            [
                "1 unexpected span was delivered (an extra copy of an expected one)",
                "8 of 16 expected spans were delivered changed (timestamps changed on 8)"
            ]
        );
    }

    #[test]
    fn log_records_without_ids_pair_by_content_and_then_by_service_and_body() {
        let mut expected =
            records(0, vec![sample::logs("checkout", 6, 0).into(), sample::logs("checkout", 6, 0).into()]);
        for item in &mut expected {
            if let ItemBody::Log(record) = &mut item.body {
                (record.trace_id, record.span_id) = (Vec::new(), Vec::new());
            }
        }
        let mut actual = expected.clone();
        actual.reverse();
        for item in &mut actual[..4] {
            with_resource_attribute(item, "host.name", "node-1");
        }
        if let ItemBody::Log(record) = &mut actual[5].body {
            record.body = Some(opentelemetry_proto::tonic::common::v1::AnyValue {
                value: Some(opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue("other".to_owned())),
            });
        }
        actual.push(actual[8].clone());
        let comparison = compare(expected, actual, &config());
        let logs = comparison.signal(Signal::Logs).unwrap().counts;
        // Log 3 twice as expected pairs with its copies without host.name;
        // its third copy is the duplicate, and the other body is missing.
        assert_eq!((logs.expected, logs.identical, logs.changed, logs.missing), (12, 8, 3, 1));
        assert_eq!((logs.delivered, logs.unexpected, logs.duplicates), (13, 2, 1));
        assert_eq!(comparison.attribute_changes[0].key, "host.name");
        assert_eq!(comparison.attribute_changes[0].items, 3);
    }

    #[test]
    fn data_points_pair_within_their_series_by_time() {
        let expected =
            records(0, vec![sample::metrics("checkout", 0).into(), sample::metrics("checkout", 60_000_000_000).into()]);
        let per_request = expected.len() / 2;
        let mut actual = expected.clone();
        actual.reverse();
        for item in &mut actual {
            with_resource_attribute(item, "cloud.region", "eu-west-1");
        }
        // The first point of the first request is lost.
        let lost = actual.len() - 1;
        actual.remove(lost);
        let comparison = compare(expected, actual, &config());
        let points = comparison.signal(Signal::Metrics).unwrap().counts;
        assert_eq!(
            (points.expected, points.changed, points.missing, points.unexpected),
            (2 * per_request as u64, 2 * per_request as u64 - 1, 1, 0)
        );
        let change = &comparison.attribute_changes[0];
        assert_eq!(
            (change.location, change.key.as_str(), change.items),
            (Location::Resource, "cloud.region", points.changed)
        );
        assert!(comparison.field_changes.is_empty(), "{:?}", comparison.field_changes);
    }
}
