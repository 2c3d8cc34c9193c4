//! Value parsers of the flags.

use tape_otlp::{Signal, SignalSet};
use tape_replay::{FailureLimit, SessionChoice, Speed, Strategy, TimestampMode};
use tape_session::SessionType;

use super::{Listen, TimeBound};

/// A duration that must not be zero, such as `--heartbeat`.
pub(super) fn parse_positive_duration(text: &str) -> Result<u64, String> {
    match parse_duration(text)? {
        0 => Err(format!("invalid duration {text:?}: it must be longer than zero")),
        nanos => Ok(nanos),
    }
}

pub(super) fn parse_duration(text: &str) -> Result<u64, String> {
    // A bare number is seconds, as the earlier system's --duration 60.
    tape_session::config::parse_duration_flag(text)
}

pub(super) fn parse_listen(text: &str) -> Result<Listen, String> {
    let text = text.trim();
    if matches!(text.to_ascii_lowercase().as_str(), "off" | "none" | "false") {
        return Ok(Listen(None));
    }
    // `localhost:4317` is common; resolve it without DNS to loopback.
    let normalised =
        text.strip_prefix("localhost:").map_or_else(|| text.to_owned(), |port| format!("127.0.0.1:{port}"));
    normalised
        .parse()
        .map(|addr| Listen(Some(addr)))
        .map_err(|_| format!("invalid address {text:?}: expected HOST:PORT such as 127.0.0.1:4317, or off"))
}

pub(super) fn parse_header(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => Ok((key.trim().to_owned(), value.trim().to_owned())),
        _ => Err(format!("invalid header {text:?}: expected KEY=VALUE")),
    }
}

pub(super) fn parse_signals(list: &str) -> Result<SignalSet, String> {
    list.parse().map_err(|error: tape_otlp::ParseSignalError| error.to_string())
}

pub(super) fn parse_session_type(name: &str) -> Result<SessionType, String> {
    name.parse()
}

pub(super) fn parse_signal(name: &str) -> Result<Signal, String> {
    name.parse().map_err(|error: tape_otlp::ParseSignalError| error.to_string())
}

pub(super) fn parse_session_choice(text: &str) -> Result<SessionChoice, String> {
    text.parse()
}

/// `--from` and `--until`: an RFC 3339 time, or an offset such as `30s`,
/// `1m30s` or a bare number of seconds.
pub(super) fn parse_time_bound(text: &str) -> Result<TimeBound, String> {
    text.parse()
}

pub(super) fn parse_failure_limit(text: &str) -> Result<FailureLimit, String> {
    text.parse()
}

pub(super) fn parse_speed(text: &str) -> Result<Speed, String> {
    text.parse()
}

/// `--shard I/N`.
pub(super) fn parse_shard(text: &str) -> Result<tape_otlp::wire::Shard, String> {
    text.parse().map_err(|error: tape_otlp::wire::InvalidShard| error.to_string())
}

/// `--start-at`: an RFC 3339 time.
pub(super) fn parse_start_at(text: &str) -> Result<tape_session::Timestamp, String> {
    tape_replay::parse_start_at(text)
}

/// `--strategy`, with the possible values clap lists in the help and in
/// its error.
pub(super) fn strategy_parser() -> impl clap::builder::TypedValueParser<Value = Strategy> {
    use clap::builder::{PossibleValue, TypedValueParser as _};
    let help = |strategy: Strategy| match strategy {
        Strategy::Latest => {
            "The newest creation time (`createdAt`, then the greatest id): the session made last, whatever clock its \
             records are on"
        }
        Strategy::Random => "Any one, at random",
        Strategy::Largest => "The most items (then the most bytes, then the greatest id)",
        Strategy::Smallest => "The fewest items (then the fewest bytes, then the least id)",
    };
    clap::builder::PossibleValuesParser::new(
        Strategy::ALL.map(|strategy| PossibleValue::new(strategy.as_str()).help(help(strategy))),
    )
    .try_map(|name| name.parse::<Strategy>())
}

pub(super) fn parse_demo_protocol(text: &str) -> Result<tape_replay::Protocol, String> {
    text.parse().map_err(|_| "expected grpc, http/protobuf or http/json".to_owned())
}

pub(super) fn parse_timestamps(text: &str) -> Result<TimestampMode, String> {
    text.parse()
}

pub(super) fn parse_rate_limit(text: &str) -> Result<f64, String> {
    tape_replay::parse_rate_limit(text)
}
