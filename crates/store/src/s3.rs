//! The session store on S3 or an S3-compatible server such as MinIO.
//!
//! Objects follow the layout of `docs/FORMAT.md` under the configured key
//! prefix: `<prefix>/sessions/<id>/metadata.json`, `.../annotations.jsonl`,
//! `.../timeline.json` and `.../raw/<blob key>`. S3 has no directories, so
//! a session that has been created but holds nothing yet is marked by an
//! empty object `<prefix>/sessions/<id>/.session`; a session exists when
//! any object is stored under `<prefix>/sessions/<id>/`, the marker
//! included.

use std::fmt;
use std::fmt::Write as _;
use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream as SdkByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_smithy_types::error::display::DisplayErrorContext;
use bytes::{Bytes, BytesMut};
use futures::{StreamExt, TryStreamExt, stream};
use tape_session::{
    BlobKey, BlobSink, ByteStream, Error, SessionFile, SessionId, SessionMetadata, SessionStore, WriteMode, WriterId,
};
use tracing::debug;

use crate::StoreLocation;
use crate::local::writer_of_manifest;

/// Blobs up to this size are written with one PutObject; larger ones with a
/// multipart upload of parts of this size (S3 wants at least 5 MiB a part).
const PART_BYTES: usize = 8 * 1024 * 1024;

/// How long to wait for a TCP (and TLS) connection to the endpoint.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one operation may take, retries included. Streaming a blob's
/// body after GetObject has answered is not bounded by it.
const OPERATION_TIMEOUT: Duration = Duration::from_mins(1);

/// Attempts per operation, the first included: enough to ride out a blip,
/// few enough that an unreachable endpoint fails within seconds.
const MAX_ATTEMPTS: u32 = 3;

/// The first retry waits up to this long; later ones back off exponentially.
const INITIAL_BACKOFF: Duration = Duration::from_millis(500);

/// Objects deleted at once by [`S3Store::delete_session`].
const DELETE_CONCURRENCY: usize = 8;

/// The empty object that marks a created session, see the module docs.
const SESSION_MARKER: &str = ".session";

/// The region used when none is configured (MinIO accepts any).
const DEFAULT_REGION: &str = "us-east-1";

/// Settings of the S3 store. Its `Debug` output hides the secrets.
#[derive(Clone, PartialEq, Eq, Default)]
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

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hidden = |secret: &Option<String>| secret.as_ref().map(|_| "<hidden>");
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &hidden(&self.secret_access_key))
            .field("session_token", &hidden(&self.session_token))
            .finish()
    }
}

/// Sessions under `<prefix>/sessions/<id>/` in an S3 bucket, addressed
/// path-style so that MinIO and other S3-compatible servers work.
///
/// Every object is written with one PutObject or completed multipart
/// upload, so a reader never sees a partial object. Checksums are computed
/// and validated only where an operation requires them, which older MinIO
/// releases need.
#[derive(Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
    prefix: String,
    /// The endpoint, for messages.
    endpoint: String,
}

impl fmt::Debug for S3Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Store")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl S3Store {
    /// A store on `config.bucket` under `config.prefix`. Nothing is sent
    /// until the first operation; the settings are checked here.
    pub fn new(config: S3Config) -> Result<S3Store, Error> {
        let prefix = config.prefix.trim_matches('/').to_owned();
        let endpoint_name = config.endpoint.as_deref().map_or_else(
            || format!("AWS S3 ({})", if config.region.is_empty() { DEFAULT_REGION } else { &config.region }),
            |endpoint| endpoint.trim_end_matches('/').to_owned(),
        );
        let location = StoreLocation::S3 { bucket: config.bucket.clone(), prefix: prefix.clone() };
        let refuse =
            |reason: String| Error::backend(format!("bad S3 settings for {location} at {endpoint_name}"), reason);

        if config.bucket.is_empty() {
            return Err(refuse("no bucket given: set MINIO_BUCKET or use s3://<bucket>/<prefix>".to_owned()));
        }
        if let Err(invalid) = location.to_string().parse::<StoreLocation>() {
            return Err(refuse(invalid.reason.to_owned()));
        }
        let endpoint = match config.endpoint.as_deref().map(|endpoint| endpoint.trim_end_matches('/')) {
            Some(endpoint) if endpoint.starts_with("http://") || endpoint.starts_with("https://") => {
                Some(endpoint.to_owned())
            }
            Some(endpoint) => {
                return Err(refuse(format!(
                    "the endpoint {endpoint:?} is not a URL: expected http://<host>:<port> or https://<host>"
                )));
            }
            None => None,
        };
        let non_empty = |value: Option<String>| value.filter(|value| !value.is_empty());
        let credentials = match (non_empty(config.access_key_id), non_empty(config.secret_access_key)) {
            (Some(access_key_id), Some(secret_access_key)) => {
                Credentials::new(access_key_id, secret_access_key, non_empty(config.session_token), None, "otlp-tape")
            }
            (Some(_), None) => {
                return Err(refuse(
                    "an access key id is set but no secret key: set MINIO_SECRET_KEY or AWS_SECRET_ACCESS_KEY"
                        .to_owned(),
                ));
            }
            (None, Some(_)) => {
                return Err(refuse(
                    "a secret key is set but no access key id: set MINIO_ACCESS_KEY or AWS_ACCESS_KEY_ID".to_owned(),
                ));
            }
            (None, None) => {
                return Err(refuse(
                    "no credentials: set MINIO_ACCESS_KEY and MINIO_SECRET_KEY \
                     (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
                        .to_owned(),
                ));
            }
        };
        let region = if config.region.is_empty() { DEFAULT_REGION.to_owned() } else { config.region };

        let mut builder = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region))
            .credentials_provider(credentials)
            .force_path_style(true)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .timeout_config(
                TimeoutConfig::builder().connect_timeout(CONNECT_TIMEOUT).operation_timeout(OPERATION_TIMEOUT).build(),
            )
            .retry_config(
                RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS).with_initial_backoff(INITIAL_BACKOFF),
            );
        if let Some(endpoint) = endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        Ok(S3Store {
            client: Client::from_conf(builder.build()),
            bucket: config.bucket,
            prefix,
            endpoint: endpoint_name,
        })
    }

    /// `<prefix>/sessions/`, or `sessions/` without a prefix.
    fn sessions_prefix(&self) -> String {
        if self.prefix.is_empty() { "sessions/".to_owned() } else { format!("{}/sessions/", self.prefix) }
    }

    /// `<prefix>/sessions/<id>/`.
    fn session_prefix(&self, id: &SessionId) -> String {
        format!("{}{id}/", self.sessions_prefix())
    }

    fn object_key(&self, id: &SessionId, name: &str) -> String {
        format!("{}{name}", self.session_prefix(id))
    }

    fn blob_object_key(&self, id: &SessionId, key: &BlobKey) -> String {
        // Keys are validated: `raw/<date>/<hour>/<file>`, no `..`.
        self.object_key(id, &key.to_string())
    }

    /// What failed, naming the object (or prefix) and the endpoint.
    fn context(&self, verb: &str, object: &str) -> String {
        context(verb, &self.bucket, object, &self.endpoint)
    }

    fn failed<E>(&self, verb: &str, object: &str, error: &SdkError<E, HttpResponse>) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        Error::backend(self.context(verb, object), describe(error))
    }

    /// Whether any object is stored under `prefix`.
    async fn any_object_under(&self, prefix: &str) -> Result<bool, Error> {
        let output = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .max_keys(1)
            .send()
            .await
            .map_err(|error| self.failed("list", prefix, &error))?;
        Ok(!output.contents().is_empty())
    }

    async fn session_exists(&self, id: &SessionId) -> Result<bool, Error> {
        self.any_object_under(&self.session_prefix(id)).await
    }

    async fn require_session(&self, id: &SessionId) -> Result<(), Error> {
        if self.session_exists(id).await? { Ok(()) } else { Err(Error::NotFound(id.clone())) }
    }

    /// Every key under `prefix`, in the order the server lists them.
    async fn list_keys(&self, prefix: &str) -> Result<Vec<String>, Error> {
        let mut pages = self.client.list_objects_v2().bucket(&self.bucket).prefix(prefix).into_paginator().send();
        let mut keys = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|error| self.failed("list", prefix, &error))?;
            keys.extend(page.contents().iter().filter_map(|object| object.key().map(str::to_owned)));
        }
        Ok(keys)
    }

    /// An object's whole body, or `None` when there is no such object.
    /// Only for small objects (metadata, annotations).
    async fn get_small_object(&self, object: &str) -> Result<Option<Bytes>, Error> {
        let output = match self.client.get_object().bucket(&self.bucket).key(object).send().await {
            Ok(output) => output,
            Err(error) if is_missing(&error) => return Ok(None),
            Err(error) => return Err(self.failed("read", object, &error)),
        };
        let body =
            output.body.collect().await.map_err(|error| {
                Error::backend(self.context("read", object), DisplayErrorContext(&error).to_string())
            })?;
        Ok(Some(body.into_bytes()))
    }

    async fn put_object(&self, object: &str, contents: Bytes, content_type: &str) -> Result<(), Error> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(object)
            .content_type(content_type)
            .body(SdkByteStream::from(contents))
            .send()
            .await
            .map_err(|error| self.failed("write", object, &error))?;
        Ok(())
    }

    /// Writes `object` only when it does not exist: `Ok(false)` when it
    /// does. A HEAD check first, for servers that ignore
    /// `If-None-Match: *`; the header then closes the gap between the
    /// check and the write on servers that honour it (AWS, MinIO).
    async fn put_object_create_only(&self, object: &str, contents: Bytes, content_type: &str) -> Result<bool, Error> {
        if self.object_exists(object).await? {
            return Ok(false);
        }
        match self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(object)
            .content_type(content_type)
            .if_none_match("*")
            .body(SdkByteStream::from(contents))
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(error) if is_precondition_failed(&error) => Ok(false),
            Err(error) => Err(self.failed("write", object, &error)),
        }
    }

    async fn delete_object(&self, object: &str) -> Result<(), Error> {
        match self.client.delete_object().bucket(&self.bucket).key(object).send().await {
            Ok(_) => Ok(()),
            Err(error) if is_missing(&error) => Ok(()),
            Err(error) => Err(self.failed("delete", object, &error)),
        }
    }
}

#[async_trait::async_trait]
impl SessionStore for S3Store {
    fn location(&self) -> String {
        StoreLocation::S3 { bucket: self.bucket.clone(), prefix: self.prefix.clone() }.to_string()
    }

    async fn create_session(&self, id: &SessionId) -> Result<(), Error> {
        if self.session_exists(id).await? {
            return Err(Error::AlreadyExists(id.clone()));
        }
        // S3 has no directories: the marker makes the session exist before
        // anything else is stored, so that writes to it succeed and writes
        // to a session never created fail. Two writers creating the same id
        // at the same moment can both pass the check above: S3 offers no
        // create-only write that older servers honour.
        self.put_object(&self.object_key(id, SESSION_MARKER), Bytes::new(), "application/octet-stream").await
    }

    async fn list_session_ids(&self) -> Result<Vec<SessionId>, Error> {
        let prefix = self.sessions_prefix();
        let mut pages =
            self.client.list_objects_v2().bucket(&self.bucket).prefix(&prefix).delimiter("/").into_paginator().send();
        let mut ids = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|error| self.failed("list", &prefix, &error))?;
            for common in page.common_prefixes() {
                // Names that are not valid ids are not sessions.
                if let Some(id) = common
                    .prefix()
                    .and_then(|common| common.strip_prefix(&prefix))
                    .and_then(|name| name.strip_suffix('/'))
                    .and_then(|name| SessionId::new(name).ok())
                {
                    ids.push(id);
                }
            }
        }
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    async fn read_metadata(&self, id: &SessionId) -> Result<SessionMetadata, Error> {
        let object = self.object_key(id, "metadata.json");
        let Some(bytes) = self.get_small_object(&object).await? else { return Err(Error::NotFound(id.clone())) };
        SessionMetadata::from_stored_json(id, &bytes)
    }

    async fn write_metadata(&self, metadata: &SessionMetadata) -> Result<(), Error> {
        let id = &metadata.session_id;
        self.require_session(id).await?;
        // One PutObject replaces the object whole or not at all.
        self.put_object(&self.object_key(id, "metadata.json"), Bytes::from(metadata.to_json()), "application/json")
            .await
    }

    async fn create_blob(&self, id: &SessionId, key: &BlobKey) -> Result<Box<dyn BlobSink>, Error> {
        self.require_session(id).await?;
        let existing = Existing::Refuse { session: id.clone(), key: key.to_string() };
        Ok(Box::new(self.sink(self.blob_object_key(id, key), "application/gzip", existing)))
    }

    async fn open_blob(&self, id: &SessionId, key: &BlobKey) -> Result<ByteStream, Error> {
        let object = self.blob_object_key(id, key);
        let output = match self.client.get_object().bucket(&self.bucket).key(&object).send().await {
            Ok(output) => output,
            Err(error) if is_missing(&error) => {
                self.require_session(id).await?;
                return Err(Error::BlobNotFound { session: id.clone(), key: key.to_string() });
            }
            Err(error) => return Err(self.failed("open", &object, &error)),
        };
        let context = self.context("read", &object);
        // Chunk by chunk as they arrive; the body is never collected.
        Ok(stream::try_unfold(output.body, move |mut body| {
            let context = context.clone();
            async move {
                match body.next().await {
                    Some(Ok(chunk)) => Ok(Some((chunk, body))),
                    Some(Err(error)) => Err(Error::backend(context, DisplayErrorContext(&error).to_string())),
                    None => Ok(None),
                }
            }
        })
        .boxed())
    }

    async fn list_blobs(&self, id: &SessionId) -> Result<Vec<BlobKey>, Error> {
        let session_prefix = self.session_prefix(id);
        let objects = self.list_keys(&format!("{session_prefix}raw/")).await?;
        if objects.is_empty() {
            self.require_session(id).await?;
        }
        let mut keys: Vec<BlobKey> = objects
            .iter()
            // Strangers under raw/ do not parse as keys.
            .filter_map(|object| object.strip_prefix(&session_prefix)?.parse().ok())
            .collect();
        keys.sort_by_key(ToString::to_string);
        Ok(keys)
    }

    async fn read_annotations(&self, id: &SessionId) -> Result<Option<Bytes>, Error> {
        let contents = self.get_small_object(&self.object_key(id, "annotations.jsonl")).await?;
        if contents.is_none() {
            self.require_session(id).await?;
        }
        Ok(contents)
    }

    async fn write_annotations(&self, id: &SessionId, contents: Bytes) -> Result<(), Error> {
        self.require_session(id).await?;
        self.put_object(&self.object_key(id, "annotations.jsonl"), contents, "application/x-ndjson").await
    }

    async fn read_timeline(&self, id: &SessionId) -> Result<Option<Bytes>, Error> {
        let contents = self.get_small_object(&self.object_key(id, "timeline.json")).await?;
        if contents.is_none() {
            self.require_session(id).await?;
        }
        Ok(contents)
    }

    async fn write_timeline(&self, id: &SessionId, contents: Bytes) -> Result<(), Error> {
        self.require_session(id).await?;
        self.put_object(&self.object_key(id, "timeline.json"), contents, "application/json").await
    }

    async fn read_file(&self, id: &SessionId, file: &SessionFile) -> Result<Option<Bytes>, Error> {
        let contents = self.get_small_object(&self.object_key(id, &file.path())).await?;
        if contents.is_none() {
            self.require_session(id).await?;
        }
        Ok(contents)
    }

    async fn write_file(
        &self,
        id: &SessionId,
        file: &SessionFile,
        contents: Bytes,
        mode: WriteMode,
    ) -> Result<(), Error> {
        self.require_session(id).await?;
        let object = self.object_key(id, &file.path());
        match mode {
            // One PutObject replaces the object whole or not at all.
            WriteMode::Replace => self.put_object(&object, contents, "application/json").await,
            WriteMode::CreateNew => {
                if self.put_object_create_only(&object, contents, "application/json").await? {
                    Ok(())
                } else {
                    Err(Error::FileExists { session: id.clone(), file: file.path() })
                }
            }
        }
    }

    async fn delete_file(&self, id: &SessionId, file: &SessionFile) -> Result<(), Error> {
        self.delete_object(&self.object_key(id, &file.path())).await
    }

    async fn list_writers(&self, id: &SessionId) -> Result<Vec<WriterId>, Error> {
        let prefix = self.object_key(id, "writers/");
        let objects = self.list_keys(&prefix).await?;
        if objects.is_empty() {
            self.require_session(id).await?;
        }
        // The seal marker and strangers are not manifests.
        let mut writers: Vec<WriterId> =
            objects.iter().filter_map(|object| writer_of_manifest(object.strip_prefix(&prefix)?)).collect();
        writers.sort();
        writers.dedup();
        Ok(writers)
    }

    async fn delete_session(&self, id: &SessionId) -> Result<(), Error> {
        let objects = self.list_keys(&self.session_prefix(id)).await?;
        if objects.is_empty() {
            return Err(Error::NotFound(id.clone()));
        }
        // Metadata goes first, so an interrupted delete leaves an incomplete
        // session that is no longer listed rather than one with missing blobs.
        let metadata = self.object_key(id, "metadata.json");
        self.delete_object(&metadata).await?;
        // One DeleteObject per key: DeleteObjects needs Content-MD5, which
        // older servers insist on and the SDK no longer sends.
        let others: Vec<String> = objects.into_iter().filter(|object| *object != metadata).collect();
        stream::iter(others)
            .map(|object| async move { self.delete_object(&object).await })
            .buffer_unordered(DELETE_CONCURRENCY)
            .try_collect::<()>()
            .await
    }
}

/// For the output directories of exports (`crate::output`): objects
/// named by their key in the bucket, outside any session.
impl S3Store {
    /// The bucket.
    pub(crate) fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The key prefix, without leading or trailing `/`.
    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A sink that writes `object` as [`S3Store::create_blob`]'s do, and
    /// on commit replaces the object when it exists.
    pub(crate) fn replacing_sink(&self, object: String, content_type: &'static str) -> Box<dyn BlobSink> {
        Box::new(self.sink(object, content_type, Existing::Replace))
    }

    /// Whether `object` exists (HeadObject).
    pub(crate) async fn object_exists(&self, object: &str) -> Result<bool, Error> {
        match self.client.head_object().bucket(&self.bucket).key(object).send().await {
            Ok(_) => Ok(true),
            Err(error) if is_missing(&error) => Ok(false),
            Err(error) => Err(self.failed("check", object, &error)),
        }
    }

    /// Deletes `object`; a missing one is not an error.
    pub(crate) async fn remove_object(&self, object: &str) -> Result<(), Error> {
        self.delete_object(object).await
    }

    fn sink(&self, object: String, content_type: &'static str, existing: Existing) -> S3BlobSink {
        S3BlobSink {
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            object,
            endpoint: self.endpoint.clone(),
            content_type,
            existing,
            buffer: BytesMut::new(),
            upload: None,
            failed: false,
        }
    }
}

/// What a sink's commit does when its object exists.
enum Existing {
    /// Refuses with [`Error::BlobExists`]: a blob is never replaced.
    Refuse {
        /// The session.
        session: SessionId,
        /// The blob's key in its session.
        key: String,
    },
    /// Replaces it: an export's file.
    Replace,
}

/// A multipart upload in progress.
struct MultipartUpload {
    id: String,
    parts: Vec<CompletedPart>,
}

/// A blob being written: buffered up to [`PART_BYTES`] and sent with one
/// PutObject on commit, or, once it outgrows that, sent part by part as a
/// multipart upload that commit completes.
struct S3BlobSink {
    client: Client,
    bucket: String,
    /// The object's key in the bucket.
    object: String,
    endpoint: String,
    /// The object's `Content-Type`.
    content_type: &'static str,
    /// What the commit does when the object exists.
    existing: Existing,
    buffer: BytesMut,
    upload: Option<MultipartUpload>,
    /// A part failed to upload: what was written is incomplete.
    failed: bool,
}

impl S3BlobSink {
    fn context(&self, verb: &str) -> String {
        context(verb, &self.bucket, &self.object, &self.endpoint)
    }

    /// [`Error::BlobExists`] when the server refused the write because the
    /// blob's key is taken (`If-None-Match: *`).
    fn refused<E: ProvideErrorMetadata>(&self, error: &SdkError<E, HttpResponse>) -> Option<Error> {
        match &self.existing {
            Existing::Refuse { session, key } if is_precondition_failed(error) => {
                Some(Error::BlobExists { session: session.clone(), key: key.clone() })
            }
            _ => None,
        }
    }

    fn sdk_failed<E>(&self, verb: &str, error: &SdkError<E, HttpResponse>) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        Error::backend(self.context(verb), describe(error))
    }

    /// Starts the multipart upload.
    async fn start_upload(&self) -> Result<MultipartUpload, Error> {
        let output = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.object)
            .content_type(self.content_type)
            .send()
            .await
            .map_err(|error| self.sdk_failed("start a multipart upload of", &error))?;
        let Some(id) = output.upload_id else {
            return Err(Error::backend(self.context("start a multipart upload of"), "the server sent no upload id"));
        };
        debug!(bucket = %self.bucket, object = %self.object, "Multipart upload started.");
        Ok(MultipartUpload { id, parts: Vec::new() })
    }

    /// Sends `part` as the next part, starting the upload if needed.
    async fn upload_part(&mut self, part: Bytes) -> Result<(), Error> {
        let upload = match self.upload.take() {
            Some(upload) => upload,
            None => self.start_upload().await?,
        };
        let upload = self.upload.insert(upload);
        let part_number = i32::try_from(upload.parts.len() + 1).unwrap_or(i32::MAX);
        let output = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(&self.object)
            .upload_id(&upload.id)
            .part_number(part_number)
            .body(SdkByteStream::from(part))
            .send()
            .await
            .map_err(|error| {
                let verb = format!("upload part {part_number} of");
                Error::backend(context(&verb, &self.bucket, &self.object, &self.endpoint), describe(&error))
            })?;
        upload.parts.push(CompletedPart::builder().part_number(part_number).set_e_tag(output.e_tag).build());
        Ok(())
    }

    async fn finish(&mut self) -> Result<(), Error> {
        if self.failed {
            return Err(Error::backend(self.context("commit"), "an earlier write failed"));
        }
        // Check that the key is free, for servers that ignore
        // `If-None-Match: *`; the header, sent with the write below, closes
        // the gap between the check and the write on servers that honour
        // it (AWS, MinIO), so that two writers never replace a blob.
        if let Existing::Refuse { session, key } = &self.existing {
            match self.client.head_object().bucket(&self.bucket).key(&self.object).send().await {
                Ok(_) => return Err(Error::BlobExists { session: session.clone(), key: key.clone() }),
                Err(error) if is_missing(&error) => {}
                Err(error) => return Err(self.sdk_failed("check", &error)),
            }
        }
        let create_only = match &self.existing {
            Existing::Refuse { .. } => Some("*".to_owned()),
            Existing::Replace => None,
        };
        let rest = self.buffer.split().freeze();
        if self.upload.is_none() {
            let result = self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(&self.object)
                .content_type(self.content_type)
                .set_if_none_match(create_only)
                .body(SdkByteStream::from(rest))
                .send()
                .await;
            return match result {
                Ok(_) => Ok(()),
                Err(error) => Err(self.refused(&error).unwrap_or_else(|| self.sdk_failed("write", &error))),
            };
        }
        if !rest.is_empty() {
            self.upload_part(rest).await?;
        }
        if let Some(upload) = &self.upload {
            self.client
                .complete_multipart_upload()
                .bucket(&self.bucket)
                .key(&self.object)
                .upload_id(&upload.id)
                .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(upload.parts.clone())).build())
                .set_if_none_match(create_only)
                .send()
                .await
                .map_err(|error| {
                    self.refused(&error).unwrap_or_else(|| self.sdk_failed("complete the multipart upload of", &error))
                })?;
            debug!(bucket = %self.bucket, object = %self.object, parts = upload.parts.len(), "Multipart upload completed.");
        }
        self.upload = None;
        Ok(())
    }

    /// Discards the multipart upload, if one was started.
    async fn abort_upload(&mut self) -> Result<(), Error> {
        let Some(upload) = self.upload.take() else { return Ok(()) };
        match abort_multipart_upload(&self.client, &self.bucket, &self.object, &upload.id).await {
            Ok(()) => Ok(()),
            Err(error) if is_missing(&error) => Ok(()),
            Err(error) => Err(self.sdk_failed("abort the multipart upload of", &error)),
        }
    }
}

async fn abort_multipart_upload(
    client: &Client,
    bucket: &str,
    object: &str,
    upload_id: &str,
) -> Result<(), SdkError<aws_sdk_s3::operation::abort_multipart_upload::AbortMultipartUploadError, HttpResponse>> {
    client.abort_multipart_upload().bucket(bucket).key(object).upload_id(upload_id).send().await.map(|_| ())
}

#[async_trait::async_trait]
impl BlobSink for S3BlobSink {
    async fn write(&mut self, chunk: Bytes) -> Result<(), Error> {
        if self.failed {
            return Err(Error::backend(self.context("write"), "an earlier write failed"));
        }
        self.buffer.extend_from_slice(&chunk);
        while self.buffer.len() >= PART_BYTES {
            let part = self.buffer.split_to(PART_BYTES).freeze();
            if let Err(error) = self.upload_part(part).await {
                self.failed = true;
                return Err(error);
            }
        }
        Ok(())
    }

    async fn commit(mut self: Box<Self>) -> Result<(), Error> {
        let result = self.finish().await;
        if result.is_err() {
            // Leave nothing behind; the commit's own error is the one to report.
            let _ = self.abort_upload().await;
        }
        result
    }

    async fn abort(mut self: Box<Self>) -> Result<(), Error> {
        self.buffer.clear();
        self.abort_upload().await
    }
}

impl Drop for S3BlobSink {
    fn drop(&mut self) {
        // Neither committed nor aborted: the parts sent so far are invisible
        // but stored (and billed) until the upload is aborted. Abort it in
        // the background when a runtime is at hand; a bucket lifecycle rule
        // (AbortIncompleteMultipartUpload) catches whatever slips through.
        if let (Some(upload), Ok(runtime)) = (self.upload.take(), tokio::runtime::Handle::try_current()) {
            let (client, bucket, object) = (self.client.clone(), self.bucket.clone(), self.object.clone());
            runtime.spawn(async move {
                if let Err(error) = abort_multipart_upload(&client, &bucket, &object, &upload.id).await {
                    debug!(%bucket, %object, error = %DisplayErrorContext(&error), "Cannot abort a multipart upload.");
                }
            });
        }
    }
}

/// `cannot <verb> s3://<bucket>/<object> at <endpoint>`.
fn context(verb: &str, bucket: &str, object: &str, endpoint: &str) -> String {
    format!("cannot {verb} s3://{bucket}/{object} at {endpoint}")
}

/// Whether an operation failed because the object (or upload) is not there.
fn is_missing<E: ProvideErrorMetadata>(error: &SdkError<E, HttpResponse>) -> bool {
    let SdkError::ServiceError(service) = error else { return false };
    match service.err().code() {
        Some("NoSuchKey" | "NotFound" | "NoSuchUpload") => true,
        // A missing bucket is a configuration problem, not a missing object.
        Some(_) => false,
        // HEAD answers carry no body and so no code.
        None => service.raw().status().as_u16() == 404,
    }
}

/// Whether a conditional write failed because the object exists
/// (`If-None-Match: *` answered with 412 Precondition Failed), or because
/// another conditional write of the same key was in flight (AWS answers
/// 409 ConditionalRequestConflict to all but one of them: the one that
/// wins creates the object).
fn is_precondition_failed<E: ProvideErrorMetadata>(error: &SdkError<E, HttpResponse>) -> bool {
    let SdkError::ServiceError(service) = error else { return false };
    matches!(service.err().code(), Some("PreconditionFailed" | "ConditionalRequestConflict"))
        || service.raw().status().as_u16() == 412
}

/// A backend failure in one line: the server's code, message and status
/// with a hint for the usual mistakes, or the whole cause chain of a
/// failure to get an answer (connection refused, timeout, DNS).
fn describe<E>(error: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let SdkError::ServiceError(service) = error else { return DisplayErrorContext(error).to_string() };
    let status = service.raw().status().as_u16();
    let code = service.err().code();
    let mut text = match (code, service.err().message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_owned(),
        (None, _) => DisplayErrorContext(service.err()).to_string(),
    };
    let _ = write!(text, " (HTTP {status})");
    let hint = match (code, status) {
        (Some("InvalidAccessKeyId" | "SignatureDoesNotMatch" | "NotSignedUp" | "InvalidToken" | "ExpiredToken"), _) => {
            Some("check the access key and secret key")
        }
        (Some("NoSuchBucket"), _) => Some("check the bucket name, or create the bucket"),
        (_, 403) => Some("check the credentials and their permissions on the bucket"),
        _ => None,
    };
    if let Some(hint) = hint {
        let _ = write!(text, "; {hint}");
    }
    text
}
