//! Pairing the items of one partition: spans by (trace id, span id); log
//! records by (trace id, span id) and then by content where they have ids,
//! else by content as a multiset; data points by series (resource, scope,
//! metric name, point attributes) and order in time. Exact keys first,
//! then looser ones (by service instead of the whole resource) for what is
//! left, so that an added resource attribute shows as a change rather than
//! as missing and unexpected items.

use crate::Item;
use crate::tally::Tally;

/// Matches `expected` with `actual` and adds the pairs, the missing and
/// the unexpected items to `tally`.
pub(crate) fn compare_partition(expected: Vec<Item>, actual: Vec<Item>, tally: &mut Tally) {
    let _ = (expected, actual, tally);
    todo!("matching")
}
