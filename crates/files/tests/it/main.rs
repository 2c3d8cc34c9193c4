//! Import and export against a real local store and real files.

use std::path::Path;

use tape_files::{Error, ExportConfig, ExportOutcome, FileFormat, ImportConfig};
use tape_otlp::{ExportRequest, Signal};
use tape_session::{SessionId, SessionStore, Timestamp};
use tape_store::LocalStore;

const NOW: Timestamp = Timestamp::from_unix_nanos(1_767_225_600_000_000_000);

fn write_json_lines(path: &Path, requests: &[ExportRequest]) {
    let mut text = Vec::new();
    for request in requests {
        text.extend(request.encode_json().expect("encodes"));
        text.push(b'\n');
    }
    std::fs::write(path, text).expect("written");
}

#[test]
fn configs_name_unknown_fields_and_need_a_file() {
    let error = serde_json::from_value::<ImportConfig>(serde_json::json!({
        "format": "otlp-json", "files": ["a.jsonl"], "signals": "traces"
    }))
    .unwrap_err();
    assert!(error.to_string().contains("unknown field `signals`"), "{error}");
    let config: ExportConfig =
        serde_json::from_value(serde_json::json!({ "session": "s", "format": "otlp-proto", "out": "x" }))
            .expect("the defaults fill the rest");
    assert_eq!(config, ExportConfig::new(SessionId::new("s").expect("valid"), FileFormat::OtlpProto, "x"));
    let error = ImportConfig::new(FileFormat::OtlpJson, Vec::new()).validate().unwrap_err();
    assert!(matches!(error, Error::NoFiles), "{error}");
}

#[tokio::test]
async fn json_lines_imported_export_as_length_prefixed_protobuf_and_import_again_the_same() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = LocalStore::new(dir.path().join("store"));
    let traces = [
        ExportRequest::Traces(tape_otlp::sample::traces("checkout", 3, 1_000)),
        ExportRequest::Traces(tape_otlp::sample::traces("payment", 2, 9_000)),
    ];
    let logs = [ExportRequest::Logs(tape_otlp::sample::logs("checkout", 4, 2_000))];
    write_json_lines(&dir.path().join("traces.jsonl"), &traces);
    write_json_lines(&dir.path().join("logs.jsonl"), &logs);

    let mut config =
        ImportConfig::new(FileFormat::OtlpJson, vec![dir.path().join("traces.jsonl"), dir.path().join("logs.jsonl")]);
    config.session_id = Some(SessionId::new("imported").expect("valid"));
    let imported = config.validate().expect("valid").run(&store, NOW).await.expect("imports");
    assert_eq!((imported.files, imported.requests.traces, imported.requests.logs), (2, 2, 1));
    assert_eq!((imported.items.traces, imported.items.logs), (5, 4));

    let out = dir.path().join("out");
    let export = ExportConfig::new(imported.session_id.clone(), FileFormat::OtlpProto, out.display().to_string());
    let output = tape_store::LocalOutputDir::new(&out);
    let ExportOutcome::Files(exported) =
        export.clone().validate().expect("valid").run(&store, &output, &|_| {}).await.expect("exports")
    else {
        panic!("not by phase");
    };
    let names: Vec<_> = exported.files.iter().map(|file| (file.signal, file.path.clone(), file.items)).collect();
    assert_eq!(names, [(Signal::Traces, out.join("traces.pb"), 5), (Signal::Logs, out.join("logs.pb"), 4)]);

    // Again, without force: the files are there.
    let error = export.validate().expect("valid").run(&store, &output, &|_| {}).await.unwrap_err();
    assert_eq!(error.to_string(), format!("{} exists; pass --force to replace it", out.join("traces.pb").display()));

    let mut again = ImportConfig::new(FileFormat::OtlpProto, vec![out.join("traces.pb"), out.join("logs.pb")]);
    again.session_id = Some(SessionId::new("again").expect("valid"));
    let again = again.validate().expect("valid").run(&store, NOW).await.expect("imports");
    assert_eq!((again.requests, again.items), (imported.requests, imported.items));
}

#[tokio::test]
async fn a_bad_line_names_its_file_and_line_and_leaves_no_session() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = LocalStore::new(dir.path().join("store"));
    let path = dir.path().join("mixed.jsonl");
    let good = ExportRequest::Traces(tape_otlp::sample::traces("checkout", 1, 0)).encode_json().expect("encodes");
    std::fs::write(&path, [good.as_slice(), b"\n{\"nothing\": 1}\n"].concat()).expect("written");
    let mut config = ImportConfig::new(FileFormat::OtlpJson, vec![path.clone()]);
    config.session_id = Some(SessionId::new("bad").expect("valid"));
    let error = config.validate().expect("valid").run(&store, NOW).await.unwrap_err();
    assert_eq!(error.to_string(), "import into session bad failed; nothing was stored");
    let cause = std::error::Error::source(&error).expect("a cause").to_string();
    assert!(cause.starts_with(&format!("{}:2: not an OTLP/JSON line", path.display())), "{cause}");
    assert!(store.list_session_ids().await.expect("lists").is_empty());
}

mod parquet_direct;
mod parquet_expected;
mod parquet_roundtrip;
mod parquet_tables;
