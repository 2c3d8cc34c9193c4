//! The outcome of a comparison: counts per signal and service, the
//! differences grouped, the verdict, and what an auditor needs to know
//! what was compared. Serialized, it is the evidence artifact
//! (`--report FILE.json`) and the control API's answer.

use serde::Serialize;
use tape_otlp::Signal;
use tape_session::{SessionId, SignalCounts};

use crate::CompareConfig;

/// A comparison of two sessions.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Comparison {
    /// `otlp-tape`.
    pub tool: String,
    /// The version of the tool that compared.
    pub tool_version: String,
    /// When the comparison ended (RFC 3339).
    pub compared_at: String,
    /// What was sent.
    pub expected: SideSummary,
    /// What was delivered.
    pub actual: SideSummary,
    /// The options, the replay report's facts among them.
    pub options: CompareConfig,
    /// The timestamp shift found between matched items, when any item was
    /// matched.
    pub shift: Option<ShiftSummary>,
    /// Counts over every compared signal.
    pub total: Counts,
    /// Counts per signal, each with its services.
    pub signals: Vec<SignalComparison>,
    /// Attributes added, removed or changed, by signal, location and key,
    /// most items first.
    pub attribute_changes: Vec<AttributeChange>,
    /// Other fields changed (span names, status codes, durations,
    /// timestamps, bodies, values ...), by signal, field and change, most
    /// items first.
    pub field_changes: Vec<FieldChange>,
    /// Whole traces: complete, incomplete, dropped.
    pub traces: TraceSummary,
    /// The first differences, item by item (at most
    /// [`MAX_DIFFERENCES`]), as examples.
    pub differences: Vec<Difference>,
    /// Whether ACTUAL holds what EXPECTED says it should, and why not.
    pub verdict: Verdict,
}

/// The most item-by-item differences a comparison lists.
pub const MAX_DIFFERENCES: usize = 100;

/// One side of a comparison.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SideSummary {
    /// The session.
    pub session_id: SessionId,
    /// The session's content hash (`metadata.json`).
    pub content_hash: String,
    /// Records (requests) read.
    pub records: u64,
    /// Items compared per signal (on the expected side: every pass of the
    /// replay, after its selection).
    pub items: SignalCounts,
    /// SHA-256 of the side's items, independent of how they were batched
    /// into requests and of their order (README, "Comparing sessions",
    /// says how it is computed); lower-case hex.
    pub canonical_sha256: String,
}

/// How many items of a kind ended how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    /// Items EXPECTED says should arrive.
    pub expected: u64,
    /// Items ACTUAL holds.
    pub delivered: u64,
    /// Expected items delivered exactly (modulo the shift, the remapping
    /// and the ignored attributes).
    pub identical: u64,
    /// Expected items delivered with differences.
    pub changed: u64,
    /// Changed items whose every difference is in an attribute allowed to
    /// change.
    pub changed_allowed: u64,
    /// Expected items not delivered.
    pub missing: u64,
    /// Expected items of a replay's last pass that the replay did not
    /// send (it ended early), when the report's counts account for them.
    pub unsent: u64,
    /// Delivered items that match no expected item, duplicates included.
    pub unexpected: u64,
    /// Of the unexpected items, the extra copies of an expected item.
    pub duplicates: u64,
}

/// The counts of one signal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignalComparison {
    /// The signal.
    pub signal: Signal,
    /// Its counts.
    pub counts: Counts,
    /// Its counts per service (`service.name`), by name.
    pub services: Vec<ServiceComparison>,
}

/// The counts of one service of a signal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceComparison {
    /// The service (`unknown_service` for a resource without one).
    pub service: String,
    /// Its counts.
    pub counts: Counts,
}

/// Where an attribute is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Location {
    /// The resource's.
    Resource,
    /// The instrumentation scope's.
    Scope,
    /// The span's own.
    Span,
    /// A span event's.
    Event,
    /// A span link's.
    Link,
    /// The log record's own.
    Log,
    /// The data point's own.
    Point,
}

/// What happened to an attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ChangeKind {
    /// Delivered without being expected.
    Added,
    /// Expected and not delivered.
    Removed,
    /// Delivered with another value.
    Changed,
}

/// An attribute key added, removed or changed on some items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AttributeChange {
    /// The items' signal.
    pub signal: Signal,
    /// Where the attribute is.
    pub location: Location,
    /// The key.
    pub key: String,
    /// What happened to it.
    pub change: ChangeKind,
    /// On how many items.
    pub items: u64,
    /// Whether the key may change (`allowChanges`).
    pub allowed: bool,
}

/// A field other than attributes changed on some items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldChange {
    /// The items' signal.
    pub signal: Signal,
    /// The field: `name`, `kind`, `status`, `duration`, `timestamps`,
    /// `parentSpanId`, `traceState`, `flags`, `events`, `links`, `body`,
    /// `severity`, `value`, `metric`, `resource`, `scope` ...
    pub field: String,
    /// The expected value, for changes counted by value (span names,
    /// status codes, severities); else none.
    pub from: Option<String>,
    /// The delivered value, likewise.
    pub to: Option<String>,
    /// On how many items.
    pub items: u64,
}

/// Whole traces of EXPECTED (every pass's own), by what arrived of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceSummary {
    /// Traces expected.
    pub expected: u64,
    /// Traces every span of which was delivered (identical or changed).
    pub complete: u64,
    /// Traces some but not all spans of which were delivered (as tail
    /// sampling or a lossy pipeline leaves them).
    pub incomplete: u64,
    /// Traces no span of which was delivered.
    pub dropped: u64,
    /// Traces delivered that match no expected trace.
    pub unexpected: u64,
}

/// The timestamp shift between matched items: delivered minus expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ShiftSummary {
    /// The replay's timestamp mode (`none`, `relative`, `current`), or
    /// `none` without a replay report: the shift allowed.
    pub mode: &'static str,
    /// The smallest shift, in nanoseconds.
    pub min_nanos: i64,
    /// The largest shift, in nanoseconds.
    pub max_nanos: i64,
    /// Expected records (per pass) with matched items.
    pub records: u64,
    /// Matched items whose shift is not their record's (counted as
    /// changed `timestamps`).
    pub inconsistent_items: u64,
}

/// One item's difference, as an example.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Difference {
    /// The item's signal.
    pub signal: Signal,
    /// `missing`, `unexpected`, `duplicate` or `changed`.
    pub kind: &'static str,
    /// The item's service.
    pub service: String,
    /// The span's name, the log record's body (shortened), or the
    /// metric's name.
    pub name: String,
    /// The trace id (as delivered, or as the replay sent it), hex.
    pub trace_id: Option<String>,
    /// The span id, hex.
    pub span_id: Option<String>,
    /// The replay pass of the expected item.
    pub pass: Option<u64>,
    /// What differs, one line each (`span attribute http.route removed`,
    /// `name "GET" -> "GET /api"`).
    pub details: Vec<String>,
}

/// Whether the comparison passes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    /// True when ACTUAL holds exactly EXPECTED (modulo the known shift,
    /// the remapping and the ignored keys), or within `maxMissing` and
    /// `allowChanges`.
    pub passed: bool,
    /// Why it failed, a sentence each; empty when it passed.
    pub reasons: Vec<String>,
}

impl Location {
    /// How text names it: `resource`, `span`, `log record`, `data point` ...
    pub fn noun(self) -> &'static str {
        match self {
            Location::Resource => "resource",
            Location::Scope => "scope",
            Location::Span => "span",
            Location::Event => "event",
            Location::Link => "link",
            Location::Log => "log record",
            Location::Point => "data point",
        }
    }
}

impl ChangeKind {
    /// How text names it: `added`, `removed`, `changed`.
    pub fn word(self) -> &'static str {
        match self {
            ChangeKind::Added => "added",
            ChangeKind::Removed => "removed",
            ChangeKind::Changed => "changed",
        }
    }
}

impl Comparison {
    /// The process exit status the verdict gives: [`crate::EXIT_PASSED`]
    /// or [`crate::EXIT_DIFFERENT`].
    pub fn exit_code(&self) -> u8 {
        if self.verdict.passed { crate::EXIT_PASSED } else { crate::EXIT_DIFFERENT }
    }

    /// The counts of `signal`, when it was compared.
    pub fn signal(&self, signal: Signal) -> Option<&SignalComparison> {
        self.signals.iter().find(|compared| compared.signal == signal)
    }
}
