//! [`SeedConfig`], what a seed generates, and its check into a
//! [`CheckedSeed`].

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Deserializer};
use tape_otlp::SignalSet;
use tape_seed_generator::{DEFAULT_START, Generator, Params, ParamsError, Pattern};
use tape_session::{SessionId, Timestamp, config};

use crate::error::SeedError;
use crate::patterns::{self, DEFAULT_ERROR_RATE, DEFAULT_RATE};

/// The pattern a seed uses unless it names one.
pub const DEFAULT_PATTERN: &str = "basic-topology";

/// What a seed generates: the options of `otlp-tape seed` without `--live`
/// and ClickHouse (those are arguments of [`run`](crate::run)), and the
/// body of `POST /api/v1/seeds`.
///
/// In JSON every value is a string or a number, as its flag takes it
/// (`"duration": "90s"` or `90`, `"rate": "2.5"` or `2.5`), and `null` is
/// the same as leaving it out.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedConfig {
    /// A built-in pattern's name or a pattern file (YAML). Default
    /// [`DEFAULT_PATTERN`].
    #[serde(default = "default_pattern", deserialize_with = "pattern_name")]
    #[cfg_attr(feature = "clap", arg(
        long, value_name = "NAME|FILE", default_value = DEFAULT_PATTERN,
        help = "A built-in pattern's name or a pattern file (YAML); `otlp-tape patterns list` shows the built-in ones",
    ))]
    pub pattern: String,
    /// Length of the session on the virtual clock, in nanoseconds; default:
    /// the pattern's. Not together with `preset`.
    #[serde(default, deserialize_with = "config::duration")]
    #[cfg_attr(feature = "clap", arg(
        long, value_name = "DURATION", value_parser = config::parse_duration_flag, allow_hyphen_values = true,
        help = "Length of the session on the virtual clock, such as 30s, 1m30s or 2h (a bare number is seconds); \
                default: the pattern's",
    ))]
    pub duration: Option<u64>,
    /// A preset duration instead of `duration`.
    #[serde(default, deserialize_with = "config::parsed")]
    #[cfg_attr(
        feature = "clap",
        arg(long, value_enum, conflicts_with = "duration", help = "A preset duration: quick (10s) or basic (30s)")
    )]
    pub preset: Option<Preset>,
    /// Traces per second; default: the pattern's, else [`DEFAULT_RATE`].
    #[serde(default, deserialize_with = "config::parsed")]
    #[cfg_attr(
        feature = "clap",
        arg(
            long,
            value_name = "TRACES_PER_SECOND",
            allow_negative_numbers = true,
            help = "Traces per second; default: the pattern's, else 10",
        )
    )]
    pub rate: Option<f64>,
    /// Error probability of spans whose pattern sets none, 0 to 1; default:
    /// the pattern's, else [`DEFAULT_ERROR_RATE`].
    #[serde(default, deserialize_with = "config::parsed")]
    #[cfg_attr(
        feature = "clap",
        arg(
            long,
            value_name = "0..1",
            allow_negative_numbers = true,
            help = "Error probability of spans whose pattern sets none, 0 to 1; default: the pattern's, else 0.05",
        )
    )]
    pub error_rate: Option<f64>,
    /// Seed of every random choice; default: a random seed, recorded.
    #[serde(default, deserialize_with = "config::parsed")]
    #[cfg_attr(
        feature = "clap",
        arg(
            long,
            value_name = "N",
            help = "Seed of every random choice; default: a random seed, recorded and printed"
        )
    )]
    pub seed: Option<u64>,
    /// Start of the session on the virtual clock; default
    /// [`DEFAULT_START`] (2026-01-01T00:00:00Z), or now for a live run.
    #[serde(default, deserialize_with = "config::parsed")]
    #[cfg_attr(feature = "clap", arg(
        long, value_name = "TIME|now", value_parser = str::parse::<Start>,
        help = "Start of the session on the virtual clock: an RFC 3339 time, or `now`; default 2026-01-01T00:00:00Z",
    ))]
    pub start: Option<Start>,
    /// The signals to write. Default all.
    #[serde(default = "all_signals", deserialize_with = "signal_set")]
    #[cfg_attr(feature = "clap", arg(
        long, value_name = "LIST", value_parser = parse_signals, default_value = "all",
        help = "Signals to write: a comma-separated list of traces, metrics and logs, or all",
    ))]
    pub signals: SignalSet,
    /// Id of the new session; generated as
    /// `seed-<pattern>-YYYYMMDD-HHMMSS-xxxxxxxx` when absent.
    #[serde(default, deserialize_with = "config::parsed")]
    #[cfg_attr(
        feature = "clap",
        arg(long, help = "Id of the new session; generated as seed-<pattern>-YYYYMMDD-HHMMSS-xxxxxxxx when absent")
    )]
    pub session_id: Option<SessionId>,
    /// Human-readable description of the session.
    #[serde(default, deserialize_with = "config::parsed")]
    #[cfg_attr(feature = "clap", arg(long))]
    pub description: Option<String>,
}

/// `--signals`, as the flag's value parser.
#[cfg(feature = "clap")]
fn parse_signals(list: &str) -> Result<SignalSet, String> {
    list.parse().map_err(|error: tape_otlp::ParseSignalError| error.to_string())
}

impl Default for SeedConfig {
    fn default() -> Self {
        SeedConfig {
            pattern: default_pattern(),
            duration: None,
            preset: None,
            rate: None,
            error_rate: None,
            seed: None,
            start: None,
            signals: SignalSet::ALL,
            session_id: None,
            description: None,
        }
    }
}

fn default_pattern() -> String {
    DEFAULT_PATTERN.to_owned()
}

fn all_signals() -> SignalSet {
    SignalSet::ALL
}

fn pattern_name<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(config::parsed(deserializer)?.unwrap_or_else(default_pattern))
}

fn signal_set<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SignalSet, D::Error> {
    Ok(config::parsed(deserializer)?.unwrap_or(SignalSet::ALL))
}

/// Preset durations of a seed, as the earlier system's `seed:quick` and
/// `seed:basic`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Preset {
    /// 10 seconds.
    Quick,
    /// 30 seconds.
    Basic,
}

impl Preset {
    /// The preset's duration in nanoseconds.
    pub fn duration_nanos(self) -> u64 {
        match self {
            Preset::Quick => 10_000_000_000,
            Preset::Basic => 30_000_000_000,
        }
    }
}

impl FromStr for Preset {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "quick" => Ok(Preset::Quick),
            "basic" => Ok(Preset::Basic),
            _ => Err("possible values: quick, basic".to_owned()),
        }
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Preset::Quick => "quick",
            Preset::Basic => "basic",
        })
    }
}

/// Where a seed session starts on the virtual clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The wall clock when the seed runs.
    Now,
    /// A given time.
    At(Timestamp),
}

impl FromStr for Start {
    type Err = String;

    /// `now` or an RFC 3339 time.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.trim().eq_ignore_ascii_case("now") {
            return Ok(Start::Now);
        }
        Timestamp::parse_rfc3339(text.trim()).map(Start::At).ok_or_else(|| {
            format!("invalid start {text:?}: expected `now` or an RFC 3339 time such as 2026-01-01T00:00:00Z")
        })
    }
}

/// A [`SeedConfig`] whose pattern was read and whose parameters the
/// pattern can be generated with: what [`run`](crate::run) takes.
#[derive(Debug, Clone)]
pub struct CheckedSeed {
    pub(crate) config: SeedConfig,
    pub(crate) pattern: Arc<Pattern>,
    traces: u64,
}

impl CheckedSeed {
    /// The number of traces the seed generates (duration × rate).
    pub fn traces(&self) -> u64 {
        self.traces
    }

    /// The config it was checked from.
    pub fn config(&self) -> &SeedConfig {
        &self.config
    }

    /// The pattern it generates.
    pub fn pattern(&self) -> &Pattern {
        &self.pattern
    }

    /// The generator's parameters with `seed` and `start` fixed.
    pub(crate) fn params(&self, seed: u64, start: Timestamp) -> Params {
        params(&self.config, &self.pattern, seed, start)
    }
}

fn params(config: &SeedConfig, pattern: &Pattern, seed: u64, start: Timestamp) -> Params {
    Params {
        seed,
        start,
        duration_nanos: config
            .preset
            .map(Preset::duration_nanos)
            .or(config.duration)
            .unwrap_or(pattern.default_duration_nanos),
        rate: config.rate.or(pattern.default_rate).unwrap_or(DEFAULT_RATE),
        error_rate: config.error_rate.or(pattern.default_error_rate).unwrap_or(DEFAULT_ERROR_RATE),
        signals: config.signals,
    }
}

impl SeedConfig {
    /// [`validate`](Self::validate) before writing the session at once:
    /// parameters the pattern cannot be generated with are
    /// [`SeedError::NotGenerated`] ("nothing was written").
    pub fn validate_for_writing(&self) -> Result<CheckedSeed, SeedError> {
        self.validate().map_err(|error| match error {
            SeedError::InvalidParameters { pattern, problem } => SeedError::NotGenerated { pattern, problem },
            other => other,
        })
    }

    /// Reads the pattern and checks the parameters as the seed would use
    /// them, without generating anything.
    pub fn validate(&self) -> Result<CheckedSeed, SeedError> {
        if self.preset.is_some() && self.duration.is_some() {
            return Err(SeedError::PresetAndDuration);
        }
        let pattern = patterns::load(&self.pattern)?;
        let start = match self.start {
            None => DEFAULT_START,
            Some(Start::Now) => Timestamp::from_datetime(chrono::Utc::now()).unwrap_or(DEFAULT_START),
            Some(Start::At(time)) => time,
        };
        let params = params(self, &pattern, self.seed.unwrap_or(0), start);
        let invalid = |problem: ParamsError| SeedError::InvalidParameters { pattern: pattern.name.clone(), problem };
        let traces = params.check().map_err(invalid)?;
        Generator::new(&pattern, params).map_err(invalid)?;
        Ok(CheckedSeed { config: self.clone(), pattern: Arc::new(pattern), traces })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<SeedConfig, String> {
        serde_json::from_str(json).map_err(|error| error.to_string())
    }

    #[test]
    fn the_json_forms_of_the_options() {
        assert_eq!(parse("{}").unwrap(), SeedConfig::default());
        assert_eq!(parse(r#"{"pattern": null, "signals": null}"#).unwrap(), SeedConfig::default());
        let config = parse(
            r#"{"pattern": "payment-failure", "duration": "1m30s", "rate": 2.5, "errorRate": "0.1", "seed": 7,
                "start": "now", "signals": "traces,logs", "sessionId": "s-1", "description": "d"}"#,
        )
        .unwrap();
        assert_eq!(config.pattern, "payment-failure");
        assert_eq!(config.duration, Some(90_000_000_000));
        assert_eq!((config.rate, config.error_rate, config.seed), (Some(2.5), Some(0.1), Some(7)));
        assert_eq!(config.start, Some(Start::Now));
        assert_eq!(config.signals.to_string(), "traces,logs");
        assert_eq!(config.session_id.unwrap().as_str(), "s-1");
        assert_eq!(parse(r#"{"preset": "quick"}"#).unwrap().preset, Some(Preset::Quick));
        assert_eq!(parse(r#"{"duration": 5}"#).unwrap().duration, Some(5_000_000_000));
    }

    #[test]
    fn bad_options_are_named() {
        for (json, expected) in [
            (r#"{"live": true}"#, "unknown field `live`"),
            (r#"{"endpoint": "x"}"#, "unknown field `endpoint`"),
            (r#"{"preset": "slow"}"#, "possible values: quick, basic"),
            (r#"{"start": "yesterday"}"#, "invalid start \"yesterday\""),
            (r#"{"signals": "traces,bogus"}"#, "unknown signal \"bogus\""),
            (r#"{"sessionId": "a'b"}"#, "invalid session id"),
            (r#"{"seed": -1}"#, "invalid value \"-1\""),
        ] {
            let error = parse(json).unwrap_err();
            assert!(error.contains(expected), "{json}: {error}");
        }
    }

    #[test]
    fn validate_checks_as_the_seed_runs() {
        let config = SeedConfig { rate: Some(10.0), duration: Some(3_000_000_000), ..SeedConfig::default() };
        assert_eq!(config.validate().unwrap().traces(), 30);
        for (config, expected) in [
            (
                SeedConfig { rate: Some(0.0), ..SeedConfig::default() },
                "cannot generate pattern basic-topology: the rate must be a number of traces per second above 0, not 0",
            ),
            (SeedConfig { duration: Some(0), ..SeedConfig::default() }, "the duration must be above zero"),
            (SeedConfig { error_rate: Some(1.5), ..SeedConfig::default() }, "the error rate must be between 0 and 1"),
            (SeedConfig { pattern: "nope".to_owned(), ..SeedConfig::default() }, "unknown pattern \"nope\""),
            (
                SeedConfig { preset: Some(Preset::Quick), duration: Some(1), ..SeedConfig::default() },
                "the argument '--preset <PRESET>' cannot be used with '--duration <DURATION>'",
            ),
        ] {
            let error = config.validate().unwrap_err().to_string();
            assert!(error.contains(expected), "{error}");
        }
    }
}
