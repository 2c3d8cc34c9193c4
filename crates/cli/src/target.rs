//! The OTLP target of `replay` and `seed --live`: the flags, then the OTLP
//! exporter variables of the OpenTelemetry specification, then the earlier
//! system's variable, then defaults, resolved per signal.
//!
//! Per signal and per setting the first of these that is set wins: the
//! flag, `OTEL_EXPORTER_OTLP_<SIGNAL>_<SETTING>`,
//! `OTEL_EXPORTER_OTLP_<SETTING>`, `REPLAY_DEFAULT_ENDPOINT` (the endpoint
//! only), the default. An empty variable counts as unset. As the
//! specification says, `--endpoint` and `OTEL_EXPORTER_OTLP_ENDPOINT` are
//! base URLs to which OTLP/HTTP appends `/v1/<signal>`, while
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` and its siblings are used as they
//! are.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use tape_otlp::Signal;
use tape_replay::{Compression, ConfigError, ExporterConfig, Protocol, Targets, TlsOptions};

use crate::env;

/// The endpoint when nothing names one, for OTLP/HTTP.
pub const DEFAULT_HTTP_ENDPOINT: &str = "http://localhost:4318";
/// The endpoint when nothing names one, for OTLP/gRPC.
pub const DEFAULT_GRPC_ENDPOINT: &str = "http://localhost:4317";

/// Where and how to send OTLP: the flags `replay` and `seed --live`
/// flatten. Every flag is optional, so that the environment can fill it;
/// see [`resolve`].
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TargetArgs {
    /// Base URL of the OTLP target; OTLP/HTTP appends /v1/traces, /v1/metrics or /v1/logs to its path.
    /// [env: OTEL_EXPORTER_OTLP_ENDPOINT, REPLAY_DEFAULT_ENDPOINT; OTEL_EXPORTER_OTLP_<SIGNAL>_ENDPOINT is an
    /// exact URL] [default: http://localhost:4318, or http://localhost:4317 for grpc]
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,

    /// OTLP protocol: grpc, http/protobuf or http/json.
    /// [env: OTEL_EXPORTER_OTLP_PROTOCOL, OTEL_EXPORTER_OTLP_<SIGNAL>_PROTOCOL] [default: http/protobuf]
    #[arg(long, value_name = "PROTOCOL", value_parser = parse_protocol)]
    pub protocol: Option<Protocol>,

    /// A header (gRPC metadata) of every request, as KEY=VALUE; repeat for more. Replaces the variables'
    /// headers. [env: OTEL_EXPORTER_OTLP_HEADERS, OTEL_EXPORTER_OTLP_<SIGNAL>_HEADERS, as
    /// key1=value1,key2=value2 with percent-encoded values] [default: none]
    #[arg(long = "header", value_name = "KEY=VALUE", value_parser = parse_header)]
    pub headers: Vec<(String, String)>,

    /// Compression of request bodies: gzip or none.
    /// [env: OTEL_EXPORTER_OTLP_COMPRESSION, OTEL_EXPORTER_OTLP_<SIGNAL>_COMPRESSION] [default: gzip]
    #[arg(long, value_name = "gzip|none", value_parser = parse_compression)]
    pub compression: Option<Compression>,

    /// The longest one export may take, such as 10s or 500ms; a bare number is seconds.
    /// [env: OTEL_EXPORTER_OTLP_TIMEOUT, OTEL_EXPORTER_OTLP_<SIGNAL>_TIMEOUT, in milliseconds] [default: 10s]
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout)]
    pub timeout: Option<Duration>,

    /// PEM file of the certificate authorities an https:// target is checked against, instead of the
    /// system's roots. [env: OTEL_EXPORTER_OTLP_CERTIFICATE, OTEL_EXPORTER_OTLP_<SIGNAL>_CERTIFICATE]
    #[arg(long, value_name = "PATH")]
    pub ca_file: Option<PathBuf>,

    /// Accept any certificate from an https:// target, for tests against self-signed targets only.
    /// [env: OTEL_EXPORTER_OTLP_INSECURE, OTEL_EXPORTER_OTLP_<SIGNAL>_INSECURE, true or false] [default: false]
    #[arg(long)]
    pub insecure: bool,
}

/// The exporter configurations of traces, metrics and logs, in that order,
/// from `args` and the environment read through `env` (which returns a
/// variable's value, or `None` when it is unset). An invalid value is an
/// error that names its flag or variable and says what would be valid.
pub fn resolve(args: &TargetArgs, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<[ExporterConfig; 3]> {
    let [traces, metrics, logs] = Signal::ALL.map(|signal| resolve_signal(args, &env, signal));
    Ok([traces?, metrics?, logs?])
}

/// The targets of `args` and the process environment.
pub fn targets(args: &TargetArgs) -> anyhow::Result<Targets> {
    let [traces, metrics, logs] = resolve(args, |name| std::env::var(name).ok())?;
    Targets::new(traces, metrics, logs).context("invalid OTLP target")
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
) -> anyhow::Result<Option<T>> {
    let Some(variable) = first_set(env, names) else { return Ok(None) };
    parse(&variable.value)
        .map(Some)
        .map_err(|expected| anyhow!("invalid {} {:?}: {expected}", variable.name, variable.value))
}

fn resolve_signal(
    args: &TargetArgs,
    env: &impl Fn(&str) -> Option<String>,
    signal: Signal,
) -> anyhow::Result<ExporterConfig> {
    let own = signal_variables(signal);

    let protocol = match args.protocol {
        Some(protocol) => protocol,
        None => parse_first(env, &[own.protocol, GENERAL.protocol], parse_protocol)?.unwrap_or(Protocol::HttpProtobuf),
    };

    // The endpoint, whether it is an exact URL, and where it came from.
    let (endpoint, exact, endpoint_source) = if let Some(endpoint) = &args.endpoint {
        (endpoint.trim().to_owned(), false, "--endpoint")
    } else if let Some(variable) = first_set(env, &[own.endpoint]) {
        (variable.value, true, variable.name)
    } else if let Some(variable) = first_set(env, &[GENERAL.endpoint, env::REPLAY_DEFAULT_ENDPOINT]) {
        (variable.value, false, variable.name)
    } else {
        let default = if protocol == Protocol::Grpc { DEFAULT_GRPC_ENDPOINT } else { DEFAULT_HTTP_ENDPOINT };
        (default.to_owned(), false, "the default endpoint")
    };

    let (headers, headers_source) = if args.headers.is_empty() {
        match first_set(env, &[own.headers, GENERAL.headers]) {
            Some(variable) => (parse_headers(variable.name, &variable.value)?, variable.name),
            None => (Vec::new(), "the headers"),
        }
    } else {
        (args.headers.clone(), "--header")
    };

    let compression = match args.compression {
        Some(compression) => compression,
        None => {
            parse_first(env, &[own.compression, GENERAL.compression], parse_compression)?.unwrap_or(Compression::Gzip)
        }
    };

    let timeout = match args.timeout {
        Some(timeout) => timeout,
        None => parse_first(env, &[own.timeout, GENERAL.timeout], parse_milliseconds)?
            .unwrap_or(ExporterConfig::DEFAULT_TIMEOUT),
    };

    let insecure_skip_verify =
        args.insecure || parse_first(env, &[own.insecure, GENERAL.insecure], parse_bool)?.unwrap_or(false);

    let ca_file = match &args.ca_file {
        Some(path) => Some((path.clone(), "--ca-file")),
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

    let config = ExporterConfig {
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
    config.validate().map_err(|error| match error {
        ConfigError::Endpoint { endpoint, reason } => anyhow!("invalid {endpoint_source} {endpoint:?}: {reason}"),
        ConfigError::Header { name, reason } => anyhow!("invalid {headers_source}: header {name:?}: {reason}"),
        error => anyhow::Error::new(error),
    })?;
    Ok(config)
}

fn check_ca_file(source: &str, path: &std::path::Path) -> anyhow::Result<()> {
    let expected = "expected a PEM file of certificate authorities";
    let shown = path.display();
    match std::fs::metadata(path) {
        Ok(metadata) if metadata.is_file() => Ok(()),
        Ok(_) => bail!("invalid {source} \"{shown}\": not a file; {expected}"),
        Err(error) => bail!("invalid {source} \"{shown}\": {error}; {expected}"),
    }
}

/// An OTLP protocol name, for `--protocol` and the variables.
fn parse_protocol(text: &str) -> Result<Protocol, String> {
    text.parse().map_err(|_| "expected grpc, http/protobuf or http/json".to_owned())
}

/// `gzip` or `none`, for `--compression` and the variables.
fn parse_compression(text: &str) -> Result<Compression, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "gzip" => Ok(Compression::Gzip),
        "none" => Ok(Compression::None),
        _ => Err("expected gzip or none".to_owned()),
    }
}

/// `--timeout`: a duration such as `10s` or `500ms`; a bare number is
/// seconds. Zero is refused: every export would time out.
fn parse_timeout(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let nanos = if !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit() || byte == b'.') {
        tape_seed_generator::parse_duration(&format!("{text}s"))?
    } else {
        tape_seed_generator::parse_duration(text)?
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

/// `--header KEY=VALUE`, taken literally (no percent-decoding).
fn parse_header(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => Ok((key.trim().to_owned(), value.trim().to_owned())),
        _ => Err("expected KEY=VALUE, such as x-tenant=blue".to_owned()),
    }
}

/// The headers of the variable `name`: `key1=value1,key2=value2`, the
/// specification's W3C-baggage-like format, with percent-encoded values.
/// Blank entries are skipped. Messages name the variable and the entry's
/// key or position, not its value, which may be a credential.
fn parse_headers(name: &str, text: &str) -> anyhow::Result<Vec<(String, String)>> {
    let expected = "expected key1=value1,key2=value2 with percent-encoded values";
    let mut headers = Vec::new();
    for (position, entry) in text.split(',').enumerate() {
        let entry = entry.trim();
        if entry.is_empty() {
            continue;
        }
        let Some((key, value)) = entry.split_once('=') else {
            bail!("invalid {name}: entry {} has no '='; {expected}", position + 1);
        };
        let key = key.trim();
        if key.is_empty() {
            bail!("invalid {name}: entry {} has no key before '='; {expected}", position + 1);
        }
        let value = percent_decode(value.trim())
            .map_err(|reason| anyhow!("invalid {name}: the value of {key:?} {reason}; {expected}"))?;
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

    use clap::Parser;

    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> =
            pairs.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect();
        move |name| map.get(name).cloned()
    }

    fn resolved(args: &TargetArgs, pairs: &[(&str, &str)]) -> [ExporterConfig; 3] {
        resolve(args, env_of(pairs)).unwrap()
    }

    fn error(args: &TargetArgs, pairs: &[(&str, &str)]) -> String {
        format!("{:#}", resolve(args, env_of(pairs)).unwrap_err())
    }

    fn no_flags() -> TargetArgs {
        TargetArgs::default()
    }

    /// Each signal's `(endpoint, append_signal_path)`.
    fn endpoints(configs: &[ExporterConfig; 3]) -> [(&str, bool); 3] {
        [0, 1, 2].map(|index| (configs[index].endpoint.as_str(), configs[index].append_signal_path))
    }

    /// The parent command's own about.
    #[derive(Debug, Parser)]
    struct Command {
        #[command(flatten)]
        target: TargetArgs,
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
        let flags = TargetArgs { endpoint: Some("http://flag:4318".to_owned()), ..TargetArgs::default() };
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
        let grpc = TargetArgs { protocol: Some(Protocol::Grpc), ..TargetArgs::default() };
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
        let flags = TargetArgs { protocol: Some(Protocol::HttpProtobuf), ..TargetArgs::default() };
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
        let flags = TargetArgs { headers: owned(&[("a", "1"), ("b", "2")]), ..TargetArgs::default() };
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
        let flags = TargetArgs { compression: Some(Compression::None), ..TargetArgs::default() };
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
        let flags = TargetArgs { timeout: Some(Duration::from_secs(2)), ..TargetArgs::default() };
        assert_eq!(resolved(&flags, &pairs)[0].timeout, Duration::from_secs(2));
    }

    #[test]
    fn tls_precedence_is_flag_then_signal_then_general() {
        let tls = |args: &TargetArgs, pairs: &[(&str, &str)]| resolved(args, pairs).map(|config| config.tls);
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

        let flags = TargetArgs { ca_file: Some("flag.pem".into()), insecure: true, ..TargetArgs::default() };
        for tls in tls(&flags, &pairs) {
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
        let flags = TargetArgs { ca_file: Some(directory.path().to_owned()), ..TargetArgs::default() };
        let message = error(&flags, &[https]);
        assert!(message.starts_with("invalid --ca-file "), "{message}");
        assert!(message.contains("not a file"), "{message}");
        // Unread, so unchecked: over http://, or when any certificate goes.
        resolved(&no_flags(), &[(env::OTEL_EXPORTER_OTLP_CERTIFICATE, missing)]);
        resolved(
            &TargetArgs { insecure: true, ..TargetArgs::default() },
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
        let flags = TargetArgs { endpoint: Some("collector:4318".to_owned()), ..TargetArgs::default() };
        let message = error(&flags, &[]);
        assert!(message.starts_with("invalid --endpoint \"collector:4318\": "), "{message}");
        let flags = TargetArgs { headers: vec![("bad key".to_owned(), "x".to_owned())], ..TargetArgs::default() };
        assert!(error(&flags, &[]).starts_with("invalid --header: header \"bad key\": "));

        let cases = [
            (&["--protocol", "http"][..], "expected grpc, http/protobuf or http/json"),
            (&["--compression", "zstd"], "expected gzip or none"),
            (&["--timeout", "0"], "expected a timeout above zero"),
            (&["--timeout", "soon"], "like 250ms, 10s or 1m30s"),
            (&["--header", "novalue"], "expected KEY=VALUE"),
            (&["--header", "=value"], "expected KEY=VALUE"),
        ];
        for (arguments, expected) in cases {
            let error = Command::try_parse_from([&["test"][..], arguments].concat()).unwrap_err().to_string();
            assert!(error.contains(arguments[0]) && error.contains(arguments[1]), "{arguments:?}: {error}");
            assert!(error.contains(expected), "{arguments:?}: {error}");
        }
    }

    #[test]
    fn every_flag_names_its_variables_and_default() {
        let help = <Command as clap::CommandFactory>::command().term_width(100).render_help().to_string();
        assert!(help.starts_with("The parent command's own about"), "the flattened flags keep the command's about");
        for (flag, variable) in [
            ("--endpoint", env::OTEL_EXPORTER_OTLP_ENDPOINT),
            ("--protocol", env::OTEL_EXPORTER_OTLP_PROTOCOL),
            ("--header", env::OTEL_EXPORTER_OTLP_HEADERS),
            ("--compression", env::OTEL_EXPORTER_OTLP_COMPRESSION),
            ("--timeout", env::OTEL_EXPORTER_OTLP_TIMEOUT),
            ("--ca-file", env::OTEL_EXPORTER_OTLP_CERTIFICATE),
            ("--insecure", env::OTEL_EXPORTER_OTLP_INSECURE),
        ] {
            let start = help.find(&format!("{flag} ")).or_else(|| help.find(&format!("{flag}\n"))).unwrap();
            let entry = help[start..].split("\n      --").next().unwrap();
            assert!(entry.contains(variable), "{flag}: {entry}");
            assert!(entry.contains("[default:") || flag == "--ca-file", "{flag}: {entry}");
        }
        assert!(help.contains(env::REPLAY_DEFAULT_ENDPOINT));
    }

    #[test]
    fn flags_parse() {
        <Command as clap::CommandFactory>::command().debug_assert();
        let arguments = [
            "test",
            "--endpoint",
            "https://collector:4318",
            "--protocol",
            "http/json",
            "--header",
            "x-tenant=blue",
            "--header",
            "authorization = Bearer a=b",
            "--compression",
            "none",
            "--timeout",
            "500ms",
            "--ca-file",
            "ca.pem",
            "--insecure",
        ];
        let target = Command::try_parse_from(arguments).unwrap().target;
        assert_eq!(target.endpoint.as_deref(), Some("https://collector:4318"));
        assert_eq!(target.protocol, Some(Protocol::HttpJson));
        assert_eq!(
            target.headers,
            [("x-tenant".to_owned(), "blue".to_owned()), ("authorization".to_owned(), "Bearer a=b".to_owned())]
        );
        assert_eq!(target.compression, Some(Compression::None));
        assert_eq!(target.timeout, Some(Duration::from_millis(500)));
        assert_eq!(target.ca_file, Some(PathBuf::from("ca.pem")));
        assert!(target.insecure);

        let target = Command::try_parse_from(["test"]).unwrap().target;
        assert!(target.endpoint.is_none() && target.headers.is_empty() && !target.insecure);
        assert_eq!(parse_timeout("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_timeout(" 1.5 ").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_timeout("1m30s").unwrap(), Duration::from_secs(90));
    }
}
