//! `export --format parquet`: tables read back with the `parquet` crate,
//! whole and Hive-partitioned by phase, the selection flags, and bad input.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::files_under;
use crate::{fails, fails_with, tape, tape_json};

/// Seeds a 30 s payment-failure session `pf`: phases baseline, failure and
/// rampdown of 10 s each, and some records after them (`unlabelled`).
fn seeded() -> tempfile::TempDir {
    seeded_with(UNLABELLED_RECORDS)
}

/// A seed whose session has records after its phases.
const UNLABELLED_RECORDS: &str = "1";
/// A seed whose session has none: `labels.json` lists `unlabelled` with
/// no items and no files.
const NO_UNLABELLED_RECORDS: &str = "3";

/// Seeds the session of [`seeded`] with the generator's seed `seed`.
fn seeded_with(seed: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    tape(dir.path())
        .args(["seed", "--pattern", "payment-failure", "--duration", "30s", "--session-id", "pf", "--seed", seed])
        .assert()
        .success();
    dir
}

/// Runs `export --session pf --format parquet --out OUT ARGS` with
/// `--output json`.
fn export(store: &Path, out: &Path, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["export", "--session", "pf", "--format", "parquet", "--out", out.to_str().unwrap()];
    all.extend(args);
    tape_json(store, &all)
}

/// The rows of a Parquet file, and how many have each `Phase` when it has
/// that column.
fn read(path: &Path) -> (u64, Option<BTreeMap<String, u64>>) {
    let file = std::fs::File::open(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let reader = ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap();
    let mut rows = 0;
    let mut phases: Option<BTreeMap<String, u64>> = None;
    for batch in reader {
        let batch = batch.unwrap();
        rows += batch.num_rows() as u64;
        let sessions = batch.column_by_name("SessionId").unwrap().as_string::<i32>();
        assert!(sessions.iter().all(|session| session == Some("pf")), "{}", path.display());
        if let Some(column) = batch.column_by_name("Phase") {
            let counts = phases.get_or_insert_with(BTreeMap::new);
            for phase in column.as_string::<i32>() {
                *counts.entry(phase.unwrap().to_owned()).or_default() += 1;
            }
        }
    }
    (rows, phases)
}

/// The session's items per signal, from `sessions show`.
fn session_items(store: &Path) -> (u64, u64, u64) {
    let metadata = tape_json(store, &["sessions", "show", "pf"]);
    let count = |field: &str| metadata[field].as_u64().unwrap();
    (count("capturedTraces"), count("capturedMetrics"), count("capturedLogs"))
}

/// Spans, data points and log records.
type Items = (u64, u64, u64);

/// Rows of the tables in `out` (metrics summed over their five tables),
/// and rows per phase of the same.
fn table_rows(out: &Path) -> (Items, BTreeMap<String, Items>) {
    let mut totals = (0, 0, 0);
    let mut by_phase: BTreeMap<String, Items> = BTreeMap::new();
    for file in files_under(out) {
        let name = file.to_str().unwrap();
        let (rows, phases) = read(&out.join(&file));
        let slot = |counts: &mut Items, rows| match name {
            "traces.parquet" => counts.0 += rows,
            "logs.parquet" => counts.2 += rows,
            _ if name.starts_with("metrics_") => counts.1 += rows,
            _ => panic!("unexpected file {name}"),
        };
        slot(&mut totals, rows);
        for (phase, rows) in phases.unwrap() {
            slot(by_phase.entry(phase).or_default(), rows);
        }
    }
    (totals, by_phase)
}

#[test]
fn tables_hold_every_item_once_and_phases_agree_with_labels() {
    for seed in [UNLABELLED_RECORDS, NO_UNLABELLED_RECORDS] {
        tables_agree_with_labels(seed);
    }
}

/// The session seeded with `seed`, exported whole and by phase: every item
/// once, and every phase of `labels.json` with the rows of its files.
fn tables_agree_with_labels(seed: &str) {
    let dir = seeded_with(seed);
    let out = dir.path().join("tables");
    let exported = export(dir.path(), &out, &[]);
    let (totals, by_phase) = table_rows(&out);
    assert_eq!(totals, session_items(dir.path()));
    let reported: u64 = exported["files"].as_array().unwrap().iter().map(|file| file["rows"].as_u64().unwrap()).sum();
    assert_eq!(reported, totals.0 + totals.1 + totals.2);
    for phase in ["baseline", "failure", "rampdown"] {
        assert!(by_phase[phase].0 > 0, "no spans in phase {phase}: {by_phase:?}");
    }
    assert_eq!(by_phase.contains_key("unlabelled"), seed == UNLABELLED_RECORDS, "seed {seed}: {by_phase:?}");

    // By phase: Hive partitions without the Phase column, counted in labels.json.
    let partitioned = dir.path().join("partitioned");
    let exported = export(dir.path(), &partitioned, &["--by-phase"]);
    let labels: serde_json::Value =
        serde_json::from_slice(&std::fs::read(partitioned.join("labels.json")).unwrap()).unwrap();
    assert_eq!(exported["labels"], labels);
    assert_eq!(labels["format"], "parquet");
    let mut sum = (0, 0, 0);
    for entry in labels["phases"].as_array().unwrap() {
        let phase = entry["phase"].as_str().unwrap();
        assert_eq!(entry["directory"], format!("Phase={phase}"));
        let items = &entry["items"];
        let counts =
            (items["traces"].as_u64().unwrap(), items["metrics"].as_u64().unwrap(), items["logs"].as_u64().unwrap());
        let rows = by_phase.get(phase).copied().unwrap_or_default();
        assert_eq!(rows, counts, "seed {seed}, phase {phase}");
        assert_eq!(entry["files"].as_array().unwrap().is_empty(), counts == (0, 0, 0), "seed {seed}: {entry}");
        let mut rows_of_files = (0, 0, 0);
        for file in entry["files"].as_array().unwrap() {
            let name = file["file"].as_str().unwrap();
            assert!(name.starts_with(&format!("Phase={phase}/")), "{name}");
            let (rows, phases) = read(&partitioned.join(name));
            assert!(phases.is_none(), "{name} has a Phase column");
            assert_eq!(rows, file["items"].as_u64().unwrap(), "{name}");
            match file["signal"].as_str().unwrap() {
                "traces" => rows_of_files.0 += rows,
                "metrics" => rows_of_files.1 += rows,
                _ => rows_of_files.2 += rows,
            }
        }
        assert_eq!(rows_of_files, counts, "phase {phase}");
        sum = (sum.0 + counts.0, sum.1 + counts.1, sum.2 + counts.2);
    }
    assert_eq!(sum, totals);
    assert!(files_under(&partitioned).iter().all(|file| !file.to_str().unwrap().contains(".partial")));
    assert_eq!(partitioned.join("Phase=unlabelled").exists(), seed == UNLABELLED_RECORDS, "seed {seed}");
}

#[test]
fn signals_from_until_and_phase_select_what_they_say() {
    let dir = seeded();
    let (_, by_phase) = table_rows(&{
        let all = dir.path().join("all");
        export(dir.path(), &all, &[]);
        all
    });

    let traces = dir.path().join("traces");
    export(dir.path(), &traces, &["--signals", "traces"]);
    assert_eq!(files_under(&traces), [PathBuf::from("traces.parquet")]);

    let failure = dir.path().join("failure");
    export(dir.path(), &failure, &["--phase", "failure", "--signals", "traces,logs"]);
    let (totals, phases) = table_rows(&failure);
    assert_eq!(phases.keys().collect::<Vec<_>>(), ["failure"]);
    assert_eq!((totals.0, totals.2), (by_phase["failure"].0, by_phase["failure"].2));
    assert_eq!(totals.1, 0);

    // The failure phase is the session's second ten seconds.
    let window = dir.path().join("window");
    export(dir.path(), &window, &["--from", "10s", "--until", "20s"]);
    assert_eq!(phases.len(), 1);
    assert_eq!(table_rows(&window).1, BTreeMap::from([("failure".to_owned(), by_phase["failure"])]));

    // The selection applies to the OTLP formats too.
    let json = dir.path().join("json");
    let exported = tape_json(
        dir.path(),
        &["export", "--session", "pf", "--format", "otlp-json", "--phase", "failure", "--signals", "traces", "--out"]
            .into_iter()
            .chain([json.to_str().unwrap()])
            .collect::<Vec<_>>(),
    );
    assert_eq!(exported["files"][0]["items"].as_u64().unwrap(), by_phase["failure"].0);
    assert_eq!(exported["files"].as_array().unwrap().len(), 1);
}

#[test]
fn bad_input_is_refused_and_leaves_the_output_as_it_was() {
    let dir = seeded();
    let out = dir.path().join("out");
    let base = ["export", "--session", "pf", "--out", out.to_str().unwrap()];

    fails(tape(dir.path()).args(base).args(["--format", "csv"]), &["'csv'", "otlp-json, otlp-proto, parquet"]);
    fails(
        tape(dir.path()).args(base).args(["--format", "parquet", "--phase", "nope"]),
        &["session pf has no phase \"nope\"; its phases are baseline, failure, rampdown"],
    );
    fails(
        tape(dir.path()).args(["export", "--session", "pf", "--format", "otlp-json", "--out", "s3://bucket/prefix"]),
        &["S3 output is written for --format parquet only"],
    );

    export(dir.path(), &out, &["--signals", "traces"]);
    let before = std::fs::read(out.join("traces.parquet")).unwrap();
    let traces = out.join("traces.parquet").display().to_string();
    fails_with(
        tape(dir.path()).args(base).args(["--format", "parquet"]),
        1,
        &[&format!("{traces} exists; pass --force to replace it")],
    );
    assert_eq!(files_under(&out), [PathBuf::from("traces.parquet")]);
    assert_eq!(std::fs::read(out.join("traces.parquet")).unwrap(), before);

    export(dir.path(), &out, &["--force"]);
    assert!(files_under(&out).len() > 1);
    assert_eq!(table_rows(&out).0, session_items(dir.path()));
}

#[test]
fn a_corrupt_blob_is_named_and_nothing_is_left_behind() {
    let dir = seeded();
    let metadata = tape_json(dir.path(), &["sessions", "show", "pf"]);
    let key = metadata["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|blob| blob["key"].as_str().unwrap())
        .find(|key| key.contains("traces"))
        .unwrap()
        .to_owned();
    let path = dir.path().join("sessions/pf").join(&key);
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle..middle + 64].fill(0xa5);
    std::fs::write(&path, bytes).unwrap();

    for by_phase in [false, true] {
        let out = dir.path().join(format!("out-{by_phase}"));
        let mut command = tape(dir.path());
        command.args(["export", "--session", "pf", "--format", "parquet", "--out", out.to_str().unwrap()]);
        if by_phase {
            command.arg("--by-phase");
        }
        fails_with(
            &mut command,
            1,
            &["export of session pf failed; no file was written", &format!("blob {key} is corrupt")],
        );
        assert_eq!(files_under(&out), Vec::<PathBuf>::new(), "by phase: {by_phase}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_go_to_s3_by_phase_and_are_not_replaced_without_force() {
    let server = tape_testkit::s3::S3TestServer::start().await;
    let dir = seeded();
    let url = format!("s3://{}/exports/pf", server.bucket());
    let (server, store) = (&server, dir.path());
    tokio::task::block_in_place(|| {
        let export_to_s3 = |args: &[&str]| {
            let mut command = tape(store);
            command
                .env("MINIO_ENDPOINT", server.endpoint())
                .env("MINIO_ACCESS_KEY", server.access_key())
                .env("MINIO_SECRET_KEY", server.secret_key())
                .args(["export", "--session", "pf", "--format", "parquet", "--by-phase", "--out", &url])
                .args(args);
            command
        };
        let output = export_to_s3(&["--output", "json"]).output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let exported: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(exported["location"], url);

        let objects = server.bucket_dir().join("exports/pf");
        let labels: serde_json::Value =
            serde_json::from_slice(&std::fs::read(objects.join("labels.json")).unwrap()).unwrap();
        let failure = labels["phases"].as_array().unwrap().iter().find(|entry| entry["phase"] == "failure").unwrap();
        let traces = failure["files"].as_array().unwrap().iter().find(|file| file["table"] == "traces").unwrap();
        assert_eq!(traces["file"], "Phase=failure/traces.parquet");
        let (rows, phases) = read(&objects.join("Phase=failure/traces.parquet"));
        assert_eq!(rows, traces["items"].as_u64().unwrap());
        assert!(phases.is_none());

        fails_with(
            &mut export_to_s3(&[]),
            1,
            &[&format!("{url}/Phase=baseline/traces.parquet exists; pass --force to replace it")],
        );
        export_to_s3(&["--force"]).assert().success();
    });
}

#[test]
fn a_record_in_overlapping_phases_is_a_row_in_each() {
    let dir = seeded();
    let key = ["annotations", "add", "--session", "pf", "--key", "test.phase.incident"];
    tape(dir.path()).args(key).args(["--from", "5s", "--until", "15s"]).assert().success();

    let all = dir.path().join("all");
    export(dir.path(), &all, &[]);
    let (totals, by_phase) = table_rows(&all);
    let incident = dir.path().join("incident");
    export(dir.path(), &incident, &["--phase", "incident"]);
    let (_, in_incident) = table_rows(&incident);
    // Its records are also in baseline (5 s to 10 s) or failure (10 s to 15 s).
    assert_eq!(in_incident.keys().collect::<Vec<_>>(), ["baseline", "failure", "incident"]);
    assert_eq!(by_phase["incident"], in_incident["incident"]);
    let inside = in_incident["baseline"].0 + in_incident["failure"].0;
    assert_eq!(inside, in_incident["incident"].0);
    let items = session_items(dir.path());
    assert_eq!(totals.0, items.0 + in_incident["incident"].0);

    let partitioned = dir.path().join("partitioned");
    let labels = export(dir.path(), &partitioned, &["--by-phase"])["labels"].clone();
    assert_eq!(labels["overlapping"], true);
    let entry = labels["phases"].as_array().unwrap().iter().find(|entry| entry["phase"] == "incident").unwrap();
    assert_eq!(entry["items"]["traces"].as_u64().unwrap(), in_incident["incident"].0);
    assert_eq!(read(&partitioned.join("Phase=incident/traces.parquet")).0, in_incident["incident"].0);
}
