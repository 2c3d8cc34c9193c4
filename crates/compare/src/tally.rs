//! What the partitions' matches add up to: the counts per signal and
//! service, the attribute and field changes, the traces, the shift, the
//! examples, and at the end the verdict.

use crate::{CompareConfig, Comparison, Item, SideSummary};

/// The running totals of a comparison.
#[derive(Debug)]
pub(crate) struct Tally {}

impl Tally {
    /// Empty totals for a comparison with `config`'s options.
    pub(crate) fn new(config: &CompareConfig) -> Self {
        let _ = config;
        Tally {}
    }

    /// Matches the items of one partition (every item either side may pair
    /// with another is in the same partition: see
    /// [`partition_of`](crate::partition::partition_of)) and adds the
    /// outcome.
    pub(crate) fn partition(&mut self, expected: Vec<Item>, actual: Vec<Item>) {
        crate::matching::compare_partition(expected, actual, self);
    }

    /// The comparison: these totals with both sides' summaries, and the
    /// verdict by `config`'s limits.
    pub(crate) fn finish(self, expected: SideSummary, actual: SideSummary, config: &CompareConfig) -> Comparison {
        let _ = (expected, actual, config);
        todo!("the totals")
    }
}
