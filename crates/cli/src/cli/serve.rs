//! `otlp-tape serve`: its flags.

use std::path::PathBuf;

use clap::Args;
use tape_session::SessionType;

use super::parse::{parse_duration, parse_listen, parse_session_type};
use super::{ForwardArgs, Listen, ReceiveArgs, env};

/// `otlp-tape serve`
#[derive(Debug, Args)]
#[allow(clippy::struct_excessive_bools)] // independent switches
pub struct ServeArgs {
    /// Address of the HTTP control API.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub api: std::net::SocketAddr,
    /// Require `Authorization: Bearer TOKEN` on every API call; OTLP_TAPE_API_TOKEN.
    #[arg(long, value_name = "TOKEN", env = env::OTLP_TAPE_API_TOKEN, hide_env_values = true)]
    pub api_token: Option<String>,
    /// Allow a non-loopback --api address without --api-token.
    #[arg(long)]
    pub insecure_api: bool,
    /// Largest API request body, in KiB.
    #[arg(long, value_name = "KIB", default_value_t = 64)]
    pub max_body_kb: usize,
    /// Where OTLP/gRPC is received, or off.
    #[arg(long, value_name = "ADDR|off", value_parser = parse_listen, default_value = "127.0.0.1:4317")]
    pub grpc: Listen,
    /// Where OTLP/HTTP is received, or off.
    #[arg(long, value_name = "ADDR|off", value_parser = parse_listen, default_value = "127.0.0.1:4318")]
    pub http: Listen,
    /// Largest OTLP request accepted, after decompression, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 16)]
    pub max_request_size_mb: u64,
    /// How request bodies are read.
    #[command(flatten)]
    pub receive: ReceiveArgs,
    /// Pass-through.
    #[command(flatten)]
    pub forward: ForwardArgs,
    /// Where finished replays' JSON reports are written (created when missing).
    #[arg(long, value_name = "DIR", default_value = ".otlp-tape/reports")]
    pub reports_dir: PathBuf,
    /// Where blobs being captured wait until committed when the store is S3, and where capture locks are kept;
    /// OTLP_TAPE_SPOOL_DIR, else .otlp-tape/spool under the working directory.
    #[arg(long, value_name = "DIR")]
    pub spool_dir: Option<PathBuf>,
    /// Apply the retention policy this often, such as 1h; off unless given (needs a --retention-* criterion).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub retention_interval: Option<u64>,
    /// Retention: delete sessions that ended longer ago than this, such as 30d.
    #[arg(long, value_name = "DURATION")]
    pub retention_older_than: Option<String>,
    /// Retention: always keep this many newest sessions.
    #[arg(long, value_name = "N")]
    pub retention_keep_last: Option<usize>,
    /// Retention: delete the oldest sessions while the store holds more than this, such as 50GB.
    #[arg(long, value_name = "SIZE")]
    pub retention_max_total_size: Option<String>,
    /// Retention: only sessions of these types (seed, capture, training); all when absent.
    #[arg(long = "retention-type", value_name = "TYPE", value_delimiter = ',', value_parser = parse_session_type)]
    pub retention_types: Vec<SessionType>,
    /// Replays started through the API that may run at once; one more is refused with 429.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrent_replays: u32,
    /// Seeds started through the API that may run at once; one more is refused with 429.
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrent_seeds: u32,
    /// The most traces (duration × rate) a seed started through the API may generate; more is refused with 400.
    #[arg(long, value_name = "N", default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_seed_traces: u64,
    /// Where replays started through the API may send: HOST, HOST:PORT, [IPv6]:PORT or a CIDR such as
    /// 10.0.0.0/8 (repeat the flag for more); any other target is refused with 403. Anywhere when absent.
    #[arg(long = "allow-target", value_name = "HOST[:PORT]|CIDR", value_parser = parse_allowed_target)]
    pub allow_targets: Vec<tape_server::AllowedTarget>,
    /// The directory that exports started through the API may write local files under (their `out` is relative
    /// to it); OTLP_TAPE_EXPORT_DIR. Without it, the API exports only to s3:// outputs.
    #[arg(long, value_name = "DIR", env = env::OTLP_TAPE_EXPORT_DIR)]
    pub export_dir: Option<PathBuf>,
    /// Exports started through the API that may run at once; one more is refused with 429.
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrent_exports: u32,
    /// Comparisons started through the API that may run at once; one more is refused with 429. Their
    /// partition files go under the system's temporary directory (TMPDIR).
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrent_compares: u32,
}

fn parse_allowed_target(text: &str) -> Result<tape_server::AllowedTarget, String> {
    text.parse()
}
