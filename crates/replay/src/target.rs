//! The OTLP target of a replay (and of `seed --live`): its configuration,
//! then the OTLP exporter variables of the OpenTelemetry specification,
//! then the earlier system's variable, then defaults, resolved per signal.
//!
//! Per signal and per setting the first of these that is set wins: the
//! configuration (the flag), `OTEL_EXPORTER_OTLP_<SIGNAL>_<SETTING>`,
//! `OTEL_EXPORTER_OTLP_<SETTING>`, `REPLAY_DEFAULT_ENDPOINT` (the endpoint
//! only), the default. An empty variable counts as unset. As the
//! specification says, `--endpoint` and `OTEL_EXPORTER_OTLP_ENDPOINT` are
//! base URLs to which OTLP/HTTP appends `/v1/<signal>`, while
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` and its siblings are used as they
//! are. The variables are read through a lookup the caller gives, never
//! from the process environment. Messages name the flag (`--endpoint`) or
//! the variable whose value is wrong.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;
use tape_otlp::Signal;

use crate::env;
use crate::error::ConfigError;
use crate::exporter::{Compression, ExporterConfig, Protocol, TlsOptions};
use crate::targets::Targets;

/// The endpoint when nothing names one, for OTLP/HTTP.
pub const DEFAULT_HTTP_ENDPOINT: &str = "http://localhost:4318";
/// The endpoint when nothing names one, for OTLP/gRPC.
pub const DEFAULT_GRPC_ENDPOINT: &str = "http://localhost:4317";

/// Where and how to send OTLP, as given: the target flags of `replay` and
/// `seed --live`, and the same keys of the control API's replay body.
/// Every field is optional, so that the environment can fill it; see
/// [`resolve_targets`]. The CA file is not here: it names a file on the
/// host, so it is an argument of [`resolve_targets`], not a key the
/// control API accepts.
///
/// ```
/// let config: tape_replay::TargetConfig =
///     serde_json::from_str(r#"{"endpoint": "http://collector:4318", "header": ["x-tenant=blue"], "timeout": "5s"}"#)
///         .unwrap();
/// assert_eq!(config.headers, [("x-tenant".to_owned(), "blue".to_owned())]);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TargetConfig {
    /// Base URL of the OTLP target; OTLP/HTTP appends `/v1/traces`,
    /// `/v1/metrics` or `/v1/logs` to its path. Default: the variables,
    /// then `http://localhost:4318` (`http://localhost:4317` for gRPC).
    #[serde(default)]
    #[cfg_attr(
        feature = "clap",
        arg(
            long,
            value_name = "URL",
            help = "Base URL of the OTLP target; OTLP/HTTP appends /v1/traces, /v1/metrics or /v1/logs to its path. \
                [env: OTEL_EXPORTER_OTLP_ENDPOINT, REPLAY_DEFAULT_ENDPOINT; OTEL_EXPORTER_OTLP_<SIGNAL>_ENDPOINT is \
                an exact URL] [default: http://localhost:4318, or http://localhost:4317 for grpc]",
        )
    )]
    pub endpoint: Option<String>,
    /// OTLP protocol: `grpc`, `http/protobuf` or `http/json`. Default: the
    /// variables, then `http/protobuf`.
    #[serde(default, deserialize_with = "protocol")]
    #[cfg_attr(feature = "clap", arg(
        long, value_name = "PROTOCOL", value_parser = parse_protocol,
        help = "OTLP protocol: grpc, http/protobuf or http/json. \
                [env: OTEL_EXPORTER_OTLP_PROTOCOL, OTEL_EXPORTER_OTLP_<SIGNAL>_PROTOCOL] [default: http/protobuf]",
    ))]
    pub protocol: Option<Protocol>,
    /// Headers (gRPC metadata) of every request, `KEY=VALUE` each (key
    /// `header`); they replace the variables' headers. Default: the
    /// variables', else none.
    #[serde(default, rename = "header", deserialize_with = "headers")]
    #[cfg_attr(feature = "clap", arg(
        long = "header", value_name = "KEY=VALUE", value_parser = parse_header,
        help = "A header (gRPC metadata) of every request, as KEY=VALUE; repeat for more. Replaces the variables' \
                headers. [env: OTEL_EXPORTER_OTLP_HEADERS, OTEL_EXPORTER_OTLP_<SIGNAL>_HEADERS, as \
                key1=value1,key2=value2 with percent-encoded values] [default: none]",
    ))]
    pub headers: Vec<(String, String)>,
    /// Compression of request bodies: `gzip` or `none`. Default: the
    /// variables, then `gzip`.
    #[serde(default, deserialize_with = "tape_session::config::parsed")]
    #[cfg_attr(feature = "clap", arg(
        long, value_name = "gzip|none", value_parser = parse_compression,
        help = "Compression of request bodies: gzip or none. \
                [env: OTEL_EXPORTER_OTLP_COMPRESSION, OTEL_EXPORTER_OTLP_<SIGNAL>_COMPRESSION] [default: gzip]",
    ))]
    pub compression: Option<Compression>,
    /// The longest one export may take, such as `10s` or `500ms` (a bare
    /// number is seconds). Default: the variables (milliseconds), then 10 s.
    #[serde(default, deserialize_with = "timeout")]
    #[cfg_attr(feature = "clap", arg(
        long, value_name = "DURATION", value_parser = parse_timeout,
        help = "The longest one export may take, such as 10s or 500ms; a bare number is seconds. \
                [env: OTEL_EXPORTER_OTLP_TIMEOUT, OTEL_EXPORTER_OTLP_<SIGNAL>_TIMEOUT, in milliseconds] [default: 10s]",
    ))]
    pub timeout: Option<Duration>,
    /// Accept any certificate from an `https://` target, for tests against
    /// self-signed targets only. Default: the variables, then `false`.
    #[serde(default, deserialize_with = "tape_session::config::switch")]
    #[cfg_attr(
        feature = "clap",
        arg(
            long,
            help = "Accept any certificate from an https:// target, for tests against self-signed targets only. \
                [env: OTEL_EXPORTER_OTLP_INSECURE, OTEL_EXPORTER_OTLP_<SIGNAL>_INSECURE, true or false] \
                [default: false]",
        )
    )]
    pub insecure: bool,
}

/// A target that cannot be resolved or built.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// A setting or variable whose value is not valid; the message names
    /// the flag or the variable, its value (never a header's value, which
    /// may be a credential) and what would be valid.
    #[error("{0}")]
    Invalid(String),
    /// A configuration the exporter refuses.
    #[error(transparent)]
    Exporter(ConfigError),
    /// The exporters cannot be built from the resolved configurations.
    #[error("invalid OTLP target")]
    Build(#[source] ConfigError),
}

/// The exporter configurations of traces, metrics and logs, in that order,
/// from `config`, `ca_file` (`--ca-file`) and the variables read through
/// `env` (which returns a variable's value, or `None` when it is unset).
///
/// # Errors
/// An invalid value, named by its flag or variable with what would be valid.
pub fn resolve(
    config: &TargetConfig,
    ca_file: Option<&Path>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<[ExporterConfig; 3], TargetError> {
    let [traces, metrics, logs] = Signal::ALL.map(|signal| resolve_signal(config, ca_file, &env, signal));
    Ok([traces?, metrics?, logs?])
}

/// The [`Targets`] of `config`, `ca_file` and the variables read through
/// `env`; see [`resolve`]. Nothing connects until the first export.
///
/// # Errors
/// An invalid value (see [`resolve`]), or exporters that cannot be built
/// ([`TargetError::Build`], `invalid OTLP target`).
pub fn resolve_targets(
    config: &TargetConfig,
    ca_file: Option<&Path>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Targets, TargetError> {
    let [traces, metrics, logs] = resolve(config, ca_file, env)?;
    Targets::new(traces, metrics, logs).map_err(TargetError::Build)
}

impl FromStr for Compression {
    type Err = String;

    /// `gzip` or `none`, in any case.
    fn from_str(text: &str) -> Result<Self, String> {
        parse_compression(text)
    }
}

/// Parses a value by one of this module's parsers, for serde.
struct Parsed<T>(T);

macro_rules! parsed_by {
    ($type:ty, $parse:path) => {
        impl FromStr for Parsed<$type> {
            type Err = String;

            fn from_str(text: &str) -> Result<Self, String> {
                $parse(text).map(Parsed)
            }
        }
    };
}

parsed_by!(Protocol, parse_protocol);
parsed_by!(Duration, parse_timeout);
parsed_by!((String, String), parse_header);

pub(crate) fn protocol<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Protocol>, D::Error> {
    Ok(tape_session::config::parsed::<D, Parsed<Protocol>>(deserializer)?.map(|parsed| parsed.0))
}

pub(crate) fn timeout<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Duration>, D::Error> {
    Ok(tape_session::config::parsed::<D, Parsed<Duration>>(deserializer)?.map(|parsed| parsed.0))
}

pub(crate) fn headers<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<(String, String)>, D::Error> {
    let headers = tape_session::config::whole_items::<D, Parsed<(String, String)>>(deserializer)?;
    Ok(headers.into_iter().map(|parsed| parsed.0).collect())
}

/// The names of one level of the OTLP exporter variables: the general
/// ones, or one signal's.
struct Variables {
    endpoint: &'static str,
    protocol: &'static str,
    headers: &'static str,
    compression: &'static str,
    timeout: &'static str,
    certificate: &'static str,
    insecure: &'static str,
}

const GENERAL: Variables = Variables {
    endpoint: env::OTEL_EXPORTER_OTLP_ENDPOINT,
    protocol: env::OTEL_EXPORTER_OTLP_PROTOCOL,
    headers: env::OTEL_EXPORTER_OTLP_HEADERS,
    compression: env::OTEL_EXPORTER_OTLP_COMPRESSION,
    timeout: env::OTEL_EXPORTER_OTLP_TIMEOUT,
    certificate: env::OTEL_EXPORTER_OTLP_CERTIFICATE,
    insecure: env::OTEL_EXPORTER_OTLP_INSECURE,
};

fn signal_variables(signal: Signal) -> Variables {
    match signal {
        Signal::Traces => Variables {
            endpoint: env::OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
            protocol: env::OTEL_EXPORTER_OTLP_TRACES_PROTOCOL,
            headers: env::OTEL_EXPORTER_OTLP_TRACES_HEADERS,
            compression: env::OTEL_EXPORTER_OTLP_TRACES_COMPRESSION,
            timeout: env::OTEL_EXPORTER_OTLP_TRACES_TIMEOUT,
            certificate: env::OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE,
            insecure: env::OTEL_EXPORTER_OTLP_TRACES_INSECURE,
        },
        Signal::Metrics => Variables {
            endpoint: env::OTEL_EXPORTER_OTLP_METRICS_ENDPOINT,
            protocol: env::OTEL_EXPORTER_OTLP_METRICS_PROTOCOL,
            headers: env::OTEL_EXPORTER_OTLP_METRICS_HEADERS,
            compression: env::OTEL_EXPORTER_OTLP_METRICS_COMPRESSION,
            timeout: env::OTEL_EXPORTER_OTLP_METRICS_TIMEOUT,
            certificate: env::OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE,
            insecure: env::OTEL_EXPORTER_OTLP_METRICS_INSECURE,
        },
        Signal::Logs => Variables {
            endpoint: env::OTEL_EXPORTER_OTLP_LOGS_ENDPOINT,
            protocol: env::OTEL_EXPORTER_OTLP_LOGS_PROTOCOL,
            headers: env::OTEL_EXPORTER_OTLP_LOGS_HEADERS,
            compression: env::OTEL_EXPORTER_OTLP_LOGS_COMPRESSION,
            timeout: env::OTEL_EXPORTER_OTLP_LOGS_TIMEOUT,
            certificate: env::OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE,
            insecure: env::OTEL_EXPORTER_OTLP_LOGS_INSECURE,
        },
    }
}

/// A variable's value, trimmed, and its name.
struct Variable {
    name: &'static str,
    value: String,
}

/// The first of `names` that is set and not blank.
fn first_set(env: &impl Fn(&str) -> Option<String>, names: &[&'static str]) -> Option<Variable> {
    names.iter().find_map(|&name| {
        let value = env(name)?;
        let value = value.trim();
        (!value.is_empty()).then(|| Variable { name, value: value.to_owned() })
    })
}

/// The first of `names` that is set, parsed by `parse`, whose error says
/// what is expected.
fn parse_first<T>(
    env: &impl Fn(&str) -> Option<String>,
    names: &[&'static str],
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<Option<T>, TargetError> {
    let Some(variable) = first_set(env, names) else { return Ok(None) };
    parse(&variable.value)
        .map(Some)
        .map_err(|expected| TargetError::Invalid(format!("invalid {} {:?}: {expected}", variable.name, variable.value)))
}

fn resolve_signal(
    config: &TargetConfig,
    ca_file: Option<&Path>,
    env: &impl Fn(&str) -> Option<String>,
    signal: Signal,
) -> Result<ExporterConfig, TargetError> {
    let own = signal_variables(signal);

    let protocol = match config.protocol {
        Some(protocol) => protocol,
        None => parse_first(env, &[own.protocol, GENERAL.protocol], parse_protocol)?.unwrap_or(Protocol::HttpProtobuf),
    };

    // The endpoint, whether it is an exact URL, and where it came from.
    let (endpoint, exact, endpoint_source) = if let Some(endpoint) = &config.endpoint {
        (endpoint.trim().to_owned(), false, "--endpoint")
    } else if let Some(variable) = first_set(env, &[own.endpoint]) {
        (variable.value, true, variable.name)
    } else if let Some(variable) = first_set(env, &[GENERAL.endpoint, env::REPLAY_DEFAULT_ENDPOINT]) {
        (variable.value, false, variable.name)
    } else {
        let default = if protocol == Protocol::Grpc { DEFAULT_GRPC_ENDPOINT } else { DEFAULT_HTTP_ENDPOINT };
        (default.to_owned(), false, "the default endpoint")
    };

    let (headers, headers_source) = if config.headers.is_empty() {
        match first_set(env, &[own.headers, GENERAL.headers]) {
            Some(variable) => (parse_headers(variable.name, &variable.value)?, variable.name),
            None => (Vec::new(), "the headers"),
        }
    } else {
        (config.headers.clone(), "--header")
    };

    let compression = match config.compression {
        Some(compression) => compression,
        None => {
            parse_first(env, &[own.compression, GENERAL.compression], parse_compression)?.unwrap_or(Compression::Gzip)
        }
    };

    let timeout = match config.timeout {
        Some(timeout) => timeout,
        None => parse_first(env, &[own.timeout, GENERAL.timeout], parse_milliseconds)?
            .unwrap_or(ExporterConfig::DEFAULT_TIMEOUT),
    };

    let insecure_skip_verify =
        config.insecure || parse_first(env, &[own.insecure, GENERAL.insecure], parse_bool)?.unwrap_or(false);

    let ca_file = match ca_file {
        Some(path) => Some((path.to_owned(), "--ca-file")),
        None => first_set(env, &[own.certificate, GENERAL.certificate])
            .map(|variable| (PathBuf::from(variable.value), variable.name)),
    };
    if let Some((path, source)) = &ca_file {
        // Checked only where the exporter reads it, naming its source.
        let https = endpoint.get(..8).is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"));
        if https && !insecure_skip_verify {
            check_ca_file(source, path)?;
        }
    }

    let exporter = ExporterConfig {
        endpoint,
        // gRPC ignores it; keeping it `true` there lets signals whose
        // settings are otherwise equal share one channel.
        append_signal_path: !exact || protocol == Protocol::Grpc,
        protocol,
        headers,
        compression,
        timeout,
        tls: TlsOptions { ca_file: ca_file.map(|(path, _)| path), insecure_skip_verify },
    };
    exporter.validate().map_err(|error| match error {
        ConfigError::Endpoint { endpoint, reason } => {
            TargetError::Invalid(format!("invalid {endpoint_source} {endpoint:?}: {reason}"))
        }
        ConfigError::Header { name, reason } => {
            TargetError::Invalid(format!("invalid {headers_source}: header {name:?}: {reason}"))
        }
        error => TargetError::Exporter(error),
    })?;
    Ok(exporter)
}

fn check_ca_file(source: &str, path: &Path) -> Result<(), TargetError> {
    let expected = "expected a PEM file of certificate authorities";
    let shown = path.display();
    match std::fs::metadata(path) {
        Ok(metadata) if metadata.is_file() => Ok(()),
        Ok(_) => Err(TargetError::Invalid(format!("invalid {source} \"{shown}\": not a file; {expected}"))),
        Err(error) => Err(TargetError::Invalid(format!("invalid {source} \"{shown}\": {error}; {expected}"))),
    }
}

/// An OTLP protocol name, for `--protocol` and the variables; the error
/// says what would be valid.
pub fn parse_protocol(text: &str) -> Result<Protocol, String> {
    text.parse().map_err(|_| "expected grpc, http/protobuf or http/json".to_owned())
}

/// `gzip` or `none`, in any case, for `--compression` and the variables;
/// the error says what would be valid.
pub fn parse_compression(text: &str) -> Result<Compression, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "gzip" => Ok(Compression::Gzip),
        "none" => Ok(Compression::None),
        _ => Err("expected gzip or none".to_owned()),
    }
}

/// `--timeout`: a duration such as `10s` or `500ms`; a bare number is
/// seconds. Zero is refused: every export would time out.
///
/// # Errors
/// The text is not a duration above zero; the message says what would be valid.
pub fn parse_timeout(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let nanos = if !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit() || byte == b'.') {
        tape_session::parse_duration(&format!("{text}s"))?
    } else {
        tape_session::parse_duration(text)?
    };
    if nanos == 0 {
        return Err("expected a timeout above zero, such as 10s or 500ms".to_owned());
    }
    Ok(Duration::from_nanos(nanos))
}

/// The variables' timeout: whole milliseconds, as the specification says.
fn parse_milliseconds(text: &str) -> Result<Duration, String> {
    match text.parse::<u64>() {
        Ok(0) | Err(_) => Err("expected whole milliseconds above zero, such as 10000".to_owned()),
        Ok(millis) => Ok(Duration::from_millis(millis)),
    }
}

/// `true` or `false`, in any case.
fn parse_bool(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err("expected true or false".to_owned()),
    }
}

/// `--header KEY=VALUE`, taken literally (no percent-decoding), trimmed;
/// the error says what would be valid.
pub fn parse_header(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => Ok((key.trim().to_owned(), value.trim().to_owned())),
        _ => Err("expected KEY=VALUE, such as x-tenant=blue".to_owned()),
    }
}

/// The headers of the variable `name`: `key1=value1,key2=value2`, the
/// specification's W3C-baggage-like format, with percent-encoded values.
/// Blank entries are skipped. Messages name the variable and the entry's
/// key or position, not its value, which may be a credential.
fn parse_headers(name: &str, text: &str) -> Result<Vec<(String, String)>, TargetError> {
    let expected = "expected key1=value1,key2=value2 with percent-encoded values";
    let mut headers = Vec::new();
    for (position, entry) in text.split(',').enumerate() {
        let entry = entry.trim();
        if entry.is_empty() {
            continue;
        }
        let Some((key, value)) = entry.split_once('=') else {
            return Err(TargetError::Invalid(format!("invalid {name}: entry {} has no '='; {expected}", position + 1)));
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(TargetError::Invalid(format!(
                "invalid {name}: entry {} has no key before '='; {expected}",
                position + 1
            )));
        }
        let value = percent_decode(value.trim()).map_err(|reason| {
            TargetError::Invalid(format!("invalid {name}: the value of {key:?} {reason}; {expected}"))
        })?;
        headers.push((key.to_owned(), value));
    }
    Ok(headers)
}

/// `text` with every `%XX` replaced by the byte it encodes; the result must
/// be UTF-8. `+` stays a plus sign, as in W3C baggage.
fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = |offset: usize| {
                let digit = char::from(*bytes.get(index + offset)?).to_digit(16)?;
                u8::try_from(digit).ok()
            };
            let (Some(high), Some(low)) = (hex(1), hex(2)) else {
                return Err("has a '%' not followed by two hexadecimal digits".to_owned());
            };
            decoded.push(high << 4 | low);
            index += 3;
        } else {
            decoded.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(decoded).map_err(|_| "is not UTF-8 once percent-decoded".to_owned())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> =
            pairs.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect();
        move |name| map.get(name).cloned()
    }

    fn resolved(config: &TargetConfig, pairs: &[(&str, &str)]) -> [ExporterConfig; 3] {
        resolve(config, None, env_of(pairs)).unwrap()
    }

    fn resolved_with_ca(config: &TargetConfig, ca_file: &Path, pairs: &[(&str, &str)]) -> [ExporterConfig; 3] {
        resolve(config, Some(ca_file), env_of(pairs)).unwrap()
    }

    fn error(config: &TargetConfig, pairs: &[(&str, &str)]) -> String {
        resolve(config, None, env_of(pairs)).unwrap_err().to_string()
    }

    fn no_flags() -> TargetConfig {
        TargetConfig::default()
    }

    /// Each signal's `(endpoint, append_signal_path)`.
    fn endpoints(configs: &[ExporterConfig; 3]) -> [(&str, bool); 3] {
        [0, 1, 2].map(|index| (configs[index].endpoint.as_str(), configs[index].append_signal_path))
    }

    #[test]
    fn nothing_set_gives_the_defaults() {
        for config in resolved(&no_flags(), &[]) {
            let mut expected = ExporterConfig::new(DEFAULT_HTTP_ENDPOINT, Protocol::HttpProtobuf);
            expected.compression = Compression::Gzip;
            assert_eq!(config, expected);
            assert_eq!(config.timeout, Duration::from_secs(10));
        }
    }

    #[test]
    fn endpoint_precedence_is_flag_then_signal_then_general_then_earlier_variable() {
        let mut pairs = vec![(env::REPLAY_DEFAULT_ENDPOINT, "http://earlier:4318")];
        assert_eq!(resolved(&no_flags(), &pairs)[0].endpoint, "http://earlier:4318");
        pairs.push((env::OTEL_EXPORTER_OTLP_ENDPOINT, "http://general:4318"));
        assert_eq!(resolved(&no_flags(), &pairs)[0].endpoint, "http://general:4318");
        pairs.push((env::OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, "http://traces:4318/v1/traces"));
        assert_eq!(resolved(&no_flags(), &pairs)[0].endpoint, "http://traces:4318/v1/traces");
        let flags = TargetConfig { endpoint: Some("http://flag:4318".to_owned()), ..TargetConfig::default() };
        assert_eq!(
            endpoints(&resolved(&flags, &pairs)),
            [("http://flag:4318", true), ("http://flag:4318", true), ("http://flag:4318", true)]
        );
    }

    #[test]
    fn a_per_signal_endpoint_is_exact_and_for_its_signal_only() {
        let pairs = [
            (env::OTEL_EXPORTER_OTLP_ENDPOINT, "http://collector:4318/otlp"),
            (env::OTEL_EXPORTER_OTLP_LOGS_ENDPOINT, "https://logs.example.com/ingest"),
        ];
        assert_eq!(
            endpoints(&resolved(&no_flags(), &pairs)),
            [
                ("http://collector:4318/otlp", true),
                ("http://collector:4318/otlp", true),
                ("https://logs.example.com/ingest", false),
            ]
        );
        let pairs = [(env::REPLAY_DEFAULT_ENDPOINT, "http://a:4318"), (env::OTEL_EXPORTER_OTLP_METRICS_ENDPOINT, " ")];
        assert_eq!(endpoints(&resolved(&no_flags(), &pairs))[1], ("http://a:4318", true), "a blank variable is unset");
    }

    #[test]
    fn grpc_defaults_to_port_4317_only_when_nothing_names_an_endpoint() {
        let grpc = TargetConfig { protocol: Some(Protocol::Grpc), ..TargetConfig::default() };
        for config in resolved(&grpc, &[]) {
            assert_eq!((config.endpoint.as_str(), config.protocol), (DEFAULT_GRPC_ENDPOINT, Protocol::Grpc));
        }
        let configs = resolved(&no_flags(), &[(env::OTEL_EXPORTER_OTLP_METRICS_PROTOCOL, "grpc")]);
        assert_eq!(
            configs.each_ref().map(|config| (config.endpoint.as_str(), config.protocol)),
            [
                (DEFAULT_HTTP_ENDPOINT, Protocol::HttpProtobuf),
                (DEFAULT_GRPC_ENDPOINT, Protocol::Grpc),
                (DEFAULT_HTTP_ENDPOINT, Protocol::HttpProtobuf),
            ]
        );
        let configs = resolved(&grpc, &[(env::REPLAY_DEFAULT_ENDPOINT, "http://collector:4318")]);
        assert_eq!(configs[0].endpoint, "http://collector:4318");
    }

    #[test]
    fn a_per_signal_grpc_endpoint_is_checked_and_shares_the_channel() {
        let pairs = [
            (env::OTEL_EXPORTER_OTLP_PROTOCOL, "grpc"),
            (env::OTEL_EXPORTER_OTLP_ENDPOINT, "http://collector:4317"),
            (env::OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, "http://collector:4317"),
        ];
        let configs = resolved(&no_flags(), &pairs);
        assert_eq!(configs[0], configs[1], "gRPC has no signal path to append");
        let pairs = [
            (env::OTEL_EXPORTER_OTLP_PROTOCOL, "grpc"),
            (env::OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, "http://c/v1/traces"),
        ];
        let message = error(&no_flags(), &pairs);
        assert!(
            message.starts_with("invalid OTEL_EXPORTER_OTLP_TRACES_ENDPOINT \"http://c/v1/traces\": "),
            "{message}"
        );
        assert!(message.contains("no path"), "{message}");
    }

    #[test]
    fn protocol_precedence_is_flag_then_signal_then_general_then_http_protobuf() {
        let mut pairs = vec![];
        assert_eq!(resolved(&no_flags(), &pairs)[2].protocol, Protocol::HttpProtobuf);
        pairs.push((env::OTEL_EXPORTER_OTLP_PROTOCOL, "http/json"));
        assert_eq!(resolved(&no_flags(), &pairs)[2].protocol, Protocol::HttpJson);
        pairs.push((env::OTEL_EXPORTER_OTLP_LOGS_PROTOCOL, "grpc"));
        let configs = resolved(&no_flags(), &pairs);
        assert_eq!((configs[0].protocol, configs[2].protocol), (Protocol::HttpJson, Protocol::Grpc));
        let flags = TargetConfig { protocol: Some(Protocol::HttpProtobuf), ..TargetConfig::default() };
        assert!(resolved(&flags, &pairs).iter().all(|config| config.protocol == Protocol::HttpProtobuf));
    }

    #[test]
    fn header_precedence_is_every_flag_then_signal_then_general() {
        let owned = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs.iter().map(|(key, value)| ((*key).to_owned(), (*value).to_owned())).collect()
        };
        let mut pairs = vec![(env::OTEL_EXPORTER_OTLP_HEADERS, "x-tenant=blue")];
        assert_eq!(resolved(&no_flags(), &pairs)[0].headers, owned(&[("x-tenant", "blue")]));
        pairs.push((env::OTEL_EXPORTER_OTLP_TRACES_HEADERS, "x-team=red"));
        let configs = resolved(&no_flags(), &pairs);
        assert_eq!(configs[0].headers, owned(&[("x-team", "red")]), "replaces the general headers");
        assert_eq!(configs[1].headers, owned(&[("x-tenant", "blue")]));
        let flags = TargetConfig { headers: owned(&[("a", "1"), ("b", "2")]), ..TargetConfig::default() };
        for config in resolved(&flags, &pairs) {
            assert_eq!(config.headers, owned(&[("a", "1"), ("b", "2")]));
        }
    }

    #[test]
    fn variable_headers_are_percent_decoded_and_trimmed() {
        let text = " authorization = Basic%20dXNlcjpwYXNz , x-note=caf%C3%A9%2C%20ok,, token=a=b+c ";
        let headers = parse_headers(env::OTEL_EXPORTER_OTLP_HEADERS, text).unwrap();
        assert_eq!(
            headers,
            [
                ("authorization".to_owned(), "Basic dXNlcjpwYXNz".to_owned()),
                ("x-note".to_owned(), "caf\u{e9}, ok".to_owned()),
                ("token".to_owned(), "a=b+c".to_owned()),
            ]
        );
        assert_eq!(parse_headers(env::OTEL_EXPORTER_OTLP_HEADERS, " , ").unwrap(), []);
    }

    #[test]
    fn compression_precedence_is_flag_then_signal_then_general_then_gzip() {
        let mut pairs = vec![];
        assert_eq!(resolved(&no_flags(), &pairs)[1].compression, Compression::Gzip);
        pairs.push((env::OTEL_EXPORTER_OTLP_COMPRESSION, "none"));
        assert_eq!(resolved(&no_flags(), &pairs)[1].compression, Compression::None);
        pairs.push((env::OTEL_EXPORTER_OTLP_METRICS_COMPRESSION, "GZIP"));
        let configs = resolved(&no_flags(), &pairs);
        assert_eq!((configs[0].compression, configs[1].compression), (Compression::None, Compression::Gzip));
        let flags = TargetConfig { compression: Some(Compression::None), ..TargetConfig::default() };
        assert_eq!(resolved(&flags, &pairs)[1].compression, Compression::None);
    }

    #[test]
    fn timeout_precedence_is_flag_then_signal_then_general_milliseconds_then_ten_seconds() {
        let mut pairs = vec![];
        assert_eq!(resolved(&no_flags(), &pairs)[0].timeout, Duration::from_secs(10));
        pairs.push((env::OTEL_EXPORTER_OTLP_TIMEOUT, "5000"));
        assert_eq!(resolved(&no_flags(), &pairs)[0].timeout, Duration::from_secs(5));
        pairs.push((env::OTEL_EXPORTER_OTLP_TRACES_TIMEOUT, "250"));
        let configs = resolved(&no_flags(), &pairs);
        assert_eq!((configs[0].timeout, configs[2].timeout), (Duration::from_millis(250), Duration::from_secs(5)));
        let flags = TargetConfig { timeout: Some(Duration::from_secs(2)), ..TargetConfig::default() };
        assert_eq!(resolved(&flags, &pairs)[0].timeout, Duration::from_secs(2));
    }

    #[test]
    fn tls_precedence_is_flag_then_signal_then_general() {
        let tls = |args: &TargetConfig, pairs: &[(&str, &str)]| resolved(args, pairs).map(|config| config.tls);
        let default = tls(&no_flags(), &[]);
        assert!(default.iter().all(|tls| *tls == TlsOptions::default()));

        let pairs = [
            (env::OTEL_EXPORTER_OTLP_CERTIFICATE, "general.pem"),
            (env::OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE, "logs.pem"),
            (env::OTEL_EXPORTER_OTLP_INSECURE, "true"),
            (env::OTEL_EXPORTER_OTLP_METRICS_INSECURE, "FALSE"),
        ];
        let [traces, metrics, logs] = tls(&no_flags(), &pairs);
        assert_eq!(traces, TlsOptions { ca_file: Some("general.pem".into()), insecure_skip_verify: true });
        assert_eq!(metrics, TlsOptions { ca_file: Some("general.pem".into()), insecure_skip_verify: false });
        assert_eq!(logs, TlsOptions { ca_file: Some("logs.pem".into()), insecure_skip_verify: true });

        let flags = TargetConfig { insecure: true, ..TargetConfig::default() };
        for tls in resolved_with_ca(&flags, Path::new("flag.pem"), &pairs).map(|config| config.tls) {
            assert_eq!(tls, TlsOptions { ca_file: Some("flag.pem".into()), insecure_skip_verify: true });
        }
    }

    #[test]
    fn a_missing_ca_file_is_named_when_an_https_target_needs_it() {
        let directory = tempfile::tempdir().unwrap();
        let missing = directory.path().join("missing.pem");
        let missing = missing.to_str().unwrap();
        let https = (env::OTEL_EXPORTER_OTLP_ENDPOINT, "https://collector:4318");
        let message = error(&no_flags(), &[https, (env::OTEL_EXPORTER_OTLP_CERTIFICATE, missing)]);
        assert!(message.starts_with(&format!("invalid OTEL_EXPORTER_OTLP_CERTIFICATE {missing:?}: ")), "{message}");
        assert!(message.contains("expected a PEM file"), "{message}");
        let message = resolve(&no_flags(), Some(directory.path()), env_of(&[https])).unwrap_err().to_string();
        assert!(message.starts_with("invalid --ca-file "), "{message}");
        assert!(message.contains("not a file"), "{message}");
        // Unread, so unchecked: over http://, or when any certificate goes.
        resolved(&no_flags(), &[(env::OTEL_EXPORTER_OTLP_CERTIFICATE, missing)]);
        resolved(
            &TargetConfig { insecure: true, ..TargetConfig::default() },
            &[https, (env::OTEL_EXPORTER_OTLP_CERTIFICATE, missing)],
        );
        let present = directory.path().join("ca.pem");
        std::fs::write(&present, "not checked here").unwrap();
        resolved(&no_flags(), &[https, (env::OTEL_EXPORTER_OTLP_CERTIFICATE, present.to_str().unwrap())]);
    }

    #[test]
    fn bad_variables_are_named_with_their_value_and_what_is_expected() {
        let cases = [
            (env::OTEL_EXPORTER_OTLP_PROTOCOL, "http", "expected grpc, http/protobuf or http/json"),
            (env::OTEL_EXPORTER_OTLP_LOGS_PROTOCOL, "thrift", "expected grpc, http/protobuf or http/json"),
            (env::OTEL_EXPORTER_OTLP_COMPRESSION, "zstd", "expected gzip or none"),
            (env::OTEL_EXPORTER_OTLP_METRICS_COMPRESSION, "deflate", "expected gzip or none"),
            (env::OTEL_EXPORTER_OTLP_TIMEOUT, "10s", "expected whole milliseconds above zero, such as 10000"),
            (env::OTEL_EXPORTER_OTLP_TRACES_TIMEOUT, "0", "expected whole milliseconds above zero"),
            (env::OTEL_EXPORTER_OTLP_TIMEOUT, "-5", "expected whole milliseconds"),
            (env::OTEL_EXPORTER_OTLP_INSECURE, "yes", "expected true or false"),
            (env::OTEL_EXPORTER_OTLP_LOGS_INSECURE, "1", "expected true or false"),
            (env::OTEL_EXPORTER_OTLP_ENDPOINT, "localhost:4318", "expected a URL such as"),
            (env::REPLAY_DEFAULT_ENDPOINT, "ftp://collector", "use http or https"),
            (env::OTEL_EXPORTER_OTLP_METRICS_ENDPOINT, "http://", "expected a URL such as"),
        ];
        for (name, value, expected) in cases {
            let message = error(&no_flags(), &[(name, value)]);
            assert!(message.starts_with(&format!("invalid {name} {value:?}: ")), "{name}: {message}");
            assert!(message.contains(expected), "{name}: {message}");
        }
    }

    #[test]
    fn bad_headers_are_named_by_variable_without_their_values() {
        let cases = [
            (env::OTEL_EXPORTER_OTLP_HEADERS, "x-tenant=blue,s3cr3t", "entry 2 has no '='"),
            (env::OTEL_EXPORTER_OTLP_TRACES_HEADERS, "=s3cr3t", "entry 1 has no key"),
            (env::OTEL_EXPORTER_OTLP_HEADERS, "token=s3cr3t%2", "\"token\" has a '%' not followed by two hexadecimal"),
            (env::OTEL_EXPORTER_OTLP_HEADERS, "token=s3cr3t%zz", "has a '%' not followed"),
            (env::OTEL_EXPORTER_OTLP_LOGS_HEADERS, "token=s3cr3t%FF", "\"token\" is not UTF-8"),
            (env::OTEL_EXPORTER_OTLP_HEADERS, "bad key=s3cr3t", "header \"bad key\": not a valid HTTP header name"),
        ];
        for (name, value, expected) in cases {
            let message = error(&no_flags(), &[(name, value)]);
            assert!(message.starts_with(&format!("invalid {name}: ")), "{name}: {message}");
            assert!(message.contains(expected), "{name}: {message}");
            assert!(!message.contains("s3cr3t"), "{name}: {message}");
        }
        let message = error(&no_flags(), &[(env::OTEL_EXPORTER_OTLP_HEADERS, "token=s3cr3t%2")]);
        assert!(message.contains("expected key1=value1,key2=value2 with percent-encoded values"), "{message}");
        // gRPC metadata is stricter than HTTP headers.
        let pairs = [(env::OTEL_EXPORTER_OTLP_PROTOCOL, "grpc"), (env::OTEL_EXPORTER_OTLP_HEADERS, "key-bin=x")];
        assert!(error(&no_flags(), &pairs).starts_with("invalid OTEL_EXPORTER_OTLP_HEADERS: header \"key-bin\": "));
    }

    #[test]
    fn bad_flag_values_are_named_by_their_flag() {
        let flags = TargetConfig { endpoint: Some("collector:4318".to_owned()), ..TargetConfig::default() };
        let message = error(&flags, &[]);
        assert!(message.starts_with("invalid --endpoint \"collector:4318\": "), "{message}");
        let flags = TargetConfig { headers: vec![("bad key".to_owned(), "x".to_owned())], ..TargetConfig::default() };
        assert!(error(&flags, &[]).starts_with("invalid --header: header \"bad key\": "));
    }

    #[test]
    fn values_parse_with_the_flags_words() {
        for (parsed, expected) in [
            (parse_protocol("http").unwrap_err(), "expected grpc, http/protobuf or http/json"),
            (parse_compression("zstd").unwrap_err(), "expected gzip or none"),
            (parse_timeout("0").unwrap_err(), "expected a timeout above zero"),
            (parse_timeout("soon").unwrap_err(), "like 250ms, 10s or 1m30s"),
            (parse_header("novalue").unwrap_err(), "expected KEY=VALUE"),
            (parse_header("=value").unwrap_err(), "expected KEY=VALUE"),
        ] {
            assert!(parsed.contains(expected), "{parsed}");
        }
        assert_eq!(parse_timeout("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_timeout(" 1.5 ").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_timeout("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(
            parse_header("authorization = Bearer a=b").unwrap(),
            ("authorization".to_owned(), "Bearer a=b".to_owned())
        );
    }

    #[test]
    fn the_json_form_takes_the_flags_values() {
        let config: TargetConfig = serde_json::from_str(
            r#"{"endpoint": "https://collector:4318", "protocol": "http/json", "header": ["x-tenant=blue", "a=1,2"],
                "compression": "none", "timeout": "500ms", "insecure": true}"#,
        )
        .unwrap();
        assert_eq!(config.endpoint.as_deref(), Some("https://collector:4318"));
        assert_eq!(config.protocol, Some(Protocol::HttpJson));
        assert_eq!(config.headers, [("x-tenant".to_owned(), "blue".to_owned()), ("a".to_owned(), "1,2".to_owned())]);
        assert_eq!(config.compression, Some(Compression::None));
        assert_eq!(config.timeout, Some(Duration::from_millis(500)));
        assert!(config.insecure);
        assert_eq!(serde_json::from_str::<TargetConfig>("{}").unwrap(), TargetConfig::default());
        let error = serde_json::from_str::<TargetConfig>(r#"{"protocol": "http"}"#).unwrap_err().to_string();
        assert!(error.contains("expected grpc, http/protobuf or http/json"), "{error}");
        let error = serde_json::from_str::<TargetConfig>(r#"{"caFile": "ca.pem"}"#).unwrap_err().to_string();
        assert!(error.contains("unknown field `caFile`"), "{error}");
    }
}
