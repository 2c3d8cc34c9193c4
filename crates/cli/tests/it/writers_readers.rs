//! Reading a session of several writers (`capture --join`): replay and
//! export refuse it until it is sealed, naming the writers still active;
//! `sessions verify` of a sealed one whose blob was deleted names the
//! writer and the blob.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};

use serde_json::Value;

use crate::replay::{SEED_ITEMS, replay, run_to_end, seed, stderr};

/// A running `capture --join` writer: the process and its OTLP/HTTP URL.
struct Writer {
    child: Child,
    http: String,
    /// Its stdout, read to the end when it stops (its summary goes there).
    stdout: BufReader<std::process::ChildStdout>,
}

/// Starts writer `writer` of session `session` in `dir` and waits until it
/// listens.
fn join(dir: &Path, session: &str, writer: &str) -> Writer {
    let mut command = std::process::Command::new(assert_cmd::cargo::cargo_bin("otlp-tape"));
    command
        .arg("--store")
        .arg(dir)
        .current_dir(dir)
        .env_remove("OTLP_TAPE_STORE")
        .env_remove("OTLP_TAPE_SPOOL_DIR")
        .args(["--output", "json", "capture", "--grpc", "off", "--http", "127.0.0.1:0", "--join"])
        .args(["--session-id", session, "--writer-id", writer, "--flush-interval", "100ms", "--spool-dir", "spool"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = command.spawn().unwrap();
    let mut first = String::new();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    stdout.read_line(&mut first).unwrap();
    let listening: Value =
        serde_json::from_str(&first).unwrap_or_else(|_| panic!("writer {writer} did not start: {first:?}"));
    Writer { child, http: format!("http://{}", listening["http"].as_str().unwrap()), stdout }
}

impl Writer {
    /// Stops it as Ctrl-C does and waits until it has.
    fn stop(mut self) {
        let status = std::process::Command::new("kill").args(["-INT", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
        let pid = self.child.id();
        let exited = crate::wait_within(pid, std::time::Duration::from_mins(1), "a writer did not stop", move || {
            std::io::copy(&mut self.stdout, &mut std::io::sink()).unwrap();
            self.child.wait().unwrap()
        });
        assert!(exited.success(), "{exited:?}");
    }
}

fn run(command: &mut assert_cmd::Command) -> std::process::Output {
    tokio::task::block_in_place(|| command.output().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_and_export_refuse_a_session_whose_writers_are_active_and_read_it_once_sealed() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    seed(dir, "S");
    let w1 = join(dir, "J", "w1");
    let w2 = join(dir, "J", "w2");
    // Writer w1 records the seed and stops: its blobs are committed, but
    // the session stays active while w2 writes.
    let sent =
        run_to_end(&mut replay(dir, &["--session", "S", "--speed", "max", "--endpoint", &w1.http, "--no-progress"]));
    assert!(sent.status.success(), "{}", stderr(&sent));
    w1.stop();

    let out = dir.join("out");
    let export = run(crate::tape(dir).args(["export", "--session", "J", "--format", "otlp-json", "--out"]).arg(&out));
    assert_eq!(export.status.code(), Some(2), "{}", stderr(&export));
    for fragment in ["cannot export session J", "listed only once it is sealed", "writers still active: w2"] {
        assert!(stderr(&export).contains(fragment), "{}", stderr(&export));
    }
    assert!(crate::files_under(&out).is_empty(), "nothing was written: {:?}", crate::files_under(&out));
    let refused = run_to_end(&mut replay(dir, &["--session", "J", "--speed", "max", "--endpoint", &w2.http]));
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    for fragment in ["cannot replay session J", "writers still active: w2", "sessions seal J"] {
        assert!(stderr(&refused).contains(fragment), "{}", stderr(&refused));
    }

    // Through the API: 409, naming the writer.
    let served = crate::serve::Served::start(dir, &[]);
    let post = reqwest::Method::POST;
    for (path, body) in [
        ("/api/v1/exports", serde_json::json!({"session": "J", "format": "parquet", "out": "s3://bucket/j"})),
        ("/api/v1/replays", serde_json::json!({"session": "J", "endpoint": w2.http})),
    ] {
        let (status, answer) = served.call(post.clone(), path, Some(body)).await;
        assert_eq!(status, reqwest::StatusCode::CONFLICT, "{path}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains("writers still active: w2"), "{path}: {message}");
    }
    drop(served);

    // The last writer to stop seals it: now both read everything.
    w2.stop();
    let exported =
        crate::tape_json(dir, &["export", "--session", "J", "--format", "otlp-json", "--out", out.to_str().unwrap()]);
    assert_eq!(exported["files"].as_array().unwrap().len(), 3, "{exported}");
    let plan: Value = serde_json::from_slice(
        &run_to_end(&mut replay(dir, &["--session", "J", "--dry-run", "--output", "json"])).stdout,
    )
    .unwrap();
    for (index, signal) in ["traces", "metrics", "logs"].iter().enumerate() {
        assert_eq!(plan["records"][signal]["items"], SEED_ITEMS[index], "{signal}: {plan}");
    }

    // One writer's blob deleted after sealing: verify names it and its writer.
    let metadata: Value =
        serde_json::from_slice(&std::fs::read(dir.join("sessions/J/metadata.json")).unwrap()).unwrap();
    let key = metadata["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|blob| blob["key"].as_str().unwrap().to_owned())
        .find(|key| key.contains("-w1-"))
        .unwrap();
    std::fs::remove_file(dir.join("sessions/J").join(&key)).unwrap();
    let verify = run(crate::tape(dir).args(["sessions", "verify", "J"]));
    assert_eq!(verify.status.code(), Some(1), "{}", stderr(&verify));
    let printed = String::from_utf8_lossy(&verify.stdout);
    assert!(printed.contains(&format!("MISMATCH writer w1: session J: blob {key} not found")), "{printed}");
    assert!(stderr(&verify).contains("session J failed verification: 1 problem"), "{}", stderr(&verify));
}
