//! Request bodies of the control API as command-line options: a JSON object
//! `{"maxSizeMb": 10, "flags": ["a", "b"], "durable": true}` becomes
//! `--max-size-mb 10 --flags a --flags b --durable`, parsed by the very
//! parser of the command, so the API validates exactly as the CLI does.
//! Each operation has an allow-list: options that name files or change
//! where data goes on this host (`--store`, `--report`, `--checkpoint`,
//! `--live`, ...) cannot be set through the API.

use clap::Parser;
use serde_json::{Map, Value};

use crate::cli::{CaptureArgs, Cli, Command, ReplayArgs, SeedArgs};

/// The options a capture started through the API may set.
pub const CAPTURE_OPTIONS: &[&str] = &[
    "sessionId",
    "description",
    "diagnosticSessionId",
    "flags",
    "signals",
    "maxSizeMb",
    "maxDuration",
    "durable",
    "compressionLevel",
    "queueSizeMb",
    "flushInterval",
    "blobMaxAge",
    "blobMaxSizeMb",
];

/// The options a replay started through the API may set.
pub const REPLAY_OPTIONS: &[&str] = &[
    "session",
    "strategy",
    "filterType",
    "endpoint",
    "protocol",
    "header",
    "compression",
    "timeout",
    "insecure",
    "speed",
    "timestamps",
    "loop",
    "duration",
    "traces",
    "metrics",
    "logs",
    "services",
    "from",
    "until",
    "phase",
    "rateLimit",
    "concurrency",
    "regenerateIds",
    "keepIds",
    "idSeed",
    "maxFailures",
    "maxAttempts",
    "skipCorrupt",
];

/// The options a seed started through the API may set.
pub const SEED_OPTIONS: &[&str] =
    &["pattern", "duration", "preset", "rate", "errorRate", "seed", "start", "signals", "sessionId", "description"];

/// A request body that is not a valid set of options; the message names
/// the option.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct OptionsError(pub String);

/// `maxSizeMb` → `max-size-mb`.
fn kebab(name: &str) -> String {
    let mut flag = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            flag.push('-');
            flag.push(c.to_ascii_lowercase());
        } else {
            flag.push(c);
        }
    }
    flag
}

/// The arguments for `body` (a JSON object, or null for none) of an
/// operation that allows `allowed`.
fn arguments(body: &Value, allowed: &[&str]) -> Result<Vec<String>, OptionsError> {
    let empty = Map::new();
    let object = match body {
        Value::Null => &empty,
        Value::Object(object) => object,
        _ => return Err(OptionsError("the request body must be a JSON object of options".to_owned())),
    };
    let mut args = Vec::new();
    for (name, value) in object {
        if !allowed.contains(&name.as_str()) {
            return Err(OptionsError(format!("unknown option {name:?}; the options here are: {}", allowed.join(", "))));
        }
        let flag = format!("--{}", kebab(name));
        let mut push = |value: &Value| -> Result<(), OptionsError> {
            match value {
                Value::String(text) => args.extend([flag.clone(), text.clone()]),
                Value::Number(number) => args.extend([flag.clone(), number.to_string()]),
                _ => return Err(OptionsError(format!("option {name:?} must be a string, a number or a list of them"))),
            }
            Ok(())
        };
        match value {
            Value::Bool(true) => args.push(flag.clone()),
            Value::Bool(false) | Value::Null => {}
            Value::Array(items) => {
                for item in items {
                    push(item)?;
                }
            }
            other => push(other)?,
        }
    }
    Ok(args)
}

/// Parses `args` as options of `command`; clap's message becomes the error,
/// with its usage lines left out.
fn parse(command: &str, args: Vec<String>) -> Result<Command, OptionsError> {
    let command_line = ["otlp-tape".to_owned(), command.to_owned()].into_iter().chain(args);
    match Cli::try_parse_from(command_line) {
        Ok(cli) => Ok(cli.command),
        Err(error) => {
            let text = error.to_string();
            let message: Vec<&str> = text
                .lines()
                .map(str::trim)
                .filter(|line| {
                    !line.is_empty() && !line.starts_with("Usage:") && !line.starts_with("For more information")
                })
                .collect();
            let message = message.join(" ");
            Err(OptionsError(message.strip_prefix("error: ").unwrap_or(&message).to_owned()))
        }
    }
}

/// The capture options of `body`.
pub fn capture(body: &Value) -> Result<CaptureArgs, OptionsError> {
    match parse("capture", arguments(body, CAPTURE_OPTIONS)?)? {
        Command::Capture(args) => Ok(args),
        _ => unreachable!("parsed as capture"),
    }
}

/// The replay options of `body` (`session` defaults to `auto`).
pub fn replay(body: &Value) -> Result<ReplayArgs, OptionsError> {
    match parse("replay", arguments(body, REPLAY_OPTIONS)?)? {
        Command::Replay(args) => Ok(args),
        _ => unreachable!("parsed as replay"),
    }
}

/// The seed options of `body`.
pub fn seed(body: &Value) -> Result<SeedArgs, OptionsError> {
    match parse("seed", arguments(body, SEED_OPTIONS)?)? {
        Command::Seed(args) => Ok(args),
        _ => unreachable!("parsed as seed"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn options_become_flags() {
        let args =
            capture(&json!({"sessionId": "c-1", "flags": ["a", "b"], "maxSizeMb": 10, "durable": true})).unwrap();
        assert_eq!(args.session_id.unwrap().as_str(), "c-1");
        assert_eq!(args.flags, ["a", "b"]);
        assert_eq!(args.max_size_mb, Some(10));
        assert!(args.durable);
        let args = replay(&json!({"session": "auto", "strategy": "largest", "speed": "max", "loop": false})).unwrap();
        assert!(!args.looping);
        let args = seed(&Value::Null).unwrap();
        assert_eq!(args.pattern, "basic-topology");
    }

    #[test]
    fn bad_options_are_named() {
        for (body, expected) in [
            (json!({"store": "/tmp"}), "unknown option \"store\""),
            (json!({"report": "/etc/passwd"}), "unknown option \"report\""),
            (json!({"maxSizeMb": "ten"}), "--max-size-mb"),
            (json!({"sessionId": "a'b"}), "invalid session id"),
            (json!({"flags": [{"x": 1}]}), "must be a string"),
            (json!([1]), "must be a JSON object"),
        ] {
            let error = capture(&body).unwrap_err().to_string();
            assert!(error.contains(expected), "{body}: {error}");
            assert!(!error.contains("Usage"), "{error}");
        }
        let error = replay(&json!({"speed": "0"})).unwrap_err().to_string();
        assert!(error.contains("--speed"), "{error}");
        let error = replay(&json!({"session": "a b"})).unwrap_err().to_string();
        assert!(error.contains("--session"), "{error}");
    }
}
