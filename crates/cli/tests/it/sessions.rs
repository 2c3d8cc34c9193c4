use crate::{fails, import_samples, succeeds, tape, tape_json};

#[test]
fn list_shows_sessions_and_filters_by_type() {
    let dir = tempfile::tempdir().unwrap();
    import_samples(dir.path(), "a-capture");
    let files = [crate::data("traces.jsonl")];
    tape(dir.path())
        .args(["import", "--format", "otlp-json", "--type", "seed", "--session-id", "a-seed"])
        .args(&files)
        .assert()
        .success();

    let all = tape_json(dir.path(), &["sessions", "list"]);
    let ids: Vec<&str> = all.as_array().unwrap().iter().map(|s| s["sessionId"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    let seeds = tape_json(dir.path(), &["sessions", "list", "--type", "seed"]);
    assert_eq!(seeds.as_array().unwrap().len(), 1);
    assert_eq!(seeds[0]["sessionId"], "a-seed");

    let text = tape(dir.path()).args(["sessions", "list"]).output().unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("SPANS"), "{text}");
    // Columns line up: the id is padded to its column, then the type.
    assert!(
        text.lines().any(|line| line.starts_with(&format!("{:<40} {:<8} completed", "a-capture", "capture"))),
        "{text}"
    );
    assert!(text.lines().any(|line| line.starts_with(&format!("{:<40} {:<8} completed", "a-seed", "seed"))), "{text}");
}

#[test]
fn verify_passes_on_an_intact_session() {
    let dir = tempfile::tempdir().unwrap();
    import_samples(dir.path(), "intact");
    let report = tape_json(dir.path(), &["sessions", "verify", "intact"]);
    assert_eq!(report["problems"], serde_json::json!([]));
    assert_eq!(report["items"], 48 + 9 + 24);
    succeeds(tape(dir.path()).args(["sessions", "verify", "intact"]), &["intact"]);
}

#[test]
fn delete_removes_the_session() {
    let dir = tempfile::tempdir().unwrap();
    import_samples(dir.path(), "doomed");
    tape(dir.path()).args(["sessions", "delete", "doomed"]).assert().success();
    assert!(!dir.path().join("sessions/doomed").exists());
    fails(tape(dir.path()).args(["sessions", "show", "doomed"]), &["session doomed not found"]);
}

#[test]
fn active_sessions_are_deleted_only_with_force() {
    let dir = tempfile::tempdir().unwrap();
    import_samples(dir.path(), "live");
    let path = dir.path().join("sessions/live/metadata.json");
    let text = std::fs::read_to_string(&path).unwrap().replace("\"completed\"", "\"active\"");
    std::fs::write(&path, text).unwrap();
    fails(tape(dir.path()).args(["sessions", "delete", "live"]), &["active"]);
    tape(dir.path()).args(["sessions", "delete", "live", "--force"]).assert().success();
}

#[test]
fn the_store_comes_from_the_environment_or_a_file_url() {
    let dir = tempfile::tempdir().unwrap();
    import_samples(dir.path(), "elsewhere");
    let mut command = assert_cmd::Command::cargo_bin("otlp-tape").unwrap();
    let listed = command
        .env("OTLP_TAPE_STORE", dir.path())
        .current_dir(std::env::temp_dir())
        .args(["--output", "json", "sessions", "list"])
        .output()
        .unwrap();
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed[0]["sessionId"], "elsewhere");

    let mut command = assert_cmd::Command::cargo_bin("otlp-tape").unwrap();
    let store = format!("file://{}", dir.path().display());
    command.env_remove("OTLP_TAPE_STORE").arg("--store").arg(store).args(["sessions", "show", "elsewhere"]);
    succeeds(&mut command, &["48 spans, 9 data points, 24 log records"]);
}

#[test]
fn quiet_and_verbose_change_only_stderr() {
    let dir = tempfile::tempdir().unwrap();
    import_samples(dir.path(), "chatty");
    let quiet = tape(dir.path()).args(["-q", "sessions", "delete", "chatty"]).output().unwrap();
    assert!(quiet.status.success());
    assert!(quiet.stderr.is_empty(), "{}", String::from_utf8_lossy(&quiet.stderr));

    let verbose = tape(dir.path())
        .args(["-vv", "import", "--format", "otlp-json", "--session-id", "chatty"])
        .arg(crate::data("logs.jsonl"))
        .output()
        .unwrap();
    assert!(verbose.status.success());
    let stderr = String::from_utf8_lossy(&verbose.stderr);
    assert!(stderr.contains("DEBUG") && stderr.contains("Blob committed"), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&verbose.stdout).trim(), "chatty");
}

/// `otlp-tape sessions list | head -1`: a reader that goes away ends the
/// listing quietly with exit code 141, as SIGPIPE ends other tools, not
/// with a panic on stderr.
#[test]
fn a_closed_stdout_ends_a_listing_quietly() {
    let dir = tempfile::tempdir().unwrap();
    import_samples(dir.path(), "a-capture");
    for args in [&["sessions", "list"][..], &["sessions", "show", "a-capture"], &["patterns", "list"]] {
        let (reader, writer) = std::io::pipe().unwrap();
        // The reader is gone before the first line is written.
        drop(reader);
        let output = std::process::Command::new(assert_cmd::cargo::cargo_bin("otlp-tape"))
            .arg("--store")
            .arg(dir.path())
            .args(args)
            .env_remove("OTLP_TAPE_STORE")
            .stdout(writer)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(141), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}
