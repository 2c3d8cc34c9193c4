//! The OTLP target flags of `replay` and `seed --live`; `tape_replay`
//! resolves them against the OTLP exporter variables (see
//! [`tape_replay::resolve_targets`]).

use std::path::PathBuf;
use std::time::Duration;

use tape_replay::{Compression, Protocol, TargetConfig, Targets};

/// Where and how to send OTLP: the flags `replay` and `seed --live`
/// flatten. Every flag is optional, so that the environment can fill it;
/// see [`tape_replay::resolve`].
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

impl TargetArgs {
    /// The target options, without the CA file (a separate argument of
    /// [`tape_replay::resolve_targets`]).
    pub fn config(&self) -> TargetConfig {
        TargetConfig {
            endpoint: self.endpoint.clone(),
            protocol: self.protocol,
            headers: self.headers.clone(),
            compression: self.compression,
            timeout: self.timeout,
            insecure: self.insecure,
        }
    }
}

/// The targets of `args` and the process environment.
pub fn targets(args: &TargetArgs) -> anyhow::Result<Targets> {
    Ok(tape_replay::resolve_targets(&args.config(), args.ca_file.as_deref(), |name| std::env::var(name).ok())?)
}

fn parse_protocol(text: &str) -> Result<Protocol, String> {
    tape_replay::parse_protocol(text)
}

fn parse_compression(text: &str) -> Result<Compression, String> {
    tape_replay::parse_compression(text)
}

fn parse_timeout(text: &str) -> Result<Duration, String> {
    tape_replay::parse_timeout(text)
}

fn parse_header(text: &str) -> Result<(String, String), String> {
    tape_replay::parse_header(text)
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use tape_replay::env;

    use super::*;

    /// The parent command's own about.
    #[derive(Debug, Parser)]
    struct Command {
        #[command(flatten)]
        target: TargetArgs,
    }

    #[test]
    fn bad_flag_values_are_named_by_their_flag() {
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
