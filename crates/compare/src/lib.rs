//! Comparing two sessions item by item: what a telemetry pipeline
//! delivered (ACTUAL, typically a capture behind the pipeline) against what
//! was sent into it (EXPECTED, typically a seed session).
//!
//! Items are matched by identity, never by request, so a pipeline that
//! re-batches, splits or merges requests compares equal:
//!
//! - spans by trace and span id, after the replay's id remapping is
//!   undone (a [`ReplayFacts`] read from the replay's report names its id
//!   seed, passes and selection), with timestamps compared after the
//!   replay's shift (each expected record moves by one shift; durations
//!   and offsets inside a record exactly);
//! - log records by trace and span id where they have them, else by
//!   content (body, severity, attributes, resource) as a multiset;
//! - metric data points by resource, scope, metric name, point attributes
//!   and order (time) within the series.
//!
//! Both sides are partitioned (spans and logs by trace id, the rest by
//! series or content), on disk when they are larger than memory, and
//! compared partition by partition ([`CompareConfig`] → `validate()` →
//! [`ValidCompareConfig::run`] → [`Comparison`]). The comparison is the
//! evidence: both sessions' ids, content hashes and counts, a canonical
//! SHA-256 of each side's items, the options, the verdict and the
//! differences; [`Comparison::to_html`] renders it as a page.

mod canonical;
mod comparison;
mod config;
mod diff;
mod diff_examples;
mod diff_points;
mod diff_values;
mod error;
mod extract;
mod html;
mod item;
mod match_keys;
mod match_pairs;
#[cfg(test)]
mod match_samples;
mod match_verdict;
mod matching;
mod partition;
mod replay_facts;
mod run;
mod tally;

pub use comparison::{
    AttributeChange, ChangeKind, Comparison, Counts, Difference, FieldChange, Location, MAX_DIFFERENCES,
    ServiceComparison, ShiftSummary, SideSummary, SignalComparison, TraceSummary, Verdict,
};
pub use config::{CompareConfig, ValidCompareConfig};
pub use error::Error;
pub use item::{Item, ItemBody, Origin, Point, PointValue, Scope};
pub use replay_facts::{
    REPLAY_REPORT, ReplayCounts, ReplayFacts, ReplayOptionsFacts, ReplaySession, ReplaySignalCounts,
};
pub use run::CompareProgress;

/// Exit status of a comparison whose verdict is a pass.
pub const EXIT_PASSED: u8 = 0;
/// Exit status of a comparison that found differences beyond what the
/// options allow.
pub const EXIT_DIFFERENT: u8 = 1;
