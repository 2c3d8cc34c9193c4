//! The session store on S3 or MinIO. (Being written.)

/// Settings of the S3 store.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct S3Config {
    /// Endpoint URL such as `http://localhost:9000`; `None` means AWS.
    pub endpoint: Option<String>,
    /// The bucket.
    pub bucket: String,
    /// Key prefix without leading or trailing `/`, possibly empty.
    pub prefix: String,
    /// The region.
    pub region: String,
    /// Access key id.
    pub access_key_id: Option<String>,
    /// Secret access key.
    pub secret_access_key: Option<String>,
    /// Session token of temporary credentials.
    pub session_token: Option<String>,
}

/// The S3 store.
#[derive(Debug)]
pub struct S3Store;
