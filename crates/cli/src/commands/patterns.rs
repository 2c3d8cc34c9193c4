//! `otlp-tape patterns list | show | validate`: the patterns of
//! [`tape_seed::patterns`], printed.

use std::path::Path;
use std::process::ExitCode;

use tape_seed::patterns::{summaries, summary};
use tape_seed_generator::{Pattern, builtin_pattern};

use crate::cli::OutputFormat;
use crate::output::print_json;

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
    let pattern = tape_seed::patterns::load(spec)?;
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
