//! `serve`'s own settings: where the API and the receivers listen, what
//! the API lets a caller start, and the retention policy it applies.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use tape_session::SessionType;
use tape_session::retention::{RetentionConfig, RetentionConfigError};

use crate::Error;
use crate::limits::{AllowedTarget, Limits};

/// `serve`'s settings, as its flags give them (each field's flag is its
/// kebab-case name, `maxBodyKb` is `--max-body-kb`), with the flags'
/// defaults.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServeConfig {
    /// Address of the HTTP control API; `127.0.0.1:8080`.
    #[serde(default = "default_api")]
    pub api: SocketAddr,
    /// The bearer token every API call must carry; none when absent or
    /// blank.
    #[serde(default)]
    pub api_token: Option<String>,
    /// Allow a non-loopback `api` address without a token; `false`.
    #[serde(default)]
    pub insecure_api: bool,
    /// Largest API request body, in KiB; 64.
    #[serde(default = "default_max_body_kb")]
    pub max_body_kb: usize,
    /// Where OTLP/gRPC is received, or `null` for off; `127.0.0.1:4317`.
    #[serde(default = "default_grpc")]
    pub grpc: Option<SocketAddr>,
    /// Where OTLP/HTTP is received, or `null` for off; `127.0.0.1:4318`.
    #[serde(default = "default_http")]
    pub http: Option<SocketAddr>,
    /// Largest OTLP request accepted, after decompression, in MiB; 16.
    #[serde(default = "default_max_request_size_mb")]
    pub max_request_size_mb: u64,
    /// MiB of request bodies each receiver may hold while reading them; 48.
    #[serde(default = "default_receive_budget_mb")]
    pub receive_budget_mb: u64,
    /// Longest time a request body may take to arrive after its headers,
    /// in nanoseconds (`"30s"` in JSON); 30 s.
    #[serde(default = "default_request_read_timeout", deserialize_with = "required_duration")]
    pub request_read_timeout: u64,
    /// Where finished replays' JSON reports are written (created when
    /// missing); `.otlp-tape/reports`.
    #[serde(default = "default_reports_dir")]
    pub reports_dir: PathBuf,
    /// Where capture locks are kept, and blobs being captured wait when the
    /// store spools them; `.otlp-tape/spool`.
    #[serde(default = "default_spool_dir")]
    pub spool_dir: PathBuf,
    /// Apply the retention policy this often, in nanoseconds (`"1h"` in
    /// JSON); off when absent.
    #[serde(default, deserialize_with = "tape_session::config::duration")]
    pub retention_interval: Option<u64>,
    /// Retention: delete sessions that ended longer ago than this, such as
    /// `30d`.
    #[serde(default)]
    pub retention_older_than: Option<String>,
    /// Retention: always keep this many newest sessions.
    #[serde(default, deserialize_with = "tape_session::config::parsed")]
    pub retention_keep_last: Option<usize>,
    /// Retention: delete the oldest sessions while the store holds more
    /// than this, such as `50GB`.
    #[serde(default)]
    pub retention_max_total_size: Option<String>,
    /// Retention: only sessions of these types; all when empty.
    #[serde(default, deserialize_with = "tape_session::config::list")]
    pub retention_types: Vec<SessionType>,
    /// Replays started through the API that may run at once; one more is
    /// refused with 429; 4.
    #[serde(default = "default_max_concurrent_replays")]
    pub max_concurrent_replays: u32,
    /// Seeds started through the API that may run at once; one more is
    /// refused with 429; 2.
    #[serde(default = "default_max_concurrent_seeds")]
    pub max_concurrent_seeds: u32,
    /// The most traces (duration × rate) a seed started through the API
    /// may generate; more is refused with 400; 1,000,000.
    #[serde(default = "default_max_seed_traces")]
    pub max_seed_traces: u64,
    /// Where replays started through the API may send; anywhere when
    /// empty. Any other target is refused with 403.
    #[serde(default, deserialize_with = "tape_session::config::whole_items")]
    pub allow_targets: Vec<AllowedTarget>,
    /// The directory that exports started through the API write local
    /// files under (their `out` is relative to it); without it, only
    /// `s3://` outputs are accepted.
    #[serde(default)]
    pub export_dir: Option<PathBuf>,
    /// Exports started through the API that may run at once; one more is
    /// refused with 429; 2.
    #[serde(default = "default_max_concurrent_exports")]
    pub max_concurrent_exports: u32,
    /// Comparisons started through the API that may run at once; one more
    /// is refused with 429; 2.
    #[serde(default = "default_max_concurrent_compares")]
    pub max_concurrent_compares: u32,
}

fn default_api() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

fn default_max_body_kb() -> usize {
    64
}

#[allow(clippy::unnecessary_wraps)] // a default of an optional field
fn default_grpc() -> Option<SocketAddr> {
    Some(SocketAddr::from(([127, 0, 0, 1], 4317)))
}

#[allow(clippy::unnecessary_wraps)] // a default of an optional field
fn default_http() -> Option<SocketAddr> {
    Some(SocketAddr::from(([127, 0, 0, 1], 4318)))
}

fn default_max_request_size_mb() -> u64 {
    16
}

fn default_receive_budget_mb() -> u64 {
    48
}

fn default_request_read_timeout() -> u64 {
    30_000_000_000
}

fn default_reports_dir() -> PathBuf {
    PathBuf::from(".otlp-tape/reports")
}

fn default_spool_dir() -> PathBuf {
    PathBuf::from(".otlp-tape/spool")
}

fn default_max_concurrent_replays() -> u32 {
    4
}

fn default_max_concurrent_seeds() -> u32 {
    2
}

fn default_max_concurrent_exports() -> u32 {
    2
}

fn default_max_concurrent_compares() -> u32 {
    2
}

fn default_max_seed_traces() -> u64 {
    1_000_000
}

/// A duration that null cannot leave out.
fn required_duration<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    tape_session::config::duration(deserializer)?.ok_or_else(|| serde::de::Error::custom("expected a duration"))
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            api: default_api(),
            api_token: None,
            insecure_api: false,
            max_body_kb: default_max_body_kb(),
            grpc: default_grpc(),
            http: default_http(),
            max_request_size_mb: default_max_request_size_mb(),
            receive_budget_mb: default_receive_budget_mb(),
            request_read_timeout: default_request_read_timeout(),
            reports_dir: default_reports_dir(),
            spool_dir: default_spool_dir(),
            retention_interval: None,
            retention_older_than: None,
            retention_keep_last: None,
            retention_max_total_size: None,
            retention_types: Vec::new(),
            max_concurrent_replays: default_max_concurrent_replays(),
            max_concurrent_seeds: default_max_concurrent_seeds(),
            max_seed_traces: default_max_seed_traces(),
            allow_targets: Vec::new(),
            export_dir: None,
            max_concurrent_exports: default_max_concurrent_exports(),
            max_concurrent_compares: default_max_concurrent_compares(),
        }
    }
}

/// [`ServeConfig`] checked: what [`Server::start`](crate::Server::start)
/// runs with.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    pub(crate) api: SocketAddr,
    pub(crate) token: Option<String>,
    pub(crate) max_body_bytes: usize,
    pub(crate) grpc: Option<SocketAddr>,
    pub(crate) http: Option<SocketAddr>,
    pub(crate) max_request_bytes: usize,
    pub(crate) receive: tape_capture::ReceiveLimits,
    pub(crate) reports_dir: PathBuf,
    pub(crate) spool_dir: PathBuf,
    pub(crate) retention: Option<tape_session::retention::RetentionPolicy>,
    pub(crate) retention_interval: Option<Duration>,
    pub(crate) limits: Limits,
    pub(crate) export_dir: Option<PathBuf>,
}

impl ServeSettings {
    /// Where capture locks are kept (and spool files).
    pub fn spool_dir(&self) -> &std::path::Path {
        &self.spool_dir
    }

    /// Whether the API requires a bearer token.
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }
}

impl ServeConfig {
    /// Checks the settings, in the order `serve` always has: the API's
    /// exposure, the sizes, how bodies are read, then retention. The
    /// concurrency and seed caps, which the command line checks as it
    /// parses them, are checked after those.
    pub fn validate(self) -> Result<ServeSettings, Error> {
        let token = self.api_token.filter(|token| !token.trim().is_empty());
        if !self.api.ip().is_loopback() && token.is_none() && !self.insecure_api {
            return Err(Error::Insecure { api: self.api });
        }
        if self.max_body_kb == 0 {
            return Err(Error::Zero { flag: "max-body-kb" });
        }
        let max_request_bytes = tape_capture::max_request_bytes(self.max_request_size_mb).map_err(Error::Receive)?;
        let receive =
            tape_capture::receive_limits(self.receive_budget_mb, self.request_read_timeout, max_request_bytes)
                .map_err(Error::Receive)?;
        let retention = RetentionConfig {
            older_than: self.retention_older_than,
            keep_last: self.retention_keep_last,
            max_total_size: self.retention_max_total_size,
            types: self.retention_types.iter().map(ToString::to_string).collect(),
            dry_run: false,
        };
        let retention = match retention.validate() {
            Ok(policy) => Some(policy),
            Err(RetentionConfigError::NoCriterion) => None,
            Err(error) => return Err(Error::Retention(error)),
        };
        if self.retention_interval.is_some() && retention.is_none() {
            return Err(Error::RetentionWithoutPolicy);
        }
        for (value, flag) in [
            (self.max_concurrent_replays, "max-concurrent-replays"),
            (self.max_concurrent_seeds, "max-concurrent-seeds"),
            (self.max_concurrent_exports, "max-concurrent-exports"),
            (self.max_concurrent_compares, "max-concurrent-compares"),
        ] {
            if value == 0 {
                return Err(Error::Zero { flag });
            }
        }
        if self.max_seed_traces == 0 {
            return Err(Error::Zero { flag: "max-seed-traces" });
        }
        Ok(ServeSettings {
            api: self.api,
            token,
            max_body_bytes: self.max_body_kb.saturating_mul(1024),
            grpc: self.grpc,
            http: self.http,
            max_request_bytes,
            receive,
            reports_dir: self.reports_dir,
            spool_dir: self.spool_dir,
            retention,
            retention_interval: self.retention_interval.map(Duration::from_nanos),
            limits: Limits {
                max_concurrent_replays: self.max_concurrent_replays as usize,
                max_concurrent_seeds: self.max_concurrent_seeds as usize,
                max_seed_traces: self.max_seed_traces,
                allowed_targets: self.allow_targets,
                max_concurrent_exports: self.max_concurrent_exports as usize,
                max_concurrent_compares: self.max_concurrent_compares as usize,
            },
            export_dir: self.export_dir,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> ServeConfig {
        serde_json::from_str(json).unwrap_or_else(|error| panic!("{json}: {error}"))
    }

    fn refused(config: ServeConfig) -> String {
        config.validate().map(|_| ()).unwrap_err().to_string()
    }

    #[test]
    fn an_empty_config_is_the_defaults() {
        assert_eq!(parse("{}"), ServeConfig::default());
        let settings = ServeConfig::default().validate().unwrap();
        assert_eq!(settings.api, SocketAddr::from(([127, 0, 0, 1], 8080)));
        assert_eq!(settings.max_body_bytes, 64 * 1024);
        assert_eq!(settings.max_request_bytes, 16 * 1024 * 1024);
        assert_eq!(settings.receive.read_timeout, Duration::from_secs(30));
        assert!(settings.token.is_none() && settings.retention.is_none() && settings.retention_interval.is_none());
        assert_eq!((settings.limits.max_concurrent_replays, settings.limits.max_concurrent_seeds), (4, 2));
        assert_eq!((settings.limits.max_concurrent_exports, settings.export_dir), (2, None));
    }

    #[test]
    fn values_take_the_forms_of_the_flags() {
        let config = parse(
            r#"{"api": "0.0.0.0:9000", "apiToken": "t", "grpc": null, "requestReadTimeout": "10s",
                "retentionInterval": "1h", "retentionOlderThan": "30d", "retentionKeepLast": "3",
                "retentionTypes": "seed,capture", "allowTargets": ["10.0.0.0/8", "collector:4317"]}"#,
        );
        assert_eq!(config.grpc, None);
        assert_eq!(config.http, default_http());
        assert_eq!(config.request_read_timeout, 10_000_000_000);
        assert_eq!(config.retention_types, [SessionType::Seed, SessionType::Capture]);
        assert_eq!(config.allow_targets.len(), 2);
        let settings = config.validate().unwrap();
        assert_eq!(settings.token.as_deref(), Some("t"));
        assert_eq!(settings.retention_interval, Some(Duration::from_hours(1)));
        let policy = settings.retention.unwrap();
        assert_eq!(policy.keep_last, Some(3));
        assert_eq!(policy.types, [SessionType::Seed, SessionType::Capture]);
        let error = serde_json::from_str::<ServeConfig>(r#"{"allowTargets": "http://x"}"#).unwrap_err().to_string();
        assert!(error.contains("a URL, where only its host and port are wanted"), "{error}");
        let error = serde_json::from_str::<ServeConfig>(r#"{"maxBodyKB": 1}"#).unwrap_err().to_string();
        assert!(error.contains("unknown field `maxBodyKB`"), "{error}");
    }

    #[test]
    fn bad_settings_are_refused_naming_the_flag() {
        let api = SocketAddr::from(([0, 0, 0, 0], 8080));
        let error = refused(ServeConfig { api, ..ServeConfig::default() });
        assert!(error.starts_with("refusing to serve the control API on 0.0.0.0:8080"), "{error}");
        assert!(error.contains("--api-token") && error.contains("--insecure-api"), "{error}");
        let blank = ServeConfig { api, api_token: Some(" ".to_owned()), ..ServeConfig::default() };
        assert!(refused(blank).starts_with("refusing"));
        assert!(ServeConfig { api, insecure_api: true, ..ServeConfig::default() }.validate().is_ok());
        assert!(ServeConfig { api, api_token: Some("t".to_owned()), ..ServeConfig::default() }.validate().is_ok());
        for (config, expected) in [
            (ServeConfig { max_body_kb: 0, ..ServeConfig::default() }, "--max-body-kb must be more than zero"),
            (
                ServeConfig { max_request_size_mb: 0, ..ServeConfig::default() },
                "--max-request-size-mb must be more than zero",
            ),
            (ServeConfig { receive_budget_mb: 8, ..ServeConfig::default() }, "--receive-budget-mb 8"),
            (
                ServeConfig { request_read_timeout: 0, ..ServeConfig::default() },
                "--request-read-timeout must be more than zero",
            ),
            (
                ServeConfig { retention_older_than: Some("soon".to_owned()), ..ServeConfig::default() },
                "older-than \"soon\": ",
            ),
            (
                ServeConfig { retention_interval: Some(1), ..ServeConfig::default() },
                "--retention-interval needs a policy",
            ),
            (
                ServeConfig { max_concurrent_replays: 0, ..ServeConfig::default() },
                "--max-concurrent-replays must be more than zero",
            ),
            (ServeConfig { max_seed_traces: 0, ..ServeConfig::default() }, "--max-seed-traces must be more than zero"),
            (
                ServeConfig { max_concurrent_exports: 0, ..ServeConfig::default() },
                "--max-concurrent-exports must be more than zero",
            ),
        ] {
            let error = refused(config);
            assert!(error.starts_with(expected), "{expected}: {error}");
        }
    }
}
