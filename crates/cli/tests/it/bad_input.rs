use std::path::Path;

use predicates::str::contains;

use crate::{data, fails, fails_with, import_samples, tape, tape_json};

fn first_blob(store: &Path, id: &str) -> (String, std::path::PathBuf) {
    let metadata = tape_json(store, &["sessions", "show", id]);
    let key = metadata["blobs"][0]["key"].as_str().unwrap().to_owned();
    let path = store.join("sessions").join(id).join(&key);
    (key, path)
}

fn no_sessions(store: &Path) {
    let listed = tape_json(store, &["sessions", "list"]);
    assert_eq!(listed, serde_json::json!([]), "something was stored");
    let leftovers = store.join("sessions");
    if leftovers.exists() {
        assert_eq!(std::fs::read_dir(leftovers).unwrap().count(), 0, "a partial session was left behind");
    }
}

#[test]
fn import_of_a_file_that_is_not_otlp_names_file_and_line_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mixed.jsonl");
    let good = std::fs::read_to_string(data("traces.jsonl")).unwrap();
    let first_line = good.lines().next().unwrap();
    std::fs::write(&file, format!("{first_line}\n{{\"hello\": \"world\"}}\n")).unwrap();
    fails_with(
        tape(dir.path()).args(["import", "--format", "otlp-json", "--session-id", "bad"]).arg(&file),
        1,
        &["mixed.jsonl:2", "nothing was stored"],
    );
    no_sessions(dir.path());
}

#[test]
fn import_of_malformed_otlp_json_names_the_column() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.jsonl");
    std::fs::write(&file, "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"traceId\":\"not-hex\"}]}]}]}\n")
        .unwrap();
    fails(tape(dir.path()).args(["import", "--format", "otlp-json"]).arg(&file), &["broken.jsonl:1", "column"]);
    no_sessions(dir.path());
}

#[test]
fn import_of_a_truncated_proto_file_names_the_message_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let out = crate::export_samples_as_proto(dir.path(), "source", "out");
    let bytes = std::fs::read(out.join("traces.pb")).unwrap();
    let cut = dir.path().join("traces-cut.pb");
    std::fs::write(&cut, &bytes[..bytes.len() - 10]).unwrap();
    fails(
        tape(dir.path()).args(["import", "--format", "otlp-proto", "--session-id", "cut"]).arg(&cut),
        &["traces-cut.pb: message 6 at byte", "ends after"],
    );
    fails(tape(dir.path()).args(["sessions", "show", "cut"]), &["not found"]);

    let json_as_proto = dir.path().join("traces.pb");
    std::fs::copy(data("traces.jsonl"), &json_as_proto).unwrap();
    fails(
        tape(dir.path()).args(["import", "--format", "otlp-proto"]).arg(&json_as_proto),
        &["traces.pb: message 1 at byte 0"],
    );
}

#[test]
fn invalid_session_ids_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for id in ["../escape", "a/b", "", "white space", &"x".repeat(129)] {
        fails_with(tape(dir.path()).args(["sessions", "show", id]), 2, &["invalid session id"]);
        tape(dir.path())
            .args(["import", "--format", "otlp-json", "--session-id", id])
            .arg(data("traces.jsonl"))
            .assert()
            .code(2);
    }
    assert!(!dir.path().join("escape").exists());
    assert!(!dir.path().join("sessions").exists());
}

#[test]
fn a_second_import_under_the_same_id_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    import_samples(dir.path(), "taken");
    fails(
        tape(dir.path()).args(["import", "--format", "otlp-json", "--session-id", "taken"]).arg(data("logs.jsonl")),
        &["session taken already exists"],
    );
    let metadata = tape_json(dir.path(), &["sessions", "show", "taken"]);
    assert_eq!(metadata["capturedLogs"], 24, "the existing session changed");
}

#[test]
fn verify_names_a_flipped_byte() {
    let dir = tempfile::tempdir().unwrap();
    import_samples(dir.path(), "flipped");
    let (key, path) = first_blob(dir.path(), "flipped");
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&path, bytes).unwrap();
    let output = tape(dir.path()).args(["sessions", "verify", "flipped"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains(&key), "{stdout}");
    assert!(stdout.contains("MISMATCH"), "{stdout}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("failed verification"), "{stderr}");
}

#[test]
fn a_truncated_blob_is_named_with_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    import_samples(dir.path(), "short");
    let (key, path) = first_blob(dir.path(), "short");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 12]).unwrap();
    let output = tape(dir.path()).args(["sessions", "verify", "short"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains(&format!("session short: blob {key} is corrupt")), "{stdout}");
    assert!(stdout.contains("truncated") || stdout.contains("ends inside"), "{stdout}");

    // Export stops with the same precise error and leaves no file.
    let out = dir.path().join("out");
    fails(
        tape(dir.path()).args(["export", "--session", "short", "--format", "otlp-json", "--out"]).arg(&out),
        &[&format!("blob {key} is corrupt"), "compressed byte"],
    );
    let files: Vec<_> = std::fs::read_dir(&out).unwrap().collect();
    assert!(files.is_empty(), "export left files behind: {files:?}");
}

#[test]
fn damaged_metadata_is_reported_not_panicked_on() {
    let dir = tempfile::tempdir().unwrap();
    import_samples(dir.path(), "meta");
    let path = dir.path().join("sessions/meta/metadata.json");
    let original = std::fs::read_to_string(&path).unwrap();

    std::fs::write(&path, "{ not json").unwrap();
    fails_with(
        tape(dir.path()).args(["sessions", "show", "meta"]),
        1,
        &["session meta: cannot read metadata.json", "malformed metadata.json"],
    );

    std::fs::write(&path, original.replace("\"formatVersion\": 1", "\"formatVersion\": 99")).unwrap();
    fails_with(tape(dir.path()).args(["sessions", "show", "meta"]), 1, &["format version 99"]);

    // The listing goes on without it, with a warning.
    import_samples(dir.path(), "fine");
    let listed = tape(dir.path()).args(["--output", "json", "sessions", "list"]).output().unwrap();
    assert!(listed.status.success());
    let sessions: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(sessions.as_array().unwrap().len(), 1);
    assert!(String::from_utf8_lossy(&listed.stderr).contains("meta"));

    std::fs::remove_file(&path).unwrap();
    fails_with(tape(dir.path()).args(["sessions", "show", "meta"]), 1, &["session meta not found"]);
}

#[test]
fn bad_store_locations_are_refused() {
    let mut command = assert_cmd::Command::cargo_bin("otlp-tape").unwrap();
    command
        .args(["--store", "ftp://example", "sessions", "list"])
        .assert()
        .code(2)
        .stderr(contains("invalid store location"));
}

#[test]
fn metadata_that_names_another_session_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    import_samples(dir.path(), "first");
    import_samples(dir.path(), "second");
    let sessions = dir.path().join("sessions");
    std::fs::copy(sessions.join("first/metadata.json"), sessions.join("second/metadata.json")).unwrap();
    fails_with(
        tape(dir.path()).args(["sessions", "show", "second"]),
        1,
        &["session second: cannot read metadata.json", "it names session first instead"],
    );
}

/// Session `m` made by `sessions merge` of two seeds (writers `a` and `b`),
/// turned back into an active session whose writers have stopped: what a
/// session of joined writers is before the last one seals it.
fn unsealed_merge(store: &Path) {
    for id in ["a", "b"] {
        crate::seed_session(store, "basic-topology", "5s", id);
    }
    tape(store).args(["sessions", "merge", "a", "b", "--into", "m"]).assert().success();
    crate::edit_metadata(store, "m", |metadata| {
        let object = metadata.as_object_mut().unwrap();
        object.insert("status".to_owned(), "active".into());
        object.remove("endTime");
        object.insert("writers".to_owned(), serde_json::json!([]));
        object.insert("blobs".to_owned(), serde_json::json!([]));
    });
    let _ = std::fs::remove_file(store.join("sessions/m/writers/.seal"));
}

#[test]
fn damaged_and_lost_writer_manifests_refuse_the_seal_and_repair_rebuilds_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    unsealed_merge(store);
    let manifest = store.join("sessions/m/writers/b.json");
    let marker = store.join("sessions/m/writers/.seal");
    for garbage in ["garbage", "", "{\"formatVersion\": 2,", "[]", "{\"formatVersion\": 3}"] {
        std::fs::write(&manifest, garbage).unwrap();
        for args in [&["sessions", "show", "m"][..], &["sessions", "seal", "m"]] {
            fails_with(tape(store).args(args), 1, &["session m: cannot read writers/b.json"]);
        }
        assert!(!marker.exists(), "{garbage:?}: the refused seal left its marker");
    }

    std::fs::remove_file(&manifest).unwrap();
    fails_with(
        tape(store).args(["sessions", "seal", "m"]),
        1,
        &["session m cannot be sealed", "writer b has no manifest (writers/b.json)", "sessions repair m --writer b"],
    );
    assert!(!marker.exists(), "the refused seal left its marker");
    assert_eq!(tape_json(store, &["sessions", "show", "m"])["status"], "active", "sealed without b's blobs");

    tape(store).args(["sessions", "repair", "m", "--writer", "b"]).assert().success();
    let sealed = tape_json(store, &["sessions", "show", "m"]);
    let source = tape_json(store, &["sessions", "show", "b"]);
    assert_eq!(sealed["status"], "completed");
    assert_eq!(sealed["writers"][1]["capturedTraces"], source["capturedTraces"], "b's spans");
    tape(store).args(["sessions", "verify", "m"]).assert().success();
}

#[test]
fn metadata_of_a_newer_format_says_so() {
    let dir = tempfile::tempdir().unwrap();
    unsealed_merge(dir.path());
    crate::edit_metadata(dir.path(), "m", |metadata| metadata["formatVersion"] = 3.into());
    for args in
        [&["sessions", "show", "m"][..], &["sessions", "seal", "m"], &["sessions", "repair", "m", "--writer", "a"]]
    {
        fails_with(
            tape(dir.path()).args(args),
            1,
            &["session m: cannot read metadata.json", "format version 3", "written by a newer otlp-tape"],
        );
    }
}

#[test]
fn an_unsealed_session_of_several_writers_points_to_the_writers_not_to_a_plain_repair() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    unsealed_merge(store);
    let hint = "the last of its writers to stop seals it; `otlp-tape sessions repair m --writer W` finishes a writer that crashed";
    let verify = tape(store).args(["sessions", "verify", "m"]).output().unwrap();
    assert_eq!(verify.status.code(), Some(1));
    let said = format!("{}{}", String::from_utf8_lossy(&verify.stdout), String::from_utf8_lossy(&verify.stderr));
    assert!(said.contains(hint), "{said}");
    // Replay refuses a session of several writers until it is sealed, and
    // says what seals it.
    fails_with(
        tape(store).args(["replay", "--session", "m", "--dry-run"]),
        2,
        &["cannot replay session m", "every one of its 2 writers has stopped", "`otlp-tape sessions seal m` does"],
    );
    fails_with(tape(store).args(["compare", "a", "m"]), 2, &["session m is active", hint]);
    // The single writer of `a`, made active, is still finished by a plain repair.
    crate::edit_metadata(store, "a", |metadata| metadata["status"] = "active".into());
    fails_with(
        tape(store).args(["replay", "--session", "a", "--dry-run"]),
        1,
        &["`otlp-tape sessions repair a` finishes it"],
    );
}
