//! Every environment variable otlp-tape reads, in one place.

/// The session store location: a directory, `file://<path>` or `s3://<bucket>/<prefix>`.
pub const OTLP_TAPE_STORE: &str = "OTLP_TAPE_STORE";

// `capture`'s variables (`CAPTURE_MAX_SIZE_MB`, `CAPTURE_MAX_DURATION_MINUTES`,
// `CAPTURE_COMPRESSION_ENABLED`) are `tape_capture`'s, where they are read;
// the flag `--max-size-mb` also takes the first from the environment itself.
pub use tape_capture::CAPTURE_MAX_SIZE_MB;

// `replay`'s variables (`REPLAY_DEFAULT_*`) and the OTLP exporter variables
// read by `replay` and `seed --live` (`OTEL_EXPORTER_OTLP_*`) are
// `tape_replay::env`'s, where they are read.

/// The host name, read by `capture --join` for its writer id and manifest
/// (else `/etc/hostname`).
pub const HOSTNAME: &str = "HOSTNAME";

/// S3/MinIO endpoint URL, such as `http://localhost:9000`.
pub const MINIO_ENDPOINT: &str = "MINIO_ENDPOINT";
/// S3/MinIO access key.
pub const MINIO_ACCESS_KEY: &str = "MINIO_ACCESS_KEY";
/// S3/MinIO secret key.
pub const MINIO_SECRET_KEY: &str = "MINIO_SECRET_KEY";
/// S3/MinIO bucket used when `--store s3://` names none (default `otel-data`).
pub const MINIO_BUCKET: &str = "MINIO_BUCKET";
/// S3/MinIO region (default `us-east-1`).
pub const MINIO_REGION: &str = "MINIO_REGION";

/// Standard AWS fallbacks for the `MINIO_*` variables.
pub const AWS_ENDPOINT_URL_S3: &str = "AWS_ENDPOINT_URL_S3";
/// Standard AWS endpoint for every service.
pub const AWS_ENDPOINT_URL: &str = "AWS_ENDPOINT_URL";
/// Standard AWS access key id.
pub const AWS_ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
/// Standard AWS secret access key.
pub const AWS_SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";
/// Standard AWS session token of temporary credentials.
pub const AWS_SESSION_TOKEN: &str = "AWS_SESSION_TOKEN";
/// Standard AWS region.
pub const AWS_REGION: &str = "AWS_REGION";
/// Standard AWS default region, read after `AWS_REGION`.
pub const AWS_DEFAULT_REGION: &str = "AWS_DEFAULT_REGION";

/// The default bucket when neither `s3://<bucket>` nor `MINIO_BUCKET` names one.
pub const DEFAULT_BUCKET: &str = "otel-data";
/// The default region.
pub const DEFAULT_REGION: &str = "us-east-1";

/// The value of variable `name`, or `None` when it is unset or empty: the
/// lookup the components take.
pub fn variable(name: &str) -> Option<String> {
    first_set(&[name])
}

/// The first variable of `names` that is set and not empty.
pub fn first_set(names: &[&str]) -> Option<String> {
    names.iter().find_map(|name| std::env::var(name).ok().filter(|value| !value.is_empty()))
}

// The ClickHouse variables (`CLICKHOUSE_URL`, `_USER`, `_PASSWORD`,
// `_DATABASE`) are `tape_annotations`'s, where they are read.

/// `serve`: the bearer token every control API call must carry.
pub const OTLP_TAPE_API_TOKEN: &str = "OTLP_TAPE_API_TOKEN";

/// `serve`: the directory that exports started through the control API
/// write local files under (`--export-dir`).
pub const OTLP_TAPE_EXPORT_DIR: &str = "OTLP_TAPE_EXPORT_DIR";
