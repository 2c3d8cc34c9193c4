//! Opening the session store the user asked for.

use anyhow::Context;
use tape_session::SessionStore;
use tape_store::{LocalStore, S3Config, S3Store, StoreLocation};

use crate::env;

/// Opens the store at `location`, reading S3 settings from the environment.
pub fn open(location: &StoreLocation) -> anyhow::Result<Box<dyn SessionStore>> {
    match location {
        StoreLocation::Local(path) => Ok(Box::new(LocalStore::new(path))),
        StoreLocation::S3 { bucket, prefix } => {
            let config = S3Config {
                endpoint: env::first_set(&[env::MINIO_ENDPOINT, env::AWS_ENDPOINT_URL_S3, env::AWS_ENDPOINT_URL]),
                bucket: if bucket.is_empty() {
                    env::first_set(&[env::MINIO_BUCKET]).unwrap_or_else(|| env::DEFAULT_BUCKET.to_owned())
                } else {
                    bucket.clone()
                },
                prefix: prefix.clone(),
                region: env::first_set(&[env::MINIO_REGION, env::AWS_REGION, env::AWS_DEFAULT_REGION])
                    .unwrap_or_else(|| env::DEFAULT_REGION.to_owned()),
                access_key_id: env::first_set(&[env::MINIO_ACCESS_KEY, env::AWS_ACCESS_KEY_ID]),
                secret_access_key: env::first_set(&[env::MINIO_SECRET_KEY, env::AWS_SECRET_ACCESS_KEY]),
                session_token: env::first_set(&[env::AWS_SESSION_TOKEN]),
            };
            let store = S3Store::new(config).with_context(|| format!("cannot use the S3 store {location}"))?;
            Ok(Box::new(store))
        }
    }
}
