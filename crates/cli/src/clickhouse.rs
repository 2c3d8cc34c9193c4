//! Where the ClickHouse `annotations` table is: `--clickhouse-*` flags, then
//! the `CLICKHOUSE_*` variables.

use anyhow::Context;
use tape_annotations::{ClickHouseConfig, ClickHouseSettings};

use crate::cli::ClickHouseArgs;
use crate::env;

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
