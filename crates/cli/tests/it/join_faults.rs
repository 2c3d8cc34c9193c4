//! Sessions of several writers under faults: joined captures
//! (`capture --join`) on a directory store on a real small tmpfs that fills
//! up as the last writer seals (the session stays active and recoverable,
//! the seal marker does not stand in the way of a later seal, nothing
//! acknowledged is lost), and a merge into what an interrupted merge left.
//!
//! The tmpfs tests mount one, so they run as root (as CI does).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use tape_testkit::tmpfs::{Tmpfs, available};

use crate::disk_full::{Answer, Capturing, SPANS_PER_REQUEST, readable_spans, spawn_capture, traces};

/// A tmpfs page: the unit in which it hands out space.
const PAGE: u64 = 4096;

/// Fills the file system to the last byte, then frees `pages` pages;
/// returns the filler, to delete when space should come back.
fn fill_but_pages(tmpfs: &Tmpfs, pages: u64) -> PathBuf {
    let filler = tmpfs.fill(0);
    let mut file = std::fs::OpenOptions::new().append(true).open(&filler).unwrap();
    while file.write_all(&[0xa5; PAGE as usize]).is_ok() {}
    let len = file.metadata().unwrap().len() / PAGE * PAGE;
    file.set_len(len - pages * PAGE).unwrap();
    file.sync_all().unwrap();
    filler
}

fn metadata(store: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(store.join("sessions/shared/metadata.json")).unwrap())
        .expect("metadata.json parses")
}

fn manifest(store: &Path, writer: &str) -> Value {
    serde_json::from_slice(&std::fs::read(store.join(format!("sessions/shared/writers/{writer}.json"))).unwrap())
        .expect("the manifest parses")
}

fn signal(capturing: &Capturing, name: &str) {
    let status = Command::new("kill").args([&format!("-{name}"), &capturing.child.id().to_string()]).status();
    assert!(status.unwrap().success(), "cannot send SIG{name}");
}

/// Waits (bounded) until the capture's stderr holds `fragment`.
fn wait_for_stderr(capturing: &Capturing, fragment: &str) {
    let deadline = Instant::now() + Duration::from_mins(1);
    loop {
        let stderr = capturing.stderr.lock().unwrap().clone();
        if stderr.contains(fragment) {
            return;
        }
        assert!(Instant::now() < deadline, "the capture never said {fragment:?}: {stderr}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Two writers, `a` and `b`, join session `shared` on a 4 MiB tmpfs with a
/// long description (so that `metadata.json` takes several pages); `a`
/// records spans and stops, then the disk is filled but for two pages:
/// room for `b`'s final manifest and the seal marker, none for the sealed
/// `metadata.json`. `b` is told to stop and fails to seal. Returns the
/// tmpfs, the filler, `b`, the spans acknowledged and the working
/// directory.
fn last_writer_cannot_seal() -> (Tmpfs, PathBuf, Capturing, u64, tempfile::TempDir) {
    let tmpfs = Tmpfs::mount("4m");
    let store = tmpfs.path();
    let cwd = tempfile::tempdir().unwrap();
    let spool = cwd.path().join("spool");
    let description = "a session of two writers on a small disk; ".repeat(400);
    let join = |writer: &'static str| {
        let mut args = vec!["--join", "--session-id", "shared", "--writer-id", writer, "--compression-level", "0"];
        args.extend(["--flush-interval", "50ms", "--description", &description, "--spool-dir"]);
        args.push(spool.to_str().unwrap());
        spawn_capture(store, cwd.path(), &args)
    };
    let a = join("a");
    let b = join("b");
    let mut acknowledged = 0;
    for n in 1..=5 {
        match a.post(traces(n)) {
            Answer::Acknowledged => acknowledged += SPANS_PER_REQUEST,
            other => panic!("writer a did not take request {n}: {other:?}"),
        }
    }
    let (status, stderr) = a.terminate();
    assert!(status.success(), "writer a failed: {stderr}");
    assert_eq!(manifest(store, "a")["status"], "completed");
    assert_eq!(metadata(store)["status"], "active", "writer b is active");

    let filler = fill_but_pages(&tmpfs, 2);
    assert!(available(store) <= 2 * PAGE, "{} bytes free", available(store));
    signal(&b, "TERM");
    wait_for_stderr(&b, "Cannot finish the session while the store fails");
    (tmpfs, filler, b, acknowledged, cwd)
}

/// Checks the sealed session: both writers, every acknowledged span.
fn assert_sealed(store: &Path, cwd: &Path, acknowledged: u64) {
    let sealed = metadata(store);
    assert_eq!(sealed["status"], "completed", "{sealed}");
    let writers: Vec<&str> =
        sealed["writers"].as_array().unwrap().iter().map(|w| w["writerId"].as_str().unwrap()).collect();
    assert_eq!(writers, ["a", "b"]);
    assert_eq!(readable_spans(store, "shared"), Some(acknowledged), "every acknowledged span is in the session");
    crate::tape(store).current_dir(cwd).args(["sessions", "verify", "shared"]).assert().success();
}

#[test]
fn the_last_writer_seals_once_space_returns_after_metadata_json_did_not_fit() {
    let (tmpfs, filler, mut b, acknowledged, cwd) = last_writer_cannot_seal();
    let store = tmpfs.path();
    // Unsealed but whole: metadata.json as it was, active.
    assert_eq!(metadata(store)["status"], "active");
    std::fs::remove_file(filler).unwrap();
    // b tries again every second, and seals now that metadata.json fits.
    let status = b.child.wait().unwrap();
    wait_for_stderr(&b, "Writer b ");
    let stderr = b.stderr.lock().unwrap().clone();
    assert!(status.success(), "writer b failed: {stderr}");
    assert!(stderr.contains("Writer b was the last to stop and sealed the session (2 writers)"), "{stderr}");
    assert_sealed(store, cwd.path(), acknowledged);
}

#[test]
fn a_writer_that_gives_up_sealing_on_a_full_disk_leaves_no_seal_marker_and_sessions_seal_finishes() {
    let (tmpfs, filler, b, acknowledged, cwd) = last_writer_cannot_seal();
    let store = tmpfs.path();
    // A second SIGTERM gives up while the disk is still full.
    let (status, stderr) = b.terminate();
    assert!(
        !store.join("sessions/shared/writers/.seal").exists(),
        "a seal that failed left its marker behind, in the way of the next seal: {stderr}"
    );
    assert!(!status.success(), "writer b gave up, and says so: {stderr}");
    assert!(stderr.contains("run `otlp-tape sessions repair shared --writer b`"), "{stderr}");
    assert_eq!(metadata(store)["status"], "active", "the session is left unsealed");
    assert_eq!(manifest(store, "b")["status"], "completed", "b wrote its final manifest before sealing");
    std::fs::remove_file(filler).unwrap();
    let output = crate::tape(store).current_dir(cwd.path()).args(["sessions", "seal", "shared"]).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.starts_with("Sealed session shared (completed) with 2 writers"), "{stdout}");
    assert_sealed(store, cwd.path(), acknowledged);
}

/// What a merge killed before its last step leaves (it writes
/// `metadata.json` last): the new session's blobs and manifests, no
/// metadata. Rerunning the merge says so and what to do, through the CLI
/// and the API; once deleted, the merge goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merge_into_what_an_interrupted_merge_left_says_to_delete_it_and_then_works() {
    use reqwest::{Method, StatusCode};

    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    crate::import_samples(store, "one");
    crate::import_samples(store, "two");
    let merge = || {
        let mut command = crate::tape_in(store);
        command.args(["sessions", "merge", "one", "two", "--into", "both"]);
        command
    };
    merge().assert().success();
    std::fs::remove_file(store.join("sessions/both/metadata.json")).unwrap();
    assert!(store.join("sessions/both/writers/one.json").exists());

    let advice = "session both exists without metadata.json (left by a merge or capture that was interrupted): \
                  delete it with `otlp-tape sessions delete both` and merge again";
    crate::fails(&mut merge(), &[advice]);
    let served = crate::serve::Served::start(store, &[]);
    let body = serde_json::json!({"sources": ["one", "two"], "into": "both"});
    let (status, answer) = served.call(Method::POST, "/api/v1/sessions/merge", Some(body)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert!(answer.to_string().contains(advice), "{answer}");
    drop(served);

    crate::tape_in(store).args(["sessions", "delete", "both"]).assert().success();
    merge().assert().success();
    crate::tape_in(store).args(["sessions", "verify", "both"]).assert().success();
}

/// A sealer killed while it held the seal marker leaves `writers/.seal`
/// behind. The last writer to stop waits for it, then says that every
/// writer has stopped and that `sessions seal` finishes the session, which
/// it does, past the stale marker.
#[test]
fn a_seal_marker_left_by_a_killed_sealer_is_named_by_the_last_writer_and_sessions_seal_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    let cwd = tempfile::tempdir().unwrap();
    let join = |writer: &'static str| {
        let args = ["--join", "--session-id", "shared", "--writer-id", writer, "--flush-interval", "50ms"];
        spawn_capture(store, cwd.path(), &args)
    };
    let a = join("a");
    let b = join("b");
    let mut acknowledged = 0;
    for (writer, n) in [(&a, 1), (&b, 2), (&a, 3)] {
        match writer.post(traces(n)) {
            Answer::Acknowledged => acknowledged += SPANS_PER_REQUEST,
            other => panic!("request {n} was not taken: {other:?}"),
        }
    }
    let (status, stderr) = a.terminate();
    assert!(status.success(), "writer a failed: {stderr}");
    // What a sealer killed between creating the marker and finishing leaves.
    let marker = store.join("sessions/shared/writers/.seal");
    std::fs::write(&marker, b"{\"writerId\": \"a\", \"createdAt\": \"2026-01-01T00:00:00Z\"}\n").unwrap();

    let (status, stderr) = b.terminate();
    assert!(status.success(), "writer b failed: {stderr}");
    assert!(
        stderr.contains("Writer b stopped, and so has every writer, but the session is not sealed")
            && stderr.contains("`otlp-tape sessions seal shared` seals the session"),
        "{stderr}"
    );
    assert_eq!(metadata(store)["status"], "active");
    let output = crate::tape(store).current_dir(cwd.path()).args(["sessions", "seal", "shared"]).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_sealed(store, cwd.path(), acknowledged);
}

/// The API's merge on a disk that fills midway: 500 naming the new session's
/// file and the cause, nothing of it left, the sources as they were, and
/// the same request taken once space is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_merge_on_a_full_disk_answers_500_leaves_nothing_and_works_once_space_is_back() {
    use reqwest::{Method, StatusCode};

    let tmpfs = Tmpfs::mount("4m");
    let store = tmpfs.path();
    for (id, seed) in [("one", "1"), ("two", "2")] {
        crate::tape(store)
            .args(["seed", "--pattern", "basic-topology", "--duration", "20s", "--seed", seed, "--session-id", id])
            .assert()
            .success();
    }
    let sources = |id: &str| std::fs::read(store.join("sessions").join(id).join("metadata.json")).unwrap();
    let before = (sources("one"), sources("two"));
    let size = serde_json::from_slice::<Value>(&before.0).unwrap()["totalSizeBytes"].as_u64().unwrap();
    let served = crate::serve::Served::start(store, &[]);
    let filler = tmpfs.fill(size + size / 2);
    let body = serde_json::json!({"sources": ["one", "two"], "into": "merged"});
    let (status, answer) = served.call(Method::POST, "/api/v1/sessions/merge", Some(body.clone())).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{answer}");
    let message = answer.to_string();
    assert!(message.contains("sessions/merged/") && message.contains("No space left on device"), "{message}");
    assert!(!store.join("sessions/merged").exists(), "a half session is left");
    assert_eq!((sources("one"), sources("two")), before, "the sources changed");

    std::fs::remove_file(filler).unwrap();
    let (status, report) = served.call(Method::POST, "/api/v1/sessions/merge", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{report}");
    drop(served);
    crate::tape(store).args(["sessions", "verify", "merged"]).assert().success();
}

/// A tmpfs mounted over a directory that exists (an S3 test server's),
/// unmounted when dropped.
struct MountedOver(PathBuf);

impl MountedOver {
    fn tmpfs(dir: &Path, size: &str) -> MountedOver {
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "cannot mount a tmpfs (needs root): {}",
            String::from_utf8_lossy(&output.stderr)
        );
        MountedOver(dir.to_path_buf())
    }
}

impl Drop for MountedOver {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A merge on an S3 store whose disk fills midway (the in-process S3
/// server on a small tmpfs): it fails naming the cause, nothing of the new
/// session is left on the server, the sources are as they were, and the
/// same merge goes through once space is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merge_on_an_s3_store_that_fills_midway_leaves_nothing_and_works_once_space_is_back() {
    let server = tape_testkit::s3::S3TestServer::start().await;
    let _mounted = MountedOver::tmpfs(server.root(), "4m");
    std::fs::create_dir(server.bucket_dir()).unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let url = format!("s3://{}/team", server.bucket());
    let tape = || {
        let mut command = crate::s3::tape_s3(&server, &url);
        command.current_dir(cwd.path());
        command
    };
    for (id, seed) in [("one", "1"), ("two", "2")] {
        let seed_args =
            ["seed", "--pattern", "basic-topology", "--duration", "20s", "--seed", seed, "--session-id", id];
        tape().args(seed_args).assert().success();
    }
    let sessions = server.bucket_dir().join("team/sessions");
    let sources = |id: &str| std::fs::read(sessions.join(id).join("metadata.json")).unwrap();
    let before = (sources("one"), sources("two"));
    let size = serde_json::from_slice::<Value>(&before.0).unwrap()["totalSizeBytes"].as_u64().unwrap();
    let filler = server.root().join("filler");
    {
        let mut file = std::fs::File::create(&filler).unwrap();
        let block = vec![0xa5; 64 * 1024];
        while available(server.root()) > size + size / 2 && file.write_all(&block).is_ok() {}
        file.sync_all().unwrap();
    }

    let output = tape().args(["sessions", "merge", "one", "two", "--into", "merged"]).output().unwrap();
    assert!(!output.status.success(), "a merge larger than the free space succeeded");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot copy blob"), "{stderr}");
    let left: Vec<_> = crate::files_under(&sessions).into_iter().filter(|file| file.starts_with("merged")).collect();
    assert!(left.is_empty(), "a half session is left: {left:?}");
    assert_eq!((sources("one"), sources("two")), before, "the sources changed");

    std::fs::remove_file(&filler).unwrap();
    tape().args(["sessions", "merge", "one", "two", "--into", "merged"]).assert().success();
    tape().args(["sessions", "verify", "merged"]).assert().success();
}

/// `POST /api/v1/sessions/{id}/seal` on a full disk: 500 naming the file
/// and the cause, the session left active, and the seal taken once space
/// is back.
#[test]
fn an_api_seal_on_a_full_disk_names_the_cause_and_seals_once_space_is_back() {
    use reqwest::{Method, StatusCode};

    let (tmpfs, filler, b, acknowledged, cwd) = last_writer_cannot_seal();
    let store = tmpfs.path();
    let (status, stderr) = b.terminate();
    assert!(!status.success(), "writer b gave up, and says so: {stderr}");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let served = crate::serve::Served::start(store, &[]);
        let (status, answer) = served.call(Method::POST, "/api/v1/sessions/shared/seal", None).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("sessions/shared/metadata.json") && message.contains("No space left on device"),
            "{message}"
        );
        assert_eq!(metadata(store)["status"], "active");
        std::fs::remove_file(&filler).unwrap();
        let (status, sealed) = served.call(Method::POST, "/api/v1/sessions/shared/seal", None).await;
        assert_eq!(status, StatusCode::OK, "{sealed}");
        assert_eq!(sealed["outcome"], "sealed", "{sealed}");
    });
    assert_sealed(store, cwd.path(), acknowledged);
}
