//! Export in an OTLP format, one local file per signal present.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::fs;
use std::path::Path;

use futures::TryStreamExt;
use tape_otlp::Signal;
use tape_session::{SessionMetadata, SessionStore};

use super::file::PendingFile;
use super::select::{Progress, Selection};
use super::{ExportConfig, ExportProgress, ExportedFiles};
use crate::Error;

/// Writes the selected records into `out/<signal file>`.
pub(super) async fn run(
    store: &dyn SessionStore,
    metadata: &SessionMetadata,
    selection: &Selection,
    config: &ExportConfig,
    out: &Path,
    report: &(dyn Fn(ExportProgress) + Send + Sync),
) -> Result<ExportedFiles, Error> {
    let present: Vec<Signal> = Signal::ALL
        .into_iter()
        .filter(|signal| selection.signals.contains(*signal) && metadata.request_counts.get(*signal) > 0)
        .collect();
    fs::create_dir_all(out).map_err(|source| Error::CreateDirectory { path: out.to_owned(), source })?;
    if !config.force {
        for signal in &present {
            let path = out.join(PendingFile::name(config.format, *signal)?);
            if path.exists() {
                return Err(Error::Exists { path: path.display().to_string() });
            }
        }
    }

    let progress = Progress::new(report, selection.records_total());
    let mut files: BTreeMap<Signal, PendingFile> = BTreeMap::new();
    let written = async {
        let mut records = std::pin::pin!(selection.records(store, metadata, &progress));
        while let Some((signal, _, record)) = records.try_next().await? {
            let file = match files.entry(signal) {
                Entry::Occupied(entry) => entry.into_mut(),
                Entry::Vacant(entry) => {
                    let path = out.join(PendingFile::name(config.format, signal)?);
                    entry.insert(PendingFile::create(signal, path, config.format)?)
                }
            };
            progress.wrote(file.write(&metadata.session_id, &record)?);
        }
        Ok::<_, Error>(())
    }
    .await;
    if let Err(error) = written {
        files.into_values().for_each(PendingFile::discard);
        return Err(Error::ExportFailed { session: config.session.clone(), source: Box::new(error) });
    }
    let mut exported = Vec::new();
    for file in files.into_values() {
        exported.push(file.finish()?);
    }
    progress.report();
    tracing::info!(session = %config.session, files = exported.len(), "Export finished.");
    Ok(ExportedFiles { session_id: config.session.clone(), files: exported })
}
