//! A session's annotations on their way to ClickHouse: where ClickHouse is
//! (settings, then the `CLICKHOUSE_*` variables), reading a session's
//! `annotations.jsonl`, and pushing them with a report that keeps a
//! failure as a warning for the caller to show.

use serde::Serialize;
use tape_session::{Annotation, AnnotationError, SessionId, SessionStore, parse_jsonl};

use crate::clickhouse::{ClickHouseConfig, ClickHouseSink, PushOutcome, SinkError};

/// The ClickHouse HTTP URL, such as `http://localhost:8123`.
pub const CLICKHOUSE_URL: &str = "CLICKHOUSE_URL";
/// The ClickHouse user (default `default`).
pub const CLICKHOUSE_USER: &str = "CLICKHOUSE_USER";
/// The ClickHouse password (only from the environment, never a flag).
pub const CLICKHOUSE_PASSWORD: &str = "CLICKHOUSE_PASSWORD";
/// The database of the annotations table (default `otel`).
pub const CLICKHOUSE_DATABASE: &str = "CLICKHOUSE_DATABASE";

/// Where the ClickHouse `annotations` table is, as a caller gives it; each
/// setting left out is taken from its `CLICKHOUSE_*` variable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClickHouseSettings {
    /// The HTTP URL; without it and without `CLICKHOUSE_URL`, no ClickHouse.
    pub url: Option<String>,
    /// The user.
    pub user: Option<String>,
    /// The database.
    pub database: Option<String>,
}

impl ClickHouseSettings {
    /// The configured ClickHouse, or `None` when neither the settings nor
    /// `CLICKHOUSE_URL` name one. `variable` returns a variable's value, or
    /// `None` when it is unset or empty; the password comes from
    /// `CLICKHOUSE_PASSWORD` only.
    pub fn resolve(&self, variable: impl Fn(&str) -> Option<String>) -> Option<ClickHouseConfig> {
        let url = self.url.clone().or_else(|| variable(CLICKHOUSE_URL))?;
        let mut config = ClickHouseConfig::new(url);
        config.user = self.user.clone().or_else(|| variable(CLICKHOUSE_USER));
        config.password = variable(CLICKHOUSE_PASSWORD);
        if let Some(database) = self.database.clone().or_else(|| variable(CLICKHOUSE_DATABASE)) {
            config.database = database;
        }
        Some(config)
    }
}

/// A session's `annotations.jsonl` could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SessionAnnotationsError {
    /// The store did not give the file.
    #[error("cannot read the annotations of session {id} in {location}")]
    Read {
        /// The session.
        id: SessionId,
        /// The store's location.
        location: String,
        /// What the store said.
        #[source]
        source: tape_session::Error,
    },
    /// The file is not valid.
    #[error("cannot read the annotations of session {id}")]
    Invalid {
        /// The session.
        id: SessionId,
        /// The line and what is wrong with it.
        #[source]
        source: AnnotationError,
    },
}

/// The annotations in a session's `annotations.jsonl` (none when it has no
/// such file).
pub async fn session_annotations(
    store: &dyn SessionStore,
    id: &SessionId,
) -> Result<Vec<Annotation>, SessionAnnotationsError> {
    let bytes = store.read_annotations(id).await.map_err(|source| SessionAnnotationsError::Read {
        id: id.clone(),
        location: store.location(),
        source,
    })?;
    match bytes {
        None => Ok(Vec::new()),
        Some(bytes) => {
            parse_jsonl(id, &bytes).map_err(|source| SessionAnnotationsError::Invalid { id: id.clone(), source })
        }
    }
}

/// Connects (creating the table when missing) and pushes `annotations`;
/// returns the table's location and what was written.
pub async fn push(
    config: ClickHouseConfig,
    id: &SessionId,
    annotations: &[Annotation],
) -> Result<(String, PushOutcome), SinkError> {
    let sink = ClickHouseSink::connect(config).await?;
    let outcome = sink.push(id, annotations).await?;
    Ok((sink.location(), outcome))
}

/// Where annotations went in ClickHouse and how many, or why they did not.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClickHouseReport {
    /// `database.annotations at URL`, or the URL when it was not reached.
    pub table: String,
    /// Annotations written.
    pub inserted: usize,
    /// Annotations that were there already.
    pub already_present: usize,
    /// Why nothing was written, when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ClickHouseReport {
    /// A push to `url` that failed with `error` (its whole chain).
    pub fn failed(url: String, error: String) -> Self {
        ClickHouseReport { table: url, inserted: 0, already_present: 0, error: Some(error) }
    }

    /// For a failed push, the warning to show: `what` (such as "the
    /// phases") of session `id` were not written, are kept in the session,
    /// and how to write them later.
    pub fn warning(&self, what: &str, id: &SessionId) -> Option<String> {
        let error = self.error.as_ref()?;
        Some(format!(
            "warning: {what} of session {id} were not written to ClickHouse: {error}. They are kept in the \
             session; `otlp-tape annotations push --session {id}` writes them later."
        ))
    }
}

/// Pushes `annotations` of session `id` and reports it. A failure is in the
/// report (see [`ClickHouseReport::warning`]), not an error: the caller has
/// kept the annotations in the session, and a later push writes them.
pub async fn push_and_report(config: ClickHouseConfig, id: &SessionId, annotations: &[Annotation]) -> ClickHouseReport {
    let url = config.url.clone();
    match push(config, id, annotations).await {
        Ok((table, outcome)) => ClickHouseReport {
            table,
            inserted: outcome.inserted,
            already_present: outcome.already_present,
            error: None,
        },
        Err(error) => ClickHouseReport::failed(url, tape_session::error_chain(&error)),
    }
}
