//! The verdict: whether ACTUAL holds what EXPECTED says it should, within
//! the options, and why not, a plain sentence each.

use std::fmt::Write;

use tape_otlp::Signal;

use crate::{AttributeChange, CompareConfig, Counts, FieldChange, SignalComparison, Verdict};

/// The verdict on `signals` (their counts adding up to `total`): passed
/// when no more than `maxMissing` of the expected items are missing, no
/// item was unexpected, and every changed item changed only in
/// attributes allowed to change.
pub(crate) fn verdict(
    signals: &[SignalComparison],
    total: &Counts,
    attribute_changes: &[AttributeChange],
    field_changes: &[FieldChange],
    config: &CompareConfig,
) -> Verdict {
    let mut reasons = Vec::new();
    #[allow(clippy::cast_precision_loss)] // Counts far below 2^52.
    let too_many_missing = total.missing as f64 > config.max_missing * total.expected as f64;
    for compared in signals {
        let (signal, counts) = (compared.signal, &compared.counts);
        let noun = signal.item_noun();
        let one = singular(signal);
        if too_many_missing && counts.missing > 0 {
            let mut reason = format!(
                "{} of {} expected {noun} are missing ({} %; --max-missing allows {} %)",
                grouped(counts.missing),
                grouped(counts.expected),
                percent(counts.missing, counts.expected),
                share(config.max_missing * 100.0),
            );
            if counts.unsent > 0 {
                let _ = write!(
                    reason,
                    "; {} more were not sent by the replay (its report's counts) and are not counted as missing",
                    grouped(counts.unsent)
                );
            }
            reasons.push(reason);
        }
        if counts.unexpected > 0 {
            let mut reason = if counts.unexpected == 1 {
                format!("1 unexpected {one} was delivered")
            } else {
                format!("{} unexpected {noun} were delivered", grouped(counts.unexpected))
            };
            if counts.duplicates > 0 {
                let _ = match counts.duplicates {
                    1 if counts.unexpected == 1 => write!(reason, " (an extra copy of an expected one)"),
                    1 => write!(reason, " (1 of them an extra copy of an expected one)"),
                    duplicates => write!(reason, " ({} of them extra copies of expected ones)", grouped(duplicates)),
                };
            }
            reasons.push(reason);
        }
        let changed = counts.changed - counts.changed_allowed;
        if changed > 0 {
            let beyond = if config.allow_changes.is_empty() { "" } else { " beyond the attributes allowed to change" };
            let mut reason = format!(
                "{} of {} expected {noun} were delivered changed{beyond}",
                grouped(changed),
                grouped(counts.expected)
            );
            let most = most_frequent(signal, attribute_changes, field_changes);
            if !most.is_empty() {
                let _ = write!(reason, " ({})", most.join(", "));
            }
            reasons.push(reason);
        }
    }
    Verdict { passed: reasons.is_empty(), reasons }
}

/// The three most frequent changes of `signal` not allowed, as `span
/// attribute http.route removed on 12`.
fn most_frequent(signal: Signal, attribute_changes: &[AttributeChange], field_changes: &[FieldChange]) -> Vec<String> {
    let attributes =
        attribute_changes.iter().filter(|change| change.signal == signal && !change.allowed).map(|change| {
            (change.items, format!("{} attribute {} {}", change.location.noun(), change.key, change.change.word()))
        });
    let fields = field_changes.iter().filter(|change| change.signal == signal).map(|change| {
        let text = match (&change.from, &change.to) {
            (Some(from), Some(to)) => format!("{} {from:?} -> {to:?}", change.field),
            _ => format!("{} changed", change.field),
        };
        (change.items, text)
    });
    let mut all: Vec<(u64, String)> = attributes.chain(fields).collect();
    all.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    all.into_iter().take(3).map(|(items, text)| format!("{text} on {}", grouped(items))).collect()
}

/// The noun of one item of `signal`: `span`, `data point`, `log record`.
fn singular(signal: Signal) -> &'static str {
    match signal {
        Signal::Traces => "span",
        Signal::Metrics => "data point",
        Signal::Logs => "log record",
    }
}

/// `number` with a comma between thousands: `8,176`.
pub(crate) fn grouped(number: u64) -> String {
    let digits = number.to_string();
    let mut text = String::with_capacity(digits.len() + digits.len() / 3);
    for (n, digit) in digits.chars().enumerate() {
        if n > 0 && (digits.len() - n).is_multiple_of(3) {
            text.push(',');
        }
        text.push(digit);
    }
    text
}

/// `part` of `whole` in percent, as [`share`] writes it.
fn percent(part: u64, whole: u64) -> String {
    #[allow(clippy::cast_precision_loss)] // Counts far below 2^52.
    let value = if whole == 0 { 0.0 } else { part as f64 * 100.0 / whole as f64 };
    share(value)
}

/// A percentage with at most two decimals (`0.15`, `10`), and `< 0.01`
/// for a small one that is not zero.
fn share(value: f64) -> String {
    let text = format!("{value:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "0" && value > 0.0 { "< 0.01".to_owned() } else { text.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_plainly() {
        assert_eq!([grouped(0), grouped(999), grouped(8_176), grouped(1_234_567)], ["0", "999", "8,176", "1,234,567"]);
        assert_eq!(
            [percent(12, 8_176), percent(0, 5), percent(1, 10), percent(1, 1_000_000)],
            ["0.15", "0", "10", "< 0.01"]
        );
        assert_eq!(share(0.0), "0");
    }
}
