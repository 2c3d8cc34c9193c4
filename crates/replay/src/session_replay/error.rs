//! What can go wrong in a replay of a stored session, before it sends and
//! around it. Messages are the ones the command line has always printed;
//! they name the option (`--phase`, `--strategy`) or the file concerned.

use std::path::PathBuf;

use tape_session::{SessionId, SessionType};

use crate::engine::ReplayError;
use crate::target::TargetError;

/// A cause kept boxed, so that the error stays small while the cause is
/// still found in the chain by its own type (`downcast_ref` on a
/// `source()` gives the store's [`tape_session::Error`], not a box).
type Cause = Box<dyn std::error::Error + Send + Sync>;

/// A replay of a stored session that cannot start, or that failed around
/// the engine (its checkpoint).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An option is not valid or conflicts with another; the message names
    /// it and says what would be valid.
    #[error("{0}")]
    Invalid(String),
    /// The target cannot be resolved or built.
    #[error(transparent)]
    Target(#[from] TargetError),

    /// `--resume` without a checkpoint file.
    #[error(
        "--resume: the checkpoint file {} does not exist (a replay with --checkpoint {} writes it)",
        path.display(),
        path.display()
    )]
    CheckpointMissing {
        /// The checkpoint file.
        path: PathBuf,
    },
    /// The checkpoint file cannot be read.
    #[error("cannot read the checkpoint file {}", path.display())]
    CheckpointRead {
        /// The checkpoint file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The checkpoint file is not a checkpoint.
    #[error("the checkpoint file {} is not a replay checkpoint", path.display())]
    CheckpointFormat {
        /// The checkpoint file.
        path: PathBuf,
        /// What the JSON parser said.
        #[source]
        source: serde_json::Error,
    },
    /// The checkpoint file has a version this build does not read.
    #[error(
        "the checkpoint file {} has version {version}; this otlp-tape reads versions {oldest} to {newest}",
        path.display()
    )]
    CheckpointVersion {
        /// The checkpoint file.
        path: PathBuf,
        /// Its version.
        version: u32,
        /// The oldest version this build reads.
        oldest: u32,
        /// The newest version this build reads (the one it writes).
        newest: u32,
    },
    /// The checkpoint is of another replay (another session, selection or
    /// id seed); the message says what differs and what to do.
    #[error("{0}")]
    CheckpointMismatch(String),
    /// The checkpoint file cannot be written.
    #[error("cannot write the checkpoint file {}", path.display())]
    CheckpointWrite {
        /// The checkpoint file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },

    /// The store's sessions cannot be listed (`--session auto`).
    #[error("cannot list the sessions in {location}")]
    ListSessions {
        /// The store.
        location: String,
        /// What the store said: a [`tape_session::Error`].
        #[source]
        source: Cause,
    },
    /// `--session auto` found no session to pick.
    #[error(
        "no completed{} sessions in {location}{} to replay: create one with otlp-tape seed, capture or import, or \
         name one with --session",
        filter_type.map_or(String::new(), |kind| format!(" {kind}")),
        filter_type.map_or(String::new(), |kind| format!(" (--filter-type {kind})"))
    )]
    NoSessions {
        /// The store.
        location: String,
        /// The type the sessions had to be.
        filter_type: Option<SessionType>,
    },
    /// `--strategy` with a named session.
    #[error("--strategy picks among sessions, so it goes with --session auto, not --session {id}")]
    StrategyWithSession {
        /// The session named.
        id: SessionId,
    },
    /// The session named does not exist. The store's error is kept (not
    /// as a cause: the message says it all); see [`Error::store_error`].
    #[error("session {id} not found in {location}")]
    SessionNotFound {
        /// The session named.
        id: SessionId,
        /// The store.
        location: String,
        /// [`tape_session::Error::NotFound`].
        store: Box<tape_session::Error>,
    },
    /// The session's metadata cannot be read.
    #[error("cannot read session {id} in {location}")]
    ReadSession {
        /// The session.
        id: SessionId,
        /// The store.
        location: String,
        /// What the store said: a [`tape_session::Error`].
        #[source]
        source: Cause,
    },
    /// The session named is not of the `--filter-type`.
    #[error("session {id} is a {actual} session, not {wanted} (--filter-type {wanted})")]
    WrongType {
        /// The session.
        id: SessionId,
        /// Its type.
        actual: SessionType,
        /// The type asked for.
        wanted: SessionType,
    },
    /// The session is still being written.
    #[error("session {id} is still active: a capture is writing it, or one stopped without finishing it ({finish})")]
    ActiveSession {
        /// The session.
        id: SessionId,
        /// What finishes it ([`SessionMetadata::how_to_finish`](tape_session::SessionMetadata::how_to_finish)).
        finish: String,
    },
    /// The session has several writers and is not sealed: its blob list is
    /// empty until it is.
    #[error(
        "cannot replay session {id}: its writers' records are listed only once it is sealed, and it is not ({advice})"
    )]
    UnsealedSession {
        /// The session.
        id: SessionId,
        /// The writers still active and what seals it.
        advice: String,
    },
    /// The session's phases cannot be read (`--phase`).
    #[error("cannot read the phases of session {id} in {location}")]
    Phases {
        /// The session.
        id: SessionId,
        /// The store.
        location: String,
        /// Why: a [`tape_session::PhasesError`].
        #[source]
        source: Cause,
    },
    /// `--phase`, `--from` and `--until` select nothing, or a phase that is
    /// not one range; the message says why.
    #[error("{0}")]
    Window(String),
    /// The session cannot be read (a dry run's read); the cause names the
    /// blob, and a damaged one points at `--skip-corrupt`.
    #[error("{message}")]
    ReadRecords {
        /// `cannot read session ID`, or the damaged blob's sentence.
        message: String,
        /// What the store said: a [`tape_session::Error`].
        #[source]
        source: Cause,
    },
    /// The engine stopped a dry run.
    #[error(transparent)]
    Replay(Box<ReplayError>),
}

impl Error {
    /// The store's error behind this one, if a store failed (or said that
    /// a session does not exist): for callers that map errors to statuses,
    /// such as a 404 for [`tape_session::Error::NotFound`].
    pub fn store_error(&self) -> Option<&tape_session::Error> {
        match self {
            Error::SessionNotFound { store, .. } => Some(store),
            Error::ListSessions { source, .. }
            | Error::ReadSession { source, .. }
            | Error::ReadRecords { source, .. } => source.downcast_ref(),
            Error::Phases { source, .. } => match source.downcast_ref() {
                Some(tape_session::PhasesError::Store(source)) => Some(source),
                _ => None,
            },
            _ => None,
        }
    }

    /// Whether the session named does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::SessionNotFound { .. })
    }
}

/// Why a replay that ran counts as failed, kept as its chain of messages
/// (outermost first): it outlives the outcome it was read from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    message: String,
    #[source]
    cause: Option<Box<Failure>>,
}

impl Failure {
    /// A failure of one message.
    pub fn new(message: impl Into<String>) -> Self {
        Failure { message: message.into(), cause: None }
    }

    /// `error` and its sources, each message once.
    pub fn of(error: &(dyn std::error::Error + 'static)) -> Self {
        let mut messages = vec![error.to_string()];
        let mut cause = error.source();
        while let Some(next) = cause {
            messages.push(next.to_string());
            cause = next.source();
        }
        let mut messages = messages.into_iter().rev();
        let innermost = Failure::new(messages.next().unwrap_or_default());
        messages.fold(innermost, Failure::context)
    }

    /// This failure as the cause of `message`.
    #[must_use]
    pub fn context(self, message: impl Into<String>) -> Self {
        Failure { message: message.into(), cause: Some(Box::new(self)) }
    }

    /// The messages, outermost first.
    pub fn messages(&self) -> Vec<&str> {
        let mut messages = vec![self.message.as_str()];
        let mut cause = self.cause.as_deref();
        while let Some(next) = cause {
            messages.push(next.message.as_str());
            cause = next.cause.as_deref();
        }
        messages
    }

    /// The messages in one line, joined by `: ` (the report's `error`).
    pub fn full(&self) -> String {
        self.messages().join(": ")
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn a_store_error_is_found_in_the_chain_by_its_type() {
        let id: SessionId = "s".parse().unwrap();
        let store = || tape_session::Error::NotFound("s".parse().unwrap());
        let error = Error::ReadSession { id, location: "here".to_owned(), source: Box::new(store()) };
        let cause = error.source().expect("a cause");
        assert!(matches!(cause.downcast_ref::<tape_session::Error>(), Some(tape_session::Error::NotFound(_))));
        assert!(matches!(error.store_error(), Some(tape_session::Error::NotFound(_))));
        let error =
            Error::SessionNotFound { id: "s".parse().unwrap(), location: "here".to_owned(), store: Box::new(store()) };
        assert!(error.is_not_found() && error.source().is_none(), "the message says it all");
        assert!(matches!(error.store_error(), Some(tape_session::Error::NotFound(_))));
    }

    #[test]
    fn an_error_chain_keeps_each_message_once() {
        let source = tape_session::Error::CorruptBlob {
            session: "s".parse().unwrap(),
            key: "raw/k".to_owned(),
            source: tape_session::BlobError::Gzip { compressed_offset: 120, message: "bad".to_owned() },
        };
        let failure = Failure::of(&source).context("outer");
        assert_eq!(
            failure.messages(),
            ["outer", "session s: blob raw/k is corrupt", "gzip data is corrupt at or after compressed byte 120: bad"]
        );
        assert_eq!(
            failure.full(),
            "outer: session s: blob raw/k is corrupt: gzip data is corrupt at or after compressed byte 120: bad"
        );
    }
}
