//! The errors of seeding and of reading patterns.

use tape_seed_generator::ParamsError;
use tape_session::SessionId;

/// A pattern that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum PatternError {
    /// Neither a built-in pattern's name nor a file.
    #[error("unknown pattern {spec:?}: it is neither a built-in pattern ({built_in}) nor a pattern file")]
    Unknown {
        /// What was given.
        spec: String,
        /// The built-in patterns' names, comma-separated.
        built_in: String,
    },
    /// A pattern file that exists but cannot be read.
    #[error("cannot read the pattern file {path}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A pattern file that is not a valid pattern; the message names the
    /// file, line and column.
    #[error(transparent)]
    Invalid(#[from] tape_seed_generator::PatternError),
    /// A built-in pattern that does not parse: a bug of this build.
    #[error("the built-in pattern {name} is broken")]
    BrokenBuiltIn {
        /// The pattern's name.
        name: String,
        /// Why.
        #[source]
        source: tape_seed_generator::PatternError,
    },
}

/// Why a seed could not be checked or run.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// The pattern cannot be read.
    #[error(transparent)]
    Pattern(#[from] PatternError),
    /// The preset and the duration were both given (the words of the
    /// command line's refusal, which the control API has always answered).
    #[error("the argument '--preset <PRESET>' cannot be used with '--duration <DURATION>'")]
    PresetAndDuration,
    /// Parameters the pattern cannot be generated with, found by
    /// [`SeedConfig::validate`](crate::SeedConfig::validate).
    #[error("cannot generate pattern {pattern}: {problem}")]
    InvalidParameters {
        /// The pattern's name.
        pattern: String,
        /// What is wrong.
        problem: ParamsError,
    },
    /// Parameters the pattern cannot be generated with, found when the run
    /// fixed its start; nothing was written.
    #[error("cannot generate pattern {pattern}: {problem}; nothing was written")]
    NotGenerated {
        /// The pattern's name.
        pattern: String,
        /// What is wrong.
        problem: ParamsError,
    },
    /// The wall clock cannot be a session's time.
    #[error("the system clock is before 1970")]
    Clock,
    /// The session cannot be created in the store.
    #[error("cannot create session {id} in {location}")]
    Create {
        /// The session.
        id: SessionId,
        /// The store.
        location: String,
        /// Why.
        #[source]
        source: Box<tape_session::Error>,
    },
    /// Writing the session failed; what was written was removed.
    #[error("seeding session {id} failed; nothing was stored")]
    Failed {
        /// The session.
        id: SessionId,
        /// Why.
        #[source]
        source: Box<SeedError>,
    },
    /// A request could not be stored.
    #[error("cannot store the {signal} request at {receive_time}")]
    Append {
        /// Its signal.
        signal: tape_otlp::Signal,
        /// Its receive time.
        receive_time: tape_session::Timestamp,
        /// Why.
        #[source]
        source: Box<tape_session::Error>,
    },
    /// The annotations cannot be stored.
    #[error("cannot write annotations.jsonl")]
    Annotations {
        /// Why.
        #[source]
        source: Box<tape_session::Error>,
    },
    /// The session's metadata cannot be finished.
    #[error(transparent)]
    Finish(Box<tape_session::Error>),
    /// The generator refused its parameters while running.
    #[error(transparent)]
    Generator(ParamsError),
    /// The generator's thread ended abnormally.
    #[error("the generator stopped unexpectedly")]
    GeneratorStopped {
        /// Why.
        #[source]
        source: tokio::task::JoinError,
    },
    /// Stopped on request (the run's stop token) before the end; the
    /// partial session was removed. Not a failure: see
    /// [`SeedError::is_stopped`].
    #[error("stopped on request before the end; the partial session was removed")]
    Stopped,
}

impl SeedError {
    /// Whether the run was stopped on request (its partial session was
    /// removed) rather than failed.
    pub fn is_stopped(&self) -> bool {
        match self {
            SeedError::Stopped => true,
            SeedError::Failed { source, .. } => source.is_stopped(),
            _ => false,
        }
    }
}
