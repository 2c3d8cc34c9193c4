use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};

/// A point in time as unix nanoseconds (UTC), written in JSON as RFC 3339
/// with as many fractional digits as it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The time `nanos` nanoseconds after the unix epoch.
    pub const fn from_unix_nanos(nanos: u64) -> Self {
        Timestamp(nanos)
    }

    /// Nanoseconds since the unix epoch.
    pub const fn unix_nanos(self) -> u64 {
        self.0
    }

    /// Milliseconds since the unix epoch.
    pub const fn unix_millis(self) -> u64 {
        self.0 / 1_000_000
    }

    /// The time as a chrono `DateTime`.
    pub fn to_datetime(self) -> DateTime<Utc> {
        let seconds = i64::try_from(self.0 / 1_000_000_000).unwrap_or(i64::MAX);
        let nanos = (self.0 % 1_000_000_000) as u32;
        DateTime::from_timestamp(seconds, nanos).unwrap_or_default()
    }

    /// Converts a chrono time; times before 1970 or after 2554 are refused.
    pub fn from_datetime(time: DateTime<Utc>) -> Option<Self> {
        time.timestamp_nanos_opt().and_then(|nanos| u64::try_from(nanos).ok()).map(Timestamp)
    }

    /// Parses RFC 3339, such as `2026-11-22T10:00:00.5Z`.
    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        DateTime::parse_from_rfc3339(text).ok().and_then(|time| Self::from_datetime(time.with_timezone(&Utc)))
    }

    /// Parses RFC 3339 as [`parse_rfc3339`](Timestamp::parse_rfc3339)
    /// does, saying why a text is refused: a time without a zone, a time
    /// before 1970 or after 2262 (unix nanoseconds in a signed 64-bit
    /// number, as OTLP and chrono hold them), or no RFC 3339 time at all.
    ///
    /// # Errors
    /// The reason, ending with what would be valid.
    pub fn parse_rfc3339_explained(text: &str) -> Result<Self, String> {
        const EXAMPLE: &str = "such as 2026-12-04T22:00:00Z or 2026-12-04T23:00:00+01:00";
        match DateTime::parse_from_rfc3339(text) {
            Ok(time) => Self::from_datetime(time.with_timezone(&Utc)).ok_or_else(|| {
                format!("{text} is out of range: give a time from 1970-01-01T00:00:00Z to 2262-04-11T23:47:16Z")
            }),
            Err(_) if chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").is_ok() => {
                Err(format!("{text} has no time zone: add Z for UTC or an offset, {EXAMPLE}"))
            }
            Err(_) => Err(format!("expected an RFC 3339 time {EXAMPLE}")),
        }
    }

    /// The hour partition of the time: `YYYY-MM-DD/HH` in UTC.
    pub fn hour_partition(self) -> String {
        self.to_datetime().format("%Y-%m-%d/%H").to_string()
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.to_datetime().to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }
}

tape_otlp::serde_as_text!(Timestamp: Serialize);

impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Timestamp::parse_rfc3339(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("invalid RFC 3339 time {text:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_to_the_nanosecond() {
        for nanos in [0, 1_767_225_600_000_000_000, 1_767_225_600_123_456_789, 1_767_225_600_500_000_000] {
            let time = Timestamp::from_unix_nanos(nanos);
            assert_eq!(Timestamp::parse_rfc3339(&time.to_string()), Some(time), "{time}");
        }
        assert_eq!(Timestamp::from_unix_nanos(1_767_225_600_500_000_000).to_string(), "2026-01-01T00:00:00.500Z");
    }

    #[test]
    fn partitions_by_utc_hour() {
        let time = Timestamp::parse_rfc3339("2026-11-22T23:59:59.999+00:00").unwrap();
        assert_eq!(time.hour_partition(), "2026-11-22/23");
        let time = Timestamp::parse_rfc3339("2026-11-23T01:30:00+02:00").unwrap();
        assert_eq!(time.hour_partition(), "2026-11-22/23");
    }
}
