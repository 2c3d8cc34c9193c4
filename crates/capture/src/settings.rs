//! One capture as people describe it: [`CaptureSettings`], the options of
//! the control API's `POST /api/v1/captures` and of `otlp-tape capture`'s
//! session and recording flags, checked by [`CaptureSettings::validate`]
//! into a [`CapturePlan`]: the [`RecorderConfig`] and the new session's
//! metadata.
//!
//! Why `CaptureSettings` and not a second `CaptureConfig`: [`CaptureConfig`]
//! is what [`Capture::start`] runs with, receivers and pass-through
//! included, assembled by a program; `CaptureSettings` is what a person
//! writes about one capture (its session and how it is recorded), the same
//! whichever front (the command line, the control API, whose receivers are
//! its own) starts it. The receivers' own limits are checked by
//! [`max_request_bytes`] and [`receive_limits`].
//!
//! [`CaptureConfig`]: crate::CaptureConfig
//! [`Capture::start`]: crate::Capture::start

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use serde_json::Value;
use tape_otlp::{Signal, SignalSet};
use tape_session::{SessionId, SessionMetadata, SessionType, Timestamp, WriterId, WriterOptions};

use crate::{JoinAs, ReceiveLimits, RecorderConfig};

/// `capture`: stop once this many MiB are recorded, when `maxSizeMb` is not
/// given (the earlier system's variable).
pub const CAPTURE_MAX_SIZE_MB: &str = "CAPTURE_MAX_SIZE_MB";
/// `capture`: stop after this many minutes, when `maxDuration` is not given
/// (the earlier system's variable).
pub const CAPTURE_MAX_DURATION_MINUTES: &str = "CAPTURE_MAX_DURATION_MINUTES";
/// `capture`: `false` stores blobs without compression, when
/// `compressionLevel` is not given (the earlier system's variable).
pub const CAPTURE_COMPRESSION_ENABLED: &str = "CAPTURE_COMPRESSION_ENABLED";

/// Default of `queueSizeMb`.
pub const DEFAULT_QUEUE_SIZE_MB: u64 = 32;
/// Default of `flushInterval`: one second, in nanoseconds.
pub const DEFAULT_FLUSH_INTERVAL: u64 = 1_000_000_000;
/// Default of `blobMaxAge`: five minutes, in nanoseconds.
pub const DEFAULT_BLOB_MAX_AGE: u64 = 300_000_000_000;
/// Default of `blobMaxSizeMb`.
pub const DEFAULT_BLOB_MAX_SIZE_MB: u64 = 64;

const MIB: u64 = 1024 * 1024;

/// One capture: its new session and how it is recorded. Every field may be
/// left out. In JSON a number may also be a string, a duration is a number
/// of seconds or a text such as `90s`, `10m` or `2h`, a list is an array or
/// one comma-separated string, and null is the same as leaving a field out
/// (see [`tape_session::config`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CaptureSettings {
    /// Id of the new session; default generated as `capture-YYYYMMDD-HHMMSS-xxxxxxxx`.
    #[serde(default, deserialize_with = "tape_session::config::parsed")]
    pub session_id: Option<SessionId>,
    /// Human-readable description of the session.
    #[serde(default, deserialize_with = "tape_session::config::parsed")]
    pub description: Option<String>,
    /// The diagnostic session this capture belongs to.
    #[serde(default, deserialize_with = "tape_session::config::parsed")]
    pub diagnostic_session_id: Option<String>,
    /// Feature flags in force while recording (stored as `enabledFlags`).
    #[serde(default, deserialize_with = "tape_session::config::list")]
    pub flags: Vec<String>,
    /// Signals to record: `traces`, `metrics`, `logs` or `all` (the default).
    #[serde(default, deserialize_with = "signal_set")]
    pub signals: Option<SignalSet>,
    /// Stop once this many MiB are recorded; default [`CAPTURE_MAX_SIZE_MB`], else no limit.
    #[serde(default, deserialize_with = "tape_session::config::parsed")]
    pub max_size_mb: Option<u64>,
    /// Stop after this long (nanoseconds); default [`CAPTURE_MAX_DURATION_MINUTES`], else no limit.
    #[serde(default, deserialize_with = "tape_session::config::duration")]
    pub max_duration: Option<u64>,
    /// Acknowledge a request only once it is on stable storage (default false).
    #[serde(default, deserialize_with = "tape_session::config::switch")]
    pub durable: bool,
    /// gzip level of the blobs, 0 to 9; default 1, or 0 when
    /// [`CAPTURE_COMPRESSION_ENABLED`] is false.
    #[serde(default, deserialize_with = "tape_session::config::parsed")]
    pub compression_level: Option<u32>,
    /// MiB of requests that may wait for the writer; default [`DEFAULT_QUEUE_SIZE_MB`].
    #[serde(default, deserialize_with = "tape_session::config::parsed")]
    pub queue_size_mb: Option<u64>,
    /// Longest time recorded data waits before it is flushed (nanoseconds);
    /// default [`DEFAULT_FLUSH_INTERVAL`].
    #[serde(default, deserialize_with = "tape_session::config::duration")]
    pub flush_interval: Option<u64>,
    /// A blob is closed after this long (nanoseconds); default [`DEFAULT_BLOB_MAX_AGE`].
    #[serde(default, deserialize_with = "tape_session::config::duration")]
    pub blob_max_age: Option<u64>,
    /// A blob is closed once it holds this many MiB; default [`DEFAULT_BLOB_MAX_SIZE_MB`].
    #[serde(default, deserialize_with = "tape_session::config::parsed")]
    pub blob_max_size_mb: Option<u64>,
    /// Join session `sessionId` as one of several writers (`capture --join`),
    /// creating it when it is not there (default false). Needs `sessionId`.
    #[serde(default, deserialize_with = "tape_session::config::switch")]
    pub join: bool,
    /// This writer's id when joining: 1 to 48 of `[a-z0-9-]`; default the
    /// host name and 6 random letters and digits ([`CapturePlan::on_host`]).
    #[serde(default, deserialize_with = "tape_session::config::parsed")]
    pub writer_id: Option<WriterId>,
}

/// `signals` as a list of names (or `all`), joined and read as a [`SignalSet`].
fn signal_set<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<SignalSet>, D::Error> {
    let names: Vec<String> = tape_session::config::list(deserializer)?;
    if names.is_empty() {
        return Ok(None);
    }
    let list = names.join(",");
    list.parse().map(Some).map_err(|error: tape_otlp::ParseSignalError| {
        serde::de::Error::custom(format!("invalid value {list:?}: {error}"))
    })
}

/// Capture settings or receiver limits that cannot work; the message names
/// the flag (the control API's option of the same name in camelCase).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// [`CAPTURE_MAX_SIZE_MB`] is not a number.
    #[error("{CAPTURE_MAX_SIZE_MB} is {0:?}; expected a whole number of MiB")]
    MaxSizeVariable(String),
    /// [`CAPTURE_MAX_DURATION_MINUTES`] is not a positive number.
    #[error("{CAPTURE_MAX_DURATION_MINUTES} is {0:?}; expected a positive number of minutes")]
    MaxDurationVariable(String),
    /// [`CAPTURE_COMPRESSION_ENABLED`] is not a boolean.
    #[error("{CAPTURE_COMPRESSION_ENABLED} is {0:?}; expected true or false")]
    CompressionVariable(String),
    /// `maxDuration` is zero.
    #[error("--max-duration must be more than zero")]
    ZeroMaxDuration,
    /// `maxSizeMb` is zero.
    #[error("--max-size-mb must be more than zero")]
    ZeroMaxSize,
    /// `queueSizeMb` or `blobMaxSizeMb` is zero.
    #[error("--queue-size-mb and --blob-max-size-mb must be more than zero")]
    ZeroQueueOrBlobSize,
    /// `flushInterval` or `blobMaxAge` is zero.
    #[error("--flush-interval and --blob-max-age must be more than zero")]
    ZeroFlushIntervalOrBlobAge,
    /// `compressionLevel` is over 9.
    #[error("invalid value '{0}' for '--compression-level <0..9>': {0} is not in 0..=9")]
    CompressionLevel(u32),
    /// `signals` names no signal.
    #[error("--signals names no signal; name traces, metrics, logs or all")]
    NoSignals,
    /// The largest request accepted is zero.
    #[error("--max-request-size-mb must be more than zero")]
    ZeroMaxRequestSize,
    /// The receive budget cannot hold the largest request.
    #[error(
        "--receive-budget-mb {budget_mb} is less than the largest request (--max-request-size-mb, {max_request_mb} \
         MiB); a request that size could never be read"
    )]
    ReceiveBudget {
        /// The budget, in MiB.
        budget_mb: u64,
        /// The largest request, in MiB.
        max_request_mb: u64,
    },
    /// The request read timeout is zero.
    #[error("--request-read-timeout must be more than zero")]
    ZeroReadTimeout,
    /// `join` without a session id.
    #[error("--join needs --session-id: the writers of one session must name it")]
    JoinWithoutSessionId,
    /// `writerId` without `join`.
    #[error("--writer-id needs --join: only a writer of a joined session has a writer id")]
    WriterIdWithoutJoin,
}

/// Where a capture receives and forwards, kept in its session's
/// parameters; the receivers are the caller's, not part of the settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaptureEndpoints {
    /// Where OTLP/gRPC is served, if it is.
    pub grpc: Option<SocketAddr>,
    /// Where OTLP/HTTP is served, if it is.
    pub http: Option<SocketAddr>,
    /// The pass-through URL and its protocol (`grpc`, `http/protobuf`, `http/json`), if any.
    pub forward: Option<(String, String)>,
}

/// Checked [`CaptureSettings`]: how the session is recorded, and what it is.
#[derive(Debug, Clone)]
pub struct CapturePlan {
    /// How the session is written: limits, flushing, compression, blobs.
    pub recorder: RecorderConfig,
    settings: CaptureSettings,
}

impl CaptureSettings {
    /// Checks the settings and applies their defaults. `variable` returns an
    /// environment variable's value, or `None` when it is unset or empty:
    /// [`CAPTURE_MAX_SIZE_MB`], [`CAPTURE_MAX_DURATION_MINUTES`] and
    /// [`CAPTURE_COMPRESSION_ENABLED`] stand in for fields left out.
    pub fn validate(&self, variable: impl Fn(&str) -> Option<String>) -> Result<CapturePlan, SettingsError> {
        let max_size_mb = match self.max_size_mb {
            Some(mib) => Some(mib),
            None => match variable(CAPTURE_MAX_SIZE_MB) {
                Some(text) => Some(text.trim().parse().map_err(|_| SettingsError::MaxSizeVariable(text.clone()))?),
                None => None,
            },
        };
        let max_duration = match self.max_duration {
            Some(nanos) => Some(Duration::from_nanos(nanos)),
            None => match variable(CAPTURE_MAX_DURATION_MINUTES) {
                Some(text) => {
                    let minutes: f64 = text
                        .trim()
                        .parse()
                        .ok()
                        .filter(|minutes: &f64| minutes.is_finite() && *minutes > 0.0)
                        .ok_or_else(|| SettingsError::MaxDurationVariable(text.clone()))?;
                    Some(Duration::from_secs_f64(minutes * 60.0))
                }
                None => None,
            },
        };
        if max_duration.is_some_and(|duration| duration.is_zero()) {
            return Err(SettingsError::ZeroMaxDuration);
        }
        if max_size_mb == Some(0) {
            return Err(SettingsError::ZeroMaxSize);
        }
        let queue_size_mb = self.queue_size_mb.unwrap_or(DEFAULT_QUEUE_SIZE_MB);
        let blob_max_size_mb = self.blob_max_size_mb.unwrap_or(DEFAULT_BLOB_MAX_SIZE_MB);
        if queue_size_mb == 0 || blob_max_size_mb == 0 {
            return Err(SettingsError::ZeroQueueOrBlobSize);
        }
        let flush_interval = self.flush_interval.unwrap_or(DEFAULT_FLUSH_INTERVAL);
        let blob_max_age = self.blob_max_age.unwrap_or(DEFAULT_BLOB_MAX_AGE);
        if flush_interval == 0 || blob_max_age == 0 {
            return Err(SettingsError::ZeroFlushIntervalOrBlobAge);
        }
        let compression_level = match self.compression_level {
            Some(level) if level > 9 => return Err(SettingsError::CompressionLevel(level)),
            Some(level) => level,
            None => match variable(CAPTURE_COMPRESSION_ENABLED).map(|text| text.trim().to_ascii_lowercase()) {
                None => tape_session::blob::DEFAULT_COMPRESSION_LEVEL,
                Some(text) if matches!(text.as_str(), "true" | "1" | "yes" | "on") => {
                    tape_session::blob::DEFAULT_COMPRESSION_LEVEL
                }
                Some(text) if matches!(text.as_str(), "false" | "0" | "no" | "off") => 0,
                Some(text) => return Err(SettingsError::CompressionVariable(text)),
            },
        };
        let signals = self.signals.unwrap_or(SignalSet::ALL);
        if signals.is_empty() {
            return Err(SettingsError::NoSignals);
        }
        if self.join && self.session_id.is_none() {
            return Err(SettingsError::JoinWithoutSessionId);
        }
        if !self.join && self.writer_id.is_some() {
            return Err(SettingsError::WriterIdWithoutJoin);
        }
        let join = self.join.then(|| JoinAs {
            writer: self.writer_id.clone().unwrap_or_else(|| default_writer_id(None)),
            host: None,
            heartbeat: tape_session::WRITER_HEARTBEAT,
        });
        let queue_bytes =
            usize::try_from(queue_size_mb.saturating_mul(MIB)).unwrap_or(usize::MAX).min(u32::MAX as usize);
        let recorder = RecorderConfig {
            signals,
            queue_bytes,
            flush_interval: Duration::from_nanos(flush_interval),
            durable: self.durable,
            max_bytes: max_size_mb.map(|mib| mib.saturating_mul(MIB)),
            max_duration,
            writer: WriterOptions {
                compression_level,
                max_blob_bytes: blob_max_size_mb.saturating_mul(MIB),
                max_blob_age_nanos: Some(blob_max_age),
                announce: true,
                ..WriterOptions::default()
            },
            join,
        };
        Ok(CapturePlan { recorder, settings: self.clone() })
    }

    /// The metadata a capture with these settings starts session `id` with
    /// at `now`: its description, flags (trimmed, empty ones left out) and
    /// options (`endpoints` among them). It needs no validation, so a front
    /// can describe a capture it refuses; [`CapturePlan::metadata`] is the
    /// same for checked settings.
    pub fn metadata(&self, id: SessionId, now: Timestamp, endpoints: &CaptureEndpoints) -> SessionMetadata {
        let mut metadata = SessionMetadata::new(id, SessionType::Capture, now, created_by());
        metadata.description.clone_from(&self.description);
        metadata.diagnostic_session_id.clone_from(&self.diagnostic_session_id);
        metadata.enabled_flags =
            self.flags.iter().map(|flag| flag.trim().to_owned()).filter(|flag| !flag.is_empty()).collect();
        metadata.parameters = self.parameters(endpoints);
        metadata
    }

    /// The capture's options, kept in the metadata.
    fn parameters(&self, endpoints: &CaptureEndpoints) -> BTreeMap<String, Value> {
        let mut parameters = BTreeMap::new();
        let mut put = |key: &str, value: Value| {
            parameters.insert(key.to_owned(), value);
        };
        put("grpc", endpoints.grpc.map_or(Value::Null, |addr| addr.to_string().into()));
        put("http", endpoints.http.map_or(Value::Null, |addr| addr.to_string().into()));
        let signals = self.signals.unwrap_or(SignalSet::ALL);
        put("signals", signals.iter().map(Signal::as_str).collect::<Vec<_>>().join(",").into());
        put("durable", self.durable.into());
        if let Some((url, protocol)) = &endpoints.forward {
            put("forward", url.clone().into());
            put("forwardProtocol", protocol.clone().into());
        }
        parameters
    }
}

impl CapturePlan {
    /// The session's id: the one given, else one generated from `now` and a
    /// random number.
    pub fn session_id(&self, now: Timestamp) -> SessionId {
        self.settings.session_id.clone().unwrap_or_else(|| SessionId::generate("capture", now, rand::random()))
    }

    /// The metadata the capture starts session `id` with at `now`: its
    /// description, flags and options (`endpoints` among them).
    pub fn metadata(&self, id: SessionId, now: Timestamp, endpoints: &CaptureEndpoints) -> SessionMetadata {
        self.settings.metadata(id, now, endpoints)
    }

    /// Tells a joining capture the host it runs on (the caller reads its
    /// name): kept in the writer's manifest, and, when no writer id was
    /// given, the default writer id is made from it and 6 random letters
    /// and digits. Does nothing for a capture that does not join.
    #[must_use]
    pub fn on_host(mut self, host: Option<String>) -> Self {
        let given = self.settings.writer_id.is_some();
        if let Some(join) = &mut self.recorder.join {
            if !given {
                join.writer = default_writer_id(host.as_deref());
            }
            join.host = host.filter(|host| !host.trim().is_empty());
        }
        self
    }

    /// The writer this capture joins its session as, if it joins.
    pub fn writer_id(&self) -> Option<&WriterId> {
        self.recorder.join.as_ref().map(|join| &join.writer)
    }
}

/// The default writer id on `host`: its name (or `writer`) and 6 random
/// lowercase letters and digits.
fn default_writer_id(host: Option<&str>) -> WriterId {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let suffix: String = (0..6).map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())])).collect();
    WriterId::for_host(host.unwrap_or(""), &suffix)
        .or_else(|_| WriterId::new(&format!("writer-{suffix}")))
        .unwrap_or_else(|_| unreachable!("writer-<6 of [a-z0-9]> is a valid writer id"))
}

fn created_by() -> String {
    format!("otlp-tape {} capture", env!("CARGO_PKG_VERSION"))
}

/// The largest request accepted, in bytes, from `--max-request-size-mb`.
pub fn max_request_bytes(max_request_size_mb: u64) -> Result<usize, SettingsError> {
    if max_request_size_mb == 0 {
        return Err(SettingsError::ZeroMaxRequestSize);
    }
    Ok(usize::try_from(max_request_size_mb.saturating_mul(MIB)).unwrap_or(usize::MAX))
}

/// How the receivers read request bodies, from `--receive-budget-mb` and
/// `--request-read-timeout` (nanoseconds); the budget must hold the largest
/// request, `max_request_bytes`.
pub fn receive_limits(
    receive_budget_mb: u64,
    request_read_timeout: u64,
    max_request_bytes: usize,
) -> Result<ReceiveLimits, SettingsError> {
    let budget_bytes = usize::try_from(receive_budget_mb.saturating_mul(MIB)).unwrap_or(usize::MAX);
    if budget_bytes < max_request_bytes {
        return Err(SettingsError::ReceiveBudget {
            budget_mb: receive_budget_mb,
            max_request_mb: max_request_bytes as u64 / MIB,
        });
    }
    if request_read_timeout == 0 {
        return Err(SettingsError::ZeroReadTimeout);
    }
    Ok(ReceiveLimits { budget_bytes, read_timeout: Duration::from_nanos(request_read_timeout) })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings(json: &str) -> Result<CaptureSettings, String> {
        serde_json::from_str(json).map_err(|error| error.to_string())
    }

    fn no_variables(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn defaults_are_the_flags_defaults() {
        let plan = settings("{}").unwrap().validate(no_variables).unwrap();
        let recorder = &plan.recorder;
        assert_eq!(recorder.signals, SignalSet::ALL);
        assert_eq!(recorder.queue_bytes, 32 * 1024 * 1024);
        assert_eq!(recorder.flush_interval, Duration::from_secs(1));
        assert!(!recorder.durable);
        assert_eq!((recorder.max_bytes, recorder.max_duration), (None, None));
        assert_eq!(recorder.writer.compression_level, tape_session::blob::DEFAULT_COMPRESSION_LEVEL);
        assert_eq!(recorder.writer.max_blob_bytes, 64 * 1024 * 1024);
        assert_eq!(recorder.writer.max_blob_age_nanos, Some(300_000_000_000));
    }

    #[test]
    fn the_api_forms_are_read() {
        let json = r#"{"sessionId": "c-1", "description": "d", "diagnosticSessionId": "diag", "flags": "a, b,,",
            "signals": ["traces", "logs"], "maxSizeMb": "10", "maxDuration": "2m", "durable": true,
            "compressionLevel": 0, "queueSizeMb": 1, "flushInterval": 0.5, "blobMaxAge": "10s", "blobMaxSizeMb": 2}"#;
        let plan = settings(json).unwrap().validate(no_variables).unwrap();
        let recorder = &plan.recorder;
        assert_eq!(recorder.signals.to_string(), "traces,logs");
        assert_eq!(recorder.max_bytes, Some(10 * 1024 * 1024));
        assert_eq!(recorder.max_duration, Some(Duration::from_mins(2)));
        assert!(recorder.durable);
        assert_eq!(recorder.writer.compression_level, 0);
        assert_eq!(recorder.queue_bytes, 1024 * 1024);
        assert_eq!(recorder.flush_interval, Duration::from_millis(500));
        assert_eq!(recorder.writer.max_blob_age_nanos, Some(10_000_000_000));
        assert_eq!(recorder.writer.max_blob_bytes, 2 * 1024 * 1024);
        let now = Timestamp::from_unix_nanos(1_767_225_600_000_000_000);
        let id = plan.session_id(now);
        assert_eq!(id.as_str(), "c-1");
        let endpoints = CaptureEndpoints {
            grpc: Some("127.0.0.1:4317".parse().unwrap()),
            http: None,
            forward: Some(("http://up:4318".to_owned(), "http/protobuf".to_owned())),
        };
        let metadata = plan.metadata(id, now, &endpoints);
        assert_eq!(metadata.description.as_deref(), Some("d"));
        assert_eq!(metadata.diagnostic_session_id.as_deref(), Some("diag"));
        assert_eq!(metadata.enabled_flags, ["a", "b"]);
        assert_eq!(metadata.session_type, SessionType::Capture);
        assert!(metadata.created_by.starts_with("otlp-tape ") && metadata.created_by.ends_with(" capture"));
        let parameters = serde_json::to_value(&metadata.parameters).unwrap();
        assert_eq!(
            parameters,
            serde_json::json!({"grpc": "127.0.0.1:4317", "http": null, "signals": "traces,logs", "durable": true,
                "forward": "http://up:4318", "forwardProtocol": "http/protobuf"})
        );
        let generated = settings("{}").unwrap().validate(no_variables).unwrap().session_id(now);
        assert!(generated.as_str().starts_with("capture-20260101-000000-"), "{generated}");
    }

    #[test]
    fn variables_stand_in_for_fields_left_out() {
        let variables: HashMap<&str, &str> =
            [(CAPTURE_MAX_SIZE_MB, "5"), (CAPTURE_MAX_DURATION_MINUTES, "1.5"), (CAPTURE_COMPRESSION_ENABLED, "off")]
                .into();
        let lookup = |name: &str| variables.get(name).map(|value| (*value).to_owned());
        let recorder = settings("{}").unwrap().validate(lookup).unwrap().recorder;
        assert_eq!(recorder.max_bytes, Some(5 * 1024 * 1024));
        assert_eq!(recorder.max_duration, Some(Duration::from_secs(90)));
        assert_eq!(recorder.writer.compression_level, 0);
        let given = settings(r#"{"maxSizeMb": 7, "maxDuration": 30, "compressionLevel": 6}"#).unwrap();
        let recorder = given.validate(lookup).unwrap().recorder;
        assert_eq!(recorder.max_bytes, Some(7 * 1024 * 1024));
        assert_eq!(recorder.max_duration, Some(Duration::from_secs(30)));
        assert_eq!(recorder.writer.compression_level, 6);
    }

    #[test]
    fn bad_settings_name_the_flag() {
        for (json, variable, expected) in [
            (r#"{"maxSizeMb": 0}"#, None, "--max-size-mb must be more than zero"),
            (r#"{"maxDuration": "0s"}"#, None, "--max-duration must be more than zero"),
            (r#"{"queueSizeMb": 0}"#, None, "--queue-size-mb and --blob-max-size-mb must be more than zero"),
            (r#"{"blobMaxAge": 0}"#, None, "--flush-interval and --blob-max-age must be more than zero"),
            (r#"{"compressionLevel": 12}"#, None, "12 is not in 0..=9"),
            ("{}", Some((CAPTURE_MAX_DURATION_MINUTES, "soon")), "CAPTURE_MAX_DURATION_MINUTES is \"soon\""),
            ("{}", Some((CAPTURE_COMPRESSION_ENABLED, "maybe")), "expected true or false"),
            ("{}", Some((CAPTURE_MAX_SIZE_MB, "lots")), "CAPTURE_MAX_SIZE_MB is \"lots\""),
        ] {
            let lookup = |name: &str| variable.filter(|(set, _)| *set == name).map(|(_, value)| value.to_owned());
            let error = settings(json).unwrap().validate(lookup).unwrap_err().to_string();
            assert!(error.contains(expected), "{json}: {error}");
        }
        assert!(settings(r#"{"grpc": "127.0.0.1:4317"}"#).unwrap_err().contains("unknown field `grpc`"));
        assert!(settings(r#"{"signals": "events"}"#).unwrap_err().contains("invalid value \"events\""));
    }

    #[test]
    fn a_joining_capture_names_its_session_and_writer() {
        let plan = settings(r#"{"sessionId": "s-1", "join": true, "writerId": "edge-1"}"#)
            .unwrap()
            .validate(no_variables)
            .unwrap()
            .on_host(Some("other-host".to_owned()));
        let join = plan.recorder.join.clone().unwrap();
        assert_eq!((join.writer.as_str(), join.host.as_deref()), ("edge-1", Some("other-host")));
        let plan = settings(r#"{"sessionId": "s-1", "join": true}"#)
            .unwrap()
            .validate(no_variables)
            .unwrap()
            .on_host(Some("Box_7.example".to_owned()));
        let writer = plan.writer_id().unwrap().as_str().to_owned();
        let (name, suffix) = writer.rsplit_once('-').unwrap();
        assert_eq!(name, "box-7-example");
        assert!(suffix.len() == 6 && suffix.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()), "{writer}");
        let plan = settings(r#"{"sessionId": "s-1", "join": true}"#).unwrap().validate(no_variables).unwrap();
        assert!(plan.writer_id().unwrap().as_str().starts_with("writer-"));
        let alone = settings(r#"{"sessionId": "s-1"}"#).unwrap().validate(no_variables).unwrap();
        assert!(alone.on_host(Some("h".to_owned())).recorder.join.is_none());
        for (json, expected) in [
            (r#"{"join": true}"#, "--join needs --session-id"),
            (r#"{"sessionId": "s-1", "writerId": "w-1"}"#, "--writer-id needs --join"),
        ] {
            let error = settings(json).unwrap().validate(no_variables).unwrap_err().to_string();
            assert!(error.starts_with(expected), "{json}: {error}");
        }
        let error = settings(r#"{"sessionId": "s-1", "join": true, "writerId": "Bad_ID"}"#).unwrap_err();
        assert!(error.contains("invalid writer id \"Bad_ID\""), "{error}");
    }

    #[test]
    fn receive_limits_hold_the_largest_request() {
        assert_eq!(max_request_bytes(0), Err(SettingsError::ZeroMaxRequestSize));
        let largest = max_request_bytes(16).unwrap();
        assert_eq!(largest, 16 * 1024 * 1024);
        let limits = receive_limits(48, 30_000_000_000, largest).unwrap();
        assert_eq!((limits.budget_bytes, limits.read_timeout), (48 * 1024 * 1024, Duration::from_secs(30)));
        let error = receive_limits(8, 1, largest).unwrap_err().to_string();
        assert!(
            error.starts_with("--receive-budget-mb 8 is less than the largest request (--max-request-size-mb, 16 MiB)")
        );
        assert_eq!(receive_limits(48, 0, largest), Err(SettingsError::ZeroReadTimeout));
    }
}
