use crate::blob::BlobError;
use crate::metadata::MetadataError;
use crate::{InvalidBlobKey, InvalidSessionId, InvalidWriterId, SessionId, WriterId};

/// A boxed error from a storage backend.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Errors of the session store and of reading and writing sessions.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A session id broke the rules.
    #[error(transparent)]
    InvalidSessionId(#[from] InvalidSessionId),
    /// A writer id broke the rules.
    #[error(transparent)]
    InvalidWriterId(#[from] InvalidWriterId),
    /// A blob key broke the rules.
    #[error(transparent)]
    InvalidBlobKey(#[from] InvalidBlobKey),
    /// No session has this id.
    #[error("session {0} not found")]
    NotFound(SessionId),
    /// A session with this id exists already.
    #[error("session {0} already exists")]
    AlreadyExists(SessionId),
    /// The blob is not in the store.
    #[error("session {session}: blob {key} not found")]
    BlobNotFound {
        /// The session.
        session: SessionId,
        /// The blob's key.
        key: String,
    },
    /// A blob with this key exists already.
    #[error("session {session}: blob {key} already exists")]
    BlobExists {
        /// The session.
        session: SessionId,
        /// The blob's key.
        key: String,
    },
    /// A file of a session written create-only (a writer's manifest, the
    /// seal marker) exists already.
    #[error("session {session}: {file} already exists")]
    FileExists {
        /// The session.
        session: SessionId,
        /// The file's path in the session, such as `writers/node-1-ab12cd.json`.
        file: String,
    },
    /// A writer cannot join the session.
    #[error("session {session} cannot be joined: {reason}")]
    SessionNotJoinable {
        /// The session.
        session: SessionId,
        /// Why, such as "it is completed".
        reason: String,
    },
    /// A writer's manifest (`writers/<writer-id>.json`) cannot be used.
    #[error("session {session}: cannot read {file}: {reason}")]
    Manifest {
        /// The session.
        session: SessionId,
        /// The manifest's path in the session.
        file: String,
        /// Why.
        reason: String,
    },
    /// A session cannot be sealed: it has a single writer, or none of its
    /// writers' manifests can be merged.
    #[error("session {session} cannot be sealed: {reason}")]
    NotSealable {
        /// The session.
        session: SessionId,
        /// Why.
        reason: String,
    },
    /// A session (or one of its writers) cannot be repaired as asked.
    #[error("cannot repair session {session}: {reason}")]
    NotRepairable {
        /// The session.
        session: SessionId,
        /// Why, and what to do instead.
        reason: String,
    },
    /// A writer of a session with several writers looks alive: its
    /// manifest is `active` and was written (its heartbeat) within the
    /// staleness window, so repairing it would seal the session under it.
    #[error("cannot repair writer {writer} of session {session}: it looks alive: {reason}")]
    WriterLive {
        /// The session.
        session: SessionId,
        /// The writer.
        writer: WriterId,
        /// When it was seen, from which host, and what to do.
        reason: String,
    },
    /// A blob's bytes are damaged.
    #[error("session {session}: blob {key} is corrupt")]
    CorruptBlob {
        /// The session.
        session: SessionId,
        /// The blob's key.
        key: String,
        /// Where and how.
        #[source]
        source: BlobError,
    },
    /// The session's `metadata.json` cannot be used.
    #[error("session {session}: cannot read metadata.json")]
    Metadata {
        /// The session.
        session: SessionId,
        /// Why.
        #[source]
        source: MetadataError,
    },
    /// A record is too large or otherwise cannot be written.
    #[error("session {session}: cannot write a record to blob {key}")]
    Write {
        /// The session.
        session: SessionId,
        /// The blob's key.
        key: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A path in the store is a symbolic link. Stores never follow one, so
    /// that nothing outside the store is read, written or deleted.
    #[error("refusing {path}: it is a symbolic link, and otlp-tape does not follow links out of the store")]
    Symlink {
        /// The link.
        path: String,
    },
    /// The storage backend failed.
    #[error("{context}")]
    Backend {
        /// What was being done, naming the session, key or location.
        context: String,
        /// The backend's error.
        #[source]
        source: BoxError,
    },
}

impl Error {
    /// A backend failure while doing `context`.
    pub fn backend(context: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Error::Backend { context: context.into(), source: source.into() }
    }

    /// Whether the error says that something does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound(_) | Error::BlobNotFound { .. })
    }
}

/// An error and its causes on one line.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
