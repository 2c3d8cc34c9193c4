//! `otlp-tape export --format parquet --out s3://bucket/prefix` against the
//! in-process S3 server: the tables land as objects under the prefix and
//! read back with the `parquet` crate with the session's counts; an
//! existing object is not replaced without `--force`; an unreachable
//! endpoint fails naming the URL and leaves nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use parquet::file::reader::{FileReader, SerializedFileReader};
use serde_json::Value;
use tape_testkit::s3::S3TestServer;

use crate::files_under;
use crate::{fails_with, seed_session, tape};

/// `otlp-tape` on the local store `store`, with the test server's S3
/// settings in the environment (where the output goes).
fn tape_to_s3(server: &S3TestServer, store: &Path) -> assert_cmd::Command {
    let mut command = tape(store);
    command
        .env("MINIO_ENDPOINT", server.endpoint())
        .env("MINIO_ACCESS_KEY", server.access_key())
        .env("MINIO_SECRET_KEY", server.secret_key());
    for name in ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
        command.env_remove(name);
    }
    command
}

/// The rows of each `.parquet` object under `prefix` of the bucket, by
/// object name relative to the prefix, read from the server's files with
/// the `parquet` crate.
fn tables(server: &S3TestServer, prefix: &str) -> BTreeMap<String, i64> {
    let dir = server.bucket_dir().join(prefix);
    files_under(&dir)
        .into_iter()
        .filter(|file| file.extension().is_some_and(|extension| extension == "parquet"))
        .map(|file| {
            let reader = SerializedFileReader::new(std::fs::File::open(dir.join(&file)).unwrap())
                .unwrap_or_else(|error| panic!("{} is not Parquet: {error}", file.display()));
            (file.to_string_lossy().into_owned(), reader.metadata().file_metadata().num_rows())
        })
        .collect()
}

/// The items of each signal of session `id` of `store`, from its metadata.
fn item_counts(store: &Path, id: &str) -> (i64, i64, i64) {
    let metadata: Value =
        serde_json::from_slice(&std::fs::read(store.join("sessions").join(id).join("metadata.json")).unwrap()).unwrap();
    let count = |field: &str| metadata[field].as_i64().unwrap_or_else(|| panic!("no {field} in {metadata}"));
    (count("capturedTraces"), count("capturedMetrics"), count("capturedLogs"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parquet_export_to_s3_reads_back_with_the_sessions_counts() {
    let server = S3TestServer::start().await;
    let store = tempfile::tempdir().unwrap();
    let (server, store) = (&server, store.path());
    tokio::task::block_in_place(|| {
        seed_session(store, "basic-topology", "5s", "to-s3");
        let out = format!("s3://{}/exports/run-1", server.bucket());
        let output = tape_to_s3(server, store)
            .args(["--output", "json", "export", "--session", "to-s3", "--format", "parquet", "--out", &out])
            .output()
            .unwrap();
        assert!(output.status.success(), "the export failed: {}", String::from_utf8_lossy(&output.stderr));
        let outcome: Value = serde_json::from_slice(&output.stdout).unwrap();

        let tables = tables(server, "exports/run-1");
        let (spans, points, records) = item_counts(store, "to-s3");
        assert!(spans > 0 && points > 0 && records > 0, "the seed wrote nothing");
        assert_eq!(tables.get("traces.parquet"), Some(&spans), "{tables:?}");
        assert_eq!(tables.get("logs.parquet"), Some(&records), "{tables:?}");
        let metric_rows: i64 =
            tables.iter().filter(|(name, _)| name.starts_with("metrics_")).map(|(_, rows)| rows).sum();
        assert_eq!(metric_rows, points, "{tables:?}");
        // What the command reports is what is there.
        let reported: BTreeMap<String, i64> = outcome["files"]
            .as_array()
            .unwrap_or_else(|| panic!("no files in {outcome}"))
            .iter()
            .map(|file| (file["file"].as_str().unwrap().to_owned(), file["rows"].as_i64().unwrap()))
            .collect();
        assert_eq!(reported, tables, "{outcome}");
        // Only the tables: no staging objects, no upload parts left.
        let objects = files_under(&server.bucket_dir());
        assert_eq!(objects.len(), tables.len(), "{objects:?}");
        let leftovers = files_under(server.root())
            .into_iter()
            .filter(|file| file.to_string_lossy().contains(".upload"))
            .collect::<Vec<_>>();
        assert!(leftovers.is_empty(), "upload parts were left: {leftovers:?}");
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_object_is_replaced_only_with_force() {
    let server = S3TestServer::start().await;
    let store = tempfile::tempdir().unwrap();
    let (server, store) = (&server, store.path());
    tokio::task::block_in_place(|| {
        seed_session(store, "basic-topology", "2s", "twice");
        let out = format!("s3://{}/exports/twice", server.bucket());
        let export = |extra: &[&str]| {
            let mut command = tape_to_s3(server, store);
            command.args(["export", "--session", "twice", "--format", "parquet", "--out", &out]).args(extra);
            command
        };
        export(&[]).assert().success();
        let before = tables(server, "exports/twice");
        let traces = server.bucket_dir().join("exports/twice/traces.parquet");
        let modified = std::fs::metadata(&traces).unwrap().modified().unwrap();
        fails_with(&mut export(&[]), 1, &[&format!("{out}/traces.parquet"), "--force"]);
        assert_eq!(std::fs::metadata(&traces).unwrap().modified().unwrap(), modified, "the object was replaced");
        export(&["--force"]).assert().success();
        assert_eq!(tables(server, "exports/twice"), before);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_s3_target_fails_naming_the_url_and_leaves_nothing() {
    let server = S3TestServer::start().await;
    let store = tempfile::tempdir().unwrap();
    let (server, store) = (&server, store.path());
    tokio::task::block_in_place(|| {
        seed_session(store, "basic-topology", "2s", "nowhere");
        let before = files_under(store);
        // A port that nothing listens on.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let out = format!("s3://{}/exports/nowhere", server.bucket());
        fails_with(
            tape_to_s3(server, store).env("MINIO_ENDPOINT", format!("http://{closed}")).args([
                "export",
                "--session",
                "nowhere",
                "--format",
                "parquet",
                "--out",
                &out,
            ]),
            1,
            &[&format!("s3://{}/exports/nowhere", server.bucket()), &closed.to_string()],
        );
        assert_eq!(files_under(&server.bucket_dir()), Vec::<PathBuf>::new());
        assert_eq!(files_under(store), before, "the store changed");

        // An S3 output names its bucket.
        fails_with(
            tape_to_s3(server, store).args(["export", "--session", "nowhere", "--format", "parquet", "--out", "s3://"]),
            1,
            &["s3://<bucket>/<prefix>"],
        );
    });
}
