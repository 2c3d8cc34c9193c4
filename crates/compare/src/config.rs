//! What to compare, and how strictly: the config the command line's flags
//! and the control API's body both become.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tape_otlp::SignalSet;
use tape_session::{SessionId, config};

use crate::{Error, ReplayFacts};

/// A comparison of two sessions of one store: EXPECTED (what was sent) and
/// ACTUAL (what a pipeline delivered).
///
/// ```
/// let config: tape_compare::CompareConfig = serde_json::from_value(serde_json::json!({
///     "expected": "seed-1",
///     "actual": "capture-1",
///     "ignoreAttributes": ["host.name"],
///     "maxMissing": 0.1,
/// }))
/// .unwrap();
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CompareConfig {
    /// The session that was sent (typically a seed).
    #[cfg_attr(
        feature = "clap",
        arg(value_name = "EXPECTED", help = "The session that was sent into the pipeline (typically a seed)",)
    )]
    pub expected: SessionId,
    /// The session that was delivered (typically a capture behind the
    /// pipeline).
    #[cfg_attr(
        feature = "clap",
        arg(value_name = "ACTUAL", help = "The session the pipeline delivered (typically a capture behind it)",)
    )]
    pub actual: SessionId,
    /// The replay that produced ACTUAL from EXPECTED, as its report gives
    /// it: its id remapping is undone and its timestamp shift allowed. The
    /// command line reads it from `--replay-report FILE`; the control API
    /// takes the report's JSON object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "clap", arg(skip))]
    pub replay_report: Option<ReplayFacts>,
    /// Signals compared; default: all three.
    #[serde(default = "all_signals", deserialize_with = "signal_set", serialize_with = "display")]
    #[cfg_attr(feature = "clap", arg(
        long, value_name = "LIST", value_parser = parse_signals, default_value = "all",
        help = "Signals to compare: a comma-separated list of traces, metrics and logs, or all",
    ))]
    pub signals: SignalSet,
    /// Attribute keys left out of the comparison wherever they are
    /// (resource, scope, span, event, link, log record, data point).
    #[serde(default)]
    #[cfg_attr(
        feature = "clap",
        arg(
            long = "ignore-attribute",
            value_name = "KEY",
            help = "Leave this attribute key out of the comparison wherever it is (resource, scope, span, event, link, \
                log record, data point); repeat the flag for more keys",
        )
    )]
    pub ignore_attributes: Vec<String>,
    /// Attribute keys whose changes are reported but do not fail the
    /// verdict.
    #[serde(default)]
    #[cfg_attr(
        feature = "clap",
        arg(
            long = "allow-change",
            value_name = "KEY",
            help = "Report changes of this attribute key (added, removed, another value) without failing the verdict; \
                repeat the flag for more keys",
        )
    )]
    pub allow_changes: Vec<String>,
    /// The share of expected items (0 to 1) that may be missing and still
    /// pass; default 0. A number (`0.1`) or, as the flag takes it, a string
    /// (`"0.1"`, `"10%"`).
    #[serde(default, deserialize_with = "share")]
    #[cfg_attr(feature = "clap", arg(
        long, value_name = "RATIO", value_parser = parse_share, default_value = "0",
        help = "The share of expected items that may be missing and still pass: 0 to 1 (0.1) or a percentage (10%)",
    ))]
    pub max_missing: f64,
    /// How many parts both sides are split into on disk; default: from the
    /// sessions' sizes (one part, in memory, for sessions that fit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "clap", arg(
        long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_PARTITIONS)),
        help = "How many parts both sides are split into on disk, 1 to 4096; default: from the sessions' sizes \
                (one part, in memory, for sessions that fit)",
    ))]
    pub partitions: Option<u32>,
}

/// `--signals`, as the flag's value parser.
#[cfg(feature = "clap")]
fn parse_signals(list: &str) -> Result<SignalSet, String> {
    list.parse().map_err(|error: tape_otlp::ParseSignalError| error.to_string())
}

/// A share as a number, or as a string the flag would take.
fn share<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Share {
        Number(f64),
        Text(String),
    }
    match Share::deserialize(deserializer) {
        Ok(Share::Number(number)) => Ok(number),
        Ok(Share::Text(text)) => parse_share(&text).map_err(serde::de::Error::custom),
        Err(_) => {
            Err(serde::de::Error::custom("expected a share: a number from 0 to 1, or a percentage such as \"10%\""))
        }
    }
}

/// `--max-missing`: a share from 0 to 1 (`0.1`) or a percentage from 0 %
/// to 100 % (`10%`), as the flag's value parser and `maxMissing`'s strings.
fn parse_share(text: &str) -> Result<f64, String> {
    let trimmed = text.trim();
    let (number, scale) = match trimmed.strip_suffix('%') {
        Some(percent) => (percent.trim(), 100.0),
        None => (trimmed, 1.0),
    };
    let invalid = || format!("{text:?} is not a share: give 0 to 1 (0.1 allows a tenth of the items) or 0% to 100%");
    let value: f64 = number.parse().map_err(|_| invalid())?;
    let share = value / scale;
    if share.is_finite() && (0.0..=1.0).contains(&share) { Ok(share) } else { Err(invalid()) }
}

fn all_signals() -> SignalSet {
    SignalSet::ALL
}

fn display<S: Serializer>(value: &impl std::fmt::Display, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

fn signal_set<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SignalSet, D::Error> {
    Ok(config::parsed(deserializer)?.unwrap_or(SignalSet::ALL))
}

/// The most parts a comparison is split into.
pub const MAX_PARTITIONS: u32 = 4096;

impl CompareConfig {
    /// A comparison of `expected` with `actual` with the defaults: every
    /// signal, nothing ignored, nothing may be missing.
    pub fn new(expected: SessionId, actual: SessionId) -> Self {
        CompareConfig {
            expected,
            actual,
            replay_report: None,
            signals: SignalSet::ALL,
            ignore_attributes: Vec::new(),
            allow_changes: Vec::new(),
            max_missing: 0.0,
            partitions: None,
        }
    }

    /// Checks the options.
    pub fn validate(self) -> Result<ValidCompareConfig, Error> {
        if self.signals.is_empty() {
            return Err(Error::Invalid("signals: select at least one of traces, metrics and logs".to_owned()));
        }
        if !(0.0..=1.0).contains(&self.max_missing) {
            return Err(Error::Invalid(format!(
                "maxMissing: {} is not a share between 0 and 1 (0.1 allows a tenth of the expected items to be missing)",
                self.max_missing
            )));
        }
        if let Some(partitions) = self.partitions
            && !(1..=MAX_PARTITIONS).contains(&partitions)
        {
            return Err(Error::Invalid(format!("partitions: {partitions} is not between 1 and {MAX_PARTITIONS}")));
        }
        for key in self.ignore_attributes.iter().chain(&self.allow_changes) {
            if key.trim().is_empty() {
                return Err(Error::Invalid("an attribute key is empty".to_owned()));
            }
        }
        Ok(ValidCompareConfig(self))
    }
}

/// A [`CompareConfig`] whose options were checked; [`run`](Self::run)
/// compares.
#[derive(Debug, Clone)]
pub struct ValidCompareConfig(pub(crate) CompareConfig);

impl ValidCompareConfig {
    /// The options.
    pub fn config(&self) -> &CompareConfig {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: serde_json::Value) -> Result<ValidCompareConfig, String> {
        let config: CompareConfig = serde_json::from_value(json).map_err(|error| error.to_string())?;
        config.validate().map_err(|error| error.to_string())
    }

    #[test]
    fn defaults_compare_every_signal_strictly() {
        let valid = config(serde_json::json!({"expected": "a", "actual": "b"})).unwrap();
        let config = valid.config();
        assert_eq!((config.signals, config.max_missing, config.partitions), (SignalSet::ALL, 0.0, None));
        assert!(config.ignore_attributes.is_empty() && config.allow_changes.is_empty());
    }

    #[test]
    #[allow(clippy::float_cmp)] // shares of exact binary fractions
    fn shares_are_fractions_or_percentages() {
        assert_eq!(parse_share("0.1"), Ok(0.1));
        assert_eq!(parse_share("10%"), Ok(0.1));
        assert_eq!(parse_share("100 %"), Ok(1.0));
        assert_eq!(parse_share("0"), Ok(0.0));
        let valid = config(serde_json::json!({"expected": "a", "actual": "b", "maxMissing": "25%"})).unwrap();
        assert_eq!(valid.config().max_missing, 0.25);
        for bad in ["2", "-0.1", "150%", "ten", "NaN", "inf", ""] {
            let error = parse_share(bad).unwrap_err();
            assert!(error.contains("not a share"), "{bad}: {error}");
        }
    }

    #[test]
    fn bad_options_are_refused_by_name() {
        for (json, expected) in [
            (serde_json::json!({"expected": "a", "actual": "b", "maxMissing": 1.5}), "maxMissing"),
            (serde_json::json!({"expected": "a", "actual": "b", "partitions": 0}), "partitions"),
            (serde_json::json!({"expected": "a", "actual": "b", "ignoreAttributes": [" "]}), "empty"),
            (serde_json::json!({"expected": "a", "actual": "b", "colour": "red"}), "colour"),
            (serde_json::json!({"expected": "../a", "actual": "b"}), "../a"),
        ] {
            let error = config(json).unwrap_err();
            assert!(error.contains(expected), "{error}");
        }
    }
}
