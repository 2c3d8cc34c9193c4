//! `docs/openapi.json`: a well-formed OpenAPI 3 description whose routes are
//! exactly those of the router in `crates/server/src/api.rs`, whose request
//! bodies take exactly the documented options, which the running `serve`
//! answers as documented, and which `docs/API.md` covers.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};

use serde_json::Value;

/// The HTTP methods an OpenAPI path item and an axum method router can have.
const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// Stands for every path parameter in the requests to the running `serve`:
/// a valid session id and job or pattern name that does not exist.
const MISSING: &str = "no-such-id";

/// Variables of whoever runs the tests that would change what `serve` does.
const ENV_PREFIXES: [&str; 8] =
    ["OTLP_TAPE_", "OTEL_", "REPLAY_", "CAPTURE_", "CLICKHOUSE_", "MINIO_", "AWS_", "RUST_LOG"];

fn repo_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo_file(path)).unwrap_or_else(|error| panic!("cannot read {path}: {error}"))
}

fn openapi() -> Value {
    serde_json::from_str(&read("docs/openapi.json")).unwrap_or_else(|error| panic!("docs/openapi.json: {error}"))
}

/// Every operation of the description by (METHOD, path), with the
/// parameters of its path item.
fn operations(doc: &Value) -> BTreeMap<(String, String), (&Value, Vec<&Value>)> {
    let paths = doc["paths"].as_object().expect("docs/openapi.json has no paths object");
    let mut operations = BTreeMap::new();
    for (path, item) in paths {
        let item = item.as_object().unwrap_or_else(|| panic!("{path} is not an object"));
        let shared: Vec<&Value> = item.get("parameters").and_then(Value::as_array).into_iter().flatten().collect();
        for (method, operation) in item {
            if METHODS.contains(&method.as_str()) {
                operations.insert((method.to_uppercase(), path.clone()), (operation, shared.clone()));
            }
        }
    }
    operations
}

/// Follows a local `$ref` such as `#/components/schemas/Error`.
fn resolve<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    doc.pointer(reference.strip_prefix('#')?)
}

/// Every `$ref` under `node`, with where it is.
fn references<'a>(node: &'a Value, at: &str, found: &mut Vec<(String, &'a str)>) {
    match node {
        Value::Object(object) => {
            for (key, value) in object {
                match (key.as_str(), value) {
                    ("$ref", Value::String(target)) => found.push((at.to_owned(), target)),
                    _ => references(value, &format!("{at}/{key}"), found),
                }
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                references(item, &format!("{at}/{index}"), found);
            }
        }
        _ => {}
    }
}

/// The `{name}` parameters of a templated path.
fn path_parameters(path: &str) -> Vec<&str> {
    path.split('/').filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}')).collect()
}

/// The status codes an operation documents.
fn documented_codes(operation: &Value) -> BTreeSet<u16> {
    operation["responses"].as_object().into_iter().flatten().filter_map(|(code, _)| code.parse().ok()).collect()
}

#[test]
fn the_description_is_well_formed() {
    let doc = openapi();
    let version = doc["openapi"].as_str().expect("no openapi version");
    assert!(version.starts_with("3."), "openapi is {version:?}, not 3.x");
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string(), "info needs title and version");
    assert!(doc["components"]["schemas"]["Error"].is_object(), "no Error schema");
    assert!(doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer", "no bearer security scheme");

    let mut ids = BTreeSet::new();
    for ((method, path), (operation, shared)) in operations(&doc) {
        let id = operation["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path} has no operationId"));
        assert!(ids.insert(id.to_owned()), "operationId {id} is used twice");
        let responses =
            operation["responses"].as_object().unwrap_or_else(|| panic!("{method} {path} has no responses"));
        assert!(!responses.is_empty(), "{method} {path} has no responses");
        for code in responses.keys() {
            assert!(
                code == "default"
                    || (code.len() == 3 && code.parse::<u16>().is_ok_and(|code| (100..600).contains(&code))),
                "{method} {path} has response {code:?}, not a status code"
            );
        }
        assert!(responses.keys().any(|code| code.starts_with('2')), "{method} {path} documents no successful response");

        // Every {name} of the path is a declared path parameter.
        let declared: Vec<&Value> = shared
            .into_iter()
            .chain(operation["parameters"].as_array().into_iter().flatten())
            .map(|parameter| match parameter["$ref"].as_str() {
                Some(target) => resolve(&doc, target).unwrap_or(parameter),
                None => parameter,
            })
            .collect();
        for name in path_parameters(&path) {
            assert!(
                declared.iter().any(|parameter| parameter["in"] == "path" && parameter["name"] == name),
                "{method} {path} does not declare its path parameter {name}"
            );
        }
    }

    let mut found = Vec::new();
    references(&doc, "#", &mut found);
    assert!(!found.is_empty(), "no $ref at all");
    for (at, target) in found {
        assert!(target.starts_with("#/components/"), "{at}: $ref {target} is not to a component");
        assert!(resolve(&doc, target).is_some(), "{at}: $ref {target} is not defined");
    }
}

/// The index just past the parenthesis that closes the one `text` starts
/// with, skipping string literals.
fn closing_paren(text: &str) -> usize {
    let mut depth = 0_usize;
    let mut in_string = false;
    let mut escaped = false;
    for (index, c) in text.char_indices() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return index + 1;
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced parentheses in {text:.80}");
}

/// The (METHOD, path) pairs of the router in the source of `api.rs`: every
/// `.route("PATH", get(a).post(b))` call, by the method functions chained
/// in its second argument.
fn router_routes(source: &str) -> BTreeSet<(String, String)> {
    // Comments may mention calls; they are not routes. The web UI's files
    // (`/`, `/ui/...`, merged from web.rs) are not API operations: the README
    // and docs/API.md describe them, not docs/openapi.json.
    let code = source.lines().filter(|line| !line.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
    let code = code.replace(".merge(crate::web::router())", "");
    for unsupported in [".nest(", ".merge(", ".route_service(", ".nest_service("] {
        assert!(
            !code.contains(unsupported),
            "api.rs uses {unsupported}...), whose routes this test cannot read; extend the test"
        );
    }
    let mut routes = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(start) = rest.find(".route(") {
        let call = &rest[start + ".route".len()..];
        let end = closing_paren(call);
        let arguments = call[1..end - 1].trim();
        let literal =
            arguments.strip_prefix('"').unwrap_or_else(|| panic!("a route's path is not a literal: {arguments:.80}"));
        let (path, tail) = literal.split_once('"').expect("unterminated path literal");
        let mut chain = tail.trim_start().strip_prefix(',').expect("no method router after a route's path").trim();
        let mut methods = Vec::new();
        while !chain.is_empty() {
            let name_end =
                chain.find('(').unwrap_or_else(|| panic!("cannot read the method router of {path}: {chain}"));
            let name = chain[..name_end].trim();
            let name = name.rsplit("::").next().unwrap_or(name);
            assert!(
                METHODS.contains(&name),
                "route {path} uses {name}(...), which this test cannot map to HTTP methods; extend the test"
            );
            methods.push(name.to_uppercase());
            let after = name_end + closing_paren(&chain[name_end..]);
            chain = chain[after..].trim_start();
            chain = chain.strip_prefix('.').unwrap_or(chain).trim_start();
        }
        assert!(!methods.is_empty(), "route {path} has no methods");
        for method in methods {
            assert!(routes.insert((method.clone(), path.to_owned())), "{method} {path} is routed twice");
        }
        rest = &call[end..];
    }
    routes
}

#[test]
fn the_description_covers_exactly_the_routes_of_the_router() {
    let routes = router_routes(&read("crates/server/src/api.rs"));
    assert!(routes.contains(&("GET".to_owned(), "/healthz".to_owned())), "the router parse found {routes:?}");
    let doc = openapi();
    let documented: BTreeSet<(String, String)> = operations(&doc).into_keys().collect();
    let undocumented: Vec<_> = routes.difference(&documented).collect();
    let gone: Vec<_> = documented.difference(&routes).collect();
    assert!(undocumented.is_empty(), "routes of api.rs missing from docs/openapi.json: {undocumented:?}");
    assert!(gone.is_empty(), "docs/openapi.json documents routes api.rs does not have: {gone:?}");
}

#[test]
fn the_request_bodies_document_exactly_the_allowed_options() {
    use tape_server::request::{CaptureOptions, CompareOptions, ExportOptions, ReplayOptions, SeedOptions, fields};
    let doc = openapi();
    // The options a body may set are the fields of the component's config
    // it is deserialized into.
    for (list, fields, schema) in [
        ("CaptureOptions", fields::<CaptureOptions>(), "CaptureOptions"),
        ("ReplayOptions", fields::<ReplayOptions>(), "ReplayOptions"),
        ("SeedOptions", fields::<SeedOptions>(), "SeedOptions"),
        ("ExportOptions", fields::<ExportOptions>(), "ExportOptions"),
        ("CompareOptions", fields::<CompareOptions>(), "CompareOptions"),
    ] {
        let allowed: BTreeSet<String> = fields.iter().map(|&field| field.to_owned()).collect();
        assert!(!allowed.is_empty(), "{list} has no fields");
        let properties = doc["components"]["schemas"][schema]["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("no properties in schema {schema}"));
        let documented: BTreeSet<String> = properties.keys().cloned().collect();
        assert_eq!(allowed, documented, "the fields of {list} and schema {schema} of docs/openapi.json differ");
        for (name, property) in properties {
            assert!(property["description"].is_string(), "{schema}.{name} has no description");
        }
    }
}

#[test]
fn the_guide_mentions_every_documented_path() {
    let guide = read("docs/API.md");
    assert!(
        guide.contains("docs/openapi.json") || guide.contains("openapi.json"),
        "docs/API.md does not point to openapi.json"
    );
    for (_, path) in operations(&openapi()).into_keys() {
        assert!(guide.contains(&path), "docs/API.md does not mention {path}");
    }
}

/// A running `otlp-tape serve`, killed if the test fails before it stops.
struct Serve {
    child: Child,
    /// Kept open so that `serve` never writes to a closed stdout.
    stdout: BufReader<ChildStdout>,
    log: PathBuf,
    /// Base URL of the control API.
    api: String,
}

impl Serve {
    /// Starts `serve` with everything on port 0 and its store, spool and
    /// reports in `dir`, and reads where the API listens from its first line.
    fn start(dir: &Path) -> Serve {
        let log = dir.join("serve.log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_otlp-tape"));
        for (name, _) in std::env::vars_os() {
            let text = name.to_string_lossy();
            if ENV_PREFIXES.iter().any(|prefix| text.starts_with(prefix)) {
                command.env_remove(&name);
            }
        }
        let mut child = command
            .current_dir(dir)
            .env("OTLP_TAPE_SPOOL_DIR", dir.join("spool"))
            .arg("--store")
            .arg(dir.join("store"))
            .args(["serve", "--api", "127.0.0.1:0", "--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0", "--reports-dir"])
            .arg(dir.join("reports"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("cannot start otlp-tape serve");
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut serve = Serve { child, stdout, log, api: String::new() };
        let mut line = String::new();
        serve.stdout.read_line(&mut line).unwrap();
        let listening: Value = serde_json::from_str(&line)
            .unwrap_or_else(|error| panic!("the first line of serve is not JSON ({error}): {line:?}{}", serve.log()));
        for key in ["grpc", "http"] {
            assert!(listening[key].is_string(), "no {key} address in {line}");
        }
        serve.api = listening["api"].as_str().unwrap_or_else(|| panic!("no api URL in {line}")).to_owned();
        assert!(serve.api.starts_with("http://127.0.0.1:"), "api URL {}", serve.api);
        serve
    }

    /// serve's stderr so far, for failure messages.
    fn log(&self) -> String {
        format!("\n--- serve's stderr ---\n{}", std::fs::read_to_string(&self.log).unwrap_or_default())
    }

    /// Sends SIGTERM and waits for serve to exit; the exit must be 0.
    fn terminate(mut self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().expect("cannot run kill");
        assert!(status.success(), "kill -TERM {pid} failed");
        let exit = self.child.wait().unwrap();
        let mut rest = String::new();
        self.stdout.read_to_string(&mut rest).unwrap();
        assert!(exit.success(), "serve exited with {exit} after SIGTERM{}", self.log());
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A documented request's answer.
struct Answer {
    status: u16,
    content_type: String,
    body: String,
}

fn send(client: &reqwest::blocking::Client, method: &str, url: &str, body: Option<&Value>) -> Answer {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = client.request(method.clone(), url);
    if let Some(body) = body {
        request =
            request.header(reqwest::header::CONTENT_TYPE, "application/json").body(serde_json::to_vec(body).unwrap());
    }
    let response = request.send().unwrap_or_else(|error| panic!("{method} {url}: {error}"));
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = response.text().unwrap();
    Answer { status, content_type, body }
}

/// The error message of an answer that must have the documented error
/// shape `{"error": {"status": STATUS, "message": "..."}}`.
fn error_message(what: &str, answer: &Answer) -> String {
    let body: Value = serde_json::from_str(&answer.body).unwrap_or_else(|error| {
        panic!("{what}: {} with a body that is not JSON ({error}): {}", answer.status, answer.body)
    });
    let object = body.as_object().unwrap_or_else(|| panic!("{what}: the error body is not an object: {body}"));
    assert_eq!(object.len(), 1, "{what}: the error body has more than error: {body}");
    assert_eq!(body["error"]["status"], answer.status, "{what}: error.status is not the HTTP status: {body}");
    let message = body["error"]["message"].as_str().unwrap_or_else(|| panic!("{what}: no error.message: {body}"));
    assert!(!message.is_empty(), "{what}: empty error.message");
    assert!(answer.content_type.starts_with("application/json"), "{what}: error as {}", answer.content_type);
    message.to_owned()
}

#[test]
fn the_running_serve_answers_every_documented_operation_as_documented() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(dir.path());
    let client = reqwest::blocking::Client::new();
    let doc = openapi();

    // The router's fallbacks, which the checks below tell apart.
    let unknown = send(&client, "GET", &format!("{}/api/v1/no-such-endpoint", serve.api), None);
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    assert!(error_message("an unknown endpoint", &unknown).starts_with("no such endpoint"));
    let wrong_method = send(&client, "PUT", &format!("{}/healthz", serve.api), None);
    assert_eq!(wrong_method.status, 405, "{}", wrong_method.body);
    error_message("PUT /healthz", &wrong_method);

    let mut capture = None;
    for ((method, path), (operation, _)) in operations(&doc) {
        let concrete: Vec<String> = path
            .split('/')
            .map(|segment| if segment.starts_with('{') { MISSING.to_owned() } else { segment.to_owned() })
            .collect();
        let url = format!("{}{}", serve.api, concrete.join("/"));
        let what = format!("{method} {path}");
        // The documented example body, when there is one, so that the
        // examples are checked by the real parser too.
        if path == "/api/v1/events" {
            // A stream that ends only with serve: its head is the answer.
            let response = client.get(&url).send().unwrap_or_else(|error| panic!("{what}: {error}"));
            assert_eq!(response.status().as_u16(), 200, "{what}");
            let content_type = response.headers()[reqwest::header::CONTENT_TYPE].to_str().unwrap().to_owned();
            assert!(content_type.starts_with("text/event-stream"), "{what}: {content_type}");
            continue;
        }
        let example = operation.pointer("/requestBody/content/application~1json/example");
        let answer = send(&client, &method, &url, example);

        assert_ne!(answer.status, 405, "{what}: 405, the router does not take this method: {}", answer.body);
        let documented = documented_codes(operation);
        assert!(
            documented.contains(&answer.status),
            "{what}: answered {}, which is not among the documented {documented:?}: {}{}",
            answer.status,
            answer.body,
            serve.log()
        );
        if (200..300).contains(&answer.status) {
            if answer.status == 204 {
                assert!(answer.body.is_empty(), "{what}: 204 with a body: {}", answer.body);
            } else if path == "/metrics" {
                assert!(answer.content_type.starts_with("text/plain"), "{what}: {}", answer.content_type);
                assert!(answer.body.contains("otlp_tape_active_captures"), "{what}: {}", answer.body);
            } else {
                assert!(answer.content_type.starts_with("application/json"), "{what}: {}", answer.content_type);
                let body: Value = serde_json::from_str(&answer.body)
                    .unwrap_or_else(|error| panic!("{what}: {} with a body that is not JSON ({error})", answer.status));
                if method == "POST" && path == "/api/v1/captures" {
                    capture = body["id"].as_str().map(str::to_owned);
                }
            }
        } else {
            let message = error_message(&what, &answer);
            assert!(
                !(answer.status == 404 && message.starts_with("no such endpoint")),
                "{what}: the router has no such route: {message}"
            );
        }
    }

    serve.terminate();

    // The documented capture example started a capture; SIGTERM finished it.
    let capture = capture.expect("POST /api/v1/captures with its example did not start a capture");
    let metadata = dir.path().join("store/sessions").join(&capture).join("metadata.json");
    let metadata: Value = serde_json::from_slice(&std::fs::read(&metadata).unwrap()).unwrap();
    assert_eq!(metadata["status"], "completed", "the capture was not finished on SIGTERM: {metadata}");
}
