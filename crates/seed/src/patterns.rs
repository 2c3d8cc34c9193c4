//! Patterns: reading the one a seed names (a built-in pattern's name or a
//! pattern file), and their summaries as `patterns list | show | validate`
//! and the control API show them.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use tape_seed_generator::{BUILTIN_PATTERNS, Pattern, Value, builtin_pattern, format_duration};
use tape_session::SessionType;

use crate::error::PatternError;

/// Traces per second of a seed when neither its config nor the pattern gives one.
pub const DEFAULT_RATE: f64 = 10.0;
/// Error rate of a seed when neither its config nor the pattern gives one.
pub const DEFAULT_ERROR_RATE: f64 = 0.05;

/// The names of the built-in patterns, comma-separated.
pub fn builtin_names() -> String {
    BUILTIN_PATTERNS.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(", ")
}

/// Reads the pattern `spec` names: a built-in pattern's name, else a path
/// to a pattern file.
pub fn load(spec: &str) -> Result<Pattern, PatternError> {
    if let Some(text) = builtin_pattern(spec) {
        return Pattern::parse(spec, text)
            .map_err(|source| PatternError::BrokenBuiltIn { name: spec.to_owned(), source });
    }
    let path = Path::new(spec);
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Pattern::parse(&path.display().to_string(), &text)?),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            Err(PatternError::Unknown { spec: spec.to_owned(), built_in: builtin_names() })
        }
        Err(source) => Err(PatternError::Read { path: path.display().to_string(), source }),
    }
}

/// One built-in pattern as `patterns list` (and `GET /api/v1/patterns`)
/// shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListEntry {
    /// Its name.
    pub name: String,
    /// The type of the sessions it gives.
    pub session_type: SessionType,
    /// Its phases' names, in order.
    pub phases: Vec<String>,
    /// Its default duration, such as `30s`.
    pub default_duration: String,
    /// Its description.
    pub description: String,
}

/// A pattern as `patterns show --output json` and `patterns validate` show it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PatternSummary {
    /// Its name.
    pub name: String,
    /// Its description.
    pub description: String,
    /// The type of the sessions it gives.
    pub session_type: SessionType,
    /// `built-in`, or the file it was read from.
    pub source: String,
    /// SHA-256 of its source text.
    pub sha256: String,
    /// Its default duration, such as `30s`.
    pub default_duration: String,
    /// Its default duration in nanoseconds.
    pub default_duration_nanos: u64,
    /// Traces per second unless a seed gives its own.
    pub default_rate: f64,
    /// Error rate unless a seed gives its own.
    pub default_error_rate: f64,
    /// Its services.
    pub services: Vec<ServiceSummary>,
    /// Its entrypoints.
    pub entrypoints: Vec<EntrypointSummary>,
    /// Its phases.
    pub phases: Vec<PhaseSummary>,
    /// The flags its phases enable.
    pub flags: Vec<String>,
}

/// A service of a pattern.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSummary {
    /// Its name.
    pub name: String,
    /// Its resource attributes.
    pub resource: BTreeMap<String, serde_json::Value>,
}

/// An entrypoint of a pattern.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EntrypointSummary {
    /// Its name.
    pub name: String,
    /// Its weight among the entrypoints.
    pub weight: u32,
    /// The service of its root span.
    pub service: String,
    /// The operation of its root span.
    pub operation: String,
    /// The most spans one trace of it can have.
    pub max_spans: u64,
}

/// A phase of a pattern.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PhaseSummary {
    /// Its name.
    pub name: String,
    /// Its length at the pattern's default duration.
    pub duration: String,
    /// The same in nanoseconds.
    pub duration_nanos: u64,
    /// The flags it enables.
    pub flags: Vec<String>,
    /// Its description.
    pub description: String,
}

fn json_value(value: &Value) -> serde_json::Value {
    match value {
        Value::String(text) => serde_json::json!(text),
        Value::Bool(flag) => serde_json::json!(flag),
        Value::Int(number) => serde_json::json!(number),
        Value::Double(number) => serde_json::json!(number),
    }
}

/// The summary of `pattern`, read from `source` (`built-in` or a file).
pub fn summary(pattern: &Pattern, source: String) -> PatternSummary {
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

/// The built-in patterns, as `patterns list --output json` shows them.
pub fn summaries() -> Result<Vec<ListEntry>, PatternError> {
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
/// source text (`yaml`); `None` when no built-in pattern has that name.
pub fn built_in(name: &str) -> Option<serde_json::Value> {
    builtin_pattern(name)?;
    let pattern = load(name).ok()?;
    let mut value = serde_json::to_value(summary(&pattern, "built-in".to_owned())).ok()?;
    value["yaml"] = serde_json::Value::String(pattern.source.clone());
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_pattern_is_listed_and_shown() {
        let entries = summaries().unwrap();
        assert_eq!(entries.len(), BUILTIN_PATTERNS.len());
        for entry in &entries {
            let shown = built_in(&entry.name).unwrap();
            assert_eq!(shown["name"], entry.name.as_str());
            assert!(shown["yaml"].as_str().is_some_and(|yaml| !yaml.is_empty()));
        }
        assert!(built_in("no-such-pattern").is_none());
    }

    #[test]
    fn an_unknown_pattern_names_the_built_in_ones() {
        let error = load("no-such-pattern").unwrap_err().to_string();
        assert!(
            error.starts_with("unknown pattern \"no-such-pattern\": it is neither a built-in pattern ("),
            "{error}"
        );
        assert!(error.contains("basic-topology"), "{error}");
    }
}
