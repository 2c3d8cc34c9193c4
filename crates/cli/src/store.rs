//! Opening the session store the user asked for, and the directory an
//! export writes into.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use tape_session::{OutputDir, SessionStore};
use tape_store::{LocalOutputDir, LocalStore, S3Config, S3OutputDir, S3Store, SpooledStore, StoreLocation};

use crate::env;

/// Where capture spools the blobs it writes until they are committed, when
/// `--spool-dir` is not given.
pub const OTLP_TAPE_SPOOL_DIR: &str = "OTLP_TAPE_SPOOL_DIR";

/// The spool directory when neither `--spool-dir` nor [`OTLP_TAPE_SPOOL_DIR`]
/// names one, relative to the working directory.
pub const DEFAULT_SPOOL_DIR: &str = ".otlp-tape/spool";

/// The spool directory: `flag` (`--spool-dir`), else [`OTLP_TAPE_SPOOL_DIR`],
/// else [`DEFAULT_SPOOL_DIR`].
pub fn spool_dir(flag: Option<&Path>) -> PathBuf {
    flag.map(Path::to_path_buf)
        .or_else(|| env::first_set(&[OTLP_TAPE_SPOOL_DIR]).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SPOOL_DIR))
}

/// Opens the store at `location` as [`open`] does, wrapped in a
/// [`SpooledStore`] over `spool_dir` when that directory exists, so that
/// the spool files of a capture that stopped are its partial blobs.
pub fn open_spooled(location: &StoreLocation, spool_dir: &Path) -> anyhow::Result<Arc<dyn SessionStore>> {
    let store: Arc<dyn SessionStore> = Arc::from(open(location)?);
    if spool_dir.is_dir() { Ok(Arc::new(SpooledStore::new(store, spool_dir.to_owned()))) } else { Ok(store) }
}

/// Opens the store at `location`, reading S3 settings from the environment.
pub fn open(location: &StoreLocation) -> anyhow::Result<Box<dyn SessionStore>> {
    match location {
        StoreLocation::Local(path) => Ok(Box::new(LocalStore::new(path))),
        StoreLocation::S3 { bucket, prefix } => {
            let bucket = if bucket.is_empty() {
                env::first_set(&[env::MINIO_BUCKET]).unwrap_or_else(|| env::DEFAULT_BUCKET.to_owned())
            } else {
                bucket.clone()
            };
            let store = S3Store::new(s3_config(bucket, prefix.clone()))
                .with_context(|| format!("cannot use the S3 store {location}"))?;
            Ok(Box::new(store))
        }
    }
}

/// Opens the directory an export writes into: `s3://<bucket>/<prefix>`
/// (the bucket is required) with the store's S3 settings from the
/// environment, anything else a local directory (`file://` stripped).
pub fn open_output(out: &str) -> anyhow::Result<Box<dyn OutputDir>> {
    let location: StoreLocation = out.parse().with_context(|| format!("cannot export to {out:?}"))?;
    match location {
        StoreLocation::Local(path) => Ok(Box::new(LocalOutputDir::new(path))),
        StoreLocation::S3 { bucket, .. } if bucket.is_empty() => {
            anyhow::bail!("cannot export to {out:?}: name the bucket, as in s3://<bucket>/<prefix>")
        }
        StoreLocation::S3 { ref bucket, ref prefix } => {
            let output = S3OutputDir::new(s3_config(bucket.clone(), prefix.clone()))
                .with_context(|| format!("cannot export to {location}"))?;
            Ok(Box::new(output))
        }
    }
}

/// The S3 settings of `bucket` and `prefix` from the environment: the
/// `MINIO_*` variables, else the standard `AWS_*` ones.
fn s3_config(bucket: String, prefix: String) -> S3Config {
    S3Config {
        endpoint: env::first_set(&[env::MINIO_ENDPOINT, env::AWS_ENDPOINT_URL_S3, env::AWS_ENDPOINT_URL]),
        bucket,
        prefix,
        region: env::first_set(&[env::MINIO_REGION, env::AWS_REGION, env::AWS_DEFAULT_REGION])
            .unwrap_or_else(|| env::DEFAULT_REGION.to_owned()),
        access_key_id: env::first_set(&[env::MINIO_ACCESS_KEY, env::AWS_ACCESS_KEY_ID]),
        secret_access_key: env::first_set(&[env::MINIO_SECRET_KEY, env::AWS_SECRET_ACCESS_KEY]),
        session_token: env::first_set(&[env::AWS_SESSION_TOKEN]),
    }
}
