//! The docker-compose stack: `docker-compose.yml`, the collector's
//! configuration under `config/` and the `Dockerfile` fit together. No Docker
//! engine runs in CI, so these tests read the files (and ask the real binary
//! about its flags) instead of starting the services.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_yaml::Value;

use crate::tape;

/// The image default config path of `otel/opentelemetry-collector-contrib`.
const COLLECTOR_CONFIG_IN_IMAGE: &str = "/etc/otelcol-contrib/config.yaml";
/// ClickHouse's HTTP interface, which otlp-tape talks to.
const CLICKHOUSE_HTTP_PORT: u16 = 8123;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(relative: &str) -> String {
    let path = repo().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()))
}

/// The names of the environment variables otlp-tape reads: the string
/// constants `pub const NAME: &str = "NAME";` in the sources of its crates.
pub(crate) fn variable_constants() -> std::collections::BTreeSet<String> {
    fn visit(dir: &Path, names: &mut std::collections::BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                visit(&path, names);
            } else if path.extension().is_some_and(|extension| extension == "rs") {
                for line in std::fs::read_to_string(&path).unwrap().lines() {
                    let Some(rest) = line.trim().strip_prefix("pub const ") else { continue };
                    let Some((name, value)) = rest.split_once(": &str = ") else { continue };
                    if value.trim_end_matches(';').trim_matches('"') == name {
                        names.insert(name.to_owned());
                    }
                }
            }
        }
    }
    let mut names = std::collections::BTreeSet::new();
    for krate in std::fs::read_dir(repo().join("crates")).unwrap() {
        let source = krate.unwrap().path().join("src");
        if source.is_dir() {
            visit(&source, &mut names);
        }
    }
    assert!(names.contains("OTLP_TAPE_STORE"), "no variable constants found: {names:?}");
    names
}

/// The parts of a compose file these tests look at.
#[derive(Debug, Deserialize)]
struct Compose {
    services: BTreeMap<String, Service>,
    #[serde(default)]
    volumes: BTreeMap<String, Option<Value>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Service {
    image: Option<String>,
    build: Option<Value>,
    command: Option<Value>,
    environment: BTreeMap<String, Value>,
    ports: Vec<String>,
    volumes: Vec<String>,
    profiles: Vec<String>,
    depends_on: Option<Value>,
    healthcheck: Option<Value>,
}

impl Service {
    fn env(&self, service: &str, name: &str) -> String {
        match self.environment.get(name) {
            Some(Value::String(value)) => value.clone(),
            Some(Value::Number(value)) => value.to_string(),
            other => panic!("service {service}: environment {name} should be a value, found {other:?}"),
        }
    }

    fn ports(&self, service: &str) -> Vec<Published> {
        self.ports.iter().map(|spec| Published::parse(service, spec)).collect()
    }

    /// The host port published for `container_port`, if any.
    fn host_port_of(&self, service: &str, container_port: u16) -> Option<u16> {
        self.ports(service).iter().find(|port| port.container_port == container_port).map(|port| port.host_port)
    }

    /// Bind mounts and named volumes as (source, target, read-only).
    fn mounts(&self) -> Vec<(&str, &str, bool)> {
        self.volumes
            .iter()
            .map(|spec| {
                let parts: Vec<&str> = spec.split(':').collect();
                match parts.as_slice() {
                    [source, target] => (*source, *target, false),
                    [source, target, mode] => (*source, *target, mode.split(',').any(|mode| mode == "ro")),
                    _ => panic!("volume {spec:?} is not SOURCE:TARGET[:MODE]"),
                }
            })
            .collect()
    }

    fn depends_on(&self) -> BTreeSet<String> {
        match &self.depends_on {
            None => BTreeSet::new(),
            Some(Value::Sequence(names)) => names.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
            Some(Value::Mapping(names)) => names.keys().filter_map(Value::as_str).map(str::to_owned).collect(),
            Some(other) => panic!("depends_on should be a list or a map, found {other:?}"),
        }
    }

    /// The command as a list of arguments (the compose file uses the list form, so that no argument is split
    /// by a shell).
    fn command_args(&self, service: &str) -> Vec<String> {
        let Some(Value::Sequence(args)) = &self.command else {
            panic!("service {service}: command should be a list of arguments, found {:?}", self.command);
        };
        args.iter()
            .map(|arg| arg.as_str().unwrap_or_else(|| panic!("service {service}: argument {arg:?} is not a string")))
            .map(str::to_owned)
            .collect()
    }
}

/// One entry of `ports:` in the short form HOST_IP:HOST_PORT:CONTAINER_PORT.
#[derive(Debug)]
struct Published {
    host_ip: String,
    host_port: u16,
    container_port: u16,
}

impl Published {
    fn parse(service: &str, spec: &str) -> Published {
        let spec_without_protocol = spec.strip_suffix("/tcp").unwrap_or(spec);
        let parts: Vec<&str> = spec_without_protocol.split(':').collect();
        let [host_ip, host_port, container_port] = parts.as_slice() else {
            panic!(
                "service {service}: port {spec:?} should be HOST_IP:HOST_PORT:CONTAINER_PORT; without a host address \
                 Docker publishes it on every interface"
            );
        };
        let port =
            |text: &str| text.parse::<u16>().unwrap_or_else(|_| panic!("service {service}: bad port in {spec:?}"));
        Published { host_ip: (*host_ip).to_owned(), host_port: port(host_port), container_port: port(container_port) }
    }
}

/// The parts of an OpenTelemetry Collector configuration these tests look at.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CollectorConfig {
    #[serde(default)]
    extensions: BTreeMap<String, Value>,
    receivers: BTreeMap<String, Value>,
    #[serde(default)]
    processors: BTreeMap<String, Value>,
    exporters: BTreeMap<String, Value>,
    #[serde(default)]
    connectors: BTreeMap<String, Value>,
    service: CollectorService,
}

#[derive(Debug, Deserialize)]
struct CollectorService {
    #[serde(default)]
    extensions: Vec<String>,
    pipelines: BTreeMap<String, Pipeline>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Pipeline {
    receivers: Vec<String>,
    #[serde(default)]
    processors: Vec<String>,
    exporters: Vec<String>,
}

impl CollectorConfig {
    /// Host and port of an `otlp` receiver protocol (`grpc` or `http`).
    fn otlp_endpoint(&self, protocol: &str) -> (String, u16) {
        let endpoint = self
            .receivers
            .get("otlp")
            .and_then(|otlp| otlp.get("protocols"))
            .and_then(|protocols| protocols.get(protocol))
            .and_then(|settings| settings.get("endpoint"))
            .and_then(Value::as_str)
            .unwrap_or_else(|| {
                panic!(
                    "the collector's otlp receiver names no {protocol} endpoint; the Collector's default is \
                     localhost, out of reach from outside its container"
                )
            });
        host_and_port(endpoint)
    }
}

/// Splits `HOST:PORT` (the host may be `[::]`).
fn host_and_port(address: &str) -> (String, u16) {
    let (host, port) = address.rsplit_once(':').unwrap_or_else(|| panic!("{address:?} is not HOST:PORT"));
    (host.to_owned(), port.parse().unwrap_or_else(|_| panic!("{address:?} has a bad port")))
}

/// Scheme, host and port of an `http://host:port[/path]` URL.
fn url_parts(url: &str) -> (String, String, u16) {
    let (scheme, rest) = url.split_once("://").unwrap_or_else(|| panic!("{url:?} has no scheme"));
    let authority = rest.split('/').next().unwrap_or_default();
    let (host, port) = host_and_port(authority);
    (scheme.to_owned(), host, port)
}

fn listens_on_every_interface(host: &str) -> bool {
    matches!(host, "0.0.0.0" | "[::]" | "::")
}

fn compose() -> Compose {
    serde_yaml::from_str(&read("docker-compose.yml")).unwrap_or_else(|error| panic!("docker-compose.yml: {error}"))
}

/// The one service whose image starts with `image_prefix`.
fn service_by_image<'a>(compose: &'a Compose, image_prefix: &str) -> (&'a str, &'a Service) {
    let found: Vec<(&str, &Service)> = compose
        .services
        .iter()
        .filter(|(_, service)| service.image.as_deref().is_some_and(|image| image.starts_with(image_prefix)))
        .map(|(name, service)| (name.as_str(), service))
        .collect();
    let [one] = found.as_slice() else { panic!("expected one service with an image {image_prefix}*, found {found:?}") };
    *one
}

fn collector_service(compose: &Compose) -> (&str, &Service) {
    service_by_image(compose, "otel/opentelemetry-collector-contrib:")
}

fn clickhouse_service(compose: &Compose) -> (&str, &Service) {
    service_by_image(compose, "clickhouse/clickhouse-server:")
}

fn capture_service(compose: &Compose) -> &Service {
    compose.services.get("otlp-tape").expect("docker-compose.yml has an otlp-tape service")
}

/// The collector configuration the compose file mounts, parsed.
fn collector_config(compose: &Compose) -> CollectorConfig {
    let (name, collector) = collector_service(compose);
    let (source, _, _) = collector
        .mounts()
        .into_iter()
        .find(|(_, target, _)| *target == COLLECTOR_CONFIG_IN_IMAGE)
        .unwrap_or_else(|| panic!("service {name} mounts nothing at {COLLECTOR_CONFIG_IN_IMAGE}"));
    assert_eq!(
        source, "./config/otel-collector/config.yaml",
        "service {name} should mount the collector configuration that config/README.md describes"
    );
    let text = read(source);
    serde_yaml::from_str(&text).unwrap_or_else(|error| panic!("{source}: {error}"))
}

/// The value of `--flag VALUE` or `--flag=VALUE` in `args`.
pub(crate) fn option<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    args.iter().enumerate().find_map(|(index, arg)| {
        if arg == flag {
            Some(args.get(index + 1).unwrap_or_else(|| panic!("{flag} has no value")).as_str())
        } else {
            arg.strip_prefix(flag).and_then(|rest| rest.strip_prefix('='))
        }
    })
}

/// Whether `help` mentions `flag` as a whole flag (`--forward` is not found in `--forward-protocol`).
pub(crate) fn help_mentions(help: &str, flag: &str) -> bool {
    help.match_indices(flag).any(|(at, _)| {
        let before = help[..at].chars().next_back();
        let after = help[at + flag.len()..].chars().next();
        let boundary = |c: Option<char>| c.is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '-'));
        boundary(before) && boundary(after)
    })
}

#[test]
fn every_port_is_published_on_loopback_once_and_every_mount_has_a_source() {
    let compose = compose();
    let mut host_ports = BTreeMap::new();
    for (name, service) in &compose.services {
        for port in service.ports(name) {
            assert_eq!(port.host_ip, "127.0.0.1", "service {name}: {port:?} should be published on 127.0.0.1 only");
            if let Some(other) = host_ports.insert(port.host_port, name.clone()) {
                panic!("host port {} is published by both {other} and {name}", port.host_port);
            }
        }
        for (source, target, read_only) in service.mounts() {
            assert!(target.starts_with('/'), "service {name}: mount target {target:?} is not absolute");
            if source.starts_with("./") || source.starts_with('/') {
                // Read-only bind mounts are configuration from this repository; writable ones (./sessions) are
                // data directories that may not exist yet.
                if read_only {
                    assert!(repo().join(source).exists(), "service {name} mounts {source}, which does not exist");
                }
            } else {
                assert!(compose.volumes.contains_key(source), "service {name} uses volume {source}, not declared");
            }
        }
    }
    let (_, clickhouse) = clickhouse_service(&compose);
    assert!(
        clickhouse.mounts().iter().any(|(_, target, _)| *target == "/var/lib/clickhouse"),
        "ClickHouse should keep its data in a volume"
    );
}

#[test]
fn collector_pipelines_use_defined_components_and_print_everything() {
    let config = collector_config(&compose());
    let defined = |kind: &BTreeMap<String, Value>, name: &str| kind.contains_key(name);
    let mut signals = BTreeSet::new();
    for (pipeline_name, pipeline) in &config.service.pipelines {
        let signal = pipeline_name.split('/').next().unwrap_or_default();
        assert!(["traces", "metrics", "logs"].contains(&signal), "pipeline {pipeline_name}: unknown signal");
        signals.insert(signal.to_owned());
        assert!(!pipeline.receivers.is_empty(), "pipeline {pipeline_name} has no receiver");
        for receiver in &pipeline.receivers {
            assert!(
                defined(&config.receivers, receiver) || defined(&config.connectors, receiver),
                "pipeline {pipeline_name}: receiver {receiver} is not defined"
            );
        }
        for processor in &pipeline.processors {
            assert!(
                defined(&config.processors, processor),
                "pipeline {pipeline_name}: processor {processor} is not defined"
            );
        }
        for exporter in &pipeline.exporters {
            assert!(
                defined(&config.exporters, exporter) || defined(&config.connectors, exporter),
                "pipeline {pipeline_name}: exporter {exporter} is not defined"
            );
        }
        assert!(pipeline.receivers.iter().any(|r| r == "otlp"), "pipeline {pipeline_name} does not receive OTLP");
        assert!(pipeline.processors.iter().any(|p| p == "batch"), "pipeline {pipeline_name} does not batch");
        assert!(pipeline.exporters.iter().any(|e| e == "debug"), "pipeline {pipeline_name} does not print (debug)");
    }
    // capture forwards all three signals.
    assert_eq!(signals, BTreeSet::from(["logs".to_owned(), "metrics".to_owned(), "traces".to_owned()]));
    let verbosity = config.exporters.get("debug").and_then(|debug| debug.get("verbosity")).and_then(Value::as_str);
    assert_eq!(verbosity, Some("detailed"), "the debug exporter should print every item");
    for extension in &config.service.extensions {
        assert!(config.extensions.contains_key(extension), "extension {extension} is enabled but not defined");
    }
    assert!(config.service.extensions.iter().any(|e| e == "health_check"), "health_check is not enabled");
}

#[test]
fn collector_host_ports_reach_its_otlp_receiver() {
    let compose = compose();
    let (name, collector) = collector_service(&compose);
    let config = collector_config(&compose);
    for (protocol, host_port) in [("grpc", 14317), ("http", 14318)] {
        let (host, port) = config.otlp_endpoint(protocol);
        assert!(
            listens_on_every_interface(&host),
            "the otlp receiver's {protocol} endpoint listens on {host}, out of reach of published ports"
        );
        assert_eq!(
            collector.host_port_of(name, port),
            Some(host_port),
            "host port {host_port} should reach the collector's {protocol} receiver on {port}"
        );
    }
    let health = config.extensions.get("health_check").and_then(|h| h.get("endpoint")).and_then(Value::as_str);
    let (host, port) = host_and_port(health.expect("health_check names its endpoint"));
    assert!(listens_on_every_interface(&host), "health_check listens on {host}, out of reach of published ports");
    assert!(collector.host_port_of(name, port).is_some(), "health_check's port {port} is not published");
}

#[test]
fn capture_service_forwards_to_the_collector_and_records_into_the_host_store() {
    let compose = compose();
    let capture = capture_service(&compose);
    assert_eq!(capture.profiles, ["capture"], "capture should start only with --profile capture");
    let args = capture.command_args("otlp-tape");
    assert!(args.iter().any(|arg| arg == "capture"), "otlp-tape's command is not a capture: {args:?}");

    // Forward URL: the collector service, on the receiver port of the forward protocol.
    let (collector_name, _) = collector_service(&compose);
    let config = collector_config(&compose);
    let forward = option(&args, "--forward").expect("capture forwards (--forward)");
    let protocol = option(&args, "--forward-protocol").unwrap_or("http/protobuf");
    let (scheme, host, port) = url_parts(forward);
    assert_eq!(scheme, "http", "--forward {forward}: the collector's receivers have no TLS");
    assert_eq!(host, collector_name, "--forward {forward} should name the collector service");
    let receiver = if protocol == "grpc" { "grpc" } else { "http" };
    assert_eq!(
        port,
        config.otlp_endpoint(receiver).1,
        "--forward {forward} with --forward-protocol {protocol} should use the collector's {receiver} port"
    );
    assert!(capture.depends_on().contains(collector_name), "otlp-tape should depend on {collector_name}");

    // Receivers: reachable through the published standard OTLP ports.
    for (flag, host_port) in [("--grpc", 4317), ("--http", 4318)] {
        let listen = option(&args, flag).unwrap_or_else(|| panic!("capture's {flag} is not set"));
        let (host, port) = host_and_port(listen);
        assert!(listens_on_every_interface(&host), "{flag} {listen} is out of reach of published ports");
        assert_eq!(capture.host_port_of("otlp-tape", port), Some(host_port), "{flag} {listen} is not on {host_port}");
    }

    // Sessions land in the host's ./sessions, the default store of otlp-tape run in the repository.
    let store = option(&args, "--store").expect("the capture names its --store");
    let sessions = format!("{}/sessions", store.trim_end_matches('/'));
    assert!(
        capture
            .mounts()
            .iter()
            .any(|(source, target, read_only)| *source == "./sessions" && *target == sessions && !read_only),
        "--store {store} keeps sessions in {sessions}; ./sessions should be mounted there, writable"
    );

    let build = capture.build.as_ref().expect("otlp-tape is built from the repository");
    assert_eq!(build.get("context").and_then(Value::as_str), Some("."));
    let dockerfile = build.get("dockerfile").and_then(Value::as_str).unwrap_or("Dockerfile");
    assert!(repo().join(dockerfile).is_file(), "{dockerfile} does not exist");
}

#[test]
fn capture_service_clickhouse_settings_match_the_clickhouse_service() {
    let compose = compose();
    let (clickhouse_name, clickhouse) = clickhouse_service(&compose);
    let capture = capture_service(&compose);
    for (ours, theirs) in [
        ("CLICKHOUSE_USER", "CLICKHOUSE_USER"),
        ("CLICKHOUSE_PASSWORD", "CLICKHOUSE_PASSWORD"),
        ("CLICKHOUSE_DATABASE", "CLICKHOUSE_DB"),
    ] {
        assert_eq!(
            capture.env("otlp-tape", ours),
            clickhouse.env(clickhouse_name, theirs),
            "otlp-tape's {ours} should be {clickhouse_name}'s {theirs}"
        );
    }
    // Every variable the service sets is one otlp-tape reads (each is a
    // constant `NAME: &str = "NAME"` of the crate that reads it).
    let read_by_otlp_tape = variable_constants();
    for name in capture.environment.keys() {
        assert!(read_by_otlp_tape.contains(name), "otlp-tape reads no variable {name}");
    }
    let url = capture.env("otlp-tape", "CLICKHOUSE_URL");
    let (scheme, host, port) = url_parts(&url);
    assert_eq!(
        (scheme.as_str(), host.as_str(), port),
        ("http", clickhouse_name, CLICKHOUSE_HTTP_PORT),
        "CLICKHOUSE_URL {url}"
    );
    assert!(capture.depends_on().contains(clickhouse_name), "otlp-tape should depend on {clickhouse_name}");

    // The host reaches the same HTTP interface on the same port (the README's CLICKHOUSE_URL).
    assert_eq!(clickhouse.host_port_of(clickhouse_name, CLICKHOUSE_HTTP_PORT), Some(CLICKHOUSE_HTTP_PORT));
    let healthcheck = serde_yaml::to_string(&clickhouse.healthcheck).unwrap();
    assert!(healthcheck.contains(&format!(":{CLICKHOUSE_HTTP_PORT}/ping")), "ClickHouse's healthcheck: {healthcheck}");

    // Pinned images: a compose file that works today keeps working.
    for (name, service) in [(clickhouse_name, clickhouse), collector_service(&compose)] {
        let image = service.image.as_deref().unwrap();
        let tag = image.rsplit_once(':').map(|(_, tag)| tag).unwrap_or_default();
        assert!(
            tag.starts_with(|c: char| c.is_ascii_digit()),
            "service {name}: image {image} is not pinned to a version"
        );
    }
}

#[test]
fn capture_service_command_uses_only_flags_capture_has() {
    let compose = compose();
    let args = capture_service(&compose).command_args("otlp-tape");
    let dir = tempfile::tempdir().unwrap();
    let output = tape(dir.path()).args(["capture", "--help"]).output().unwrap();
    assert!(output.status.success(), "otlp-tape capture --help failed");
    let help = String::from_utf8(output.stdout).unwrap();
    let flags: Vec<&str> =
        args.iter().filter(|arg| arg.starts_with('-')).map(|arg| arg.split('=').next().unwrap_or(arg)).collect();
    assert!(flags.len() >= 5, "too few flags in {args:?}");
    for flag in flags {
        assert!(help_mentions(&help, flag), "otlp-tape capture has no flag {flag}:\n{help}");
    }
    // The protocol must be one capture accepts.
    let protocol = option(&args, "--forward-protocol").unwrap();
    assert!(["grpc", "http/protobuf", "http/json"].contains(&protocol), "--forward-protocol {protocol}");
    assert!(help_mentions(&help, protocol), "capture --help does not list {protocol}");

    // The documented way to capture on the host forwards to the collector's published gRPC port.
    let (name, collector) = collector_service(&compose);
    let grpc = collector_config(&compose).otlp_endpoint("grpc").1;
    let host_port = collector.host_port_of(name, grpc).unwrap();
    let host_capture = format!("otlp-tape capture --forward http://localhost:{host_port} --forward-protocol grpc");
    for document in ["docker-compose.yml", "README.md"] {
        assert!(read(document).contains(&host_capture), "{document} should show `{host_capture}`");
    }
}

#[test]
fn dockerfile_builds_otlp_tape_with_a_rust_new_enough_for_the_workspace() {
    let dockerfile = read("Dockerfile");
    let from: Vec<&str> = dockerfile.lines().filter_map(|line| line.strip_prefix("FROM ")).collect();
    let [builder, runtime] = from.as_slice() else { panic!("expected two stages, found FROM {from:?}") };
    let builder_tag = builder
        .split_whitespace()
        .next()
        .and_then(|image| image.strip_prefix("rust:"))
        .unwrap_or_else(|| panic!("the builder stage should be a rust image: {builder}"));
    let (builder_rust, builder_variant) = builder_tag.split_once('-').unwrap_or((builder_tag, ""));

    let manifest = read("Cargo.toml");
    let workspace_rust = manifest
        .lines()
        .find_map(|line| line.strip_prefix("rust-version = "))
        .map(|value| value.trim_matches('"'))
        .expect("the workspace names its rust-version");
    let version = |text: &str| -> Vec<u32> {
        text.split('.').map(|part| part.parse().unwrap_or_else(|_| panic!("bad version {text:?}"))).collect()
    };
    assert!(
        version(builder_rust) >= version(workspace_rust),
        "the Dockerfile builds with Rust {builder_rust}, older than the workspace's rust-version {workspace_rust}"
    );

    // The binary links against the builder's glibc: the runtime must be the same Debian release.
    let release = builder_variant.rsplit('-').next().unwrap_or_default();
    assert!(!release.is_empty() && runtime.contains(release), "builder {builder} and runtime {runtime} differ");

    assert!(dockerfile.contains("cargo build --release --locked -p otlp-tape"), "the Dockerfile builds otlp-tape");
    assert!(dockerfile.contains("ENTRYPOINT [\"/usr/local/bin/otlp-tape\"]"));
    assert!(dockerfile.lines().any(|line| line.starts_with("USER ") && !line.contains("root")), "runs as root");
    let ignored = read(".dockerignore");
    for needed in ["crates", "patterns", "config", "Cargo.lock", "Cargo.toml"] {
        assert!(
            !ignored.lines().any(|line| line.trim_matches('/') == needed),
            ".dockerignore leaves out {needed}, which the build needs"
        );
    }
}
