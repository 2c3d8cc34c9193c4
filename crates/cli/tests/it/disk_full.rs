//! A full disk under a running capture, on a real small tmpfs: the capture
//! keeps running, refuses with retryable codes while it cannot write,
//! resumes when space returns, and keeps every item it acknowledged.
//!
//! These tests mount a tmpfs, so they run as root (as CI does); they fail,
//! not skip, when the mount is refused.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tape_otlp::{ExportRequest, Signal};
use tape_session::{SessionId, SessionStore};
use tape_store::LocalStore;
use tape_testkit::tmpfs::Tmpfs;

/// A running `otlp-tape capture`, its stderr collected.
pub(crate) struct Capturing {
    pub(crate) child: Child,
    pub(crate) http: String,
    pub(crate) stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

pub(crate) fn spawn_capture(store: &Path, cwd: &Path, args: &[&str]) -> Capturing {
    use std::io::{BufRead, BufReader};
    let mut command = Command::new(assert_cmd::cargo::cargo_bin("otlp-tape"));
    command.arg("--store").arg(store).arg("capture").args(["--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0"]);
    command.args(args).current_dir(cwd).stdout(Stdio::piped()).stderr(Stdio::piped());
    for name in ["OTLP_TAPE_STORE", "CAPTURE_MAX_SIZE_MB", "CAPTURE_MAX_DURATION_MINUTES", "OTLP_TAPE_SPOOL_DIR"] {
        command.env_remove(name);
    }
    let mut child = command.spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut http = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.split("OTLP/HTTP on ").nth(1) {
            let addr: String = rest.chars().take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':').collect();
            http = Some(format!("http://{}", addr.trim_end_matches('.')));
            break;
        }
    }
    let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let collected = std::sync::Arc::clone(&stderr);
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            collected.lock().unwrap().push_str(&line);
            collected.lock().unwrap().push('\n');
        }
    });
    Capturing { child, http: http.expect("capture did not start"), stderr }
}

/// What one export got back.
#[derive(Debug)]
pub(crate) enum Answer {
    Acknowledged,
    Refused {
        status: u16,
        retry_after: Option<String>,
    },
    /// No answer: the capture is gone.
    Gone,
}

impl Capturing {
    pub(crate) fn post(&self, payload: Vec<u8>) -> Answer {
        let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
        let url = format!("{}{}", self.http, Signal::Traces.http_path());
        match client.post(url).header("content-type", "application/x-protobuf").body(payload).send() {
            Ok(response) if response.status() == 200 => Answer::Acknowledged,
            Ok(response) => Answer::Refused {
                status: response.status().as_u16(),
                retry_after: response
                    .headers()
                    .get("retry-after")
                    .map(|value| value.to_str().unwrap_or_default().to_owned()),
            },
            Err(_) => Answer::Gone,
        }
    }

    fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    pub(crate) fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let status = self.child.wait().unwrap();
        let stderr = self.stderr.lock().unwrap().clone();
        (status, stderr)
    }
}

pub(crate) const SPANS_PER_REQUEST: u64 = 200;

pub(crate) fn traces(n: u64) -> Vec<u8> {
    ExportRequest::Traces(tape_otlp::sample::traces("checkout", SPANS_PER_REQUEST, n * 1_000_000)).encode_protobuf()
}

/// Spans the reader finds in session `id`, and whether its metadata.json
/// parses; `None` when the session cannot be read at all.
pub(crate) fn readable_spans(store: &Path, id: &str) -> Option<u64> {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        use futures::TryStreamExt;
        let store = LocalStore::new(store);
        let metadata = store.read_metadata(&SessionId::new(id).unwrap()).await.ok()?;
        let records: Vec<_> = tape_session::read_session(&store, &metadata, |_| true).try_collect().await.ok()?;
        Some(records.iter().map(|(_, record)| record.item_count).sum())
    })
}

/// Fills the disk under a capture, frees it, and checks that every span
/// acknowledged before, during and after is in the session.
fn full_disk_under_capture(extra: &[&str]) {
    let durable = extra.contains(&"--durable");
    let mut refused = 0u64;
    let tmpfs = Tmpfs::mount("4m");
    let cwd = tempfile::tempdir().unwrap();
    let filler = tmpfs.fill(1024 * 1024);
    let mut args = vec!["--session-id", "full", "--compression-level", "0", "--flush-interval", "50ms"];
    args.extend_from_slice(extra);
    let mut capturing = spawn_capture(tmpfs.path(), cwd.path(), &args);

    // Fill what is left, until the capture has refused a few requests in a row.
    let mut acknowledged = 0u64;
    let mut refusals = Vec::new();
    let mut n = 0;
    while refusals.len() < 3 && n < 400 {
        n += 1;
        match capturing.post(traces(n)) {
            Answer::Acknowledged => {
                acknowledged += SPANS_PER_REQUEST;
                refusals.clear();
            }
            Answer::Refused { status, retry_after } => {
                refused += SPANS_PER_REQUEST;
                refusals.push((status, retry_after));
            }
            Answer::Gone => break,
        }
    }
    let running_when_full = capturing.is_running();

    // Space comes back: the capture takes requests again, as soon as it retries.
    std::fs::remove_file(&filler).unwrap();
    let mut resumed = false;
    let mut after = 0u64;
    for _ in 0..60 {
        if !capturing.is_running() {
            break;
        }
        n += 1;
        match capturing.post(traces(n)) {
            Answer::Acknowledged => {
                acknowledged += SPANS_PER_REQUEST;
                after += 1;
                resumed = true;
                if after == 5 {
                    break;
                }
            }
            // A client waits as Retry-After asks before it sends again.
            Answer::Refused { retry_after, .. } => {
                refused += SPANS_PER_REQUEST;
                let seconds: u64 = retry_after.and_then(|value| value.parse().ok()).unwrap_or(1);
                std::thread::sleep(Duration::from_secs(seconds));
            }
            Answer::Gone => break,
        }
    }
    let (status, stderr) = capturing.terminate();
    let readable = readable_spans(tmpfs.path(), "full");
    eprintln!(
        "full disk ({extra:?}): {acknowledged} spans acknowledged, {readable:?} readable; refusals {refusals:?}; \
         running when full: {running_when_full}; resumed: {resumed}"
    );

    assert!(running_when_full, "the capture stopped when the disk filled: {stderr}");
    assert_eq!(refusals.len(), 3, "the disk never filled: {acknowledged} spans acknowledged");
    for (status, retry_after) in &refusals {
        assert_eq!(*status, 503, "a full disk is answered with 503");
        assert!(retry_after.is_some(), "a 503 for a full disk says when to retry");
    }
    assert!(resumed, "the capture did not resume once space came back: {stderr}");
    assert!(status.success(), "capture failed: {stderr}");
    let metadata = std::fs::read(tmpfs.path().join("sessions/full/metadata.json")).unwrap();
    let metadata: serde_json::Value = serde_json::from_slice(&metadata).expect("metadata.json parses");
    assert_eq!(metadata["status"], "completed");
    let readable = readable.expect("the session reads");
    if durable {
        // A durable request refused because its sync failed may still be
        // written once the store works: sent again, it is recorded twice,
        // never lost. Only the requests refused that way can be extra.
        assert!(readable >= acknowledged, "{readable} spans readable of {acknowledged} acknowledged");
        assert!(
            readable - acknowledged <= refused,
            "{readable} readable, {acknowledged} acknowledged, {refused} refused"
        );
    } else {
        assert_eq!(readable, acknowledged, "every acknowledged span is readable, and nothing refused is");
    }
    crate::tape(tmpfs.path()).current_dir(cwd.path()).args(["sessions", "verify", "full"]).assert().success();
}

#[test]
fn a_full_disk_refuses_with_503_resumes_and_keeps_every_acknowledged_span() {
    full_disk_under_capture(&[]);
}

#[test]
fn a_full_disk_under_a_durable_capture_keeps_every_acknowledged_span() {
    full_disk_under_capture(&["--durable"]);
}

#[test]
fn a_full_disk_under_a_joined_writer_refuses_with_503_resumes_and_seals_every_acknowledged_span() {
    full_disk_under_capture(&["--join", "--writer-id", "edge-1"]);
}

/// Every file under `dir` but the filler, relative to it.
fn files_in(dir: &Path) -> Vec<String> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                pending.push(entry.path());
            } else if entry.file_name() != "filler" {
                files.push(entry.path().strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    files.sort();
    files
}

#[test]
fn seed_import_and_annotations_on_a_full_disk_fail_cleanly_and_keep_what_was_there() {
    let tmpfs = Tmpfs::mount("4m");
    let store = tmpfs.path();
    crate::import_samples(store, "kept");
    crate::tape(store)
        .args(["annotations", "add", "--session", "kept", "--key", "test.phase.baseline", "--from", "0s"])
        .args(["--until", "2s"])
        .assert()
        .success();
    let before = files_in(store);
    let metadata_before = std::fs::read(store.join("sessions/kept/metadata.json")).unwrap();
    let annotations_before = std::fs::read(store.join("sessions/kept/annotations.jsonl")).unwrap();
    let filler = tmpfs.fill(64 * 1024);

    let output = crate::tape(store)
        .args(["seed", "--pattern", "basic-topology", "--duration", "60s", "--rate", "50", "--session-id", "big"])
        .output()
        .unwrap();
    assert!(!output.status.success(), "a seed larger than the free space succeeded");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("No space left on device"), "{stderr}");

    let big = tempfile::tempdir().unwrap();
    let lines = std::fs::read_to_string(crate::data("traces.jsonl")).unwrap();
    let file = big.path().join("traces.jsonl");
    std::fs::write(&file, lines.repeat(400)).unwrap();
    let output = crate::tape(store)
        .args(["import", "--format", "otlp-json", "--session-id", "imported"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!output.status.success(), "an import larger than the free space succeeded");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("No space left on device"), "{stderr}");

    // Fill the last bytes, so that no annotation fits.
    let mut rest = std::fs::OpenOptions::new().append(true).open(&filler).unwrap();
    while std::io::Write::write_all(&mut rest, &[0u8; 4096]).is_ok() {}
    drop(rest);
    let output = crate::tape(store)
        .args(["annotations", "add", "--session", "kept", "--key", "test.phase.failure", "--from", "2s"])
        .args(["--until", "4s", "--description", &"a long description ".repeat(400)])
        .output()
        .unwrap();
    assert!(!output.status.success(), "an annotation was added to a full disk");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("annotations.jsonl") && stderr.contains("No space left on device"), "{stderr}");

    // Nothing half-written is left, and what was there is as it was.
    assert_eq!(files_in(store), before, "files were left behind or removed");
    assert_eq!(std::fs::read(store.join("sessions/kept/metadata.json")).unwrap(), metadata_before);
    assert_eq!(std::fs::read(store.join("sessions/kept/annotations.jsonl")).unwrap(), annotations_before);
    std::fs::remove_file(&filler).unwrap();
    crate::tape(store).args(["sessions", "verify", "kept"]).assert().success();
}

#[test]
fn repair_rebuilds_a_metadata_json_that_a_full_disk_left_empty() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    crate::import_samples(store, "emptied");
    std::fs::write(store.join("sessions/emptied/metadata.json"), b"").unwrap();
    let output = crate::tape_in(store).args(["sessions", "repair", "emptied"]).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("rebuilt metadata.json from the blobs"), "{stdout}");
    let show = crate::tape_json(store, &["sessions", "show", "emptied"]);
    assert_eq!(show["status"], "completed");
    assert_eq!(show["capturedTraces"], 48);
    assert_eq!(show["capturedMetrics"], 9);
    assert_eq!(show["capturedLogs"], 24);
    crate::tape(store).args(["sessions", "verify", "emptied"]).assert().success();
}
