//! The comparison as a self-contained page a person can read (`--report
//! FILE.html`): no script, no style sheet or font fetched from anywhere.

use std::fmt::Write as _;

use tape_session::SignalCounts;

use crate::{Comparison, Counts, SideSummary};

/// The page's style sheet, inline.
const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem auto;max-width:72rem;padding:0 1rem;\
color:#1b1f23;line-height:1.4}\
h1{font-size:1.6rem;margin-bottom:.5rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #d0d7de}\
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}\
th,td{border:1px solid #d0d7de;padding:.25rem .6rem;text-align:left;vertical-align:top}\
th{background:#f6f8fa}td.n{text-align:right;font-variant-numeric:tabular-nums}\
tr.service td:first-child{padding-left:1.6rem}\
code,.hash{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.85rem;word-break:break-all}\
.verdict{padding:1rem 1.2rem;border-radius:6px;font-size:1.3rem;font-weight:600;margin:1rem 0}\
.passed{background:#dafbe1;border:2px solid #1a7f37;color:#1a7f37}\
.failed{background:#ffebe9;border:2px solid #cf222e;color:#cf222e}\
.verdict ul{font-size:1rem;font-weight:400;color:#1b1f23;margin:.5rem 0 0}\
.muted{color:#57606a}.bad{color:#cf222e}.ok{color:#1a7f37}";

impl Comparison {
    /// The comparison as one HTML page: the verdict first, both sides'
    /// ids, hashes and counts, the options, the counts per signal and
    /// service, the attribute and field changes, the traces, and the
    /// example differences. Every text from the sessions is escaped.
    pub fn to_html(&self) -> String {
        let mut page = String::with_capacity(16 * 1024);
        let verdict = if self.verdict.passed { "passed" } else { "failed" };
        let _ = write!(
            page,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>Comparison {verdict}: {} against {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
            escape(self.expected.session_id.as_str()),
            escape(self.actual.session_id.as_str()),
        );
        let _ = writeln!(
            page,
            "<h1>Comparison of <code>{}</code> (expected) with <code>{}</code> (actual)</h1>",
            escape(self.expected.session_id.as_str()),
            escape(self.actual.session_id.as_str()),
        );
        self.verdict_html(&mut page);
        self.sides_html(&mut page);
        self.options_html(&mut page);
        self.counts_html(&mut page);
        self.changes_html(&mut page);
        self.traces_html(&mut page);
        self.differences_html(&mut page);
        let _ = write!(
            page,
            "<p class=\"muted\">Compared by {} {} at {}.</p>\n</body>\n</html>\n",
            escape(&self.tool),
            escape(&self.tool_version),
            escape(&self.compared_at),
        );
        page
    }

    fn verdict_html(&self, page: &mut String) {
        let total = &self.total;
        if self.verdict.passed {
            let _ = write!(
                page,
                "<div class=\"verdict passed\">PASSED: {} of {} expected items delivered identical",
                total.identical, total.expected
            );
        } else {
            let _ = write!(page, "<div class=\"verdict failed\">FAILED: the delivered items differ");
        }
        if !self.verdict.reasons.is_empty() {
            page.push_str("<ul>");
            for reason in &self.verdict.reasons {
                let _ = write!(page, "<li>{}</li>", escape(reason));
            }
            page.push_str("</ul>");
        }
        page.push_str("</div>\n");
    }

    fn sides_html(&self, page: &mut String) {
        page.push_str("<h2>Sessions</h2>\n<table>\n<tr><th></th><th>Expected</th><th>Actual</th></tr>\n");
        let (expected, actual) = (&self.expected, &self.actual);
        let row = |page: &mut String, name: &str, field: &dyn Fn(&SideSummary) -> String| {
            let _ = writeln!(page, "<tr><th>{name}</th><td>{}</td><td>{}</td></tr>", field(expected), field(actual));
        };
        row(page, "Session", &|side| format!("<code>{}</code>", escape(side.session_id.as_str())));
        row(page, "Content hash", &|side| format!("<span class=\"hash\">{}</span>", escape(&side.content_hash)));
        row(page, "Records read", &|side| side.records.to_string());
        let items = |counts: &SignalCounts| format!("{} / {} / {}", counts.traces, counts.metrics, counts.logs);
        row(page, "Spans / data points / log records", &|side| items(&side.items));
        row(page, "Canonical SHA-256", &|side| {
            format!("<span class=\"hash\">{}</span>", escape(&side.canonical_sha256))
        });
        let same = expected.canonical_sha256 == actual.canonical_sha256;
        let _ = writeln!(
            page,
            "</table>\n<p class=\"{}\">The canonical SHA-256s are {}.</p>",
            if same { "ok" } else { "muted" },
            if same {
                "equal: both sides hold the same items"
            } else {
                "different: each hashes what its side holds, with its own timestamps and every attribute, whatever the \
                 comparison allowed for"
            },
        );
    }

    fn options_html(&self, page: &mut String) {
        let options = &self.options;
        let list = |keys: &[String]| {
            if keys.is_empty() {
                "none".to_owned()
            } else {
                keys.iter().map(|key| format!("<code>{}</code>", escape(key))).collect::<Vec<_>>().join(", ")
            }
        };
        page.push_str("<h2>Options</h2>\n<table>\n");
        let mut row = |name: &str, value: String| {
            let _ = writeln!(page, "<tr><th>{name}</th><td>{value}</td></tr>");
        };
        row("Signals", escape(&options.signals.to_string()));
        row("Ignored attributes", list(&options.ignore_attributes));
        row("Attributes allowed to change", list(&options.allow_changes));
        row("Most missing", format!("{}%", options.max_missing * 100.0));
        row("Partitions", options.partitions.map_or_else(|| "from the sessions' sizes".to_owned(), |n| n.to_string()));
        match &options.replay_report {
            None => row("Replay", "none given: ids compared as recorded, no timestamp shift allowed".to_owned()),
            Some(replay) => {
                row(
                    "Replay of",
                    format!(
                        "<code>{}</code> (content hash <span class=\"hash\">{}</span>)",
                        escape(&replay.session.id),
                        escape(&replay.session.content_hash)
                    ),
                );
                row(
                    "Replay",
                    escape(&format!(
                        "{} passes, id seed {}, ids {}, timestamps {}, signals {}, ended {}",
                        replay.passes,
                        replay.id_seed,
                        replay.options.ids,
                        replay.options.timestamps,
                        replay.options.signals.iter().map(|signal| signal.as_str()).collect::<Vec<_>>().join(","),
                        replay.reason,
                    )),
                );
                if !replay.options.services.is_empty() {
                    row("Replayed services", escape(&replay.options.services.join(", ")));
                }
                if replay.options.from.is_some() || replay.options.until.is_some() {
                    row(
                        "Replayed window",
                        escape(&format!(
                            "{} .. {}",
                            replay.options.from.as_deref().unwrap_or("start"),
                            replay.options.until.as_deref().unwrap_or("end")
                        )),
                    );
                }
            }
        }
        match &self.shift {
            None => row("Timestamp shift", "no item matched".to_owned()),
            Some(shift) => row(
                "Timestamp shift",
                escape(&format!(
                    "mode {}: {} ns to {} ns over {} records; {} items off their record's shift",
                    shift.mode, shift.min_nanos, shift.max_nanos, shift.records, shift.inconsistent_items
                )),
            ),
        }
        page.push_str("</table>\n");
    }

    fn counts_html(&self, page: &mut String) {
        page.push_str(
            "<h2>Items</h2>\n<table>\n<tr><th>Signal / service</th><th>Expected</th><th>Delivered</th>\
             <th>Identical</th><th>Changed</th><th>of which allowed</th><th>Missing</th><th>Unsent</th>\
             <th>Unexpected</th><th>of which duplicates</th></tr>\n",
        );
        for signal in &self.signals {
            counts_row(page, "", &format!("<b>{}</b>", signal.signal.as_str()), &signal.counts);
            for service in &signal.services {
                counts_row(page, " class=\"service\"", &escape(&service.service), &service.counts);
            }
        }
        counts_row(page, "", "<b>total</b>", &self.total);
        page.push_str("</table>\n");
    }

    fn changes_html(&self, page: &mut String) {
        page.push_str("<h2>Attribute changes</h2>\n");
        if self.attribute_changes.is_empty() {
            page.push_str("<p>None.</p>\n");
        } else {
            page.push_str(
                "<table>\n<tr><th>Signal</th><th>Where</th><th>Key</th><th>Change</th><th>Items</th>\
                 <th>Allowed</th></tr>\n",
            );
            for change in &self.attribute_changes {
                let _ = writeln!(
                    page,
                    "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td class=\"n\">{}</td>\
                     <td>{}</td></tr>",
                    change.signal.as_str(),
                    change.location.noun(),
                    escape(&change.key),
                    change.change.word(),
                    change.items,
                    if change.allowed { "yes" } else { "no" },
                );
            }
            page.push_str("</table>\n");
        }
        page.push_str("<h2>Field changes</h2>\n");
        if self.field_changes.is_empty() {
            page.push_str("<p>None.</p>\n");
            return;
        }
        page.push_str("<table>\n<tr><th>Signal</th><th>Field</th><th>From</th><th>To</th><th>Items</th></tr>\n");
        for change in &self.field_changes {
            let value = |value: &Option<String>| value.as_deref().map_or_else(String::new, escape);
            let _ = writeln!(
                page,
                "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td class=\"n\">{}</td></tr>",
                change.signal.as_str(),
                escape(&change.field),
                value(&change.from),
                value(&change.to),
                change.items,
            );
        }
        page.push_str("</table>\n");
    }

    fn traces_html(&self, page: &mut String) {
        let traces = &self.traces;
        let _ = writeln!(
            page,
            "<h2>Traces</h2>\n<table>\n<tr><th>Expected</th><th>Complete</th><th>Incomplete</th><th>Dropped</th>\
             <th>Unexpected</th></tr>\n<tr><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td></tr>\n</table>",
            traces.expected, traces.complete, traces.incomplete, traces.dropped, traces.unexpected,
        );
    }

    fn differences_html(&self, page: &mut String) {
        page.push_str("<h2>Example differences</h2>\n");
        if self.differences.is_empty() {
            page.push_str("<p>None.</p>\n");
            return;
        }
        page.push_str(
            "<table>\n<tr><th>Signal</th><th>Kind</th><th>Service</th><th>Name</th><th>Trace / span</th>\
             <th>Pass</th><th>Details</th></tr>\n",
        );
        for difference in &self.differences {
            let ids = match (&difference.trace_id, &difference.span_id) {
                (Some(trace), Some(span)) => format!("<code>{}</code><br><code>{}</code>", escape(trace), escape(span)),
                (Some(trace), None) => format!("<code>{}</code>", escape(trace)),
                (None, Some(span)) => format!("<code>{}</code>", escape(span)),
                (None, None) => String::new(),
            };
            let details: Vec<String> = difference.details.iter().map(|detail| escape(detail)).collect();
            let _ = writeln!(
                page,
                "<tr><td>{}</td><td class=\"bad\">{}</td><td>{}</td><td>{}</td><td>{ids}</td><td>{}</td>\
                 <td>{}</td></tr>",
                difference.signal.as_str(),
                escape(difference.kind),
                escape(&difference.service),
                escape(&difference.name),
                difference.pass.map_or_else(String::new, |pass| pass.to_string()),
                details.join("<br>"),
            );
        }
        page.push_str("</table>\n");
    }
}

/// One row of the counts table; `label` is HTML already.
fn counts_row(page: &mut String, class: &str, label: &str, counts: &Counts) {
    let _ = write!(page, "<tr{class}><td>{label}</td>");
    for value in [
        counts.expected,
        counts.delivered,
        counts.identical,
        counts.changed,
        counts.changed_allowed,
        counts.missing,
        counts.unsent,
        counts.unexpected,
        counts.duplicates,
    ] {
        let _ = write!(page, "<td class=\"n\">{value}</td>");
    }
    page.push_str("</tr>\n");
}

/// `text` with the characters HTML gives a meaning escaped, for element
/// content and quoted attribute values alike.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use tape_otlp::Signal;

    use super::*;
    use crate::{
        AttributeChange, ChangeKind, CompareConfig, Difference, Location, SignalComparison, TraceSummary, Verdict,
    };

    fn side(id: &str, hash: &str) -> SideSummary {
        SideSummary {
            session_id: id.parse().unwrap(),
            content_hash: format!("content-{id}"),
            records: 3,
            items: SignalCounts { traces: 10, metrics: 0, logs: 0 },
            canonical_sha256: hash.to_owned(),
        }
    }

    fn comparison() -> Comparison {
        let counts = Counts { expected: 10, delivered: 9, identical: 8, changed: 1, missing: 1, ..Counts::default() };
        let mut options = CompareConfig::new("seed-1".parse().unwrap(), "capture-1".parse().unwrap());
        options.ignore_attributes.push("host.name".to_owned());
        Comparison {
            tool: "otlp-tape".to_owned(),
            tool_version: "0.1.0".to_owned(),
            compared_at: "2026-12-04T16:00:00Z".to_owned(),
            expected: side("seed-1", "aaaa"),
            actual: side("capture-1", "bbbb"),
            options,
            shift: None,
            total: counts,
            signals: vec![SignalComparison {
                signal: Signal::Traces,
                counts,
                services: vec![crate::ServiceComparison { service: "<checkout>".to_owned(), counts }],
            }],
            attribute_changes: vec![AttributeChange {
                signal: Signal::Traces,
                location: Location::Span,
                key: "http.route".to_owned(),
                change: ChangeKind::Removed,
                items: 1,
                allowed: false,
            }],
            field_changes: Vec::new(),
            traces: TraceSummary { expected: 2, complete: 1, incomplete: 1, ..TraceSummary::default() },
            differences: vec![Difference {
                signal: Signal::Traces,
                kind: "changed",
                service: "<checkout>".to_owned(),
                name: "GET \"/a\" & <b>".to_owned(),
                trace_id: Some("0af7651916cd43dd8448eb211c80319c".to_owned()),
                span_id: Some("b7ad6b7169203331".to_owned()),
                pass: Some(0),
                details: vec!["span attribute http.route removed".to_owned()],
            }],
            verdict: Verdict { passed: false, reasons: vec!["1 of 10 spans missing <over 0%>".to_owned()] },
        }
    }

    #[test]
    fn the_page_holds_the_verdict_both_sides_and_the_tables_escaped() {
        let page = comparison().to_html();
        assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
        assert!(page.contains("FAILED") && page.contains("1 of 10 spans missing &lt;over 0%&gt;"), "{page}");
        for text in ["seed-1", "capture-1", "content-seed-1", "content-capture-1", "aaaa", "bbbb", "host.name"] {
            assert!(page.contains(text), "{text} is missing");
        }
        assert!(page.contains("&lt;checkout&gt;") && !page.contains("<checkout>"), "{page}");
        assert!(page.contains("GET &quot;/a&quot; &amp; &lt;b&gt;"), "{page}");
        assert!(page.contains("<code>http.route</code></td><td>removed</td><td class=\"n\">1</td>"), "{page}");
        // Self-contained: nothing is fetched or run.
        for fetched in ["<script", "<link", "src=", "http://", "https://", "@import", "url("] {
            assert!(!page.contains(fetched), "{fetched}");
        }
    }

    #[test]
    fn a_passed_comparison_says_so_first() {
        let mut passed = comparison();
        passed.verdict = Verdict { passed: true, reasons: Vec::new() };
        passed.actual.canonical_sha256 = passed.expected.canonical_sha256.clone();
        let page = passed.to_html();
        let verdict = page.find("PASSED: 8 of 10 expected items delivered identical").unwrap();
        assert!(verdict < page.find("<h2>Sessions</h2>").unwrap());
        assert!(page.contains("The canonical SHA-256s are equal"), "{page}");
    }
}
