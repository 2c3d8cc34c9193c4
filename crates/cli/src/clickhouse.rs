//! Where the ClickHouse `annotations` table is: `--clickhouse-*` flags, then
//! the `CLICKHOUSE_*` variables.

use anyhow::Context;
use serde::Serialize;
use tape_annotations::{ClickHouseConfig, ClickHouseSink, PushOutcome};
use tape_session::{Annotation, SessionId, SessionStore, parse_jsonl};

use crate::cli::ClickHouseArgs;
use crate::env;
use crate::output::note;

/// The configured ClickHouse, or `None` when neither `--clickhouse-url` nor
/// `CLICKHOUSE_URL` names one.
pub fn config(args: &ClickHouseArgs) -> Option<ClickHouseConfig> {
    let url = args.clickhouse_url.clone().or_else(|| env::first_set(&[env::CLICKHOUSE_URL]))?;
    let mut config = ClickHouseConfig::new(url);
    config.user = args.clickhouse_user.clone().or_else(|| env::first_set(&[env::CLICKHOUSE_USER]));
    config.password = env::first_set(&[env::CLICKHOUSE_PASSWORD]);
    if let Some(database) = args.clickhouse_database.clone().or_else(|| env::first_set(&[env::CLICKHOUSE_DATABASE])) {
        config.database = database;
    }
    Some(config)
}

/// The configured ClickHouse, or an error that says how to configure it.
pub fn required(args: &ClickHouseArgs) -> anyhow::Result<ClickHouseConfig> {
    config(args).context("no ClickHouse is configured: pass --clickhouse-url or set CLICKHOUSE_URL")
}

/// The annotations in a session's `annotations.jsonl` (none when it has no
/// such file).
pub async fn session_annotations(store: &dyn SessionStore, id: &SessionId) -> anyhow::Result<Vec<Annotation>> {
    let bytes = store
        .read_annotations(id)
        .await
        .with_context(|| format!("cannot read the annotations of session {id} in {}", store.location()))?;
    match bytes {
        None => Ok(Vec::new()),
        Some(bytes) => parse_jsonl(id, &bytes).with_context(|| format!("cannot read the annotations of session {id}")),
    }
}

/// Connects (creating the table when missing) and pushes `annotations`.
pub async fn push(
    config: ClickHouseConfig,
    id: &SessionId,
    annotations: &[Annotation],
) -> anyhow::Result<(String, PushOutcome)> {
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

/// Pushes `annotations` of session `id` and reports it. A failure is a
/// warning naming `what` was not written: the caller has kept them in the
/// session, and `annotations push` writes them later.
pub async fn push_or_warn(
    config: ClickHouseConfig,
    id: &SessionId,
    annotations: &[Annotation],
    what: &str,
) -> ClickHouseReport {
    let url = config.url.clone();
    match push(config, id, annotations).await {
        Ok((table, outcome)) => ClickHouseReport {
            table,
            inserted: outcome.inserted,
            already_present: outcome.already_present,
            error: None,
        },
        Err(error) => {
            let error = format!("{error:#}");
            note(format!(
                "warning: {what} of session {id} were not written to ClickHouse: {error}. They are kept in the \
                 session; `otlp-tape annotations push --session {id}` writes them later."
            ));
            ClickHouseReport { table: url, inserted: 0, already_present: 0, error: Some(error) }
        }
    }
}
