//! The command line against an S3 store: the in-process S3 server.

use tape_testkit::s3::S3TestServer;

use crate::{data, fails, fails_with, succeeds};

pub fn tape_s3(server: &S3TestServer, store: &str) -> assert_cmd::Command {
    let mut command = assert_cmd::Command::cargo_bin("otlp-tape").unwrap();
    command
        .arg("--store")
        .arg(store)
        .env("MINIO_ENDPOINT", server.endpoint())
        .env("MINIO_ACCESS_KEY", server.access_key())
        .env("MINIO_SECRET_KEY", server.secret_key())
        .env_remove("MINIO_BUCKET")
        .env_remove("OTLP_TAPE_STORE");
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_list_verify_export_and_delete_on_s3() {
    let server = S3TestServer::start().await;
    let store = format!("s3://{}/team-a", server.bucket());
    let out = tempfile::tempdir().unwrap();
    let server = &server;
    let store = store.as_str();
    tokio::task::block_in_place(|| {
        tape_s3(server, store)
            .args(["import", "--format", "otlp-json", "--session-id", "on-s3"])
            .args([data("traces.jsonl"), data("metrics.jsonl"), data("logs.jsonl")])
            .assert()
            .success();
        let listed = tape_s3(server, store).args(["--output", "json", "sessions", "list"]).output().unwrap();
        let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
        assert_eq!(listed[0]["sessionId"], "on-s3");
        assert_eq!(listed[0]["capturedTraces"], 48);
        // The objects are where the format says.
        let metadata = server.bucket_dir().join("team-a/sessions/on-s3/metadata.json");
        assert!(metadata.is_file(), "{} is missing", metadata.display());

        tape_s3(server, store).args(["sessions", "verify", "on-s3"]).assert().success();
        // The standard AWS variables stand in for the MINIO_* ones.
        succeeds(
            tape_s3(server, store)
                .env_remove("MINIO_ENDPOINT")
                .env_remove("MINIO_ACCESS_KEY")
                .env_remove("MINIO_SECRET_KEY")
                .env("AWS_ENDPOINT_URL", server.endpoint())
                .env("AWS_ACCESS_KEY_ID", server.access_key())
                .env("AWS_SECRET_ACCESS_KEY", server.secret_key())
                .args(["sessions", "show", "on-s3"]),
            &["48 spans"],
        );
        tape_s3(server, store)
            .args(["export", "--session", "on-s3", "--format", "otlp-proto", "--out"])
            .arg(out.path())
            .assert()
            .success();
        assert!(out.path().join("traces.pb").is_file());

        // `s3://` alone takes the bucket from MINIO_BUCKET.
        fails(
            tape_s3(server, "s3://").env("MINIO_BUCKET", server.bucket()).args(["sessions", "show", "on-s3"]),
            &["session on-s3 not found"],
        );

        tape_s3(server, store).args(["sessions", "delete", "on-s3"]).assert().success();
        fails(tape_s3(server, store).args(["sessions", "show", "on-s3"]), &["not found"]);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_and_unreachable_endpoints_are_clear_errors() {
    let server = S3TestServer::start().await;
    let store = format!("s3://{}", server.bucket());
    let server = &server;
    let store = store.as_str();
    tokio::task::block_in_place(|| {
        fails_with(
            tape_s3(server, store).env("MINIO_SECRET_KEY", "wrong-secret").args(["sessions", "list"]),
            1,
            &[server.endpoint()],
        );
        // A port that nothing listens on.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        fails_with(
            tape_s3(server, store).env("MINIO_ENDPOINT", format!("http://{closed}")).args(["sessions", "list"]),
            1,
            &[&closed.to_string()],
        );
        fails_with(
            tape_s3(server, store)
                .env_remove("MINIO_ACCESS_KEY")
                .env_remove("MINIO_SECRET_KEY")
                .env_remove("AWS_ACCESS_KEY_ID")
                .env_remove("AWS_SECRET_ACCESS_KEY")
                .args(["sessions", "list"]),
            1,
            &["MINIO_ACCESS_KEY"],
        );
    });
}
