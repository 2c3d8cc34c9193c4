//! Nothing follows a symbolic link out of the store, `sessions delete`
//! leaves a session a running capture holds alone, and `sessions verify`
//! says when a session is active or its annotations are damaged.

use std::os::unix::fs::symlink;
use std::path::Path;

use crate::{import_samples, tape};

fn stderr_of(store: &Path, args: &[&str]) -> String {
    let output = crate::tape_in(store).args(args).output().unwrap();
    assert!(!output.status.success(), "otlp-tape {args:?} succeeded");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_symlinked_session_directory_is_refused_by_every_command() {
    let outside = tempfile::tempdir().unwrap();
    import_samples(outside.path(), "elsewhere");
    let target = outside.path().join("sessions/elsewhere");
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    import_samples(store, "mine");
    let link = store.join("sessions/linked");
    symlink(&target, &link).unwrap();

    for args in [
        &["sessions", "delete", "linked"][..],
        &["sessions", "delete", "--force", "linked"],
        &["sessions", "show", "linked"],
        &["sessions", "verify", "linked"],
        &["sessions", "repair", "linked"],
        &["export", "--session", "linked", "--format", "otlp-json", "--out", "exported"],
        &["annotations", "list", "--session", "linked"],
    ] {
        let stderr = stderr_of(store, args);
        assert!(stderr.contains(&link.display().to_string()), "{args:?}: {stderr}");
        assert!(stderr.contains("symbolic link"), "{args:?}: {stderr}");
    }
    assert!(target.join("metadata.json").exists(), "a file outside the store was deleted");
    let listed = crate::tape_json(store, &["sessions", "list"]);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
}

#[test]
fn a_symlinked_file_inside_a_session_is_refused_and_its_target_kept() {
    let outside = tempfile::tempdir().unwrap();
    import_samples(outside.path(), "elsewhere");
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();

    // metadata.json a link to another store's.
    import_samples(store, "borrowed");
    let metadata = store.join("sessions/borrowed/metadata.json");
    let target = outside.path().join("sessions/elsewhere/metadata.json");
    std::fs::remove_file(&metadata).unwrap();
    symlink(&target, &metadata).unwrap();
    for args in [&["sessions", "show", "borrowed"][..], &["sessions", "verify", "borrowed"]] {
        let stderr = stderr_of(store, args);
        assert!(stderr.contains(&metadata.display().to_string()) && stderr.contains("symbolic link"), "{stderr}");
    }

    // A blob a link to a file outside.
    import_samples(store, "blobbed");
    let show = crate::tape_json(store, &["sessions", "show", "blobbed"]);
    let key = show["blobs"][0]["key"].as_str().unwrap().to_owned();
    let blob = store.join("sessions/blobbed").join(&key);
    let outside_blob = outside.path().join("outside.otlp.gz");
    std::fs::rename(&blob, &outside_blob).unwrap();
    symlink(&outside_blob, &blob).unwrap();
    let output = tape(store).args(["sessions", "verify", "blobbed"]).output().unwrap();
    assert!(!output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains(&blob.display().to_string()) && stdout.contains("symbolic link"), "{stdout}");
    let stderr = stderr_of(store, &["export", "--session", "blobbed", "--format", "otlp-json", "--out", "out"]);
    assert!(stderr.contains("symbolic link"), "{stderr}");

    // Deleting removes the links, never what they point to.
    tape(store).args(["sessions", "delete", "blobbed"]).assert().success();
    assert!(outside_blob.exists());
    assert!(target.exists());
}

#[test]
fn delete_with_force_refuses_a_session_a_running_capture_holds() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    import_samples(store, "held");
    let locks = store.join("spool/.locks");
    std::fs::create_dir_all(&locks).unwrap();
    let lock = std::fs::File::create(locks.join("held.lock")).unwrap();
    lock.try_lock().unwrap();
    let spool = store.join("spool").display().to_string();
    let stderr = stderr_of(store, &["sessions", "delete", "--force", "--spool-dir", &spool, "held"]);
    assert!(stderr.contains("session held is being captured by a running otlp-tape"), "{stderr}");
    assert!(store.join("sessions/held/metadata.json").exists());
    drop(lock);
    tape(store).args(["sessions", "delete", "--force", "--spool-dir", &spool, "held"]).assert().success();
    assert!(!store.join("sessions/held").exists());
}

#[test]
fn verify_says_an_active_session_is_being_recorded_or_needs_repair() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    import_samples(store, "unfinished");
    let path = store.join("sessions/unfinished/metadata.json");
    let mut metadata: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    metadata["status"] = "active".into();
    std::fs::write(&path, serde_json::to_vec(&metadata).unwrap()).unwrap();
    let output = tape(store).args(["sessions", "verify", "unfinished"]).output().unwrap();
    assert!(!output.status.success(), "verify passed an active session");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("is active: it is being recorded"), "{stdout}");
    assert!(stdout.contains("otlp-tape sessions repair unfinished"), "{stdout}");
    assert!(!stdout.contains("MISMATCH"), "{stdout}");
}

#[test]
fn verify_names_the_line_of_a_damaged_annotation() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    import_samples(store, "annotated");
    tape(store)
        .args(["annotations", "add", "--session", "annotated", "--key", "test.phase.baseline"])
        .args(["--from", "0s", "--until", "2s"])
        .assert()
        .success();
    tape(store).args(["sessions", "verify", "annotated"]).assert().success();
    let path = store.join("sessions/annotated/annotations.jsonl");
    let mut contents = std::fs::read_to_string(&path).unwrap();
    contents.push_str("{\"sessionId\": \"annotated\", \"truncat\n");
    std::fs::write(&path, contents).unwrap();
    let output = tape(store).args(["sessions", "verify", "annotated"]).output().unwrap();
    assert!(!output.status.success(), "verify passed a damaged annotations.jsonl");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("annotations.jsonl line 2"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_refuses_a_symlinked_session_directory() {
    let outside = tempfile::tempdir().unwrap();
    import_samples(outside.path(), "elsewhere");
    let target = outside.path().join("sessions/elsewhere");
    let dir = tempfile::tempdir().unwrap();
    import_samples(dir.path(), "mine");
    let link = dir.path().join("sessions/linked");
    symlink(&target, &link).unwrap();
    let served = crate::serve::Served::start(dir.path(), &[]);
    for (method, path) in [
        (reqwest::Method::DELETE, "/api/v1/sessions/linked"),
        (reqwest::Method::GET, "/api/v1/sessions/linked"),
        (reqwest::Method::POST, "/api/v1/sessions/linked/verify"),
    ] {
        let (status, body) = served.call(method.clone(), path, None).await;
        assert_eq!(status, reqwest::StatusCode::CONFLICT, "{method} {path}: {body}");
        let text = body.to_string();
        assert!(text.contains("symbolic link") && text.contains("sessions/linked"), "{method} {path}: {text}");
    }
    assert!(target.join("metadata.json").exists(), "the API deleted a file outside the store");
    served.terminate();
}
