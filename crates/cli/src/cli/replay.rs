//! `otlp-tape replay`: its flags.

use std::path::PathBuf;

use std::time::Duration;

use clap::Args;
use tape_otlp::wire::Shard;
use tape_replay::{FailureLimit, ReplayConfig, RunOptions, SessionChoice, Speed, Strategy, TimestampMode};
use tape_session::{SessionType, Timestamp};

use super::parse::{
    parse_duration, parse_failure_limit, parse_rate_limit, parse_session_choice, parse_session_type, parse_shard,
    parse_speed, parse_start_at, parse_time_bound, parse_timestamps, strategy_parser,
};
use super::{TargetArgs, TimeBound};

/// `otlp-tape replay`
#[derive(Debug, Args)]
#[allow(clippy::struct_excessive_bools)] // independent switches
pub struct ReplayArgs {
    /// The session to replay, or auto to pick one of the store's completed sessions by --strategy and
    /// --filter-type (with --resume: the checkpoint's session).
    #[arg(long, value_name = "ID|auto", value_parser = parse_session_choice, default_value = "auto")]
    pub session: SessionChoice,
    /// How --session auto picks: latest (newest start time), random, largest or smallest (by items, then
    /// size, then id). [default: latest]
    #[arg(long, value_parser = strategy_parser())]
    pub strategy: Option<Strategy>,
    /// Only sessions of this type: seed, capture or training (for --session auto; an explicit session
    /// must be of this type).
    #[arg(long, value_name = "TYPE", value_parser = parse_session_type)]
    pub filter_type: Option<SessionType>,

    /// Where the requests go.
    #[command(flatten)]
    pub target: TargetArgs,

    /// Pace: the recorded pace times FACTOR (0.5 is half as fast, 10 ten times as fast), or max for as fast
    /// as the target accepts. [env: REPLAY_DEFAULT_SPEED] [default: 1]
    #[arg(long, value_name = "FACTOR|max", value_parser = parse_speed, allow_hyphen_values = true)]
    pub speed: Option<Speed>,
    /// How timestamps move: none (kept as recorded), relative (moved by as much as each record's send time
    /// is after its receive time) or current (each record's newest timestamp becomes its send time).
    #[arg(long, value_name = "MODE", value_parser = parse_timestamps, default_value = "relative")]
    pub timestamps: TimestampMode,
    /// Replay the session again and again, each pass after the one before, until --duration or Ctrl-C;
    /// passes after the first get new trace and span ids.
    #[arg(long = "loop")]
    pub looping: bool,
    /// Stop after N whole passes (reason finished), at least 1; implies --loop. --duration still limits the
    /// whole replay.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub passes: Option<u64>,
    /// The longest the whole replay runs, looping or not, such as 90s, 10m or 2h (a bare number is seconds).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "3600s")]
    pub duration: u64,

    /// Replay traces (with --metrics and --logs: only the signals named; none of the three: all).
    #[arg(long)]
    pub traces: bool,
    /// Replay metrics (see --traces).
    #[arg(long)]
    pub metrics: bool,
    /// Replay logs (see --traces).
    #[arg(long)]
    pub logs: bool,
    /// Only these services, by the resource attribute service.name, comma-separated; resources of other
    /// services are cut out of each request. [default: every service]
    #[arg(long, value_name = "NAME,...", value_delimiter = ',')]
    pub services: Vec<String>,
    /// Only records received at or after this point: an offset into the session from its start time
    /// (30s, 1m30s; a bare number is seconds) or an RFC 3339 time.
    #[arg(long, value_name = "OFFSET|TIME", value_parser = parse_time_bound)]
    pub from: Option<TimeBound>,
    /// Only records received before this point: an offset into the session from its start time or an RFC
    /// 3339 time.
    #[arg(long, value_name = "OFFSET|TIME", value_parser = parse_time_bound)]
    pub until: Option<TimeBound>,
    /// Only records received during this phase of the session (its test.phase.NAME annotation, else its
    /// metadata's phases), within --from and --until.
    #[arg(long, value_name = "NAME")]
    pub phase: Option<String>,
    /// Send only shard I of N (I from 0 to N-1, N at most 1024): N replays with the same options and shards 0/N
    /// to N-1/N send disjoint parts of the selection whose union is all of it. Spans and log records with a
    /// trace id go by a hash of the trace id (every trace whole from one shard), other log records by their
    /// resource, metric points by their series; each request is cut on the wire.
    #[arg(long, value_name = "I/N", value_parser = parse_shard, allow_hyphen_values = true)]
    pub shard: Option<Shard>,
    /// The schedule's time zero, an RFC 3339 time: the first record is due then (waited for when in the
    /// future), and relative and current timestamps move as of the schedule, so that shards started on
    /// several machines with the same --start-at pace together and give every item the same timestamps.
    /// [default: the first record goes at once]
    #[arg(long, value_name = "RFC3339", value_parser = parse_start_at)]
    pub start_at: Option<Timestamp>,

    /// Items (spans, data points, log records) per second at most, on top of the pace. [default: no limit]
    #[arg(long, value_name = "ITEMS_PER_SECOND", value_parser = parse_rate_limit, allow_hyphen_values = true)]
    pub rate_limit: Option<f64>,
    /// Requests in flight at most, 1 to 256. Real-time replay of a session whose requests come in bursts needs at
    /// least the burst's size, or the rest of the burst waits for answers (see docs/PERFORMANCE.md).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256), default_value_t = 32)]
    pub concurrency: u16,
    /// Give trace and span ids new values on every pass, the first included (by default only passes after
    /// the first get new ids).
    #[arg(long, conflicts_with = "keep_ids")]
    pub regenerate_ids: bool,
    /// Send the recorded trace and span ids on every pass, also when looping.
    #[arg(long)]
    pub keep_ids: bool,
    /// Seed of the new ids: the same seed gives the same ids. [default: random, printed in the summary]
    #[arg(long, value_name = "N")]
    pub id_seed: Option<u64>,
    /// Attempts per request, the first included, before it counts as failed; retryable failures (HTTP 429,
    /// 502, 503, 504, gRPC UNAVAILABLE and the like) are retried with backoff or after the delay the target asks for.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..), default_value_t = 5)]
    pub max_attempts: u32,
    /// Failed requests tolerated before the replay stops, or unlimited; 0 stops at the first request
    /// that still fails after its retries.
    #[arg(long, value_name = "N|unlimited", value_parser = parse_failure_limit, default_value = "0")]
    pub max_failures: FailureLimit,
    /// Skip the rest of a damaged blob (counted and reported) instead of stopping there.
    #[arg(long)]
    pub skip_corrupt: bool,

    /// How often a status line is written to stderr when stderr is not a terminal (on a terminal a
    /// progress bar is shown instead).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "60s")]
    pub log_interval: u64,
    /// No progress bar and no status lines.
    #[arg(long)]
    pub no_progress: bool,
    /// Read the session and say what would be sent, where and how long it would take, without connecting.
    #[arg(long, conflicts_with = "resume")]
    pub dry_run: bool,
    /// Write a report of the replay to this file when it ends (also when it fails or is stopped): a
    /// self-contained page with charts when FILE ends in .html or .htm, JSON otherwise.
    #[arg(long, value_name = "FILE.json|FILE.html")]
    pub report: Option<PathBuf>,
    /// Keep the replay's position in this JSON file, rewritten as records are done, so that --resume can
    /// go on from there.
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Option<PathBuf>,
    /// Go on from the position in --checkpoint, with its counts and id seed, instead of starting over.
    #[arg(long, requires = "checkpoint")]
    pub resume: bool,
}

impl ReplayArgs {
    /// The replay's options, as the control API takes them too.
    pub fn config(&self) -> ReplayConfig {
        let target = self.target.config.clone();
        ReplayConfig {
            session: Some(self.session.clone()),
            strategy: self.strategy,
            filter_type: self.filter_type,
            endpoint: target.endpoint,
            protocol: target.protocol,
            headers: target.headers,
            compression: target.compression,
            timeout: target.timeout,
            insecure: target.insecure,
            speed: self.speed,
            timestamps: Some(self.timestamps),
            looping: self.looping,
            passes: self.passes,
            duration: Some(Duration::from_nanos(self.duration)),
            traces: self.traces,
            metrics: self.metrics,
            logs: self.logs,
            services: self.services.clone(),
            from: self.from,
            until: self.until,
            phase: self.phase.clone(),
            shard: self.shard,
            start_at: self.start_at,
            rate_limit: self.rate_limit,
            concurrency: Some(self.concurrency),
            regenerate_ids: self.regenerate_ids,
            keep_ids: self.keep_ids,
            id_seed: self.id_seed,
            max_failures: Some(self.max_failures),
            max_attempts: Some(self.max_attempts),
            skip_corrupt: self.skip_corrupt,
        }
    }

    /// What the run takes besides its options: the files on this host.
    pub fn run_options(&self) -> RunOptions {
        RunOptions {
            checkpoint: self.checkpoint.clone(),
            resume: self.resume,
            ca_file: self.target.ca_file.clone(),
            content_hash: self.report.is_some(),
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use tape_replay::ValidReplayConfig;

    use super::*;
    use crate::cli::{Cli, Command};

    fn flags(arguments: &[&str]) -> ReplayArgs {
        let command_line = ["otlp-tape", "replay"].iter().chain(arguments);
        match Cli::try_parse_from(command_line).unwrap().command {
            Command::Replay(args) => args,
            _ => unreachable!("parsed as replay"),
        }
    }

    fn checked(config: ReplayConfig) -> ValidReplayConfig {
        config.validate(|_| None).unwrap()
    }

    #[test]
    fn the_flags_and_the_json_options_give_the_same_replay() {
        let args = flags(&[
            "--session",
            "seed-1",
            "--filter-type",
            "seed",
            "--endpoint",
            "http://c:4318",
            "--protocol",
            "grpc",
            "--header",
            "a=1",
            "--header",
            "b=2",
            "--compression",
            "none",
            "--timeout",
            "5",
            "--insecure",
            "--speed",
            "max",
            "--timestamps",
            "current",
            "--loop",
            "--passes",
            "3",
            "--duration",
            "90s",
            "--traces",
            "--logs",
            "--services",
            "a,b",
            "--from",
            "30s",
            "--until",
            "2026-01-01T00:00:00Z",
            "--phase",
            "failure",
            "--rate-limit",
            "2.5",
            "--concurrency",
            "8",
            "--regenerate-ids",
            "--id-seed",
            "42",
            "--max-failures",
            "unlimited",
            "--max-attempts",
            "2",
            "--skip-corrupt",
            "--shard",
            "2/4",
            "--start-at",
            "2026-12-04T22:00:00Z",
        ]);
        let json: ReplayConfig = serde_json::from_str(
            r#"{"session": "seed-1", "filterType": "seed", "endpoint": "http://c:4318", "protocol": "grpc",
                "header": ["a=1", "b=2"], "compression": "none", "timeout": 5, "insecure": true, "speed": "max",
                "timestamps": "current", "loop": true, "passes": 3, "duration": "90s", "traces": true, "logs": true,
                "services": "a,b", "from": "30s", "until": "2026-01-01T00:00:00Z", "phase": "failure",
                "rateLimit": 2.5, "concurrency": 8, "regenerateIds": true, "idSeed": 42,
                "maxFailures": "unlimited", "maxAttempts": 2, "skipCorrupt": true, "shard": "2/4",
                "startAt": "2026-12-04T22:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(checked(args.config()), checked(json));
        assert_eq!(checked(flags(&[]).config()), checked(ReplayConfig::default()), "the same defaults");
        let args = flags(&["--strategy", "largest", "--checkpoint", "c.json", "--resume", "--ca-file", "ca.pem"]);
        assert_eq!(args.config().strategy, Some(Strategy::Largest));
        let run = args.run_options();
        assert_eq!((run.checkpoint.as_deref(), run.resume), (Some(std::path::Path::new("c.json")), true));
        assert_eq!((run.ca_file.as_deref(), run.content_hash), (Some(std::path::Path::new("ca.pem")), false));
    }

    #[test]
    fn the_control_api_options_are_exactly_the_config_keys() {
        for name in tape_server::request::fields::<ReplayConfig>() {
            let body = serde_json::json!({ *name: null });
            serde_json::from_value::<ReplayConfig>(body).unwrap_or_else(|error| panic!("{name}: {error}"));
        }
        for name in ["report", "checkpoint", "resume", "dryRun", "logInterval", "noProgress", "caFile"] {
            let error = serde_json::from_value::<ReplayConfig>(serde_json::json!({ name: true })).unwrap_err();
            assert!(error.to_string().contains(&format!("unknown field `{name}`")), "{name}: {error}");
        }
    }

    #[test]
    fn a_bad_strategy_lists_the_possible_values() {
        let error = Cli::try_parse_from(["otlp-tape", "replay", "--strategy", "best"]).unwrap_err().to_string();
        assert!(error.contains("[possible values: latest, random, largest, smallest]"), "{error}");
    }
}
