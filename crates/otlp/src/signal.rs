use std::fmt;
use std::str::FromStr;

/// One of the three OTLP signals otlp-tape records and replays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Signal {
    /// Spans, carried by `ExportTraceServiceRequest`.
    Traces,
    /// Metric data points, carried by `ExportMetricsServiceRequest`.
    Metrics,
    /// Log records, carried by `ExportLogsServiceRequest`.
    Logs,
}

impl Signal {
    /// Every signal, in the order otlp-tape lists them.
    pub const ALL: [Signal; 3] = [Signal::Traces, Signal::Metrics, Signal::Logs];

    /// The signal's place in [`Signal::ALL`]: 0, 1 or 2, to index arrays
    /// of one thing per signal.
    pub fn index(self) -> usize {
        self.pick(0, 1, 2)
    }

    /// The OTLP/HTTP path of the signal, such as `/v1/traces`.
    pub fn http_path(self) -> &'static str {
        self.pick("/v1/traces", "/v1/metrics", "/v1/logs")
    }

    /// Of `traces`, `metrics` and `logs`, the one of this signal.
    pub fn pick<T>(self, traces: T, metrics: T, logs: T) -> T {
        match self {
            Signal::Traces => traces,
            Signal::Metrics => metrics,
            Signal::Logs => logs,
        }
    }

    /// What one item of the signal is called in messages and summaries.
    pub fn item_noun(self) -> &'static str {
        self.pick("spans", "data points", "log records")
    }
}

crate::named_enum! {
    /// The lowercase name used in blob keys, flags and metadata.
    Signal { Traces => "traces", Metrics => "metrics", Logs => "logs" }
}

crate::serde_as_text!(Signal: Serialize, Deserialize);

/// A signal name that is not `traces`, `metrics` or `logs`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown signal {0:?}: expected traces, metrics or logs")]
pub struct ParseSignalError(pub String);

impl FromStr for Signal {
    type Err = ParseSignalError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name.trim().to_ascii_lowercase().as_str() {
            "traces" | "trace" | "spans" => Ok(Signal::Traces),
            "metrics" | "metric" => Ok(Signal::Metrics),
            "logs" | "log" => Ok(Signal::Logs),
            _ => Err(ParseSignalError(name.to_owned())),
        }
    }
}

/// A set of signals, such as the ones a command should record or replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SignalSet {
    traces: bool,
    metrics: bool,
    logs: bool,
}

impl SignalSet {
    /// All three signals.
    pub const ALL: SignalSet = SignalSet { traces: true, metrics: true, logs: true };
    /// No signal.
    pub const NONE: SignalSet = SignalSet { traces: false, metrics: false, logs: false };

    /// Whether the set holds `signal`.
    pub fn contains(self, signal: Signal) -> bool {
        match signal {
            Signal::Traces => self.traces,
            Signal::Metrics => self.metrics,
            Signal::Logs => self.logs,
        }
    }

    /// The set with `signal` added.
    #[must_use]
    pub fn with(mut self, signal: Signal) -> Self {
        match signal {
            Signal::Traces => self.traces = true,
            Signal::Metrics => self.metrics = true,
            Signal::Logs => self.logs = true,
        }
        self
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self == Self::NONE
    }

    /// The signals in the set, in the order of [`Signal::ALL`].
    pub fn iter(self) -> impl Iterator<Item = Signal> {
        Signal::ALL.into_iter().filter(move |signal| self.contains(*signal))
    }
}

impl FromIterator<Signal> for SignalSet {
    fn from_iter<I: IntoIterator<Item = Signal>>(iter: I) -> Self {
        iter.into_iter().fold(SignalSet::NONE, SignalSet::with)
    }
}

impl FromStr for SignalSet {
    type Err = ParseSignalError;

    /// Parses a comma-separated list such as `traces,logs`; `all` is every signal.
    fn from_str(list: &str) -> Result<Self, Self::Err> {
        if list.trim().eq_ignore_ascii_case("all") {
            return Ok(SignalSet::ALL);
        }
        let set = list
            .split(',')
            .filter(|name| !name.trim().is_empty())
            .map(Signal::from_str)
            .collect::<Result<SignalSet, _>>()?;
        if set.is_empty() {
            return Err(ParseSignalError(list.to_owned()));
        }
        Ok(set)
    }
}

impl fmt::Display for SignalSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Signal::as_str).collect();
        f.write_str(&names.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for signal in Signal::ALL {
            assert_eq!(signal.as_str().parse::<Signal>().unwrap(), signal);
        }
        assert!("spanz".parse::<Signal>().is_err());
    }

    #[test]
    fn signal_set_parses_lists() {
        let set: SignalSet = "traces, logs".parse().unwrap();
        assert!(set.contains(Signal::Traces) && set.contains(Signal::Logs));
        assert!(!set.contains(Signal::Metrics));
        assert_eq!(set.to_string(), "traces,logs");
        assert_eq!("all".parse::<SignalSet>().unwrap(), SignalSet::ALL);
        assert!("".parse::<SignalSet>().is_err());
        assert!("traces,bogus".parse::<SignalSet>().is_err());
    }
}
