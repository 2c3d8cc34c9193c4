//! Where the ClickHouse `annotations` table is: `--clickhouse-*` flags, then
//! the `CLICKHOUSE_*` variables.

use anyhow::Context;
use tape_annotations::{ClickHouseConfig, ClickHouseReport, ClickHouseSettings};
use tape_session::{Annotation, SessionId};

use crate::cli::ClickHouseArgs;
use crate::env;
use crate::output::note;

/// The settings the flags give.
pub fn settings(args: &ClickHouseArgs) -> ClickHouseSettings {
    ClickHouseSettings {
        url: args.clickhouse_url.clone(),
        user: args.clickhouse_user.clone(),
        database: args.clickhouse_database.clone(),
    }
}

/// The configured ClickHouse, or `None` when neither `--clickhouse-url` nor
/// `CLICKHOUSE_URL` names one.
pub fn config(args: &ClickHouseArgs) -> Option<ClickHouseConfig> {
    settings(args).resolve(|name| env::first_set(&[name]))
}

/// The configured ClickHouse, or an error that says how to configure it.
pub fn required(args: &ClickHouseArgs) -> anyhow::Result<ClickHouseConfig> {
    config(args).context("no ClickHouse is configured: pass --clickhouse-url or set CLICKHOUSE_URL")
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
    let report = tape_annotations::push_and_report(config, id, annotations).await;
    if let Some(warning) = report.warning(what, id) {
        note(warning);
    }
    report
}
