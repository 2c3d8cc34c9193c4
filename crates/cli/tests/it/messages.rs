//! Messages a user reads, word for word: a store in `.`, counts of one,
//! durations, and every error of a pattern file.

use std::path::Path;
use std::process::Output;

use assert_cmd::Command;

use crate::data;

/// `otlp-tape --store . ARGS` run in `dir`.
fn in_dot(dir: &Path, args: &[&str]) -> Output {
    let mut command = Command::cargo_bin("otlp-tape").unwrap();
    command.current_dir(dir).args(["--store", "."]).args(args);
    for name in ["OTLP_TAPE_STORE", "MINIO_ENDPOINT", "RUST_LOG", "CLICKHOUSE_URL"] {
        command.env_remove(name);
    }
    let output = command.output().unwrap();
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    output
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

#[test]
fn messages_read_right_for_the_store_dot_and_counts_of_one() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    assert_eq!(stderr(&in_dot(dir, &["sessions", "list"])), "No sessions in .\n");

    let traces = data("traces.jsonl");
    let output = in_dot(dir, &["import", "--format", "otlp-json", "--session-id", "one", traces.to_str().unwrap()]);
    assert_eq!(
        stderr(&output),
        "Imported 1 file into session one in .: 48 spans, 0 data points, 0 log records in 6 requests.\n"
    );
    in_dot(dir, &["annotations", "add", "--session", "one", "--key", "incident", "--from", "0s", "--until", "1s"]);
    let listed = stderr(&in_dot(dir, &["annotations", "list", "--session", "one"]));
    assert_eq!(listed.lines().last(), Some("1 annotation of session one in annotations.jsonl."), "{listed}");

    assert_eq!(stderr(&in_dot(dir, &["sessions", "delete", "one"])), "Deleted session one from .\n");
}

/// `3.77s`: two decimals and no space, like the durations the flags take.
fn is_seconds(text: &str) -> bool {
    let Some(number) = text.strip_suffix('s') else { return false };
    let Some((whole, fraction)) = number.split_once('.') else { return false };
    !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.len() == 2
        && fraction.bytes().all(|b| b.is_ascii_digit())
}

#[test]
fn durations_are_written_like_3_77s() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let seeded = stderr(&in_dot(dir, &["seed", "--duration", "2s", "--seed", "1", "--session-id", "s"]));
    let first = seeded.lines().next().unwrap();
    let took = first.split(" in ").nth(1).and_then(|rest| rest.split(':').next()).unwrap();
    assert!(is_seconds(took), "{first}");

    let output = in_dot(dir, &["replay", "--session", "s", "--dry-run", "--endpoint", "http://127.0.0.1:9"]);
    let text = String::from_utf8(output.stdout).unwrap();
    let span = text.lines().find(|line| line.starts_with("Time span")).unwrap();
    let inner = span.rsplit_once('(').unwrap().1.strip_suffix(')').unwrap();
    assert!(is_seconds(inner), "{span}");
    let pacing = text.lines().find(|line| line.starts_with("Pacing")).unwrap();
    assert!(is_seconds(pacing.rsplit_once("about ").unwrap().1), "{pacing}");
}

#[test]
fn patterns_validate_lists_every_error_in_file_order() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "\
name: bad
metrics:
  interval: 1500ms
services:
  - name: web
phases:
  - name: steady
    duration: 10s
    flags: [\"slow down\"]
entrypoints:
  - name: home
    span:
      service: nowhere
      http: { method: GET, route: / }
      repeat: 0
",
    )
    .unwrap();
    let output = crate::tape(dir.path()).args(["patterns", "validate"]).arg(&bad).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let name = bad.display();
    assert_eq!(
        stderr(&output),
        format!(
            "{name}:3:13: metrics.interval: the metrics interval must be a whole number of seconds\n\
             {name}:9:12: phases[0].flags: flag \"slow down\" must be letters, digits, '_' or '-'\n\
             {name}:13:16: entrypoints[0].span.service: unknown service \"nowhere\"; the services are web\n\
             {name}:15:15: entrypoints[0].span.repeat: repeat 0 is outside 1..1000\n\
             error: {name} is not a valid pattern: 4 errors (listed above)\n"
        )
    );
    let output = crate::tape(dir.path()).args(["--output", "json", "patterns", "validate"]).arg(&bad).output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["valid"], false);
    assert_eq!(report["errors"].as_array().unwrap().len(), 4, "{report}");
    assert_eq!(report["error"], report["errors"][0]);
}
