use std::collections::BTreeSet;
use std::fmt::Write as _;

use bytes::Bytes;
use futures::TryStreamExt;
use tape_otlp::Signal;
use tape_session::{BlobKey, Error, SessionId, SessionStore, SessionType, WriterOptions};
use tape_store::{S3Config, S3Store};
use tape_testkit::conformance::{START, new_metadata, sample_records, unique_id, write_session};
use tape_testkit::s3::S3TestServer;

use crate::common::s3_config;

/// A plain SDK client on the test server, to look at the bucket directly.
pub(crate) fn inspector(server: &S3TestServer) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(server.endpoint())
        .force_path_style(true)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            server.access_key(),
            server.secret_key(),
            None,
            None,
            "test",
        ))
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

pub(crate) async fn keys_under(client: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> BTreeSet<String> {
    let mut pages = client.list_objects_v2().bucket(bucket).prefix(prefix).into_paginator().send();
    let mut keys = BTreeSet::new();
    while let Some(page) = pages.next().await {
        keys.extend(page.unwrap().contents().iter().filter_map(|object| object.key().map(str::to_owned)));
    }
    keys
}

/// The error and every cause, as the command line prints them.
fn chain(error: &Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let _ = write!(text, "\ncaused by: {cause}");
        source = cause.source();
    }
    text
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

fn upload_leftovers(server: &S3TestServer) -> Vec<String> {
    std::fs::read_dir(server.root())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(".upload"))
        .collect()
}

#[tokio::test]
async fn s3_store_conforms() {
    let server = S3TestServer::start().await;
    let store = S3Store::new(s3_config(&server, "team/a")).unwrap();
    assert_eq!(store.location(), format!("s3://{}/team/a", server.bucket()));
    tape_testkit::conformance::run(&store).await;
}

#[tokio::test]
async fn objects_land_at_the_documented_keys() {
    let server = S3TestServer::start().await;
    let client = inspector(&server);
    let records = &sample_records()[..6];
    for prefix in ["team/a", ""] {
        let store = S3Store::new(s3_config(&server, prefix)).unwrap();
        let id = unique_id("keys");
        let written =
            write_session(&store, new_metadata(id.clone(), SessionType::Capture), records, WriterOptions::default())
                .await;
        store.write_annotations(&id, Bytes::from_static(b"{}\n")).await.unwrap();

        let session = if prefix.is_empty() { format!("sessions/{id}/") } else { format!("{prefix}/sessions/{id}/") };
        let mut expected: BTreeSet<String> = ["metadata.json", "annotations.jsonl", "timeline.json", ".session"]
            .iter()
            .map(|name| format!("{session}{name}"))
            .collect();
        expected.extend(written.blobs.iter().map(|blob| format!("{session}{}", blob.key)));
        assert!(written.blobs.len() >= 3, "one blob per signal at least");
        assert_eq!(keys_under(&client, server.bucket(), &session).await, expected, "prefix {prefix:?}");
        assert_eq!(store.list_session_ids().await.unwrap(), vec![id.clone()], "prefix {prefix:?}");
    }
    // Nothing outside the two prefixes' sessions/ was written.
    let all = keys_under(&client, server.bucket(), "").await;
    assert!(all.iter().all(|key| key.starts_with("sessions/") || key.starts_with("team/a/sessions/")), "{all:?}");
    assert_eq!(S3Store::new(s3_config(&server, "")).unwrap().location(), format!("s3://{}", server.bucket()));
}

/// A test server, a plain client on it, a store under the prefix `team/a`
/// and a new session in it, its id made unique from `name`.
async fn new_session_under_team_a(name: &str) -> (S3TestServer, aws_sdk_s3::Client, S3Store, SessionId) {
    let server = S3TestServer::start().await;
    let client = inspector(&server);
    let store = S3Store::new(s3_config(&server, "team/a")).unwrap();
    let id = unique_id(name);
    store.create_session(&id).await.unwrap();
    (server, client, store, id)
}

#[tokio::test]
async fn listing_skips_names_that_are_not_session_ids() {
    let (server, client, store, id) = new_session_under_team_a("listing").await;
    for key in ["team/a/sessions/notes.txt", "team/a/sessions/not an id/metadata.json"] {
        client
            .put_object()
            .bucket(server.bucket())
            .key(key)
            .body(aws_sdk_s3::primitives::ByteStream::from_static(b"x"))
            .send()
            .await
            .unwrap();
    }
    assert_eq!(store.list_session_ids().await.unwrap(), vec![id]);
}

#[tokio::test]
async fn large_blobs_go_up_in_parts_and_come_back_byte_for_byte() {
    let (server, client, store, id) = new_session_under_team_a("large").await;

    // Two full 8 MiB parts and a short last one, written in uneven chunks.
    let original = noise(2 * 8 * 1024 * 1024 + 12_345, 7);
    let key = BlobKey::new(Signal::Traces, START, "1").unwrap();
    let mut sink = store.create_blob(&id, &key).await.unwrap();
    for chunk in original.chunks(1024 * 1024 + 7) {
        sink.write(Bytes::copy_from_slice(chunk)).await.unwrap();
    }
    assert!(store.list_blobs(&id).await.unwrap().is_empty(), "parts are visible before the commit");
    sink.commit().await.unwrap();

    let chunks: Vec<Bytes> = store.open_blob(&id, &key).await.unwrap().try_collect().await.unwrap();
    assert!(chunks.len() > 1, "the blob was not streamed");
    assert!(chunks.concat() == original, "the blob changed on its way through the store");
    let object = format!("team/a/sessions/{id}/{key}");
    let head = client.head_object().bucket(server.bucket()).key(&object).send().await.unwrap();
    assert!(head.e_tag().is_some_and(|tag| tag.trim_matches('"').ends_with("-3")), "not a 3-part upload: {head:?}");

    // A second large blob on the same key is refused and leaves no parts.
    let mut sink = store.create_blob(&id, &key).await.unwrap();
    sink.write(Bytes::from(noise(9 * 1024 * 1024, 8))).await.unwrap();
    assert!(matches!(sink.commit().await, Err(Error::BlobExists { .. })), "a commit replaced an existing blob");
    let chunks: Vec<Bytes> = store.open_blob(&id, &key).await.unwrap().try_collect().await.unwrap();
    assert!(chunks.concat() == original, "the original blob changed");
    assert!(upload_leftovers(&server).is_empty(), "a refused upload left parts: {:?}", upload_leftovers(&server));

    // An aborted large blob leaves nothing either.
    let aborted = BlobKey::new(Signal::Logs, START, "2").unwrap();
    let mut sink = store.create_blob(&id, &aborted).await.unwrap();
    sink.write(Bytes::from(noise(9 * 1024 * 1024, 9))).await.unwrap();
    sink.abort().await.unwrap();
    assert_eq!(store.list_blobs(&id).await.unwrap(), vec![key]);
    assert!(upload_leftovers(&server).is_empty(), "an aborted upload left parts: {:?}", upload_leftovers(&server));
}

#[tokio::test]
async fn a_blob_of_exactly_one_part_is_committed() {
    let server = S3TestServer::start().await;
    let store = S3Store::new(s3_config(&server, "")).unwrap();
    let id = unique_id("one-part");
    store.create_session(&id).await.unwrap();
    let original = noise(8 * 1024 * 1024, 3);
    let key = BlobKey::new(Signal::Metrics, START, "1").unwrap();
    let mut sink = store.create_blob(&id, &key).await.unwrap();
    sink.write(Bytes::from(original.clone())).await.unwrap();
    sink.commit().await.unwrap();
    let chunks: Vec<Bytes> = store.open_blob(&id, &key).await.unwrap().try_collect().await.unwrap();
    assert!(chunks.concat() == original, "the blob changed on its way through the store");
}

#[tokio::test]
async fn wrong_credentials_give_a_clear_error() {
    let server = S3TestServer::start().await;
    let wrong_secret =
        S3Config { secret_access_key: Some("not-the-secret".to_owned()), ..s3_config(&server, "team/a") };
    let wrong_key = S3Config { access_key_id: Some("nobody".to_owned()), ..s3_config(&server, "team/a") };
    for settings in [wrong_secret, wrong_key] {
        let store = S3Store::new(settings).unwrap();
        let error = store.list_session_ids().await.expect_err("listing with wrong credentials");
        let message = chain(&error);
        assert!(matches!(error, Error::Backend { .. }), "{message}");
        assert!(message.contains(server.endpoint()), "the endpoint is not named: {message}");
        assert!(message.contains(&format!("s3://{}/team/a/sessions/", server.bucket())), "{message}");
        assert!(message.contains("403"), "the server's answer is not shown: {message}");
        assert!(message.contains("check the"), "no hint: {message}");

        let id = unique_id("wrong-credentials");
        let error = store.create_session(&id).await.expect_err("creating with wrong credentials");
        assert!(chain(&error).contains(server.endpoint()), "{}", chain(&error));
    }
}

#[tokio::test]
async fn an_unreachable_endpoint_fails_naming_it() {
    // A port that was free a moment ago and has no listener now.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let store = S3Store::new(S3Config {
        endpoint: Some(endpoint.clone()),
        bucket: "otel-data".to_owned(),
        prefix: String::new(),
        region: String::new(),
        access_key_id: Some("key".to_owned()),
        secret_access_key: Some("secret".to_owned()),
        session_token: None,
    })
    .unwrap();
    let error = store.list_session_ids().await.expect_err("listing an unreachable store");
    let message = chain(&error);
    assert!(message.contains(&endpoint), "the endpoint is not named: {message}");
    assert!(message.contains("s3://otel-data/sessions/"), "the bucket is not named: {message}");
    assert!(message.to_lowercase().contains("connect"), "the cause is not shown: {message}");
}

#[tokio::test]
async fn settings_are_checked_up_front() {
    let server = S3TestServer::start().await;
    let without_credentials = S3Config { access_key_id: None, secret_access_key: None, ..s3_config(&server, "") };
    let message = chain(&S3Store::new(without_credentials).unwrap_err());
    for variable in ["MINIO_ACCESS_KEY", "MINIO_SECRET_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
        assert!(message.contains(variable), "{variable} is not named: {message}");
    }
    assert!(message.contains(server.endpoint()), "{message}");

    let half = S3Config { secret_access_key: None, ..s3_config(&server, "") };
    assert!(chain(&S3Store::new(half).unwrap_err()).contains("MINIO_SECRET_KEY"));
    let no_bucket = S3Config { bucket: String::new(), ..s3_config(&server, "") };
    assert!(chain(&S3Store::new(no_bucket).unwrap_err()).contains("MINIO_BUCKET"));
    let bad_endpoint = S3Config { endpoint: Some("localhost:9000".to_owned()), ..s3_config(&server, "") };
    assert!(chain(&S3Store::new(bad_endpoint).unwrap_err()).contains("http://"));
}

#[tokio::test]
async fn a_missing_bucket_is_not_mistaken_for_a_missing_session() {
    let server = S3TestServer::start().await;
    let store = S3Store::new(S3Config { bucket: "no-such-bucket".to_owned(), ..s3_config(&server, "") }).unwrap();
    let id = unique_id("no-bucket");
    let error = store.create_session(&id).await.expect_err("creating in a missing bucket");
    assert!(matches!(error, Error::Backend { .. }), "{}", chain(&error));
    assert!(chain(&error).contains("NoSuchBucket"), "{}", chain(&error));
    assert!(chain(&error).contains("no-such-bucket"), "{}", chain(&error));
    let error = store.list_session_ids().await.expect_err("listing a missing bucket");
    assert!(chain(&error).contains("NoSuchBucket"), "{}", chain(&error));
}

#[tokio::test]
async fn writer_files_land_under_writers_and_junk_is_not_listed() {
    use tape_session::{SessionFile, WriteMode, WriterId};
    let (server, client, store, id) = new_session_under_team_a("writer-files").await;
    let writer = WriterId::new("node-1").unwrap();
    let manifest = SessionFile::WriterManifest(writer.clone());
    store.write_file(&id, &manifest, Bytes::from_static(b"{}\n"), WriteMode::CreateNew).await.unwrap();
    store.write_file(&id, &SessionFile::Seal, Bytes::from_static(b"{}\n"), WriteMode::CreateNew).await.unwrap();
    let session = format!("team/a/sessions/{id}/");
    for junk in ["writers/Node-2.json", "writers/notes.txt", "writers/-x.json", "writers/sub/node-3.json"] {
        client
            .put_object()
            .bucket(server.bucket())
            .key(format!("{session}{junk}"))
            .body(aws_sdk_s3::primitives::ByteStream::from_static(b"x"))
            .send()
            .await
            .unwrap();
    }
    let keys = keys_under(&client, server.bucket(), &format!("{session}writers/")).await;
    assert!(keys.contains(&format!("{session}writers/node-1.json")), "{keys:?}");
    assert!(keys.contains(&format!("{session}writers/.seal")), "{keys:?}");
    assert_eq!(store.list_writers(&id).await.unwrap(), vec![writer]);
    store.delete_session(&id).await.unwrap();
    assert!(keys_under(&client, server.bucket(), &session).await.is_empty(), "delete left writer files");
}
