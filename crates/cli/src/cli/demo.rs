//! `otlp-tape demo`: its flags.

use clap::Args;
use tape_replay::Speed;

use super::parse::{parse_demo_protocol, parse_duration, parse_speed};

/// `otlp-tape demo`
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The pattern to seed: a built-in pattern's name or a pattern file.
    #[arg(long, value_name = "NAME|FILE", default_value = "payment-failure")]
    pub pattern: String,
    /// Seed of the generator.
    #[arg(long, value_name = "N", default_value_t = 42)]
    pub seed: u64,
    /// Length of the seed session on its virtual clock, such as 30s or 2m (a bare number is seconds).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "30s")]
    pub duration: u64,
    /// Replay pace: the recorded pace times FACTOR (50 replays 30s in 0.6s), or max for as fast as it goes.
    #[arg(long, value_name = "FACTOR|max", value_parser = parse_speed, default_value = "50")]
    pub speed: Speed,
    /// OTLP protocol of the replay into the capture: grpc, http/protobuf or http/json.
    #[arg(long, value_name = "PROTOCOL", value_parser = parse_demo_protocol, default_value = "grpc")]
    pub protocol: tape_replay::Protocol,
}
