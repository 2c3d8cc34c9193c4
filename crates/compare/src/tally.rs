//! What the partitions' matches add up to: the counts per signal and
//! service, the attribute and field changes, the traces, the shift, the
//! examples, and at the end the verdict.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tape_otlp::Signal;
use tape_session::Timestamp;

use crate::diff::{Change, Moved, Text};
use crate::diff_examples::{Examples, Kind};
use crate::match_keys::FastMap;
use crate::{
    AttributeChange, ChangeKind, CompareConfig, Comparison, Counts, FieldChange, Item, Location, Origin, Scope,
    ServiceComparison, ShiftSummary, SideSummary, SignalComparison, TraceSummary,
};

/// The running totals of a comparison.
#[derive(Debug)]
pub(crate) struct Tally {
    /// Attribute keys left out everywhere.
    pub(crate) ignore: Vec<String>,
    allow: Vec<String>,
    /// The replay's timestamp mode: `none`, `relative` or `current`.
    mode: &'static str,
    signals: [SignalTally; 3],
    attributes: FastMap<(Signal, Location, ChangeKind), FastMap<String, u64>>,
    fields: FastMap<(Signal, &'static str), FieldTally>,
    pub(crate) traces: TraceSummary,
    /// Counts of one signal and resource not yet added to the totals
    /// (items next to each other mostly share theirs); the `Arc` held
    /// keeps the pointer compared unique.
    pending: Option<(Signal, Arc<Scope>, Counts)>,
    shifts: FastMap<Origin, i64>,
    shift_range: Option<(i64, i64)>,
    matched: u64,
    inconsistent: u64,
    examples: Examples,
}

#[derive(Debug, Default)]
struct SignalTally {
    counts: Counts,
    services: FastMap<String, Counts>,
}

impl SignalTally {
    fn add(&mut self, service: &str, counts: &Counts) {
        add_counts(&mut self.counts, counts);
        match self.services.get_mut(service) {
            Some(total) => add_counts(total, counts),
            None => {
                self.services.insert(service.to_owned(), *counts);
            }
        }
    }
}

/// Changes of one field: without values, and by value (from → to).
#[derive(Debug, Default)]
struct FieldTally {
    unvalued: u64,
    valued: FastMap<String, FastMap<String, u64>>,
}

impl Tally {
    /// Empty totals for a comparison with `config`'s options.
    pub(crate) fn new(config: &CompareConfig) -> Self {
        let mode = match config.replay_report.as_ref().map(|report| report.options.timestamps.as_str()) {
            Some("relative") => "relative",
            Some("current") => "current",
            _ => "none",
        };
        Tally {
            ignore: config.ignore_attributes.clone(),
            allow: config.allow_changes.clone(),
            mode,
            signals: Default::default(),
            attributes: FastMap::default(),
            fields: FastMap::default(),
            traces: TraceSummary::default(),
            pending: None,
            shifts: FastMap::default(),
            shift_range: None,
            matched: 0,
            inconsistent: 0,
            examples: Examples::default(),
        }
    }

    /// Matches the items of one partition (every item either side may pair
    /// with another is in the same partition: see
    /// [`partition_of`](crate::partition::partition_of)) and adds the
    /// outcome.
    #[allow(clippy::needless_pass_by_value)] // The partition's items end here, with their matching.
    pub(crate) fn partition(&mut self, expected: Vec<Item>, actual: Vec<Item>) {
        crate::matching::compare_partition(&expected, &actual, self);
    }

    /// Whether delivered items must not have moved (timestamp mode
    /// `none`, or no replay report).
    pub(crate) fn fixed_shift(&self) -> bool {
        self.mode == "none"
    }

    /// The counts of `signal`'s items of `scope`.
    fn counts(&mut self, signal: Signal, scope: &Arc<Scope>) -> &mut Counts {
        let same =
            matches!(&self.pending, Some((known, pending, _)) if *known == signal && Arc::ptr_eq(pending, scope));
        if !same {
            self.end_partition();
        }
        let pending = self.pending.get_or_insert_with(|| (signal, Arc::clone(scope), Counts::default()));
        &mut pending.2
    }

    /// Adds the pending counts to the totals.
    pub(crate) fn end_partition(&mut self) {
        if let Some((signal, scope, counts)) = self.pending.take() {
            self.signals[signal.index()].add(&scope.service, &counts);
        }
    }

    /// The shifts of the records matched so far.
    pub(crate) fn shifts(&self) -> &FastMap<Origin, i64> {
        &self.shifts
    }

    /// Counts a delivered item.
    pub(crate) fn delivered(&mut self, item: &Item) {
        self.counts(item.signal(), &item.scope).delivered += 1;
    }

    /// The delta the delivered item of a pair should have moved by, from
    /// how it `moved` and its expected record's shift (the first matched
    /// item of a record fixes it; `none` fixes 0); a wrong one is added to
    /// `changes`. Returns the delta the item's other timestamps move by.
    pub(crate) fn shift(&mut self, origin: Origin, moved: Moved, changes: &mut Vec<Change<'_>>) -> i64 {
        self.matched += 1;
        let fixed = self.mode == "none";
        match moved {
            Moved::By(delta) => {
                let (low, high) = self.shift_range.unwrap_or((delta, delta));
                self.shift_range = Some((low.min(delta), high.max(delta)));
                let allowed = *self.shifts.entry(origin).or_insert(if fixed { 0 } else { delta });
                if delta != allowed {
                    self.inconsistent += 1;
                    changes.push(Change::Field {
                        field: "timestamps",
                        by_value: false,
                        from: Text::Nanos(allowed.into()),
                        to: Text::Nanos(delta.into()),
                    });
                }
                delta
            }
            Moved::Lost => {
                self.inconsistent += 1;
                changes.push(Change::Field { field: "timestamps", by_value: false, from: Text::None, to: Text::None });
                self.shifts.get(&origin).copied().unwrap_or(0)
            }
            Moved::Unset => self.shifts.get(&origin).copied().unwrap_or(0),
        }
    }

    /// Counts a matched pair with its differences.
    pub(crate) fn pair(&mut self, expected: &Item, actual: &Item, changes: &[Change<'_>]) {
        let signal = expected.signal();
        let allowed = changes.iter().all(
            |change| matches!(change, Change::Attribute { key, .. } if self.allow.iter().any(|allow| allow == key)),
        );
        let counts = self.counts(signal, &expected.scope);
        counts.expected += 1;
        if changes.is_empty() {
            counts.identical += 1;
        } else {
            counts.changed += 1;
            counts.changed_allowed += u64::from(allowed);
        }
        if changes.is_empty() {
            return;
        }
        for (n, change) in changes.iter().enumerate() {
            if changes[..n].iter().any(|earlier| same_kind(earlier, change)) {
                continue;
            }
            match *change {
                Change::Attribute { location, key, kind, .. } => {
                    let keys = self.attributes.entry((signal, location, kind)).or_default();
                    match keys.get_mut(key) {
                        Some(items) => *items += 1,
                        None => {
                            keys.insert(key.to_owned(), 1);
                        }
                    }
                }
                Change::Field { field, by_value, from, to } => {
                    let tally = self.fields.entry((signal, field)).or_default();
                    if by_value {
                        *tally.valued.entry(from.counted()).or_default().entry(to.counted()).or_default() += 1;
                    } else {
                        tally.unvalued += 1;
                    }
                }
            }
        }
        self.examples.offer(Kind::Changed, expected, Some(actual), changes);
    }

    /// Counts an expected item that was not delivered.
    pub(crate) fn missing(&mut self, expected: &Item) {
        let counts = self.counts(expected.signal(), &expected.scope);
        counts.expected += 1;
        counts.missing += 1;
        self.examples.offer(Kind::Missing, expected, None, &[]);
    }

    /// Counts a delivered item that matches no expected one; a
    /// `duplicate` when an expected item with its key was matched.
    pub(crate) fn unexpected(&mut self, actual: &Item, duplicate: bool) {
        let counts = self.counts(actual.signal(), &actual.scope);
        counts.unexpected += 1;
        counts.duplicates += u64::from(duplicate);
        self.examples.offer(if duplicate { Kind::Duplicate } else { Kind::Unexpected }, actual, None, &[]);
    }

    /// The comparison: these totals with both sides' summaries, and the
    /// verdict by `config`'s limits.
    pub(crate) fn finish(mut self, expected: SideSummary, actual: SideSummary, config: &CompareConfig) -> Comparison {
        self.end_partition();
        let mut signals = Vec::new();
        let mut total = Counts::default();
        let [traces, metrics, logs] = self.signals;
        for (signal, tally) in Signal::ALL.into_iter().zip([traces, metrics, logs]) {
            if !config.signals.contains(signal) {
                continue;
            }
            let mut counts = tally.counts;
            if let Some(report) = &config.replay_report {
                let counts_sent = &report.counts;
                let sent = signal.pick(counts_sent.traces, counts_sent.metrics, counts_sent.logs);
                let short = counts.expected.saturating_sub(sent.sent_items + sent.rejected_items);
                counts.unsent = short.min(counts.missing);
                counts.missing -= counts.unsent;
            }
            add_counts(&mut total, &counts);
            let mut services: Vec<ServiceComparison> =
                tally.services.into_iter().map(|(service, counts)| ServiceComparison { service, counts }).collect();
            services.sort_by(|a, b| a.service.cmp(&b.service));
            signals.push(SignalComparison { signal, counts, services });
        }
        let allow = &self.allow;
        let mut attribute_changes: Vec<AttributeChange> = self
            .attributes
            .into_iter()
            .flat_map(|((signal, location, change), keys)| {
                keys.into_iter().map(move |(key, items)| AttributeChange {
                    allowed: allow.contains(&key),
                    signal,
                    location,
                    key,
                    change,
                    items,
                })
            })
            .collect();
        attribute_changes.sort_by(|a, b| {
            (b.items, a.signal, a.location, &a.key, a.change).cmp(&(a.items, b.signal, b.location, &b.key, b.change))
        });
        let mut field_changes: Vec<FieldChange> = Vec::new();
        for ((signal, field), tally) in self.fields {
            if tally.unvalued > 0 {
                let (from, to, items) = (None, None, tally.unvalued);
                field_changes.push(FieldChange { signal, field: field.to_owned(), from, to, items });
            }
            for (from, tos) in tally.valued {
                for (to, items) in tos {
                    let (from, to) = (Some(from.clone()), Some(to));
                    field_changes.push(FieldChange { signal, field: field.to_owned(), from, to, items });
                }
            }
        }
        field_changes.sort_by(|a, b| {
            (b.items, a.signal, &a.field, &a.from, &a.to).cmp(&(a.items, b.signal, &b.field, &b.from, &b.to))
        });
        let shift = (self.matched > 0).then(|| {
            let (min_nanos, max_nanos) = self.shift_range.unwrap_or((0, 0));
            let (records, inconsistent_items) = (self.shifts.len() as u64, self.inconsistent);
            ShiftSummary { mode: self.mode, min_nanos, max_nanos, records, inconsistent_items }
        });
        let verdict = crate::match_verdict::verdict(&signals, &total, &attribute_changes, &field_changes, config);
        Comparison {
            tool: "otlp-tape".to_owned(),
            tool_version: env!("CARGO_PKG_VERSION").to_owned(),
            compared_at: now(),
            expected,
            actual,
            options: config.clone(),
            shift,
            total,
            signals,
            attribute_changes,
            field_changes,
            traces: self.traces,
            differences: self.examples.into_differences(),
            verdict,
        }
    }
}

/// Whether two changes of one item count as one (the same attribute key,
/// location and change; the same field).
fn same_kind(a: &Change<'_>, b: &Change<'_>) -> bool {
    match (a, b) {
        (
            Change::Attribute { location: l1, key: k1, kind: c1, .. },
            Change::Attribute { location: l2, key: k2, kind: c2, .. },
        ) => l1 == l2 && k1 == k2 && c1 == c2,
        (Change::Field { field: f1, .. }, Change::Field { field: f2, .. }) => f1 == f2,
        _ => false,
    }
}

fn add_counts(total: &mut Counts, counts: &Counts) {
    total.expected += counts.expected;
    total.delivered += counts.delivered;
    total.identical += counts.identical;
    total.changed += counts.changed;
    total.changed_allowed += counts.changed_allowed;
    total.missing += counts.missing;
    total.unsent += counts.unsent;
    total.unexpected += counts.unexpected;
    total.duplicates += counts.duplicates;
}

/// Now, in RFC 3339.
fn now() -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_nanos());
    Timestamp::from_unix_nanos(u64::try_from(nanos).unwrap_or(u64::MAX)).to_string()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tape_otlp::sample::{self, string_attribute};
    use tape_otlp::{ExportRequest, Signal};

    use crate::match_keys::span_key;
    use crate::match_samples::{compare, compare_in, config, records, report, shift_all};
    use crate::{Item, ItemBody, MAX_DIFFERENCES, Scope};

    const HOUR: i64 = 3_600_000_000_000;

    fn span_mut(item: &mut Item) -> &mut opentelemetry_proto::tonic::trace::v1::Span {
        match &mut item.body {
            ItemBody::Span(span) => span,
            _ => panic!("not a span"),
        }
    }

    #[test]
    fn each_record_moves_by_one_shift_and_an_item_that_moved_otherwise_changed() {
        let requests: Vec<ExportRequest> =
            vec![sample::traces("checkout", 8, 0).into(), sample::logs("checkout", 4, 0).into()];
        let expected = records(0, requests);
        let mut actual = expected.clone();
        let (first, second) = actual.split_at_mut(8);
        shift_all(first, HOUR);
        shift_all(second, 2 * HOUR);
        for mode in ["relative", "current"] {
            let mut options = config();
            options.replay_report = Some(report(mode, 1, [8, 0, 4]));
            let comparison = compare(expected.clone(), actual.clone(), &options);
            assert_eq!(comparison.total.identical, 12, "{mode}");
            let shift = comparison.shift.unwrap();
            assert_eq!(
                (shift.min_nanos, shift.max_nanos, shift.records, shift.inconsistent_items),
                (HOUR, 2 * HOUR, 2, 0)
            );
            assert!(comparison.verdict.passed);
        }

        // The span matched last in its record moves a nanosecond more.
        let last = (0..8).max_by_key(|&n| match &actual[n].body {
            ItemBody::Span(span) => span_key(&span.trace_id, &span.span_id),
            _ => crate::match_keys::NO_IDS,
        });
        let last = last.unwrap();
        shift_all(&mut actual[last..=last], 1);
        let mut options = config();
        options.replay_report = Some(report("relative", 1, [8, 0, 4]));
        let comparison = compare(expected.clone(), actual.clone(), &options);
        assert_eq!((comparison.total.identical, comparison.total.changed), (11, 1));
        assert_eq!(comparison.shift.unwrap().inconsistent_items, 1);
        let change = &comparison.field_changes[0];
        assert_eq!((change.field.as_str(), change.items), ("timestamps", 1));
        let details = &comparison.differences[0].details;
        assert_eq!(details, &[format!("timestamps moved {} ns, not {HOUR} ns as its record", HOUR + 1)]);

        // Without the report nothing may move.
        let comparison = compare(expected, actual, &config());
        assert_eq!((comparison.total.changed, comparison.shift.unwrap().inconsistent_items), (12, 12));
        assert!(
            comparison.verdict.reasons[0]
                .starts_with("8 of 8 expected spans were delivered changed (timestamps changed on 8")
        );
    }

    fn lossy_pipeline() -> (Vec<Item>, Vec<Item>) {
        let expected = records(0, vec![sample::traces("checkout", 80, 0).into()]);
        let mut actual: Vec<Item> = expected[12..].to_vec();
        for item in &mut actual {
            let mut scope = Scope::clone(&item.scope);
            scope.resource.attributes.push(string_attribute("k8s.pod.name", "checkout-1"));
            item.scope = Arc::new(scope);
            span_mut(item).attributes.retain(|attribute| attribute.key != "server.address");
        }
        (expected, actual)
    }

    #[test]
    fn changes_pass_when_allowed_and_missing_items_within_the_limit() {
        let (expected, actual) = lossy_pipeline();
        let mut options = config();
        options.allow_changes = vec!["k8s.pod.name".to_owned()];
        let comparison = compare(expected.clone(), actual.clone(), &options);
        assert_eq!(
            comparison.verdict.reasons,
            [
                "12 of 80 expected spans are missing (15 %; --max-missing allows 0 %)",
                "68 of 80 expected spans were delivered changed beyond the attributes allowed to change \
                 (span attribute server.address removed on 68)"
            ]
        );
        let allowed: Vec<(&str, bool)> =
            comparison.attribute_changes.iter().map(|change| (change.key.as_str(), change.allowed)).collect();
        assert_eq!(allowed, [("k8s.pod.name", true), ("server.address", false)]);

        options.allow_changes.push("server.address".to_owned());
        options.max_missing = 0.15;
        let comparison = compare(expected, actual, &options);
        assert!(comparison.verdict.passed, "{:?}", comparison.verdict);
        assert_eq!((comparison.total.changed, comparison.total.changed_allowed, comparison.exit_code()), (68, 68, 0));
    }

    #[test]
    fn items_the_replay_did_not_send_are_unsent_not_missing() {
        let (expected, actual) = lossy_pipeline();
        let mut options = config();
        options.allow_changes = vec!["k8s.pod.name".to_owned(), "server.address".to_owned()];
        options.replay_report = Some(report("none", 1, [70, 0, 0]));
        let comparison = compare(expected.clone(), actual.clone(), &options);
        let spans = comparison.signal(Signal::Traces).unwrap().counts;
        assert_eq!((spans.missing, spans.unsent, comparison.total.unsent), (2, 10, 10));
        assert_eq!(
            comparison.verdict.reasons,
            ["2 of 80 expected spans are missing (2.5 %; --max-missing allows 0 %); 10 more were not sent by the \
              replay (its report's counts) and are not counted as missing"]
        );
        options.replay_report = Some(report("none", 1, [60, 0, 0]));
        let comparison = compare(expected, actual, &options);
        assert_eq!((comparison.total.missing, comparison.total.unsent), (0, 12));
        assert!(comparison.verdict.passed);
    }

    #[test]
    fn examples_do_not_depend_on_the_partitions() {
        let expected =
            records(0, vec![sample::traces("checkout", 400, 0).into(), sample::logs("checkout", 40, 0).into()]);
        let mut actual: Vec<Item> =
            expected.iter().enumerate().filter(|(n, _)| n % 3 != 0).map(|(_, item)| item.clone()).collect();
        for item in actual.iter_mut().step_by(2) {
            if let ItemBody::Span(span) = &mut item.body {
                span.name = "renamed".to_owned();
            }
        }
        let split = |item: &Item| item.trace_id().map_or(0, |trace| usize::from(trace[0]));
        let one = compare(expected.clone(), actual.clone(), &config());
        let seven = compare_in(7, split, expected, actual, &config());
        assert_eq!(one.differences, seven.differences);
        assert_eq!((one.total, one.attribute_changes.len()), (seven.total, 0));
        assert_eq!(one.field_changes, seven.field_changes);
        assert_eq!(one.differences.len(), MAX_DIFFERENCES);
        let kinds: Vec<(Signal, &str)> =
            one.differences.iter().map(|difference| (difference.signal, difference.kind)).collect();
        for kind in [(Signal::Traces, "missing"), (Signal::Traces, "changed"), (Signal::Logs, "missing")] {
            assert!(kinds.contains(&kind), "{kind:?}");
        }
        let renamed = &one.field_changes[0];
        assert_eq!((renamed.field.as_str(), renamed.to.as_deref()), ("name", Some("renamed")));
        let changed = one.differences.iter().find(|difference| difference.kind == "changed").unwrap();
        assert!(changed.details[0].starts_with("name \"GET /api/orders/"), "{:?}", changed.details);
        assert!(changed.details[0].ends_with("\" -> \"renamed\""), "{:?}", changed.details);
    }
}
