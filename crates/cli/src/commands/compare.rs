//! `otlp-tape compare`: two sessions item by item (`tape_compare`). The
//! flags are a [`tape_compare::CompareConfig`] and the replay report the
//! binary reads from `--replay-report`; the comparison is printed (text or
//! JSON), written to `--report` (JSON or HTML), and its verdict is the exit
//! status: 0 passed, 1 different. Every error exits 2 (see `main`): the
//! sessions could not be compared.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::{Context, bail};
use tape_compare::{CompareProgress, Comparison, Counts, ReplayFacts};
use tape_session::SessionStore;

use crate::cli::{CompareArgs, OutputFormat, ReportFile};
use crate::commands::demo::human_shift;
use crate::output::{note, print_json};

/// Example differences the text output shows (the JSON has them all).
const EXAMPLES: usize = 5;

/// `compare`
pub async fn run(store: &dyn SessionStore, args: CompareArgs, format: OutputFormat) -> anyhow::Result<ExitCode> {
    let CompareArgs { mut config, replay_report, report, temp_dir } = args;
    if let Some(path) = &replay_report {
        let facts = read_replay_report(path)?;
        check_replay_report(store, path, &facts, &config).await?;
        config.replay_report = Some(facts);
    }
    if let Some(report) = &report {
        check_directory(report.path())?;
    }
    let temp_dir = match temp_dir {
        Some(dir) if !dir.is_dir() => bail!("--temp-dir {}: not a directory", dir.display()),
        Some(dir) => dir,
        None => std::env::temp_dir(),
    };
    let config = config.validate()?;
    let stop = crate::signals::stop_on_signals()?;
    let bar = (std::io::stderr().is_terminal() && format == OutputFormat::Text).then(crate::output::records_bar);
    let show = |progress: CompareProgress| {
        if let Some(bar) = &bar {
            bar.set_length(progress.records_total);
            bar.set_position(progress.records_done);
            bar.set_message(format!(
                "{} items, {}/{} partitions matched",
                progress.items_done, progress.partitions_done, progress.partitions_total
            ));
        }
    };
    // Stopping drops the run, and with it its partition files.
    let outcome = tokio::select! {
        outcome = config.run(store, &temp_dir, &show) => Some(outcome),
        () = stop.cancelled() => None,
    };
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let Some(outcome) = outcome else {
        bail!("the comparison was stopped (Ctrl-C or SIGTERM); nothing was compared");
    };
    let comparison = outcome?;
    if let Some(report) = &report {
        write_report(report, &comparison)?;
    }
    match format {
        OutputFormat::Json => print_json(&comparison)?,
        OutputFormat::Text => print!("{}", text(&comparison)),
    }
    if let Some(report) = &report {
        note(format!("Wrote the comparison to {}.", report.path().display()));
    }
    Ok(ExitCode::from(comparison.exit_code()))
}

/// `--replay-report FILE`, read: the JSON report, or the HTML page of
/// `replay --report FILE.html`, which holds the same JSON.
fn read_replay_report(path: &std::path::Path) -> anyhow::Result<ReplayFacts> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read the replay report {}", path.display()))?;
    let json = std::str::from_utf8(&bytes).ok().and_then(tape_web::report_in_page).map_or(&bytes[..], str::as_bytes);
    Ok(ReplayFacts::from_json(&path.display().to_string(), json)?)
}

/// Refuses a replay report of another session than EXPECTED, or one whose
/// options a comparison cannot follow, naming the file. A missing EXPECTED
/// is left to the comparison, which says so.
async fn check_replay_report(
    store: &dyn SessionStore,
    path: &std::path::Path,
    facts: &ReplayFacts,
    config: &tape_compare::CompareConfig,
) -> anyhow::Result<()> {
    let Ok(expected) = store.read_metadata(&config.expected).await else { return Ok(()) };
    let name = path.display().to_string();
    let named = |error: tape_compare::Error| match error {
        tape_compare::Error::ReplayReport { message, .. } => {
            tape_compare::Error::ReplayReport { source_name: name.clone(), message }
        }
        error => error,
    };
    facts.check_session(&name, &expected)?;
    facts.selection(config.signals).map_err(named)?;
    facts.id_regeneration().map_err(named)?;
    Ok(())
}

/// Refuses a `--report` file in a directory that does not exist before
/// anything is compared.
fn check_directory(path: &std::path::Path) -> anyhow::Result<()> {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() && !parent.is_dir() => {
            bail!("--report {}: the directory {} does not exist", path.display(), parent.display())
        }
        _ => Ok(()),
    }
}

/// Writes the comparison to `report`, whole or not at all.
fn write_report(report: &ReportFile, comparison: &Comparison) -> anyhow::Result<()> {
    let contents = match report {
        ReportFile::Json(_) => {
            let mut json = serde_json::to_vec_pretty(comparison)?;
            json.push(b'\n');
            json
        }
        ReportFile::Html(_) => comparison.to_html().into_bytes(),
    };
    let path = report.path();
    tape_replay::write_atomically(path, &contents)
        .with_context(|| format!("cannot write the report {}", path.display()))
}

/// The comparison for people: the verdict first, then both sides, the
/// counts per signal and service, what changed, the traces, the shift and
/// a few examples.
pub fn text(comparison: &Comparison) -> String {
    let mut out = String::new();
    let (expected, actual) = (&comparison.expected, &comparison.actual);
    let total = &comparison.total;
    if comparison.verdict.passed {
        let _ = writeln!(
            out,
            "Passed: {} holds what {} says it should: {} of {} items identical{}.",
            actual.session_id,
            expected.session_id,
            total.identical,
            total.expected,
            allowances(total),
        );
    } else {
        let _ = writeln!(out, "Failed: {} differs from {}:", actual.session_id, expected.session_id);
        for reason in &comparison.verdict.reasons {
            let _ = writeln!(out, "  - {reason}");
        }
    }
    out.push('\n');
    for (side, summary) in [("expected", expected), ("actual", actual)] {
        let items = &summary.items;
        let _ = writeln!(
            out,
            "{side:<8}  {}: {} records read; {} spans, {} data points, {} log records\n          content hash {}\n          \
             canonical SHA-256 {}",
            summary.session_id,
            summary.records,
            items.traces,
            items.metrics,
            items.logs,
            summary.content_hash,
            summary.canonical_sha256,
        );
    }
    if expected.canonical_sha256 == actual.canonical_sha256 {
        out.push_str("          (equal canonical SHA-256s: both sides hold the same items)\n");
    }
    out.push('\n');
    counts_table(&mut out, comparison);
    changes(&mut out, comparison);
    let traces = &comparison.traces;
    if traces.expected > 0 || traces.unexpected > 0 {
        let _ = writeln!(
            out,
            "\nTraces: {} expected: {} complete, {} incomplete, {} dropped; {} unexpected.",
            traces.expected, traces.complete, traces.incomplete, traces.dropped, traces.unexpected
        );
    }
    if let Some(shift) = &comparison.shift {
        let moved = if shift.min_nanos == shift.max_nanos {
            format!("every matched record moved by {}", human_shift(shift.min_nanos))
        } else {
            format!("records moved by {} .. {}", human_shift(shift.min_nanos), human_shift(shift.max_nanos))
        };
        let _ = writeln!(
            out,
            "Timestamp shift ({}): {moved} ({} records){}.",
            shift.mode,
            shift.records,
            if shift.inconsistent_items > 0 {
                format!("; {} items not moved as their record", shift.inconsistent_items)
            } else {
                String::new()
            }
        );
    }
    examples(&mut out, comparison);
    out
}

/// `, 3 with allowed changes, 2 missing within --max-missing` for a pass.
fn allowances(total: &Counts) -> String {
    let mut parts = Vec::new();
    if total.changed_allowed > 0 {
        parts.push(format!("{} changed only in attributes allowed to change", total.changed_allowed));
    }
    if total.missing > 0 {
        parts.push(format!("{} missing, within --max-missing", total.missing));
    }
    if parts.is_empty() { String::new() } else { format!(" ({})", parts.join("; ")) }
}

fn counts_table(out: &mut String, comparison: &Comparison) {
    let names = comparison
        .signals
        .iter()
        .flat_map(|signal| signal.services.iter().map(|service| service.service.len() + 2))
        .chain([7]);
    let width = names.max().unwrap_or(7);
    let _ = writeln!(
        out,
        "{:<width$}  {:>10}  {:>10}  {:>10}  {:>8}  {:>8}  {:>10}",
        "", "expected", "delivered", "identical", "changed", "missing", "unexpected"
    );
    let row = |out: &mut String, name: &str, counts: &Counts| {
        let _ = writeln!(
            out,
            "{name:<width$}  {:>10}  {:>10}  {:>10}  {:>8}  {:>8}  {:>10}",
            counts.expected, counts.delivered, counts.identical, counts.changed, counts.missing, counts.unexpected
        );
    };
    for signal in &comparison.signals {
        row(out, signal.signal.as_str(), &signal.counts);
        for service in &signal.services {
            row(out, &format!("  {}", service.service), &service.counts);
        }
    }
    if comparison.signals.len() > 1 {
        row(out, "total", &comparison.total);
    }
    let total = &comparison.total;
    let mut notes = Vec::new();
    if total.changed_allowed > 0 {
        notes.push(format!("{} of the changed only in attributes allowed to change", total.changed_allowed));
    }
    if total.duplicates > 0 {
        notes.push(format!("{} of the unexpected are extra copies of expected items", total.duplicates));
    }
    if total.unsent > 0 {
        notes.push(format!("{} expected items the replay did not send (it ended early)", total.unsent));
    }
    if !notes.is_empty() {
        let _ = writeln!(out, "({})", notes.join("; "));
    }
}

/// `1 item`, `3 items`.
fn items(count: u64) -> String {
    if count == 1 { "1 item".to_owned() } else { format!("{count} items") }
}

fn changes(out: &mut String, comparison: &Comparison) {
    if !comparison.attribute_changes.is_empty() {
        out.push_str("\nAttribute changes:\n");
        let width = comparison.attribute_changes.iter().map(|change| change.key.len()).max().unwrap_or(0);
        for change in &comparison.attribute_changes {
            let _ = writeln!(
                out,
                "  {:<7}  {:<10}  {:<width$}  {:<7}  on {}{}",
                change.signal.as_str(),
                change.location.noun(),
                change.key,
                change.change.word(),
                items(change.items),
                if change.allowed { " (allowed)" } else { "" },
            );
        }
    }
    if !comparison.field_changes.is_empty() {
        out.push_str("\nField changes:\n");
        for change in &comparison.field_changes {
            let values = match (&change.from, &change.to) {
                (Some(from), Some(to)) => format!(" {from:?} -> {to:?}"),
                (Some(from), None) => format!(" from {from:?}"),
                (None, Some(to)) => format!(" to {to:?}"),
                (None, None) => String::new(),
            };
            let _ =
                writeln!(out, "  {:<7}  {}{values}  on {}", change.signal.as_str(), change.field, items(change.items));
        }
    }
}

fn examples(out: &mut String, comparison: &Comparison) {
    if comparison.differences.is_empty() {
        return;
    }
    let listed = comparison.differences.len();
    let _ = writeln!(out, "\nExamples ({} of the {listed} differences the JSON lists):", EXAMPLES.min(listed));
    for difference in comparison.differences.iter().take(EXAMPLES) {
        let mut line = format!(
            "  {} {} {:?} of {}",
            difference.kind,
            difference.signal.item_noun().trim_end_matches('s'),
            difference.name,
            difference.service
        );
        if let Some(trace) = &difference.trace_id {
            let _ = write!(line, ", trace {trace}");
        }
        if let Some(span) = &difference.span_id {
            let _ = write!(line, ", span {span}");
        }
        if let Some(pass) = difference.pass {
            let _ = write!(line, ", pass {pass}");
        }
        let _ = writeln!(out, "{line}");
        for detail in &difference.details {
            let _ = writeln!(out, "      {detail}");
        }
    }
}

#[cfg(test)]
mod tests {
    use tape_compare::{
        AttributeChange, ChangeKind, CompareConfig, Difference, FieldChange, Location, ServiceComparison, ShiftSummary,
        SideSummary, SignalComparison, TraceSummary, Verdict,
    };
    use tape_otlp::Signal;
    use tape_session::SignalCounts;

    use super::*;

    fn side(id: &str) -> SideSummary {
        SideSummary {
            session_id: id.parse().unwrap(),
            content_hash: format!("hash-of-{id}"),
            records: 4,
            items: SignalCounts { traces: 10, metrics: 0, logs: 0 },
            canonical_sha256: format!("sha-of-{id}"),
        }
    }

    /// Ten spans of which one went missing and one lost an attribute.
    fn lossy() -> Comparison {
        let counts = Counts { expected: 10, delivered: 9, identical: 8, changed: 1, missing: 1, ..Counts::default() };
        let mut options = CompareConfig::new("seed-1".parse().unwrap(), "capture-1".parse().unwrap());
        options.signals = tape_otlp::SignalSet::NONE.with(Signal::Traces);
        Comparison {
            tool: "otlp-tape".to_owned(),
            tool_version: "0.1.0".to_owned(),
            compared_at: "2026-12-04T17:00:00Z".to_owned(),
            expected: side("seed-1"),
            actual: side("capture-1"),
            options,
            shift: Some(ShiftSummary {
                mode: "relative",
                min_nanos: 90_061_500_000_000,
                max_nanos: 90_062_000_000_000,
                records: 4,
                inconsistent_items: 0,
            }),
            total: counts,
            signals: vec![SignalComparison {
                signal: Signal::Traces,
                counts,
                services: vec![ServiceComparison { service: "checkout".to_owned(), counts }],
            }],
            attribute_changes: vec![AttributeChange {
                signal: Signal::Traces,
                location: Location::Span,
                key: "http.route".to_owned(),
                change: ChangeKind::Removed,
                items: 1,
                allowed: false,
            }],
            field_changes: vec![FieldChange {
                signal: Signal::Traces,
                field: "name".to_owned(),
                from: Some("GET".to_owned()),
                to: Some("GET /cart".to_owned()),
                items: 1,
            }],
            traces: TraceSummary { expected: 2, complete: 1, incomplete: 1, ..TraceSummary::default() },
            differences: vec![Difference {
                signal: Signal::Traces,
                kind: "missing",
                service: "checkout".to_owned(),
                name: "SELECT cart".to_owned(),
                trace_id: Some("0af7651916cd43dd8448eb211c80319c".to_owned()),
                span_id: Some("b7ad6b7169203331".to_owned()),
                pass: Some(1),
                details: Vec::new(),
            }],
            verdict: Verdict { passed: false, reasons: vec!["1 of 10 expected spans are missing".to_owned()] },
        }
    }

    #[test]
    fn the_summary_reads_verdict_first_then_tables_changes_and_examples() {
        let text = text(&lossy());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[..2], ["Failed: capture-1 differs from seed-1:", "  - 1 of 10 expected spans are missing"]);
        for line in [
            "expected  seed-1: 4 records read; 10 spans, 0 data points, 0 log records",
            "          content hash hash-of-seed-1",
            "          canonical SHA-256 sha-of-capture-1",
            "              expected   delivered   identical   changed   missing  unexpected",
            "traces              10           9           8         1         1           0",
            "  checkout          10           9           8         1         1           0",
            "  traces   span        http.route  removed  on 1 item",
            "  traces   name \"GET\" -> \"GET /cart\"  on 1 item",
            "Traces: 2 expected: 1 complete, 1 incomplete, 0 dropped; 0 unexpected.",
            "Timestamp shift (relative): records moved by +1d 1h 1m 1.500s .. +1d 1h 1m 2.000s (4 records).",
            "  missing span \"SELECT cart\" of checkout, trace 0af7651916cd43dd8448eb211c80319c, span b7ad6b7169203331, \
             pass 1",
        ] {
            assert!(lines.contains(&line), "{line:?} is not a line of:\n{text}");
        }
        assert!(!text.contains("total"), "one signal needs no total:\n{text}");
        assert!(!text.contains("equal canonical"), "{text}");
    }
}
