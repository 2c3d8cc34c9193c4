//! The output directories of exports: a file appears under its name only
//! when its sink is committed, whole; an aborted or dropped sink, or one a
//! full disk refused, leaves nothing. Locally on real directories (and a
//! real full tmpfs), on S3 against the in-process server.

use std::collections::BTreeSet;
use std::path::Path;

use bytes::Bytes;
use tape_session::{Error, OutputDir};
use tape_store::{LocalOutputDir, S3Config, S3OutputDir};
use tape_testkit::s3::S3TestServer;
use tape_testkit::tmpfs::Tmpfs;

use crate::common::s3_config;
use crate::s3::{inspector, keys_under};

/// Every file under `dir`, as `/`-separated names relative to it, and
/// every directory (with a final `/`).
fn tree(dir: &Path) -> BTreeSet<String> {
    fn walk(base: &Path, dir: &Path, into: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.strip_prefix(base).unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                into.insert(format!("{name}/"));
                walk(base, &path, into);
            } else {
                into.insert(name);
            }
        }
    }
    let mut names = BTreeSet::new();
    if dir.exists() {
        walk(dir, dir, &mut names);
    }
    names
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|name| (*name).to_owned()).collect()
}

/// Deterministic bytes that do not compress.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// Writes `contents` into a new file `name` of `output` in two chunks and
/// commits it.
async fn write_file(output: &dyn OutputDir, name: &str, contents: &[u8]) {
    let mut sink = output.create(name).await.unwrap();
    let (first, second) = contents.split_at(contents.len() / 2);
    sink.write(Bytes::copy_from_slice(first)).await.unwrap();
    sink.write(Bytes::copy_from_slice(second)).await.unwrap();
    sink.commit().await.unwrap();
}

#[tokio::test]
async fn a_local_file_appears_whole_on_commit_and_nothing_else_stays() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("out");
    let output = LocalOutputDir::new(&dir);
    assert_eq!(output.location(), dir.display().to_string());
    assert_eq!(output.describe("Phase=a/traces.parquet"), dir.join("Phase=a/traces.parquet").display().to_string());
    assert_eq!(output.local_path(), Some(dir.clone()));

    let mut sink = output.create("Phase=baseline/traces.parquet").await.unwrap();
    sink.write(Bytes::from_static(b"PAR1 rows ")).await.unwrap();
    let during = tree(&dir);
    assert!(!output.exists("Phase=baseline/traces.parquet").await.unwrap(), "visible before the commit");
    let temp: Vec<&String> = during.iter().filter(|name| name.ends_with(".partial")).collect();
    assert_eq!(temp.len(), 1, "{during:?}");
    assert!(temp[0].starts_with("Phase=baseline/.traces.parquet."), "not hidden beside its file: {during:?}");
    sink.write(Bytes::from_static(b"PAR1")).await.unwrap();
    sink.commit().await.unwrap();
    assert_eq!(tree(&dir), names(&["Phase=baseline/", "Phase=baseline/traces.parquet"]));
    assert_eq!(std::fs::read(dir.join("Phase=baseline/traces.parquet")).unwrap(), b"PAR1 rows PAR1");
    assert!(output.exists("Phase=baseline/traces.parquet").await.unwrap());

    // A commit replaces the file of that name.
    write_file(&output, "Phase=baseline/traces.parquet", b"second").await;
    assert_eq!(std::fs::read(dir.join("Phase=baseline/traces.parquet")).unwrap(), b"second");

    // Aborted and dropped sinks leave neither files nor the directories
    // made for them.
    let mut sink = output.create("Phase=incident/logs.parquet").await.unwrap();
    sink.write(Bytes::from_static(b"partial")).await.unwrap();
    sink.abort().await.unwrap();
    let mut sink = output.create("Phase=other/deep/logs.parquet").await.unwrap();
    sink.write(Bytes::from_static(b"partial")).await.unwrap();
    drop(sink);
    let sink = output.create("Phase=baseline/logs.parquet").await.unwrap();
    drop(sink);
    assert_eq!(tree(&dir), names(&["Phase=baseline/", "Phase=baseline/traces.parquet"]));

    // Removing: the file goes; a missing one is fine.
    output.remove("Phase=baseline/traces.parquet").await.unwrap();
    output.remove("Phase=baseline/traces.parquet").await.unwrap();
    assert!(!output.exists("Phase=baseline/traces.parquet").await.unwrap());
}

#[tokio::test]
async fn a_dropped_sink_in_a_new_directory_leaves_no_directory() {
    let root = tempfile::tempdir().unwrap();
    let output = LocalOutputDir::new(root.path().join("new/out"));
    let mut sink = output.create("traces.parquet").await.unwrap();
    sink.write(Bytes::from_static(b"x")).await.unwrap();
    drop(sink);
    assert_eq!(tree(root.path()), BTreeSet::new());
}

#[tokio::test]
async fn names_outside_the_directory_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let local = LocalOutputDir::new(root.path().join("out"));
    let server = S3TestServer::start().await;
    let s3 = S3OutputDir::new(s3_config(&server, "exports")).unwrap();
    for output in [&local as &dyn OutputDir, &s3] {
        for name in ["../escape.parquet", "/etc/escape", "a/../../b", "a//b", ""] {
            let Err(error) = output.create(name).await else { panic!("{name:?} was accepted") };
            let message = error.to_string();
            assert!(message.contains(&format!("{name:?}")), "the name is not given: {message}");
            assert!(output.exists(name).await.is_err() && output.remove(name).await.is_err(), "{name:?}");
        }
    }
    assert_eq!(tree(root.path()), BTreeSet::new());
}

#[tokio::test]
async fn a_local_write_refused_by_a_full_disk_names_the_file_and_leaves_nothing() {
    let tmpfs = Tmpfs::mount("2m");
    let filler = tmpfs.fill(256 * 1024);
    let output = LocalOutputDir::new(tmpfs.path().join("out"));
    let chunk = Bytes::from(noise(64 * 1024, 1));
    let mut sink = output.create("Phase=baseline/traces.parquet").await.unwrap();
    let mut refused = None;
    for _ in 0..64 {
        if let Err(error) = sink.write(chunk.clone()).await {
            refused = Some(error);
            break;
        }
    }
    let error = refused.expect("the disk never filled");
    let message = format!("{error}: {}", std::error::Error::source(&error).unwrap());
    let path = tmpfs.path().join("out/Phase=baseline/traces.parquet");
    assert!(message.contains(&path.display().to_string()), "the file is not named: {message}");
    assert!(message.contains("No space left on device"), "{message}");
    drop(sink);
    assert_eq!(tree(tmpfs.path()), names(&["filler"]), "a partial file or directory was left");

    // Aborted rather than dropped: the same.
    let mut sink = output.create("logs.parquet").await.unwrap();
    while sink.write(chunk.clone()).await.is_ok() {}
    sink.abort().await.unwrap();
    assert_eq!(tree(tmpfs.path()), names(&["filler"]), "a partial file or directory was left");

    // Once there is room, the file is written.
    std::fs::remove_file(filler).unwrap();
    write_file(&output, "logs.parquet", &noise(100_000, 2)).await;
    assert_eq!(std::fs::read(tmpfs.path().join("out/logs.parquet")).unwrap(), noise(100_000, 2));
}

async fn object(client: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Vec<u8> {
    let output = client.get_object().bucket(bucket).key(key).send().await.unwrap();
    output.body.collect().await.unwrap().into_bytes().to_vec()
}

fn upload_leftovers(server: &S3TestServer) -> Vec<String> {
    std::fs::read_dir(server.root())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(".upload"))
        .collect()
}

#[tokio::test]
async fn an_s3_object_appears_whole_on_commit_and_nothing_else_stays() {
    let server = S3TestServer::start().await;
    let client = inspector(&server);
    let bucket = server.bucket();
    let output = S3OutputDir::new(s3_config(&server, "exports/run-1/")).unwrap();
    assert_eq!(output.location(), format!("s3://{bucket}/exports/run-1"));
    assert_eq!(output.describe("Phase=a/logs.parquet"), format!("s3://{bucket}/exports/run-1/Phase=a/logs.parquet"));
    assert_eq!(output.local_path(), None);

    // Larger than a part: a multipart upload, invisible until the commit.
    let large = noise(8 * 1024 * 1024 + 4321, 3);
    let mut sink = output.create("Phase=baseline/traces.parquet").await.unwrap();
    for chunk in large.chunks(1024 * 1024 + 3) {
        sink.write(Bytes::copy_from_slice(chunk)).await.unwrap();
    }
    assert_eq!(keys_under(&client, bucket, "").await, BTreeSet::new(), "visible before the commit");
    assert!(!output.exists("Phase=baseline/traces.parquet").await.unwrap());
    sink.commit().await.unwrap();
    let key = "exports/run-1/Phase=baseline/traces.parquet";
    assert_eq!(keys_under(&client, bucket, "").await, names(&[key]));
    assert!(object(&client, bucket, key).await == large, "the object changed on its way");
    assert!(output.exists("Phase=baseline/traces.parquet").await.unwrap());
    let head = client.head_object().bucket(bucket).key(key).send().await.unwrap();
    assert_eq!(head.content_type(), Some("application/vnd.apache.parquet"));

    // A commit replaces the object of that name (small: one PutObject).
    write_file(&output, "Phase=baseline/traces.parquet", b"second").await;
    assert_eq!(object(&client, bucket, key).await, b"second");

    // Aborted and dropped sinks leave no object; an aborted upload no parts.
    let mut sink = output.create("logs.parquet").await.unwrap();
    sink.write(Bytes::from(noise(9 * 1024 * 1024, 4))).await.unwrap();
    sink.abort().await.unwrap();
    assert!(upload_leftovers(&server).is_empty(), "an aborted upload left parts: {:?}", upload_leftovers(&server));
    let mut sink = output.create("metrics_sum.parquet").await.unwrap();
    sink.write(Bytes::from_static(b"partial")).await.unwrap();
    drop(sink);
    let mut sink = output.create("metrics_gauge.parquet").await.unwrap();
    sink.write(Bytes::from(noise(9 * 1024 * 1024, 5))).await.unwrap();
    drop(sink);
    assert_eq!(keys_under(&client, bucket, "").await, names(&[key]));

    output.remove("Phase=baseline/traces.parquet").await.unwrap();
    output.remove("Phase=baseline/traces.parquet").await.unwrap();
    assert!(!output.exists("Phase=baseline/traces.parquet").await.unwrap());
    assert_eq!(keys_under(&client, bucket, "").await, BTreeSet::new());
}

#[tokio::test]
async fn an_s3_output_without_a_prefix_writes_at_the_top_of_the_bucket() {
    let server = S3TestServer::start().await;
    let output = S3OutputDir::new(s3_config(&server, "")).unwrap();
    assert_eq!(output.location(), format!("s3://{}", server.bucket()));
    write_file(&output, "labels.json", b"{}").await;
    assert_eq!(keys_under(&inspector(&server), server.bucket(), "").await, names(&["labels.json"]));
}

#[tokio::test]
async fn an_unreachable_s3_endpoint_fails_naming_the_url() {
    // A port that was free a moment ago and has no listener now.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let output = S3OutputDir::new(S3Config {
        endpoint: Some(endpoint.clone()),
        bucket: "otel-data".to_owned(),
        prefix: "exports".to_owned(),
        region: String::new(),
        access_key_id: Some("key".to_owned()),
        secret_access_key: Some("secret".to_owned()),
        session_token: None,
    })
    .unwrap();
    let chain = |error: &Error| tape_session::error_chain(error);
    let error = output.exists("traces.parquet").await.expect_err("checking on an unreachable endpoint");
    let message = chain(&error);
    assert!(message.contains("s3://otel-data/exports/traces.parquet"), "the URL is not named: {message}");
    assert!(message.contains(&endpoint), "the endpoint is not named: {message}");
    assert!(message.to_lowercase().contains("connect"), "the cause is not shown: {message}");

    let mut sink = output.create("traces.parquet").await.unwrap();
    sink.write(Bytes::from_static(b"rows")).await.unwrap();
    let message = chain(&sink.commit().await.expect_err("committing to an unreachable endpoint"));
    assert!(message.contains("s3://otel-data/exports/traces.parquet"), "the URL is not named: {message}");
}
