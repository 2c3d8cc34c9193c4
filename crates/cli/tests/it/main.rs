//! End-to-end tests: the real `otlp-tape` binary in a temporary directory.

mod annotations;
mod api_limits;
mod bad_input;
mod bench;
mod browse_api;
mod capture;
mod compare_api;
mod compare_cli;
mod compare_pipeline;
mod demo;
mod disk_full;
mod events_api;
mod export_api;
mod export_parquet;
mod export_s3;
mod import_export;
mod join;
mod join_faults;
mod kubernetes;
mod merge;
mod messages;
mod openapi;
mod prune;
mod repair;
mod replay;
mod replay_passes;
mod replay_report;
mod s3;
mod seed;
mod serve;
mod sessions;
mod shard;
mod shard_resume;
mod stack;
mod store_paths;
mod timeline;
mod training_data;
mod web;
mod web_report;
mod web_ui;
mod writers_readers;

use std::path::{Path, PathBuf};

use assert_cmd::{Command, assert::Assert};

/// Every file under `dir`, relative to it.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&current) else { continue };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    files.sort();
    files
}

/// The sample OTLP files shipped in `tests/data`.
pub fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data").join(name)
}

/// `otlp-tape` with its store in `store` and no store settings from the
/// environment of whoever runs the tests.
pub fn tape(store: &Path) -> Command {
    let mut command = Command::cargo_bin("otlp-tape").unwrap();
    command.arg("--store").arg(store);
    for name in [
        "OTLP_TAPE_STORE",
        "MINIO_ENDPOINT",
        "MINIO_ACCESS_KEY",
        "MINIO_SECRET_KEY",
        "MINIO_BUCKET",
        "RUST_LOG",
        "CLICKHOUSE_URL",
        "CLICKHOUSE_USER",
        "CLICKHOUSE_PASSWORD",
        "CLICKHOUSE_DATABASE",
    ] {
        command.env_remove(name);
    }
    command
}

/// Runs `otlp-tape --output json ARGS` and parses its stdout.
pub fn tape_json(store: &Path, args: &[&str]) -> serde_json::Value {
    let output = tape(store).args(["--output", "json"]).args(args).output().unwrap();
    assert!(output.status.success(), "otlp-tape {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Imports the three sample files as session `id`.
pub fn import_samples(store: &Path, id: &str) -> serde_json::Value {
    let files = [data("traces.jsonl"), data("metrics.jsonl"), data("logs.jsonl")];
    let mut args = vec!["import", "--format", "otlp-json", "--session-id", id];
    let files: Vec<String> = files.iter().map(|path| path.display().to_string()).collect();
    args.extend(files.iter().map(String::as_str));
    tape_json(store, &args)
}

/// Imports the three sample files as session `id` and exports that session as
/// OTLP protobuf into the folder `out` of `store`, whose path it hands back.
pub fn export_samples_as_proto(store: &Path, id: &str, out: &str) -> PathBuf {
    import_samples(store, id);
    let out = store.join(out);
    tape_json(store, &["export", "--session", id, "--format", "otlp-proto", "--out", out.to_str().unwrap()]);
    out
}

/// Runs `command`, asserts that it fails and that its stderr holds each of
/// `fragments`, and hands back the outcome for further checks.
pub fn fails(command: &mut Command, fragments: &[&str]) -> Assert {
    stderr_holds(command.assert().failure(), fragments)
}

/// Runs `command`, asserts that it exits with `code` and that its stderr
/// holds each of `fragments`, and hands back the outcome for further checks.
pub fn fails_with(command: &mut Command, code: i32, fragments: &[&str]) -> Assert {
    stderr_holds(command.assert().code(code), fragments)
}

fn stderr_holds(assert: Assert, fragments: &[&str]) -> Assert {
    fragments.iter().fold(assert, |assert, fragment| assert.stderr(predicates::str::contains(*fragment)))
}

/// `otlp-tape` with its store in `dir` and `dir` as its working directory.
pub fn tape_in(dir: &Path) -> Command {
    let mut command = tape(dir);
    command.current_dir(dir);
    command
}

/// Runs `command`, asserts that it succeeds and that its stdout holds each of
/// `fragments`, and hands back the outcome for further checks.
pub fn succeeds(command: &mut Command, fragments: &[&str]) -> Assert {
    fragments
        .iter()
        .fold(command.assert().success(), |assert, fragment| assert.stdout(predicates::str::contains(*fragment)))
}

/// Rewrites session `id`'s `metadata.json` after `change`, as the tests'
/// stand-in for a session damaged or made elsewhere.
pub fn edit_metadata(store: &Path, id: &str, change: impl FnOnce(&mut serde_json::Value)) {
    let path = store.join("sessions").join(id).join("metadata.json");
    let mut metadata: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    change(&mut metadata);
    std::fs::write(&path, serde_json::to_vec_pretty(&metadata).unwrap()).unwrap();
}

/// Seeds `pattern` for `duration` as session `id` in `store`.
pub fn seed_session(store: &Path, pattern: &str, duration: &str, id: &str) {
    tape(store).args(["seed", "--pattern", pattern, "--duration", duration, "--session-id", id]).assert().success();
}

/// Runs `wait` (a wait for process `pid`) on a thread and returns what it
/// returns; if it has not returned after `limit`, kills the process and
/// fails the test with `hang`: a guard against a hang, not a measure of time.
pub fn wait_within<T: Send + 'static>(
    pid: u32,
    limit: std::time::Duration,
    hang: &str,
    wait: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(wait());
    });
    let Ok(result) = tokio::task::block_in_place(|| receiver.recv_timeout(limit)) else {
        let _ = std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        panic!("{hang}");
    };
    result
}
