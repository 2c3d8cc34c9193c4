//! A point of a session's time given by people: an offset into the session
//! or a point in time (`--from`, `--until`, an annotation's range).

use std::fmt;
use std::str::FromStr;

use crate::Timestamp;

/// A point given as an offset into a session or as a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeBound {
    /// Nanoseconds after the session's start time.
    Offset(u64),
    /// A point in time.
    At(Timestamp),
}

impl TimeBound {
    /// The point as unix nanoseconds, for a session that starts at `start`.
    pub fn resolve(self, start: Timestamp) -> u64 {
        match self {
            TimeBound::Offset(nanos) => start.unix_nanos().saturating_add(nanos),
            TimeBound::At(time) => time.unix_nanos(),
        }
    }
}

impl fmt::Display for TimeBound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimeBound::Offset(nanos) => write!(f, "{}", crate::format_duration(*nanos)),
            TimeBound::At(time) => write!(f, "{time}"),
        }
    }
}

impl FromStr for TimeBound {
    type Err = String;

    /// An RFC 3339 time, or an offset such as `30s`, `1m30s` or a bare
    /// number of seconds.
    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if let Some(time) = Timestamp::parse_rfc3339(text) {
            return Ok(TimeBound::At(time));
        }
        crate::config::parse_duration_flag(text).map(TimeBound::Offset).map_err(|_| {
            "expected an offset into the session such as 30s, 1m30s or 90 (seconds), \
             or an RFC 3339 time such as 2026-01-01T00:00:30Z"
                .to_owned()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_and_times_parse() {
        assert_eq!("90".parse(), Ok(TimeBound::Offset(90_000_000_000)));
        assert_eq!("1m30s".parse(), Ok(TimeBound::Offset(90_000_000_000)));
        let at: TimeBound = "2026-01-01T00:00:30Z".parse().unwrap();
        assert_eq!(at.resolve(Timestamp::from_unix_nanos(0)), 1_767_225_630_000_000_000);
        assert!("soon".parse::<TimeBound>().unwrap_err().contains("RFC 3339"));
        assert_eq!(TimeBound::Offset(90_000_000_000).to_string(), "1m30s");
    }
}
