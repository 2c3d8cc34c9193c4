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
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CompareConfig {
    /// The session that was sent (typically a seed).
    pub expected: SessionId,
    /// The session that was delivered (typically a capture behind the
    /// pipeline).
    pub actual: SessionId,
    /// The replay that produced ACTUAL from EXPECTED, as its report gives
    /// it: its id remapping is undone and its timestamp shift allowed. The
    /// command line reads it from `--replay-report FILE`; the control API
    /// takes the report's JSON object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay_report: Option<ReplayFacts>,
    /// Signals compared; default: all three.
    #[serde(default = "all_signals", deserialize_with = "signal_set", serialize_with = "display")]
    pub signals: SignalSet,
    /// Attribute keys left out of the comparison wherever they are
    /// (resource, scope, span, event, link, log record, data point).
    #[serde(default)]
    pub ignore_attributes: Vec<String>,
    /// Attribute keys whose changes are reported but do not fail the
    /// verdict.
    #[serde(default)]
    pub allow_changes: Vec<String>,
    /// The share of expected items (0 to 1) that may be missing and still
    /// pass; default 0.
    #[serde(default)]
    pub max_missing: f64,
    /// How many parts both sides are split into on disk; default: from the
    /// sessions' sizes (one part, in memory, for sessions that fit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions: Option<u32>,
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
