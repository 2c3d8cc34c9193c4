//! The OTLP target flags of `replay` and `seed --live`; `tape_replay`
//! resolves them against the OTLP exporter variables (see
//! [`tape_replay::resolve_targets`]).

use std::path::PathBuf;

use tape_replay::{TargetConfig, Targets};

/// Where and how to send OTLP: the flags `replay` and `seed --live`
/// flatten, [`TargetConfig`]'s (every one optional, so that the
/// environment can fill it; see [`tape_replay::resolve`]) and `--ca-file`.
#[derive(Debug, Clone, Default)]
pub struct TargetArgs {
    /// The target options, as the control API takes them too.
    pub config: TargetConfig,
    /// The CA file, an argument of [`tape_replay::resolve_targets`].
    pub ca_file: Option<PathBuf>,
}

/// `--ca-file`, the target flag that names a file on this host.
#[derive(clap::Args)]
struct CaFile {
    /// PEM file of the certificate authorities an https:// target is checked against, instead of the
    /// system's roots. [env: OTEL_EXPORTER_OTLP_CERTIFICATE, OTEL_EXPORTER_OTLP_<SIGNAL>_CERTIFICATE]
    #[arg(long, value_name = "PATH")]
    ca_file: Option<PathBuf>,
}

impl clap::FromArgMatches for TargetArgs {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let ca_file = CaFile::from_arg_matches(matches)?.ca_file;
        Ok(TargetArgs { config: TargetConfig::from_arg_matches(matches)?, ca_file })
    }

    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        self.config.update_from_arg_matches(matches)?;
        let mut ca_file = CaFile { ca_file: self.ca_file.take() };
        ca_file.update_from_arg_matches(matches)?;
        self.ca_file = ca_file.ca_file;
        Ok(())
    }
}

impl clap::Args for TargetArgs {
    fn augment_args(command: clap::Command) -> clap::Command {
        ca_file_before_insecure(CaFile::augment_args(TargetConfig::augment_args(command)))
    }

    fn augment_args_for_update(command: clap::Command) -> clap::Command {
        ca_file_before_insecure(CaFile::augment_args_for_update(TargetConfig::augment_args_for_update(command)))
    }
}

/// The help lists `--ca-file` between `--timeout` and `--insecure`, as
/// it always has: it takes `--insecure`'s place in the order, and
/// `--insecure` the next.
fn ca_file_before_insecure(command: clap::Command) -> clap::Command {
    let place = command.get_arguments().find(|arg| arg.get_id() == "insecure").map_or(0, clap::Arg::get_display_order);
    command.mut_arg("ca_file", |arg| arg.display_order(place)).mut_arg("insecure", |arg| arg.display_order(place + 1))
}

/// The targets of `args` and the process environment.
pub fn targets(args: &TargetArgs) -> anyhow::Result<Targets> {
    Ok(tape_replay::resolve_targets(&args.config, args.ca_file.as_deref(), |name| std::env::var(name).ok())?)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use clap::Parser;
    use tape_replay::{Compression, Protocol, env, parse_timeout};

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
        assert_eq!(target.config.endpoint.as_deref(), Some("https://collector:4318"));
        assert_eq!(target.config.protocol, Some(Protocol::HttpJson));
        assert_eq!(
            target.config.headers,
            [("x-tenant".to_owned(), "blue".to_owned()), ("authorization".to_owned(), "Bearer a=b".to_owned())]
        );
        assert_eq!(target.config.compression, Some(Compression::None));
        assert_eq!(target.config.timeout, Some(Duration::from_millis(500)));
        assert_eq!(target.ca_file, Some(PathBuf::from("ca.pem")));
        assert!(target.config.insecure);

        let target = Command::try_parse_from(["test"]).unwrap().target;
        assert!(target.config.endpoint.is_none() && target.config.headers.is_empty() && !target.config.insecure);
        assert_eq!(parse_timeout("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_timeout(" 1.5 ").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_timeout("1m30s").unwrap(), Duration::from_secs(90));
    }
}
