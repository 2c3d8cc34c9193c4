//! Durations written the way people write them: `250ms`, `10s`, `1m30s`.

use std::fmt::Write as _;

/// Nanoseconds per unit, longest unit name first where one is a prefix of
/// another (`ms` before `m`).
const UNITS: [(&str, u64); 7] = [
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// Parses a duration such as `250ms`, `10s`, `1.5s`, `1m30s` or `2h` into
/// nanoseconds. Every number needs a unit: `ns`, `us`, `ms`, `s`, `m`, `h`.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let invalid =
        |why: &str| format!("invalid duration {text:?}: {why} (write a number and a unit, like 250ms, 10s or 1m30s)");
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(invalid("it is empty"));
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_len);
        if number.is_empty() {
            return Err(invalid("expected a number"));
        }
        let unit_len = after.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let Some(&(_, scale)) = UNITS.iter().find(|(name, _)| *name == unit) else {
            return Err(invalid(if unit.is_empty() { "a number without a unit" } else { "unknown unit" }));
        };
        total = total
            .checked_add(scaled(number, scale).ok_or_else(|| invalid("not a number"))?)
            .ok_or_else(|| invalid("too long"))?;
        rest = after;
    }
    Ok(total)
}

/// `number` (digits, at most one `.`) times `scale`, in exact integer
/// arithmetic; fractions below a nanosecond are dropped.
fn scaled(number: &str, scale: u64) -> Option<u64> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
        return None;
    }
    let whole: u64 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
    let mut nanos = whole.checked_mul(scale)?;
    let mut place = scale;
    for digit in fraction.bytes() {
        place /= 10;
        nanos = nanos.checked_add(u64::from(digit - b'0') * place)?;
    }
    Some(nanos)
}

/// Formats nanoseconds as the shortest exact duration: `250ms`, `10s`,
/// `1m30s`, `1h`.
pub fn format_duration(nanos: u64) -> String {
    if nanos == 0 {
        return "0s".to_owned();
    }
    let mut text = String::new();
    let mut rest = nanos;
    for (name, scale) in [("h", 3_600_000_000_000), ("m", 60_000_000_000), ("s", 1_000_000_000)] {
        if rest >= scale {
            let _ = write!(text, "{}{name}", rest / scale);
            rest %= scale;
        }
    }
    if rest > 0 {
        let (value, name) = if rest.is_multiple_of(1_000_000) {
            (rest / 1_000_000, "ms")
        } else if rest.is_multiple_of(1_000) {
            (rest / 1_000, "us")
        } else {
            (rest, "ns")
        };
        let _ = write!(text, "{value}{name}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("250ms"), Ok(250_000_000));
        assert_eq!(parse_duration("10s"), Ok(10_000_000_000));
        assert_eq!(parse_duration("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse_duration("1m30s"), Ok(90_000_000_000));
        assert_eq!(parse_duration("2h"), Ok(7_200_000_000_000));
        assert_eq!(parse_duration("0.25ms"), Ok(250_000));
        assert_eq!(parse_duration("15us"), Ok(15_000));
    }

    #[test]
    fn nonsense_is_refused_with_the_reason() {
        for bad in ["", "10", "s", "10x", "1..5s", "-1s", "99999999999999h"] {
            let error = parse_duration(bad).unwrap_err();
            assert!(error.contains("invalid duration"), "{bad}: {error}");
        }
        assert!(parse_duration("10").unwrap_err().contains("without a unit"));
    }

    #[test]
    fn format_round_trips() {
        for nanos in [1, 1_000, 250_000_000, 10_000_000_000, 90_000_000_000, 3_600_000_000_000, 3_601_000_000_001] {
            assert_eq!(parse_duration(&format_duration(nanos)), Ok(nanos), "{}", format_duration(nanos));
        }
        assert_eq!(format_duration(90_000_000_000), "1m30s");
        assert_eq!(format_duration(250_000_000), "250ms");
    }
}
