use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// Where the session store is, as given by `--store` or `OTLP_TAPE_STORE`:
/// a directory path, `file://<path>`, or `s3://<bucket>[/<prefix>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// A local directory; sessions live in `<dir>/sessions/`.
    Local(PathBuf),
    /// An S3 bucket and key prefix; sessions live under `<prefix>/sessions/`.
    /// An empty bucket means "the bucket from the environment".
    S3 {
        /// The bucket, or empty for `MINIO_BUCKET`.
        bucket: String,
        /// The key prefix without leading or trailing `/`, possibly empty.
        prefix: String,
    },
}

/// A `--store` value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid store location {location:?}: {reason}")]
pub struct InvalidStoreLocation {
    /// The refused value.
    pub location: String,
    /// Why.
    pub reason: &'static str,
}

impl FromStr for StoreLocation {
    type Err = InvalidStoreLocation;

    fn from_str(location: &str) -> Result<Self, Self::Err> {
        let refuse = |reason| InvalidStoreLocation { location: location.to_owned(), reason };
        if let Some(rest) = location.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let valid_bucket = bucket.is_empty()
                || (bucket.len() >= 3
                    && bucket.len() <= 63
                    && bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'));
            if !valid_bucket {
                return Err(refuse("an S3 bucket name is 3 to 63 lowercase letters, digits, '-' or '.'"));
            }
            let prefix = prefix.trim_matches('/');
            if prefix.split('/').any(|segment| segment == ".." || segment == ".") {
                return Err(refuse("the S3 prefix must not contain '.' or '..' segments"));
            }
            return Ok(StoreLocation::S3 { bucket: bucket.to_owned(), prefix: prefix.to_owned() });
        }
        if let Some(path) = location.strip_prefix("file://") {
            if path.is_empty() {
                return Err(refuse("file:// needs a path"));
            }
            return Ok(StoreLocation::Local(PathBuf::from(path)));
        }
        if location.contains("://") {
            return Err(refuse("expected a directory, file://<path> or s3://<bucket>/<prefix>"));
        }
        if location.is_empty() {
            return Err(refuse("it is empty"));
        }
        Ok(StoreLocation::Local(PathBuf::from(location)))
    }
}

impl fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreLocation::Local(path) => write!(f, "{}", path.display()),
            StoreLocation::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            StoreLocation::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_forms() {
        assert_eq!("./data".parse(), Ok(StoreLocation::Local("./data".into())));
        assert_eq!("file:///var/tape".parse(), Ok(StoreLocation::Local("/var/tape".into())));
        assert_eq!(
            "s3://otel-data/team/a/".parse(),
            Ok(StoreLocation::S3 { bucket: "otel-data".into(), prefix: "team/a".into() })
        );
        assert_eq!("s3://".parse(), Ok(StoreLocation::S3 { bucket: String::new(), prefix: String::new() }));
    }

    #[test]
    fn refuses_bad_locations() {
        for location in ["", "http://x", "s3://Bad_Bucket", "s3://otel-data/../x", "file://"] {
            assert!(location.parse::<StoreLocation>().is_err(), "{location} was accepted");
        }
    }
}
