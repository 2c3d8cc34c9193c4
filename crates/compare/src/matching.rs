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
//! time and record. A delivered item left over whose key an expected item
//! had is a duplicate.

use std::sync::Arc;

use crate::diff::{Change, Differ, moved};
use crate::match_keys::{ContentKeys, FastMap, FastSet, Key, span_key};
use crate::tally::Tally;
use crate::{Item, ItemBody, TraceSummary};

/// An item to pair: its key, its place among the items of its key, and
/// its index on its side.
#[derive(Debug, Clone, Copy)]
struct Entry {
    key: Key,
    order: (u64, u64, u64),
    index: u32,
}

/// What a pairing left over: indexes of expected and delivered items.
#[derive(Debug, Default)]
struct Leftovers {
    expected: Vec<u32>,
    actual: Vec<u32>,
}

/// Matches `expected` with `actual` and adds the pairs, the missing and
/// the unexpected items to `tally`.
pub(crate) fn compare_partition(expected: &[Item], actual: &[Item], tally: &mut Tally) {
    let ignore = std::mem::take(&mut tally.ignore);
    for item in actual {
        tally.delivered(item);
    }
    let mut keys = ContentKeys::new(&ignore);
    let mut pairs = Vec::new();
    let mut left = Leftovers::default();
    let mut seen = vec![false; actual.len()];

    // Spans: one key, (trace id, span id).
    let (mut e, mut a) = (Vec::new(), Vec::new());
    for (index, item) in expected.iter().enumerate() {
        if let ItemBody::Span(span) = &item.body {
            let order = (item.origin.pass, item.origin.record, 0);
            e.push(Entry { key: (span_key(&span.trace_id, &span.span_id), 0), order, index: index as u32 });
        }
    }
    for (index, item) in actual.iter().enumerate() {
        if let ItemBody::Span(span) = &item.body {
            let order = (span.start_time_unix_nano, item.origin.record, 0);
            a.push(Entry { key: (span_key(&span.trace_id, &span.span_id), 0), order, index: index as u32 });
        }
    }
    pair_runs(&mut e, &mut a, &mut pairs, &mut left, &mut seen);
    tally.traces = add_traces(tally.traces, expected, actual, &e, &a, &pairs);

    // Log records and data points: exact keys, then loose ones.
    let (mut loose_e, mut loose_a) = (vec![([0; 24], 0); expected.len()], vec![([0; 24], 0); actual.len()]);
    let (mut e, mut a) = (Vec::new(), Vec::new());
    for (side, items, loose, expected_side) in
        [(&mut e, expected, &mut loose_e, true), (&mut a, actual, &mut loose_a, false)]
    {
        for (index, item) in items.iter().enumerate() {
            let Some((exact, looser)) = keys.keys(item) else { continue };
            loose[index] = looser;
            side.push(Entry { key: exact, order: order(item, expected_side), index: index as u32 });
        }
    }
    let mut first = Leftovers::default();
    pair_runs(&mut e, &mut a, &mut pairs, &mut first, &mut seen);
    let mut e: Vec<Entry> = first
        .expected
        .iter()
        .map(|&index| Entry { key: loose_e[index as usize], order: order(&expected[index as usize], true), index })
        .collect();
    let mut a: Vec<Entry> = first
        .actual
        .iter()
        .map(|&index| Entry { key: loose_a[index as usize], order: order(&actual[index as usize], false), index })
        .collect();
    pair_runs(&mut e, &mut a, &mut pairs, &mut left, &mut seen);

    let differ = Differ { ignore: &ignore };
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
        tally.pair(e, a, &changes);
    }
    for &index in &left.expected {
        tally.missing(&expected[index as usize]);
    }
    for &index in &left.actual {
        tally.unexpected(&actual[index as usize], seen[index as usize]);
    }
    tally.ignore = ignore;
}

/// Where a log record or data point sorts among those of its key:
/// expected ones by pass, time and record, delivered ones by time and
/// record.
fn order(item: &Item, expected: bool) -> (u64, u64, u64) {
    let time = crate::diff::primary_time(item);
    if expected { (item.origin.pass, time, item.origin.record) } else { (time, item.origin.record, 0) }
}

/// Pairs the entries of equal keys, each key's in order; the rest goes to
/// `left`. A delivered entry whose key an expected one had is marked in
/// `seen`.
fn pair_runs(
    expected: &mut [Entry],
    actual: &mut [Entry],
    pairs: &mut Vec<(u32, u32)>,
    left: &mut Leftovers,
    seen: &mut [bool],
) {
    expected.sort_unstable_by_key(|entry| (entry.key, entry.order, entry.index));
    actual.sort_unstable_by_key(|entry| (entry.key, entry.order, entry.index));
    let (mut i, mut j) = (0, 0);
    loop {
        let next = match (expected.get(i), actual.get(j)) {
            (None, None) => break,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some(x), Some(y)) => x.key.cmp(&y.key),
        };
        match next {
            std::cmp::Ordering::Less => {
                left.expected.push(expected[i].index);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                left.actual.push(actual[j].index);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                let key = expected[i].key;
                let i_end = i + expected[i..].iter().take_while(|entry| entry.key == key).count();
                let j_end = j + actual[j..].iter().take_while(|entry| entry.key == key).count();
                let both = (i_end - i).min(j_end - j);
                for (x, y) in expected[i..i + both].iter().zip(&actual[j..j + both]) {
                    pairs.push((x.index, y.index));
                }
                left.expected.extend(expected[i + both..i_end].iter().map(|entry| entry.index));
                for entry in &actual[j..j_end] {
                    seen[entry.index as usize] = true;
                }
                left.actual.extend(actual[j + both..j_end].iter().map(|entry| entry.index));
                (i, j) = (i_end, j_end);
            }
        }
    }
}

/// `traces` with this partition's: every expected trace (per pass) by
/// how many of its spans were delivered, and the delivered traces no
/// expected span has.
fn add_traces(
    mut traces: TraceSummary,
    expected: &[Item],
    actual: &[Item],
    expected_spans: &[Entry],
    actual_spans: &[Entry],
    pairs: &[(u32, u32)],
) -> TraceSummary {
    let mut spans: FastMap<(u64, [u8; 16]), (u32, u32)> = FastMap::default();
    for entry in expected_spans {
        let item = &expected[entry.index as usize];
        if let Some(trace) = item.trace_id() {
            spans.entry((item.origin.pass, trace)).or_default().0 += 1;
        }
    }
    for &(index, _) in pairs {
        let item = &expected[index as usize];
        if let Some(trace) = item.trace_id() {
            spans.entry((item.origin.pass, trace)).or_default().1 += 1;
        }
    }
    let known: FastSet<[u8; 16]> = spans.keys().map(|(_, trace)| *trace).collect();
    let unexpected: FastSet<[u8; 16]> = actual_spans
        .iter()
        .filter_map(|entry| actual[entry.index as usize].trace_id())
        .filter(|trace| !known.contains(trace))
        .collect();
    for &(expected, delivered) in spans.values() {
        traces.expected += 1;
        match delivered {
            0 => traces.dropped += 1,
            delivered if delivered >= expected => traces.complete += 1,
            _ => traces.incomplete += 1,
        }
    }
    traces.unexpected += unexpected.len() as u64;
    traces
}
