//! What the store's test binaries share.

use tape_store::S3Config;
use tape_testkit::s3::S3TestServer;

/// The configuration of an S3 store on the test server, under `prefix`.
pub fn s3_config(server: &S3TestServer, prefix: &str) -> S3Config {
    S3Config {
        endpoint: Some(server.endpoint().to_owned()),
        bucket: server.bucket().to_owned(),
        prefix: prefix.to_owned(),
        region: "us-east-1".to_owned(),
        access_key_id: Some(server.access_key().to_owned()),
        secret_access_key: Some(server.secret_key().to_owned()),
        session_token: None,
    }
}
