//! Export as Parquet tables.

use tape_session::{OutputDir, SessionMetadata, SessionStore};

use super::select::Selection;
use super::{ExportConfig, ExportProgress, ExportedTables};
use crate::Error;

pub(super) async fn run(
    store: &dyn SessionStore,
    metadata: &SessionMetadata,
    selection: &Selection,
    config: &ExportConfig,
    output: &dyn OutputDir,
    report: &(dyn Fn(ExportProgress) + Send + Sync),
) -> Result<ExportedTables, Error> {
    let _ = (store, metadata, selection, config, output, report);
    todo!("being written")
}
