//! The errors of the benchmarks.

use std::io;

use tape_replay::{ConfigError, ExportError, ReplayError};

/// A boxed error from elsewhere: the [`Host`](crate::Host), a receiver.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a benchmark could not run or measure. The messages say what was
/// being done; the cause, when there is one, is the
/// [`source`](std::error::Error::source).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A config value out of range; the message names the flag.
    #[error("{0}")]
    Invalid(String),
    /// The host failed: a pattern, or generating a seed session.
    #[error(transparent)]
    Host(BoxError),
    /// A file, a directory, a socket or a child process failed.
    #[error("{context}")]
    Io {
        /// What was being done.
        context: String,
        /// Why it failed.
        #[source]
        source: io::Error,
    },
    /// The store failed.
    #[error("{context}")]
    Session {
        /// What was being done.
        context: String,
        /// Why it failed.
        #[source]
        source: Box<tape_session::Error>,
    },
    /// A capture or a receiver being measured failed.
    #[error("{context}")]
    Capture {
        /// What was being done.
        context: String,
        /// Why it failed.
        #[source]
        source: BoxError,
    },
    /// An exporter could not be made.
    #[error("{context}")]
    Exporter {
        /// What it was for.
        context: String,
        /// Why.
        #[source]
        source: ConfigError,
    },
    /// A request was not accepted.
    #[error("{context}")]
    Export {
        /// What was being sent.
        context: String,
        /// Why.
        #[source]
        source: ExportError,
    },
    /// A replay being measured failed.
    #[error("{context}")]
    Replay {
        /// Which replay.
        context: String,
        /// Why.
        #[source]
        source: ReplayError,
    },
    /// A report could not be read.
    #[error("{context}")]
    Json {
        /// Which report.
        context: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// A task of the benchmark stopped unexpectedly.
    #[error("{context}")]
    Task {
        /// Which task.
        context: String,
        /// Why.
        #[source]
        source: tokio::task::JoinError,
    },
    /// An export, or a step of one (decoding, converting, encoding), failed.
    #[error("{context}")]
    Files {
        /// What was being done.
        context: String,
        /// Why it failed.
        #[source]
        source: BoxError,
    },
    /// A comparison being measured could not be made.
    #[error("{context}")]
    Compare {
        /// Which comparison.
        context: String,
        /// Why.
        #[source]
        source: Box<tape_compare::Error>,
    },
    /// A measurement went wrong: something was lost, refused, or out of order.
    #[error("{0}")]
    Measurement(String),
}

impl Error {
    pub(crate) fn session(context: impl Into<String>) -> impl FnOnce(tape_session::Error) -> Error {
        let context = context.into();
        move |source| Error::Session { context, source: Box::new(source) }
    }

    pub(crate) fn files<E: Into<BoxError>>(context: impl Into<String>) -> impl FnOnce(E) -> Error {
        let context = context.into();
        move |source| Error::Files { context, source: source.into() }
    }

    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
    }
}

/// `Err(Error::Measurement)` with the message unless `condition` holds.
pub(crate) fn ensure(condition: bool, message: impl FnOnce() -> String) -> Result<(), Error> {
    if condition { Ok(()) } else { Err(Error::Measurement(message())) }
}

/// `Err(Error::Invalid)` with the message when `condition` holds.
pub(crate) fn invalid_if(condition: bool, message: impl FnOnce() -> String) -> Result<(), Error> {
    if condition { Err(Error::Invalid(message())) } else { Ok(()) }
}

/// Refuses a `--memory-gb` that is not a number of GB (0 skips the memory
/// measurement).
pub(crate) fn check_memory_gb(memory_gb: f64) -> Result<(), Error> {
    invalid_if(!(memory_gb.is_finite() && memory_gb >= 0.0), || {
        format!(
            "--memory-gb is {memory_gb}; expected a number of GB (10^9 bytes) stored, or 0 to skip the memory measurement"
        )
    })
}

/// Refuses a `--rate` that is given and not a positive number.
pub(crate) fn check_rate(rate: Option<f64>) -> Result<(), Error> {
    match rate {
        Some(rate) => invalid_if(!(rate.is_finite() && rate > 0.0), || {
            format!("--rate is {rate}; expected a positive number of traces per second")
        }),
        None => Ok(()),
    }
}
