use std::io::Write;

use crate::{data, fails, import_samples, tape, tape_json};

#[test]
fn import_counts_items_not_requests() {
    let dir = tempfile::tempdir().unwrap();
    let summary = import_samples(dir.path(), "sample");
    assert_eq!(summary["sessionId"], "sample");
    assert_eq!(summary["items"], serde_json::json!({ "traces": 48, "metrics": 9, "logs": 24 }));
    assert_eq!(summary["requests"], serde_json::json!({ "traces": 6, "metrics": 3, "logs": 6 }));

    let metadata = tape_json(dir.path(), &["sessions", "show", "sample"]);
    assert_eq!(metadata["capturedTraces"], 48);
    assert_eq!(metadata["capturedMetrics"], 9);
    assert_eq!(metadata["capturedLogs"], 24);
    assert_eq!(metadata["sessionType"], "capture");
    assert_eq!(metadata["status"], "completed");
    assert_eq!(metadata["s3Prefix"], "sessions/sample/");
    // Receive times come from the data: the newest timestamp of the first
    // request of logs (a log observed at 10:00:00.7915) is the earliest.
    assert_eq!(metadata["startTime"], "2026-11-22T10:00:00.791500Z");
    let key = metadata["blobs"][0]["key"].as_str().unwrap();
    assert!(key.starts_with("raw/2026-11-22/10/"), "{key}");
    assert!(dir.path().join("sessions/sample").join(key).is_file());
    assert!(dir.path().join("sessions/sample/metadata.json").is_file());
}

/// Export then import reproduces the same records, in both formats.
#[test]
fn export_and_import_round_trip_in_both_formats() {
    let dir = tempfile::tempdir().unwrap();
    import_samples(dir.path(), "original");
    let proto_dir = dir.path().join("proto");
    let exported = tape_json(
        dir.path(),
        &["export", "--session", "original", "--format", "otlp-proto", "--out", proto_dir.to_str().unwrap()],
    );
    assert_eq!(exported["files"].as_array().unwrap().len(), 3);

    for format in ["otlp-json", "otlp-proto"] {
        let out = dir.path().join(format!("out-{format}"));
        tape_json(dir.path(), &["export", "--session", "original", "--format", format, "--out", out.to_str().unwrap()]);
        let extension = if format == "otlp-json" { "jsonl" } else { "pb" };
        let files: Vec<String> = ["traces", "metrics", "logs"]
            .iter()
            .map(|signal| out.join(format!("{signal}.{extension}")).display().to_string())
            .collect();
        let id = format!("again-{format}");
        let mut args = vec!["import", "--format", format, "--session-id", &id];
        args.extend(files.iter().map(String::as_str));
        tape_json(dir.path(), &args);

        // The re-imported session exports to exactly the same protobuf bytes.
        let again = dir.path().join(format!("again-proto-{format}"));
        tape_json(
            dir.path(),
            &["export", "--session", &id, "--format", "otlp-proto", "--out", again.to_str().unwrap()],
        );
        for signal in ["traces", "metrics", "logs"] {
            let first = std::fs::read(proto_dir.join(format!("{signal}.pb"))).unwrap();
            let second = std::fs::read(again.join(format!("{signal}.pb"))).unwrap();
            assert!(!first.is_empty());
            assert_eq!(first, second, "{signal} records changed through {format}");
        }
        let original = tape_json(dir.path(), &["sessions", "show", "original"]);
        let reimported = tape_json(dir.path(), &["sessions", "show", &id]);
        for field in ["capturedTraces", "capturedMetrics", "capturedLogs", "requestCounts", "startTime", "endTime"] {
            assert_eq!(original[field], reimported[field], "{field} differs after the {format} round trip");
        }
    }
}

#[test]
fn export_json_lines_are_otlp_json() {
    let dir = tempfile::tempdir().unwrap();
    import_samples(dir.path(), "sample");
    let out = dir.path().join("json");
    tape(dir.path())
        .args(["export", "--session", "sample", "--format", "otlp-json", "--out"])
        .arg(&out)
        .assert()
        .success();
    let text = std::fs::read_to_string(out.join("traces.jsonl")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6);
    let first: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    let span = &first["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
    assert_eq!(span["traceId"].as_str().unwrap().len(), 32);
    assert!(span["startTimeUnixNano"].is_string());

    // A second export into the same directory refuses to overwrite...
    fails(
        tape(dir.path()).args(["export", "--session", "sample", "--format", "otlp-json", "--out"]).arg(&out),
        &["--force"],
    );
    // ...unless told to.
    tape(dir.path())
        .args(["export", "--session", "sample", "--format", "otlp-json", "--force", "--out"])
        .arg(&out)
        .assert()
        .success();
}

#[test]
fn import_reads_gzip_and_zstd_files() {
    let dir = tempfile::tempdir().unwrap();
    let traces = std::fs::read(data("traces.jsonl")).unwrap();
    let gz = dir.path().join("traces.jsonl.gz");
    let mut encoder =
        flate2::write::GzEncoder::new(std::fs::File::create(&gz).unwrap(), flate2::Compression::default());
    encoder.write_all(&traces).unwrap();
    encoder.finish().unwrap();
    let zst = dir.path().join("traces.jsonl.zst");
    std::fs::write(&zst, zstd::encode_all(traces.as_slice(), 3).unwrap()).unwrap();

    for (id, file) in [("from-gzip", &gz), ("from-zstd", &zst)] {
        let summary =
            tape_json(dir.path(), &["import", "--format", "otlp-json", "--session-id", id, file.to_str().unwrap()]);
        assert_eq!(summary["items"]["traces"], 48, "{id}");
    }
}

#[test]
fn import_proto_needs_a_signal_it_can_tell() {
    let dir = tempfile::tempdir().unwrap();
    let out = crate::export_samples_as_proto(dir.path(), "sample", "proto");
    let anonymous = dir.path().join("data.bin");
    std::fs::copy(out.join("logs.pb"), &anonymous).unwrap();
    fails(tape(dir.path()).args(["import", "--format", "otlp-proto"]).arg(&anonymous), &["--signal"]);
    let summary =
        tape_json(dir.path(), &["import", "--format", "otlp-proto", "--signal", "logs", anonymous.to_str().unwrap()]);
    assert_eq!(summary["items"]["logs"], 24);
    // A generated id is valid and listed.
    let id = summary["sessionId"].as_str().unwrap();
    assert!(id.starts_with("import-"), "{id}");
}
