//! `otlp-tape patterns list | show | validate`, and reading the pattern a
//! command names.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use serde::Serialize;
use tape_seed_generator::{BUILTIN_PATTERNS, Pattern, Value, builtin_pattern, format_duration};
use tape_session::SessionType;

use crate::cli::OutputFormat;
use crate::output::print_json;

/// Traces per second of `seed` when neither `--rate` nor the pattern gives one.
pub const DEFAULT_RATE: f64 = 10.0;
/// Error rate of `seed` when neither `--error-rate` nor the pattern gives one.
pub const DEFAULT_ERROR_RATE: f64 = 0.05;

/// The names of the built-in patterns, comma-separated.
fn builtin_names() -> String {
    BUILTIN_PATTERNS.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(", ")
}

/// Reads the pattern `spec` names: a built-in pattern's name, else a path
/// to a pattern file.
pub fn load(spec: &str) -> anyhow::Result<Pattern> {
    if let Some(text) = builtin_pattern(spec) {
        return Pattern::parse(spec, text).with_context(|| format!("the built-in pattern {spec} is broken"));
    }
    let path = Path::new(spec);
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Pattern::parse(&path.display().to_string(), &text)?),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            bail!("unknown pattern {spec:?}: it is neither a built-in pattern ({}) nor a pattern file", builtin_names())
        }
        Err(error) => Err(error).with_context(|| format!("cannot read the pattern file {}", path.display())),
    }
}

/// One line of `patterns list`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListEntry {
    name: String,
    session_type: SessionType,
    phases: Vec<String>,
    default_duration: String,
    description: String,
}

/// What `patterns show --output json` and `patterns validate` print.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PatternSummary {
    name: String,
    description: String,
    session_type: SessionType,
    /// `built-in`, or the file it was read from.
    source: String,
    sha256: String,
    default_duration: String,
    default_duration_nanos: u64,
    default_rate: f64,
    default_error_rate: f64,
    services: Vec<ServiceSummary>,
    entrypoints: Vec<EntrypointSummary>,
    phases: Vec<PhaseSummary>,
    flags: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ServiceSummary {
    name: String,
    resource: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct EntrypointSummary {
    name: String,
    weight: u32,
    service: String,
    operation: String,
    /// The most spans one trace of it can have.
    max_spans: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PhaseSummary {
    name: String,
    /// Its length at the pattern's default duration.
    duration: String,
    duration_nanos: u64,
    flags: Vec<String>,
    description: String,
}

fn json_value(value: &Value) -> serde_json::Value {
    match value {
        Value::String(text) => serde_json::json!(text),
        Value::Bool(flag) => serde_json::json!(flag),
        Value::Int(number) => serde_json::json!(number),
        Value::Double(number) => serde_json::json!(number),
    }
}

fn summary(pattern: &Pattern, source: String) -> PatternSummary {
    PatternSummary {
        name: pattern.name.clone(),
        description: pattern.description.trim().to_owned(),
        session_type: pattern.session_type,
        source,
        sha256: pattern.source_sha256(),
        default_duration: format_duration(pattern.default_duration_nanos),
        default_duration_nanos: pattern.default_duration_nanos,
        default_rate: pattern.default_rate.unwrap_or(DEFAULT_RATE),
        default_error_rate: pattern.default_error_rate.unwrap_or(DEFAULT_ERROR_RATE),
        services: pattern
            .services
            .iter()
            .map(|service| ServiceSummary {
                name: service.name.clone(),
                resource: service.resource.iter().map(|(key, value)| (key.clone(), json_value(value))).collect(),
            })
            .collect(),
        entrypoints: pattern
            .entrypoints
            .iter()
            .map(|entry| {
                let root = &pattern.nodes[entry.root];
                EntrypointSummary {
                    name: entry.name.clone(),
                    weight: entry.weight,
                    service: pattern.services[root.service].name.clone(),
                    operation: root.name.clone(),
                    max_spans: pattern.spans_per_trace(entry),
                }
            })
            .collect(),
        phases: pattern
            .phases
            .iter()
            .map(|phase| PhaseSummary {
                name: phase.name.clone(),
                duration: format_duration(phase.nominal_nanos),
                duration_nanos: phase.nominal_nanos,
                flags: phase.flags.clone(),
                description: phase.description.trim().to_owned(),
            })
            .collect(),
        flags: pattern.flags(),
    }
}

/// The first sentence of a text, at most 80 characters, for tables.
fn first_sentence(text: &str) -> String {
    const MAX: usize = 80;
    let text = text.trim();
    let end = text.find(". ").map_or(text.len(), |end| end + 1);
    let sentence = text[..end].lines().next().unwrap_or("");
    if sentence.chars().count() <= MAX {
        return sentence.to_owned();
    }
    let cut: String = sentence.chars().take(MAX - 3).collect();
    let cut = cut.rsplit_once(' ').map_or(cut.as_str(), |(words, _)| words);
    format!("{}...", cut.trim_end_matches([',', ';', ':']))
}

/// The built-in patterns, as `patterns list --output json` shows them.
pub fn summaries() -> anyhow::Result<Vec<ListEntry>> {
    let mut entries = Vec::new();
    for (name, _) in BUILTIN_PATTERNS {
        let pattern = load(name)?;
        entries.push(ListEntry {
            name: pattern.name.clone(),
            session_type: pattern.session_type,
            phases: pattern.phases.iter().map(|phase| phase.name.clone()).collect(),
            default_duration: format_duration(pattern.default_duration_nanos),
            description: pattern.description.trim().to_owned(),
        });
    }
    Ok(entries)
}

/// A built-in pattern as `patterns show --output json` shows it, with its
/// source text; `None` when no built-in pattern has that name.
pub fn built_in(name: &str) -> Option<serde_json::Value> {
    builtin_pattern(name)?;
    let pattern = load(name).ok()?;
    let mut value = serde_json::to_value(summary(&pattern, "built-in".to_owned())).ok()?;
    value["yaml"] = serde_json::Value::String(pattern.source.clone());
    Some(value)
}

/// `patterns list`
pub fn list(format: OutputFormat) -> anyhow::Result<ExitCode> {
    let entries = summaries()?;
    if format == OutputFormat::Json {
        print_json(&entries)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:<18} {:<9} {:>8}  {:<32} DESCRIPTION", "PATTERN", "TYPE", "DURATION", "PHASES");
    for entry in &entries {
        println!(
            "{:<18} {:<9} {:>8}  {:<32} {}",
            entry.name,
            entry.session_type,
            entry.default_duration,
            entry.phases.join(", "),
            first_sentence(&entry.description)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `patterns show NAME|FILE`
pub fn show(spec: &str, format: OutputFormat) -> anyhow::Result<ExitCode> {
    let pattern = load(spec)?;
    if format == OutputFormat::Json {
        let source = if builtin_pattern(spec).is_some() { "built-in".to_owned() } else { spec.to_owned() };
        print_json(&summary(&pattern, source))?;
    } else {
        print!("{}", pattern.source);
        if !pattern.source.ends_with('\n') {
            println!();
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `patterns validate FILE`
pub fn validate(file: &Path, format: OutputFormat) -> anyhow::Result<ExitCode> {
    let name = file.display().to_string();
    let refuse = |errors: Vec<String>| -> anyhow::Result<ExitCode> {
        if format == OutputFormat::Json {
            print_json(&serde_json::json!({ "file": name, "valid": false, "error": errors[0], "errors": errors }))?;
        } else if errors.len() > 1 {
            // Every error in file order, one a line, as a compiler lists them.
            for error in &errors {
                eprintln!("{error}");
            }
        }
        match errors.len() {
            1 => Err(anyhow::anyhow!("{}", errors[0])),
            count => Err(anyhow::anyhow!("{name} is not a valid pattern: {count} errors (listed above)")),
        }
    };
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(error) => return refuse(vec![format!("cannot read the pattern file {name}: {error}")]),
    };
    let pattern = match Pattern::parse_all(&name, &text) {
        Ok(pattern) => pattern,
        Err(errors) => return refuse(errors.iter().map(ToString::to_string).collect()),
    };
    let summary = summary(&pattern, name.clone());
    if format == OutputFormat::Json {
        let mut value = serde_json::to_value(&summary)?;
        if let Some(object) = value.as_object_mut() {
            object.insert("file".to_owned(), serde_json::json!(name));
            object.insert("valid".to_owned(), serde_json::json!(true));
        }
        print_json(&value)?;
        return Ok(ExitCode::SUCCESS);
    }
    let max_spans = summary.entrypoints.iter().map(|entry| entry.max_spans).max().unwrap_or(0);
    println!(
        "{name}: valid {} pattern {:?}: {} services, {} entrypoints, up to {max_spans} spans per trace",
        summary.session_type,
        summary.name,
        summary.services.len(),
        summary.entrypoints.len(),
    );
    let phases: Vec<String> = summary
        .phases
        .iter()
        .map(|phase| {
            if phase.flags.is_empty() {
                format!("{} {}", phase.name, phase.duration)
            } else {
                format!("{} {} [{}]", phase.name, phase.duration, phase.flags.join(", "))
            }
        })
        .collect();
    println!("  phases:   {}", phases.join(", "));
    println!(
        "  defaults: {} at {} traces/s, error rate {}",
        summary.default_duration, summary.default_rate, summary.default_error_rate
    );
    Ok(ExitCode::SUCCESS)
}
