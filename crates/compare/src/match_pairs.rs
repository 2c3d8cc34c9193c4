//! Pairing the items of one key: in order (expected ones by origin or by
//! pass, time and record, delivered ones by time and record), and, where
//! one side has more items of a key than the other (a lost or repeated
//! item), those whose delivered time is the expected time moved by its
//! record's shift first, so that one lost item does not shift every pair
//! after it.

use crate::diff::shifted;
use crate::match_keys::{FastMap, Key};
use crate::{Item, ItemBody, Origin};

/// An item to pair: its key, its place among the items of its key, its
/// time, its record, and its index on its side.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry {
    pub(crate) key: Key,
    pub(crate) order: (u64, u64, u64),
    /// The time the shift is read from.
    time: u64,
    origin: Origin,
    pub(crate) index: u32,
}

impl Entry {
    /// The entry of `item`, the `index`th of its side, with `key`.
    pub(crate) fn new(key: Key, item: &Item, index: usize, expected: bool) -> Self {
        let time = crate::diff::primary_time(item);
        let order = match (&item.body, expected) {
            (ItemBody::Span(_), true) => (item.origin.pass, item.origin.record, 0),
            (_, true) => (item.origin.pass, time, item.origin.record),
            (_, false) => (time, item.origin.record, 0),
        };
        Entry { key, order, time, origin: item.origin, index: index as u32 }
    }
}

/// What a pairing left over: indexes of expected and delivered items.
#[derive(Debug, Default)]
pub(crate) struct Leftovers {
    /// Expected items.
    pub(crate) expected: Vec<u32>,
    /// Delivered items.
    pub(crate) actual: Vec<u32>,
}

/// The pairs of one partition, and what pairing needs to know.
#[derive(Debug)]
pub(crate) struct Pairing<'t> {
    /// Pairs of indexes: expected, delivered.
    pub(crate) pairs: Vec<(u32, u32)>,
    /// Delivered items whose key an expected item had.
    pub(crate) seen: Vec<bool>,
    /// Whether nothing may move (timestamp mode `none`).
    fixed: bool,
    /// Shifts of records read from the pairs of keys with as many items
    /// on both sides.
    deltas: FastMap<Origin, i64>,
    /// Shifts of records fixed by earlier partitions.
    known: &'t FastMap<Origin, i64>,
}

impl<'t> Pairing<'t> {
    /// No pairs yet among `actual` delivered items; `fixed` when nothing
    /// may move, else records' shifts `known` already.
    pub(crate) fn new(actual: usize, fixed: bool, known: &'t FastMap<Origin, i64>) -> Self {
        Pairing { pairs: Vec::new(), seen: vec![false; actual], fixed, deltas: FastMap::default(), known }
    }

    /// Pairs the entries of equal keys; the rest goes to `left`. Keys with
    /// as many entries on both sides pair in order; the others after them,
    /// by time first (see the module's documentation).
    pub(crate) fn pair(&mut self, expected: &mut [Entry], actual: &mut [Entry], left: &mut Leftovers) {
        expected.sort_unstable_by_key(|entry| (entry.key, entry.order, entry.index));
        actual.sort_unstable_by_key(|entry| (entry.key, entry.order, entry.index));
        let mut uneven = Vec::new();
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
                    for entry in &actual[j..j_end] {
                        self.seen[entry.index as usize] = true;
                    }
                    if i_end - i == j_end - j {
                        for (x, y) in expected[i..i_end].iter().zip(&actual[j..j_end]) {
                            self.add(x, y);
                        }
                    } else {
                        uneven.push((i..i_end, j..j_end));
                    }
                    (i, j) = (i_end, j_end);
                }
            }
        }
        for (e, a) in uneven {
            self.pair_by_time(&mut expected[e], &mut actual[a], left);
        }
    }

    fn add(&mut self, expected: &Entry, actual: &Entry) {
        self.pairs.push((expected.index, actual.index));
        if !self.fixed && expected.time != 0 && actual.time != 0 && !self.known.contains_key(&expected.origin) {
            let delta = i128::from(actual.time) - i128::from(expected.time);
            if let Ok(delta) = i64::try_from(delta) {
                self.deltas.entry(expected.origin).or_insert(delta);
            }
        }
    }

    /// The time the delivered item of `entry` should have, when its
    /// record's shift is known.
    fn target(&self, entry: &Entry) -> Option<u64> {
        let delta =
            if self.fixed { 0 } else { *self.known.get(&entry.origin).or_else(|| self.deltas.get(&entry.origin))? };
        (entry.time != 0).then(|| shifted(entry.time, delta))
    }

    /// Pairs the entries of one key whose delivered time is the expected
    /// one moved by its record's shift, then the rest in order.
    fn pair_by_time(&mut self, expected: &mut [Entry], actual: &mut [Entry], left: &mut Leftovers) {
        let mut targets: Vec<(u64, Entry)> =
            expected.iter().map(|entry| (self.target(entry).unwrap_or(u64::MAX), *entry)).collect();
        targets.sort_unstable_by_key(|(target, entry)| (*target, entry.order, entry.index));
        actual.sort_unstable_by_key(|entry| (entry.time, entry.order, entry.index));
        let (mut rest_e, mut rest_a) = (Vec::new(), Vec::new());
        let (mut i, mut j) = (0, 0);
        while i < targets.len() && j < actual.len() {
            let (target, entry) = targets[i];
            match target.cmp(&actual[j].time) {
                std::cmp::Ordering::Equal if target != u64::MAX => {
                    self.pairs.push((entry.index, actual[j].index));
                    (i, j) = (i + 1, j + 1);
                }
                std::cmp::Ordering::Less | std::cmp::Ordering::Equal => {
                    rest_e.push(entry);
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    rest_a.push(actual[j]);
                    j += 1;
                }
            }
        }
        rest_e.extend(targets[i..].iter().map(|(_, entry)| *entry));
        rest_a.extend_from_slice(&actual[j..]);
        rest_e.sort_unstable_by_key(|entry| (entry.order, entry.index));
        rest_a.sort_unstable_by_key(|entry| (entry.order, entry.index));
        let both = rest_e.len().min(rest_a.len());
        self.pairs.extend(rest_e[..both].iter().zip(&rest_a[..both]).map(|(x, y)| (x.index, y.index)));
        left.expected.extend(rest_e[both..].iter().map(|entry| entry.index));
        left.actual.extend(rest_a[both..].iter().map(|entry| entry.index));
    }
}
