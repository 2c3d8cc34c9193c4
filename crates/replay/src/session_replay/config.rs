//! The options of a replay of a stored session: [`ReplayConfig`] as given
//! (by flags or as JSON), [`ReplayConfig::validate`] into a
//! [`ValidReplayConfig`].

use std::fmt::Display;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};
use tape_otlp::wire::Shard;
use tape_otlp::{Signal, SignalSet};
use tape_session::{SessionId, SessionType, TimeBound, Timestamp};

use super::error::Error;
use crate::engine::IdRegeneration;
use crate::env;
use crate::exporter::{Compression, Protocol};
use crate::pacing::Speed;
use crate::target::TargetConfig;
use crate::timestamps::TimestampMode;

/// The longest a replay runs when the options say nothing: an hour.
pub const DEFAULT_DURATION: Duration = Duration::from_hours(1);
/// Requests in flight at most when the options say nothing.
pub const DEFAULT_CONCURRENCY: u16 = 32;
/// The most requests in flight a replay may have.
pub const MAX_CONCURRENCY: u16 = 256;
/// Attempts per request when the options say nothing.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;

/// The session a replay sends: `--session ID|auto`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SessionChoice {
    /// Picked by the orchestrator (`auto`).
    #[default]
    Auto,
    /// This session.
    Id(SessionId),
}

impl FromStr for SessionChoice {
    type Err = String;

    /// `auto` (in any case) or a session id.
    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("auto") {
            return Ok(SessionChoice::Auto);
        }
        SessionId::new(text).map(SessionChoice::Id).map_err(|error| format!("{error}; or auto to pick one"))
    }
}

/// How `--session auto` picks among the candidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// The newest creation time (`createdAt`, then the greatest id): the
    /// session made last, whatever clock its records are on.
    #[default]
    Latest,
    /// Any one, at random.
    Random,
    /// The most items (then the most bytes, then the greatest id).
    Largest,
    /// The fewest items (then the fewest bytes, then the least id).
    Smallest,
}

impl Strategy {
    /// Every strategy, in the order the help lists them.
    pub const ALL: [Strategy; 4] = [Strategy::Latest, Strategy::Random, Strategy::Largest, Strategy::Smallest];

    /// Its name: `latest`, `random`, `largest` or `smallest`.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Latest => "latest",
            Strategy::Random => "random",
            Strategy::Largest => "largest",
            Strategy::Smallest => "smallest",
        }
    }
}

impl Display for Strategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for Strategy {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Strategy::ALL
            .into_iter()
            .find(|strategy| strategy.as_str() == text)
            .ok_or_else(|| "expected latest, random, largest or smallest".to_owned())
    }
}

/// `--max-failures N|unlimited`: failed requests tolerated; `None` is no
/// limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureLimit(pub Option<u64>);

impl FromStr for FailureLimit {
    type Err = String;

    /// A whole number, or `unlimited` (in any case).
    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("unlimited") {
            return Ok(FailureLimit(None));
        }
        text.parse()
            .map(|limit| FailureLimit(Some(limit)))
            .map_err(|_| "expected a number such as 0 or 10, or unlimited".to_owned())
    }
}

/// `--rate-limit`: items per second above zero.
///
/// # Errors
/// Not a finite number above zero; the message says what would be valid.
pub fn parse_rate_limit(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err("expected items per second above 0, such as 500 or 2.5".to_owned()),
    }
}

/// The options of a replay of a stored session, as the control API takes
/// them (its replay body) and the command line gives them (`replay`'s
/// flags of the same names, in kebab-case). Every value takes the forms a
/// flag takes (see [`tape_session::config`]): a string or a number, lists
/// as arrays or comma-separated strings, `true` for a switch, and `null`
/// as absent. The defaults are the flags'.
///
/// Options that name files on the host or only change what is displayed
/// (`--report`, `--checkpoint`, `--resume`, `--dry-run`, `--ca-file`,
/// `--log-interval`, `--no-progress`) are not here: see
/// [`RunOptions`](crate::RunOptions).
///
/// ```
/// let config: tape_replay::ReplayConfig =
///     serde_json::from_str(r#"{"session": "seed-1", "speed": "max", "services": "checkout,payment"}"#).unwrap();
/// let config = config.validate(|_| None).unwrap();
/// assert_eq!(config.speed, tape_replay::Speed::Max);
/// assert!(serde_json::from_str::<tape_replay::ReplayConfig>(r#"{"report": "r.json"}"#).is_err());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(clippy::struct_excessive_bools)] // independent switches
pub struct ReplayConfig {
    /// The session to replay, or `auto` to pick one of the store's
    /// completed sessions by `strategy` and `filter_type` (with a resume:
    /// the checkpoint's session). Default: `auto`.
    #[serde(default, deserialize_with = "tape_session::config::parsed")]
    pub session: Option<SessionChoice>,
    /// How `auto` picks: `latest`, `random`, `largest` or `smallest`.
    /// Default: `latest`; only with `auto`.
    #[serde(default, deserialize_with = "tape_session::config::parsed")]
    pub strategy: Option<Strategy>,
    /// Only sessions of this type: `seed`, `capture` or `training` (an
    /// explicit session must be of this type). Default: any.
    #[serde(default, deserialize_with = "tape_session::config::parsed")]
    pub filter_type: Option<SessionType>,

    /// Base URL of the OTLP target; see [`TargetConfig::endpoint`].
    #[serde(default)]
    pub endpoint: Option<String>,
    /// OTLP protocol; see [`TargetConfig::protocol`].
    #[serde(default, deserialize_with = "crate::target::protocol")]
    pub protocol: Option<Protocol>,
    /// Headers, `KEY=VALUE` each; see [`TargetConfig::headers`].
    #[serde(default, rename = "header", deserialize_with = "crate::target::headers")]
    pub headers: Vec<(String, String)>,
    /// `gzip` or `none`; see [`TargetConfig::compression`].
    #[serde(default, deserialize_with = "tape_session::config::parsed")]
    pub compression: Option<Compression>,
    /// The longest one export may take; see [`TargetConfig::timeout`].
    #[serde(default, deserialize_with = "crate::target::timeout")]
    pub timeout: Option<Duration>,
    /// Accept any certificate; see [`TargetConfig::insecure`].
    #[serde(default, deserialize_with = "tape_session::config::switch")]
    pub insecure: bool,

    /// Pace: the recorded pace times a factor, or `max`. Default:
    /// `REPLAY_DEFAULT_SPEED`, then 1.
    #[serde(default, deserialize_with = "tape_session::config::parsed")]
    pub speed: Option<Speed>,
    /// How timestamps move: `none`, `relative` or `current`. Default:
    /// `relative`.
    #[serde(default, deserialize_with = "tape_session::config::parsed")]
    pub timestamps: Option<TimestampMode>,
    /// Replay the session again and again until `duration` or a stop
    /// (key `loop`). Default: `false`.
    #[serde(default, rename = "loop", deserialize_with = "tape_session::config::switch")]
    pub looping: bool,
    /// Stop after this many whole passes, at least 1, with the reason
    /// `finished`; implies `loop`. `duration` still limits the whole
    /// replay. Default: none, a loop runs until `duration` or a stop.
    #[serde(default, deserialize_with = "tape_session::config::parsed")]
    pub passes: Option<u64>,
    /// The longest the whole replay runs, such as `90s` or `2h` (a bare
    /// number is seconds). Default: [`DEFAULT_DURATION`], an hour.
    #[serde(default, deserialize_with = "duration")]
    pub duration: Option<Duration>,

    /// Replay traces (with `metrics` and `logs`: only the signals named;
    /// none of the three: all).
    #[serde(default, deserialize_with = "tape_session::config::switch")]
    pub traces: bool,
    /// Replay metrics (see `traces`).
    #[serde(default, deserialize_with = "tape_session::config::switch")]
    pub metrics: bool,
    /// Replay logs (see `traces`).
    #[serde(default, deserialize_with = "tape_session::config::switch")]
    pub logs: bool,
    /// Only these services (`service.name`); the other resources are cut
    /// out of each request. Default: every service.
    #[serde(default, deserialize_with = "tape_session::config::list")]
    pub services: Vec<String>,
    /// Only records received at or after this point: an offset into the
    /// session or an RFC 3339 time. Default: the start.
    #[serde(default, deserialize_with = "tape_session::config::parsed")]
    pub from: Option<TimeBound>,
    /// Only records received before this point. Default: the end.
    #[serde(default, deserialize_with = "tape_session::config::parsed")]
    pub until: Option<TimeBound>,
    /// Only records received during this phase of the session, within
    /// `from` and `until`. Default: every phase.
    #[serde(default, deserialize_with = "tape_session::config::parsed")]
    pub phase: Option<String>,
    /// Only the items of shard `I/N` (`I` from 0 to `N - 1`, `N` at most
    /// 1024): N replays with the same options and shards `0/N` to
    /// `N-1/N` send disjoint parts of the selection whose union is all of
    /// it, each trace whole from one of them (see
    /// [`tape_otlp::wire::cut_to_shard`]). An `auto` session must then be
    /// picked the same way by every shard: `strategy` `random` is refused.
    /// Default: the whole selection.
    #[serde(default, deserialize_with = "tape_session::config::parsed")]
    pub shard: Option<Shard>,
    /// The schedule's time zero, an RFC 3339 time: the first record of the
    /// selection is due then (waited for when it is in the future, caught
    /// up with when past), and `relative` and `current` timestamps move
    /// as of the schedule rather than the moment each request goes, so
    /// replays on several machines with the same `startAt` (shards) send
    /// every item with the same timestamps. Default: the first record
    /// goes at once.
    #[serde(default, deserialize_with = "start_at")]
    pub start_at: Option<Timestamp>,

    /// Items per second at most, on top of the pace. Default: no limit.
    #[serde(default, deserialize_with = "rate_limit")]
    pub rate_limit: Option<f64>,
    /// Requests in flight at most, 1 to 256. Default: [`DEFAULT_CONCURRENCY`].
    #[serde(default, deserialize_with = "tape_session::config::parsed")]
    pub concurrency: Option<u16>,
    /// New trace and span ids on every pass, the first included (by
    /// default only passes after the first get new ids).
    #[serde(default, deserialize_with = "tape_session::config::switch")]
    pub regenerate_ids: bool,
    /// The recorded ids on every pass, also when looping.
    #[serde(default, deserialize_with = "tape_session::config::switch")]
    pub keep_ids: bool,
    /// Seed of the new ids. Default: random (reported).
    #[serde(default, deserialize_with = "tape_session::config::parsed")]
    pub id_seed: Option<u64>,
    /// Failed requests tolerated before the replay stops, or `unlimited`.
    /// Default: 0, the first failed request stops it.
    #[serde(default, deserialize_with = "tape_session::config::parsed")]
    pub max_failures: Option<FailureLimit>,
    /// Attempts per request, the first included, at least 1. Default:
    /// [`DEFAULT_MAX_ATTEMPTS`].
    #[serde(default, deserialize_with = "tape_session::config::parsed")]
    pub max_attempts: Option<u32>,
    /// Skip the rest of a damaged blob (counted and reported) instead of
    /// stopping there.
    #[serde(default, deserialize_with = "tape_session::config::switch")]
    pub skip_corrupt: bool,
}

/// A [`ReplayConfig`] checked, with its defaults filled in.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::struct_excessive_bools)] // independent switches
pub struct ValidReplayConfig {
    /// The session, or `auto`.
    pub session: SessionChoice,
    /// How `auto` picks, when given.
    pub strategy: Option<Strategy>,
    /// The type the session must be.
    pub filter_type: Option<SessionType>,
    /// The target, unresolved: the environment fills what it leaves out.
    pub target: TargetConfig,
    /// The pace.
    pub speed: Speed,
    /// How timestamps move.
    pub timestamps: TimestampMode,
    /// Whether the replay loops (also when `passes` is given).
    pub looping: bool,
    /// The passes after which it stops, when given.
    pub passes: Option<u64>,
    /// The longest the replay runs.
    pub duration: Duration,
    /// The signals sent.
    pub signals: SignalSet,
    /// The services sent, trimmed, without blanks and repeats; empty for
    /// every service.
    pub services: Vec<String>,
    /// The start of the window.
    pub from: Option<TimeBound>,
    /// The end of the window.
    pub until: Option<TimeBound>,
    /// The phase of the window.
    pub phase: Option<String>,
    /// The shard sent, when given.
    pub shard: Option<Shard>,
    /// The schedule's time zero, when given.
    pub start_at: Option<Timestamp>,
    /// Items per second at most.
    pub rate_limit: Option<f64>,
    /// Requests in flight at most.
    pub concurrency: u16,
    /// Which passes get new ids.
    pub ids: IdRegeneration,
    /// The seed of new ids, when given.
    pub id_seed: Option<u64>,
    /// Failed requests tolerated; `None` is no limit.
    pub max_failures: Option<u64>,
    /// Attempts per request.
    pub max_attempts: u32,
    /// Whether damaged blobs are skipped.
    pub skip_corrupt: bool,
}

impl ReplayConfig {
    /// The target options.
    pub fn target(&self) -> TargetConfig {
        TargetConfig {
            endpoint: self.endpoint.clone(),
            protocol: self.protocol,
            headers: self.headers.clone(),
            compression: self.compression,
            timeout: self.timeout,
            insecure: self.insecure,
        }
    }

    /// Checks the options and fills in the defaults; `env` looks up a
    /// variable (`REPLAY_DEFAULT_SPEED`), `None` when it is unset.
    ///
    /// # Errors
    /// [`Error::Invalid`], naming the option and what would be valid.
    pub fn validate(self, env: impl Fn(&str) -> Option<String>) -> Result<ValidReplayConfig, Error> {
        if self.regenerate_ids && self.keep_ids {
            return Err(Error::Invalid("the argument '--regenerate-ids' cannot be used with '--keep-ids'".to_owned()));
        }
        let concurrency = self.concurrency.unwrap_or(DEFAULT_CONCURRENCY);
        if !(1..=MAX_CONCURRENCY).contains(&concurrency) {
            return Err(Error::Invalid(format!(
                "invalid value '{concurrency}' for '--concurrency <N>': {concurrency} is not in 1..={MAX_CONCURRENCY}"
            )));
        }
        let max_attempts = self.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS);
        if max_attempts == 0 {
            return Err(Error::Invalid(format!(
                "invalid value '0' for '--max-attempts <N>': 0 is not in 1..={}",
                u32::MAX
            )));
        }
        let speed = match self.speed {
            Some(speed) => speed,
            None => match env(env::REPLAY_DEFAULT_SPEED).filter(|value| !value.is_empty()) {
                Some(text) => text.parse::<Speed>().map_err(|expected| {
                    Error::Invalid(format!("invalid {} {text:?}: {expected}", env::REPLAY_DEFAULT_SPEED))
                })?,
                None => Speed::Factor(1.0),
            },
        };
        if self.passes == Some(0) {
            return Err(Error::Invalid(format!(
                "invalid value '0' for '--passes <N>': 0 is not in 1..={}; a replay makes at least one pass",
                u64::MAX
            )));
        }
        let signals = signals(self.traces, self.metrics, self.logs);
        let services = services(&self.services)?;
        let duration = self.duration.unwrap_or(DEFAULT_DURATION);
        if duration.is_zero() {
            return Err(Error::Invalid("--duration must be more than zero".to_owned()));
        }
        if let Some(shard) = self.shard
            && self.strategy == Some(Strategy::Random)
        {
            return Err(Error::Invalid(format!(
                "--shard {shard} cannot be used with --strategy random: every shard must replay the same session; \
                 give --session ID, or a --strategy that every shard resolves alike (latest, largest, smallest)"
            )));
        }
        let ids = match (self.regenerate_ids, self.keep_ids) {
            (true, _) => IdRegeneration::Always,
            (_, true) => IdRegeneration::Never,
            _ => IdRegeneration::FromSecondPass,
        };
        Ok(ValidReplayConfig {
            target: self.target(),
            session: self.session.unwrap_or_default(),
            strategy: self.strategy,
            filter_type: self.filter_type,
            speed,
            timestamps: self.timestamps.unwrap_or(TimestampMode::Relative),
            looping: self.looping || self.passes.is_some(),
            passes: self.passes,
            duration,
            signals,
            services,
            from: self.from,
            until: self.until,
            phase: self.phase,
            shard: self.shard,
            start_at: self.start_at,
            rate_limit: self.rate_limit,
            concurrency,
            ids,
            id_seed: self.id_seed,
            max_failures: self.max_failures.unwrap_or(FailureLimit(Some(0))).0,
            max_attempts,
            skip_corrupt: self.skip_corrupt,
        })
    }
}

/// `traces`, `metrics`, `logs`: the ones named, or all.
fn signals(traces: bool, metrics: bool, logs: bool) -> SignalSet {
    let named: SignalSet = [(traces, Signal::Traces), (metrics, Signal::Metrics), (logs, Signal::Logs)]
        .into_iter()
        .filter_map(|(named, signal)| named.then_some(signal))
        .collect();
    if named.is_empty() { SignalSet::ALL } else { named }
}

/// `services`, trimmed, without blanks and repeats.
fn services(given: &[String]) -> Result<Vec<String>, Error> {
    let mut services: Vec<String> = Vec::new();
    for service in given.iter().map(|service| service.trim()).filter(|service| !service.is_empty()) {
        if !services.iter().any(|known| known == service) {
            services.push(service.to_owned());
        }
    }
    if services.is_empty() && !given.is_empty() {
        return Err(Error::Invalid(
            "--services names no service; give service.name values such as checkout,payment".to_owned(),
        ));
    }
    Ok(services)
}

fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Duration>, D::Error> {
    Ok(tape_session::config::duration(deserializer)?.map(Duration::from_nanos))
}

/// `--start-at`: an RFC 3339 time.
///
/// # Errors
/// Not an RFC 3339 time; the message says what would be valid.
pub fn parse_start_at(text: &str) -> Result<Timestamp, String> {
    Timestamp::parse_rfc3339_explained(text.trim())
}

/// A start time, for serde.
struct StartAt(Timestamp);

impl FromStr for StartAt {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        parse_start_at(text).map(StartAt)
    }
}

fn start_at<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Timestamp>, D::Error> {
    Ok(tape_session::config::parsed::<D, StartAt>(deserializer)?.map(|start| start.0))
}

/// A rate limit, for serde.
struct RateLimit(f64);

impl FromStr for RateLimit {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        parse_rate_limit(text).map(RateLimit)
    }
}

fn rate_limit<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
    Ok(tape_session::config::parsed::<D, RateLimit>(deserializer)?.map(|rate| rate.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<ReplayConfig, String> {
        serde_json::from_str(json).map_err(|error| error.to_string())
    }

    fn invalid(config: ReplayConfig, env: &[(&str, &str)]) -> String {
        let env: Vec<(String, String)> =
            env.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect();
        config
            .validate(|name| env.iter().find(|(known, _)| known == name).map(|(_, value)| value.clone()))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn failure_limits_session_choices_and_speeds_parse() {
        assert_eq!("0".parse(), Ok(FailureLimit(Some(0))));
        assert_eq!("Unlimited".parse(), Ok(FailureLimit(None)));
        assert!("-1".parse::<FailureLimit>().is_err());
        assert_eq!("max".parse(), Ok(Speed::Max));
        assert_eq!("0.5".parse(), Ok(Speed::Factor(0.5)));
        for bad in ["0", "-1", "NaN", "inf", "fast"] {
            assert_eq!(bad.parse::<Speed>(), Err("expected a factor above 0 such as 0.5, 1 or 10, or max".to_owned()));
        }
        assert_eq!("auto".parse(), Ok(SessionChoice::Auto));
        assert_eq!(" AUTO ".parse(), Ok(SessionChoice::Auto));
        assert_eq!("seed-1".parse(), Ok(SessionChoice::Id("seed-1".parse().unwrap())));
        assert!("no/slashes".parse::<SessionChoice>().unwrap_err().ends_with("; or auto to pick one"));
        assert_eq!("largest".parse(), Ok(Strategy::Largest));
    }

    #[test]
    fn the_defaults_are_the_flags() {
        let config = parse("{}").unwrap().validate(|_| None).unwrap();
        assert_eq!(config.session, SessionChoice::Auto);
        assert_eq!(config.speed, Speed::Factor(1.0));
        assert_eq!(config.timestamps, TimestampMode::Relative);
        assert_eq!(config.duration, Duration::from_hours(1));
        assert_eq!(config.signals, SignalSet::ALL);
        assert_eq!((config.concurrency, config.max_attempts, config.max_failures), (32, 5, Some(0)));
        assert_eq!(config.ids, IdRegeneration::FromSecondPass);
        assert_eq!(config.target, TargetConfig::default());
    }

    #[test]
    fn the_json_forms_are_the_flags_values() {
        let config = parse(
            r#"{"session": "seed-1", "strategy": null, "filterType": "seed", "endpoint": "http://c:4318",
                "protocol": "grpc", "header": "a=1,2", "compression": "none", "timeout": 5, "insecure": true,
                "speed": 10, "timestamps": "current", "loop": true, "passes": "3", "duration": "90s", "traces": true,
                "logs": false, "services": ["a, b", "a"], "from": "30s", "until": 60, "phase": "failure",
                "rateLimit": 2.5, "concurrency": "8", "keepIds": true, "idSeed": 42, "maxFailures": "unlimited",
                "maxAttempts": 2, "skipCorrupt": true, "shard": "1/3", "startAt": "2026-12-04T22:00:00Z"}"#,
        )
        .unwrap();
        let config = config.validate(|_| Some("max".to_owned())).unwrap();
        assert_eq!(config.shard, Some(Shard::new(1, 3).unwrap()));
        assert_eq!(config.start_at, Timestamp::parse_rfc3339("2026-12-04T22:00:00Z"));
        assert_eq!(config.session, SessionChoice::Id("seed-1".parse().unwrap()));
        assert_eq!(config.filter_type, Some(SessionType::Seed));
        assert_eq!(config.target.headers, [("a".to_owned(), "1,2".to_owned())]);
        assert_eq!(config.target.timeout, Some(Duration::from_secs(5)));
        assert_eq!(config.speed, Speed::Factor(10.0));
        assert_eq!(config.duration, Duration::from_secs(90));
        assert_eq!(config.signals, SignalSet::NONE.with(Signal::Traces));
        assert_eq!(config.services, ["a", "b"]);
        assert_eq!(config.until, Some(TimeBound::Offset(60_000_000_000)));
        assert_eq!((config.rate_limit, config.concurrency, config.id_seed), (Some(2.5), 8, Some(42)));
        assert_eq!((config.ids, config.max_failures, config.max_attempts), (IdRegeneration::Never, None, 2));
        assert!(config.looping && config.skip_corrupt && config.target.insecure);
        assert_eq!(config.passes, Some(3));
    }

    #[test]
    fn passes_imply_a_loop_and_are_at_least_one() {
        let config = parse(r#"{"passes": 2}"#).unwrap().validate(|_| None).unwrap();
        assert_eq!((config.looping, config.passes), (true, Some(2)));
        let config = parse(r#"{"loop": true, "passes": null}"#).unwrap().validate(|_| None).unwrap();
        assert_eq!((config.looping, config.passes), (true, None));
        let message = invalid(ReplayConfig { passes: Some(0), ..ReplayConfig::default() }, &[]);
        assert!(message.starts_with("invalid value '0' for '--passes <N>': 0 is not in 1.."), "{message}");
        assert!(parse(r#"{"passes": "many"}"#).is_err());
    }

    #[test]
    fn options_of_files_and_display_are_unknown() {
        for name in ["report", "checkpoint", "resume", "dryRun", "logInterval", "noProgress", "caFile", "store"] {
            let error = parse(&format!(r#"{{"{name}": true}}"#)).unwrap_err();
            assert!(error.contains(&format!("unknown field `{name}`")), "{name}: {error}");
        }
    }

    #[test]
    fn bad_values_say_what_is_expected() {
        for (json, expected) in [
            (r#"{"speed": 0}"#, "expected a factor above 0 such as 0.5, 1 or 10, or max"),
            (r#"{"timestamps": "shifted"}"#, "expected none, relative or current"),
            (r#"{"strategy": "best"}"#, "expected latest, random, largest or smallest"),
            (r#"{"rateLimit": -1}"#, "expected items per second above 0"),
            (r#"{"maxFailures": "lots"}"#, "expected a number such as 0 or 10, or unlimited"),
            (r#"{"from": "soon"}"#, "expected an offset into the session"),
            (r#"{"header": "novalue"}"#, "expected KEY=VALUE"),
            (r#"{"shard": "3/3"}"#, "invalid value \"3/3\": the index must be below the count (0 to 2), not 3"),
            (r#"{"shard": "0/0"}"#, "the count must be 1 to 1024, not 0"),
            (r#"{"shard": "x"}"#, "expected I/N"),
            (r#"{"startAt": "yesterday"}"#, "invalid value \"yesterday\": expected an RFC 3339 time"),
            (r#"{"startAt": "2026-12-04T22:00:00"}"#, "2026-12-04T22:00:00 has no time zone: add Z for UTC"),
            (r#"{"startAt": "9999-12-31T23:59:59Z"}"#, "9999-12-31T23:59:59Z is out of range: give a time from 1970"),
            (r#"{"startAt": "1969-12-31T23:59:59Z"}"#, "1969-12-31T23:59:59Z is out of range"),
            (
                r#"{"shard": "18446744073709551616/2"}"#,
                "the index must be below the count (0 to 1), not 18446744073709551616",
            ),
        ] {
            let error = parse(json).unwrap_err();
            assert!(error.contains(expected), "{json}: {error}");
        }
        let message = invalid(ReplayConfig { services: vec![" ".to_owned()], ..ReplayConfig::default() }, &[]);
        assert_eq!(message, "--services names no service; give service.name values such as checkout,payment");
        let message = invalid(ReplayConfig::default(), &[(env::REPLAY_DEFAULT_SPEED, "fast")]);
        assert_eq!(
            message,
            "invalid REPLAY_DEFAULT_SPEED \"fast\": expected a factor above 0 such as 0.5, 1 or 10, or max"
        );
        let message = invalid(ReplayConfig { duration: Some(Duration::ZERO), ..ReplayConfig::default() }, &[]);
        assert_eq!(message, "--duration must be more than zero");
        let message = invalid(ReplayConfig { regenerate_ids: true, keep_ids: true, ..ReplayConfig::default() }, &[]);
        assert!(message.contains("'--regenerate-ids' cannot be used with '--keep-ids'"), "{message}");
        let message = invalid(ReplayConfig { concurrency: Some(0), ..ReplayConfig::default() }, &[]);
        assert!(message.ends_with("0 is not in 1..=256"), "{message}");
        let shard = Some(Shard::new(0, 2).unwrap());
        let random = ReplayConfig { shard, strategy: Some(Strategy::Random), ..ReplayConfig::default() };
        let message = invalid(random.clone(), &[]);
        assert!(message.starts_with("--shard 0/2 cannot be used with --strategy random"), "{message}");
        let largest = ReplayConfig { strategy: Some(Strategy::Largest), ..random };
        assert!(largest.validate(|_| None).is_ok(), "the largest session is the same for every shard");
        let message = invalid(ReplayConfig { max_attempts: Some(0), ..ReplayConfig::default() }, &[]);
        assert!(message.starts_with("invalid value '0' for '--max-attempts <N>'"), "{message}");
    }
}
