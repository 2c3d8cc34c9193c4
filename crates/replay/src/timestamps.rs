//! The timestamp modes of a replay: how a record's timestamps move with
//! the time it is sent.

use std::str::FromStr;

use tape_otlp::ExportRequest;

/// How a replayed record's timestamps are adjusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimestampMode {
    /// Kept as recorded.
    None,
    /// Moved by exactly as much as the record's send time moved from its
    /// receive time, so every duration and every offset inside the record
    /// is kept, and records keep their spacing.
    #[default]
    Relative,
    /// Moved so that the record's newest timestamp is its send time.
    Current,
}

impl FromStr for TimestampMode {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        TimestampMode::from_name(&text.trim().to_ascii_lowercase())
            .ok_or_else(|| "expected none, relative or current".to_owned())
    }
}

tape_otlp::named_enum! {
    /// `none`, `relative` or `current`.
    TimestampMode { None => "none", Relative => "relative", Current => "current" }
}

impl TimestampMode {
    /// The shift, in nanoseconds, for a record received at `receive_nanos`
    /// and sent at `send_nanos`; `None` when nothing moves.
    pub fn shift(self, request: &ExportRequest, receive_nanos: u64, send_nanos: u64) -> Option<i64> {
        let from = match self {
            TimestampMode::None => return None,
            TimestampMode::Relative => receive_nanos,
            TimestampMode::Current => request.newest_timestamp()?,
        };
        let delta = i128::from(send_nanos) - i128::from(from);
        Some(i64::try_from(delta).unwrap_or(if delta < 0 { i64::MIN } else { i64::MAX }))
    }

    /// Adjusts every timestamp of `request` for this mode.
    pub fn apply(self, request: &mut ExportRequest, receive_nanos: u64, send_nanos: u64) {
        if let Some(delta) = self.shift(request, receive_nanos, send_nanos) {
            request.shift_timestamps(delta);
        }
    }
}

#[cfg(test)]
mod tests {
    use tape_otlp::sample;

    use super::*;

    const HOUR: u64 = 3_600_000_000_000;

    #[test]
    fn modes_parse() {
        assert_eq!("relative".parse(), Ok(TimestampMode::Relative));
        assert_eq!("CURRENT".parse(), Ok(TimestampMode::Current));
        assert_eq!("none".parse(), Ok(TimestampMode::None));
        assert!("shifted".parse::<TimestampMode>().is_err());
    }

    #[test]
    fn relative_moves_by_the_send_delay_and_current_ends_at_the_send_time() {
        let request = ExportRequest::Traces(sample::traces("checkout", 4, 0));
        let newest = request.newest_timestamp().unwrap();
        let receive = newest + 1_000_000;
        let send = receive + HOUR;

        let mut relative = request.clone();
        TimestampMode::Relative.apply(&mut relative, receive, send);
        assert_eq!(relative.newest_timestamp(), Some(newest + HOUR));

        let mut current = request.clone();
        TimestampMode::Current.apply(&mut current, receive, send);
        assert_eq!(current.newest_timestamp(), Some(send));

        let mut none = request.clone();
        TimestampMode::None.apply(&mut none, receive, send);
        assert_eq!(none, request);
    }

    #[test]
    fn current_keeps_durations_instead_of_collapsing_spans() {
        let request = ExportRequest::Traces(sample::traces("checkout", 4, 0));
        let durations = |request: &ExportRequest| {
            let ExportRequest::Traces(traces) = request else { unreachable!() };
            traces
                .resource_spans
                .iter()
                .flat_map(|r| &r.scope_spans)
                .flat_map(|s| &s.spans)
                .map(|span| span.end_time_unix_nano - span.start_time_unix_nano)
                .collect::<Vec<_>>()
        };
        let mut current = request.clone();
        TimestampMode::Current.apply(&mut current, 0, request.newest_timestamp().unwrap() + HOUR);
        assert_eq!(durations(&current), durations(&request));
        assert!(durations(&current).iter().all(|&duration| duration > 0));
    }
}
