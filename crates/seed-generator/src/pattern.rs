//! A checked pattern: services, call trees, phases and metrics, ready for
//! the generator. [`Pattern::parse`] reads a YAML file (see
//! `docs/PATTERNS.md`); every error names the file, line and column and the
//! field that is wrong.

use std::collections::BTreeSet;
use std::fmt;
use std::fmt::Write as _;

use sha2::{Digest, Sha256};
use tape_session::SessionType;

use crate::spec::{
    self, AttributeValue, EffectSpec, KindSpec, LatencySpec, LogOn, MessagingOperation, NodeSpec, PatternSpec,
    SessionTypeSpec, Step, locate,
};
use crate::{Latency, Phase, Timeline};

/// The most spans one trace may have, counting every `repeat`.
pub const MAX_SPANS_PER_TRACE: u64 = 10_000;
/// The deepest a call tree may nest.
pub const MAX_DEPTH: usize = 64;
/// The default interval between metric exports.
pub const DEFAULT_METRICS_INTERVAL_NANOS: u64 = 10_000_000_000;

/// A pattern file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}{}: {message}", location(*.line, *.column))]
pub struct PatternError {
    /// The file (or built-in pattern) the error is in.
    pub source_name: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// What is wrong, starting with the field's path.
    pub message: String,
}

fn location(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(line), Some(column)) => format!(":{line}:{column}"),
        (Some(line), None) => format!(":{line}"),
        _ => String::new(),
    }
}

impl PatternError {
    fn from_yaml(source_name: &str, error: &serde_yaml::Error) -> Self {
        let mut message = error.to_string();
        let (line, column) = match error.location() {
            Some(location) => {
                // The location goes in front; syntax errors also have it
                // in the middle of the message, before "while parsing ...".
                let repeated = format!(" at line {} column {}", location.line(), location.column());
                message = message.replacen(&repeated, "", 1);
                (Some(location.line()), Some(location.column()))
            }
            None => (None, None),
        };
        if message.contains("unknown field `<<`") {
            message.push_str("; YAML merge keys (<<) are not supported: repeat the fields, or reuse a whole value with an anchor (&name) and an alias (*name)");
        }
        PatternError { source_name: source_name.to_owned(), line, column, message }
    }
}

/// A span kind, as OTLP numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    /// Internal work.
    Internal = 1,
    /// Serving a request.
    Server = 2,
    /// Making a request.
    Client = 3,
    /// Sending a message.
    Producer = 4,
    /// Handling a message.
    Consumer = 5,
}

/// An attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A string.
    String(String),
    /// A boolean.
    Bool(bool),
    /// A 64-bit integer.
    Int(i64),
    /// A double.
    Double(f64),
}

impl From<AttributeValue> for Value {
    fn from(value: AttributeValue) -> Self {
        match value {
            AttributeValue::Bool(value) => Value::Bool(value),
            AttributeValue::Int(value) => Value::Int(value),
            AttributeValue::Double(value) => Value::Double(value),
            AttributeValue::String(value) => Value::String(value),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::String(value) => f.write_str(value),
            Value::Bool(value) => write!(f, "{value}"),
            Value::Int(value) => write!(f, "{value}"),
            Value::Double(value) => write!(f, "{value}"),
        }
    }
}

/// Key-value attributes, in the order they are written.
pub type Attributes = Vec<(String, Value)>;

/// A service: one resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    /// `service.name`.
    pub name: String,
    /// The resource attributes, `service.name` first.
    pub resource: Attributes,
}

/// The attribute that carries a span's response status, by protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusAttribute {
    /// None.
    None,
    /// `http.response.status_code`: 200 when the span succeeds.
    Http,
    /// `rpc.grpc.status_code`: 0 (OK) when the span succeeds.
    Grpc,
}

/// The protocol of a span, which decides its metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// No protocol block.
    None,
    /// `http`.
    Http,
    /// `rpc`.
    Rpc,
    /// `db`.
    Db,
    /// `messaging`.
    Messaging,
}

/// How a span fails.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorBehaviour {
    /// The probability of failing on its own; `None` means the session's
    /// error rate (`--error-rate`).
    pub probability: Option<f64>,
    /// The response status written when the span fails (HTTP status or gRPC
    /// code), if the span has a status attribute.
    pub status_code: i64,
    /// The span status message and the exception message.
    pub message: String,
    /// `exception.type` of the exception event, if one is recorded.
    pub exception: Option<String>,
    /// Whether the parent fails too.
    pub propagate: bool,
    /// Whether an ERROR log record is written for the failure.
    pub log: bool,
}

/// What a feature flag changes.
#[derive(Debug, Clone, PartialEq)]
pub struct Effect {
    /// The flag.
    pub flag: String,
    /// The error probability while the flag is set.
    pub error_probability: Option<f64>,
    /// A latency factor, ramping linearly from the first value at the
    /// phase's start to the second at its end.
    pub latency_factor: Option<(f64, f64)>,
}

/// A piece of a log body template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Text as written.
    Text(String),
    /// `{duration_ms}`: the span's duration in milliseconds.
    DurationMs,
    /// `{status_code}`: the span's response status.
    StatusCode,
    /// `{some.attribute}`: the value of one of the span's attributes.
    Attribute(usize),
}

/// A log record written for each span of a node.
#[derive(Debug, Clone, PartialEq)]
pub struct LogTemplate {
    /// When it is written.
    pub on: LogWhen,
    /// Severity number.
    pub severity_number: i32,
    /// Severity text.
    pub severity_text: &'static str,
    /// The body.
    pub body: Vec<Piece>,
    /// Attributes of the record.
    pub attributes: Attributes,
}

/// When a log record is written for a span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogWhen {
    /// At its start.
    Start,
    /// At its end.
    End,
    /// At its end, when it succeeded.
    Ok,
    /// At its end, when it failed.
    Error,
}

/// One span of a call tree.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Index into [`Pattern::services`].
    pub service: usize,
    /// The span name.
    pub name: String,
    /// The span kind.
    pub kind: SpanKind,
    /// The protocol block it was written with.
    pub protocol: Protocol,
    /// Its own time, outside its children.
    pub latency: Latency,
    /// Its attributes, protocol attributes first.
    pub attributes: Attributes,
    /// The attribute carrying its response status.
    pub status_attribute: StatusAttribute,
    /// How it fails, if it can fail on its own.
    pub error: Option<ErrorBehaviour>,
    /// What feature flags change.
    pub effects: Vec<Effect>,
    /// Log records that go with it.
    pub logs: Vec<LogTemplate>,
    /// How many copies of it its parent calls.
    pub repeat: u32,
    /// Whether its children run at the same time (else one after another).
    pub parallel: bool,
    /// For a span that starts a trace of its own, linked to its parent (a
    /// message consumer): the delay after the parent ends.
    pub async_delay: Option<Latency>,
    /// Indexes into [`Pattern::nodes`].
    pub children: Vec<usize>,
}

/// A kind of request with its weight among the others.
#[derive(Debug, Clone, PartialEq)]
pub struct Entrypoint {
    /// Its name.
    pub name: String,
    /// Its relative weight.
    pub weight: u32,
    /// Its root span, an index into [`Pattern::nodes`].
    pub root: usize,
}

/// A gauge exported with the metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct Gauge {
    /// Index into [`Pattern::services`].
    pub service: usize,
    /// Metric name.
    pub name: String,
    /// Unit.
    pub unit: String,
    /// Description.
    pub description: String,
    /// What it measures.
    pub value: GaugeKind,
}

/// What a gauge measures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum GaugeKind {
    /// `base` plus the share of the interval the service's server spans
    /// kept `capacity` workers busy, capped at 1.
    Utilization {
        /// Workers.
        capacity: f64,
        /// Idle utilization.
        base: f64,
    },
    /// The service's server spans in progress at the export time.
    InFlight,
}

/// The metrics of a pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct Metrics {
    /// Nanoseconds between exports.
    pub interval_nanos: u64,
    /// Whether server spans give request duration histograms and counts.
    pub requests: bool,
    /// Gauges.
    pub gauges: Vec<Gauge>,
}

/// A checked pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct Pattern {
    /// Its name.
    pub name: String,
    /// What it shows.
    pub description: String,
    /// The type of the sessions it makes.
    pub session_type: SessionType,
    /// Its default duration in nanoseconds: the sum of its phases unless
    /// `defaults.duration` says otherwise.
    pub default_duration_nanos: u64,
    /// Its default rate in traces per second, if it has one.
    pub default_rate: Option<f64>,
    /// Its default error rate, if it has one.
    pub default_error_rate: Option<f64>,
    /// Services.
    pub services: Vec<Service>,
    /// Phases at their nominal lengths.
    pub phases: Vec<Phase>,
    /// Entry points.
    pub entrypoints: Vec<Entrypoint>,
    /// Every span of every call tree; entry points and children index it.
    pub nodes: Vec<Node>,
    /// Metrics.
    pub metrics: Metrics,
    /// The YAML text it was read from.
    pub source: String,
}

impl Pattern {
    /// Reads and checks a pattern file. `source_name` names it in errors.
    /// The error is the first of [`parse_all`](Pattern::parse_all)'s.
    pub fn parse(source_name: &str, text: &str) -> Result<Self, PatternError> {
        Self::parse_all(source_name, text).map_err(|mut errors| errors.swap_remove(0))
    }

    /// Reads and checks a pattern file, and on failure returns every error
    /// the checks find (never none), in file order (by line and column;
    /// those without a place last). A YAML syntax or type error, or a value
    /// out of its range, ends the reading: it is returned alone.
    pub fn parse_all(source_name: &str, text: &str) -> Result<Self, Vec<PatternError>> {
        let spec: PatternSpec =
            serde_yaml::from_str(text).map_err(|error| vec![PatternError::from_yaml(source_name, &error)])?;
        let fail = |path: Vec<Step>, message: String| -> PatternError {
            let shown = render_path(&path);
            match locate(text, &path, &message) {
                Some(error) => {
                    let mut error = PatternError::from_yaml(source_name, &error);
                    if !error.message.starts_with(&shown) {
                        error.message = format!("{shown}: {message}");
                    }
                    error
                }
                None => PatternError {
                    source_name: source_name.to_owned(),
                    line: None,
                    column: None,
                    message: format!("{shown}: {message}"),
                },
            }
        };
        Compiler::default().compile(spec, text).map_err(|failures| {
            let mut errors: Vec<PatternError> =
                failures.into_iter().map(|(path, message)| fail(path, message)).collect();
            // Stable: errors at the same place keep the order they were found in.
            errors.sort_by_key(|error| (error.line.is_none(), error.line, error.column));
            errors
        })
    }

    /// The lowercase hex SHA-256 of the YAML text.
    pub fn source_sha256(&self) -> String {
        hex::encode(Sha256::digest(self.source.as_bytes()))
    }

    /// The phases laid out over a session of `total` nanoseconds.
    pub fn timeline(&self, total: u64) -> Timeline {
        Timeline::scale(self.phases.clone(), total).expect("phases were checked when the pattern was read")
    }

    /// Every feature flag some phase sets, sorted.
    pub fn flags(&self) -> Vec<String> {
        let flags: BTreeSet<&String> = self.phases.iter().flat_map(|phase| &phase.flags).collect();
        flags.into_iter().cloned().collect()
    }

    /// The most spans one trace of `entrypoint` can have.
    pub fn spans_per_trace(&self, entrypoint: &Entrypoint) -> u64 {
        self.subtree_spans(entrypoint.root)
    }

    fn subtree_spans(&self, node: usize) -> u64 {
        let children: u64 = self.nodes[node]
            .children
            .iter()
            .map(|&child| u64::from(self.nodes[child].repeat).saturating_mul(self.subtree_spans(child)))
            .fold(0, u64::saturating_add);
        children.saturating_add(1)
    }
}

fn render_path(path: &[Step]) -> String {
    let mut text = String::new();
    for step in path {
        match step {
            Step::Key(name) => {
                if !text.is_empty() {
                    text.push('.');
                }
                text.push_str(name);
            }
            Step::Name(name) => {
                let _ = write!(text, "[{name:?}]");
            }
            Step::Index(index) => {
                let _ = write!(text, "[{index}]");
            }
        }
    }
    text
}

type Failure = (Vec<Step>, String);

/// Compiles a pattern's spec, checking everything it can: a failed check
/// is noted and the rest goes on (with a stand-in where a value is
/// needed), so that one reading finds every error.
#[derive(Default)]
struct Compiler {
    services: Vec<Service>,
    nodes: Vec<Node>,
    flags: BTreeSet<String>,
    failures: Vec<Failure>,
}

impl Compiler {
    fn fail(&mut self, path: Vec<Step>, message: impl Into<String>) {
        self.failures.push((path, message.into()));
    }

    fn compile(mut self, spec: PatternSpec, text: &str) -> Result<Pattern, Vec<Failure>> {
        let key = |name: &'static str| vec![Step::Key(name)];
        if spec.name.trim().is_empty() {
            self.fail(key("name"), "a pattern needs a name");
        }
        if spec.services.is_empty() {
            self.fail(key("services"), "a pattern needs at least one service");
        }
        for (index, service) in spec.services.into_iter().enumerate() {
            if service.name.trim().is_empty() {
                self.fail(vec![Step::Key("services"), Step::Index(index), Step::Key("name")], "empty name");
                continue;
            }
            if self.services.iter().any(|known| known.name == service.name) {
                self.fail(
                    vec![Step::Key("services"), Step::Index(index), Step::Key("name")],
                    format!("a second service named {:?}", service.name),
                );
                continue;
            }
            let mut resource = vec![("service.name".to_owned(), Value::String(service.name.clone()))];
            if let Some(version) = service.version {
                resource.push(("service.version".to_owned(), Value::String(version)));
            }
            merge(&mut resource, spec.resource.clone());
            merge(&mut resource, service.attributes);
            self.services.push(Service { name: service.name, resource });
        }

        if spec.phases.is_empty() {
            self.fail(key("phases"), "a pattern needs at least one phase");
        }
        let mut phases = Vec::with_capacity(spec.phases.len());
        for (index, phase) in spec.phases.into_iter().enumerate() {
            let path = |field| vec![Step::Key("phases"), Step::Index(index), Step::Key(field)];
            if !valid_label(&phase.name) {
                self.fail(path("name"), format!("phase name {:?} must be letters, digits, '_' or '-'", phase.name));
            } else if phases.iter().any(|known: &Phase| known.name == phase.name) {
                self.fail(path("name"), format!("a second phase named {:?}", phase.name));
            }
            for flag in &phase.flags {
                if !valid_label(flag) {
                    self.fail(path("flags"), format!("flag {flag:?} must be letters, digits, '_' or '-'"));
                }
            }
            self.flags.extend(phase.flags.iter().cloned());
            phases.push(Phase {
                name: phase.name,
                nominal_nanos: phase.duration.0,
                flags: phase.flags,
                description: phase.description.unwrap_or_default(),
            });
        }
        let phase_total: u64 = phases.iter().map(|phase| phase.nominal_nanos).sum();

        if spec.entrypoints.is_empty() {
            self.fail(key("entrypoints"), "a pattern needs at least one entry point");
        }
        let mut entrypoints = Vec::with_capacity(spec.entrypoints.len());
        for (index, entry) in spec.entrypoints.into_iter().enumerate() {
            let path = vec![Step::Key("entrypoints"), Step::Index(index)];
            if entry.weight == 0 {
                let mut path = path.clone();
                path.push(Step::Key("weight"));
                self.fail(path, "weight must be at least 1");
            }
            let mut span_path = path.clone();
            span_path.push(Step::Key("span"));
            if entry.span.async_.is_some() {
                let mut async_path = span_path.clone();
                async_path.push(Step::Key("async"));
                self.fail(async_path, "an entry point's span has no parent to follow");
            }
            let root = self.node(entry.span, &mut span_path, 1);
            let entrypoint = Entrypoint { name: entry.name, weight: entry.weight, root };
            entrypoints.push(entrypoint);
        }

        let metrics = spec.metrics;
        if let Some(interval) = metrics.interval
            && !interval.0.is_multiple_of(1_000_000_000)
        {
            self.fail(
                vec![Step::Key("metrics"), Step::Key("interval")],
                "the metrics interval must be a whole number of seconds",
            );
        }
        let mut gauges = Vec::with_capacity(metrics.gauges.len());
        for (index, gauge) in metrics.gauges.into_iter().enumerate() {
            let path = |field| vec![Step::Key("metrics"), Step::Key("gauges"), Step::Index(index), Step::Key(field)];
            let service = match self.service_index(&gauge.service) {
                Ok(service) => service,
                Err(message) => {
                    self.fail(path("service"), message);
                    continue;
                }
            };
            let value = match gauge.value {
                spec::GaugeValue::Utilization => GaugeKind::Utilization {
                    capacity: gauge.capacity.map_or(1.0, |capacity| capacity.0),
                    base: gauge.base.unwrap_or(0.0),
                },
                spec::GaugeValue::InFlight => GaugeKind::InFlight,
            };
            let unit =
                gauge.unit.unwrap_or_else(|| if value == GaugeKind::InFlight { "{request}" } else { "1" }.into());
            gauges.push(Gauge {
                service,
                name: gauge.name,
                unit,
                description: gauge.description.unwrap_or_default(),
                value,
            });
        }

        if !self.failures.is_empty() {
            return Err(self.failures);
        }
        let pattern = Pattern {
            name: spec.name,
            description: spec.description,
            session_type: match spec.session_type {
                Some(SessionTypeSpec::Training) => SessionType::Training,
                Some(SessionTypeSpec::Seed) | None => SessionType::Seed,
            },
            default_duration_nanos: spec.defaults.duration.map_or(phase_total, |duration| duration.0),
            default_rate: spec.defaults.rate.map(|rate| rate.0),
            default_error_rate: spec.defaults.error_rate.map(|rate| rate.0),
            services: self.services,
            phases,
            entrypoints,
            nodes: self.nodes,
            metrics: Metrics {
                interval_nanos: metrics.interval.map_or(DEFAULT_METRICS_INTERVAL_NANOS, |interval| interval.0),
                requests: metrics.requests.unwrap_or(true),
                gauges,
            },
            source: text.to_owned(),
        };
        let too_large: Vec<Failure> = pattern
            .entrypoints
            .iter()
            .enumerate()
            .filter_map(|(index, entry)| {
                let spans = pattern.spans_per_trace(entry);
                (spans > MAX_SPANS_PER_TRACE).then(|| {
                    (
                        vec![Step::Key("entrypoints"), Step::Index(index)],
                        format!(
                            "a trace of this entry point can have {spans} spans, above the limit of {MAX_SPANS_PER_TRACE}; lower some `repeat`"
                        ),
                    )
                })
            })
            .collect();
        if too_large.is_empty() { Ok(pattern) } else { Err(too_large) }
    }

    fn service_index(&self, name: &str) -> Result<usize, String> {
        self.services.iter().position(|service| service.name == name).ok_or_else(|| {
            let known: Vec<&str> = self.services.iter().map(|service| service.name.as_str()).collect();
            format!("unknown service {name:?}; the services are {}", known.join(", "))
        })
    }

    /// Compiles a span and its children; returns its node's index. A failed
    /// check is noted, and a stand-in used, so that the rest is checked too.
    fn node(&mut self, spec: NodeSpec, path: &mut Vec<Step>, depth: usize) -> usize {
        let at = |path: &Vec<Step>, field: &'static str| {
            let mut path = path.clone();
            path.push(Step::Key(field));
            path
        };
        if depth > MAX_DEPTH {
            self.fail(path.clone(), format!("call trees may nest at most {MAX_DEPTH} deep"));
            return 0;
        }
        let service = self.service_index(&spec.service).unwrap_or_else(|message| {
            self.fail(at(path, "service"), message);
            0
        });
        let protocols = [spec.http.is_some(), spec.rpc.is_some(), spec.db.is_some(), spec.messaging.is_some()];
        if protocols.iter().filter(|&&set| set).count() > 1 {
            self.fail(path.clone(), "a span has at most one of http, rpc, db and messaging");
        }

        let mut attributes: Attributes = Vec::new();
        let string = |value: &str| Value::String(value.to_owned());
        let (protocol, derived_name, derived_kind, status_attribute) = if let Some(http) = &spec.http {
            attributes.push(("http.request.method".into(), string(&http.method)));
            match (&http.route, &http.url) {
                (Some(route), None) => {
                    attributes.push(("http.route".into(), string(route)));
                    attributes.push(("url.path".into(), string(route)));
                    attributes.push(("url.scheme".into(), string("http")));
                    (Protocol::Http, Some(format!("{} {route}", http.method)), KindSpec::Server, StatusAttribute::Http)
                }
                (None, Some(url)) => {
                    attributes.push(("url.full".into(), string(url)));
                    if let Some((host, port)) = host_and_port(url) {
                        attributes.push(("server.address".into(), string(&host)));
                        attributes.push(("server.port".into(), Value::Int(port)));
                    }
                    (Protocol::Http, Some(http.method.clone()), KindSpec::Client, StatusAttribute::Http)
                }
                _ => {
                    self.fail(
                        at(path, "http"),
                        "give `route` for a server span or `url` for a client span (one of them)",
                    );
                    (Protocol::Http, Some(http.method.clone()), KindSpec::Server, StatusAttribute::Http)
                }
            }
        } else if let Some(rpc) = &spec.rpc {
            attributes.push(("rpc.system".into(), string(&rpc.system)));
            attributes.push(("rpc.service".into(), string(&rpc.service)));
            attributes.push(("rpc.method".into(), string(&rpc.method)));
            let status = if rpc.system == "grpc" { StatusAttribute::Grpc } else { StatusAttribute::None };
            (Protocol::Rpc, Some(format!("{}/{}", rpc.service, rpc.method)), KindSpec::Client, status)
        } else if let Some(db) = &spec.db {
            attributes.push(("db.system.name".into(), string(&db.system)));
            attributes.push(("db.operation.name".into(), string(&db.operation)));
            if let Some(collection) = &db.collection {
                attributes.push(("db.collection.name".into(), string(collection)));
            }
            if let Some(namespace) = &db.namespace {
                attributes.push(("db.namespace".into(), string(namespace)));
            }
            if let Some(query) = &db.query {
                attributes.push(("db.query.text".into(), string(query)));
            }
            let name = match &db.collection {
                Some(collection) => format!("{} {collection}", db.operation),
                None => db.operation.clone(),
            };
            (Protocol::Db, Some(name), KindSpec::Client, StatusAttribute::None)
        } else if let Some(messaging) = &spec.messaging {
            let operation = match messaging.operation {
                MessagingOperation::Send => "send",
                MessagingOperation::Receive => "receive",
                MessagingOperation::Process => "process",
            };
            attributes.push(("messaging.system".into(), string(&messaging.system)));
            attributes.push(("messaging.destination.name".into(), string(&messaging.destination)));
            attributes.push(("messaging.operation.type".into(), string(operation)));
            attributes.push(("messaging.operation.name".into(), string(operation)));
            let kind =
                if messaging.operation == MessagingOperation::Send { KindSpec::Producer } else { KindSpec::Consumer };
            (Protocol::Messaging, Some(format!("{operation} {}", messaging.destination)), kind, StatusAttribute::None)
        } else {
            (Protocol::None, None, KindSpec::Internal, StatusAttribute::None)
        };
        merge(&mut attributes, spec.attributes);

        let name = if let Some(name) = spec.name.or(derived_name) {
            if name.is_empty() {
                self.fail(at(path, "name"), "a span name cannot be empty");
            }
            name
        } else {
            self.fail(path.clone(), "a span without http, rpc, db or messaging needs a `name`");
            String::new()
        };
        let kind = match spec.kind.unwrap_or(derived_kind) {
            KindSpec::Internal => SpanKind::Internal,
            KindSpec::Server => SpanKind::Server,
            KindSpec::Client => SpanKind::Client,
            KindSpec::Producer => SpanKind::Producer,
            KindSpec::Consumer => SpanKind::Consumer,
        };
        let latency = match spec.latency {
            None => Latency::Fixed(1_000_000),
            Some(spec) => to_latency(spec).unwrap_or_else(|message| {
                self.fail(at(path, "latency"), message);
                Latency::Fixed(1_000_000)
            }),
        };
        let error = spec.error.map(|error| {
            let failure_status = match status_attribute {
                StatusAttribute::Grpc => 14,
                StatusAttribute::Http | StatusAttribute::None => 500,
            };
            ErrorBehaviour {
                probability: error.probability.map(|p| p.0),
                status_code: error.status_code.unwrap_or(failure_status),
                message: error.message.unwrap_or_else(|| format!("{name} failed")),
                exception: error.exception,
                propagate: error.propagate,
                log: error.log,
            }
        });
        let mut effects = Vec::with_capacity(spec.when.len());
        for (flag, EffectSpec { error_probability, latency_factor }) in spec.when {
            if !self.flags.contains(&flag) {
                let mut flag_path = at(path, "when");
                flag_path.push(Step::Name(flag.clone()));
                let known: Vec<&str> = self.flags.iter().map(String::as_str).collect();
                let known = if known.is_empty() {
                    "no phase sets a flag".to_owned()
                } else {
                    format!("phases set {}", known.join(", "))
                };
                self.fail(flag_path, format!("flag {flag:?} is not set by any phase; {known}"));
                continue;
            }
            if error_probability.is_some() && error.is_none() {
                let mut flag_path = at(path, "when");
                flag_path.push(Step::Name(flag.clone()));
                self.fail(flag_path, "error_probability needs an `error` block on the span that says how it fails");
                continue;
            }
            effects.push(Effect {
                flag,
                error_probability: error_probability.map(|p| p.0),
                latency_factor: latency_factor.map(|factor| (factor.from, factor.to)),
            });
        }
        let mut logs = Vec::with_capacity(spec.logs.len());
        for (index, log) in spec.logs.into_iter().enumerate() {
            let mut log_path = at(path, "logs");
            log_path.push(Step::Index(index));
            let body = match template(&log.body, &attributes) {
                Ok(body) => body,
                Err(message) => {
                    log_path.push(Step::Key("body"));
                    self.fail(log_path, message);
                    continue;
                }
            };
            let severity = log.severity.unwrap_or(match log.on {
                LogOn::Error => spec::Severity { number: 17, text: "ERROR" },
                LogOn::Start | LogOn::End | LogOn::Ok => spec::Severity { number: 9, text: "INFO" },
            });
            let mut record_attributes = Vec::new();
            merge(&mut record_attributes, log.attributes);
            logs.push(LogTemplate {
                on: match log.on {
                    LogOn::Start => LogWhen::Start,
                    LogOn::End => LogWhen::End,
                    LogOn::Ok => LogWhen::Ok,
                    LogOn::Error => LogWhen::Error,
                },
                severity_number: severity.number,
                severity_text: severity.text,
                body,
                attributes: record_attributes,
            });
        }
        let repeat = spec.repeat.unwrap_or(1);
        if !(1..=1000).contains(&repeat) {
            self.fail(at(path, "repeat"), format!("repeat {repeat} is outside 1..1000"));
        }
        let async_delay = match spec.async_ {
            None => None,
            Some(spec) => match to_latency(spec.delay) {
                Ok(delay) => Some(delay),
                Err(message) => {
                    self.fail(at(path, "async"), message);
                    None
                }
            },
        };

        let index = self.nodes.len();
        self.nodes.push(Node {
            service,
            name,
            kind,
            protocol,
            latency,
            attributes,
            status_attribute,
            error,
            effects,
            logs,
            repeat,
            parallel: spec.parallel,
            async_delay,
            children: Vec::new(),
        });
        let mut children = Vec::with_capacity(spec.children.len());
        for (child_index, child) in spec.children.into_iter().enumerate() {
            path.push(Step::Key("children"));
            path.push(Step::Index(child_index));
            children.push(self.node(child, path, depth + 1));
            path.truncate(path.len() - 2);
        }
        self.nodes[index].children = children;
        index
    }
}

fn to_latency(spec: LatencySpec) -> Result<Latency, String> {
    match spec {
        LatencySpec::Fixed(nanos) => Ok(Latency::Fixed(nanos.max(1))),
        LatencySpec::LogNormal { median, p99 } => Latency::log_normal(median, p99).map_err(|error| error.to_string()),
    }
}

/// Appends `extra` to `attributes`, replacing values of keys already there.
fn merge(attributes: &mut Attributes, extra: std::collections::BTreeMap<String, AttributeValue>) {
    for (key, value) in extra {
        let value = Value::from(value);
        match attributes.iter_mut().find(|(known, _)| *known == key) {
            Some(slot) => slot.1 = value,
            None => attributes.push((key, value)),
        }
    }
}

/// Letters, digits, `_` and `-`: safe as a directory name and an
/// annotation key.
fn valid_label(text: &str) -> bool {
    !text.is_empty() && text.len() <= 64 && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The host and port of an `http://` or `https://` URL.
fn host_and_port(url: &str) -> Option<(String, i64)> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let default_port = match scheme {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    match authority.rsplit_once(':') {
        Some((host, port)) => Some((host.to_owned(), port.parse().ok()?)),
        None => Some((authority.to_owned(), default_port)),
    }
}

fn template(body: &str, attributes: &Attributes) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut rest = body;
    while let Some(at) = rest.find(['{', '}']) {
        text.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        // `{{` and `}}` are a literal brace.
        if let Some(stripped) = after.strip_prefix(&rest[at..=at]) {
            text.push_str(&rest[at..=at]);
            rest = stripped;
            continue;
        }
        if rest.as_bytes()[at] == b'}' {
            return Err(format!("a lone '}}' in {body:?}; write '}}}}' for a literal brace"));
        }
        let Some(close) = after.find('}') else {
            return Err(format!("unclosed '{{' in {body:?}; write '{{{{' for a literal brace"));
        };
        let name = &after[..close];
        if !text.is_empty() {
            pieces.push(Piece::Text(std::mem::take(&mut text)));
        }
        pieces.push(match name {
            "duration_ms" => Piece::DurationMs,
            "status_code" => Piece::StatusCode,
            _ => {
                let Some(index) = attributes.iter().position(|(key, _)| key == name) else {
                    let known: Vec<&str> = attributes.iter().map(|(key, _)| key.as_str()).collect();
                    return Err(format!(
                        "unknown placeholder {{{name}}}; use {{duration_ms}}, {{status_code}} or one of the span's attributes ({})",
                        known.join(", ")
                    ));
                };
                Piece::Attribute(index)
            }
        });
        rest = &after[close + 1..];
    }
    text.push_str(rest);
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

#[cfg(test)]
mod template_tests {
    use super::*;

    #[test]
    fn doubled_braces_are_literal_and_placeholders_are_found() {
        let attributes = vec![("http.route".to_owned(), Value::String("/x".to_owned()))];
        assert_eq!(
            template("{{\"route\": \"{http.route}\"}} in {duration_ms} ms", &attributes),
            Ok(vec![
                Piece::Text("{\"route\": \"".to_owned()),
                Piece::Attribute(0),
                Piece::Text("\"} in ".to_owned()),
                Piece::DurationMs,
                Piece::Text(" ms".to_owned()),
            ])
        );
        assert!(template("a } b", &attributes).unwrap_err().contains("lone"));
        assert!(template("a { b", &attributes).unwrap_err().contains("unclosed"));
        assert!(template("{nope}", &attributes).unwrap_err().contains("http.route"));
    }
}
