//! The built-in patterns, and what a malformed pattern file is told.

use tape_seed_generator::{
    BUILTIN_PATTERNS, GaugeKind, LogWhen, Node, Pattern, PatternError, Protocol, SpanKind, Value, builtin_pattern,
};
use tape_session::SessionType;

const SECOND: u64 = 1_000_000_000;

fn builtin(name: &str) -> Pattern {
    let text = builtin_pattern(name).unwrap_or_else(|| panic!("no built-in pattern {name}"));
    Pattern::parse(name, text).unwrap_or_else(|error| panic!("{error}"))
}

/// Each node of the tree under `root`, with its depth (the root is 1).
fn walk(pattern: &Pattern, root: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut stack = vec![(root, 1)];
    while let Some((node, depth)) = stack.pop() {
        out.push((node, depth));
        stack.extend(pattern.nodes[node].children.iter().map(|&child| (child, depth + 1)));
    }
    out
}

fn attribute<'a>(node: &'a Node, key: &str) -> Option<&'a Value> {
    node.attributes.iter().find(|(known, _)| known == key).map(|(_, value)| value)
}

fn phases(pattern: &Pattern) -> Vec<(&str, u64, Vec<&str>)> {
    pattern
        .phases
        .iter()
        .map(|phase| {
            (phase.name.as_str(), phase.nominal_nanos / SECOND, phase.flags.iter().map(String::as_str).collect())
        })
        .collect()
}

#[test]
fn every_builtin_pattern_parses_and_is_complete() {
    assert_eq!(BUILTIN_PATTERNS.len(), 5);
    for (name, text) in BUILTIN_PATTERNS {
        let pattern = Pattern::parse(name, text).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(pattern.name, name);
        assert_eq!(builtin_pattern(name), Some(text));
        assert!(!pattern.description.is_empty(), "{name}: no description");
        assert!(!pattern.metrics.gauges.is_empty(), "{name}: no gauges");
        assert!(pattern.nodes.iter().any(|node| !node.logs.is_empty()), "{name}: no logs");
        assert_eq!(pattern.metrics.interval_nanos % SECOND, 0, "{name}: interval");
        assert_eq!(
            pattern.default_duration_nanos,
            pattern.phases.iter().map(|phase| phase.nominal_nanos).sum::<u64>(),
            "{name}: the default duration is the phases' sum"
        );
        for (index, service) in pattern.services.iter().enumerate() {
            assert!(pattern.nodes.iter().any(|node| node.service == index), "{name}: {} has no span", service.name);
            let keys: Vec<&str> = service.resource.iter().map(|(key, _)| key.as_str()).collect();
            for key in ["service.name", "service.version", "service.namespace", "deployment.environment.name"] {
                assert!(keys.contains(&key), "{name}: {} has no {key}", service.name);
            }
        }
        // Every flag a phase sets changes something.
        for flag in pattern.flags() {
            assert!(
                pattern.nodes.iter().any(|node| node.effects.iter().any(|effect| effect.flag == flag)),
                "{name}: flag {flag} has no effect"
            );
        }
    }
    assert_eq!(builtin_pattern("no-such-pattern"), None);
}

#[test]
fn payment_failure_fails_payment_only_in_the_failure_phase() {
    let pattern = builtin("payment-failure");
    assert_eq!(pattern.session_type, SessionType::Seed);
    assert_eq!(pattern.default_duration_nanos, 30 * SECOND);
    assert_eq!(
        phases(&pattern),
        [
            ("baseline", 10, vec![]),
            ("failure", 10, vec!["payment_failure"]),
            ("rampdown", 10, vec!["payment_recovery"])
        ]
    );
    let timeline = pattern.timeline(60 * SECOND);
    let bounds: Vec<(u64, u64)> =
        timeline.phases().iter().map(|(_, start, end)| (*start / SECOND, *end / SECOND)).collect();
    assert_eq!(bounds, [(0, 20), (20, 40), (40, 60)]);

    let payment = pattern.services.iter().position(|service| service.name == "payment").unwrap();
    let checkout = pattern.entrypoints.iter().find(|entry| entry.name == "checkout").unwrap();
    let spans = pattern.spans_per_trace(checkout);
    assert!((8..=12).contains(&spans), "a checkout trace has {spans} spans");

    // Exactly one payment server span in the pattern, and only it can fail.
    let servers: Vec<usize> = (0..pattern.nodes.len())
        .filter(|&index| pattern.nodes[index].service == payment && pattern.nodes[index].kind == SpanKind::Server)
        .collect();
    assert_eq!(servers.len(), 1);
    let server = &pattern.nodes[servers[0]];
    assert_eq!(server.name, "shop.payment.v1.PaymentService/Charge");
    let error = server.error.as_ref().unwrap();
    assert_eq!(error.probability, Some(0.0));
    assert!(error.propagate);
    assert!(error.exception.is_some());
    let failure = server.effects.iter().find(|effect| effect.flag == "payment_failure").unwrap();
    assert_eq!(failure.error_probability, Some(0.75));
    for (node, _) in walk(&pattern, servers[0]) {
        let node = &pattern.nodes[node];
        assert!(
            node.error.as_ref().is_none_or(|error| error.probability.is_some()),
            "{} could fail at the session's error rate",
            node.name
        );
        let chance = node.effects.iter().filter_map(|effect| effect.error_probability);
        assert!(node.name == server.name || chance.count() == 0, "{} fails under a flag", node.name);
    }
    // No payment span other than under the checkout can fail either.
    for node in pattern.nodes.iter().filter(|node| node.service == payment) {
        assert!(node.error.as_ref().is_none_or(|error| error.probability == Some(0.0)), "{}", node.name);
    }

    // The failure climbs to the frontend: gRPC client, checkout (500),
    // frontend client and frontend server (502).
    let root = &pattern.nodes[checkout.root];
    assert_eq!(root.name, "POST /api/checkout");
    assert_eq!(root.error.as_ref().unwrap().status_code, 502);
    let path = walk(&pattern, checkout.root);
    let checkout_server =
        path.iter().map(|&(node, _)| &pattern.nodes[node]).find(|node| node.name == "POST /api/v1/checkout");
    assert_eq!(checkout_server.unwrap().error.as_ref().unwrap().status_code, 500);
}

#[test]
fn training_phases_is_a_training_session_with_three_phases() {
    let pattern = builtin("training-phases");
    assert_eq!(pattern.session_type, SessionType::Training);
    assert_eq!(pattern.default_duration_nanos, 60 * SECOND);
    assert_eq!(
        phases(&pattern),
        [("baseline", 20, vec![]), ("degraded", 20, vec!["db_slow"]), ("failure", 20, vec!["db_errors"])]
    );
    let db: Vec<&Node> = pattern.nodes.iter().filter(|node| node.protocol == Protocol::Db).collect();
    assert!(!db.is_empty());
    for node in db {
        let slow = node.effects.iter().find(|effect| effect.flag == "db_slow").unwrap();
        assert_eq!(slow.latency_factor, Some((1.0, 6.0)), "{}", node.name);
        let errors = node.effects.iter().find(|effect| effect.flag == "db_errors").unwrap();
        assert_eq!(errors.error_probability, Some(0.5), "{}", node.name);
        assert!(node.error.as_ref().is_some_and(|error| error.exception.is_some()), "{}", node.name);
    }
    let severities: Vec<(&str, LogWhen)> =
        pattern.nodes.iter().flat_map(|node| &node.logs).map(|log| (log.severity_text, log.on)).collect();
    assert!(severities.contains(&("WARN", LogWhen::Error)));
    assert!(pattern.nodes.iter().any(|node| node.error.as_ref().is_some_and(|error| error.log)));
}

#[test]
fn high_load_fans_out_wide_and_deep() {
    let pattern = builtin("high-load");
    assert_eq!(pattern.default_rate, Some(200.0));
    assert_eq!(phases(&pattern), [("steady", 60, vec![])]);
    for entry in &pattern.entrypoints {
        let spans = pattern.spans_per_trace(entry);
        assert!((40..=80).contains(&spans), "{}: {spans} spans", entry.name);
        let tree = walk(&pattern, entry.root);
        let depth = tree.iter().map(|&(_, depth)| depth).max().unwrap();
        assert!(depth >= 5, "{}: {depth} levels", entry.name);
        assert!(tree.iter().any(|&(node, _)| pattern.nodes[node].parallel), "{}", entry.name);
        assert!(tree.iter().any(|&(node, _)| pattern.nodes[node].repeat > 1), "{}", entry.name);
        // Sparse logs: one template per trace outside errors, on the root,
        // and on no repeated span.
        let templates: Vec<usize> = tree
            .iter()
            .filter(|&&(node, _)| pattern.nodes[node].logs.iter().any(|log| log.on != LogWhen::Error))
            .map(|&(node, _)| node)
            .collect();
        assert_eq!(templates, [entry.root], "{}", entry.name);
        assert_eq!(pattern.nodes[entry.root].logs.len(), 1);
    }
}

#[test]
fn complex_topology_publishes_to_kafka_and_consumes_asynchronously() {
    let pattern = builtin("complex-topology");
    assert!(pattern.entrypoints.len() >= 3);
    let weights: std::collections::BTreeSet<u32> = pattern.entrypoints.iter().map(|entry| entry.weight).collect();
    assert!(weights.len() >= 3, "entry points have different weights");

    let producer = pattern.nodes.iter().find(|node| node.kind == SpanKind::Producer).unwrap();
    assert_eq!(producer.name, "send orders");
    assert_eq!(attribute(producer, "messaging.system"), Some(&Value::String("kafka".into())));
    assert_eq!(attribute(producer, "messaging.destination.name"), Some(&Value::String("orders".into())));
    assert!(producer.children.len() >= 2);
    for &child in &producer.children {
        let consumer = &pattern.nodes[child];
        assert_eq!(consumer.kind, SpanKind::Consumer);
        assert_eq!(consumer.name, "process orders");
        assert!(consumer.async_delay.is_some());
        assert_ne!(consumer.service, producer.service);
        assert_eq!(attribute(consumer, "messaging.operation.type"), Some(&Value::String("process".into())));
    }
    for protocol in [Protocol::Http, Protocol::Rpc, Protocol::Db, Protocol::Messaging] {
        assert!(pattern.nodes.iter().any(|node| node.protocol == protocol), "{protocol:?}");
    }
    assert!(pattern.nodes.iter().any(|node| attribute(node, "db.system.name") == Some(&Value::String("redis".into()))));
    assert!(
        pattern.metrics.gauges.iter().any(|gauge| gauge.value == GaugeKind::InFlight)
            && pattern.metrics.gauges.iter().any(|gauge| matches!(gauge.value, GaugeKind::Utilization { .. }))
    );
}

// ---------------------------------------------------------------------------
// Malformed patterns. Each starts from `VALID`, whose lines are numbered
// below, and breaks one thing.

const VALID: &str = "\
name: test
services:
  - name: web
  - name: api
phases:
  - name: steady
    duration: 10s
    flags: [slow]
entrypoints:
  - name: home
    span:
      service: web
      http: { method: GET, route: / }
      children:
        - service: web
          http: { method: GET, url: \"http://api:8080/home\" }
          children:
            - service: api
              http: { method: GET, route: /home }
              latency: 3ms
";
// line 18: `            - service: api` (the nested child's `service`
// value at column 24); line 20: `              latency: 3ms` (the key at
// column 15).

fn parse(text: &str) -> Result<Pattern, PatternError> {
    Pattern::parse("bad.yaml", text)
}

#[track_caller]
fn fails(text: &str) -> PatternError {
    match parse(text) {
        Ok(_) => panic!("the pattern was accepted:\n{text}"),
        Err(error) => error,
    }
}

/// Replaces `from` (which must be in `VALID` once) with `to`.
fn broken(from: &str, to: &str) -> String {
    assert_eq!(VALID.matches(from).count(), 1, "{from:?}");
    VALID.replace(from, to)
}

#[track_caller]
fn at(error: &PatternError, line: usize, column: usize) {
    assert_eq!(
        (error.source_name.as_str(), error.line, error.column),
        ("bad.yaml", Some(line), Some(column)),
        "{error}"
    );
}

#[test]
fn the_valid_base_parses() {
    let pattern = parse(VALID).unwrap();
    assert_eq!(pattern.nodes.len(), 3);
    assert_eq!(pattern.nodes[2].name, "GET /home");
}

#[test]
fn an_unknown_field_is_named_with_the_valid_ones() {
    let error = fails(&broken("latency: 3ms", "latancy: 3ms"));
    at(&error, 20, 15);
    assert!(error.message.starts_with("entrypoints[0].span.children[0].children[0]: "), "{error}");
    assert!(error.message.contains("unknown field `latancy`"), "{error}");
    for field in ["`latency`", "`service`", "`children`", "`when`", "`async`"] {
        assert!(error.message.contains(field), "{error}");
    }
    assert_eq!(
        error.to_string(),
        format!("bad.yaml:20:15: {}", error.message),
        "FILE:LINE:COLUMN: path.to.field: message"
    );
}

#[test]
fn a_wrong_type_names_the_field() {
    let error = fails(&broken("latency: 3ms", "repeat: many"));
    at(&error, 20, 23);
    assert!(error.message.starts_with("entrypoints[0].span.children[0].children[0].repeat: invalid type"), "{error}");

    let error = fails(&broken("  - name: api\n", "  - name: [api]\n"));
    at(&error, 4, 11);
    assert!(error.message.starts_with("services[1].name: invalid type: sequence"), "{error}");
}

#[test]
fn a_probability_above_one_is_refused_where_it_is_written() {
    let error = fails(&broken("latency: 3ms", "latency: 3ms\n              error:\n                probability: 1.5"));
    at(&error, 22, 30);
    assert!(error.message.starts_with("entrypoints[0].span.children[0].children[0].error.probability: "), "{error}");
    assert!(error.message.contains("1.5 is outside 0..1"), "{error}");

    // In flow style too, and in `when`.
    let error = fails(&broken("latency: 3ms", "error: { probability: 2 }"));
    at(&error, 20, 37);
    let error = fails(&broken("latency: 3ms", "error: {}\n              when: { slow: { error_probability: -0.5 } }"));
    assert_eq!(error.line, Some(21));
    assert!(error.message.contains("when.slow.error_probability: probability -0.5 is outside 0..1"), "{error}");
}

#[test]
fn an_unknown_service_in_a_nested_child_points_at_the_child() {
    let error = fails(&broken("- service: api", "- service: apx"));
    at(&error, 18, 24);
    assert_eq!(
        error.message,
        "entrypoints[0].span.children[0].children[0].service: unknown service \"apx\"; the services are web, api"
    );
}

#[test]
fn an_unknown_flag_in_when_points_at_the_flag() {
    let error = fails(&broken(
        "latency: 3ms",
        "latency: 3ms\n              when:\n                fast:\n                  latency_factor: 2",
    ));
    at(&error, 22, 17);
    assert_eq!(
        error.message,
        "entrypoints[0].span.children[0].children[0].when[\"fast\"]: flag \"fast\" is not set by any phase; phases set slow"
    );
    // An error probability needs an error block.
    let error = fails(&broken("latency: 3ms", "when: { slow: { error_probability: 0.5 } }"));
    assert_eq!(error.line, Some(20));
    assert!(error.message.contains("needs an `error` block"), "{error}");
}

#[test]
fn a_bad_duration_is_refused_where_it_is_written() {
    let error = fails(&broken("duration: 10s", "duration: 10x"));
    at(&error, 7, 15);
    assert!(error.message.starts_with("phases[0].duration: invalid duration \"10x\": unknown unit"), "{error}");

    let error = fails(&broken("latency: 3ms", "latency: { median: 30ms, p99: 3ms }"));
    at(&error, 20, 24);
    assert!(error.message.contains("latency: p99 must not be below the median"), "{error}");

    let error = fails(&format!("{VALID}metrics:\n  interval: 1500ms\n"));
    at(&error, 22, 13);
    assert!(error.message.starts_with("metrics.interval: "), "{error}");
}

#[test]
fn a_bad_placeholder_in_a_log_body_lists_the_usable_ones() {
    let text =
        broken("latency: 3ms", "latency: 3ms\n              logs:\n                - body: \"took {duration} ms\"");
    let error = fails(&text);
    at(&error, 22, 25);
    assert!(
        error
            .message
            .starts_with("entrypoints[0].span.children[0].children[0].logs[0].body: unknown placeholder {duration}")
    );
    assert!(error.message.contains("{duration_ms}") && error.message.contains("http.route"), "{error}");

    let error = fails(&broken("latency: 3ms", "logs: [{ body: \"x\", severity: LOUD }]"));
    at(&error, 20, 45);
    assert!(error.message.contains("logs[0].severity: unknown severity \"LOUD\""), "{error}");
}

#[test]
fn a_yaml_syntax_error_has_its_place() {
    let error = fails(&broken("      service: web\n", "      service: web\n     bad: [unclosed\n"));
    assert_eq!(error.source_name, "bad.yaml");
    assert_eq!(error.line, Some(13));
    assert!(error.column.is_some());
    assert!(!error.message.contains(" at line 13 column"), "the place is said once: {error}");

    let error = fails("name: test\nservices: [\"web\n");
    assert!(error.line.is_some() && error.column.is_some(), "{error}");
}

#[test]
fn an_empty_services_list_is_refused() {
    let error = fails(&broken("services:\n  - name: web\n  - name: api\n", "services: []\n"));
    at(&error, 2, 11);
    assert_eq!(error.message, "services: a pattern needs at least one service");
    assert_eq!(error.to_string(), "bad.yaml:2:11: services: a pattern needs at least one service");
}

#[test]
fn duplicate_phase_names_are_refused() {
    let error = fails(&broken("    flags: [slow]\n", "    flags: [slow]\n  - name: steady\n    duration: 5s\n"));
    at(&error, 9, 11);
    assert_eq!(error.message, "phases[1].name: a second phase named \"steady\"");
}

#[test]
fn other_whole_file_checks_point_into_the_file() {
    // A missing required field names it.
    let error = fails(&broken(
        "      service: web\n      http: { method: GET, route: / }\n",
        "      http: { method: GET, route: / }\n",
    ));
    assert_eq!(error.line, Some(12));
    assert!(error.message.contains("entrypoints[0].span: missing field `service`"), "{error}");
    // A span with two protocols.
    let error =
        fails(&broken("latency: 3ms", "latency: 3ms\n              db: { system: postgresql, operation: SELECT }"));
    assert!(error.message.contains("at most one of http, rpc, db and messaging"), "{error}");
    at(&error, 18, 15);
    // A repeat out of range.
    let error = fails(&broken("latency: 3ms", "repeat: 0"));
    at(&error, 20, 23);
    // An async root.
    let error = fails(&broken("      service: web\n", "      service: web\n      async: { delay: 5ms }\n"));
    assert!(error.message.starts_with("entrypoints[0].span.async: "), "{error}");
    assert_eq!(error.line, Some(13));
    // A gauge for an unknown service.
    let error =
        fails(&format!("{VALID}metrics:\n  gauges:\n    - service: db\n      name: g\n      value: in_flight\n"));
    at(&error, 23, 16);
    assert!(error.message.starts_with("metrics.gauges[0].service: unknown service \"db\""), "{error}");
}

#[test]
fn the_annotated_example_in_the_documentation_is_basic_topology() {
    let doc = include_str!("../../../docs/PATTERNS.md");
    let (_, rest) = doc.split_once("<!-- example: basic-topology -->\n```yaml\n").expect("the example's marker");
    let (example, _) = rest.split_once("\n```\n").expect("the end of the example");
    let mut documented = Pattern::parse("docs/PATTERNS.md", example).unwrap_or_else(|error| panic!("{error}"));
    let builtin = builtin("basic-topology");
    documented.source.clone_from(&builtin.source);
    assert_eq!(documented, builtin);
}

#[test]
fn every_error_of_a_file_is_found_in_file_order() {
    // Three mistakes: the flag's name (line 8), an unknown service (line
    // 15) and a repeat out of range (line 20); and metrics listed first.
    let text = VALID
        .replace("    flags: [slow]\n", "    flags: [\"slow down\"]\n")
        .replace("        - service: web\n", "        - service: nowhere\n")
        .replace("latency: 3ms", "latency: 3ms\n              repeat: 0");
    let text = format!("metrics:\n  interval: 1500ms\n{text}");
    let Err(errors) = Pattern::parse_all("bad.yaml", &text) else { panic!("accepted:\n{text}") };
    let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "bad.yaml:2:13: metrics.interval: the metrics interval must be a whole number of seconds",
            "bad.yaml:10:12: phases[0].flags: flag \"slow down\" must be letters, digits, '_' or '-'",
            "bad.yaml:17:20: entrypoints[0].span.children[0].service: unknown service \"nowhere\"; the services are web, api",
            "bad.yaml:23:23: entrypoints[0].span.children[0].children[0].repeat: repeat 0 is outside 1..1000",
        ],
        "{shown:#?}"
    );
    // parse gives the first.
    assert_eq!(Pattern::parse("bad.yaml", &text).unwrap_err(), errors[0]);
}
