//! An OTLP exporter that sends already-encoded `Export*ServiceRequest`
//! protobuf bytes, the bytes a session stores, to an OTLP/gRPC or OTLP/HTTP
//! target.
//!
//! One [`Exporter`] serves every signal, unless its configuration names an
//! exact per-signal URL; [`Targets`](crate::Targets) holds one exporter
//! per signal. It does not retry: it classifies each failure as retryable
//! or permanent per the OTLP specification and leaves the retry loop to
//! [`export_with_retry`](crate::export_with_retry) or to the caller.

mod grpc;
mod http;
mod rpc;
mod tls;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tape_otlp::Signal;

use crate::error::{ConfigError, ExportError};

/// The OTLP transport and encoding, named as the specification's
/// `OTEL_EXPORTER_OTLP_PROTOCOL` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// OTLP/gRPC (`grpc`): unary `Export` calls over HTTP/2.
    Grpc,
    /// OTLP/HTTP with binary protobuf bodies (`http/protobuf`).
    HttpProtobuf,
    /// OTLP/HTTP with OTLP/JSON bodies (`http/json`).
    HttpJson,
}

tape_otlp::named_enum! {
    /// The specification's name: `grpc`, `http/protobuf` or `http/json`.
    Protocol { Grpc => "grpc", HttpProtobuf => "http/protobuf", HttpJson => "http/json" }
}

impl FromStr for Protocol {
    type Err = ConfigError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Protocol::from_name(&name.trim().to_ascii_lowercase()).ok_or_else(|| ConfigError::Protocol(name.to_owned()))
    }
}

/// Compression of request bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    /// gzip: `Content-Encoding: gzip` over HTTP, `grpc-encoding: gzip` over gRPC.
    Gzip,
    /// No compression (the default).
    #[default]
    None,
}

/// TLS settings for `https://` endpoints. `http://` endpoints ignore them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsOptions {
    /// A PEM file of the certificate authorities to trust instead of the
    /// system's roots.
    pub ca_file: Option<PathBuf>,
    /// Accept any server certificate, valid or not, for any host name. For
    /// tests against self-signed targets only: it makes TLS worthless
    /// against an attacker. Takes precedence over `ca_file`.
    pub insecure_skip_verify: bool,
}

/// Where and how an [`Exporter`] sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExporterConfig {
    /// The target's URL, `http://` or `https://`. For OTLP/HTTP it is the
    /// base URL when [`append_signal_path`](Self::append_signal_path) is
    /// set: the signal's path (`/v1/traces`, `/v1/metrics`, `/v1/logs`)
    /// is appended to its path, so a prefix such as
    /// `https://gateway.example.com/otlp` is kept; otherwise it is the
    /// exact URL every request is sent to. For OTLP/gRPC it has no path.
    pub endpoint: String,
    /// Whether OTLP/HTTP appends the signal's path to the endpoint's path.
    /// `true` (the default) reads the endpoint as a base URL, as the
    /// specification reads `OTEL_EXPORTER_OTLP_ENDPOINT`; `false` sends to
    /// the endpoint as it is, as the specification reads
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` and its metrics and logs
    /// siblings, so such an exporter is meant for one signal. OTLP/gRPC
    /// ignores it: the service path is fixed.
    pub append_signal_path: bool,
    /// Transport and encoding.
    pub protocol: Protocol,
    /// Headers (HTTP) or metadata (gRPC) sent with every request, such as
    /// an authorization token.
    pub headers: Vec<(String, String)>,
    /// Compression of request bodies.
    pub compression: Compression,
    /// The longest an export may take, connecting included.
    pub timeout: Duration,
    /// TLS settings for `https://` endpoints.
    pub tls: TlsOptions,
}

impl ExporterConfig {
    /// The default timeout of an export, the specification's 10 seconds.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

    /// A configuration for the base URL `endpoint` over `protocol`, with
    /// the signal's path appended (OTLP/HTTP), no headers, no compression,
    /// the default timeout and default TLS settings.
    pub fn new(endpoint: impl Into<String>, protocol: Protocol) -> Self {
        ExporterConfig {
            endpoint: endpoint.into(),
            append_signal_path: true,
            protocol,
            headers: Vec::new(),
            compression: Compression::None,
            timeout: Self::DEFAULT_TIMEOUT,
            tls: TlsOptions::default(),
        }
    }

    /// Checks what can be checked without I/O, as [`Exporter::new`] does:
    /// the endpoint (an `http` or `https` URL with a host, and no path for
    /// OTLP/gRPC) and the headers (valid HTTP headers, or gRPC metadata).
    /// The CA file is read only by [`Exporter::new`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self.protocol {
            Protocol::Grpc => grpc::validate(self),
            Protocol::HttpProtobuf | Protocol::HttpJson => http::validate(self),
        }
    }
}

/// What the target said about an export it accepted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExportOutcome {
    /// Items (spans, metric data points or log records) the target
    /// rejected, from the response's `partial_success`; 0 when it accepted
    /// them all.
    pub rejected_items: u64,
    /// The `partial_success` error message, when the target sent one (it
    /// may send one as a warning with nothing rejected).
    pub message: Option<String>,
}

/// An OTLP exporter for already-encoded requests. Cloning is cheap: clones
/// share the connection pool (HTTP) or the channel (gRPC).
///
/// ```no_run
/// # async fn example(payload: bytes::Bytes) -> Result<(), Box<dyn std::error::Error>> {
/// use tape_otlp::Signal;
/// use tape_replay::{Exporter, ExporterConfig, Protocol};
///
/// let exporter = Exporter::new(ExporterConfig::new("http://localhost:4318", Protocol::HttpProtobuf))?;
/// let outcome = exporter.export(Signal::Traces, payload).await?;
/// println!("{} spans rejected", outcome.rejected_items);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Exporter {
    inner: Arc<Inner>,
}

struct Inner {
    config: ExporterConfig,
    transport: Transport,
}

#[allow(clippy::large_enum_variant, reason = "one per exporter, shared behind an `Arc`")]
enum Transport {
    Http(http::HttpExporter),
    Grpc(grpc::GrpcExporter),
}

impl Exporter {
    /// Checks `config` and builds the exporter. Nothing connects until the
    /// first export, so a target that is not up yet is not an error here.
    pub fn new(config: ExporterConfig) -> Result<Exporter, ConfigError> {
        let transport = match config.protocol {
            Protocol::Grpc => Transport::Grpc(grpc::GrpcExporter::new(&config)?),
            Protocol::HttpProtobuf | Protocol::HttpJson => Transport::Http(http::HttpExporter::new(&config)?),
        };
        Ok(Exporter { inner: Arc::new(Inner { config, transport }) })
    }

    /// The configuration the exporter was built from.
    pub fn config(&self) -> &ExporterConfig {
        &self.inner.config
    }

    /// The protocol the exporter speaks.
    pub fn protocol(&self) -> Protocol {
        self.inner.config.protocol
    }

    /// The endpoint as configured.
    pub fn endpoint(&self) -> &str {
        &self.inner.config.endpoint
    }

    /// Whether `self` and `other` are clones of one exporter, and so share
    /// its connection pool (HTTP) or channel (gRPC).
    pub fn shares_connections_with(&self, other: &Exporter) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Sends one `Export*ServiceRequest` of `signal`, given as protobuf
    /// bytes, once. OTLP/gRPC and OTLP/HTTP protobuf send the bytes as they
    /// are; OTLP/HTTP JSON decodes them and sends OTLP/JSON.
    pub async fn export(&self, signal: Signal, payload: Bytes) -> Result<ExportOutcome, ExportError> {
        match &self.inner.transport {
            Transport::Http(exporter) => exporter.export(signal, payload).await,
            Transport::Grpc(exporter) => exporter.export(signal, payload).await,
        }
    }
}

impl fmt::Debug for Exporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exporter")
            .field("protocol", &self.protocol())
            .field("endpoint", &self.endpoint())
            .finish_non_exhaustive()
    }
}

/// The endpoint parsed as a URL with an `http` or `https` scheme and a host.
/// The gzip level of requests: the fast one. Level 6 (zlib's default)
/// took 64 % of a loopback replay's CPU for payloads a few percent
/// smaller.
const GZIP_LEVEL: flate2::Compression = flate2::Compression::fast();

/// `body` gzipped at [`GZIP_LEVEL`].
fn gzip(body: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 2 + 64), GZIP_LEVEL);
    encoder.write_all(body)?;
    encoder.finish()
}

fn parse_endpoint(endpoint: &str) -> Result<reqwest::Url, ConfigError> {
    let invalid = |reason: String| ConfigError::Endpoint { endpoint: endpoint.to_owned(), reason };
    let expected = "expected a URL such as http://localhost:4317 (gRPC) or http://localhost:4318 (HTTP)";
    // `localhost:4318` parses, with the scheme `localhost`.
    if !endpoint.contains("://") {
        return Err(invalid(format!("the URL has no scheme; {expected}")));
    }
    let url = reqwest::Url::parse(endpoint.trim()).map_err(|error| invalid(format!("{error}; {expected}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(format!("the scheme {:?} is not supported; use http or https", url.scheme())));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("the URL has no host".to_owned()));
    }
    Ok(url)
}

/// The error message of an error and its sources, joined by `: `, without
/// repeating text: a source whose text is already there is skipped, and one
/// whose text holds everything so far replaces it.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        append_cause(&mut message, cause.to_string());
        source = cause.source();
    }
    message
}

/// Appends `cause` to `message` as [`error_chain`] does.
fn append_cause(message: &mut String, cause: String) {
    if cause.contains(message.as_str()) {
        *message = cause;
    } else if !message.contains(&cause) {
        message.push_str(": ");
        message.push_str(&cause);
    }
}

/// How a duration reads in messages: `250ms`, `10s`, `1.5s`.
pub(crate) fn display_duration(duration: Duration) -> String {
    if duration < Duration::from_secs(1) {
        format!("{}ms", duration.as_millis())
    } else {
        format!("{}s", duration.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_names_follow_the_specification() {
        for protocol in [Protocol::Grpc, Protocol::HttpProtobuf, Protocol::HttpJson] {
            assert_eq!(protocol.as_str().parse::<Protocol>().unwrap(), protocol);
        }
        assert_eq!(" HTTP/JSON ".parse::<Protocol>().unwrap(), Protocol::HttpJson);
        let error = "http".parse::<Protocol>().unwrap_err();
        assert!(error.to_string().contains("expected grpc, http/protobuf or http/json"), "{error}");
    }

    #[test]
    fn endpoints_need_an_http_scheme_and_a_host() {
        assert!(parse_endpoint("http://localhost:4318").is_ok());
        assert!(parse_endpoint("https://collector.example.com/otlp").is_ok());
        for bad in ["localhost:4317", "ftp://localhost", "http://", "not a url", ""] {
            let error = parse_endpoint(bad).unwrap_err();
            assert!(matches!(error, ConfigError::Endpoint { .. }), "{bad}: {error}");
            assert!(error.to_string().contains(&format!("{bad:?}")), "{error}");
        }
    }

    #[test]
    fn validate_checks_the_endpoint_and_headers_without_io() {
        for protocol in [Protocol::Grpc, Protocol::HttpProtobuf, Protocol::HttpJson] {
            let mut config = ExporterConfig::new("https://localhost:4318", protocol);
            config.tls.ca_file = Some("missing-ca.pem".into());
            assert!(config.validate().is_ok(), "{protocol}: the CA file is read by Exporter::new only");
            config.headers = vec![("bad header".to_owned(), "x".to_owned())];
            assert!(matches!(config.validate(), Err(ConfigError::Header { .. })), "{protocol}");
            let config = ExporterConfig::new("localhost:4318", protocol);
            let error = config.validate().unwrap_err();
            assert!(error.to_string().contains("the URL has no scheme"), "{protocol}: {error}");
        }
        let config = ExporterConfig::new("http://localhost:4317/v1/traces", Protocol::Grpc);
        assert!(matches!(config.validate(), Err(ConfigError::Endpoint { .. })));
        let config = ExporterConfig::new("http://localhost:4318/v1/traces", Protocol::HttpProtobuf);
        assert!(config.validate().is_ok());
    }

    #[test]
    fn requests_are_gzipped_at_the_fast_level() {
        let body = vec![7_u8; 4096];
        let compressed = gzip(&body).unwrap();
        // The gzip header's XFL byte: 4 says the fastest level was used.
        assert_eq!((compressed[0], compressed[1], compressed[8]), (0x1f, 0x8b, 4));
        let mut inflated = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&compressed[..]), &mut inflated).unwrap();
        assert_eq!(inflated, body);
    }

    #[test]
    fn error_chains_do_not_repeat_themselves() {
        let mut message = "tcp connect error".to_owned();
        append_cause(&mut message, "transport error: tcp connect error".to_owned());
        assert_eq!(message, "transport error: tcp connect error");
        append_cause(&mut message, "tcp connect error".to_owned());
        assert_eq!(message, "transport error: tcp connect error");
        append_cause(&mut message, "Connection refused".to_owned());
        assert_eq!(message, "transport error: tcp connect error: Connection refused");
        let mut empty = String::new();
        append_cause(&mut empty, "cause".to_owned());
        assert_eq!(empty, "cause");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(display_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(display_duration(Duration::from_secs(10)), "10s");
        assert_eq!(display_duration(Duration::from_millis(1500)), "1.5s");
    }
}
