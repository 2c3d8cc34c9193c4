//! The environment variables the replay reads: the OTLP exporter variables
//! of the OpenTelemetry specification (also read by `seed --live`, through
//! [`resolve_targets`](crate::resolve_targets)) and the earlier system's
//! `REPLAY_DEFAULT_*`.
//!
//! Nothing in this crate reads the process environment: functions that
//! need a variable take a lookup `Fn(&str) -> Option<String>`, to which
//! these names are given.

/// Base URL of the OTLP target when no `OTEL_EXPORTER_OTLP_*ENDPOINT`
/// variable names one (the earlier system's variable).
pub const REPLAY_DEFAULT_ENDPOINT: &str = "REPLAY_DEFAULT_ENDPOINT";
/// The speed when `--speed` is not given: a factor such as `0.5`, `1`
/// or `10`, or `max` (the earlier system's variable).
pub const REPLAY_DEFAULT_SPEED: &str = "REPLAY_DEFAULT_SPEED";

// The OTLP exporter variables of the OpenTelemetry specification, read by
// `replay` and `seed --live`. Each general variable applies to every
// signal; a per-signal one (`OTEL_EXPORTER_OTLP_TRACES_*` and its metrics
// and logs siblings) overrides it for its signal only.

/// Base URL of the OTLP target of every signal; OTLP/HTTP appends `/v1/traces`,
/// `/v1/metrics` or `/v1/logs` to its path (default `http://localhost:4318`, or
/// `http://localhost:4317` for gRPC).
pub const OTEL_EXPORTER_OTLP_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// Exact URL of the OTLP target of traces, used as it is: OTLP/HTTP appends no path.
pub const OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
/// Exact URL of the OTLP target of metrics, used as it is: OTLP/HTTP appends no path.
pub const OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT";
/// Exact URL of the OTLP target of logs, used as it is: OTLP/HTTP appends no path.
pub const OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT";
/// OTLP protocol of every signal: `grpc`, `http/protobuf` (the default) or `http/json`.
pub const OTEL_EXPORTER_OTLP_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_PROTOCOL";
/// OTLP protocol of traces: `grpc`, `http/protobuf` or `http/json`.
pub const OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL";
/// OTLP protocol of metrics: `grpc`, `http/protobuf` or `http/json`.
pub const OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL";
/// OTLP protocol of logs: `grpc`, `http/protobuf` or `http/json`.
pub const OTEL_EXPORTER_OTLP_LOGS_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL";
/// Headers (gRPC metadata) of every signal's requests, as `key1=value1,key2=value2`
/// with percent-encoded values.
pub const OTEL_EXPORTER_OTLP_HEADERS: &str = "OTEL_EXPORTER_OTLP_HEADERS";
/// Headers (gRPC metadata) of traces requests, as `key1=value1,key2=value2` with
/// percent-encoded values; replaces `OTEL_EXPORTER_OTLP_HEADERS`.
pub const OTEL_EXPORTER_OTLP_TRACES_HEADERS: &str = "OTEL_EXPORTER_OTLP_TRACES_HEADERS";
/// Headers (gRPC metadata) of metrics requests, as `key1=value1,key2=value2` with
/// percent-encoded values; replaces `OTEL_EXPORTER_OTLP_HEADERS`.
pub const OTEL_EXPORTER_OTLP_METRICS_HEADERS: &str = "OTEL_EXPORTER_OTLP_METRICS_HEADERS";
/// Headers (gRPC metadata) of logs requests, as `key1=value1,key2=value2` with
/// percent-encoded values; replaces `OTEL_EXPORTER_OTLP_HEADERS`.
pub const OTEL_EXPORTER_OTLP_LOGS_HEADERS: &str = "OTEL_EXPORTER_OTLP_LOGS_HEADERS";
/// Compression of every signal's requests: `gzip` (otlp-tape's default) or `none`.
pub const OTEL_EXPORTER_OTLP_COMPRESSION: &str = "OTEL_EXPORTER_OTLP_COMPRESSION";
/// Compression of traces requests: `gzip` or `none`.
pub const OTEL_EXPORTER_OTLP_TRACES_COMPRESSION: &str = "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION";
/// Compression of metrics requests: `gzip` or `none`.
pub const OTEL_EXPORTER_OTLP_METRICS_COMPRESSION: &str = "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION";
/// Compression of logs requests: `gzip` or `none`.
pub const OTEL_EXPORTER_OTLP_LOGS_COMPRESSION: &str = "OTEL_EXPORTER_OTLP_LOGS_COMPRESSION";
/// The longest one export of any signal may take, in whole milliseconds (default
/// `10000`).
pub const OTEL_EXPORTER_OTLP_TIMEOUT: &str = "OTEL_EXPORTER_OTLP_TIMEOUT";
/// The longest one export of traces may take, in whole milliseconds.
pub const OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: &str = "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT";
/// The longest one export of metrics may take, in whole milliseconds.
pub const OTEL_EXPORTER_OTLP_METRICS_TIMEOUT: &str = "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT";
/// The longest one export of logs may take, in whole milliseconds.
pub const OTEL_EXPORTER_OTLP_LOGS_TIMEOUT: &str = "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT";
/// PEM file of the certificate authorities that `https://` targets of every signal
/// are checked against, instead of the system's roots.
pub const OTEL_EXPORTER_OTLP_CERTIFICATE: &str = "OTEL_EXPORTER_OTLP_CERTIFICATE";
/// PEM file of the certificate authorities that an `https://` target of traces is
/// checked against, instead of the system's roots.
pub const OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE: &str = "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE";
/// PEM file of the certificate authorities that an `https://` target of metrics is
/// checked against, instead of the system's roots.
pub const OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE: &str = "OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE";
/// PEM file of the certificate authorities that an `https://` target of logs is
/// checked against, instead of the system's roots.
pub const OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE: &str = "OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE";
/// `true` accepts any certificate from `https://` targets of every signal, for tests
/// against self-signed targets (default `false`). (The specification's meaning,
/// plaintext gRPC for an endpoint without a scheme, does not arise: otlp-tape
/// needs a scheme, and `http://` is plaintext.)
pub const OTEL_EXPORTER_OTLP_INSECURE: &str = "OTEL_EXPORTER_OTLP_INSECURE";
/// `true` accepts any certificate from an `https://` target of traces; `false`
/// checks it even when `OTEL_EXPORTER_OTLP_INSECURE` is `true`.
pub const OTEL_EXPORTER_OTLP_TRACES_INSECURE: &str = "OTEL_EXPORTER_OTLP_TRACES_INSECURE";
/// `true` accepts any certificate from an `https://` target of metrics; `false`
/// checks it even when `OTEL_EXPORTER_OTLP_INSECURE` is `true`.
pub const OTEL_EXPORTER_OTLP_METRICS_INSECURE: &str = "OTEL_EXPORTER_OTLP_METRICS_INSECURE";
/// `true` accepts any certificate from an `https://` target of logs; `false`
/// checks it even when `OTEL_EXPORTER_OTLP_INSECURE` is `true`.
pub const OTEL_EXPORTER_OTLP_LOGS_INSECURE: &str = "OTEL_EXPORTER_OTLP_LOGS_INSECURE";
